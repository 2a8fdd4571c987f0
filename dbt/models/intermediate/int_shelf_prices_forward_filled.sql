with

spine as (

    select * from {{ ref('int_sku_days_spined') }}

),

own_prices as (

    select * from {{ ref('stg_shop__own_prices') }}

),

final as (

    select
        spine.date,
        spine.sku_id,
        own_prices.shelf_price,
        own_prices.effective_date as shelf_price_since
    from spine
    {{ asof_left_join('own_prices', 'own_prices', 'spine', ['sku_id'], 'date', 'effective_date') }}

)

select * from final
