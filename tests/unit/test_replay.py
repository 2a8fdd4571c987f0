"""Replaying the world as batches: history plus daily deltas add up to the whole."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pipelines.data.replay import replay_batch


def test_history_then_a_day_adds_up_to_the_whole(tiny_world: Path, tmp_path: Path) -> None:
    source = tiny_world / "data" / "generated"
    day = dt.date(2024, 11, 11)
    history = replay_batch(source, tmp_path / "h", end=day - dt.timedelta(days=1))
    delta = replay_batch(source, tmp_path / "d", start=day, end=day)
    full = pl.read_parquet(source / "daily_sales.parquet").filter(pl.col("date") <= day)
    assert history["daily_sales"] + delta["daily_sales"] == full.height
    assert pl.read_parquet(tmp_path / "d" / "daily_sales.parquet")["date"].unique().to_list() == [day]
    # Master data comes in full (customers as of the day), so every key resolves.
    assert delta["products"] == pl.read_parquet(source / "products.parquet").height
    customers = pl.read_parquet(tmp_path / "d" / "customers.parquet")
    assert customers["signup_date"].max() <= day


def test_late_updates_are_sent_again_when_they_happen(tiny_world: Path, tmp_path: Path) -> None:
    source = tiny_world / "data" / "generated"
    po = pl.read_parquet(source / "purchase_orders.parquet").drop_nulls("received_date")
    late = po.filter(pl.col("received_date") > pl.col("order_date")).row(0, named=True)
    replay_batch(source, tmp_path / "ordered", start=late["order_date"], end=late["order_date"])
    replay_batch(source, tmp_path / "received", start=late["received_date"], end=late["received_date"])
    first = pl.read_parquet(tmp_path / "ordered" / "purchase_orders.parquet").filter(
        pl.col("po_id") == late["po_id"]
    )
    again = pl.read_parquet(tmp_path / "received" / "purchase_orders.parquet").filter(
        pl.col("po_id") == late["po_id"]
    )
    assert first["received_date"].to_list() == [None]
    assert again["received_date"].to_list() == [late["received_date"]]


def test_an_empty_window_or_source_is_refused(tiny_world: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        replay_batch(
            tiny_world / "data" / "generated",
            tmp_path / "x",
            start=dt.date(2024, 2, 2),
            end=dt.date(2024, 2, 1),
        )
    with pytest.raises(FileNotFoundError, match="ecom generate"):
        replay_batch(tmp_path, tmp_path / "x", end=dt.date(2024, 2, 1))


def test_a_table_without_rows_that_day_is_left_out_of_the_batch(tiny_world: Path, tmp_path: Path) -> None:
    source = tiny_world / "data" / "generated"
    promo_days = set(pl.read_parquet(source / "promotions.parquet")["start_date"].to_list())
    quiet = next(
        dt.date(2024, 12, 31) - dt.timedelta(days=i)
        for i in range(366)
        if dt.date(2024, 12, 31) - dt.timedelta(days=i) not in promo_days
    )
    rows = replay_batch(source, tmp_path / "d", start=quiet, end=quiet)
    assert rows["promotions"] == 0
    # The contract wants at least one row per file; a batch may hold any subset of the tables.
    assert not (tmp_path / "d" / "promotions.parquet").exists()
    assert rows["daily_sales"] > 0 and (tmp_path / "d" / "daily_sales.parquet").exists()


def test_a_date_past_the_end_of_the_world_has_no_facts_and_writes_nothing(
    tiny_world: Path, tmp_path: Path
) -> None:
    source = tiny_world / "data" / "generated"
    last = pl.read_parquet(source / "daily_sales.parquet")["date"].max()
    after = last + dt.timedelta(days=1)
    for start in (None, after, last):
        with pytest.raises(ValueError) as info:
            replay_batch(source, tmp_path / "x", start=start, end=after)
        assert str(info.value) == (
            f"no facts for {after}: {source} has no daily_sales or order_lines rows dated {after} "
            f"(its facts run from 2024-01-01 to {last}); nothing was written"
        )
        assert not (tmp_path / "x").exists()
    # The world's last day still replays.
    assert replay_batch(source, tmp_path / "x", start=last, end=last)["daily_sales"] > 0
