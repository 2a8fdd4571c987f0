with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

customer_codes as (

    select id, code from {{ ref('stg_shop__id_codes') }}
    where id_column = 'customer_id'

),

orders_landed as (

    {{ source_has_rows(source('raw', 'order_lines')) }}

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
        -- the retailer's own code where the id landed as one ('C000123'), else the id as text
        coalesce(customer_codes.code, cast(customers.customer_id as varchar)) as customer_code,
        customers.region,
        customers.city_tier,
        customers.age_band,
        coalesce(customers.signup_date, order_summary.first_order_date) as signup_date,
        customers.signup_date is null and order_summary.first_order_date is not null
            as is_signup_date_imputed,
        customers.preferred_channel,
        order_summary.first_order_date,
        order_summary.last_order_date,
        -- null, not 0, where no order line was ever landed (an optional table)
        case when orders_landed.has_rows then coalesce(order_summary.lifetime_orders, 0) end
            as lifetime_orders,
        case when orders_landed.has_rows then coalesce(order_summary.lifetime_value, 0) end
            as lifetime_value
    from customers
    cross join orders_landed
    left join customer_codes
        on customers.customer_id = customer_codes.id
    left join order_summary
        on customers.customer_id = order_summary.customer_id

)

select * from final
