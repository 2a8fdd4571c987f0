"""``ecom report``: the KPI report as one self-contained HTML page (inline CSS and SVG, no web assets)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import jinja2
from markupsafe import Markup

from pipelines.config import Settings
from pipelines.report import metrics
from pipelines.report.data import (
    MIX_DAYS,
    MOVER_DAYS,
    ROLLING_DAYS,
    TREND_DAYS,
    ReportData,
    connect,
    load_report_data,
)

DATA_DOCS = Path("data_docs") / "index.html"

TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>KPI report {{ run_date }}</title>
<style>
  :root { --ink: #1f2933; --muted: #6b7280; --line: #e4e7eb; --bg: #f6f7f9;
          --good: #15803d; --bad: #b91c1c; --flat: #6b7280; }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--ink);
         font: 14px/1.45 "Helvetica Neue", Helvetica, Arial, sans-serif; }
  main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
  header h1 { margin: 0; font-size: 24px; }
  header p { margin: 4px 0 0; color: var(--muted); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
            padding: 18px 20px; margin-top: 20px; }
  h2 { margin: 0 0 4px; font-size: 17px; }
  h3 { margin: 16px 0 6px; font-size: 14px; }
  .note { color: var(--muted); margin: 0 0 12px; font-size: 13px; }
  .na { color: var(--muted); font-style: italic; margin: 8px 0 0; }
  .tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; }
  .tile { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
  .tile .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .tile .value { font-size: 24px; font-weight: 600; margin: 2px 0 6px; font-variant-numeric: tabular-nums; }
  .delta { font-size: 12px; color: var(--muted); white-space: nowrap; }
  .delta b { font-weight: 600; font-variant-numeric: tabular-nums; }
  .good b { color: var(--good); } .bad b { color: var(--bad); } .neutral b { color: var(--flat); }
  .chart svg { width: 100%; height: auto; display: block; }
  .columns { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.up { color: var(--good); } td.down { color: var(--bad); }
  tr.failed td { background: #fef2f2; }
  .pill { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; background: #eef2f7; }
  .pill.block { background: #fee2e2; color: var(--bad); }
  .pill.quarantine { background: #ffedd5; color: #9a3412; }
  footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
  @media (max-width: 800px) { .tiles { grid-template-columns: repeat(2, 1fr); } .columns { display: block; } }
</style>
</head>
<body>
<main>
<header>
  <h1>KPI report &middot; {{ run_date }}</h1>
  <p>Published marts as of {{ run_date }} ({{ run_date.strftime("%A") }});
     {{ "weekly" if weekly else "daily" }} KPIs available from {{ first_date }}.</p>
</header>

{%- macro delta(d, against) %}
  <div class="delta {{ d.tone if d else 'neutral' }}">
  {%- if d %}<b>{{ {"up": "▲", "down": "▼", "flat": "▶"}[d.direction] }} {{ d.text }}</b> {{ against }}
  {%- else %}{{ against }}: not available{% endif %}</div>
{%- endmacro %}

<section id="kpis">
  <h2>Headline KPIs</h2>
  <p class="note">
  {%- if weekly %}The week of {{ run_date }} against the week before it and the same week last year.
  {%- else %}{{ run_date }} against the average of the 7 days before it and the same day last year.{% endif %}
  Money in {{ currency }}.</p>
  <div class="tiles">
  {%- for t in tiles %}
    <div class="tile">
      <div class="label">{{ t.kpi.label }}</div>
      {%- set needs = capabilities.get(t.kpi.needs) if t.kpi.needs else none %}
      {%- if needs is not none and not needs.on %}
      <div class="value">off</div>
      <div class="delta">{{ needs.fix }}</div>
      {%- else %}
      <div class="value">{{ t.text }}</div>
      {{- delta(t.vs_week, "vs week before" if weekly else "vs 7-day avg") }}
      {{- delta(t.vs_year, "vs last year") }}
      {%- endif %}
    </div>
  {%- endfor %}
  </div>
</section>

<section id="trend">
  <h2>GMV and orders</h2>
  <p class="note">
  {%- if weekly %}Weekly values and their 4-week mean{% else %}Daily values and their 7-day mean{% endif %},
  last {{ trend_days }} days.
  {%- if events is none %} Shopping events: not available (no marts.dim_dates).
  {%- elif events.height %} Shaded: shopping events ({{ event_labels | join(", ") }}).
  {%- else %} No shopping events in this window.{% endif %}</p>
  <div class="chart">{{ trend_svg }}</div>
</section>

<section id="categories">
  <h2>Category mix</h2>
  {%- if mix is none %}
  <p class="na">Category mix not available:
    marts.rpt_category_daily is not published or has no rows up to {{ run_date }}.</p>
  {%- else %}
  <p class="note">GMV share by department over the last {{ mix_days }} days, and its weekly trend.</p>
  <div class="chart">{{ mix_svg }}</div>
  <table>
    <tr><th>Department</th><th class="num">GMV, {{ mix_days }} days</th><th class="num">Share</th>
        <th class="num">vs prior {{ mix_days }} days</th></tr>
    {%- for r in mix.iter_rows(named=True) %}
    <tr><td>{{ r.category_l1 }}</td><td class="num">{{ r.gmv | money }}</td>
        <td class="num">{{ r.share | pct }}</td>
        <td class="num {{ r.share_change | sign }}">{{ r.share_change | pp }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
</section>

<section id="inventory">
  <h2>Inventory turnover and stock-outs</h2>
  {%- if capabilities and not capabilities.inventory.on %}
  <p class="na">Off: the warehouse has no inventory snapshots; {{ capabilities.inventory.fix }}.</p>
  {%- else %}
  <p class="note">Turnover is annualised over a trailing 28 days; last {{ trend_days }} days.</p>
  <div class="chart">{{ inventory_svg }}</div>
  {%- endif %}
</section>

<section id="movers">
  <h2>Top movers</h2>
  {%- if movers is none %}
  <p class="na">Top movers not available: marts.fct_sales_daily or marts.dim_products is not published.</p>
  {%- else %}
  <p class="note">SKUs by GMV change, last {{ mover_days }} days ({{ mover_from }} to {{ run_date }})
     vs the {{ mover_days }} days before.</p>
  <div class="columns">
  {%- for title, rows in (("Up", movers[0]), ("Down", movers[1])) %}
    <div>
    <h3>{{ title }}</h3>
    {%- if rows.height %}
    <table>
      <tr><th>SKU</th><th>Department</th><th class="num">GMV</th><th class="num">&Delta; GMV</th>
          <th class="num">Units</th><th class="num">&Delta; units</th></tr>
      {%- for r in rows.iter_rows(named=True) %}
      <tr><td>{{ r.sku_name or "SKU %s" % r.sku_code }}
        {%- if r.sku_name and r.sku_code %} <span class="pill">{{ r.sku_code }}</span>{% endif %}</td>
          <td>{{ r.category_l1 or "–" }}</td>
          <td class="num">{{ r.gmv_now | money }}</td>
          <td class="num {{ r.gmv_change | sign }}">{{ r.gmv_change | money_signed }}</td>
          <td class="num">{{ r.units_now | count }}</td>
          <td class="num {{ r.units_change | sign }}">{{ r.units_change | count_signed }}</td></tr>
      {%- endfor %}
    </table>
    {%- else %}<p class="na">No SKU moved {{ title | lower }}.</p>{% endif %}
    </div>
  {%- endfor %}
  </div>
  {%- endif %}
</section>
{%- for s in model_sections %}

<section id="{{ s.id }}">
  <h2>{{ s.title }}</h2>
  {%- if s.body is none %}
  <p class="na">{{ s.absent }}</p>
  {%- else %}
  {{ s.body }}
  {%- endif %}
</section>
{%- endfor %}

<section id="coverage">
  <h2>Data coverage</h2>
  {%- if not capabilities %}
  <p class="na">Not known: the warehouse has no raw schema.</p>
  {%- elif not off %}
  <p class="note">Every contract table holds rows: every capability is on.</p>
  {%- else %}
  <p class="note">Capabilities the landed data does not switch on (<code>ecom doctor</code> lists them all);
    what they would fill shows as off or unknown, never as zero.</p>
  <table>
    <tr><th>Capability</th><th>Would fill</th><th>To switch it on</th></tr>
    {%- for c in off %}
    <tr><td>{{ c.capability.title }}</td>
        <td>{{ (c.capability.report + c.capability.features) | join(", ") or "mid-platform models" }}</td>
        <td>{{ c.fix }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
</section>

<section id="quality">
  <h2>Data quality</h2>
  {%- if quality is none %}
  <p class="na">Validation results not available: no quality.validation_results table yet.</p>
  {%- elif not quality.height %}
  <p class="na">No validation results for {{ run_date }}
    {%- if quality_latest %} (the latest are for {{ quality_latest }}){% endif %}.</p>
  {%- else %}
  <p class="note">Latest validation run of each stage for {{ run_date }}:
    {{ totals.checks }} expectations, {{ totals.failed }} failed ({{ totals.blocking }} blocking).</p>
  <table>
    <tr><th>Stage</th><th>Table</th><th>Dimension</th><th>Severity</th>
        <th class="num">Passed</th><th class="num">Failed</th></tr>
    {%- for r in quality.iter_rows(named=True) %}
    <tr{% if r.failed %} class="failed"{% endif %}><td>{{ r.stage }}</td><td>{{ r.table_name }}</td>
        <td>{{ r.dimension }}</td><td><span class="pill {{ r.severity }}">{{ r.severity }}</span></td>
        <td class="num">{{ r.passed }}</td><td class="num">{{ r.failed }}</td></tr>
    {%- endfor %}
  </table>
  {%- if failures is not none and failures.height %}
  <h3>Failed expectations</h3>
  <table>
    <tr><th>Stage</th><th>Table</th><th>Expectation</th><th>Severity</th>
        <th class="num">Unexpected</th><th>Detail</th></tr>
    {%- for r in failures.iter_rows(named=True) %}
    <tr><td>{{ r.stage }}</td><td>{{ r.table_name }}</td><td>{{ r.expectation }}</td>
        <td><span class="pill {{ r.severity }}">{{ r.severity }}</span></td>
        <td class="num">{{ r.unexpected_count | count }}
          {%- if r.element_count %} of {{ r.element_count | count }}{% endif %}</td>
        <td>{{ r.detail or "" }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
  {%- endif %}

  <h3>Quarantined rows</h3>
  {%- if quarantine is none %}
  <p class="na">Quarantine not available: no quarantine.rejected_rows table yet.</p>
  {%- elif not quarantine.height %}
  <p class="na">No rows quarantined from the {{ run_date }} batch.</p>
  {%- else %}
  <table>
    <tr><th>Table</th><th>Rule</th><th>Severity</th><th class="num">Rows</th></tr>
    {%- for r in quarantine.iter_rows(named=True) %}
    <tr><td>{{ r.table_name }}</td><td>{{ r.rule }}</td>
        <td><span class="pill {{ r.severity }}">{{ r.severity }}</span></td>
        <td class="num">{{ r.rows | count }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
  {%- if data_docs %}
  <p><a href="{{ data_docs }}">Open the Data Docs</a> for every expectation and its results.</p>
  {%- else %}
  <p class="na">Data Docs not available.</p>
  {%- endif %}
</section>

<footer>Generated by <code>ecom report</code> from {{ warehouse }}.</footer>
</main>
</body>
</html>
"""


