with

source as (

    {{ select_model_output('pricing', 'price_elasticity', {
        'run_date': 'date',
        'sku_id': 'bigint',
        'own_elasticity': 'double precision',
        'own_elasticity_low': 'double precision',
        'own_elasticity_high': 'double precision',
        'cross_elasticity': 'double precision',
        'identified': 'boolean',
        'n_days': 'bigint',
        'price_variation': 'double precision',
        'category': 'varchar',
        'model_name': 'varchar',
        'model_version': 'varchar',
        'scored_at': 'timestamp',
    }) }}

),

final as (

    select
        run_date,
        sku_id,
        coalesce(model_name, 'price_elasticity') as model_name,
        coalesce(model_version, 'unregistered') as model_version,
        own_elasticity,
        own_elasticity_low,
        own_elasticity_high,
        cross_elasticity,
        coalesce(identified, false) as is_identified,
        n_days,
        price_variation,
        category,
        scored_at
    from source
    where run_date is not null and sku_id is not null

)

select * from final
