with

source as not materialized (

    select * from {{ source('raw', 'inventory_snapshots') }}

),

cleaned as not materialized (

    select
        cast(date as date) as date,
        cast(sku_id as bigint) as sku_id,
        cast(warehouse_id as integer) as warehouse_id,
        cast(on_hand_units as integer) as on_hand_units,
        cast(on_order_units as integer) as on_order_units,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where date is not null and sku_id is not null and warehouse_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['date', 'sku_id', 'warehouse_id'], source('raw', 'inventory_snapshots')) }}

),

final as (

    select
        date,
        sku_id,
        warehouse_id,
        on_hand_units,
        on_order_units,
        (on_hand_units is null or on_order_units is null) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

)

select * from final
