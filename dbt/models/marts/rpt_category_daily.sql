{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'category_l1'],
        on_schema_change='fail',
    )
}}

{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
        {'relation': source('raw', 'order_lines'), 'date_column': 'order_date'},
        {'relation': source('raw', 'inventory_snapshots'), 'date_column': 'date'},
    ],
) -%}

with

sku_days as (

    select * from {{ ref('int_lost_sales_estimated') }}
    where {{ in_window('date', w, 'write') }}

),

order_lines as (

    select * from {{ ref('stg_shop__order_lines') }}
    where {{ in_window(period_start('order_date'), w, 'write') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

orders_landed as (

    -- order counts from order lines that were never landed are unknown (null), not 0
    {{ source_has_rows(source('raw', 'order_lines')) }}

),

sales_by_category as (

    select
        sku_days.date,
        products.category_l1,
        sum(sku_days.revenue) as gmv,
        cast(sum(sku_days.units) as bigint) as units,
        count(*) as active_skus,
        sum(case when sku_days.stockout then 1 else 0 end) as stockout_skus,
        count(sku_days.stockout) as stockout_known_skus,
        {{ round_to('sum(sku_days.lost_units)', 4) }} as lost_units
    from sku_days
    inner join products
        on sku_days.sku_id = products.sku_id
    group by sku_days.date, products.category_l1

),

lines_by_category as (

    select
        {{ period_start('order_lines.order_date') }} as date,
        products.category_l1,
        count(*) as order_lines,
        count(distinct order_lines.order_id) as orders
    from order_lines
    inner join products
        on order_lines.sku_id = products.sku_id
    group by {{ period_start('order_lines.order_date') }}, products.category_l1

),

final as (

    select
        sales_by_category.date,
        sales_by_category.category_l1,
        {{ round_to('sales_by_category.gmv') }} as gmv,
        sales_by_category.units,
        case when orders_landed.has_rows then coalesce(lines_by_category.order_lines, 0) end as order_lines,
        case when orders_landed.has_rows then coalesce(lines_by_category.orders, 0) end as orders,
        sales_by_category.active_skus,
        cast(sales_by_category.stockout_skus as double precision)
            / nullif(sales_by_category.stockout_known_skus, 0) as stockout_rate,
        cast(sales_by_category.units as double precision)
            / nullif(sales_by_category.units + sales_by_category.lost_units, 0) as fill_rate,
        {{ audit_columns(w) }}
    from sales_by_category
    cross join orders_landed
    left join lines_by_category
        on sales_by_category.date = lines_by_category.date
        and sales_by_category.category_l1 = lines_by_category.category_l1

)

select * from final
