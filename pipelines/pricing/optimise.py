"""Dynamic pricing: pick each SKU's next price from an allowed ladder with SciPy's HiGHS solver.

Each run scores every allowed price point ("rung") of every SKU by expected gross profit (or
revenue, ``settings.pricing.objective``) under a constant-elasticity demand curve around the
current point, ``baseline_units x (p / current_price) ** own_elasticity`` with rival prices held,
and chooses one rung per SKU. The rules work in two ways:

- Per-SKU rules remove rungs: the margin floor (``unit_cost x (1 + min_margin_pct/100)``; a SKU
  already under it may only move up), the largest change per run and per day, the promotion lock
  (only the current price), overstock (no rise), scarce stock (no cut) and the ladder's own edges.
  Expected units never exceed the units on hand, so scarce stock is not planned to be oversold.
- The price-advantage rule couples the SKUs: at least ``price_advantage_share`` of the SKUs that
  have a rival price must end at or below their cheapest rival. That one row is why a solver is
  needed; it is formulated as a MILP over binaries ``x[i, k]`` (one rung per SKU, one coupling row).

Why the reduction (``method="reduced"``, the default). Every coupling coefficient is 1 (a SKU
counts once, whichever advantage rung it takes), so an exchange argument shows that some optimal
solution of the full MILP gives each SKU either its own best rung or its best rung at or below its
rival: any other choice can be swapped for one of those two without losing value or advantage
count. That presolve is exact and leaves one variable ``y[i]`` ("move SKU i to its advantage rung",
cost = value given up) per SKU whose best rung is above its rival, under one cardinality row. A
single row of ones over 0-1 bounds is totally unimodular, so HiGHS's LP optimum is already integral:
the LP relaxation *is* the MILP here, with no rounding error. The full formulation
(``method="milp"``: a binary per allowed rung, one-rung rows, the coupling row) grows with SKUs x
rungs and falls far behind the cadence's budget at 100,000 SKUs, and the reduction posed as a MILP
(integrality on) spends its time in HiGHS's presolve on the one dense row; as an LP with presolve
off it solves in a fraction of the run, whose rest is scoring the candidates in numpy. The figures
are in docs/benchmarks-models.md (``bench/pricing.py``).

Both methods reach the same objective (``tests/unit/test_pricing_optimise.py`` checks this on
random instances), so the full MILP stays available as a check. When the target share cannot be met
(too few SKUs can reach their rival inside their rules), the run moves every SKU that can and
reports the share achieved instead of failing; by default it also steps as many of the SKUs out of
reach as are short to their lowest allowed price (least profit given up first), so the target is
met over the next runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from pipelines.config import PricingParams

__all__ = [
    "BINDING_RULES",
    "INPUT_COLUMNS",
    "OUTPUT_SCHEMA",
    "OptimiseResult",
    "make_synthetic_inputs",
    "optimise_prices",
]

Method = Literal["reduced", "milp"]

INPUT_COLUMNS: dict[str, bool] = {  # column -> required (False: may be absent or null)
    "sku_id": True,
    "current_price": True,
    "day_first_price": False,
    "list_price": True,
    "unit_cost": True,
    "own_elasticity": True,
    "cross_elasticity": False,
    "baseline_units": True,
    "competitor_min_price": False,
    "on_hand_units": False,
    "days_of_cover": False,
    "promo_locked": False,
}

BINDING_RULES = (
    "promo_lock",
    "margin_floor",
    "max_change",
    "price_advantage",
    "overstock",
    "scarce_stock",
    "ladder_edge",
    "none",
)

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "new_price": pl.Float64(),
    "price_change_pct": pl.Float64(),
    "expected_units": pl.Float64(),
    "expected_revenue": pl.Float64(),
    "expected_profit": pl.Float64(),
    "at_or_below_rival": pl.Boolean(),
    "binding": pl.Utf8(),
}

_EPS = 1e-9
_CENT = 0.005  # prices within half a cent are the same price point


@dataclass(frozen=True)
class OptimiseResult:
    """One optimiser run.

    Attributes:
        prices: One row per SKU: sku_id and the columns of :data:`OUTPUT_SCHEMA`.
        solve_seconds: Time inside HiGHS.
        total_seconds: Time for the whole run (scoring candidates, solving, labelling).
        solver_status: HiGHS's message, or why no solve was needed.
        objective_value: Total expected profit (or revenue) of the chosen prices.
        advantage_share: Share of SKUs with a rival price that end at or below it (None: no rivals).
        advantage_target: The share asked for (``params.price_advantage_share``).
        advantage_met: Whether the achieved share reaches the target.
        skus_changed: SKUs whose new price differs from the current one.
        method: ``"reduced"`` or ``"milp"``.
    """

    prices: pl.DataFrame
    solve_seconds: float
    total_seconds: float
    solver_status: str
    objective_value: float
    advantage_share: float | None
    advantage_target: float
    advantage_met: bool
    skus_changed: int
    method: str


@dataclass(frozen=True)
class _Inputs:
    current: np.ndarray
    day_first: np.ndarray
    list_price: np.ndarray
    cost: np.ndarray
    elasticity: np.ndarray
    baseline: np.ndarray
    rival: np.ndarray  # nan: no rival
    on_hand: np.ndarray  # nan: unknown
    cover: np.ndarray  # nan: unknown
    locked: np.ndarray


@dataclass(frozen=True)
class _Solution:
    price: np.ndarray
    units: np.ndarray
    value: np.ndarray
    profit: np.ndarray
    revenue: np.ndarray
    advantage: np.ndarray  # bool; meaningful where a rival price exists
    binding: np.ndarray  # index into BINDING_RULES
    solve_seconds: float
    status: str


def optimise_prices(
    inputs: pl.DataFrame,
    params: PricingParams,
    *,
    method: Method = "reduced",
    step_toward_rival: bool = True,
) -> OptimiseResult:
    """Choose each SKU's next price from its ladder, maximising the objective under the rules.

    Args:
        inputs: One row per SKU with the columns of :data:`INPUT_COLUMNS`. ``own_elasticity`` is the
            elasticity at fixed rival prices (what a regression with the rival price as a regressor
            estimates); ``baseline_units`` the expected units over the decision period at
            ``current_price``; ``cross_elasticity`` is accepted but, with rival prices held, does
            not move demand. ``day_first_price`` null means the current price.
        params: The pricing settings (objective, ladder, limits, shares, cover thresholds).
        method: ``"reduced"`` (exact presolve then HiGHS, fast) or ``"milp"`` (the full formulation).
        step_toward_rival: When the target share is out of reach, move the SKUs that cannot reach
            their rival this run (those giving up the least, as many as are short) to their lowest
            allowed price, so later runs can meet it; they count only once at or below the rival.

    Returns:
        The chosen prices per SKU and the run's figures.

    Raises:
        ValueError: A required column is missing or null, a price or cost is not positive, or a
            SKU appears twice.
    """
    started = time.perf_counter()
    arrays = _read_inputs(inputs)
    sol = _solve(arrays, params, method=method, step_toward_rival=step_toward_rival)
    has_rival = np.isfinite(arrays.rival)
    n_rival = int(has_rival.sum())
    share = float(sol.advantage[has_rival].mean()) if n_rival else None
    changed = np.abs(sol.price - arrays.current) > _CENT
    prices = pl.DataFrame(
        {
            "sku_id": inputs["sku_id"],
            "new_price": sol.price,
            "price_change_pct": 100 * (sol.price / arrays.current - 1),
            "expected_units": sol.units,
            "expected_revenue": sol.revenue,
            "expected_profit": sol.profit,
            "at_or_below_rival": sol.advantage,
            "binding": np.asarray(BINDING_RULES)[sol.binding],
        }
    ).with_columns(pl.when(pl.Series(has_rival)).then(pl.col("at_or_below_rival")).alias("at_or_below_rival"))
    target = params.price_advantage_share
    return OptimiseResult(
        prices=prices,
        solve_seconds=sol.solve_seconds,
        total_seconds=time.perf_counter() - started,
        solver_status=sol.status,
        objective_value=float(sol.value.sum()),
        advantage_share=share,
        advantage_target=target,
        advantage_met=share is None or target <= 0 or share + _EPS >= target,
        skus_changed=int(changed.sum()),
        method=method,
    )


def _read_inputs(inputs: pl.DataFrame) -> _Inputs:
    missing = [c for c, required in INPUT_COLUMNS.items() if required and c not in inputs.columns]
    if missing:
        raise ValueError(
            f"optimiser inputs lack column(s) {', '.join(missing)}; "
            f"give one row per SKU with {', '.join(c for c, r in INPUT_COLUMNS.items() if r)}"
        )
    for column in (c for c, required in INPUT_COLUMNS.items() if required):
        nulls = inputs.filter(pl.col(column).is_null())
        if nulls.height:
            skus = ", ".join(str(s) for s in nulls["sku_id"].head(5).to_list())
            raise ValueError(
                f"optimiser input column {column} is null for {nulls.height} SKU(s) (e.g. {skus}); "
                "fill it or leave those SKUs out of the run"
            )
    if inputs["sku_id"].n_unique() != inputs.height:
        dupes = inputs.filter(pl.col("sku_id").is_duplicated())["sku_id"].unique().head(5).to_list()
        raise ValueError(f"optimiser inputs repeat sku_id(s) {dupes}; give one row per SKU")

    def col(name: str, fill: float = np.nan) -> np.ndarray:
        if name not in inputs.columns:
            return np.full(inputs.height, fill)
        return inputs[name].cast(pl.Float64).fill_null(fill).fill_nan(fill).to_numpy().copy()

    current = col("current_price")
    for name, values in (("current_price", current), ("list_price", col("list_price"))):
        bad = values <= 0
        if bad.any():
            skus = inputs["sku_id"].filter(pl.Series(bad)).head(5).to_list()
            raise ValueError(f"optimiser input {name} must be positive; it is not for SKU(s) {skus}")
    cost = col("unit_cost")
    if (cost < 0).any():
        skus = inputs["sku_id"].filter(pl.Series(cost < 0)).head(5).to_list()
        raise ValueError(f"optimiser input unit_cost must not be negative; it is for SKU(s) {skus}")
    day_first = col("day_first_price")
    day_first = np.where(np.isfinite(day_first) & (day_first > 0), day_first, current)
    locked = (
        inputs["promo_locked"].fill_null(False).to_numpy().astype(bool)
        if "promo_locked" in inputs.columns
        else np.zeros(inputs.height, dtype=bool)
    )
    rival = col("competitor_min_price")
    rival = np.where(rival > 0, rival, np.nan)
    return _Inputs(
        current=current,
        day_first=day_first,
        list_price=col("list_price"),
        cost=cost,
        elasticity=col("own_elasticity"),
        baseline=np.maximum(col("baseline_units"), 0.0),
        rival=rival,
        on_hand=col("on_hand_units"),
        cover=col("days_of_cover"),
        locked=locked,
    )


def _ladder_offsets(params: PricingParams) -> np.ndarray:
    """Rung multipliers of the list price: every ``ladder_step_pct`` from the lowest to the highest."""
    step = params.ladder_step_pct
    lo = math.ceil(params.ladder_min_pct / step - _EPS)
    hi = math.floor(params.ladder_max_pct / step + _EPS)
    return 1 + np.arange(lo, hi + 1) * step / 100


def _solve(
    a: _Inputs, params: PricingParams, *, method: Method = "reduced", step_toward_rival: bool = True
) -> _Solution:
    """Score every candidate, choose one per SKU under the rules and the coupling row, label bindings."""
    n = a.current.shape[0]
    offsets = _ladder_offsets(params)
    # Column 0 is the current price: "no change" is always a candidate and wins ties.
    price = np.empty((n, offsets.size + 1))
    price[:, 0] = a.current
    price[:, 1:] = np.round(a.list_price[:, None] * offsets[None, :], 2)
    on_ladder = np.ones(price.shape, dtype=bool)
    on_ladder[:, 1:] = np.abs(price[:, 1:] - a.current[:, None]) > _CENT

    cur = a.current[:, None]
    floor = (a.cost * (1 + params.min_margin_pct / 100))[:, None]
    ok_floor = price >= np.minimum(floor, cur) - _EPS
    ok_change = (np.abs(price / cur - 1) <= params.max_change_per_step_pct / 100 + _EPS) & (
        np.abs(price / a.day_first[:, None] - 1) <= params.max_change_per_day_pct / 100 + _EPS
    )
    overstock = (a.cover > params.overstock_cover_days)[:, None]
    scarce = (a.cover < params.scarce_cover_days)[:, None]
    ok_over = ~overstock | (price <= cur + _EPS)
    ok_scarce = ~scarce | (price >= cur - _EPS)
    allowed = on_ladder & ok_floor & ok_change & ok_over & ok_scarce
    allowed[a.locked, 1:] = False
    allowed[:, 0] = True

    raw_units = a.baseline[:, None] * (price / cur) ** a.elasticity[:, None]
    units = np.where(np.isfinite(a.on_hand)[:, None], np.minimum(raw_units, a.on_hand[:, None]), raw_units)
    revenue = price * units
    profit = (price - a.cost[:, None]) * units
    value = profit if params.objective == "profit" else revenue
    rows = np.arange(n)

    has_rival = np.isfinite(a.rival)
    adv = price <= np.where(has_rival, a.rival, -np.inf)[:, None] + _EPS
    best = _masked_argmax(value, allowed)
    best_adv = _masked_argmax(value, allowed & adv)
    can_adv = (allowed & adv).any(axis=1)

    choice, solve_seconds, status = best.copy(), 0.0, "no coupling: price_advantage_share is 0"
    n_rival = int(has_rival.sum())
    if params.price_advantage_share > 0 and n_rival:
        required = math.ceil(params.price_advantage_share * n_rival - _EPS)
        free = int((has_rival & adv[rows, best]).sum())
        movable = np.flatnonzero(has_rival & ~adv[rows, best] & can_adv)
        need = min(max(required - free, 0), movable.size)
        if method == "milp":
            choice, solve_seconds, status = _solve_full_milp(
                value, allowed, adv & has_rival[:, None], free + need
            )
        elif need == 0:
            status = "optimal: the advantage share holds at every SKU's own best price"
        else:
            cost = value[movable, best[movable]] - value[movable, best_adv[movable]]
            move, solve_seconds, status = _solve_reduced(cost, need)
            choice[movable[move]] = best_adv[movable[move]]
        short = required - free - movable.size
        if short > 0:
            status += (
                f"; target share infeasible: {free + movable.size} of {required} SKUs can reach their rival"
            )
            if step_toward_rival:
                choice, stepped = _step_toward_rival(
                    price, value, allowed, choice, has_rival & ~can_adv, short
                )
                status += f"; {stepped} SKU(s) stepped toward their rival"

    chosen = price[rows, choice]
    binding = _label_bindings(
        a, params, price, value, choice, best, on_ladder, ok_floor, ok_change, ok_over, ok_scarce, raw_units
    )
    return _Solution(
        price=chosen,
        units=units[rows, choice],
        value=value[rows, choice],
        profit=profit[rows, choice],
        revenue=revenue[rows, choice],
        advantage=adv[rows, choice] & has_rival,
        binding=binding,
        solve_seconds=solve_seconds,
        status=status,
    )


def _masked_argmax(value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.argmax(np.where(mask, value, -np.inf), axis=1)


def _step_toward_rival(
    price: np.ndarray,
    value: np.ndarray,
    allowed: np.ndarray,
    choice: np.ndarray,
    out_of_reach: np.ndarray,
    short: int,
) -> tuple[np.ndarray, int]:
    """Move up to ``short`` SKUs that cannot reach their rival this run to their lowest allowed price.

    Those giving up the least go first, so a target out of reach now is met over the next runs
    instead of never (the change limits let a price close a wide gap only step by step).
    """
    rows = np.arange(price.shape[0])
    lowest = np.argmin(np.where(allowed, price, np.inf), axis=1)
    far = np.flatnonzero(out_of_reach & (price[rows, lowest] < price[rows, choice] - _CENT))
    if far.size == 0:
        return choice, 0
    give_up = value[far, choice[far]] - value[far, lowest[far]]
    pick = far[np.argsort(give_up, kind="stable")[:short]]
    choice = choice.copy()
    choice[pick] = lowest[pick]
    return choice, int(pick.size)


def _solve_reduced(cost: np.ndarray, need: int) -> tuple[np.ndarray, float, str]:
    """HiGHS on the exact reduction: move ``need`` SKUs to their advantage rung at least total cost.

    One cardinality row over 0-1 bounds is totally unimodular, so the LP's basic optimum (HiGHS's
    simplex) is already integral; the picks are still taken as the ``need`` largest values (cheapest
    first on ties) so the count is exact whatever the solver returns. HiGHS's presolve is off: on a
    single dense row it costs far more than the solve.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_array

    m = cost.size
    row = csr_array((np.ones(m), (np.zeros(m, dtype=np.int64), np.arange(m))), shape=(1, m))
    started = time.perf_counter()
    res = milp(
        c=np.maximum(cost, 0.0),
        integrality=np.zeros(m),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(row, lb=need, ub=np.inf),
        options={"presolve": False},
    )
    seconds = time.perf_counter() - started
    if (
        res.x is None
    ):  # a cardinality row over free 0-1 variables is always feasible; say so if HiGHS disagrees
        raise RuntimeError(f"HiGHS found no solution to the price-advantage reduction: {res.message}")
    move = np.zeros(m, dtype=bool)
    move[np.lexsort((cost, -np.round(res.x, 6)))[:need]] = True
    fractional = int(((res.x > 1e-6) & (res.x < 1 - 1e-6)).sum())
    note = f"; {fractional} fractional value(s) rounded" if fractional else ""
    return move, seconds, f"HiGHS: {res.message}{note}"


