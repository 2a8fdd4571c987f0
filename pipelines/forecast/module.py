"""The LightningModule: losses, metrics and the optimiser around :class:`DemandNetwork`.

Loss = pinball (quantile) loss over the quantiles + a Poisson deviance term for the mean output,
both on scaled units and masked to the periods that count (observed and in stock). Validation logs
``val/wape`` (torchmetrics' weighted MAPE of the p50 in units, i.e. sum |p50 - y| / sum y) and
``val/pinball``.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl_
import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.regression import WeightedMeanAbsolutePercentageError

from pipelines.forecast.network import DemandNetwork


def pinball_loss(
    pred: torch.Tensor, target: torch.Tensor, quantiles: Sequence[float], mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean pinball loss. ``pred`` (..., Q), ``target`` and ``mask`` (...).

    For level q and error e = y - yhat: q * e when e >= 0 (under-forecast), (q - 1) * e otherwise.
    """
    levels = torch.as_tensor(quantiles, dtype=pred.dtype, device=pred.device)
    err = target.unsqueeze(-1) - pred
    loss = torch.maximum(levels * err, (levels - 1) * err)
    if mask is None:
        return loss.mean()
    weights = mask.unsqueeze(-1).expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp_min(1.0)


def poisson_deviance(mean: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    loss = F.poisson_nll_loss(mean, target, log_input=False, full=False, reduction="none", eps=1e-6)
    return (loss * mask).sum() / mask.sum().clamp_min(1.0)


class DemandForecastModule(pl_.LightningModule):
    """Trains a :class:`DemandNetwork` with pinball + Poisson loss and AdamW."""

    def __init__(
        self,
        network: DemandNetwork,
        quantiles: Sequence[float],
        learning_rate: float,
        *,
        weight_decay: float = 1e-4,
        mean_weight: float = 0.5,
    ) -> None:
        super().__init__()
        self.network = network
        self.quantiles = tuple(float(q) for q in quantiles)
        self.median_index = min(range(len(self.quantiles)), key=lambda i: abs(self.quantiles[i] - 0.5))
        self.learning_rate, self.weight_decay, self.mean_weight = learning_rate, weight_decay, mean_weight
        self.val_wape = WeightedMeanAbsolutePercentageError()
        self.val_pinball = MeanMetric()

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network(batch["past"], batch["known"], batch["monotone"], batch["static"])

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        quantiles, mean = self(batch)
        pinball = pinball_loss(quantiles, batch["target"], self.quantiles, batch["mask"])
        loss = pinball + self.mean_weight * poisson_deviance(mean, batch["target"], batch["mask"])
        return loss, pinball, quantiles

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, pinball, _ = self._loss(batch)
        size = batch["past"].shape[0]
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/pinball", pinball, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, pinball, quantiles = self._loss(batch)
        keep = batch["mask"] > 0
        scale = batch["scale"].unsqueeze(-1)
        p50 = (quantiles[..., self.median_index] * scale)[keep]
        actual = (batch["target"] * scale)[keep]
        if actual.numel():
            self.val_wape.update(p50, actual)
        self.val_pinball.update(pinball, weight=max(int(keep.sum()), 1))
        size = batch["past"].shape[0]
        self.log("val/loss", loss, on_step=False, on_epoch=True, batch_size=size)
        self.log("val/wape", self.val_wape, on_step=False, on_epoch=True, batch_size=size)
        self.log("val/pinball", self.val_pinball, on_step=False, on_epoch=True, batch_size=size)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
