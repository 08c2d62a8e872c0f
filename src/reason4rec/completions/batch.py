"""The OpenAI Batch API: many chat completions at half the price, answered within 24 hours.

``CompletionClient.complete`` (with ``teacher.mode: batch``) hands :class:`OpenAIBatches`
the requests its cache cannot answer, as chat-completions bodies keyed by their
cache key. They are written as JSONL lines ``{"custom_id", "method", "url", "body"}``
(at most ``max_requests_per_file`` lines and ``max_bytes_per_file`` bytes a file,
the API's limits), uploaded and submitted. Every file and batch is written to a
manifest before anything waits on it, so a run killed while its batches run
resumes by polling the same batches and pays for nothing twice. Answers come back
in any order, keyed by ``custom_id``; each is handed back (to the answer cache) as
its batch is collected, and the lines that failed, or that an expired batch never
answered, go into the next round's batch, up to ``max_rounds``.

vLLM's ``vllm run-batch`` reads and writes the same files (docs/teacher.md).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

if TYPE_CHECKING:
    import openai
    from openai.types import Batch

logger = logging.getLogger(__name__)

CHAT_ENDPOINT = "/v1/chat/completions"
FINISHED = ("completed", "expired", "failed", "cancelled")
FAILURE_HANDLING = ("resubmit", "sync")


@dataclass(frozen=True)
class BatchPolicy:
    """``teacher.batch``: how the Batch API is used when ``teacher.mode`` is ``batch``."""

    poll_interval_s: float = 60.0
    max_wait_s: float = 86_400.0  # for one round's batches; the API answers or expires them within 24 h
    max_rounds: int = 3  # batches a request may go through: failed and expired lines are resubmitted until then
    failures: str = "resubmit"  # or "sync": lines the first batch did not answer are asked synchronously, at full price
    price_factor: float = 0.5  # the Batch API's price per token, relative to the synchronous API's
    manifest_path: str | None = None  # None: next to the answer cache (teacher_cache.batches.json)
    max_requests_per_file: int = 50_000
    max_bytes_per_file: int = 200 * 1024 * 1024

    def __post_init__(self):
        if self.failures not in FAILURE_HANDLING:
            raise ValueError(f"teacher.batch.failures must be one of {', '.join(FAILURE_HANDLING)}, not {self.failures!r}")
        for name in ("poll_interval_s", "max_wait_s", "max_rounds", "price_factor", "max_requests_per_file", "max_bytes_per_file"):
            if getattr(self, name) <= 0:
                raise ValueError(f"teacher.batch.{name} must be positive, not {getattr(self, name)!r}")


class BatchTimeout(RuntimeError):
    """Batches still running after ``max_wait_s``; they keep running, and a rerun resumes them."""


class BatchManifest:
    """The batch input files uploaded and not yet collected, with the ``custom_ids`` each holds
    and, once created, its batch id: a JSON list replaced atomically (a temporary file, then
    ``os.replace``) at every change, so a kill leaves either the old list or the new one.
    ``path=None`` keeps it in memory (no resume)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._entries: list[dict[str, Any]] = json.loads(self.path.read_text()) if self.path and self.path.exists() else []

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def record(self, entry: dict[str, Any]) -> None:
        """Add ``entry``, or replace the one with its ``input_file_id``."""
        self._entries = [e for e in self._entries if e["input_file_id"] != entry["input_file_id"]] + [entry]
        self._write()

    def drop(self, input_file_id: str) -> None:
        self._entries = [e for e in self._entries if e["input_file_id"] != input_file_id]
        self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w") as handle:
            json.dump(self._entries, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


def batch_line(custom_id: str, body: Mapping[str, Any]) -> bytes:
    """One JSONL line of a Batch API input file (and of ``vllm run-batch``'s)."""
    return (json.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT_ENDPOINT, "body": body}) + "\n").encode()


