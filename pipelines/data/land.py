"""Landing: check a batch of contract files and publish it atomically as one raw partition.

A batch is every ``<table>.parquet`` / ``<table>.csv`` file directly in a local folder or under an
``s3://bucket/prefix``. Every file is checked against the contract (:mod:`pipelines.data.contract`)
before anything becomes visible; one bad file rejects the whole batch, so downstream never sees a
half-landed day. A rejected batch leaves its bad files, each with a ``.reason.json``, in
``data/quarantine/<date>_<batch_id>/``. An accepted batch becomes ``data/raw/dt=<date>/`` holding
one Parquet file per table, cast to the contract schema, and a ``_manifest.json``.

Publishing is a directory rename, so readers see the old partition or the new one, never a mix.
Replacing an existing date takes two renames (old aside to ``.trash-dt=<date>-<uuid>``, new into
place); a crash between them leaves no ``dt=<date>`` but a trash directory, and the next landing
puts the old partition back before doing anything else (the interrupted batch simply lands again).

A batch belongs to one date: it must hold facts (``daily_sales`` or ``order_lines`` rows) dated that
day (with ``land.grain: weekly``, daily_sales rows of the week holding it), and files already landed
under another date are refused rather than handed back as that other day's partition.

Identifier columns (unit ``id``) take string codes: a canonical decimal integer keeps its value,
any other code becomes :func:`~pipelines.data.contract.surrogate_id` of it, and the partition keeps
the codes in ``_id_codes.parquet`` (``id_column, id, code``), which ``ecom validate raw`` loads into
``raw.id_codes``.

Landings into one raw directory are serialised with an exclusive ``flock`` on ``raw/.land.lock``;
that is what makes it safe for a landing to clean up what a crashed one left behind.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from pipelines.config import WEEKDAYS, LandParams, Settings
from pipelines.data.contract import (
    CONTRACT_VERSION,
    PERIOD_TABLES,
    TABLES,
    Table,
    surrogate_id,
    table_for_file,
)

__all__ = [
    "FACT_TABLES",
    "ID_CODES",
    "ID_CODES_SCHEMA",
    "BatchMissingError",
    "LandResult",
    "LandingError",
    "LandingProblem",
    "batch_available",
    "batch_source",
    "land_batch",
    "list_partitions",
    "read_manifest",
]

RULE_UNKNOWN_TABLE = "unknown_table"
RULE_DUPLICATE_TABLE = "duplicate_table"
RULE_UNPARSEABLE = "unparseable"
RULE_EMPTY = "empty"
RULE_MISSING_COLUMN = "missing_column"
RULE_EXTRA_COLUMN = "extra_column"
RULE_TYPE = "type"
RULE_DUPLICATE_KEY = "duplicate_key"
RULE_WEEK_START = "week_start"
RULE_ID_COLLISION = "id_collision"

MANIFEST = "_manifest.json"
# The string codes of a partition's surrogate ids, one row per (id_column, code).
ID_CODES = "_id_codes.parquet"
ID_CODES_SCHEMA = pl.Schema({"id_column": pl.String(), "id": pl.Int64(), "code": pl.String()})
STAGING = ".staging"
TRASH_PREFIX = ".trash-"
LOCK_FILE = ".land.lock"

_PARTITION_RE = re.compile(r"dt=\d{4}-\d{2}-\d{2}")
_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False}
# A name no contract or user column will plausibly have, used for the 1-based row number.
_ROW = "__land_row__"
_MAX_VALUE_CHARS = 80
# A canonical decimal integer: what an integer id written as text looks like ('0123' is a code).
_CANONICAL_INT = r"^(0|-?[1-9][0-9]*)$"

Format = Literal["csv", "parquet"]

# The daily facts: a batch for a date must hold rows of at least one of them dated that day.
FACT_TABLES = ("daily_sales", "order_lines")


@dataclass(frozen=True)
class LandingProblem:
    """One contract violation found in one file of a batch.

    Attributes:
        file: File name within the batch (``daily_sales.csv``).
        table: Contract table the file stands for; None when the name matches no table.
        rule: Which check failed (``unparseable``, ``empty``, ``missing_column``, ``extra_column``,
            ``type``, ``duplicate_key``, ``week_start``, ``id_collision``, ``unknown_table`` or
            ``duplicate_table``).
        column: The column concerned, or the key columns joined by ", " for ``duplicate_key``.
        row: First offending 1-based data row, where one applies.
        message: Human-readable detail, including an example of the bad data.
    """

    file: str
    table: str | None
    rule: str
    column: str | None
    row: int | None
    message: str

    def __str__(self) -> str:
        where = f"column '{self.column}': " if self.column else ""
        return f"{self.file}: {where}rule {self.rule}: {self.message}"


class LandingError(Exception):
    """A batch could not be landed; nothing of it was published.

    Attributes:
        problems: Every contract violation found, across all files (empty for batch-level errors such
            as a missing source or bucket).
        quarantine: Folder the bad files were copied to, when there were any.
    """

    def __init__(
        self, message: str, problems: Sequence[LandingProblem] = (), quarantine: Path | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)
        self.quarantine = quarantine

    def __str__(self) -> str:
        return "\n".join([self.message, *(str(p) for p in self.problems)])


class BatchMissingError(LandingError):
    """A date's batch did not arrive at its source in the time allowed for it."""


