"""The report's forecasting section: forecast against actual, realised accuracy, planned orders.

Reads the forecasting marts (``dbt/models/marts/forecasting/``), published by the core stage after
scoring: ``fct_demand_forecasts``, ``mart_forecast_accuracy`` and ``fct_replenishment_plans``.
Without ``fct_demand_forecasts`` :func:`load` returns None and the report shows :data:`ABSENT`;
each of the other two marts may be missing on its own, and its part then says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from markupsafe import Markup

if TYPE_CHECKING:
    import duckdb
    import jinja2

    from pipelines.report.sections import Catalog

TOP_SKUS = 4  # panels of forecast against actual
HISTORY_DAYS = 56  # days of actuals and day-ahead forecasts before the run date
ACCURACY_WEEKS = 13  # target weeks the accuracy charts and table cover
LARGEST_ORDERS = 10

Spec = tuple[str, str, tuple[str, ...]]
FORECASTS: Spec = (
    "marts",
    "fct_demand_forecasts",
    (
        *("run_date", "sku_id", "target_date", "model_name", "model_version", "period_days", "horizon"),
        *("p10", "p50", "p90", "actual_units"),
    ),
)
ACCURACY: Spec = (
    "marts",
    "mart_forecast_accuracy",
    (
        *("model_name", "model_version", "target_week", "horizon", "period_days", "forecasts"),
        *("actual_units", "p50_units", "abs_error", "band_forecasts", "in_band"),
    ),
)
PLANS: Spec = (
    "marts",
    "fct_replenishment_plans",
    (
        *("run_date", "sku_id", "sku_name", "category_l1", "order_quantity", "order_value"),
        *("inventory_position", "reorder_point", "order_up_to", "lead_time_days", "expected_demand"),
    ),
)
SALES: Spec = ("marts", "fct_sales_daily", ("date", "sku_id", "units"))
PRODUCTS: Spec = ("marts", "dim_products", ("sku_id", "sku_name"))

ABSENT = (
    "Omitted: marts.fct_demand_forecasts is not published yet. The core stage publishes the "
    "forecasting marts after scoring; a foundation-only rollout has none."
)

SQL = {
    "forecast_run": """
        select max(run_date) as run_date from marts.fct_demand_forecasts where run_date <= $run_date
    """,
    "models": """
        select
            string_agg(distinct model_name || ' v' || model_version, ', ') as models,
            count(distinct sku_id) as skus,
            max(horizon) as horizon,
            max(period_days) as period_days,
        from marts.fct_demand_forecasts
        where run_date = $forecast_run
    """,
    # {name}: the SKU's name from dim_products, or null where it is not published.
    "top_skus": """
        select forecasts.sku_id, {name} as sku_name, sum(forecasts.p50) as volume
        from marts.fct_demand_forecasts as forecasts
        {products}
        where forecasts.run_date = $forecast_run
        group by forecasts.sku_id
        order by volume desc, forecasts.sku_id
        limit $n
    """,
    # {actuals}: units sold per SKU and day from fct_sales_daily, or the realised day-ahead actuals.
    "band": """
        select sku_id, 'next_day' as kind, target_date as date, null::double as units, p10, p50, p90
        from marts.fct_demand_forecasts
        where horizon = 1 and list_contains($skus, sku_id)
            and target_date > $run_date::date - $days and target_date <= $run_date
        union all
        select sku_id, 'latest', target_date, null, p10, p50, p90
        from marts.fct_demand_forecasts
        where run_date = $forecast_run and list_contains($skus, sku_id)
        union all
        {actuals}
        order by sku_id, kind, date
    """,
    "sales_actuals": """
        select sku_id, 'actual', date, sum(units)::double, null, null, null
        from marts.fct_sales_daily
        where list_contains($skus, sku_id) and date > $run_date::date - $days and date <= $run_date
        group by sku_id, date
    """,
    "forecast_actuals": """
        select sku_id, 'actual', target_date, actual_units::double, null, null, null
        from marts.fct_demand_forecasts
        where horizon = 1 and actual_units is not null and list_contains($skus, sku_id)
            and target_date > $run_date::date - $days and target_date <= $run_date
    """,
    # Ratios of sums over the rows of a group (mart_forecast_accuracy keeps the sums for this).
    "accuracy": """
        select
            model_name || ' v' || model_version as model,
            {group}
            sum(forecasts) as forecasts,
            sum(actual_units)::double as actual_units,
            (sum(abs_error) / nullif(sum(actual_units), 0))::double as wape,
            (sum(p50_units - actual_units) / nullif(sum(actual_units), 0))::double as bias,
            (sum(in_band) / nullif(sum(band_forecasts), 0))::double as coverage,
            max(period_days) as period_days,
        from marts.mart_forecast_accuracy
        where target_week > $run_date::date - 7 * $weeks and target_week <= $run_date
        group by all
        order by all
    """,
    "plan_run": """
        select max(run_date) as run_date from marts.fct_replenishment_plans where run_date <= $run_date
    """,
    "plan_totals": """
        select
            count(*) as skus,
            count(*) filter (where order_quantity > 0) as orders,
            coalesce(sum(order_quantity), 0)::double as units,
            sum(order_value)::double as value,
        from marts.fct_replenishment_plans
        where run_date = $plan_run
    """,
    "largest_orders": """
        select
            sku_id, sku_name, category_l1, order_quantity::double as order_quantity,
            order_value::double as order_value, inventory_position, reorder_point, order_up_to,
            lead_time_days, expected_demand,
        from marts.fct_replenishment_plans
        where run_date = $plan_run and order_quantity > 0
        order by order_value desc nulls last, order_quantity desc, sku_id
        limit $n
    """,
}


@dataclass(frozen=True)
class Accuracy:
    """Realised accuracy over the last ACCURACY_WEEKS target weeks, per model version."""

    weekly: pl.DataFrame  # model, target_week, forecasts, actual_units, wape, bias, coverage
    by_horizon: pl.DataFrame  # model, horizon, ... (same measures)
    summary: pl.DataFrame  # model, ... (same measures)
    horizon_unit: str  # "days", or "periods" where a weekly model is among them


@dataclass(frozen=True)
class Plans:
    """The latest replenishment plan on or before the run date (run None: there is none)."""

    run: dt.date | None
    totals: dict[str, Any]
    largest: pl.DataFrame


@dataclass(frozen=True)
class Forecasting:
    """What the section shows; ``forecast_run`` None when nothing was scored by the run date."""

    run_date: dt.date
    forecast_run: dt.date | None
    models: str
    skus: int
    horizon: int
    period_days: int
    top_skus: pl.DataFrame  # sku_id, label
    band: pl.DataFrame  # sku_id, kind, date, units, p10, p50, p90
    accuracy: Accuracy | None  # None: mart_forecast_accuracy is not published
    plans: Plans | None  # None: fct_replenishment_plans is not published


def _has(catalog: Catalog, spec: Spec) -> bool:
    schema, table, columns = spec
    return set(columns) <= catalog.get(f"{schema}.{table}", set())


def _query(con: duckdb.DuckDBPyConnection, sql: str, **params: object) -> pl.DataFrame:
    # DuckDB rejects named parameters that the statement does not use.
    return con.sql(sql, params={k: v for k, v in params.items() if f"${k}" in sql}).pl()


def load(con: duckdb.DuckDBPyConnection, catalog: Catalog, run_date: dt.date) -> Forecasting | None:
    """Read the section's data for ``run_date``; None when fct_demand_forecasts is not published."""
    if not _has(catalog, FORECASTS):
        return None
    forecast_run = _query(con, SQL["forecast_run"], run_date=run_date)["run_date"][0]
    accuracy = _load_accuracy(con, run_date) if _has(catalog, ACCURACY) else None
    plans = _load_plans(con, run_date) if _has(catalog, PLANS) else None
    empty = pl.DataFrame()
    if forecast_run is None:
        return Forecasting(run_date, None, "", 0, 0, 1, empty, empty, accuracy, plans)
    models = _query(con, SQL["models"], forecast_run=forecast_run).row(0, named=True)
    names = _has(catalog, PRODUCTS)
    top = _query(
        con,
        SQL["top_skus"].format(
            name="any_value(products.sku_name)" if names else "null::varchar",
            products="left join marts.dim_products as products on products.sku_id = forecasts.sku_id"
            if names
            else "",
        ),
        forecast_run=forecast_run,
        n=TOP_SKUS,
    ).select(
        "sku_id",
        label=pl.coalesce("sku_name", pl.format("SKU {}", "sku_id")),
    )
    actuals = SQL["sales_actuals"] if _has(catalog, SALES) else SQL["forecast_actuals"]
    band = _query(
        con,
        SQL["band"].format(actuals=actuals),
        skus=top["sku_id"].to_list(),
        run_date=run_date,
        forecast_run=forecast_run,
        days=HISTORY_DAYS,
    )
    return Forecasting(
        run_date=run_date,
        forecast_run=forecast_run,
        models=models["models"],
        skus=models["skus"],
        horizon=models["horizon"],
        period_days=models["period_days"],
        top_skus=top,
        band=band,
        accuracy=accuracy,
        plans=plans,
    )