def _sign(x: float | None) -> str:
    return "" if not x else ("up" if x > 0 else "down")


def _environment(currency: str = "CNY") -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(
        money=lambda x: metrics.format_value(x, "money", currency=currency),
        money_signed=lambda x: ("+" if x > 0 else "") + metrics.format_value(x, "money", currency=currency),
        count=lambda x, decimals=None: metrics.format_value(x, "count", decimals),
        count_signed=lambda x: f"{x:+,.0f}",
        pct=lambda x: metrics.format_value(x, "pct"),
        pct_signed=lambda x: ("+" if x and x > 0 else "") + metrics.format_value(x, "pct"),
        pp=lambda x: f"{x * 100:+.1f} pp",
        sign=_sign,
    )
    return env


def render_report(data: ReportData, warehouse: Path, data_docs: Path | None) -> str:
    """The report's HTML for already loaded ``ReportData``."""
    from pipelines.report import charts

    run_date = data.run_date
    weekly = data.grain == "weekly"
    # Weekly rows: a 7-day mean would be the week itself; a 4-week mean smooths as the daily one does.
    trend = metrics.with_rolling_means(
        data.kpi_daily, run_date, TREND_DAYS, 4 * ROLLING_DAYS if weekly else ROLLING_DAYS
    )
    events = None if data.event_days is None else metrics.event_spans(data.event_days)
    mix = mix_svg = None
    if data.category_daily is not None and data.category_daily.height:
        mix = metrics.category_mix(data.category_daily, run_date, MIX_DAYS)
        shares = metrics.weekly_category_share(data.category_daily, run_date, weekly=weekly)
        mix_svg = Markup(charts.category_mix_chart(mix, shares))
    movers = None if data.sku_changes is None else metrics.top_movers(data.sku_changes)
    env = _environment(data.currency)
    sections = [
        {
            "id": loaded.section.id,
            "title": loaded.section.title,
            "absent": loaded.section.absent,
            "body": None if loaded.data is None else Markup(loaded.section.render(loaded.data, env)),
        }
        for loaded in data.model_sections
    ]
    totals = None
    if data.quality_summary is not None:
        summary = data.quality_summary
        totals = {
            "checks": int(summary["passed"].sum() + summary["failed"].sum()),
            "failed": int(summary["failed"].sum()),
            "blocking": int(summary.filter(severity="block")["failed"].sum()),
        }
    return env.from_string(TEMPLATE).render(
        run_date=run_date,
        first_date=data.kpi_daily["date"][0],
        trend_days=TREND_DAYS,
        mix_days=MIX_DAYS,
        mover_days=MOVER_DAYS,
        mover_from=run_date - dt.timedelta(days=MOVER_DAYS - 1),
        tiles=metrics.build_kpi_tiles(data.kpi_daily, run_date, grain=data.grain, currency=data.currency),
        trend_svg=Markup(charts.trend_chart(trend, events, data.currency, weekly=weekly)),
        capabilities=data.capabilities,
        off=[c for c in data.capabilities.values() if not c.on],
        weekly=weekly,
        currency=data.currency,
        events=events,
        event_labels=[] if events is None else events["label"].unique(maintain_order=True).to_list(),
        mix=mix,
        mix_svg=mix_svg,
        inventory_svg=Markup(charts.inventory_chart(trend)),
        movers=movers,
        model_sections=sections,
        quality=data.quality_summary,
        totals=totals,
        quality_latest=data.quality_latest_date,
        failures=data.quality_failures,
        quarantine=data.quarantine,
        data_docs=data_docs.as_posix() if data_docs else None,
        warehouse=warehouse,
    )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(settings: Settings, run_date: dt.date | None = None) -> Path:
    """Write the KPI report for ``run_date`` (default: the latest day in ``marts.rpt_kpi_daily``).

    Writes ``reports/kpi_report_<run_date>.html`` and the same page as ``reports/index.html``,
    each atomically.

    Returns:
        The dated report's path.

    Raises:
        ReportError: no published marts, or no KPIs for ``run_date``.
    """
    path = settings.warehouse_path
    con = connect(path)
    try:
        data = load_report_data(
            con, path, run_date, grain=settings.land.grain, currency=settings.land.currency
        )
    finally:
        con.close()
    docs = settings.reports_dir / DATA_DOCS
    html = render_report(data, path, DATA_DOCS if docs.is_file() else None)
    out = settings.reports_dir / f"kpi_report_{data.run_date.isoformat()}.html"
    _write_atomic(out, html)
    _write_atomic(settings.reports_dir / "index.html", html)
    return out