def _solve_full_milp(
    value: np.ndarray, allowed: np.ndarray, adv: np.ndarray, required: int
) -> tuple[np.ndarray, float, str]:
    """HiGHS on the full formulation: binary x[i, k] per allowed rung, one rung per SKU, one coupling row."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_array, vstack

    n = value.shape[0]
    sku, rung = np.nonzero(allowed)
    m = sku.size
    one_rung = csr_array((np.ones(m), (sku, np.arange(m))), shape=(n, m))
    coupling = csr_array(
        (adv[sku, rung].astype(float), (np.zeros(m, dtype=np.int64), np.arange(m))), shape=(1, m)
    )
    lb = np.concatenate([np.ones(n), [required]])
    ub = np.concatenate([np.ones(n), [np.inf]])
    started = time.perf_counter()
    res = milp(
        c=-value[sku, rung],
        integrality=np.ones(m),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(vstack([one_rung, coupling]).tocsr(), lb=lb, ub=ub),
        options={"mip_rel_gap": 1e-9},
    )
    seconds = time.perf_counter() - started
    if res.x is None:
        raise RuntimeError(f"HiGHS found no solution to the pricing MILP: {res.message}")
    picked = res.x > 0.5
    choice = np.zeros(n, dtype=np.int64)
    choice[sku[picked]] = rung[picked]
    return choice, seconds, f"HiGHS: {res.message}"


def _label_bindings(
    a: _Inputs,
    params: PricingParams,
    price: np.ndarray,
    value: np.ndarray,
    choice: np.ndarray,
    own_best: np.ndarray,
    on_ladder: np.ndarray,
    ok_floor: np.ndarray,
    ok_change: np.ndarray,
    ok_over: np.ndarray,
    ok_scarce: np.ndarray,
    raw_units: np.ndarray,
) -> np.ndarray:
    """Which rule fixed or limited each price, compared with the best price on the bare ladder."""
    n = price.shape[0]
    rows = np.arange(n)
    label = np.full(n, BINDING_RULES.index("none"))
    free_best = _masked_argmax(value, on_ladder)
    chosen, ideal = price[rows, choice], price[rows, free_best]
    differs = np.abs(ideal - chosen) > _CENT
    # The first rule (in this order) that rules out the bare ladder's best price names the binding.
    for rule, ok in (
        ("margin_floor", ok_floor),
        ("overstock", ok_over),
        ("scarce_stock", ok_scarce),
        ("max_change", ok_change),
    ):
        hit = differs & (label == BINDING_RULES.index("none")) & ~ok[rows, free_best]
        label[hit] = BINDING_RULES.index(rule)
    # Planned units capped by stock move the best price up: the scarce-stock rule at work.
    uncapped = raw_units * (price - a.cost[:, None] if params.objective == "profit" else price)
    uncapped_best = price[rows, _masked_argmax(uncapped, on_ladder)]
    capped = ~differs & (np.abs(uncapped_best - chosen) > _CENT)
    label[capped] = BINDING_RULES.index("scarce_stock")
    # At the ladder's top (bottom) rung while the objective still rises beyond it.
    offsets = _ladder_offsets(params)
    step = params.ladder_step_pct / 100
    none = label == BINDING_RULES.index("none")
    for edge, beyond in ((offsets[-1], offsets[-1] + step), (offsets[0], offsets[0] - step)):
        at_edge = np.abs(chosen - np.round(a.list_price * edge, 2)) <= _CENT
        p_out = a.list_price * beyond
        units_out = a.baseline * (p_out / a.current) ** a.elasticity
        if np.isfinite(a.on_hand).any():
            units_out = np.where(np.isfinite(a.on_hand), np.minimum(units_out, a.on_hand), units_out)
        v_out = (p_out - a.cost) * units_out if params.objective == "profit" else p_out * units_out
        wants_out = (beyond > 0) & (v_out > value[rows, choice] + _EPS * (1 + np.abs(value[rows, choice])))
        label[none & ~differs & at_edge & wants_out] = BINDING_RULES.index("ladder_edge")
    label[choice != own_best] = BINDING_RULES.index("price_advantage")
    label[a.locked] = BINDING_RULES.index("promo_lock")
    return label


def make_synthetic_inputs(n_skus: int, seed: int = 0) -> pl.DataFrame:
    """Optimiser inputs with realistic spreads, for benchmarks and tests.

    List prices are log-normal around 40, costs 45-80% of list, current prices 88-104% of list on
    whole cents, elasticities -0.6 to -3.5, rivals on 80% of SKUs around 3% above list (5% spread), a
    spread of stock cover, and 3% of SKUs on a locked promotion.
    """
    rng = np.random.default_rng(seed)
    list_price = np.round(np.exp(rng.normal(np.log(40), 0.9, n_skus)), 2).clip(0.5)
    current = np.round(list_price * rng.uniform(0.88, 1.04, n_skus), 2)
    day_first = np.where(rng.random(n_skus) < 0.8, current, np.round(current * rng.uniform(0.96, 1.04), 2))
    baseline = rng.gamma(1.5, 4.0, n_skus)
    cover = np.exp(rng.normal(np.log(25), 0.9, n_skus))
    rival = np.round(list_price * np.exp(rng.normal(0.03, 0.05, n_skus)), 2)
    return pl.DataFrame(
        {
            "sku_id": np.arange(1, n_skus + 1, dtype=np.int64),
            "current_price": current,
            "day_first_price": day_first,
            "list_price": list_price,
            "unit_cost": np.round(list_price * rng.uniform(0.45, 0.8, n_skus), 2),
            "own_elasticity": -rng.uniform(0.6, 3.5, n_skus),
            "cross_elasticity": rng.uniform(0.1, 1.0, n_skus),
            "baseline_units": baseline,
            "competitor_min_price": pl.Series(np.where(rng.random(n_skus) < 0.8, rival, np.nan)).fill_nan(
                None
            ),
            "on_hand_units": np.round(baseline * cover),
            "days_of_cover": cover,
            "promo_locked": rng.random(n_skus) < 0.03,
        }
    )


def _benchmark() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Time the pricing optimiser on synthetic inputs.")
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--method", choices=["reduced", "milp"], default="reduced")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--share", type=float, default=PricingParams().price_advantage_share)
    args = parser.parse_args()
    inputs = make_synthetic_inputs(args.skus, args.seed)
    params = PricingParams(price_advantage_share=args.share)
    result = optimise_prices(inputs, params, method=args.method)
    print(
        f"{args.skus} SKUs, method={result.method}: total {result.total_seconds:.2f} s, "
        f"HiGHS {result.solve_seconds:.2f} s, status {result.solver_status!r}, "
        f"objective {result.objective_value:,.1f}, advantage share {result.advantage_share:.4f} "
        f"(target {result.advantage_target}), changed {result.skus_changed}"
    )
    print(result.prices.group_by("binding").len().sort("len", descending=True))


if __name__ == "__main__":
    _benchmark()
