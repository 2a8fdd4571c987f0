"""A retailer-shaped export: what a real store chain hands over, in the landing contract.

The simulator (:mod:`pipelines.data.generate`) writes every contract table, daily, for two
channels and with integer ids. A retailer's own export looks more like Dominick's Finer Foods
scanner data: weekly unit sales per item of one store, shelf prices and promotion flags, and
nothing else. This profile writes that shape, so the platform's bring-your-own-data path is
exercised end to end on data with known truth:

- ``daily_sales`` holds one row per SKU per week, dated by the week's first day (a Thursday, as
  in Dominick's); ``units`` is the week's units, ``price_paid`` the average price paid, ``channel``
  is always ``store`` and ``stockout`` is false (the retailer does not know it).
- SKUs are string codes (``OJ-TROP-64``: category, brand, size[, variant]); some start months into
  the history (``launch_date`` is their first week), some are discontinued before its end.
- Some series miss weeks: the rows are absent, not zero.
- ``own_prices`` and ``promotions`` run up to :data:`PLAN_WEEKS` weeks past the last sales week:
  those rows are the retailer's plans (planned price changes, the promotion calendar).
- No weather, orders, inventory, customers or any other table.

Demand per SKU-week is ``base x yearly season x holiday x category trend x (price paid / list
price) ^ elasticity x promotion lift x ramp-up``, drawn negative binomial (Poisson-gamma). The
truth (expected and drawn demand for every week, plan weeks included, and every SKU's parameters)
goes to a separate folder and never into the export.

The whole history is one batch: a flat folder of ``<table>.csv`` files that ``ecom land --source
<folder> --date-from-data`` lands as the partition of the last sales week
(:attr:`RetailerExport.batch_date`). The same size, seed and start give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipelines.data.contract import CONTRACT_VERSION, TABLES
from pipelines.data.generate import _replace_dir, _temp_sibling

__all__ = [
    "CHANNEL",
    "CURRENCY",
    "DEFAULT_START",
    "EXPORT_TABLES",
    "PLAN_WEEKS",
    "SIZES",
    "STORE_ID",
    "WEEK_START",
    "RetailerExport",
    "RetailerSize",
    "write_retailer_export",
]

# The week's first day: Dominick's scanner weeks run Thursday to Wednesday.
WEEK_START = "thursday"
DEFAULT_START = dt.date(2023, 1, 5)  # a Thursday
CHANNEL = "store"
CURRENCY = "USD"
STORE_ID = 1  # one store, which is also the only "warehouse"
# How far ahead the retailer's price and promotion plans reach past the last sales week.
PLAN_WEEKS = 8
EXPORT_TABLES = ("products", "daily_sales", "own_prices", "promotions")


@dataclass(frozen=True)
class RetailerSize:
    """How big an export is: SKUs ever sold and weeks of sales history."""

    n_skus: int
    n_weeks: int


SIZES: dict[str, RetailerSize] = {
    "tiny": RetailerSize(n_skus=40, n_weeks=80),  # tests: well under a second
    "small": RetailerSize(n_skus=200, n_weeks=143),  # about 2.75 years; the end-to-end example
}
# The example params (examples/retailer/params.yaml) fitted to the tiny export's 80 weeks on a CI
# budget, as environment overrides: what the end-to-end test and `bench/retailer.py --size tiny` use.
TINY_OVERRIDES = {
    "ECOM_FORECAST__LOOKBACK": "26",
    "ECOM_FORECAST__BACKTEST_FOLDS": "2",
    "ECOM_FORECAST__EPOCHS": "3",
    "ECOM_FORECAST__BACKTEST_EPOCHS": "2",
    "ECOM_FORECAST__MAX_TRAIN_WINDOWS": "2000",
    "ECOM_FORECAST__XGBOOST_ROUNDS": "60",
}


@dataclass(frozen=True)
class RetailerExport:
    """What :func:`write_retailer_export` wrote.

    Attributes:
        out_dir: The export: ``<table>.csv`` for each of :data:`EXPORT_TABLES`, nothing else.
        truth_dir: ``demand.parquet``, ``sku_params.parquet`` and ``effects.json``, for evaluation.
        size: The size's name (``tiny``, ``small``).
        seed: The random seed.
        first_week: Start of the first sales week.
        last_week: Start of the last sales week, the newest ``daily_sales.date``.
        batch_date: The date to land the export as: the last sales week's start, the day
            ``ecom land --date-from-data`` finds. Rows dated after it are plans.
        plan_until: Last day the price and promotion plans cover.
        rows: Rows written per table.
        seconds: Wall time of the generation.
    """

    out_dir: Path
    truth_dir: Path
    size: str
    seed: int
    first_week: dt.date
    last_week: dt.date
    batch_date: dt.date
    plan_until: dt.date
    rows: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class _Leaf:
    """A leaf category with its demand structure."""

    prefix: str  # first part of every SKU code in it
    department: str  # category_l1
    name: str  # category_l2
    brands: tuple[tuple[str, str], ...]  # (code, display name)
    sizes: tuple[tuple[str, str], ...]  # (code, label), smallest first
    variants: tuple[str, ...]  # variant codes; "" is the plain item
    price: float  # list price of a national brand's second size
    elasticity: float  # mean own-price elasticity of its SKUs
    season_amp: float  # amplitude of the yearly cycle, log scale
    peak_day: int  # day of the year the cycle peaks
    trend: float  # log growth per year
    holiday: float  # log uplift in the weeks of July 4, Thanksgiving and Christmas


_STORE_BRAND = ("DOM", "Dominick's")


def _oz(*sizes: int) -> tuple[tuple[str, str], ...]:
    return tuple((str(s), f"{s} oz") for s in sizes)


LEAVES: tuple[_Leaf, ...] = (
    _Leaf("OJ", "refrigerated", "orange juice",
          (("TROP", "Tropicana"), ("MMAID", "Minute Maid"), ("FLNAT", "Florida's Natural"), _STORE_BRAND),
          _oz(32, 64, 96), ("", "PULP"), 3.29, -2.6, 0.12, 20, -0.03, 0.05),
    _Leaf("CHE", "refrigerated", "cheese",
          (("KRAFT", "Kraft"), ("SARG", "Sargento"), _STORE_BRAND),
          _oz(8, 12, 16), ("", "SHRD"), 3.49, -2.0, 0.10, 350, 0.01, 0.15),
    _Leaf("CER", "grocery", "cereals",
          (("KELL", "Kellogg's"), ("GMILL", "General Mills"), ("POST", "Post"),
           ("QUAK", "Quaker"), _STORE_BRAND),
          _oz(12, 18, 24), ("", "HNY"), 3.79, -2.2, 0.08, 250, -0.01, 0.0),
    _Leaf("SOUP", "grocery", "canned soup",
          (("CAMP", "Campbell's"), ("PROG", "Progresso"), ("HCH", "Healthy Choice"), _STORE_BRAND),
          _oz(10, 19), ("", "CHK", "TOM"), 1.49, -1.8, 0.45, 15, -0.02, 0.05),
    _Leaf("TUNA", "grocery", "canned tuna",
          (("STAR", "StarKist"), ("BUMB", "Bumble Bee"), ("COTS", "Chicken of the Sea")),
          _oz(5, 12), ("",), 1.29, -2.4, 0.15, 75, 0.0, 0.0),
    _Leaf("SDR", "beverages", "soft drinks",
          (("COKE", "Coca-Cola"), ("PEPSI", "Pepsi"), ("7UP", "7UP"), _STORE_BRAND),
          (("2L", "2 litre"), ("6PK", "6-pack"), ("12PK", "12-pack")),
          ("", "DIET"), 3.99, -2.8, 0.30, 190, 0.01, 0.35),
    _Leaf("BEER", "beverages", "beer",
          (("BUD", "Budweiser"), ("MILL", "Miller"), ("COORS", "Coors"), ("HEIN", "Heineken")),
          (("6PK", "6-pack"), ("12PK", "12-pack"), ("24PK", "24-pack")),
          ("", "LT"), 6.99, -2.0, 0.35, 185, 0.02, 0.40),
    _Leaf("COOK", "snacks", "cookies",
          (("NAB", "Nabisco"), ("KEEB", "Keebler"), ("PEPF", "Pepperidge Farm"), _STORE_BRAND),
          _oz(12, 16, 20), ("", "CHOC"), 2.99, -2.3, 0.20, 350, 0.0, 0.25),
    _Leaf("CRK", "snacks", "crackers",
          (("NAB", "Nabisco"), ("KEEB", "Keebler"), ("SUNS", "Sunshine")),
          _oz(8, 12, 16), ("",), 2.49, -2.1, 0.12, 355, 0.0, 0.20),
    _Leaf("FRE", "frozen", "frozen entrees",
          (("STOUF", "Stouffer's"), ("LEANC", "Lean Cuisine"), ("HCH", "Healthy Choice"),
           ("BANQ", "Banquet")),
          _oz(9, 12, 20), ("", "LITE"), 2.69, -2.5, 0.10, 30, 0.03, 0.0),
    _Leaf("FRJ", "frozen", "frozen juice",
          (("MMAID", "Minute Maid"), ("WELCH", "Welch's"), _STORE_BRAND),
          _oz(12, 16), ("",), 1.89, -2.7, 0.20, 190, -0.06, 0.05),
    _Leaf("LND", "household", "laundry detergent",
          (("TIDE", "Tide"), ("CHEER", "Cheer"), ("ALL", "all"), ("WISK", "Wisk")),
          _oz(64, 100, 150), ("",), 7.99, -1.7, 0.04, 100, 0.02, 0.0),
    _Leaf("PTW", "household", "paper towels",
          (("BNTY", "Bounty"), ("BRAWN", "Brawny"), ("SCOTT", "Scott"), _STORE_BRAND),
          (("1RL", "1 roll"), ("3RL", "3 rolls"), ("6RL", "6 rolls")),
          ("",), 2.49, -1.9, 0.05, 330, 0.01, 0.05),
    _Leaf("TPA", "health_beauty", "toothpaste",
          (("CREST", "Crest"), ("COLG", "Colgate"), ("AQUA", "Aquafresh"), ("ARMH", "Arm & Hammer")),
          _oz(4, 6, 8), ("", "WHT"), 2.79, -1.6, 0.03, 240, 0.0, 0.0),
    _Leaf("ANA", "health_beauty", "analgesics",
          (("TYL", "Tylenol"), ("ADV", "Advil"), ("BAYER", "Bayer"), _STORE_BRAND),
          (("24", "24 ct"), ("50", "50 ct"), ("100", "100 ct")), ("",), 5.49, -1.5, 0.30, 20, 0.01, 0.0),
)  # fmt: skip

_VARIANT_NAMES = {
    "PULP": "with pulp", "SHRD": "shredded", "HNY": "honey", "CHK": "chicken", "TOM": "tomato",
    "DIET": "diet", "LT": "light", "CHOC": "chocolate chip", "LITE": "lite", "WHT": "whitening",
}  # fmt: skip
_SIZE_PRICE = (0.7, 1.0, 1.45, 2.0)  # list price by size rank
_SIZE_DEMAND = (1.2, 1.0, 0.7, 0.5)  # base demand by size rank
_DISCOUNTS = np.array([10.0, 15.0, 20.0, 25.0, 30.0, 33.0, 40.0])
_DISCOUNT_WEIGHTS = np.array([0.15, 0.2, 0.25, 0.15, 0.12, 0.08, 0.05])
_MODEL = (
    "expected_demand = base x season(day of year) x holiday x exp(trend x years) "
    "x (price_paid / list_price) ^ elasticity x exp(promo_lift x on_promotion) x ramp_up x run_down; "
    "demand ~ NegBin(mean = expected_demand, shape = dispersion); no stock-outs, so units = demand"
)


def write_retailer_export(
    out_dir: Path,
    truth_dir: Path,
    *,
    size: str = "small",
    seed: int = 7,
    start: dt.date = DEFAULT_START,
) -> RetailerExport:
    """Write a retailer-shaped export in the landing contract, and its truth apart.

    Both folders are replaced atomically (written under a temporary name, then renamed).

    Args:
        out_dir: The export folder: ``products.csv``, ``daily_sales.csv``, ``own_prices.csv`` and
            ``promotions.csv``, one batch for ``ecom land``.
        truth_dir: Where the truth goes; must not be inside ``out_dir`` (nor the reverse).
        size: A key of :data:`SIZES`.
        seed: Random seed; the same size, seed and start give byte-identical files.
        start: First day of the first sales week; must be a Thursday.

    Returns:
        The folders, the sales weeks, the batch date and the rows written.

    Raises:
        ValueError: Unknown size, a start that is not a Thursday, or overlapping folders.
    """
    if size not in SIZES:
        raise ValueError(f"unknown retailer export size {size!r}; choose one of {', '.join(SIZES)}")
    if start.weekday() != 3:
        raise ValueError(
            f"start {start} is a {start.strftime('%A')}: retailer weeks start on Thursday "
            f"(e.g. {start + dt.timedelta(days=(3 - start.weekday()) % 7)})"
        )
    out_abs, truth_abs = Path(out_dir).resolve(), Path(truth_dir).resolve()
    if out_abs == truth_abs or out_abs in truth_abs.parents or truth_abs in out_abs.parents:
        raise ValueError(f"the truth ({truth_dir}) must be kept apart from the export ({out_dir})")
    started = time.perf_counter()
    spec = SIZES[size]
    rng = np.random.default_rng([seed, 0x5CA7])
    skus = _draw_skus(spec, rng)
    weeks = _draw_weeks(spec, skus, rng)
    panel = _simulate_weeks(spec, start, skus, weeks, rng)
    tables, truth = _contract_tables(skus, weeks, panel), _truth_tables(skus, weeks, panel)

    tmp_out, tmp_truth = _temp_sibling(Path(out_dir)), _temp_sibling(Path(truth_dir))
    try:
        for name, frame in tables.items():
            frame.write_csv(tmp_out / f"{name}.csv")
        truth["demand"].write_parquet(tmp_truth / "demand.parquet")
        truth["sku_params"].write_parquet(tmp_truth / "sku_params.parquet")
        effects = _effects(size, seed, start, spec)
        (tmp_truth / "effects.json").write_text(json.dumps(effects, indent=1, sort_keys=True) + "\n")
        _replace_dir(tmp_out, Path(out_dir))
        _replace_dir(tmp_truth, Path(truth_dir))
    finally:
        shutil.rmtree(tmp_out, ignore_errors=True)
        shutil.rmtree(tmp_truth, ignore_errors=True)
    last_week = start + dt.timedelta(weeks=spec.n_weeks - 1)
    return RetailerExport(
        out_dir=Path(out_dir),
        truth_dir=Path(truth_dir),
        size=size,
        seed=seed,
        first_week=start,
        last_week=last_week,
        batch_date=last_week,
        plan_until=last_week + dt.timedelta(weeks=PLAN_WEEKS + 1, days=-1),
        rows={name: frame.height for name, frame in tables.items()},
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------------------------------
# SKUs and their parameters


@dataclass(frozen=True)
class _Skus:
    code: list[str]
    name: list[str]
    leaf: np.ndarray  # index into LEAVES
    brand: list[str]  # display name
    list_price: np.ndarray
    unit_cost: np.ndarray
    base: np.ndarray  # units per week at list price, mid-season, before trend
    elasticity: np.ndarray
    promo_lift: np.ndarray  # log uplift of a promoted week beyond its price cut
    dispersion: np.ndarray  # negative binomial shape
    trend: np.ndarray  # log growth per year
    season_amp: np.ndarray
    promo_rate: np.ndarray  # chance a promotion starts in a given week
    price_change_rate: np.ndarray  # chance the shelf price changes in a given week


def _draw_skus(spec: RetailerSize, rng: np.random.Generator) -> _Skus:
    combos = [
        (li, brand, si, variant)
        for li, leaf in enumerate(LEAVES)
        for brand in leaf.brands
        for si in range(len(leaf.sizes))
        for variant in leaf.variants
    ]
    if spec.n_skus > len(combos):
        raise ValueError(f"{spec.n_skus} SKUs asked for, but the catalogue has {len(combos)}")
    picked = [combos[i] for i in np.sort(rng.choice(len(combos), spec.n_skus, replace=False))]
    n = spec.n_skus
    leaf = np.array([c[0] for c in picked])
    size_rank = np.array([c[2] for c in picked])
    store_brand = np.array([c[1] == _STORE_BRAND for c in picked])
    codes, names = [], []
    for li, (brand_code, brand_name), si, variant in picked:
        lf = LEAVES[li]
        size_code, size_label = lf.sizes[si]
        codes.append("-".join(p for p in (lf.prefix, brand_code, size_code, variant) if p))
        words = [brand_name, _VARIANT_NAMES.get(variant, ""), lf.name, size_label]
        names.append(" ".join(w for w in words if w))

    leaf_price = np.array([LEAVES[i].price for i in leaf])
    raw_price = (
        leaf_price
        * np.array(_SIZE_PRICE)[size_rank]
        * np.where(store_brand, 0.78, 1.0)
        * rng.lognormal(0.0, 0.08, n)
    )
    list_price = _shelf_round(raw_price)
    unit_cost = np.round(list_price * rng.uniform(0.55, 0.75, n), 2)
    base = (
        rng.lognormal(np.log(16.0), 0.8, n)
        * np.array(_SIZE_DEMAND)[size_rank]
        * np.where(store_brand, 0.85, 1.0)
    )
    leaf_elasticity = np.array([LEAVES[i].elasticity for i in leaf])
    elasticity = np.clip(leaf_elasticity + rng.normal(0.0, 0.3, n), -3.3, -1.2)
    promo_lift = np.clip(rng.normal(0.3, 0.1, n), 0.05, None)
    dispersion = rng.uniform(3.0, 15.0, n)
    trend = np.array([LEAVES[i].trend for i in leaf]) + rng.normal(0.0, 0.05, n)
    season_amp = np.array([LEAVES[i].season_amp for i in leaf]) * rng.uniform(0.7, 1.3, n)
    promo_rate = rng.uniform(1 / 16, 1 / 6, n)
    price_change_rate = rng.uniform(1 / 30, 1 / 12, n)
    return _Skus(
        code=codes,
        name=names,
        leaf=leaf,
        brand=[c[1][1] for c in picked],
        list_price=list_price,
        unit_cost=unit_cost,
        base=base,
        elasticity=elasticity,
        promo_lift=promo_lift,
        dispersion=dispersion,
        trend=trend,
        season_amp=season_amp,
        promo_rate=promo_rate,
        price_change_rate=price_change_rate,
    )


@dataclass(frozen=True)
class _Weeks:
    """When each SKU sells (week indices; plan weeks follow the n_weeks of history)."""

    first: np.ndarray  # first week on the shelf
    last: np.ndarray  # last week on the shelf (a plan week for SKUs still listed)
    late: np.ndarray  # bool: launched inside the history
    discontinued: np.ndarray  # bool: delisted before the last sales week
    ramp_weeks: np.ndarray  # ramp-up time constant of late SKUs
    missing: np.ndarray  # (S, T) bool: a week the export has no row for
    gap_rate: np.ndarray  # chance a week is missing, per SKU (0 for complete series)


def _draw_weeks(spec: RetailerSize, skus: _Skus, rng: np.random.Generator) -> _Weeks:
    n, h = spec.n_skus, spec.n_weeks
    total = h + PLAN_WEEKS
    order = rng.permutation(n)
    n_late, n_disc = max(2, round(0.12 * n)), max(2, round(0.08 * n))
    late = np.zeros(n, bool)
    late[order[:n_late]] = True
    discontinued = np.zeros(n, bool)
    discontinued[order[n_late : n_late + n_disc]] = True
    first = np.where(late, rng.integers(round(0.15 * h), round(0.6 * h) + 1, n), 0)
    last = np.where(discontinued, rng.integers(round(0.45 * h), round(0.85 * h) + 1, n), total - 1)
    ramp_weeks = np.where(late, rng.uniform(1.5, 5.0, n), 0.0)

    # About a third of the series miss weeks now and then, and some of those miss a run of weeks
    # (an item off the shelf, a feed that failed). A SKU's first and last weeks are always there.
    gappy = rng.random(n) < 0.33
    gappy[order[-1]] = True  # at least one, even in the smallest export
    gap_rate = np.where(gappy, rng.uniform(0.02, 0.08, n), 0.0)
    t = np.arange(total)[None, :]
    inside = (t > first[:, None]) & (t < np.minimum(last, h - 1)[:, None])
    missing = (rng.random((n, total)) < gap_rate[:, None]) & inside
    run_start = rng.integers(0, h, n)
    run_length = rng.integers(2, 7, n)
    has_run = gappy & (rng.random(n) < 0.4)
    in_run = (t >= run_start[:, None]) & (t < (run_start + run_length)[:, None]) & has_run[:, None]
    missing |= in_run & inside
    return _Weeks(first, last, late, discontinued, ramp_weeks, missing, gap_rate)


# --------------------------------------------------------------------------------------------------
# Prices, promotions, demand and the tables


@dataclass(frozen=True)
class _Panel:
    """Every SKU-week of the history and the plan weeks after it, as (S, T) arrays."""

    dates: np.ndarray  # (T,) datetime64[D]: each week's first day
    history: np.ndarray  # (T,) bool: a sales week (False: a plan week)
    listed: np.ndarray  # on the shelf
    sold: np.ndarray  # a row in the export
    shelf: np.ndarray  # shelf price
    discount: np.ndarray  # promotion discount in percent, 0 when none
    price_paid: np.ndarray
    expected: np.ndarray  # expected demand
    demand: np.ndarray  # drawn demand (no stock-outs, so units sold)


def _simulate_weeks(
    spec: RetailerSize, start: dt.date, skus: _Skus, weeks: _Weeks, rng: np.random.Generator
) -> _Panel:
    total = spec.n_weeks + PLAN_WEEKS
    t = np.arange(total)
    week_dates = [start + dt.timedelta(weeks=int(i)) for i in t]
    listed = (t[None, :] >= weeks.first[:, None]) & (t[None, :] <= weeks.last[:, None])

    shelf = _shelf_prices(skus, total, rng)
    holiday = np.array([_holiday_week(d) for d in week_dates])
    discount = _promotion_weeks(skus, weeks, holiday, rng)
    price_paid = np.round(shelf * (1.0 - discount / 100.0), 2)

    leaf_peak = np.array([LEAVES[i].peak_day for i in skus.leaf])
    leaf_holiday = np.array([LEAVES[i].holiday for i in skus.leaf])
    mid_day = np.array([(d + dt.timedelta(days=3)).timetuple().tm_yday for d in week_dates])
    season = np.exp(
        skus.season_amp[:, None] * np.cos(2 * np.pi * (mid_day[None, :] - leaf_peak[:, None]) / 365.25)
    )
    age = t[None, :] - weeks.first[:, None]
    ramp = np.where(
        weeks.late[:, None], 1.0 - np.exp(-(age + 1) / np.maximum(weeks.ramp_weeks, 1e-9)[:, None]), 1.0
    )
    # Sales fade over the last ten weeks before a SKU is delisted.
    to_end = weeks.last[:, None] - t[None, :]
    run_down = np.where(weeks.discontinued[:, None], np.exp(-np.clip(10 - to_end, 0, None) / 8.0), 1.0)
    expected = (
        skus.base[:, None]
        * season
        * np.exp(leaf_holiday[:, None] * holiday[None, :])
        * np.exp(skus.trend[:, None] * t[None, :] / 52.0)
        * (price_paid / skus.list_price[:, None]) ** skus.elasticity[:, None]
        * np.exp(skus.promo_lift[:, None] * (discount > 0))
        * ramp
        * run_down
    )
    expected = np.where(listed, expected, 0.0)
    k = skus.dispersion[:, None]
    demand = rng.poisson(rng.gamma(np.broadcast_to(k, expected.shape), expected / k))
    history = t < spec.n_weeks
    return _Panel(
        dates=np.array(week_dates, dtype="datetime64[D]"),
        history=history,
        listed=listed,
        sold=listed & history[None, :] & ~weeks.missing,
        shelf=shelf,
        discount=discount,
        price_paid=price_paid,
        expected=expected,
        demand=demand,
    )


def _contract_tables(skus: _Skus, weeks: _Weeks, panel: _Panel) -> dict[str, pl.DataFrame]:
    """The export's four tables, with the contract's columns in its order."""
    codes, dates = np.array(skus.code), panel.dates
    si, ti = np.nonzero(panel.sold)
    units = panel.demand[si, ti].astype(np.int32)
    paid = panel.price_paid[si, ti]
    daily_sales = pl.DataFrame(
        {
            "date": dates[ti],
            "sku_id": codes[si],
            "channel": CHANNEL,
            "units": units,
            "revenue": np.round(units * paid, 2),
            "price_paid": paid,
            "stockout": False,  # the retailer does not know; the raw gates refuse a null
        }
    ).sort("date", "sku_id")

    first_sold = daily_sales.group_by("sku_id").agg(pl.col("date").min().alias("launch_date"))
    products = (
        pl.DataFrame(
            {
                "sku_id": skus.code,
                "sku_name": skus.name,
                "category_l1": [LEAVES[i].department for i in skus.leaf],
                "category_l2": [LEAVES[i].name for i in skus.leaf],
                "brand": skus.brand,
                "unit_cost": skus.unit_cost,
                "list_price": skus.list_price,
                "warehouse_id": np.full(len(codes), STORE_ID, np.int32),
            }
        )
        .join(first_sold, on="sku_id", how="inner")
        .sort("sku_id")
    )

    # A shelf price row where a listed SKU's price changes, and on its first week.
    changed = np.zeros_like(panel.listed)
    changed[:, 1:] = panel.shelf[:, 1:] != panel.shelf[:, :-1]
    first = np.arange(dates.size)[None, :] == weeks.first[:, None]
    pi, pt = np.nonzero(panel.listed & (changed | first))
    own_prices = pl.DataFrame(
        {"sku_id": codes[pi], "effective_date": dates[pt], "price": panel.shelf[pi, pt]}
    ).sort("sku_id", "effective_date")

    frames = {
        "products": products,
        "daily_sales": daily_sales,
        "own_prices": own_prices,
        "promotions": _promotion_rows(codes, dates, panel.discount),
    }
    return {name: frame.select(TABLES[name].column_names) for name, frame in frames.items()}


def _truth_tables(skus: _Skus, weeks: _Weeks, panel: _Panel) -> dict[str, pl.DataFrame]:
    """Demand per listed SKU-week (plan weeks too) and every SKU's parameters."""
    codes, dates = np.array(skus.code), panel.dates
    li, lt = np.nonzero(panel.listed)
    demand = pl.DataFrame(
        {
            "week": dates[lt],
            "sku_id": codes[li],
            "period": np.where(panel.history[lt], "history", "plan"),
            "expected_demand": panel.expected[li, lt],
            "demand": panel.demand[li, lt].astype(np.int32),
            "shelf_price": panel.shelf[li, lt],
            "discount_pct": panel.discount[li, lt],
            "price_paid": panel.price_paid[li, lt],
            "exported": panel.sold[li, lt],
        }
    ).sort("week", "sku_id")
    sku_params = pl.DataFrame(
        {
            "sku_id": skus.code,
            "category_l2": [LEAVES[i].name for i in skus.leaf],
            "base_demand": skus.base,
            "elasticity": skus.elasticity,
            "promo_lift": skus.promo_lift,
            "dispersion": skus.dispersion,
            "trend_per_year": skus.trend,
            "season_amplitude": skus.season_amp,
            "season_peak_day": [LEAVES[i].peak_day for i in skus.leaf],
            "first_week": dates[weeks.first],
            "last_week": dates[weeks.last],
            "late_start": weeks.late,
            "discontinued": weeks.discontinued,
            "ramp_weeks": weeks.ramp_weeks,
            "gap_rate": weeks.gap_rate,
            "missing_weeks": (weeks.missing & panel.listed & panel.history[None, :]).sum(axis=1),
        }
    ).sort("sku_id")
    return {"demand": demand, "sku_params": sku_params}


