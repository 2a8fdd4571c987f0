{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id'],
        on_schema_change='fail',
    )
}}

{%- set trailing_days = var('trailing_window_days') -%}
{%- set lags = [1, 7, 14, 28] -%}
{%- set rolling = [7, 28] -%}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
        {'relation': source('raw', 'inventory_snapshots'), 'date_column': 'date'},
        {'relation': source('raw', 'own_prices'), 'date_column': 'effective_date', 'open_ended': true},
        {'relation': source('raw', 'promotions'), 'date_column': 'start_date', 'open_ended': true},
        {'relation': source('raw', 'competitor_prices'), 'date_column': 'effective_date', 'open_ended': true},
        {'relation': source('raw', 'weather'), 'date_column': 'date'},
        {'relation': source('raw', 'social_trends'), 'date_column': 'date'},
        {'relation': source('raw', 'browsing_events'), 'date_column': 'event_date'},
    ],
    lookback_days=[trailing_days, (lags | max) * period_days(), (rolling | max) * period_days()] | max,
) -%}
{#-
    Lags and rolling windows count periods (rows of the spine): days, or weeks on the weekly grain.
    Daily context (inventory, weather, social trends, clickstream) meets a weekly row as the week's
    aggregate, read over the days whose week is written (`period_start`).
-#}
{#-
    Built in SKU ranges of at most chunk_rows SKU-days each, one UNION ALL part per range: on the
    large tier (68 M SKU-days) the seven hash joins outgrow DuckDB's memory cap and spill, and the
    query took 260 s in one piece against 136 s in four. A daily run is one range.
-#}
{%- set ranges = sku_ranges(w) %}

{% for sku_range in ranges -%}
(

with

spine as (

    select * from {{ ref('int_sku_days_spined') }}
    where {{ in_window('date', w, 'read') }} and {{ in_sku_range('sku_id', sku_range) }}

),

sku_sales as (

    select * from {{ ref('int_lost_sales_estimated') }}
    where {{ in_window('date', w, 'read') }} and {{ in_sku_range('sku_id', sku_range) }}

),

prices as (

    select * from {{ ref('fct_prices_daily') }}
    where {{ in_window('date', w, 'write') }} and {{ in_sku_range('sku_id', sku_range) }}

),

inventory_days as (

    select
        date,
        sku_id,
        cast(sum(on_hand_units) as bigint) as on_hand_units,
        cast(sum(on_order_units) as bigint) as on_order_units,
        min(days_of_cover) as days_of_cover
    from {{ ref('fct_inventory_daily') }}
    where {{ in_window(period_start('date'), w, 'write') }} and {{ in_sku_range('sku_id', sku_range) }}
    group by date, sku_id

),

inventory as (

    {%- if is_weekly() %}
    -- the stock at the end of the week: its last day with a snapshot
    select
        period_date as date,
        sku_id,
        on_hand_units,
        on_order_units,
        days_of_cover
    from (
        select
            *,
            {{ period_start('date') }} as period_date,
            row_number() over (partition by sku_id, {{ period_start('date') }} order by date desc) as day_rank
        from inventory_days
    ) as ranked
    where day_rank = 1
    {%- else %}
    select * from inventory_days
    {%- endif %}

),

weather as (

    {%- if is_weekly() %}
    -- the week's mean over its days with weather
    select
        {{ period_start('date') }} as date,
        {%- for m in ['temp_c', 'precip_mm', 'humidity_pct', 'wind_kph', 'aqi', 'extreme_weather_share'] %}
        avg({{ m }}) as {{ m }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('int_weather_days_weighted') }}
    where {{ in_window(period_start('date'), w, 'write') }}
    group by {{ period_start('date') }}
    {%- else %}
    select * from {{ ref('int_weather_days_weighted') }}
    where {{ in_window('date', w, 'write') }}
    {%- endif %}

),

social_trends as (

    {%- if is_weekly() %}
    -- the week's mean of each signal, per leaf category (counts: mean per day)
    select
        {{ period_start('date') }} as date,
        category_l2,
        avg(search_index) as search_index,
        avg(mentions) as mentions,
        avg(sentiment) as sentiment,
        avg(video_views) as video_views
    from {{ ref('int_social_trends_imputed') }}
    where {{ in_window(period_start('date'), w, 'write') }}
    group by {{ period_start('date') }}, category_l2
    {%- else %}
    select * from {{ ref('int_social_trends_imputed') }}
    where {{ in_window('date', w, 'write') }}
    {%- endif %}

),

clickstream as (

    select * from {{ ref('int_browsing_events_aggregated') }}
    where {{ in_window('date', w, 'write') }} and {{ in_sku_range('sku_id', sku_range) }}

),

browsing_landed as (

    -- clickstream counts are 0 on a day without events only where browsing events were landed at
    -- all; per channel, only where that channel browses
    select
        exists (select 1 from {{ source('raw', 'browsing_events') }}) as has_rows,
        exists (
            select 1 from {{ source('raw', 'browsing_events') }} where lower(trim(channel)) = 'app'
        ) as has_app,
        exists (
            select 1 from {{ source('raw', 'browsing_events') }} where lower(trim(channel)) = 'web'
        ) as has_web

),

products as (

    select * from {{ ref('dim_products') }}

),

dates as (

    {%- if is_weekly() %}
    -- a week's calendar: its first day's, with the week's shopping event (the day nearest the
    -- event's peak: a week holding Singles' Day is its peak week) and holiday (any day of it)
    select
        first_day.date,
        first_day.day_of_week,
        first_day.is_weekend,
        first_day.month,
        first_day.day_of_year,
        event_day.shopping_event,
        event_day.event_phase,
        event_day.days_to_event_peak + (event_day.date - first_day.date) as days_to_event_peak,
        week_holidays.is_public_holiday,
        first_day.days_to_spring_festival,
        first_day.days_from_spring_festival
    from {{ ref('dim_dates') }} as first_day
    inner join (
        select
            {{ week_start_of('date') }} as week_date,
            max(case when is_public_holiday then 1 when not is_public_holiday then 0 end) = 1
                as is_public_holiday
        from {{ ref('dim_dates') }}
        group by {{ week_start_of('date') }}
    ) as week_holidays
        on first_day.date = week_holidays.week_date
    left join (
        select
            *,
            {{ week_start_of('date') }} as week_date,
            row_number() over (
                partition by {{ week_start_of('date') }}
                order by abs(days_to_event_peak), date
            ) as event_rank
        from {{ ref('dim_dates') }}
        where shopping_event is not null
    ) as event_day
        on first_day.date = event_day.week_date
        and event_day.event_rank = 1
    {%- else %}
    select * from {{ ref('dim_dates') }}
    {%- endif %}

),

history as (

    -- lags and rolling means over the spine (one row per SKU and day), from past days only
    select
        spine.date,
        spine.sku_id,
        spine.days_since_launch,
        sku_sales.units,
        sku_sales.units_app,
        sku_sales.units_web,
        sku_sales.revenue,
        sku_sales.stockout,
        sku_sales.is_units_outlier,
        sku_sales.instock_mean_units,
        sku_sales.lost_units,
        {%- for k in lags %}
        lag(sku_sales.units, {{ k }}) over by_sku as units_lag_{{ k }},
        {%- endfor %}
        {%- for k in rolling %}
        avg(cast(sku_sales.units as double precision)) over (
            by_sku rows between {{ k }} preceding and 1 preceding
        ) as units_rolling_mean_{{ k }},
        {%- endfor %}
        -- stock-out periods among the 7 before (unknown where no flag in them is known)
        cast(sum(case when sku_sales.stockout then 1 when not sku_sales.stockout then 0 end) over (
            by_sku rows between 7 preceding and 1 preceding
        ) as bigint) as stockout_days_last_7
    from spine
    left join sku_sales
        on spine.date = sku_sales.date
        and spine.sku_id = sku_sales.sku_id
    window by_sku as (partition by spine.sku_id order by spine.date)

),

final as (

    select
        history.date,
        history.sku_id,
        products.category_l1,
        products.category_l2,
        products.brand,
        products.list_price,
        products.unit_cost,
        history.days_since_launch,

        -- target and sales
        history.units,
        history.units_app,
        history.units_web,
        history.revenue,
        history.stockout,
        history.is_units_outlier,
        history.instock_mean_units,
        history.lost_units,

        -- price, promotion, competition
        prices.shelf_price,
        prices.effective_price,
        prices.price_index,
        prices.is_promo,
        prices.promo_type,
        prices.discount_pct,
        prices.promo_day_number,
        prices.competitor_min_price,
        prices.competitor_mean_price,
        prices.competitor_count,
        prices.competitor_gap_pct,

        -- calendar
        dates.day_of_week,
        dates.is_weekend,
        dates.month,
        dates.day_of_year,
        dates.shopping_event,
        dates.event_phase,
        dates.days_to_event_peak,
        dates.is_public_holiday,
        dates.days_to_spring_festival,
        dates.days_from_spring_festival,

        -- weather, weighted by where the customers live
        weather.temp_c,
        weather.precip_mm,
        weather.humidity_pct,
        weather.wind_kph,
        weather.aqi,
        weather.extreme_weather_share,

        -- social trends of the SKU's leaf category
        social_trends.search_index,
        social_trends.mentions,
        social_trends.sentiment,
        social_trends.video_views,

        -- clickstream (sampled 1 in 10 sessions): null where none was landed (or the channel never
        -- browses), not 0
        case when browsing_landed.has_rows then coalesce(clickstream.views, 0) end as views,
        case when browsing_landed.has_rows then coalesce(clickstream.add_to_carts, 0) end as add_to_carts,
        case when browsing_landed.has_app then coalesce(clickstream.views_app, 0) end as views_app,
        case when browsing_landed.has_web then coalesce(clickstream.views_web, 0) end as views_web,

        -- inventory at the end of the day
        inventory.on_hand_units,
        inventory.on_order_units,
        inventory.days_of_cover,

        -- history of the target
        {%- for k in lags %}
        history.units_lag_{{ k }},
        {%- endfor %}
        {%- for k in rolling %}
        history.units_rolling_mean_{{ k }},
        {%- endfor %}
        history.stockout_days_last_7,

        {{ audit_columns(w) }}
    from history
    cross join browsing_landed
    left join products
        on history.sku_id = products.sku_id
    left join dates
        on history.date = dates.date
    left join prices
        on history.date = prices.date
        and history.sku_id = prices.sku_id
    left join inventory
        on history.date = inventory.date
        and history.sku_id = inventory.sku_id
    left join weather
        on history.date = weather.date
    left join social_trends
        on history.date = social_trends.date
        and products.category_l2 = social_trends.category_l2
    left join clickstream
        on history.date = clickstream.date
        and history.sku_id = clickstream.sku_id
    where {{ in_window('history.date', w, 'write') }}

)

select * from final
)
{% if not loop.last %}
union all
{% endif %}
{%- endfor %}
