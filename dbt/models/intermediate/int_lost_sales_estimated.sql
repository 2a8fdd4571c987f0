{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id'],
        on_schema_change='fail',
    )
}}

{%- set trailing_days = var('trailing_window_days') -%}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
        {'relation': source('raw', 'inventory_snapshots'), 'date_column': 'date'},
    ],
    lookback_days=trailing_days,
) -%}

with

sales as (

    select * from {{ ref('fct_sales_daily') }}
    where {{ in_window('date', w, 'read') }}

),

sku_days as (

    select
        date,
        sku_id,
        cast(sum(units) as bigint) as units,
        -- null, not 0, where the SKU-period has no row of the channel (a retailer selling in one
        -- channel has no app or web sales at all)
        cast(sum(case when channel = 'app' then units end) as bigint) as units_app,
        cast(sum(case when channel = 'web' then units end) as bigint) as units_web,
        sum(revenue) as revenue,
        -- stock is shared by the channels: out of stock on any channel means out of stock; unknown
        -- where no channel's flag is known (no stock-out flag landed, no inventory to impute it from)
        max(case when stockout then 1 when not stockout then 0 end) = 1 as stockout,
        max(case when is_units_outlier then 1 else 0 end) = 1 as is_units_outlier
    from sales
    group by date, sku_id

),

baseline as (

    select
        *,
        -- demand when stock is available: mean units over the in-stock days of the trailing window
        avg(case when not stockout then cast(units as double precision) end) over (
            partition by sku_id
            order by date
            range between interval '{{ trailing_days }} days' preceding and interval '1 day' preceding
        ) as instock_mean_units
    from sku_days

),

final as (

    select
        date,
        sku_id,
        units,
        units_app,
        units_web,
        revenue,
        stockout,
        is_units_outlier,
        instock_mean_units,
        -- censored demand on a stock-out day: what an in-stock day sold, less what was still sold;
        -- no in-stock day in the window -> no estimate (0); stock-out unknown -> unknown
        case
            when stockout then greatest(0, coalesce(instock_mean_units, 0) - units)
            when not stockout then 0
        end as lost_units,
        {{ audit_columns(w) }}
    from baseline
    where {{ in_window('date', w, 'write') }}

)

select * from final
