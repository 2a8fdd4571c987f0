"""Fit the demand forecaster and use it: :func:`train_forecaster` -> :class:`TrainedForecaster`."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl_
import numpy as np
import polars as pl
import torch

from pipelines.forecast.data import load_demand_features
from pipelines.forecast.datamodule import DemandDataModule
from pipelines.forecast.features import (
    ForecastDataError,
    origin_period,
    period_days,
    prepare_features,
)
from pipelines.forecast.module import DemandForecastModule
from pipelines.forecast.network import DemandNetwork
from pipelines.forecast.panel import FeatureStats, Panel, build_panel, censor_after, gather_windows

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

    from pipelines.config import ForecastParams, Settings

NETWORK_FILE, META_FILE = "network.pt", "forecaster.json"


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (None: leave torch's setting), restoring it afterwards."""
    if not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def quantile_columns(quantiles: tuple[float, ...] | list[float]) -> list[str]:
    """Column names of the quantile forecasts: 0.1 -> p10, 0.5 -> p50, 0.9 -> p90."""
    return [f"p{round(q * 100):d}" for q in quantiles]


@dataclass
class TrainedForecaster:
    """A fitted network with everything needed to forecast from a features frame.

    Attributes:
        network: The fitted :class:`DemandNetwork`, in eval mode.
        stats: Feature statistics and window shape (grain, lookback, horizon).
        quantiles: Quantile levels of the outputs.
        network_config: Constructor arguments of the network.
        metrics: Training metrics (``train_loss``, ``val_wape``, ``epoch_seconds``, ``windows``, ...).
    """

    network: DemandNetwork
    stats: FeatureStats
    quantiles: tuple[float, ...]
    network_config: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return self.stats.horizon

    @property
    def lookback(self) -> int:
        return self.stats.lookback

    @property
    def grain(self) -> str:
        return self.stats.grain

    @property
    def week_start(self) -> int:
        return self.stats.week_start

    def predict(
        self,
        features: pl.DataFrame,
        *,
        origin: dt.date | None = None,
        horizon: int | None = None,
        batch_size: int = 8192,
        threads: int | None = None,
    ) -> pl.DataFrame:
        """Forecast ``horizon`` periods after ``origin`` for every SKU with history in the lookback.

        Args:
            features: Mart-shaped daily rows (``date``, ``sku_id``, ``units`` at least). Rows after
                ``origin`` may carry known covariates for the horizon (planned prices, promotions,
                calendar); their units and other past-only columns are ignored. Without them, prices
                are carried forward, no promotion is assumed and the calendar comes from the date.
            origin: Last day of history (default: the last day with units). For weekly models, the
                last week (starting on the trained week start) that ends on or before it, or over
                weekly rows (dated on the week's first day) the week that starts on or before it
                when its row is there.
            horizon: Periods to forecast (default and maximum: the trained horizon).
            batch_size: Windows per forward pass.
            threads: Torch intra-op threads for the forward passes (default: torch's setting).

        Returns:
            One row per SKU and period: ``sku_id, step, target_date, p10, p50, p90, mean`` (quantile
            columns follow the trained levels), in units per period.
        """
        horizon = check_horizon(horizon, self.horizon)
        panel, t0, first_period, series = origin_panel(
            features, origin, self.stats.grain, self.stats.lookback, horizon, self.stats.week_start
        )
        qcols = quantile_columns(self.quantiles)
        if len(series) == 0:
            return _empty_forecast(qcols)
        out_q = np.empty((len(series), horizon, len(self.quantiles)), np.float32)
        out_mean = np.empty((len(series), horizon), np.float32)
        self.network.eval()
        with torch_threads(threads), torch.inference_mode():
            for i in range(0, len(series), batch_size):
                chunk = series[i : i + batch_size]
                w = gather_windows(panel, self.stats, chunk, np.full(len(chunk), t0), horizon=horizon)
                q, m = self.network(
                    torch.from_numpy(w["past"]),
                    torch.from_numpy(w["known"]),
                    torch.from_numpy(w["monotone"]),
                    torch.from_numpy(w["static"]),
                )
                out_q[i : i + len(chunk)] = q.numpy() * w["scale"][:, None, None]
                out_mean[i : i + len(chunk)] = m.numpy() * w["scale"][:, None]
        return forecast_frame(panel, series, first_period, out_q, out_mean, qcols)

    def save(self, directory: str | Path) -> Path:
        """Write ``network.pt`` (state dict) and ``forecaster.json`` (stats, config, metrics)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.network.state_dict(), path / NETWORK_FILE)
        meta = {
            "stats": self.stats.to_dict(),
            "quantiles": list(self.quantiles),
            "network_config": self.network_config,
            "metrics": self.metrics,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TrainedForecaster:
        path = Path(directory)
        meta = json.loads((path / META_FILE).read_text())
        config = dict(meta["network_config"])
        config["hidden_sizes"] = tuple(config["hidden_sizes"])
        network = DemandNetwork(**config)
        network.load_state_dict(torch.load(path / NETWORK_FILE, map_location="cpu", weights_only=True))
        network.eval()
        return cls(
            network=network,
            stats=FeatureStats.from_dict(meta["stats"]),
            quantiles=tuple(meta["quantiles"]),
            network_config=config,
            metrics=meta.get("metrics", {}),
        )


def check_horizon(horizon: int | None, trained: int) -> int:
    """``horizon`` (default: the trained one), which must lie in 1..trained."""
    horizon = horizon or trained
    if not 1 <= horizon <= trained:
        raise ForecastDataError(f"horizon must be between 1 and the trained horizon {trained}, got {horizon}")
    return horizon


def origin_panel(
    features: pl.DataFrame,
    origin: dt.date | None,
    grain: str,
    lookback: int,
    horizon: int,
    week_start: int = 0,
) -> tuple[Panel, int, dt.date, np.ndarray]:
    """The panel a forecast from ``origin`` needs: ``lookback`` periods of history, ``horizon`` ahead.

    Returns:
        The panel, the origin period's index in it, the origin period's start, and the indices
        of the series with history up to the origin (the ones to forecast).
    """
    missing = [c for c in ("date", "sku_id", "units") if c not in features.columns]
    if missing:
        raise ForecastDataError(f"the features frame lacks required column(s) {missing}")
    features = features.with_columns(pl.col("date").cast(pl.Date))
    if origin is None:
        seen = features.filter(pl.col("units").is_not_null())
        if seen.is_empty():
            raise ForecastDataError("no rows with units: nothing to forecast from")
        origin = seen["date"].max()
    step = period_days(grain)  # type: ignore[arg-type]
    first = origin_period(features.filter(pl.col("date") <= origin), origin, grain, week_start)  # type: ignore[arg-type]
    start = first - dt.timedelta(days=step * (lookback - 1))
    end = first + dt.timedelta(days=step * horizon)
    frame = censor_after(features, origin).filter(
        pl.col("date").is_between(start - dt.timedelta(days=7), end + dt.timedelta(days=6))
    )
    prepared = prepare_features(frame, grain, week_start)  # type: ignore[arg-type]
    panel = build_panel(prepared, grain, start=start, end=end)  # type: ignore[arg-type]
    t0 = panel.index_of(first)
    series = np.flatnonzero(panel.observed[:, : t0 + 1].any(axis=1))
    return panel, t0, first, series


def forecast_frame(
    panel: Panel,
    series: np.ndarray,
    first_period: dt.date,
    quantiles: np.ndarray,
    mean: np.ndarray,
    qcols: list[str],
) -> pl.DataFrame:
    """One row per SKU and period from (S, H, Q) quantile and (S, H) mean forecasts."""
    n, horizon = mean.shape
    step = period_days(panel.grain)  # type: ignore[arg-type]
    targets = [first_period + dt.timedelta(days=step * h) for h in range(1, horizon + 1)]
    data: dict[str, Any] = {
        "sku_id": np.repeat(panel.sku_ids[series], horizon),
        "step": np.tile(np.arange(1, horizon + 1), n).astype(np.int32),
        "target_date": pl.Series(targets * n, dtype=pl.Date),
    }
    for j, name in enumerate(qcols):
        data[name] = quantiles[:, :, j].reshape(-1).astype(np.float64)
    data["mean"] = mean.reshape(-1).astype(np.float64)
    return pl.DataFrame(data)


def _empty_forecast(qcols: list[str]) -> pl.DataFrame:
    schema = {"sku_id": pl.Int64, "step": pl.Int32, "target_date": pl.Date}
    schema |= {c: pl.Float64 for c in qcols} | {"mean": pl.Float64}
    return pl.DataFrame(schema=schema)


class _EpochTimer(pl_.Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl_.Trainer, pl_module: pl_.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl_.Trainer, pl_module: pl_.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def train_forecaster(
    settings: Settings,
    features: pl.DataFrame | None = None,
    *,
    cutoff: dt.date | None = None,
    validate: bool = True,
    logger: Logger | bool = False,
    params: ForecastParams | None = None,
    threads: int | None = 1,
) -> TrainedForecaster:
    """Fit the LSTM forecaster on CPU from the demand features up to ``cutoff``.

    Args:
        settings: Configuration (``settings.forecast`` unless ``params`` is given) and warehouse.
        features: Mart-shaped rows; default: ``marts.mart_demand_features`` up to ``cutoff``.
        cutoff: Last day of data the model may see (default: all).
        validate: Hold out the last horizon to log ``val/wape`` (off for the final fit on all data).
        logger: A Lightning logger (e.g. ``MLFlowLogger``) or False.
        params: Overrides ``settings.forecast``.
        threads: Torch intra-op threads while fitting. One by default: the LSTM's small matrix
            products gain little from a second thread, and OpenMP threads that spin-wait for a
            busy core (other tasks on the worker) make each step many times slower. None leaves
            torch's setting.

    Returns:
        The fitted forecaster, with ``metrics``: ``train_loss``, ``val_wape`` (when validating),
        ``epochs``, ``epoch_seconds`` (mean), ``fit_seconds``, ``train_windows``, ``windows_per_epoch``.
    """
    params = params or settings.forecast
    started = time.perf_counter()
    if features is None:
        features = load_demand_features(settings, end=cutoff)
    pl_.seed_everything(params.seed, workers=True, verbose=False)
    datamodule = DemandDataModule(features, params, cutoff=cutoff, validate=validate)
    datamodule.setup("fit")
    stats = datamodule.stats
    assert stats is not None
    network_config = {
        "n_past": stats.n_past_inputs,
        "n_known": stats.n_known_free,
        "n_static": stats.n_static,
        "horizon": params.horizon,
        "n_quantiles": len(params.quantiles),
        "hidden_sizes": tuple(params.hidden_sizes),
    }
    network = DemandNetwork(**network_config)
    module = DemandForecastModule(network, params.quantiles, params.learning_rate)
    timer = _EpochTimer()
    trainer = pl_.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=params.epochs,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        deterministic=True,
        callbacks=[timer],
        num_sanity_val_steps=0,
        limit_val_batches=None if datamodule.val_windows is not None else 0,
        gradient_clip_val=1.0,
    )
    with torch_threads(threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        trainer.fit(module, datamodule=datamodule)
    network.eval()
    metrics: dict[str, float] = {
        "epochs": float(trainer.current_epoch),
        "epoch_seconds": float(np.mean(timer.seconds)) if timer.seconds else 0.0,
        "fit_seconds": time.perf_counter() - started,
        "train_windows": float(datamodule.n_train_windows),
        "windows_per_epoch": float(min(datamodule.n_train_windows, params.max_train_windows)),
    }
    for key, name in (("train/loss", "train_loss"), ("val/wape", "val_wape"), ("val/pinball", "val_pinball")):
        if key in trainer.callback_metrics:
            metrics[name] = float(trainer.callback_metrics[key])
    network_config["hidden_sizes"] = list(network_config["hidden_sizes"])
    return TrainedForecaster(
        network=network,
        stats=stats,
        quantiles=tuple(params.quantiles),
        network_config=network_config,
        metrics=metrics,
    )
