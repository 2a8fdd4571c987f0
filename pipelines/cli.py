"""``ecom``: one command line for every step, used by people, DVC and the Airflow DAGs alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.config import ConfigError, Settings, disable_telemetry, load_settings

if TYPE_CHECKING:
    from pipelines.ml.family import ModelFamily
    from pipelines.services import Service

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# soft_wrap: paths are printed whole, so they can be copied from the terminal.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _main() -> None:
    disable_telemetry()


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


def _generate(settings: Settings, scale: str, seed: int, start: dt.date, out_dir: Path | None) -> Path:
    from pipelines.data.generate import generate_world

    target = settings.resolve(out_dir) if out_dir else settings.generated_dir
    with Progress(
        TextColumn("[bold]generate[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("SKUs"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{scale} world, seed {seed}", total=None)
        result = generate_world(
            scale,
            seed,
            start,
            target,
            settings.truth_dir,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    total = sum(result.rows.values())
    out.print(
        f"generated {scale} world (seed {seed}) in {result.seconds:.1f}s: {total:,} rows in "
        f"{len(result.rows)} tables -> {result.out_dir}"
    )
    out.print(f"ground truth -> {result.truth_dir}; {result.signal_dimensions} signal dimensions")
    return target


def _generate_retailer(
    settings: Settings, size: str, seed: int, start: dt.datetime | None, out_dir: Path | None
) -> None:
    from pipelines.data.retailer import DEFAULT_START, write_retailer_export

    folder = settings.data_dir / "retailer"
    result = write_retailer_export(
        settings.resolve(out_dir) if out_dir else folder / "export",
        folder / "truth",
        size=size,
        seed=seed,
        start=start.date() if start else DEFAULT_START,
    )
    out.print(
        f"wrote a {size} retailer export (seed {seed}) in {result.seconds:.1f}s: "
        f"{sum(result.rows.values()):,} rows in {len(result.rows)} tables, weeks {result.first_week} to "
        f"{result.last_week}, plans to {result.plan_until} -> {result.out_dir}",
        highlight=False,
    )
    out.print(f"truth -> {result.truth_dir}; land it as batch {result.batch_date}", highlight=False)


@app.command()
def generate(
    scale: Annotated[
        str | None, typer.Option(help="tiny, small, medium or large (default: params.yaml)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: params.yaml)")] = None,
    start: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First simulated day")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: data/generated)")
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            help="world: the simulated shop (every contract table, daily); retailer: a retailer's "
            "weekly export (4 tables, string SKU codes, gaps, plans) into data/retailer/export, "
            "--scale tiny or small; land it with ECOM_PARAMS=examples/retailer/params.yaml"
        ),
    ] = "world",
) -> None:
    """Simulate the e-commerce world (or a retailer's export) and write it in the landing contract."""
    s = _settings()
    if profile not in ("world", "retailer"):
        raise _fail(f"unknown --profile {profile!r}: world or retailer", 2)
    try:
        if profile == "retailer":
            _generate_retailer(s, scale or "small", 7 if seed is None else seed, start, out_dir)
            return
        _generate(
            s,
            scale or s.generate.scale,
            s.generate.seed if seed is None else seed,
            start.date() if start else s.generate.start_date,
            out_dir,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


def _land(settings: Settings, source: str, batch_date: dt.date) -> None:
    from pipelines.data.land import LandingError, land_batch

    try:
        result = land_batch(source, settings, batch_date, progress=lambda msg: err.print(f"  {escape(msg)}"))
    except LandingError as exc:
        if not exc.problems:  # refused as a whole (wrong date, no facts): no file was quarantined
            raise _fail(f"landing rejected, nothing was landed: {exc}") from exc
        err.print(f"[red]landing rejected[/red] ({len(exc.problems)} problem(s); nothing was landed):")
        for line in str(exc).splitlines():
            err.print(f"  {line}", markup=False, highlight=False)
        err.print(f"bad files are kept in {settings.quarantine_dir} with the reason")
        raise typer.Exit(1) from exc
    rows = sum(result.tables.values())
    if result.already_landed:
        out.print(f"batch {result.batch_id} already landed in {result.partition}; nothing changed")
    else:
        tables = len(result.tables)
        out.print(f"landed batch {result.batch_id}: {rows:,} rows in {tables} tables -> {result.partition}")


@app.command()
def land(
    source: Annotated[
        str | None,
        typer.Option(help="Folder or s3://bucket/prefix; {date} is the batch date (default: params.yaml)"),
    ] = None,
    date: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Batch date (default: today, UTC)")
    ] = None,
    date_from_data: Annotated[
        bool,
        typer.Option(
            "--date-from-data",
            help="Batch date = the batch's last sales day (a local folder holding history, e.g. the world)",
        ),
    ] = False,
) -> None:
    """Check a batch of contract files and land it as one dated raw partition, atomically."""
    from pipelines.data.land import LandingError, last_sales_date

    s = _settings()
    source = source or s.land.source
    if date is not None and date_from_data:
        raise _fail("give either --date or --date-from-data", 2)
    day = date.date() if date else dt.datetime.now(dt.UTC).date()
    if date_from_data:
        if source.startswith("s3://") or "{date}" in source:
            raise _fail("--date-from-data reads one local folder; give --date for this source", 2)
        try:
            day = last_sales_date(s.resolve(source))
        except LandingError as exc:
            raise _fail(str(exc), 2) from exc
    # As in the DAG's land task: a source such as data/incoming/{date} names each day's folder.
    _land(s, source.replace("{date}", day.isoformat()), day)


@app.command()
def contract() -> None:
    """Print the landing contract as Markdown (the source of docs/data-contract.md)."""
    from pipelines.data.contract import render_markdown

    print(render_markdown())


DateOption = Annotated[
    dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Run date (default: see command)")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    # Messages quote settings as lists ([app, web]), which rich would take for markup and drop.
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


@app.command()
def replay(
    date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Last business day of the batch")],
    since: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day (default: all history)")
    ] = None,
    source: Annotated[
        Path | None, typer.Option(help="Contract files to cut from (default: data/generated)")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Default: data/incoming/<date>")] = None,
) -> None:
    """Cut a batch for a date range out of generated data, as a daily feed would deliver it."""
    from pipelines.data.replay import replay_batch

    s = _settings()
    target = s.resolve(out_dir) if out_dir else s.data_dir / "incoming" / date.date().isoformat()
    try:
        rows = replay_batch(
            s.resolve(source) if source else s.generated_dir,
            target,
            date.date(),
            since.date() if since else None,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc), 2) from exc
    empty = sorted(name for name, n in rows.items() if n == 0)
    note = f" (no rows, so no file: {', '.join(empty)})" if empty else ""
    out.print(f"replayed {sum(rows.values()):,} rows in {len(rows) - len(empty)} tables -> {target}{note}")


validate_app = typer.Typer(no_args_is_help=True, help="Great Expectations gates.")
app.add_typer(validate_app, name="validate")


@validate_app.command("raw")
def validate_raw_cmd(
    date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Batch date")],
) -> None:
    """Validate a landed partition and load its passing rows into the warehouse's raw schema."""
    from pipelines.quality import QualityError
    from pipelines.quality.raw import validate_raw

    s = _settings()
    try:
        result = validate_raw(
            s, date.date(), progress=lambda msg: err.print(f"  {escape(msg)}", highlight=False)
        )
    except QualityError as exc:
        raise _fail(str(exc)) from exc
    out.print(result.summary(), highlight=False, markup=False)
    from pipelines.capabilities import warehouse_capabilities

    off = [
        c.capability.name
        for c in warehouse_capabilities(s.warehouse_path, s.warehouse.memory_limit).values()
        if not c.on
    ]
    if off:
        out.print(
            f"capabilities off (no rows landed yet): {', '.join(off)}; `ecom doctor` says what fills them"
        )


@validate_app.command("marts")
def validate_marts_cmd(
    date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Run date")],
) -> None:
    """Audit the freshly built marts (build_marts) for a run date before they are published."""
    from pipelines.quality import QualityError
    from pipelines.quality.marts import validate_marts

    try:
        result = validate_marts(_settings(), date.date())
    except QualityError as exc:
        raise _fail(str(exc)) from exc
    out.print(result.summary(), highlight=False, markup=False)


@app.command()
def doctor() -> None:
    """Which capabilities the data in the warehouse switches on, and what would switch the rest on.

    Exits 1 when the minimum (products and daily_sales) has not been landed.
    """
    from pipelines.capabilities import capability_status, render_status, table_rows
    from pipelines.warehouse import connect_warehouse

    s = _settings()
    channels = ", ".join(s.quality.channels) if s.quality.channels else "from the data"
    out.print(
        f"data: {s.land.grain} sales, weeks start on {s.land.week_start}, channels {channels}, "
        f"money in {s.land.currency}; forecasts {s.forecast.grain}",
        highlight=False,
    )
    rows: dict[str, int] = {}
    if s.warehouse_path.is_file():
        con = connect_warehouse(s.warehouse_path, s.warehouse.memory_limit)
        try:
            rows = table_rows(con)
        finally:
            con.close()
    else:
        out.print(f"no warehouse at {s.warehouse_path} yet: land a batch and run `ecom validate raw`")
    statuses = capability_status(rows)
    out.print(render_status(statuses, rows), highlight=False, markup=False)
    if not statuses["sales"].on:
        raise _fail(f"the minimum is missing: {statuses['sales'].fix}")


@app.command()
def publish(
    model_outputs: Annotated[
        bool,
        typer.Option(
            "--model-outputs",
            help="Instead: rebuild and publish the marts over model outputs (after `ecom score`)",
        ),
    ] = False,
    date: DateOption = None,
) -> None:
    """Publish the audited marts (build_marts -> marts) in one transaction.

    Refuses unless the latest `ecom validate marts` passed and the marts are unchanged since. With
    --model-outputs: rebuild the marts over the scored outputs (forecasts, plans, realised
    accuracy) with their dbt tests, and publish those alone.
    """
    from pipelines.quality import QualityError
    from pipelines.quality.marts import publish_marts

    s = _settings()
    if model_outputs:
        from pipelines.model_marts import ModelMartsError, publish_model_output_marts
        from pipelines.transform import DbtError

        try:
            tables = publish_model_output_marts(s, _run_date(s, date), progress=_say)
        except (ModelMartsError, DbtError, QualityError) as exc:
            raise _fail(str(exc)) from exc
        out.print(f"published {len(tables)} model-output marts: {', '.join(tables)}")
        return
    if date is not None:
        raise _fail("--date applies to --model-outputs; the marts audit names its own date", 2)
    try:
        tables = publish_marts(s, progress=_say)
    except QualityError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"published {len(tables)} marts: {', '.join(tables)}")


