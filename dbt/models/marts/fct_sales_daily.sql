{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id', 'channel'],
        on_schema_change='fail',
    )
}}

{#- Weekly sales have one value a week: a longer baseline, and its minimum history in weeks. -#}
{%- set baseline_weeks = var('outlier_weekly_baseline_weeks') if is_weekly() else var('outlier_baseline_weeks') -%}
{%- set min_history = var('outlier_weekly_min_history') if is_weekly() else var('outlier_min_history_days') -%}
{#- a day's baseline spans the full weeks before its own week: up to 7 * weeks + 6 days back -#}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
        {'relation': source('raw', 'inventory_snapshots'), 'date_column': 'date'},
    ],
    lookback_days=7 * baseline_weeks + 6,
) -%}

with

sales as not materialized (

    select * from {{ ref('stg_shop__daily_sales') }}
    where {{ in_window('date', w, 'read') }}

),

inventory as (

    -- stock on hand, only for the SKU-days whose stock-out flag did not land (it is imputed from
    -- it): summing every snapshot and joining it to every sales row took a minute on the large tier
    select
        inventory.date,
        inventory.sku_id,
        sum(inventory.on_hand_units) as on_hand_units
    from {{ ref('stg_shop__inventory_snapshots') }} as inventory
    where {{ in_window('inventory.date', w, 'write') }}
        and exists (
            select 1
            from sales
            where sales.stockout is null
                and sales.date{{ " + 6" if is_weekly() }} = inventory.date
                and sales.sku_id = inventory.sku_id
        )
    group by inventory.date, inventory.sku_id

),

baselines as (

    -- per SKU and channel series: median and MAD over the full weeks before the day's week
    {{ weekly_robust_baselines(
        'sales', ['sku_id', 'channel'], 'date', {'units': 'units', 'price': 'price_paid'}, baseline_weeks,
        first_week=("cast('" ~ w.write_from ~ "' as date)") if w.write_from else none
    ) }}

),

final as (

    select
        sales.date,
        sales.sku_id,
        sales.channel,
        sales.units,
        sales.revenue,
        sales.price_paid,
        -- no stock-out flag landed: out of stock when the day (weekly sales: the week's last day)
        -- ended with nothing on hand
        coalesce(sales.stockout, inventory.on_hand_units = 0) as stockout,
        sales.stockout is null as is_stockout_imputed,
        -- counts are discrete and often intermittent (MAD 0): a robust SD of at least one unit
        {{ robust_outlier_flag(
            'sales.units', 'baselines.units_median', 'baselines.units_mad', 1.0, 'baselines.baseline_days',
            min_history
        ) }} as is_units_outlier,
        -- shelf prices sit still for weeks (MAD 0): a robust SD of at least 15% of the median price,
        -- so promotions (up to -50%) pass and only implausible prices are flagged
        {{ robust_outlier_flag(
            'sales.price_paid', 'baselines.price_median', 'baselines.price_mad',
            '0.15 * baselines.price_median', 'baselines.baseline_days', min_history
        ) }} as is_price_outlier,
        baselines.units_median as units_baseline_median,
        baselines.units_mad as units_baseline_mad,
        baselines.price_median as price_baseline_median,
        baselines.price_mad as price_baseline_mad,
        sales.has_missing_values,
        {{ audit_columns(w) }}
    from sales
    left join baselines
        on sales.sku_id = baselines.sku_id
        and sales.channel = baselines.channel
        and cast(date_trunc('week', sales.date) as date) = baselines.baseline_week
    left join inventory
        on sales.sku_id = inventory.sku_id
        and sales.date{{ " + 6" if is_weekly() }} = inventory.date
    where {{ in_window('sales.date', w, 'write') }}

)

select * from final
