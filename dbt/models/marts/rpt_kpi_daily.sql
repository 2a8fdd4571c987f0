{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='date',
        on_schema_change='fail',
    )
}}

{%- set trailing_days = var('trailing_window_days') -%}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
        {'relation': source('raw', 'order_lines'), 'date_column': 'order_date'},
        {'relation': source('raw', 'inventory_snapshots'), 'date_column': 'date'},
        {'relation': source('raw', 'returns'), 'date_column': 'return_date'},
    ],
    lookback_days=trailing_days,
) -%}

with

sku_days as (

    select * from {{ ref('int_lost_sales_estimated') }}
    where {{ in_window('date', w, 'read') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where {{ in_window(period_start('order_date'), w, 'read') }}

),

inventory as (

    select * from {{ ref('fct_inventory_daily') }}
    where {{ in_window(period_start('date'), w, 'read') }}

),

returns as (

    select * from {{ ref('stg_shop__returns') }}
    where {{ in_window(period_start('return_date'), w, 'read') }}

),

landed as (

    -- which optional tables hold any row: a count from one that was never landed is unknown (null)
    select
        exists (select 1 from {{ source('raw', 'order_lines') }}) as has_orders,
        exists (select 1 from {{ source('raw', 'inventory_snapshots') }}) as has_inventory,
        exists (select 1 from {{ source('raw', 'returns') }}) as has_returns

),

sales_by_day as (

    select
        date,
        sum(revenue) as gmv,
        cast(sum(units) as bigint) as units,
        count(*) as active_skus,
        sum(case when stockout then 1 else 0 end) as stockout_skus,
        -- SKUs whose stock-out flag is known: the stock-out rate's denominator
        count(stockout) as stockout_known_skus,
        {{ round_to('sum(lost_units)', 4) }} as lost_units
    from sku_days
    group by date

),

orders_by_day as (

    select
        {{ period_start('order_date') }} as date,
        count(distinct order_id) as orders
    from orders
    group by {{ period_start('order_date') }}

),

inventory_by_day as (

    {%- if is_weekly() %}
    -- a week's inventory value at its end (its last day with snapshots), its COGS summed
    select
        period_date as date,
        {{ round_to('sum(case when date = last_day then inventory_value end)') }} as inventory_value,
        {{ round_to('sum(cogs)') }} as cogs
    from (
        select
            *,
            {{ period_start('date') }} as period_date,
            max(date) over (partition by {{ period_start('date') }}) as last_day
        from inventory
    ) as inventory_days
    group by period_date
    {%- else %}
    select
        date,
        {{ round_to('sum(inventory_value)') }} as inventory_value,
        {{ round_to('sum(cogs)') }} as cogs
    from inventory
    group by date
    {%- endif %}

),

returns_by_day as (

    select
        {{ period_start('return_date') }} as date,
        sum(quantity) as returned_units
    from returns
    group by {{ period_start('return_date') }}

),

daily as (

    select
        sales_by_day.date,
        sales_by_day.gmv,
        case when landed.has_orders then coalesce(orders_by_day.orders, 0) end as orders,
        sales_by_day.units,
        sales_by_day.active_skus,
        sales_by_day.stockout_skus,
        sales_by_day.stockout_known_skus,
        sales_by_day.lost_units,
        inventory_by_day.inventory_value,
        case when landed.has_inventory then coalesce(inventory_by_day.cogs, 0) end as cogs,
        case when landed.has_returns then coalesce(returns_by_day.returned_units, 0) end as returned_units
    from sales_by_day
    cross join landed
    left join orders_by_day
        on sales_by_day.date = orders_by_day.date
    left join inventory_by_day
        on sales_by_day.date = inventory_by_day.date
    left join returns_by_day
        on sales_by_day.date = returns_by_day.date

),

with_trailing as (

    select
        *,
        sum(cogs) over last_window as cogs_trailing,
        avg(inventory_value) over last_window as inventory_value_trailing_mean,
        sum(returned_units) over last_window as returned_units_trailing,
        sum(units) over last_window as units_trailing
    from daily
    window last_window as (
        order by date
        range between interval '{{ trailing_days - 1 }} days' preceding and current row
    )

),

final as (

    select
        date,
        {{ round_to('gmv') }} as gmv,
        orders,
        -- from the rounded gmv: a sum of floats in another order must not move the rounding
        {{ round_to(round_to('gmv') ~ ' / nullif(orders, 0)') }} as aov,
        units,
        active_skus,
        cast(stockout_skus as double precision) / nullif(stockout_known_skus, 0) as stockout_rate,
        lost_units,
        cast(units as double precision) / nullif(units + lost_units, 0) as fill_rate,
        inventory_value,
        cogs_trailing * (365.0 / {{ trailing_days }}) / nullif(inventory_value_trailing_mean, 0)
            as inventory_turnover,
        cast(returned_units_trailing as double precision) / nullif(units_trailing, 0) as return_rate,
        {{ audit_columns(w) }}
    from with_trailing
    where {{ in_window('date', w, 'write') }}

)

select * from final
