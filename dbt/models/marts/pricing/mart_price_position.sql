{#-
    Our price against the rivals' per day and SKU: the effective price of fct_prices_daily against
    the cheapest and the mean rival price the crawls of that day read. Only SKU-days with a rival
    price; a day whose own price is not in fct_prices_daily yet has a null gap.
-#}
with

observations as (

    select * from {{ ref('stg_pricing__competitor_observations') }}
    where price > 0

),

prices as (

    select date, sku_id, shelf_price, effective_price, is_promo from {{ ref('fct_prices_daily') }}

),

products as (

    select sku_id, sku_code, sku_name, category_l1 from {{ ref('dim_products') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by run_date, competitor, sku_id
            order by observed_at desc, crawl_id desc
        ) as recency_rank
    from observations

),

per_competitor as (

    -- each rival once a day: its lowest price of the day, and its last one
    select
        run_date,
        competitor,
        sku_id,
        min(price) as min_price,
        max(case when recency_rank = 1 then price end) as last_price,
        count(*) as observations,
        count(case when method = 'ocr' then 1 end) as ocr_observations
    from ranked
    group by run_date, competitor, sku_id

),

rivals as (

    select
        run_date as date,
        sku_id,
        min(min_price) as rival_min_price,
        avg(last_price) as rival_mean_price,
        count(*) as competitors,
        cast(sum(observations) as bigint) as observations,
        cast(sum(ocr_observations) as bigint) as ocr_observations
    from per_competitor
    group by run_date, sku_id

),

final as (

    select
        rivals.date,
        rivals.sku_id,
        coalesce(products.sku_code, cast(rivals.sku_id as varchar)) as sku_code,
        products.sku_name,
        products.category_l1,
        prices.shelf_price,
        prices.effective_price,
        prices.is_promo,
        rivals.rival_min_price,
        rivals.rival_mean_price,
        rivals.competitors,
        rivals.observations,
        rivals.ocr_observations,
        -- percent; > 0: dearer than the cheapest rival
        (prices.effective_price / rivals.rival_min_price - 1) * 100 as gap_to_min_pct,
        (prices.effective_price / rivals.rival_mean_price - 1) * 100 as gap_to_mean_pct,
        -- at or below the cheapest rival, to the cent
        {{ round_to('prices.effective_price', 2) }} <= {{ round_to('rivals.rival_min_price', 2) }}
            as kept_price_advantage
    from rivals
    left join prices
        on prices.sku_id = rivals.sku_id
        -- weekly sales: the price of the week the day falls in
        and prices.date = {{ period_start('rivals.date') }}
    left join products
        on rivals.sku_id = products.sku_id

)

select * from final
