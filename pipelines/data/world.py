"""The simulated e-commerce world: its fixed structure and the causal demand model.

Everything here is pure: constants and functions of arrays. ``generate.py`` draws the random parts
and writes files. The model is documented in ``docs/simulation.md``; the figures it uses are
written to ``data/truth/effects.json`` for every generated world.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tier:
    n_skus: int
    n_customers: int
    n_days: int
    n_warehouses: int


TIERS: dict[str, Tier] = {
    "tiny": Tier(n_skus=60, n_customers=3_000, n_days=366, n_warehouses=2),
    "small": Tier(n_skus=1_000, n_customers=50_000, n_days=731, n_warehouses=3),
    "medium": Tier(n_skus=10_000, n_customers=300_000, n_days=731, n_warehouses=4),
    "large": Tier(n_skus=100_000, n_customers=2_000_000, n_days=731, n_warehouses=6),
}

CHANNELS = ("app", "web")
COMPETITORS = ("rival_a", "rival_b", "rival_c")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
SEGMENTS = ("price_sensitive", "quality_seeking", "loyal", "churn_risk")

# name, population share, mean temperature (degC), seasonal amplitude, rain (mm/day), north (smog)
REGIONS = (
    ("east", 0.28, 17.0, 11.0, 3.6, False),
    ("north", 0.17, 12.5, 15.0, 1.6, True),
    ("south", 0.16, 22.5, 7.0, 5.0, False),
    ("central", 0.13, 17.0, 12.5, 3.4, False),
    ("southwest", 0.12, 16.5, 8.5, 2.8, False),
    ("northeast", 0.08, 5.5, 20.0, 1.6, True),
    ("northwest", 0.06, 9.0, 15.0, 0.9, True),
)


@dataclass(frozen=True)
class Department:
    """A top-level category with its leaf categories and demand characteristics."""

    name: str
    leaves: tuple[str, ...]
    price_median: tuple[float, ...]  # CNY, one per leaf
    elasticity: float  # mean own-price elasticity of the department's SKUs
    weekend_uplift: float  # log-multiplier on Saturdays and Sundays
    yearly_amplitude: tuple[float, ...]  # log-amplitude of the yearly cycle, one per leaf
    yearly_peak_doy: tuple[int, ...]  # day of year of the yearly peak, one per leaf
    temp_effect: tuple[float, ...]  # log-multiplier per degC of temperature anomaly, one per leaf
    rain_effect: float  # log-multiplier per mm of national mean rain
    trend_beta: float  # log-multiplier per unit of the latent social trend
    return_rate: float
    event_weight: tuple[float, float, float, float]  # exponent on 618, 11.11, 12.12, Spring Festival


DEPARTMENTS = (
    Department(
        "electronics",
        ("phones", "laptops", "audio", "smart_home", "accessories"),
        (2400.0, 5200.0, 380.0, 260.0, 59.0),
        -2.1,
        0.15,
        (0.1, 0.15, 0.1, 0.1, 0.05),
        (250, 240, 320, 320, 320),
        (0.0, 0.0, 0.0, 0.0, 0.0),
        0.004,
        0.35,
        0.06,
        (1.2, 1.35, 1.0, 0.4),
    ),
    Department(
        "apparel",
        ("womens_wear", "mens_wear", "shoes", "outerwear", "underwear"),
        (189.0, 219.0, 329.0, 599.0, 69.0),
        -1.8,
        0.25,
        (0.15, 0.15, 0.15, 0.6, 0.05),
        (120, 120, 100, 5, 300),
        (0.004, 0.004, 0.0, -0.03, 0.0),
        0.005,
        0.45,
        0.16,
        (1.0, 1.1, 1.0, 0.6),
    ),
    Department(
        "home",
        ("kitchen", "bedding", "furniture", "storage", "decor"),
        (129.0, 299.0, 1290.0, 79.0, 99.0),
        -1.4,
        0.2,
        (0.1, 0.3, 0.1, 0.1, 0.25),
        (300, 330, 120, 90, 20),
        (0.0, -0.012, 0.0, 0.0, 0.0),
        0.006,
        0.25,
        0.06,
        (0.9, 1.0, 0.9, 1.0),
    ),
    Department(
        "beauty",
        ("skincare", "makeup", "haircare", "fragrance", "personal_care"),
        (259.0, 169.0, 79.0, 489.0, 49.0),
        -1.6,
        0.2,
        (0.1, 0.1, 0.05, 0.2, 0.05),
        (310, 300, 200, 40, 200),
        (0.0, 0.0, 0.0, 0.0, 0.003),
        0.004,
        0.5,
        0.04,
        (1.1, 1.3, 1.0, 0.7),
    ),
    Department(
        "food",
        ("snacks", "beverages", "tea_coffee", "fresh_produce", "grain_oil"),
        (39.0, 29.0, 89.0, 59.0, 69.0),
        -1.1,
        0.1,
        (0.15, 0.45, 0.2, 0.2, 0.05),
        (30, 200, 20, 190, 30),
        (0.0, 0.035, -0.01, 0.008, 0.0),
        0.008,
        0.2,
        0.01,
        (0.7, 0.8, 0.8, 1.6),
    ),
    Department(
        "baby",
        ("diapers", "formula", "toys", "kids_wear", "strollers"),
        (129.0, 239.0, 149.0, 119.0, 899.0),
        -1.2,
        0.15,
        (0.02, 0.02, 0.35, 0.2, 0.1),
        (180, 180, 150, 250, 100),
        (0.0, 0.0, 0.0, -0.006, 0.0),
        0.003,
        0.25,
        0.05,
        (1.0, 1.1, 0.9, 0.9),
    ),
    Department(
        "sports",
        ("fitness", "cycling", "camping", "sportswear", "swim"),
        (199.0, 1299.0, 399.0, 249.0, 129.0),
        -1.5,
        0.3,
        (0.2, 0.35, 0.5, 0.2, 0.8),
        (10, 140, 160, 120, 190),
        (0.0, 0.012, 0.015, 0.004, 0.05),
        -0.02,
        0.4,
        0.08,
        (1.1, 1.0, 0.9, 0.5),
    ),
    Department(
        "books",
        ("books", "stationery", "board_games", "music", "magazines"),
        (49.0, 29.0, 159.0, 89.0, 19.0),
        -1.3,
        0.25,
        (0.2, 0.45, 0.3, 0.1, 0.05),
        (240, 240, 30, 300, 180),
        (0.0, 0.0, -0.005, 0.0, 0.0),
        0.01,
        0.3,
        0.02,
        (0.9, 1.0, 0.9, 0.7),
    ),
)

EVENTS = ("618", "double_11", "double_12", "spring_festival")

# Spring Festival (lunar new year's day); the calendar needs one per simulated year.
SPRING_FESTIVAL = {
    2020: dt.date(2020, 1, 25),
    2021: dt.date(2021, 2, 12),
    2022: dt.date(2022, 2, 1),
    2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
    2028: dt.date(2028, 1, 26),
    2029: dt.date(2029, 2, 13),
    2030: dt.date(2030, 2, 3),
}


@dataclass(frozen=True)
class Leaf:
    department: Department
    index: int  # position within the department

    @property
    def name(self) -> str:
        return self.department.leaves[self.index]


LEAVES = tuple(Leaf(d, i) for d in DEPARTMENTS for i in range(len(d.leaves)))


def dates_of(start: dt.date, n_days: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n_days)]


def event_log_effects(start: dt.date, n_days: int) -> np.ndarray:
    """Log-multipliers of the shopping calendar, shape (len(EVENTS), n_days), before category weights.

    618 and Singles' Day build up over a pre-sale and dip after the peak; the Spring Festival
    brings a gift-shopping surge, then a logistics shutdown around the holiday.
    """
    out = np.zeros((len(EVENTS), n_days))
    for t, day in enumerate(dates_of(start, n_days)):
        md = (day.month, day.day)
        if (6, 1) <= md <= (6, 17):
            out[0, t] = 0.25
        elif md == (6, 18):
            out[0, t] = 1.0
        elif (6, 19) <= md <= (6, 21):
            out[0, t] = -0.15
        if (10, 24) <= md <= (11, 10):
            out[1, t] = 0.2
        elif md == (11, 11):
            out[1, t] = 1.6
        elif (11, 12) <= md <= (11, 14):
            out[1, t] = -0.25
        if (12, 10) <= md <= (12, 11):
            out[2, t] = 0.15
        elif md == (12, 12):
            out[2, t] = 0.8
        delta = _days_from_spring_festival(day)
        if -21 <= delta <= -8:
            out[3, t] = 0.3
        elif -7 <= delta <= 6:
            out[3, t] = -0.6
        elif 7 <= delta <= 14:
            out[3, t] = -0.1
    return out


def _days_from_spring_festival(day: dt.date) -> int:
    years = (day.year, day.year + 1)
    if any(y not in SPRING_FESTIVAL for y in years):
        known = f"{min(SPRING_FESTIVAL)}-{max(SPRING_FESTIVAL) - 1}"
        raise ValueError(f"no Spring Festival date known around {day}; simulated dates must lie in {known}")
    return min(((day - SPRING_FESTIVAL[y]).days for y in years), key=abs)


def calendar_multiplier(leaf_event_weights: np.ndarray, event_effects: np.ndarray) -> np.ndarray:
    """Multiplier per (leaf, day) from event effects weighted per leaf: exp(weights @ effects)."""
    return np.exp(leaf_event_weights @ event_effects)


def seasonal_multiplier(
    weekend_uplift: np.ndarray,
    yearly_amplitude: np.ndarray,
    yearly_peak_doy: np.ndarray,
    day_of_week: np.ndarray,
    day_of_year: np.ndarray,
) -> np.ndarray:
    """Weekly and yearly seasonality per (leaf, day); Saturday and Sunday get the weekend uplift."""
    weekly = np.array([-0.06, -0.08, -0.05, 0.0, 0.05, 1.0, 0.85])[day_of_week]
    yearly = np.cos(2 * np.pi * (day_of_year[None, :] - yearly_peak_doy[:, None]) / 365.25)
    return np.exp(weekend_uplift[:, None] * weekly[None, :] + yearly_amplitude[:, None] * yearly)


def expected_demand(
    base: np.ndarray,
    *,
    price: np.ndarray,
    reference_price: np.ndarray,
    elasticity: np.ndarray,
    competitor_price: np.ndarray,
    cross_elasticity: np.ndarray,
    promo_active: np.ndarray,
    promo_uplift: np.ndarray,
    context: np.ndarray,
) -> np.ndarray:
    """Expected daily demand: the causal model's price, competitor and promotion terms on a base.

    ``context`` carries the multiplicative terms that do not depend on our decisions
    (seasonality, calendar, weather, social trend, product ramp-up and trend). Own price enters
    as a constant-elasticity term against the reference price; a competitor priced below us
    takes demand through the cross elasticity; a promotion adds a display uplift on top of its
    price cut. Arrays broadcast.
    """
    own = (price / reference_price) ** elasticity
    cross = np.where(np.isfinite(competitor_price), competitor_price / price, 1.0) ** cross_elasticity
    promo = np.where(promo_active, promo_uplift, 1.0)
    return base * context * own * cross * promo


def ramp_up(days_since_launch: np.ndarray, ramp_days: np.ndarray) -> np.ndarray:
    """New-product ramp-up: 0 before launch, rising to 1 with time constant ``ramp_days``."""
    age = np.maximum(days_since_launch, 0)
    return np.where(days_since_launch < 0, 0.0, 1.0 - np.exp(-(age + 1) / ramp_days))
