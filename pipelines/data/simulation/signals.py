"""What the whole simulated world shares, drawn once per world from one random stream.

Calendar, weather and social trends make the demand context of every leaf category and day;
products and customers are drawn here too, so every SKU chunk sees the same ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.data import world as w
from pipelines.data.simulation.sink import Columns

__all__ = ["EPOCH", "WorldSignals", "simulate_signals"]

EPOCH = dt.date(1970, 1, 1)
PLANNER_EVENT_FORESIGHT = 0.6  # share of an event's uplift the replenishment planner anticipates
PROMO_START_RATE = 0.012  # mean daily chance a SKU starts a promotion outside the festival kick-offs
FESTIVAL_JOIN_RATE = 0.45  # chance a SKU joins a festival kick-off
# Merchants place promotions where demand is high: the start chance goes with the leaf's context
# (relative to its own mean) to this power, capped so that no day promotes everything.
PROMO_PEAK_POWER, PROMO_START_CAP = 2.0, 0.15


@dataclass(frozen=True)
class WorldSignals:
    """World-wide arrays shared by every SKU chunk."""

    start: dt.date
    n_days: int
    epoch0: int
    context: np.ndarray  # (leaf, day) seasonal x calendar x weather x social multiplier
    planner: np.ndarray  # (leaf, day) what the replenishment planner expects, relative
    calendar: np.ndarray  # (leaf, day) calendar multiplier alone
    event_day: np.ndarray  # (day,) bool: a peak shopping day (busy logistics)
    promo_start_rate: np.ndarray  # (leaf, day) probability a SKU starts a promotion
    festival_len: np.ndarray  # (day,) length of festival promotions starting that day, else 0
    competitor_event: np.ndarray  # (day,) competitors' event discount multiplier
    leaf_return_rate: np.ndarray
    leaf_is_apparel: np.ndarray
    sku: dict[str, np.ndarray]  # per-SKU parameters (truth) and attributes
    customer_cum: np.ndarray  # (channel, promo, customer) cumulative choice probabilities
    customer_pool: np.ndarray  # customers active over the whole window, for redraws
    pool_cum: np.ndarray
    signup_t: np.ndarray
    churn_t: np.ndarray
    segment: np.ndarray
    n_customers: int


def simulate_signals(
    tier: w.Tier, seed: int, start: dt.date
) -> tuple[WorldSignals, dict[str, Columns], dict[str, Any]]:
    """Draw the world-wide signals for a tier from the stream ``(seed, 0)``.

    Returns:
        The signals every SKU chunk reads; the global contract tables (products, customers,
        warehouses, weather, social_trends); the effect sizes for the ground truth.
    """
    rng = np.random.default_rng([seed, 0])
    n_days = tier.n_days
    days = w.dates_of(start, n_days)
    epoch0 = (start - EPOCH).days
    dow = np.array([d.weekday() for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days])
    lp = _leaf_params()
    n_leaves = len(w.LEAVES)

    events = w.event_log_effects(start, n_days)
    calendar = w.calendar_multiplier(lp["event_weight"], events)
    seasonal = w.seasonal_multiplier(
        lp["weekend_uplift"], lp["yearly_amplitude"], lp["yearly_peak_doy"], dow, doy
    )

    weather = _simulate_weather(rng, doy)
    pop = np.array([r[1] for r in w.REGIONS])[:, None]
    national_anomaly = (pop * weather["anomaly"]).sum(0)
    national_rain = (pop * weather["precip_mm"]).sum(0)
    weather_mult = np.exp(
        lp["temp_effect"][:, None] * national_anomaly[None, :]
        + lp["rain_effect"][:, None] * (national_rain - national_rain.mean())[None, :]
    )

    # Latent social trend per leaf: a slow AR(1) with occasional viral bursts.
    z = np.zeros((n_leaves, n_days))
    bursts = (rng.random((n_leaves, n_days)) < 0.004) * rng.uniform(0.8, 1.6, (n_leaves, n_days))
    shocks = rng.normal(0, 0.08, (n_leaves, n_days)) + bursts
    for t in range(n_days):
        z[:, t] = (0.97 * z[:, t - 1] if t else 0.0) + shocks[:, t]
    z -= z.mean(1, keepdims=True)
    social_mult = np.exp(lp["trend_beta"][:, None] * z)
    hype = np.log(calendar)  # people talk about what they shop for
    social = {
        "search_index": 100 * np.exp(0.6 * z + 0.5 * hype + rng.normal(0, 0.08, z.shape)),
        "mentions": rng.poisson(300 * np.exp(0.9 * z + 0.6 * hype)),
        "sentiment": np.tanh(0.15 + 0.4 * z + rng.normal(0, 0.15, z.shape)),
        "video_views": rng.poisson(40_000 * np.exp(1.1 * z + 0.8 * hype)),
    }

    context = seasonal * calendar * weather_mult * social_mult
    planner = seasonal * (1 + PLANNER_EVENT_FORESIGHT * (calendar - 1))
    peak = np.log(calendar).max(0)
    event_day = peak > 0.5
    kickoff = np.array([(d.month, d.day) in {(6, 8), (11, 4), (12, 9)} for d in days])
    promo_start_rate = _promo_start_rate(context, kickoff)
    # Festival promotions run from the kick-off to the peak day (618, 11.11, 12.12).
    festival_len = np.array([{(6, 8): 11, (11, 4): 8, (12, 9): 4}.get((d.month, d.day), 0) for d in days])
    competitor_event = np.where(peak > 0.5, 0.9, 1.0)

    sku, products = _draw_products(rng, tier, start, lp)
    customers, cust = _draw_customers(rng, tier, start)
    warehouses = {
        "warehouse_id": np.arange(1, tier.n_warehouses + 1),
        "name": (
            np.arange(tier.n_warehouses),
            tuple(f"DC-{w.REGIONS[i][0].upper()}-{i + 1}" for i in range(tier.n_warehouses)),
        ),
        "region": (np.arange(tier.n_warehouses) % len(w.REGIONS), tuple(r[0] for r in w.REGIONS)),
        "capacity_units": np.full(tier.n_warehouses, 250 * max(tier.n_skus, 1_000) // tier.n_warehouses),
    }
    leaf_names = tuple(leaf.name for leaf in w.LEAVES)
    region_names = tuple(r[0] for r in w.REGIONS)
    date_ids = epoch0 + np.arange(n_days)
    weather_table = {
        "date": np.tile(date_ids, len(w.REGIONS)),
        "region": (np.repeat(np.arange(len(w.REGIONS)), n_days), region_names),
        **{k: np.round(weather[k], 1).ravel() for k in ("temp_c", "precip_mm", "humidity_pct", "wind_kph")},
        "aqi": np.round(weather["aqi"]).ravel(),
        "is_extreme": weather["is_extreme"].ravel(),
    }
    social_table = {
        "date": np.tile(date_ids, n_leaves),
        "category_l2": (np.repeat(np.arange(n_leaves), n_days), leaf_names),
        "search_index": np.round(social["search_index"], 2).ravel(),
        "mentions": social["mentions"].ravel(),
        "sentiment": np.round(social["sentiment"], 3).ravel(),
        "video_views": social["video_views"].ravel(),
    }
    g = WorldSignals(
        start=start,
        n_days=n_days,
        epoch0=epoch0,
        context=context,
        planner=planner,
        calendar=calendar,
        event_day=event_day,
        promo_start_rate=promo_start_rate,
        festival_len=festival_len,
        competitor_event=competitor_event,
        leaf_return_rate=lp["return_rate"],
        leaf_is_apparel=np.array([leaf.department.name == "apparel" for leaf in w.LEAVES]),
        sku=sku,
        n_customers=tier.n_customers,
        **cust,
    )
    tables = {
        "products": products,
        "customers": customers,
        "warehouses": warehouses,
        "weather": weather_table,
        "social_trends": social_table,
    }
    effects = {
        "leaf_categories": {
            leaf.name: {
                "department": leaf.department.name,
                "mean_elasticity": leaf.department.elasticity,
                "weekend_uplift_log": leaf.department.weekend_uplift,
                "yearly_amplitude_log": leaf.department.yearly_amplitude[leaf.index],
                "yearly_peak_day_of_year": leaf.department.yearly_peak_doy[leaf.index],
                "temperature_effect_log_per_degc": leaf.department.temp_effect[leaf.index],
                "rain_effect_log_per_mm": leaf.department.rain_effect,
                "social_trend_beta": leaf.department.trend_beta,
                "return_rate": leaf.department.return_rate,
                "event_weights": dict(zip(w.EVENTS, leaf.department.event_weight, strict=True)),
            }
            for leaf in w.LEAVES
        },
        "event_log_effects": {
            e: {str(days[t]): float(events[i, t]) for t in np.flatnonzero(events[i])}
            for i, e in enumerate(w.EVENTS)
        },
        "calendar_daily": {"date": [str(d) for d in days], "leaf_calendar_multiplier": calendar.tolist()},
        "social_trend_latent": z.round(4).tolist(),
        "national_temperature_anomaly": national_anomaly.round(3).tolist(),
        "national_rain_mm": national_rain.round(3).tolist(),
    }
    return g, tables, effects


def _promo_start_rate(context: np.ndarray, kickoff: np.ndarray) -> np.ndarray:
    """Chance per (leaf, day) that a SKU starts a promotion: peak days draw more, kick-offs most.

    Outside the festival kick-offs the chance follows the leaf's demand context, scaled so that its
    mean over those days stays :data:`PROMO_START_RATE`; promotions therefore coincide with high demand,
    which is what a naive price regression mistakes for price response.
    """
    relative = (context / context.mean(1, keepdims=True)) ** PROMO_PEAK_POWER
    relative = relative / relative[:, ~kickoff].mean(1, keepdims=True) if (~kickoff).any() else relative
    rate = np.minimum(PROMO_START_RATE * relative, PROMO_START_CAP)
    return np.where(kickoff[None, :], FESTIVAL_JOIN_RATE, rate)


def _leaf_params() -> dict[str, np.ndarray]:
    def per_leaf(attr: str) -> np.ndarray:
        return np.array([getattr(leaf.department, attr)[leaf.index] for leaf in w.LEAVES], dtype=float)

    def per_dept(attr: str) -> np.ndarray:
        return np.array([getattr(leaf.department, attr) for leaf in w.LEAVES], dtype=float)

    return {
        "price_median": per_leaf("price_median"),
        "yearly_amplitude": per_leaf("yearly_amplitude"),
        "yearly_peak_doy": per_leaf("yearly_peak_doy"),
        "temp_effect": per_leaf("temp_effect"),
        "elasticity": per_dept("elasticity"),
        "weekend_uplift": per_dept("weekend_uplift"),
        "rain_effect": per_dept("rain_effect"),
        "trend_beta": per_dept("trend_beta"),
        "return_rate": per_dept("return_rate"),
        "event_weight": np.array([leaf.department.event_weight for leaf in w.LEAVES], dtype=float),
    }


def _simulate_weather(rng: np.random.Generator, doy: np.ndarray) -> dict[str, np.ndarray]:
    n_regions, n_days = len(w.REGIONS), len(doy)
    mean = np.array([r[2] for r in w.REGIONS])[:, None]
    amp = np.array([r[3] for r in w.REGIONS])[:, None]
    rain = np.array([r[4] for r in w.REGIONS])[:, None]
    north = np.array([r[5] for r in w.REGIONS])[:, None]
    season = -np.cos(2 * np.pi * (doy[None, :] - 15) / 365.25)  # coldest mid-January
    anomaly = np.zeros((n_regions, n_days))
    shocks = rng.normal(0.0, 2.2, (n_regions, n_days)) + rng.normal(0.0, 1.2, (1, n_days))  # shared fronts
    for t in range(n_days):
        anomaly[:, t] = (0.75 * anomaly[:, t - 1] if t else 0.0) + shocks[:, t]
    temp = mean + amp * season + anomaly
    wet = rng.random((n_regions, n_days)) < 0.25 + 0.2 * (season + 1) / 2
    precip = np.where(wet, rng.gamma(0.8, rain * (1.2 + season) / 0.45 / 0.8 + 1e-3), 0.0)
    humidity = np.clip(
        55
        + 20 * (rain - 2.5) / 2.5
        + 10 * season
        + 1.5 * np.sqrt(precip)
        + rng.normal(0, 6, (n_regions, n_days)),
        8,
        100,
    )
    wind = rng.gamma(4.0, 3.0, (n_regions, n_days)) * (1 + 0.3 * north)
    aqi = np.clip(
        45
        + north * 60 * np.clip(-season, 0, None) * rng.lognormal(0, 0.5, (n_regions, n_days))
        + rng.normal(0, 10, (n_regions, n_days))
        - wind,
        5,
        500,
    )
    extreme = (np.abs(anomaly) > 6.0) | (precip > 40)
    return {
        "temp_c": temp,
        "anomaly": anomaly,
        "precip_mm": precip,
        "humidity_pct": humidity,
        "wind_kph": wind,
        "aqi": aqi,
        "is_extreme": extreme,
    }


def _draw_products(
    rng: np.random.Generator, tier: w.Tier, start: dt.date, lp: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict]:
    n, n_leaves = tier.n_skus, len(w.LEAVES)
    leaf = rng.choice(n_leaves, n, p=rng.dirichlet(np.full(n_leaves, 8.0)))
    dept = np.array([w.DEPARTMENTS.index(x.department) for x in w.LEAVES])[leaf]
    brand_local = np.minimum(rng.zipf(1.6, n) - 1, 24)
    brand = dept * 25 + brand_local
    brand_labels = tuple(f"{d.name[:4].title()}Co {k + 1:02d}" for d in w.DEPARTMENTS for k in range(25))
    list_price = np.round(lp["price_median"][leaf] * rng.lognormal(0, 0.45, n), 1) - 0.1
    list_price = np.maximum(list_price, 1.9)
    unit_cost = np.round(list_price * rng.uniform(0.42, 0.72, n), 2)
    new = rng.random(n) < 0.15
    launch_t = np.where(new, rng.integers(14, max(tier.n_days - 45, 15), n), -rng.integers(30, 1500, n))
    launch_t[0] = -365  # at least one SKU has full history, even in the tiniest world
    n_wh = tier.n_warehouses
    warehouse = (dept % n_wh) + 1 if n_wh <= len(w.DEPARTMENTS) else rng.integers(1, n_wh + 1, n)
    elasticity = np.minimum(lp["elasticity"][leaf] + rng.normal(0, 0.35, n), -0.3)
    sku = {
        "leaf": leaf,
        "dept": dept,
        "launch_t": launch_t,
        "list_price": list_price,
        "unit_cost": unit_cost,
        "warehouse_id": warehouse.astype(np.int32),
        # Demand is heavy-tailed: a median SKU sells well under one unit a day.
        "base_demand": rng.lognormal(np.log(0.35), 1.25, n),
        "elasticity": elasticity,
        "cross_elasticity": rng.uniform(0.2, 0.6, n) * -elasticity,
        "promo_uplift": np.exp(rng.normal(0.25, 0.1, n)),
        "dispersion": rng.gamma(4.0, 1.0, n) + 0.5,  # negative-binomial shape: lower = burstier
        "app_share": rng.uniform(0.5, 0.8, n),
        "trend_per_year": rng.normal(0.0, 0.25, n),
        "ramp_days": rng.uniform(10, 60, n),
        "lead_time_days": rng.integers(3, 22, n),
        "supplier_id": rng.integers(1, max(n // 40, 5) + 1, n).astype(np.int32),
        "competitor_level": rng.normal(0.0, 0.06, (n, len(w.COMPETITORS))),
        "competitor_carries": rng.random((n, len(w.COMPETITORS))) < 0.75,
    }
    sku["competitor_carries"][np.arange(n), rng.integers(0, len(w.COMPETITORS), n)] = True
    launch_dates = (start - EPOCH).days + launch_t
    products = {
        "sku_id": np.arange(1, n + 1),
        "sku_name": pa.array(
            [
                f"{brand_labels[b]} {w.LEAVES[c].name.replace('_', ' ')} {i + 1}"
                for i, (b, c) in enumerate(zip(brand, leaf, strict=True))
            ]
        ),
        "category_l1": (dept, tuple(d.name for d in w.DEPARTMENTS)),
        "category_l2": (leaf, tuple(x.name for x in w.LEAVES)),
        "brand": (brand, brand_labels),
        "unit_cost": unit_cost,
        "list_price": list_price,
        "launch_date": launch_dates,
        "warehouse_id": sku["warehouse_id"],
    }
    return sku, products


def _draw_customers(rng: np.random.Generator, tier: w.Tier, start: dt.date) -> tuple[dict, dict]:
    n, n_days = tier.n_customers, tier.n_days
    region = rng.choice(len(w.REGIONS), n, p=[r[1] for r in w.REGIONS])
    segment = rng.choice(len(w.SEGMENTS), n, p=[0.3, 0.25, 0.3, 0.15])
    signup_t = np.where(rng.random(n) < 0.75, -rng.integers(1, 2000, n), rng.integers(0, n_days, n))
    churn_t = np.where(segment == w.SEGMENTS.index("churn_risk"), rng.integers(30, n_days + 120, n), 1 << 30)
    churn_t = np.maximum(churn_t, signup_t + 30)
    preferred = (rng.random(n) >= 0.68).astype(np.int64)  # channel index: 0 = app (68%), 1 = web
    activity = rng.lognormal(0, 1.0, n)
    cum = np.empty((len(w.CHANNELS), 2, n))
    for ch in range(len(w.CHANNELS)):
        for promo in (0, 1):
            weight = activity * np.where(preferred == ch, 3.0, 1.0)
            if promo:
                weight = weight * np.select(
                    [segment == 0, segment == 1], [3.0, 0.6], 1.0
                )  # price-sensitive buyers wait for deals
            cum[ch, promo] = np.cumsum(weight) / weight.sum()
    pool = np.flatnonzero((signup_t <= 0) & (churn_t > n_days))
    pool_cum = np.cumsum(activity[pool]) / activity[pool].sum()
    customers = {
        "customer_id": np.arange(1, n + 1),
        "region": (region, tuple(r[0] for r in w.REGIONS)),
        "city_tier": rng.choice(4, n, p=[0.2, 0.3, 0.3, 0.2]) + 1,
        "age_band": (rng.choice(len(w.AGE_BANDS), n, p=[0.18, 0.34, 0.26, 0.14, 0.08]), w.AGE_BANDS),
        "signup_date": (start - EPOCH).days + signup_t,
        "preferred_channel": (preferred, w.CHANNELS),
    }
    cust = {
        "customer_cum": cum,
        "customer_pool": pool,
        "pool_cum": pool_cum,
        "signup_t": signup_t,
        "churn_t": churn_t,
        "segment": segment,
    }
    return customers, cust
