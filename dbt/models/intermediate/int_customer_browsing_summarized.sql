{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
        on_schema_change='fail',
    )
}}

{#-
    Lifetime browsing counts per customer, so that mart_customer_features does not aggregate every
    event of the history each day. An incremental run recomputes, over all their events, the
    customers with an event on the business days of the new raw batches (macros/incremental_window.sql).
    Like the orders, an event moved to another customer by a correction needs a `--full-refresh`.
-#}
{%- set w = incremental_window(
    sources=[{'relation': source('raw', 'browsing_events'), 'date_column': 'event_date'}],
) -%}

with

events as not materialized (

    -- read twice (touched customers, then their counts): DuckDB would otherwise copy it whole
    select * from {{ ref('stg_shop__browsing_events') }}
    where customer_id is not null

),

{% if w.mode != 'full' -%}
touched as (

    select distinct customer_id
    from events
    where {{ in_window('event_date', w, 'write') }}

),
{%- endif %}

final as (

    select
        customer_id,
        cast(sum(case when event_type = 'view' then 1 else 0 end) as bigint) as views,
        cast(sum(case when event_type = 'add_to_cart' then 1 else 0 end) as bigint) as add_to_carts,
        max(event_date) as last_event_date,
        {{ audit_columns(w) }}
    from events
    {% if w.mode != 'full' -%}
    where customer_id in (select customer_id from touched)
    {%- endif %}
    group by customer_id

)

select * from final
