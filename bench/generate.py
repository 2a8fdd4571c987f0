"""Benchmark ``generate_world``: wall time, throughput, peak memory and disk use per tier.

Usage::

    .venv/bin/python bench/generate.py [--tiers small large] [--seed 42] [--out-root DIR] [--keep]

Each tier runs in a fresh Python subprocess, so the peak RSS it reports (``ru_maxrss`` of that
child) belongs to that run alone. The ``tiny`` tier always runs first as a baseline for the fixed
overhead (interpreter start, imports, global signals). Output goes to a temporary folder under
``--out-root`` (default ``bench/out/``, git-ignored) and is deleted after measuring unless
``--keep``. The figures replace the section between the ``bench:generate`` markers in
``docs/benchmarks.md``; the rest of that file is left as it is. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from benchlib import machine, markers, write_section

from pipelines.config import GenerateParams
from pipelines.data.world import TIERS

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
START, END = markers("generate")
GIB = 1 << 30
# tier -> (max wall seconds, max peak RSS GiB), both on a 2-core machine
TARGETS: dict[str, tuple[float, float]] = {"large": (300.0, 8.0)}
TARGET_CORES = 2

# Runs in the child: generate one tier, then report its own peak RSS and CPU time as JSON.
_CHILD = """
import datetime as dt, json, resource, sys
from pathlib import Path
from pipelines.data.generate import generate_world
scale, seed, start, out, truth = sys.argv[1:6]
r = generate_world(scale, int(seed), dt.date.fromisoformat(start), Path(out), Path(truth))
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": r.rows, "seconds": r.seconds, "maxrss_kib": u.ru_maxrss,
                  "cpu_s": u.ru_utime + u.ru_stime}))
"""


@dataclass(frozen=True)
class Run:
    tier: str
    rows: dict[str, int]
    wall_s: float  # whole child process, imports included
    generate_s: float  # inside generate_world
    cpu_s: float  # user + system time of the child
    peak_rss_gib: float
    disk_bytes: int  # landed tables + ground truth

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def verdict(self) -> str:
        if self.tier not in TARGETS:
            return "—"
        max_s, max_gib = TARGETS[self.tier]
        ok = self.wall_s <= max_s and self.peak_rss_gib <= max_gib
        return "meets" if ok else "**misses**"


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(tier: str, seed: int, start: dt.date, out_root: Path, keep: bool) -> Run:
    """Generate one tier in a fresh subprocess and measure it."""
    out_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"generate-{tier}-", dir=out_root))
    out, truth = work / "generated", work / "truth"
    cmd = [sys.executable, "-c", _CHILD, tier, str(seed), start.isoformat(), str(out), str(truth)]
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"generate {tier} failed with exit code {proc.returncode}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        disk = _dir_bytes(out) + _dir_bytes(truth)
    finally:
        if keep:
            print(f"  kept output in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return Run(
        tier=tier,
        rows=report["rows"],
        wall_s=wall,
        generate_s=report["seconds"],
        cpu_s=report["cpu_s"],
        peak_rss_gib=report["maxrss_kib"] * 1024 / GIB,  # Linux reports KiB
        disk_bytes=disk,
    )


def _machine() -> str:
    return machine(", ".join(f"{m} {version(m)}" for m in ("polars", "pyarrow", "numpy")))


def _human(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def render(runs: list[Run], command: str, seed: int, start: dt.date) -> str:
    """The Markdown section, markers included."""
    lines = [
        START,
        "## Data generation (`generate_world`)",
        "",
        f"Command: `{command}` (seed {seed}, start {start.isoformat()}).",
        "",
        f"Machine: {_machine()}.",
        "",
        "| Tier | SKUs | Days | Rows | Biggest tables (rows) | Wall s | generate s | CPU s | Rows/s "
        "| Peak RSS GiB | On disk MiB | Target |",
        "|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in runs:
        t = TIERS[r.tier]
        top = sorted(r.rows.items(), key=lambda kv: kv[1], reverse=True)[:3]
        top_s = ", ".join(f"{name} {_human(n)}" for name, n in top)
        lines.append(
            f"| {r.tier} | {t.n_skus:,} | {t.n_days} | {r.total_rows:,} | {top_s} | {r.wall_s:.1f} "
            f"| {r.generate_s:.1f} | {r.cpu_s:.1f} | {_human(r.total_rows / r.wall_s)} "
            f"| {r.peak_rss_gib:.2f} | {r.disk_bytes / (1 << 20):,.1f} | {r.verdict()} |"
        )
    lines += [
        "",
        "Wall s is the whole child process, interpreter start and imports included (`tiny` shows",
        "that fixed overhead); generate s is the time inside `generate_world`; CPU s is user + system",
        "time of the child (above wall s means more than one core busy). Rows/s uses wall s. Peak RSS",
        "is the child's `ru_maxrss`. On disk counts the landed tables and the ground truth.",
        "",
        "Targets:",
        "",
    ]
    by_tier = {r.tier: r for r in runs}
    for tier, (max_s, max_gib) in TARGETS.items():
        goal = f"`{tier}` within {max_s:.0f} s and {max_gib:.0f} GiB peak RSS on {TARGET_CORES} cores"
        if tier not in by_tier:
            lines.append(f"- {goal}: not run.")
            continue
        r = by_tier[tier]
        time_ok = "meets" if r.wall_s <= max_s else "**misses**"
        mem_ok = "meets" if r.peak_rss_gib <= max_gib else "**misses**"
        cores = "" if os.cpu_count() == TARGET_CORES else f" (measured on {os.cpu_count()} cores)"
        lines.append(f"- {goal}: {r.wall_s:.0f} s ({time_ok}), {r.peak_rss_gib:.2f} GiB ({mem_ok}){cores}.")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", nargs="+", choices=list(TIERS), default=["small", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out-root", type=Path, default=REPO_ROOT / "bench" / "out")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)
    tiers = list(dict.fromkeys(["tiny", *args.tiers]))  # tiny first, as the fixed-overhead baseline
    start = GenerateParams().start_date
    runs: list[Run] = []
    for tier in tiers:
        print(f"[bench] {tier}: generating ({TIERS[tier].n_skus:,} SKUs)...", file=sys.stderr, flush=True)
        run = measure(tier, args.seed, start, args.out_root, args.keep)
        print(
            f"[bench] {tier}: {run.total_rows:,} rows in {run.wall_s:.1f} s, "
            f"peak {run.peak_rss_gib:.2f} GiB, {run.disk_bytes / (1 << 20):,.0f} MiB on disk",
            file=sys.stderr,
            flush=True,
        )
        runs.append(run)
    command = shlex.join([".venv/bin/python", "bench/generate.py", *sys.argv[1:]])
    write_section("generate", render(runs, command, args.seed, start), DOCS)
    print(f"[bench] wrote {DOCS.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
