"""The forecaster on a retailer's own data: week starts, missing periods, plans, user errors.

Frames are built here: one row per SKU per week dated on Thursdays (Dominick's-style scanner weeks),
with missing weeks, or daily rows aggregated into Thursday weeks.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipelines.forecast.baselines import XGBoostForecaster, mase_denominators, moving_average, seasonal_naive
from pipelines.forecast.datamodule import DemandDataModule
from pipelines.forecast.evaluate import backtest, fold_origins
from pipelines.forecast.features import (
    FEATURE_GROUPS,
    STANDARDISED_FEATURES,
    ForecastDataError,
    aggregate_weekly,
    feature_groups_off,
    last_complete_period,
    period_start,
    prepare_features,
    prepare_history,
)
from pipelines.forecast.network import DemandNetwork
from pipelines.forecast.panel import FeatureStats, Panel, build_panel, gather_windows
from pipelines.forecast.train import TrainedForecaster
from pipelines.ml.family import FamilyDataError

THURSDAY = 3
WEEK0 = dt.date(2024, 1, 4)  # a Thursday


def weekly(
    weeks: int = 40,
    skus: tuple[int, ...] = (1, 2, 3),
    *,
    missing: frozenset[tuple[int, int]] = frozenset(),
    null_units: frozenset[tuple[int, int]] = frozenset(),
) -> pl.DataFrame:
    """One row per SKU per Thursday week; ``missing`` (sku, week) pairs have no row, ``null_units`` null."""
    rows = []
    for sku in skus:
        for k in range(weeks):
            if (sku, k) in missing:
                continue
            promo = k % 5 == 0
            rows.append(
                {
                    "date": WEEK0 + dt.timedelta(weeks=k),
                    "sku_id": sku,
                    "units": None if (sku, k) in null_units else float(20 + 3 * sku + 4 * (k % 4)),
                    "shelf_price": 10.0,
                    "effective_price": 8.0 if promo else 10.0,
                    "is_promo": promo,
                    "list_price": 10.0,
                    "category_l1": "grocery",
                }
            )
    return pl.DataFrame(rows, schema_overrides={"units": pl.Float64})


def params(**update: object):
    from pipelines.config import ForecastParams

    base = {
        "grain": "weekly",
        "week_start": THURSDAY,
        "lookback": 8,
        "horizon": 4,
        "holdout_days": 28,
        "backtest_folds": 2,
        "epochs": 1,
        "batch_size": 64,
        "max_train_windows": 1000,
        "xgboost_rounds": 5,
        "xgboost_max_rows": 1000,
    }
    return ForecastParams(**(base | update))


def untrained(
    grain: str = "weekly", week_start: int = THURSDAY, horizon: int = 4, lookback: int = 8
) -> TrainedForecaster:
    """A forecaster with a fresh network: enough to see which periods and inputs it reads."""
    import torch

    torch.manual_seed(0)
    stats = FeatureStats(
        grain=grain,  # type: ignore[arg-type]
        lookback=lookback,
        horizon=horizon,
        means=[0.0] * len(STANDARDISED_FEATURES),
        stds=[1.0] * len(STANDARDISED_FEATURES),
        categories=["grocery"],
        week_start=week_start,
    )
    config = {
        "n_past": stats.n_past_inputs,
        "n_known": stats.n_known_free,
        "n_static": stats.n_static,
        "horizon": horizon,
        "n_quantiles": 3,
        "hidden_sizes": (8, 4),
    }
    network = DemandNetwork(**config).eval()  # type: ignore[arg-type]
    return TrainedForecaster(network=network, stats=stats, quantiles=(0.1, 0.5, 0.9), network_config=config)


# ------------------------------------------------------------------------------------- week start


def test_weeks_start_on_the_configured_weekday() -> None:
    wednesday = dt.date(2024, 1, 10)
    assert period_start(wednesday, "weekly", THURSDAY) == dt.date(2024, 1, 4)
    assert period_start(wednesday, "weekly") == dt.date(2024, 1, 8)  # Monday by default
    # the Thursday week 4-10 January ends on Wednesday the 10th
    assert last_complete_period(wednesday, "weekly", THURSDAY) == dt.date(2024, 1, 4)
    assert last_complete_period(dt.date(2024, 1, 9), "weekly", THURSDAY) == dt.date(2023, 12, 28)


def test_daily_rows_aggregate_into_weeks_that_start_on_thursday() -> None:
    days = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(23)]  # Tue 2 .. Wed 24
    daily = pl.DataFrame(
        {"date": days, "sku_id": 1, "units": 1.0, "is_promo": [d.weekday() == 4 for d in days]}
    )
    out = aggregate_weekly(prepare_features(daily), THURSDAY)
    # the partial week before Thursday the 4th is dropped
    assert out["date"].to_list() == [dt.date(2024, 1, 4), dt.date(2024, 1, 11), dt.date(2024, 1, 18)]
    assert out["units"].to_list() == [7.0, 7.0, 7.0]
    assert out["is_promo"].to_list() == pytest.approx([1 / 7] * 3)


def test_weekly_rows_on_the_week_start_map_to_themselves() -> None:
    rows = weekly(weeks=6, skus=(1,))
    out = prepare_features(rows, "weekly", THURSDAY)
    assert out["date"].to_list() == rows["date"].to_list()
    assert out["units"].to_list() == rows["units"].to_list()
    assert out["is_promo"].to_list() == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_a_weekly_model_forecasts_the_weeks_after_the_last_weekly_row() -> None:
    rows = weekly(weeks=12)
    last = rows["date"].max()
    model = untrained()
    expected = [last + dt.timedelta(weeks=k) for k in range(1, 5)]
    for origin in (None, last, last + dt.timedelta(days=6)):  # the row's week is known all through it
        out = model.predict(rows, origin=origin)
        assert out["target_date"].unique().sort().to_list() == expected
        assert out["sku_id"].n_unique() == 3
    # mid-way through the next week, its row not yet landed: still forecast from the last row
    assert model.predict(rows, origin=last + dt.timedelta(days=10))["target_date"].min() == expected[0]
    # once that week has ended without a row, it is a missing week and the forecast starts after it
    after = model.predict(rows, origin=last + dt.timedelta(days=13))
    assert after["target_date"].min() == expected[1] and after["sku_id"].n_unique() == 3
    # over daily rows, a Thursday week is known once its Wednesday has passed
    days = [WEEK0 + dt.timedelta(days=i) for i in range(7 * 12)]
    daily = pl.DataFrame({"date": days, "sku_id": 1, "units": 3.0})
    wednesday = days[-1]
    out = model.predict(daily, origin=wednesday - dt.timedelta(days=1))
    assert out["target_date"].min() == wednesday - dt.timedelta(days=6)  # the week not yet complete
    out = model.predict(daily, origin=wednesday)
    assert out["target_date"].min() == wednesday + dt.timedelta(days=1)


def test_weekly_rows_need_a_weekly_grain_and_their_own_week_start() -> None:
    rows = weekly(weeks=6)
    with pytest.raises(
        FamilyDataError,
        match=r"one row per SKU per week .* thursday.*forecast.grain is daily.*"
        r"Set land.grain: weekly and forecast.grain: weekly",
    ):
        prepare_features(rows, "daily")
    with pytest.raises(
        ForecastDataError,
        match=r"dated on thursdays, but weeks start on monday "
        r"\(land.week_start, or the model's when scoring\): set land.week_start: thursday and train again",
    ):
        prepare_features(rows, "weekly", 0)


# ------------------------------------------------------------------------------- missing periods


def test_missing_weeks_are_unobserved_not_zero() -> None:
    rows = weekly(weeks=12, missing=frozenset({(1, 9)}), null_units=frozenset({(2, 10)}))
    panel = build_panel(prepare_history(rows, "weekly", THURSDAY), "weekly")
    assert panel.n_periods == 12
    assert not panel.observed[0, 9] and not panel.observed[1, 10]
    assert panel.observed[0, 8] and panel.observed[2].all()
    # a day without units makes its week missing, not a six-day week
    days = [WEEK0 + dt.timedelta(days=i) for i in range(21)]
    daily = pl.DataFrame(
        {"date": days, "sku_id": 1, "units": [None if i == 9 else 1.0 for i in range(21)]},
        schema_overrides={"units": pl.Float64},
    )
    out = prepare_history(daily, "weekly", THURSDAY)
    assert out["units"].to_list() == [7.0, None, 7.0]


def _with_gap_units(panel: Panel, value: float) -> Panel:
    """The same panel with ``value`` written into every unobserved period's units."""
    units = np.where(panel.observed, panel.units, value).astype(np.float32)
    return Panel(**{**panel.__dict__, "units": units})


