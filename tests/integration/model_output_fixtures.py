"""A tiny warehouse with model outputs: ``forecasts.*`` as scoring writes them, ``pricing.*`` as the
innovation stage writes them, and the marts the model-output marts read (``build_marts.dim_products``,
``build_marts.mart_demand_features``, ``build_marts.fct_prices_daily``).

Actual units, forecast errors, our prices and the rivals' are simple functions of the SKU and day,
so a test can work out the figures it expects from the same functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

LAST_DAY = dt.date(2024, 11, 15)  # the last day with actual units
HORIZON = 28
SKUS = (1, 2, 3, 4, 5, 6)
HISTORY_DAYS = 60  # days of actual units up to LAST_DAY
BAND = 3.0  # p10 = p50 - BAND, p90 = p50 + BAND

FORECAST_COLUMNS = (
    "run_date date, sku_id bigint, target_date date, p10 double, p50 double, p90 double, mean double, "
    "model_name varchar, model_version varchar, scored_at timestamp"
)
PLAN_COLUMNS = (
    "run_date date, sku_id bigint, lead_time_days double, lead_time_sd_days double, "
    "review_period_days integer, protection_days integer, expected_demand double, demand_sd double, "
    "safety_stock double, reorder_point double, order_up_to double, on_hand double, on_order double, "
    "inventory_position double, order_quantity bigint, service_level double, model_version varchar, "
    "planned_at timestamp"
)


def actual_units(sku: int, day: dt.date) -> int:
    """Units SKU ``sku`` sold on ``day`` (every day up to LAST_DAY)."""
    return sku + day.day % 4


def no_error(_sku: int, _day: dt.date) -> float:
    return 0.0


def run_dates(n: int = 21, last: dt.date = LAST_DAY) -> list[dt.date]:
    """``n`` consecutive daily run dates ending on ``last``."""
    return [last - dt.timedelta(days=n - 1 - i) for i in range(n)]


def order_quantity(sku: int, run_date: dt.date) -> int:
    return (sku * 7 + run_date.day) % 30 if sku % 3 else 0


def write_input_marts(con: duckdb.DuckDBPyConnection, skus: Sequence[int] = SKUS) -> None:
    """``build_marts.dim_products``, ``build_marts.mart_demand_features`` and
    ``build_marts.fct_prices_daily`` for ``skus``."""
    con.execute("create schema if not exists build_marts")
    con.execute(
        """create or replace table build_marts.dim_products as
        select sku_id, 'SKU-' || sku_id as sku_code, 'SKU <' || sku_id || '>' as sku_name,
            case when sku_id % 2 = 0 then 'home' else 'beauty' end as category_l1,
            'leaf' as category_l2, 'Acme' as brand, 1 as warehouse_id, 7 as supplier_id,
            cast(2.5 * sku_id as double) as unit_cost, cast(4.0 * sku_id as double) as list_price
        from unnest(?) as t(sku_id)""",
        [list(skus)],
    )
    days = [LAST_DAY - dt.timedelta(days=i) for i in range(HISTORY_DAYS)]
    con.execute(
        "create or replace table build_marts.mart_demand_features (date date, sku_id bigint, units bigint)"
    )
    con.executemany(
        "insert into build_marts.mart_demand_features values (?, ?, ?)",
        [(day, sku, actual_units(sku, day)) for day in days for sku in skus],
    )
    write_price_marts(con, skus)


def write_forecasts(
    con: duckdb.DuckDBPyConnection,
    dates: Sequence[dt.date],
    *,
    skus: Sequence[int] = SKUS,
    error: Callable[[int, dt.date], float] = no_error,
    model_version: str = "1",
    with_model_name: bool = True,
) -> None:
    """``forecasts.demand_forecast`` for ``dates``: p50 = actual + error (the actual pattern continued
    past LAST_DAY), a band of +-BAND around it; each run date's rows replaced as scoring does."""
    columns = FORECAST_COLUMNS if with_model_name else FORECAST_COLUMNS.replace("model_name varchar, ", "")
    con.execute("create schema if not exists forecasts")
    con.execute(f"create table if not exists forecasts.demand_forecast ({columns})")
    rows = []
    for run_date in dates:
        for sku in skus:
            for h in range(1, HORIZON + 1):
                target = run_date + dt.timedelta(days=h)
                p50 = actual_units(sku, target) + error(sku, target)
                named = ("demand_forecaster",) if with_model_name else ()
                rows.append(
                    (run_date, sku, target, p50 - BAND, p50, p50 + BAND, p50, *named, model_version,
                     dt.datetime(2024, 11, 16, 3))
                )  # fmt: skip
    con.executemany("delete from forecasts.demand_forecast where run_date = ?", [(d,) for d in dates])
    con.executemany(f"insert into forecasts.demand_forecast values ({', '.join('?' * len(rows[0]))})", rows)


