{#-
    The known future a forecaster reads for its horizon: planned shelf prices and promotions, on the
    periods after the last sales period. Plans are not facts: own_prices and promotions may land
    rows dated after their batch, the facts marts stop at the last sales period, and this mart
    starts after it. A table rebuilt whole: SKUs x planned periods, at most 366 days of them.
-#}
with

sales_periods as (

    select max(date) as last_day from {{ ref('fct_sales_daily') }}

),

own_prices as (

    select * from {{ ref('stg_shop__own_prices') }}

),

promotions as (

    select * from {{ ref('stg_shop__promotions') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

plan_bounds as (

    -- the last planned day (a price change point or a promotion's last day), at most 366 days
    -- after the last sales day; none after it -> no plans, no rows
    select
        sales_periods.last_day,
        least(
            greatest(
                (select max(effective_date) from own_prices),
                (select max(end_date) from promotions)
            ),
            sales_periods.last_day + 366
        ) as plan_end
    from sales_periods

),

periods as (

    -- the periods after the last sales period that start on or before the last planned day
    select dates.date
    from {{ ref('dim_dates') }} as dates
    cross join plan_bounds
    where dates.date > plan_bounds.last_day
        and dates.date <= plan_bounds.plan_end
        {%- if is_weekly() %}
        and dates.day_of_week = {{ week_start_isodow() }}
        {%- endif %}

),

grid as (

    -- every SKU launched by the end of the period (a SKU without a launch date: every period)
    select
        periods.date,
        {{ 'periods.date + 6' if is_weekly() else 'periods.date' }} as period_end,
        products.sku_id,
        products.sku_code,
        products.list_price
    from periods
    cross join products
    where products.launch_date is null
        or products.launch_date <= {{ 'periods.date + 6' if is_weekly() else 'periods.date' }}

),

shelf_priced as (

    -- the shelf price in force on the period's first day, as fct_prices_daily has it
    select
        grid.*,
        own_prices.shelf_price as planned_shelf_price
    from grid
    {{ asof_left_join('own_prices', 'own_prices', 'grid', ['sku_id'], 'date', 'effective_date') }}

),

promoted as (

    -- the latest promotion started by the period's last day, if it still runs on its first day
    -- (as int_promotions_exploded)
    select
        shelf_priced.*,
        case when promotions.end_date >= shelf_priced.date then promotions.promo_id end as promo_id,
        case when promotions.end_date >= shelf_priced.date then promotions.promo_type end as promo_type,
        case when promotions.end_date >= shelf_priced.date then promotions.discount_pct end as promo_discount_pct,
        case
            when promotions.end_date >= shelf_priced.date
                then greatest(shelf_priced.date - promotions.start_date + 1, 1)
        end as promo_day_number
    from shelf_priced
    {{ asof_left_join('promotions', 'promotions', 'shelf_priced', ['sku_id'], 'period_end', 'start_date') }}

),

final as (

    select
        date,
        sku_id,
        sku_code,
        -- before the first recorded shelf price the SKU sells at its list price
        coalesce(planned_shelf_price, list_price) as shelf_price,
        {{ round_to('coalesce(planned_shelf_price, list_price) * (1 - coalesce(promo_discount_pct, 0) / 100)') }}
            as effective_price,
        promo_id is not null as is_promo,
        promo_type,
        coalesce(promo_discount_pct, 0) as discount_pct,
        promo_day_number
    from promoted

)

select * from final
