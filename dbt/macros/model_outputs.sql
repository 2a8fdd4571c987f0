{#-
    Model outputs (schema `forecasts`, written by batch scoring in the core DAG) may not exist yet:
    a foundation-only rollout, the first day, or a family that has not scored. A staging model over
    them selects `columns` (name -> SQL type) from the source when it exists, a null of the type
    for any column the table lacks (one added to the output later, such as model_name), and no rows
    at all when the table is absent, so every build of the project stays green without it.

    The existence check runs when the model is built (the view is rebuilt by every build that
    selects it); parsing and unit tests see the empty select. The `source()` call is always made,
    so lineage and `dbt ls --select source:forecasts+` stay right.
-#}
{% macro select_model_output(source_name, table_name, columns) %}
    {%- set src = source(source_name, table_name) -%}
    {%- set relation = none -%}
    {%- if execute -%}
        {%- set relation = adapter.get_relation(
            database=src.database, schema=src.schema, identifier=src.identifier) -%}
    {%- endif -%}
    {%- if relation is none %}
    -- {{ src }} does not exist (yet): no rows
    select
        {%- for name, type in columns.items() %}
        cast(null as {{ type }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    where 1 = 0
    {%- else -%}
        {%- set present = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list %}
    select
        {%- for name, type in columns.items() %}
        {% if name in present %}cast({{ adapter.quote(name) }} as {{ type }}){% else %}cast(null as {{ type }}){% endif %} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ src }}
    {%- endif %}
{% endmacro %}
