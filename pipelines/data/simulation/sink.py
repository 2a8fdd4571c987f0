"""Parquet output of the simulation: contract-typed row groups streamed into one file per table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.data.contract import TABLES

__all__ = ["TRUTH_DEMAND_SCHEMA", "ColumnData", "Columns", "ParquetSink", "contract_schema"]

_ARROW = {
    pl.Int64(): pa.int64(),
    pl.Int32(): pa.int32(),
    pl.Float64(): pa.float64(),
    pl.String(): pa.string(),
    pl.Date(): pa.date32(),
    pl.Boolean(): pa.bool_(),
}

Labels = tuple[np.ndarray, tuple[str, ...]]  # (codes, labels) for a string column
ColumnData = np.ndarray | Labels | pa.Array
Columns = dict[str, ColumnData]  # one table's columns, by name


@dataclass
class ParquetSink:
    """Streams row groups of one contract table into a Parquet file."""

    path: Path
    schema: pa.Schema
    rows: int = 0
    _writer: pq.ParquetWriter | None = field(default=None, repr=False)

    def write(self, columns: Columns) -> None:
        arrays = [_to_arrow(columns[f.name], f.type) for f in self.schema]
        n = len(arrays[0])
        if n == 0:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd", compression_level=1)
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=1 << 20)
        self.rows += n

    def close(self) -> None:
        if self._writer is None:  # keep the file valid even when no row was produced
            pq.write_table(self.schema.empty_table(), self.path)
        else:
            self._writer.close()


def _to_arrow(data: ColumnData, typ: pa.DataType) -> pa.Array:
    if isinstance(data, pa.Array):
        return data.cast(typ)
    if isinstance(data, tuple):
        codes, labels = data
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels)).cast(pa.string())
    if typ == pa.date32():
        return pa.array(data.astype(np.int32), pa.int32()).view(pa.date32())
    return pa.array(data).cast(typ)


def _schema(columns: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, typ) for name, typ in columns.items()])


def contract_schema(table: str) -> pa.Schema:
    return _schema({c.name: _ARROW[c.dtype] for c in TABLES[table].columns})


TRUTH_DEMAND_SCHEMA = _schema(
    {
        "date": pa.date32(),
        "sku_id": pa.int64(),
        "channel": pa.string(),
        "expected_demand": pa.float64(),
        "demand": pa.int32(),
        "units_sold": pa.int32(),
    }
)
