"""The severity policy as pure functions: what a failed expectation does (block, quarantine, warn),
how slices add up, what the gate's message says, how big tables are sliced, and which
reconciliation keys quarantined rows take out."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipelines.quality.engine import GateFailure, Outcome, QualityGateError, classify, combine, jsonable
from pipelines.quality.raw import Chunk, exclude_keys, plan_chunks, read_ahead, row_slices, units_checksum
from pipelines.quality.suites import Dimension, Rule, Severity


def _rule(
    severity: Severity, name: str = "expect_column_values_to_be_between(units)", row_level: bool = True
) -> Rule:
    return Rule(
        name=name,
        type=name.split("(")[0],
        kwargs={"column": "units", "min_value": 0},
        severity=severity,
        dimension=Dimension.ACCURACY,
        description="Units sold is 0 or more",
        row_level=row_level,
    )


def _failed(severity: Severity, rows: list[int] | None = None, **kw: object) -> Outcome:
    rows = [3, 7] if rows is None else rows
    return Outcome("daily_sales", _rule(severity), False, 10, len(rows), list(rows), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("severity", "blocked", "quarantined", "warned"),
    [
        (Severity.BLOCK, True, {}, 0),
        (
            Severity.QUARANTINE,
            False,
            {"daily_sales": {"expect_column_values_to_be_between(units)": [3, 7]}},
            0,
        ),
        (Severity.WARN, False, {}, 1),
    ],
)
def test_each_severity_maps_to_its_outcome(
    severity: Severity, blocked: bool, quarantined: dict[str, dict[str, list[int]]], warned: int
) -> None:
    verdict = classify([_failed(severity)])
    assert verdict.blocked is blocked
    assert verdict.quarantine == quarantined
    assert len(verdict.warnings) == warned


def test_passing_expectations_change_nothing_whatever_their_severity() -> None:
    passed = [Outcome("t", _rule(s), True, 10, 0) for s in Severity]
    verdict = classify(passed)
    assert not verdict.blocked and verdict.quarantine == {} and verdict.warnings == []


def test_a_quarantine_rule_that_cannot_name_its_rows_blocks() -> None:
    # Loading "the rest" would load the bad rows too.
    assert classify([_failed(Severity.QUARANTINE, rows=[])]).blocked
    assert classify([_failed(Severity.QUARANTINE, error="column 'units' does not exist")]).blocked


def test_quarantined_rows_of_one_rule_add_up_across_slices() -> None:
    verdict = classify([_failed(Severity.QUARANTINE, [1, 2]), _failed(Severity.QUARANTINE, [9])])
    assert verdict.quarantine == {"daily_sales": {"expect_column_values_to_be_between(units)": [1, 2, 9]}}


def test_slices_combine_into_one_result_per_rule() -> None:
    a = Outcome("daily_sales", _rule(Severity.QUARANTINE), True, 100, 0, chunk="2024-01-01..2024-01-31")
    b = _failed(Severity.QUARANTINE, [5], chunk="2024-02-01..2024-02-29", samples=[{"units": -1}])
    [merged] = combine([a, b])
    assert (merged.success, merged.element_count, merged.unexpected_count, merged.rows) == (
        False,
        110,
        1,
        [5],
    )
    assert merged.samples == [{"units": -1}] and merged.chunk == "*"


def test_the_gate_message_names_table_expectation_count_and_up_to_five_samples() -> None:
    samples = [{"_row": i, "units": -i, "date": "2024-01-01"} for i in range(1, 8)]
    failure = _failed(Severity.BLOCK, list(range(1, 8)), samples=samples).gate_failure()
    assert failure == GateFailure(
        "daily_sales",
        "expect_column_values_to_be_between(units)",
        "accuracy",
        7,
        10,
        "Units sold is 0 or more",
        tuple(samples[:5]),
    )
    text = str(QualityGateError("raw batch 2024-01-01 blocked", [failure]))
    assert text.splitlines()[:2] == [
        "raw batch 2024-01-01 blocked",
        "  - daily_sales: expect_column_values_to_be_between(units) [accuracy] failed for 7 of 10 row(s): "
        "Units sold is 0 or more",
    ]
    assert text.count("sample:") == 5
    assert 'sample: {"_row": 1, "units": -1, "date": "2024-01-01"}' in text


def test_an_aggregate_failure_shows_the_observed_value() -> None:
    outcome = Outcome(
        "fct_sales_daily", _rule(Severity.BLOCK, "expect_table_row_count_to_be_between", False), False
    )
    outcome.observed = 0
    failure = outcome.gate_failure()
    assert (failure.failing, failure.checked, failure.samples) == (1, None, ({"observed_value": 0},))
    assert str(failure).startswith(
        "fct_sales_daily: expect_table_row_count_to_be_between [accuracy] failed: Units sold is 0 or more"
    )


def test_values_become_plain_json() -> None:
    import numpy as np
    import pandas as pd

    assert jsonable({"d": pd.Timestamp("2024-03-01"), "n": np.int64(4), "x": float("nan"), "t": pd.NaT}) == {
        "d": "2024-03-01",
        "n": 4,
        "x": None,
        "t": None,
    }


# --- slicing big tables -----------------------------------------------------------------------------


def _counts(*pairs: tuple[int | None, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"value": [p[0] for p in pairs], "n": [p[1] for p in pairs]},
        schema={"value": pl.Int64, "n": pl.Int64},
    )


def test_a_table_that_fits_is_one_slice() -> None:
    assert plan_chunks(_counts((1, 5), (None, 1)), 10) == [Chunk("all", whole=True)]


def test_slices_are_whole_values_up_to_the_limit_plus_one_for_rows_without_a_value() -> None:
    chunks = plan_chunks(_counts((4, 4), (1, 4), (2, 4), (None, 2), (3, 12), (5, 1)), 8)
    assert [(c.first, c.last, c.null_values) for c in chunks] == [
        (1, 2, False),  # 8 rows
        (3, 3, False),  # a single value with more rows than the limit is not split
        (4, 5, False),  # 5 rows
        (None, None, True),
    ]
    frame = pl.DataFrame({"sku_id": [1, 3, None, 5]})
    assert frame.filter(chunks[0].predicate("sku_id")).height == 1
    assert frame.filter(chunks[3].predicate("sku_id")).height == 1


def test_row_slices_cover_every_row_once() -> None:
    assert row_slices(0, 4) == [(0, 0)]
    assert row_slices(4, 4) == [(0, 4)]
    assert row_slices(10, 4) == [(0, 4), (4, 4), (8, 2)]


# --- reconciliation leaves out what quarantine took ------------------------------------------------


def test_keys_of_quarantined_rows_leave_the_reconciliation_and_null_parts_match_anything() -> None:
    key = ["date", "sku_id", "channel"]
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    frame = pl.LazyFrame(
        {
            "date": [d1, d1, d1, d2, d2, d2],
            "sku_id": [1, 2, 3, 1, 2, 3],
            "channel": ["app", "app", "web", "app", "web", "web"],
        }
    )
    bad = pl.DataFrame(
        {
            "date": [d1, d2, None],
            "sku_id": [2, None, None],  # (d2, ?, web): its sku is unknown, so every web key of d2 goes
            "channel": ["app", "web", None],  # a wholly unknown key cannot be placed: excludes nothing
        }
    )
    kept = exclude_keys(frame, bad, key).collect().sort(key)
    assert kept.rows() == [(d1, 1, "app"), (d1, 3, "web"), (d2, 1, "app")]
    assert exclude_keys(frame, bad.clear(), key).collect().height == 6


def test_the_units_checksum_agrees_exactly_when_every_skus_units_add_up() -> None:
    def checksum(sku_ids: list[int], units: list[int | None]) -> int:
        schema = {"sku_id": pl.Int64, "units": pl.Int64}
        frame = pl.DataFrame({"sku_id": sku_ids, "units": units}, schema=schema)
        return frame.select(units_checksum("units")).item()

    sales = checksum([1, 2, 3], [5, 0, 2])
    # Order lines: any number of lines per SKU, in any order; a SKU without lines sold nothing.
    assert checksum([3, 1, 1, 3, 1], [1, 2, 2, 1, 1]) == sales
    # Same total, but one unit moved from SKU 1 to SKU 2: caught although the day's units agree.
    assert checksum([1, 2, 3], [4, 1, 2]) != sales
    assert checksum([1, 3], [5, 3]) != sales
    # A null quantity counts as none, as in the per-key comparison.
    assert checksum([1, 3, 2], [5, 2, None]) == sales


def test_read_ahead_yields_every_item_in_order_and_passes_errors_on() -> None:
    assert list(read_ahead(i * i for i in range(5))) == [0, 1, 4, 9, 16]
    assert list(read_ahead([])) == []

    def failing():
        yield 1
        raise ValueError("bad slice")

    with pytest.raises(ValueError, match="bad slice"):
        list(read_ahead(failing()))


# --- the daily_sales grid: series a SKU actually sells in, from launch to its last row -------------


def _grid_run(sales: list[tuple[dt.date, int, str]], launches: dict[int, dt.date | None], **quality: object):
    import types

    import duckdb

    from pipelines.config import load_settings

    env = {f"ECOM_QUALITY__{k.upper()}": str(v) for k, v in quality.items()}
    settings = load_settings({"ECOM_HOME": "/nonexistent", **env})
    frame = pl.DataFrame(
        sales, schema={"date": pl.Date, "sku_id": pl.Int64, "channel": pl.String}, orient="row"
    )
    products = pl.DataFrame(
        {"sku_id": list(launches), "launch_date": list(launches.values())},
        schema={"sku_id": pl.Int64, "launch_date": pl.Date},
    )
    return types.SimpleNamespace(
        settings=settings,
        params=settings.quality,
        products=products,
        con=duckdb.connect(),
        batch_date=max(d for d, _, _ in sales),
        notes=[],
        grid_gaps=[],
        grid_gap_series=0,
        id_codes=pl.DataFrame(schema={"id_column": pl.String, "id": pl.Int64, "code": pl.String}),
        passing=lambda table: frame.lazy(),
    )


D = [dt.date(2024, 3, day) for day in range(1, 8)]


def test_the_grid_expects_the_channels_each_sku_sells_in_from_launch_to_its_last_row() -> None:
    from pipelines.quality.raw.batch import _grid_frame

    sales = [(d, 1, c) for d in D for c in ("app", "web")]  # SKU 1: both channels, every day
    sales += [(d, 2, "app") for d in D]  # SKU 2: app only, so web is no gap
    sales += [(d, 3, "web") for d in D[2:]]  # SKU 3: no launch date, starts with its first row
    sales += [(d, 4, "app") for d in D[:3]]  # SKU 4: discontinued after day 3
    sales += [(d, 5, "app") for d in D if d != D[4]]  # SKU 5: one day missing
    sales += [(D[0], 6, "app")] + [(d, 6, "app") for d in D[3:]]  # SKU 6: a row before its launch
    run = _grid_run(sales, {1: D[0], 2: D[0], 3: None, 4: D[0], 5: D[0], 6: D[3]})
    grid = _grid_frame(run)
    assert grid["expected_cells"].to_list() == [5, 5, 6, 6, 6, 6, 6]
    assert grid["present_cells"].to_list() == [5, 5, 6, 6, 5, 6, 6]
    assert run.grid_gap_series == 1
    assert run.grid_gaps == ["sku_id=5 channel='app': 1 of 7 days missing, e.g. 2024-03-05"]
    [note] = run.notes
    assert note.startswith("daily_sales_grid: 1 missing series-days in 1 of 7 (sku_id, channel) series")


def test_the_grid_counts_only_the_configured_channels_and_a_one_day_batch_expects_known_series() -> None:
    from pipelines.quality.raw.batch import _grid_frame

    run = _grid_run([(D[1], 1, "app"), (D[1], 1, "store")], {1: D[0], 2: D[0]}, channels="app,web")
    # Raw already holds SKU 2 in app and SKU 1 in web: on a one-day batch both are expected.
    run.con.execute(
        "create schema raw; create table raw.daily_sales as select * from (values "
        "(date '2024-03-01', 2::bigint, 'app', date '2024-03-01'), "
        "(date '2024-03-01', 1::bigint, 'web', date '2024-03-01'), "
        "(date '2024-03-01', 1::bigint, 'store', date '2024-03-01')) t(date, sku_id, channel, _batch_date)"
    )
    grid = _grid_frame(run)
    assert grid.rows() == [(D[1], 3, 1, pytest.approx(1 / 3))]
    assert run.grid_gaps == [
        "sku_id=1 channel='web': 1 of 1 days missing, e.g. 2024-03-02",
        "sku_id=2 channel='app': 1 of 1 days missing, e.g. 2024-03-02",
    ]


def test_a_feed_stops_expecting_a_series_silent_for_longer_than_discontinued_after_days() -> None:
    from pipelines.quality.raw.batch import _grid_frame

    day = dt.date(2024, 6, 1)
    run = _grid_run([(day, 1, "app")], {1: D[0], 2: D[0], 3: D[0]}, discontinued_after_days=28)
    # SKU 2 last sold 10 days ago: expected (a gap). SKU 3 last sold 40 days ago: discontinued.
    run.con.execute(
        "create schema raw; create table raw.daily_sales as select * from (values "
        "(date '2024-05-22', 2::bigint, 'app', date '2024-05-22'), "
        "(date '2024-04-22', 3::bigint, 'app', date '2024-04-22')) t(date, sku_id, channel, _batch_date)"
    )
    grid = _grid_frame(run)
    assert grid.rows() == [(day, 2, 1, pytest.approx(1 / 2))]
    assert run.grid_gaps == ["sku_id=2 channel='app': 1 of 1 days missing, e.g. 2024-06-01"]
