{#- The latest scored run's elasticities (on or before the run date), one row per SKU. -#}
{%- set run_date = date_var('run_date') %}
with

elasticities as (

    select * from {{ ref('stg_pricing__price_elasticities') }}
    {%- if run_date %}
    where run_date <= cast('{{ run_date }}' as date)
    {%- endif %}

),

latest_run as (

    select max(run_date) as run_date from elasticities

),

products as (

    select * from {{ ref('dim_products') }}

),

final as (

    select
        elasticities.run_date,
        elasticities.sku_id,
        coalesce(products.sku_code, cast(elasticities.sku_id as varchar)) as sku_code,
        products.sku_name,
        -- the department as the catalogue has it, else the category the model pooled the SKU with
        coalesce(products.category_l1, elasticities.category) as category_l1,
        products.category_l2,
        elasticities.category as model_category,
        products.brand,
        products.list_price,
        products.unit_cost,
        elasticities.model_name,
        elasticities.model_version,
        elasticities.own_elasticity,
        elasticities.own_elasticity_low,
        elasticities.own_elasticity_high,
        elasticities.own_elasticity_high - elasticities.own_elasticity_low as own_elasticity_width,
        elasticities.cross_elasticity,
        elasticities.is_identified,
        elasticities.n_days,
        elasticities.price_variation,
        elasticities.scored_at
    from elasticities
    inner join latest_run
        on elasticities.run_date = latest_run.run_date
    left join products
        on elasticities.sku_id = products.sku_id

)

select * from final