def write_plans(con: duckdb.DuckDBPyConnection, dates: Sequence[dt.date], skus: Sequence[int] = SKUS) -> None:
    """``forecasts.replenishment_plan`` for ``dates`` (without model_name, as written before it)."""
    con.execute("create schema if not exists forecasts")
    con.execute(f"create table if not exists forecasts.replenishment_plan ({PLAN_COLUMNS})")
    con.executemany("delete from forecasts.replenishment_plan where run_date = ?", [(d,) for d in dates])
    con.executemany(
        "insert into forecasts.replenishment_plan values "
        "(?, ?, 5.0, 1.0, 7, 12, ?, 4.0, 6.6, ?, ?, 20.0, 0.0, 20.0, ?, 0.95, '1', ?)",
        [
            (d, sku, 12.0 * sku, 12.0 * sku + 6.6, 19.0 * sku + 6.6, order_quantity(sku, d),
             dt.datetime(2024, 11, 16, 3))
            for d in dates
            for sku in skus
        ],
    )  # fmt: skip


def make_model_output_warehouse(
    path: Path, dates: Sequence[dt.date] | None = None, **forecast_options
) -> None:
    """The input marts, forecasts for ``dates`` (default: run_dates()) and plans for the last of them."""
    dates = list(dates or run_dates())
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        write_input_marts(con)
        write_forecasts(con, dates, **forecast_options)
        write_plans(con, dates[-3:])


# Pricing outputs (schema ``pricing``): our price, the rivals' and the optimiser's moves are functions
# of the SKU, day and crawl, so a test can compute the marts' figures from them.
ELASTICITY_COLUMNS = (
    "run_date date, sku_id bigint, own_elasticity double, own_elasticity_low double, "
    "own_elasticity_high double, cross_elasticity double, identified boolean, n_days bigint, "
    "price_variation double, category varchar, model_name varchar, model_version varchar, "
    "scored_at timestamp"
)
OBSERVATION_COLUMNS = (
    "run_date date, crawl_id varchar, competitor varchar, sku_id bigint, sku_code varchar, "
    "price double, observed_at timestamp, method varchar, ocr_confidence double, url varchar"
)
DECISION_COLUMNS = (
    "run_date date, step_at timestamp, sku_id bigint, current_price double, new_price double, "
    "price_change_pct double, list_price double, unit_cost double, competitor_min_price double, "
    "competitor_observed_at timestamp, competitor_age_minutes double, expected_units double, "
    "expected_revenue double, expected_profit double, at_or_below_rival boolean, binding varchar, "
    "objective varchar, model_version varchar, published_at timestamp"
)
REPLAY_COLUMNS = (
    "run_date date, policy varchar, seed integer, revenue double, gross_profit double, "
    "gross_margin_pct double, price_advantage_share double, turnover double, stockout_share double, "
    "price_changes_per_sku_day double, mean_abs_change_pct double, model_version varchar"
)
COMPETITORS = ("rival_a", "rival_b")
CRAWL_HOURS = (8, 12, 16)  # rival_a cuts its price at the midday crawl and restores it after
# The cheapest rival against our price, by SKU: SKU 1 and 3 keep the price advantage (3 to the cent).
RIVAL_FACTOR = {1: 1.10, 2: 0.95, 3: 1.0, 4: 0.90, 5: 1.20, 6: 1.05}
NOT_IDENTIFIED = (6,)  # its own price barely varied
BINDINGS = ("none", "price_advantage", "max_change", "margin_floor", "none", "ladder_edge")
POLICY_REVENUE = {"static": 1000.0, "rule": 1100.0, "ai": 1250.0, "oracle": 1300.0}
POLICY_MARGIN = {"static": 20.0, "rule": 19.0, "ai": 23.0, "oracle": 24.0}
SEEDS = (1, 2, 3, 4, 5)


