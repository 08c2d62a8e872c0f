"""Readers for public review dumps: Amazon (2014, 2018, 2023 releases) and Yelp.

A dump is read in two passes, each a stream of Arrow record batches (one per
block of lines), so neither pass holds the file, nor what it keeps, in memory:

1. ``ReviewDump.scan`` gives one row per input line with the ids, rating,
   timestamp and whether the review text is blank, never the text itself.
   Cleaning, the time window and the k-core run on this table, in DuckDB
   (:mod:`reason4rec.data.filtering`).
2. ``ReviewDump.texts`` reads the file again and gives the review text of the
   lines that survived, and only those; ``ReviewDump.titles`` the items' titles.

Both passes parse blocks of lines with pyarrow's JSON reader. A block it cannot
take whole (a malformed line, bad UTF-8, a field of an unexpected type, two
objects on one line) is parsed again line by line with :mod:`json`, so a bad
line costs only its own block's speed. A line that cannot be read is not
dropped: it comes back with ``reject_reason`` set, for ``ingest_rejects``.
Only a file that cannot be read at all (missing, truncated or corrupt
compression) is an error.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import io
import json
import logging
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

logger = logging.getLogger(__name__)

SCAN_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("item_id", pa.string()), ("rating", pa.float64()), ("timestamp", pa.float64()), ("review_blank", pa.bool_()),
     ("source_file", pa.string()), ("line_number", pa.int64()), ("reject_reason", pa.string()), ("reject_detail", pa.string())]
)
TEXT_SCHEMA = pa.schema([("line_number", pa.int64()), ("review", pa.string())])
TITLE_SCHEMA = pa.schema([("item_id", pa.string()), ("title", pa.string()), ("line_number", pa.int64())])
TITLE_BATCH_ROWS = 100_000
BLOCK_BYTES = 16 << 20
# pyarrow parses a block in chunks of this size on every core; a longer line sends its block to the line-by-line path.
PARSE_CHUNK_BYTES = 4 << 20


class ReviewFileError(RuntimeError):
    """A review or metadata file is missing or cannot be read to its end."""


def iter_blocks(path: str | Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_line_number, block)`` of whole lines from a plain, gzip, bz2 or xz file.

    A block holds complete lines only (the last one ends the file or a newline).
    A truncated or corrupt compressed stream raises ``ReviewFileError`` naming
    the file and the complete lines read, rather than ending quietly.
    """
    path = Path(path)
    if not path.is_file():
        raise ReviewFileError(f"Review file not found: {path} (expected a JSON-lines file, plain or compressed)")
    opener: Callable[..., Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix, open)
    lines_read, pending = 0, b""
    try:
        with opener(path, "rb") as handle:
            while chunk := handle.read(block_bytes):
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    pending += chunk
                    continue
                block, pending = pending + chunk[: cut + 1], chunk[cut + 1 :]
                yield lines_read + 1, block
                lines_read += block.count(b"\n")
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as error:
        raise ReviewFileError(f"{path} is truncated or corrupt: read {lines_read} complete lines before: {error}") from error
    if pending:
        yield lines_read + 1, pending


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_bytes)`` of every line (see ``iter_blocks``)."""
    for first, block in iter_blocks(path):
        lines = block.split(b"\n")
        if block.endswith(b"\n"):
            lines.pop()
        yield from enumerate(lines, start=first)


def parse_line(raw: bytes) -> tuple[dict | None, str | None, str] | None:
    """``(record, reject_reason, detail)`` for one line; ``None`` for a blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, "invalid_utf8", f"{error}"
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        return None, "malformed_line", f"{type(error).__name__}: {text[:120]!r}"
    if not isinstance(record, dict):
        return None, "malformed_line", f"not an object: {text[:120]!r}"
    return record, None, ""


@dataclass(frozen=True)
class DumpFormat:
    """How one release's JSON fields map to the common columns.

    ``fields`` are the JSON fields read (and their types, for the block parser);
    ``columns`` maps a parsed block to the common columns; ``record_columns``
    does the same for one ``json.loads`` record (the line-by-line path).
    Both paths must agree on every line the block parser accepts.
    """

    fields: pa.Schema
    columns: Callable[[pa.Table], dict[str, Any]]
    record_columns: Callable[[dict], dict[str, Any]]


