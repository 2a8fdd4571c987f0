{%- set run_date = date_var('run_date') -%}
{#-
    Features as of the run date (default: the last order day): nothing later is visible. A literal
    date, not a one-row CTE, lets DuckDB skip row groups by their statistics, even through the views.
-#}
{%- set as_of_date = "cast('" ~ run_date ~ "' as date)" if run_date
    else "(select max(order_date) from " ~ ref('fct_orders') ~ ")" -%}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as not materialized (

    -- read twice (backfilled customers, last 90 days): DuckDB would otherwise copy it whole
    select * from {{ ref('fct_orders') }}
    where order_date <= {{ as_of_date }}

),

returns as (

    select * from {{ ref('stg_shop__returns') }}
    where return_date <= {{ as_of_date }}

),

tickets as (

    select * from {{ ref('stg_shop__service_tickets') }}
    where created_date <= {{ as_of_date }}

),

browsing as not materialized (

    -- read twice, like orders
    select * from {{ ref('stg_shop__browsing_events') }}
    where event_date <= {{ as_of_date }}

),

landed as (

    -- which optional tables hold any row: a count from one never landed is unknown (null), not 0
    select
        exists (select 1 from {{ source('raw', 'order_lines') }}) as has_orders,
        exists (select 1 from {{ source('raw', 'returns') }}) as has_returns,
        exists (select 1 from {{ source('raw', 'service_tickets') }}) as has_tickets,
        exists (select 1 from {{ source('raw', 'browsing_events') }}) as has_browsing,
        -- channel shares only for channels the data has; web = 1 - app only when there is no other
        exists (
            select 1 from {{ source('raw', 'order_lines') }} where lower(trim(channel)) = 'app'
        ) as has_app_orders,
        exists (
            select 1 from {{ source('raw', 'order_lines') }} where lower(trim(channel)) = 'web'
        ) as has_web_orders,
        exists (
            select 1 from {{ source('raw', 'order_lines') }} where lower(trim(channel)) not in ('app', 'web')
        ) as has_other_orders

),

order_totals as (

    -- Lifetime totals are the totals as of the date for every customer whose last order is not
    -- after it; the others (a backfill of an earlier date) are summed from their orders.
    select customer_id, last_order_date, orders, order_value, units, promo_units, app_orders
    from {{ ref('int_customer_orders_summarized') }}
    where last_order_date <= {{ as_of_date }}

    union all

    select
        customer_id,
        max(order_date) as last_order_date,
        count(*) as orders,
        {{ round_to('sum(order_value)') }} as order_value,
        cast(sum(units) as bigint) as units,
        cast(sum(promo_units) as bigint) as promo_units,
        cast(sum(case when channel = 'app' then 1 else 0 end) as bigint) as app_orders
    from orders
    where customer_id in (
        select customer_id
        from {{ ref('int_customer_orders_summarized') }}
        where last_order_date > {{ as_of_date }}
    )
    group by customer_id

),

recent_orders as (

    select customer_id, count(*) as orders_last_90d
    from orders
    where order_date > {{ as_of_date }} - 90
    group by customer_id

),

order_summary as (

    select
        order_totals.customer_id,
        order_totals.last_order_date,
        order_totals.orders as frequency,
        order_totals.order_value as monetary,
        order_totals.units,
        cast(order_totals.promo_units as double precision) / nullif(order_totals.units, 0) as promo_unit_share,
        coalesce(recent_orders.orders_last_90d, 0) as orders_last_90d,
        cast(order_totals.app_orders as double precision) / order_totals.orders as app_order_share
    from order_totals
    left join recent_orders
        on order_totals.customer_id = recent_orders.customer_id

),

return_summary as (

    select
        customer_id,
        count(*) as returns,
        cast(sum(quantity) as bigint) as returned_units,
        {{ round_to('sum(refund_amount)') }} as refunded_amount
    from returns
    group by customer_id

),

ticket_summary as (

    select
        customer_id,
        count(*) as tickets,
        cast(sum(case when is_open then 1 else 0 end) as bigint) as open_tickets
    from tickets
    group by customer_id

),

browsing_totals as (

    -- as the orders: lifetime counts unless the customer browsed after the date
    select customer_id, views, add_to_carts
    from {{ ref('int_customer_browsing_summarized') }}
    where last_event_date <= {{ as_of_date }}

    union all

    select
        customer_id,
        cast(sum(case when event_type = 'view' then 1 else 0 end) as bigint) as views,
        cast(sum(case when event_type = 'add_to_cart' then 1 else 0 end) as bigint) as add_to_carts
    from browsing
    where customer_id in (
        select customer_id
        from {{ ref('int_customer_browsing_summarized') }}
        where last_event_date > {{ as_of_date }}
    )
    group by customer_id

),

recent_views as (

    select customer_id, count(*) as views_last_30d
    from browsing
    where event_type = 'view' and event_date > {{ as_of_date }} - 30
    group by customer_id

),

browsing_summary as (

    select
        browsing_totals.customer_id,
        browsing_totals.views,
        browsing_totals.add_to_carts,
        coalesce(recent_views.views_last_30d, 0) as views_last_30d
    from browsing_totals
    left join recent_views
        on browsing_totals.customer_id = recent_views.customer_id

),

rfm as (

    -- scores 1-5 from the percent rank among customers who have ordered; ties share a score,
    -- so the scoring is deterministic. Recency ranks descending: the most recent buyers score 5.
    select
        order_summary.*,
        {{ as_of_date }} - order_summary.last_order_date as recency_days,
        cast(least(5, 1 + floor(5 * percent_rank() over (
            order by {{ as_of_date }} - order_summary.last_order_date desc
        ))) as integer) as r_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by order_summary.frequency))) as integer)
            as f_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by order_summary.monetary))) as integer)
            as m_score
    from order_summary

),