def own_price(sku: int, day: dt.date) -> float:
    """Our effective price of ``sku`` on ``day`` (build_marts.fct_prices_daily)."""
    return round(4.0 * sku - 0.1 * (day.day % 3), 2)


def rival_price(competitor: str, sku: int, day: dt.date, hour: int) -> float:
    """``competitor``'s price of ``sku`` read at ``hour`` on ``day``; rival_b is 5% dearer."""
    price = own_price(sku, day) * RIVAL_FACTOR[sku] * (1.05 if competitor == "rival_b" else 1.0)
    if competitor == "rival_a" and hour == 12:
        price *= 0.98
    return round(price, 2)


def own_elasticity(sku: int, run_date: dt.date) -> float:
    """The scored own-price elasticity of ``sku`` for ``run_date`` (a later run scores differently)."""
    return -(1.0 + sku / 10) - run_date.day / 100


def price_change_pct(sku: int, step: int) -> float:
    """The optimiser's move of ``sku`` at the ``step``-th step of a day, in percent (0: no move)."""
    return [0.0, 2.0, -3.0, 5.0, -1.5, 0.0][(sku + step) % 6]


def replay_value(kpi: str, policy: str, seed: int) -> float:
    """The replay's ``kpi`` for ``policy`` and ``seed``: a policy level and a seed's wobble."""
    wobble = (seed % 3 - 1) * (1.0 + seed / 10)
    base = {
        "revenue": POLICY_REVENUE[policy] + 10 * wobble,
        "gross_profit": POLICY_REVENUE[policy] * POLICY_MARGIN[policy] / 100 + wobble,
        "gross_margin_pct": POLICY_MARGIN[policy] + 0.2 * wobble,
        "price_advantage_share": {"static": 0.5, "rule": 0.9, "ai": 0.85, "oracle": 0.8}[policy]
        + 0.01 * wobble,
        "turnover": {"static": 8.0, "rule": 8.5, "ai": 9.6, "oracle": 10.0}[policy] + 0.1 * wobble,
        "stockout_share": 0.05 + 0.002 * wobble,
        "price_changes_per_sku_day": 0.0 if policy == "static" else 1.5 + 0.1 * seed,
        "mean_abs_change_pct": 0.0 if policy == "static" else 3.0 + 0.1 * seed,
    }
    return base[kpi]


def write_price_marts(con: duckdb.DuckDBPyConnection, skus: Sequence[int] = SKUS) -> None:
    """``build_marts.fct_prices_daily`` with :func:`own_price` for the HISTORY_DAYS up to LAST_DAY."""
    con.execute("create schema if not exists build_marts")
    con.execute(
        "create or replace table build_marts.fct_prices_daily (date date, sku_id bigint, "
        "shelf_price double, effective_price double, is_promo boolean)"
    )
    days = [LAST_DAY - dt.timedelta(days=i) for i in range(HISTORY_DAYS)]
    con.executemany(
        "insert into build_marts.fct_prices_daily values (?, ?, ?, ?, false)",
        [(day, sku, own_price(sku, day), own_price(sku, day)) for day in days for sku in skus],
    )


def _replace(con: duckdb.DuckDBPyConnection, table: str, columns: str, rows: list[tuple], dates) -> None:
    con.execute("create schema if not exists pricing")
    con.execute(f"create table if not exists pricing.{table} ({columns})")
    con.executemany(f"delete from pricing.{table} where run_date = ?", [(d,) for d in dates])
    if rows:
        con.executemany(f"insert into pricing.{table} values ({', '.join('?' * len(rows[0]))})", rows)


