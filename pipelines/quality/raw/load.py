"""The load: one transaction replaces the partition's rows in ``raw`` and ``quarantine`` and records
the validation results.

Every contract table exists in ``raw`` after a load, those never landed empty (the contract's
columns and the batch columns), so staging over them is empty and typed rather than missing. So does
``raw.id_codes``: the string code of every surrogate id landing made (empty while ids are integers).
"""

from __future__ import annotations

from typing import Any

from pipelines.data.contract import TABLES, Table
from pipelines.data.land import ID_CODES
from pipelines.quality.engine import QualityError, combine
from pipelines.quality.raw.run import TEMP_REJECTED, RawRun
from pipelines.quality.store import (
    create_quarantine_table,
    create_raw_table,
    insert_validation_results,
    quote,
    table_exists,
)

ID_CODES_TABLE = "id_codes"
_ID_CODES_DDL = """
create table if not exists raw.id_codes (
    id_column varchar, id bigint, code varchar, _batch_date date, _batch_id varchar, _loaded_at timestamp
)"""


def load_partition(run: RawRun, order: list[str]) -> dict[str, int]:
    con = run.con
    # Both threads write row groups as they come, which is faster than keeping the order.
    # Nothing reads raw in row order; each insert is one batch, so _batch_date zonemaps stay tight.
    con.execute("set preserve_insertion_order = false")
    loaded: dict[str, int] = {}
    con.begin()
    try:
        for table in TABLES.values():
            # Every contract table, landed or not: a table a batch never held is empty, not missing.
            create_raw_table(con, table)
        create_id_codes_table(con)
        create_quarantine_table(con)
        existing = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = current_database() and table_schema = 'raw' and table_name in "
                f"({', '.join('?' for _ in TABLES)})",
                list(TABLES),
            ).fetchall()
        ]
        for name in existing:
            # The partition replaces everything this batch date loaded before, tables it no longer
            # holds included.
            con.execute(f"delete from raw.{quote(name)} where _batch_date = ?", [run.batch_date])
        rejected = quarantine_counts(run)[1]
        for name in order:
            table = TABLES[name]
            columns = ", ".join(quote(c) for c in table.column_names)
            insert = (
                f"insert into raw.{quote(name)} select {columns}, ?::date, ?, ?::timestamp "
                "from read_parquet(?, file_row_number = true) p"
            )
            values: list[Any] = [run.batch_date, run.batch_id, run.now, str(run.path(name))]
            if rejected.get(name):
                # Only where something was quarantined: the anti-join costs much of the insert.
                insert += (
                    f" where not exists (select 1 from {TEMP_REJECTED} r "
                    "where r.table_name = ? and r.row_number = p.file_row_number + 1)"
                )
                values.append(name)
            loaded[name] = int(con.execute(insert, values).fetchall()[0][0])
            drop_superseded_rows(con, table)
        if (run.partition / ID_CODES).is_file():
            # A code's id never changes, so a code already known keeps its row: reruns and later
            # batches add only codes not seen before.
            con.execute(
                "insert into raw.id_codes select c.id_column, c.id, c.code, ?::date, ?, ?::timestamp "
                "from read_parquet(?) c where not exists (select 1 from raw.id_codes r "
                "where r.id_column = c.id_column and r.code = c.code) order by c.id_column, c.code",
                [run.batch_date, run.batch_id, run.now, str(run.partition / ID_CODES)],
            )
        con.execute("delete from quarantine.rejected_rows where batch_date = ?", [run.batch_date])
        con.execute(f"insert into quarantine.rejected_rows select * from {TEMP_REJECTED}")
        insert_validation_results(
            con,
            combine(run.outcomes),
            run_id=run.run_id,
            run_date=run.batch_date,
            stage="raw",
            validated_at=run.now,
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return loaded


def create_id_codes_table(con: Any) -> None:
    """``raw.id_codes``: one row per (id_column, code) of every surrogate id landed, with its batch."""
    con.execute("create schema if not exists raw")
    con.execute(_ID_CODES_DDL)


def check_id_codes(run: RawRun) -> None:
    """Refuse a partition whose codes share a surrogate id with another code already in ``raw.id_codes``.

    Landing refuses two such codes within one batch; across batches only the warehouse can tell.

    Raises:
        QualityError: Naming the column, both codes, the id and the batch that landed the other code.
    """
    codes = run.id_codes
    if codes.is_empty() or not table_exists(run.con, "raw", ID_CODES_TABLE):
        return
    run.con.register("_ecom_batch_codes", codes)
    try:
        clashes = run.con.execute(
            "select c.id_column, c.code, r.code, c.id, r._batch_date from _ecom_batch_codes c "
            "join raw.id_codes r on r.id_column = c.id_column and r.id = c.id and r.code <> c.code "
            "order by all limit 5"
        ).fetchall()
    finally:
        run.con.unregister("_ecom_batch_codes")
    if clashes:
        shown = "; ".join(
            f"{column}: code {new!r} and code {old!r} (landed {day}) both map to surrogate id {id_}"
            for column, new, old, id_, day in clashes
        )
        raise QualityError(
            f"raw batch {run.batch_date}: rule id_collision: {shown}; the ids could not tell the codes "
            "apart. Give one of them another code in the source (or land integer ids for that column), "
            "land the batch again and validate it; nothing was loaded"
        )


def drop_superseded_rows(con: Any, table: Table) -> None:
    """Delete the rows of master data (a table without a business date) whose key a later batch carries.

    customers, products and warehouses land whole every day (2 M customers a day on the large tier).
    Kept batch after batch, every read of them (the staging dedupe, the reference keys above, the
    marts' row floors) grew by a snapshot a day. Each key keeps its latest row, the one staging
    picks, so what staging and the gates see does not change, with one exception: a re-landed older
    batch that drops a key no later batch carries loses the key instead of falling back to an even
    older row. The landed partitions still hold every batch's files. Dated tables keep every batch.
    """
    if table.date_column is not None:
        return
    name, key = quote(table.name), ", ".join(quote(k) for k in table.key)
    con.execute(
        f"delete from raw.{name} where rowid in (select rowid from (select rowid, row_number() over "
        f"(partition by {key} order by _batch_date desc, _loaded_at desc, _batch_id desc) as rank "
        f"from raw.{name}) where rank > 1)"
    )


def quarantine_counts(run: RawRun) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    by_rule: dict[str, dict[str, int]] = {}
    for table, rule, n in run.con.execute(
        f"select table_name, rule, count(*) from {TEMP_REJECTED} group by all order by all"
    ).fetchall():
        by_rule.setdefault(table, {})[rule] = int(n)
    rows = dict(
        run.con.execute(
            f"select table_name, count(distinct row_number) from {TEMP_REJECTED} group by all order by all"
        ).fetchall()
    )
    return by_rule, {k: int(v) for k, v in rows.items()}
