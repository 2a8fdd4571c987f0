with

source as not materialized (

    select * from {{ source('raw', 'order_lines') }}

),

cleaned as not materialized (

    select
        cast(order_id as bigint) as order_id,
        cast(sku_id as bigint) as sku_id,
        cast(order_date as date) as order_date,
        cast(customer_id as bigint) as customer_id,
        lower(trim(channel)) as channel,
        cast(quantity as integer) as quantity,
        cast(unit_price as double precision) as unit_price,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where order_id is not null and sku_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['order_id', 'sku_id'], source('raw', 'order_lines')) }}

),

final as (

    select
        order_id,
        sku_id,
        order_date,
        customer_id,
        channel,
        quantity,
        unit_price,
        {{ round_to('quantity * unit_price') }} as line_value,
        (customer_id is null or channel is null or unit_price is null) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated
    -- a line without a day or a quantity cannot be placed in any fact
    where order_date is not null and quantity is not null

)

select * from final