def _amazon_columns(table: pa.Table) -> dict[str, Any]:
    """2014/2018 lines (``reviewerID``/``asin``) and 2023 lines (``user_id``/``parent_asin``), per row."""
    old = pc.or_(pc.is_valid(table["reviewerID"]), pc.is_valid(table["overall"]))
    parent = table["parent_asin"]
    item_2023 = pc.if_else(pc.and_(pc.is_valid(parent), pc.not_equal(parent, "")), parent, table["asin"])
    return {
        "user_id": pc.if_else(old, table["reviewerID"], table["user_id"]),
        "item_id": pc.if_else(old, table["asin"], item_2023),
        "rating": pc.if_else(old, table["overall"], table["rating"]),
        "review": pc.if_else(old, table["reviewText"], table["text"]),
        "timestamp": pc.if_else(old, table["unixReviewTime"], pc.divide(table["timestamp"], 1000)),
    }


def _amazon_record(record: dict) -> dict[str, Any]:
    if "reviewerID" in record or "overall" in record:
        return {
            "user_id": record.get("reviewerID"),
            "item_id": record.get("asin"),
            "rating": record.get("overall"),
            "review": record.get("reviewText"),
            "timestamp": record.get("unixReviewTime"),
        }
    millis = record.get("timestamp")
    return {
        "user_id": record.get("user_id"),
        "item_id": record.get("parent_asin") or record.get("asin"),
        "rating": record.get("rating"),
        "review": record.get("text"),
        "timestamp": millis // 1000 if isinstance(millis, int) else millis,
    }


def _yelp_timestamp(date: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(date).replace(tzinfo=timezone.utc).timestamp())
    except (TypeError, ValueError):
        return None


def _yelp_columns(table: pa.Table) -> dict[str, Any]:
    dates = table["date"]
    parsed = pc.cast(pc.strptime(dates, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True), pa.int64())
    if pc.sum(pc.and_(pc.is_null(parsed), pc.is_valid(dates))).as_py():
        # Dates in another ISO form: the record path's parser, for those rows only.
        parsed = pa.array([p if p is not None else _yelp_timestamp(d) for p, d in zip(parsed.to_pylist(), dates.to_pylist())], pa.int64())
    return {"user_id": table["user_id"], "item_id": table["business_id"], "rating": table["stars"], "review": table["text"], "timestamp": parsed}


def _yelp_record(record: dict) -> dict[str, Any]:
    return {
        "user_id": record.get("user_id"),
        "item_id": record.get("business_id"),
        "rating": record.get("stars"),
        "review": record.get("text"),
        "timestamp": _yelp_timestamp(record.get("date")),
    }


FORMATS = {
    "amazon": DumpFormat(
        pa.schema(
            [("reviewerID", pa.string()), ("asin", pa.string()), ("overall", pa.float64()), ("reviewText", pa.string()), ("unixReviewTime", pa.int64()),
             ("user_id", pa.string()), ("parent_asin", pa.string()), ("rating", pa.float64()), ("text", pa.string()), ("timestamp", pa.int64())]
        ),
        _amazon_columns,
        _amazon_record,
    ),
    "yelp": DumpFormat(
        pa.schema([("user_id", pa.string()), ("business_id", pa.string()), ("stars", pa.float64()), ("text", pa.string()), ("date", pa.string())]),
        _yelp_columns,
        _yelp_record,
    ),
}


def _non_blank_lines(block: bytes) -> np.ndarray:
    """Offsets (from 0) of the block's lines that hold something besides ASCII whitespace."""
    return np.asarray([offset for offset, line in enumerate(block.split(b"\n")) if line.strip()], dtype=np.int64)


def _parse_block(block: bytes, fmt: DumpFormat) -> tuple[pa.Table, np.ndarray] | None:
    """The block parsed whole by pyarrow: its common columns and line offsets, or
    ``None`` when any line needs the line-by-line path."""
    lines = _non_blank_lines(block)
    try:
        block.decode("utf-8")
        table = pa_json.read_json(
            io.BytesIO(block),
            read_options=pa_json.ReadOptions(use_threads=True, block_size=PARSE_CHUNK_BYTES),
            parse_options=pa_json.ParseOptions(explicit_schema=fmt.fields, unexpected_field_behavior="ignore"),
        )
    except (UnicodeDecodeError, pa.ArrowInvalid):  # pyarrow names no line: the line-by-line path finds it
        return None
    if table.num_rows != len(lines):  # two objects on one line, or a line pyarrow skipped
        return None
    columns = fmt.columns(table)
    review = columns["review"]
    blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(review)), 0), True)
    return pa.table({**columns, "review_blank": blank}), lines


