"""The dbt project on its scale-out target, PostgreSQL: the same raw batches give the same marts.

A throwaway Postgres server (``initdb`` + ``pg_ctl`` on a free port of 127.0.0.1, trust auth, no
fsync) gets a copy of the DuckDB warehouse's ``raw`` schema after each landed batch, as
dbt/README.md tells a user to load it. Both engines then build the tiny world's history and its
last day (an incremental run), and every mart must agree row for row (floating point within 1e-9).

Skipped, with the reason, where no PostgreSQL server binaries are installed: on PATH, in
``/usr/lib/postgresql/*/bin``, or in ``ECOM_TEST_PG_BIN``. Run as root, the server runs as the
``postgres`` user (``initdb`` refuses root).
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from tests.integration.warehouse_fixtures import (
    MARTS,
    count_differences,
    load_raw,
    run_dbt,
    table_columns,
    warehouse_path,
    write_batch,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# DuckDB's raw column types and their Postgres names (the contract's types plus the audit columns).
PG_TYPES = {
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
}


def _server_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    candidates = [os.environ.get("ECOM_TEST_PG_BIN", "")]
    found = shutil.which("initdb")
    candidates += [str(Path(found).parent)] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in filter(None, candidates):
        if all((Path(folder) / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A running throwaway server with an empty database ``ecom``; yields the profile's env vars."""
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in ECOM_TEST_PG_BIN")
    pytest.importorskip("psycopg2", reason="dbt-postgres is not installed (make setup does it)")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to run the server as 'postgres'")
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="ecom-pg-"))  # not under pytest's 0700 root-owned folders
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr or done.stdout}"
            )

    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    log = folder / "server.log"
    started = False
    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "ecom", "-A", "trust", "-E", "UTF8", "--no-sync")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        started = True
        pg_env = {"ECOM_PG_HOST": "127.0.0.1", "ECOM_PG_PORT": str(port), "ECOM_PG_DBNAME": "ecom"}
        with _cursor(pg_env, "postgres") as admin:
            admin.execute("create database ecom")
        yield pg_env
    finally:
        if started:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _cursor(pg_env: dict[str, str], dbname: str = "ecom") -> Iterator:
    """A cursor on an autocommit connection to the test server."""
    import psycopg2

    con = psycopg2.connect(
        host=pg_env["ECOM_PG_HOST"], port=int(pg_env["ECOM_PG_PORT"]), user="ecom", dbname=dbname
    )
    con.autocommit = True
    try:
        yield con.cursor()
    finally:
        con.close()


def _mirror_raw(duck: duckdb.DuckDBPyConnection, pg_env: dict[str, str], scratch: Path) -> None:
    """Make Postgres's ``raw`` schema a copy of DuckDB's (CSV out of DuckDB, COPY into Postgres)."""
    tables = [
        r[0]
        for r in duck.execute("select table_name from duckdb_tables() where schema_name = 'raw'").fetchall()
    ]
    with _cursor(pg_env) as cursor:
        cursor.execute("create schema if not exists raw")
        for table in tables:
            columns = ", ".join(
                f'"{name}" {PG_TYPES[dtype]}' for name, dtype in table_columns(duck, "raw", table)
            )
            csv = scratch / f"{table}.csv"
            duck.execute(f"copy raw.{table} to '{csv}' (header)")
            cursor.execute(f"create table if not exists raw.{table} ({columns})")
            cursor.execute(f"truncate raw.{table}")  # the staging views depend on it: no drop
            with csv.open() as f:
                cursor.copy_expert(f"copy raw.{table} from stdin with (format csv, header)", f)


def _pg_marts_into(duck: duckdb.DuckDBPyConnection, pg_env: dict[str, str], scratch: Path) -> None:
    """Copy Postgres's built marts into DuckDB schema ``pg_marts``, typed as DuckDB built them."""
    duck.execute("create schema if not exists pg_marts")
    with _cursor(pg_env) as cursor:
        for mart in MARTS:
            csv = scratch / f"pg_{mart}.csv"
            with csv.open("w") as f:
                cursor.copy_expert(
                    f"copy (select * from build_marts.{mart}) to stdout with (format csv, header)", f
                )
            columns = table_columns(duck, "build_marts", mart)
            header = csv.read_text().partition("\n")[0].split(",")
            assert header == [name for name, _ in columns], f"{mart}: Postgres has other columns"
            types = "{" + ", ".join(f"'{name}': '{dtype}'" for name, dtype in columns) + "}"
            duck.execute(
                f"create or replace table pg_marts.{mart} as select * from read_csv('{csv}', header = true, "
                f"columns = {types}, nullstr = '', quote = '\"')"
            )


def test_postgres_builds_the_same_marts_as_duckdb(
    postgres: dict[str, str], tiny_world: Path, tmp_path: Path
) -> None:
    world, home = tiny_world / "data" / "generated", tmp_path / "home"
    warehouse_path(home).parent.mkdir(parents=True)
    with duckdb.connect() as scratch:
        sales = world / "daily_sales.parquet"
        last_day = scratch.execute(f"select max(date) from read_parquet('{sales}')").fetchone()[0]
        history_end = last_day - dt.timedelta(days=1)
        write_batch(scratch, world, tmp_path / "history", None, history_end)
        write_batch(scratch, world, tmp_path / "last_day", last_day, last_day)

    steps = {}
    for batch, batch_date in (("history", history_end), ("last_day", last_day)):
        with duckdb.connect(str(warehouse_path(home))) as duck:
            load_raw(duck, tmp_path / batch, batch_date, f"{batch}-{batch_date}")
            _mirror_raw(duck, postgres, tmp_path)
        run_dbt(home, ["build"], run_date=batch_date)
        steps[batch] = run_dbt(home, ["build"], run_date=batch_date, target="postgres", env=postgres).stdout

    assert "rebuilding" in steps["last_day"]  # the day ran the incremental path on Postgres too
    with duckdb.connect(str(warehouse_path(home))) as duck:
        _pg_marts_into(duck, postgres, tmp_path)
        counts = {m: duck.execute(f"select count(*) from pg_marts.{m}").fetchone()[0] for m in MARTS}
        differences = {m: count_differences(duck, ("build_marts", m), ("pg_marts", m)) for m in MARTS}
    assert all(counts.values()), counts
    assert differences == dict.fromkeys(MARTS, 0)
