{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id'],
        on_schema_change='fail',
    )
}}

{#-
    A table, not a view: fct_prices_daily and each of this model's three data tests re-ran the as-of
    join over the whole SKU x day grid (7 s per test on the large tier). A new promotion rewrites its
    SKU-days from its start (open-ended window: its end date may lie in any later batch's days).
-#}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'promotions'), 'date_column': 'start_date', 'open_ended': true},
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
    ],
) -%}

with

spine as (

    -- period_end: the period's last day (the day itself on the daily grain)
    select
        *,
        {{ 'date + 6' if is_weekly() else 'date' }} as period_end
    from {{ ref('int_sku_days_spined') }}
    where {{ in_window('date', w, 'write') }}

),

promotions as (

    select * from {{ ref('stg_shop__promotions') }}

),

latest_started as (

    -- at most one promotion per SKU and day (contract): the latest one started on or before the
    -- day; on the weekly grain, on or before the week's last day, so a promotion that starts
    -- mid-week promotes its week
    select
        spine.date,
        spine.sku_id,
        promotions.promo_id,
        promotions.promo_type,
        promotions.discount_pct,
        promotions.start_date,
        promotions.end_date
    from spine
    {{ asof_left_join('promotions', 'promotions', 'spine', ['sku_id'], 'period_end', 'start_date') }}

),

final as (

    select
        date,
        sku_id,
        promo_id,
        promo_type,
        discount_pct,
        -- weekly: a promotion that starts within the week is on its day 1 in that week
        greatest(date - start_date + 1, 1) as promo_day_number,
        end_date - start_date + 1 as promo_length_days,
        {{ audit_columns(w) }}
    from latest_started
    where date <= end_date

)

select * from final
