{#-
    The shape of the landed data, as `ecom` configures it (pipelines/transform.py, dbt_env):

      var `grain`       ECOM_LAND_GRAIN    daily (default) | weekly: what one daily_sales row stands for.
                                           Weekly rows are dated by the week's first day.
      var `week_start`  ECOM_WEEK_START    0 (Monday, default) .. 6 (Sunday): the first day of a week.
      var `channels`    ECOM_CHANNELS      the sales channels, comma-separated ("app,web"); unset or
                                           empty: whatever channels the data holds (no value check).

    A --vars value wins over the environment, like date_var (macros/portable.sql). The environment
    is the way `ecom` and the DAG pass them: a changed environment variable re-parses only the files
    that read it.
-#}

{% macro sales_grain() %}
    {%- set value = var('grain', none) or env_var('ECOM_LAND_GRAIN', '') or 'daily' -%}
    {%- if value not in ('daily', 'weekly') -%}
        {{ exceptions.raise_compiler_error(
            "grain (var or ECOM_LAND_GRAIN) must be daily or weekly, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{% endmacro %}


{% macro is_weekly() %}
    {{ return(sales_grain() == 'weekly') }}
{% endmacro %}


{#- Days one sales period spans: 7 for weekly sales, else 1. -#}
{% macro period_days() %}
    {{ return(7 if is_weekly() else 1) }}
{% endmacro %}


{#- The week's first day as Python's date.weekday() (0 = Monday .. 6 = Sunday). -#}
{% macro week_start_index() %}
    {%- set value = var('week_start', none) -%}
    {%- if value is none -%}
        {%- set value = env_var('ECOM_WEEK_START', '') or 0 -%}
    {%- endif -%}
    {%- set index = value | int(-1) -%}
    {%- if index < 0 or index > 6 -%}
        {{ exceptions.raise_compiler_error(
            "week_start (var or ECOM_WEEK_START) must be 0 (Monday) .. 6 (Sunday), got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(index) }}
{% endmacro %}


{#- The ISO day of week (1 = Monday .. 7 = Sunday) a week starts on, as dim_dates.day_of_week has it. -#}
{% macro week_start_isodow() %}
    {{ return(week_start_index() + 1) }}
{% endmacro %}


{#-
    The first day of the week (week_start) that `date_expression` falls in, as a date. Portable:
    `extract(isodow ...)` and `date - integer` mean the same on DuckDB and Postgres.
-#}
{% macro week_start_of(date_expression) -%}
    cast(
        cast({{ date_expression }} as date)
        - cast((cast(extract(isodow from {{ date_expression }}) as integer) + 6 - {{ week_start_index() }}) % 7 as integer)
    as date)
{%- endmacro %}


{#-
    The sales period a day belongs to: the day itself (daily grain) or the first day of its week
    (weekly grain). Daily context (weather, inventory, clickstream, orders) is grouped by it to meet
    the sales rows; on the daily grain it is the column as it is, so filters on it still reach the
    scans beneath.
-#}
{% macro period_start(date_expression) -%}
    {%- if is_weekly() -%}
        {{ week_start_of(date_expression) }}
    {%- else -%}
        {{ date_expression }}
    {%- endif -%}
{%- endmacro %}


{#- The configured sales channels as a list, or none: take them from the data. -#}
{% macro configured_channels() %}
    {%- set value = var('channels', none) -%}
    {%- if value is none -%}
        {%- set value = env_var('ECOM_CHANNELS', '') -%}
    {%- endif -%}
    {%- if value is string -%}
        {%- set value = value.split(',') | map('trim') | reject('equalto', '') | list -%}
    {%- endif -%}
    {{ return((value | map('lower') | list) if value else none) }}
{% endmacro %}


{#-
    Whether a raw table holds any row, as a one-row SQL select of `has_rows`. An optional table that
    was never landed exists but is empty (`ecom validate raw` creates every contract table): a count
    read from it must then be null (unknown), never a 0 that reads as "nothing happened".
-#}
{% macro source_has_rows(relation) -%}
    select exists (select 1 from {{ relation }}) as has_rows
{%- endmacro %}
