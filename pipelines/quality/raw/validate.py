"""``validate_raw``: check everything, then load what passes, or block the partition whole."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.data.contract import TABLES
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
)
from pipelines.quality.raw.batch import run_batch_checks
from pipelines.quality.raw.gates import add_batch_references, load_references, validate_table
from pipelines.quality.raw.load import check_id_codes, load_partition, quarantine_counts
from pipelines.quality.raw.run import REFERENCE_TABLES, TEMP_REJECTED, RawRun
from pipelines.quality.store import create_quarantine_table, insert_validation_results, utc_now
from pipelines.warehouse import connect_warehouse

# What a batch-level check is about, for messages.
_CHECK_SUBJECT = {
    "daily_sales_grid": "daily_sales",
    "sales_reconciliation_daily": "daily_sales vs order_lines",
    "sales_reconciliation": "daily_sales vs order_lines",
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


def validate_raw(
    settings: Settings,
    batch_date: dt.date,
    run_id: str | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> RawValidationResult:
    """Validate the landed partition ``raw/dt=<batch_date>`` and load its passing rows into DuckDB.

    Args:
        settings: Paths (the partition, the warehouse, ``reports/data_docs``), the thresholds
            (``quality``: the documented policy unless configured otherwise) and the memory cap.
        batch_date: The partition to validate.
        run_id: Recorded with every result row; default ``raw_<date>_<utc time>_<random>``.
        progress: Called with short human-readable messages as the validation goes.

    Returns:
        Rows loaded and quarantined per table, warnings and where the Data Docs are.

    Raises:
        QualityError: There is no landed partition for the date, or a suite does not fit its data.
        QualityGateError: A blocking rule failed; nothing of the partition was loaded (``raw`` and
            ``quarantine`` are as they were) and the message names each failure.
    """

    started = time.perf_counter()
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
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        runner = SuiteRunner.for_reports(settings.reports_dir)
        run = RawRun(
            settings=settings,
            batch_date=batch_date,
            batch_id=str(manifest.get("batch_id", "")),
            run_id=run_id,
            partition=partition,
            runner=runner,
            con=con,
            say=say,
            now=utc_now(),
            rows={f["table"]: int(f["rows"]) for f in manifest.get("files", [])},
        )
        return _validate_and_load(run, order, started)
    finally:
        con.close()


def _validate_and_load(run: RawRun, order: list[str], started: float) -> RawValidationResult:
    con = run.con
    create_quarantine_table(con, TEMP_REJECTED, temp=True)
    check_id_codes(run)
    load_references(run)
    for name in order:
        validate_table(run, TABLES[name])
        if name in REFERENCE_TABLES:
            add_batch_references(run, name)
    run_batch_checks(run, order)

    verdict = classify(run.outcomes)
    combined = combine(run.outcomes)
    warnings = [*run.notes, *(_describe(o, run) for o in combine(verdict.warnings))]
    for w in warnings:
        run.say(f"warning: {w}")
    run.runner.build_docs()
    if verdict.blocked:
        con.begin()
        insert_validation_results(
            con, combined, run_id=run.run_id, run_date=run.batch_date, stage="raw", validated_at=run.now
        )
        con.commit()
        failures = [_gate_failure(o, run) for o in combine(verdict.blocking)]
        raise QualityGateError(
            f"raw batch {run.batch_date} (batch {run.batch_id}, run {run.run_id}) blocked by "
            f"{len(failures)} failed expectation(s); nothing of {run.partition.name} was loaded "
            f"(Data Docs: {run.runner.index_path})",
            failures,
        )

    run.say("loading passing rows into raw")
    loaded = load_partition(run, order)
    quarantined, quarantined_rows = quarantine_counts(run)
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


# --- messages ------------------------------------------------------------------------------------


def _gate_failure(o: Outcome, run: RawRun) -> GateFailure:
    failure = o.gate_failure()
    if o.table == "daily_sales_grid":
        failure = dataclasses.replace(failure, description=failure.description + _grid_advice(run))
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


def _grid_advice(run: RawRun) -> str:
    """The series with the most missing periods, and the settings that decide what is a gap."""
    noun = "week" if run.settings.land.grain == "weekly" else "day"
    more = run.grid_gap_series - len(run.grid_gaps)
    gaps = "; ".join(run.grid_gaps) + (f"; and {more:,} more series with gaps" if more else "")
    channels = run.params.channels
    return (
        f". Series ((sku_id, channel) pairs) with the most missing {noun}s: {gaps or 'none'}. A missing "
        f"{noun} is no row, not a zero: land the missing daily_sales rows, or set quality.min_grid_coverage "
        f"(now {run.params.min_grid_coverage}) to the share of series a {noun} must have"
        + (
            f"; only the channels of quality.channels ({', '.join(channels)}) count, null takes them "
            "from the data"
            if channels is not None
            else ""
        )
    )


def _describe(o: Outcome, run: RawRun) -> str:
    return _gate_failure(o, run).one_line()


def _silent(_message: str) -> None:
    return None
