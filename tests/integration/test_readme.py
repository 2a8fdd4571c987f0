"""The README's commands, run as a reader types them, in README order, so the README cannot drift.

Every command line of the README's fenced ``bash`` blocks is either an ``ecom`` command, run here
on the tiny tier in a fresh ECOM_HOME, or a line this file skips on purpose (:data:`SKIPPED`, with
the reason). A README command that fails, or a new line that is neither, fails a test naming the
README line. The reader's ``source .venv/bin/activate`` is the venv's bin folder put first on PATH.

What differs from the README, and why:

- Dates (:data:`DATES`): the README's dates are the small world's (2024-01-01 .. 2025-12-31); the
  tiny world has one year (2024-01-01 .. 2024-12-31), so they become tiny days.
- ``ecom run --scale small`` runs as ``--scale tiny`` (:data:`REWRITES`): the small tier takes
  minutes to generate and to train on, too slow for CI; the retailer export likewise.
- ``export`` and ``unset`` lines set the environment of the lines after them (:data:`SHELL`).
- Training runs on a tiny budget (:data:`TINY_BUDGET`, environment overrides).
- ``s3://bucket/...`` is the moto server of ``tests/integration/conftest.py``
  (``ECOM_STORAGE__S3_ENDPOINT_URL``); the batch a line lands is uploaded there first, cut from the
  world the README generated (:func:`_upload_batch`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.config import REPO_ROOT
from pipelines.data.world import TIERS

pytestmark = pytest.mark.integration

README = REPO_ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent

# First word of a README command line (after any VAR=value) that this test does not run, and why.
SKIPPED = {
    "make": "Makefile targets (set-up, the whole suite, UIs, benchmarks); `make run` is `ecom run`, run here",
    "source": "activating the venv: the commands here run with the venv's bin folder first on PATH",
    "dvc": "`dvc repro` drives the same commands through dvc.yaml: tests/integration/test_dvc.py",
    ".venv/bin/python": "the analyst's query snippet (out of scope: a Python one-liner, not a command)",
}

TINY_START = dt.date(2024, 1, 1)  # params.yaml generate.start_date
TINY_LAST_DAY = TINY_START + dt.timedelta(days=TIERS["tiny"].n_days - 1)  # 2024-12-31

# README date -> tiny date. The foundation day and the training day both become the tiny world's
# last day: the batch landed for it then holds the whole world, and training has the year of
# history it needs in the marts built for that day. The replayed day is any day inside the world.
DATES = {
    "2025-01-02": TINY_LAST_DAY.isoformat(),  # land from S3, validate, dbt, audit, report, DAG
    "2025-06-01": "2024-06-01",  # replay one day's batch
    "2025-12-31": TINY_LAST_DAY.isoformat(),  # train, evaluate, score, plan
    "2025-09-25": "2024-07-11",  # the retailer export's last week: the small export's -> the tiny one's
}
# Other rewrites of README text, each with its reason.
REWRITES = {
    "ecom run --scale small": "ecom run --scale tiny",  # the small tier is too slow for CI
    # the small export (200 SKUs x 143 weeks) trains for minutes, the tiny one (40 x 80) for seconds
    "ecom generate --profile retailer": "ecom generate --profile retailer --scale tiny",
}
# The shell's own commands, which set the environment of the lines after them (`$PWD` is the home).
SHELL = {"export", "unset"}

# The training budget of tests/integration/test_dags.py, smaller still: seconds, not minutes.
TINY_BUDGET = {
    "ECOM_FORECAST__EPOCHS": "1",
    "ECOM_FORECAST__MAX_TRAIN_WINDOWS": "1000",
    "ECOM_FORECAST__BACKTEST_FOLDS": "1",
    "ECOM_FORECAST__XGBOOST_ROUNDS": "10",
    "ECOM_FORECAST__XGBOOST_MAX_ROWS": "1000",
    "ECOM_PRICING__XGBOOST_ROUNDS": "30",
    "ECOM_PRICING__DML_FOLDS": "2",
}

# README command (as the README writes it) -> why it fails today, for a failure outside this test's
# reach. Such a line is still run: if it passes, the test fails until it is taken off this list.
EXPECTED_FAILURES: dict[str, str] = {}

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class ReadmeCommand:
    """One command line of a README ``bash`` block (continuation lines joined)."""

    line: int
    text: str

    @property
    def words(self) -> list[str]:
        return _split(self.text)

    @property
    def key(self) -> str:
        """The command without its comment, words single-spaced (what runs; EXPECTED_FAILURES' keys)."""
        return shlex.join(self.words)

    @property
    def env(self) -> dict[str, str]:
        """The ``VAR=value`` words before the command."""
        env = {}
        for word in self.words:
            if not _ASSIGNMENT.match(word):
                break
            name, _, value = word.partition("=")
            env[name] = value
        return env

    @property
    def argv(self) -> list[str]:
        return self.words[len(self.env) :]

    def where(self) -> str:
        return f"README.md line {self.line}: `{self.text.strip()}`"


def _split(text: str) -> list[str]:
    """Shell words, as bash reads them: a backslash before a line break continues the line."""
    return shlex.split(text.replace("\\\n", " "), comments=True)


def readme_commands(text: str) -> list[ReadmeCommand]:
    """Every command of the ``bash`` blocks of a Markdown text, in order; comment lines dropped."""
    commands: list[ReadmeCommand] = []
    fence: str | None = None  # the open block's language, "" for a plain block
    pending, first = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fence = line.strip().removeprefix("```").strip() if fence is None else None
            continue
        if fence != "bash":
            continue
        joined = f"{pending}\n{line}" if pending else line
        first = first or number
        if joined.rstrip().endswith("\\"):  # continued on the next line
            pending = joined
            continue
        try:
            words = _split(joined)
        except ValueError:  # a quote still open: the command goes on on the next line
            pending = joined
            continue
        if words:
            commands.append(ReadmeCommand(first, joined))
        pending, first = "", 0
    assert not pending, f"README.md: a bash block ends inside a command: {pending!r}"
    return commands


def _program(command: ReadmeCommand) -> str:
    return command.argv[0] if command.argv else ""


def _is_skipped(command: ReadmeCommand) -> bool:
    return _program(command) in SKIPPED


def _to_tiny(text: str) -> str:
    for old, new in {**REWRITES, **DATES}.items():
        text = text.replace(old, new)
    return text


def _unmapped(commands: list[ReadmeCommand]) -> list[str]:
    """The commands this file neither runs nor skips, each named by its README line."""
    return [c.where() for c in commands if _program(c) not in {"ecom", *SHELL} and not _is_skipped(c)]


def _apply_shell(command: ReadmeCommand, session: dict[str, str], cwd: Path) -> None:
    """``export A=x B=y`` and ``unset A B`` on the session's environment, as bash would."""
    if command.argv[0] == "export":
        for word in command.argv[1:]:
            name, _, value = word.partition("=")
            session[name] = value.replace("$PWD", str(cwd))
    else:
        for name in command.argv[1:]:
            session.pop(name, None)


def test_every_readme_command_is_run_here_or_skipped_on_purpose() -> None:
    commands = readme_commands(README.read_text())
    ecom = [c for c in commands if _program(c) == "ecom"]
    assert len(ecom) >= 15, [c.where() for c in commands]
    unmapped = _unmapped(commands)
    assert not unmapped, (
        "README commands this test neither runs nor skips; run them (ecom) or add their program to "
        f"SKIPPED in tests/integration/test_readme.py with the reason: {unmapped}"
    )
    # Every date the README's ecom commands use must have a tiny stand-in.
    dates = {d for c in ecom for d in re.findall(r"\d{4}-\d{2}-\d{2}", c.text)}
    assert dates <= set(DATES), f"README dates without a tiny stand-in in DATES: {sorted(dates - set(DATES))}"
    for tiny in DATES.values():
        assert TINY_START <= dt.date.fromisoformat(tiny) <= TINY_LAST_DAY, tiny
    assert set(EXPECTED_FAILURES) <= {c.key for c in ecom}, (
        "EXPECTED_FAILURES names a command the README lacks"
    )


def test_the_parser_joins_continued_lines_and_drops_comments() -> None:
    text = (
        "```bash\n# a comment\nA=1 ecom x --y 'z'   # said\n"
        'python -c "one\n  two"\nmake b \\\n  c\n```\n```\necom not-bash\n```\n'
    )
    commands = readme_commands(text)
    assert [(c.line, c.argv, c.env) for c in commands] == [
        (3, ["ecom", "x", "--y", "z"], {"A": "1"}),
        (4, ["python", "-c", "one\n  two"], {}),
        (6, ["make", "b", "c"], {}),
    ]
    assert _unmapped(commands) == ['README.md line 4: `python -c "one\n  two"`']


def _upload_batch(command: ReadmeCommand, generated: Path, scratch: Path, s3_endpoint: str) -> None:
    """Deliver the batch an S3 line lands, as a daily feed would have: the world's history up to
    the line's ``--date``, cut by ``ecom replay``'s function, under the line's ``s3://`` prefix.

    Not the generated files themselves: ``ecom land --source data/generated --date-from-data``
    landed those already, and the same files are one batch for one date.
    """
    import boto3

    from pipelines.data.replay import replay_batch

    day = dt.date.fromisoformat(command.argv[command.argv.index("--date") + 1])
    replay_batch(generated, scratch, day)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    for uri in (w for w in command.argv if w.startswith("s3://")):
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=bucket)
        for path in sorted(scratch.glob("*.parquet")):
            client.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.name}")


