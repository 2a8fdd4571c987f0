with

source as not materialized (

    select * from {{ source('raw', 'competitor_prices') }}

),

cleaned as not materialized (

    select
        cast(sku_id as bigint) as sku_id,
        lower(trim(competitor)) as competitor,
        cast(effective_date as date) as effective_date,
        cast(price as double precision) as competitor_price,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where sku_id is not null and competitor is not null and effective_date is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['sku_id', 'competitor', 'effective_date'], source('raw', 'competitor_prices')) }}

),

final as (

    select
        sku_id,
        competitor,
        effective_date,
        competitor_price,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated
    -- an observation without a price tells nothing new: the previous observation stays valid
    where competitor_price is not null

)

select * from final
