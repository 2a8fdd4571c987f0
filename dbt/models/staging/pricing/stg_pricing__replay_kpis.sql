with

source as (

    {{ select_model_output('pricing', 'replay_kpis', {
        'run_date': 'date',
        'policy': 'varchar',
        'seed': 'integer',
        'revenue': 'double precision',
        'gross_profit': 'double precision',
        'gross_margin_pct': 'double precision',
        'price_advantage_share': 'double precision',
        'turnover': 'double precision',
        'stockout_share': 'double precision',
        'price_changes_per_sku_day': 'double precision',
        'mean_abs_change_pct': 'double precision',
        'model_version': 'varchar',
    }) }}

),

final as (

    select
        run_date,
        lower(policy) as policy,
        seed,
        revenue,
        gross_profit,
        gross_margin_pct,
        price_advantage_share,
        turnover,
        stockout_share,
        price_changes_per_sku_day,
        mean_abs_change_pct,
        coalesce(model_version, 'unregistered') as model_version
    from source
    where run_date is not null and policy is not null and seed is not null

)

select * from final
