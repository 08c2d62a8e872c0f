"""A crash-safe answer cache: one SQLite row per completed teacher call.

Each answer is committed the moment it arrives (WAL journal, synchronous=FULL),
so a process killed at any point loses only the calls still in flight, and a
rerun finds every completed one here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path


class AnswerCache:
    def __init__(self, path: str | Path | None):
        """``path=None`` keeps the cache in memory (tests, throwaway runs)."""
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER,"
            " completion_tokens INTEGER, model TEXT, created REAL)"
        )

    def get(self, key: str) -> tuple[str, int, int] | None:
        with self._lock:
            row = self._db.execute("SELECT text, prompt_tokens, completion_tokens FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1] or 0, row[2] or 0)

    def put(self, key: str, text: str, prompt_tokens: int, completion_tokens: int, model: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                (key, text, prompt_tokens, completion_tokens, model, time.time()),
            )
