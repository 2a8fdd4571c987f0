"""Network shape constraints, pinball loss, baselines, metrics and the comparison table."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch

from pipelines.forecast.baselines import censored, mase_denominators, moving_average, seasonal_naive
from pipelines.forecast.metrics import calibration, summarise
from pipelines.forecast.module import pinball_loss
from pipelines.forecast.network import DemandNetwork, monotone_quantiles
from pipelines.forecast.panel import Panel
from pipelines.ml.family import format_table


def network() -> DemandNetwork:
    torch.manual_seed(0)
    return DemandNetwork(n_past=6, n_known=3, n_static=2, horizon=5, n_quantiles=3, hidden_sizes=(8, 4))


def inputs(batch: int = 16) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    return (
        torch.randn(batch, 10, 6, generator=g),
        torch.randn(batch, 5, 3, generator=g),
        torch.zeros(batch, 5, 4),
        torch.randn(batch, 2, generator=g),
    )


def test_quantiles_are_non_negative_and_monotone() -> None:
    raw = torch.randn(100, 7, 3) * 5
    q = monotone_quantiles(raw)
    assert (q >= 0).all() and (q[..., 1:] >= q[..., :-1]).all()
    quantiles, mean = network()(*inputs())
    assert quantiles.shape == (16, 5, 3) and mean.shape == (16, 5)
    assert (quantiles >= 0).all() and (quantiles[..., 1:] >= quantiles[..., :-1]).all() and (mean >= 0).all()


def test_a_price_rise_never_raises_and_a_promotion_never_lowers_the_forecast() -> None:
    net = network()
    past, known, mono, static = inputs()
    base, _ = net(past, known, mono, static)
    dearer = mono.clone()
    dearer[:, 2, 0] = 0.2  # log price 20% above the lookback's
    dearer[:, 2, 1] = 0.2  # and so further above the cheapest competitor
    promoted = mono.clone()
    promoted[:, 2, 2] = 1.0
    promoted[:, 2, 3] = 0.3
    with torch.no_grad():
        up, _ = net(past, known, dearer, static)
        promo, _ = net(past, known, promoted, static)
    assert (up[:, 2] <= base[:, 2] + 1e-6).all() and (up[:, 2] < base[:, 2]).any()
    positive = base[:, 2] > 0  # a zero quantile stays zero: the effect is multiplicative
    assert (promo[:, 2] >= base[:, 2]).all() and (promo[:, 2][positive] > base[:, 2][positive]).all()
    torch.testing.assert_close(up[:, [0, 1, 3, 4]], base[:, [0, 1, 3, 4]])


def test_pinball_loss_on_a_hand_example() -> None:
    pred = torch.tensor([[1.0, 2.0, 3.0]])
    target = torch.tensor([2.5])
    # errors y - q: 1.5, 0.5, -0.5 -> 0.1 * 1.5, 0.5 * 0.5, (0.9 - 1) * -0.5
    assert pinball_loss(pred, target, (0.1, 0.5, 0.9)).item() == pytest.approx((0.15 + 0.25 + 0.05) / 3)
    pred2 = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target2 = torch.tensor([2.5, 100.0])
    masked = pinball_loss(pred2, target2, (0.1, 0.5, 0.9), torch.tensor([1.0, 0.0]))
    assert masked.item() == pytest.approx(0.15)


def toy_panel(units: np.ndarray, grain: str = "daily") -> Panel:
    n, t = units.shape
    step = 7 if grain == "weekly" else 1
    return Panel(
        grain=grain,  # type: ignore[arg-type]
        sku_ids=np.arange(1, n + 1),
        periods=[dt.date(2024, 1, 1) + dt.timedelta(days=step * i) for i in range(t)],
        units=units.astype(np.float32),
        observed=np.ones((n, t), bool),
        stockout=np.zeros((n, t), np.float32),
        past=np.zeros((n, t, 17), np.float32),
        known=np.zeros((n, t, 22), np.float32),
        category=np.array(["a"] * n),
    )


def test_seasonal_naive_repeats_last_week_and_weekly_uses_last_year_or_last_value() -> None:
    units = np.tile(np.arange(7, dtype=float), 4)[None, :]  # 0..6 repeated
    fc = seasonal_naive(toy_panel(units), origin=20, horizon=10)
    np.testing.assert_array_equal(fc[0], [0, 1, 2, 3, 4, 5, 6, 0, 1, 2])
    weekly = toy_panel(np.arange(30, dtype=float)[None, :], "weekly")
    np.testing.assert_array_equal(seasonal_naive(weekly, origin=29, horizon=2)[0], [29, 29])
    long = toy_panel(np.arange(60, dtype=float)[None, :], "weekly")
    np.testing.assert_array_equal(seasonal_naive(long, origin=59, horizon=2)[0], [8, 9])


def test_moving_average_is_the_mean_of_the_last_28_days_and_ignores_the_future() -> None:
    units = np.concatenate([np.zeros(10), np.full(28, 2.0), np.full(5, 100.0)])[None, :]
    panel = toy_panel(units)
    np.testing.assert_allclose(moving_average(censored(panel, 37), 37, 3, window_days=28)[0], [2, 2, 2])
    np.testing.assert_allclose(moving_average(panel, 37, 3, window_days=28)[0], [2, 2, 2])


def test_mase_denominator_is_in_sample_seasonal_naive_mae() -> None:
    units = np.array([[1, 2, 3, 4, 5, 6, 7, 3, 2, 3, 4, 5, 6, 7]], float)
    # |y_t - y_{t-7}| for t = 7..13: 2, 0, 0, 0, 0, 0, 0 -> mean 2/7
    assert mase_denominators(toy_panel(units), 13)[0] == pytest.approx(2 / 7)


def points() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": ["m"] * 4,
            "fold": [1] * 4,
            "sku_id": [1, 1, 2, 2],
            "actual": [10.0, 0.0, 5.0, 5.0],
            "p10": [5.0, 0.0, 1.0, 6.0],
            "p50": [8.0, 1.0, 5.0, 7.0],
            "p90": [12.0, 2.0, 9.0, 9.0],
            "promo": [1.0, 0.0, 0.0, 1.0],
            "mase_scale": [2.0, 2.0, 1.0, 1.0],
        }
    )


def test_metrics_on_a_hand_example() -> None:
    m = summarise(points(), ["model"], (0.1, 0.5, 0.9)).row(0, named=True)
    assert m["wape"] == pytest.approx((2 + 1 + 0 + 2) / 20)
    assert m["bias"] == pytest.approx((-2 + 1 + 0 + 2) / 20)
    assert m["promo_accuracy"] == pytest.approx(1 - (2 + 2) / 15)
    assert m["mase"] == pytest.approx(((2 + 1) / 2 / 2 + (0 + 2) / 2 / 1) / 2)
    assert m["coverage_80"] == pytest.approx(3 / 4)  # 5 is below the last p10 of 6
    assert m["pinball_p50"] == pytest.approx(0.5 * 5 / 4)
    assert m["n_points"] == 4


def test_point_forecasters_get_the_same_columns_with_nulls() -> None:
    table = summarise(
        points().drop("p10", "p90").with_columns(pl.lit("naive").alias("model")), ["model"], (0.1, 0.5, 0.9)
    )
    full = summarise(points(), ["model"], (0.1, 0.5, 0.9))
    assert table.columns == full.columns
    row = table.row(0, named=True)
    assert row["pinball_p10"] is None and row["coverage_80"] is None and row["pinball_p50"] is not None
    text = format_table(pl.concat([full, table]))
    assert "naive" in text and " - " in text and text.splitlines()[0].startswith("model")


def test_calibration_counts_ties_at_half() -> None:
    cal = calibration(points(), (0.1, 0.5, 0.9))
    p10 = cal.filter(pl.col("quantile") == 0.1)["observed"][0]
    # below p10: 5 < 6 counts 1; the 0 on a p10 of 0 is a tie and counts 0.5 -> 1.5 / 4
    assert p10 == pytest.approx(0.375)
