"""Forecast data: preparation, weekly aggregation, panels, windows (no leakage), scaling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch

from pipelines.forecast.data import load_demand_features
from pipelines.forecast.datamodule import DemandDataModule, EpochBatchSampler
from pipelines.forecast.features import (
    KNOWN_FEATURES,
    ForecastDataError,
    aggregate_weekly,
    last_complete_period,
    prepare_features,
)
from pipelines.forecast.network import DemandNetwork
from pipelines.forecast.panel import (
    FeatureStats,
    build_panel,
    gather_windows,
    scale_units,
    unscale_units,
    window_origins,
    window_scale,
)
from pipelines.forecast.train import TrainedForecaster

START = dt.date(2024, 1, 1)  # a Monday


def frame(days: int = 60, skus: tuple[int, ...] = (1, 2), new_sku_days: int | None = None) -> pl.DataFrame:
    """Contract-shaped daily rows: units i + sku on day i, promotion every 10th day."""
    rows = []
    for sku in skus:
        for i in range(days):
            rows.append(
                {
                    "date": START + dt.timedelta(days=i),
                    "sku_id": sku,
                    "units": float((i + sku) % 9),
                    "is_promo": i % 10 == 0,
                    "effective_price": 9.0 if i % 10 == 0 else 10.0,
                    "list_price": 10.0,
                    "stockout": i == 5,
                    "category_l1": "home",
                }
            )
    if new_sku_days:
        for i in range(days - new_sku_days, days):
            rows.append(
                {"date": START + dt.timedelta(days=i), "sku_id": 99, "units": 1.0, "category_l1": "toys"}
            )
    return pl.DataFrame(rows)


def params(**update: object):
    from pipelines.config import ForecastParams

    base = {"lookback": 14, "horizon": 7, "epochs": 1, "batch_size": 32, "max_train_windows": 1000}
    return ForecastParams(**(base | update))


def test_prepare_requires_date_sku_and_units() -> None:
    with pytest.raises(ForecastDataError, match=r"lacks required column\(s\) \['units'\]"):
        prepare_features(pl.DataFrame({"date": [START], "sku_id": [1]}))


def test_prepare_rejects_repeated_sku_days() -> None:
    df = pl.DataFrame({"date": [START, START], "sku_id": [1, 1], "units": [1, 2]})
    with pytest.raises(ForecastDataError, match=r"repeated .* sku_id=1 on 2024-01-01"):
        prepare_features(df)


def test_prepare_fills_missing_optional_columns_and_derives_price() -> None:
    out = prepare_features(frame(days=10))
    assert out["log_price"][0] == pytest.approx(np.log(0.9))
    assert out["log_price"][1] == pytest.approx(0.0)
    assert out["temp_c"].null_count() == out.height  # not in the input: unknown, not an error


def test_weekly_aggregation_sums_units_averages_flags_and_drops_partial_weeks() -> None:
    # 2024-01-03 (Wednesday) .. 2024-01-24 (Wednesday): the first and last weeks are partial
    days = [dt.date(2024, 1, 3) + dt.timedelta(days=i) for i in range(22)]
    daily = pl.DataFrame(
        {
            "date": days,
            "sku_id": [1] * 22,
            "units": [1.0] * 22,
            "is_promo": [d.weekday() < 3 for d in days],  # Mon-Wed
        }
    )
    weekly = aggregate_weekly(prepare_features(daily))
    assert weekly["date"].to_list() == [dt.date(2024, 1, 8), dt.date(2024, 1, 15), dt.date(2024, 1, 22)]
    assert weekly["units"].to_list()[:2] == [7.0, 7.0]
    assert weekly["is_promo"].to_list()[:2] == pytest.approx([3 / 7, 3 / 7])
    # the last week has 3 days of 7: its sum is partial, so it is not observed
    future = pl.DataFrame(
        {"date": [dt.date(2024, 1, 25)], "sku_id": [1], "units": [None]},
        schema_overrides={"units": pl.Float64},
    )
    with_future = aggregate_weekly(prepare_features(pl.concat([daily, future], how="diagonal_relaxed")))
    assert with_future.filter(pl.col("date") == dt.date(2024, 1, 22))["units"][0] is None
    assert prepare_features(daily, "weekly").equals(weekly)


def test_last_complete_period() -> None:
    assert last_complete_period(dt.date(2024, 1, 14), "weekly") == dt.date(2024, 1, 8)  # Sunday
    assert last_complete_period(dt.date(2024, 1, 13), "weekly") == dt.date(2024, 1, 1)  # Saturday
    assert last_complete_period(dt.date(2024, 1, 13), "daily") == dt.date(2024, 1, 13)


def test_panel_marks_stockouts_and_new_skus() -> None:
    panel = build_panel(prepare_features(frame(days=30, new_sku_days=3)), "daily")
    assert panel.n_series == 3 and panel.n_periods == 30
    assert not panel.valid[0, 5]  # stock-out day: not demand
    new = list(panel.sku_ids).index(99)
    assert panel.observed[new].sum() == 3 and not panel.observed[new, :27].any()
    assert panel.past[new, 29, 1] > 0  # age feature set once launched


def test_windows_keep_new_skus_with_short_history() -> None:
    panel = build_panel(prepare_features(frame(days=40, new_sku_days=10)), "daily")
    series, origins = window_origins(panel, 14, 7, first=0, last=panel.n_periods - 1)
    new = list(panel.sku_ids).index(99)
    new_origins = origins[series == new]
    assert len(new_origins) > 0
    stats = FeatureStats.fit(panel, 14, 7)
    w = gather_windows(panel, stats, np.array([new]), np.array([new_origins.min()]))
    observed = w["past"][0, :, 1]
    assert observed[-1] == 1 and observed[0] == 0  # zero-padded history with a mask


def test_validation_windows_start_after_training_targets_end() -> None:
    dm = DemandDataModule(frame(days=80), params())
    dm.setup()
    _, train_t = dm.train_windows
    _, val_t = dm.val_windows
    assert len(train_t) and len(val_t)
    assert (train_t + 7).max() <= val_t.min()  # last training target period <= validation origin
    assert val_t.max() + 7 == dm.panel.n_periods - 1


def test_window_inputs_do_not_depend_on_anything_after_the_origin() -> None:
    base = prepare_features(frame(days=50))
    changed = base.with_columns(
        pl.when(pl.col("date") > START + dt.timedelta(days=30))
        .then(pl.col("units") * 100)
        .otherwise(pl.col("units"))
    )
    stats = FeatureStats.fit(build_panel(base, "daily"), 14, 7, last=30)
    a = gather_windows(build_panel(base, "daily"), stats, np.array([0, 1]), np.array([30, 30]))
    b = gather_windows(build_panel(changed, "daily"), stats, np.array([0, 1]), np.array([30, 30]))
    for key in ("past", "known", "monotone", "static", "scale"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["target"], b["target"])  # the targets are what changed


def test_forecast_ignores_units_after_the_origin() -> None:
    features = frame(days=50)
    panel = build_panel(prepare_features(features), "daily")
    stats = FeatureStats.fit(panel, 14, 7)
    config = {
        "n_past": stats.n_past_inputs,
        "n_known": stats.n_known_free,
        "n_static": stats.n_static,
        "horizon": 7,
        "n_quantiles": 3,
        "hidden_sizes": (8, 4),
    }
    torch.manual_seed(0)
    model = TrainedForecaster(DemandNetwork(**config), stats, (0.1, 0.5, 0.9), config)
    origin = START + dt.timedelta(days=40)
    leaked = features.with_columns(
        pl.when(pl.col("date") > origin).then(1000.0).otherwise(pl.col("units")).alias("units")
    )
    a = model.predict(features, origin=origin)
    b = model.predict(leaked, origin=origin)
    assert a.equals(b)
    assert a["target_date"].min() == origin + dt.timedelta(days=1) and a.height == 2 * 7


def test_window_scaling_is_invertible_and_at_least_one() -> None:
    units = np.array([[0.0, 2.0, 4.0, 6.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    observed = np.array([[False, True, True, True], [True, True, True, True]])
    scale = window_scale(units, observed)
    np.testing.assert_allclose(scale, [5.0, 1.0])  # mean of observed + 1; all-zero history -> 1
    np.testing.assert_allclose(unscale_units(scale_units(units, scale), scale), units, rtol=1e-6)


def test_epoch_sampler_is_seeded_bounded_and_varies_by_epoch() -> None:
    a = EpochBatchSampler(1000, 64, 200, seed=7)
    first = np.concatenate(list(a))
    assert len(first) == 200 and len(set(first.tolist())) == 200 and len(a) == 4
    again = np.concatenate(list(EpochBatchSampler(1000, 64, 200, seed=7)))
    np.testing.assert_array_equal(first, again)
    a.set_epoch(1)
    assert not np.array_equal(first, np.concatenate(list(a)))


def test_known_features_include_price_promotion_calendar_and_events() -> None:
    for name in (
        "log_price",
        "is_promo",
        "discount",
        "competitor_gap",
        "dow_sin",
        "is_public_holiday",
        "event_singles_day",
        "phase_peak",
    ):
        assert name in KNOWN_FEATURES


def test_load_demand_features_explains_a_missing_warehouse_or_mart(settings) -> None:
    import duckdb

    with pytest.raises(ForecastDataError, match="no warehouse at"):
        load_demand_features(settings)
    settings.warehouse_path.parent.mkdir(parents=True)
    duckdb.connect(str(settings.warehouse_path)).close()
    with pytest.raises(ForecastDataError, match=r"marts.mart_demand_features does not exist"):
        load_demand_features(settings)


def test_load_demand_features_reads_the_mart_with_a_schema_argument(settings) -> None:
    import duckdb

    settings.warehouse_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema build_marts")
    con.execute(
        "create table build_marts.mart_demand_features as select date '2024-01-01' + i::int as date, "
        "1::bigint as sku_id, (i % 3)::hugeint as units from range(10) t(i)"
    )
    con.close()
    out = load_demand_features(settings, schema="build_marts", start=dt.date(2024, 1, 3))
    assert out.height == 8 and out.schema["units"] == pl.Float64