def test_nothing_reads_the_units_of_a_missing_period() -> None:
    """Loss targets, inputs, baselines, XGBoost and MASE give the same whatever a gap's units hold."""
    gaps = frozenset({(1, k) for k in (20, 26, 31)} | {(2, 27), (3, 15)})
    panel = build_panel(prepare_history(weekly(weeks=36, missing=gaps), "weekly", THURSDAY), "weekly")
    zero, huge = _with_gap_units(panel, 0.0), _with_gap_units(panel, 1e6)
    stats = FeatureStats.fit(panel, 8, 4, week_start=THURSDAY)
    series, origins = np.array([0, 0, 1, 2]), np.array([22, 27, 25, 14])
    a, b = gather_windows(zero, stats, series, origins), gather_windows(huge, stats, series, origins)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the loss mask drops the gaps inside the horizon: SKU 1 origin 22 -> periods 23..26 (26 missing)
    assert a["mask"][0].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert a["past"][0, :, 1].tolist()[-3] == 0.0  # observed flag of period 20 in the lookback
    np.testing.assert_array_equal(seasonal_naive(zero, 30, 4), seasonal_naive(huge, 30, 4))
    np.testing.assert_array_equal(moving_average(zero, 30, 4), moving_average(huge, 30, 4))
    np.testing.assert_array_equal(mase_denominators(zero, 30), mase_denominators(huge, 30))
    fits = [
        XGBoostForecaster(horizon=4, n_estimators=5, max_rows=1000).fit(p, last_origin=28)
        for p in (zero, huge)
    ]
    assert fits[0].train_rows == fits[1].train_rows
    np.testing.assert_array_equal(fits[0].predict(zero, 31), fits[1].predict(huge, 31))


