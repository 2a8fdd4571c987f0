"""Every query the report runs against the published warehouse, returned as polars frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.capabilities import CapabilityStatus, capability_status, table_rows
from pipelines.report.sections import LoadedSection, load_sections
from pipelines.warehouse import connect_warehouse

TREND_DAYS = 180  # how far back the trend charts reach
ROLLING_DAYS = 7
MIX_DAYS = 28
MOVER_DAYS = 7

KPI_COLUMNS = (
    *("date", "gmv", "orders", "aov", "units", "stockout_rate", "fill_rate"),
    *("inventory_turnover", "return_rate"),
)
# Optional inputs: a section whose tables (or columns) are missing says "not available".
CATEGORY_DAILY = ("marts", "rpt_category_daily", ("date", "category_l1", "gmv"))
SALES = ("marts", "fct_sales_daily", ("date", "sku_id", "units", "revenue"))
PRODUCTS = ("marts", "dim_products", ("sku_id", "sku_name", "category_l1"))
DATES = ("marts", "dim_dates", ("date", "shopping_event"))
VALIDATIONS = (
    "quality",
    "validation_results",
    (
        *("run_id", "run_date", "stage", "table_name", "expectation", "dimension", "severity", "success"),
        *("unexpected_count", "element_count", "detail", "validated_at"),
    ),
)
REJECTED = (
    "quarantine",
    "rejected_rows",
    ("run_id", "batch_date", "table_name", "rule", "severity", "quarantined_at"),
)

SQL = {
    "catalog": """
        select table_schema || '.' || table_name as name, list(column_name) as columns
        from information_schema.columns
        group by all
    """,
    "kpi_daily": """
        select
            date,
            gmv::double as gmv,
            orders::double as orders,
            aov::double as aov,
            units::double as units,
            stockout_rate::double as stockout_rate,
            fill_rate::double as fill_rate,
            inventory_turnover::double as inventory_turnover,
            return_rate::double as return_rate,
        from marts.rpt_kpi_daily
        where date <= $run_date
        order by date
    """,
    "category_daily": """
        select date, category_l1, sum(gmv)::double as gmv
        from marts.rpt_category_daily
        where date > $run_date::date - $days and date <= $run_date
        group by all
        order by all
    """,
    # Units and GMV per SKU over the last MOVER_DAYS days and the MOVER_DAYS before them.
    "sku_changes": """
        with sales as (
            select
                sku_id,
                sum(units) filter (where date > $run_date::date - $days) as units_now,
                sum(units) filter (where date <= $run_date::date - $days) as units_before,
                sum(revenue) filter (where date > $run_date::date - $days) as gmv_now,
                sum(revenue) filter (where date <= $run_date::date - $days) as gmv_before,
            from marts.fct_sales_daily
            where date > $run_date::date - 2 * $days and date <= $run_date
            group by sku_id
        )
        select
            sales.sku_id,
            products.sku_name,
            {sku_code} as sku_code,
            products.category_l1,
            coalesce(sales.units_before, 0)::double as units_before,
            coalesce(sales.units_now, 0)::double as units_now,
            coalesce(sales.gmv_before, 0)::double as gmv_before,
            coalesce(sales.gmv_now, 0)::double as gmv_now,
        from sales
        left join marts.dim_products as products on products.sku_id = sales.sku_id
    """,
    # {phase} is event_phase, or null where dim_dates has no phases.
    "event_days": """
        select date, shopping_event as event, {phase} as phase
        from marts.dim_dates
        where shopping_event is not null and date > $run_date::date - $days and date <= $run_date
        order by date
    """,
    # The latest validation run of each stage for the run date.
    "quality_summary": """
        with runs as (
            select stage, arg_max(run_id, validated_at) as run_id
            from quality.validation_results
            where run_date = $run_date
            group by stage
        )
        select
            results.stage,
            results.table_name,
            results.dimension,
            results.severity,
            count(*) filter (where results.success) as passed,
            count(*) filter (where not results.success) as failed,
        from quality.validation_results as results
        inner join runs on runs.stage = results.stage and runs.run_id = results.run_id
        group by all
        order by results.stage desc, results.table_name, results.dimension, results.severity
    """,
    "quality_failures": """
        with runs as (
            select stage, arg_max(run_id, validated_at) as run_id
            from quality.validation_results
            where run_date = $run_date
            group by stage
        )
        select
            results.stage,
            results.table_name,
            results.expectation,
            results.severity,
            results.unexpected_count,
            results.element_count,
            results.detail,
        from quality.validation_results as results
        inner join runs on runs.stage = results.stage and runs.run_id = results.run_id
        where not results.success
        order by
            case results.severity when 'block' then 0 when 'quarantine' then 1 else 2 end,
            results.stage desc,
            results.table_name,
            results.expectation
        limit 25
    """,
    "quality_latest_date": "select max(run_date) as run_date from quality.validation_results",
    # Rows quarantined from the run date's batch, by the latest validation run of each table.
    "quarantine": """
        with runs as (
            select table_name, arg_max(run_id, quarantined_at) as run_id
            from quarantine.rejected_rows
            where batch_date = $run_date
            group by table_name
        )
        select rejected.table_name, rejected.rule, rejected.severity, count(*) as rows
        from quarantine.rejected_rows as rejected
        inner join runs on runs.table_name = rejected.table_name and runs.run_id = rejected.run_id
        group by all
        order by rows desc, rejected.table_name, rejected.rule
    """,
}


class ReportError(RuntimeError):
    """The warehouse cannot be turned into a report."""


@dataclass(frozen=True)
class ReportData:
    """What the report shows; None where an optional table is not published."""

    run_date: dt.date
    kpi_daily: pl.DataFrame  # every day up to the run date
    category_daily: pl.DataFrame | None
    sku_changes: pl.DataFrame | None
    event_days: pl.DataFrame | None
    quality_summary: pl.DataFrame | None
    quality_failures: pl.DataFrame | None
    quality_latest_date: dt.date | None
    quarantine: pl.DataFrame | None
    model_sections: tuple[LoadedSection, ...] = ()  # model families' sections (pipelines/report/sections.py)
    # What the landed data switches on (pipelines/capabilities.py); empty: not known.
    capabilities: Mapping[str, CapabilityStatus] = field(default_factory=dict)
    grain: str = "daily"  # land.grain: one KPI row per day or per week
    currency: str = "CNY"  # land.currency


def _no_marts(path: Path) -> ReportError:
    return ReportError(f"no published marts in {path}: run the foundation stage first")


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, with a ReportError when there is nothing to read.

    Not read-only on purpose: under Airflow's in-process runs dbt may still hold the file with
    the default configuration, and DuckDB refuses a second handle with a different one.
    """
    if not path.is_file():
        raise _no_marts(path)
    try:
        return connect_warehouse(path)
    except duckdb.Error as exc:
        raise ReportError(f"cannot open {path}: {exc}") from exc


