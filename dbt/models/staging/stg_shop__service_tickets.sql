with

source as not materialized (

    select * from {{ source('raw', 'service_tickets') }}

),

cleaned as not materialized (

    select
        cast(ticket_id as bigint) as ticket_id,
        cast(created_date as date) as created_date,
        cast(customer_id as bigint) as customer_id,
        cast(order_id as bigint) as order_id,
        cast(sku_id as bigint) as sku_id,
        lower(trim(reason)) as reason,
        cast(resolved_date as date) as resolved_date,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where ticket_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['ticket_id'], source('raw', 'service_tickets')) }}

),

final as (

    select
        ticket_id,
        created_date,
        customer_id,
        order_id,
        sku_id,
        coalesce(reason, 'unknown') as reason,
        resolved_date,
        resolved_date is null as is_open,
        resolved_date - created_date as days_to_resolve,
        (customer_id is null or order_id is null or sku_id is null or reason is null) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated
    where created_date is not null

)

select * from final
