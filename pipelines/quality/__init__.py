"""Data quality gates: validate raw partitions on load, audit and publish the marts.

See docs/data-quality.md for the rules, the severity policy and where results land. Importing
this package does not import Great Expectations; the functions do, when called.
"""

from pipelines.quality.engine import GateFailure, QualityError, QualityGateError
from pipelines.quality.marts import MartsValidationResult, publish_marts, validate_marts
from pipelines.quality.raw import RawValidationResult, validate_raw
from pipelines.quality.suites import Severity, SuiteError, list_suites, load_suite

__all__ = [
    "GateFailure",
    "MartsValidationResult",
    "QualityError",
    "QualityGateError",
    "RawValidationResult",
    "Severity",
    "SuiteError",
    "list_suites",
    "load_suite",
    "publish_marts",
    "validate_marts",
    "validate_raw",
]
