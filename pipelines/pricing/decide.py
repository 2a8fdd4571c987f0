"""One pricing step: the optimiser's inputs from the warehouse, its decisions published atomically.

A step (the innovation DAG runs one every ``crawl.cadence_minutes``) reads, for the run date:

- the champion's elasticities scored for the date (``pricing.price_elasticity``);
- each SKU's current price: the last published step of the day, else the day's shelf price
  (``marts.fct_prices_daily``); a SKU on promotion keeps its promotion price (``pricing.promo_lock``);
- the expected units of the next day at that price: the demand forecast's mean where the core stage
  scored one for the date, else the SKU's in-stock mean of the last 28 days, moved to the current
  price along its elasticity;
- stock cover (``marts.fct_inventory_daily``) and the cheapest rival's price from the latest crawl
  (``pricing.competitor_observations``).

Rival prices older than ``pricing.max_competitor_age_minutes`` block publishing
(:class:`StaleCompetitorPrices`), since the price-advantage rule would then chase yesterday's rival
prices; with the rule off (``price_advantage_share: 0``) the step runs without them. The decisions go
to ``pricing.price_decisions`` in one transaction, keyed by (run date, step), with the age of the
rival prices they used: rerunning a step replaces its rows.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from pipelines.config import Settings

__all__ = ["DECISIONS_TABLE", "DecisionResult", "PricingInputError", "StaleCompetitorPrices", "decide_prices"]

DECISIONS_TABLE = "pricing.price_decisions"
DECISION_COLUMNS = {
    "run_date": "date",
    "step_at": "timestamp",
    "sku_id": "bigint",
    "current_price": "double",
    "new_price": "double",
    "price_change_pct": "double",
    "list_price": "double",
    "unit_cost": "double",
    "competitor_min_price": "double",
    "competitor_observed_at": "timestamp",
    "competitor_age_minutes": "double",
    "expected_units": "double",
    "expected_revenue": "double",
    "expected_profit": "double",
    "at_or_below_rival": "boolean",
    "binding": "varchar",
    "objective": "varchar",
    "model_version": "varchar",
    "published_at": "timestamp",
}
RECENT_DAYS = 28  # the in-stock mean that stands in for a forecast


class PricingInputError(RuntimeError):
    """A pricing step cannot run: an input is missing (the message says which and what to run)."""


class StaleCompetitorPrices(PricingInputError):
    """The rival prices are older than ``pricing.max_competitor_age_minutes``: nothing is published."""


@dataclass(frozen=True)
class DecisionResult:
    """What a pricing step published."""

    run_date: dt.date
    step_at: dt.datetime
    skus: int
    changed: int
    advantage_share: float | None
    competitor_age_minutes: float | None
    baseline: str
    model_version: str
    solve_seconds: float
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "run_date": self.run_date.isoformat(),
            "step_at": self.step_at.isoformat(),
            "skus": self.skus,
            "changed": self.changed,
            "advantage_share": self.advantage_share,
            "competitor_age_minutes": self.competitor_age_minutes,
            "baseline": self.baseline,
            "model_version": self.model_version,
            "solve_seconds": round(self.solve_seconds, 3),
            "seconds": round(self.seconds, 3),
        }


def decide_prices(
    settings: Settings,
    run_date: dt.date,
    step_at: dt.datetime,
    *,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> DecisionResult:
    """Optimise every priced SKU's next price for one step and publish the decisions.

    Args:
        settings: The pricing section and the warehouse.
        run_date: The business date whose marts and elasticities the step reads.
        step_at: The step's time (naive UTC): the partition it replaces within the run date.
        now: The wall clock the rival prices' age is measured against (naive UTC; default: now).
        progress: Called with short human-readable messages.

    Raises:
        PricingInputError: No warehouse, no elasticities for the run date, or no prices.
        StaleCompetitorPrices: The latest rival prices are too old (nothing is written).
    """
    from pipelines.ml.store import replace_partition
    from pipelines.pricing.optimise import optimise_prices
    from pipelines.warehouse import connect_warehouse

    say = progress or (lambda _m: None)
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if not settings.warehouse_path.is_file():
        raise PricingInputError(f"no warehouse at {settings.warehouse_path}: run the foundation stage first")
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        inputs, baseline, version = _inputs(con, settings, run_date, step_at)
        rivals = _rival_prices(con, settings, run_date, now)
        inputs = inputs.join(rivals, on="sku_id", how="left")
        say(
            f"optimising {inputs.height:,} SKUs for {run_date} step {step_at:%H:%M} "
            f"(elasticities v{version}, baseline {baseline})"
        )
        result = optimise_prices(inputs, settings.pricing)
        decided = result.prices.join(
            inputs.select(
                "sku_id",
                "current_price",
                "list_price",
                "unit_cost",
                "competitor_min_price",
                "competitor_observed_at",
            ),
            on="sku_id",
            how="left",
        ).with_columns(
            pl.lit(run_date).alias("run_date"),
            pl.lit(step_at).alias("step_at"),
            ((pl.lit(now) - pl.col("competitor_observed_at")).dt.total_seconds() / 60).alias(
                "competitor_age_minutes"
            ),
            pl.lit(settings.pricing.objective).alias("objective"),
            pl.lit(version).alias("model_version"),
            pl.lit(now).alias("published_at"),
        )
        replace_partition(
            con, DECISIONS_TABLE, DECISION_COLUMNS, decided, run_date, within={"step_at": step_at}
        )
    finally:
        con.close()
    ages = decided["competitor_age_minutes"].drop_nulls()
    out = DecisionResult(
        run_date=run_date,
        step_at=step_at,
        skus=decided.height,
        changed=int((decided["new_price"] != decided["current_price"]).sum()),
        advantage_share=result.advantage_share,
        competitor_age_minutes=float(ages.max()) if len(ages) else None,
        baseline=baseline,
        model_version=version,
        solve_seconds=result.solve_seconds,
        seconds=time.perf_counter() - started,
    )
    say(
        f"published {out.changed:,} price changes of {out.skus:,} SKUs into {DECISIONS_TABLE} "
        f"(price advantage kept: {_share(out.advantage_share)}; solver {out.solve_seconds:.2f}s)"
    )
    return out


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _exists(con: Any, table: str) -> bool:
    from pipelines.quality.store import table_exists

    return table_exists(con, *table.split(".", 1))


def _inputs(
    con: Any, settings: Settings, run_date: dt.date, step_at: dt.datetime
) -> tuple[pl.DataFrame, str, str]:
    """One row per SKU with an elasticity and a price: everything the optimiser needs but rivals."""
    if not _exists(con, "pricing.price_elasticity"):
        raise PricingInputError(
            "no elasticities (pricing.price_elasticity does not exist): run `ecom train pricing` and "
            f"`ecom score pricing --date {run_date}` first"
        )
    elasticity = con.sql(
        """
        select sku_id, own_elasticity, cross_elasticity, model_version
        from pricing.price_elasticity where run_date = ?
        """,
        params=[run_date],
    ).pl()
    if elasticity.is_empty():
        raise PricingInputError(
            f"no elasticities scored for {run_date}: run `ecom score pricing --date {run_date}` first"
        )
    version = str(elasticity["model_version"][0])
    prices = con.sql(
        """
        select p.sku_id, p.shelf_price as day_first_price, p.effective_price, p.is_promo,
               d.list_price, d.unit_cost
        from marts.fct_prices_daily p join marts.dim_products d using (sku_id)
        where p.date = ?
        """,
        params=[run_date],
    ).pl()
    if prices.is_empty():
        raise PricingInputError(f"no prices for {run_date} in marts.fct_prices_daily: is the date published?")
    earlier = pl.DataFrame(schema={"sku_id": pl.Int64, "last_price": pl.Float64})
    if _exists(con, DECISIONS_TABLE):
        earlier = con.sql(
            f"""
            select sku_id, arg_max(new_price, step_at) as last_price
            from {DECISIONS_TABLE} where run_date = ? and step_at < ?
            group by sku_id
            """,
            params=[run_date, step_at],
        ).pl()
    frame = (
        elasticity.drop("model_version")
        .join(prices, on="sku_id", how="inner")
        .join(earlier, on="sku_id", how="left")
        .with_columns(
            pl.when(pl.col("is_promo"))
            .then(pl.col("effective_price"))
            .otherwise(pl.coalesce("last_price", "day_first_price"))
            .alias("current_price"),
            (pl.col("is_promo") & settings.pricing.promo_lock).alias("promo_locked"),
        )
    )
    units, baseline = _expected_units(con, run_date)
    stock = con.sql(
        """
        select sku_id, sum(on_hand_units) as on_hand_units, min(days_of_cover) as days_of_cover
        from marts.fct_inventory_daily where date = ? group by sku_id
        """,
        params=[run_date],
    ).pl()
    frame = (
        frame.join(units, on="sku_id", how="left")
        .join(stock, on="sku_id", how="left")
        .with_columns(
            # at the current price, along the SKU's own elasticity from the price the units were seen at
            (
                pl.col("units").fill_null(0.0)
                * (pl.col("current_price") / pl.col("seen_price").fill_null(pl.col("current_price"))).pow(
                    pl.col("own_elasticity")
                )
            ).alias("baseline_units")
        )
    )
    return (
        frame.select(
            "sku_id",
            "current_price",
            "day_first_price",
            "list_price",
            "unit_cost",
            "own_elasticity",
            "cross_elasticity",
            "baseline_units",
            pl.col("on_hand_units").cast(pl.Float64),
            pl.col("days_of_cover").cast(pl.Float64),
            "promo_locked",
        ),
        baseline,
        version,
    )


def _expected_units(con: Any, run_date: dt.date) -> tuple[pl.DataFrame, str]:
    """Expected units of the next day per SKU, and the price they were expected at."""
    if _exists(con, "forecasts.demand_forecast"):
        forecast = con.sql(
            """
            select f.sku_id, f.mean as units, p.effective_price as seen_price
            from forecasts.demand_forecast f
            left join marts.fct_prices_daily p on p.sku_id = f.sku_id and p.date = ?
            where f.run_date = ? and f.target_date = ?
            """,
            params=[run_date, run_date, run_date + dt.timedelta(days=1)],
        ).pl()
        if not forecast.is_empty():
            return forecast, "demand forecast"
    recent = con.sql(
        f"""
        select sku_id, avg(units) as units, avg(effective_price) as seen_price
        from marts.mart_demand_features
        where date > ? - interval {RECENT_DAYS} day and date <= ? and not coalesce(stockout, false)
        group by sku_id
        """,
        params=[run_date, run_date],
    ).pl()
    return recent, f"in-stock mean of {RECENT_DAYS} days"


def _rival_prices(con: Any, settings: Settings, run_date: dt.date, now: dt.datetime) -> pl.DataFrame:
    """The cheapest rival's latest crawled price per SKU; stale prices stop the step."""
    empty = pl.DataFrame(
        schema={"sku_id": pl.Int64, "competitor_min_price": pl.Float64, "competitor_observed_at": pl.Datetime}
    )
    needed = settings.pricing.price_advantage_share > 0
    if not _exists(con, "pricing.competitor_observations"):
        if needed:
            raise StaleCompetitorPrices(
                "no rival prices: pricing.competitor_observations does not exist. Crawl first "
                f"(`ecom crawl --date {run_date}`), or switch the price-advantage rule off "
                "(pricing.price_advantage_share: 0)"
            )
        return empty
    from pipelines.pricing.monitor import latest_competitor_prices

    latest = latest_competitor_prices(con, run_date)
    if latest.is_empty():
        if needed:
            raise StaleCompetitorPrices(
                f"no rival prices crawled for {run_date} or before: run `ecom crawl --date {run_date}`, "
                "or switch the price-advantage rule off (pricing.price_advantage_share: 0)"
            )
        return empty
    newest = latest["observed_at"].max()
    age = (now - newest).total_seconds() / 60
    limit = settings.pricing.max_competitor_age_minutes
    if needed and age > limit:
        raise StaleCompetitorPrices(
            f"the newest rival price is {age:,.0f} min old (crawled {newest:%Y-%m-%d %H:%M} UTC), over "
            f"pricing.max_competitor_age_minutes ({limit}): nothing published for {run_date}. Crawl "
            f"again (`ecom crawl --date {run_date}`) and rerun the step"
        )
    # A SKU whose own rival price is stale (not seen by the latest crawls) is priced without the rule.
    fresh = latest.filter((pl.lit(now) - pl.col("observed_at")).dt.total_seconds() / 60 <= limit)
    return fresh.select(
        "sku_id",
        "competitor_min_price",
        pl.col("observed_at").alias("competitor_observed_at"),
    )
