"""The stocking policies' formulas, on arrays: pure functions, no I/O."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

MAX_LEAD_DAYS = 90


def _protection_days(lead_mean: np.ndarray, review_days: int) -> np.ndarray:
    return (np.ceil(np.clip(lead_mean, 0, MAX_LEAD_DAYS)) + review_days).astype(np.int64)


def _extend(daily: np.ndarray, days: int) -> np.ndarray:
    """Pad (S, D) daily values to ``days`` columns with each row's mean (forecasts past the horizon)."""
    if daily.shape[1] >= days:
        return daily[:, :days]
    fill = np.repeat(daily.mean(axis=1, keepdims=True), days - daily.shape[1], axis=1)
    return np.concatenate([daily, fill], axis=1)


def quantile_policy(
    mean_daily: np.ndarray,
    sigma_daily: np.ndarray,
    lead_mean: np.ndarray,
    lead_sd: np.ndarray,
    *,
    review_days: int,
    service_level: float,
) -> dict[str, np.ndarray]:
    """Safety stock, reorder point and order-up-to level from daily forecast means and spreads.

    Args:
        mean_daily: (S, D) expected units per day, from the first day after the decision.
        sigma_daily: (S, D) standard deviation of each day's units (from the quantile spread).
        lead_mean, lead_sd: (S,) lead time mean and standard deviation in days.
        review_days: Days between reviews.
        service_level: Target probability of no stock-out over a protection period.
    """
    z = NormalDist().inv_cdf(service_level)
    protection = _protection_days(lead_mean, review_days)
    horizon = int(protection.max()) + review_days
    mean = _extend(mean_daily, horizon)
    var = _extend(sigma_daily**2, horizon)
    days = np.arange(horizon)[None, :]
    in_p = days < protection[:, None]
    in_next = (days >= protection[:, None]) & (days < protection[:, None] + review_days)
    mu_p = (mean * in_p).sum(axis=1)
    rate = mu_p / protection
    sigma_p = np.sqrt((var * in_p).sum(axis=1) + (rate * lead_sd) ** 2)
    safety = z * sigma_p
    reorder = mu_p + safety
    return {
        "protection_days": protection,
        "expected_demand": mu_p,
        "demand_sd": sigma_p,
        "safety_stock": safety,
        "reorder_point": reorder,
        "order_up_to": reorder + (mean * in_next).sum(axis=1),
    }


def traditional_policy(
    rate: np.ndarray, lead_mean: np.ndarray, *, review_days: int, safety_days: float
) -> dict[str, np.ndarray]:
    """The planners' rule: moving-average rate ``m``, ``SS = safety_days * m``, ``s = m * P + SS``."""
    protection = _protection_days(lead_mean, review_days)
    safety = safety_days * rate
    reorder = rate * protection + safety
    return {
        "protection_days": protection,
        "expected_demand": rate * protection,
        "demand_sd": np.full_like(rate, np.nan),
        "safety_stock": safety,
        "reorder_point": reorder,
        "order_up_to": reorder + rate * review_days,
    }


def sigma_from_quantiles(p50: np.ndarray, upper: np.ndarray, level: float) -> np.ndarray:
    """Standard deviation implied by the distance from the median to an upper quantile."""
    return np.clip(upper - p50, 0.0, None) / NormalDist().inv_cdf(level)


def order_quantity(levels: dict[str, np.ndarray], position: np.ndarray) -> np.ndarray:
    """Units to order at a review: up to S when the inventory position is below s, else 0."""
    need = np.where(position < levels["reorder_point"], levels["order_up_to"] - position, 0.0)
    return np.ceil(np.clip(need, 0.0, None) - 1e-9).astype(np.int64)
