"""What every DAG shares: default task arguments and the assets that chain the stages."""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Asset

# `ecom dag` / `ecom run` set ECOM_TASK_RETRIES=0 so a one-off run fails fast instead of waiting to retry.
DEFAULT_ARGS = {"retries": int(os.environ.get("ECOM_TASK_RETRIES", "2")), "retry_delay": timedelta(minutes=2)}

# Emitted by the foundation DAG's publish task; the core DAG runs when it is updated.
PUBLISHED_MARTS = Asset(name="ecom_published_marts", uri="duckdb://warehouse/marts")
