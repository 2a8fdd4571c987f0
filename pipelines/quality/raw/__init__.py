"""Validate a landed raw partition and load what passes into ``raw.<table>`` (``ecom validate raw``).

The partition ``data/raw/dt=<D>/`` is the data interval. Each table is validated with its suite
(``expectations/raw/<table>.json``) on a pandas frame; a table with more rows than
``max_rows_per_chunk`` is validated in slices of consecutive rows, so memory and time grow with the
batch, never with the history already in the warehouse. Then batch-level checks run
on small derived frames (``expectations/raw_batch/``): timeliness, the daily_sales grid,
the order_lines/daily_sales reconciliation and the share of rows quarantined.

Outcomes follow each expectation's ``meta.severity``: ``quarantine`` rows are left out of the load
and written to ``quarantine.rejected_rows``; one failed ``block`` rule loads nothing of the
partition and raises :class:`QualityGateError`; ``warn`` is recorded only. Everything is checked
before anything is written; then one transaction replaces the partition's rows in ``raw``
(delete this ``_batch_date``, insert, drop master-data rows a later batch supersedes), its
quarantine rows, and appends ``quality.validation_results``.

The modules: :mod:`.gates` (per-table suites and reference keys), :mod:`.batch` (batch-level
checks), :mod:`.load` (the transaction into ``raw`` and ``quarantine``), :mod:`.validate` (the
order of it all and the messages), :mod:`.run` (the state they share), :mod:`.slices` (working in
slices). Thresholds and channels come from the settings' ``quality`` section.
"""

from pipelines.quality.raw.batch import exclude_keys, units_checksum
from pipelines.quality.raw.load import drop_superseded_rows
from pipelines.quality.raw.run import DAILY_GRAIN_TABLES, REFERENCE_TABLES, suite_parameters
from pipelines.quality.raw.slices import Chunk, plan_chunks, read_ahead, row_slices
from pipelines.quality.raw.validate import RawValidationResult, validate_raw

__all__ = [
    "DAILY_GRAIN_TABLES",
    "REFERENCE_TABLES",
    "Chunk",
    "RawValidationResult",
    "drop_superseded_rows",
    "exclude_keys",
    "plan_chunks",
    "read_ahead",
    "row_slices",
    "suite_parameters",
    "units_checksum",
    "validate_raw",
]
