"""One typed configuration for the CLI, DVC and Airflow.

Values come from ``params.yaml`` (grouped per stage), then environment variables
``ECOM_<SECTION>__<KEY>`` override single values (``ECOM_GENERATE__SEED=7``). Secrets are
never read from the file: S3 credentials come from the usual ``AWS_*`` variables.

Every path the system writes derives from one root, ``ECOM_HOME`` (default: the repo root).
Importing this module has no side effects.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "ECOM_"

Scale = Literal["tiny", "small", "medium", "large"]
Stage = Literal["foundation", "core", "innovation"]

# Calls home that every tool in the stack makes unless told not to (see docs/operations.md).
TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "DO_NOT_TRACK": "1",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
}


class ConfigError(ValueError):
    """The configuration file or an override is invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GenerateParams(_Section):
    scale: Scale = "small"
    seed: int = 42
    start_date: dt.date = dt.date(2024, 1, 1)


class LandParams(_Section):
    # Where `ecom land` reads from when --source is not given: a folder (relative paths are
    # under ECOM_HOME) or an s3://bucket/prefix URI.
    source: str = "data/generated"


class StorageParams(_Section):
    # None means AWS's own endpoint; tests and local setups point this at moto or MinIO.
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"


STAGES: tuple[Stage, ...] = ("foundation", "core", "innovation")


class RolloutParams(_Section):
    # The source's phased plan: each stage includes the ones before it.
    stage: Stage = "core"

    def enabled(self, stage: Stage) -> bool:
        return STAGES.index(stage) <= STAGES.index(self.stage)


class MlflowParams(_Section):
    # None: a SQLite store at $ECOM_HOME/mlflow.db with artifacts in $ECOM_HOME/mlruns.
    # A server: tracking_uri http://host:5000 (artifacts then go where the server says).
    tracking_uri: str | None = None
    # Where new experiments keep artifacts when the store is local, e.g. s3://bucket/mlruns.
    artifact_location: str | None = None
    experiment_prefix: str = "ecom"


class ForecastParams(_Section):
    grain: Literal["daily", "weekly"] = "daily"
    horizon: int = Field(28, ge=1)  # periods ahead
    lookback: int = Field(56, ge=7)  # periods of history the network sees
    hidden_sizes: tuple[int, int] = (64, 32)  # the source's two-layer LSTM
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    # The training budget. An LSTM fit costs about (epochs x max_train_windows) / 2,500 seconds on
    # one CPU core, whatever the tier (batch size barely changes the rate), so these two set the
    # time of every fit; see docs/forecasting.md, "Training budget".
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(4e-3, gt=0)
    backtest_folds: int = Field(3, ge=1)
    holdout_days: int = Field(28, ge=7)  # each fold's test window
    max_train_windows: int = Field(45_000, ge=1_000)  # sampled windows per epoch, bounds CPU time
    # The backtest refits the LSTM once per fold; None: the final fit's budget.
    backtest_epochs: int | None = Field(None, ge=1)
    backtest_max_train_windows: int | None = Field(None, ge=1_000)
    # The XGBoost baseline, fitted once per fold: sampled training rows, boosting rounds, threads
    # (1: OpenMP threads spin-waiting for a busy core made fits up to 5x slower than one thread).
    xgboost_max_rows: int = Field(100_000, ge=1_000)
    xgboost_rounds: int = Field(200, ge=1)
    xgboost_threads: int = Field(1, ge=1)
    # Torch threads for batch scoring. One by default for the same reason: 20k SKUs took 5.7-6.7 s
    # with 1 thread and 8.2-10.1 s with 2 while another job ran on the 2 cores.
    score_threads: int = Field(1, ge=1)
    seed: int = 42
    train_weekday: int = Field(0, ge=0, le=6)  # scheduled runs retrain on this weekday (0 = Monday)

    def for_backtest(self) -> ForecastParams:
        """These parameters with the backtest's LSTM budget in place of the final fit's."""
        return self.model_copy(
            update={
                "epochs": self.backtest_epochs or self.epochs,
                "max_train_windows": self.backtest_max_train_windows or self.max_train_windows,
            }
        )


class ReplenishmentParams(_Section):
    service_level: float = Field(0.95, gt=0.5, lt=1.0)
    review_period_days: int = Field(7, ge=1)
    traditional_moving_average_days: int = Field(28, ge=7)
    traditional_safety_days: float = Field(7.0, ge=0)


class Settings(_Section):
    home: Path = Field(default=REPO_ROOT)
    generate: GenerateParams = GenerateParams()
    land: LandParams = LandParams()
    storage: StorageParams = StorageParams()
    rollout: RolloutParams = RolloutParams()
    mlflow: MlflowParams = MlflowParams()
    forecast: ForecastParams = ForecastParams()
    replenishment: ReplenishmentParams = ReplenishmentParams()

    @cached_property
    def data_dir(self) -> Path:
        return self.home / "data"

    @cached_property
    def generated_dir(self) -> Path:
        return self.data_dir / "generated"

    @cached_property
    def truth_dir(self) -> Path:
        return self.data_dir / "truth"

    @cached_property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @cached_property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @cached_property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @cached_property
    def mlruns_dir(self) -> Path:
        return self.home / "mlruns"

    @cached_property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @cached_property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    def resolve(self, path: str | Path) -> Path:
        """A path relative to ECOM_HOME, or the path itself when absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.home / p


def _params_file(home: Path, environ: dict[str, str]) -> Path | None:
    if explicit := environ.get("ECOM_PARAMS"):
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"ECOM_PARAMS points to {path}, which is not a file")
        return path
    for candidate in (home / "params.yaml", REPO_ROOT / "params.yaml"):
        if candidate.is_file():
            return candidate
    return None


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, field = key[len(ENV_PREFIX) :].lower().partition("__")
        out.setdefault(section, {})[field] = value
    return out


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read params.yaml and environment overrides into a validated Settings."""
    environ = dict(os.environ if environ is None else environ)
    home = Path(environ.get("ECOM_HOME") or REPO_ROOT).expanduser().resolve()
    raw: dict[str, Any] = {}
    path = _params_file(home, environ)
    if path is not None:
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(loaded).__name__}")
        unknown = sorted(set(loaded) - set(Settings.model_fields) - {"home"})
        if unknown:
            raise ConfigError(f"{path}: unknown section(s) {unknown}; known: {sorted(Settings.model_fields)}")
        raw = {k: dict(v or {}) for k, v in loaded.items() if k != "home"}
    for section, values in _env_overrides(environ).items():
        if section not in Settings.model_fields or section == "home":
            raise ConfigError(
                f"unknown configuration section in environment: {ENV_PREFIX}{section.upper()}__..."
            )
        raw.setdefault(section, {}).update(values)
    try:
        return Settings(home=home, **raw)
    except ValidationError as exc:
        where = f" ({path})" if path else ""
        raise ConfigError(f"invalid configuration{where}:\n{exc}") from exc


def disable_telemetry() -> None:
    """Switch off every tool's calls home in this process (and its children)."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