@dataclass(frozen=True)
class LandResult:
    """What a landing did.

    Attributes:
        partition: The published partition (``data/raw/dt=2024-12-31``).
        batch_id: Content hash of the batch's files; the same files always give the same id.
        tables: Rows landed per table.
        already_landed: True when this exact batch was already published and nothing was written.
    """

    partition: Path
    batch_id: str
    tables: dict[str, int]
    already_landed: bool


@dataclass(frozen=True)
class _SourceFile:
    name: str
    path: Path  # local copy: the file itself, or its download from S3
    uri: str  # where it came from, for manifests and quarantine reasons
    sha256: str

    @property
    def table(self) -> Table | None:
        return table_for_file(self.name)

    @property
    def known_table(self) -> Table:
        # Only called once the batch passed its checks, which rule out unknown tables.
        table = self.table
        if table is None:
            raise AssertionError(f"{self.name} names no contract table")
        return table

    @property
    def format(self) -> Format:
        return "csv" if self.name.lower().endswith(".csv") else "parquet"


def land_batch(
    source: str,
    settings: Settings,
    batch_date: datetime.date,
    *,
    progress: Callable[[str], None] | None = None,
    require_facts: bool = True,
    raw_dir: Path | None = None,
) -> LandResult:
    """Check every file of a batch against the contract and publish it as ``raw/dt=<batch_date>``.

    Landing the same files again for the same date is a no-op; landing different files for a date
    already landed replaces that partition as a whole.

    Args:
        source: A folder (relative paths are under ``ECOM_HOME``) or ``s3://bucket/prefix``.
        settings: Paths and the S3 endpoint; S3 credentials come from the usual ``AWS_*`` variables.
        batch_date: The day the batch is for; it names the partition.
        progress: Called with short human-readable messages as the landing goes.
        require_facts: Refuse a batch without ``daily_sales`` or ``order_lines`` rows dated
            ``batch_date``. False lands a master-data-only batch; ``ecom land`` and the DAG never do.
        raw_dir: Publish under this folder instead of ``settings.raw_dir`` (the competitor-price
            crawl lands its batches apart from the retailer's, under ``data/crawl/raw``).

    Returns:
        Where the batch is published, its id and row counts.

    Raises:
        LandingError: The source is missing or empty, S3 failed, any file breaks the contract
            (then ``.problems`` lists every violation and the bad files are in quarantine), the
            batch has no facts for ``batch_date``, or the same files are landed under another date.
    """
    say = progress or _silent
    raw = raw_dir if raw_dir is not None else settings.raw_dir
    staging_root = raw / STAGING
    with _exclusive_lock(raw / LOCK_FILE):
        _recover(raw, settings, say)
        download_dir: Path | None = None
        out_dir: Path | None = None
        try:
            if source.startswith("s3://"):
                download_dir = staging_root / f"download-{uuid.uuid4().hex}"
                files = _fetch_s3(source, settings, download_dir, say)
            else:
                files = _list_local(settings.resolve(source))
            batch_id = _batch_id(files)

            final = raw / f"dt={batch_date.isoformat()}"
            for partition in _partitions_in(raw):
                manifest = _try_manifest(partition)
                if manifest is None or manifest.get("batch_id") != batch_id:
                    continue
                if partition != final:
                    other = partition.name.removeprefix("dt=")
                    raise LandingError(
                        f"batch {batch_id} from {source} is already landed for {other} "
                        f"({_show(partition, settings)}), so it is not the batch for {batch_date}: a "
                        f"batch belongs to one date. Land {batch_date}'s own files (is the source's "
                        f"{{date}} right?), or land these again with --date {other}"
                    )
                say(f"batch {batch_id} already landed in {_show(partition, settings)}; nothing to do")
                tables = {f["table"]: int(f["rows"]) for f in manifest.get("files", [])}
                return LandResult(partition, batch_id, tables, already_landed=True)

            problems, rows, codes = _check_batch(files, settings.land, say)
            if problems:
                qdir = _quarantine(files, problems, source, batch_date, batch_id, settings)
                bad_files = len({p.file for p in problems})
                shown = _show(qdir, settings)
                say(f"rejected batch {batch_id}: {bad_files} bad file(s) quarantined in {shown}")
                raise LandingError(
                    f"batch {batch_id} from {source} rejected: {len(problems)} problem(s) in {bad_files} "
                    f"file(s); bad files quarantined in {qdir}",
                    problems,
                    qdir,
                )
            if require_facts:
                _require_facts(files, batch_date, f"batch {batch_id} from {source}", settings.land)

            out_dir = staging_root / uuid.uuid4().hex
            out_dir.mkdir(parents=True)
            for f in files:
                say(f"writing {f.known_table.name} ({rows[f.name]:,} rows)")
                _write_table(f, out_dir, codes)
            if codes.height:
                codes.write_parquet(out_dir / ID_CODES)
            manifest = {
                "batch_id": batch_id,
                "batch_date": batch_date.isoformat(),
                "source": source,
                "landed_at": datetime.datetime.now(datetime.UTC).isoformat(),
                "contract_version": CONTRACT_VERSION,
                "id_codes": codes.height,
                "files": [
                    {
                        "file": f.name,
                        "table": f.known_table.name,
                        "rows": rows[f.name],
                        "sha256": f.sha256,
                        "format": f.format,
                    }
                    for f in files
                ],
            }
            (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            _publish(out_dir, final)
            out_dir = None
            say(f"published {_show(final, settings)}")
            tables = {f.known_table.name: rows[f.name] for f in files}
            return LandResult(final, batch_id, tables, already_landed=False)
        finally:
            for leftover in (download_dir, out_dir):
                if leftover is not None:
                    shutil.rmtree(leftover, ignore_errors=True)
            _rmdir_if_empty(staging_root)


def read_manifest(partition: Path) -> dict[str, Any]:
    """The ``_manifest.json`` of a published partition.

    Raises:
        FileNotFoundError: The partition has no manifest.
    """
    return json.loads((Path(partition) / MANIFEST).read_text())


def last_sales_date(folder: Path) -> datetime.date:
    """The last day with sales in a local batch (``daily_sales``): the batch date of a batch that
    carries history up to then, such as the generated world landed in one go.

    Raises:
        LandingError: The folder holds no ``daily_sales`` file, or it has no rows.
    """
    table = TABLES["daily_sales"]
    files = [p for p in sorted(Path(folder).glob("daily_sales*")) if table_for_file(p.name) is table]
    if not files:
        raise LandingError(f"no daily_sales file in {folder}: cannot tell the batch's last sales day")
    days = []
    for path in files:
        lf = pl.scan_parquet(path) if path.suffix == ".parquet" else pl.scan_csv(path, try_parse_dates=True)
        days.append(lf.select(pl.col(table.date_column).cast(pl.Date).max()).collect().item())
    found = [d for d in days if d is not None]
    if not found:
        raise LandingError(f"daily_sales in {folder} has no rows: cannot tell the batch's last sales day")
    return max(found)


def list_partitions(settings: Settings) -> list[Path]:
    """Published raw partitions (``dt=YYYY-MM-DD`` folders), oldest first."""
    return _partitions_in(settings.raw_dir)


def _partitions_in(raw: Path) -> list[Path]:
    if not raw.is_dir():
        return []
    return sorted(p for p in raw.iterdir() if p.is_dir() and _PARTITION_RE.fullmatch(p.name))


def batch_source(source: str, batch_date: datetime.date) -> str:
    """The source of one date's batch: ``{date}`` in ``source`` replaced by ``YYYY-MM-DD``."""
    return source.replace("{date}", batch_date.isoformat())


def batch_available(settings: Settings, source: str, batch_date: datetime.date) -> bool:
    """Whether the batch for a date has arrived: any file to land in its folder or under its prefix.

    Only looks; the files are checked when the batch lands.

    Args:
        settings: Paths and the S3 endpoint.
        source: A folder or ``s3://bucket/prefix``; ``{date}`` in it is replaced by the date.
        batch_date: The day the batch is for.

    Raises:
        LandingError: S3 cannot be read (no such bucket, access denied, endpoint unreachable): waiting
            would not help.
    """
    where = batch_source(source, batch_date)
    if not where.startswith("s3://"):
        folder = settings.resolve(where)
        return folder.is_dir() and any(p.is_file() and not _hidden(p.name) for p in folder.iterdir())
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _parse_s3(where)
    endpoint = settings.storage.s3_endpoint_url or "AWS"
    try:
        client = boto3.client(
            "s3", endpoint_url=settings.storage.s3_endpoint_url, region_name=settings.storage.s3_region
        )
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name and "/" not in name and not _hidden(name):
                    return True
        return False
    except ClientError as exc:
        raise LandingError(_s3_error_message(exc, bucket, prefix, endpoint)) from exc
    except BotoCoreError as exc:
        raise LandingError(f"cannot read {where} from S3 (endpoint {endpoint}): {exc}") from exc


# --- batch discovery --------------------------------------------------------------------------


def _list_local(folder: Path) -> list[_SourceFile]:
    if not folder.exists():
        raise LandingError(f"source folder {folder} does not exist")
    if not folder.is_dir():
        raise LandingError(f"source {folder} is not a folder")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and not _hidden(p.name))
    if not paths:
        raise LandingError(f"no files to land in {folder}")
    return [_SourceFile(p.name, p, str(p), _sha256(p)) for p in paths]


