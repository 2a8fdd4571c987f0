"""``ecom``: one command line for every step, used by people, DVC and the Airflow DAGs alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.config import ConfigError, Settings, disable_telemetry, load_settings

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
        err.print(f"[red]configuration error:[/red] {exc}")
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
) -> None:
    """Simulate the e-commerce world and write it in the landing contract."""
    s = _settings()
    try:
        _generate(
            s,
            scale or s.generate.scale,
            s.generate.seed if seed is None else seed,
            start.date() if start else s.generate.start_date,
            out_dir,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _land(settings: Settings, source: str, batch_date: dt.date) -> None:
    from pipelines.data.land import LandingError, land_batch

    try:
        result = land_batch(source, settings, batch_date, progress=lambda msg: err.print(f"  {msg}"))
    except LandingError as exc:
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
        str | None, typer.Option(help="Folder or s3://bucket/prefix (default: params.yaml)")
    ] = None,
    date: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Batch date (default: today, UTC)")
    ] = None,
) -> None:
    """Check a batch of contract files and land it as one dated raw partition, atomically."""
    s = _settings()
    _land(s, source or s.land.source, date.date() if date else dt.datetime.now(dt.UTC).date())


@app.command()
def contract() -> None:
    """Print the landing contract as Markdown (the source of docs/data-contract.md)."""
    from pipelines.data.contract import render_markdown

    print(render_markdown())


@app.command()
def run(
    scale: Annotated[
        str | None, typer.Option(help="tiny, small, medium or large (default: params.yaml)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: params.yaml)")] = None,
    date: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Batch date (default: today, UTC)")
    ] = None,
) -> None:
    """The main job on embedded defaults: generate the world, then land it."""
    s = _settings()
    try:
        source = _generate(
            s,
            scale or s.generate.scale,
            s.generate.seed if seed is None else seed,
            s.generate.start_date,
            None,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    _land(s, str(source), date.date() if date else dt.datetime.now(dt.UTC).date())
    out.print(f"raw data: {s.raw_dir}")


if __name__ == "__main__":
    app()