final as (

    select
        customers.customer_id,
        {{ as_of_date }} as as_of_date,
        customers.region,
        customers.city_tier,
        customers.age_band,
        customers.preferred_channel,
        {{ as_of_date }} - customers.signup_date as tenure_days,
        rfm.recency_days,
        case when landed.has_orders then coalesce(rfm.frequency, 0) end as frequency,
        case when landed.has_orders then coalesce(rfm.monetary, 0) end as monetary,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        cast(rfm.r_score as varchar) || cast(rfm.f_score as varchar) || cast(rfm.m_score as varchar)
            as rfm_cell,
        rfm.monetary / nullif(rfm.frequency, 0) as aov,
        case when landed.has_orders then coalesce(rfm.orders_last_90d, 0) end as orders_last_90d,
        case when landed.has_returns then coalesce(return_summary.returns, 0) end as returns,
        case when landed.has_returns then coalesce(return_summary.returned_units, 0) end as returned_units,
        case when landed.has_returns then coalesce(return_summary.refunded_amount, 0) end as refunded_amount,
        case when landed.has_returns then
            cast(coalesce(return_summary.returned_units, 0) as double precision) / nullif(rfm.units, 0)
        end as return_rate,
        case when landed.has_tickets then coalesce(ticket_summary.tickets, 0) end as tickets,
        case when landed.has_tickets then coalesce(ticket_summary.open_tickets, 0) end as open_tickets,
        rfm.promo_unit_share,
        case when landed.has_app_orders then rfm.app_order_share end as app_order_share,
        case
            when landed.has_web_orders and not landed.has_other_orders then 1 - rfm.app_order_share
        end as web_order_share,
        case when landed.has_browsing then coalesce(browsing_summary.views, 0) end as views,
        case when landed.has_browsing then coalesce(browsing_summary.add_to_carts, 0) end as add_to_carts,
        case when landed.has_browsing then coalesce(browsing_summary.views_last_30d, 0) end as views_last_30d
    from customers
    cross join landed
    left join rfm
        on customers.customer_id = rfm.customer_id
    left join return_summary
        on customers.customer_id = return_summary.customer_id
    left join ticket_summary
        on customers.customer_id = ticket_summary.customer_id
    left join browsing_summary
        on customers.customer_id = browsing_summary.customer_id

)

select * from final
