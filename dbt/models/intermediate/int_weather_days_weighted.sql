{%- set metrics = ['temp_c', 'precip_mm', 'humidity_pct', 'wind_kph', 'aqi'] -%}

with

weather as (

    select * from {{ ref('int_weather_days_imputed') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

signups as (

    select
        region,
        signup_date,
        count(*) as customers
    from customers
    group by region, signup_date

),

customers_landed as (

    select exists (select 1 from customers) as has_rows

),

region_weights as (

    -- customers per region signed up by that day (a customer without a signup date counts from
    -- the start): the weights follow the customer base as it was, so history never changes.
    -- Without a customer master (an optional table) every region weighs the same.
    select
        weather.date,
        weather.region,
        case when customers_landed.has_rows then sum(signups.customers) else 1 end as customers
    from weather
    cross join customers_landed
    left join signups
        on weather.region = signups.region
        and (signups.signup_date <= weather.date or signups.signup_date is null)
    group by weather.date, weather.region, customers_landed.has_rows
    having not customers_landed.has_rows or sum(signups.customers) is not null

),

weighted as (

    select
        weather.date,
        {%- for m in metrics %}
        sum(weather.{{ m }} * cast(region_weights.customers as double precision))
            / nullif(sum(case when weather.{{ m }} is not null then region_weights.customers end), 0)
            as {{ m }},
        {%- endfor %}
        cast(sum(case when weather.is_extreme then region_weights.customers else 0 end) as double precision)
            / nullif(sum(case when weather.is_extreme is not null then region_weights.customers end), 0)
            as extreme_weather_share,
        cast(sum(case when weather.is_imputed then region_weights.customers else 0 end) as double precision)
            / nullif(sum(region_weights.customers), 0) as imputed_weight_share
    from weather
    inner join region_weights
        on weather.date = region_weights.date
        and weather.region = region_weights.region
    group by weather.date

),

final as (

    select * from weighted

)

select * from final
