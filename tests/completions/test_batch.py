"""``teacher.mode: batch`` against a local fake of the OpenAI Batch API (``FakeBatchServer``)."""

import json
import logging

import pytest

from reason4rec.completions import CompletionRequest
from reason4rec.completions.batch import BatchPolicy, BatchTimeout, batch_line, split_into_files
from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.client import CompletionClient
from reason4rec.completions.fake_server import FakeBatchServer, FakeOpenAIServer
from reason4rec.completions.openai_backend import OpenAIBackend
from reason4rec.parameters import TeacherConfig

PRICES = {"gpt-test": {"prompt": 1.0, "completion": 2.0}}
REQUESTS = [CompletionRequest(f"prompt {i} " + "x " * (i % 5), temperature=0.7 * (i % 2), sample_index=i % 3) for i in range(25)]


class Killed(Exception):
    """The process dying: raised where the run would otherwise wait."""


def batch_teacher(server, cache_path, **policy) -> CompletionClient:
    backend = OpenAIBackend("gpt-test", api_key="k", base_url=server.base_url, timeout_s=10)
    settings = BatchPolicy(**{"poll_interval_s": 0.01, "max_requests_per_file": 10, "manifest_path": str(cache_path.with_suffix(".batches.json")), **policy})
    return CompletionClient(backend, AnswerCache(cache_path), prices_per_million_tokens=PRICES, batches=backend.batches(settings))


def kill_at_first_wait(teacher: CompletionClient) -> None:
    def die(seconds):
        raise Killed

    teacher.batches.sleep = die


def test_a_killed_batch_run_resumes_its_batches_and_answers_as_the_sync_mode_does_at_half_price(tmp_path, caplog):
    cache_path = tmp_path / "cache.sqlite"
    with FakeBatchServer(polls_to_finish=2) as server:
        server.fail_once.add(REQUESTS[3].prompt)  # in batch 1's error file the first time
        server.expire.add(2)  # batch 2 expires with half its lines answered
        killed = batch_teacher(server, cache_path)
        kill_at_first_wait(killed)
        with pytest.raises(Killed):
            killed.complete(REQUESTS, stage="summarize")
        manifest = json.loads(cache_path.with_suffix(".batches.json").read_text())
        assert [len(entry["custom_ids"]) for entry in manifest] == [10, 10, 5] and all(entry["batch_id"] for entry in manifest)
        assert sum(server.submitted.values()) == 25

        teacher = batch_teacher(server, cache_path)
        with caplog.at_level(logging.INFO):
            answers = teacher.complete(REQUESTS, stage="summarize")
        keys = [teacher.key(r) for r in REQUESTS]
        retried = {keys[3]} | {custom_id for custom_id in manifest[1]["custom_ids"][5:]}
        assert len(server.batches) == 4  # the three resumed, one for the six lines they did not answer
        assert all(server.submitted[key] == (2 if key in retried else 1) for key in keys)
        assert "resuming 3" in caplog.text and "requests pending" in caplog.text

        again = batch_teacher(server, cache_path).complete(REQUESTS, stage="summarize")
        assert all(a.cached for a in again) and len(server.batches) == 4

    with FakeOpenAIServer() as sync_server:
        sync = CompletionClient(OpenAIBackend("gpt-test", api_key="k", base_url=sync_server.base_url), AnswerCache(None)).complete(REQUESTS, stage="summarize")
    assert [(a.text, a.prompt_tokens, a.completion_tokens) for a in answers] == [(a.text, a.prompt_tokens, a.completion_tokens) for a in sync]
    assert all(teacher.cache.get(key) for key in keys)
    assert json.loads(cache_path.with_suffix(".batches.json").read_text()) == []

    row = teacher.usage_table().iloc[0]
    assert (row["calls"], row["batch_calls"], row["failures"]) == (31, 31, 0)  # the six unanswered lines count as calls too
    full_price = sum(a.prompt_tokens * 1.0 + a.completion_tokens * 2.0 for a in answers) / 1e6
    assert row["batch_prompt_tokens"] == row["prompt_tokens"] == sum(a.prompt_tokens for a in answers)
    assert teacher.cost() == pytest.approx(0.5 * full_price) and row["estimated_cost_usd"] == pytest.approx(0.5 * full_price, abs=1e-6)


def test_a_kill_between_creating_a_batch_and_recording_it_adopts_that_batch(tmp_path):
    cache_path = tmp_path / "cache.sqlite"
    with FakeBatchServer(polls_to_finish=1) as server:
        killed = batch_teacher(server, cache_path)
        record = killed.batches.manifest.record

        def die_recording_the_batch(entry):
            if entry["batch_id"]:
                raise Killed
            record(entry)

        killed.batches.manifest.record = die_recording_the_batch
        with pytest.raises(Killed):
            killed.complete(REQUESTS[:4], stage="s")
        assert len(server.batches) == 1
        answers = batch_teacher(server, cache_path).complete(REQUESTS[:4], stage="s")
    assert all(a.ok for a in answers) and len(server.batches) == 1 and len(server.files) == 2  # one upload, one output


