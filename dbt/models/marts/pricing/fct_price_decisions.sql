{#- Every published pricing decision, with the SKU's department and the margin at the new price. -#}
with

decisions as (

    select * from {{ ref('stg_pricing__price_decisions') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

final as (

    select
        decisions.run_date,
        decisions.step_at,
        decisions.sku_id,
        coalesce(products.sku_code, cast(decisions.sku_id as varchar)) as sku_code,
        products.sku_name,
        products.category_l1,
        products.category_l2,
        products.brand,
        decisions.current_price,
        decisions.new_price,
        {{ round_to('decisions.new_price - decisions.current_price', 2) }} as price_change,
        -- percent, as the optimiser writes it; recomputed where it did not
        coalesce(
            decisions.price_change_pct,
            case
                when decisions.current_price > 0
                    then (decisions.new_price / decisions.current_price - 1) * 100
            end
        ) as price_change_pct,
        decisions.new_price <> decisions.current_price as is_change,
        coalesce(decisions.list_price, products.list_price) as list_price,
        coalesce(decisions.unit_cost, products.unit_cost) as unit_cost,
        {{ round_to('decisions.new_price - coalesce(decisions.unit_cost, products.unit_cost)', 2) }}
            as unit_margin,
        case
            when decisions.new_price > 0
                then (decisions.new_price - coalesce(decisions.unit_cost, products.unit_cost))
                    / decisions.new_price * 100
        end as margin_pct,
        decisions.competitor_min_price,
        case
            when decisions.competitor_min_price > 0
                then (decisions.new_price / decisions.competitor_min_price - 1) * 100
        end as competitor_gap_pct,
        decisions.competitor_observed_at,
        decisions.competitor_age_minutes,
        decisions.at_or_below_rival,
        decisions.expected_units,
        decisions.expected_revenue,
        decisions.expected_profit,
        decisions.binding,
        decisions.binding <> 'none' as is_rule_bound,
        decisions.objective,
        decisions.model_version,
        decisions.published_at
    from decisions
    left join products
        on decisions.sku_id = products.sku_id

)

select * from final
