with

plans as (

    select * from {{ ref('stg_forecasts__replenishment_plans') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

final as (

    select
        plans.run_date,
        plans.sku_id,
        coalesce(products.sku_code, cast(plans.sku_id as varchar)) as sku_code,
        products.sku_name,
        products.category_l1,
        products.category_l2,
        products.brand,
        products.warehouse_id,
        products.supplier_id,
        plans.model_name,
        plans.model_version,
        plans.lead_time_days,
        plans.lead_time_sd_days,
        plans.review_period_days,
        plans.protection_days,
        plans.expected_demand,
        plans.demand_sd,
        plans.safety_stock,
        plans.reorder_point,
        plans.order_up_to,
        plans.on_hand,
        plans.on_order,
        plans.inventory_position,
        plans.order_quantity,
        plans.order_quantity > 0 as is_order,
        products.unit_cost,
        {{ round_to('plans.order_quantity * products.unit_cost', 2) }} as order_value,
        plans.service_level,
        plans.planned_at
    from plans
    left join products
        on plans.sku_id = products.sku_id

)

select * from final
