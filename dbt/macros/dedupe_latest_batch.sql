{#-
    Keep one row per contract key: the one from the latest landing batch.

    A re-landed correction arrives in a later batch (`_batch_date`), so it wins; ties within a batch
    date (a batch reloaded twice) go to the later `_loaded_at`, then the larger `_batch_id`.
    Renders a SELECT over `relation` (a relation or a CTE name) that adds `_dedupe_rank`; the caller
    keeps the columns it wants. Portable SQL (no QUALIFY, no ANTI JOIN). It reads `relation` four
    times: callers define it (and the CTEs under it) `as not materialized`, or DuckDB
    materializes the whole table first (3 GB spilled for daily_sales on the large tier).

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
    compare of every row, about 1 s, paid by every model and test reading the view.

    Any batch is a correct base, so a view built before later landings (a new batch, or the base
    re-landed) is right, only slower. Parsing, unit tests and a `landed` table that does not exist
    yet get the lookup as SQL. Master data (customers, products, warehouses) lands whole every day;
    the loader keeps only each key's latest row of it (pipelines/quality/raw.py, drop_superseded_rows),
    so its older batches hold only keys the newest lacks, and nothing here grows by a snapshot a day.
-#}
{% macro _largest_batch(relation) -%}
    {%- set batch = ['_batch_date', '_batch_id', '_loaded_at'] -%}
    select {{ batch | join(', ') }}
    from {{ relation }}
    group by {{ batch | join(', ') }}
    order by count(*) desc, {{ batch | join(' desc, ') }} desc
    limit 1
{%- endmacro %}

{#- The row `alias` is from the base batch (`base`: the batch's columns as SQL). -#}
{% macro _is_base(alias, base) -%}
    {{ alias }}._batch_date = {{ base._batch_date }} and {{ alias }}._batch_id = {{ base._batch_id }}
    and {{ alias }}._loaded_at = {{ base._loaded_at }}
{%- endmacro %}

{% macro dedupe_latest_batch(relation, key_columns, landed) %}
    {%- set batch = ['_batch_date', '_batch_id', '_loaded_at'] -%}
    {%- set order = '_batch_date desc, _loaded_at desc, _batch_id desc' -%}
    {%- set key_match = [] -%}
    {%- for k in key_columns %}{% do key_match.append('other.' ~ k ~ ' = src.' ~ k) %}{% endfor -%}
    {%- set key_match = key_match | join(' and ') -%}
    {#- The base batch as SQL: constants looked up now, or the base_batch CTE's columns. -#}
    {%- set base = {'_batch_date': 'base_batch._batch_date', '_batch_id': 'base_batch._batch_id',
                    '_loaded_at': 'base_batch._loaded_at'} -%}
    {%- set lookup = none -%}
    {%- if execute and model.resource_type == 'model' and load_relation(landed) is not none -%}
        {%- set found = run_query(
            'select cast(_batch_date as varchar), _batch_id, cast(_loaded_at as varchar) from ' ~ landed
            ~ ' group by ' ~ batch | join(', ')
            ~ ' order by count(*) desc, ' ~ batch | join(' desc, ') ~ ' desc limit 1'
        ).rows -%}
        {%- if found and found[0][0] is not none and found[0][1] is not none and found[0][2] is not none -%}
            {%- set lookup = found[0] -%}
            {%- do base.update({
                '_batch_date': "cast('" ~ lookup[0] ~ "' as date)",
                '_batch_id': "'" ~ (lookup[1] | replace("'", "''")) ~ "'",
                '_loaded_at': "cast('" ~ lookup[2] ~ "' as timestamp)",
            }) -%}
        {%- endif -%}
    {%- endif -%}
    {%- set with_base = '' if lookup else 'cross join base_batch' -%}
    with

    {% if not lookup -%}
    base_batch as (

        -- the batch holding the most rows
        {{ _largest_batch(relation) }}

    ),

    {% endif -%}
    repeated_keys as not materialized (

        -- every key some other batch carries: only these can repeat
        select distinct {{ key_columns | join(', ') }}
        from {{ relation }} as src
        {{ with_base }}
        where not ({{ _is_base('src', base) }})

    )
    {#- Joins, not [NOT] EXISTS, and repeated_keys not materialized (it is read twice): DuckDB then
        pushes a reader's filter on the key (a test's or a model's date range) into every scan of the
        raw table; the anti and semi joins EXISTS becomes, and a materialized CTE, stop it. Reading
        one day of stg_shop__daily_sales on the large tier: 0.34 s -> 0.11 s; a whole scan is not
        slower. The keys are distinct, so the inner join adds no rows; a key column of `other` is
        null exactly where no key matched. -#}

    select src.*, 1 as _dedupe_rank
    from {{ relation }} as src
    left join repeated_keys as other on {{ key_match }}
    where other.{{ key_columns[0] }} is null

    union all

    select *
    from (
        select
            src.*,
            row_number() over (partition by src.{{ key_columns | join(', src.') }} order by src.{{ order | replace(', ', ', src.') }})
                as _dedupe_rank
        from {{ relation }} as src
        inner join repeated_keys as other on {{ key_match }}
    ) as ranked
    where _dedupe_rank = 1
{% endmacro %}