def _fetch_s3(uri: str, settings: Settings, dest: Path, say: Callable[[str], None]) -> list[_SourceFile]:
    # Imported here so that local landings (and importing this module) never pay for boto3.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _parse_s3(uri)
    where = f"s3://{bucket}/{prefix}"
    endpoint = settings.storage.s3_endpoint_url or "AWS"
    try:
        client = boto3.client(
            "s3", endpoint_url=settings.storage.s3_endpoint_url, region_name=settings.storage.s3_region
        )
        keys: list[tuple[str, str]] = []
        # The delimiter keeps the listing to objects directly under the prefix, like a folder.
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name and "/" not in name and not _hidden(name):
                    keys.append((obj["Key"], name))
        if not keys:
            raise LandingError(f"no files to land under {where} (endpoint {endpoint})")
        dest.mkdir(parents=True)
        files = []
        for key, name in sorted(keys, key=lambda kn: kn[1]):
            say(f"downloading s3://{bucket}/{key}")
            local = dest / name
            client.download_file(bucket, key, str(local))
            files.append(_SourceFile(name, local, f"s3://{bucket}/{key}", _sha256(local)))
        return files
    except ClientError as exc:
        raise LandingError(_s3_error_message(exc, bucket, prefix, endpoint)) from exc
    except BotoCoreError as exc:
        raise LandingError(f"cannot read {where} from S3 (endpoint {endpoint}): {exc}") from exc