def test_with_failures_sync_the_lines_a_batch_did_not_answer_are_asked_synchronously_at_full_price(tmp_path):
    with FakeBatchServer(polls_to_finish=1) as server:
        server.fail_once.add(REQUESTS[0].prompt)
        teacher = batch_teacher(server, tmp_path / "cache.sqlite", failures="sync")
        answers = teacher.complete(REQUESTS[:6], stage="s")
    assert all(a.ok for a in answers) and len(server.batches) == 1
    assert server.requests == {REQUESTS[0].prompt: 1}  # the one synchronous call
    row = teacher.usage_table().iloc[0]
    assert (row["calls"], row["batch_calls"]) == (7, 6)
    sync_tokens = (answers[0].prompt_tokens, answers[0].completion_tokens)
    batch_price = sum(a.prompt_tokens + 2 * a.completion_tokens for a in answers[1:]) / 1e6
    assert teacher.cost() == pytest.approx((sync_tokens[0] + 2 * sync_tokens[1]) / 1e6 + 0.5 * batch_price)


def test_a_line_still_failing_after_max_rounds_comes_back_as_a_failure_and_is_not_cached(tmp_path, caplog):
    with FakeBatchServer(polls_to_finish=1) as server:
        server.fail_once.add(REQUESTS[1].prompt)
        teacher = batch_teacher(server, tmp_path / "cache.sqlite", max_rounds=1)
        with caplog.at_level(logging.WARNING):
            answers = teacher.complete(REQUESTS[:3], stage="s")
    assert [a.ok for a in answers] == [True, False, True]
    assert "HTTP 500" in answers[1].error and "boom" in answers[1].error
    assert teacher.cache.get(teacher.key(REQUESTS[1])) is None and teacher.usage_table().iloc[0]["failures"] == 1
    assert "1 of 3 requests failed" in caplog.text


def test_a_poll_that_fails_is_asked_again_by_the_openai_client(tmp_path):
    with FakeBatchServer(polls_to_finish=1) as server:
        server.unavailable_polls = 1
        answers = batch_teacher(server, tmp_path / "cache.sqlite").complete(REQUESTS[:2], stage="s")
    assert all(a.ok for a in answers) and server.unavailable_polls == 0


def test_waiting_past_max_wait_names_the_batches_and_keeps_them_for_the_rerun(tmp_path):
    cache_path = tmp_path / "cache.sqlite"
    with FakeBatchServer(polls_to_finish=10**6) as server:
        teacher = batch_teacher(server, cache_path, max_wait_s=0.05)
        with pytest.raises(BatchTimeout, match=r"batch-1 still running .* a rerun resumes them"):
            teacher.complete(REQUESTS[:2], stage="s")
    assert [entry["batch_id"] for entry in json.loads(cache_path.with_suffix(".batches.json").read_text())] == ["batch-1"]


def test_input_files_keep_within_the_line_and_byte_limits():
    lines = {f"id{i}": batch_line(f"id{i}", {"model": "m", "messages": [{"role": "user", "content": "x" * i}]}) for i in range(10)}
    files = split_into_files(lines, max_lines=4, max_bytes=2 * len(lines["id9"]))
    assert [list(f) for f in files] == [["id0", "id1"], ["id2", "id3"], ["id4", "id5"], ["id6", "id7"], ["id8", "id9"]]
    assert [len(f) for f in split_into_files(lines, max_lines=4, max_bytes=10**6)] == [4, 4, 2]
    with pytest.raises(ValueError, match="id9 is .* bytes"):
        split_into_files(lines, max_lines=4, max_bytes=len(lines["id9"]) - 1)


def test_batch_mode_is_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match="teacher.mode: batch needs teacher.backend: openai"):
        TeacherConfig.from_dict({"backend": "rules", "mode": "batch"})
    with pytest.raises(ValueError, match=r"unknown teacher.batch setting\(s\) poll_interval"):
        TeacherConfig.from_dict({"backend": "openai", "model": "m", "mode": "batch", "batch": {"poll_interval": 5}})
    with pytest.raises(ValueError, match="teacher.mode must be one of"):
        TeacherConfig.from_dict({"backend": "openai", "model": "m", "mode": "async"})
    config = TeacherConfig.from_dict({"backend": "openai", "model": "m", "mode": "batch", "cache_path": "data/teacher_cache.sqlite"})
    assert config.batch_manifest_path() == "data/teacher_cache.batches.json" and config.batch.price_factor == 0.5
