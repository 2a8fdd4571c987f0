"""Lightning plumbing: windows split by time, sampled per epoch, batched for the LSTM.

:class:`DemandDataModule` splits windows by time (validation targets start after every training
target ends) and samples at most ``max_train_windows`` training windows per epoch, seeded.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import lightning.pytorch as pl_
import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipelines.forecast.features import MART, ForecastDataError, prepare_history
from pipelines.forecast.panel import FeatureStats, Panel, build_panel, gather_windows, window_origins

if TYPE_CHECKING:
    from pipelines.config import ForecastParams


def _no_windows_message(panel: Panel, horizon: int) -> str:
    """Why no training window could be cut, in the settings' terms."""
    span = f"{panel.n_periods} {panel.grain} periods ({panel.periods[0]} .. {panel.periods[-1]})"
    if panel.n_periods <= horizon:
        return (
            f"no training windows: marts.{MART} holds {span} of history, and a training window needs "
            f"at least one period of history followed by forecast.horizon ({horizon}) periods, so at "
            f"least {horizon + 1} periods. Lower forecast.horizon or land more history"
        )
    return (
        f"no training windows: in {span} no SKU has a period with units (in stock) within "
        f"forecast.horizon ({horizon}) periods after a period of history; missing periods and "
        f"stock-outs are not targets. Check the units and stockout columns of marts.{MART}, or lower "
        f"forecast.horizon"
    )


class WindowDataset(Dataset):
    """Windows addressed by position; indexed with an array of positions, it returns a whole batch."""

    def __init__(self, panel: Panel, stats: FeatureStats, series: np.ndarray, origins: np.ndarray) -> None:
        self.panel, self.stats = panel, stats
        self.series, self.origins = series, origins

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        positions = np.sort(np.atleast_1d(positions))
        arrays = gather_windows(self.panel, self.stats, self.series[positions], self.origins[positions])
        return {k: torch.from_numpy(v) for k, v in arrays.items()}


class EpochBatchSampler(Sampler):
    """Yields batches of positions: a seeded sample of at most ``per_epoch`` windows, new each epoch."""

    def __init__(
        self, n: int, batch_size: int, per_epoch: int | None, seed: int, *, shuffle: bool = True
    ) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.per_epoch = n if per_epoch is None else min(n, per_epoch)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.per_epoch / self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(self.n)[: self.per_epoch]
        else:
            order = np.arange(self.per_epoch)
        for i in range(0, len(order), self.batch_size):
            yield order[i : i + self.batch_size]


def _loader(dataset: WindowDataset, sampler: EpochBatchSampler, num_workers: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


class DemandDataModule(pl_.LightningDataModule):
    """Training and validation windows from a features frame, split by time.

    With ``validate``, the validation windows are every SKU's window whose horizon is the last
    ``horizon`` periods up to the cutoff; training windows are those whose targets end on or before
    the validation origin, so no training target falls in the validation period. Without it, every
    window up to the cutoff trains (the final fit).

    Args:
        features: Mart-shaped daily rows (see :func:`prepare_features`).
        params: The ``forecast`` configuration.
        cutoff: Last day whose data may be used (default: the last row's date).
        validate: Hold out the last horizon for ``val/wape``.
        num_workers: DataLoader workers (0: in-process, deterministic, the default).
    """

    def __init__(
        self,
        features: pl.DataFrame,
        params: ForecastParams,
        *,
        cutoff: dt.date | None = None,
        validate: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.features, self.params, self.cutoff = features, params, cutoff
        self.validate, self.num_workers = validate, num_workers
        self.panel: Panel | None = None
        self.stats: FeatureStats | None = None
        self.train_windows: tuple[np.ndarray, np.ndarray] | None = None
        self.val_windows: tuple[np.ndarray, np.ndarray] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.panel is not None:
            return
        p = self.params
        frame = self.features
        if self.cutoff is not None:
            frame = frame.filter(pl.col("date") <= self.cutoff)
        if frame.is_empty():
            raise ForecastDataError(
                f"marts.{MART} has no row on or before {self.cutoff}: choose a later --date, or land "
                f"and publish the history before it"
            )
        prepared = prepare_history(frame, p.grain, p.week_start)
        self.panel = panel = build_panel(prepared, p.grain)
        last = panel.n_periods - 1
        if self.validate and panel.n_periods > 2 * p.horizon + 1:
            val_origin = last - p.horizon
            self.val_windows = window_origins(panel, p.lookback, p.horizon, first=val_origin, last=val_origin)
            self.train_windows = window_origins(
                panel, p.lookback, p.horizon, first=0, last=val_origin - p.horizon
            )
            stats_upto = val_origin
        else:
            self.val_windows = None
            self.train_windows = window_origins(panel, p.lookback, p.horizon, first=0, last=last)
            stats_upto = last
        if len(self.train_windows[0]) == 0:
            raise ForecastDataError(_no_windows_message(panel, p.horizon))
        self.stats = FeatureStats.fit(panel, p.lookback, p.horizon, last=stats_upto, week_start=p.week_start)

    @property
    def n_train_windows(self) -> int:
        return 0 if self.train_windows is None else len(self.train_windows[0])

    def train_dataloader(self) -> DataLoader:
        assert self.panel is not None and self.stats is not None and self.train_windows is not None
        dataset = WindowDataset(self.panel, self.stats, *self.train_windows)
        sampler = EpochBatchSampler(
            len(dataset), self.params.batch_size, self.params.max_train_windows, self.params.seed
        )
        return _loader(dataset, sampler, self.num_workers)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_windows is None or len(self.val_windows[0]) == 0:
            return []
        assert self.panel is not None and self.stats is not None
        dataset = WindowDataset(self.panel, self.stats, *self.val_windows)
        sampler = EpochBatchSampler(len(dataset), max(self.params.batch_size, 1024), None, 0, shuffle=False)
        return _loader(dataset, sampler, self.num_workers)