def test_the_backtest_scores_only_periods_that_exist(settings) -> None:
    gaps = frozenset({(1, 33), (1, 37), (2, 36), (3, 38), (3, 39)})
    rows = weekly(weeks=40, missing=gaps - {(2, 36)}, null_units=frozenset({(2, 36)}))
    result = backtest(settings, rows, params=params())
    assert set(result.points["model"].unique()) == {"lstm", "seasonal_naive", "moving_average", "xgboost"}
    scored = set(zip(result.points["sku_id"], result.points["target_date"], strict=True))
    for sku, k in gaps:
        assert (sku, WEEK0 + dt.timedelta(weeks=k)) not in scored
    per_model = result.points.group_by("model").len()["len"].to_list()
    assert per_model == [3 * 8 - len(gaps)] * 4  # 2 folds x 4 weeks x 3 SKUs, less the gaps
    assert result.origins == [WEEK0 + dt.timedelta(weeks=31, days=6), WEEK0 + dt.timedelta(weeks=35, days=6)]


# --------------------------------------------------------------------------------- user errors


def test_a_short_history_names_the_backtest_rule_and_the_settings(settings) -> None:
    with pytest.raises(
        FamilyDataError,
        match=r"marts.mart_demand_features holds 12 weekly periods of history "
        r"\(2024-01-04 .. 2024-03-21\); the backtest needs at least 21: forecast.backtest_folds \(2\) "
        r"x 4 holdout weeks \(forecast.holdout_days 28\) to test on, plus 13 before the first fold to "
        r"fit on \(8 periods of lags \+ the holdout's horizon for XGBoost\). Lower "
        r"forecast.backtest_folds, forecast.holdout_days or forecast.horizon",
    ):
        backtest(settings, weekly(weeks=12), params=params())
    with pytest.raises(
        ForecastDataError,
        match=r"needs at least 37: .* plus 29 before the first fold .*"
        r"forecast.horizon \+ 1 for one LSTM training window",
    ):
        backtest(settings, weekly(weeks=30), params=params(horizon=28), models=("lstm", "seasonal_naive"))