def _s3_error_message(exc: Any, bucket: str, prefix: str, endpoint: str) -> str:
    error = exc.response.get("Error", {})
    code, detail = error.get("Code", "?"), error.get("Message", str(exc))
    at = f"; endpoint {endpoint}"
    if code == "NoSuchBucket":
        return f"S3 bucket '{bucket}' does not exist (reading s3://{bucket}/{prefix}, endpoint {endpoint})"
    if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}:
        return f"access denied to S3 bucket '{bucket}' prefix '{prefix}' ({code}: {detail}{at})"
    return f"S3 error reading bucket '{bucket}' prefix '{prefix}' ({code}: {detail}{at})"


def _parse_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise LandingError(f"invalid S3 source {uri!r}: expected s3://bucket/prefix")
    # The prefix names a folder, so 'batches/2024' must not also match 'batches/2024-old/'.
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _batch_id(files: Sequence[_SourceFile]) -> str:
    digest = hashlib.sha256()
    for name, sha in sorted((f.name, f.sha256) for f in files):
        digest.update(f"{name}\t{sha}\n".encode())
    return digest.hexdigest()[:16]


# --- checks -----------------------------------------------------------------------------------


def _check_batch(
    files: Sequence[_SourceFile], land: LandParams, say: Callable[[str], None]
) -> tuple[list[LandingProblem], dict[str, int], pl.DataFrame]:
    """Every problem of every file, the rows per file, and the batch's string codes of ids."""
    problems: list[LandingProblem] = []
    rows: dict[str, int] = {}
    codes: list[pl.DataFrame] = []
    per_table = Counter(f.table.name for f in files if f.table is not None)
    known = ", ".join(TABLES)
    for f in files:
        table = f.table
        if table is None:
            problems.append(
                LandingProblem(
                    f.name,
                    None,
                    RULE_UNKNOWN_TABLE,
                    None,
                    None,
                    f"unknown table: '{f.name}' is not <table>.parquet or <table>.csv for a contract "
                    f"table ({known})",
                )
            )
            continue
        if per_table[table.name] > 1:
            problems.append(
                LandingProblem(
                    f.name,
                    table.name,
                    RULE_DUPLICATE_TABLE,
                    None,
                    None,
                    f"the batch has more than one file for table {table.name}; keep one",
                )
            )
        file_problems, rows[f.name], file_codes = _check_file(f, table, land, say)
        problems += file_problems
        codes.append(file_codes.with_columns(pl.lit(f.name).alias("file")))
    found = pl.concat(codes) if codes else _no_codes().with_columns(pl.lit("").alias("file"))
    problems += _id_collisions(found)
    return problems, rows, found.select(ID_CODES_SCHEMA.names()).unique().sort("id_column", "code")