def split_into_files(lines: Mapping[str, bytes], max_lines: int, max_bytes: int) -> list[dict[str, bytes]]:
    """Consecutive groups of ``lines`` (custom_id -> line), each within both limits."""
    files: list[dict[str, bytes]] = [{}]
    size = 0
    for custom_id, line in lines.items():
        if len(line) > max_bytes:
            raise ValueError(f"request {custom_id} is {len(line)} bytes as a batch line, over teacher.batch.max_bytes_per_file ({max_bytes})")
        if len(files[-1]) >= max_lines or size + len(line) > max_bytes:
            files.append({})
            size = 0
        files[-1][custom_id] = line
        size += len(line)
    return [f for f in files if f]


@dataclass
class OpenAIBatches:
    """Chat completions through the Batch API of one ``openai.OpenAI`` client, whose own
    retries (``max_retries``) carry uploads, polls and downloads over a failed request."""

    client: openai.OpenAI
    policy: BatchPolicy
    manifest: BatchManifest
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def run(
        self,
        bodies: Mapping[str, Mapping[str, Any]],
        on_answer: Callable[[str, dict[str, Any]], None],
        on_failure: Callable[[str, str], None],
        desc: str,
    ) -> dict[str, str]:
        """Ask every chat-completions body (custom_id -> body). ``on_answer(custom_id, response
        body)`` is called once per answered line as its batch is collected, ``on_failure(custom_id,
        error)`` once per line a batch did not answer. Returns the custom_ids still unanswered
        after ``max_rounds`` (one with ``failures: sync``), each with its last error."""
        unanswered = dict.fromkeys(bodies, "")
        rounds = 1 if self.policy.failures == "sync" else self.policy.max_rounds
        for round_number in range(1, rounds + 1):
            resumed = [e for e in self.manifest.entries() if not unanswered.keys().isdisjoint(e["custom_ids"])]
            in_resumed = {custom_id for entry in resumed for custom_id in entry["custom_ids"]}
            if resumed:
                logger.info("teacher batches: resuming %d from %s (%d requests)", len(resumed), self.manifest.path, len(in_resumed))
            entries = [self._created(e) for e in resumed] + self._submitted({k: bodies[k] for k in unanswered if k not in in_resumed})
            finished = self._wait([e["batch_id"] for e in entries], f"{desc} (batch round {round_number})")
            for entry in entries:
                errors = self._collect(entry, finished[entry["batch_id"]], on_answer)
                for custom_id, error in errors.items():
                    on_failure(custom_id, error)
                answered = set(entry["custom_ids"]) - errors.keys()
                unanswered = {k: errors.get(k, last_error) for k, last_error in unanswered.items() if k not in answered}
                self.manifest.drop(entry["input_file_id"])
            if not unanswered:
                break
            logger.warning("teacher batches: %d of %d requests unanswered after round %d (first error: %s)", len(unanswered), len(bodies), round_number, next(iter(unanswered.values())))
        return unanswered

    def _submitted(self, bodies: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Upload ``bodies`` as input files and create one batch per file, recording each in the manifest
        as soon as it exists. A kill between the upload and the manifest leaves an orphan file, which
        costs nothing (batch input files expire after 30 days) and whose requests the rerun uploads again."""
        entries = []
        lines = {custom_id: batch_line(custom_id, body) for custom_id, body in bodies.items()}
        for part in split_into_files(lines, self.policy.max_requests_per_file, self.policy.max_bytes_per_file):
            uploaded = self.client.files.create(file=("requests.jsonl", b"".join(part.values())), purpose="batch")
            entry = {"input_file_id": uploaded.id, "uploaded_at": uploaded.created_at, "custom_ids": list(part), "batch_id": None}
            self.manifest.record(entry)
            entries.append(self._created(entry))
        if entries:
            logger.info("teacher batches: submitted %d requests (%s)", len(bodies), ", ".join(e["batch_id"] for e in entries))
        return entries

    def _created(self, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` with its batch: the one recorded, else one already made from its input file
        (the process died before recording it), else a new one. Creating is never retried by the
        client: a lost answer to a create that worked would make a second, paid batch, where a
        rerun finds the first."""
        if entry["batch_id"] is None:
            batch = self._batch_from(entry["input_file_id"], entry["uploaded_at"]) or self.client.with_options(max_retries=0).batches.create(
                input_file_id=entry["input_file_id"], endpoint=CHAT_ENDPOINT, completion_window="24h"
            )
            entry = {**entry, "batch_id": batch.id}
            self.manifest.record(entry)
        return entry

    def _batch_from(self, input_file_id: str, uploaded_at: int) -> Batch | None:
        for batch in self.client.batches.list(limit=100):  # newest first
            if batch.input_file_id == input_file_id:
                return batch
            if batch.created_at < uploaded_at:
                return None
        return None

    def _wait(self, batch_ids: list[str], desc: str) -> dict[str, Batch]:
        """Poll every ``poll_interval_s`` until each batch has finished, logging how many requests are
        pending, done and failed; raise :class:`BatchTimeout` after ``max_wait_s``."""
        started, latest = self.clock(), {}
        progress = tqdm(total=None, desc=desc, unit="request")
        while True:
            for batch_id in batch_ids:
                if batch_id not in latest or latest[batch_id].status not in FINISHED:
                    latest[batch_id] = self.client.batches.retrieve(batch_id)
            pending, done, failed = _request_counts(latest.values())
            running = [b.id for b in latest.values() if b.status not in FINISHED]
            logger.info("teacher batches: %d requests pending, %d done, %d failed; %d of %d batches running", pending, done, failed, len(running), len(batch_ids))
            progress.total, progress.n = pending + done + failed, done + failed
            progress.set_postfix(failed=failed, running=len(running))
            if not running:
                progress.close()
                return latest
            if self.clock() - started > self.policy.max_wait_s:
                progress.close()
                raise BatchTimeout(
                    f"teacher batches {', '.join(running)} still running after teacher.batch.max_wait_s={self.policy.max_wait_s}s; "
                    f"they keep running on the server, and a rerun resumes them from {self.manifest.path or 'the manifest (in memory here: set a cache_path)'}"
                )
            self.sleep(self.policy.poll_interval_s)

    def _collect(self, entry: dict[str, Any], batch: Batch, on_answer: Callable[[str, dict[str, Any]], None]) -> dict[str, str]:
        """Hand each answered line of a finished batch to ``on_answer``; return the error of each other line."""
        errors = {}
        answered = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            for line in self.client.files.content(file_id).text.splitlines() if file_id else []:
                result = json.loads(line)
                response = result.get("response") or {}
                if response.get("status_code") == 200:
                    on_answer(result["custom_id"], response["body"])
                    answered.add(result["custom_id"])
                else:
                    errors[result["custom_id"]] = _line_error(result, batch.id)
        why = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
        for custom_id in set(entry["custom_ids"]) - answered - errors.keys():
            errors[custom_id] = f"batch {batch.id} {batch.status} without answering it{': ' + why if why else ''}"
        return errors


def _request_counts(batches: Iterable[Batch]) -> tuple[int, int, int]:
    """Requests pending, done and failed; a finished batch's requests that were not done failed."""
    pending = done = failed = 0
    for batch in batches:
        counts = batch.request_counts
        if counts is None:
            continue
        done += counts.completed
        if batch.status in FINISHED:
            failed += counts.total - counts.completed
        else:
            failed += counts.failed
            pending += counts.total - counts.completed - counts.failed
    return pending, done, failed


def _line_error(result: dict[str, Any], batch_id: str) -> str:
    """The error of a batch output line that holds no answer: its own ``error`` or its response's."""
    response = result.get("response") or {}
    error = result.get("error") or (response.get("body") or {}).get("error") or {}
    status = f"HTTP {response['status_code']}" if response.get("status_code") else None
    return f"batch {batch_id}: " + " ".join(part for part in (status, error.get("code"), error.get("message")) if part)
