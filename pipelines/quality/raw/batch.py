"""Batch-level checks on small derived frames (``expectations/raw_batch/``): timeliness, the
daily_sales grid, the order_lines/daily_sales reconciliation and the share of rows quarantined."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl

from pipelines.data.contract import PERIOD_TABLES, TABLES
from pipelines.quality.engine import ROW, to_gx_frame
from pipelines.quality.raw.run import DAILY_GRAIN_TABLES, TEMP_REJECTED, RawRun, suite_parameters
from pipelines.quality.raw.slices import plan_chunks, read_ahead
from pipelines.quality.store import table_exists
from pipelines.quality.suites import read_suite

_RECONCILIATION_KEY = ["date", "sku_id", "channel"]
_RECONCILIATION_DAY = ["date", "channel"]
# The units checksum of a day is sum(hash(sku_id) * units) over its rows, exact in 128 bits and
# reduced modulo this prime: unequal units for some SKU make two days' checksums agree with
# probability about 2**-61.
_CHECKSUM_MODULUS = 2**61 - 1
_CHECKSUM_SEED = 20_251_231


def run_batch_checks(run: RawRun, order: list[str]) -> None:
    parameters = suite_parameters(run.params, run.batch_date)

    def check(name: str, frame: pl.DataFrame, chunk: str = "") -> None:
        check_gx(name, gx_frame(frame), chunk)

    def gx_frame(frame: pl.DataFrame) -> Any:
        return to_gx_frame(frame.with_row_index(ROW, offset=1))

    def check_gx(name: str, frame: Any, chunk: str = "") -> None:
        suite = read_suite("raw_batch", name)
        run_name = f"{run.run_id}_{chunk}" if chunk else run.run_id
        run.outcomes += run.runner.run(suite, frame, parameters, run_name, chunk=chunk)

    run.say("checking the batch: timeliness, daily_sales grid, reconciliation, quarantine rate")
    check("timeliness", _timeliness_frame(run, order))
    if "daily_sales" in order:
        grid = _grid_frame(run)
        if grid is not None:
            check("daily_sales_grid", grid)
    if "daily_sales" in order and "order_lines" in order:
        compared = _reconciliation_inputs(run)
        if compared is not None:
            days = _reconciliation_days(*compared)
            check("sales_reconciliation_daily", days)
            frames = _reconciliation_frames(run, *compared, days)
            for chunk, frame in read_ahead((c, gx_frame(f)) for c, f in frames):
                check_gx("sales_reconciliation", frame, chunk)
    elif "daily_sales" in order or "order_lines" in order:
        run.notes.append(
            "sales_reconciliation skipped: the batch does not hold both daily_sales and order_lines"
        )
    check("quarantine_rate", _quarantine_rate_frame(run, order))


def _timeliness_frame(run: RawRun, order: list[str]) -> pl.DataFrame:
    """One row per daily-grain table: its latest business date, and days from its period's end to the batch.

    A weekly row (``land.grain: weekly``) is dated by its week's first day and covers six more days,
    so a weekly table is behind only once the batch date is past its latest week's last day.
    """
    weekly = run.settings.land.grain == "weekly"
    rows = []
    for name in order:
        if name not in DAILY_GRAIN_TABLES:
            continue
        column = TABLES[name].date_column
        assert column is not None
        latest = run.passing(name).select(pl.col(column).max()).collect().item()
        covers = 6 if weekly and name in PERIOD_TABLES else 0
        behind = max(0, (run.batch_date - latest).days - covers) if latest is not None else None
        rows.append(
            {"table_name": name, "latest_date": latest, "batch_date": run.batch_date, "days_behind": behind}
        )
    return pl.DataFrame(
        rows,
        schema={
            "table_name": pl.String,
            "latest_date": pl.Date,
            "batch_date": pl.Date,
            "days_behind": pl.Int64,
        },
    )


def _grid_frame(run: RawRun) -> pl.DataFrame | None:
    """One row per period (day, or week with ``land.grain: weekly``) from the batch's first to its last
    sales period: the series expected in it, the series present, and the coverage.

    A series is a (sku_id, channel) pair seen in this batch or recently in raw (the channels a SKU
    actually sells in; only those of ``quality.channels`` when set). It is expected from its SKU's
    launch (``products.launch_date``, else the series' first row) and, when the batch spans several
    periods, until its last row in the batch: a discontinued SKU is not a gap. Also fills
    ``run.grid_gaps``.
    """
    land = run.settings.land
    step = 7 if land.grain == "weekly" else 1
    noun = "week" if step == 7 else "day"
    sales = run.passing("daily_sales").select("date", "sku_id", "channel")
    sales = sales.filter(pl.all_horizontal(pl.col("date", "sku_id", "channel").is_not_null()))
    if run.params.channels is not None:
        sales = sales.filter(pl.col("channel").is_in(list(run.params.channels)))
    lo, hi = sales.select(pl.col("date").min(), pl.col("date").max().alias("hi")).collect().row(0)
    if lo is None:
        run.notes.append("daily_sales_grid skipped: no daily_sales rows passed")
        return None
    if step == 7:  # the first week's first day, should a row be off the week start
        lo -= dt.timedelta(days=(lo.weekday() - land.week_start_index) % 7)
    periods = (hi - lo).days // step + 1

    def index(day: pl.Expr) -> pl.Expr:
        return ((day - pl.lit(lo)).dt.total_days() // step).cast(pl.Int64)

    keys = ["sku_id", "channel"]
    rows = sales.with_columns(index(pl.col("date")).alias("idx")).select(*keys, "idx")
    # One pass: each series' first and last row and row count, and the rows per period. A key is
    # unique in a landed file, so a row is one present cell.
    in_batch, all_per_period = pl.collect_all(
        [
            rows.group_by(keys).agg(
                pl.col("idx").min().alias("first_idx"),
                pl.col("idx").max().alias("last_idx"),
                pl.len().cast(pl.Int64).alias("present"),
            ),
            rows.group_by("idx").agg(pl.len().cast(pl.Int64).alias("present_cells")),
        ]
    )
    series = in_batch.join(_history_series(run, lo), on=keys, how="full", coalesce=True).with_columns(
        pl.col("history").fill_null(False), pl.col("present").fill_null(0)
    )
    launches = run.products if run.products is not None else pl.DataFrame(schema=_LAUNCHES)
    series = series.join(
        launches.select(pl.col("sku_id").cast(pl.Int64), pl.col("launch_date").cast(pl.Date)),
        on="sku_id",
        how="left",
    )
    # Where products has no launch date, the series starts with its first row: before this batch
    # when raw already holds it.
    first_row = pl.when(pl.col("history")).then(0).otherwise(pl.col("first_idx"))
    end = pl.col("last_idx") if periods > 1 else pl.lit(periods - 1, pl.Int64)
    series = series.with_columns(
        pl.coalesce(index(pl.col("launch_date")), first_row).clip(lower_bound=0).alias("start_idx"),
        end.alias("end_idx"),
    )
    # Rows before their SKU's launch are no cells of the grid (rows after a series' end cannot be:
    # it ends at its last row, or at the batch's only period). Rarely any, so counted apart.
    late_launch = series.filter(pl.col("start_idx") > pl.col("first_idx")).select(*keys, "start_idx")
    early_per_period = pl.DataFrame(schema={"idx": pl.Int64, "early": pl.Int64})
    early_per_series = pl.DataFrame(schema={"sku_id": pl.Int64, "channel": pl.String, "early": pl.Int64})
    if late_launch.height:
        early = rows.join(late_launch.lazy(), on=keys, how="inner").filter(
            pl.col("idx") < pl.col("start_idx")
        )
        early_per_period, early_per_series = pl.collect_all(
            [
                early.group_by("idx").agg(pl.len().cast(pl.Int64).alias("early")),
                early.group_by(keys).agg(pl.len().cast(pl.Int64).alias("early")),
            ]
        )
    per_period = all_per_period.join(early_per_period, on="idx", how="left").select(
        "idx", (pl.col("present_cells") - pl.col("early").fill_null(0)).alias("present_cells")
    )
    series = (
        series.join(early_per_series, on=keys, how="left")
        .with_columns((pl.col("present") - pl.col("early").fill_null(0)).alias("present"))
        .filter(pl.col("start_idx") <= pl.col("end_idx"))
        .select(*keys, "start_idx", "end_idx", "present")
    )
    present = rows.join(series.lazy().select(*keys, "start_idx"), on=keys, how="inner").filter(
        pl.col("idx") >= pl.col("start_idx")
    )
    # Series expected per period: +1 where a series starts, -1 after it ends, summed up.
    bounds = pl.concat(
        [
            series.select(pl.col("start_idx").alias("idx"), pl.lit(1, pl.Int64).alias("delta")),
            series.select((pl.col("end_idx") + 1).alias("idx"), pl.lit(-1, pl.Int64).alias("delta")),
        ]
    )
    expected = (
        pl.DataFrame({"idx": pl.int_range(0, periods, eager=True, dtype=pl.Int64)})
        .join(bounds.group_by("idx").agg(pl.col("delta").sum()), on="idx", how="left")
        .select("idx", pl.col("delta").fill_null(0).cum_sum().alias("expected_cells"))
    )
    grid = (
        expected.join(per_period, on="idx", how="left")
        .with_columns(pl.col("present_cells").fill_null(0))
        .with_columns(
            (pl.lit(lo) + pl.duration(days=pl.col("idx") * step)).cast(pl.Date).alias("date"),
            pl.when(pl.col("expected_cells") > 0)
            .then(pl.col("present_cells") / pl.col("expected_cells"))
            .otherwise(None)
            .alias("coverage"),
        )
        .sort("idx")
        .select("date", "expected_cells", "present_cells", "coverage")
    )
    run.grid_gaps = _series_gaps(run, series, present, lo, step, noun)
    if run.grid_gaps:
        missing = int(grid["expected_cells"].sum() - grid["present_cells"].sum())
        run.notes.append(
            f"daily_sales_grid: {missing:,} missing series-{noun}s in {run.grid_gap_series:,} of "
            f"{series.height:,} (sku_id, channel) series (a missing {noun} is no row, not a zero); "
            f"most missing: {'; '.join(run.grid_gaps[:3])}"
        )
    return grid


_LAUNCHES = {"sku_id": pl.Int64, "launch_date": pl.Date}


def _history_series(run: RawRun, first_day: dt.date) -> pl.DataFrame:
    """The (sku_id, channel) pairs raw holds from other batches (the channels each SKU sells in)
    with a row in the ``quality.discontinued_after_days`` days before ``first_day``: a series
    silent for longer is taken as discontinued, not as a gap in every later batch."""
    schema = {"sku_id": pl.Int64, "channel": pl.String, "history": pl.Boolean}
    if not table_exists(run.con, "raw", "daily_sales"):
        return pl.DataFrame(schema=schema)
    since = first_day - dt.timedelta(days=run.params.discontinued_after_days)
    where = "_batch_date <> ? and date >= ? and sku_id is not null and channel is not null"
    params: list[object] = [run.batch_date, since]
    if run.params.channels is not None:
        where += f" and channel in ({', '.join('?' for _ in run.params.channels)})"
        params += list(run.params.channels)
    pairs = run.con.sql(
        f"select distinct sku_id, channel, true as history from raw.daily_sales where {where}", params=params
    ).pl()
    return pairs.cast(schema)  # type: ignore[arg-type]


def _series_gaps(
    run: RawRun, series: pl.DataFrame, present: pl.LazyFrame, lo: dt.date, step: int, noun: str
) -> list[str]:
    """The series with the most missing periods, a line each with counts and the first few dates."""
    gaps = (
        series.with_columns((pl.col("end_idx") - pl.col("start_idx") + 1).alias("expected"))
        .with_columns((pl.col("expected") - pl.col("present")).alias("missing"))
        .filter(pl.col("missing") > 0)
        .sort(["missing", "sku_id", "channel"], descending=[True, False, False])
    )
    run.grid_gap_series = gaps.height
    top = gaps.head(_GAP_SERIES)
    have = present.join(
        top.lazy().select("sku_id", "channel"), on=["sku_id", "channel"], how="semi"
    ).collect()
    codes = run.id_codes.filter(pl.col("id_column") == "sku_id")
    code_of = dict(zip(codes["id"].to_list(), codes["code"].to_list(), strict=True))
    lines = []
    for row in top.iter_rows(named=True):
        sku, channel = row["sku_id"], row["channel"]
        seen = set(have.filter((pl.col("sku_id") == sku) & (pl.col("channel") == channel))["idx"].to_list())
        days = [
            (lo + dt.timedelta(days=idx * step)).isoformat()
            for idx in range(row["start_idx"], row["end_idx"] + 1)
            if idx not in seen
        ]
        more = ", ..." if len(days) > _GAP_DATES else ""
        shown = f"sku_id={sku}" + (f" ({code_of[sku]!r})" if sku in code_of else "")
        lines.append(
            f"{shown} channel={channel!r}: {row['missing']:,} of {row['expected']:,} {noun}s missing, "
            f"e.g. {', '.join(days[:_GAP_DATES])}{more}"
        )
    return lines


# Series named in the gate's message and notes, and dates shown for each.
_GAP_SERIES = 5
_GAP_DATES = 3


def _reconciliation_inputs(run: RawRun) -> tuple[pl.LazyFrame, pl.LazyFrame] | None:
    """daily_sales units and order_lines quantities per key, as they would load, over the days both cover."""
    key = _RECONCILIATION_KEY
    sales = run.passing("daily_sales").select(*key, pl.col("units").cast(pl.Int64).alias("units_daily_sales"))
    # Weekly sales rows stand for their week: order lines count towards the week holding their day.
    order_period = _sales_period(run, pl.col("order_date")).alias("date")
    lines = run.passing("order_lines").select(
        order_period, "sku_id", "channel", pl.col("quantity").cast(pl.Int64)
    )
    span = [pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi")]
    lo_s, hi_s = sales.select(span).collect().row(0)
    lo_l, hi_l = lines.select(span).collect().row(0)
    if None in (lo_s, hi_s, lo_l, hi_l) or max(lo_s, lo_l) > min(hi_s, hi_l):
        run.notes.append("sales_reconciliation skipped: daily_sales and order_lines share no day")
        return None
    # Compared only over the days both tables cover: a daily feed may carry late order lines.
    first, last = max(lo_s, lo_l), min(hi_s, hi_l)
    bad_keys = pl.concat(
        [
            run.quarantined("daily_sales").select(key).collect(),
            run.quarantined("order_lines").select(order_period, "sku_id", "channel").collect(),
        ]
    )
    in_range = pl.col("date").is_between(first, last)
    return (
        exclude_keys(sales, bad_keys, key).filter(in_range),
        exclude_keys(lines, bad_keys, key).filter(in_range),
    )


def _sales_period(run: RawRun, day: pl.Expr) -> pl.Expr:
    """The sales period of a day: the day itself, or with ``land.grain: weekly`` its week's first day."""
    land = run.settings.land
    if land.grain != "weekly":
        return day
    # Polars numbers weekdays 1 (Monday) to 7; week_start_index is 0 (Monday) to 6.
    back = (day.dt.weekday() - 1 - land.week_start_index) % 7
    return (day - pl.duration(days=back)).cast(pl.Date)


def units_checksum(units: str) -> pl.Expr:
    """Aggregate: sum(hash(sku_id) * units) modulo _CHECKSUM_MODULUS, an Int64.

    Linear in the units, so a day's order lines give the same checksum as its daily_sales rows
    exactly when every SKU's quantities add up to its units (bar a 2**-61 coincidence), without
    summing the lines per key or joining the two tables.
    """
    product = pl.col("sku_id").hash(_CHECKSUM_SEED).cast(pl.Int128) * pl.col(units).cast(pl.Int128)
    return (product.sum() % _CHECKSUM_MODULUS).cast(pl.Int64)


def _reconciliation_days(sales: pl.LazyFrame, lines: pl.LazyFrame) -> pl.DataFrame:
    """One row per (date, channel): units and units checksum of daily_sales and of order_lines."""
    sides = [
        frame.group_by(_RECONCILIATION_DAY).agg(
            pl.col(units).sum().alias(f"units_{name}"), units_checksum(units).alias(f"checksum_{name}")
        )
        for frame, units, name in (
            (sales, "units_daily_sales", "daily_sales"),
            (lines, "quantity", "order_lines"),
        )
    ]
    totals = pl.collect_all(sides)
    # A side without rows for a day counts as zero units, as a missing key does per key.
    return (
        totals[0]
        .join(totals[1], on=_RECONCILIATION_DAY, how="full", coalesce=True)
        .fill_null(0)
        .sort(_RECONCILIATION_DAY)
    )


def _reconciliation_frames(
    run: RawRun, sales: pl.LazyFrame, lines: pl.LazyFrame, days: pl.DataFrame
) -> Iterator[tuple[str, pl.DataFrame]]:
    """The per-key comparison, only for the days whose checksums differ (it names the keys).

    Joining every key of a large history batch costs several times what the checksums of every day
    cost, and a clean batch needs no more than the checksums.
    """
    key = _RECONCILIATION_KEY
    differ = days.filter(pl.col("checksum_daily_sales") != pl.col("checksum_order_lines"))
    if differ.is_empty():
        # Validated all the same, with no rows: every run records a result for every expectation.
        schema = {**sales.collect_schema(), "units_order_lines": pl.Int64}
        yield "", pl.DataFrame(schema=schema)
        return
    wanted = differ.select(_RECONCILIATION_DAY).lazy()
    sales = sales.join(wanted, on=_RECONCILIATION_DAY, how="semi")
    lines = lines.join(wanted, on=_RECONCILIATION_DAY, how="semi")
    # Sliced by SKU: every row of a key falls in one slice whatever the split, and landed files are
    # usually written SKU by SKU, so a SKU range reads only its own row groups (a date range read
    # both whole files once per slice). Null SKUs were quarantined.
    counts = sales.group_by(pl.col("sku_id").alias("value")).agg(pl.len().alias("n")).collect()
    chunks = [c for c in plan_chunks(counts, run.params.max_rows_per_chunk) if not c.null_values]
    for chunk in chunks:
        in_chunk = chunk.predicate("sku_id")
        summed = lines.filter(in_chunk).group_by(key).agg(pl.col("quantity").sum().alias("units_order_lines"))
        frame = (
            sales.filter(in_chunk)
            .join(summed, on=key, how="full", coalesce=True)
            .with_columns(pl.col("units_daily_sales", "units_order_lines").fill_null(0))
            .sort(key)
            .collect()
        )
        yield ("" if len(chunks) == 1 else f"sku_{chunk.label}"), frame


def exclude_keys(frame: pl.LazyFrame, bad_keys: pl.DataFrame, key: Sequence[str]) -> pl.LazyFrame:
    """``frame`` without the keys of quarantined rows; a null key part matches any value.

    A quarantined order line with a null sku_id still counted towards its day's daily_sales
    units, so every key of that (date, channel) is left out of the comparison. A row whose whole
    key is null cannot be placed and excludes nothing.
    """
    if bad_keys.is_empty():
        return frame
    known = bad_keys.select([pl.col(c).is_not_null().alias(c) for c in key]).unique()
    for pattern in known.iter_rows(named=True):
        cols = [c for c in key if pattern[c]]
        if not cols:
            continue
        match = pl.all_horizontal(
            [pl.col(c).is_not_null() if pattern[c] else pl.col(c).is_null() for c in key]
        )
        subset = bad_keys.filter(match).select(cols).unique()
        frame = frame.join(subset.lazy(), on=cols, how="anti", nulls_equal=False)
    return frame


def _quarantine_rate_frame(run: RawRun, order: list[str]) -> pl.DataFrame:
    counts = dict(
        run.con.execute(
            f"select table_name, count(distinct row_number) from {TEMP_REJECTED} group by table_name"
        ).fetchall()
    )
    # What quarantined most of each table's rows, with the first such row's reason: a feed broken
    # by one mapping mistake (unknown channels, codes) says so in the gate's samples.
    top = {
        table: (rule, reason)
        for table, rule, reason in run.con.execute(
            f"select table_name, arg_max(rule, n), arg_max(reason, n) from (select table_name, rule, "
            f"count(*) as n, min_by(reason, row_number) as reason from {TEMP_REJECTED} group by all) "
            "group by all"
        ).fetchall()
    }
    rows = []
    for name in order:
        total = run.rows.get(name, 0)
        bad = int(counts.get(name, 0))
        rule, reason = top.get(name, (None, None))
        rows.append(
            {
                "table_name": name,
                "rows": total,
                "quarantined_rows": bad,
                "quarantined_rate": bad / total if total else 0.0,
                "top_rule": rule,
                "top_reason": reason,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "table_name": pl.String,
            "rows": pl.Int64,
            "quarantined_rows": pl.Int64,
            "quarantined_rate": pl.Float64,
            "top_rule": pl.String,
            "top_reason": pl.String,
        },
    )
