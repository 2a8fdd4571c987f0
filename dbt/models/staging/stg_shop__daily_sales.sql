with

source as not materialized (

    select * from {{ source('raw', 'daily_sales') }}

),

cleaned as not materialized (

    select
        cast(date as date) as date,
        cast(sku_id as bigint) as sku_id,
        lower(trim(channel)) as channel,
        cast(units as integer) as units,
        cast(revenue as double precision) as revenue,
        cast(price_paid as double precision) as price_paid,
        cast(stockout as boolean) as stockout,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where date is not null and sku_id is not null and channel is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['date', 'sku_id', 'channel'], source('raw', 'daily_sales')) }}

),

imputed as (

    select
        date,
        sku_id,
        channel,
        coalesce(
            units,
            case when price_paid > 0 then cast(round(revenue / price_paid) as integer) end
        ) as units,
        coalesce(revenue, {{ round_to('units * price_paid') }}) as revenue,
        coalesce(
            price_paid,
            case when units > 0 then {{ round_to('revenue / units') }} end
        ) as price_paid,
        stockout,
        (units is null or revenue is null or price_paid is null or stockout is null) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

),

final as (

    select * from imputed
    -- units that cannot be reconstructed from revenue / price_paid: the row carries no sales fact
    where units is not null

)

select * from final
