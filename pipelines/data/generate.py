"""``ecom generate``: simulate the e-commerce world and write it in the landing contract.

The world is drawn in two parts (:mod:`pipelines.data.simulation`). Global signals (calendar,
weather, social trends, products, customers, warehouses) come from one random stream; SKUs are then
simulated in fixed-size chunks, each with its own stream derived from (seed, chunk), so memory stays
flat as the tier grows and the files are byte-identical for the same seed. Landed tables go to
``data/generated/``; the ground truth (uncensored demand, elasticities, effect sizes) goes to
``data/truth/``, apart, for evaluation only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipelines.data import world as w
from pipelines.data.contract import CONTRACT_VERSION, TABLES
from pipelines.data.simulation.signals import WorldSignals, simulate_signals
from pipelines.data.simulation.sink import TRUTH_DEMAND_SCHEMA, ParquetSink, contract_schema
from pipelines.data.simulation.skus import simulate_chunk
from pipelines.data.simulation.tables import (
    TRUTH_PRICES_SCHEMA,
    RowIds,
    chunk_price_truth,
    chunk_tables,
    chunk_truth,
)

__all__ = ["CHUNK_SKUS", "GenerateResult", "generate_world", "signal_dimensions"]

CHUNK_SKUS = 2_000


@dataclass(frozen=True)
class GenerateResult:
    out_dir: Path
    truth_dir: Path
    rows: dict[str, int]
    seconds: float
    signal_dimensions: int


def generate_world(
    scale: str,
    seed: int,
    start: dt.date,
    out_dir: Path,
    truth_dir: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Simulate the world for a tier and write the landing contract and the ground truth.

    Both folders are replaced atomically: written under a temporary name, then renamed.
    """
    if scale not in w.TIERS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(w.TIERS)}")
    tier = w.TIERS[scale]
    started = time.perf_counter()
    tmp_out, tmp_truth = _temp_sibling(out_dir), _temp_sibling(truth_dir)
    try:
        g, global_tables, effects = simulate_signals(tier, seed, start)
        sinks = {name: ParquetSink(tmp_out / f"{name}.parquet", contract_schema(name)) for name in TABLES}
        truth_sink = ParquetSink(tmp_truth / "demand.parquet", TRUTH_DEMAND_SCHEMA)
        price_sink = ParquetSink(tmp_truth / "prices.parquet", TRUTH_PRICES_SCHEMA)
        for name, columns in global_tables.items():
            sinks[name].write(columns)
        ids = RowIds()
        for lo in range(0, tier.n_skus, CHUNK_SKUS):
            hi = min(lo + CHUNK_SKUS, tier.n_skus)
            rng = np.random.default_rng([seed, 1, lo // CHUNK_SKUS])
            chunk = simulate_chunk(g, np.arange(lo, hi), rng)
            for name, columns in chunk_tables(g, chunk, rng, ids).items():
                sinks[name].write(columns)
            truth_sink.write(chunk_truth(g, chunk))
            price_sink.write(chunk_price_truth(g, chunk))
            if progress:
                progress(hi, tier.n_skus)
        for sink in [*sinks.values(), truth_sink, price_sink]:
            sink.close()
        _write_truth_tables(tmp_truth, g, effects, scale=scale, seed=seed)
        _replace_dir(tmp_out, out_dir)
        _replace_dir(tmp_truth, truth_dir)
    finally:
        shutil.rmtree(tmp_out, ignore_errors=True)
        shutil.rmtree(tmp_truth, ignore_errors=True)
    return GenerateResult(
        out_dir=out_dir,
        truth_dir=truth_dir,
        rows={name: s.rows for name, s in sinks.items()},
        seconds=time.perf_counter() - started,
        signal_dimensions=sum(signal_dimensions().values()),
    )


def signal_dimensions() -> dict[str, int]:
    """Modelling signals the landed contract offers for one SKU-day, by family (see docs/simulation.md)."""
    return {
        "weather (region x variable)": len(w.REGIONS) * 6,
        "social trends (leaf category x metric)": len(w.LEAVES) * 4,
        "competitor prices (per competitor, plus min and mean gap)": len(w.COMPETITORS) + 2,
        "calendar (day of week, month, 4 events x pre/peak/post, Spring Festival distance)": 7 + 12 + 12 + 1,
        "own price and promotion (shelf price, discount, 3 promotion types, days on promotion)": 6,
        "inventory (on hand, on order, open purchase orders, days of cover)": 4,
        "sales history per channel (units, revenue, stockout)": len(w.CHANNELS) * 3,
        "clickstream per channel (views, add-to-carts)": len(w.CHANNELS) * 2,
        "service (tickets, returns, return rate)": 3,
        "product attributes (department, leaf, brand, list price, cost, age)": 6,
    }


def _temp_sibling(path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    return tmp


def _replace_dir(src: Path, dst: Path) -> None:
    """Swap ``src`` into ``dst``; the old folder is removed only after the new one is in place."""
    trash = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
    if dst.exists():
        os.rename(dst, trash)
    os.rename(src, dst)
    shutil.rmtree(trash, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Ground truth


def _write_truth_tables(
    truth_dir: Path, g: WorldSignals, effects: dict[str, Any], *, scale: str, seed: int
) -> None:
    s = g.sku
    pl.DataFrame(
        {
            "sku_id": np.arange(1, len(s["leaf"]) + 1),
            "category_l2": [w.LEAVES[i].name for i in s["leaf"]],
            **{
                k: s[k]
                for k in (
                    "base_demand",
                    "elasticity",
                    "cross_elasticity",
                    "promo_uplift",
                    "dispersion",
                    "app_share",
                    "trend_per_year",
                    "ramp_days",
                    "lead_time_days",
                )
            },
            # At fixed rival prices: (price/list)^e x (rival/price)^c gives e - c on own price.
            "own_price_elasticity": s["elasticity"] - s["cross_elasticity"],
            "cross_price_elasticity": s["cross_elasticity"],
        }
    ).write_parquet(truth_dir / "sku_params.parquet")
    churn = np.where(g.churn_t < (1 << 29), g.epoch0 + g.churn_t, -1)
    pl.DataFrame(
        {
            "customer_id": np.arange(1, g.n_customers + 1),
            "segment": [w.SEGMENTS[i] for i in g.segment],
            "churn_date": pl.Series(churn).replace(-1, None).cast(pl.Int32).cast(pl.Date),
        }
    ).write_parquet(truth_dir / "customer_segments.parquet")
    meta = {
        "scale": scale,
        "seed": seed,
        "start_date": str(g.start),
        "n_days": g.n_days,
        "contract_version": CONTRACT_VERSION,
        "channels": list(w.CHANNELS),
        "competitors": list(w.COMPETITORS),
        "model": "expected_demand = base x context x (price/list_price)^elasticity x "
        "(min competitor price/price)^cross_elasticity x promo_uplift^promo x ramp x trend; "
        "context = weekly x yearly x calendar x weather x social; demand ~ NegBin(mean, dispersion); "
        "units_sold = min(demand, stock); the merchant's price on day t depends on stock at the end of "
        "day t-1 (markdown on overstock, markup on scarce stock) and promotions start more often on "
        "high-context days",
        **effects,
    }
    (truth_dir / "effects.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
