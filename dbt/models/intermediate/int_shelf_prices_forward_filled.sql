{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id'],
        on_schema_change='fail',
    )
}}

{#-
    A table, not a view: fct_prices_daily and this model's data tests each re-ran the as-of join over
    the whole SKU x day grid (45 s per test on the large tier). A price change holds until the next
    one, so a new change point rewrites its SKU-days to the end (open-ended window).
-#}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'own_prices'), 'date_column': 'effective_date', 'open_ended': true},
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
    ],
) -%}

with

spine as (

    select * from {{ ref('int_sku_days_spined') }}
    where {{ in_window('date', w, 'write') }}

),

own_prices as (

    select * from {{ ref('stg_shop__own_prices') }}

),

final as (

    select
        spine.date,
        spine.sku_id,
        own_prices.shelf_price,
        own_prices.effective_date as shelf_price_since,
        {{ audit_columns(w) }}
    from spine
    {{ asof_left_join('own_prices', 'own_prices', 'spine', ['sku_id'], 'date', 'effective_date') }}

)

select * from final
