"""The forecasting network: a plain ``nn.Module`` (no training logic here).

Encoder: LSTM(hidden_sizes[0]) -> LSTM(hidden_sizes[1]) over the lookback (scaled units, observed
flag, past-only and known covariates). Decoder: for each horizon step, a dense head reads the
encoder's last state, the static inputs (log scale, category), a step embedding and that step's
known calendar/event covariates, and emits ``n_quantiles`` quantiles plus a mean.

Shape constraints: the horizon's price change, competitor-gap change, promotion flag and discount
enter through one multiplicative term ``exp(-e_p * dprice - e_g * dgap + u_p * promo + u_d * discount)``
whose coefficients are softplus outputs (>= 0) of the encoder state. So, whatever the weights, a
higher price in the horizon never raises the forecast and a promotion never lowers it; the
coefficients' size is learned per window. Outputs are non-negative (softplus) and the quantiles
monotone (the first quantile plus cumulative non-negative increments, able to be exactly 0).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

N_MONOTONE = 4  # price change, competitor-gap change (demand falls), promotion, discount (demand rises)
_MAX_LOG_EFFECT = 3.0


def relu_straight_through(x: torch.Tensor) -> torch.Tensor:
    """ReLU forward (exact zeros), softplus gradient backward (never dead)."""
    soft = F.softplus(x)
    return soft - (soft - F.relu(x)).detach()


def monotone_quantiles(raw: torch.Tensor) -> torch.Tensor:
    """Non-negative, non-decreasing quantiles along the last axis from unconstrained outputs.

    The first quantile and each increment are ReLUs with a straight-through softplus gradient: a
    softplus floor can never reach 0, yet for slow movers the p10 (often the p50) of a day's units
    is exactly 0, and a p10 of 0.05 puts every zero-sales day outside the p10-p90 interval.
    """
    return torch.cumsum(relu_straight_through(raw), dim=-1)


class DemandNetwork(nn.Module):
    """Two-layer LSTM encoder with a per-step quantile head and a shape-constrained covariate term.

    Args:
        n_past: Inputs per lookback step.
        n_known: Free known-future covariates per horizon step.
        n_static: Static inputs per window.
        horizon: Horizon steps produced.
        n_quantiles: Quantiles per step (ascending levels).
        hidden_sizes: Units of the two LSTM layers.
        head_size: Width of the dense head.
        dropout: Dropout between the LSTM layers and in the head.
    """

    def __init__(
        self,
        n_past: int,
        n_known: int,
        n_static: int,
        horizon: int,
        n_quantiles: int,
        hidden_sizes: tuple[int, int] = (64, 32),
        head_size: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        h1, h2 = hidden_sizes
        self.horizon, self.n_quantiles = horizon, n_quantiles
        self.lstm1 = nn.LSTM(n_past, h1, batch_first=True)
        self.lstm2 = nn.LSTM(h1, h2, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        context = h2 + n_static
        self.step_embedding = nn.Embedding(horizon, 8)
        self.head = nn.Sequential(
            nn.Linear(context + n_known + 8, head_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head_size, n_quantiles + 1),
        )
        self.effects = nn.Linear(context, N_MONOTONE)
        with torch.no_grad():  # start near no effect (softplus(-3) = 0.05): effects are learned, not assumed
            self.effects.bias.fill_(-3.0)

    def forward(
        self, past: torch.Tensor, known: torch.Tensor, monotone: torch.Tensor, static: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast in scaled units.

        Args:
            past: (B, L, n_past). known: (B, H', n_known), H' <= horizon. monotone: (B, H', 4).
            static: (B, n_static).

        Returns:
            quantiles (B, H', n_quantiles) and mean (B, H'), both >= 0.
        """
        out, _ = self.lstm1(past)
        out, _ = self.lstm2(self.dropout(out))
        context = torch.cat([out[:, -1], static], dim=-1)
        steps = known.shape[1]
        step = self.step_embedding.weight[:steps].unsqueeze(0).expand(known.shape[0], -1, -1)
        head_in = torch.cat([context.unsqueeze(1).expand(-1, steps, -1), known, step], dim=-1)
        raw = self.head(head_in)
        quantiles = monotone_quantiles(raw[..., : self.n_quantiles])
        mean = F.softplus(raw[..., self.n_quantiles])
        coef = F.softplus(self.effects(context)).unsqueeze(1)  # (B, 1, 4), all >= 0
        signs = torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=monotone.dtype, device=monotone.device)
        log_effect = (coef * signs * monotone).sum(dim=-1).clamp(-_MAX_LOG_EFFECT, _MAX_LOG_EFFECT)
        factor = torch.exp(log_effect)
        return quantiles * factor.unsqueeze(-1), mean * factor
