with

source as not materialized (

    select * from {{ source('raw', 'warehouses') }}

),

cleaned as not materialized (

    select
        cast(warehouse_id as integer) as warehouse_id,
        trim(name) as warehouse_name,
        lower(trim(region)) as region,
        cast(capacity_units as bigint) as capacity_units,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where warehouse_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['warehouse_id'], source('raw', 'warehouses')) }}

),

final as (

    select
        warehouse_id,
        coalesce(warehouse_name, 'warehouse ' || cast(warehouse_id as varchar)) as warehouse_name,
        coalesce(region, 'unknown') as region,
        capacity_units,
        (warehouse_name is null or region is null or capacity_units is null) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

)

select * from final
