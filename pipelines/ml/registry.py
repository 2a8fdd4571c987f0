"""MLflow for every model family: tracking, run metadata, registry and the promotion rule.

One place decides where runs live, what every run records and when a model version becomes the
one we serve. Families do not call it directly: :func:`pipelines.ml.lifecycle.train_family` and
:func:`pipelines.ml.scoring.score_family` do, the same way for all of them::

    with tracked_run(settings, "forecast", "forecast-2025-12-31", params, standard_tags=tags) as run:
        ...  # evaluate, fit, log the model
    version = register(settings, run.info.run_id, info.model_uri, "demand_forecaster")
    promote_if_better(settings, "demand_forecaster", version, metric="wape", candidate=0.65,
                      baseline={"seasonal_naive": 0.95, "moving_average": 0.77},
                      champion_value=0.66, run_id=run.info.run_id)

Aliases, not stages: ``@challenger`` is the latest registered version, ``@champion`` the one
served. A version becomes champion only if it beats every baseline and the champion re-evaluated
on the same data (see :func:`promote_if_better` and docs/mlflow.md).

Importing this module has no side effects and does not import MLflow; :func:`tracking` switches
telemetry off and points MLflow at the configured store before anything talks to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib
import json
import logging
import math
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines import __version__
from pipelines.config import REPO_ROOT, Settings, disable_telemetry

if TYPE_CHECKING:
    import mlflow
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "EXPERIMENT_KIND_TAG",
    "MODEL_TRAINING",
    "NoChampionError",
    "PromotionDecision",
    "artifact_location",
    "champion_uri",
    "champion_version",
    "data_version",
    "experiment",
    "flatten_params",
    "git_commit",
    "load_champion",
    "log_figure",
    "log_metrics_table",
    "log_table",
    "pip_requirements",
    "promote_if_better",
    "register",
    "run_tags",
    "tracked_run",
    "tracking",
]

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
# The experiment tag the MLflow 3 UI reads for an experiment's kind, and its value for training
# models (the other kinds are GenAI ones and sub-kinds such as forecasting).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# Registry error codes that mean "no such model or alias" (SQLite store and REST server alike).
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


class NoChampionError(LookupError):
    """The registered model has no ``@champion`` version (or does not exist)."""

    def __init__(self, model_name: str, tracking_uri: str) -> None:
        self.model_name = model_name
        super().__init__(
            f"model {model_name!r} has no @champion version in {tracking_uri}: train it, "
            f"register a version and promote it with promote_if_better(...) first"
        )


# --- where runs live ----------------------------------------------------------------------------


def _is_server(uri: str) -> bool:
    return uri.split(":", 1)[0] in {"http", "https", "databricks"}


def tracking(settings: Settings) -> mlflow.MlflowClient:
    """Point MLflow (tracking and registry) at ``settings.tracking_uri`` and return a client.

    Also switches every tool's telemetry off and, when ``storage.s3_endpoint_url`` is set and
    ``MLFLOW_S3_ENDPOINT_URL`` is not, exports it so S3 artifacts go to the same endpoint.
    """
    disable_telemetry()
    if settings.storage.s3_endpoint_url:
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", settings.storage.s3_endpoint_url)
    import mlflow

    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def artifact_location(settings: Settings) -> str | None:
    """Where new experiments keep artifacts.

    ``mlflow.artifact_location`` when set (e.g. ``s3://bucket/mlruns``); otherwise
    ``$ECOM_HOME/mlruns`` for a local store and None (the server decides) for a tracking server.
    """
    if settings.mlflow.artifact_location:
        return settings.mlflow.artifact_location
    return None if _is_server(settings.tracking_uri) else settings.mlruns_dir.as_uri()


def experiment(settings: Settings, family: str) -> str:
    """Get or create the experiment ``<prefix>-<family>`` and return its id.

    The experiment is marked as model training (:data:`EXPERIMENT_KIND_TAG`), so the MLflow UI
    shows its runs and models rather than its GenAI overview; a kind set by hand is left alone.
    """
    if not family:
        raise ValueError("family must be a non-empty name, e.g. 'forecast'")
    client = tracking(settings)
    name = f"{settings.mlflow.experiment_prefix}-{family}"
    location = artifact_location(settings)
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING}
        )
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    if EXPERIMENT_KIND_TAG not in found.tags:
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    if location and found.artifact_location.rstrip("/") != location.rstrip("/"):
        log.warning(
            "experiment %s keeps artifacts in %s, not the configured %s (an experiment's artifact "
            "location is fixed when it is created)",
            name,
            found.artifact_location,
            location,
        )
    return found.experiment_id


# --- what every run records ---------------------------------------------------------------------


def git_commit(repo: Path = REPO_ROOT) -> tuple[str, bool]:
    """``(HEAD commit, dirty)`` of the code's repository; ``("unknown", False)`` outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return commit, dirty


def _dvc_raw_md5(settings: Settings) -> str | None:
    lock = settings.home / "dvc.lock"
    if not lock.is_file():
        return None
    try:
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    except yaml.YAMLError:
        return None
    for stage in stages.values():
        for out in (stage or {}).get("outs", []) or []:
            if isinstance(out, dict) and str(out.get("path", "")).rstrip("/") == "data/raw":
                return out.get("md5")
    return None


def data_version(settings: Settings) -> dict[str, str]:
    """Identify the raw data a run saw: ``data.version`` (+ ``data.partitions``, ``data.dvc_md5``).

    ``data.version`` is a sha256 over the sorted batch ids of the landed ``data/raw`` partitions
    (their manifests) plus DVC's md5 of ``data/raw`` from ``dvc.lock`` when present; ``none``
    when there is neither.
    """
    from pipelines.data.land import list_partitions, read_manifest

    batch_ids = []
    for partition in list_partitions(settings):
        try:
            batch_ids.append(str(read_manifest(partition)["batch_id"]))
        except (OSError, KeyError, ValueError):
            batch_ids.append(f"{partition.name}:no-manifest")
    dvc_md5 = _dvc_raw_md5(settings)
    out = {"data.partitions": str(len(batch_ids))}
    if dvc_md5:
        out["data.dvc_md5"] = dvc_md5
    if not batch_ids and not dvc_md5:
        out["data.version"] = "none"
        return out
    digest = hashlib.sha256("\n".join(sorted(batch_ids)).encode())
    if dvc_md5:
        digest.update(f"\ndvc:{dvc_md5}".encode())
    out["data.version"] = digest.hexdigest()[:16]
    return out


def run_tags(settings: Settings, family: str, run_date: dt.date | str | None = None) -> dict[str, str]:
    """The tags every run carries: code version, data version, family and run date."""
    commit, dirty = git_commit()
    tags = {
        "git.commit": commit,
        "git.dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,  # shown by the MLflow UI
        "ecom.version": __version__,
        "ecom.family": family,
        **data_version(settings),
    }
    if run_date is not None:
        tags["ecom.run_date"] = run_date.isoformat() if isinstance(run_date, dt.date) else str(run_date)
    return tags


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings, dataclasses and pydantic models as ``{"a.b": "value"}`` MLflow params."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value, default=str)
        elif isinstance(value, dt.date):
            out[name] = value.isoformat()
        else:
            out[name] = str(value)
    return out


@contextmanager
def tracked_run(
    settings: Settings,
    family: str,
    run_name: str,
    params: Mapping[str, Any],
    *,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    run_date: dt.date | str | None = None,
    note: str | None = None,
    standard_tags: Mapping[str, str] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """A run in the family's experiment with flattened params and the standard tags.

    Nest runs (e.g. backtest folds) with ``nested=True`` inside a parent ``tracked_run``, or
    with ``parent_run_id``. ``note`` becomes the run's description in the UI. The run ends as
    FAILED when the block raises. ``standard_tags``: :func:`run_tags` computed once by the caller
    (a training run and its nested runs share them), instead of per run.
    """
    import mlflow

    experiment_id = experiment(settings, family)
    base = standard_tags if standard_tags is not None else run_tags(settings, family, run_date)
    all_tags = dict(base) | {k: str(v) for k, v in (tags or {}).items()}
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        nested=nested,
        parent_run_id=parent_run_id,
        tags=all_tags,
        description=note,
    ) as run:
        if params:
            mlflow.log_params(flatten_params(params))
        yield run


def pip_requirements(*packages: str) -> list[str]:
    """Exact installed versions (``torch==2.13.0``, local ``+cpu`` dropped) for ``log_model``.

    Pass the result as ``pip_requirements=`` so MLflow never infers them (slow); MLflow adds its
    own pin.
    """
    out = []
    for package in packages:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError as exc:
            raise metadata.PackageNotFoundError(f"{package} is not installed in this environment") from exc
        out.append(f"{package}=={version.split('+', 1)[0]}")
    return out


# --- artifacts every family logs the same way ---------------------------------------------------


def log_figure(figure: Any, name: str, *, close: bool = True) -> str:
    """Log a matplotlib (or plotly) figure as ``figures/<name>`` (``.png`` unless given)."""
    import mlflow

    artifact = f"figures/{name if Path(name).suffix else name + '.png'}"
    mlflow.log_figure(figure, artifact)
    if close and hasattr(figure, "savefig"):
        import matplotlib.pyplot as plt

        plt.close(figure)
    return artifact


def log_table(frame: Any, name: str, *, formats: Sequence[str] = ("csv", "json")) -> list[str]:
    """Log a polars (or pandas) frame as ``tables/<name>.csv`` / ``.json`` (a list of records)."""
    import mlflow
    import polars as pl

    df = frame if isinstance(frame, pl.DataFrame) else pl.from_pandas(frame)
    artifacts = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            path = Path(tmp) / f"{name}.{fmt}"
            if fmt == "csv":
                df.write_csv(path)
            elif fmt == "json":
                path.write_text(json.dumps(df.to_dicts(), default=str, indent=1) + "\n")
            else:
                raise ValueError(f"unsupported table format {fmt!r}; use csv or json")
            mlflow.log_artifact(str(path), artifact_path="tables")
            artifacts.append(f"tables/{path.name}")
    return artifacts


def log_metrics_table(rows: Sequence[Mapping[str, Any]], name: str) -> list[str]:
    """Log rows such as ``[{"model": "lstm", "wape": 0.21}, {"model": "naive", ...}]`` as a table."""
    import polars as pl

    return log_table(pl.DataFrame([dict(r) for r in rows]), name)


# --- registry and promotion ---------------------------------------------------------------------


def _alias_version(client: mlflow.MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise


def _model_uri(client: mlflow.MlflowClient, run_id: str, path_or_uri: str) -> str:
    if "://" in path_or_uri or path_or_uri.startswith(("models:/", "runs:/")):
        return path_or_uri
    # MLflow 3 keeps logged models outside the run's artifacts: find the one this run logged
    # under that name (registering runs:/<id>/<name> works too, but warns and guesses).
    run = client.get_run(run_id)
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{path_or_uri}'",
    )
    if found:
        return max(found, key=lambda m: m.creation_timestamp).model_uri
    return f"runs:/{run_id}/{path_or_uri}"


def register(
    settings: Settings,
    run_id: str,
    artifact_path_or_model_uri: str,
    model_name: str,
    *,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> int:
    """Register the model a run logged and point ``@challenger`` at the new version.

    ``artifact_path_or_model_uri`` is the ``name`` given to ``log_model``, its ``model_uri``
    (``models:/m-...``) or a ``runs:/`` URI. ``metrics`` are recorded as ``metric.<name>`` version
    tags, the figures promotion compares.
    """
    import mlflow

    client = tracking(settings)
    uri = _model_uri(client, run_id, artifact_path_or_model_uri)
    version_tags = {k: str(v) for k, v in (tags or {}).items()}
    version_tags |= {f"metric.{k}": repr(float(v)) for k, v in (metrics or {}).items()}
    mv = mlflow.register_model(uri, model_name, tags=version_tags or None)
    client.set_registered_model_alias(model_name, CHALLENGER, mv.version)
    return int(mv.version)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a version became ``@champion``, and the figures that decided it."""

    model_name: str
    version: int
    metric: str
    candidate: float
    champion: float | None  # the current champion's value of the metric; None without one
    baseline: float  # the strongest baseline's value
    promoted: bool  # the version is @champion after the decision
    reason: str
    higher_is_better: bool
    champion_version: int | None = None  # the champion compared against
    baseline_name: str = "baseline"


def _version_metric(client: mlflow.MlflowClient, mv: ModelVersion, metric: str) -> float | None:
    tagged = (mv.tags or {}).get(f"metric.{metric}")
    if tagged is not None:
        return float(tagged)
    if mv.run_id:
        value = client.get_run(mv.run_id).data.metrics.get(metric)
        if value is not None:
            return float(value)
    return None


def _strongest(baselines: Mapping[str, float], higher: bool) -> tuple[str, float]:
    finite = {k: float(v) for k, v in baselines.items() if not math.isnan(float(v))}
    if not finite:
        raise ValueError(f"no finite baseline figure among {dict(baselines)}")
    name = (max if higher else min)(finite, key=finite.__getitem__)
    return name, finite[name]


def _decide(
    candidate: float,
    champion: float | None,
    champion_version: int | None,
    baseline: tuple[str, float],
    higher: bool,
    same_recipe: bool = False,
) -> tuple[bool, str]:
    def beats(a: float, b: float) -> bool:
        return a > b if higher else a < b

    direction = "higher" if higher else "lower"
    name, value = baseline
    if math.isnan(candidate):
        return False, "candidate metric is NaN"
    if not beats(candidate, value):
        return False, (
            f"does not beat every baseline: {name} scores {value:.6g} against {candidate:.6g} "
            f"({direction} is better)"
        )
    if champion_version is None:
        return True, f"first champion: beats every baseline (best, {name}: {value:.6g} vs {candidate:.6g})"
    if champion is None:
        return True, (
            f"beats every baseline ({name}: {value:.6g} vs {candidate:.6g}); champion v{champion_version} "
            f"has no figure for this metric"
        )
    if same_recipe and not beats(champion, candidate):
        # The champion's recipe is the candidate's: the same figure on the same folds, so the
        # fresher fit (more data) takes over.
        return True, (
            f"same recipe as champion v{champion_version} ({candidate:.6g}), refitted on newer data; "
            f"beats every baseline ({name}: {value:.6g})"
        )
    if not beats(candidate, champion):
        return False, (
            f"does not beat champion v{champion_version} ({candidate:.6g} vs {champion:.6g}, "
            f"{direction} is better)"
        )
    return True, (
        f"beats champion v{champion_version} ({candidate:.6g} vs {champion:.6g}) and every baseline "
        f"(best, {name}: {value:.6g})"
    )


def promote_if_better(
    settings: Settings,
    model_name: str,
    version: int,
    *,
    metric: str,
    candidate: float,
    baseline: float | Mapping[str, float],
    higher_is_better: bool = False,
    run_id: str | None = None,
    champion_value: float | None = None,
    same_recipe: bool = False,
) -> PromotionDecision:
    """Make ``version`` the ``@champion`` only if it strictly beats the champion and every baseline.

    Args:
        baseline: The baselines' figures by name (or one figure); the candidate must beat each.
        champion_value: The current champion's figure re-evaluated on the candidate's folds or
            held-out set (what the shared model layer passes). Without it: the champion's
            ``metric.<metric>`` version tag, else that metric of its run.
        same_recipe: The champion's recipe is the candidate's, so ``champion_value`` is the
            candidate's own figure: a tie then promotes the fresher fit.

    Without a champion the version only has to beat the baselines. The decision is logged to
    ``run_id`` (default: the version's run) as ``promotion.*`` tags and metrics, and on the model
    version as ``promotion.*`` tags; a lost comparison leaves ``@champion`` where it was.
    """
    client = tracking(settings)
    mv = client.get_model_version(model_name, str(version))
    candidate = float(candidate)
    baselines = baseline if isinstance(baseline, Mapping) else {"baseline": float(baseline)}
    strongest = _strongest(baselines, higher_is_better)
    current = _alias_version(client, model_name, CHAMPION)
    if current is not None and int(current.version) == int(version):
        promoted, reason, champion, champion_version = True, "already the champion", candidate, int(version)
    else:
        champion_version = int(current.version) if current is not None else None
        champion = None
        if current is not None:
            champion = (
                float(champion_value)
                if champion_value is not None
                else _version_metric(client, current, metric)
            )
        promoted, reason = _decide(
            candidate, champion, champion_version, strongest, higher_is_better, same_recipe
        )
        if current is not None and champion_value is None and champion is not None:
            reason += " (the champion's stored figure: it was not re-evaluated on this data)"
    decision = PromotionDecision(
        model_name=model_name,
        version=int(version),
        metric=metric,
        candidate=candidate,
        champion=champion,
        baseline=strongest[1],
        promoted=promoted,
        reason=reason,
        higher_is_better=higher_is_better,
        champion_version=champion_version,
        baseline_name=strongest[0],
    )
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, str(version))

    figures = {"promotion.candidate": candidate, "promotion.baseline": strongest[1]}
    if champion is not None:
        figures["promotion.champion_value"] = champion
    labels = {
        "promotion.promoted": str(promoted).lower(),
        "promotion.reason": reason,
        "promotion.metric": metric,
        "promotion.higher_is_better": str(higher_is_better).lower(),
        "promotion.baseline_name": strongest[0],
    }
    if champion_version is not None:
        labels["promotion.champion_version"] = str(champion_version)
    for key, value in (labels | {k: repr(v) for k, v in figures.items()}).items():
        client.set_model_version_tag(model_name, str(version), key, value)
    client.set_model_version_tag(model_name, str(version), f"metric.{metric}", repr(candidate))
    target_run = run_id or mv.run_id
    if target_run:
        for key, value in (labels | {"promotion.model": f"{model_name}/{version}"}).items():
            client.set_tag(target_run, key, value)
        for key, value in figures.items():
            client.log_metric(target_run, key, value)
    log.info("promotion %s v%s: %s (%s)", model_name, version, promoted, reason)
    return decision


def champion_version(settings: Settings, model_name: str) -> ModelVersion | None:
    """The ``@champion`` model version (with its tags), or None when there is none."""
    return _alias_version(tracking(settings), model_name, CHAMPION)


def champion_uri(model_name: str) -> str:
    """``models:/<name>@champion``, loadable by any MLflow flavor."""
    return f"models:/{model_name}@{CHAMPION}"


def load_champion(settings: Settings, model_name: str, flavor: str = "pyfunc") -> Any:
    """Load the ``@champion`` version with ``mlflow.<flavor>.load_model``.

    Raises:
        NoChampionError: The model does not exist or has no champion yet.
    """
    client = tracking(settings)
    if _alias_version(client, model_name, CHAMPION) is None:
        raise NoChampionError(model_name, settings.tracking_uri)
    return importlib.import_module(f"mlflow.{flavor}").load_model(champion_uri(model_name))