def _query(
    con: duckdb.DuckDBPyConnection, name: str, fmt: dict[str, str] | None = None, **params: object
) -> pl.DataFrame:
    sql = SQL[name].format(**fmt) if fmt else SQL[name]
    # DuckDB rejects named parameters that the statement does not use.
    used = {key: value for key, value in params.items() if f"${key}" in sql}
    return con.sql(sql, params=used).pl()


def load_report_data(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    run_date: dt.date | None = None,
    *,
    grain: str = "daily",
    currency: str = "CNY",
) -> ReportData:
    """Read everything the report needs for ``run_date`` (default: the latest day with KPIs).

    With weekly data (``grain``) the report is for the week that holds ``run_date``: its KPI row is
    dated by the week's first day.

    Raises:
        ReportError: the KPI mart is missing or empty, or has no row for ``run_date``.
    """
    catalog = {row["name"]: set(row["columns"]) for row in _query(con, "catalog").iter_rows(named=True)}

    def has(spec: tuple[str, str, tuple[str, ...]]) -> bool:
        schema, table, columns = spec
        return set(columns) <= catalog.get(f"{schema}.{table}", set())

    if "marts.rpt_kpi_daily" not in catalog or not con.sql("from marts.rpt_kpi_daily limit 1").fetchall():
        raise _no_marts(path)
    if missing := sorted(set(KPI_COLUMNS) - catalog["marts.rpt_kpi_daily"]):
        raise ReportError(f"marts.rpt_kpi_daily in {path} lacks column(s) {', '.join(missing)}")
    [(first, latest)] = con.sql("select min(date), max(date) from marts.rpt_kpi_daily").fetchall()
    if run_date is None:
        run_date = latest
    elif grain == "weekly":
        [(week,)] = con.sql(
            "select max(date) from marts.rpt_kpi_daily where date <= $day and date > $day::date - 7",
            params={"day": run_date},
        ).fetchall()
        run_date = week or run_date
    kpi_daily = _query(con, "kpi_daily", run_date=run_date)
    if kpi_daily.is_empty() or kpi_daily["date"][-1] != run_date:
        raise ReportError(f"no KPIs for {run_date} in marts.rpt_kpi_daily (it covers {first} to {latest})")

    def optional(
        name: str,
        *specs: tuple[str, str, tuple[str, ...]],
        fmt: dict[str, str] | None = None,
        **params: object,
    ) -> pl.DataFrame | None:
        if not all(has(spec) for spec in specs):
            return None
        return _query(con, name, fmt, run_date=run_date, **params)

    # The retailer's own SKU code where landing kept one (dim_products.sku_code), else the id.
    code = "products.sku_code" if "sku_code" in catalog.get("marts.dim_products", set()) else "sales.sku_id"

    event_days = None
    if has(DATES):
        phase = "event_phase" if "event_phase" in catalog["marts.dim_dates"] else "null::varchar"
        sql = SQL["event_days"].format(phase=phase)
        event_days = con.sql(sql, params={"run_date": run_date, "days": TREND_DAYS + ROLLING_DAYS}).pl()
    latest_validation = optional("quality_latest_date", VALIDATIONS)
    return ReportData(
        run_date=run_date,
        kpi_daily=kpi_daily,
        category_daily=optional("category_daily", CATEGORY_DAILY, days=TREND_DAYS),
        sku_changes=optional(
            "sku_changes", SALES, PRODUCTS, fmt={"sku_code": f"cast({code} as varchar)"}, days=MOVER_DAYS
        ),
        event_days=event_days,
        quality_summary=optional("quality_summary", VALIDATIONS),
        quality_failures=optional("quality_failures", VALIDATIONS),
        quality_latest_date=None if latest_validation is None else latest_validation["run_date"][0],
        quarantine=optional("quarantine", REJECTED),
        model_sections=load_sections(con, catalog, run_date),
        # Unknown without a raw schema (marts published from elsewhere): nothing is said to be off.
        capabilities=capability_status(table_rows(con)) if any(n.startswith("raw.") for n in catalog) else {},
        grain=grain,
        currency=currency,
    )
