with

source as not materialized (

    select * from {{ source('raw', 'products') }}

),

cleaned as not materialized (

    select
        cast(sku_id as bigint) as sku_id,
        trim(sku_name) as sku_name,
        lower(trim(category_l1)) as category_l1,
        lower(trim(category_l2)) as category_l2,
        trim(brand) as brand,
        cast(unit_cost as double precision) as unit_cost,
        cast(list_price as double precision) as list_price,
        cast(launch_date as date) as launch_date,
        cast(warehouse_id as integer) as warehouse_id,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where sku_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['sku_id'], source('raw', 'products')) }}

),

final as (

    select
        sku_id,
        coalesce(sku_name, 'SKU ' || cast(sku_id as varchar)) as sku_name,
        coalesce(category_l1, 'unknown') as category_l1,
        coalesce(category_l2, 'unknown') as category_l2,
        coalesce(brand, 'unknown') as brand,
        unit_cost,
        list_price,
        launch_date,
        warehouse_id,
        (
            sku_name is null or category_l1 is null or category_l2 is null or brand is null
            or unit_cost is null or list_price is null or launch_date is null or warehouse_id is null
        ) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

)

select * from final
