with

spine as (

    select * from {{ ref('int_sku_days_spined') }}

),

promotions as (

    select * from {{ ref('stg_shop__promotions') }}

),

latest_started as (

    -- at most one promotion per SKU and day (contract): the latest one started on or before the day
    select
        spine.date,
        spine.sku_id,
        promotions.promo_id,
        promotions.promo_type,
        promotions.discount_pct,
        promotions.start_date,
        promotions.end_date
    from spine
    {{ asof_left_join('promotions', 'promotions', 'spine', ['sku_id'], 'date', 'start_date') }}

),

final as (

    select
        date,
        sku_id,
        promo_id,
        promo_type,
        discount_pct,
        date - start_date + 1 as promo_day_number,
        end_date - start_date + 1 as promo_length_days
    from latest_started
    where date <= end_date

)

select * from final
