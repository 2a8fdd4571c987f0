"""The dbt project on the tiny world: green builds, incremental equals full refresh, idempotent reruns.

One module-scoped warehouse goes through a realistic life, each step a ``dbt build`` in a subprocess:

1. history (every day up to D-2) lands as one batch -> first (full) build;
2. day D-1 lands -> incremental build, which must write day D-1 only;
3. day D lands with two corrections of the past (a daily-sales row of D-10 and a shelf-price change
   point, both re-landed with new values) -> incremental build; the marts are snapshotted;
4. the same batch D is landed again (a retried daily run) -> build; nothing may change;
5. ``--vars '{reprocess_from: D-40}'`` (a backfill) rebuilds 40 days; nothing may change;
6. ``dbt build --full-refresh`` -> must equal the snapshot of step 3;
7. mart_demand_features rebuilt in SKU ranges (``chunk_rows``) -> must equal step 6.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from tests.integration.warehouse_fixtures import (
    MARTS,
    copy_schema,
    count_differences,
    load_raw,
    run_dbt,
    warehouse_path,
    write_batch,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What `ecom` passes dbt for the simulator's data (pipelines/transform.py, data_shape_env): daily
# rows, weeks from Monday, and the channel tests checking the two channels it sells in.
SIMULATOR_SHAPE = {"ECOM_LAND_GRAIN": "daily", "ECOM_WEEK_START": "0", "ECOM_CHANNELS": "app,web"}

# Incremental models checked against the full refresh, besides the marts.
INCREMENTAL_INTERMEDIATE = (
    "int_lost_sales_estimated",
    "int_shelf_prices_forward_filled",
    "int_promotions_exploded",
    "int_competitor_prices_summarized",
    "int_customer_orders_summarized",
    "int_customer_browsing_summarized",
)


@dataclass
class WarehouseLife:
    home: Path
    last_day: dt.date
    correction_day: dt.date
    price_correction_day: dt.date
    seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    results: dict[str, list[dict]] = field(default_factory=dict)  # run_results.json of each step
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"select count(*) from build_marts.{t}").fetchone()[0] for t in MARTS}


def _build(life: WarehouseLife, step: str, *extra: str, command: str = "build", **dbt_vars: str) -> None:
    started = time.perf_counter()
    result = run_dbt(
        life.home, [command, *extra], run_date=life.last_day, dbt_vars=dbt_vars, env=SIMULATOR_SHAPE
    )
    life.seconds[step] = time.perf_counter() - started
    life.outputs[step] = result.stdout
    life.results[step] = json.loads((life.home / "dbt" / "target" / "run_results.json").read_text())[
        "results"
    ]


def _land_corrected_day(con: duckdb.DuckDBPyConnection, world: Path, out: Path, day: dt.date) -> dict:
    """Batch for ``day`` plus two re-landed corrections of the past; returns what was corrected."""
    write_batch(con, world, out, day, day)
    sales, prices = world / "daily_sales.parquet", world / "own_prices.parquet"
    correction_day = day - dt.timedelta(days=10)
    sku, channel = con.execute(
        f"select sku_id, channel from read_parquet('{sales}') where date = ? "
        "order by units desc, sku_id limit 1",
        [correction_day],
    ).fetchone()
    con.execute(
        f"""copy (
            select * from read_parquet('{sales}') where date = date '{day}'
            union all
            select date, sku_id, channel, units + 5, round((units + 5) * price_paid, 2), price_paid, stockout
            from read_parquet('{sales}')
            where date = date '{correction_day}' and sku_id = {sku} and channel = '{channel}'
        ) to '{out / "daily_sales.parquet"}' (format parquet)"""
    )
    price_sku, price_day = con.execute(
        f"select sku_id, max(effective_date) from read_parquet('{prices}') "
        "where effective_date < ? group by sku_id order by 2 desc, 1 limit 1",
        [day - dt.timedelta(days=20)],
    ).fetchone()
    con.execute(
        f"""copy (
            select * from read_parquet('{prices}') where effective_date = date '{day}'
            union all
            select sku_id, effective_date, round(price * 0.9, 1)
            from read_parquet('{prices}') where sku_id = {price_sku} and effective_date = date '{price_day}'
        ) to '{out / "own_prices.parquet"}' (format parquet)"""
    )
    return {"correction_day": correction_day, "price_correction_day": price_day}


def _staging_views(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The SQL DuckDB holds for each staging view (the dedupe's base batch shows in it)."""
    return dict(
        con.execute(
            "select view_name, sql from duckdb_views() where schema_name = 'build_staging'"
        ).fetchall()
    )


def _warehouse_copy(life: WarehouseLife, tmp_path: Path) -> Path:
    """A copy of the life's warehouse, for a test that changes raw under the built views."""
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(warehouse_path(life.home).read_bytes())
    return copy


