with

source as not materialized (

    select * from {{ source('raw', 'returns') }}

),

cleaned as not materialized (

    select
        cast(return_id as bigint) as return_id,
        cast(order_id as bigint) as order_id,
        cast(sku_id as bigint) as sku_id,
        cast(customer_id as bigint) as customer_id,
        cast(return_date as date) as return_date,
        cast(quantity as integer) as quantity,
        cast(refund_amount as double precision) as refund_amount,
        lower(trim(reason)) as reason,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where return_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['return_id'], source('raw', 'returns')) }}

),

final as (

    select
        return_id,
        order_id,
        sku_id,
        customer_id,
        return_date,
        -- a recorded return returns at least one unit
        coalesce(quantity, 1) as quantity,
        refund_amount,
        coalesce(reason, 'unknown') as reason,
        (
            order_id is null or sku_id is null or customer_id is null or quantity is null
            or refund_amount is null or reason is null
        ) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated
    where return_date is not null

)

select * from final