# dbt's own options (--select, --full-refresh, -s ...) are not ecom's: they pass through to dbt in
# the order given, while --date is ecom's wherever it stands (`ecom dbt build --select marts --date D`).
@app.command("dbt", context_settings={"ignore_unknown_options": True})
def dbt_cmd(
    args: Annotated[
        list[str],
        typer.Argument(help="dbt command and its arguments, passed through, e.g. build --select marts"),
    ],
    date: DateOption = None,
) -> None:
    """Run dbt on the project with the warehouse and artifacts under ECOM_HOME (--date: the run date)."""
    from pipelines.transform import DbtError, run_dbt

    try:
        output = run_dbt(_settings(), args, date.date() if date else dt.datetime.now(dt.UTC).date())
    except DbtError as exc:
        raise _fail(str(exc)) from exc
    out.print(output.rstrip(), markup=False, highlight=False)


@app.command()
def report(date: DateOption = None) -> None:
    """Render the BI report (HTML with charts) from the published marts into reports/."""
    from pipelines.report import ReportError, build_report

    try:
        path = build_report(_settings(), date.date() if date else None)
    except ReportError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"report: {path}")


SummaryOut = Annotated[
    Path | None, typer.Option(help="Also write a JSON summary here (relative to ECOM_HOME); DVC tracks it")
]


