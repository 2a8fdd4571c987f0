with

source as not materialized (

    select * from {{ source('raw', 'customers') }}

),

cleaned as not materialized (

    select
        cast(customer_id as bigint) as customer_id,
        lower(trim(region)) as region,
        cast(city_tier as integer) as city_tier,
        trim(age_band) as age_band,
        cast(signup_date as date) as signup_date,
        lower(trim(preferred_channel)) as preferred_channel,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where customer_id is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['customer_id'], source('raw', 'customers')) }}

),

final as (

    select
        customer_id,
        coalesce(region, 'unknown') as region,
        city_tier,
        coalesce(age_band, 'unknown') as age_band,
        signup_date,
        preferred_channel,
        (
            region is null or city_tier is null or age_band is null or signup_date is null
            or preferred_channel is null
        ) as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

)

select * from final
