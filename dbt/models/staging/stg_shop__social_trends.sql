with

source as not materialized (

    select * from {{ source('raw', 'social_trends') }}

),

cleaned as not materialized (

    select
        cast(date as date) as date,
        lower(trim(category_l2)) as category_l2,
        cast(search_index as double precision) as search_index,
        cast(mentions as integer) as mentions,
        cast(sentiment as double precision) as sentiment,
        cast(video_views as bigint) as video_views,
        _batch_date,
        _batch_id,
        _loaded_at
    from source
    where date is not null and category_l2 is not null

),

deduplicated as (

    {{ dedupe_latest_batch('cleaned', ['date', 'category_l2'], source('raw', 'social_trends')) }}

),

final as (

    select
        date,
        category_l2,
        search_index,
        mentions,
        sentiment,
        video_views,
        (search_index is null or mentions is null or sentiment is null or video_views is null)
            as has_missing_values,
        _batch_date,
        _batch_id,
        _loaded_at
    from deduplicated

)

select * from final
