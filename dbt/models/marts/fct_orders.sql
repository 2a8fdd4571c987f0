{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        on_schema_change='fail',
    )
}}

{#-
    promo_units comes from fct_prices_daily's promotion days, so a promotion landed for past days
    rewrites the orders from its start on (open-ended, like fct_prices_daily itself).
-#}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'order_lines'), 'date_column': 'order_date'},
        {'relation': source('raw', 'promotions'), 'date_column': 'start_date', 'open_ended': true},
    ],
) -%}

with

order_lines as (

    select * from {{ ref('stg_shop__order_lines') }}
    where {{ in_window('order_date', w, 'write') }}

),

promo_days as (

    select date, sku_id
    from {{ ref('fct_prices_daily') }}
    where is_promo and {{ in_window('date', w, 'write') }}

),

lines as (

    select
        order_lines.*,
        promo_days.sku_id is not null as is_promo
    from order_lines
    left join promo_days
        -- weekly sales: the promotion of the order day's week
        on {{ period_start('order_lines.order_date') }} = promo_days.date
        and order_lines.sku_id = promo_days.sku_id

),

final as (

    select
        order_id,
        -- one customer, one channel, one day per order (contract); min() only picks a value
        min(order_date) as order_date,
        min(customer_id) as customer_id,
        min(channel) as channel,
        count(*) as lines,
        cast(sum(quantity) as bigint) as units,
        -- units bought while the SKU was on promotion: customer features read them from here, not
        -- by joining every order line of the history to the daily prices each day
        cast(sum(case when is_promo then quantity else 0 end) as bigint) as promo_units,
        {{ round_to('sum(line_value)') }} as order_value,
        cast(sum(case when unit_price is null then 1 else 0 end) as bigint) as lines_missing_price,
        {{ audit_columns(w) }}
    from lines
    group by order_id

)

select * from final
