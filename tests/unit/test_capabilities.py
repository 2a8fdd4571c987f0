from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.capabilities import (
    CAPABILITIES,
    MINIMUM_TABLES,
    capability_status,
    render_status,
    table_rows,
)
from pipelines.config import REPO_ROOT
from pipelines.data.contract import TABLES


def test_every_contract_table_switches_a_capability_and_every_name_exists() -> None:
    tables = {t for c in CAPABILITIES for t in c.tables}
    assert tables == set(TABLES), "a contract table without a capability, or a capability on an unknown table"
    models = {p.stem for p in (REPO_ROOT / "dbt" / "models").rglob("*.sql")}
    named = {m for c in CAPABILITIES for m in c.models}
    assert named <= models, f"capabilities name dbt models that do not exist: {sorted(named - models)}"
    assert MINIMUM_TABLES == ("products", "daily_sales")


def test_a_capability_is_on_only_when_every_table_it_needs_holds_rows() -> None:
    rows = {"products": 40, "daily_sales": 3_000, "own_prices": 90, "order_lines": 0}
    status = capability_status(rows)
    assert status["sales"].on and status["shelf_prices"].on
    assert not status["orders"].on and status["orders"].fix == "land order_lines to switch it on"
    assert not status["weather"].on and status["weather"].missing == ("weather",)
    text = render_status(status, rows)
    assert "[on ] Products and sales (the minimum): products 40 rows, daily_sales 3,000 rows" in text
    assert "[off] Weather: weather 0 rows -- land weather to switch it on" in text


def test_without_products_or_sales_the_minimum_is_off() -> None:
    status = capability_status({"products": 10})
    assert status["sales"].missing == ("daily_sales",)
    assert "[OFF] Products and sales" in render_status(status, {"products": 10})


def test_rows_are_counted_in_the_raw_schema_and_absent_tables_count_zero(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema raw")
    con.execute("create table raw.products as select 1 as sku_id")
    con.execute("create table raw.weather (date date)")
    rows = table_rows(con)
    assert rows["products"] == 1 and rows["weather"] == 0 and rows["daily_sales"] == 0
    assert set(rows) == set(TABLES)


def test_the_guide_carries_the_capability_matrix_as_rendered() -> None:
    from pipelines.capabilities import render_matrix

    guide = (REPO_ROOT / "docs" / "bring-your-own-data.md").read_text()
    start, end = "<!-- capability-matrix:start -->\n", "\n<!-- capability-matrix:end -->"
    assert guide[guide.index(start) + len(start) : guide.index(end)] == render_matrix(), (
        "docs/bring-your-own-data.md's matrix is stale: paste render_matrix()'s output"
    )