def _parse_lines(block: bytes, fmt: DumpFormat) -> tuple[pa.Table, np.ndarray]:
    """The line-by-line path: every non-blank line, unreadable ones marked."""
    names = ("user_id", "item_id", "rating", "review", "timestamp", "reject_reason", "reject_detail")
    columns: dict[str, list] = {name: [] for name in names}
    offsets = []
    for offset, raw in enumerate(block.split(b"\n")):
        parsed = parse_line(raw)
        if parsed is None:
            continue
        record, reason, detail = parsed
        values = {**(fmt.record_columns(record) if record is not None else {}), "reject_reason": reason, "reject_detail": detail}
        for name in names:
            columns[name].append(values.get(name))
        offsets.append(offset)
    reviews = [v if isinstance(v, str) else None for v in columns["review"]]
    table = pa.table(
        {
            "user_id": pa.array([_as_text(v) for v in columns["user_id"]], pa.string()),
            "item_id": pa.array([_as_text(v) for v in columns["item_id"]], pa.string()),
            "rating": pa.array(pd.to_numeric(pd.Series(columns["rating"], dtype=object), errors="coerce"), pa.float64()),
            "review": pa.array(reviews, pa.string()),
            "timestamp": pa.array(pd.to_numeric(pd.Series(columns["timestamp"], dtype=object), errors="coerce"), pa.float64()),
            "review_blank": pa.array([not (v and v.strip()) for v in reviews], pa.bool_()),
            "reject_reason": pa.array(columns["reject_reason"], pa.string()),
            "reject_detail": pa.array(columns["reject_detail"], pa.string()),
        }
    )
    return table, np.asarray(offsets, dtype=np.int64)


def _as_text(value: Any) -> str | None:
    """An id as text: a number in the JSON becomes its digits; missing (or NaN) stays missing."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


class ReviewDump:
    """A review file (Amazon or Yelp) with optional item metadata for titles.

    Args:
        source: ``amazon`` (any release, detected per line) or ``yelp``.
        reviews_path: the JSON-lines review file, plain or gz/bz2/xz.
        metadata_path: Amazon ``meta_*`` or Yelp ``business.json`` (optional).
        block_bytes: decompressed bytes parsed at once (bounds the memory of a pass).
    """

    def __init__(self, source: str, reviews_path: str | Path, metadata_path: str | Path | None = None, block_bytes: int = BLOCK_BYTES):
        self.format = FORMATS[source]
        self.source = source
        self.reviews_path = str(reviews_path)
        self.metadata_path = str(metadata_path) if metadata_path else None
        self.block_bytes = block_bytes

    def _blocks(self) -> Iterator[tuple[np.ndarray, pa.Table, bool]]:
        """``(line numbers, columns, parsed_whole)`` for every block."""
        for first, block in iter_blocks(self.reviews_path, self.block_bytes):
            parsed = _parse_block(block, self.format)
            table, offsets = parsed if parsed is not None else _parse_lines(block, self.format)
            yield offsets + first, table, parsed is not None

    def scan(self) -> pa.RecordBatchReader:
        """One row per non-blank line in ``SCAN_SCHEMA``, a batch per block: no review
        text, and nothing kept between batches, so a pass costs one block's memory."""
        return pa.RecordBatchReader.from_batches(SCAN_SCHEMA, self._scan_batches())

    def _scan_batches(self) -> Iterator[pa.RecordBatch]:
        lines = unreadable = blocks = line_by_line = 0
        for numbers, table, whole in self._blocks():
            blocks, line_by_line, lines = blocks + 1, line_by_line + (not whole), lines + len(numbers)
            reasons = table["reject_reason"] if "reject_reason" in table.column_names else pa.nulls(table.num_rows, pa.string())
            details = table["reject_detail"] if "reject_detail" in table.column_names else pa.nulls(table.num_rows, pa.string())
            unreadable += len(reasons) - reasons.null_count
            scanned = pa.table(
                {
                    "user_id": table["user_id"],
                    "item_id": table["item_id"],
                    "rating": pc.cast(table["rating"], pa.float64()),
                    "timestamp": pc.cast(table["timestamp"], pa.float64()),
                    "review_blank": table["review_blank"],
                    "source_file": pa.repeat(pa.scalar(self.reviews_path), table.num_rows),
                    "line_number": pa.array(numbers, pa.int64()),
                    "reject_reason": reasons,
                    "reject_detail": pc.fill_null(details, ""),
                },
                schema=SCAN_SCHEMA,
            )
            yield from scanned.to_batches()
        logger.info("Scanned %d lines of %s (%d unreadable; %d of %d blocks needed the line-by-line parser)", lines, self.reviews_path, unreadable, line_by_line, blocks)

    def texts(self, line_numbers: Iterable[np.ndarray]) -> pa.RecordBatchReader:
        """``line_number`` and ``review`` (stripped) of the given lines, read again from the file.

        ``line_numbers`` come in ascending chunks (the kept lines, streamed out of
        DuckDB), consumed as the file is read, so neither they nor the texts found
        are ever held whole. A line asked for and not found is simply absent.
        """
        return pa.RecordBatchReader.from_batches(TEXT_SCHEMA, self._text_batches(iter(line_numbers)))

    def _text_batches(self, chunks: Iterator[np.ndarray]) -> Iterator[pa.RecordBatch]:
        wanted = np.empty(0, dtype=np.int64)
        for block_numbers, table, _ in self._blocks():
            if not len(block_numbers):
                continue
            last = block_numbers[-1]
            while not (len(wanted) and wanted[-1] > last) and (chunk := next(chunks, None)) is not None:
                wanted = np.concatenate([wanted, np.asarray(chunk, dtype=np.int64)])
            upto = np.searchsorted(wanted, last, side="right")
            keep = np.isin(block_numbers, wanted[:upto], assume_unique=True)
            wanted = wanted[upto:]
            if keep.any():
                found = pa.table({"line_number": block_numbers[keep], "review": pc.utf8_trim_whitespace(table["review"].filter(pa.array(keep)))}, schema=TEXT_SCHEMA)
                yield from found.to_batches()

    def titles(self) -> pa.RecordBatchReader:
        """``item_id``, ``title`` and metadata ``line_number`` of every item with a title
        in the metadata file (none without one); a later line for an item wins."""
        if not self.metadata_path:
            return pa.RecordBatchReader.from_batches(TITLE_SCHEMA, iter([]))
        id_keys, title_key = (("business_id",), "name") if self.source == "yelp" else (("parent_asin", "asin"), "title")
        return read_titles(self.metadata_path, id_keys, title_key)


