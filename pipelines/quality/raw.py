"""Validate a landed raw partition and load what passes into ``raw.<table>`` (``ecom validate raw``).

The partition ``data/raw/dt=<D>/`` is the data interval. Each table is validated with its suite
(``expectations/raw/<table>.json``) on a pandas frame; a table with more rows than
``max_rows_per_chunk`` is validated in slices of consecutive rows, so memory and time grow with the
batch, never with the history already in the warehouse. Then batch-level checks run
on small derived frames (``expectations/raw_batch/``): timeliness, the daily_sales grid,
the order_lines/daily_sales reconciliation and the share of rows quarantined.

Outcomes follow each expectation's ``meta.severity``: ``quarantine`` rows are left out of the load
and written to ``quarantine.rejected_rows``; one failed ``block`` rule loads nothing of the
partition and raises :class:`QualityGateError`; ``warn`` is recorded only. Everything is checked
before anything is written; then one transaction replaces the partition's rows in ``raw``
(delete this ``_batch_date``, insert, drop master-data rows a later batch supersedes), its
quarantine rows, and appends ``quality.validation_results``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from pipelines.config import Settings
from pipelines.data.contract import TABLES, Table
from pipelines.data.land import read_manifest
from pipelines.quality.engine import (
    ROW,
    GateFailure,
    Outcome,
    QualityError,
    QualityGateError,
    SuiteRunner,
    classify,
    combine,
    new_run_id,
    to_gx_frame,
)
from pipelines.quality.store import (
    QUARANTINE_SCHEMA,
    create_quarantine_table,
    create_raw_table,
    insert_frame,
    insert_validation_results,
    quote,
    table_exists,
    utc_now,
)
from pipelines.quality.suites import Rule, Severity, SuiteSpec, read_suite
from pipelines.warehouse import connect_warehouse

__all__ = [
    "DAILY_GRAIN_TABLES",
    "Chunk",
    "RawQualityParams",
    "RawValidationResult",
    "plan_chunks",
    "row_slices",
    "validate_raw",
]

# Master data first: their passing keys are the value sets the other tables' references check.
REFERENCE_TABLES = {"warehouses": "warehouse_id", "products": "sku_id", "customers": "customer_id"}
# Tables with a row for every day by contract ("... per day"): only these can be stale. Change logs
# (prices, promotions) and sparse events (tickets, returns) may rightly have quiet days.
DAILY_GRAIN_TABLES = tuple(n for n, t in TABLES.items() if t.date_column and "per day" in t.grain)
# What a batch-level check is about, for messages.
_CHECK_SUBJECT = {
    "daily_sales_grid": "daily_sales",
    "sales_reconciliation_daily": "daily_sales vs order_lines",
    "sales_reconciliation": "daily_sales vs order_lines",
}
_RECONCILIATION_KEY = ["date", "sku_id", "channel"]
_RECONCILIATION_DAY = ["date", "channel"]
# The units checksum of a day is sum(hash(sku_id) * units) over its rows, exact in 128 bits and
# reduced modulo this prime: unequal units for some SKU make two days' checksums agree with
# probability about 2**-61.
_CHECKSUM_MODULUS = 2**61 - 1
_CHECKSUM_SEED = 20_251_231
_TEMP_REJECTED = "_ecom_rejected"


@dataclass(frozen=True)
class RawQualityParams:
    """Thresholds of the raw gates (suite parameters supplied at run time).

    Attributes:
        max_quarantine_rate: More than this share of a table's rows quarantined blocks the partition.
        min_grid_coverage: A day with daily_sales rows for less than this share of the launched
            SKU x channel grid blocks the partition.
        max_days_behind: A daily-grain table whose latest date is more days before the batch date
            is stale (warn).
        max_rows_per_chunk: Tables larger than this are validated in slices of this many consecutive
            rows; the sales reconciliation goes in SKU ranges of about this many rows.
        channels: The sales channels (value set for every channel column).
    """

    max_quarantine_rate: float = 0.05
    min_grid_coverage: float = 0.95
    max_days_behind: int = 2
    max_rows_per_chunk: int = 2_000_000
    channels: tuple[str, ...] = ("app", "web")

    def suite_parameters(self, batch_date: dt.date) -> dict[str, Any]:
        import pandas as pd

        return {
            # pandas holds dates as datetime64, so the comparison value must be a Timestamp too.
            "batch_date": pd.Timestamp(batch_date),
            "channels": list(self.channels),
            "max_days_behind": self.max_days_behind,
            "min_grid_coverage": self.min_grid_coverage,
            "max_quarantine_rate": self.max_quarantine_rate,
        }


@dataclass(frozen=True)
class RawValidationResult:
    """What a raw validation did.

    Attributes:
        run_id: Identifies this run in ``quality.validation_results`` and ``quarantine.rejected_rows``.
        batch_date: The partition's date.
        batch_id: The landed batch's id (from its manifest).
        partition: The validated partition folder.
        warehouse: The DuckDB file written.
        data_docs_index: Data Docs entry page.
        loaded: Rows loaded into ``raw.<table>``, per table.
        quarantined: Rows quarantined, per table and rule (a row failing two rules counts in both).
        quarantined_rows: Distinct rows quarantined per table.
        warnings: One line per failed ``warn`` rule or skipped check.
        seconds: Wall time of the whole call.
    """

    run_id: str
    batch_date: dt.date
    batch_id: str
    partition: Path
    warehouse: Path
    data_docs_index: Path
    loaded: dict[str, int]
    quarantined: dict[str, dict[str, int]]
    quarantined_rows: dict[str, int]
    warnings: list[str]
    seconds: float

    @property
    def total_loaded(self) -> int:
        return sum(self.loaded.values())

    @property
    def total_quarantined(self) -> int:
        return sum(self.quarantined_rows.values())

    def summary(self) -> str:
        """A few lines for a person: what loaded, what was quarantined and why, warnings, docs."""
        lines = [
            f"validated {self.partition.name} (batch {self.batch_id}, run {self.run_id}) in "
            f"{self.seconds:.1f}s: loaded {self.total_loaded:,} rows into {len(self.loaded)} raw tables"
        ]
        if self.quarantined:
            lines.append(
                f"quarantined {self.total_quarantined:,} rows (select * from quarantine.rejected_rows "
                f"where run_id = '{self.run_id}'):"
            )
            for table, rules in self.quarantined.items():
                lines += [f"  {table}: {rule}: {n:,}" for rule, n in rules.items()]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"Data Docs: {self.data_docs_index}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Chunk:
    """A slice of a table by the values of one column: ``first..last`` inclusive, or its nulls."""

    label: str
    first: Any = None
    last: Any = None
    null_values: bool = False
    whole: bool = False

    def predicate(self, column: str | None) -> pl.Expr:
        if self.whole or column is None:
            return pl.lit(True)
        if self.null_values:
            return pl.col(column).is_null()
        return pl.col(column).is_between(self.first, self.last)


def plan_chunks(value_counts: pl.DataFrame, max_rows: int) -> list[Chunk]:
    """Slices of consecutive values of one column holding at most ``max_rows`` rows each.

    Args:
        value_counts: Columns ``value`` (nulls allowed) and ``n`` (rows with that value).
        max_rows: Target slice size; a single value with more rows than this is one slice on its own.

    Returns:
        ``[Chunk(whole=True)]`` when everything fits in one slice, else the value ranges (in order)
        plus one slice for the rows without a value, if any.
    """
    total = int(value_counts["n"].sum()) if value_counts.height else 0
    if total <= max_rows:
        return [Chunk("all", whole=True)]
    chunks: list[Chunk] = []
    known = value_counts.filter(pl.col("value").is_not_null()).sort("value")
    first: Any = None
    last: Any = None
    size = 0
    for value, n in known.select("value", "n").iter_rows():
        if first is not None and size + n > max_rows:
            chunks.append(Chunk(f"{first}..{last}", first, last))
            first, size = None, 0
        if first is None:
            first = value
        last, size = value, size + n
    if first is not None:
        chunks.append(Chunk(f"{first}..{last}", first, last))
    if value_counts.filter(pl.col("value").is_null()).height:
        chunks.append(Chunk("null", null_values=True))
    return chunks


def row_slices(rows: int, max_rows: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of consecutive row ranges of at most ``max_rows`` rows covering ``rows``."""
    return [(start, min(max_rows, rows - start)) for start in range(0, rows, max_rows)] or [(0, 0)]


