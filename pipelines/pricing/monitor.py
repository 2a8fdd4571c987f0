"""Competitor price monitoring: crawl the rivals' prices of our top sellers and land what was read.

One monitoring run (:func:`monitor_competitors`) picks the monitored SKUs from the published marts,
crawls the rival sites (the configured ones, or the simulated world's rivals served on 127.0.0.1),
quarantines what could not be read, lands the prices through the landing contract as a
``competitor_prices`` batch (``data/crawl/raw/dt=<day>``: each rival's latest price of the day over
the day's crawls), and writes the observations to ``pricing.competitor_observations``.
:func:`latest_competitor_prices` gives the pricing optimiser each SKU's cheapest rival price.

The measurement helpers say how good a crawl is: :func:`extraction_accuracy` against the simulated
catalogue, and :func:`staleness_at_cadence` for how old a price is when the optimiser uses it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from pipelines.config import CrawlParams, Settings
from pipelines.pricing.crawl import CrawlError, CrawlResult, CrawlState, CrawlStats, crawl_sites

if TYPE_CHECKING:
    from pipelines.pricing.site import SiteFaults

__all__ = [
    "OBSERVATIONS_COLUMNS",
    "OBSERVATIONS_TABLE",
    "MonitorResult",
    "extraction_accuracy",
    "latest_competitor_prices",
    "measure_simulated_crawl",
    "monitor_competitors",
    "monitored_skus",
    "staleness_at_cadence",
]

OBSERVATIONS_TABLE = "pricing.competitor_observations"
OBSERVATIONS_COLUMNS = {
    "run_date": "date",
    "crawl_id": "varchar",
    "competitor": "varchar",
    "sku_id": "bigint",
    "sku_code": "varchar",
    "price": "double",
    "observed_at": "timestamp",
    "method": "varchar",
    "ocr_confidence": "double",
    "url": "varchar",
}
LATEST_SCHEMA = pl.Schema(
    {
        "sku_id": pl.Int64(),
        "competitor_min_price": pl.Float64(),
        "cheapest_competitor": pl.String(),
        "observed_at": pl.Datetime("us"),
        "rivals_seen": pl.UInt32(),
    }
)
# Top sellers are ranked over this many days up to the run date.
RANKING_DAYS = 28
# Varies which simulated pages are images, slow or failing; fixed so a day's crawl is repeatable.
SIMULATED_SITE_SEED = 0
_CRAWL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXACT = 0.005  # a price read within half a cent is the price


@dataclass(frozen=True)
class MonitorResult:
    """What one monitoring run did.

    Attributes:
        crawl_id: UTC start of the crawl, ``20241229T101500Z``.
        observations: Prices landed (rows written to ``pricing.competitor_observations``).
        rejected: Pages or images quarantined.
        quarantine: Folder holding the rejections (created only when there are any).
        batch: The landed ``competitor_prices`` partition, None when nothing was read.
        stats: The crawl's counts.
        accuracy: Against the simulated catalogue (see :func:`extraction_accuracy`); None for real sites.
    """

    crawl_id: str
    observations: int
    rejected: int
    quarantine: Path
    batch: Path | None
    stats: CrawlStats
    accuracy: dict[str, float] | None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly (for XCom and ``--summary-out``): paths as text, NaN as None."""

        def clean(values: dict[str, float]) -> dict[str, float | None]:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}

        return {
            "crawl_id": self.crawl_id,
            "observations": self.observations,
            "rejected": self.rejected,
            "quarantine": str(self.quarantine) if self.rejected else None,
            "batch": str(self.batch) if self.batch else None,
            "stats": clean(self.stats.as_dict()),
            "accuracy": clean(self.accuracy) if self.accuracy is not None else None,
        }


