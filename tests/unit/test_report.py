"""The report's pure parts: KPI deltas, formatting, category shares, movers and SVG charts."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import polars as pl
import pytest

from pipelines.report import charts, metrics
from pipelines.report.metrics import KPIS, compute_delta, format_value

RUN_DATE = dt.date(2024, 11, 15)
GMV, STOCKOUT = KPIS[0], KPIS[4]


def _days(n: int, end: dt.date = RUN_DATE) -> list[dt.date]:
    return [end - dt.timedelta(days=n - 1 - i) for i in range(n)]


def _kpi_daily(n: int = 30) -> pl.DataFrame:
    days = _days(n)
    return pl.DataFrame(
        {
            "date": days,
            "gmv": [1000.0 * (i + 1) for i in range(n)],
            "orders": [10.0 * (i + 1) for i in range(n)],
            "aov": [100.0] * n,
            "units": [20.0 * (i + 1) for i in range(n)],
            "stockout_rate": [0.05] * (n - 1) + [0.03],
            "fill_rate": [0.95] * n,
            "inventory_turnover": [None, *[8.0] * (n - 1)],
            "return_rate": [0.04] * n,
        }
    )


@pytest.mark.parametrize(
    ("value", "unit", "decimals", "text"),
    [
        (1234567.4, "money", None, "¥1,234,567"),
        (184.0, "money", 2, "¥184.00"),
        (-1500.0, "money", None, "-¥1,500"),
        (12345, "count", None, "12,345"),
        (0.0345, "pct", None, "3.5%"),
        (4.25, "times", None, "4.2×"),
        (None, "money", None, "–"),
        (float("nan"), "pct", None, "–"),
    ],
)
def test_format_value(value: float | None, unit: metrics.Unit, decimals: int | None, text: str) -> None:
    assert format_value(value, unit, decimals) == text


def test_delta_of_a_level_is_relative() -> None:
    delta = compute_delta(110.0, 100.0, GMV)

    assert delta is not None
    assert delta.change == pytest.approx(0.1)
    assert (delta.direction, delta.tone, delta.text) == ("up", "good", "+10.0%")


def test_delta_of_a_rate_is_in_points_and_lower_is_better() -> None:
    delta = compute_delta(0.03, 0.05, STOCKOUT)

    assert delta is not None
    assert delta.change == pytest.approx(-0.02)
    assert (delta.direction, delta.tone, delta.text) == ("down", "good", "-2.0 pp")
    assert compute_delta(0.06, 0.05, STOCKOUT).tone == "bad"  # type: ignore[union-attr]


def test_small_changes_are_flat() -> None:
    assert compute_delta(100.4, 100.0, GMV).direction == "flat"  # type: ignore[union-attr]
    assert compute_delta(0.0502, 0.05, STOCKOUT).tone == "neutral"  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "baseline"), [(None, 1.0), (1.0, None), (1.0, float("nan")), (5.0, 0.0)])
def test_no_delta_without_a_baseline(value: float | None, baseline: float | None) -> None:
    assert compute_delta(value, baseline, GMV) is None


def test_kpi_tiles_compare_with_the_prior_week_and_last_year() -> None:
    daily = pl.concat(
        [_kpi_daily(), _kpi_daily(1).with_columns(date=pl.lit(dt.date(2023, 11, 15)), gmv=pl.lit(15_000.0))]
    ).sort("date")

    tiles = {t.kpi.column: t for t in metrics.build_kpi_tiles(daily, RUN_DATE)}

    gmv = tiles["gmv"]
    assert gmv.value == 30_000.0 and gmv.text == "¥30,000"
    assert gmv.vs_week is not None and gmv.vs_week.baseline == pytest.approx(26_000.0)  # days 23..29
    assert gmv.vs_year is not None and gmv.vs_year.text == "+100.0%"
    assert tiles["aov"].text == "¥100.00"
    assert tiles["stockout_rate"].vs_week.text == "-2.0 pp"  # type: ignore[union-attr]
    assert tiles["orders"].vs_year is not None


def test_kpi_tiles_without_history() -> None:
    tiles = metrics.build_kpi_tiles(_kpi_daily(1), RUN_DATE)

    assert all(t.vs_week is None and t.vs_year is None for t in tiles)
    assert [t.kpi.label for t in tiles][:4] == ["GMV", "Orders", "AOV", "Units"]


def test_same_day_last_year() -> None:
    assert metrics.same_day_last_year(dt.date(2024, 11, 11)) == dt.date(2023, 11, 11)
    assert metrics.same_day_last_year(dt.date(2024, 2, 29)) == dt.date(2023, 2, 28)


def test_rolling_means_use_days_before_the_window() -> None:
    out = metrics.with_rolling_means(_kpi_daily(30), RUN_DATE, days=10, window=7)

    assert out.height == 10 and out["date"][-1] == RUN_DATE
    assert out["gmv_avg"][-1] == pytest.approx(27_000.0)
    assert out["orders_avg"][0] == pytest.approx(180.0)  # a full week even on the first day shown


def _category_daily() -> pl.DataFrame:
    rows = [(d, c, g) for d in _days(56) for c, g in (("Home", 300.0), ("Beauty", 100.0))]
    rows += [(d, "Toys", 100.0) for d in _days(28)]  # new in the last four weeks
    return pl.DataFrame(rows, schema=["date", "category_l1", "gmv"], orient="row")


def test_category_mix_shares_and_change() -> None:
    mix = metrics.category_mix(_category_daily(), RUN_DATE, days=28)

    assert mix["category_l1"].to_list() == ["Home", "Beauty", "Toys"]
    assert mix["share"].sum() == pytest.approx(1.0)
    assert mix["share"].to_list() == pytest.approx([0.6, 0.2, 0.2])
    assert mix["share_change"].to_list() == pytest.approx([-0.15, -0.05, 0.2])


def test_weekly_share_skips_partial_weeks() -> None:
    daily = _category_daily().filter(pl.col("date") > RUN_DATE - dt.timedelta(days=17))

    weekly = metrics.weekly_category_share(daily, RUN_DATE)

    assert weekly["week"].unique().sort().to_list() == [RUN_DATE - dt.timedelta(days=7), RUN_DATE]
    assert weekly.group_by("week").agg(pl.col("share").sum())["share"].to_list() == pytest.approx([1, 1])


def test_top_movers() -> None:
    changes = pl.DataFrame(
        {
            "sku_id": [1, 2, 3, 4, 5],
            "sku_name": ["a", "b", "c", "d", "e"],
            "category_l1": ["x"] * 5,
            "units_before": [1.0, 5.0, 5.0, 0.0, 3.0],
            "units_now": [5.0, 1.0, 5.0, 2.0, 0.0],
            "gmv_before": [10.0, 50.0, 50.0, 0.0, 30.0],
            "gmv_now": [50.0, 10.0, 50.0, 20.0, 0.0],
        }
    )

    up, down = metrics.top_movers(changes, n=2)

    assert up["sku_id"].to_list() == [1, 4]
    assert down["sku_id"].to_list() == [2, 5]
    assert up["gmv_change"].to_list() == [40.0, 20.0]
    assert up["gmv_change_pct"].to_list() == [4.0, None]


def test_event_spans_group_contiguous_days() -> None:
    days = [dt.date(2024, 11, d) for d in (9, 10, 11, 12)] + [dt.date(2024, 12, 12)]
    events = pl.DataFrame(
        {
            "date": days,
            "event": ["double_11"] * 4 + ["new_event"],
            "phase": ["pre", "pre", "peak", "post", None],
        }
    )

    spans = metrics.event_spans(events)

    assert spans.rows() == [
        ("double_11", "Singles' Day", dt.date(2024, 11, 9), dt.date(2024, 11, 12), dt.date(2024, 11, 11)),
        ("new_event", "New Event", dt.date(2024, 12, 12), dt.date(2024, 12, 12), None),
    ]
    assert metrics.event_spans(events.clear()).height == 0


def _assert_svg(svg: str) -> None:
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "DOCTYPE" not in svg and "<metadata" not in svg
    assert "<image" not in svg


def test_trend_chart_is_svg_with_events() -> None:
    daily = metrics.with_rolling_means(_kpi_daily(40), RUN_DATE, days=30, window=7)
    events = pl.DataFrame(
        {"label": ["Singles' Day"], "start": [dt.date(2024, 11, 1)], "end": [dt.date(2024, 11, 13)]}
    ).with_columns(peak=pl.lit(dt.date(2024, 11, 11)))

    svg = charts.trend_chart(daily, events)

    _assert_svg(svg)
    assert "Singles' Day" in svg or "Singles&#x27; Day" in svg
    assert "GMV (CNY)" in svg
    assert svg == charts.trend_chart(daily, events)  # deterministic


def test_category_mix_chart_lumps_small_categories() -> None:
    names = [f"Dept {i:02d}" for i in range(12)]
    daily = pl.DataFrame(
        [(d, n, 100.0 - i) for d in _days(28) for i, n in enumerate(names)],
        schema=["date", "category_l1", "gmv"],
        orient="row",
    )
    mix = metrics.category_mix(daily, RUN_DATE, 28)

    svg = charts.category_mix_chart(mix, metrics.weekly_category_share(daily, RUN_DATE))

    _assert_svg(svg)
    assert "Other" in svg and "Dept 00" in svg and "Dept 11" not in svg


def test_inventory_chart_tolerates_missing_values() -> None:
    svg = charts.inventory_chart(_kpi_daily(30))

    _assert_svg(svg)
    assert "Fill rate" in svg and "Stock-out rate" in svg


def _band() -> tuple[pl.DataFrame, pl.DataFrame]:
    past, ahead = _days(14), [RUN_DATE + dt.timedelta(days=h) for h in range(1, 29)]
    rows = [(sku, "actual", d, 5.0 + sku, None, None, None) for sku in (1, 2, 3) for d in past]
    rows += [(sku, "next_day", d, None, 3.0, 5.0, 7.0) for sku in (1, 2, 3) for d in past]
    rows += [(sku, "latest", d, None, 4.0, 6.0, 9.0) for sku in (1, 2, 3) for d in ahead]
    band = pl.DataFrame(rows, schema=["sku_id", "kind", "date", "units", "p10", "p50", "p90"], orient="row")
    skus = pl.DataFrame({"sku_id": [1, 2, 3], "label": ["Kettle <1>", "Mug", "SKU 3"]})
    return band, skus


def test_forecast_band_chart_has_a_panel_per_sku() -> None:
    band, skus = _band()

    svg = charts.forecast_band_chart(band, skus, RUN_DATE)

    _assert_svg(svg)
    assert "Kettle &lt;1&gt;" in svg and "Mug" in svg and "SKU 3" in svg
    assert "units sold" in svg and f"forecast of {RUN_DATE}" in svg
    assert svg == charts.forecast_band_chart(band, skus, RUN_DATE)  # deterministic


def test_forecast_band_chart_without_history() -> None:
    band, skus = _band()

    svg = charts.forecast_band_chart(band.filter(pl.col("kind") == "latest"), skus.head(1), RUN_DATE)

    _assert_svg(svg)
    assert "units sold" not in svg


def test_forecast_accuracy_chart_compares_model_versions() -> None:
    weeks = [RUN_DATE - dt.timedelta(days=7 * i) for i in range(4)]
    weekly = pl.DataFrame(
        [(m, w, 0.3 + 0.01 * i) for m in ("f v1", "f v2") for i, w in enumerate(weeks)],
        schema=["model", "target_week", "wape"],
        orient="row",
    )
    by_horizon = pl.DataFrame(
        [(m, h, 0.2 + 0.01 * h, 0.8) for m in ("f v1", "f v2") for h in range(1, 29)],
        schema=["model", "horizon", "wape", "coverage"],
        orient="row",
    )

    svg = charts.forecast_accuracy_chart(weekly, by_horizon)

    _assert_svg(svg)
    assert "WAPE by target week" in svg and "p10-p90 coverage by horizon" in svg
    assert "f v1" in svg and "f v2" in svg and "nominal 80%" in svg
    assert "horizon (days ahead)" in svg


def test_a_section_over_unpublished_marts_loads_nothing() -> None:
    from pipelines.report.sections import MODEL_SECTIONS

    ids = [s.id for s in MODEL_SECTIONS]
    assert "forecasting" in ids and len(set(ids)) == len(ids)
    for section in MODEL_SECTIONS:
        # nothing is queried: the catalog (published relations) has none of the section's marts
        assert section.load(None, {"marts.rpt_kpi_daily": {"date"}}, RUN_DATE) is None  # type: ignore[arg-type]
        assert section.absent


def test_importing_the_report_has_no_side_effects() -> None:
    code = "import sys, pipelines.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"