def validate_raw(
    settings: Settings,
    batch_date: dt.date,
    run_id: str | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    params: RawQualityParams | None = None,
) -> RawValidationResult:
    """Validate the landed partition ``raw/dt=<batch_date>`` and load its passing rows into DuckDB.

    Args:
        settings: Paths (the partition, the warehouse, ``reports/data_docs``).
        batch_date: The partition to validate.
        run_id: Recorded with every result row; default ``raw_<date>_<utc time>_<random>``.
        progress: Called with short human-readable messages as the validation goes.
        params: Thresholds; the defaults are the documented policy.

    Returns:
        Rows loaded and quarantined per table, warnings and where the Data Docs are.

    Raises:
        QualityError: There is no landed partition for the date, or a suite does not fit its data.
        QualityGateError: A blocking rule failed; nothing of the partition was loaded (``raw`` and
            ``quarantine`` are as they were) and the message names each failure.
    """

    started = time.perf_counter()
    params = params or RawQualityParams()
    say = progress or _silent
    partition = settings.raw_dir / f"dt={batch_date.isoformat()}"
    if not partition.is_dir():
        raise QualityError(
            f"no landed partition for {batch_date} ({partition} does not exist); land the batch first "
            f"(ecom land --date {batch_date})"
        )
    manifest = read_manifest(partition)
    names = [f["table"] for f in manifest.get("files", [])]
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise QualityError(f"{partition}: manifest lists tables outside the contract: {unknown}")
    order = [t for t in REFERENCE_TABLES if t in names] + [
        t for t in TABLES if t in names and t not in REFERENCE_TABLES
    ]
    run_id = run_id or new_run_id("raw", batch_date)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    # Connect first: a warehouse locked by another writer fails before GX's slow import.
    con = connect_warehouse(settings.warehouse_path)
    try:
        runner = SuiteRunner.for_reports(settings.reports_dir)
        run = _Run(
            settings=settings,
            batch_date=batch_date,
            batch_id=str(manifest.get("batch_id", "")),
            run_id=run_id,
            partition=partition,
            params=params,
            runner=runner,
            con=con,
            say=say,
            now=utc_now(),
            rows={f["table"]: int(f["rows"]) for f in manifest.get("files", [])},
        )
        return _validate_and_load(run, order, started)
    finally:
        con.close()


