"""The report's pricing section over hand-built pricing marts in an in-memory DuckDB: what it loads,
how it renders, what each missing part says, and the claims' verdicts."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import polars as pl
import pytest

from pipelines.report import pricing
from pipelines.report.render import _environment
from pipelines.report.sections import MODEL_SECTIONS

DAY = dt.date(2024, 11, 15)


def _catalog(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.sql(
        "select table_schema || '.' || table_name, list(column_name) "
        "from information_schema.columns group by all"
    ).fetchall()
    return {name: set(columns) for name, columns in rows}


def _replay_rows(policies: tuple[str, ...]) -> str:
    """``mart_pricing_replay`` rows: the ai policy keeps 90% [88%, 93%] of its price advantage,
    gains 2.0 pts of margin [1.5, 2.5], 25% revenue [21, 29] and 10% turnover [8, 12] over rule."""
    ai = {
        "revenue": (1250.0, 25.0, 21.0, 29.0),
        "gross_margin_pct": (23.0, 2.0, 1.5, 2.5),
        "price_advantage_share": (0.90, 0.0, -0.01, 0.01),
        "turnover": (9.0, 10.0, 8.0, 12.0),
        "stockout_share": (0.05, 0.0, 0.0, 0.0),
        "price_changes_per_sku_day": (1.5, 0.2, 0.1, 0.3),
    }
    rows = []
    for policy in policies:
        for kpi, (mean, lift, low, high) in ai.items():
            if policy != "ai":
                mean, lift, low, high = mean * 0.9, 0.0, 0.0, 0.0
            bounds = "0.88, 0.93" if kpi == "price_advantage_share" else f"{0.98 * mean}, {1.02 * mean}"
            kind = "relative" if kpi in ("revenue", "turnover") else "difference"
            rows.append(
                f"(date '{DAY}', '{policy}', '{kpi}', '{kind}', '3', 5, {mean}, {bounds}, "
                f"{lift}, {low}, {high})"
            )
    return ", ".join(rows)


def _marts(
    con: duckdb.DuckDBPyConnection, *, replay_policies: tuple[str, ...] = ("static", "rule", "ai")
) -> None:
    """The four pricing marts: 4 SKUs of which 3 keep the price advantage, two steps of decisions,
    elasticities of 5 SKUs (one not identified) and a replay of three policies."""
    con.execute("create schema if not exists marts")
    con.execute(
        """create table marts.mart_price_position as
        select date '2024-11-15' as date, sku_id, 'home' as category_l1, 10.0 as effective_price,
            10.0 / (1 + gap / 100) as rival_min_price, gap as gap_to_min_pct, gap <= 0 as kept_price_advantage
        from (values (1, -5.0), (2, 0.0), (3, -1.0), (4, 8.0)) as t(sku_id, gap)"""
    )
    con.execute(
        """create table marts.fct_price_decisions as
        select date '2024-11-15' as run_date, timestamp '2024-11-15 09:00' + to_minutes(20 * step) as step_at,
            sku_id, 'Product <' || sku_id || '>' as sku_name, 'home' as category_l1,
            10.0 as current_price, 10.0 * (1 + change / 100) as new_price, change as price_change_pct,
            change <> 0 as is_change, 30.0 as margin_pct, binding, binding <> 'none' as is_rule_bound
        from (values (0, 1, 4.0, 'max_change'), (0, 2, 0.0, 'none'), (1, 1, -2.0, 'price_advantage'),
                     (1, 2, 0.0, 'none'), (1, 3, 1.0, 'none')) as t(step, sku_id, change, binding)"""
    )
    con.execute(
        """create table marts.fct_price_elasticities as
        select date '2024-11-08' as run_date, sku_id, category as category_l1, category as model_category,
            elasticity as own_elasticity, identified as is_identified, 'price_elasticity' as model_name,
            '3' as model_version
        from (values (1, 'home', -1.5, true), (2, 'home', -2.5, true), (3, 'beauty', -0.8, true),
                     (4, 'beauty', -1.2, true), (5, 'beauty', -9.0, false))
            as t(sku_id, category, elasticity, identified)"""
    )
    con.execute(
        f"""create table marts.mart_pricing_replay as
        select * from (values {_replay_rows(replay_policies)}) as t(run_date, policy, kpi,
            lift_kind, model_version, seeds, mean, mean_low, mean_high, lift_vs_rule, lift_vs_rule_low,
            lift_vs_rule_high)"""
    )


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    _marts(connection)
    return connection


def _section(con: duckdb.DuckDBPyConnection, day: dt.date = DAY) -> str:
    loaded = pricing.load(con, _catalog(con), day)
    assert loaded is not None
    return pricing.render(loaded, _environment())


def test_the_section_follows_forecasting() -> None:
    assert [s.id for s in MODEL_SECTIONS][:2] == ["forecasting", "pricing"]
    assert MODEL_SECTIONS[1].title == "Dynamic pricing"


def test_tiles_from_the_position_and_the_days_decisions(con: duckdb.DuckDBPyConnection) -> None:
    html = _section(con)

    values = re.findall(r'<div class="value">([^<]*)</div>', html)
    # 3 of 4 kept; SKUs 1 and 3 moved (3 changes: +4, -2, +1); 2 of 5 decisions held by a rule
    assert values == ["75.0%", "2", "2.3%", "2 / 3"]
    assert "3 of 4 SKUs at or below the cheapest rival" in html
    assert "3 changes in 2" in html
    assert "signed mean\n        +1.0%" in html
    assert "3.0 pricing steps an hour" in html  # two steps 20 minutes apart
    assert "max_change 1, price_advantage 1" in html


def test_charts_and_tables(con: duckdb.DuckDBPyConnection) -> None:
    html = _section(con)

    assert html.count("<svg") == 2  # the gap distribution and the elasticities by category
    moves = re.findall(r'<td class="num (?:up|down)">([^<]*)</td>', html)
    assert moves == ["+4.0%", "-2.0%", "+1.0%"]  # largest first
    assert '<span class="pill">max_change</span>' in html
    assert "Product &lt;1&gt;" in html  # escaped
    # the elasticity note counts the SKU left out
    assert "4 identified SKUs shown; 1 of\n    5 were not identified" in html
    assert "rule-based" in html and "AI (elasticities + optimiser)" in html


def test_claims_beside_the_replay(con: duckdb.DuckDBPyConnection) -> None:
    html = _section(con)

    row = r'<tr><td>([^<]*)</td><td class="num">[^<]*</td>\s*<td class="num">[^<]*</td><td>([^<]*)</td></tr>'
    claims = dict(re.findall(row, html))
    assert claims == {
        "Price advantage kept 92%": "claim within the simulation&#39;s interval",
        "Gross margin +3.2 pts": "claim above the simulation&#39;s interval",
        "Revenue +19%": "claim below the simulation&#39;s interval",
        "Stock turnover +28%": "claim above the simulation&#39;s interval",
    }
    assert "3 price changes an hour" in html
    assert "Where the simulation falls short" in html


def test_the_claims_need_the_ai_policy_and_an_interval() -> None:
    connection = duckdb.connect()
    _marts(connection, replay_policies=("static", "rule"))
    rows = connection.sql("select *, lift_vs_rule as lift, lift_vs_rule_low as lift_low, "
                          "lift_vs_rule_high as lift_high from marts.mart_pricing_replay").pl()  # fmt: skip
    assert {c.verdict for c in pricing.check_claims(rows)} == {
        "not replayed (ai policy or price_advantage_share missing)",
        "not replayed (ai policy or gross_margin_pct missing)",
        "not replayed (ai policy or revenue missing)",
        "not replayed (ai policy or turnover missing)",
    }
    one_seed = pl.DataFrame(
        {"policy": ["ai"], "kpi": ["revenue"], "mean": [1.0], "mean_low": [None], "mean_high": [None],
         "lift": [20.0], "lift_low": [None], "lift_high": [None]},
        schema_overrides={"mean_low": pl.Float64, "mean_high": pl.Float64, "lift_low": pl.Float64,
                          "lift_high": pl.Float64},
    )  # fmt: skip
    revenue = next(c for c in pricing.check_claims(one_seed) if c.claim == "Revenue +19%")
    assert (revenue.estimate, revenue.interval, revenue.verdict) == ("+20.0%", "", "one seed: no interval")


def test_without_pricing_marts_or_rows_the_section_is_absent() -> None:
    connection = duckdb.connect()
    assert pricing.load(connection, _catalog(connection), DAY) is None
    _marts(connection)
    for table in (
        "mart_price_position",
        "fct_price_decisions",
        "fct_price_elasticities",
        "mart_pricing_replay",
    ):
        connection.execute(f"delete from marts.{table}")
    assert pricing.load(connection, _catalog(connection), DAY) is None
    assert "\n" not in pricing.ABSENT and "pricing stage has not run" in pricing.ABSENT


def test_a_missing_mart_says_so_and_the_rest_renders(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("drop table marts.mart_pricing_replay")
    con.execute("drop table marts.mart_price_position")

    html = _section(con)

    assert "Omitted: marts.mart_pricing_replay is missing." in html
    assert "Omitted: marts.mart_price_position is missing." in html
    assert html.count("<svg") == 1 and "Largest price moves" in html


def test_before_the_first_output_each_part_says_so(con: duckdb.DuckDBPyConnection) -> None:
    day = DAY - dt.timedelta(days=30)

    html = _section(con, day)

    assert f"No price decisions on or before {day}." in html
    assert f"No elasticities scored on or before {day}." in html
    assert f"No pricing replay on or before {day}" in html
    assert "No day on or before" in html
    assert "<svg" not in html


@pytest.mark.parametrize(
    ("steps", "minutes", "expected"), [(1, 0, None), (3, 40, 3.0), (4, 60, 3.0), (2, 0, None), (7, 120, 3.0)]
)
def test_steps_per_hour(steps: int, minutes: int, expected: float | None) -> None:
    first = dt.datetime(2024, 11, 15, 9)
    assert pricing.steps_per_hour(steps, first, first + dt.timedelta(minutes=minutes)) == expected


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(1234.5, "money", "¥1,234"), (23.45, "percent", "23.4%"), (0.925, "share", "92.5%"),
     (3.21, "points", "+3.2 pts"), (-1.25, "signed_percent", "-1.2%"), (8.46, "times", "8.5×"),
     (None, "share", "–")],
)  # fmt: skip
def test_format_figure(value: float | None, unit: pricing.Unit, text: str) -> None:
    assert pricing.format_figure(value, unit) == text