def _no_codes() -> pl.DataFrame:
    return pl.DataFrame(schema=ID_CODES_SCHEMA)


def _id_collisions(codes: pl.DataFrame) -> list[LandingProblem]:
    """Two different codes of one id column with the same surrogate id: the ids could not tell them apart."""
    if codes.is_empty():
        return []
    clashes = (
        codes.group_by("id_column", "id")
        .agg(pl.col("code").unique().sort().alias("codes"), pl.col("file").sort().first())
        .filter(pl.col("codes").list.len() > 1)
        .sort("id_column", "id")
    )
    problems = []
    for row in clashes.iter_rows(named=True):
        shown = " and ".join(_show_value(c) for c in row["codes"][:3])
        table = table_for_file(row["file"])
        problems.append(
            LandingProblem(
                row["file"],
                table.name if table else None,
                RULE_ID_COLLISION,
                row["id_column"],
                None,
                f"codes {shown} both map to surrogate id {row['id']}, so {row['id_column']} could not "
                "tell them apart; give one of them another code, or land integer ids for this column",
            )
        )
    return problems


def _require_facts(
    files: Sequence[_SourceFile], batch_date: datetime.date, batch: str, land: LandParams
) -> None:
    """Refuse a batch without fact rows dated its date; only called once its files passed the checks.

    A weekly sales row is dated by its week's first day, so with ``land.grain: weekly`` a daily_sales
    row of the week holding ``batch_date`` counts.
    """
    tables = " or ".join(FACT_TABLES)
    facts = [f for f in files if f.known_table.name in FACT_TABLES]
    last: datetime.date | None = None
    for f in facts:
        column = f.known_table.date_column
        lf = _scan(f)
        day = _cast_expr(column, lf.collect_schema()[column], pl.Date) if column else None
        if day is None:  # the contract gives every fact a date column the checks let through
            raise AssertionError(f"{f.name}: no castable business date column")
        weekly = land.grain == "weekly" and f.known_table.name in PERIOD_TABLES
        first = batch_date - datetime.timedelta(days=6) if weekly else batch_date
        on_day, newest = (
            lf.select(day.is_between(first, batch_date).sum().alias("on_day"), day.max().alias("newest"))
            .collect(engine="streaming")
            .row(0)
        )
        if on_day:
            return
        if newest is not None and (last is None or newest > last):
            last = newest
    if not facts:
        found = f"it has no {tables} file"
    elif last is None or last > batch_date:
        found = f"none of its {tables} rows is dated {batch_date}"
    else:
        found = f"its {tables} rows end on {last}"
    weekly = (
        f" (land.grain is weekly: daily_sales rows of the week holding {batch_date}, dated by its first "
        f"day, a {land.week_start.capitalize()})"
        if land.grain == "weekly"
        else ""
    )
    raise LandingError(
        f"no facts for {batch_date} in {batch}: {found}. A batch must hold that day's {tables} "
        f"rows{weekly}: is it another date's batch, or a replay past the end of the data?"
    )


