"""Expectation suites as reviewable files: ``expectations/<stage>/<table>.json``.

Each file is a Great Expectations 1.x suite (``name``, ``meta``, ``expectations``); every expectation
is ``{"type", "kwargs", "meta": {"severity", "dimension", "description"}}``. Values known only at
run time (the batch date, thresholds, value sets) are GX suite parameters, ``{"$PARAMETER": "name"}``.

Stages:

- ``raw``: one suite per landed contract table, validated row by row on the landed Parquet.
- ``raw_batch``: batch-level rules over frames derived from the whole batch (timeliness, the
  daily_sales grid, the order_lines/daily_sales reconciliation, the share of rows quarantined).
- ``marts``: one suite per published mart, validated on ``build_marts`` before publishing.

``meta.severity`` says what a failure does: ``quarantine`` removes the failing rows from the load
(row-level rules only), ``block`` stops the load or the publish, ``warn`` is recorded only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import REPO_ROOT

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = [
    "EXPECTATIONS_DIR",
    "STAGES",
    "Dimension",
    "Reference",
    "Rule",
    "Severity",
    "SuiteError",
    "SuiteSpec",
    "list_suites",
    "load_suite",
    "read_suite",
]

EXPECTATIONS_DIR = REPO_ROOT / "expectations"
STAGES = ("raw", "raw_batch", "marts")

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
_PARAM_KEY = "$PARAMETER"
# Expectation kwargs that name columns of the validated frame.
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)


class SuiteError(ValueError):
    """A suite file is missing or invalid."""


class Severity(StrEnum):
    """What a failing expectation does to the data it guards."""

    BLOCK = "block"  # the partition is not loaded / the marts are not published
    QUARANTINE = "quarantine"  # the failing rows are removed from the load and kept for inspection
    WARN = "warn"  # recorded only

    @property
    def gx_severity(self) -> str:
        # GX 1.x has its own severity field (critical/warning/info) that Data Docs shows; keep the two
        # in step so the docs read the same as our policy.
        return {"block": "critical", "quarantine": "warning", "warn": "info"}[self.value]


class Dimension(StrEnum):
    ACCURACY = "accuracy"
    COMPLETENESS = "completeness"
    TIMELINESS = "timeliness"


@dataclass(frozen=True)
class Reference:
    """A referential-integrity rule: ``column`` of this table exists in ``table.key``.

    The suite checks a derived boolean column ``_<column>_in_<table>`` (null when ``column`` is
    null) against ``[true]``; the runner fills it from the reference keys before validating.
    """

    column: str
    table: str
    key: str

    @property
    def derived_column(self) -> str:
        return f"_{self.column}_in_{self.table}"


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite, with our policy fields lifted out of its ``meta``."""

    name: str
    type: str
    kwargs: dict[str, Any]
    severity: Severity
    dimension: Dimension
    description: str
    row_level: bool
    reference: Reference | None = None

    @property
    def columns(self) -> list[str]:
        """Columns of the validated frame the rule reads, in kwargs order."""
        cols = [self.kwargs[k] for k in _COLUMN_KWARGS if isinstance(self.kwargs.get(k), str)]
        for k in _COLUMN_LIST_KWARGS:
            cols += list(self.kwargs.get(k) or [])
        return cols

    @property
    def source_columns(self) -> list[str]:
        """Columns of the table itself the rule is about (the referenced column for derived ones)."""
        if self.reference is not None:
            return [self.reference.column]
        return self.columns

    @property
    def parameters(self) -> set[str]:
        return {v[_PARAM_KEY] for v in self.kwargs.values() if isinstance(v, dict) and _PARAM_KEY in v}


@dataclass(frozen=True)
class SuiteSpec:
    """A parsed suite file."""

    stage: str
    table: str
    path: Path
    meta: dict[str, Any]
    rules: tuple[Rule, ...]

    @property
    def name(self) -> str:
        return f"{self.stage}.{self.table}"

    @property
    def columns(self) -> set[str]:
        """Every frame column any rule reads."""
        return {c for r in self.rules for c in r.columns}

    @property
    def parameters(self) -> set[str]:
        return {p for r in self.rules for p in r.parameters}

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"suite {self.name} has no rule {name!r}")

    def to_gx(self) -> gx.ExpectationSuite:
        """A fresh GX suite (not bound to any context) holding this suite's expectations.

        Each expectation's ``meta.rule`` carries the rule name, so results can be matched back to
        rules: GX returns results in its own order, not the suite's.
        """
        import great_expectations as gx

        # Built one by one rather than by ExpectationSuite(expectations=[dicts]): the constructor logs
        # and silently drops an invalid expectation, and add_expectation_configuration upserts by
        # domain, so two rules on one column would overwrite each other.
        return gx.ExpectationSuite(
            name=self.name,
            expectations=[_to_gx_expectation(self, r) for r in self.rules],
            meta=dict(self.meta),
        )


def load_suite(stage: str, table: str) -> gx.ExpectationSuite:
    """The GX suite defined in ``expectations/<stage>/<table>.json``.

    Raises:
        SuiteError: The file is missing or invalid (unknown expectation type, missing severity...).
    """
    return read_suite(stage, table).to_gx()


