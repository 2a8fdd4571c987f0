with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

order_summary as (

    select
        customer_id,
        first_order_date,
        last_order_date,
        orders as lifetime_orders,
        order_value as lifetime_value
    from {{ ref('int_customer_orders_summarized') }}

),

final as (

    select
        customers.customer_id,
        customers.region,
        customers.city_tier,
        customers.age_band,
        coalesce(customers.signup_date, order_summary.first_order_date) as signup_date,
        customers.signup_date is null and order_summary.first_order_date is not null
            as is_signup_date_imputed,
        customers.preferred_channel,
        order_summary.first_order_date,
        order_summary.last_order_date,
        coalesce(order_summary.lifetime_orders, 0) as lifetime_orders,
        coalesce(order_summary.lifetime_value, 0) as lifetime_value
    from customers
    left join order_summary
        on customers.customer_id = order_summary.customer_id

)

select * from final
