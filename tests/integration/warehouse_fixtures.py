"""Helpers for warehouse (dbt) tests: land contract batches into ``raw`` and run dbt.

``load_raw`` stands in for the real loader (``ecom validate raw``) until that lands: same tables,
same audit columns, same "reloading a batch date replaces its rows" rule.

Not named ``dbt_*``: dbt imports modules with that prefix from ``sys.path``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.config import TELEMETRY_OFF
from pipelines.data.contract import TABLES
from pipelines.quality.raw import drop_superseded_rows

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"
DBT = Path(sys.executable).parent / "dbt"
MARTS = (
    "dim_dates",
    "dim_products",
    "dim_customers",
    "fct_sales_daily",
    "fct_orders",
    "fct_inventory_daily",
    "fct_prices_daily",
    "mart_demand_features",
    "mart_customer_features",
    "rpt_kpi_daily",
    "rpt_category_daily",
)


def load_raw(con: Any, folder: Path, batch_date: dt.date, batch_id: str) -> dict[str, int]:
    """Land every ``<table>.parquet`` in ``folder`` into ``raw.<table>`` as batch ``batch_date``.

    Adds ``_batch_date``, ``_batch_id`` and ``_loaded_at`` (UTC now); rows already landed for the same
    batch date are replaced, other batches are kept, except master-data rows a later batch supersedes
    (as the loader does). Returns rows landed per table.
    """
    con.execute("create schema if not exists raw")
    landed = {}
    for name in TABLES:
        path = Path(folder) / f"{name}.parquet"
        if not path.exists():
            continue
        select = (
            f"select *, date '{batch_date.isoformat()}' as _batch_date, '{batch_id}' as _batch_id, "
            f"cast(now() at time zone 'UTC' as timestamp) as _loaded_at from read_parquet('{path}')"
        )
        con.execute(f"create table if not exists raw.{name} as {select} limit 0")
        con.execute(f"delete from raw.{name} where _batch_date = date '{batch_date.isoformat()}'")
        con.execute(f"insert into raw.{name} by name {select}")
        drop_superseded_rows(con, TABLES[name])
        landed[name] = con.execute(f"select count(*) from read_parquet('{path}')").fetchone()[0]
    return landed


def write_batch(
    con: Any,
    folder: Path,
    out_dir: Path,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
) -> None:
    """Write the rows of a generated world dated ``first_day`` .. ``last_day`` as a batch folder.

    Dated tables are cut on their contract business date (either bound may be open); master tables
    (no business date) go in full, as a daily feed resends them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in TABLES.items():
        src = f"read_parquet('{Path(folder) / f'{name}.parquet'}')"
        conditions = []
        if table.date_column and first_day is not None:
            conditions.append(f"{table.date_column} >= date '{first_day}'")
        if table.date_column and last_day is not None:
            conditions.append(f"{table.date_column} <= date '{last_day}'")
        where = f"where {' and '.join(conditions)}" if conditions else ""
        con.execute(f"copy (select * from {src} {where}) to '{out_dir / f'{name}.parquet'}' (format parquet)")


def table_columns(con: Any, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, type) of a table's columns, in order."""
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()


def count_differences(con: Any, left: tuple[str, str], right: tuple[str, str], rel_tol: float = 1e-9) -> int:
    """Rows of two tables (schema, name) that have no equal partner in the other.

    Rows are matched on every column that is not floating point (null equals null); floating-point
    columns must then agree within ``rel_tol`` (sums in another order differ in the last bits).
    Audit columns (``_source_*``, ``_written_at``) are ignored.
    """
    columns = [
        c for c in table_columns(con, *left) if not c[0].startswith("_source_") and c[0] != "_written_at"
    ]
    exact = [f'"{name}"' for name, dtype in columns if dtype not in ("DOUBLE", "FLOAT")]
    approx = [f'"{name}"' for name, dtype in columns if dtype in ("DOUBLE", "FLOAT")]
    on = " and ".join(f"a.{c} is not distinct from b.{c}" for c in exact) or "true"
    close = (
        " or ".join(
            f"(a.{c} is null) <> (b.{c} is null) or abs(a.{c} - b.{c}) > {rel_tol} * greatest(1, abs(a.{c}))"
            for c in approx
        )
        or "false"
    )
    return con.execute(
        f"""select count(*)
        from (select *, 1 as _present from {left[0]}.{left[1]}) as a
        full join (select *, 1 as _present from {right[0]}.{right[1]}) as b on {on}
        where a._present is null or b._present is null or {close}"""
    ).fetchone()[0]


def copy_schema(con: Any, source: str, target: str, tables: Sequence[str]) -> None:
    """Copy tables into another schema (a snapshot to compare a later build with)."""
    con.execute(f"create schema if not exists {target}")
    for table in tables:
        con.execute(f"create or replace table {target}.{table} as select * from {source}.{table}")


def dbt_env(home: Path) -> dict[str, str]:
    """Environment for a dbt subprocess writing the warehouse under ``home``."""
    return {**os.environ, **TELEMETRY_OFF, "ECOM_HOME": str(home)}


def run_dbt(
    home: Path,
    args: Sequence[str],
    *,
    run_date: dt.date | None = None,
    dbt_vars: dict[str, str] | None = None,
    check: bool = True,
    target: str = "duckdb",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a dbt command on the project against the warehouse under ``home`` (or ``target``).

    A subprocess, not ``dbtRunner``: DuckDB allows one writer per file per process and dbt keeps
    its connection open. Artifacts and logs go under ``home/dbt`` so parallel runs never share them;
    ``env`` adds to the environment (the ``postgres`` target's connection).
    """
    command = [
        str(DBT),
        *args,
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target",
        target,
        "--target-path",
        str(home / "dbt" / "target"),
        "--log-path",
        str(home / "dbt" / "logs"),
    ]
    all_vars = {**({"run_date": run_date.isoformat()} if run_date else {}), **(dbt_vars or {})}
    if all_vars:
        command += ["--vars", json.dumps(all_vars)]
    result = subprocess.run(
        command,
        cwd=DBT_DIR,
        env={**dbt_env(home), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-20000:]}")
    return result


def warehouse_path(home: Path) -> Path:
    return home / "data" / "warehouse.duckdb"
