"""Pricing replay: pricing policies side by side in the simulator, on its true demand model.

Over the same weeks and several seeds, each policy sets a regular price per SKU each step; demand
is the simulator's expected demand at the price it paid, moved to the policy's price along the true
curve, ``expected_demand x (p / price) ** own_price_elasticity`` (the elasticity at fixed rival
prices, rivals as they were; on days no rival carries the SKU the competitor term is absent, so
``own_price_elasticity + cross_price_elasticity``, the simulator's plain elasticity). Promoted
SKU-days keep the promotion (the calendar lock): every policy charges the promotion's price, the
static policy its discount off the list price. Units are drawn with common random numbers (one
gamma multiplier and one uniform per SKU-step and seed, inverted through the Poisson CDF), so every
policy meets the same luck and a higher mean always sells at least as much. Sales are censored by
stock, and every policy restocks by the same rule (weekly order-up-to from its own in-stock sales
rate, fixed lead time), so turnover and stock-outs differ by policy.

Policies: ``static`` (list price), ``rule`` (cheapest rival minus 1%, floored at cost x (1 +
min_margin_pct/100), capped at list), ``ai`` (:func:`~pipelines.pricing.optimise.optimise_prices`
on estimated elasticities and a baseline from its own recent sales), ``oracle`` (the optimiser with
the true elasticities and the true expected demand: the ceiling) and ``merchant`` (the simulated
merchant's own prices, the traditional reference). All start from list prices and the same stock,
after a warm-up run at list prices that is not counted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.config import PricingParams
from pipelines.pricing.optimise import _Inputs, _solve

__all__ = [
    "KPIS",
    "POLICIES",
    "SOURCE_CLAIMS",
    "TRUTH_COLUMNS",
    "ReplayResult",
    "format_replay",
    "load_pricing_truth",
    "replay_pricing",
    "stand_in_elasticities",
]

POLICIES = ("static", "rule", "ai", "oracle", "merchant")
KPIS = (
    "revenue",
    "gross_profit",
    "gross_margin_pct",
    "expected_gross_profit",
    "units",
    "price_advantage_share",
    "turnover",
    "stockout_share",
    "price_changes_per_sku_day",
    "price_changes_per_hour",
    "mean_abs_change_pct",
)
TRUTH_COLUMNS = (
    "date",
    "sku_id",
    "shelf_price",
    "discount_pct",
    "price",
    "competitor_min_price",
    "expected_demand",
    "on_hand_units",
    "own_price_elasticity",
    "cross_price_elasticity",
)
# What the source reports for its AI pricing; the replay's counterpart is named beside each.
SOURCE_CLAIMS: tuple[tuple[str, float | None, str], ...] = (
    ("price advantage kept (% of SKU-days)", 92.0, "price_advantage_share"),
    ("gross margin (points)", 3.2, "gross_margin_pts"),
    ("revenue (%)", 19.0, "revenue_pct"),
    ("stock turnover (%)", 28.0, "turnover_pct"),
    ("price complaints (%)", -76.0, None),
    ("price changes per hour", 3.0, "price_changes_per_hour"),
)

WARMUP_DAYS = 14  # run at list prices before the counted weeks: sales history and identical stock
RULE_UNDERCUT = 0.01  # the rule-based repricer: cheapest rival minus 1%
REVIEW_DAYS = 7  # restocking: weekly order-up-to
LEAD_DAYS = 4
RATE_DAYS = 28  # the in-stock sales rate a restocking order is sized from
SAFETY = 1.3  # order up to this many times the expected sales over lead time plus review
BASELINE_DAYS = 7  # the AI's recent-sales window for its baseline units
_CENT = 0.005


@dataclass(frozen=True)
class ReplayResult:
    """A pricing replay's figures.

    Attributes:
        per_seed: One row per policy and seed with the :data:`KPIS`.
        summary: One row per policy and KPI: mean, lo and hi (95% t interval across seeds).
        lifts: One row per policy, baseline (static, rule) and metric (revenue_pct, gross_margin_pts,
            turnover_pct, price_advantage_pts): mean, lo, hi of the paired per-seed lift.
        claims: The source's figures beside the AI policy's (replay_mean, lo, hi) against each baseline.
        start: First counted day. end: Last counted day.
        skus: SKUs replayed. seeds: Seeds replayed. seconds: Wall time.
        steps: With ``record``: one row per policy, seed, counted day, step and SKU (date, step,
            sku_id, regular_price, price, units, demand, mean_units, on_hand_start); else None.
    """

    per_seed: pl.DataFrame
    summary: pl.DataFrame
    lifts: pl.DataFrame
    claims: pl.DataFrame
    start: dt.date
    end: dt.date
    skus: int
    seeds: int
    seconds: float
    steps: pl.DataFrame | None = None


@dataclass(frozen=True)
class _World:
    dates: list[dt.date]
    sku_id: np.ndarray
    active: np.ndarray  # (days, skus) bool
    expected: np.ndarray  # mean units per day at the paid price
    paid: np.ndarray
    shelf: np.ndarray
    discount: np.ndarray  # percent
    rival: np.ndarray  # nan: no rival
    elasticity: np.ndarray  # true, at fixed rival prices, per day
    dispersion: np.ndarray  # per SKU; inf: Poisson
    on_hand0: np.ndarray
    list_price: np.ndarray
    cost: np.ndarray


def load_pricing_truth(truth_dir: Path) -> pl.DataFrame:
    """The simulator's pricing truth: ``prices.parquet`` joined with the true elasticities.

    Args:
        truth_dir: The ground-truth folder (``settings.truth_dir``).

    Returns:
        One row per date and SKU with :data:`TRUTH_COLUMNS` (plus ``dispersion`` where known).

    Raises:
        FileNotFoundError: ``prices.parquet`` or ``sku_params.parquet`` is not in ``truth_dir``.
    """
    prices_path, params_path = truth_dir / "prices.parquet", truth_dir / "sku_params.parquet"
    for path in (prices_path, params_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found; run `ecom generate` to write the simulator's truth")
    params = pl.read_parquet(params_path)
    if "own_price_elasticity" not in params.columns:  # truth written before the fixed-rival columns
        params = params.with_columns(
            (pl.col("elasticity") - pl.col("cross_elasticity")).alias("own_price_elasticity"),
            pl.col("cross_elasticity").alias("cross_price_elasticity"),
        )
    keep = ["sku_id", "own_price_elasticity", "cross_price_elasticity"]
    keep += ["dispersion"] if "dispersion" in params.columns else []
    prices = pl.read_parquet(prices_path).drop(keep[1:], strict=False)
    return prices.join(params.select(keep), on="sku_id", how="left")


def stand_in_elasticities(truth: pl.DataFrame, noise_sd: float, seed: int) -> pl.DataFrame:
    """Estimates stood in by the true elasticities plus noise, until the estimator's land.

    ``own_elasticity`` is the true elasticity at fixed rival prices (``own_price_elasticity``), as
    the optimiser wants it, plus Gaussian noise of ``noise_sd``, capped at -0.1 so no estimate says a
    price rise sells more.
    """
    skus = truth.group_by("sku_id").agg(
        pl.col("own_price_elasticity").first(), pl.col("cross_price_elasticity").first()
    )
    rng = np.random.default_rng([seed, 24, 1])
    fixed = skus["own_price_elasticity"].to_numpy()
    return pl.DataFrame(
        {
            "sku_id": skus["sku_id"],
            "own_elasticity": np.minimum(fixed + rng.normal(0, noise_sd, skus.height), -0.1),
            "cross_elasticity": skus["cross_price_elasticity"],
        }
    ).sort("sku_id")


def replay_pricing(
    truth: pl.DataFrame,
    products: pl.DataFrame,
    elasticities: pl.DataFrame | None,
    params: PricingParams,
    *,
    weeks: int,
    seeds: Sequence[int],
    steps_per_day: int = 1,
    record: bool = False,
) -> ReplayResult:
    """Replay the pricing policies over the truth's last ``weeks`` weeks for each seed.

    Args:
        truth: One row per date and SKU with :data:`TRUTH_COLUMNS` (see :func:`load_pricing_truth`);
            ``dispersion`` (gamma-Poisson shape) is used where present.
        products: sku_id, list_price, unit_cost.
        elasticities: sku_id, own_elasticity (at fixed rival prices) and optionally
            cross_elasticity (added on days without a rival) for the AI policy; SKUs without an
            own elasticity keep their price. None replays without the AI policy.
        params: The pricing settings the optimiser and the rule follow.
        weeks: Counted weeks, the last of the truth; a warm-up of up to :data:`WARMUP_DAYS` precedes.
        seeds: Seeds of the demand draws, one replay per seed.
        steps_per_day: Optimiser runs (repricing steps) per day.
        record: Keep every counted SKU-step (price, units, demand, stock) in ``ReplayResult.steps``.

    Returns:
        Per-seed KPIs, their summary across seeds, the lifts and the source's claims beside them.

    Raises:
        ValueError: A column is missing, the truth is shorter than ``weeks``, or no seed is given.
    """
    started = time.perf_counter()
    if not seeds:
        raise ValueError("replay_pricing needs at least one seed")
    if steps_per_day < 1 or weeks < 1:
        raise ValueError("replay_pricing needs weeks >= 1 and steps_per_day >= 1")
    world, warmup = _build_world(truth, products, weeks)
    est = _estimates(world, elasticities)
    policies = [p for p in POLICIES if p != "ai" or est is not None]
    rows, recorded = [], []
    for seed in seeds:
        draws = _draws(world, seed, steps_per_day)
        for policy in policies:
            kpis, steps = _simulate(world, policy, params, draws, est, warmup, steps_per_day, record)
            rows.append({"policy": policy, "seed": int(seed), **kpis})
            if steps is not None:
                recorded.append(
                    steps.with_columns(pl.lit(policy).alias("policy"), pl.lit(int(seed)).alias("seed"))
                )
    per_seed = pl.DataFrame(rows)
    lifts = _lifts(per_seed)
    return ReplayResult(
        per_seed=per_seed,
        summary=_summary(per_seed),
        lifts=lifts,
        claims=_claims(per_seed, lifts),
        start=world.dates[warmup],
        end=world.dates[-1],
        skus=world.sku_id.size,
        seeds=len(seeds),
        seconds=time.perf_counter() - started,
        steps=pl.concat(recorded) if recorded else None,
    )


def _build_world(truth: pl.DataFrame, products: pl.DataFrame, weeks: int) -> tuple[_World, int]:
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(
            f"pricing truth lacks column(s) {', '.join(missing)}; read it with load_pricing_truth"
        )
    missing = [c for c in ("sku_id", "list_price", "unit_cost") if c not in products.columns]
    if missing:
        raise ValueError(f"products lack column(s) {', '.join(missing)} (data/generated/products.parquet)")
    dates = truth["date"].unique().sort().to_list()
    days = weeks * 7
    if len(dates) < days:
        raise ValueError(f"pricing truth covers {len(dates)} days; {weeks} weeks need {days}")
    warmup = min(WARMUP_DAYS, len(dates) - days)
    dates = dates[len(dates) - days - warmup :]
    sku = truth["sku_id"].unique().sort()
    prod = pl.DataFrame({"sku_id": sku}).join(products, on="sku_id", how="left")
    lacking = prod.filter(pl.col("list_price").is_null() | pl.col("unit_cost").is_null())
    if lacking.height:
        raise ValueError(
            f"products have no list_price/unit_cost for {lacking.height} SKU(s) of the truth "
            f"(e.g. {lacking['sku_id'].head(5).to_list()}); pass the world's products.parquet"
        )
    grid = (
        pl.DataFrame({"date": dates})
        .join(pl.DataFrame({"sku_id": sku}), how="cross")
        .join(truth.filter(pl.col("date").is_in(dates)), on=["date", "sku_id"], how="left")
        .sort("date", "sku_id")
    )
    shape = (len(dates), sku.len())

    def mat(column: str, fill: float = np.nan) -> np.ndarray:
        values = grid[column].cast(pl.Float64).fill_null(fill).fill_nan(fill)
        return values.to_numpy().reshape(shape)

    list_price = prod["list_price"].cast(pl.Float64).to_numpy()
    expected = mat("expected_demand", 0.0)
    paid = mat("price")
    active = np.isfinite(paid) & (paid > 0)
    paid = np.where(active, paid, list_price[None, :])
    shelf = mat("shelf_price")
    shelf = np.where(np.isfinite(shelf) & (shelf > 0), shelf, paid)
    rival = mat("competitor_min_price")
    rival = np.where(rival > 0, rival, np.nan)
    own, cross = mat("own_price_elasticity"), mat("cross_price_elasticity", 0.0)
    if np.isnan(own[active]).any():
        raise ValueError("pricing truth has SKUs without own_price_elasticity; join sku_params.parquet")
    dispersion = (
        grid.group_by("sku_id", maintain_order=True).agg(pl.col("dispersion").first())["dispersion"]
        if "dispersion" in grid.columns
        else pl.Series([None] * sku.len(), dtype=pl.Float64)
    )
    on_hand0 = mat("on_hand_units")[0]
    first_week = expected[: min(7, shape[0])].mean(axis=0)
    on_hand0 = np.where(np.isfinite(on_hand0), on_hand0, np.ceil(28 * first_week))
    world = _World(
        dates=dates,
        sku_id=sku.to_numpy(),
        active=active,
        expected=np.where(active, expected, 0.0),
        paid=paid,
        shelf=shelf,
        discount=mat("discount_pct", 0.0),
        rival=rival,
        # own_price_elasticity holds rival prices fixed; with no rival the competitor term is absent.
        elasticity=np.where(np.isfinite(own), own, -1.0) + np.where(np.isfinite(rival), 0.0, cross),
        dispersion=dispersion.cast(pl.Float64).fill_null(np.inf).to_numpy(),
        on_hand0=on_hand0,
        list_price=list_price,
        cost=prod["unit_cost"].cast(pl.Float64).to_numpy(),
    )
    return world, warmup


def _estimates(world: _World, elasticities: pl.DataFrame | None) -> np.ndarray | None:
    """The AI's own elasticity per day and SKU: at fixed rival prices, plus the cross one without a rival."""
    if elasticities is None:
        return None
    if "own_elasticity" not in elasticities.columns or "sku_id" not in elasticities.columns:
        raise ValueError("elasticities need columns sku_id and own_elasticity (at fixed rival prices)")
    columns = ["sku_id", "own_elasticity"] + (
        ["cross_elasticity"] if "cross_elasticity" in elasticities.columns else []
    )
    joined = pl.DataFrame({"sku_id": world.sku_id}).join(
        elasticities.select(columns), on="sku_id", how="left"
    )
    own = joined["own_elasticity"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    cross = (
        joined["cross_elasticity"].cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()
        if "cross_elasticity" in joined.columns
        else np.zeros(own.shape)
    )
    return own[None, :] + np.where(np.isfinite(world.rival), 0.0, cross[None, :])


@dataclass(frozen=True)
class _Draws:
    gamma: np.ndarray  # (periods, skus) demand multiplier, mean 1
    uniform: np.ndarray  # (periods, skus) for the Poisson inverse CDF


def _draws(world: _World, seed: int, steps: int) -> _Draws:
    """Common random numbers: one stream per seed, shared by every policy."""
    rng = np.random.default_rng([int(seed), 24])
    shape = (world.expected.shape[0] * steps, world.sku_id.size)
    k = world.dispersion
    finite = np.isfinite(k) & (k > 0)
    gamma = np.ones(shape)
    gamma[:, finite] = rng.gamma(k[finite], 1 / k[finite], (shape[0], int(finite.sum())))
    return _Draws(gamma=gamma, uniform=rng.random(shape))


def _poisson_units(uniform: np.ndarray, mean: np.ndarray) -> np.ndarray:
    from scipy.stats import poisson

    out = np.zeros_like(mean)
    pos = mean > 0
    out[pos] = poisson.ppf(uniform[pos], mean[pos])
    return out


@dataclass(frozen=True)
class _History:
    sold: np.ndarray  # (days, skus) units sold per day
    price: np.ndarray  # mean price paid per day
    valid: np.ndarray  # in stock all day and not promoted: what the AI learns its baseline from
    instock: np.ndarray  # demand met all day: what restocking sizes its rate from


def _add(totals: dict[str, float], **values: float) -> None:
    for key, value in values.items():
        totals[key] = totals.get(key, 0.0) + float(value)


def _simulate(
    w: _World,
    policy: str,
    params: PricingParams,
    draws: _Draws,
    est: np.ndarray | None,
    warmup: int,
    steps: int,
    record: bool = False,
) -> tuple[dict[str, float], pl.DataFrame | None]:
    """One policy over the window for one seed's draws: the KPIs over the counted days (and the steps)."""
    n_days, n = w.expected.shape
    regular = w.list_price.copy()
    on_hand = w.on_hand0.astype(float).copy()
    arrivals = np.zeros((n_days + LEAD_DAYS + 1, n))
    on_order = np.zeros(n)
    hist = _History(
        sold=np.zeros((n_days, n)),
        price=np.ones((n_days, n)),
        valid=np.zeros((n_days, n), dtype=bool),
        instock=np.zeros((n_days, n), dtype=bool),
    )
    static_promo = np.round(w.list_price[None, :] * (1 - w.discount / 100), 2)
    totals: dict[str, float] = {}
    log: list[pl.DataFrame] = []
    for t in range(n_days):
        on_hand += arrivals[t]
        on_order -= arrivals[t]
        counted = t >= warmup
        promo = w.discount[t] > 0
        act = w.active[t]
        day_first = regular.copy()
        day_sold, day_revenue = np.zeros(n), np.zeros(n)
        day_censored = np.zeros(n, dtype=bool)
        if counted:
            _add(totals, stock_sum=on_hand[act].sum(), sku_days=act.sum())
            start_stock = on_hand.copy()
        for s in range(steps):
            # The merchant's prices moved before the counted days too: compare with its own last price.
            previous = (
                w.shelf[t - 1] if policy == "merchant" and t == warmup and s == 0 and t > 0 else regular
            )
            if counted and policy != "static":
                regular = _decide(w, policy, params, t, steps, regular, day_first, on_hand, promo, est, hist)
            if not counted or policy == "static":
                paid = np.where(promo, static_promo[t], regular)
            elif policy == "merchant":
                paid = w.paid[t]
            else:
                paid = np.where(promo, w.paid[t], regular)
            mean = w.expected[t] / steps * (paid / w.paid[t]) ** w.elasticity[t]
            p = t * steps + s
            demand = _poisson_units(draws.uniform[p], mean * draws.gamma[p])
            sold = np.minimum(demand, on_hand)
            on_hand -= sold
            day_sold += sold
            day_revenue += sold * paid
            day_censored |= demand > sold
            if counted and record:
                log.append(
                    pl.DataFrame(
                        {
                            "date": [w.dates[t]] * int(act.sum()),
                            "step": s,
                            "sku_id": w.sku_id[act],
                            "regular_price": regular[act],
                            "price": paid[act],
                            "units": sold[act],
                            "demand": demand[act],
                            "mean_units": mean[act],
                            "on_hand_start": start_stock[act],
                        }
                    )
                )
            if counted:
                margin = paid - w.cost
                rival = act & np.isfinite(w.rival[t])
                changed = act & (np.abs(regular - previous) > _CENT)
                _add(
                    totals,
                    revenue=(sold * paid)[act].sum(),
                    gross_profit=(sold * margin)[act].sum(),
                    expected_gross_profit=(mean * margin)[act].sum(),
                    units=sold[act].sum(),
                    adv_num=(paid[rival] <= w.rival[t][rival] + _CENT).sum(),
                    adv_den=rival.sum(),
                    stockouts=(demand > sold)[act].sum(),
                    sku_periods=act.sum(),
                    changes=changed.sum(),
                    change_pct_sum=(100 * np.abs(regular / previous - 1))[changed].sum(),
                )
        hist.sold[t] = day_sold
        hist.price[t] = np.where(day_sold > 0, day_revenue / np.maximum(day_sold, 1e-12), regular)
        hist.valid[t] = ~day_censored & ~promo & act
        hist.instock[t] = ~day_censored & act
        if t % REVIEW_DAYS == 0:
            window = slice(max(0, t + 1 - RATE_DAYS), t + 1)
            days_in = hist.instock[window].sum(axis=0)
            in_sales = (hist.sold[window] * hist.instock[window]).sum(axis=0)
            # Too few in-stock days (a launch, a long stock-out): the simulator's own demand level,
            # the same for every policy, stands in for the policy's sales rate.
            planned = w.expected[max(0, t - 6) : t + 1].mean(axis=0)
            rate = np.where(days_in >= 7, in_sales / np.maximum(days_in, 1), planned)
            order = np.maximum(np.ceil(SAFETY * rate * (LEAD_DAYS + REVIEW_DAYS)) - on_hand - on_order, 0)
            arrivals[t + LEAD_DAYS] += order
            on_order += order
    return _kpis(totals, n_days - warmup), (pl.concat(log) if record and log else None)


def _decide(
    w: _World,
    policy: str,
    params: PricingParams,
    t: int,
    steps: int,
    regular: np.ndarray,
    day_first: np.ndarray,
    on_hand: np.ndarray,
    promo: np.ndarray,
    est: np.ndarray | None,
    hist: _History,
) -> np.ndarray:
    """The regular price a policy sets for this step (promoted SKUs keep theirs)."""
    if policy == "merchant":
        return w.shelf[t].copy()
    if policy == "rule":
        floor = w.cost * (1 + params.min_margin_pct / 100)
        rival = w.rival[t]
        target = np.where(np.isfinite(rival), np.round(rival * (1 - RULE_UNDERCUT), 2), w.list_price)
        return np.where(promo, regular, np.maximum(floor, np.minimum(w.list_price, target)))
    if policy == "oracle":
        elasticity = w.elasticity[t]
        daily = w.expected[t] * (regular / w.paid[t]) ** elasticity
        unknown = np.zeros_like(promo)
    elif policy == "ai" and est is not None:
        unknown = ~np.isfinite(est[t])
        elasticity = np.where(unknown, -1.0, est[t])
        daily = _recent_rate(hist, t, regular, elasticity)
        unknown |= ~np.isfinite(daily)
        daily = np.where(np.isfinite(daily), daily, 0.0)
    else:
        raise ValueError(f"unknown pricing policy {policy!r}; choose one of {', '.join(POLICIES)}")
    inputs = _Inputs(
        current=regular,
        day_first=day_first,
        list_price=w.list_price,
        cost=w.cost,
        elasticity=elasticity,
        baseline=daily / steps,
        rival=w.rival[t],
        on_hand=on_hand,
        cover=np.where(daily > 0, on_hand / np.where(daily > 0, daily, 1.0), np.nan),
        locked=promo | unknown | ~w.active[t],
    )
    return _solve(inputs, params).price


def _recent_rate(hist: _History, t: int, price: np.ndarray, elasticity: np.ndarray) -> np.ndarray:
    """Units per day at ``price`` from the last days' in-stock, unpromoted sales along the estimated curve."""
    window = slice(max(0, t - BASELINE_DAYS), t)
    valid = hist.valid[window]
    moved = hist.sold[window] * (price[None, :] / hist.price[window]) ** elasticity[None, :]
    n_valid = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = (moved * valid).sum(axis=0) / n_valid
        fallback = hist.sold[window].mean(axis=0) if t > 0 else np.full(price.shape, np.nan)
    return np.where(n_valid > 0, own, fallback)


def _kpis(totals: dict[str, float], days: int) -> dict[str, float]:
    def ratio(num: float, den: float) -> float:
        return num / den if den > 0 else float("nan")

    revenue, profit = totals.get("revenue", 0.0), totals.get("gross_profit", 0.0)
    changes = totals.get("changes", 0.0)
    return {
        "revenue": revenue,
        "gross_profit": profit,
        "gross_margin_pct": 100 * ratio(profit, revenue),
        "expected_gross_profit": totals.get("expected_gross_profit", 0.0),
        "units": totals.get("units", 0.0),
        "price_advantage_share": ratio(totals.get("adv_num", 0.0), totals.get("adv_den", 0.0)),
        "turnover": ratio(totals.get("units", 0.0), totals.get("stock_sum", 0.0) / max(days, 1)),
        "stockout_share": ratio(totals.get("stockouts", 0.0), totals.get("sku_periods", 0.0)),
        "price_changes_per_sku_day": ratio(changes, totals.get("sku_days", 0.0)),
        "price_changes_per_hour": changes / (24 * max(days, 1)),
        "mean_abs_change_pct": ratio(totals.get("change_pct_sum", 0.0), changes) if changes else 0.0,
    }


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t interval across seeds (the interval is NaN with one seed)."""
    from scipy.stats import t as student

    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = float(student.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return mean, mean - half, mean + half


def _summary(per_seed: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for policy in [p for p in POLICIES if p in per_seed["policy"].to_list()]:
        part = per_seed.filter(pl.col("policy") == policy)
        for kpi in KPIS:
            mean, lo, hi = _interval(part[kpi].to_numpy())
            rows.append({"policy": policy, "kpi": kpi, "mean": mean, "lo": lo, "hi": hi})
    return pl.DataFrame(rows)


def _lifts(per_seed: pl.DataFrame) -> pl.DataFrame:
    """Paired (same seed, same draws) lifts of each policy over static and over the rule."""
    rows = []
    policies = [p for p in POLICIES if p in per_seed["policy"].to_list()]
    for versus in ("static", "rule"):
        base = per_seed.filter(pl.col("policy") == versus)
        for policy in (p for p in policies if p != versus):
            pair = per_seed.filter(pl.col("policy") == policy).join(base, on="seed", suffix="_base")
            lifts = {
                "revenue_pct": 100 * (pair["revenue"] / pair["revenue_base"] - 1),
                "gross_margin_pts": pair["gross_margin_pct"] - pair["gross_margin_pct_base"],
                "gross_profit_pct": 100 * (pair["gross_profit"] / pair["gross_profit_base"] - 1),
                "turnover_pct": 100 * (pair["turnover"] / pair["turnover_base"] - 1),
                "price_advantage_pts": 100
                * (pair["price_advantage_share"] - pair["price_advantage_share_base"]),
            }
            for metric, values in lifts.items():
                mean, lo, hi = _interval(values.to_numpy())
                rows.append(
                    {"policy": policy, "versus": versus, "metric": metric, "mean": mean, "lo": lo, "hi": hi}
                )
    return pl.DataFrame(rows)


def _claims(per_seed: pl.DataFrame, lifts: pl.DataFrame) -> pl.DataFrame:
    """The source's figures beside the AI policy's (the oracle's where no AI ran)."""
    policy = "ai" if "ai" in per_seed["policy"].to_list() else "oracle"
    rows = []
    for claim, source, key in SOURCE_CLAIMS:
        if key is None:
            rows.append({"claim": claim, "source": source, "policy": policy, "versus": "not simulated"})
        elif key in ("price_advantage_share", "price_changes_per_hour"):
            values = per_seed.filter(pl.col("policy") == policy)[key].to_numpy()
            mean, lo, hi = _interval(values * (100 if key == "price_advantage_share" else 1))
            rows.append(
                {
                    "claim": claim,
                    "source": source,
                    "policy": policy,
                    "versus": "level",
                    "mean": mean,
                    "lo": lo,
                    "hi": hi,
                }
            )
        else:
            for versus in ("static", "rule"):
                lift = lifts.filter(
                    (pl.col("policy") == policy) & (pl.col("versus") == versus) & (pl.col("metric") == key)
                )
                if lift.height:
                    rows.append(
                        {"claim": claim, "source": source, "policy": policy, "versus": versus}
                        | lift.select("mean", "lo", "hi").row(0, named=True)
                    )
    return pl.DataFrame(
        rows,
        schema={
            "claim": pl.Utf8,
            "source": pl.Float64,
            "policy": pl.Utf8,
            "versus": pl.Utf8,
            "mean": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
        },
    )


def format_replay(result: ReplayResult) -> str:
    """The replay's KPI table (mean [lo, hi] per policy), its lifts and the source's claims, as text."""

    def cell(mean: float, lo: float, hi: float) -> str:
        if not np.isfinite(lo):
            return f"{mean:,.3g}"
        return f"{mean:,.4g} [{lo:,.4g}, {hi:,.4g}]"

    table = result.summary.with_columns(
        pl.struct("mean", "lo", "hi")
        .map_elements(lambda r: cell(r["mean"], r["lo"], r["hi"]), return_dtype=pl.Utf8)
        .alias("value")
    ).pivot(on="policy", index="kpi", values="value")
    lifts = result.lifts.with_columns(
        pl.struct("mean", "lo", "hi")
        .map_elements(lambda r: cell(r["mean"], r["lo"], r["hi"]), return_dtype=pl.Utf8)
        .alias("value")
    ).pivot(on="policy", index=["versus", "metric"], values="value")
    head = (
        f"pricing replay: {result.skus} SKUs, {result.start} to {result.end}, {result.seeds} seed(s), "
        f"{result.seconds:.1f} s (mean [95% interval across seeds])"
    )
    with pl.Config(
        tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=250, tbl_hide_dataframe_shape=True
    ):
        return "\n".join([head, str(table), "lifts", str(lifts), "source's claims", str(result.claims)])


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Replay pricing policies on a generated world's truth.")
    parser.add_argument("--truth", type=Path, required=True, help="data/truth folder")
    parser.add_argument("--products", type=Path, required=True, help="data/generated/products.parquet")
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--steps-per-day", type=int, default=1)
    parser.add_argument(
        "--noise-sd", type=float, default=0.3, help="stand-in estimates: truth plus this noise"
    )
    parser.add_argument("--objective", choices=["profit", "revenue"], default="profit")
    parser.add_argument("--share", type=float, default=PricingParams().price_advantage_share)
    args = parser.parse_args()
    truth = load_pricing_truth(args.truth)
    products = pl.read_parquet(args.products)
    params = PricingParams(objective=args.objective, price_advantage_share=args.share)
    result = replay_pricing(
        truth,
        products,
        stand_in_elasticities(truth, args.noise_sd, seed=0),
        params,
        weeks=args.weeks,
        seeds=args.seeds,
        steps_per_day=args.steps_per_day,
    )
    print(format_replay(result))


if __name__ == "__main__":
    _main()
