"""Competitor price monitoring end to end over real HTTP on 127.0.0.1: the simulated rivals, the
crawler, quarantine, landing through the contract and the warehouse table."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.config import Settings
from pipelines.pricing.crawl import crawl_sites
from pipelines.pricing.monitor import (
    OBSERVATIONS_TABLE,
    extraction_accuracy,
    latest_competitor_prices,
    monitor_competitors,
)
from pipelines.pricing.site import SiteFaults, rival_catalogue, serve_rival_sites
from pipelines.warehouse import connect_warehouse

pytestmark = pytest.mark.integration

# A day on which one rival shows its changed layout (checked below), so both layouts are read.
DAY = dt.date(2024, 6, 1)


@pytest.fixture
def world_settings(settings: Settings, tiny_world: Path) -> Settings:
    """Settings whose ECOM_HOME holds the tiny world's generated tables."""
    shutil.copytree(tiny_world / "data" / "generated", settings.generated_dir)
    return settings


def _build_marts(settings: Settings, run_date: dt.date) -> None:
    """Just the two marts monitoring reads: 28 days of units per SKU, and the SKUs' codes."""
    import duckdb

    products = pl.read_parquet(settings.generated_dir / "products.parquet").select("sku_id")
    days = pl.date_range(run_date - dt.timedelta(days=40), run_date, eager=True).alias("date")
    demand = products.join(days.to_frame(), how="cross").with_columns(
        ((pl.col("sku_id") * 7919 + pl.col("date").dt.day()) % 13).cast(pl.Int64).alias("units")
    )
    codes = products.with_columns(pl.col("sku_id").cast(pl.String).alias("sku_code"))
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema marts")
    con.register("demand", demand.to_arrow())
    con.register("codes", codes.to_arrow())
    con.execute("create table marts.mart_demand_features as select * from demand")
    con.execute("create table marts.dim_products as select * from codes")
    con.close()


def test_a_faulty_crawl_of_the_tiny_world_lands_every_price_exactly(world_settings: Settings) -> None:
    catalogue = rival_catalogue(world_settings, DAY)
    faults = SiteFaults(image_share=0.2, error_rate=0.05, slow_share=0.05, rate_limit_per_second=18)
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        layouts = {site.layout for site in sites.sites.values()}
        result = crawl_sites(sites, None, world_settings.crawl)
        log = [r for site in sites.sites.values() for r in site.requests]
    assert layouts == {"classic", "modern"}
    acc = extraction_accuracy(result.observations, catalogue, rejections=result.rejections)
    assert acc["exact_share"] >= 0.995, (acc, result.rejections.select("sku_code", "reason"))
    assert acc["wrong_landed"] == 0
    assert acc["ocr_attempts"] > 10 and result.stats.ocr_reads == acc["ocr_attempts"]
    assert result.stats.server_errors > 0 and result.stats.retries >= result.stats.server_errors
    assert not [r for r in log if r.path.startswith(("/cart", "/search", "/account"))]


