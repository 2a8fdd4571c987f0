with

source as not materialized (

    select * from {{ source('raw', 'purchase_orders') }}

),

cleaned as not materialized (

    select
        cast(po_id as bigint) as po_id,
        cast(sku_id as bigint) as sku_id,
        cast(warehouse_id as integer) as warehouse_id,
        cast(supplier_id as integer) as supplier_id,
        cast(order_date as date) as order_date,
        cast(expected_date as date) as expected_date,
        cast(received_date as date) as received_date,
        cast(quantity as integer) as quantity,
        cast(unit_cost as double precision) as unit_cost,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where po_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['po_id'], source('raw', 'purchase_orders')) }}

),

final as (

    select
        po_id,
        sku_id,
        warehouse_id,
        supplier_id,
        order_date,
        expected_date,
        received_date,
        received_date is null as is_open,
        received_date - order_date as lead_time_days,
        received_date - expected_date as days_late,
        quantity,
        unit_cost,
        (
            sku_id is null or warehouse_id is null or supplier_id is null or order_date is null
            or expected_date is null or quantity is null or unit_cost is null
        ) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

)

select * from final
