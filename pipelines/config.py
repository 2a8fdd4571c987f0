"""One typed configuration for the CLI, DVC and Airflow.

Values come from ``params.yaml`` (grouped per stage), then environment variables
``ECOM_<SECTION>__<KEY>`` override single values (``ECOM_GENERATE__SEED=7``; a list as JSON or
comma-separated, ``ECOM_FORECAST__HIDDEN_SIZES=32,16``; ``null`` unsets an optional value). Secrets
are never read from the file: S3 credentials come from the usual ``AWS_*`` variables.

Load the settings once where a run starts (a CLI command, a DAG task) and pass them down.

Every path the system writes derives from one root, ``ECOM_HOME`` (default: the repo root).
Importing this module has no side effects.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import types
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "ECOM_"
# Older names still read, for the new name's value when that is not set. The dbt profile reads
# ECOM_DUCKDB_MEMORY_LIMIT itself; `ecom` passes it warehouse.memory_limit (pipelines/transform.py).
LEGACY_ENV = {"ECOM_DUCKDB_MEMORY_LIMIT": "ECOM_WAREHOUSE__MEMORY_LIMIT"}

Scale = Literal["tiny", "small", "medium", "large"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
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
    # How a daily DAG run waits for its batch at `source` ({date} replaced): it looks every
    # wait_poke_seconds, holding no worker slot in between, and fails once wait_timeout_minutes have
    # passed without one (0: look once and fail at once, as one-off runs want).
    wait_poke_seconds: int = Field(300, ge=1)
    wait_timeout_minutes: int = Field(360, ge=0)
    # What the landed sales rows stand for: a day, or a week dated by its first day. Weekly data
    # stays weekly through the gates, the mid-platform and the forecaster (forecast.grain: weekly).
    grain: Literal["daily", "weekly"] = "daily"
    # The first day of a week, for weekly sales rows and every weekly aggregate (scanner data often
    # starts weeks on Thursday, many retailers on Sunday).
    week_start: Weekday = "monday"
    # The currency of every money column landed (prices, revenue, costs), shown in the report.
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")

    @property
    def week_start_index(self) -> int:
        """The week's first day as Python's ``date.weekday()`` (0 = Monday)."""
        return WEEKDAYS.index(self.week_start)


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
    # Not a setting of its own: land.week_start, copied here by Settings so weekly periods start
    # on the same day everywhere (0 = Monday).
    week_start: int = Field(0, ge=0, le=6)
    horizon: int = Field(28, ge=1)  # periods ahead
    lookback: int = Field(56, ge=7)  # periods of history the network sees
    hidden_sizes: tuple[int, int] = (64, 32)  # the source's two-layer LSTM
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    # The training budget: epochs x max_train_windows sets the cost of every LSTM fit, whatever the
    # tier (batch size barely changes it); see docs/forecasting.md, "Training budget".
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
    # (1: on a machine shared with other jobs, OpenMP threads spin-wait for busy cores and a second
    # thread slows a fit down instead of speeding it up).
    xgboost_max_rows: int = Field(100_000, ge=1_000)
    xgboost_rounds: int = Field(200, ge=1)
    xgboost_threads: int = Field(1, ge=1)
    # Torch threads for batch scoring; one by default for the same reason.
    score_threads: int = Field(1, ge=1)
    seed: int = 42
    train_weekday: int = Field(0, ge=0, le=6)  # scheduled runs retrain on this weekday (0 = Monday)
    # SKUs with units in this many days up to the run date are scored.
    active_days: int = Field(56, ge=1)

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
    # Lead time of a SKU with no receipts and no product lead time.
    lead_time_fallback_days: float = Field(7.0, gt=0)


class QualityParams(_Section):
    """Thresholds of the raw gates (suite parameters supplied at run time) and the sales channels."""

    # The sales channels: the value set of every channel column, raw and marts. None: whatever
    # channels the data holds.
    channels: tuple[str, ...] | None = Field(("app", "web"), min_length=1)
    # More than this share of a table's rows quarantined blocks the partition.
    max_quarantine_rate: float = Field(0.05, ge=0, le=1)
    # A period (day or week) with sales rows for less than this share of the expected series blocks
    # the partition: each launched SKU in the channels it sells in.
    min_grid_coverage: float = Field(0.95, ge=0, le=1)
    # A series (SKU x channel) with no sales row in this many days before a batch is discontinued:
    # no longer expected, so a daily or weekly feed does not count it as a gap forever.
    discontinued_after_days: int = Field(56, ge=1)
    # A daily-grain table whose latest date is more days before the batch date is stale (warn).
    max_days_behind: int = Field(2, ge=0)
    # Tables larger than this are validated in slices of this many consecutive rows; the sales
    # reconciliation goes in SKU ranges of about this many rows. Bounds memory, not the result.
    max_rows_per_chunk: int = Field(2_000_000, ge=1)


class WarehouseParams(_Section):
    # DuckDB's memory cap, for dbt (the profile reads it as ECOM_DUCKDB_MEMORY_LIMIT) and for every
    # connection of ours; past it DuckDB spills to data/warehouse.duckdb.tmp. DuckDB's own default,
    # 80% of RAM, lets one big query take the machine.
    memory_limit: str = "8GB"

    @field_validator("memory_limit")
    @classmethod
    def _a_size(cls, value: str) -> str:
        # Checked here because it goes into a SET statement and the dbt profile as it is.
        if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B|bytes)", value.strip(), re.IGNORECASE):
            raise ValueError(f"expected a size such as 8GB or 512MiB, got {value!r}")
        return value.strip()


class DbtParams(_Section):
    # The dbt executable; None: the one installed beside the Python that runs ecom or Airflow.
    executable: str | None = None


class AirflowParams(_Section):
    # Retries of every DAG task. `ecom dag` and `ecom run` set ECOM_AIRFLOW__TASK_RETRIES=0 unless
    # it is set already, so a one-off run fails fast instead of waiting to retry.
    task_retries: int = Field(2, ge=0)
    retry_delay_minutes: float = Field(2.0, ge=0)
    # The pool every task of the DAGs runs in, and its slots: how many of them may run at once.
    # The embedded DuckDB file takes one writer at a time (a second process fails on its lock), so
    # 1; a server warehouse (Postgres) takes concurrent writers (docs/scheduling.md).
    warehouse_pool: str = Field("ecom_warehouse", min_length=1, max_length=256)
    warehouse_pool_slots: int = Field(1, ge=1)


class CrawlParams(_Section):
    """Competitor price monitoring: which rival sites, how politely, how sure a price must be."""

    # Rival sites, competitor name -> base URL. Empty: the simulated world's rivals, served on
    # 127.0.0.1 for the run date while the crawl runs (what `make run` and the tests do).
    sites: dict[str, str] = Field(default_factory=dict)
    # The top sellers (by units over the last 28 days) whose rival prices are watched.
    monitored_skus: int = Field(300, ge=1)
    concurrency: int = Field(8, ge=1)  # requests in flight per site
    requests_per_second: float = Field(20.0, gt=0)  # per site, whatever robots.txt allows above it
    max_retries: int = Field(4, ge=0)  # per request, on 429, 5xx and timeouts
    backoff_seconds: float = Field(0.2, ge=0)  # first retry's wait; doubles each time
    timeout_seconds: float = Field(10.0, gt=0)
    user_agent: str = "ecom-price-monitor/1.0"
    # Tesseract's word confidence (0-100) below which an image price is quarantined, not landed.
    min_ocr_confidence: float = Field(80.0, ge=0, le=100)
    cadence_minutes: int = Field(20, ge=1)  # how often the innovation DAG crawls


class PricingParams(_Section):
    """Price elasticity (the pricing model family) and the dynamic-pricing optimiser."""

    train_weekday: int = Field(0, ge=0, le=6)  # retrain elasticities weekly on this weekday (0 = Monday)
    estimation_days: int = Field(365, ge=56)  # history the elasticity models learn from
    holdout_days: int = Field(56, ge=7)  # the latest days, held out for evaluation
    # A SKU whose log price varies less than this (std over its estimation days) is not identified:
    # its elasticity borrows from its category and is flagged.
    min_price_variation: float = Field(0.03, ge=0)
    xgboost_rounds: int = Field(300, ge=10)
    dml_folds: int = Field(3, ge=2)
    seed: int = 7
    # The optimiser: maximise expected gross profit or revenue over the next day.
    objective: Literal["profit", "revenue"] = "profit"
    ladder_step_pct: float = Field(1.0, gt=0)  # the allowed price points, as steps off the list price
    ladder_min_pct: float = Field(-30.0, le=0)  # lowest rung, percent off the list price
    ladder_max_pct: float = Field(15.0, ge=0)  # highest rung, percent above the list price
    max_change_per_step_pct: float = Field(5.0, gt=0)  # one optimiser run moves a price at most this
    max_change_per_day_pct: float = Field(10.0, gt=0)  # from the day's first price
    min_margin_pct: float = Field(8.0, ge=0)  # price at least unit cost x (1 + this)
    # Share of SKUs (with a rival price) priced at or below their cheapest rival: the price-advantage
    # rule. 0 switches it off.
    price_advantage_share: float = Field(0.92, ge=0, le=1)
    overstock_cover_days: float = Field(60.0, gt=0)  # more cover than this: no price rise, clear stock
    scarce_cover_days: float = Field(7.0, ge=0)  # less cover than this: no price cut, protect stock
    max_competitor_age_minutes: int = Field(60, ge=1)  # older rival prices block publishing
    promo_lock: bool = True  # promoted SKUs keep their promotion price


class Settings(_Section):
    home: Path = Field(default=REPO_ROOT)
    generate: GenerateParams = GenerateParams()
    land: LandParams = LandParams()
    storage: StorageParams = StorageParams()
    rollout: RolloutParams = RolloutParams()
    mlflow: MlflowParams = MlflowParams()
    forecast: ForecastParams = ForecastParams()
    replenishment: ReplenishmentParams = ReplenishmentParams()
    quality: QualityParams = QualityParams()
    warehouse: WarehouseParams = WarehouseParams()
    dbt: DbtParams = DbtParams()
    airflow: AirflowParams = AirflowParams()
    crawl: CrawlParams = CrawlParams()
    pricing: PricingParams = PricingParams()

    @model_validator(mode="before")
    @classmethod
    def _one_week_start(cls, values: Any) -> Any:
        """``forecast.week_start`` follows ``land.week_start``; weekly landed sales need weekly forecasts."""
        if not isinstance(values, dict):
            return values

        def plain(section: Any) -> dict[str, Any]:
            return section.model_dump() if isinstance(section, BaseModel) else dict(section or {})

        land, forecast = plain(values.get("land")), plain(values.get("forecast"))
        week_start = land.get("week_start", "monday")
        if week_start not in WEEKDAYS:
            return values  # the land section's own validation names the bad value
        index = WEEKDAYS.index(week_start)
        if forecast.get("week_start", index) != index:
            raise ValueError("forecast.week_start is not a setting of its own: set land.week_start")
        if land.get("grain") == "weekly" and forecast.get("grain", "daily") != "weekly":
            raise ValueError(
                "land.grain is weekly but forecast.grain is daily: weekly sales cannot be forecast "
                "by day; set forecast.grain: weekly"
            )
        return {**values, "forecast": {**forecast, "week_start": index}}

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
        if not path.is_absolute() and not path.is_file() and (REPO_ROOT / path).is_file():
            path = REPO_ROOT / path  # a file shipped with the repo, e.g. examples/retailer/params.yaml
        if not path.is_file():
            raise ConfigError(f"ECOM_PARAMS points to {path}, which is not a file")
        return path
    for candidate in (home / "params.yaml", REPO_ROOT / "params.yaml"):
        if candidate.is_file():
            return candidate
    return None


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    """``{section: {key: (variable, value)}}`` of the ``ECOM_<SECTION>__<KEY>`` variables.

    Hand-written rather than pydantic-settings' nested environment support, which reads only
    ``os.environ`` (tests pass a mapping), silently ignores an unknown section, takes lists only as
    JSON and names the field, not the variable, when a value does not parse.
    """
    named = {key: (key, value) for key, value in environ.items()}
    for old, new in LEGACY_ENV.items():
        if old in environ and new not in environ:
            named[new] = (old, environ[old])
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for key, (variable, value) in named.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, field = key[len(ENV_PREFIX) :].lower().partition("__")
        out.setdefault(section, {})[field] = (variable, value)
    return out


def _field_type(section: str, field: str) -> Any:
    """The annotation of ``<section>.<field>``, or None for a key the section does not have."""
    info = Settings.model_fields[section].annotation.model_fields.get(field)  # type: ignore[union-attr]
    return None if info is None else info.annotation


def _members(annotation: Any) -> tuple[Any, ...]:
    """The types of a union (``int | None`` -> int, NoneType), or the type itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _env_value(annotation: Any, variable: str, value: str) -> Any:
    """An environment string as the field wants it: a list for a tuple or list field, None for null."""
    members = _members(annotation)
    text = value.strip()
    if type(None) in members and text.lower() in {"", "null", "none"}:
        return None
    if not any(get_origin(m) in (tuple, list) or m in (tuple, list) for m in members):
        return value
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{variable}={value!r} is not a JSON list ({exc.msg}); write e.g. [32, 16] or 32,16"
            ) from exc
    return [part.strip() for part in text.split(",")] if text else []


