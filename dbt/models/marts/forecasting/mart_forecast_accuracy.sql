{#-
    Realised accuracy of past forecasts, per model version, target week and horizon. The sums are
    kept beside the ratios so any roll-up (all weeks of a horizon, all horizons of a week) is
    sum(abs_error) / sum(actual_units), never a mean of WAPEs.
-#}
with

realised as (

    select * from {{ ref('fct_demand_forecasts') }}
    where actual_units is not null and p50 is not null

),

summed as (

    select
        model_name,
        model_version,
        {{ week_start_of('target_date') }} as target_week,
        horizon,
        period_days,
        count(*) as forecasts,
        cast(sum(actual_units) as bigint) as actual_units,
        {{ round_to('sum(p50)', 4) }} as p50_units,
        {{ round_to('sum(abs(p50 - actual_units))', 4) }} as abs_error,
        count(case when p10 is not null and p90 is not null then 1 end) as band_forecasts,
        count(case when actual_units between p10 and p90 then 1 end) as in_band
    from realised
    group by model_name, model_version, {{ week_start_of('target_date') }}, horizon, period_days

),

final as (

    select
        model_name,
        model_version,
        target_week,
        horizon,
        period_days,
        forecasts,
        actual_units,
        p50_units,
        abs_error,
        band_forecasts,
        in_band,
        abs_error / cast(nullif(actual_units, 0) as double precision) as wape,
        (p50_units - actual_units) / cast(nullif(actual_units, 0) as double precision) as bias,
        in_band / cast(nullif(band_forecasts, 0) as double precision) as coverage
    from summed

)

select * from final
