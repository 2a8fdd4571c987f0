{#- Every forecast row with the actual units of its target period, once they have all arrived. -#}
with

forecasts as (

    select * from {{ ref('stg_forecasts__demand_forecasts') }}

),

products as (

    select sku_id, sku_code from {{ ref('dim_products') }}

),

demand as (

    select sku_id, date, units from {{ ref('mart_demand_features') }}
    where units is not null

),

runs as (

    -- A run's period: 7 days when its target dates are spaced a week apart (a weekly model, whose
    -- target_date is the week's Monday), else 1. Its first target is horizon 1.
    select
        run_date,
        model_name,
        min(target_date) as first_target_date,
        case
            when count(distinct target_date) > 1
                and max(target_date) - min(target_date) = 7 * (count(distinct target_date) - 1)
                then 7
            else 1
        end as period_days
    from forecasts
    group by run_date, model_name

),

day_offsets as (

    -- the offsets of the mart's rows within a period of up to 7 days: every day, or (weekly
    -- sales) the week's one row, dated by its first day
    {%- for n in range(0, 7, period_days()) %}
    select {{ n }} as day_offset{{ ' union all' if not loop.last }}
    {%- endfor %}

),

actuals as (

    -- Units over each forecast's period; known when every row (day or week) of it has arrived.
    select
        forecasts.run_date,
        forecasts.sku_id,
        forecasts.target_date,
        cast(sum(demand.units) as bigint) as actual_units,
        count(demand.units) as actual_days
    from forecasts
    inner join runs
        on forecasts.run_date = runs.run_date and forecasts.model_name = runs.model_name
    inner join day_offsets
        on day_offsets.day_offset < runs.period_days
    inner join demand
        on demand.sku_id = forecasts.sku_id
        and demand.date = forecasts.target_date + day_offsets.day_offset
    group by forecasts.run_date, forecasts.sku_id, forecasts.target_date

),

final as (

    select
        forecasts.run_date,
        forecasts.sku_id,
        -- the SKU as the retailer's export names it
        coalesce(products.sku_code, cast(forecasts.sku_id as varchar)) as sku_code,
        forecasts.target_date,
        forecasts.model_name,
        forecasts.model_version,
        runs.period_days,
        cast((forecasts.target_date - runs.first_target_date) / runs.period_days as integer) + 1 as horizon,
        forecasts.p10,
        forecasts.p50,
        forecasts.p90,
        forecasts.mean,
        case
            when actuals.actual_days * {{ period_days() }} = runs.period_days then actuals.actual_units
        end as actual_units,
        forecasts.scored_at
    from forecasts
    inner join runs
        on forecasts.run_date = runs.run_date and forecasts.model_name = runs.model_name
    left join products
        on forecasts.sku_id = products.sku_id
    left join actuals
        on forecasts.run_date = actuals.run_date
        and forecasts.sku_id = actuals.sku_id
        and forecasts.target_date = actuals.target_date

)

select * from final
