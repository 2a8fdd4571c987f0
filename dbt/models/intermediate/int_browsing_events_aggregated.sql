with

browsing_events as (

    select * from {{ ref('stg_shop__browsing_events') }}

),

final as (

    select
        -- the sales period: the day, or its week on the weekly grain
        {{ period_start('event_date') }} as date,
        sku_id,
        cast(sum(case when event_type = 'view' then 1 else 0 end) as bigint) as views,
        cast(sum(case when event_type = 'add_to_cart' then 1 else 0 end) as bigint) as add_to_carts,
        cast(sum(case when event_type = 'view' and channel = 'app' then 1 else 0 end) as bigint) as views_app,
        cast(sum(case when event_type = 'view' and channel = 'web' then 1 else 0 end) as bigint) as views_web,
        cast(sum(case when event_type = 'add_to_cart' and channel = 'app' then 1 else 0 end) as bigint) as add_to_carts_app,
        cast(sum(case when event_type = 'add_to_cart' and channel = 'web' then 1 else 0 end) as bigint) as add_to_carts_web
    from browsing_events
    group by {{ period_start('event_date') }}, sku_id

)

select * from final
