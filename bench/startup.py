"""Benchmark the start-up a foundation run pays before it reads a row: the floor under every day.

Each probe runs in a fresh interpreter (as every `ecom`, `airflow` and dbt process does), three
times, and the median wall time is kept; `python -c pass` is the baseline in the same run. The
in-process execution API probe is what `airflow dags test` starts on its first task: creating the
app, then its first request (when Cadwyn builds the routers of every execution API version), then
a second request. The section between the ``bench:startup`` markers in docs/benchmarks.md is
rewritten.

    .venv/bin/python bench/startup.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine, markers, write_section

from pipelines.config import TELEMETRY_OFF

BIN = Path(sys.executable).parent
REPEATS = 3
PROBES = {
    "Python itself (baseline)": [sys.executable, "-c", "pass"],
    "import polars and duckdb": [sys.executable, "-c", "import polars, duckdb"],
    "import great_expectations (validate_raw, validate_marts)": [
        sys.executable,
        "-c",
        "import great_expectations",
    ],
    "import dbt's runner (each dbt invocation)": [sys.executable, "-c", "from dbt.cli.main import dbtRunner"],
    "`airflow version` (the CLI's start)": [str(BIN / "airflow"), "version"],
}
# Runs in the child: the in-process execution API's three phases, as JSON seconds.
_API_CHILD = """
import json, time
import httpx
from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
t0 = time.perf_counter()
api = InProcessExecutionAPI()
client = httpx.Client(transport=api.transport, base_url="http://in-process.invalid.")
t1 = time.perf_counter()
assert client.get("/health").status_code == 200
t2 = time.perf_counter()
assert client.get("/health").status_code == 200
t3 = time.perf_counter()
print(json.dumps({"app": t1 - t0, "first": t2 - t1, "second": t3 - t2}))
"""


def _wall(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - started, proc.stdout


def measure(env: dict[str, str]) -> list[tuple[str, float]]:
    """(probe, median seconds) for each import, the `airflow` CLI and the execution API's phases."""
    rows = [
        (name, statistics.median(_wall(args, env)[0] for _ in range(REPEATS)))
        for name, args in PROBES.items()
    ]
    phases = [
        json.loads(_wall([sys.executable, "-c", _API_CHILD], env)[1].strip().splitlines()[-1])
        for _ in range(REPEATS)
    ]
    for key, label in [
        ("app", "in-process execution API: creating the app"),
        ("first", "in-process execution API: first request (Cadwyn builds every version's routers)"),
        ("second", "in-process execution API: second request"),
    ]:
        rows.append((label, statistics.median(p[key] for p in phases)))
    return rows


def render(rows: list[tuple[str, float]]) -> str:
    start, end = markers("startup")
    return "\n".join(
        [
            start,
            "## Start-up: the floor under every run",
            "",
            "Command: `.venv/bin/python bench/startup.py`. Each probe is a fresh interpreter, "
            f"median of {REPEATS} runs (page cache warm).",
            "",
            f"Machine: {machine()}.",
            "",
            "| probe | s |",
            "|---|--:|",
            *(f"| {name} | {seconds:.2f} |" for name, seconds in rows),
            end,
        ]
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as home:
        # a throwaway Airflow home: the probes must not touch a user's
        env = {**os.environ, **TELEMETRY_OFF, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        section = render(measure(env))
    write_section("startup", section)
    print(section, file=sys.stderr)


if __name__ == "__main__":
    main()