@pytest.fixture(scope="module")
def life(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarehouseLife]:
    world = tiny_world / "data" / "generated"
    home = tmp_path_factory.mktemp("warehouse_home")
    batches = tmp_path_factory.mktemp("batches")
    warehouse_path(home).parent.mkdir(parents=True, exist_ok=True)

    with duckdb.connect() as scratch:
        sales = world / "daily_sales.parquet"
        last_day = scratch.execute(f"select max(date) from read_parquet('{sales}')").fetchone()[0]
        day_before, two_before = last_day - dt.timedelta(days=1), last_day - dt.timedelta(days=2)
        write_batch(scratch, world, batches / "history", None, two_before)
        write_batch(scratch, world, batches / "day_before", day_before, day_before)
        corrected = _land_corrected_day(scratch, world, batches / "last_day", last_day)
    life = WarehouseLife(home, last_day, corrected["correction_day"], corrected["price_correction_day"])

    def land(folder: str, batch_date: dt.date) -> None:
        with duckdb.connect(str(warehouse_path(home))) as con:
            load_raw(con, batches / folder, batch_date, f"{folder}-{batch_date}")

    def snapshot(schema: str) -> None:
        with duckdb.connect(str(warehouse_path(home))) as con:
            copy_schema(con, "build_marts", schema, MARTS)
            copy_schema(con, "build_intermediate", schema, INCREMENTAL_INTERMEDIATE)
            life.counts[schema] = _counts(con)

    land("history", two_before)
    _build(life, "history")
    snapshot("after_history")

    land("day_before", day_before)
    _build(life, "day_before")
    snapshot("after_day_before")

    land("last_day", last_day)
    _build(life, "last_day")
    snapshot("after_last_day")

    land("last_day", last_day)  # a retried daily run re-lands the same batch
    _build(life, "rerun")
    snapshot("after_rerun")

    # a backfill: force every incremental model to rebuild the last 40 days
    _build(life, "reprocess", command="run", reprocess_from=str(last_day - dt.timedelta(days=40)))
    snapshot("after_reprocess")

    _build(life, "full_refresh", "--full-refresh")
    snapshot("after_full_refresh")

    # mart_demand_features again, in SKU ranges of at most 5,000 SKU-days (as the large tier is built)
    _build(
        life,
        "in_sku_ranges",
        "--full-refresh",
        "--select",
        "mart_demand_features",
        command="run",
        chunk_rows="5000",
    )
    yield life


def test_full_build_passes_and_every_mart_has_rows(life: WarehouseLife) -> None:
    results = life.results["full_refresh"]
    statuses = {r["status"] for r in results}
    assert statuses <= {"success", "pass"}, [r for r in results if r["status"] not in ("success", "pass")]
    kinds = {r["unique_id"].split(".")[0] for r in results}
    assert {"model", "test", "unit_test", "seed"} <= kinds
    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        counts = _counts(con)
        schemas = {r[0] for r in con.execute("select table_schema from information_schema.tables").fetchall()}
        hugeint = con.execute(
            "select table_name, column_name from information_schema.columns "
            "where data_type = 'HUGEINT' and table_schema like 'build_%'"
        ).fetchall()
    assert all(n > 0 for n in counts.values()), counts
    assert {"build_staging", "build_intermediate", "build_marts"} <= schemas
    # DuckDB sums integers to HUGEINT; the models cast their sums to bigint (dbt/README.md).
    assert hugeint == []


def test_daily_run_writes_only_the_new_day(life: WarehouseLife) -> None:
    day_before = life.last_day - dt.timedelta(days=1)
    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        for table in ("fct_sales_daily", "fct_inventory_daily", "fct_prices_daily", "mart_demand_features"):
            written = con.execute(
                f"select min(date), max(date) from after_day_before.{table} where _source_batch_date = ?",
                [day_before],
            ).fetchone()
            assert written == (day_before, day_before), table
        orders = con.execute(
            "select min(order_date), max(order_date) from after_day_before.fct_orders "
            "where _source_batch_date = ?",
            [day_before],
        ).fetchone()
        assert orders == (day_before, day_before)
    assert "rebuilding" in life.outputs["day_before"]


def test_correction_rebuilds_from_the_corrected_day(life: WarehouseLife) -> None:
    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        first_rebuilt = "select min(date) from after_last_day.{} where _source_batch_date = ?"
        sales_from = con.execute(first_rebuilt.format("fct_sales_daily"), [life.last_day]).fetchone()[0]
        prices_from = con.execute(first_rebuilt.format("fct_prices_daily"), [life.last_day]).fetchone()[0]
        corrected_units = con.execute(
            "select count(*) from after_last_day.fct_sales_daily s join after_day_before.fct_sales_daily p "
            "using (date, sku_id, channel) where s.date = ? and s.units = p.units + 5",
            [life.correction_day],
        ).fetchone()[0]
    assert sales_from == life.correction_day  # not earlier: history before the correction is left alone
    assert prices_from == life.price_correction_day  # a price holds until the next change: open-ended
    assert corrected_units == 1


