with

source as (

    {{ select_model_output('pricing', 'competitor_observations', {
        'run_date': 'date',
        'crawl_id': 'varchar',
        'competitor': 'varchar',
        'sku_id': 'bigint',
        'sku_code': 'varchar',
        'price': 'double precision',
        'observed_at': 'timestamp',
        'method': 'varchar',
        'ocr_confidence': 'double precision',
        'url': 'varchar',
    }) }}

),

final as (

    select
        run_date,
        crawl_id,
        competitor,
        sku_id,
        sku_code,
        price,
        observed_at,
        lower(method) as method,
        ocr_confidence,
        url
    from source
    where run_date is not null and crawl_id is not null and competitor is not null and sku_id is not null

)

select * from final
