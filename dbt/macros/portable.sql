{#-
    The few places where DuckDB and Postgres SQL differ, behind adapter.dispatch.
    `duckdb__*` is what runs by default; `default__*` is the portable (Postgres) variant.
-#}


{#-
    Point-in-time lookup: for each row of `left_alias`, the row of `right` with the latest
    `right_time` on or before `left_time`, equal on `key_columns` (same names on both sides).
    Used to forward-fill change-point tables (shelf prices, competitor prices, promotions) onto days.
-#}
{% macro asof_left_join(right, right_alias, left_alias, key_columns, left_time, right_time) %}
    {{ return(adapter.dispatch('asof_left_join', 'ecom')(
        right, right_alias, left_alias, key_columns, left_time, right_time)) }}
{% endmacro %}

{% macro duckdb__asof_left_join(right, right_alias, left_alias, key_columns, left_time, right_time) %}
    asof left join {{ right }} as {{ right_alias }}
        on {% for k in key_columns %}{{ right_alias }}.{{ k }} = {{ left_alias }}.{{ k }} and {% endfor -%}
        {{ left_alias }}.{{ left_time }} >= {{ right_alias }}.{{ right_time }}
{% endmacro %}

{#- Postgres: validity intervals [right_time, next right_time) and a range join on them. -#}
{% macro default__asof_left_join(right, right_alias, left_alias, key_columns, left_time, right_time) %}
    left join (
        select
            *,
            lead({{ right_time }}) over (
                partition by {{ key_columns | join(', ') }}
                order by {{ right_time }}
            ) as _valid_until
        from {{ right }}
    ) as {{ right_alias }}
        on {% for k in key_columns %}{{ right_alias }}.{{ k }} = {{ left_alias }}.{{ k }} and {% endfor -%}
        {{ left_alias }}.{{ left_time }} >= {{ right_alias }}.{{ right_time }}
        and ({{ right_alias }}._valid_until is null or {{ left_alias }}.{{ left_time }} < {{ right_alias }}._valid_until)
{% endmacro %}


{#-
    Robust baselines for outlier flags: per series (`partition_columns`) and calendar week, the
    median and MAD (median absolute deviation) of each value column over the `weeks` full weeks
    before that week. Every day of a week is judged against the same past-only baseline, which
    never changes once the week has started, so incremental and full builds agree.
    `columns` maps an output prefix to a value column, e.g. {'units': 'units', 'price': 'price_paid'}.
    Renders a SELECT of the partition columns, `baseline_week` (Monday), `baseline_days` and
    `<prefix>_median`, `<prefix>_mad` over the CTE / relation `relation`. `first_week` (an SQL date
    expression) skips the weeks before that date's week, which an incremental run does not write:
    a large-tier day then takes the median and MAD of one week of series instead of six.

    Postgres: grouped aggregates over a 4x fan-out of the rows; DuckDB: week lists in a window.
-#}
{% macro weekly_robust_baselines(relation, partition_columns, date_column, columns, weeks, first_week=none) %}
    {{ return(adapter.dispatch('weekly_robust_baselines', 'ecom')(
        relation, partition_columns, date_column, columns, weeks, first_week)) }}
{% endmacro %}

{% macro _baseline_rows(relation, partition_columns, date_column, columns, weeks) %}
    -- each day feeds the baselines of the `weeks` weeks that follow its own
    select
        {%- for c in partition_columns %}
        history.{{ c }},
        {%- endfor %}
        cast(date_trunc('week', history.{{ date_column }}) as date) + 7 * weeks_ahead.n as baseline_week,
        {%- for prefix, column in columns.items() %}
        history.{{ column }} as {{ prefix }}_value{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }} as history
    cross join (
        {%- for n in range(1, weeks + 1) %}
        select {{ n }} as n{{ ' union all' if not loop.last }}
        {%- endfor %}
    ) as weeks_ahead
{% endmacro %}

{#-
    DuckDB: one row per series and week holding that week's values as a list, then a window over the
    `weeks` weeks before each week concatenates them and the list's median and MAD are taken. The
    4x fan-out of `_baseline_rows` (what Postgres still uses) spilled over 50 GB to disk on the large
    tier's 135 M daily sales rows under the 8 GB memory cap; this reads each row once (medium tier,
    1,500 SKUs: 1.4 s instead of 50.6 s, same baselines).
-#}
{% macro _from_first_week(first_week) -%}
    {%- if first_week is not none %} and baseline_week >= cast(date_trunc('week', {{ first_week }}) as date){% endif -%}
{%- endmacro %}

{% macro duckdb__weekly_robust_baselines(relation, partition_columns, date_column, columns, weeks, first_week) %}
    {%- set first = (columns.keys() | list)[0] -%}
    select
        {{ partition_columns | join(', ') }},
        baseline_week,
        len({{ first }}_values) as baseline_days,
        {%- for prefix in columns %}
        list_aggregate({{ prefix }}_values, 'median') as {{ prefix }}_median,
        list_aggregate({{ prefix }}_values, 'mad') as {{ prefix }}_mad{{ ',' if not loop.last }}
        {%- endfor %}
    from (
        select
            {{ partition_columns | join(', ') }},
            week_start as baseline_week,
            {%- for prefix in columns %}
            flatten(list({{ prefix }}_week) over past_weeks) as {{ prefix }}_values{{ ',' if not loop.last }}
            {%- endfor %}
        from (
            select
                {{ partition_columns | join(', ') }},
                cast(date_trunc('week', {{ date_column }}) as date) as week_start,
                {%- for prefix, column in columns.items() %}
                list({{ column }}) as {{ prefix }}_week{{ ',' if not loop.last }}
                {%- endfor %}
            from {{ relation }}
            group by {{ partition_columns | join(', ') }}, week_start
        ) as weekly
        window past_weeks as (
            partition by {{ partition_columns | join(', ') }}
            order by week_start
            range between interval {{ 7 * weeks }} days preceding and interval 7 days preceding
        )
    ) as framed
    -- a week with no history has no baseline (as a series' first weeks)
    where {{ first }}_values is not null{{ _from_first_week(first_week) }}
{% endmacro %}

{#- Postgres has no median()/mad(): percentile_cont, then a second pass for each MAD. -#}
{% macro default__weekly_robust_baselines(relation, partition_columns, date_column, columns, weeks, first_week) %}
    {%- set keys = partition_columns + ['baseline_week'] -%}
    select
        {%- for c in keys %}
        medians.{{ c }},
        {%- endfor %}
        medians.baseline_days,
        {%- for prefix, column in columns.items() %}
        medians.{{ prefix }}_median,
        percentile_cont(0.5) within group (
            order by abs(baseline_rows.{{ prefix }}_value - medians.{{ prefix }}_median)
        ) as {{ prefix }}_mad{{ ',' if not loop.last }}
        {%- endfor %}
    from (
        select
            {%- for c in keys %}
            {{ c }},
            {%- endfor %}
            count(*) as baseline_days,
            {%- for prefix, column in columns.items() %}
            percentile_cont(0.5) within group (order by {{ prefix }}_value) as {{ prefix }}_median
            {{- ',' if not loop.last }}
            {%- endfor %}
        from ({{ _baseline_rows(relation, partition_columns, date_column, columns, weeks) }}) as baseline_rows
        where 1 = 1{{ _from_first_week(first_week) }}
        group by {{ keys | join(', ') }}
    ) as medians
    inner join ({{ _baseline_rows(relation, partition_columns, date_column, columns, weeks) }}) as baseline_rows
        on {% for c in keys %}baseline_rows.{{ c }} = medians.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
    group by
        {%- for c in keys %}
        medians.{{ c }},
        {%- endfor %}
        medians.baseline_days
        {%- for prefix, column in columns.items() %},
        medians.{{ prefix }}_median
        {%- endfor %}
{% endmacro %}


{#-
    Robust outlier rule: |x - median| / max(1.4826 * MAD, floor) > outlier_z. 1.4826 * MAD estimates
    the standard deviation of normal data; the floor keeps series whose MAD is 0 (intermittent
    sales, constant prices) from flagging every small move. Fewer than `min_history` values of
    history (default outlier_min_history_days: a new SKU ramping up) or a null value -> not flagged.
-#}
{% macro robust_outlier_flag(value, median, mad, floor, history_days, min_history=none) %}
    coalesce(
        {{ history_days }} >= {{ min_history if min_history is not none else var('outlier_min_history_days') }}
        and abs({{ value }} - {{ median }})
            / greatest(1.4826 * {{ mad }}, {{ floor }}) > {{ var('outlier_z') }},
        false
    )
{% endmacro %}


{#-
    Carry a value forward over gaps of at most `max_days` rows: coalesce(x, lag 1, ..., lag n).
    Bounded on purpose: a stale value is worse than a null after a week, and a bounded lookback keeps
    incremental runs cheap. Rows must be one per day (build them on a date spine).
-#}
{% macro carry_forward(column, partition_by, order_by, max_days=none) %}
    {%- set n = max_days if max_days is not none else var('max_carry_forward_days') -%}
    coalesce(
        {{ column }}
        {%- for k in range(1, n + 1) %},
        lag({{ column }}, {{ k }}) over (partition by {{ partition_by }} order by {{ order_by }})
        {%- endfor %}
    )
{% endmacro %}


{#- One row per day between two date expressions (inclusive), as column `date`. -#}
{% macro date_spine_between(start_date, end_date) %}
    select cast(spine_day as date) as date
    from generate_series(
        cast({{ start_date }} as timestamp),
        cast({{ end_date }} as timestamp),
        interval '1 day'
    ) as spine(spine_day)
{% endmacro %}


{#-
    A date var as 'YYYY-MM-DD' (a YAML date or a string), else the environment variable
    ECOM_<NAME> (ECOM_RUN_DATE), else none. The DAG and `ecom` pass the run date in the environment:
    a changed --vars makes dbt re-parse the whole project (about 2 s more per invocation), a changed
    environment variable only the files that read it.
-#}
{% macro date_var(name) %}
    {%- set value = var(name, none) -%}
    {%- if value is none -%}
        {%- set value = env_var('ECOM_' ~ (name | upper), '') or none -%}
    {%- endif -%}
    {{ return((value | string) if value is not none else none) }}
{% endmacro %}


{#-
    round(x, digits) of a double, half away from zero on its decimal value, the same on every
    engine: Postgres only rounds numeric, and DuckDB's round(double) sees the binary value
    (104.3 x 0.75 = 78.22499.. -> 78.22, where the decimal answer is 78.23).
-#}
{% macro round_to(expression, digits=2) -%}
    cast(round(cast({{ expression }} as numeric(38, 8)), {{ digits }}) as double precision)
{%- endmacro %}
