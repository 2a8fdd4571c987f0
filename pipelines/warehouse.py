"""Opening the DuckDB warehouse with the memory cap dbt uses (``warehouse.memory_limit``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import WarehouseParams

if TYPE_CHECKING:
    import duckdb

DEFAULT_MEMORY_LIMIT = WarehouseParams().memory_limit


def connect_warehouse(path: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the warehouse that spills past the cap instead of growing.

    DuckDB's own default is 80% of RAM, which let `ecom publish` copying the large tier's marts take
    most of the machine. The cap is set after connecting, not as a connection option: under
    Airflow's in-process runs dbt may still hold the file, and DuckDB refuses a second handle whose
    options differ (for the same reason it is never opened read-only).

    Args:
        path: The DuckDB file (``settings.warehouse_path``).
        memory_limit: DuckDB's memory cap: pass ``settings.warehouse.memory_limit`` (validated there).
    """
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(f"set memory_limit = '{memory_limit}'")
    return con
