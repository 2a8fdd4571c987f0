with

source as not materialized (

    select * from {{ source('raw', 'browsing_events') }}

),

cleaned as not materialized (

    select
        cast(event_id as bigint) as event_id,
        cast(event_date as date) as event_date,
        cast(customer_id as bigint) as customer_id,
        cast(sku_id as bigint) as sku_id,
        lower(trim(channel)) as channel,
        lower(trim(event_type)) as event_type,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where event_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['event_id'], source('raw', 'browsing_events')) }}

),

final as (

    select
        event_id,
        event_date,
        customer_id,
        sku_id,
        channel,
        event_type,
        (customer_id is null or channel is null) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated
    -- an event without a day, a SKU or a type counts towards nothing
    where event_date is not null and sku_id is not null and event_type is not null

)

select * from final