def _load_accuracy(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> Accuracy:
    def grouped(group: str) -> pl.DataFrame:
        sql = SQL["accuracy"].format(group=f"{group}," if group else "")
        return _query(con, sql, run_date=run_date, weeks=ACCURACY_WEEKS)

    summary = grouped("")
    weekly = any(p != 1 for p in summary["period_days"].to_list())
    return Accuracy(
        weekly=grouped("target_week"),
        by_horizon=grouped("horizon"),
        summary=summary,
        horizon_unit="periods" if weekly else "days",
    )


def _load_plans(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> Plans:
    plan_run = _query(con, SQL["plan_run"], run_date=run_date)["run_date"][0]
    if plan_run is None:
        return Plans(None, {}, pl.DataFrame())
    return Plans(
        run=plan_run,
        totals=_query(con, SQL["plan_totals"], plan_run=plan_run).row(0, named=True),
        largest=_query(con, SQL["largest_orders"], plan_run=plan_run, n=LARGEST_ORDERS),
    )


TEMPLATE = """\
{%- if f.forecast_run is none %}
  <p class="na">No forecast scored on or before {{ f.run_date }}.</p>
{%- else %}
  <p class="note">Forecast of {{ f.forecast_run }} by {{ f.models }}
  {%- if f.forecast_run != f.run_date %} (the latest on or before {{ f.run_date }}){% endif %}:
  {{ f.skus | count }} SKUs, {{ f.horizon }} {{ "days" if f.period_days == 1 else "periods" }} ahead.</p>
  <h3>Forecast against units sold, top {{ f.top_skus.height }} SKUs by forecast volume</h3>
  <p class="note">The forecast made one {{ "day" if f.period_days == 1 else "period" }} ahead for each
    {{- " day" if f.period_days == 1 else " period" }} of the last {{ history_days }} days, and the
    latest forecast ahead (dashed line: its run date); bands span p10 to p90.</p>
  <div class="chart">{{ band_svg }}</div>
{%- endif %}

  <h3>Realised accuracy</h3>
{%- if f.accuracy is none %}
  <p class="na">Omitted: marts.mart_forecast_accuracy is not published.</p>
{%- elif not f.accuracy.summary.height %}
  <p class="na">No forecast for a target week of the last {{ weeks }} weeks has its actuals yet.</p>
{%- else %}
  <p class="note">Forecasts whose target days have arrived, target weeks of the last {{ weeks }} weeks.
    WAPE = &sum;|p50 &minus; actual| / &sum;actual; bias = &sum;(p50 &minus; actual) / &sum;actual
    (positive: over-forecast); coverage = share of actuals within p10&ndash;p90 (80% when calibrated).</p>
  <div class="chart">{{ accuracy_svg }}</div>
  <table>
    <tr><th>Model</th><th class="num">Forecasts</th><th class="num">Units sold</th>
        <th class="num">WAPE</th><th class="num">Bias</th><th class="num">p10&ndash;p90 coverage</th></tr>
    {%- for r in f.accuracy.summary.iter_rows(named=True) %}
    <tr><td>{{ r.model }}</td><td class="num">{{ r.forecasts | count }}</td>
        <td class="num">{{ r.actual_units | count }}</td><td class="num">{{ r.wape | pct }}</td>
        <td class="num">{{ r.bias | pct_signed }}</td><td class="num">{{ r.coverage | pct }}</td></tr>
    {%- endfor %}
  </table>
{%- endif %}

  <h3>Planned orders</h3>
{%- if f.plans is none %}
  <p class="na">Omitted: marts.fct_replenishment_plans is not published.</p>
{%- elif f.plans.run is none %}
  <p class="na">No replenishment plan on or before {{ f.run_date }}.</p>
{%- else %}
  {%- set t = f.plans.totals %}
  <p class="note">Plan of {{ f.plans.run }}: {{ t.orders | count }} orders for {{ t.skus | count }} SKUs
    reviewed, {{ t.units | count }} units, {{ t.value | money }} at cost.
    {%- if f.plans.largest.height %} The {{ f.plans.largest.height }} largest by value:{% endif %}</p>
  {%- if f.plans.largest.height %}
  <table>
    <tr><th>SKU</th><th>Department</th><th class="num">Order (units)</th><th class="num">Value</th>
        <th class="num">Inventory position</th><th class="num">Reorder point</th>
        <th class="num">Order-up-to</th><th class="num">Lead time (days)</th></tr>
    {%- for r in f.plans.largest.iter_rows(named=True) %}
    <tr><td>{{ r.sku_name or "SKU %s" % r.sku_id }}</td><td>{{ r.category_l1 or "–" }}</td>
        <td class="num">{{ r.order_quantity | count }}</td><td class="num">{{ r.order_value | money }}</td>
        <td class="num">{{ r.inventory_position | count }}</td>
        <td class="num">{{ r.reorder_point | count }}</td><td class="num">{{ r.order_up_to | count }}</td>
        <td class="num">{{ r.lead_time_days | count(1) }}</td></tr>
    {%- endfor %}
  </table>
  {%- else %}
  <p class="na">No SKU needs an order in this plan.</p>
  {%- endif %}
{%- endif %}
"""


def render(f: Forecasting, env: jinja2.Environment) -> str:
    """The section's HTML body."""
    from pipelines.report import charts

    band_svg = accuracy_svg = None
    if f.forecast_run is not None:
        band_svg = Markup(charts.forecast_band_chart(f.band, f.top_skus, f.forecast_run))
    if f.accuracy is not None and f.accuracy.summary.height:
        accuracy_svg = Markup(
            charts.forecast_accuracy_chart(f.accuracy.weekly, f.accuracy.by_horizon, f.accuracy.horizon_unit)
        )
    return env.from_string(TEMPLATE).render(
        f=f,
        band_svg=band_svg,
        accuracy_svg=accuracy_svg,
        history_days=HISTORY_DAYS,
        weeks=ACCURACY_WEEKS,
    )
