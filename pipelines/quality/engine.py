"""Run suites with Great Expectations on dataframes and turn the results into outcomes.

One ephemeral GX context per validation call: a pandas datasource with one whole-dataframe batch
definition per suite, a ValidationDefinition and a Checkpoint per suite, results kept in a
filesystem store, and the project's Data Docs site (``reports/data_docs``) rebuilt once at the end
of the call for that call's results, the files GX links from CDNs served from the site itself
(:mod:`pipelines.quality.data_docs`) so that it renders offline. GX does not validate DuckDB
through SQL here (see /work/shared/STACK.md), so every check runs on a dataframe holding one data
interval, or one slice of it.

Every frame carries a ``_row`` column (1-based row number within the validated source) so that
row-level results name their rows: the checkpoint asks for ``result_format`` COMPLETE with
``unexpected_index_column_names=["_row"]``, and ``unexpected_index_list`` comes back as
``[{"_row": 17, "units": -3}, ...]``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.quality.suites import Rule, Severity, SuiteSpec

__all__ = [
    "ROW",
    "GateFailure",
    "Outcome",
    "QualityError",
    "QualityGateError",
    "SuiteRunner",
    "Verdict",
    "classify",
    "combine",
    "jsonable",
    "new_run_id",
    "to_gx_frame",
]

log = logging.getLogger(__name__)

ROW = "_row"
SITE_NAME = "ecom_quality"  # "local_site" is taken in an ephemeral context
MAX_SAMPLES = 5
# Failing rows kept per expectation in the stored GX result (and its Data Docs page); the
# quarantine table has them all.
MAX_STORED_ROWS = 1_000
_SAFE_RE = re.compile(r"[^A-Za-z0-9_.=-]+")
_BOUND_KWARGS = ("min_value", "max_value", "value_set", "strict_min", "strict_max", "or_equal", "mostly")


class QualityError(Exception):
    """A validation could not run (no landed partition, a suite that does not fit its table...)."""


@dataclass(frozen=True)
class GateFailure:
    """One blocking expectation failure, as reported to whoever runs the gate."""

    table: str
    expectation: str
    dimension: str
    failing: int
    checked: int | None
    description: str
    samples: tuple[dict[str, Any], ...] = ()
    row_level: bool = True

    def __str__(self) -> str:
        if self.row_level:
            of = f" of {self.checked:,}" if self.checked is not None else ""
            outcome = f"failed for {self.failing:,}{of} row(s)"
        else:
            outcome = "failed"
        lines = [f"{self.table}: {self.expectation} [{self.dimension}] {outcome}: {self.description}"]
        lines += [f"    sample: {_show_sample(s)}" for s in self.samples[:MAX_SAMPLES]]
        return "\n".join(lines)

    def one_line(self, samples: int = 2) -> str:
        """The failure on one line, with at most ``samples`` samples."""
        first = str(self).splitlines()[0]
        shown = "; ".join(_show_sample(s) for s in self.samples[:samples])
        return f"{first}; e.g. {shown}" if shown else first


class QualityGateError(QualityError):
    """A blocking expectation failed: nothing was loaded or published.

    Attributes:
        failures: Every blocking failure, each naming the table, the expectation, the failing count
            and up to five sample rows.
    """

    def __init__(self, message: str, failures: Sequence[GateFailure]) -> None:
        super().__init__(message)
        self.message = message
        self.failures = list(failures)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  - {f}" for f in self.failures)])


@dataclass
class Outcome:
    """The result of one rule on one validated frame (a table, a slice of it, or a derived frame).

    Attributes:
        table: Suite table (``daily_sales``; for batch-level checks the check's name).
        rule: The rule from the suite file.
        success: GX's verdict.
        element_count: Rows checked, where GX reports it.
        unexpected_count: Rows failing, where GX reports it (None for aggregate rules).
        rows: ``_row`` of every failing row (row-level rules only).
        samples: Up to five failing rows (or the observed value for aggregate rules).
        observed: GX's ``observed_value`` for aggregate rules.
        error: The exception GX caught while computing the rule, if any.
        chunk: Which slice of the table this was ("" for a whole frame).
        kwargs: The rule's kwargs with suite parameters filled in, as GX evaluated them.
    """

    table: str
    rule: Rule
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    rows: list[int] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    observed: Any = None
    error: str | None = None
    chunk: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def failing(self) -> int:
        if self.unexpected_count is not None:
            return self.unexpected_count
        return 0 if self.success else 1

    def gate_failure(self) -> GateFailure:
        description = self.rule.description
        bounds = {k: v for k, v in self.kwargs.items() if k in _BOUND_KWARGS}
        if bounds:
            # The evaluated parameters: "at least min_rows" means little without the number.
            description += " (" + ", ".join(f"{k}={v}" for k, v in bounds.items()) + ")"
        if self.error:
            description += f" (the check itself failed: {self.error})"
        samples = self.samples or ([{"observed_value": self.observed}] if self.observed is not None else [])
        return GateFailure(
            self.table,
            self.rule.name,
            self.rule.dimension.value,
            self.failing,
            self.element_count,
            description,
            tuple(samples[:MAX_SAMPLES]),
            self.rule.row_level,
        )


@dataclass
class Verdict:
    """What a set of outcomes means, going by each rule's severity.

    Attributes:
        blocking: Failed ``block`` rules, and ``quarantine`` rules that could not name their rows
            (GX raised, or returned no row list): the data cannot be loaded or published.
        quarantine: ``table -> rule name -> failing _row numbers`` of failed ``quarantine`` rules.
        warnings: Failed ``warn`` rules: recorded only.
    """

    blocking: list[Outcome] = field(default_factory=list)
    quarantine: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    warnings: list[Outcome] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)


def classify(outcomes: Iterable[Outcome]) -> Verdict:
    """Map each failed outcome to block, quarantine or warn (successes change nothing)."""
    verdict = Verdict()
    for o in outcomes:
        if o.success:
            continue
        if o.severity is Severity.BLOCK:
            verdict.blocking.append(o)
        elif o.severity is Severity.QUARANTINE:
            if o.error is not None or not o.rows:
                # Without the failing rows there is nothing to quarantine, and loading the rest
                # would load the bad rows too.
                verdict.blocking.append(o)
            else:
                by_rule = verdict.quarantine.setdefault(o.table, {})
                by_rule.setdefault(o.rule.name, []).extend(o.rows)
        else:
            verdict.warnings.append(o)
    return verdict


def combine(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """One outcome per (table, rule): slices of a table added up (counts summed, success if all passed)."""
    merged: dict[tuple[str, str], Outcome] = {}
    for o in outcomes:
        key = (o.table, o.rule.name)
        m = merged.get(key)
        if m is None:
            merged[key] = Outcome(
                o.table,
                o.rule,
                o.success,
                o.element_count,
                o.unexpected_count,
                list(o.rows),
                list(o.samples),
                o.observed,
                o.error,
                o.chunk,
                dict(o.kwargs),
            )
            continue
        m.success = m.success and o.success
        m.element_count = _add(m.element_count, o.element_count)
        m.unexpected_count = _add(m.unexpected_count, o.unexpected_count)
        m.rows.extend(o.rows)
        m.samples = (m.samples + o.samples)[:MAX_SAMPLES]
        if not o.success and o.observed is not None:
            m.observed = o.observed
        m.error = m.error or o.error
        m.chunk = "*"
    return list(merged.values())


class SuiteRunner:
    """Validates dataframes against suites in one ephemeral GX context and keeps the Data Docs site.

    Validation results are kept on disk (``results_dir``), not in the ephemeral context's memory:
    the site's index builder deletes every page whose result its context does not know, so with an
    in-memory store each call would wipe the pages of every earlier call (raw and marts included).
    """

    def __init__(self, docs_dir: Path, results_dir: Path, *, index_limit: int = 300) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX md5-hashes every frame under 1 GB only to label its batch ("pandas_data_fingerprint");
        # for 2 M-row slices that was a quarter of the raw validation's GX time. Results name the
        # run, table and slice instead.
        pandas_execution_engine.HASH_THRESHOLD = 0

        self.docs_dir = docs_dir
        docs_dir.mkdir(parents=True, exist_ok=True)
        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        # GX draws tqdm bars on stderr for every metric computation; they would flood the CLI.
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._context.add_store(
            "ecom_validation_results",
            {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(results_dir),
                },
            },
        )
        self._context.validation_results_store_name = "ecom_validation_results"
        self._context.add_data_docs_site(
            site_name=SITE_NAME,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                # The index loads each listed result; bounding it keeps a build's cost independent of
                # how many runs the site has seen.
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": index_limit,
                },
            },
        )
        self._datasource = self._context.data_sources.add_pandas("ecom")
        self._checkpoints: dict[str, Any] = {}
        self._built: list[Any] = []
        self._suites_used: set[str] = set()
        # Every suite is known to the context so that building the index keeps every suite's page.
        from pipelines.quality.suites import STAGES, list_suites, read_suite

        for stage in STAGES:
            for table in list_suites(stage):
                self._context.suites.add(read_suite(stage, table).to_gx())

    @classmethod
    def for_reports(cls, reports_dir: Path) -> SuiteRunner:
        """Data Docs in ``reports/data_docs``, GX results in ``reports/gx_validation_results``."""
        return cls(reports_dir / "data_docs", reports_dir / "gx_validation_results")

    @property
    def index_path(self) -> Path:
        return self.docs_dir / "index.html"

    def run(
        self,
        suite: SuiteSpec,
        frame: Any,
        parameters: Mapping[str, Any],
        run_name: str,
        *,
        chunk: str = "",
    ) -> list[Outcome]:
        """Validate a pandas frame (with a ``_row`` column) against ``suite``; one outcome per rule.

        Raises:
            QualityError: The frame lacks a column the suite names, or a parameter is not supplied.
        """
        from great_expectations.core.run_identifier import RunIdentifier

        missing = sorted(suite.columns - set(frame.columns))
        if missing:
            # GX would report each such expectation as a silent failure with an error buried in
            # exception_info; say it plainly instead.
            raise QualityError(
                f"suite {suite.name} ({suite.path.name}) names column(s) {missing} that the "
                f"validated data does not have (it has: {', '.join(c for c in frame.columns if c != ROW)})"
            )
        unknown = sorted(suite.parameters - set(parameters))
        if unknown:
            raise QualityError(f"suite {suite.name} needs parameter(s) {unknown}, not supplied")
        checkpoint = self._checkpoint(suite)
        result = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={k: v for k, v in parameters.items() if k in suite.parameters},
            run_id=RunIdentifier(run_name=_SAFE_RE.sub("_", run_name)),
        )
        self._built += list(result.run_results)
        self._suites_used.add(suite.name)
        outcomes: list[Outcome] = []
        for key, validation in result.run_results.items():
            for r in validation.results:
                rule = suite.rule(r.expectation_config.meta["rule"])
                outcomes.append(_outcome(suite.table, rule, r, frame, chunk))
            if _truncate_row_lists(validation):
                # The rows are taken; what is kept on disk (and rendered) need not list millions.
                self._context.validation_results_store.set(key, validation)
        return outcomes

    def build_docs(self) -> Path:
        """Render the pages of this call's validations and suites, and the index, once.

        UpdateDataDocsAction on each Checkpoint would rebuild the index after every checkpoint run
        (20 to 40 runs a call); one build at the end renders the same pages.
        """
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        from pipelines.quality.data_docs import AssetsMissingError, localise_site

        ids = [*self._built, *(ExpectationSuiteIdentifier(name=n) for n in sorted(self._suites_used))]
        started = time.time()
        self._context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=ids)
        # Only the pages this build wrote (coarse file-system clocks: a second's slack); older
        # pages were localised by the build that wrote them.
        pages = [p for p in self.docs_dir.rglob("*.html") if p.stat().st_mtime >= started - 1]
        try:
            localise_site(self.docs_dir, pages)
        except AssetsMissingError as exc:
            log.warning("%s; the Data Docs load their scripts and styles from CDNs", exc)
        return self.index_path

    def _checkpoint(self, suite: SuiteSpec) -> Any:
        gx = self._gx
        if suite.name in self._checkpoints:
            return self._checkpoints[suite.name]
        asset = self._datasource.add_dataframe_asset(suite.name)
        batch = asset.add_batch_definition_whole_dataframe("interval")
        definition = self._context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=self._context.suites.get(suite.name))
        )
        # COMPLETE (every failing row) only where rows get quarantined; elsewhere SUMMARY's 20
        # partial rows are enough for samples, and a failure on millions of rows stays small.
        complete = any(r.severity is Severity.QUARANTINE for r in suite.rules)
        checkpoint = self._context.checkpoints.add(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=[definition],
                actions=[],
                result_format={
                    "result_format": "COMPLETE" if complete else "SUMMARY",
                    "unexpected_index_column_names": [ROW],
                    "return_unexpected_index_query": False,
                },
            )
        )
        self._checkpoints[suite.name] = checkpoint
        return checkpoint


def new_run_id(stage: str, day: dt.date) -> str:
    """``<stage>_<day>_<utc time>_<random>``: sortable, unique, and safe in a file name."""
    now = dt.datetime.now(dt.UTC)
    return f"{stage}_{day:%Y%m%d}_{now:%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"


def to_gx_frame(frame: Any) -> Any:
    """A polars frame as the pandas frame GX validates fastest.

    GX's pandas ``column_values.between`` is vectorised only for int64/float64 and datetime64[ns]
    columns; int32 and datetime64[ms] (what polars and Arrow hand over) fall back to a Python call
    per value, an order of magnitude slower.
    """
    import polars as pl

    casts = {}
    for name, dtype in frame.schema.items():
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            casts[name] = pl.Datetime("ns")
        elif dtype.is_integer():
            casts[name] = pl.Int64
        elif dtype == pl.Float32 or isinstance(dtype, pl.Decimal):
            # DuckDB sums and literals come back as DECIMAL: objects in pandas, compared one by one.
            casts[name] = pl.Float64
    return frame.cast(casts).to_pandas()


def _outcome(table: str, rule: Rule, r: Any, frame: Any, chunk: str) -> Outcome:
    res = r.result or {}
    error = _exception_message(r.exception_info)
    rows: list[int] = []
    samples: list[dict[str, Any]] = []
    if rule.row_level and not r.success:
        index_list = res.get("unexpected_index_list")
        if index_list is None and rule.severity is Severity.QUARANTINE and error is None:
            error = "GX returned no unexpected_index_list for a row-level rule"
        rows = [int(item[ROW]) for item in index_list or []]
        shown = rows or [int(item[ROW]) for item in res.get("partial_unexpected_index_list") or []]
        if shown:
            # Whole rows, not only the checked columns, so a reader can see what was wrong.
            picked = frame[frame[ROW].isin(shown[:MAX_SAMPLES])]
            samples = [jsonable(rec) for rec in picked.to_dict(orient="records")]
    return Outcome(
        table=table,
        rule=rule,
        success=bool(r.success),
        element_count=_int_or_none(res.get("element_count")),
        unexpected_count=_int_or_none(res.get("unexpected_count")),
        rows=rows,
        samples=samples,
        observed=jsonable(res.get("observed_value")),
        error=error,
        chunk=chunk,
        kwargs={k: jsonable(v) for k, v in (r.expectation_config.kwargs or {}).items() if k != "batch_id"},
    )


def _truncate_row_lists(validation: Any) -> bool:
    truncated = False
    for r in validation.results:
        res = r.result or {}
        for name in ("unexpected_index_list", "unexpected_list"):
            values = res.get(name)
            if isinstance(values, list) and len(values) > MAX_STORED_ROWS:
                res[name] = values[:MAX_STORED_ROWS]
                truncated = True
    return truncated


def _exception_message(info: Any) -> str | None:
    # GX 1.x reports a failed metric in one of two shapes: flat {"raised_exception": ...} or keyed by
    # MetricConfigurationID -> {"raised_exception": ..., "exception_message": ...}.
    if not info:
        return None
    if isinstance(info, dict) and "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    if isinstance(info, dict):
        for value in info.values():
            if isinstance(value, dict) and value.get("raised_exception"):
                return str(value.get("exception_message"))
    return None


def jsonable(value: Any) -> Any:
    """Plain JSON-ready values from numpy/pandas ones (dates as ISO strings, NaN/NaT as None)."""
    import decimal

    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        # pandas holds dates as midnight timestamps; show them as the dates they are.
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else jsonable(pd.Timestamp(value).to_pydatetime())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return str(value)


def _show_sample(sample: Mapping[str, Any]) -> str:
    return json.dumps(sample, default=str, ensure_ascii=False)


def _add(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
