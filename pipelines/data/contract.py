"""The landing contract: every raw table the platform accepts, its columns, types, units and keys.

The generator writes exactly this contract and a user's own data in the same shape runs through
the same pipeline. ``docs/data-contract.md`` is rendered from this module (``ecom contract``) and
a test keeps the two in step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

CONTRACT_VERSION = "1"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    unit: str
    description: str
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    grain: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str
    # The business date a row belongs to: what incremental loads, timeliness and future-date
    # checks go by. None for master data without one.
    date_column: str | None = None
    # Rows dated after the batch date are plans (planned shelf prices, planned promotions), known
    # before the days they apply to; every other table's rows are facts and may not be in the future.
    plannable: bool = False

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def id_columns(self) -> list[str]:
        """Integer identifier columns: they accept string codes, landed as surrogate ids."""
        return [c.name for c in self.columns if c.unit == "id" and c.dtype.is_integer()]


def _c(name: str, dtype: pl.DataType, unit: str, description: str, nullable: bool = False) -> Column:
    return Column(name, dtype, unit, description, nullable)


I64, I32, F64, STR, DATE, BOOL = pl.Int64(), pl.Int32(), pl.Float64(), pl.String(), pl.Date(), pl.Boolean()

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "products",
            "one row per SKU",
            ("sku_id",),
            (
                _c("sku_id", I64, "id", "Stock-keeping unit"),
                _c("sku_name", STR, "text", "Display name"),
                _c("category_l1", STR, "label", "Department (top of the category tree)"),
                _c("category_l2", STR, "label", "Leaf category, unique across departments"),
                _c("brand", STR, "label", "Brand"),
                _c("unit_cost", F64, "currency", "Landed purchase cost per unit"),
                _c("list_price", F64, "currency", "Recommended retail price at launch"),
                _c(
                    "launch_date",
                    DATE,
                    "date",
                    "First day the SKU can be sold; null when unknown (its first sales row stands in)",
                    nullable=True,
                ),
                _c("warehouse_id", I32, "id", "Warehouse that stocks the SKU"),
            ),
            "Product master with the category tree.",
        ),
        Table(
            "daily_sales",
            "one row per SKU per channel per day (per week with land.grain weekly), from the SKU's launch",
            ("date", "sku_id", "channel"),
            (
                _c(
                    "date", DATE, "date", "Sales day; with land.grain weekly, the first day of the sales week"
                ),
                _c("sku_id", I64, "id", "SKU"),
                _c("channel", STR, "label", "Sales channel (the simulator's: app, web)"),
                _c("units", I32, "units", "Units sold (censored by stock: sales = min(demand, stock))"),
                _c("revenue", F64, "currency", "units x price_paid, rounded to 2 decimals"),
                _c(
                    "price_paid",
                    F64,
                    "currency",
                    "Price a customer paid: shelf price less promotion",
                ),
                _c("stockout", BOOL, "flag", "True when the SKU ran out of stock in the period"),
            ),
            "Sales per SKU and channel per day (or week); the sum of order_lines for the same key.",
            date_column="date",
        ),
        Table(
            "order_lines",
            "one row per order per SKU",
            ("order_id", "sku_id"),
            (
                _c("order_id", I64, "id", "Order: one customer, one channel, one day"),
                _c("sku_id", I64, "id", "SKU"),
                _c("order_date", DATE, "date", "Day the order was placed"),
                _c("customer_id", I64, "id", "Customer"),
                _c("channel", STR, "label", "Sales channel (the simulator's: app, web)"),
                _c("quantity", I32, "units", "Units ordered"),
                _c("unit_price", F64, "currency", "Price paid per unit"),
            ),
            "Order lines; they reconcile exactly with daily_sales.",
            date_column="order_date",
        ),
        Table(
            "own_prices",
            "one row per SKU per price change",
            ("sku_id", "effective_date"),
            (
                _c("sku_id", I64, "id", "SKU"),
                _c("effective_date", DATE, "date", "First day this shelf price applies"),
                _c("price", F64, "currency", "Shelf price before promotions, valid until the next change"),
            ),
            "Our shelf-price history, and planned prices: a row dated after the batch date is a plan.",
            date_column="effective_date",
            plannable=True,
        ),
        Table(
            "promotions",
            "one row per promotion of one SKU",
            ("promo_id",),
            (
                _c("promo_id", I64, "id", "Promotion"),
                _c("sku_id", I64, "id", "SKU"),
                _c("start_date", DATE, "date", "First promoted day"),
                _c("end_date", DATE, "date", "Last promoted day (inclusive)"),
                _c("promo_type", STR, "label", "discount, flash_sale or festival"),
                _c("discount_pct", F64, "percent", "Discount off the shelf price, 0-100"),
            ),
            "Promotions, past and planned (starting after the batch date); one SKU has at most one "
            "promotion on a day.",
            date_column="start_date",
            plannable=True,
        ),
        Table(
            "competitor_prices",
            "one row per SKU per competitor per observed price change",
            ("sku_id", "competitor", "effective_date"),
            (
                _c("sku_id", I64, "id", "SKU"),
                _c("competitor", STR, "label", "Competitor store"),
                _c("effective_date", DATE, "date", "Day the monitored price was first seen"),
                _c("price", F64, "currency", "Competitor's price, valid until the next observation"),
            ),
            "Competitor price monitoring; several competitors per SKU.",
            date_column="effective_date",
        ),
        Table(
            "inventory_snapshots",
            "one row per SKU per warehouse per day, from the SKU's launch",
            ("date", "sku_id", "warehouse_id"),
            (
                _c("date", DATE, "date", "Snapshot day (end of day)"),
                _c("sku_id", I64, "id", "SKU"),
                _c("warehouse_id", I32, "id", "Warehouse"),
                _c("on_hand_units", I32, "units", "Units on hand at the end of the day"),
                _c("on_order_units", I32, "units", "Units ordered from suppliers, not yet received"),
            ),
            "End-of-day inventory.",
            date_column="date",
        ),
        Table(
            "purchase_orders",
            "one row per purchase order line (one SKU)",
            ("po_id",),
            (
                _c("po_id", I64, "id", "Purchase order"),
                _c("sku_id", I64, "id", "SKU"),
                _c("warehouse_id", I32, "id", "Receiving warehouse"),
                _c("supplier_id", I32, "id", "Supplier"),
                _c("order_date", DATE, "date", "Day the order was sent"),
                _c("expected_date", DATE, "date", "Promised delivery day"),
                _c("received_date", DATE, "date", "Actual delivery day; null while open", nullable=True),
                _c("quantity", I32, "units", "Units ordered"),
                _c("unit_cost", F64, "currency", "Cost per unit"),
            ),
            "Replenishment orders with their lead times.",
            date_column="order_date",
        ),
        Table(
            "weather",
            "one row per region per day",
            ("date", "region"),
            (
                _c("date", DATE, "date", "Day"),
                _c("region", STR, "label", "Sales region"),
                _c("temp_c", F64, "degC", "Mean temperature"),
                _c("precip_mm", F64, "mm", "Precipitation"),
                _c("humidity_pct", F64, "percent", "Relative humidity"),
                _c("wind_kph", F64, "km/h", "Mean wind speed"),
                _c("aqi", F64, "index", "Air-quality index"),
                _c("is_extreme", BOOL, "flag", "Storm, heatwave or cold snap"),
            ),
            "Daily weather by region.",
            date_column="date",
        ),
        Table(
            "social_trends",
            "one row per leaf category per day",
            ("date", "category_l2"),
            (
                _c("date", DATE, "date", "Day"),
                _c("category_l2", STR, "label", "Leaf category"),
                _c("search_index", F64, "index", "Search volume index, 100 = typical"),
                _c("mentions", I32, "count", "Social-media mentions"),
                _c("sentiment", F64, "score", "Mean sentiment of mentions, -1 to 1"),
                _c("video_views", I64, "count", "Short-video views tagged with the category"),
            ),
            "Social-trend signals per leaf category.",
            date_column="date",
        ),
        Table(
            "customers",
            "one row per customer",
            ("customer_id",),
            (
                _c("customer_id", I64, "id", "Customer"),
                _c("region", STR, "label", "Home region"),
                _c("city_tier", I32, "tier", "City tier, 1 (largest) to 4"),
                _c("age_band", STR, "label", "Age band"),
                _c("signup_date", DATE, "date", "Account creation day"),
                _c("preferred_channel", STR, "label", "Sales channel the customer uses most"),
            ),
            "Customer master.",
        ),
        Table(
            "browsing_events",
            "one row per sampled browsing event",
            ("event_id",),
            (
                _c("event_id", I64, "id", "Event"),
                _c("event_date", DATE, "date", "Day of the event"),
                _c("customer_id", I64, "id", "Customer"),
                _c("sku_id", I64, "id", "SKU"),
                _c("channel", STR, "label", "Sales channel"),
                _c("event_type", STR, "label", "view or add_to_cart"),
            ),
            "Clickstream, sampled at 1 in 10 sessions as is usual for stored clickstreams.",
            date_column="event_date",
        ),
        Table(
            "service_tickets",
            "one row per customer-service ticket",
            ("ticket_id",),
            (
                _c("ticket_id", I64, "id", "Ticket"),
                _c("created_date", DATE, "date", "Day the ticket was opened"),
                _c("customer_id", I64, "id", "Customer"),
                _c("order_id", I64, "id", "Order the ticket is about"),
                _c("sku_id", I64, "id", "SKU the ticket is about"),
                _c("reason", STR, "label", "delivery_delay, damaged, wrong_item, quality or how_to"),
                _c("resolved_date", DATE, "date", "Day it was closed; null while open", nullable=True),
            ),
            "Customer-service tickets.",
            date_column="created_date",
        ),
        Table(
            "returns",
            "one row per returned order line",
            ("return_id",),
            (
                _c("return_id", I64, "id", "Return"),
                _c("order_id", I64, "id", "Order"),
                _c("sku_id", I64, "id", "SKU"),
                _c("customer_id", I64, "id", "Customer"),
                _c("return_date", DATE, "date", "Day the return was received"),
                _c("quantity", I32, "units", "Units returned"),
                _c("refund_amount", F64, "currency", "Money refunded"),
                _c("reason", STR, "label", "size_fit, damaged, not_as_described or changed_mind"),
            ),
            "Returns of order lines.",
            date_column="return_date",
        ),
        Table(
            "warehouses",
            "one row per warehouse",
            ("warehouse_id",),
            (
                _c("warehouse_id", I32, "id", "Warehouse"),
                _c("name", STR, "text", "Name"),
                _c("region", STR, "label", "Region it serves"),
                _c("capacity_units", I64, "units", "Storage capacity"),
            ),
            "Fulfilment warehouses.",
        ),
    )
}

FILE_SUFFIXES = (".parquet", ".csv")

# Tables whose rows stand for one period of ``land.grain`` (a day, or a week dated by its first day).
PERIOD_TABLES = ("daily_sales",)

# Surrogate ids of string codes have bit 62 set (Int64) or bit 30 (Int32): every one is at least
# 2**62 (2**30), far above the integer ids a source numbers from 1.
_SURROGATE_BITS = {64: 62, 32: 30}


def surrogate_id(code: str, bits: int = 64) -> int:
    """The stable integer id landing gives a string code (``'OJ-TROP-64'``) in an id column.

    A pure function of the code: the same code gets the same id in every table and batch, with no
    state to keep. ``raw.id_codes`` maps the ids back to their codes.

    Args:
        code: The code as landed (surrounding whitespace already stripped).
        bits: 64 for Int64 id columns (``sku_id``, ``customer_id``...), 32 for Int32 ones
            (``warehouse_id``, ``supplier_id``): the id fits the column.

    Returns:
        ``(first 8 bytes of blake2b(code) & (2**62 - 1)) | 2**62`` for 64 bits; for 32 bits the
        same with 30 in place of 62.
    """
    top = _SURROGATE_BITS[bits]
    digest = int.from_bytes(hashlib.blake2b(code.encode(), digest_size=8).digest(), "big")
    return (digest & (2**top - 1)) | 2**top


def table_for_file(filename: str) -> Table | None:
    """The contract table a file name stands for (``daily_sales.csv`` -> daily_sales), if any."""
    for suffix in FILE_SUFFIXES:
        if filename.lower().endswith(suffix):
            return TABLES.get(filename[: -len(suffix)])
    return None


def render_markdown() -> str:
    """The data-contract document, rendered from TABLES."""
    lines = [
        "# Data contract: landed raw tables",
        "",
        f"Contract version {CONTRACT_VERSION}. Rendered by `ecom contract` from",
        "`pipelines/data/contract.py`; do not edit by hand (a test checks they agree).",
        "",
        "A batch is a folder (or S3 prefix) of files named `<table>.parquet` or `<table>.csv`, any subset of",
        "the tables below. Every file must have exactly these columns, values castable to these types",
        "(CSV dates as `YYYY-MM-DD`, booleans as `true`/`false`), at least one row, and no duplicate keys.",
        "Columns not marked nullable may still hold nulls on landing; the quality gates downstream",
        "decide what a null means.",
        "",
        "A table may start arriving in any batch; until then `raw.<table>` exists empty, with the",
        "columns below and the audit columns (`_batch_date`, `_batch_id`, `_loaded_at`).",
        "",
        "- **Money** (unit `currency`) is in the currency `land.currency` names (CNY by default).",
        "- **Identifiers** (unit `id`) may be integers or string codes (`OJ-TROP-64`, `C000123`). A",
        "  canonical decimal integer (`123`, not `0123`) keeps its value; any other code becomes the",
        "  surrogate id `surrogate_id(code)` of `pipelines/data/contract.py` (a hash of the code, at least",
        "  2^62; 2^30 in the Int32 columns), the same in every table and batch, and `raw.id_codes`",
        "  `(id_column, id, code, ...)` keeps the code of every surrogate. Two codes with one id in a",
        "  batch are refused (rule `id_collision`).",
        "- **Channels** are labels: any non-empty label when `quality.channels` is null, else one of",
        "  that list.",
        "- **Grain.** With `land.grain: weekly`, a `daily_sales` row stands for a week and is dated by",
        "  the week's first day (`land.week_start`); a row dated on another weekday refuses the batch",
        "  (rule `week_start`).",
        "- **Facts and plans.** A fact's business date is on or before the batch date (later rows are",
        "  quarantined). Tables marked *plannable* (`own_prices`, `promotions`) also take rows dated",
        "  after the batch date: those are plans (a planned shelf price, a planned promotion).",
        "",
    ]
    for t in TABLES.values():
        lines += [
            f"## `{t.name}`",
            "",
            f"{t.description} Grain: {t.grain}. Key: `({', '.join(t.key)})`."
            + (f" Business date: `{t.date_column}`." if t.date_column else "")
            + (" Plannable: rows dated after the batch date are plans." if t.plannable else ""),
            "",
            "| column | type | unit | nullable | description |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{c.name}` | {c.dtype} | {c.unit} | {'yes' if c.nullable else 'no'} | {c.description} |"
            for c in t.columns
        ]
        lines.append("")
    return "\n".join(lines)
