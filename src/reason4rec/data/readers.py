"""Readers for public review dumps: Amazon (2014, 2018, 2023 releases) and Yelp.

Every reader returns one row per input line in the common raw schema
(``RAW_COLUMNS``). A line that cannot be read (bad UTF-8, malformed JSON, a
missing field) is not dropped: it comes back with ``reject_reason`` set, so the
ingest pipeline can save it to ``ingest_rejects``. Only a file that cannot be
read at all (missing, truncated or corrupt compression) is an error.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import json
import logging
import lzma
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

RAW_COLUMNS = [
    "user_id",
    "item_id",
    "rating",
    "review",
    "title",
    "timestamp",
    "source_file",
    "line_number",
    "reject_reason",
    "reject_detail",
]


class ReviewFileError(RuntimeError):
    """A review or metadata file is missing or cannot be read to its end."""


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_bytes)`` from a plain, gzip, bz2 or xz file.

    A truncated or corrupt compressed stream raises ``ReviewFileError`` naming
    the file and the last line read, rather than ending the iteration quietly.
    """
    path = Path(path)
    if not path.is_file():
        raise ReviewFileError(f"Review file not found: {path} (expected a JSON-lines file, plain or compressed)")
    opener: Callable[..., Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix, open)
    line_number = 0
    try:
        with opener(path, "rb") as handle:
            for line_number, line in enumerate(handle, start=1):
                yield line_number, line
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as error:
        raise ReviewFileError(
            f"{path} is truncated or corrupt: read {line_number} complete lines before: {error}"
        ) from error


def parse_json_lines(path: str | Path) -> Iterator[tuple[int, dict | None, str | None, str]]:
    """Yield ``(line_number, record, reject_reason, detail)`` for each non-blank line."""
    for line_number, raw in iter_lines(path):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield line_number, None, "invalid_utf8", f"{error}"
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
            yield line_number, None, "malformed_line", f"{type(error).__name__}: {text[:120]!r}"
            continue
        if not isinstance(record, dict):
            yield line_number, None, "malformed_line", f"not an object: {text[:120]!r}"
            continue
        yield line_number, record, None, ""


def _amazon_fields(record: dict) -> dict[str, Any]:
    """Map a 2014/2018 (``reviewerID``/``asin``) or 2023 (``user_id``/``parent_asin``) line."""
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


def _yelp_fields(record: dict) -> dict[str, Any]:
    date = record.get("date")
    try:
        timestamp = int(datetime.fromisoformat(date).replace(tzinfo=timezone.utc).timestamp())
    except (TypeError, ValueError):
        timestamp = None
    return {
        "user_id": record.get("user_id"),
        "item_id": record.get("business_id"),
        "rating": record.get("stars"),
        "review": record.get("text"),
        "timestamp": timestamp,
    }


def _read_reviews(path: str | Path, to_fields: Callable[[dict], dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for line_number, record, reject_reason, detail in parse_json_lines(path):
        fields = to_fields(record) if record is not None else {}
        rows.append(
            {
                **fields,
                "source_file": str(path),
                "line_number": line_number,
                "reject_reason": reject_reason,
                "reject_detail": detail,
            }
        )
    frame = pd.DataFrame.from_records(rows, columns=[c for c in RAW_COLUMNS if c != "title"])
    logger.info("Read %d lines from %s (%d unreadable)", len(frame), path, frame["reject_reason"].notna().sum())
    return frame


def read_amazon_reviews(path: str | Path) -> pd.DataFrame:
    """Read an Amazon review dump of the 2014, 2018 or 2023 release (detected per line)."""
    return _read_reviews(path, _amazon_fields)


def read_yelp_reviews(path: str | Path) -> pd.DataFrame:
    """Read Yelp Open Dataset ``review.json``."""
    return _read_reviews(path, _yelp_fields)


def read_titles(path: str | Path, id_keys: tuple[str, ...], title_key: str) -> dict[str, str]:
    """Map item id to title from a metadata file (JSON lines, or 2014 Python literals).

    Lines that cannot be parsed are skipped with a count in the log: a missing
    title only costs a placeholder later, never a review.
    """
    titles: dict[str, str] = {}
    skipped = 0
    for record in _parse_metadata(path):
        if record is None:
            skipped += 1
            continue
        item_id = next((record[key] for key in id_keys if record.get(key)), None)
        title = record.get(title_key)
        if item_id and isinstance(title, str) and title.strip():
            titles[str(item_id)] = title.strip()
    logger.info("Read %d titles from %s (%d lines skipped)", len(titles), path, skipped)
    return titles


def _parse_metadata(path: str | Path) -> Iterator[dict | None]:
    """Parse metadata lines as JSON, falling back to Python literals.

    The 2014 Amazon metadata is written with ``repr`` (its publisher reads it
    with ``eval``); ``ast.literal_eval`` reads it without executing anything.
    ``None`` stands for a line that is neither.
    """
    for _, raw in iter_lines(path):
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
        yield record if isinstance(record, dict) else None
