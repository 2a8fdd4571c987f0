{%- set events = ['618', 'singles_day', 'double_12', 'spring_festival'] -%}
{%- set phases = ['pre', 'peak', 'post'] -%}

with

calendar as (

    select * from {{ ref('shopping_calendar') }}

),

bounds as (

    -- the spine covers every year the shopping calendar knows; a fact outside it fails the
    -- relationships tests to dim_dates, which says: extend the seed
    select
        cast(cast(min(year) as varchar) || '-01-01' as date) as first_day,
        cast(cast(max(year) as varchar) || '-12-31' as date) as last_day
    from calendar

),

days as (

    select spine.date
    from bounds
    cross join lateral ({{ date_spine_between('bounds.first_day', 'bounds.last_day') }}) as spine

),

shopping_events as (

    select * from calendar where event_type = 'shopping_event'

),

public_holidays as (

    select * from calendar where event_type = 'public_holiday'

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
        shopping_events.event_name as shopping_event,
        shopping_events.phase as event_phase,
        shopping_events.peak_date - days.date as days_to_event_peak,
        {%- for event in events %}
        {%- for phase in phases %}
        coalesce(shopping_events.event_name = '{{ event }}' and shopping_events.phase = '{{ phase }}', false)
            as is_{{ 'event_' ~ event if event[0] in '0123456789' else event }}_{{ phase }},
        {%- endfor %}
        {%- endfor %}
        public_holidays.event_name is not null as is_public_holiday,
        public_holidays.event_name as holiday_name,
        spring_festival_distance.next_festival_day - days.date as days_to_spring_festival,
        days.date - spring_festival_distance.previous_festival_day as days_from_spring_festival
    from days
    left join shopping_events
        on days.date between shopping_events.start_date and shopping_events.end_date
    left join public_holidays
        on days.date between public_holidays.start_date and public_holidays.end_date
    left join spring_festival_distance
        on days.date = spring_festival_distance.date

)

select * from final
