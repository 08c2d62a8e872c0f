"""DuckDB in the catalog: the ingest's engine, and parquet tables it writes out of core.

``ingest_engine`` is one DuckDB database per catalog (per run) with a
memory limit and a folder to spill to; the ingest's nodes pass relations over it
from one to the next (``MemoryDataset`` entries, ``copy_mode: assign``).
A published table (``interactions_train``...) is written from such a relation
batch by batch, in the relation's order, as DuckDB streams it out, so its rows
are never in Python's memory whole, and is read back as a pandas DataFrame, which is what
every later pipeline takes.
"""

from __future__ import annotations

import atexit
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq
from kedro.io import AbstractDataset, AbstractVersionedDataset, DatasetError, Version

from reason4rec.data.filtering import MEMORY_LIMIT, READING_MEMORY_LIMIT, quote


class DuckDBEngineDataset(AbstractDataset[None, duckdb.DuckDBPyConnection]):
    """A DuckDB database for one run, on disk in ``temp_directory``: the same connection for every load.

    On disk rather than in memory so that DuckDB can always move a table's blocks
    out of memory: an in-memory database's tables compete with its sorts and joins
    for ``memory_limit`` (5M lines ran out of it writing the rejects). The file is
    removed when the process ends.

    Args:
        memory_limit: DuckDB's ``memory_limit`` (``1GB``): what its tables, sorts and
            joins hold in memory before spilling to ``temp_directory``.
        reading_memory_limit: DuckDB's limit while a pass over the review file
            streams in (``stream_into``), lower because the reader's blocks, parsed
            on every core, are in memory beside it; the whole limit again for the
            statements after (None: ``memory_limit`` throughout).
        temp_directory: where the database file and DuckDB's spill go (created when first loaded).
        threads: DuckDB's worker threads (None: one per core).
    """

    def __init__(
        self,
        memory_limit: str = "1GB",
        reading_memory_limit: str | None = None,
        temp_directory: str = "data/02_intermediate/duckdb_spill",
        threads: int | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._config = {"memory_limit": memory_limit, "temp_directory": temp_directory, **({"threads": threads} if threads else {})}
        self._reading_memory_limit = reading_memory_limit or memory_limit
        if size_in_bytes(self._reading_memory_limit) > size_in_bytes(memory_limit):
            raise DatasetError(f"reading_memory_limit ({reading_memory_limit}) must not exceed memory_limit ({memory_limit})")
        self._connection: duckdb.DuckDBPyConnection | None = None
        self.metadata = metadata

    def load(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            folder = Path(self._config["temp_directory"])
            folder.mkdir(parents=True, exist_ok=True)
            database = Path(tempfile.mkstemp(prefix="ingest-", suffix=".duckdb", dir=folder)[1])
            database.unlink()  # DuckDB creates its own file there
            connection = duckdb.connect(str(database), config=self._config)
            atexit.register(_remove_database, connection, database)
            connection.execute(f"SET VARIABLE {READING_MEMORY_LIMIT} = {quote(self._reading_memory_limit)}")
            connection.execute(f"SET VARIABLE {MEMORY_LIMIT} = {quote(self._config['memory_limit'])}")
            self._connection = connection
        return self._connection

    def save(self, data: None) -> None:
        raise DatasetError("DuckDBEngineDataset is read-only: it is a database connection, not data")

    def _describe(self) -> dict[str, Any]:
        return {**self._config, "reading_memory_limit": self._reading_memory_limit}


def size_in_bytes(size: str) -> int:
    """A memory size as DuckDB writes it (``1GB``, ``600MB``, ``953.6 MiB``, ``512 bytes``) in bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?i?B|bytes)?\s*", size, flags=re.IGNORECASE)
    if not match:
        raise DatasetError(f"not a memory size: {size!r} (expected a number and a unit, as in 600MB or 1GB)")
    number, unit = float(match.group(1)), (match.group(2) or "B").upper()
    base = 1024 if "I" in unit else 1000
    return int(number * base ** "BKMGT".index(unit[0] if unit != "BYTES" else "B"))


def _remove_database(connection: duckdb.DuckDBPyConnection, database: Path) -> None:
    connection.close()
    for path in (database, database.with_name(database.name + ".wal")):
        path.unlink(missing_ok=True)


class DuckDBParquetDataset(AbstractVersionedDataset[duckdb.DuckDBPyRelation, pd.DataFrame]):
    """A local parquet file written from a DuckDB relation out of core, read as pandas.

    DuckDB runs the relation's query (its sorts and joins spill under the
    engine's ``memory_limit``) and streams the result in batches of
    ``batch_rows`` into pyarrow's parquet writer, one row group a batch, so no
    more than a batch is held outside DuckDB's limit (DuckDB's own ``COPY ... TO``
    parquet writer allocates outside its buffer manager, by DuckDB's docs). Not
    measured to be needed on its own: the 20M-line failures ("Ingest at scale" in
    docs/lineage.md) came from queries with two blocking operators, under
    ``COPY`` and under this writer alike, and went away when each statement had one.

    The file is written beside its final name and renamed into place, so a
    version that exists is whole.

    Args:
        filepath: the parquet file (local).
        batch_rows: rows a batch from DuckDB, and a row group of the file.
        save_args: ``pyarrow.parquet.ParquetWriter``'s options (``compression``...).
    """

    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        batch_rows: int = 65_536,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(filepath=PurePosixPath(filepath), version=version, exists_function=os.path.exists)
        if batch_rows < 1:
            raise DatasetError(f"batch_rows must be a positive number of rows, got {batch_rows}")
        self._batch_rows = batch_rows
        self._save_args = save_args or {}
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        return pd.read_parquet(self._get_load_path().as_posix())

    def save(self, data: duckdb.DuckDBPyRelation) -> None:
        if not isinstance(data, duckdb.DuckDBPyRelation):
            raise DatasetError(f"{type(self).__name__} saves a DuckDB relation, got {type(data).__name__}")
        target = Path(self._get_save_path().as_posix())
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        batches = data.to_arrow_reader(self._batch_rows)
        with pq.ParquetWriter(partial, batches.schema, **self._save_args) as writer:
            for batch in batches:
                writer.write_batch(batch)
        partial.replace(target)

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path().as_posix()).exists()
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath.as_posix(), "version": self._version, "batch_rows": self._batch_rows, "save_args": self._save_args}
