"""Working through a table in slices: row ranges, value ranges, and reading the next one ahead."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl


@dataclass(frozen=True)
class Chunk:
    """A slice of a table by the values of one column: ``first..last`` inclusive, or its nulls."""

    label: str
    first: Any = None
    last: Any = None
    null_values: bool = False
    whole: bool = False

    def predicate(self, column: str | None) -> pl.Expr:
        if self.whole or column is None:
            return pl.lit(True)
        if self.null_values:
            return pl.col(column).is_null()
        return pl.col(column).is_between(self.first, self.last)


def plan_chunks(value_counts: pl.DataFrame, max_rows: int) -> list[Chunk]:
    """Slices of consecutive values of one column holding at most ``max_rows`` rows each.

    Args:
        value_counts: Columns ``value`` (nulls allowed) and ``n`` (rows with that value).
        max_rows: Target slice size; a single value with more rows than this is one slice on its own.

    Returns:
        ``[Chunk(whole=True)]`` when everything fits in one slice, else the value ranges (in order)
        plus one slice for the rows without a value, if any.
    """
    total = int(value_counts["n"].sum()) if value_counts.height else 0
    if total <= max_rows:
        return [Chunk("all", whole=True)]
    chunks: list[Chunk] = []
    known = value_counts.filter(pl.col("value").is_not_null()).sort("value")
    first: Any = None
    last: Any = None
    size = 0
    for value, n in known.select("value", "n").iter_rows():
        if first is not None and size + n > max_rows:
            chunks.append(Chunk(f"{first}..{last}", first, last))
            first, size = None, 0
        if first is None:
            first = value
        last, size = value, size + n
    if first is not None:
        chunks.append(Chunk(f"{first}..{last}", first, last))
    if value_counts.filter(pl.col("value").is_null()).height:
        chunks.append(Chunk("null", null_values=True))
    return chunks


def row_slices(rows: int, max_rows: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of consecutive row ranges of at most ``max_rows`` rows covering ``rows``."""
    return [(start, min(max_rows, rows - start)) for start in range(0, rows, max_rows)] or [(0, 0)]


_DONE = object()
T = TypeVar("T")


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items`` in order, each next one produced in a thread while the caller uses this one.

    GX's pandas checks keep one core busy; reading the next slice and converting it for GX (polars
    and Arrow, which release the GIL) use the other meanwhile. Nothing else touches ``items``.
    """
    source = iter(items)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, source, _DONE)
        while (item := pending.result()) is not _DONE:
            pending = pool.submit(next, source, _DONE)
            yield item