def _check_file(
    f: _SourceFile, table: Table, land: LandParams, say: Callable[[str], None]
) -> tuple[list[LandingProblem], int, pl.DataFrame]:
    def problem(rule: str, column: str | None, row: int | None, message: str) -> LandingProblem:
        return LandingProblem(f.name, table.name, rule, column, row, message)

    if f.path.stat().st_size == 0:
        say(f"checking {f.name} (0 bytes)")
        empty = problem(RULE_EMPTY, None, None, "file is empty (0 bytes, no header and no rows)")
        return [empty], 0, _no_codes()
    problems: list[LandingProblem] = []
    try:
        lf = _scan(f)
        schema = lf.collect_schema()
        rows = int(lf.select(pl.len()).collect(engine="streaming").item())
        say(f"checking {f.name} ({rows:,} rows)")
        if rows == 0:
            problems.append(problem(RULE_EMPTY, None, None, "file has a header but no data rows"))
        for name, dtype in table.schema.items():
            if name not in schema:
                problems.append(
                    problem(RULE_MISSING_COLUMN, name, None, f"missing column (expected {dtype})")
                )
        extra = [c for c in schema if c not in table.schema]
        for name in extra:
            problems.append(
                problem(
                    RULE_EXTRA_COLUMN,
                    name,
                    None,
                    f"column is not in the contract for table {table.name} (expected columns: "
                    f"{', '.join(table.column_names)})",
                )
            )

        casts: dict[str, pl.Expr] = {}
        for name, dtype in table.schema.items():
            if name not in schema:
                continue
            expr = _cast_expr(name, schema[name], dtype, id_column=name in table.id_columns)
            if expr is None:
                problems.append(
                    problem(
                        RULE_TYPE,
                        name,
                        None,
                        f"expected {dtype}, file has {schema[name]} which cannot be cast",
                    )
                )
            else:
                casts[name] = expr

        bad_type: set[str] = set()
        # One pass counts bad values in every column; extra columns are read too so that a malformed
        # CSV cannot hide in a column the checks would otherwise skip.
        text_ids = [c for c in table.id_columns if c in casts and _is_text(schema[c])]
        counts = (
            lf.select(
                pl.len().alias(_ROW),
                *[(pl.col(c).is_not_null() & e.is_null()).sum().alias(c) for c, e in casts.items()],
                *[pl.col(c).null_count().alias(c) for c in extra],
                # The same pass gathers the distinct string codes of ids held as text.
                *[_code(c).filter(_is_code(_code(c))).unique().implode().alias(_ROW + c) for c in text_ids],
            )
            .collect(engine="streaming")
            .row(0, named=True)
        )
        for name, expr in casts.items():
            n_bad = int(counts[name])
            if not n_bad:
                continue
            bad_type.add(name)
            first = (
                lf.with_row_index(_ROW, offset=1)
                .filter(pl.col(name).is_not_null() & expr.is_null())
                .select(_ROW, name)
                .head(1)
                .collect(engine="streaming")
            )
            row, value = int(first[_ROW][0]), first[name][0]
            line = f" (line {row + 1})" if f.format == "csv" else ""
            found = f" (file has {schema[name]})" if f.format == "parquet" else ""
            problems.append(
                problem(
                    RULE_TYPE,
                    name,
                    row,
                    f"expected {table.schema[name]}{found}, {n_bad:,} bad value(s); "
                    f"first at row {row}{line}: {_show_value(value)}",
                )
            )

        found = {c: counts[_ROW + c] or [] for c in text_ids if c not in bad_type}
        codes = _id_codes(found, table) if rows and found else _no_codes()

        weekly = land.grain == "weekly" and table.name in PERIOD_TABLES
        column = table.date_column
        if weekly and rows and column in casts and column not in bad_type:
            misdated = _week_start_problem(f, lf, column, casts[column], land)
            if misdated is not None:
                row, message = misdated
                problems.append(problem(RULE_WEEK_START, column, row, message))

        key = list(table.key)
        if rows and all(k in casts and k not in bad_type for k in key):
            dup = _duplicate_keys(lf, {k: casts[k] for k in key})
            if dup is not None:
                problems.append(problem(RULE_DUPLICATE_KEY, ", ".join(key), None, dup))
    except (pl.exceptions.PolarsError, OSError) as exc:
        return [problem(RULE_UNPARSEABLE, None, None, _unparseable(f, exc))], 0, _no_codes()
    except BaseException as exc:
        # Polars' Rust side panics on some corrupt files; the panic type derives from BaseException.
        if type(exc).__name__ != "PanicException":
            raise
        return [problem(RULE_UNPARSEABLE, None, None, _unparseable(f, exc))], 0, _no_codes()
    return problems, rows, codes


def _id_codes(found: dict[str, list[str]], table: Table) -> pl.DataFrame:
    """The distinct string codes (not canonical integers) of text id columns, with their surrogate ids."""
    frames = []
    for c, codes in found.items():
        values = sorted(codes)
        bits = _id_bits(table.schema[c])
        ids = [surrogate_id(v, bits) for v in values]
        frames.append(pl.DataFrame({"id_column": c, "id": ids, "code": values}, schema=ID_CODES_SCHEMA))
    return pl.concat(frames)


def _week_start_problem(
    f: _SourceFile, lf: pl.LazyFrame, column: str, day: pl.Expr, land: LandParams
) -> tuple[int, str] | None:
    """With weekly sales, a row dated on another weekday than ``land.week_start``: first row and message."""
    # Polars numbers weekdays 1 (Monday) to 7; week_start_index is 0 (Monday) to 6.
    off = day.is_not_null() & (day.dt.weekday() != land.week_start_index + 1)
    n_bad = int(lf.select(off.sum()).collect(engine="streaming").item())
    if not n_bad:
        return None
    first = (
        lf.with_row_index(_ROW, offset=1)
        .filter(off)
        .select(_ROW, day.alias(column))
        .head(1)
        .collect(engine="streaming")
    )
    row, value = int(first[_ROW][0]), first[column][0]
    line = f" (line {row + 1})" if f.format == "csv" else ""
    start = land.week_start
    message = (
        f"land.grain is weekly with week_start {start}: dates must be {start.capitalize()}s (a weekly row "
        f"is dated by its week's first day); {n_bad:,} row(s) are not, first at row {row}{line}: "
        f"{value} (a {WEEKDAYS[value.weekday()].capitalize()}). Date each row by its week's first "
        "day, or set land.week_start to the weekday your weeks start on (land.grain: daily if the "
        "rows are days)"
    )
    return row, message


