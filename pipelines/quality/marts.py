"""Audit and publish the marts: the audit and publish steps of write-audit-publish.

dbt builds every mart into ``build_marts`` (write). :func:`validate_marts` checks the data interval
of each mart with its suite (``expectations/marts/<mart>.json``): the rows of the run date for
dated marts, the whole table for dimensions (audit). :func:`publish_marts` then brings every
``marts`` table level with ``build_marts`` in one transaction (publish; only the rewritten dates of
incremental marts are copied), so analysts see either the old
marts or the new ones, never a mix, and a failed audit or copy leaves ``marts`` as it was.

Every audit records what it saw of the marts it checks (a cheap state of each, see
:func:`_build_state`) in ``quality.marts_audits``; publishing, whichever command runs it, refuses
unless the latest audit passed and those marts are still as that audit saw them.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.quality.engine import (
    ROW,
    GateFailure,
    Outcome,
    QualityError,
    QualityGateError,
    SuiteRunner,
    classify,
    new_run_id,
    to_gx_frame,
)
from pipelines.quality.store import insert_validation_results, quote, table_exists, utc_now
from pipelines.quality.suites import Dimension, Rule, Severity, list_suites, read_suite
from pipelines.warehouse import connect_warehouse

__all__ = [
    "AUDITS_TABLE",
    "BUILD_SCHEMA",
    "PUBLISH_SCHEMA",
    "MartsValidationResult",
    "publish_marts",
    "validate_marts",
]

BUILD_SCHEMA = "build_marts"
PUBLISH_SCHEMA = "marts"
# One row per marts audit: what it saw of build_marts and whether it passed (see publish_marts).
AUDITS_TABLE = "quality.marts_audits"
_AUDITS_DDL = f"""
create table if not exists {AUDITS_TABLE} (
    run_id varchar, run_date date, audited_at timestamp, passed boolean, build_state varchar
)"""
# Incremental publish (see _publish_table): dbt's write stamp on incremental marts, and their dates.
_WRITTEN_AT = "_written_at"
_DATE_COLUMNS = ("date", "order_date")

# Lower bounds on a mart's rows for the run date, from what raw holds (the parameter min_rows).
# A mart the raw tables cannot bound gets 1; so does any mart whose raw table is not there yet.
_MIN_ROWS_SQL: dict[str, tuple[str, str]] = {
    "dim_products": ("products", "select count(distinct sku_id) from raw.products"),
    "dim_customers": ("customers", "select count(distinct customer_id) from raw.customers"),
    "fct_sales_daily": (
        "daily_sales",
        "select count(*) from (select distinct sku_id, channel from raw.daily_sales where date = ?)",
    ),
    "fct_inventory_daily": (
        "inventory_snapshots",
        "select count(*) from (select distinct sku_id, warehouse_id "
        "from raw.inventory_snapshots where date = ?)",
    ),
    "fct_prices_daily": (
        "products",
        "select count(distinct sku_id) from raw.products where launch_date <= ?",
    ),
    "mart_demand_features": (
        "products",
        "select count(distinct sku_id) from raw.products where launch_date <= ?",
    ),
}

# Marts built from an optional raw table (the minimum is products and daily_sales): where that table
# exists but holds no row (never landed; `ecom validate raw` creates every contract table), the mart
# is empty by design, and its suite is skipped with a warning instead of failing on row counts.
_OPTIONAL_SOURCES: dict[str, str] = {
    "dim_customers": "customers",
    "mart_customer_features": "customers",
    "fct_orders": "order_lines",
    "fct_inventory_daily": "inventory_snapshots",
}
# Marts with one row per sales period (land.grain): on the weekly grain their audited rows are the
# latest week daily_sales holds on or before the run date (a week is dated by its first day, and a
# weekly export lands after its week has ended).
_PERIOD_MARTS = frozenset(
    {"fct_sales_daily", "fct_prices_daily", "mart_demand_features", "rpt_kpi_daily", "rpt_category_daily"}
)

# Stand-in rule for "the suite fits the table" problems, so they are recorded like any other result.
_SHAPE_RULE = Rule(
    name="table_matches_suite",
    type="table_matches_suite",
    kwargs={},
    severity=Severity.BLOCK,
    dimension=Dimension.COMPLETENESS,
    description="build_marts holds the table with every column its suite names",
    row_level=False,
)


@dataclass(frozen=True)
class MartsValidationResult:
    """What a marts audit did.

    Attributes:
        run_id: Identifies this audit in ``quality.validation_results``; pass it to
            :func:`publish_marts` to publish only what this audit passed.
        run_date: The data interval audited.
        validated: Rows validated per mart (the run date's rows, or the whole dimension).
        min_rows: The ``min_rows`` parameter each mart was checked against.
        warnings: One line per failed ``warn`` rule.
        unaudited: ``build_marts`` tables without a suite (published unaudited).
        data_docs_index: Data Docs entry page.
        seconds: Wall time of the call.
    """

    run_id: str
    run_date: dt.date
    validated: dict[str, int]
    min_rows: dict[str, int]
    warnings: list[str]
    unaudited: list[str]
    data_docs_index: Path
    seconds: float

    def summary(self) -> str:
        """A few lines for a person: what was audited, warnings, where the docs are."""
        rows = sum(self.validated.values())
        lines = [
            f"audited {len(self.validated)} marts for {self.run_date} (run {self.run_id}, {rows:,} rows) "
            f"in {self.seconds:.1f}s: every blocking expectation passed"
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"Data Docs: {self.data_docs_index}")
        return "\n".join(lines)


def validate_marts(
    settings: Settings,
    run_date: dt.date,
    run_id: str | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    channels: tuple[str, ...] | None = None,
) -> MartsValidationResult:
    """Audit every ``build_marts`` table that has a suite, for the data interval of ``run_date``.

    Args:
        settings: Paths (the warehouse, ``reports/data_docs``).
        run_date: The data interval: dated marts are checked on their rows of this date.
        run_id: Recorded with every result row; default ``marts_<date>_<utc time>_<random>``.
        progress: Called with short human-readable messages.
        channels: Value set of the sales channels (default: ``quality.channels``; when that is
            none, the channels raw.daily_sales holds).

    Returns:
        Rows validated per mart, warnings, unaudited tables and the Data Docs index.

    Raises:
        QualityError: The warehouse does not exist.
        QualityGateError: A blocking expectation failed, or a mart with a suite is missing from
            ``build_marts`` or lacks a column its suite names. Results and the audit (failed, so
            :func:`publish_marts` refuses this build) are recorded either way; ``marts`` is not
            touched.
    """
    import pandas as pd

    started = time.perf_counter()
    say = progress or _silent
    run_id = run_id or new_run_id("marts", run_date)
    if not settings.warehouse_path.is_file():
        raise QualityError(f"no warehouse at {settings.warehouse_path}; build the marts first (dbt build)")
    now = utc_now()
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        runner = SuiteRunner.for_reports(settings.reports_dir)
        built = relations(con, BUILD_SCHEMA)
        suites = list_suites("marts")
        # Taken before any mart is read; no other process can write while this one holds the file.
        state = _build_state(con, built, suites)
        outcomes: list[Outcome] = []
        validated: dict[str, int] = {}
        min_rows: dict[str, int] = {}
        skipped: list[str] = []
        channels = channels or settings.quality.channels or _data_channels(con)
        period_date = _period_date(con, run_date) if settings.land.grain == "weekly" else run_date
        for name in suites:
            suite = read_suite("marts", name)
            source = _OPTIONAL_SOURCES.get(name)
            if source and _is_empty(con, "raw", source):
                skipped.append(
                    f"build_marts.{name} not audited: raw.{source} holds no rows (an optional table "
                    "never landed)"
                )
                continue
            audited_date = period_date if name in _PERIOD_MARTS else run_date
            if name not in built:
                outcomes.append(
                    _shape_problem(name, f"build_marts.{name} does not exist (dbt has not built it)")
                )
                continue
            date_column = suite.meta.get("date_column")
            columns = set(built[name])
            missing = sorted((suite.columns | ({date_column} if date_column else set())) - columns)
            if missing:
                outcomes.append(
                    _shape_problem(
                        name,
                        f"suite {suite.path.name} names column(s) {missing} that build_marts.{name} "
                        f"does not have (it has: {', '.join(built[name])})",
                    )
                )
                continue
            query = f"select * from {BUILD_SCHEMA}.{quote(name)}"
            params: list[Any] = []
            if date_column:
                query += f" where {quote(date_column)} = ?"
                params.append(audited_date)
            frame = con.sql(query, params=params).pl().with_row_index(ROW, offset=1)
            validated[name] = frame.height
            min_rows[name] = _min_rows(con, name, audited_date)
            say(
                f"auditing {name} ({frame.height:,} rows{' for ' + str(audited_date) if date_column else ''})"
            )
            outcomes += runner.run(
                suite,
                to_gx_frame(frame),
                {
                    "run_date": pd.Timestamp(audited_date),
                    "min_rows": min_rows[name],
                    "channels": list(channels),
                },
                run_name=run_id,
            )
        if validated:
            runner.build_docs()
        verdict = classify(outcomes)
        con.begin()
        insert_validation_results(
            con, outcomes, run_id=run_id, run_date=run_date, stage="marts", validated_at=now
        )
        _record_audit(con, run_id, run_date, now, passed=not verdict.blocked, state=state)
        con.commit()
    finally:
        con.close()

    warnings = [o.gate_failure().one_line() for o in verdict.warnings] + skipped
    unaudited = sorted(set(built) - set(suites))
    warnings += [
        f"build_marts.{t} has no suite in expectations/marts/: published unaudited" for t in unaudited
    ]
    for w in warnings:
        say(f"warning: {w}")
    if verdict.blocked:
        failures = [_gate_failure(o) for o in verdict.blocking]
        raise QualityGateError(
            f"marts audit for {run_date} (run {run_id}) failed {len(failures)} blocking expectation(s); "
            f"nothing was published (Data Docs: {runner.index_path})",
            failures,
        )
    seconds = time.perf_counter() - started
    say(f"audited {len(validated)} marts for {run_date} in {seconds:.1f}s")
    return MartsValidationResult(
        run_id=run_id,
        run_date=run_date,
        validated=validated,
        min_rows=min_rows,
        warnings=warnings,
        unaudited=unaudited,
        data_docs_index=runner.index_path,
        seconds=seconds,
    )


def publish_marts(
    settings: Settings,
    run_id: str | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Bring every ``marts`` table level with ``build_marts``, all in one transaction (see _publish_table).

    Only an audited build is published: the audit (the latest one in ``quality.marts_audits``, or
    ``run_id``) must have passed every blocking expectation, and every mart it checked must still be
    as it saw it. A rebuild since the audit (dbt rewrote or dropped an audited mart) needs a new
    audit first; marts without a suite are published unaudited, as the audit warned.

    Args:
        settings: Where the warehouse is.
        run_id: The marts audit this publish follows (the DAG passes its own); default: the
            latest audit recorded.
        progress: Called with short human-readable messages.

    Returns:
        The published table names, sorted.

    Raises:
        QualityError: Nothing to publish; no audit is recorded (or not ``run_id``); the audit
            failed (the message names its failed checks); ``build_marts`` changed after the audit
            (the message names the tables); or a copy failed. In every case ``marts`` is exactly
            as it was.
    """
    say = progress or _silent
    if not settings.warehouse_path.is_file():
        raise QualityError(f"no warehouse at {settings.warehouse_path}; nothing to publish")
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        tables = dict(sorted(relations(con, BUILD_SCHEMA).items()))
        if not tables:
            raise QualityError(
                f"nothing to publish: schema {BUILD_SCHEMA} has no tables (run dbt build first)"
            )
        audit = _check_audit(con, run_id, tables)
        say(f"publishing the build audited by {audit}")
        publish_tables(con, tables, say)
    finally:
        con.close()
    say(f"published {len(tables)} tables to {PUBLISH_SCHEMA}")
    return list(tables)


def publish_tables(con: Any, tables: dict[str, dict[str, str]], say: Callable[[str], None]) -> None:
    """Bring each ``marts.<name>`` level with ``build_marts.<name>``, all in one transaction.

    Args:
        con: A warehouse connection.
        tables: Name -> columns (as :func:`relations` gives them) of the ``build_marts`` tables.
        say: Called with a line per table.

    Raises:
        QualityError: A copy failed; nothing was published (``marts`` is as it was).
    """
    import duckdb

    step = f"create schema {PUBLISH_SCHEMA}"
    con.begin()
    try:
        con.execute(f"create schema if not exists {PUBLISH_SCHEMA}")
        published = relations(con, PUBLISH_SCHEMA)
        for name, columns in tables.items():
            step = f"copying {BUILD_SCHEMA}.{name}"
            say(f"publishing {PUBLISH_SCHEMA}.{name}: {_publish_table(con, name, columns, published)}")
        con.commit()
    except duckdb.Error as exc:
        con.rollback()
        raise QualityError(
            f"publishing failed while {step}: {exc}; nothing was published ({PUBLISH_SCHEMA} is as it was)"
        ) from exc
    except BaseException:
        con.rollback()
        raise


def _publish_table(con: Any, name: str, columns: dict[str, str], published: dict[str, dict[str, str]]) -> str:
    """Bring ``marts.<name>`` level with ``build_marts.<name>``; returns what was done, for progress.

    Copying every mart each day costs time that grows with history. dbt stamps every
    row an incremental mart writes with the run's start time (``_written_at``), so the rows written
    since the last publish are those stamped later than anything published: only the business
    dates they cover are replaced. A new or changed table (its columns or their types), or one without
    dates or stamps, is copied whole; so is any table whose row count would not agree afterwards.
    """
    build, target = f"{BUILD_SCHEMA}.{quote(name)}", f"{PUBLISH_SCHEMA}.{quote(name)}"
    date_column = next((c for c in _DATE_COLUMNS if c in columns), None)
    same_columns = list(published.get(name, {}).items()) == list(columns.items())
    if same_columns and date_column and _WRITTEN_AT in columns:
        mark = con.execute(f"select max({_WRITTEN_AT}) from {target}").fetchone()[0]
        if mark is not None:
            day = quote(date_column)
            lo, hi = con.execute(
                f"select min({day}), max({day}) from {build} where {_WRITTEN_AT} > ?", [mark]
            ).fetchone()
            done = "unchanged"
            if lo is not None:
                in_range = f"{day} between ? and ?"
                con.execute(f"delete from {target} where {in_range}", [lo, hi])
                con.execute(f"insert into {target} select * from {build} where {in_range}", [lo, hi])
                done = f"{date_column} {lo}..{hi} replaced"
            counts = con.execute(f"select (select count(*) from {target}), (select count(*) from {build})")
            if len(set(counts.fetchone())) == 1:
                return done
    con.execute(f"create or replace table {target} as select * from {build}")
    return "copied whole"


def relations(con: Any, schema: str) -> dict[str, dict[str, str]]:
    """Tables and views of ``schema`` with their columns and types, in column order."""
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema = ? order by table_name, ordinal_position",
        [schema],
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        out.setdefault(table, {})[column] = data_type
    return out


def _min_rows(con: Any, mart: str, run_date: dt.date) -> int:
    spec = _MIN_ROWS_SQL.get(mart)
    if spec is None or not table_exists(con, "raw", spec[0]):
        return 1
    sql = spec[1]
    rows = con.execute(sql, [run_date] * sql.count("?")).fetchall()
    return max(1, int(rows[0][0] or 0))


def _is_empty(con: Any, schema: str, table: str) -> bool:
    """The table exists and holds no row (a missing table is not "empty": nothing is known of it)."""
    if not table_exists(con, schema, table):
        return False
    return con.execute(f"select not exists (select 1 from {schema}.{quote(table)})").fetchall()[0][0]


def _data_channels(con: Any) -> tuple[str, ...]:
    """The channels the landed sales hold (``quality.channels: null``), lower-cased as staging does."""
    if not table_exists(con, "raw", "daily_sales"):
        return ()
    rows = con.execute(
        "select distinct lower(trim(channel)) from raw.daily_sales where channel is not null order by 1"
    ).fetchall()
    return tuple(r[0] for r in rows)


def _period_date(con: Any, run_date: dt.date) -> dt.date:
    """The weekly grain's audited period: the latest sales week on or before the run date (else it)."""
    if not table_exists(con, "raw", "daily_sales"):
        return run_date
    latest = con.execute("select max(date) from raw.daily_sales where date <= ?", [run_date]).fetchall()[0][0]
    return latest or run_date


def _build_state(con: Any, relations: dict[str, dict[str, str]], audited: list[str]) -> dict[str, str]:
    """What an audit saw of each mart it checks, cheap enough to take at every audit and publish.

    Only the marts with a suite (``audited``) count: the others are published unaudited, as the
    audit warns, and may change after it (the model-output marts, rebuilt after scoring).
    A mart missing from ``build_marts`` has no state. A table's state is its columns and types, its
    row count and either the latest ``_written_at`` (incremental marts: every dbt run that writes
    a row stamps it with its own start time, and hashing the large facts would be slow) or a hash
    of its content (the rest, which are small). A view's state is its definition.
    """
    views = dict(
        con.execute(
            "select view_name, sql from duckdb_views() where database_name = current_database() "
            "and schema_name = ?",
            [BUILD_SCHEMA],
        ).fetchall()
    )
    state = {}
    for name in sorted(set(audited) & set(relations)):
        columns = relations[name]
        shape = ", ".join(f"{c} {t}" for c, t in columns.items())
        if name in views:
            state[name] = f"view ({shape}): {views[name]}"
            continue
        table = f"{BUILD_SCHEMA}.{quote(name)}"
        if _WRITTEN_AT in columns:
            sql = f"select count(*), max({_WRITTEN_AT}) from {table}"
        else:
            sql = f"select count(*), bit_xor(hash(t)) from {table} t"
        rows, mark = con.execute(sql).fetchall()[0]
        state[name] = (
            f"table ({shape}): {rows} rows, {'written' if _WRITTEN_AT in columns else 'hash'} {mark}"
        )
    return state


def _record_audit(
    con: Any, run_id: str, run_date: dt.date, audited_at: dt.datetime, *, passed: bool, state: dict[str, str]
) -> None:
    con.execute("create schema if not exists quality")
    con.execute(_AUDITS_DDL)
    con.execute(
        f"insert into {AUDITS_TABLE} values (?, ?, ?, ?, ?)",
        [run_id, run_date, audited_at, passed, json.dumps(state, sort_keys=True)],
    )


def _check_audit(con: Any, run_id: str | None, tables: dict[str, dict[str, str]]) -> str:
    """Refuse to publish unless the audit (``run_id``, else the latest) passed this very build.

    Returns:
        The audit, named for a progress line.
    """
    rows = []
    if table_exists(con, "quality", "marts_audits"):
        rows = con.execute(
            f"select run_id, run_date, audited_at, passed, build_state from {AUDITS_TABLE} "
            "where ? is null or run_id = ? order by audited_at desc, run_id desc limit 1",
            [run_id, run_id],
        ).fetchall()
    if not rows:
        raise QualityError(
            f"no marts audit{' ' + run_id if run_id else ''} recorded in {AUDITS_TABLE}: audit the build "
            "first (`ecom validate marts --date <run date>`); nothing was published"
        )
    audit_id, run_date, audited_at, passed, recorded = rows[0]
    named = (
        f"{'the latest ' if run_id is None else ''}marts audit {audit_id} "
        f"(run date {run_date}, {audited_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
    again = f"`ecom validate marts --date {run_date}`"
    # The audit's own rows: validate_marts writes them in the transaction that records the audit.
    failed = con.execute(
        "select table_name, expectation from quality.validation_results "
        "where run_id = ? and stage = 'marts' and not success and severity = 'block' order by 1, 2",
        [audit_id],
    ).fetchall()
    if failed or not passed:
        checks = "; ".join(f"{table}: {expectation}" for table, expectation in failed)
        raise QualityError(
            f"{named} failed {len(failed)} blocking expectation(s): "
            f"{checks or 'see quality.validation_results'}; nothing was published: fix the build, "
            f"then {again}"
        )
    seen, now = json.loads(recorded), _build_state(con, tables, list_suites("marts"))
    changed = sorted(name for name in seen.keys() | now.keys() if seen.get(name) != now.get(name))
    if changed:
        raise QualityError(
            f"build_marts changed after {named}: {', '.join(changed)} rebuilt or dropped since; "
            f"audit this build ({again}) before publishing; nothing was published"
        )
    return named


def _shape_problem(mart: str, message: str) -> Outcome:
    return Outcome(table=mart, rule=_SHAPE_RULE, success=False, error=message)


def _gate_failure(o: Outcome) -> GateFailure:
    if o.rule is _SHAPE_RULE:
        return GateFailure(
            table=f"{BUILD_SCHEMA}.{o.table}",
            expectation=o.rule.name,
            dimension=o.rule.dimension.value,
            failing=1,
            checked=None,
            description=o.error or "",
            row_level=False,
        )
    return o.gate_failure()


def _silent(_message: str) -> None:
    return None
