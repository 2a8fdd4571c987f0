"""What the MLflow UI shows of a training run: the experiment opens as model training (not on the
GenAI overview) and the run lists its training input as a dataset."""

from __future__ import annotations

import pytest

from pipelines.config import Settings
from pipelines.ml import registry
from tests.integration.test_ml_layer import RUN_DATE, StoreLevels, store_days, write_days

pytestmark = pytest.mark.integration


def test_experiments_are_marked_as_model_training_when_created_or_found(settings: Settings) -> None:
    client = registry.tracking(settings)
    created = registry.experiment(settings, "toy")
    assert client.get_experiment(created).tags[registry.EXPERIMENT_KIND_TAG] == registry.MODEL_TRAINING

    # One made before the tag existed gets it; one whose kind was set by hand keeps that kind.
    older = client.create_experiment(f"{settings.mlflow.experiment_prefix}-older")
    registry.experiment(settings, "older")
    assert client.get_experiment(older).tags[registry.EXPERIMENT_KIND_TAG] == registry.MODEL_TRAINING
    client.set_experiment_tag(created, registry.EXPERIMENT_KIND_TAG, "forecasting")
    registry.experiment(settings, "toy")
    assert client.get_experiment(created).tags[registry.EXPERIMENT_KIND_TAG] == "forecasting"


def test_a_training_run_logs_its_input_once_as_a_training_dataset(settings: Settings) -> None:
    from pipelines.ml.lifecycle import train_family

    write_days(settings, store_days(noise=3.0))
    first = train_family(StoreLevels(), settings, RUN_DATE)
    client = registry.tracking(settings)

    inputs = client.get_run(first.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    (logged,) = inputs
    assert [(t.key, t.value) for t in logged.tags] == [("mlflow.data.context", "training")]
    assert logged.dataset.name == "toy-training"  # the toy family names no source table
    assert logged.dataset.source_type == "local"
    assert str(settings.warehouse_path) in logged.dataset.source
    schema = logged.dataset.schema
    assert all(name in schema for name in ('"store_id"', '"day"', '"value"'))
    # Nested runs (folds, the final fit) do not repeat it.
    children = client.search_runs(
        [client.get_run(first.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{first.run_id}'",
    )
    assert children and all(not c.inputs.dataset_inputs for c in children)

    # The same data gives the same digest; other data another.
    again = train_family(StoreLevels(), settings, RUN_DATE)
    assert client.get_run(again.run_id).inputs.dataset_inputs[0].dataset.digest == logged.dataset.digest
    write_days(settings, store_days(noise=3.0, seed=1).head(400))
    other = train_family(StoreLevels(), settings, RUN_DATE)
    assert client.get_run(other.run_id).inputs.dataset_inputs[0].dataset.digest != logged.dataset.digest