def monitored_skus(con: Any, run_date: dt.date, top: int) -> pl.DataFrame:
    """The ``top`` sellers by units over the 28 days up to ``run_date``, with their codes.

    Returns:
        sku_id, sku_code, units; best sellers first.

    Raises:
        ValueError: The marts have no sales in that window (publish the marts first).
    """
    start = run_date - dt.timedelta(days=RANKING_DAYS - 1)
    frame = con.sql(
        """
        select sales.sku_id, products.sku_code, sales.units
        from (
            select sku_id, sum(units) as units
            from marts.mart_demand_features
            where date between ? and ?
            group by sku_id
        ) as sales
        join marts.dim_products as products on products.sku_id = sales.sku_id
        order by sales.units desc, sales.sku_id
        limit ?
        """,
        params=[start, run_date, top],
    ).pl()
    if frame.is_empty():
        raise ValueError(
            f"marts.mart_demand_features has no sales for SKUs in marts.dim_products between {start} and "
            f"{run_date}: there is nothing to monitor; publish the marts for that window first (`make run`)"
        )
    return frame.select(
        pl.col("sku_id").cast(pl.Int64), pl.col("sku_code").cast(pl.String), pl.col("units").cast(pl.Float64)
    )


def monitor_competitors(
    settings: Settings,
    run_date: dt.date,
    *,
    crawl_id: str | None = None,
    faults: SiteFaults | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonitorResult:
    """Crawl the rivals' prices of the top sellers, quarantine what was not read, land the rest.

    Args:
        settings: The crawl's settings (``settings.crawl``), paths and the warehouse.
        run_date: The day the prices are for: it picks the monitored SKUs, names the landed
            partition and, for the simulated rivals, the day their sites show.
        crawl_id: The crawl's id; None names it after the UTC time it starts. Passing an earlier
            crawl's id reruns that crawl: its rows are replaced, not added to.
        faults: How unfriendly the simulated rivals are (their defaults when None); unused with
            ``settings.crawl.sites``.
        progress: Called with short messages as the run goes.

    Returns:
        The crawl's id, counts, where rejections went and, for the simulated rivals, the accuracy.

    Raises:
        ValueError: No sales to rank SKUs by (see :func:`monitored_skus`), or a broken crawl state.
        CrawlError: Not one product page could be read (every site unreachable, say), or a site
            URL is not http(s).
        LandingError: The crawl's batch breaks the landing contract (then it is in quarantine).
        OcrUnavailable: A rival draws prices as images and Tesseract is not installed.
    """
    from pipelines.data.land import land_batch
    from pipelines.warehouse import connect_warehouse

    say = progress or (lambda _m: None)
    params = settings.crawl
    if crawl_id is not None and not _CRAWL_ID.fullmatch(crawl_id):
        raise ValueError(
            f"crawl id {crawl_id!r} is not a crawl's id: it names folders, so letters, digits, '_' and "
            "'-' only (the monitor names a crawl after its UTC start, 20241229T101500Z)"
        )
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        skus = monitored_skus(con, run_date, params.monitored_skus)
        wanted = set(skus["sku_code"].to_list())
        say(f"monitoring {len(wanted)} SKU(s) for {run_date}")
        crawl_dir = settings.data_dir / "crawl"
        state_path = crawl_dir / "state.json"
        state = CrawlState.load(state_path)
        crawl_id = crawl_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        catalogue = None
        if params.sites:
            result = crawl_sites(params.sites, wanted, params, state=state, progress=progress)
        else:
            from pipelines.pricing.site import rival_catalogue, serve_rival_sites

            catalogue = rival_catalogue(settings, run_date)
            with serve_rival_sites(catalogue, run_date, seed=SIMULATED_SITE_SEED, faults=faults) as sites:
                say(f"serving the simulated rivals ({', '.join(sites)}) on 127.0.0.1")
                result = crawl_sites(sites, wanted, params, state=state, progress=progress)
        state.save(state_path)

        quarantine = settings.quarantine_dir / "crawl" / f"{run_date.isoformat()}_{crawl_id}"
        quarantine_rejections(result.rejections, quarantine)
        if result.rejections.height:
            say(f"quarantined {result.rejections.height} rejection(s) in {quarantine}")
        if result.observations.is_empty() and result.stats.product_pages == 0:
            failures = result.rejections.filter(pl.col("sku_code") == "")
            reasons = "; ".join(f"{c}: {r}" for c, r in failures.select("competitor", "reason").iter_rows())
            why = reasons or "no wanted product is listed"
            raise CrawlError(
                f"no rival product page could be read for {run_date} ({why}); see {quarantine}. "
                "Check settings.crawl.sites and that the sites answer"
            )

        observed = result.observations.join(skus.select("sku_code", "sku_id"), on="sku_code", how="inner")
        batch = None
        # The day's partition holds each rival's latest price of the day over all its crawls, so a
        # page quarantined in this crawl keeps the price an earlier crawl read.
        day_prices = _day_prices(con, run_date, crawl_id, observed)
        if day_prices.height:
            batch_dir = crawl_dir / f"dt={run_date.isoformat()}" / f"crawl={crawl_id}"
            batch_dir.mkdir(parents=True, exist_ok=True)
            day_prices.write_parquet(batch_dir / "competitor_prices.parquet")
            landed = land_batch(
                str(batch_dir),
                settings,
                run_date,
                progress=progress,
                require_facts=False,
                raw_dir=crawl_dir / "raw",
            )
            batch = landed.partition
        rows = observed.select(
            pl.lit(run_date).alias("run_date"),
            pl.lit(crawl_id).alias("crawl_id"),
            "competitor",
            "sku_id",
            "sku_code",
            "price",
            # DuckDB's timestamp is naive: store UTC wall time.
            pl.col("observed_at").dt.convert_time_zone("UTC").dt.replace_time_zone(None),
            "method",
            "ocr_confidence",
            "url",
        )
        from pipelines.ml.store import replace_partition

        replace_partition(
            con, OBSERVATIONS_TABLE, OBSERVATIONS_COLUMNS, rows, run_date, within={"crawl_id": crawl_id}
        )
        say(f"wrote {rows.height} observation(s) to {OBSERVATIONS_TABLE} (crawl {crawl_id})")
    finally:
        con.close()
    accuracy = None
    if catalogue is not None:
        accuracy = extraction_accuracy(
            result.observations, catalogue, rejections=result.rejections, wanted_codes=wanted
        )
    return MonitorResult(
        crawl_id, rows.height, result.rejections.height, quarantine, batch, result.stats, accuracy
    )


def _day_prices(con: Any, run_date: dt.date, crawl_id: str, observed: pl.DataFrame) -> pl.DataFrame:
    """The contract's competitor_prices rows for a day: each rival's latest price of the day per SKU,
    from this crawl's observations and the day's other crawls in the warehouse."""
    frames = [observed.select("sku_id", "competitor", "price", "observed_at")]
    if _has_observations(con):
        earlier = con.sql(
            f"select sku_id, competitor, price, observed_at from {OBSERVATIONS_TABLE} "
            "where run_date = ? and crawl_id <> ?",
            params=[run_date, crawl_id],
        ).pl()
        frames.append(
            earlier.select(
                pl.col("sku_id").cast(pl.Int64),
                pl.col("competitor").cast(pl.String),
                pl.col("price").cast(pl.Float64),
                pl.col("observed_at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            )
        )
    return (
        pl.concat([f.with_columns(pl.col("observed_at").cast(pl.Datetime("us", "UTC"))) for f in frames])
        .sort("observed_at")
        .group_by("sku_id", "competitor")
        .last()
        .select("sku_id", "competitor", pl.lit(run_date).alias("effective_date"), "price")
        .sort("sku_id", "competitor")
    )


def _has_observations(con: Any) -> bool:
    from pipelines.quality.store import table_exists

    return table_exists(con, *OBSERVATIONS_TABLE.split(".", 1))


def quarantine_rejections(rejections: pl.DataFrame, folder: Path) -> list[Path]:
    """Write each rejected page or image with a ``<name>.reason.json`` beside it.

    Returns:
        The files written (pages and images, not the reasons); the folder is only created when
        there is something to put in it.
    """
    written: list[Path] = []
    for i, row in enumerate(rejections.iter_rows(named=True)):
        folder.mkdir(parents=True, exist_ok=True)
        code = _safe(row["sku_code"] or "site")
        ext = "png" if row["kind"] == "image" else "html" if row["kind"] == "page" else "txt"
        path = folder / f"{_safe(row['competitor'])}_{code}_{i:04d}.{ext}"
        path.write_bytes(row["content"] or b"")
        reason = {
            "competitor": row["competitor"],
            "code": row["sku_code"],
            "url": row["url"],
            "reason": row["reason"],
            "kind": row["kind"],
        }
        path.with_name(path.name + ".reason.json").write_text(json.dumps(reason, indent=2) + "\n")
        written.append(path)
    return written


def latest_competitor_prices(con: Any, run_date: dt.date) -> pl.DataFrame:
    """Each SKU's cheapest rival price from the latest observation of each rival up to ``run_date``.

    Returns:
        sku_id, competitor_min_price, cheapest_competitor, observed_at (of that price, UTC, naive),
        rivals_seen; empty when nothing was ever observed.
    """
    if not _has_observations(con):
        return pl.DataFrame(schema=LATEST_SCHEMA)
    frame = con.sql(
        f"""
        with latest as (
            select sku_id, competitor, price, observed_at
            from {OBSERVATIONS_TABLE}
            where run_date <= ?
            qualify row_number() over (
                partition by sku_id, competitor order by observed_at desc, run_date desc, crawl_id desc
            ) = 1
        )
        select
            sku_id,
            min(price) as competitor_min_price,
            arg_min(competitor, (price, competitor)) as cheapest_competitor,
            arg_min(observed_at, (price, competitor)) as observed_at,
            count(*) as rivals_seen
        from latest
        group by sku_id
        order by sku_id
        """,
        params=[run_date],
    ).pl()
    return frame.cast(dict(LATEST_SCHEMA.items()))


def extraction_accuracy(
    observations: pl.DataFrame,
    catalogue: pl.DataFrame,
    *,
    rejections: pl.DataFrame | None = None,
    wanted_codes: set[str] | None = None,
) -> dict[str, float]:
    """How well a crawl read the rivals' prices, against the catalogue the sites served.

    The base is every (rival, code) the catalogue holds for the wanted codes (all when None).

    Returns:
        prices (the base), exact_share (landed to the cent), wrong_landed_share (landed but not the
        price: must be 0), wrong_landed, quarantined_share, missing_share (neither landed nor
        quarantined), html_exact_share (of prices read from HTML), ocr_attempts (images OCR read or
        refused), ocr_exact (landed exactly by OCR) and ocr_exact_share (of ocr_attempts).
    """
    truth = catalogue.select("competitor", "sku_code", pl.col("price").alias("true_price"))
    if wanted_codes is not None:
        truth = truth.filter(pl.col("sku_code").is_in(sorted(wanted_codes)))
    base = truth.height
    joined = observations.join(truth, on=["competitor", "sku_code"], how="left").with_columns(
        ((pl.col("price") - pl.col("true_price")).abs() < _EXACT).fill_null(False).alias("exact")
    )
    exact = int(joined["exact"].sum())
    wrong = joined.height - exact
    html = joined.filter(pl.col("method") == "html")
    ocr = joined.filter(pl.col("method") == "ocr")
    rej = (
        rejections
        if rejections is not None
        else pl.DataFrame(schema={"sku_code": pl.String(), "kind": pl.String()})
    )
    ocr_refused = rej.filter(pl.col("kind") == "image").height
    ocr_attempts = ocr.height + ocr_refused
    # Rejections of a product (not of a listing or robots.txt) that was in the base.
    quarantined = (
        rej.filter(pl.col("sku_code").is_in(truth["sku_code"].implode())).height
        if "sku_code" in rej.columns
        else 0
    )

    def share(n: float, d: float) -> float:
        return float(n) / d if d else float("nan")

    return {
        "prices": float(base),
        "exact_share": share(exact, base),
        "wrong_landed": float(wrong),
        "wrong_landed_share": share(wrong, base),
        "quarantined_share": share(quarantined, base),
        "missing_share": share(max(base - exact - wrong - quarantined, 0), base),
        "html_exact_share": share(int(html["exact"].sum()), html.height),
        "ocr_attempts": float(ocr_attempts),
        "ocr_exact": float(ocr["exact"].sum()),
        "ocr_exact_share": share(int(ocr["exact"].sum()), ocr_attempts),
    }


def staleness_at_cadence(
    fetch_offsets_seconds: Sequence[float], cadence_minutes: float, *, samples: int = 2000
) -> dict[str, float]:
    """How old the freshest landed price of each rival SKU is at a random moment.

    A crawl starts every ``cadence_minutes`` (or, when a crawl takes longer, as soon as the last one
    ends: runs do not overlap) and fetches each page at its offset into the crawl; its prices land
    when the crawl ends. At a moment ``t`` the freshest price of a page is therefore the one from
    the latest crawl that has ended, and its age is ``t`` minus that crawl's start minus the page's
    offset. Moments are spread evenly over one period, so the figures are exact up to the sampling.

    Args:
        fetch_offsets_seconds: Each page's fetch time, seconds after its crawl started.
        cadence_minutes: How often a crawl starts.
        samples: Moments per period.

    Returns:
        p50_minutes, p95_minutes, max_minutes of the age over pages and moments; period_minutes (the
        real gap between crawl starts) and crawl_minutes (a crawl's duration).

    Raises:
        ValueError: No offsets, a negative offset or a cadence that is not positive.
    """
    offsets = np.asarray(fetch_offsets_seconds, dtype=float) / 60.0
    if offsets.size == 0:
        raise ValueError("staleness needs at least one page's fetch offset")
    if (offsets < 0).any() or cadence_minutes <= 0:
        raise ValueError("fetch offsets must be >= 0 and the cadence > 0")
    duration = float(offsets.max())
    period = max(float(cadence_minutes), duration)
    moments = (np.arange(samples) + 0.5) / samples * period  # minutes after a crawl's start
    # Before the current crawl has ended, the latest landed prices are the previous crawl's.
    landed_start = np.where(moments >= duration, 0.0, -period)
    ages = moments[None, :] - landed_start[None, :] - offsets[:, None]
    return {
        "p50_minutes": float(np.quantile(ages, 0.5)),
        "p95_minutes": float(np.quantile(ages, 0.95)),
        "max_minutes": float(ages.max()),
        "period_minutes": period,
        "crawl_minutes": duration,
    }


def measure_simulated_crawl(
    generated_dir: Path,
    day: dt.date,
    *,
    monitored: int = 300,
    params: CrawlParams | None = None,
    faults: SiteFaults | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Crawl a generated world's rivals as served on ``day`` and measure the crawl.

    The monitored codes are ``monitored`` SKUs drawn (with ``seed``) from those any rival carries.

    Args:
        generated_dir: A generated world's ``data/generated``.
        day: The day the rivals' sites show.
        monitored: How many SKUs to watch.
        params: The crawl's settings; the defaults when None.
        faults: The sites' faults; their defaults when None.
        seed: Picks the codes and the sites' image, slow and failing pages.

    Returns:
        ``accuracy`` (:func:`extraction_accuracy`), ``stats`` (the crawl's counts and pages per
        second) and ``staleness`` (:func:`staleness_at_cadence` at ``params.cadence_minutes``).
    """
    from pipelines.pricing.site import read_rival_catalogue, serve_rival_sites

    params = params or CrawlParams()
    catalogue = read_rival_catalogue(generated_dir, day)
    codes = catalogue["sku_code"].unique().sort()
    wanted = set(codes.sample(min(monitored, codes.len()), seed=seed).to_list())
    with serve_rival_sites(catalogue, day, seed=seed, faults=faults) as sites:
        result = crawl_sites(sites, wanted, params)
    return {
        "monitored": len(wanted),
        "accuracy": extraction_accuracy(
            result.observations, catalogue, rejections=result.rejections, wanted_codes=wanted
        ),
        "stats": result.stats.as_dict(),
        "staleness": staleness_at_cadence(fetch_offsets(result), params.cadence_minutes),
        "rejections": result.rejections.group_by("reason").len().sort("len", descending=True).rows(),
    }


def fetch_offsets(result: CrawlResult) -> list[float]:
    """Seconds after the crawl's start at which each observation was read."""
    if result.observations.is_empty():
        return []
    start = result.started_at
    return [(t - start).total_seconds() for t in result.observations["observed_at"].to_list()]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80] or "_"
