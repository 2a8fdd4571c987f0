with

products as (

    select * from {{ ref('dim_products') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

sales_days as (

    -- the data window: first to last period with sales facts
    select
        min(date) as first_day,
        max(date) as last_day
    from {{ ref('fct_sales_daily') }}

),

periods as (

    -- the days a sales row can be dated: every day, or (weekly sales) the weeks' first days
    select date
    from dates
    {%- if is_weekly() %}
    where day_of_week = {{ week_start_isodow() }}
    {%- endif %}

),

final as (

    select
        periods.date,
        products.sku_id,
        -- 0 in a launch week that started before the launch day
        greatest(periods.date - products.launch_date, 0) as days_since_launch
    from products
    cross join sales_days
    inner join periods
        -- from the SKU's launch period (a week launched mid-week counts from its first day)
        on periods.date >= coalesce(
            greatest({{ period_start('products.launch_date') }}, sales_days.first_day), sales_days.first_day
        )
        and periods.date <= sales_days.last_day

)

select * from final
