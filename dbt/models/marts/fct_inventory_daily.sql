{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id', 'warehouse_id'],
        on_schema_change='fail',
    )
}}

{%- set trailing_days = var('trailing_window_days') -%}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'inventory_snapshots'), 'date_column': 'date'},
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
    ],
    lookback_days=trailing_days,
) -%}

with

snapshots as (

    select * from {{ ref('stg_shop__inventory_snapshots') }}
    where {{ in_window('date', w, 'read') }}

),

sales as (

    select * from {{ ref('fct_sales_daily') }}
    where {{ in_window('date', w, 'read') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

units_sold as (

    select
        date,
        sku_id,
        cast(sum(units) as bigint) as units_sold
    from sales
    group by date, sku_id

),

filled as (

    -- a missing count carries the SKU's previous end-of-day count forward (a few days at most)
    select
        date,
        sku_id,
        warehouse_id,
        {{ carry_forward('on_hand_units', 'sku_id, warehouse_id', 'date') }} as on_hand_units,
        {{ carry_forward('on_order_units', 'sku_id, warehouse_id', 'date') }} as on_order_units,
        has_missing_values as is_imputed
    from snapshots

),

joined as (

    select
        filled.date,
        filled.sku_id,
        filled.warehouse_id,
        filled.on_hand_units,
        filled.on_order_units,
        -- sales ship from the SKU's stocking warehouse
        case
            when filled.warehouse_id = products.warehouse_id then coalesce(units_sold.units_sold, 0)
            else 0
        end as units_sold,
        products.unit_cost,
        filled.is_imputed
    from filled
    left join products
        on filled.sku_id = products.sku_id
    left join units_sold
        on filled.sku_id = units_sold.sku_id
        and filled.date = units_sold.date

),

with_rates as (

    select
        *,
        avg(cast(units_sold as double precision)) over (
            partition by sku_id, warehouse_id
            order by date
            range between interval '{{ trailing_days - 1 }} days' preceding and current row
        ) as mean_daily_units_sold
    from joined

),

final as (

    select
        date,
        sku_id,
        warehouse_id,
        on_hand_units,
        on_order_units,
        units_sold,
        on_hand_units = 0 as stockout,
        {{ round_to('on_hand_units * unit_cost') }} as inventory_value,
        {{ round_to('units_sold * unit_cost') }} as cogs,
        mean_daily_units_sold,
        -- days the stock on hand lasts at the trailing mean sales rate; null when nothing sells
        case when mean_daily_units_sold > 0 then on_hand_units / mean_daily_units_sold end as days_of_cover,
        is_imputed,
        {{ audit_columns(w) }}
    from with_rates
    where {{ in_window('date', w, 'write') }}

)

select * from final