@dataclass
class _Run:
    settings: Settings
    batch_date: dt.date
    batch_id: str
    run_id: str
    partition: Path
    params: RawQualityParams
    runner: SuiteRunner
    con: Any
    say: Callable[[str], None]
    now: dt.datetime
    rows: dict[str, int]
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Reference keys: raw (other batch dates) plus this batch's passing rows.
    refs: dict[str, pl.Series] = field(default_factory=dict)
    products: pl.DataFrame | None = None

    def path(self, table: str) -> Path:
        return self.partition / f"{table}.parquet"

    def scan(self, table: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.path(table)).with_row_index(ROW, offset=1)

    def rejected(self, table: str) -> pl.DataFrame:
        """Distinct ``_row`` numbers quarantined so far in ``table``."""
        out = self.con.sql(
            f"select distinct row_number from {_TEMP_REJECTED} where table_name = ?", params=[table]
        ).pl()
        return out.select(pl.col("row_number").cast(pl.get_index_type()).alias(ROW))

    def passing(self, table: str) -> pl.LazyFrame:
        """The rows of ``table`` that no quarantine rule rejected."""
        return self.scan(table).join(self.rejected(table).lazy(), on=ROW, how="anti")

    def quarantined(self, table: str) -> pl.LazyFrame:
        return self.scan(table).join(self.rejected(table).lazy(), on=ROW, how="semi")


