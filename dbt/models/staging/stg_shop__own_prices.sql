with

source as not materialized (

    select * from {{ source('raw', 'own_prices') }}

),

cleaned as not materialized (

    select
        cast(sku_id as bigint) as sku_id,
        cast(effective_date as date) as effective_date,
        cast(price as double precision) as shelf_price,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where sku_id is not null and effective_date is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['sku_id', 'effective_date'], source('raw', 'own_prices')) }}

),

final as (

    select
        sku_id,
        effective_date,
        shelf_price,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated
    -- a change point without a price changes nothing: the previous shelf price stays in force
    where shelf_price is not null

)

select * from final