def test_incremental_runs_equal_a_full_refresh(life: WarehouseLife) -> None:
    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        differences = {
            table: count_differences(con, ("after_last_day", table), (schema, table))
            for schema, tables in (("build_marts", MARTS), ("build_intermediate", INCREMENTAL_INTERMEDIATE))
            for table in tables
        }
        assert _counts(con) == life.counts["after_last_day"]
    assert differences == dict.fromkeys(differences, 0)


def test_a_build_in_sku_ranges_equals_one_in_a_piece(life: WarehouseLife) -> None:
    assert "SKU-days in 5 SKU ranges" in life.outputs["in_sku_ranges"]
    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        table = "mart_demand_features"
        assert count_differences(con, ("after_full_refresh", table), ("build_marts", table)) == 0


def test_rerunning_the_same_day_changes_nothing(life: WarehouseLife) -> None:
    assert life.counts["after_rerun"] == life.counts["after_last_day"]
    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        differences = {t: count_differences(con, ("after_last_day", t), ("after_rerun", t)) for t in MARTS}
    assert differences == dict.fromkeys(differences, 0)


def test_reprocess_from_rebuilds_the_range_and_changes_nothing(life: WarehouseLife) -> None:
    assert f"rebuilding {life.last_day - dt.timedelta(days=40)} .. end" in life.outputs["reprocess"]
    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        differences = {
            t: count_differences(con, ("after_last_day", t), ("after_reprocess", t)) for t in MARTS
        }
    assert differences == dict.fromkeys(differences, 0)


def test_docs_generate(life: WarehouseLife) -> None:
    run_dbt(life.home, ["docs", "generate"])
    catalog = json.loads((life.home / "dbt" / "target" / "catalog.json").read_text())
    documented = {node.split(".")[-1] for node in catalog["nodes"]}
    assert set(MARTS) <= documented


def test_source_freshness(life: WarehouseLife) -> None:
    result = run_dbt(life.home, ["source", "freshness"])
    sources = json.loads((life.home / "dbt" / "target" / "sources.json").read_text())["results"]
    assert len(sources) == 15
    assert {s["status"] for s in sources} == {"pass"}, result.stdout


def test_tests_of_a_daily_run_check_only_its_batch_dates(life: WarehouseLife) -> None:
    # The last step (full refresh) ran with run_date = D, whose batch holds back-dated corrections:
    # a dated model is tested from the earliest date the batch holds in the raw tables its dates
    # come from (macros/batch_scoped_tests.sql), dimensions in full. fct_sales_daily comes from
    # daily_sales and inventory_snapshots, so the older own_prices correction does not widen it.
    from pipelines.data.contract import TABLES

    def batch_start(tables: list[str]) -> dt.date:
        dated = [
            f"select min({TABLES[t].date_column}) as d from raw.{t} where _batch_date = $1" for t in tables
        ]
        with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
            return con.execute(
                f"select min(d) from ({' union all '.join(dated)})", [life.last_day]
            ).fetchone()[0]

    sales_start = batch_start(["daily_sales", "inventory_snapshots"])
    prices_start = batch_start(
        ["competitor_prices", "daily_sales", "inventory_snapshots", "own_prices", "promotions"]
    )
    every_start = batch_start([t.name for t in TABLES.values() if t.date_column])
    assert sales_start == life.correction_day
    assert every_start <= prices_start <= life.price_correction_day < sales_start
    compiled = {r["unique_id"]: r.get("compiled_code") or "" for r in life.results["full_refresh"]}

    def tests_of(model: str) -> list[str]:
        return [sql for uid, sql in compiled.items() if uid.startswith("test.") and f"_{model}_" in uid]

    for model, start in [("fct_sales_daily", sales_start), ("fct_prices_daily", prices_start)]:
        scope = f"\"date\" >= cast('{start}' as date)"
        assert tests_of(model) and all(scope in sql for sql in tests_of(model)), model
    dims = [  # tests on dim_products itself (relationships tests naming it belong to their child)
        sql
        for uid, sql in compiled.items()
        if uid.startswith("test.") and "dim_products" in uid and "relationships" not in uid
    ]
    assert dims and not any("dbt_subquery" in sql for sql in dims)