def _validate_and_load(run: _Run, order: list[str], started: float) -> RawValidationResult:
    con = run.con
    create_quarantine_table(con, _TEMP_REJECTED, temp=True)
    _load_references(run)
    for name in order:
        _validate_table(run, TABLES[name])
        if name in REFERENCE_TABLES:
            _add_batch_references(run, name)
    _batch_checks(run, order)

    verdict = classify(run.outcomes)
    combined = combine(run.outcomes)
    warnings = [*run.notes, *(_describe(o) for o in combine(verdict.warnings))]
    for w in warnings:
        run.say(f"warning: {w}")
    run.runner.build_docs()
    if verdict.blocked:
        con.begin()
        insert_validation_results(
            con, combined, run_id=run.run_id, run_date=run.batch_date, stage="raw", validated_at=run.now
        )
        con.commit()
        failures = [_gate_failure(o) for o in combine(verdict.blocking)]
        raise QualityGateError(
            f"raw batch {run.batch_date} (batch {run.batch_id}, run {run.run_id}) blocked by "
            f"{len(failures)} failed expectation(s); nothing of {run.partition.name} was loaded "
            f"(Data Docs: {run.runner.index_path})",
            failures,
        )

    run.say("loading passing rows into raw")
    loaded = _load(run, order)
    quarantined, quarantined_rows = _quarantine_counts(run)
    seconds = time.perf_counter() - started
    run.say(
        f"loaded {sum(loaded.values()):,} rows into {len(loaded)} raw tables, quarantined "
        f"{sum(quarantined_rows.values()):,} rows, {len(warnings)} warning(s) in {seconds:.1f}s"
    )
    return RawValidationResult(
        run_id=run.run_id,
        batch_date=run.batch_date,
        batch_id=run.batch_id,
        partition=run.partition,
        warehouse=run.settings.warehouse_path,
        data_docs_index=run.runner.index_path,
        loaded=loaded,
        quarantined=quarantined,
        quarantined_rows=quarantined_rows,
        warnings=warnings,
        seconds=seconds,
    )


# --- per-table validation ------------------------------------------------------------------------


def _validate_table(run: _Run, table: Table) -> None:
    suite = read_suite("raw", table.name)
    lf = run.scan(table.name)
    # Every raw rule judges a row on its own, so any split of the rows gives the same outcome.
    # Consecutive rows, not business dates: a landed file is rarely sorted by date, and a date slice
    # read the whole file each time (71 reads of 135 M daily_sales rows on the large tier), where a
    # row range reads only its own row groups.
    rows = pl.scan_parquet(run.path(table.name)).select(pl.len()).collect().item()
    slices = row_slices(rows, run.params.max_rows_per_chunk)
    run.say(f"validating {table.name} ({rows:,} rows{f', {len(slices)} slices' if len(slices) > 1 else ''})")
    parameters = run.params.suite_parameters(run.batch_date)

    def prepared(offset: int, length: int) -> tuple[int, int, pl.DataFrame, Any]:
        frame = _with_references(run, suite, lf.slice(offset, length).collect())
        return offset, length, frame, to_gx_frame(frame)

    for offset, length, frame, gx_frame in read_ahead(prepared(o, n) for o, n in slices):
        label = "" if len(slices) == 1 else f"rows_{offset + 1}-{offset + length}"
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