def _shelf_prices(skus: _Skus, total: int, rng: np.random.Generator) -> np.ndarray:
    """Shelf prices per SKU-week: the list price moved now and then by 90-108%, with inflation."""
    n = len(skus.code)
    t = np.arange(total)
    change = rng.random((n, total)) < skus.price_change_rate[:, None]
    change[:, 0] = True
    level = rng.uniform(0.90, 1.08, (n, total))
    level[:, 0] = 1.0
    since = np.maximum.accumulate(np.where(change, t[None, :], 0), axis=1)
    regime = np.take_along_axis(level, since, axis=1) * np.exp(0.025 * since / 52.0)
    return _shelf_round(skus.list_price[:, None] * regime)


def _promotion_weeks(skus: _Skus, weeks: _Weeks, holiday: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Discount in percent per SKU-week (0: none): one- or two-week promotions, a week apart at least."""
    n, total = len(skus.code), holiday.size
    draws = rng.random((n, total))
    two_weeks = rng.random((n, total)) < 0.3
    pct = rng.choice(_DISCOUNTS, size=(n, total), p=_DISCOUNT_WEIGHTS)
    # Promotions cluster on holiday weeks.
    rate = skus.promo_rate[:, None] * np.where(holiday[None, :], 2.0, 1.0)
    discount = np.zeros((n, total))
    for i in range(n):
        w, last = int(weeks.first[i]) + 1, int(weeks.last[i])
        while w <= last:
            if draws[i, w] < rate[i, w]:
                end = min(w + (2 if two_weeks[i, w] else 1), last + 1)
                discount[i, w:end] = pct[i, w]
                w = end + 1
            else:
                w += 1
    return discount


def _promotion_rows(codes: np.ndarray, dates: np.ndarray, discount: np.ndarray) -> pl.DataFrame:
    """One promotion per run of consecutive promoted weeks of a SKU, from Thursday to Wednesday."""
    on = discount > 0
    starts = on & ~np.pad(on, ((0, 0), (1, 0)))[:, :-1]
    ends = on & ~np.pad(on, ((0, 0), (0, 1)))[:, 1:]
    si, st = np.nonzero(starts)
    ei, et = np.nonzero(ends)  # row-major order pairs each start with its end
    if not (np.array_equal(si, ei) and np.all(et >= st)):
        raise AssertionError("promotion starts and ends do not pair up")
    return (
        pl.DataFrame(
            {
                "sku_id": codes[si],
                "start_date": dates[st],
                "end_date": dates[et] + np.timedelta64(6, "D"),
                "promo_type": "discount",
                "discount_pct": discount[si, st],
            }
        )
        .sort("sku_id", "start_date")
        .with_row_index("promo_id", offset=1)
        .with_columns(pl.col("promo_id").cast(pl.Int64))
    )


def _holiday_week(week_start: dt.date) -> bool:
    """Whether the week holds July 4, Thanksgiving (the fourth Thursday of November) or Christmas."""
    days = [week_start + dt.timedelta(days=i) for i in range(7)]
    for d in days:
        if (d.month, d.day) in {(7, 4), (12, 25)}:
            return True
        if d.month == 11 and d.weekday() == 3 and 22 <= d.day <= 28:
            return True
    return False


def _shelf_round(price: np.ndarray) -> np.ndarray:
    """Prices as shelves show them: the dime below, plus 9 cents (2.83 -> 2.79)."""
    return np.round(np.maximum(np.floor(price * 10.0) / 10.0, 0.1) + 0.09, 2)


def _effects(size: str, seed: int, start: dt.date, spec: RetailerSize) -> dict[str, Any]:
    return {
        "profile": "retailer",
        "size": size,
        "seed": seed,
        "first_week": start.isoformat(),
        "n_weeks": spec.n_weeks,
        "plan_weeks": PLAN_WEEKS,
        "week_start": WEEK_START,
        "channel": CHANNEL,
        "currency": CURRENCY,
        "contract_version": CONTRACT_VERSION,
        "model": _MODEL,
        "leaves": [
            {
                "prefix": lf.prefix,
                "category_l1": lf.department,
                "category_l2": lf.name,
                "mean_elasticity": lf.elasticity,
                "season_amplitude": lf.season_amp,
                "season_peak_day": lf.peak_day,
                "trend_per_year": lf.trend,
                "holiday_log_uplift": lf.holiday,
            }
            for lf in LEAVES
        ],
    }