def test_a_staging_view_whose_base_batch_was_relanded_returns_the_same_rows(
    life: WarehouseLife, tmp_path: Path
) -> None:
    # The views carry their base batch as constants (macros/dedupe_latest_batch.sql). Any batch is
    # a correct base, one that no longer exists included: its keys are then all ranked.
    rows = "select * exclude (_batch_id, _loaded_at) from build_staging.stg_shop__daily_sales order by all"
    with duckdb.connect(str(_warehouse_copy(life, tmp_path))) as con:
        view_sql = _staging_views(con)["stg_shop__daily_sales"]
        before = con.execute(rows).fetchall()
        base = con.execute(
            "select _batch_date from raw.daily_sales group by all order by count(*) desc limit 1"
        ).fetchone()[0]
        con.execute(
            "update raw.daily_sales set _loaded_at = _loaded_at + interval 1 second where _batch_date = ?",
            [base],
        )
        after = con.execute(rows).fetchall()
    assert f"'{base}'" in view_sql and "base_batch" not in view_sql
    assert before and after == before


def test_a_date_filter_on_a_staging_view_reaches_every_scan_of_its_raw_table(life: WarehouseLife) -> None:
    # Batch-scoped tests and incremental models read a day or a window of the staging views; every
    # scan of the raw table under a view must be pruned to it, not read whole and filtered after
    # the dedupe (macros/dedupe_latest_batch.sql). Three batches are landed, so keys repeat.
    def scans(plan: list[dict], table: str) -> list[dict]:
        found = []
        for node in plan:
            info = node.get("extra_info") or {}
            if node.get("name", "").strip() == "SEQ_SCAN" and str(info.get("Table", "")).endswith(table):
                found.append(info)
            found += scans(node.get("children", []), table)
        return found

    with duckdb.connect(str(warehouse_path(life.home)), read_only=True) as con:
        for table in ("daily_sales", "inventory_snapshots"):
            plan = con.execute(
                f"explain (format json) select * from build_staging.stg_shop__{table} "
                f"where date >= date '{life.last_day}'"
            ).fetchall()[0][1]
            found = scans(json.loads(plan), f"raw.{table}")
            assert len(found) >= 3 and all("date" in str(s.get("Filters", "")) for s in found), (table, found)


def test_master_data_holds_one_row_per_key_and_its_staging_view_the_latest(
    life: WarehouseLife, tmp_path: Path
) -> None:
    # Customers land whole with every batch; the loader keeps each key's latest row
    # (pipelines/quality/raw/load.py, drop_superseded_rows), so after the history and two daily
    # batches raw holds one snapshot. A later batch then corrects one customer: the view, built
    # before it, must still pick the correction (any base batch is a correct one).
    batch = "customer_id, _batch_date, _batch_id, _loaded_at"
    with duckdb.connect(str(_warehouse_copy(life, tmp_path))) as con:
        rows, keys = con.execute("select count(*), count(distinct customer_id) from raw.customers").fetchone()
        assert rows == keys > 0
        base_day, corrected = con.execute(
            "select max(_batch_date), min(customer_id) from raw.customers"
        ).fetchone()
        con.execute(
            "insert into raw.customers select * replace (_batch_date + 1 as _batch_date, "
            "'later' as _batch_id) from raw.customers where customer_id = ?",
            [corrected],
        )
        got = con.execute(f"select {batch} from build_staging.stg_shop__customers order by all").fetchall()
        want = con.execute(
            f"select {batch} from (select *, row_number() over (partition by customer_id "
            "order by _batch_date desc, _loaded_at desc, _batch_id desc) as rank from raw.customers) "
            "where rank = 1 order by all"
        ).fetchall()
    chosen = {r[0]: r for r in got}
    assert chosen[corrected][1] > base_day and chosen[corrected][2] == "later"
    assert got == want


def test_the_run_date_reaches_dbt_in_the_environment_and_a_var_overrides_it(tmp_path: Path) -> None:
    """`ecom` and the DAG pass the run date as ECOM_RUN_DATE rather than --vars (a changed var makes
    dbt re-parse the whole project); an explicit --vars run_date still wins."""
    from pipelines.config import load_settings
    from pipelines.transform import run_dbt as run_project

    settings = load_settings({"ECOM_HOME": str(tmp_path)})
    compiled = tmp_path / "dbt" / "target" / "compiled" / "ecom" / "models" / "marts"

    def as_of(*extra: str) -> str:
        compile_mart = ["compile", "--select", "mart_customer_features", *extra]
        run_project(settings, compile_mart, dt.date(2024, 12, 31))
        return (compiled / "mart_customer_features.sql").read_text()

    assert "cast('2024-12-31' as date) as as_of_date" in as_of()
    assert "cast('2024-06-30' as date) as as_of_date" in as_of("--vars", "{run_date: 2024-06-30}")