@pytest.mark.slow
def test_monitoring_lands_quarantines_and_reruns_in_place(world_settings: Settings) -> None:
    settings = world_settings
    _build_marts(settings, DAY)
    faults = SiteFaults(unknown_layout_share=0.05)
    first = monitor_competitors(settings, DAY, crawl_id="20240601T101500Z", faults=faults)

    assert first.accuracy is not None and first.accuracy["wrong_landed"] == 0
    summary = json.loads(json.dumps(first.summary(), allow_nan=False))  # what XCom and the CLI get
    assert summary["crawl_id"] == "20240601T101500Z" and summary["observations"] == first.observations
    assert first.observations > 100 and first.rejected > 0
    files = sorted(p for p in first.quarantine.iterdir() if not p.name.endswith(".reason.json"))
    assert len(files) == first.rejected
    reason = json.loads(files[0].with_name(files[0].name + ".reason.json").read_text())
    assert set(reason) >= {"competitor", "code", "url", "reason"}
    assert reason["reason"] == "layout not recognised" and b"<html" in files[0].read_bytes()

    landed = pl.read_parquet(settings.data_dir / "crawl" / "raw" / f"dt={DAY}" / "competitor_prices.parquet")
    assert landed.height == first.observations and set(landed["effective_date"]) == {DAY}
    assert not settings.raw_dir.exists()  # the retailer's raw data is not touched

    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    rows = con.sql(f"select * from {OBSERVATIONS_TABLE}").pl()
    assert rows.height == first.observations and set(rows["crawl_id"]) == {"20240601T101500Z"}
    assert set(rows["method"]) == {"html", "ocr"}
    assert rows.filter(pl.col("method") == "ocr")["ocr_confidence"].min() >= settings.crawl.min_ocr_confidence
    con.close()

    # The same crawl again replaces its rows; the crawl state turns unchanged pages into 304s.
    again = monitor_competitors(settings, DAY, crawl_id="20240601T101500Z", faults=faults)
    assert again.stats.not_modified >= again.observations - 1
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    rows = con.sql(f"select * from {OBSERVATIONS_TABLE}").pl()
    assert rows.height == again.observations == first.observations
    assert set(rows["method"]) == {"not_modified"}

    con.close()

    # Another crawl that day adds its rows; pages it quarantined keep the earlier crawl's price in
    # the day's landed partition.
    later = monitor_competitors(
        settings, DAY, crawl_id="20240601T103500Z", faults=SiteFaults(unknown_layout_share=0.3)
    )
    assert later.rejected > first.rejected
    landed = pl.read_parquet(later.batch / "competitor_prices.parquet") if later.batch else None
    assert landed is not None and landed.height == first.observations
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    counts = dict(con.sql(f"select crawl_id, count(*) from {OBSERVATIONS_TABLE} group by 1").fetchall())
    assert counts == {"20240601T101500Z": first.observations, "20240601T103500Z": later.observations}
    latest = latest_competitor_prices(con, DAY)
    con.close()
    # The truth among the rivals whose price was read (a quarantined page leaves its rival out).
    seen = rival_catalogue(settings, DAY).join(
        rows.select("competitor", "sku_id"), on=["competitor", "sku_id"]
    )
    cheapest = (
        seen.sort("price", "competitor")
        .group_by("sku_id")
        .agg(pl.col("price").first(), pl.col("competitor").first(), pl.len().alias("rivals"))
    )
    check = latest.join(cheapest, on="sku_id")
    assert check.height == latest.height == cheapest.height > 40
    assert (check["competitor_min_price"] == check["price"]).all()
    assert (check["cheapest_competitor"] == check["competitor"]).all()
    assert (check["rivals_seen"] == check["rivals"]).all()
    assert latest["observed_at"].null_count() == 0


def test_monitoring_without_sales_or_with_a_bad_crawl_id_says_why(world_settings: Settings) -> None:
    _build_marts(world_settings, DAY)
    with pytest.raises(ValueError, match=r"no sales .* between 2023-12-04 and 2023-12-31"):
        monitor_competitors(world_settings, dt.date(2023, 12, 31))
    with pytest.raises(ValueError, match=re.escape("crawl id '../x'")):
        monitor_competitors(world_settings, DAY, crawl_id="../x")


def test_monitoring_sites_that_do_not_answer_says_so(world_settings: Settings) -> None:
    import socket

    from pipelines.pricing.crawl import CrawlError

    _build_marts(world_settings, DAY)
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    crawl = world_settings.crawl.model_copy(
        update={"sites": {"rival_x": f"http://127.0.0.1:{port}"}, "max_retries": 0}
    )
    settings = world_settings.model_copy(update={"crawl": crawl})
    with pytest.raises(
        CrawlError, match=r"no rival product page could be read.*rival_x: robots.txt unreachable"
    ):
        monitor_competitors(settings, DAY)
