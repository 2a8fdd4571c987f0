with

source as (

    {{ select_model_output('pricing', 'price_decisions', {
        'run_date': 'date',
        'step_at': 'timestamp',
        'sku_id': 'bigint',
        'current_price': 'double precision',
        'new_price': 'double precision',
        'price_change_pct': 'double precision',
        'list_price': 'double precision',
        'unit_cost': 'double precision',
        'competitor_min_price': 'double precision',
        'competitor_observed_at': 'timestamp',
        'competitor_age_minutes': 'double precision',
        'expected_units': 'double precision',
        'expected_revenue': 'double precision',
        'expected_profit': 'double precision',
        'at_or_below_rival': 'boolean',
        'binding': 'varchar',
        'objective': 'varchar',
        'model_version': 'varchar',
        'published_at': 'timestamp',
    }) }}

),

final as (

    select
        run_date,
        step_at,
        sku_id,
        current_price,
        new_price,
        price_change_pct,
        list_price,
        unit_cost,
        competitor_min_price,
        competitor_observed_at,
        competitor_age_minutes,
        expected_units,
        expected_revenue,
        expected_profit,
        at_or_below_rival,
        coalesce(binding, 'none') as binding,
        objective,
        coalesce(model_version, 'unregistered') as model_version,
        published_at
    from source
    where run_date is not null and step_at is not null and sku_id is not null

)

select * from final
