{#-
    Keep one row per contract key: the one from the latest landing batch.

    A re-landed correction arrives in a later batch (`_batch_date`), so it wins; ties within a batch
    date (a batch reloaded twice) go to the later `_loaded_at`, then the larger `_batch_id`.
    Renders a SELECT over `relation` (a relation or a CTE name) that adds `_dedupe_rank`; the caller
    keeps the columns it wants. Portable SQL (no QUALIFY); DuckDB rewrites the rank-1 filter into a
    grouped arg_max and still pushes date filters on key columns down to the scan.
-#}
{% macro dedupe_latest_batch(relation, key_columns) %}
    select *
    from (
        select
            *,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by _batch_date desc, _loaded_at desc, _batch_id desc
            ) as _dedupe_rank
        from {{ relation }}
    ) as ranked
    where _dedupe_rank = 1
{% endmacro %}
