"""Replenishment, forecasting's decision step: order quantities from forecast quantiles.

Policy: periodic review every ``R = review_period_days`` with a reorder point ``s`` and an
order-up-to level ``S`` (an (R, s, S) policy), per SKU:

- lead time ``L`` (days): mean and standard deviation ``sd_L`` of ``received_date - order_date``
  over the SKU's received purchase orders (``raw.purchase_orders``, deduplicated on ``po_id``);
  SKUs with fewer than two receipts take the pooled coefficient of variation, SKUs with none
  ``marts.dim_products.mean_lead_time_days`` or the median over SKUs.
- protection period ``P = ceil(L) + R`` days: what an order placed now must cover until the order
  after it can arrive.
- expected demand ``mu_P = sum of the forecast mean over the first P days`` (the model's mean
  output; the sum of daily medians understates demand for slow movers, whose median day is 0).
- daily uncertainty from the quantile spread: ``sigma_d = (p90_d - p50_d) / z(0.9)`` (the upper
  quantile: stock-outs live in the right tail), ``sigma_P = sqrt(sum_d sigma_d^2 + (mu_P / P)^2 sd_L^2)``.
- safety stock ``SS = z(service_level) * sigma_P``; reorder point ``s = mu_P + SS``; order-up-to
  ``S = s + expected demand over one review period``.
- at a review, inventory position ``IP = on_hand + on_order``; order ``ceil(S - IP)`` when ``IP < s``.

The traditional policy the planners use: the mean of the last ``traditional_moving_average_days``
(28) days of units as the daily rate ``m``, ``SS = traditional_safety_days * m``, ``s = m * P + SS``,
``S = s + m * R``.

:func:`plan_replenishment` writes ``forecasts.replenishment_plan`` for a run date from the scored
``forecasts.demand_forecast``. :func:`simulate_policies` replays both policies over held-out history.

- :mod:`~pipelines.replenishment.policy`: the formulas on arrays.
- :mod:`~pipelines.replenishment.plan`: the day's plan from the warehouse.
- :mod:`~pipelines.replenishment.replay`: both policies replayed over held-out history.
"""

from pipelines.replenishment.plan import (
    PLAN_COLUMNS,
    PLAN_TABLE,
    ReplenishmentError,
    ReplenishmentResult,
    lead_times,
    plan_replenishment,
)
from pipelines.replenishment.policy import (
    order_quantity,
    quantile_policy,
    sigma_from_quantiles,
    traditional_policy,
)
from pipelines.replenishment.replay import SimulationResult, simulate_policies

__all__ = [
    "PLAN_COLUMNS",
    "PLAN_TABLE",
    "ReplenishmentError",
    "ReplenishmentResult",
    "SimulationResult",
    "lead_times",
    "order_quantity",
    "plan_replenishment",
    "quantile_policy",
    "sigma_from_quantiles",
    "simulate_policies",
    "traditional_policy",
]