def _duplicate_keys(lf: pl.LazyFrame, key: dict[str, pl.Expr]) -> str | None:
    keys = lf.select(*[e.alias(k) for k, e in key.items()])
    # As many distinct 64-bit key hashes as rows proves every key distinct, and counting hashes is
    # much cheaper than grouping by the key columns (8 bytes a row in memory; see
    # docs/benchmarks.md for the measured figure). Only a repeated hash, a duplicate or a
    # rare collision, pays for the exact search below.
    hashes = keys.select(pl.struct(list(key)).hash().alias("h")).collect()
    if hashes["h"].n_unique() == hashes.height:
        return None
    del hashes
    found = (
        keys.group_by(list(key))
        .agg(pl.len().alias(_ROW))
        .filter(pl.col(_ROW) > 1)
        # Sorted so that the example is the same on every run.
        .sort(list(key), nulls_last=True)
        .select(
            pl.len().alias("n_keys"),
            pl.struct(list(key)).first().alias("example"),
            pl.col(_ROW).first().alias("times"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    if not found["n_keys"]:
        return None
    # An id held as text shows as its code ('OJ-TROP-64'), as the file has it.
    example = dict(found["example"])
    example = ", ".join(f"{k}={_show_value(v)}" for k, v in example.items())
    return (
        f"{found['n_keys']:,} duplicated key(s) on ({', '.join(key)}); "
        f"e.g. {example} occurs {found['times']} times"
    )


def _scan(f: _SourceFile) -> pl.LazyFrame:
    if f.format == "csv":
        # Every column as text, so that the cast below decides what is a bad value, not inference.
        return pl.scan_csv(f.path, infer_schema=False)
    return pl.scan_parquet(f.path)


def _cast_expr(name: str, src: pl.DataType, dst: pl.DataType, *, id_column: bool = False) -> pl.Expr | None:
    """An expression casting column ``name`` to ``dst``; a bad value becomes null, never an error.

    None when ``src`` cannot stand for ``dst`` at all (a List for an Int64, an Int64 for a Date).
    An ``id_column`` held as text takes string codes, so its expression is the id's *key*: the code
    (text without surrounding whitespace) where it is a canonical integer in range or any other
    non-empty code, else null. Two values have the same key exactly when they get the same id (bar a
    surrogate collision, checked apart), which is all the checks need; :func:`_write_table` turns
    keys into ids.
    """
    col = pl.col(name)
    if src == dst or src == pl.Null:
        return col.cast(dst)
    if _is_text(src):
        text = col.cast(pl.String)
        if id_column and dst.is_integer():
            code = _code(name)
            canonical = code.str.contains(_CANONICAL_INT)
            in_range = code.cast(dst, strict=False).is_not_null()
            return pl.when((canonical & in_range) | (~canonical & (code != ""))).then(code)
        if dst == pl.String:
            return text
        if dst == pl.Date:
            return text.str.to_date("%Y-%m-%d", strict=False)
        if dst == pl.Boolean:
            return (
                text.str.strip_chars()
                .str.to_lowercase()
                .replace_strict(list(_BOOL_WORDS), list(_BOOL_WORDS.values()), default=None, return_dtype=dst)
            )
        if dst.is_numeric():
            return text.str.strip_chars().cast(dst, strict=False)
        return None
    if dst.is_integer():
        if src.is_integer():
            return col.cast(dst, strict=False)  # out of range -> null -> reported
        if src.is_float():
            # A plain cast would truncate 1.5 to 1 without a word; only whole numbers pass.
            return (
                pl.when(col.is_finite() & (col == col.floor()))
                .then(col)
                .otherwise(None)
                .cast(dst, strict=False)
            )
        return None
    if dst.is_float():
        return col.cast(dst, strict=False) if src.is_numeric() else None
    if dst == pl.Date:
        return col.cast(dst) if isinstance(src, pl.Datetime) else None
    if dst == pl.Boolean:
        if src.is_integer():
            return col.replace_strict([0, 1], [False, True], default=None, return_dtype=dst)
        return None
    return None


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Enum)


def _code(name: str) -> pl.Expr:
    """An id column's value as a code: its text without surrounding whitespace."""
    return pl.col(name).cast(pl.String).str.strip_chars()


def _is_code(code: pl.Expr) -> pl.Expr:
    """A string code, as opposed to a canonical integer, an empty value or a null."""
    return code.is_not_null() & (code != "") & code.str.contains(_CANONICAL_INT).not_()


def _id_bits(dtype: pl.DataType) -> int:
    return 32 if dtype == pl.Int32 else 64


def _unparseable(f: _SourceFile, exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot be read as {f.format.upper()}: {detail}"


def _show_value(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


# --- outcomes ---------------------------------------------------------------------------------


def _quarantine(
    files: Sequence[_SourceFile],
    problems: Sequence[LandingProblem],
    source: str,
    batch_date: datetime.date,
    batch_id: str,
    settings: Settings,
) -> Path:
    qdir = settings.quarantine_dir / f"{batch_date.isoformat()}_{batch_id}"
    qdir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC).isoformat()
    for f in files:
        mine = [p for p in problems if p.file == f.name]
        if not mine:
            continue
        shutil.copy2(f.path, qdir / f.name)
        reason = {
            "file": f.name,
            "table": mine[0].table,
            "source": f.uri,
            "batch_source": source,
            "batch_id": batch_id,
            "batch_date": batch_date.isoformat(),
            "quarantined_at": now,
            "problems": [asdict(p) for p in mine],
        }
        (qdir / f"{f.name}.reason.json").write_text(json.dumps(reason, indent=2, default=str) + "\n")
    return qdir


def _write_table(f: _SourceFile, out_dir: Path, codes: pl.DataFrame) -> None:
    """Write a checked file as the contract's Parquet; ``codes`` holds the batch's codes and their ids."""
    table = f.known_table
    lf = _scan(f)
    schema = lf.collect_schema()
    target = out_dir / f"{table.name}.parquet"
    if f.format == "parquet" and list(schema.items()) == list(table.schema.items()):
        # Already the contract's columns, order and types: rewriting it would change nothing and
        # costs a full read and write of the file.
        shutil.copyfile(f.path, target)
        return
    columns = []
    for name, dtype in table.schema.items():
        if name in table.id_columns and _is_text(schema[name]):
            # A code's surrogate id comes from the batch's codes (hashed once per distinct code),
            # joined on the code; a canonical integer is its own id.
            ids = codes.filter(pl.col("id_column") == name).select(
                pl.col("code").alias(_ROW + name), pl.col("id").cast(dtype).alias(_ROW + "id_" + name)
            )
            code = _code(name)
            expr = code.cast(dtype, strict=False)  # a canonical integer, or no id
            if ids.height:
                lf = lf.join(
                    ids.lazy(), left_on=code, right_on=_ROW + name, how="left", maintain_order="left"
                )
                is_int = code.str.contains(_CANONICAL_INT)
                expr = pl.when(is_int).then(expr).otherwise(pl.col(_ROW + "id_" + name))
        else:
            expr = _cast_expr(name, schema[name], dtype)
        if expr is None:  # the checks rule this out; fail loudly rather than write a wrong schema
            raise AssertionError(f"{f.name}: column {name} cannot be cast to {dtype}")
        columns.append(expr.cast(dtype).alias(name))
    lf.select(columns).sink_parquet(target, engine="streaming")


def _publish(staging: Path, final: Path) -> None:
    if not final.exists():
        os.rename(staging, final)
        return
    # The date is in the trash name so that _recover knows where to put it back after a crash.
    trash = final.parent / f"{TRASH_PREFIX}{final.name}-{uuid.uuid4().hex}"
    os.rename(final, trash)
    os.rename(staging, final)
    shutil.rmtree(trash)


def _recover(raw: Path, settings: Settings, say: Callable[[str], None]) -> None:
    """Undo what a crashed landing left behind; only safe while holding the landing lock."""
    for trash in sorted(raw.glob(f"{TRASH_PREFIX}*")):
        name = trash.name[len(TRASH_PREFIX) :].rsplit("-", 1)[0]
        final = raw / name
        if _PARTITION_RE.fullmatch(name) and not final.exists():
            # Crashed between the two renames of _publish: the old partition is the last good one.
            os.rename(trash, final)
            say(f"restored {_show(final, settings)} after an interrupted landing")
        else:
            shutil.rmtree(trash, ignore_errors=True)
    staging_root = raw / STAGING
    if staging_root.is_dir():
        for leftover in staging_root.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Append mode creates the file once and never touches it again, so it changes nothing on reruns.
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _try_manifest(partition: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(partition)
    except (OSError, ValueError):
        return None


def _rmdir_if_empty(path: Path) -> None:
    with suppress(OSError):
        path.rmdir()


def _show(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.home))
    except ValueError:
        return str(path)


def _silent(_message: str) -> None:
    return None
