"""Per-table gates: each landed table checked with its suite, slice by slice, against the reference keys.

A quarantine rule's failing rows are kept in the run's temp table (``TEMP_REJECTED``) until the
load decides; the master tables' passing keys become the value sets of the references.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipelines.data.contract import TABLES, Table
from pipelines.quality.engine import ROW, Outcome, to_gx_frame
from pipelines.quality.raw.run import REFERENCE_TABLES, TEMP_REJECTED, RawRun, suite_parameters
from pipelines.quality.raw.slices import read_ahead, row_slices
from pipelines.quality.store import QUARANTINE_SCHEMA, insert_frame, quote, table_exists
from pipelines.quality.suites import Rule, Severity, SuiteSpec, read_suite

# The suite parameter holding the channel value set.
CHANNELS = "channels"


def validate_table(run: RawRun, table: Table) -> None:
    suite = read_suite("raw", table.name)
    lf = run.scan(table.name)
    # Every raw rule judges a row on its own, so any split of the rows gives the same outcome.
    # Consecutive rows, not business dates: a landed file is rarely sorted by date, and a date slice
    # read the whole file each time (71 reads of 135 M daily_sales rows on the large tier), where a
    # row range reads only its own row groups.
    rows = pl.scan_parquet(run.path(table.name)).select(pl.len()).collect().item()
    slices = row_slices(rows, run.params.max_rows_per_chunk)
    run.say(f"validating {table.name} ({rows:,} rows{f', {len(slices)} slices' if len(slices) > 1 else ''})")

    def prepared(offset: int, length: int) -> tuple[int, int, pl.DataFrame, Any]:
        frame = _with_references(run, suite, lf.slice(offset, length).collect())
        return offset, length, frame, to_gx_frame(frame)

    for offset, length, frame, gx_frame in read_ahead(prepared(o, n) for o, n in slices):
        label = "" if len(slices) == 1 else f"rows_{offset + 1}-{offset + length}"
        parameters = suite_parameters(run.params, run.batch_date, _data_channels(suite, frame))
        outcomes = run.runner.run(
            suite,
            gx_frame,
            parameters,
            run_name=f"{run.run_id}_{label}" if label else run.run_id,
            chunk=label,
        )
        for o in outcomes:
            if not o.success and o.severity is Severity.QUARANTINE and o.rows and o.error is None:
                _stash_rejected(run, table, o, frame)
        run.outcomes += outcomes


def _data_channels(suite: SuiteSpec, frame: pl.DataFrame) -> list[str]:
    """The non-empty labels of the frame's channel columns: the value set when channels come from the data.

    A blank label is not a channel and stays out of the set, so the rule quarantines it.
    """
    columns = {r.columns[0] for r in suite.rules if CHANNELS in r.parameters and r.columns}
    labels: set[str] = set()
    for c in columns & set(frame.columns):
        values = frame.get_column(c).drop_nulls().unique()
        labels |= {v for v in values.to_list() if isinstance(v, str) and v.strip()}
    return sorted(labels)


def _with_references(run: RawRun, suite: SuiteSpec, frame: pl.DataFrame) -> pl.DataFrame:
    # Referential integrity is checked as "the derived column _<col>_in_<table> is true" rather than
    # expect_column_values_to_be_in_set(col, value_set=<all keys>): GX walks a value_set through
    # pydantic's .dict() about a hundred times per expectation, which grows with the number of keys
    # (the large tier has 2M customers), and renders every value into the Data Docs page. The
    # membership test is a hash join here; GX still decides, reports and names the failing rows.
    exprs = []
    for rule in suite.rules:
        ref = rule.reference
        if ref is None:
            continue
        keys = run.refs.get(ref.table)
        if keys is None or keys.is_empty():
            note = (
                f"{suite.table}: {rule.name} skipped: no {ref.table} known (neither in raw nor in this batch)"
            )
            if note not in run.notes:
                run.notes.append(note)
            exprs.append(pl.lit(None, pl.Boolean).alias(ref.derived_column))
            continue
        col = pl.col(ref.column)
        exprs.append(
            pl.when(col.is_null())
            .then(pl.lit(None, pl.Boolean))
            .otherwise(col.is_in(keys.implode()))
            .alias(ref.derived_column)
        )
    return frame.with_columns(exprs) if exprs else frame


def _stash_rejected(run: RawRun, table: Table, outcome: Outcome, frame: pl.DataFrame) -> None:
    """Keep the failing rows of a quarantine rule in a temp table until the load decides."""
    rule = outcome.rule
    failing = pl.DataFrame({ROW: outcome.rows}, schema={ROW: frame.schema[ROW]}).unique()
    bad = frame.join(failing, on=ROW, how="semi")
    coded = []
    for c in rule.source_columns:
        codes = run.id_codes.filter(pl.col("id_column") == c)
        if c in table.id_columns and codes.height:
            # The reason shows the code the source has ('OJ-TROP-64'), not only its surrogate id.
            mapping = codes.select(
                pl.col("id").cast(bad.schema[c]).alias(c), pl.col("code").alias(_code_column(c))
            )
            bad = bad.join(mapping, on=c, how="left")
            coded.append(c)
    rejected = bad.select(
        pl.lit(run.run_id).alias("run_id"),
        pl.lit(run.batch_date).alias("batch_date"),
        pl.lit(table.name).alias("table_name"),
        pl.lit(rule.name).alias("rule"),
        pl.lit(rule.severity.value).alias("severity"),
        _reason(rule, coded, run.params.channels).alias("reason"),
        pl.col(ROW).cast(pl.Int64).alias("row_number"),
        pl.struct(list(table.key)).struct.json_encode().alias("row_key"),
        pl.struct(table.column_names).struct.json_encode().alias("row_json"),
        pl.lit(run.now).alias("quarantined_at"),
    ).cast(QUARANTINE_SCHEMA)
    insert_frame(run.con, TEMP_REJECTED, rejected)


def _reason(rule: Rule, coded: list[str], channels: tuple[str, ...] | None) -> pl.Expr:
    """``<description> (<column>=<value>, ...)``; a coded id as ``sku_id='OJ-TROP-64' (id 46...)``."""
    parts: list[pl.Expr] = [pl.lit(f"{rule.description} (")]
    for i, c in enumerate(rule.source_columns):
        value = pl.col(c).cast(pl.String).fill_null("null")
        if c in coded:
            code = pl.col(_code_column(c))
            shown = pl.concat_str([pl.lit("'"), code, pl.lit("' (id "), value, pl.lit(")")])
            value = pl.when(code.is_not_null()).then(shown).otherwise(value)
        parts += [pl.lit(f"{', ' if i else ''}{c}="), value]
    parts.append(pl.lit(")"))
    if CHANNELS in rule.parameters:
        if channels is None:
            parts.append(pl.lit("; quality.channels is null, so any non-empty label is a channel"))
        else:
            parts.append(
                pl.lit(
                    f"; quality.channels is [{', '.join(channels)}]: set quality.channels to your channels, "
                    "or null to take them from the data"
                )
            )
    return pl.concat_str(parts)


def _code_column(column: str) -> str:
    return f"_{column}_code"


# --- reference keys ------------------------------------------------------------------------------


def load_references(run: RawRun) -> None:
    for table, key in REFERENCE_TABLES.items():
        if table_exists(run.con, "raw", table):
            keys = run.con.sql(
                f"select distinct {quote(key)} as k from raw.{quote(table)} where _batch_date <> ?",
                params=[run.batch_date],
            ).pl()
            run.refs[table] = keys["k"].cast(TABLES[table].schema[key])
    if table_exists(run.con, "raw", "products"):
        run.products = run.con.sql(
            "select sku_id, launch_date from raw.products where _batch_date <> ? "
            "qualify row_number() over (partition by sku_id order by _batch_date desc) = 1",
            params=[run.batch_date],
        ).pl()


def add_batch_references(run: RawRun, table: str) -> None:
    key = REFERENCE_TABLES[table]
    passing = run.passing(table).select(key).filter(pl.col(key).is_not_null()).collect()[key]
    old = run.refs.get(table)
    run.refs[table] = passing if old is None else pl.concat([old, passing]).unique()
    if table == "products":
        batch = run.passing("products").select("sku_id", "launch_date").collect()
        batch = batch.filter(pl.col("sku_id").is_not_null())
        if run.products is not None:
            # This batch's version of a product wins over an older batch's, as in staging.
            older = run.products.join(batch.select("sku_id"), on="sku_id", how="anti")
            batch = pl.concat([older.cast(batch.schema), batch])  # type: ignore[arg-type]
        run.products = batch
