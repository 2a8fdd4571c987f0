"""dedupe_latest_batch (dbt/macros/dedupe_latest_batch.sql) keeps the latest batch's row of each key
whichever batch serves as its base: a sampled one on a table big enough to sample, none on a small one.
Checked against ranking every row, on DuckDB, with the SQL dbt renders."""

from __future__ import annotations

import json

import duckdb
import pytest

from tests.integration.warehouse_fixtures import run_dbt

pytestmark = [pytest.mark.integration]

DEDUPE = """
    with cleaned as not materialized (select * from landed),
    deduplicated as ({{ dedupe_latest_batch('cleaned', ['k']) }})
    select * from deduplicated
"""
REFERENCE = """
    select k, v from (
        select *, row_number() over (
            partition by k order by _batch_date desc, _loaded_at desc, _batch_id desc
        ) as rank
        from landed
    ) where rank = 1
"""


@pytest.fixture(scope="module")
def dedupe_sql(tmp_path_factory: pytest.TempPathFactory) -> str:
    home = tmp_path_factory.mktemp("dedupe_home")
    (home / "data").mkdir()
    result = run_dbt(home, ["compile", "--inline", DEDUPE, "--output", "json", "--quiet"])
    compiled = json.loads(result.stdout[result.stdout.index("{") :])["compiled"]
    assert "tablesample" in compiled  # DuckDB samples the base batch
    return compiled


def _land(con: duckdb.DuckDBPyConnection, history_rows: int) -> None:
    """An older batch, the history bootstrap, a later batch and a reload of it, in that load order."""
    con.execute(
        "create table landed (k bigint, v varchar, _batch_date date, _batch_id varchar, _loaded_at timestamp)"
    )
    batches = [
        ("older", "range(0, 5)", "2025-01-05", "2025-01-05 06:00"),
        ("history", f"range(0, {history_rows})", "2025-01-10", "2025-01-10 06:00"),
        ("later", "range(5, 10)", "2025-01-11", "2025-01-11 06:00"),
        ("reload", "[7]", "2025-01-11", "2025-01-11 09:00"),
    ]
    for name, keys, batch_date, loaded_at in batches:
        con.execute(
            f"insert into landed select unnest({keys}), '{name}', date '{batch_date}', '{name}', "
            f"timestamp '{loaded_at}'"
        )


@pytest.mark.parametrize(("history_rows", "sampled"), [(1_000_000, True), (20, False)])
def test_the_latest_batch_wins_whatever_the_base(dedupe_sql: str, history_rows: int, sampled: bool) -> None:
    with duckdb.connect() as con:
        _land(con, history_rows)
        assert (
            con.execute("select count(*) from landed tablesample 1% (system, 42)").fetchone()[0] > 0
        ) is sampled
        kept = con.execute(f"select k, v from ({dedupe_sql}) order by k").fetchall()
        assert kept == con.execute(f"{REFERENCE} order by k").fetchall()
    assert len(kept) == history_rows
    assert dict(kept[:10]) == {
        0: "history",
        1: "history",
        2: "history",
        3: "history",
        4: "history",
        5: "later",
        6: "later",
        7: "reload",
        8: "later",
        9: "later",
    }