_DONE = object()
T = TypeVar("T")


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items`` in order, each next one produced in a thread while the caller uses this one.

    GX's pandas checks keep one core busy; reading the next slice and converting it for GX (polars
    and Arrow, which release the GIL) use the other meanwhile. Nothing else touches ``items``.
    """
    source = iter(items)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, source, _DONE)
        while (item := pending.result()) is not _DONE:
            pending = pool.submit(next, source, _DONE)
            yield item


def _with_references(run: _Run, suite: SuiteSpec, frame: pl.DataFrame) -> pl.DataFrame:
    # Referential integrity is checked as "the derived column _<col>_in_<table> is true" rather than
    # expect_column_values_to_be_in_set(col, value_set=<all keys>): GX walks a value_set through
    # pydantic's .dict() about a hundred times per expectation (5 s for 50k customer ids on 600k
    # rows, minutes for the large tier's 2M) and renders every value into the Data Docs page
    # (2.5 MB for 50k ids). The membership test is a hash join here; GX still decides, reports and
    # names the failing rows.
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


def _stash_rejected(run: _Run, table: Table, outcome: Outcome, frame: pl.DataFrame) -> None:
    """Keep the failing rows of a quarantine rule in a temp table until the load decides."""
    rule = outcome.rule
    failing = pl.DataFrame({ROW: outcome.rows}, schema={ROW: frame.schema[ROW]}).unique()
    bad = frame.join(failing, on=ROW, how="semi")
    rejected = bad.select(
        pl.lit(run.run_id).alias("run_id"),
        pl.lit(run.batch_date).alias("batch_date"),
        pl.lit(table.name).alias("table_name"),
        pl.lit(rule.name).alias("rule"),
        pl.lit(rule.severity.value).alias("severity"),
        _reason(rule).alias("reason"),
        pl.col(ROW).cast(pl.Int64).alias("row_number"),
        pl.struct(list(table.key)).struct.json_encode().alias("row_key"),
        pl.struct(table.column_names).struct.json_encode().alias("row_json"),
        pl.lit(run.now).alias("quarantined_at"),
    ).cast(QUARANTINE_SCHEMA)
    insert_frame(run.con, _TEMP_REJECTED, rejected)


def _reason(rule: Rule) -> pl.Expr:
    parts: list[pl.Expr] = [pl.lit(f"{rule.description} (")]
    for i, c in enumerate(rule.source_columns):
        parts += [pl.lit(f"{', ' if i else ''}{c}="), pl.col(c).cast(pl.String).fill_null("null")]
    parts.append(pl.lit(")"))
    return pl.concat_str(parts)


# --- reference keys ------------------------------------------------------------------------------


def _load_references(run: _Run) -> None:
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


def _add_batch_references(run: _Run, table: str) -> None:
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


# --- batch-level checks --------------------------------------------------------------------------


def _batch_checks(run: _Run, order: list[str]) -> None:
    parameters = run.params.suite_parameters(run.batch_date)

    def check(name: str, frame: pl.DataFrame, chunk: str = "") -> None:
        check_gx(name, gx_frame(frame), chunk)

    def gx_frame(frame: pl.DataFrame) -> Any:
        return to_gx_frame(frame.with_row_index(ROW, offset=1))

    def check_gx(name: str, frame: Any, chunk: str = "") -> None:
        suite = read_suite("raw_batch", name)
        run_name = f"{run.run_id}_{chunk}" if chunk else run.run_id
        run.outcomes += run.runner.run(suite, frame, parameters, run_name, chunk=chunk)

    run.say("checking the batch: timeliness, daily_sales grid, reconciliation, quarantine rate")
    check("timeliness", _timeliness_frame(run, order))
    if "daily_sales" in order:
        grid = _grid_frame(run)
        if grid is not None:
            check("daily_sales_grid", grid)
    if "daily_sales" in order and "order_lines" in order:
        compared = _reconciliation_inputs(run)
        if compared is not None:
            days = _reconciliation_days(*compared)
            check("sales_reconciliation_daily", days)
            frames = _reconciliation_frames(run, *compared, days)
            for chunk, frame in read_ahead((c, gx_frame(f)) for c, f in frames):
                check_gx("sales_reconciliation", frame, chunk)
    elif "daily_sales" in order or "order_lines" in order:
        run.notes.append(
            "sales_reconciliation skipped: the batch does not hold both daily_sales and order_lines"
        )
    check("quarantine_rate", _quarantine_rate_frame(run, order))


def _timeliness_frame(run: _Run, order: list[str]) -> pl.DataFrame:
    rows = []
    for name in order:
        if name not in DAILY_GRAIN_TABLES:
            continue
        column = TABLES[name].date_column
        assert column is not None
        latest = run.passing(name).select(pl.col(column).max()).collect().item()
        behind = (run.batch_date - latest).days if latest is not None else None
        rows.append(
            {"table_name": name, "latest_date": latest, "batch_date": run.batch_date, "days_behind": behind}
        )
    return pl.DataFrame(
        rows,
        schema={
            "table_name": pl.String,
            "latest_date": pl.Date,
            "batch_date": pl.Date,
            "days_behind": pl.Int64,
        },
    )


def _grid_frame(run: _Run) -> pl.DataFrame | None:
    channels = list(run.params.channels)
    sales = run.passing("daily_sales").filter(pl.col("channel").is_in(channels))
    span = sales.select(pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi")).collect().row(0)
    products = run.products
    if span[0] is None or products is None or products.is_empty():
        run.notes.append("daily_sales_grid skipped: no daily_sales rows passed, or no products known")
        return None
    # Every day from the first to the last sales day, so that a missing day shows as 0% coverage.
    days = pl.DataFrame({"date": pl.date_range(span[0], span[1], "1d", eager=True)})
    launches = products["launch_date"].drop_nulls().sort()
    launched = pl.Series(launches.search_sorted(days["date"], side="right"), dtype=pl.Int64)
    present = (
        sales.join(products.lazy().select("sku_id", "launch_date"), on="sku_id", how="inner")
        .filter(pl.col("date") >= pl.col("launch_date"))
        .group_by("date")
        .agg(pl.len().cast(pl.Int64).alias("present_cells"))
        .collect()
    )
    return (
        days.with_columns((launched * len(channels)).alias("expected_cells"))
        .join(present, on="date", how="left")
        .with_columns(pl.col("present_cells").fill_null(0))
        .with_columns(
            pl.when(pl.col("expected_cells") > 0)
            .then(pl.col("present_cells") / pl.col("expected_cells"))
            .otherwise(None)
            .alias("coverage")
        )
        .select("date", "expected_cells", "present_cells", "coverage")
    )


def _reconciliation_inputs(run: _Run) -> tuple[pl.LazyFrame, pl.LazyFrame] | None:
    """daily_sales units and order_lines quantities per key, as they would load, over the days both cover."""
    key = _RECONCILIATION_KEY
    sales = run.passing("daily_sales").select(*key, pl.col("units").cast(pl.Int64).alias("units_daily_sales"))
    lines = run.passing("order_lines").select(
        pl.col("order_date").alias("date"), "sku_id", "channel", pl.col("quantity").cast(pl.Int64)
    )
    span = [pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi")]
    lo_s, hi_s = sales.select(span).collect().row(0)
    lo_l, hi_l = lines.select(span).collect().row(0)
    if None in (lo_s, hi_s, lo_l, hi_l) or max(lo_s, lo_l) > min(hi_s, hi_l):
        run.notes.append("sales_reconciliation skipped: daily_sales and order_lines share no day")
        return None
    # Compared only over the days both tables cover: a daily feed may carry late order lines.
    first, last = max(lo_s, lo_l), min(hi_s, hi_l)
    bad_keys = pl.concat(
        [
            run.quarantined("daily_sales").select(key).collect(),
            run.quarantined("order_lines")
            .select(pl.col("order_date").alias("date"), "sku_id", "channel")
            .collect(),
        ]
    )
    in_range = pl.col("date").is_between(first, last)
    return (
        exclude_keys(sales, bad_keys, key).filter(in_range),
        exclude_keys(lines, bad_keys, key).filter(in_range),
    )


def units_checksum(units: str) -> pl.Expr:
    """Aggregate: sum(hash(sku_id) * units) modulo _CHECKSUM_MODULUS, an Int64.

    Linear in the units, so a day's order lines give the same checksum as its daily_sales rows
    exactly when every SKU's quantities add up to its units (bar a 2**-61 coincidence), without
    summing the lines per key or joining the two tables.
    """
    product = pl.col("sku_id").hash(_CHECKSUM_SEED).cast(pl.Int128) * pl.col(units).cast(pl.Int128)
    return (product.sum() % _CHECKSUM_MODULUS).cast(pl.Int64)


def _reconciliation_days(sales: pl.LazyFrame, lines: pl.LazyFrame) -> pl.DataFrame:
    """One row per (date, channel): units and units checksum of daily_sales and of order_lines."""
    sides = [
        frame.group_by(_RECONCILIATION_DAY).agg(
            pl.col(units).sum().alias(f"units_{name}"), units_checksum(units).alias(f"checksum_{name}")
        )
        for frame, units, name in (
            (sales, "units_daily_sales", "daily_sales"),
            (lines, "quantity", "order_lines"),
        )
    ]
    totals = pl.collect_all(sides)
    # A side without rows for a day counts as zero units, as a missing key does per key.
    return (
        totals[0]
        .join(totals[1], on=_RECONCILIATION_DAY, how="full", coalesce=True)
        .fill_null(0)
        .sort(_RECONCILIATION_DAY)
    )


def _reconciliation_frames(
    run: _Run, sales: pl.LazyFrame, lines: pl.LazyFrame, days: pl.DataFrame
) -> Iterator[tuple[str, pl.DataFrame]]:
    """The per-key comparison, only for the days whose checksums differ (it names the keys).

    Joining every key of the large tier's history batch took about 35 s; the checksums of every
    day take about 5 s, and a clean batch needs no more than that.
    """
    key = _RECONCILIATION_KEY
    differ = days.filter(pl.col("checksum_daily_sales") != pl.col("checksum_order_lines"))
    if differ.is_empty():
        # Validated all the same, with no rows: every run records a result for every expectation.
        schema = {**sales.collect_schema(), "units_order_lines": pl.Int64}
        yield "", pl.DataFrame(schema=schema)
        return
    wanted = differ.select(_RECONCILIATION_DAY).lazy()
    sales = sales.join(wanted, on=_RECONCILIATION_DAY, how="semi")
    lines = lines.join(wanted, on=_RECONCILIATION_DAY, how="semi")
    # Sliced by SKU: every row of a key falls in one slice whatever the split, and landed files are
    # usually written SKU by SKU, so a SKU range reads only its own row groups (a date range read
    # both whole files once per slice: 70 s on the large tier). Null SKUs were quarantined.
    counts = sales.group_by(pl.col("sku_id").alias("value")).agg(pl.len().alias("n")).collect()
    chunks = [c for c in plan_chunks(counts, run.params.max_rows_per_chunk) if not c.null_values]
    for chunk in chunks:
        in_chunk = chunk.predicate("sku_id")
        summed = lines.filter(in_chunk).group_by(key).agg(pl.col("quantity").sum().alias("units_order_lines"))
        frame = (
            sales.filter(in_chunk)
            .join(summed, on=key, how="full", coalesce=True)
            .with_columns(pl.col("units_daily_sales", "units_order_lines").fill_null(0))
            .sort(key)
            .collect()
        )
        yield ("" if len(chunks) == 1 else f"sku_{chunk.label}"), frame


def exclude_keys(frame: pl.LazyFrame, bad_keys: pl.DataFrame, key: Sequence[str]) -> pl.LazyFrame:
    """``frame`` without the keys of quarantined rows; a null key part matches any value.

    A quarantined order line with a null sku_id still counted towards its day's daily_sales
    units, so every key of that (date, channel) is left out of the comparison. A row whose whole
    key is null cannot be placed and excludes nothing.
    """
    if bad_keys.is_empty():
        return frame
    known = bad_keys.select([pl.col(c).is_not_null().alias(c) for c in key]).unique()
    for pattern in known.iter_rows(named=True):
        cols = [c for c in key if pattern[c]]
        if not cols:
            continue
        match = pl.all_horizontal(
            [pl.col(c).is_not_null() if pattern[c] else pl.col(c).is_null() for c in key]
        )
        subset = bad_keys.filter(match).select(cols).unique()
        frame = frame.join(subset.lazy(), on=cols, how="anti", nulls_equal=False)
    return frame


def _quarantine_rate_frame(run: _Run, order: list[str]) -> pl.DataFrame:
    counts = dict(
        run.con.execute(
            f"select table_name, count(distinct row_number) from {_TEMP_REJECTED} group by table_name"
        ).fetchall()
    )
    rows = []
    for name in order:
        total = run.rows.get(name, 0)
        bad = int(counts.get(name, 0))
        rows.append(
            {
                "table_name": name,
                "rows": total,
                "quarantined_rows": bad,
                "quarantined_rate": bad / total if total else 0.0,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "table_name": pl.String,
            "rows": pl.Int64,
            "quarantined_rows": pl.Int64,
            "quarantined_rate": pl.Float64,
        },
    )


# --- load ----------------------------------------------------------------------------------------


def _load(run: _Run, order: list[str]) -> dict[str, int]:
    con = run.con
    # Both threads write row groups as they come: 22% faster (large daily_sales: 18.8 s -> 14.7 s).
    # Nothing reads raw in row order; each insert is one batch, so _batch_date zonemaps stay tight.
    con.execute("set preserve_insertion_order = false")
    loaded: dict[str, int] = {}
    con.begin()
    try:
        for name in order:
            create_raw_table(con, TABLES[name])
        create_quarantine_table(con)
        existing = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = current_database() and table_schema = 'raw' and table_name in "
                f"({', '.join('?' for _ in TABLES)})",
                list(TABLES),
            ).fetchall()
        ]
        for name in existing:
            # The partition replaces everything this batch date loaded before, tables it no longer
            # holds included.
            con.execute(f"delete from raw.{quote(name)} where _batch_date = ?", [run.batch_date])
        rejected = _quarantine_counts(run)[1]
        for name in order:
            table = TABLES[name]
            columns = ", ".join(quote(c) for c in table.column_names)
            insert = (
                f"insert into raw.{quote(name)} select {columns}, ?::date, ?, ?::timestamp "
                "from read_parquet(?, file_row_number = true) p"
            )
            values: list[Any] = [run.batch_date, run.batch_id, run.now, str(run.path(name))]
            if rejected.get(name):
                # Only where something was quarantined: the anti-join costs 45% of the insert.
                insert += (
                    f" where not exists (select 1 from {_TEMP_REJECTED} r "
                    "where r.table_name = ? and r.row_number = p.file_row_number + 1)"
                )
                values.append(name)
            loaded[name] = int(con.execute(insert, values).fetchall()[0][0])
            drop_superseded_rows(con, table)
        con.execute("delete from quarantine.rejected_rows where batch_date = ?", [run.batch_date])
        con.execute(f"insert into quarantine.rejected_rows select * from {_TEMP_REJECTED}")
        insert_validation_results(
            con,
            combine(run.outcomes),
            run_id=run.run_id,
            run_date=run.batch_date,
            stage="raw",
            validated_at=run.now,
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return loaded


def drop_superseded_rows(con: Any, table: Table) -> None:
    """Delete the rows of master data (a table without a business date) whose key a later batch carries.

    customers, products and warehouses land whole every day (2 M customers a day on the large tier).
    Kept batch after batch, every read of them (the staging dedupe, the reference keys above, the
    marts' row floors) grew by a snapshot a day. Each key keeps its latest row, the one staging
    picks, so what staging and the gates see does not change, with one exception: a re-landed older
    batch that drops a key no later batch carries loses the key instead of falling back to an even
    older row. The landed partitions still hold every batch's files. Dated tables keep every batch.
    """
    if table.date_column is not None:
        return
    name, key = quote(table.name), ", ".join(quote(k) for k in table.key)
    con.execute(
        f"delete from raw.{name} where rowid in (select rowid from (select rowid, row_number() over "
        f"(partition by {key} order by _batch_date desc, _loaded_at desc, _batch_id desc) as rank "
        f"from raw.{name}) where rank > 1)"
    )


def _quarantine_counts(run: _Run) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    by_rule: dict[str, dict[str, int]] = {}
    for table, rule, n in run.con.execute(
        f"select table_name, rule, count(*) from {_TEMP_REJECTED} group by all order by all"
    ).fetchall():
        by_rule.setdefault(table, {})[rule] = int(n)
    rows = dict(
        run.con.execute(
            f"select table_name, count(distinct row_number) from {_TEMP_REJECTED} group by all order by all"
        ).fetchall()
    )
    return by_rule, {k: int(v) for k, v in rows.items()}


# --- messages ------------------------------------------------------------------------------------


def _gate_failure(o: Outcome) -> GateFailure:
    failure = o.gate_failure()
    if o.table not in TABLES:
        # A batch-level check: its frame's row numbers mean nothing to a reader.
        samples = tuple({k: v for k, v in s.items() if k != ROW} for s in failure.samples)
        failure = dataclasses.replace(failure, samples=samples)
    if o.table in _CHECK_SUBJECT:
        return dataclasses.replace(failure, table=f"{_CHECK_SUBJECT[o.table]} (check {o.table})")
    tables = sorted({s["table_name"] for s in o.samples if isinstance(s.get("table_name"), str)})
    if tables:
        return dataclasses.replace(failure, table=f"{', '.join(tables)} (check {o.table})")
    return failure


def _describe(o: Outcome) -> str:
    return _gate_failure(o).one_line()


def _silent(_message: str) -> None:
    return None
