{%- set metrics = ['temp_c', 'precip_mm', 'humidity_pct', 'wind_kph', 'aqi', 'is_extreme'] -%}

with

weather as (

    select * from {{ ref('stg_shop__weather') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

regions as (

    select distinct region from weather

),

bounds as (

    select min(date) as first_day, max(date) as last_day from weather

),

grid as (

    -- every region every day, so a missing row is imputed like a missing value
    select
        dates.date,
        regions.region
    from dates
    cross join bounds
    cross join regions
    where dates.date between bounds.first_day and bounds.last_day

),

joined as (

    select
        grid.date,
        grid.region,
        {%- for m in metrics %}
        weather.{{ m }},
        {%- endfor %}
        weather.date is null as is_row_missing
    from grid
    left join weather
        on grid.date = weather.date
        and grid.region = weather.region

),

final as (

    select
        date,
        region,
        {%- for m in metrics %}
        {{ carry_forward(m, 'region', 'date') }} as {{ m }},
        {%- endfor %}
        (
            is_row_missing
            {%- for m in metrics %} or {{ m }} is null{% endfor %}
        ) as is_imputed
    from joined

)

select * from final
