with

source as (

    {{ select_model_output('forecasts', 'replenishment_plan', {
        'run_date': 'date',
        'sku_id': 'bigint',
        'lead_time_days': 'double precision',
        'lead_time_sd_days': 'double precision',
        'review_period_days': 'integer',
        'protection_days': 'integer',
        'expected_demand': 'double precision',
        'demand_sd': 'double precision',
        'safety_stock': 'double precision',
        'reorder_point': 'double precision',
        'order_up_to': 'double precision',
        'on_hand': 'double precision',
        'on_order': 'double precision',
        'inventory_position': 'double precision',
        'order_quantity': 'bigint',
        'service_level': 'double precision',
        'model_name': 'varchar',
        'model_version': 'varchar',
        'planned_at': 'timestamp',
    }) }}

),

final as (

    select
        run_date,
        sku_id,
        coalesce(model_name, 'demand_forecaster') as model_name,
        coalesce(model_version, 'unregistered') as model_version,
        lead_time_days,
        lead_time_sd_days,
        review_period_days,
        protection_days,
        expected_demand,
        demand_sd,
        safety_stock,
        reorder_point,
        order_up_to,
        on_hand,
        on_order,
        inventory_position,
        coalesce(order_quantity, 0) as order_quantity,
        service_level,
        planned_at
    from source
    where run_date is not null and sku_id is not null

)

select * from final
