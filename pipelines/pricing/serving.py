"""The MLflow model: a ``pyfunc`` wrapping a fitted elasticity estimator.

``mlflow.pyfunc.load_model("models:/price_elasticity@champion").predict(frame)`` takes a frame with
a ``sku_id`` column and returns, for each SKU the estimator was fitted on (others: their category's
pooled figures when ``category`` is given, else nothing), ``sku_id, own_elasticity,
own_elasticity_low, own_elasticity_high, cross_elasticity, identified, n_days, price_variation,
category``. Batch scoring unwraps the model (``unwrap``) and recomputes each SKU's data summary from
the warehouse for the run date (:func:`pipelines.pricing.family.PricingFamily.predict_batch`).
"""

from __future__ import annotations

import pickle
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import pandas as pd
import polars as pl

from pipelines.pricing.estimators import ELASTICITY_COLUMNS, Fitted

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

ARTIFACT_KEY = "estimator"
# What the model needs at serving time (pinned to the installed versions by the registry helper).
REQUIREMENTS = ("xgboost-cpu", "scikit-learn", "doubleml", "polars", "numpy", "pandas", "pyarrow")


def save_fitted(fitted: Fitted, path: Path) -> Path:
    """Pickle the fitted estimator (its boosters and nuisance models with it) to ``path``."""
    path.write_bytes(pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_fitted(path: str | Path) -> Fitted:
    """The fitted estimator saved by :func:`save_fitted`."""
    fitted = pickle.loads(Path(path).read_bytes())
    if not isinstance(fitted, Fitted):
        raise TypeError(f"{path} does not hold a fitted elasticity estimator")
    return fitted


def lookup(fitted: Fitted, frame: pl.DataFrame) -> pl.DataFrame:
    """The fitted elasticities of ``frame``'s SKUs (an unseen SKU with a category: its category's)."""
    wanted = frame.select(pl.col("sku_id").cast(pl.Int64)).unique(maintain_order=True)
    known = wanted.join(fitted.skus.select(ELASTICITY_COLUMNS), on="sku_id", how="inner")
    if "category" not in frame.columns:
        return known
    unseen = (
        frame.select(pl.col("sku_id").cast(pl.Int64), pl.col("category").cast(pl.Utf8))
        .unique("sku_id", keep="first", maintain_order=True)
        .join(fitted.skus.select("sku_id"), on="sku_id", how="anti")
        .join(fitted.categories.drop("level"), on="category", how="inner")
        .with_columns(
            pl.lit(False).alias("identified"),
            pl.lit(0, pl.Int64).alias("n_days"),
            pl.lit(None, pl.Float64).alias("price_variation"),
        )
    )
    return pl.concat([known, unseen.select(ELASTICITY_COLUMNS)], how="vertical_relaxed")


class PriceElasticityModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper around a fitted estimator (loaded from the ``estimator`` artifact)."""

    def __init__(self) -> None:
        self.fitted: Fitted | None = None

    def load_context(self, context: Any) -> None:
        self.fitted = load_fitted(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.fitted is None:
            self.load_context(context)
        assert self.fitted is not None
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        return lookup(self.fitted, frame).to_pandas()


def log_estimator(fitted: Fitted, *, name: str = "model") -> ModelInfo:
    """Log the estimator as a pyfunc model in the active run (signature, input example, pinned deps)."""
    from mlflow.models import infer_signature

    from pipelines.ml.registry import pip_requirements

    example = fitted.skus.select("sku_id", "category").head(3)
    output = lookup(fitted, example)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column.*", category=UserWarning)
        signature = infer_signature(example.to_pandas(), output.to_pandas())
    with tempfile.TemporaryDirectory() as tmp:
        path = save_fitted(fitted, Path(tmp) / f"{ARTIFACT_KEY}.pkl")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=PriceElasticityModel(),
                artifacts={ARTIFACT_KEY: str(path)},
                signature=signature,
                input_example=example.to_pandas(),
                pip_requirements=pip_requirements(*REQUIREMENTS),
            )


def unwrap(model: Any) -> Fitted:
    """The fitted estimator inside a loaded pyfunc model."""
    inner = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    fitted = getattr(inner, "fitted", None)
    if not isinstance(fitted, Fitted):
        raise TypeError(f"{type(inner).__name__} is not a price-elasticity pyfunc model")
    return fitted