def test_fold_origins_say_what_to_lower() -> None:
    panel = build_panel(prepare_history(weekly(weeks=10), "weekly", THURSDAY), "weekly")
    with pytest.raises(
        ForecastDataError,
        match=r"holds 10 weekly periods .* too few for 2 backtest folds of 4 "
        r"periods: the first fold needs 8 periods before it. Lower forecast.backtest_folds",
    ):
        fold_origins(panel, 2, 4)


def test_training_without_units_or_complete_weeks_says_what_to_land() -> None:
    no_units = weekly(weeks=10).with_columns(pl.lit(None, pl.Float64).alias("units"))
    with pytest.raises(
        FamilyDataError,
        match=r"marts.mart_demand_features has no row with units .* the "
        r"column units is null on every row. Land sales",
    ):
        DemandDataModule(no_units, params()).setup()
    days = [WEEK0 + dt.timedelta(days=i) for i in range(28)]
    gappy = pl.DataFrame(
        {"date": days, "sku_id": 1, "units": [None if i % 7 == 3 else 1.0 for i in range(28)]},
        schema_overrides={"units": pl.Float64},
    )
    with pytest.raises(
        ForecastDataError,
        match=r"no complete week of units .* a week \(starting on thursday, "
        r"land.week_start\) counts only when every day of it has units",
    ):
        DemandDataModule(gappy, params()).setup()
    with pytest.raises(ForecastDataError, match=r"has no row on or before 2023-01-01: choose a later --date"):
        DemandDataModule(weekly(weeks=10), params(), cutoff=dt.date(2023, 1, 1)).setup()


def test_too_few_periods_for_a_training_window_names_forecast_horizon() -> None:
    with pytest.raises(
        ForecastDataError,
        match=r"no training windows: marts.mart_demand_features holds 3 "
        r"weekly periods .* so at least 5 periods. Lower forecast.horizon",
    ):
        DemandDataModule(weekly(weeks=3), params()).setup()
    out_of_stock = weekly(weeks=12).with_columns(pl.lit(True).alias("stockout"))
    with pytest.raises(
        ForecastDataError,
        match=r"no SKU has a period with units \(in stock\) within "
        r"forecast.horizon \(4\) periods after a period of history",
    ):
        DemandDataModule(out_of_stock, params()).setup()


def test_xgboost_says_how_much_history_it_needs() -> None:
    from pipelines.forecast.boosted import TrainedBoostedForecaster

    with pytest.raises(
        FamilyDataError,
        match=r"10 weekly periods of history .* too few to train XGBoost: .* "
        r"it needs at least 13 periods. Lower forecast.horizon",
    ):
        TrainedBoostedForecaster.fit(weekly(weeks=10), params())
    panel = build_panel(prepare_history(weekly(weeks=20), "weekly", THURSDAY), "weekly")
    panel = Panel(**{**panel.__dict__, "stockout": np.ones_like(panel.stockout)})
    with pytest.raises(
        ForecastDataError,
        match=r"no XGBoost training rows: .* missing periods and stock-outs "
        r"are not targets",
    ):
        XGBoostForecaster(horizon=4).fit(panel, last_origin=15)


def test_a_backtest_with_nothing_to_score_says_so(settings) -> None:
    rows = weekly(weeks=30).with_columns((pl.col("date") > WEEK0 + dt.timedelta(weeks=21)).alias("stockout"))
    with pytest.raises(
        ForecastDataError,
        match=r"nothing to score in the backtest: .* \(data up to 2024-06-05, "
        r"2024-07-03\); missing periods and stock-outs are not scored",
    ):
        backtest(settings, rows, params=params(), models=("seasonal_naive",))


# ---------------------------------------------------------------------------- feature groups off


