{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
        on_schema_change='fail',
    )
}}

{#-
    Lifetime order totals per customer, so that the customer marts do not aggregate every order of
    the history each day. An incremental run recomputes, over all their orders, only the customers
    with an order that fct_orders wrote since this model last ran (its `_written_at` stamp): exact
    for whatever fct_orders changes in a customer's orders (a correction, a back-dated promotion),
    at the cost of a day's customers. Orders belong to one customer by contract; a correction that
    moved an order to another customer would leave the first one's totals stale until a
    `--full-refresh` of this model.
-#}
with

orders as not materialized (

    -- read twice (touched customers, then their totals): DuckDB would otherwise copy it whole
    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

{% if is_incremental() -%}
touched as (

    select distinct customer_id
    from orders
    where _written_at > (select max(_source_written_at) from {{ this }})

),
{%- endif %}

final as (

    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as orders,
        {{ round_to('sum(order_value)') }} as order_value,
        cast(sum(units) as bigint) as units,
        cast(sum(promo_units) as bigint) as promo_units,
        cast(sum(case when channel = 'app' then 1 else 0 end) as bigint) as app_orders,
        -- the newest fct_orders stamp this model has seen: the next run starts above it
        max(_written_at) as _source_written_at
    from orders
    {% if is_incremental() -%}
    where customer_id in (select customer_id from touched)
    {%- endif %}
    group by customer_id

)

select * from final
