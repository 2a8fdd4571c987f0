{#-
    Keep one row per contract key: the one from the latest landing batch.

    A re-landed correction arrives in a later batch (`_batch_date`), so it wins; ties within a batch
    date (a batch reloaded twice) go to the later `_loaded_at`, then the larger `_batch_id`.
    Renders a SELECT over `relation` (a relation or a CTE name) that adds `_dedupe_rank`; the caller
    keeps the columns it wants. Portable SQL (no QUALIFY, no ANTI JOIN). It reads `relation` three
    times: callers define it (and the CTEs under it) `as not materialized`, or DuckDB materializes
    the whole table first (3 GB spilled for daily_sales on the large tier).

    Why not a plain row_number() over every row: landing rejects a batch with a duplicated key, so a
    key can only repeat across batches, and most rows sit in one big batch (the history bootstrap)
    with keys no other batch carries. Ranking all of them cost 28 s per read of the large tier's
    135 M daily_sales rows, paid by every model and test reading the view. Here only the keys that
    some other batch than the largest one carries are ranked; every other row is unique already and
    passes as it is. Same rows as ranking everything, with one caveat: two rows of one batch whose
    keys differ as landed but match after cleaning (' Web' and 'web'; channel, competitor, region,
    category_l2) would both pass, and the staging grain tests would then fail the build.

    The base batch is looked up once, when the view is built (the staging views are rebuilt on every
    run), and written into it as constants: DuckDB then skips every row group of that batch by its
    min/max statistics when it collects the other batches' keys. Computed inside the view instead, it
    cost each reader of stg_shop__daily_sales on the large tier a group-by over all 135 M rows and a
    compare of every row, about 1 s, paid by every model and test reading the view. Any batch is a
    correct base (landing makes keys unique within a batch), so a view built before later landings
    returns the same rows, only slower. Parsing, unit tests and a `landed` table that does not exist
    yet get the lookup as SQL.
-#}
{% macro _largest_batch(relation) -%}
    {%- set batch = ['_batch_date', '_batch_id', '_loaded_at'] -%}
    select {{ batch | join(', ') }}
    from {{ relation }}
    group by {{ batch | join(', ') }}
    order by count(*) desc, {{ batch | join(' desc, ') }} desc
    limit 1
{%- endmacro %}

{% macro dedupe_latest_batch(relation, key_columns, landed) %}
    {%- set batch = ['_batch_date', '_batch_id', '_loaded_at'] -%}
    {%- set key_match = [] -%}
    {%- for k in key_columns %}{% do key_match.append('repeated.' ~ k ~ ' = src.' ~ k) %}{% endfor -%}
    {%- set base = none -%}
    {%- if execute and model.resource_type == 'model' and load_relation(landed) is not none -%}
        {%- set found = run_query(
            'select cast(_batch_date as varchar), _batch_id, cast(_loaded_at as varchar) from ('
            ~ _largest_batch(landed) ~ ') as largest'
        ).rows -%}
        {%- if found and found[0][0] is not none and found[0][1] is not none and found[0][2] is not none -%}
            {%- set base = found[0] -%}
        {%- endif -%}
    {%- endif -%}
    with

    {% if base is none -%}
    base_batch as (

        -- the batch holding the most rows
        {{ _largest_batch(relation) }}

    ),

    {% endif -%}
    repeated_keys as (

        -- every key some other batch carries: only these can repeat
        select distinct {{ key_columns | join(', ') }}
        from {{ relation }} as src
        {%- if base is none %}
        cross join base_batch
        where not (
            {%- for c in batch %}
            src.{{ c }} = base_batch.{{ c }}{% if not loop.last %} and{% endif %}
            {%- endfor %}
        )
        {%- else %}
        -- the batch holding the most rows when the view was built
        where not (
            src._batch_date = cast('{{ base[0] }}' as date)
            and src._batch_id = '{{ base[1] | replace("'", "''") }}'
            and src._loaded_at = cast('{{ base[2] }}' as timestamp)
        )
        {%- endif %}

    )

    select src.*, 1 as _dedupe_rank
    from {{ relation }} as src
    where not exists (select 1 from repeated_keys as repeated where {{ key_match | join(' and ') }})

    union all

    select *
    from (
        select
            src.*,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by _batch_date desc, _loaded_at desc, _batch_id desc
            ) as _dedupe_rank
        from {{ relation }} as src
        where exists (select 1 from repeated_keys as repeated where {{ key_match | join(' and ') }})
    ) as ranked
    where _dedupe_rank = 1
{% endmacro %}