def write_elasticities(
    con: duckdb.DuckDBPyConnection,
    dates: Sequence[dt.date],
    skus: Sequence[int] = SKUS,
    model_version: str = "1",
) -> None:
    """``pricing.price_elasticity`` for ``dates``: :func:`own_elasticity` +- 0.3; SKU 5 has no rival."""
    rows = [
        (d, sku, own_elasticity(sku, d), own_elasticity(sku, d) - 0.3, own_elasticity(sku, d) + 0.3,
         None if sku == 5 else 0.4, sku not in NOT_IDENTIFIED, 300, 0.001 if sku in NOT_IDENTIFIED else 0.08,
         "home" if sku % 2 == 0 else "beauty", "price_elasticity", model_version,
         dt.datetime(d.year, d.month, d.day, 2))
        for d in dates
        for sku in skus
    ]  # fmt: skip
    _replace(con, "price_elasticity", ELASTICITY_COLUMNS, rows, dates)


def write_observations(
    con: duckdb.DuckDBPyConnection, dates: Sequence[dt.date], skus: Sequence[int] = SKUS
) -> None:
    """``pricing.competitor_observations``: every rival and SKU at each CRAWL_HOURS crawl of ``dates``.

    rival_b's midday prices are image prices (ocr) and its last crawl answers 304 (not_modified,
    the same price); one extra row per crawl reads no price and is left out of the marts.
    """
    rows = []
    for d in dates:
        for hour in CRAWL_HOURS:
            crawl = f"{d}T{hour:02d}"
            at = dt.datetime(d.year, d.month, d.day, hour)
            for competitor in COMPETITORS:
                method = "html"
                if competitor == "rival_b":
                    method = {12: "ocr", 16: "not_modified"}.get(hour, "html")
                for sku in skus:
                    rows.append(
                        (d, crawl, competitor, sku, f"SKU-{sku}", rival_price(competitor, sku, d, hour), at,
                         method, 91.0 if method == "ocr" else None, f"http://127.0.0.1/{competitor}/{sku}")
                    )  # fmt: skip
            rows.append((d, crawl, "rival_c", skus[0], None, None, at, "html", None, "http://127.0.0.1/c"))
    _replace(con, "competitor_observations", OBSERVATION_COLUMNS, rows, dates)


def write_decisions(
    con: duckdb.DuckDBPyConnection, dates: Sequence[dt.date], steps: int = 3, skus: Sequence[int] = SKUS
) -> None:
    """``pricing.price_decisions``: ``steps`` steps 20 minutes apart from 09:00 on each of ``dates``,
    moving each SKU by :func:`price_change_pct` from our price of the day, bound by BINDINGS."""
    rows = []
    for d in dates:
        for step in range(steps):
            at = dt.datetime(d.year, d.month, d.day, 9) + dt.timedelta(minutes=20 * step)
            for sku in skus:
                current = own_price(sku, d)
                change = price_change_pct(sku, step)
                new = round(current * (1 + change / 100), 2)
                rival = rival_price("rival_a", sku, d, 8)
                rows.append(
                    (d, at, sku, current, new, change, 4.0 * sku, 2.5 * sku, rival,
                     at - dt.timedelta(minutes=5), 5.0, 10.0, 10.0 * new, 10.0 * (new - 2.5 * sku),
                     new <= rival, BINDINGS[sku % len(BINDINGS)], "profit", "1",
                     at + dt.timedelta(seconds=30))
                )  # fmt: skip
    _replace(con, "price_decisions", DECISION_COLUMNS, rows, dates)


def write_replay(
    con: duckdb.DuckDBPyConnection,
    run_date: dt.date,
    policies: Sequence[str] = tuple(POLICY_REVENUE),
    seeds: Sequence[int] = SEEDS,
) -> None:
    """``pricing.replay_kpis`` for ``run_date``: :func:`replay_value` per policy and seed."""
    kpis = REPLAY_COLUMNS.split(", ")[3:-1]
    rows = [
        (run_date, policy, seed, *(replay_value(k.split()[0], policy, seed) for k in kpis), "1")
        for policy in policies
        for seed in seeds
    ]
    _replace(con, "replay_kpis", REPLAY_COLUMNS, rows, [run_date])


def write_pricing_outputs(con: duckdb.DuckDBPyConnection, last: dt.date = LAST_DAY) -> None:
    """Every pricing output: elasticities of three weekly runs up to ``last``, rival prices and
    decisions of its last three days, and a replay for ``last``."""
    write_elasticities(con, [last - dt.timedelta(days=14), last - dt.timedelta(days=7), last])
    write_observations(con, run_dates(3, last))
    write_decisions(con, run_dates(3, last))
    write_replay(con, last)
