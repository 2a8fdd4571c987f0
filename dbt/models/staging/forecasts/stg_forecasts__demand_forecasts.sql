with

source as (

    {{ select_model_output('forecasts', 'demand_forecast', {
        'run_date': 'date',
        'sku_id': 'bigint',
        'target_date': 'date',
        'p10': 'double precision',
        'p50': 'double precision',
        'p90': 'double precision',
        'mean': 'double precision',
        'model_name': 'varchar',
        'model_version': 'varchar',
        'scored_at': 'timestamp',
    }) }}

),

final as (

    select
        run_date,
        sku_id,
        target_date,
        coalesce(model_name, 'demand_forecaster') as model_name,
        coalesce(model_version, 'unregistered') as model_version,
        p10,
        p50,
        p90,
        mean,
        scored_at
    from source
    where run_date is not null and sku_id is not null and target_date is not null

)

select * from final