@pytest.mark.slow
def test_every_readme_command_runs_in_readme_order_on_the_tiny_tier(tmp_path: Path, s3_endpoint: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    base_env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ECOM_HOME": str(home),
        "ECOM_GENERATE__SCALE": "tiny",
        "ECOM_STORAGE__S3_ENDPOINT_URL": s3_endpoint,
        **TINY_BUDGET,
    }
    base_env.pop("ECOM_ROLLOUT__STAGE", None)  # the README's runs get the default stage
    failed_as_expected: list[str] = []
    timings: list[str] = []
    session: dict[str, str] = {}
    for readme in readme_commands(README.read_text()):
        if _is_skipped(readme):
            continue
        if _program(readme) in SHELL:
            _apply_shell(readme, session, home)
            continue
        command = ReadmeCommand(readme.line, _to_tiny(readme.key))
        if any(w.startswith("s3://") for w in command.argv):
            _upload_batch(command, home / "data" / "generated", tmp_path / f"s3-{readme.line}", s3_endpoint)
        started = time.perf_counter()
        proc = subprocess.run(
            command.argv,
            cwd=home,
            env={**base_env, **session, **command.env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        timings.append(f"{time.perf_counter() - started:6.1f}s  {' '.join(command.argv)}")
        expected = EXPECTED_FAILURES.get(readme.key)
        if expected and proc.returncode != 0:
            failed_as_expected.append(f"{readme.where()}: {expected}")
            continue
        assert not expected, f"{readme.where()} now passes: take it off EXPECTED_FAILURES"
        assert proc.returncode == 0, (
            f"{readme.where()} failed (exit {proc.returncode}) as `{' '.join(command.argv)}`:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    print("\n".join(timings))
    if failed_as_expected:
        pytest.xfail("; ".join(failed_as_expected))
