"""Benchmark the foundation stage: a full build and one incremental day, through the real DAG.

For each tier, in a fresh ECOM_HOME: generate the world, replay all history but the last day as one
batch and run the `foundation` DAG for it (the full build), then replay the last day alone and run
the DAG again (the incremental day). Each step runs as the `ecom` command a user would type; wall
time and peak memory (RSS summed over the whole process tree, sampled every 0.2 s) are recorded.
Each tier's results replace its own section of docs/benchmarks.md (`foundation-<tier>`), so running
one tier leaves the others' figures in place. The section splits the incremental day's wall time by
task from its DAG log; `--breakdown LOG WALL_S` prints that split for a kept log.

    .venv/bin/python bench/foundation.py --tiers small large
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchlib import machine, markers, run_measured, write_section

ECOM = str(Path(sys.executable).parent / "ecom")
TARGETS = {  # seconds, from the issue: small full <= 2 min, large full <= 15 min, a large day <= 1 min
    ("small", "full build"): 120,
    ("large", "full build"): 900,
    ("large", "incremental day"): 60,
    ("large", "incremental day, no Airflow"): 60,
}
PEAK_TARGET_GIB = 12


@dataclass(frozen=True)
class Step:
    tier: str
    name: str
    seconds: float
    peak_gib: float
    log: str = ""


# dbt's own summary line ("Finished running 70 data tests, 15 view models in ... (5.78s).") and
# the in-process execution API answering the first task's first call.
DBT_FINISHED = re.compile(r"Finished running .* in .*\((\d+(?:\.\d+)?)s\)")
FIRST_TASK = re.compile(r"^(\S+) .*\[DAG TEST\] running task ", re.MULTILINE)
API_STARTED = re.compile(r"^(\S+) .*Task started", re.MULTILINE)


def day_breakdown(log_text: str, wall_s: float, group: str = "dbt") -> list[tuple[str, float, str]]:
    """Where a DAG run's wall time went, from its `airflow dags test` log: (part, seconds, note) rows.

    The rows add up to ``wall_s``: the time outside every task (starting `ecom` and the `airflow`
    CLI, parsing the DAG, the run's bookkeeping), the in-process execution API's start on the first
    task, each task in the order it ran, and the Cosmos per-model tasks (which only report what the
    producer built) summed into one row.
    """
    from pipelines.orchestration import task_seconds

    tasks = task_seconds(log_text)
    api_s = 0.0
    first, api = FIRST_TASK.search(log_text), API_STARTED.search(log_text)
    if first and api:
        api_s = (
            dt.datetime.fromisoformat(api.group(1)) - dt.datetime.fromisoformat(first.group(1))
        ).total_seconds()
    # dbt's own run time per task: its summary line falls between the task's start and end lines
    dbt_s: dict[str, float] = {}
    current = None
    for line in log_text.splitlines():
        if "[DAG TEST] starting task_id=" in line:
            current = line.split("task_id=", 1)[1].split()[0]
        elif current and (found := DBT_FINISHED.search(line)):
            dbt_s[current] = float(found.group(1))
    reporting = [t for t in tasks if t.startswith(f"{group}.") and t not in dbt_s]
    rows = [
        (
            "outside the tasks (`ecom` and `airflow` start, DAG parse, run bookkeeping)",
            wall_s - sum(tasks.values()),
            "",
        ),
        ("first task: Airflow's in-process execution API starting", api_s, ""),
    ]
    for i, (task, seconds) in enumerate(tasks.items()):
        if task in reporting:
            continue
        own = seconds - (api_s if i == 0 else 0.0)
        note = (
            f"dbt's own run {dbt_s[task]:.1f} s; starting dbt, loading the project {own - dbt_s[task]:.1f} s"
            if task in dbt_s
            else ""
        )
        rows.append((task, own, note))
    rows.append(
        (
            f"{len(reporting)} Cosmos per-model tasks",
            sum(tasks[t] for t in reporting),
            "report what the producer built",
        )
    )
    return rows


def bench_tier(tier: str, seed: int, root: Path, keep: bool = False) -> list[Step]:
    from pipelines.config import load_settings
    from pipelines.data.world import TIERS

    home = root / tier
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**os.environ, "ECOM_HOME": str(home), "ECOM_LAND__SOURCE": "data/incoming/{date}"}
    start = load_settings(env).generate.start_date
    last = start + dt.timedelta(days=TIERS[tier].n_days - 1)
    before = last - dt.timedelta(days=1)
    steps = []

    def step(name: str, args: list[str]) -> None:
        print(f"[{tier}] {name} ...", file=sys.stderr, flush=True)
        timed = run_measured(args, env)
        log = ""
        if args[1] == "dag":  # its Airflow log: the newest under the home (`ecom dag` writes one per run)
            log = max((home / "airflow" / "runs").glob("*.log"), key=lambda p: p.stat().st_mtime).read_text()
        steps.append(Step(tier, name, timed.seconds, timed.peak_gib, log))
        print(
            f"[{tier}] {name}: {timed.seconds:.1f} s, peak {timed.peak_gib:.2f} GiB",
            file=sys.stderr,
            flush=True,
        )

    step("generate", [ECOM, "generate", "--scale", tier, "--seed", str(seed)])
    step("replay history", [ECOM, "replay", "--date", before.isoformat()])
    step("full build", [ECOM, "dag", "foundation", "--date", before.isoformat()])
    step("replay one day", [ECOM, "replay", "--date", last.isoformat(), "--since", last.isoformat()])
    step("incremental day", [ECOM, "dag", "foundation", "--date", last.isoformat()])
    # The same day again without Airflow (one `dbt build` instead of one task per model), as a baseline
    # showing what the per-task orchestration costs. Landing sees the same batch and changes nothing;
    # validate_raw loads it again with a new load time, so the models rebuild the same day.
    step("incremental day, no Airflow", [ECOM, "foundation", "--date", last.isoformat()])
    # The DAG logs say where each run's time went ("[DAG TEST] starting / end task"); keep them.
    shutil.copytree(home / "airflow" / "runs", root / f"dag-logs-{tier}", dirs_exist_ok=True)
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return steps


def render(tier: str, steps: list[Step], command: str) -> str:
    start, end = markers(f"foundation-{tier}")
    rows = []
    for s in steps:
        target = TARGETS.get((s.tier, s.name))
        verdict = (
            "—" if target is None else ("meets" if s.seconds <= target else "misses") + f" (<= {target} s)"
        )
        rows.append(f"| {s.tier} | {s.name} | {s.seconds:,.1f} | {s.peak_gib:.2f} | {verdict} |")
    peak = max(s.peak_gib for s in steps)
    day = next((s for s in steps if s.name == "incremental day"), None)
    return "\n".join(
        [
            start,
            f"### {tier} tier",
            "",
            f"Command: `{command}`. Each step is the `ecom` command a user runs; the DAG steps are "
            "`ecom dag foundation` (Airflow `dags test`; its tasks are in docs/operations.md).",
            "",
            f"Machine: {machine()}.",
            "",
            "| tier | step | wall s | peak RSS GiB (process tree) | target |",
            "|---|---|--:|--:|---|",
            *rows,
            "",
            f"Peak memory over all steps: {peak:.2f} GiB (target <= {PEAK_TARGET_GIB} GiB: "
            f"{'meets' if peak <= PEAK_TARGET_GIB else 'misses'}).",
            "The full build lands all history but the last day as one batch; the incremental day then lands",
            "only the last day, so its cost is what a daily scheduled run pays.",
            *breakdown_table(day),
            end,
        ]
    )


def breakdown_table(step: Step | None) -> list[str]:
    """The incremental day's wall time split by `day_breakdown`, as markdown lines (none without a log)."""
    if step is None or not step.log:
        return []
    rows = [
        f"| {part} | {seconds:,.1f} | {note} |"
        for part, seconds, note in day_breakdown(step.log, step.seconds)
    ]
    return [
        "",
        f"Where the incremental day's {step.seconds:,.1f} s went, from its DAG log:",
        "",
        "| part | s | note |",
        "|---|--:|---|",
        *rows,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", nargs="+", default=["small"], choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out-root", type=Path, default=None, help="Where the temporary ECOM_HOMEs go")
    parser.add_argument(
        "--keep", action="store_true", help="Keep each tier's ECOM_HOME (warehouse and all) for profiling"
    )
    parser.add_argument(
        "--breakdown",
        nargs=2,
        metavar=("DAG_LOG", "WALL_S"),
        help="Only print where a kept DAG log's run went (its wall seconds from the tier's table)",
    )
    args = parser.parse_args()
    if args.breakdown:
        log, wall = args.breakdown
        print(
            "\n".join(breakdown_table(Step("", "incremental day", float(wall), 0.0, Path(log).read_text())))
        )
        return
    root = args.out_root or Path(tempfile.mkdtemp(prefix="bench-foundation-"))
    for tier in args.tiers:
        steps = bench_tier(tier, args.seed, root, keep=args.keep)
        section = render(tier, steps, f"python bench/foundation.py --tiers {tier}")
        write_section(f"foundation-{tier}", section)
        print(section, file=sys.stderr)


if __name__ == "__main__":
    main()
