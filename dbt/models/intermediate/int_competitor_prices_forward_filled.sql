{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id', 'competitor'],
        on_schema_change='fail',
    )
}}

{#-
    A table, not a view: fct_prices_daily and this model's data tests each re-ran the as-of join over
    the whole SKU x competitor x day grid (66-123 s per test on the large tier). An observation holds
    until the next one, so a new one rewrites its days to the end (open-ended window).
-#}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'competitor_prices'), 'date_column': 'effective_date', 'open_ended': true},
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
    ],
) -%}

with

spine as (

    select * from {{ ref('int_sku_days_spined') }}
    where {{ in_window('date', w, 'write') }}

),

competitor_prices as (

    select * from {{ ref('stg_shop__competitor_prices') }}

),

coverage as (

    -- a competitor carries a SKU from its first observed price on
    select
        sku_id,
        competitor,
        min(effective_date) as first_observed
    from competitor_prices
    group by sku_id, competitor

),

grid as (

    select
        spine.date,
        spine.sku_id,
        coverage.competitor
    from spine
    inner join coverage
        on spine.sku_id = coverage.sku_id
        and spine.date >= coverage.first_observed

),

final as (

    select
        grid.date,
        grid.sku_id,
        grid.competitor,
        competitor_prices.competitor_price,
        competitor_prices.effective_date as observed_on,
        grid.date - competitor_prices.effective_date as days_since_observed,
        {{ audit_columns(w) }}
    from grid
    {{ asof_left_join(
        'competitor_prices', 'competitor_prices', 'grid', ['sku_id', 'competitor'], 'date', 'effective_date'
    ) }}

)

select * from final