def test_the_dataset_description_names_the_feature_groups_that_are_off() -> None:
    from pipelines.forecast.family import FORECAST

    rows = weekly(weeks=6).with_columns(pl.lit(0).alias("views"), pl.lit(None, pl.Float64).alias("temp_c"))
    assert feature_groups_off(rows) == [
        "competitor_prices",
        "inventory",
        "weather",
        "social_trends",
        "clickstream",
        "events",
    ]
    described = FORECAST.describe_dataset(rows)
    assert described["feature_groups_on"] == "prices, promotions"
    assert described["feature_groups_off"].startswith("competitor_prices, inventory, weather")
    assert feature_groups_off(rows.head(0)) == list(FEATURE_GROUPS)


# ----------------------------------------------------------------------------------------- plans


def test_scoring_reads_planned_promotions_from_the_plans_mart(settings, caplog) -> None:
    import duckdb

    from pipelines.forecast.score import forecast_active_skus, plans_note

    rows = weekly(weeks=20)
    run_date = rows["date"].max()
    promo_week = run_date + dt.timedelta(weeks=2)
    plans = pl.DataFrame(
        {
            "date": [run_date + dt.timedelta(weeks=k) for k in range(1, 5)] * 3,
            "sku_id": [s for s in (1, 2, 3) for _ in range(4)],
        }
    ).with_columns(
        pl.lit(10.0).alias("shelf_price"),
        pl.when(pl.col("date") == promo_week).then(7.0).otherwise(10.0).alias("effective_price"),
        (pl.col("date") == promo_week).alias("is_promo"),
        pl.when(pl.col("date") == promo_week).then(pl.lit("display")).alias("promo_type"),
        pl.when(pl.col("date") == promo_week).then(30.0).otherwise(0.0).alias("discount_pct"),
        pl.when(pl.col("date") == promo_week).then(1).alias("promo_day_number"),
    )
    settings.warehouse_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema marts")
    for name, frame in (("mart_demand_features", rows), ("mart_demand_plans", plans)):
        con.register("_frame", frame.to_arrow())
        con.execute(f"create table marts.{name} as select * from _frame")
        con.unregister("_frame")
    model = untrained()
    with caplog.at_level("INFO", logger="pipelines.forecast.score"):
        planned = forecast_active_skus(settings, model, run_date, con).sort("sku_id", "target_date")
    assert "planned prices or promotions from marts.mart_demand_plans for 3 of 3 SKUs" in caplog.text
    assert (
        plans_note(con, run_date)
        == "planned prices and promotions from marts.mart_demand_plans: 3 SKUs, 4 periods"
    )
    assert plans_note(con, promo_week + dt.timedelta(weeks=2)).startswith("no plan after 2024-06-13 in")
    con.execute("drop table marts.mart_demand_plans")  # an older warehouse: no plans
    assert plans_note(con, run_date).startswith("no marts.mart_demand_plans in the warehouse: prices carried")
    caplog.clear()
    with caplog.at_level("INFO", logger="pipelines.forecast.score"):
        carried = forecast_active_skus(settings, model, run_date, con).sort("sku_id", "target_date")
    assert "no planned prices or promotions in marts.mart_demand_plans" in caplog.text
    con.close()
    assert planned["target_date"].unique().to_list() == [
        run_date + dt.timedelta(weeks=k) for k in range(1, 5)
    ]
    on_promo = pl.col("target_date") == promo_week
    lifted = planned.filter(on_promo)["mean"].to_numpy() / carried.filter(on_promo)["mean"].to_numpy()
    assert (lifted > 1.0).all(), lifted
    np.testing.assert_allclose(
        planned.filter(~on_promo)["mean"], carried.filter(~on_promo)["mean"], rtol=1e-5
    )


def test_scoring_weekly_rows_with_a_daily_model_is_a_scoring_error(settings) -> None:
    import duckdb

    from pipelines.forecast.score import forecast_active_skus
    from pipelines.ml.scoring import ScoringError

    rows = weekly(weeks=20)
    settings.warehouse_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema marts")
    con.register("_frame", rows.to_arrow())
    con.execute("create table marts.mart_demand_features as select * from _frame")
    with pytest.raises(
        ScoringError,
        match=r"cannot score 2024-05-16: marts.mart_demand_features holds one row per SKU per week .* "
        r"forecast.grain is daily: .* then train again \(ecom train forecast\)",
    ):
        forecast_active_skus(settings, untrained("daily", 0, horizon=7, lookback=28), rows["date"].max(), con)
    con.close()
