"""What every benchmark script shares: timing a command's process tree, the machine line, and
rewriting the script's own marked section of docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
# The model families' benchmarks (forecast, retailer, pricing) keep their sections here.
MODELS_DOC = DOC.with_name("benchmarks-models.md")


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_gib: float
    output: str


def run_measured(args: list[str], env: dict[str, str]) -> Timed:
    """Run a command: wall seconds, peak RSS of its whole process tree (sampled every 0.2 s), output.

    Raises:
        SystemExit: The command failed (with the tail of its output).
    """
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{output[-4000:]}")
    return Timed(seconds, peak / 2**30, output)


def machine(extra: str = "") -> str:
    """CPU, cores, RAM, Python, date and the load average (a busy machine inflates every figure)."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    ram = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    libs = f"; {extra}" if extra else ""
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram:.1f} GiB RAM; Python {platform.python_version()}{libs}; "
        f"{dt.date.today()}; load average at the end {load}"
    )


def write_section(name: str, section: str, doc: Path = DOC) -> None:
    """Replace ``<!-- bench:NAME:start -->`` .. ``end`` in ``doc`` with ``section``, or append it."""
    start, end = markers(name)
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
