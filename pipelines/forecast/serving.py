"""The MLflow model: a ``pyfunc`` wrapping a fitted forecaster (the LSTM or XGBoost).

``mlflow.pyfunc.load_model("models:/demand_forecaster@champion").predict(features, params=...)``
takes a mart-shaped pandas frame (``date``, ``sku_id``, ``units`` required; other
``mart_demand_features`` columns optional; daily rows, or for a weekly model one row per SKU per
week dated on its first day; rows after the origin may carry planned prices and promotions) and
returns one row per SKU and period: ``sku_id, step, target_date, p10, p50, p90, mean``. Params:
``origin`` (ISO date, default the last day with units) and ``horizon`` (periods, default the
trained horizon). Batch scoring unwraps the model (``unwrap_python_model().forecaster``)
to pass polars frames without a pandas round trip.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import pandas as pd
import polars as pl

from pipelines.forecast.boosted import TrainedBoostedForecaster
from pipelines.forecast.features import REQUIRED_COLUMNS, normalise_types
from pipelines.forecast.train import TrainedForecaster

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

MODEL_NAME = "demand_forecaster"
Forecaster = TrainedForecaster | TrainedBoostedForecaster
ARTIFACT_KEY = "forecaster"
# What the model needs at serving time (pinned to the installed versions by the registry helper).
REQUIREMENTS = ("torch", "lightning", "xgboost-cpu", "polars", "numpy", "pandas", "pyarrow")


def load_forecaster(directory: str | Path) -> Forecaster:
    """The forecaster saved in ``directory``, whichever kind it is."""
    if TrainedBoostedForecaster.is_saved_in(directory):
        return TrainedBoostedForecaster.load(directory)
    return TrainedForecaster.load(directory)


class DemandForecasterModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper around a forecaster (loaded from the ``forecaster`` artifact)."""

    def __init__(self) -> None:
        self.forecaster: Forecaster | None = None

    def load_context(self, context: Any) -> None:
        self.forecaster = load_forecaster(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.forecaster is None:
            self.load_context(context)
        assert self.forecaster is not None
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        params = params or {}
        origin = params.get("origin") or None
        horizon = int(params.get("horizon") or 0) or None
        out = self.forecaster.predict(
            frame,
            origin=dt.date.fromisoformat(str(origin)[:10]) if origin else None,
            horizon=horizon,
        )
        return out.to_pandas()


def _signature(example: pl.DataFrame, output: pl.DataFrame) -> Any:
    from mlflow.models import infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column.*", category=UserWarning)
        inferred = infer_signature(
            example.to_pandas(), output.to_pandas(), params={"origin": "", "horizon": 0}
        )
    # Typed: the keys. Untyped (AnyType): the measures, which arrive as integers, floats or
    # nullable columns depending on the source; prepare_features casts them itself.
    inputs = Schema(
        [
            ColSpec(
                col.type if col.name in ("date", "sku_id") else AnyType(),
                col.name,
                required=col.name in REQUIRED_COLUMNS,
            )
            for col in inferred.inputs.inputs  # type: ignore[union-attr]
        ]
    )
    inferred.inputs = inputs  # type: ignore[misc]
    return inferred


def input_example(features: pl.DataFrame, forecaster: Forecaster, n_skus: int = 2) -> pl.DataFrame:
    """A small, real input: ``n_skus`` SKUs' last lookback days, typed as plain pandas-friendly columns."""
    last = features["date"].max()
    days = forecaster.lookback * (7 if forecaster.grain == "weekly" else 1) + 7
    skus = (
        features.filter(pl.col("date") == last)
        .select("sku_id")
        .unique()
        .sort("sku_id")
        .head(n_skus)["sku_id"]
    )
    example = features.filter(
        pl.col("sku_id").is_in(skus.implode()) & (pl.col("date") > last - dt.timedelta(days=days))
    )
    example = normalise_types(example)
    # integers cannot hold missing values in pandas: declare every measure as double
    measures = [c for c, t in example.schema.items() if t.is_integer() and c != "sku_id"]
    return example.with_columns(pl.col(measures).cast(pl.Float64))


def log_forecaster(forecaster: Forecaster, features: pl.DataFrame, *, name: str = "model") -> ModelInfo:
    """Log the forecaster as a pyfunc model in the active run (signature, input example, pinned deps)."""
    from pipelines.ml.registry import pip_requirements

    example = input_example(features, forecaster)
    output = forecaster.predict(example)
    with tempfile.TemporaryDirectory() as tmp:
        path = forecaster.save(Path(tmp) / ARTIFACT_KEY)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=DemandForecasterModel(),
                artifacts={ARTIFACT_KEY: str(path)},
                signature=_signature(example, output),
                input_example=example.to_pandas(),
                pip_requirements=pip_requirements(*REQUIREMENTS),
            )


def unwrap(model: Any) -> Forecaster:
    """The forecaster inside a loaded pyfunc model."""
    inner = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    forecaster = getattr(inner, "forecaster", None)
    if not isinstance(forecaster, TrainedForecaster | TrainedBoostedForecaster):
        raise TypeError(f"{type(inner).__name__} is not a demand forecaster pyfunc model")
    return forecaster