def _invalid(exc: ValidationError, origins: dict[tuple[str, str], str], path: Path | None) -> ConfigError:
    """A ConfigError with a line per problem, naming the variable or file each bad value came from."""
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        origin = origins.get((str(loc[0]), str(loc[1]))) if len(loc) >= 2 else None
        if not loc:  # a rule across sections (Settings' own validator): its message names them
            lines.append(f"  {str(error['msg']).removeprefix('Value error, ')}")
            continue
        where = origin or (f"from {path}" if path else "default")
        lines.append(f"  {'.'.join(str(p) for p in loc)} ({where}): {error['msg']}")
    return ConfigError("invalid configuration:\n" + "\n".join(lines))


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read params.yaml and environment overrides into a validated Settings.

    Raises:
        ConfigError: The file or an override is invalid; the message names the key and the variable
            or file it came from.
    """
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
    origins: dict[tuple[str, str], str] = {}
    for section, values in _env_overrides(environ).items():
        if section not in Settings.model_fields or section == "home":
            raise ConfigError(
                f"unknown configuration section in environment: {ENV_PREFIX}{section.upper()}__..."
            )
        for field, (variable, value) in values.items():
            raw.setdefault(section, {})[field] = _env_value(_field_type(section, field), variable, value)
            origins[(section, field)] = f"from {variable}={value!r}"
    try:
        return Settings(home=home, **raw)
    except ValidationError as exc:
        raise _invalid(exc, origins, path) from exc


def disable_telemetry() -> None:
    """Switch off every tool's calls home in this process (and its children)."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
