"""The report's pricing section: price position against the rivals, the day's price moves, elasticities
by category and the pricing replay beside the claims it is measured against.

Reads the pricing marts (``dbt/models/marts/pricing/``), published with the other model-output marts
after the innovation stage ran: ``mart_price_position``, ``fct_price_decisions``,
``fct_price_elasticities`` and ``mart_pricing_replay``. Where none of them holds a row :func:`load`
returns None and the report shows :data:`ABSENT`; each part says so on its own when its mart is
missing or has nothing on or before the run date. Percentages follow the pricing marts: a ``_pct``
column is in percent, a ``_share`` column a fraction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from markupsafe import Markup

from pipelines.report import metrics

if TYPE_CHECKING:
    import duckdb
    import jinja2

    from pipelines.report.sections import Catalog

LARGEST_MOVES = 10
# The policy the claims' lifts are read against: pricing by rules, what a shop has before.
CLAIM_BASELINE = "rule"
CLAIM_POLICY = "ai"

Spec = tuple[str, str, tuple[str, ...]]
POSITION: Spec = (
    "marts",
    "mart_price_position",
    (
        "date",
        "sku_id",
        "category_l1",
        "effective_price",
        "rival_min_price",
        "gap_to_min_pct",
        "kept_price_advantage",
    ),
)
DECISIONS: Spec = (
    "marts",
    "fct_price_decisions",
    (
        *("run_date", "step_at", "sku_id", "sku_name", "category_l1", "current_price", "new_price"),
        *("price_change_pct", "is_change", "margin_pct", "binding", "is_rule_bound"),
    ),
)
ELASTICITIES: Spec = (
    "marts",
    "fct_price_elasticities",
    (
        *("run_date", "sku_id", "category_l1", "model_category", "own_elasticity", "is_identified"),
        *("model_name", "model_version"),
    ),
)
REPLAY: Spec = (
    "marts",
    "mart_pricing_replay",
    (
        *(
            "run_date",
            "policy",
            "kpi",
            "lift_kind",
            "model_version",
            "seeds",
            "mean",
            "mean_low",
            "mean_high",
        ),
        *("lift_vs_rule", "lift_vs_rule_low", "lift_vs_rule_high"),
    ),
)
MARTS = (POSITION, DECISIONS, ELASTICITIES, REPLAY)

ABSENT = (
    "Omitted: the pricing stage has not run, so the pricing marts (marts.fct_price_decisions, "
    "mart_price_position, fct_price_elasticities, mart_pricing_replay) are missing or empty; the "
    "innovation stage fills them when it crawls rival prices, scores elasticities and sets prices."
)

Unit = Literal["money", "percent", "signed_percent", "share", "times", "number", "points"]
# The replay's KPIs as the per-policy table shows them, in order: column, label, unit of the value.
REPLAY_KPIS: tuple[tuple[str, str, Unit], ...] = (
    ("revenue", "Revenue", "money"),
    ("gross_margin_pct", "Gross margin", "percent"),
    ("price_advantage_share", "Price advantage kept", "share"),
    ("turnover", "Stock turnover", "times"),
    ("stockout_share", "Stock-out share", "share"),
    ("price_changes_per_sku_day", "Price changes per SKU-day", "number"),
)
POLICY_NAMES = {
    "static": "static (list prices)",
    "rule": "rule-based",
    "ai": "AI (elasticities + optimiser)",
    "oracle": "oracle (true elasticities)",
    "merchant": "merchant (history)",
}


@dataclass(frozen=True)
class Claim:
    """A claim of the source the pricing stage implements, and the replay figure it is held against.

    Attributes:
        text: The claim as the source states it.
        kpi: The replay KPI (``mart_pricing_replay.kpi``).
        measure: ``level`` (the AI policy's value) or ``lift`` (its lift over CLAIM_BASELINE).
        value: The claimed figure in the unit of ``unit``.
        unit: How the figure reads: ``share`` (a fraction), ``percent`` (a relative lift in percent),
            ``points`` (a difference of percents).
    """

    text: str
    kpi: str
    measure: Literal["level", "lift"]
    value: float
    unit: Unit


CLAIMS = (
    Claim("Price advantage kept 92%", "price_advantage_share", "level", 0.92, "share"),
    Claim("Gross margin +3.2 pts", "gross_margin_pct", "lift", 3.2, "points"),
    Claim("Revenue +19%", "revenue", "lift", 19.0, "signed_percent"),
    Claim("Stock turnover +28%", "turnover", "lift", 28.0, "signed_percent"),
)
CHANGES_CLAIM = "3 price changes an hour"

SQL = {
    "has_rows": "select exists (select 1 from {table}) as has_rows",
    "position_day": """
        select max(date) as day from marts.mart_price_position
        where date <= $run_date and kept_price_advantage is not null
    """,
    "advantage": """
        select
            count(*) as skus,
            count(*) filter (where kept_price_advantage) as kept,
            (count(*) filter (where kept_price_advantage) / count(*))::double as share,
            median(gap_to_min_pct)::double as median_gap,
        from marts.mart_price_position
        where date = $day and kept_price_advantage is not null
    """,
    "gaps": """
        select gap_to_min_pct::double as gap_to_min_pct from marts.mart_price_position
        where date = $day and gap_to_min_pct is not null
    """,
    "decision_day": "select max(run_date) as day from marts.fct_price_decisions where run_date <= $run_date",
    "decision_totals": """
        select
            count(*) as decisions,
            count(distinct step_at) as steps,
            count(distinct sku_id) as skus,
            count(distinct sku_id) filter (where is_change) as repriced,
            count(*) filter (where is_change) as changes,
            (avg(abs(price_change_pct)) filter (where is_change))::double as mean_abs_change,
            (avg(price_change_pct) filter (where is_change))::double as mean_change,
            count(*) filter (where is_rule_bound) as bound,
            count(*) filter (where binding = 'none') as free,
            min(step_at) as first_step,
            max(step_at) as last_step,
        from marts.fct_price_decisions
        where run_date = $day
    """,
    "bindings": """
        select binding, count(*) as decisions from marts.fct_price_decisions
        where run_date = $day and is_rule_bound
        group by binding
        order by decisions desc, binding
    """,
    "largest_moves": """
        select
            sku_id, sku_name, category_l1, step_at, current_price::double as current_price,
            new_price::double as new_price, price_change_pct::double as price_change_pct,
            margin_pct::double as margin_pct, binding,
        from marts.fct_price_decisions
        where run_date = $day and is_change
        order by abs(price_change_pct) desc, step_at, sku_id
        limit $n
    """,
    "elasticity_run": """
        select
            max(run_date) as run,
            string_agg(distinct model_name || ' v' || model_version, ', ') as models,
            count(*) as skus,
            count(*) filter (where not is_identified) as not_identified,
        from marts.fct_price_elasticities
        where run_date <= $run_date
    """,
    "elasticity_by_category": """
        select
            coalesce(category_l1, model_category, '(none)') as category,
            count(*) as skus,
            median(own_elasticity)::double as median,
            quantile_cont(own_elasticity, 0.25)::double as p25,
            quantile_cont(own_elasticity, 0.75)::double as p75,
            min(own_elasticity)::double as low,
            max(own_elasticity)::double as high,
        from marts.fct_price_elasticities
        where run_date <= $run_date and is_identified and own_elasticity is not null
        group by all
        order by category
    """,
    "replay_run": "select max(run_date) as run from marts.mart_pricing_replay where run_date <= $run_date",
    "replay": """
        select
            policy, kpi, lift_kind, model_version, seeds,
            mean::double as mean, mean_low::double as mean_low, mean_high::double as mean_high,
            lift_vs_rule::double as lift, lift_vs_rule_low::double as lift_low,
            lift_vs_rule_high::double as lift_high,
        from marts.mart_pricing_replay
        where run_date = $run
    """,
}


@dataclass(frozen=True)
class Position:
    """Our price against the cheapest rival on the latest day with both (``day`` None: no such day)."""

    day: dt.date | None
    skus: int
    kept: int
    share: float | None
    median_gap: float | None
    gaps: pl.DataFrame  # gap_to_min_pct


@dataclass(frozen=True)
class Decisions:
    """The latest day of price decisions on or before the run date (``day`` None: there is none)."""

    day: dt.date | None
    totals: dict[str, Any]
    steps_per_hour: float | None
    bindings: pl.DataFrame  # binding, decisions
    largest: pl.DataFrame


@dataclass(frozen=True)
class Elasticities:
    """The latest elasticity run on or before the run date (``run`` None: there is none)."""

    run: dt.date | None
    models: str
    skus: int
    not_identified: int
    by_category: pl.DataFrame  # category, skus, median, p25, p75, low, high


@dataclass(frozen=True)
class ClaimCheck:
    """A claim beside the replay's estimate (``estimate`` None: the replay lacks it)."""

    claim: str
    estimate: str
    interval: str
    verdict: str


@dataclass(frozen=True)
class Replay:
    """The latest pricing replay on or before the run date (``run`` None: there is none)."""

    run: dt.date | None
    seeds: int
    model_version: str
    table: list[dict[str, Any]]  # policy, then per KPI of REPLAY_KPIS: (value text, interval text)
    claims: list[ClaimCheck]


@dataclass(frozen=True)
class Pricing:
    """What the section shows; a part is None when its mart is missing."""

    run_date: dt.date
    position: Position | None
    decisions: Decisions | None
    elasticities: Elasticities | None
    replay: Replay | None


def _has(catalog: Catalog, spec: Spec) -> bool:
    schema, table, columns = spec
    return set(columns) <= catalog.get(f"{schema}.{table}", set())


def _query(con: duckdb.DuckDBPyConnection, sql: str, **params: object) -> pl.DataFrame:
    # DuckDB rejects named parameters that the statement does not use.
    return con.sql(sql, params={k: v for k, v in params.items() if f"${k}" in sql}).pl()


def load(con: duckdb.DuckDBPyConnection, catalog: Catalog, run_date: dt.date) -> Pricing | None:
    """Read the section's data for ``run_date``; None when no pricing mart is published with rows."""
    present = [spec for spec in MARTS if _has(catalog, spec)]
    if not any(
        _query(con, SQL["has_rows"].format(table=f"{schema}.{table}"))["has_rows"][0]
        for schema, table, _ in present
    ):
        return None
    return Pricing(
        run_date=run_date,
        position=_load_position(con, run_date) if POSITION in present else None,
        decisions=_load_decisions(con, run_date) if DECISIONS in present else None,
        elasticities=_load_elasticities(con, run_date) if ELASTICITIES in present else None,
        replay=_load_replay(con, run_date) if REPLAY in present else None,
    )


def _load_position(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> Position:
    day = _query(con, SQL["position_day"], run_date=run_date)["day"][0]
    if day is None:
        return Position(None, 0, 0, None, None, pl.DataFrame())
    totals = _query(con, SQL["advantage"], day=day).row(0, named=True)
    return Position(
        day=day,
        skus=totals["skus"],
        kept=totals["kept"],
        share=totals["share"],
        median_gap=totals["median_gap"],
        gaps=_query(con, SQL["gaps"], day=day),
    )


def steps_per_hour(steps: int, first: dt.datetime | None, last: dt.datetime | None) -> float | None:
    """Pricing steps an hour over the span between the day's first and last step (None: one step)."""
    if steps < 2 or first is None or last is None or last <= first:
        return None
    return (steps - 1) / ((last - first).total_seconds() / 3600)


def _load_decisions(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> Decisions:
    day = _query(con, SQL["decision_day"], run_date=run_date)["day"][0]
    if day is None:
        return Decisions(None, {}, None, pl.DataFrame(), pl.DataFrame())
    totals = _query(con, SQL["decision_totals"], day=day).row(0, named=True)
    return Decisions(
        day=day,
        totals=totals,
        steps_per_hour=steps_per_hour(totals["steps"], totals["first_step"], totals["last_step"]),
        bindings=_query(con, SQL["bindings"], day=day),
        largest=_query(con, SQL["largest_moves"], day=day, n=LARGEST_MOVES),
    )


def _load_elasticities(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> Elasticities:
    run = _query(con, SQL["elasticity_run"], run_date=run_date).row(0, named=True)
    if run["run"] is None:
        return Elasticities(None, "", 0, 0, pl.DataFrame())
    return Elasticities(
        run=run["run"],
        models=run["models"],
        skus=run["skus"],
        not_identified=run["not_identified"],
        by_category=_query(con, SQL["elasticity_by_category"], run_date=run_date),
    )


def _load_replay(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> Replay:
    run = _query(con, SQL["replay_run"], run_date=run_date)["run"][0]
    if run is None:
        return Replay(None, 0, "", [], [])
    rows = _query(con, SQL["replay"], run=run)
    return Replay(
        run=run,
        seeds=int(rows["seeds"].max() or 0),
        model_version=", ".join(sorted(set(rows["model_version"].drop_nulls().to_list()))),
        table=replay_table(rows),
        claims=check_claims(rows),
    )


def format_figure(x: float | None, unit: Unit, currency: str = "CNY") -> str:
    """A figure as people read it: ``¥1,234``, ``23.4%`` (a percent or a share), ``+1.5%``, ``+3.2 pts``."""
    if x is None:
        return "–"
    if unit == "money":
        return metrics.format_value(x, "money", currency=currency)
    if unit == "share":
        return metrics.format_value(x, "pct")
    if unit == "percent":
        return f"{x:.1f}%"
    if unit == "times":
        return metrics.format_value(x, "times")
    if unit == "points":
        return f"{x:+.1f} pts"
    if unit == "signed_percent":
        return f"{x:+.1f}%"
    return f"{x:,.2f}"


def _interval(low: float | None, high: float | None, unit: Unit) -> str:
    if low is None or high is None:
        return ""
    return f"{format_figure(low, unit)} to {format_figure(high, unit)}"


def replay_table(rows: pl.DataFrame) -> list[dict[str, Any]]:
    """Per policy (static, rule, ai, oracle, then any other), each REPLAY_KPIS figure and its interval.

    Args:
        rows: One replay run of ``mart_pricing_replay``: ``policy, kpi, mean, mean_low, mean_high``.
    """
    order = [p for p in POLICY_NAMES if p in set(rows["policy"].to_list())]
    order += sorted(set(rows["policy"].to_list()) - set(order))
    table = []
    for policy in order:
        cells = {}
        for kpi, _label, unit in REPLAY_KPIS:
            found = rows.filter(pl.col("policy") == policy, pl.col("kpi") == kpi)
            r = found.row(0, named=True) if found.height else {}
            cells[kpi] = (
                format_figure(r.get("mean"), unit),
                _interval(r.get("mean_low"), r.get("mean_high"), unit),
            )
        table.append({"policy": POLICY_NAMES.get(policy, policy), "cells": cells})
    return table


def check_claims(rows: pl.DataFrame) -> list[ClaimCheck]:
    """Each of CLAIMS beside the AI policy's replay estimate and 95% interval, and how they compare.

    A level claim is held against the AI policy's mean; a lift claim against its lift over
    CLAIM_BASELINE, paired by seed. The verdict says whether the claim lies inside the interval,
    above it (more than the simulation supports) or below it.

    Args:
        rows: One replay run of ``mart_pricing_replay``.
    """
    checks = []
    for claim in CLAIMS:
        found = rows.filter(pl.col("policy") == CLAIM_POLICY, pl.col("kpi") == claim.kpi)
        if not found.height:
            checks.append(
                ClaimCheck(
                    claim.text, "–", "", f"not replayed ({CLAIM_POLICY} policy or {claim.kpi} missing)"
                )
            )
            continue
        r = found.row(0, named=True)
        if claim.measure == "level":
            estimate, low, high, unit = r["mean"], r["mean_low"], r["mean_high"], claim.unit
        else:
            estimate, low, high = r["lift"], r["lift_low"], r["lift_high"]
            unit = claim.unit
        checks.append(
            ClaimCheck(
                claim=claim.text,
                estimate=format_figure(estimate, unit),
                interval=_interval(low, high, unit),
                verdict=_verdict(claim.value, estimate, low, high, claim.measure),
            )
        )
    return checks


def _verdict(
    claimed: float, estimate: float | None, low: float | None, high: float | None, measure: str
) -> str:
    if estimate is None:
        return f"no {CLAIM_BASELINE} policy to compare with" if measure == "lift" else "no estimate"
    if low is None or high is None:
        return "one seed: no interval"
    if claimed > high:
        return "claim above the simulation's interval"
    if claimed < low:
        return "claim below the simulation's interval"
    return "claim within the simulation's interval"


TEMPLATE = """\
  <div class="tiles">
    <div class="tile"><div class="label">Price advantage kept</div>
    {%- set p = f.position %}
    {%- if p is none or p.day is none %}
      <div class="value">–</div><div class="delta">no SKU-day with our price and a rival's</div>
    {%- else %}
      <div class="value">{{ p.share | pct }}</div>
      <div class="delta">{{ p.kept | count }} of {{ p.skus | count }} SKUs at or below the cheapest rival,
        {{ p.day }} (claim {{ claim_share | pct }})</div>
    {%- endif %}</div>
    {%- set d = f.decisions %}
    {%- if d is none or d.day is none %}
    <div class="tile"><div class="label">SKUs repriced</div><div class="value">–</div>
      <div class="delta">no price decisions on or before {{ f.run_date }}</div></div>
    <div class="tile"><div class="label">Mean change</div><div class="value">–</div></div>
    <div class="tile"><div class="label">Decisions bound / free</div><div class="value">–</div></div>
    {%- else %}
    {%- set t = d.totals %}
    <div class="tile"><div class="label">SKUs repriced</div>
      <div class="value">{{ t.repriced | count }}</div>
      <div class="delta">of {{ t.skus | count }}; {{ t.changes | count }} changes in {{ t.steps | count }}
        steps, {{ d.day }}</div></div>
    <div class="tile"><div class="label">Mean change</div>
      <div class="value">{{ fig(t.mean_abs_change, "percent") }}</div>
      <div class="delta">absolute, per change; signed mean
        {{ fig(t.mean_change, "signed_percent") }}</div></div>
    <div class="tile"><div class="label">Decisions bound / free</div>
      <div class="value">{{ t.bound | count }} / {{ t.free | count }}</div>
      <div class="delta">held by a rule / the optimiser's own price, of {{ t.decisions | count }}</div></div>
    {%- endif %}
  </div>

  <h3>Price position against the rivals</h3>
{%- if p is none %}
  <p class="na">Omitted: marts.mart_price_position is missing.</p>
{%- elif p.day is none %}
  <p class="na">No day on or before {{ f.run_date }} with both our price and a rival's.</p>
{%- else %}
  <p class="note">Our effective price on {{ p.day }} against the cheapest price any rival showed in that
    day's crawls; median gap {{ fig(p.median_gap, "signed_percent") }} (&gt; 0: dearer).</p>
  <div class="chart">{{ gap_svg }}</div>
{%- endif %}

  <h3>Largest price moves</h3>
{%- if d is none %}
  <p class="na">Omitted: marts.fct_price_decisions is missing.</p>
{%- elif d.day is none %}
  <p class="na">No price decisions on or before {{ f.run_date }}.</p>
{%- else %}
  <p class="note">Decisions of {{ d.day }}
  {%- if d.steps_per_hour is not none %}, {{ d.steps_per_hour | count(1) }} pricing steps an hour{% endif %}.
  {%- if d.bindings.height %} Rules that held prices:
    {% for r in d.bindings.iter_rows(named=True) %}{{ r.binding }} {{ r.decisions | count }}
    {%- if not loop.last %}, {% endif %}{% endfor %}.{% endif %}</p>
  {%- if d.largest.height %}
  <table>
    <tr><th>SKU</th><th>Department</th><th>Step</th><th class="num">Price before</th>
        <th class="num">New price</th><th class="num">Change</th><th class="num">Margin</th>
        <th>Binding rule</th></tr>
    {%- for r in d.largest.iter_rows(named=True) %}
    <tr><td>{{ r.sku_name or "SKU %s" % r.sku_id }}</td><td>{{ r.category_l1 or "–" }}</td>
        <td>{{ r.step_at.strftime("%H:%M") }}</td><td class="num">{{ r.current_price | count(2) }}</td>
        <td class="num">{{ r.new_price | count(2) }}</td>
        <td class="num {{ r.price_change_pct | sign }}">{{ fig(r.price_change_pct, "signed_percent") }}</td>
        <td class="num">{{ fig(r.margin_pct, "percent") }}</td>
        <td><span class="pill">{{ r.binding }}</span></td></tr>
    {%- endfor %}
  </table>
  {%- else %}
  <p class="na">No price moved on {{ d.day }}.</p>
  {%- endif %}
{%- endif %}

  <h3>Elasticity by category</h3>
{%- set e = f.elasticities %}
{%- if e is none %}
  <p class="na">Omitted: marts.fct_price_elasticities is missing.</p>
{%- elif e.run is none %}
  <p class="na">No elasticities scored on or before {{ f.run_date }}.</p>
{%- else %}
  <p class="note">Own-price elasticities of {{ e.run }} by {{ e.models }}:
    {{ (e.skus - e.not_identified) | count }} identified SKUs shown; {{ e.not_identified | count }} of
    {{ e.skus | count }} were not identified (their own price varied too little) and borrow their
    category's value.</p>
  {%- if e.by_category.height %}
  <div class="chart">{{ elasticity_svg }}</div>
  {%- else %}
  <p class="na">No SKU's elasticity was identified.</p>
  {%- endif %}
{%- endif %}

  <h3>Pricing replay in the simulator</h3>
{%- set r = f.replay %}
{%- if r is none %}
  <p class="na">Omitted: marts.mart_pricing_replay is missing.</p>
{%- elif r.run is none %}
  <p class="na">No pricing replay on or before {{ f.run_date }} (it needs the simulator's truth).</p>
{%- else %}
  <p class="note">Replay of the weeks up to {{ r.run }}, {{ r.seeds }} seeds, elasticities
    v{{ r.model_version }}: mean per policy and, beneath it, the 95% interval of the mean across seeds.</p>
  <table>
    <tr><th>Policy</th>{% for kpi, label, unit in kpis %}<th class="num">{{ label }}</th>{% endfor %}</tr>
    {%- for row in r.table %}
    <tr><td>{{ row.policy }}</td>
      {%- for kpi, label, unit in kpis %}
      <td class="num">{{ row.cells[kpi][0] }}{% if row.cells[kpi][1] %}<br>
        <span class="delta">{{ row.cells[kpi][1] }}</span>{% endif %}</td>
      {%- endfor %}</tr>
    {%- endfor %}
  </table>
  <h3>The claims against the replay</h3>
  <table>
    <tr><th>Claim</th><th class="num">Simulated ({{ claim_policy }} policy)</th>
        <th class="num">95% interval</th><th>Verdict</th></tr>
    {%- for c in r.claims %}
    <tr><td>{{ c.claim }}</td><td class="num">{{ c.estimate }}</td>
        <td class="num">{{ c.interval or "–" }}</td><td>{{ c.verdict }}</td></tr>
    {%- endfor %}
    <tr><td>{{ changes_claim }}</td>
        <td class="num">{{ d.steps_per_hour | count(1) if d and d.steps_per_hour is not none else "–" }}</td>
        <td class="num">–</td>
        <td>pricing steps an hour on the day's decisions (live, not simulated); a step moves only the
          SKUs whose optimum changed</td></tr>
  </table>
  <p class="note">Levels are the AI policy's; lifts are over the {{ baseline }} policy, paired by seed.
    Where the simulation falls short: the replay prices against the simulator's own demand model, of the
    same constant-elasticity form the elasticity model assumes, so it flatters the model; rivals do not
    answer our price moves, shoppers do not remember earlier prices, and stock, costs and assortment are
    the simulated world's. Its figures bound what the policy could do; they are no measurement of a real
    shop and neither confirm nor refute the claims.</p>
{%- endif %}
"""


def render(f: Pricing, env: jinja2.Environment) -> str:
    """The section's HTML body."""
    from pipelines.report import charts

    gap_svg = elasticity_svg = None
    if f.position is not None and f.position.day is not None:
        gap_svg = Markup(charts.price_gap_chart(f.position.gaps, f.position.day))
    if f.elasticities is not None and f.elasticities.by_category.height:
        elasticity_svg = Markup(charts.elasticity_chart(f.elasticities.by_category))
    return env.from_string(TEMPLATE).render(
        f=f,
        fig=format_figure,
        gap_svg=gap_svg,
        elasticity_svg=elasticity_svg,
        kpis=REPLAY_KPIS,
        claim_share=CLAIMS[0].value,
        claim_policy=CLAIM_POLICY,
        baseline=CLAIM_BASELINE,
        changes_claim=CHANGES_CLAIM,
    )
