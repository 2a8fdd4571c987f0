{#-
    Data tests on a run for one landed batch check only the business dates that batch can change.

    An incremental run writes rows from the batch's earliest business date on (later days only
    through lags and trailing windows), so a test of a date-grained model is restricted to
    `<interval_column> >= batch_start(tables)`, the earliest date the batch holds in the raw tables
    the model's dates come from: a day's purchase orders reach back weeks, but they cannot change
    fct_sales_daily, whose tests then check one day instead of five weeks. Without that, every daily
    run re-tested the whole history: on the medium tier 113 s of a daily `dbt build` went to tests
    and 26 s to models, and the cost grew with history.

    A model opts in with `config: {meta: {interval_column: <date column>}}` in its yml. Everything
    else (dimensions, models without a date) is tested in full. Tests run over everything when
    `run_date` is not set, when the run_date's batch holds no dated rows (a full build's history
    batch starts at the first day, so it is tested in full anyway), or with `--vars
    '{test_scope: all}'`. `reprocess_from` widens the scope to that day.

    Overrides dbt's `get_where_subquery` (the documented hook behind the `where` test config); a
    test's own `where` still applies.
-#}

{#- Business date column of each dated landing table (pipelines/data/contract.py). -#}
{% macro _batch_date_columns() %}
    {{ return({
        'daily_sales': 'date', 'order_lines': 'order_date', 'own_prices': 'effective_date',
        'promotions': 'start_date', 'competitor_prices': 'effective_date',
        'inventory_snapshots': 'date', 'purchase_orders': 'order_date', 'weather': 'date',
        'social_trends': 'date', 'browsing_events': 'event_date', 'service_tickets': 'created_date',
        'returns': 'return_date',
    }) }}
{% endmacro %}

{#- The raw tables whose new rows can change the dated rows of `unique_id` (a model or source): its
    sources, through the dated models (those with an interval_column) it is built from. A dimension
    on the way is not followed: it feeds today's attributes, not dates (a day's purchase orders reach
    back weeks but only change dim_products), and the incremental models' write windows
    (macros/incremental_window.sql) ignore its sources too. -#}
{% macro _upstream_raw_tables(unique_id) %}
    {%- set tables = [] -%}
    {%- set seen = [] -%}
    {%- set queue = [unique_id] -%}
    {#- Jinja has no while loop; a for loop over a list picks up what is appended to it. -#}
    {%- for node_id in queue if node_id not in seen -%}
        {%- do seen.append(node_id) -%}
        {%- set source_node = graph.sources.get(node_id) -%}
        {%- set node = graph.nodes.get(node_id) or {} -%}
        {%- if source_node and source_node.source_name == 'raw' -%}
            {%- do tables.append(source_node.name) -%}
        {%- elif node_id == unique_id or node.get('config', {}).get('meta', {}).get('interval_column') -%}
            {%- for parent in node.get('depends_on', {}).get('nodes', []) -%}
                {%- do queue.append(parent) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(tables) }}
{% endmacro %}

{#- The earliest business date in the run_date's landed batch among `tables` (all dated raw tables if
    none; reprocess_from if earlier); none = test all. -#}
{% macro batch_start(tables=none) %}
    {%- if not execute or var('test_scope', 'batch') == 'all' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set run_date = date_var('run_date') -%}
    {%- if not run_date -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for table, column in _batch_date_columns().items() if tables is none or table in tables -%}
        {%- set relation = adapter.get_relation(database=target.database, schema='raw', identifier=table) -%}
        {%- if relation is not none -%}
            {%- do parts.append(
                "select min(" ~ adapter.quote(column) ~ ") as d from " ~ relation
                ~ " where _batch_date = cast('" ~ run_date ~ "' as date)"
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not parts -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = run_query("select cast(min(d) as varchar) from (" ~ parts | join(' union all ') ~ ") as batch_dates").columns[0].values()[0] -%}
    {%- set reprocess_from = date_var('reprocess_from') -%}
    {%- if start and reprocess_from and reprocess_from < start -%}
        {%- set start = reprocess_from -%}
    {%- endif -%}
    {{ return(start) }}
{% endmacro %}

{#- The `interval_column` meta of the model (or source) a test is attached to, if any. -#}
{% macro _tested_interval_column() %}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- if not attached -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = graph.nodes.get(attached) or graph.sources.get(attached) -%}
    {%- if not node -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(node.get('config', {}).get('meta', {}).get('interval_column')) }}
{% endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set column = _tested_interval_column() -%}
    {%- if column -%}
        {%- set start = batch_start(_upstream_raw_tables(model.get('attached_node'))) -%}
        {%- if start -%}
            {%- do conditions.append(adapter.quote(column) ~ " >= cast('" ~ start ~ "' as date)") -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
