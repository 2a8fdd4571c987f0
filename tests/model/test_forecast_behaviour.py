"""Behaviour of the fitted forecaster on a small features frame built here ("a user's data").

The frame has the mart's shape (only some of its columns) but comes from neither the simulator nor
the warehouse: weekly seasonality, promotions that lift demand, a price elasticity, Poisson noise.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipelines.forecast.evaluate import backtest
from pipelines.forecast.train import TrainedForecaster, train_forecaster

pytestmark = pytest.mark.slow

START = dt.date(2024, 1, 1)
WEEKLY = np.array([0.6, 0.7, 0.8, 0.9, 1.1, 1.7, 1.9])  # Monday .. Sunday


def features(
    n_skus: int = 12,
    days: int = 210,
    *,
    seed: int = 0,
    promo_uplift: float = 2.5,
    elasticity: float = 2.0,
    promo_share: float = 0.12,
) -> pl.DataFrame:
    """Contract-shaped daily rows for ``n_skus`` SKUs; the last SKU launches 30 days before the end."""
    rng = np.random.default_rng(seed)
    dates = [START + dt.timedelta(days=i) for i in range(days)]
    dow = np.array([d.weekday() for d in dates])
    frames = []
    for sku in range(1, n_skus + 1):
        base = rng.uniform(4, 15)
        list_price = round(float(rng.uniform(20, 200)), 2)
        promo = rng.random(days) < promo_share
        discount = np.where(promo, rng.choice([10.0, 20.0, 30.0], days), 0.0)
        shelf = list_price * np.where(rng.random(days) < 0.5, 1.0, 1.05)
        effective = shelf * (1 - discount / 100)
        mean = (
            base * WEEKLY[dow] * np.where(promo, promo_uplift, 1.0) * (effective / list_price) ** -elasticity
        )
        units = rng.poisson(mean).astype(float)
        first = days - 30 if sku == n_skus else 0
        frames.append(
            pl.DataFrame(
                {
                    "date": dates[first:],
                    "sku_id": sku,
                    "category_l1": "toys" if sku % 2 else "home",
                    "list_price": list_price,
                    "units": units[first:],
                    "stockout": False,
                    "shelf_price": shelf[first:],
                    "effective_price": effective[first:],
                    "is_promo": promo[first:],
                    "discount_pct": discount[first:],
                    "competitor_gap_pct": effective[first:] / list_price - 1.0,
                    "days_since_launch": np.arange(days - first) + (0 if sku == n_skus else 400),
                }
            )
        )
    return pl.concat(frames)


@pytest.fixture(scope="module")
def small_settings(tmp_path_factory: pytest.TempPathFactory):
    from pipelines.config import load_settings

    home = tmp_path_factory.mktemp("forecast_behaviour")
    settings = load_settings({"ECOM_HOME": str(home)})
    params = settings.forecast.model_copy(
        update={
            "lookback": 28,
            "horizon": 7,
            "epochs": 4,
            "batch_size": 64,
            "max_train_windows": 1500,
            "learning_rate": 5e-3,
            "holdout_days": 7,
            "backtest_folds": 2,
        }
    )
    return settings.model_copy(update={"forecast": params})


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return features()


@pytest.fixture(scope="module")
def model(small_settings, frame: pl.DataFrame) -> TrainedForecaster:
    return train_forecaster(small_settings, frame)


def horizon_rows(frame: pl.DataFrame, origin: dt.date, days: int, **values: object) -> pl.DataFrame:
    """Future rows (no units) for every SKU: list-price shelf price, no promotion, unless overridden."""
    skus = frame.group_by("sku_id").agg(pl.col("list_price").first(), pl.col("category_l1").first())
    dates = pl.DataFrame({"date": [origin + dt.timedelta(days=i) for i in range(1, days + 1)]})
    rows = skus.join(dates, how="cross").with_columns(
        pl.col("list_price").alias("shelf_price"),
        pl.col("list_price").alias("effective_price"),
        pl.lit(False).alias("is_promo"),
        pl.lit(0.0).alias("discount_pct"),
        pl.lit(0.0).alias("competitor_gap_pct"),
    )
    return rows.with_columns(**{k: pl.lit(v) for k, v in values.items()}) if values else rows


def forecast_with(model: TrainedForecaster, frame: pl.DataFrame, future: pl.DataFrame) -> pl.DataFrame:
    origin = frame["date"].max()
    return model.predict(pl.concat([frame, future], how="diagonal_relaxed"), origin=origin).sort(
        "sku_id", "step"
    )


def test_training_logs_a_validation_wape(model: TrainedForecaster) -> None:
    assert 0 < model.metrics["val_wape"] < 1
    assert model.metrics["epochs"] == 4


def test_a_promotion_in_the_horizon_raises_the_forecast(
    model: TrainedForecaster, frame: pl.DataFrame
) -> None:
    origin = frame["date"].max()
    plain = horizon_rows(frame, origin, 7)
    promo_day = origin + dt.timedelta(days=3)
    promoted = plain.with_columns(
        pl.when(pl.col("date") == promo_day).then(True).otherwise(pl.col("is_promo")).alias("is_promo"),
        pl.when(pl.col("date") == promo_day)
        .then(20.0)
        .otherwise(pl.col("discount_pct"))
        .alias("discount_pct"),
        pl.when(pl.col("date") == promo_day)
        .then(pl.col("shelf_price") * 0.8)
        .otherwise(pl.col("effective_price"))
        .alias("effective_price"),
    )
    a = forecast_with(model, frame, plain).filter(pl.col("step") == 3)
    b = forecast_with(model, frame, promoted).filter(pl.col("step") == 3)
    assert (b["p50"] >= a["p50"]).all() and (b["p50"] > a["p50"]).mean() > 0.9
    uplift = (b["p50"] / a["p50"]).median()
    # untrained, the shape-constrained term gives ~1.06; the data's uplift is 2.5 x 0.8 ^ -2 = 3.9
    assert uplift > 1.8, f"median promotion uplift {uplift:.2f}"
    other = forecast_with(model, frame, promoted).filter(pl.col("step") != 3)
    np.testing.assert_allclose(
        other["p50"], forecast_with(model, frame, plain).filter(pl.col("step") != 3)["p50"]
    )


def test_a_price_rise_in_the_horizon_does_not_raise_the_median(
    model: TrainedForecaster, frame: pl.DataFrame
) -> None:
    origin = frame["date"].max()
    plain = horizon_rows(frame, origin, 7)
    dearer = plain.with_columns(
        (pl.col("effective_price") * 1.2).alias("effective_price"),
        (pl.col("shelf_price") * 1.2).alias("shelf_price"),
        pl.lit(0.2).alias("competitor_gap_pct"),
    )
    a = forecast_with(model, frame, plain)
    b = forecast_with(model, frame, dearer)
    assert (b["p50"] <= a["p50"] + 1e-9).all()
    assert (b["p50"] < a["p50"]).mean() > 0.9


def test_new_and_short_history_skus_are_forecast(model: TrainedForecaster, frame: pl.DataFrame) -> None:
    out = model.predict(frame)
    assert out["sku_id"].n_unique() == frame["sku_id"].n_unique()
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all() and (out["p10"] >= 0).all()


def test_the_lstm_beats_seasonal_naive_on_a_seasonal_series(small_settings) -> None:
    seasonal = features(n_skus=10, days=180, seed=3, promo_share=0.0, elasticity=0.0)
    result = backtest(small_settings, seasonal, models=("lstm", "seasonal_naive"))
    lstm, naive = result.metric("lstm"), result.metric("seasonal_naive")
    assert lstm < naive, result.comparison
    assert result.comparison.columns[:5] == ["model", "wape", "mase", "bias", "promo_accuracy"]


def test_forecaster_round_trips_through_save_and_load(model: TrainedForecaster, frame, tmp_path) -> None:
    loaded = TrainedForecaster.load(model.save(tmp_path / "m"))
    assert loaded.predict(frame).equals(model.predict(frame))


def test_weekly_grain_trains_and_forecasts_iso_weeks(small_settings) -> None:
    params = small_settings.forecast.model_copy(
        update={"grain": "weekly", "lookback": 8, "horizon": 4, "epochs": 2, "batch_size": 32}
    )
    frame = features(n_skus=6, days=300, seed=5)
    model = train_forecaster(small_settings, frame, params=params)
    origin = dt.date(2024, 10, 23)  # a Wednesday: the last complete week is 14-20 October
    out = model.predict(frame, origin=origin)
    assert out["target_date"].unique().sort().to_list() == [
        dt.date(2024, 10, 21) + dt.timedelta(weeks=k) for k in range(4)
    ]
    weekly_units = frame.filter(pl.col("date") <= origin)["units"].mean() * 7
    assert 0.3 < out["mean"].mean() / weekly_units < 3  # weekly, not daily, magnitudes


def test_weekly_rows_with_thursday_weeks_and_missing_weeks_train_and_forecast(small_settings) -> None:
    """A scanner export's shape: one row per SKU per Thursday week, some weeks missing."""
    daily = features(n_skus=6, days=364, seed=7)
    offset = pl.duration(days=3)
    weekly = (
        daily.with_columns(((pl.col("date") - offset).dt.truncate("1w") + offset).alias("date"))
        .group_by("sku_id", "date")
        .agg(
            pl.col("units").sum(),
            pl.len().alias("_days"),
            pl.col("category_l1", "list_price").first(),
            pl.col("shelf_price", "effective_price", "discount_pct").mean(),
            pl.col("is_promo").any(),
        )
        .filter(pl.col("_days") == 7)
        .drop("_days")
    )
    rng = np.random.default_rng(1)
    weekly = weekly.filter(pl.Series(rng.random(weekly.height) > 0.1))  # ~10% of weeks missing
    assert (weekly["date"].dt.weekday() == 4).all()  # Thursdays
    params = small_settings.forecast.model_copy(
        update={
            "grain": "weekly",
            "week_start": 3,
            "lookback": 8,
            "horizon": 4,
            "epochs": 2,
            "batch_size": 32,
        }
    )
    model = train_forecaster(small_settings, weekly, params=params)
    last = weekly["date"].max()
    out = model.predict(weekly)
    assert out["target_date"].unique().sort().to_list() == [last + dt.timedelta(weeks=k) for k in range(1, 5)]
    assert out["sku_id"].n_unique() == 6 and out["mean"].is_finite().all()
    assert 0.3 < out["mean"].mean() / weekly["units"].mean() < 3  # weekly magnitudes
