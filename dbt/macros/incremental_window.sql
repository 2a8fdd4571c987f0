{#-
    Shared incremental logic for every large fact.

    A model declares the raw sources it is computed from and how far its computations look back:

        {%- set w = incremental_window(
            sources=[
                {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
                {'relation': source('raw', 'own_prices'), 'date_column': 'effective_date', 'open_ended': true},
            ],
            lookback_days=28,
        ) -%}

    and filters its reads with `in_window(column, w, 'read')` and its output with
    `in_window(column, w, 'write')`. The model stores the high-water mark of its inputs in
    `_source_batch_date` / `_source_loaded_at` (`audit_columns(w)`).

    On an incremental run:
      * new rows = raw rows with `_batch_date` above the model's `max(_source_batch_date)` or
        `_loaded_at` above its `max(_source_loaded_at)` (so a re-landed batch is picked up too);
      * touched business dates = the dates of those rows (`date_column`);
      * write range = [min touched date, max touched date + lookback_days] (weekly sales: from the
        first day of the touched date's week): a change on day t moves
        the lags / trailing windows of days t+1 .. t+lookback. For change-point sources
        (`open_ended`: prices valid until the next change) the range is open to the last day;
      * read range = write range widened by lookback_days into the past, so lags, rolling means and
        trailing statistics of the written days see their full history.
    Nothing new -> an empty write range (the model inserts nothing). `--full-refresh` or a first run
    builds everything; `--vars '{reprocess_from: YYYY-MM-DD}'` forces a rebuild from that day on.
    Row deletions in raw are not detected (rows only ever get corrected); use reprocess_from.
-#}
{% macro incremental_window(sources, lookback_days=0) %}
    {%- set w = {
        'mode': 'full',
        'read_from': none,
        'write_from': none,
        'write_to': none,
        'batch_date': none,
        'loaded_at': none,
    } -%}
    {#- Parsing, compiling docs and unit tests see the full-build SQL. -#}
    {%- if not execute or model.resource_type != 'model' -%}
        {{ return(w) }}
    {%- endif -%}

    {%- set watermark_sql -%}
        select
            cast(max(_batch_date) as varchar) as batch_date,
            cast(max(_loaded_at) as varchar) as loaded_at
        from (
            {%- for s in sources %}
            select max(_batch_date) as _batch_date, max(_loaded_at) as _loaded_at
            from {{ s.relation }}
            {%- if not loop.last %}
            union all
            {%- endif -%}
            {% endfor %}
        ) as source_watermarks
    {%- endset -%}
    {%- set row = run_query(watermark_sql).rows[0] -%}
    {%- do w.update({'batch_date': row[0], 'loaded_at': row[1]}) -%}

    {%- if not is_incremental() -%}
        {{ return(w) }}
    {%- endif -%}

    {%- set previous = run_query(
        'select cast(max(_source_batch_date) as varchar), cast(max(_source_loaded_at) as varchar) from '
        ~ this
    ).rows[0] -%}
    {%- set previous_batch = previous[0] or '1900-01-01' -%}
    {%- set previous_loaded = previous[1] or '1900-01-01 00:00:00' -%}

    {%- set touched_sql -%}
        select
            cast(min(touched_from) as varchar) as write_from,
            cast(case
                when max(case when is_open_ended = 1 then 1 else 0 end) = 1 then null
                else max(touched_to) + {{ lookback_days }}
            end as varchar) as write_to
        from (
            {%- for s in sources if s.get('date_column') %}
            select
                min({{ s.date_column }}) as touched_from,
                max({{ s.date_column }}) as touched_to,
                {{ 1 if s.get('open_ended') else 0 }} as is_open_ended
            from {{ s.relation }}
            where (
                _batch_date > cast('{{ previous_batch }}' as date)
                or _loaded_at > cast('{{ previous_loaded }}' as timestamp)
            )
            and {{ s.date_column }} is not null
            having count(*) > 0
            {%- if not loop.last %}
            union all
            {%- endif -%}
            {% endfor %}
        ) as touched
    {%- endset -%}
    {%- set touched = run_query(touched_sql).rows[0] -%}
    {%- set write_from = touched[0] -%}
    {%- set write_to = touched[1] -%}

    {%- set reprocess_from = date_var('reprocess_from') -%}
    {%- if reprocess_from -%}
        {%- set write_from = reprocess_from if (write_from is none or reprocess_from < write_from) else write_from -%}
        {%- set write_to = none -%}
    {%- endif -%}

    {#- Weekly sales: a change on any day of a week (a daily context table, a price change point)
        rewrites that whole week's row, so the range starts on the week's first day. -#}
    {%- if write_from is not none and is_weekly() -%}
        {%- set write_from = run_query(
            "select cast(" ~ week_start_of("cast('" ~ write_from ~ "' as date)") ~ " as varchar)"
        ).rows[0][0] -%}
    {%- endif -%}

    {%- if write_from is none -%}
        {%- do w.update({'mode': 'empty'}) -%}
        {{ log(this ~ ': no new raw rows since batch ' ~ previous_batch ~ ', nothing to do', info=true) }}
        {{ return(w) }}
    {%- endif -%}

    {%- set read_from = run_query(
        "select cast(cast('" ~ write_from ~ "' as date) - " ~ lookback_days ~ " as varchar)"
    ).rows[0][0] -%}
    {%- do w.update({
        'mode': 'incremental',
        'read_from': read_from,
        'write_from': write_from,
        'write_to': write_to,
    }) -%}
    {{ log(this ~ ': rebuilding ' ~ write_from ~ ' .. ' ~ (write_to or 'end')
        ~ ' (reading from ' ~ read_from ~ ')', info=true) }}
    {{ return(w) }}
{% endmacro %}


{#- A boolean SQL predicate keeping `column` inside the window's read or write range. -#}
{% macro in_window(column, w, part='write') %}
    {%- if w.mode == 'full' -%}
        1 = 1
    {%- elif w.mode == 'empty' -%}
        1 = 0
    {%- else -%}
        {{ column }} >= cast('{{ w[part ~ "_from"] }}' as date)
        {%- if w.write_to %} and {{ column }} <= cast('{{ w.write_to }}' as date){% endif -%}
    {%- endif -%}
{% endmacro %}


{#- The inputs' high-water mark, stored on every written row; the next run starts above it. -#}
{% macro audit_columns(w) %}
    {%- if w.batch_date -%}
        cast('{{ w.batch_date }}' as date) as _source_batch_date,
        cast('{{ w.loaded_at }}' as timestamp) as _source_loaded_at,
    {%- else -%}
        cast(null as date) as _source_batch_date,
        cast(null as timestamp) as _source_loaded_at,
    {%- endif %}
        {#- when this dbt run wrote the row (UTC): publishing copies only rows written since it last ran -#}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp) as _written_at
{% endmacro %}
