with

source as not materialized (

    select * from {{ source('raw', 'weather') }}

),

cleaned as not materialized (

    select
        cast(date as date) as date,
        lower(trim(region)) as region,
        cast(temp_c as double precision) as temp_c,
        cast(precip_mm as double precision) as precip_mm,
        cast(humidity_pct as double precision) as humidity_pct,
        cast(wind_kph as double precision) as wind_kph,
        cast(aqi as double precision) as aqi,
        cast(is_extreme as boolean) as is_extreme,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where date is not null and region is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['date', 'region'], source('raw', 'weather')) }}

),

final as (

    select
        date,
        region,
        temp_c,
        precip_mm,
        humidity_pct,
        wind_kph,
        aqi,
        is_extreme,
        (
            temp_c is null or precip_mm is null or humidity_pct is null or wind_kph is null
            or aqi is null or is_extreme is null
        ) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

)

select * from final