def list_suites(stage: str) -> list[str]:
    """Table names with a suite file in ``expectations/<stage>/``, sorted."""
    _check_stage(stage)
    folder = EXPECTATIONS_DIR / stage
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def read_suite(stage: str, table: str) -> SuiteSpec:
    """Parse and check a suite file; cached (the files are part of the code)."""
    _check_stage(stage)
    return _read_suite(stage, table)


@cache
def _read_suite(stage: str, table: str) -> SuiteSpec:
    path = EXPECTATIONS_DIR / stage / f"{table}.json"
    if not path.is_file():
        known = ", ".join(list_suites(stage)) or "none"
        raise SuiteError(f"no suite file {path} (suites for stage {stage}: {known})")
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from exc
    where = str(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SuiteError(f"{where}: expected an object with an 'expectations' list")
    if doc.get("name") != f"{stage}.{table}":
        raise SuiteError(f"{where}: 'name' must be '{stage}.{table}', found {doc.get('name')!r}")
    meta = doc.get("meta") or {}
    rules: list[Rule] = []
    for i, raw in enumerate(doc["expectations"]):
        rules.append(_parse_rule(raw, f"{where}: expectation {i}"))
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise SuiteError(f"{where}: two expectations are both named {r.name!r}; give one a meta.rule")
        seen.add(r.name)
    spec = SuiteSpec(stage, table, path, meta, tuple(rules))
    for r in spec.rules:
        _to_gx_expectation(spec, r)  # fails now, with the file named, if GX rejects the config
    return spec


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise SuiteError(f"{where}: expected an object with a string 'type'")
    type_, kwargs, meta = raw["type"], raw.get("kwargs") or {}, raw.get("meta") or {}
    if not isinstance(kwargs, dict) or not isinstance(meta, dict):
        raise SuiteError(f"{where} ({type_}): 'kwargs' and 'meta' must be objects")
    try:
        severity = Severity(meta.get("severity"))
    except ValueError as exc:
        raise SuiteError(
            f"{where} ({type_}): meta.severity must be one of {[s.value for s in Severity]}, "
            f"found {meta.get('severity')!r}"
        ) from exc
    try:
        dimension = Dimension(meta.get("dimension"))
    except ValueError as exc:
        raise SuiteError(
            f"{where} ({type_}): meta.dimension must be one of {[d.value for d in Dimension]}, "
            f"found {meta.get('dimension')!r}"
        ) from exc
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        raise SuiteError(f"{where} ({type_}): meta.description is required")
    reference = None
    if "reference" in meta:
        ref = meta["reference"]
        if not isinstance(ref, dict) or not all(
            isinstance(ref.get(k), str) for k in ("column", "table", "key")
        ):
            raise SuiteError(f"{where} ({type_}): meta.reference needs string 'column', 'table' and 'key'")
        reference = Reference(ref["column"], ref["table"], ref["key"])
        if kwargs.get("column") != reference.derived_column or kwargs.get("value_set") != [True]:
            raise SuiteError(
                f"{where} ({type_}): a reference rule checks column {reference.derived_column!r} "
                "against value_set [true]"
            )
    row_level = _is_row_level(type_, where)
    if severity is Severity.QUARANTINE and not row_level:
        raise SuiteError(
            f"{where} ({type_}): severity 'quarantine' needs a row-level (map) expectation, "
            "one that can name the failing rows"
        )
    name = meta.get("rule") or _rule_name(type_, kwargs)
    return Rule(name, type_, dict(kwargs), severity, dimension, description.strip(), row_level, reference)


def _rule_name(type_: str, kwargs: dict[str, Any]) -> str:
    cols = [kwargs[k] for k in _COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
    for k in _COLUMN_LIST_KWARGS:
        cols += list(kwargs.get(k) or [])
    return f"{type_}({', '.join(cols)})" if cols else type_


def _is_row_level(type_: str, where: str) -> bool:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        impl = get_expectation_impl(type_)
    except Exception as exc:  # GX raises its own ExpectationNotFoundError
        raise SuiteError(f"{where}: unknown expectation type {type_!r}") from exc
    return issubclass(impl, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation)


def _to_gx_expectation(spec: SuiteSpec, rule: Rule) -> Any:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    meta = {
        "rule": rule.name,
        "severity": rule.severity.value,
        "dimension": rule.dimension.value,
        "description": rule.description,
    }
    if rule.reference is not None:
        meta["reference"] = {
            "column": rule.reference.column,
            "table": rule.reference.table,
            "key": rule.reference.key,
        }
    try:
        return ExpectationConfiguration(
            type=rule.type,
            kwargs=dict(rule.kwargs),
            meta=meta,
            description=f"[{rule.severity.value}] {rule.description}",
            severity=rule.severity.gx_severity,
        ).to_domain_obj()
    except Exception as exc:  # pydantic/GX validation errors: name the file and the rule
        raise SuiteError(f"{spec.path}: {rule.name}: GX rejects this expectation: {exc}") from exc


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise SuiteError(f"unknown suite stage {stage!r}; known: {', '.join(STAGES)}")
