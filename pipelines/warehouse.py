"""Opening the DuckDB warehouse with the memory cap dbt uses (``dbt/profiles.yml``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

DEFAULT_MEMORY_LIMIT = "8GB"


def memory_limit() -> str:
    """DuckDB's memory cap: ``ECOM_DUCKDB_MEMORY_LIMIT`` (as in the dbt profile), default 8GB."""
    return os.environ.get("ECOM_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)


def connect_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the warehouse that spills past the cap instead of growing.

    DuckDB's own default is 80% of RAM: `ecom publish` copying the large tier's marts peaked at
    20 GiB with it. The cap is set after connecting, not as a connection option: under Airflow's
    in-process runs dbt may still hold the file, and DuckDB refuses a second handle whose options
    differ (for the same reason it is never opened read-only).
    """
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(f"set memory_limit = '{memory_limit()}'")
    return con