def read_titles(path: str | Path, id_keys: tuple[str, ...], title_key: str) -> pa.RecordBatchReader:
    """Item id, title (stripped) and line number from a metadata file (JSON lines, or
    2014 Python literals), in batches, for DuckDB to join on the kept items.

    Lines that cannot be parsed, and items without a title, are skipped with a count
    in the log: a missing title only costs a placeholder later, never a review.
    """
    return pa.RecordBatchReader.from_batches(TITLE_SCHEMA, _title_batches(path, id_keys, title_key))


def _title_batches(path: str | Path, id_keys: tuple[str, ...], title_key: str) -> Iterator[pa.RecordBatch]:
    rows: dict[str, list] = {"item_id": [], "title": [], "line_number": []}
    titled = skipped = 0
    for line_number, record in _parse_metadata(path):
        if record is None:
            skipped += 1
            continue
        item_id = next((record[key] for key in id_keys if record.get(key)), None)
        title = record.get(title_key)
        if item_id and isinstance(title, str) and title.strip():
            for name, value in (("item_id", str(item_id)), ("title", title.strip()), ("line_number", line_number)):
                rows[name].append(value)
        if len(rows["item_id"]) == TITLE_BATCH_ROWS:
            titled += TITLE_BATCH_ROWS
            yield pa.record_batch(rows, schema=TITLE_SCHEMA)
            rows = {name: [] for name in rows}
    titled += len(rows["item_id"])
    yield pa.record_batch(rows, schema=TITLE_SCHEMA)
    logger.info("Read %d titles from %s (%d lines skipped)", titled, path, skipped)


def _parse_metadata(path: str | Path) -> Iterator[tuple[int, dict | None]]:
    """``(line_number, record)`` of metadata lines parsed as JSON, falling back to Python literals.

    The 2014 Amazon metadata is written with ``repr`` (its publisher reads it
    with ``eval``); ``ast.literal_eval`` reads it without executing anything.
    ``None`` stands for a line that is neither.
    """
    for line_number, raw in iter_lines(path):
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            try:
                record = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                record = None
        yield line_number, record if isinstance(record, dict) else None
