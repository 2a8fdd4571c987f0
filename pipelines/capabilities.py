"""What the landed data can do: which contract tables feed which models, features and report parts.

A batch may hold any subset of the contract's tables (``docs/data-contract.md``). Products and sales
are the minimum that runs the foundation and forecasting; every other table switches a capability
on. A table that was never landed is an empty raw table, so the mid-platform still builds, and what
depends on it is NULL (unknown), never a zero that looks like data. :data:`CAPABILITIES` is the
matrix; :func:`capability_status` reads which tables hold rows in the warehouse and says, per
capability, whether it is on and which table would switch it on (``ecom doctor``, the report).
``docs/bring-your-own-data.md`` carries the matrix, rendered by :func:`render_matrix`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.data.contract import TABLES


@dataclass(frozen=True)
class Capability:
    """Something the platform does when every one of ``tables`` holds rows.

    Attributes:
        name: Short id (``inventory``), used by the report and the forecaster's notes.
        title: What it is, for people.
        tables: The contract tables it needs, all of them.
        models: dbt models (staging, intermediate, marts) it fills.
        features: Forecasting features (columns of ``mart_demand_features``) it fills.
        report: Report parts it fills.
        families: Model families or stages it feeds.
        required: Part of the minimum: without it nothing runs.
    """

    name: str
    title: str
    tables: tuple[str, ...]
    models: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    report: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    required: bool = False


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "sales",
        "Products and sales (the minimum)",
        ("products", "daily_sales"),
        models=(
            "stg_shop__products",
            "stg_shop__daily_sales",
            "dim_products",
            "dim_dates",
            "fct_sales_daily",
            "int_sku_days_spined",
            "int_lost_sales_estimated",
            "mart_demand_features",
            "rpt_kpi_daily",
            "rpt_category_daily",
        ),
        features=("units", "units lags and rolling means", "days_since_launch", "calendar and events"),
        report=("GMV and units tiles", "trend chart", "category mix", "top movers"),
        families=("forecast",),
        required=True,
    ),
    Capability(
        "shelf_prices",
        "Shelf prices (recommended)",
        ("own_prices",),
        models=(
            "stg_shop__own_prices",
            "int_shelf_prices_forward_filled",
            "fct_prices_daily",
            "dim_products",
        ),
        features=("shelf_price", "effective_price (price elasticity input)"),
        families=("forecast", "pricing (elasticities need price variation)"),
    ),
    Capability(
        "promotions",
        "Promotions (recommended)",
        ("promotions",),
        models=("stg_shop__promotions", "int_promotions_exploded", "fct_prices_daily"),
        features=("is_promo", "discount_pct", "promo_day_number"),
        families=("forecast",),
    ),
    Capability(
        "competitor_prices",
        "Competitor prices",
        ("competitor_prices",),
        models=("stg_shop__competitor_prices", "int_competitor_prices_summarized", "fct_prices_daily"),
        features=("competitor_gap_pct", "competitor_min_price", "competitor_count"),
        families=("forecast", "pricing (cross elasticity; the crawler adds live rival prices)"),
    ),
    Capability(
        "orders",
        "Order lines",
        ("order_lines",),
        models=("stg_shop__order_lines", "fct_orders", "int_customer_orders_summarized"),
        report=("Orders and AOV tiles",),
        families=("the order_lines / daily_sales reconciliation gate",),
    ),
    Capability(
        "customers",
        "Customers",
        ("customers",),
        models=(
            "stg_shop__customers",
            "dim_customers",
            "mart_customer_features",
            "int_weather_days_weighted",
        ),
        families=("weather weighted by where customers live (else an unweighted mean over regions)",),
    ),
    Capability(
        "inventory",
        "Inventory snapshots",
        ("inventory_snapshots",),
        models=("stg_shop__inventory_snapshots", "fct_inventory_daily"),
        features=("on_hand_units", "days_of_cover", "imputed stock-out flags"),
        report=("Stock-out rate, fill rate and inventory turnover tiles", "replenishment plan"),
        families=("replenishment", "pricing (stock rules)"),
    ),
    Capability(
        "lead_times",
        "Purchase orders (supplier lead times)",
        ("purchase_orders",),
        models=("stg_shop__purchase_orders", "dim_products"),
        families=("replenishment (else replenishment.lead_time_fallback_days)",),
    ),
    Capability(
        "weather",
        "Weather",
        ("weather",),
        models=("stg_shop__weather", "int_weather_days_imputed", "int_weather_days_weighted"),
        features=("temp_c", "precip_mm", "humidity_pct", "wind_kph", "aqi", "extreme_weather_share"),
        families=("forecast",),
    ),
    Capability(
        "social_trends",
        "Social trends",
        ("social_trends",),
        models=("stg_shop__social_trends", "int_social_trends_imputed"),
        features=("search_index", "mentions", "sentiment", "video_views"),
        families=("forecast",),
    ),
    Capability(
        "clickstream",
        "Browsing events (clickstream)",
        ("browsing_events",),
        models=(
            "stg_shop__browsing_events",
            "int_browsing_events_aggregated",
            "int_customer_browsing_summarized",
        ),
        features=("views", "add_to_carts"),
        families=("forecast",),
    ),
    Capability(
        "returns",
        "Returns",
        ("returns",),
        models=("stg_shop__returns", "mart_customer_features"),
        report=("Return rate tile",),
    ),
    Capability(
        "service",
        "Service tickets",
        ("service_tickets",),
        models=("stg_shop__service_tickets", "mart_customer_features"),
    ),
    Capability(
        "warehouses",
        "Warehouses",
        ("warehouses",),
        models=("stg_shop__warehouses", "dim_products"),
    ),
)

BY_NAME: dict[str, Capability] = {c.name: c for c in CAPABILITIES}
MINIMUM_TABLES: tuple[str, ...] = tuple(t for c in CAPABILITIES if c.required for t in c.tables)


@dataclass(frozen=True)
class CapabilityStatus:
    capability: Capability
    missing: tuple[str, ...]  # needed tables without rows

    @property
    def on(self) -> bool:
        return not self.missing

    @property
    def fix(self) -> str:
        """What switches it on, for a note beside whatever it would fill."""
        return "" if self.on else "land " + " and ".join(self.missing) + " to switch it on"


def table_rows(con: object) -> dict[str, int]:
    """Rows per contract table in the warehouse's ``raw`` schema (0 for a table not there)."""
    present = {
        name
        for (name,) in con.execute(  # type: ignore[attr-defined]
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()
    }
    return {
        name: (con.execute(f'select count(*) from raw."{name}"').fetchall()[0][0] if name in present else 0)  # type: ignore[attr-defined]
        for name in TABLES
    }


def capability_status(rows: Mapping[str, int]) -> dict[str, CapabilityStatus]:
    """Each capability with the tables it needs that hold no rows (``rows``: :func:`table_rows`)."""
    return {
        c.name: CapabilityStatus(c, tuple(t for t in c.tables if rows.get(t, 0) <= 0)) for c in CAPABILITIES
    }


def warehouse_capabilities(path: Path, memory_limit: str | None = None) -> dict[str, CapabilityStatus]:
    """:func:`capability_status` for the warehouse file at ``path`` (every capability off without one)."""
    from pipelines.warehouse import connect_warehouse

    if not path.is_file():
        return capability_status({})
    con = connect_warehouse(path, memory_limit) if memory_limit else connect_warehouse(path)
    try:
        return capability_status(table_rows(con))
    finally:
        con.close()


def render_status(statuses: Mapping[str, CapabilityStatus], rows: Mapping[str, int]) -> str:
    """The capability report ``ecom doctor`` prints: one line per capability, on or off and why."""
    lines = []
    for status in statuses.values():
        c = status.capability
        counts = ", ".join(f"{t} {rows.get(t, 0):,} rows" for t in c.tables)
        mark = "on " if status.on else ("OFF" if c.required else "off")
        lines.append(f"[{mark}] {c.title}: {counts}" + ("" if status.on else f" -- {status.fix}"))
    return "\n".join(lines)


def render_matrix() -> str:
    """The capability matrix as a Markdown table (docs/bring-your-own-data.md; a test keeps it in step)."""
    lines = [
        "| capability | tables | dbt models | forecasting features | report | feeds |",
        "|---|---|---|---|---|---|",
    ]
    for c in CAPABILITIES:
        cells = (
            c.title,
            ", ".join(f"`{t}`" for t in c.tables),
            ", ".join(f"`{m}`" for m in c.models) or "-",
            ", ".join(c.features) or "-",
            ", ".join(c.report) or "-",
            ", ".join(c.families) or "-",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
