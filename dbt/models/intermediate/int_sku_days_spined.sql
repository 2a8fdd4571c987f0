with

products as (

    select * from {{ ref('dim_products') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

sales_days as (

    -- the data window: first to last day with sales facts
    select
        min(date) as first_day,
        max(date) as last_day
    from {{ ref('fct_sales_daily') }}

),

final as (

    select
        dates.date,
        products.sku_id,
        dates.date - products.launch_date as days_since_launch
    from products
    cross join sales_days
    inner join dates
        on dates.date >= coalesce(greatest(products.launch_date, sales_days.first_day), sales_days.first_day)
        and dates.date <= sales_days.last_day

)

select * from final