def _write_json(settings: Settings, path: Path | None, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` (under ECOM_HOME when relative), atomically."""
    if path is None:
        return
    import json

    target = settings.resolve(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(target)


@app.command("foundation")
def foundation_cmd(
    date: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Run date (default: the newest landed partition)"),
    ] = None,
    land: Annotated[
        bool, typer.Option(help="Land land.source first; --no-land uses the batch already landed")
    ] = True,
    summary_out: SummaryOut = None,
) -> None:
    """The foundation stage for one date without Airflow: land, validate, dbt, audit, publish, report."""
    from pipelines.data.land import LandingError
    from pipelines.quality import QualityError
    from pipelines.report import ReportError
    from pipelines.stages.foundation import newest_landed_date, published_fingerprint, run_foundation
    from pipelines.transform import DbtError

    s = _settings()
    try:
        day = date.date() if date else newest_landed_date(s)
        run_foundation(s, day, say=lambda m: out.print(f"  {escape(m)}", highlight=False), land=land)
    except (ValueError, LandingError, QualityError, DbtError, ReportError) as exc:
        raise _fail(str(exc)) from exc
    if summary_out is not None:
        # Hashing every published mart is slow on large tiers: only for DVC's summary.
        _write_json(s, summary_out, {"run_date": day, "published": published_fingerprint(s)})


plan_app = typer.Typer(no_args_is_help=True, help="Decisions from scored models.")
app.add_typer(plan_app, name="plan")

RunDate = Annotated[
    dt.datetime | None,
    typer.Option(
        formats=["%Y-%m-%d"], help="Last day of data to use (default: the marts' last day with units)"
    ),
]
FamilyName = Annotated[str, typer.Argument(help="Model family, e.g. forecast", show_default=False)]


def _run_date(settings: Settings, date: dt.datetime | None, family: ModelFamily | None = None) -> dt.date:
    """The given date, else the last day of the family's data (the demand mart's without one)."""
    from pipelines.forecast.data import last_data_day
    from pipelines.ml.family import FamilyDataError

    if date is not None:
        return date.date()
    try:
        return family.last_data_day(settings) if family is not None else last_data_day(settings)
    except FamilyDataError as exc:
        raise _fail(str(exc)) from exc


def _family(name: str) -> ModelFamily:
    from pipelines.ml.families import get_family

    try:
        return get_family(name)
    except KeyError as exc:
        raise _fail(str(exc.args[0]), 2) from exc


def _say(message: str) -> None:
    err.print(f"  {escape(message)}", highlight=False)


@app.command()
def train(
    family: FamilyName,
    date: RunDate = None,
    metrics_out: Annotated[
        Path | None,
        typer.Option(help="Also write the evaluation and decision as JSON here (relative to ECOM_HOME; DVC)"),
    ] = None,
) -> None:
    """Evaluate against baselines and the champion, fit, register; promote only if it beats them all."""
    from pipelines.ml.family import FamilyDataError
    from pipelines.ml.lifecycle import train_family

    s = _settings()
    model_family = _family(family)
    day = _run_date(s, date, model_family)
    try:
        result = train_family(model_family, s, day, progress=_say)
    except FamilyDataError as exc:
        raise _fail(str(exc)) from exc
    verdict = "promoted to @champion" if result.promoted else "left as @challenger"
    out.print(f"{result.model_name} v{result.model_version} ({result.model_kind}) {verdict}: {result.reason}")
    out.print(f"MLflow run {result.run_id}; open it with `make mlflow-ui`", highlight=False)
    _write_json(s, metrics_out, result.summary(day))


@app.command()
def evaluate(family: FamilyName, date: RunDate = None) -> None:
    """Compare the family's models, baselines and champion on the same data, without registering."""
    from pipelines.ml.family import FamilyDataError, format_table
    from pipelines.ml.lifecycle import evaluate_family

    s = _settings()
    model_family = _family(family)
    try:
        evaluation = evaluate_family(model_family, s, _run_date(s, date, model_family), progress=_say)
    except FamilyDataError as exc:
        raise _fail(str(exc)) from exc
    out.print(format_table(evaluation.comparison), markup=False, highlight=False)


@app.command()
def score(family: FamilyName, date: RunDate = None, summary_out: SummaryOut = None) -> None:
    """Batch-score with the family's @champion into its output table for the run date."""
    from pipelines.ml.family import FamilyDataError
    from pipelines.ml.registry import NoChampionError
    from pipelines.ml.scoring import ScoringError, score_family

    s = _settings()
    model_family = _family(family)
    try:
        result = score_family(model_family, s, _run_date(s, date, model_family))
    except (ScoringError, NoChampionError, FamilyDataError) as exc:
        raise _fail(str(exc)) from exc
    out.print(result.summary(), highlight=False, markup=False)
    _write_json(
        s,
        summary_out,
        {
            "family": result.family,
            "run_date": result.run_date,
            "table": result.table,
            "rows": result.rows,
            "entities": result.entities,
            "model_version": result.model_version,
            "seconds": result.seconds,
        },
    )


@plan_app.command("replenishment")
def plan_replenishment_cmd(date: RunDate = None) -> None:
    """Safety stock, reorder point and order quantity per SKU from the day's forecast."""
    from pipelines.replenishment import ReplenishmentError, plan_replenishment

    s = _settings()
    try:
        result = plan_replenishment(s, _run_date(s, date))
    except ReplenishmentError as exc:
        raise _fail(str(exc)) from exc
    if result.skipped:
        out.print(f"no replenishment plan: {result.skipped}", highlight=False)
        return
    out.print(
        f"planned {result.orders:,} orders ({result.units_ordered:,} units) for {result.skus:,} SKUs "
        f"into {result.table}",
        highlight=False,
    )


@app.command()
def crawl(date: RunDate = None, summary_out: SummaryOut = None) -> None:
    """Crawl the rival sites for their prices (the simulated rivals on 127.0.0.1 by default) and land them."""
    from pipelines.pricing.crawl import CrawlError
    from pipelines.pricing.monitor import monitor_competitors
    from pipelines.pricing.ocr import OcrUnavailable

    s = _settings()
    day = _run_date(s, date, _family("pricing"))
    try:
        result = monitor_competitors(s, day, progress=_say)
    except (CrawlError, OcrUnavailable, ValueError) as exc:
        raise _fail(str(exc)) from exc
    summary = result.summary()
    stats, accuracy = summary["stats"], summary["accuracy"]
    lines = [
        f"crawl {result.crawl_id}: {result.observations:,} rival price(s) landed, {result.rejected:,} "
        f"quarantined{f' in {result.quarantine}' if result.rejected else ''}",
        f"{stats['pages']:,} pages ({stats['not_modified']:,} not modified) in {stats['seconds']:.1f}s "
        f"({stats['pages_per_second']:.1f}/s); {stats['retries']:,} retries",
    ]
    if accuracy:
        lines.append(
            f"against the simulated rivals: {accuracy['exact_share']:.2%} of prices exact, "
            f"{int(accuracy['wrong_landed'])} wrong landed"
        )
    out.print("\n".join(lines), highlight=False, markup=False)
    _write_json(s, summary_out, summary)


@plan_app.command("prices")
def plan_prices_cmd(
    date: RunDate = None,
    step: Annotated[
        str | None,
        typer.Option(help="The step's time of day, HH:MM UTC (default: now); rerunning a step replaces it"),
    ] = None,
) -> None:
    """Optimise each SKU's next price from the scored elasticities and the latest rival prices; publish."""
    from pipelines.pricing.decide import PricingInputError, decide_prices

    s = _settings()
    day = _run_date(s, date, _family("pricing"))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)
    try:
        at = dt.time.fromisoformat(step) if step else now.time()
    except ValueError as exc:
        raise _fail(f"--step {step!r} is not HH:MM", 2) from exc
    try:
        result = decide_prices(s, day, dt.datetime.combine(day, at), progress=_say)
    except PricingInputError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from exc
    out.print(
        f"published {result.changed:,} price changes for {result.skus:,} SKUs ({day} step {at:%H:%M})",
        highlight=False,
    )


@plan_app.command("pricing-replay")
def plan_pricing_replay_cmd(date: RunDate = None) -> None:
    """Replay static, rule-based, AI and oracle pricing against the simulator's true demand."""
    from pipelines.stages.innovation import replay

    s = _settings()
    summary = replay(s, _run_date(s, date, _family("pricing")))
    out.print("\n".join(f"{k}: {v}" for k, v in summary.items()), highlight=False, markup=False)


@app.command("dag")
def dag_cmd(
    dag_id: Annotated[str, typer.Argument(help="DAG id, e.g. foundation")],
    date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Logical date of the run")],
) -> None:
    """Run one DAG for one date in this process (airflow dags test), with Airflow's home under ECOM_HOME."""
    from pipelines.orchestration import DagRunError, run_dag

    try:
        run_dag(_settings(), dag_id, date.date(), say=lambda m: out.print(m, highlight=False))
    except DagRunError as exc:
        raise _fail(str(exc)) from exc


ui_app = typer.Typer(
    no_args_is_help=True,
    help="Local UIs on 127.0.0.1; Ctrl-C stops them, and everything they started.",
)
app.add_typer(ui_app, name="ui")

GraceOption = Annotated[
    float, typer.Option("--grace", help="Seconds between SIGTERM and SIGKILL when stopping", min=0)
]


def _port_option(service: str, flag: str = "--port") -> Any:
    return typer.Option(flag, help=f"Port of {service} on 127.0.0.1")


def _ui_services(settings: Settings, name: str, port: int) -> list[Service]:
    """The UI ``name`` on ``port`` (Airflow: with its other components), after what it needs first."""
    from pipelines.orchestration import standalone
    from pipelines.services import dbt_docs, mlflow_ui
    from pipelines.transform import DbtError, run_dbt

    if name == "airflow":
        return standalone(settings, port)
    if name == "mlflow":
        return [mlflow_ui(settings, port)]
    _say("dbt docs generate")
    today = dt.datetime.now(dt.UTC).date()
    try:
        run_dbt(settings, ["docs", "generate"], today)
    except DbtError:
        # Compiling runs the models' introspective queries, which need a built warehouse; without
        # one the site still has every model, its docs and lineage, without compiled SQL.
        _say("dbt docs generate failed (is the warehouse built?): again without compiling")
        run_dbt(settings, ["docs", "generate", "--no-compile"], today)
        run_dbt(settings, ["parse"], today)  # the manifest, which only compiling writes otherwise
    return [dbt_docs(settings, port)]


def _serve(settings: Settings, ports: dict[str, tuple[str, int]], grace: float) -> None:
    """Run the named UIs until Ctrl-C or SIGTERM, then stop them all, children included.

    Args:
        ports: Service name (``airflow``, ``mlflow``, ``dbt-docs``) -> (its port option, port).
    """
    from pipelines.orchestration import DagRunError, admin_password
    from pipelines.services import (
        PortInUseError,
        ServiceError,
        Supervisor,
        check_ports,
        interrupt_on_signals,
    )
    from pipelines.transform import DbtError

    try:
        check_ports(dict(ports.values()))
    except PortInUseError as exc:
        raise _fail(str(exc), 2) from exc
    log_dir = settings.home / "logs" / "ui"
    with interrupt_on_signals():
        try:
            with Supervisor(log_dir, grace_s=grace, say=_say) as supervisor:
                started, lines = [], []
                for name, (_, port) in ports.items():
                    try:
                        services = _ui_services(settings, name, port)
                    except DbtError as exc:
                        if len(ports) == 1:
                            raise
                        # The other UIs are still worth having (a new home has no warehouse yet).
                        log = supervisor.write_log(name, str(exc))
                        lines.append(f"dbt docs   not served: dbt docs generate failed (see {log})")
                        continue
                    for service in services:
                        started.append(supervisor.start(service))
                        _say(f"started {service.name} (log: {started[-1].log})")
                for running in started:
                    supervisor.wait_ready(running)
                for running in started:
                    service = running.service
                    if service.name == "airflow":
                        password = (
                            admin_password(settings, timeout_s=60)
                            or f"(not generated yet: see {running.log})"
                        )
                        lines.append(f"Airflow    {service.url}   user: admin   password: {password}")
                    elif service.name == "mlflow":
                        lines.append(f"MLflow     {service.url}   (store: {settings.tracking_uri})")
                    elif service.name == "dbt-docs":
                        lines.append(f"dbt docs   {service.url}")
                docs = settings.reports_dir / "data_docs" / "index.html"
                if len(ports) > 1 and docs.is_file():
                    lines.append(f"Data Docs  {docs.as_uri()}")
                lines.append(f"logs in {log_dir}; Ctrl-C stops {'them all' if len(ports) > 1 else 'it'}")
                out.print("\n".join(lines), highlight=False)
                ended = supervisor.wait()
                raise ServiceError(
                    f"{ended.name} stopped on its own (exit code {ended.process.returncode}); "
                    f"the others are stopped too. Last lines of {ended.log}:\n{ended.log_tail()}"
                )
        except KeyboardInterrupt:
            out.print("stopped")
        except (ServiceError, DagRunError, DbtError) as exc:
            raise _fail(str(exc)) from exc


@ui_app.command("all")
def ui_all(
    airflow_port: Annotated[int, _port_option("Airflow", "--airflow-port")] = 8080,
    mlflow_port: Annotated[int, _port_option("the MLflow UI", "--mlflow-port")] = 5000,
    dbt_docs_port: Annotated[int, _port_option("the dbt docs", "--dbt-docs-port")] = 8081,
    grace: GraceOption = 10.0,
) -> None:
    """Airflow, the MLflow UI and the dbt docs together; print the URLs and Airflow's login."""
    ports = {
        "airflow": ("--airflow-port", airflow_port),
        "mlflow": ("--mlflow-port", mlflow_port),
        "dbt-docs": ("--dbt-docs-port", dbt_docs_port),
    }
    _serve(_settings(), ports, grace)


@ui_app.command("airflow")
def ui_airflow(
    port: Annotated[int, _port_option("the Airflow UI")] = 8080, grace: GraceOption = 10.0
) -> None:
    """Airflow as `airflow standalone` runs it (API server, scheduler, DAG processor, triggerer)."""
    _serve(_settings(), {"airflow": ("--port", port)}, grace)


@ui_app.command("dbt-docs")
def ui_dbt_docs(port: Annotated[int, _port_option("the dbt docs")] = 8081, grace: GraceOption = 10.0) -> None:
    """Generate and serve the dbt docs site."""
    _serve(_settings(), {"dbt-docs": ("--port", port)}, grace)


@ui_app.command("mlflow")
def ui_mlflow(port: Annotated[int, _port_option("the MLflow UI")] = 5000, grace: GraceOption = 10.0) -> None:
    """The MLflow UI over the project's tracking store."""
    _serve(_settings(), {"mlflow": ("--port", port)}, grace)


@app.command()
def run(
    scale: Annotated[
        str | None, typer.Option(help="tiny, small, medium or large (default: params.yaml)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: params.yaml)")] = None,
) -> None:
    """The main job on embedded defaults: generate the world, then run each switched-on stage's DAGs."""
    from pipelines.data.world import TIERS
    from pipelines.orchestration import DagRunError, run_dag

    s = _settings()
    scale = scale or s.generate.scale
    try:
        _generate(s, scale, s.generate.seed if seed is None else seed, s.generate.start_date, None)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    run_date = s.generate.start_date + dt.timedelta(days=TIERS[scale].n_days - 1)
    dags = (
        ["foundation"]
        + (["core_supply_chain"] if s.rollout.enabled("core") else [])
        + (["innovation_pricing"] if s.rollout.enabled("innovation") else [])
    )
    try:
        for dag_id in dags:
            run_dag(s, dag_id, run_date, say=lambda m: out.print(m, highlight=False))
    except DagRunError as exc:
        raise _fail(str(exc)) from exc
    lines = [
        f"rollout stage: {s.rollout.stage} (DAGs run: {', '.join(dags)})",
        f"warehouse:  {s.warehouse_path}   (published marts in schema `marts`)",
        f"report:     {s.reports_dir / 'index.html'}",
        f"data docs:  {s.reports_dir / 'data_docs' / 'index.html'}",
        "UIs:        make ui         (Airflow, MLflow and the dbt docs on 127.0.0.1; Ctrl-C stops them)",
        "dbt docs:   make dbt-docs   (serves on http://127.0.0.1:8081)",
        "airflow:    make airflow-ui (http://127.0.0.1:8080)",
    ]
    if "core_supply_chain" in dags:
        lines += [
            "forecasts:  schema `forecasts` (demand_forecast, replenishment_plan) in the warehouse",
            f"mlflow:     make mlflow-ui  (http://127.0.0.1:5000; store {s.tracking_uri})",
        ]
    if "innovation_pricing" in dags:
        lines.append(
            "pricing:    schema `pricing` (competitor_observations, price_elasticity, price_decisions, "
            "replay_kpis)"
        )
    out.print("\n" + "\n".join(lines), highlight=False)


if __name__ == "__main__":
    app()
