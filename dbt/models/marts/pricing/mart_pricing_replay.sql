{#-
    The pricing replay's KPIs per run date, policy and KPI across seeds: mean, standard deviation and
    the 95% confidence interval of the mean (Student's t), and the lift over the 'static' and the
    'rule' policies, paired by seed (the same simulated demand): relative (percent) for levels
    (revenue, profit, turnover), a difference in the KPI's own unit for rates and counts.
-#}
{%- set kpis = {
    'revenue': 'relative',
    'gross_profit': 'relative',
    'gross_margin_pct': 'difference',
    'price_advantage_share': 'difference',
    'turnover': 'relative',
    'stockout_share': 'difference',
    'price_changes_per_sku_day': 'difference',
    'mean_abs_change_pct': 'difference',
} %}
{#- Student's t, 97.5% quantile, by degrees of freedom 1..30; above 30 a two-term expansion. -#}
{%- set t975 = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
] %}
with

replay as (

    select * from {{ ref('stg_pricing__replay_kpis') }}

),

kpis as (

    {%- for kpi, lift_kind in kpis.items() %}
    select
        run_date,
        policy,
        seed,
        model_version,
        '{{ kpi }}' as kpi,
        '{{ lift_kind }}' as lift_kind,
        cast({{ kpi }} as double precision) as value
    from replay
    {{- '\n    union all' if not loop.last }}
    {%- endfor %}

),

paired as (

    select
        kpis.*,
        {%- for baseline in ['static', 'rule'] %}
        case
            when kpis.lift_kind = 'difference' then kpis.value - {{ baseline }}_kpis.value
            when {{ baseline }}_kpis.value <> 0 then (kpis.value / {{ baseline }}_kpis.value - 1) * 100
        end as lift_vs_{{ baseline }}{{ ',' if not loop.last }}
        {%- endfor %}
    from kpis
    {%- for baseline in ['static', 'rule'] %}
    left join kpis as {{ baseline }}_kpis
        on kpis.run_date = {{ baseline }}_kpis.run_date
        and kpis.seed = {{ baseline }}_kpis.seed
        and kpis.kpi = {{ baseline }}_kpis.kpi
        and {{ baseline }}_kpis.policy = '{{ baseline }}'
    {%- endfor %}

),

summarised as (

    select
        run_date,
        policy,
        kpi,
        lift_kind,
        max(model_version) as model_version,
        {%- for measure in ['value', 'lift_vs_static', 'lift_vs_rule'] %}
        count({{ measure }}) as {{ measure }}_n,
        avg({{ measure }}) as {{ measure }}_mean,
        stddev_samp({{ measure }}) as {{ measure }}_sd{{ ',' if not loop.last }}
        {%- endfor %}
    from paired
    group by run_date, policy, kpi, lift_kind

),

final as (

    select
        run_date,
        policy,
        kpi,
        lift_kind,
        model_version,
        value_n as seeds,
        {%- for measure, name in [('value', 'mean'), ('lift_vs_static', 'lift_vs_static'), ('lift_vs_rule', 'lift_vs_rule')] %}
        {%- set half %}
        (case
            {%- for t in t975 %}
            when {{ measure }}_n - 1 = {{ loop.index }} then {{ t }}
            {%- endfor %}
            when {{ measure }}_n - 1 > 30
                then 1.959964 + 2.372 / ({{ measure }}_n - 1) + 2.823 / (({{ measure }}_n - 1) * ({{ measure }}_n - 1))
        end * {{ measure }}_sd / sqrt({{ measure }}_n))
        {%- endset %}
        {{ measure }}_mean as {{ name }},
        {%- if measure == 'value' %}
        value_sd as sd,
        {%- endif %}
        {{ measure }}_mean - {{ half }} as {{ name }}_low,
        {{ measure }}_mean + {{ half }} as {{ name }}_high{{ ',' if not loop.last }}
        {%- endfor %}
    from summarised

)

select * from final
