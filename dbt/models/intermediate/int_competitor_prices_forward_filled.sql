with

spine as (

    select * from {{ ref('int_sku_days_spined') }}

),

competitor_prices as (

    select * from {{ ref('stg_shop__competitor_prices') }}

),

coverage as (

    -- a competitor carries a SKU from its first observed price on
    select
        sku_id,
        competitor,
        min(effective_date) as first_observed
    from competitor_prices
    group by sku_id, competitor

),

grid as (

    select
        spine.date,
        spine.sku_id,
        coverage.competitor
    from spine
    inner join coverage
        on spine.sku_id = coverage.sku_id
        and spine.date >= coverage.first_observed

),

final as (

    select
        grid.date,
        grid.sku_id,
        grid.competitor,
        competitor_prices.competitor_price,
        competitor_prices.effective_date as observed_on,
        grid.date - competitor_prices.effective_date as days_since_observed
    from grid
    {{ asof_left_join(
        'competitor_prices', 'competitor_prices', 'grid', ['sku_id', 'competitor'], 'date', 'effective_date'
    ) }}

)

select * from final
