"""The generated world: contract-shaped, deterministic, internally consistent, truth kept apart."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import polars as pl
import pytest

from pipelines.data.contract import TABLES
from pipelines.data.generate import generate_world, signal_dimensions

START = dt.date(2024, 1, 1)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _read(world: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(world / "data" / "generated" / f"{table}.parquet")


def test_every_contract_table_is_written_with_its_exact_schema_and_unique_keys(tiny_world: Path) -> None:
    written = sorted(p.stem for p in (tiny_world / "data" / "generated").iterdir())
    assert written == sorted(TABLES)
    for name, table in TABLES.items():
        df = _read(tiny_world, name)
        assert df.schema == pl.Schema(table.schema), name
        assert df.height > 0, name
        assert df.select(table.key).is_duplicated().sum() == 0, name
        required = [c.name for c in table.columns if not c.nullable]
        assert df.select(pl.col(required).null_count()).sum_horizontal().item() == 0, name


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    def run(seed: int, name: str) -> tuple[dict[str, str], dict[str, str]]:
        out, truth = tmp_path / name / "generated", tmp_path / name / "truth"
        generate_world("tiny", seed, START, out, truth)
        return _digests(out), _digests(truth)

    first, again, other = run(3, "a"), run(3, "b"), run(4, "c")
    assert first == again
    assert first[0]["daily_sales.parquet"] != other[0]["daily_sales.parquet"]


def test_regenerating_replaces_the_folder_without_leftovers(tmp_path: Path) -> None:
    out, truth = tmp_path / "generated", tmp_path / "truth"
    out.mkdir()
    (out / "stale.parquet").write_text("old")
    generate_world("tiny", 1, START, out, truth)
    assert not (out / "stale.parquet").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_order_lines_reconcile_with_daily_sales(tiny_world: Path) -> None:
    sales = _read(tiny_world, "daily_sales").filter(pl.col("units") > 0)
    lines = (
        _read(tiny_world, "order_lines")
        .group_by(pl.col("order_date").alias("date"), "sku_id", "channel")
        .agg(
            pl.col("quantity").sum().alias("q"),
            (pl.col("quantity") * pl.col("unit_price")).sum().alias("rev"),
        )
    )
    joined = sales.join(lines, on=["date", "sku_id", "channel"], how="full", coalesce=True)
    assert joined.filter(pl.col("units").is_null() | pl.col("q").is_null()).height == 0
    assert (joined["units"] == joined["q"]).all()
    assert (joined["revenue"] - joined["rev"]).abs().max() < 0.01


def test_sales_are_demand_censored_by_stock(tiny_world: Path) -> None:
    truth = pl.read_parquet(tiny_world / "data" / "truth" / "demand.parquet")
    sales = _read(tiny_world, "daily_sales")
    assert (truth["units_sold"] <= truth["demand"]).all()
    joined = sales.join(truth, on=["date", "sku_id", "channel"])
    assert joined.height == sales.height and (joined["units"] == joined["units_sold"]).all()
    lost = joined.filter(pl.col("demand") > pl.col("units"))
    assert lost.height > 0, "the tiny world should see some lost sales"
    assert lost["stockout"].all(), "demand exceeds sales only on stock-out days"
    inventory = _read(tiny_world, "inventory_snapshots")
    out_days = sales.filter("stockout").select("date", "sku_id").unique()
    assert out_days.join(inventory, on=["date", "sku_id"])["on_hand_units"].max() == 0


def test_promotion_days_show_higher_expected_demand(tiny_world: Path) -> None:
    truth = pl.read_parquet(tiny_world / "data" / "truth" / "demand.parquet")
    promos = (
        _read(tiny_world, "promotions")
        .select("sku_id", pl.date_ranges("start_date", "end_date").alias("date"))
        .explode("date")
        .with_columns(promo=pl.lit(True))
    )
    lift = (
        truth.group_by("date", "sku_id")
        .agg(pl.col("expected_demand").sum())
        .join(promos, on=["date", "sku_id"], how="left")
        .with_columns(pl.col("promo").fill_null(False))
        .group_by("sku_id", "promo")
        .agg(pl.col("expected_demand").mean())
        .pivot("promo", index="sku_id", values="expected_demand")
        .drop_nulls()
    )
    assert (lift["true"] / lift["false"]).median() > 1.2


def test_truth_is_kept_apart_from_landed_data(tiny_world: Path) -> None:
    truth = sorted(p.name for p in (tiny_world / "data" / "truth").iterdir())
    assert truth == [
        "customer_segments.parquet",
        "demand.parquet",
        "effects.json",
        "prices.parquet",
        "sku_params.parquet",
    ]
    landed_columns = {c for t in TABLES.values() for c in t.column_names}
    assert not {"elasticity", "expected_demand", "segment", "base_demand", "merchant_action"} & landed_columns
    params = pl.read_parquet(tiny_world / "data" / "truth" / "sku_params.parquet")
    assert (params["elasticity"] < 0).all() and (params["cross_elasticity"] > 0).all()
    # Own-price elasticity holds rival prices fixed, so the competitor term steepens it.
    assert (params["own_price_elasticity"] < params["elasticity"]).all()
    assert (params["cross_price_elasticity"] == params["cross_elasticity"]).all()


def test_the_world_offers_at_least_200_signal_dimensions() -> None:
    assert sum(signal_dimensions().values()) >= 200


def test_unknown_scale_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny, small, medium, large"):
        generate_world("huge", 1, START, tmp_path / "g", tmp_path / "t")
