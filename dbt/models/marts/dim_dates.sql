{%- set events = ['618', 'singles_day', 'double_12', 'spring_festival'] -%}
{%- set phases = ['pre', 'peak', 'post'] -%}

with

calendar as (

    select * from {{ ref('shopping_calendar') }}

),

calendar_years as (

    select min(year) as first_year, max(year) as last_year
    from calendar

),

fact_dates as (

    -- every business date landed (plans included: own prices and promotions may lie ahead)
    {%- set dated = _batch_date_columns() %}
    {%- do dated.update({'promotions_end': 'end_date'}) %}
    {%- for table, column in dated.items() %}
    select min(cast({{ column }} as date)) as first_day, max(cast({{ column }} as date)) as last_day
    from {{ source('raw', 'promotions' if table == 'promotions_end' else table) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

bounds as (

    -- the seed's years (2018-2030), widened to every year the data holds and one year past its
    -- last: older history must not fail the relationships tests to dim_dates, and forecasts and
    -- plans look ahead. Days of years the seed does not know have unknown events (nulls).
    select
        cast(cast(least(calendar_years.first_year, extract(year from min(fact_dates.first_day)))
            as integer) as varchar) || '-01-01' as first_day,
        cast(cast(greatest(calendar_years.last_year, extract(year from max(fact_dates.last_day)) + 1)
            as integer) as varchar) || '-12-31' as last_day
    from calendar_years
    cross join fact_dates
    group by calendar_years.first_year, calendar_years.last_year

),

days as (

    select spine.date
    from bounds
    cross join lateral (
        {{ date_spine_between('cast(bounds.first_day as date)', 'cast(bounds.last_day as date)') }}
    ) as spine

),

shopping_events as (

    select * from calendar where event_type = 'shopping_event'

),

public_holidays as (

    select * from calendar where event_type = 'public_holiday'

),

covered_years as (

    select distinct year from calendar

),

spring_festivals as (

    select distinct peak_date as festival_day
    from calendar
    where event_name = 'spring_festival'

),

spring_festival_distance as (

    select
        days.date,
        min(case when spring_festivals.festival_day >= days.date then spring_festivals.festival_day end)
            as next_festival_day,
        max(case when spring_festivals.festival_day <= days.date then spring_festivals.festival_day end)
            as previous_festival_day
    from days
    cross join spring_festivals
    group by days.date

),

final as (

    select
        days.date,
        cast(extract(isodow from days.date) as integer) as day_of_week,
        extract(isodow from days.date) in (6, 7) as is_weekend,
        cast(extract(day from days.date) as integer) as day_of_month,
        cast(extract(doy from days.date) as integer) as day_of_year,
        cast(extract(week from days.date) as integer) as iso_week,
        cast(extract(month from days.date) as integer) as month,
        cast(extract(quarter from days.date) as integer) as quarter,
        cast(extract(year from days.date) as integer) as year,
        cast(date_trunc('week', days.date) as date) as week_start,
        cast(date_trunc('month', days.date) as date) as month_start,
        covered.year is not null as has_known_events,
        shopping_events.event_name as shopping_event,
        shopping_events.phase as event_phase,
        shopping_events.peak_date - days.date as days_to_event_peak,
        -- outside the seed's years a day's events are unknown: null, not "no event"
        {%- for event in events %}
        {%- for phase in phases %}
        case
            when covered.year is not null
                then coalesce(shopping_events.event_name = '{{ event }}' and shopping_events.phase = '{{ phase }}', false)
        end as is_{{ 'event_' ~ event if event[0] in '0123456789' else event }}_{{ phase }},
        {%- endfor %}
        {%- endfor %}
        case when covered.year is not null then public_holidays.event_name is not null end as is_public_holiday,
        public_holidays.event_name as holiday_name,
        spring_festival_distance.next_festival_day - days.date as days_to_spring_festival,
        days.date - spring_festival_distance.previous_festival_day as days_from_spring_festival
    from days
    left join covered_years as covered
        on cast(extract(year from days.date) as integer) = covered.year
    left join shopping_events
        on days.date between shopping_events.start_date and shopping_events.end_date
    left join public_holidays
        on days.date between public_holidays.start_date and public_holidays.end_date
    left join spring_festival_distance
        on days.date = spring_festival_distance.date

)

select * from final
