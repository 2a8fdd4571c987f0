with

source as not materialized (

    select * from {{ source('raw', 'promotions') }}

),

cleaned as not materialized (

    select
        cast(promo_id as bigint) as promo_id,
        cast(sku_id as bigint) as sku_id,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        lower(trim(promo_type)) as promo_type,
        cast(discount_pct as double precision) as discount_pct,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where promo_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['promo_id'], source('raw', 'promotions')) }}

),

final as (

    select
        promo_id,
        sku_id,
        start_date,
        -- no end date: a one-day promotion (the shortest the contract allows)
        coalesce(end_date, start_date) as end_date,
        promo_type,
        discount_pct,
        (end_date is null or promo_type is null) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated
    -- without a SKU, a start or a discount a promotion cannot be priced
    where sku_id is not null and start_date is not null and discount_pct is not null

)

select * from final
