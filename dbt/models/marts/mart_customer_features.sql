{%- set run_date = date_var('run_date') -%}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

all_orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    -- features as of the run date (default: the last order day): nothing later is visible
    {% if run_date -%}
    select cast('{{ run_date }}' as date) as as_of_date
    {%- else -%}
    select max(order_date) as as_of_date from all_orders
    {%- endif %}

),

orders as (

    select all_orders.*
    from all_orders
    cross join as_of
    where all_orders.order_date <= as_of.as_of_date

),

returns as (

    select returns.*
    from {{ ref('stg_shop__returns') }} as returns
    cross join as_of
    where returns.return_date <= as_of.as_of_date

),

tickets as (

    select tickets.*
    from {{ ref('stg_shop__service_tickets') }} as tickets
    cross join as_of
    where tickets.created_date <= as_of.as_of_date

),

browsing as (

    select browsing.*
    from {{ ref('stg_shop__browsing_events') }} as browsing
    cross join as_of
    where browsing.event_date <= as_of.as_of_date

),

order_summary as (

    select
        orders.customer_id,
        max(orders.order_date) as last_order_date,
        count(*) as frequency,
        sum(orders.order_value) as monetary,
        sum(orders.units) as units,
        cast(sum(orders.promo_units) as double precision) / nullif(sum(orders.units), 0) as promo_unit_share,
        cast(sum(case when orders.order_date > as_of.as_of_date - 90 then 1 else 0 end) as bigint) as orders_last_90d,
        cast(sum(case when orders.channel = 'app' then 1 else 0 end) as double precision) / count(*)
            as app_order_share
    from orders
    cross join as_of
    group by orders.customer_id

),

return_summary as (

    select
        customer_id,
        count(*) as returns,
        cast(sum(quantity) as bigint) as returned_units,
        sum(refund_amount) as refunded_amount
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

browsing_summary as (

    select
        browsing.customer_id,
        cast(sum(case when browsing.event_type = 'view' then 1 else 0 end) as bigint) as views,
        cast(sum(case when browsing.event_type = 'add_to_cart' then 1 else 0 end) as bigint) as add_to_carts,
        cast(sum(
            case when browsing.event_type = 'view' and browsing.event_date > as_of.as_of_date - 30 then 1 else 0 end
        ) as bigint) as views_last_30d
    from browsing
    cross join as_of
    group by browsing.customer_id

),

rfm as (

    -- scores 1-5 from the percent rank among customers who have ordered; ties share a score,
    -- so the scoring is deterministic. Recency ranks descending: the most recent buyers score 5.
    select
        order_summary.*,
        as_of.as_of_date - order_summary.last_order_date as recency_days,
        cast(least(5, 1 + floor(5 * percent_rank() over (
            order by as_of.as_of_date - order_summary.last_order_date desc
        ))) as integer) as r_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by order_summary.frequency))) as integer)
            as f_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by order_summary.monetary))) as integer)
            as m_score
    from order_summary
    cross join as_of

),

final as (

    select
        customers.customer_id,
        as_of.as_of_date,
        customers.region,
        customers.city_tier,
        customers.age_band,
        customers.preferred_channel,
        as_of.as_of_date - customers.signup_date as tenure_days,
        rfm.recency_days,
        coalesce(rfm.frequency, 0) as frequency,
        coalesce(rfm.monetary, 0) as monetary,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        cast(rfm.r_score as varchar) || cast(rfm.f_score as varchar) || cast(rfm.m_score as varchar)
            as rfm_cell,
        rfm.monetary / nullif(rfm.frequency, 0) as aov,
        coalesce(rfm.orders_last_90d, 0) as orders_last_90d,
        coalesce(return_summary.returns, 0) as returns,
        coalesce(return_summary.returned_units, 0) as returned_units,
        coalesce(return_summary.refunded_amount, 0) as refunded_amount,
        cast(coalesce(return_summary.returned_units, 0) as double precision) / nullif(rfm.units, 0)
            as return_rate,
        coalesce(ticket_summary.tickets, 0) as tickets,
        coalesce(ticket_summary.open_tickets, 0) as open_tickets,
        rfm.promo_unit_share,
        rfm.app_order_share,
        1 - rfm.app_order_share as web_order_share,
        coalesce(browsing_summary.views, 0) as views,
        coalesce(browsing_summary.add_to_carts, 0) as add_to_carts,
        coalesce(browsing_summary.views_last_30d, 0) as views_last_30d
    from customers
    cross join as_of
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
