{%- set metrics = ['search_index', 'mentions', 'sentiment', 'video_views'] -%}

with

social_trends as (

    select * from {{ ref('stg_shop__social_trends') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

categories as (

    select distinct category_l2 from social_trends

),

bounds as (

    select min(date) as first_day, max(date) as last_day from social_trends

),

grid as (

    select
        dates.date,
        categories.category_l2
    from dates
    cross join bounds
    cross join categories
    where dates.date between bounds.first_day and bounds.last_day

),

joined as (

    select
        grid.date,
        grid.category_l2,
        {%- for m in metrics %}
        social_trends.{{ m }},
        {%- endfor %}
        social_trends.date is null as is_row_missing
    from grid
    left join social_trends
        on grid.date = social_trends.date
        and grid.category_l2 = social_trends.category_l2

),

final as (

    select
        date,
        category_l2,
        {%- for m in metrics %}
        {{ carry_forward(m, 'category_l2', 'date') }} as {{ m }},
        {%- endfor %}
        (
            is_row_missing
            {%- for m in metrics %} or {{ m }} is null{% endfor %}
        ) as is_imputed
    from joined

)

select * from final
