import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from reason4rec import prompts
from reason4rec.datasets.teacher import TeacherDataset
from reason4rec.completions import CompletionRequest, complete_with_guard
from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.client import CompletionClient, RetryPolicy
from reason4rec.completions.fake_server import FakeOpenAIServer
from reason4rec.completions.openai_backend import OpenAIBackend

SECRET = "sk-test-SECRET-4f9a1c"


def openai_teacher(server, cache_path=None, concurrency=8, max_retries=3, sleeps=None):
    return CompletionClient(
        OpenAIBackend("gpt-test", api_key=SECRET, base_url=server.base_url, timeout_s=10),
        AnswerCache(cache_path),
        concurrency=concurrency,
        retry=RetryPolicy(max_retries=max_retries, backoff_base_s=0.01, backoff_max_s=0.05),
        prices_per_million_tokens={"gpt-test": {"prompt": 1.0, "completion": 2.0}},
        sleep=(lambda s: (sleeps.append(s), time.sleep(s))) if sleeps is not None else time.sleep,
    )


def test_answers_come_back_in_order_with_usage_and_cost():
    with FakeOpenAIServer(delay_s=0.01) as server:
        teacher = openai_teacher(server)
        requests = [CompletionRequest(f"prompt {i} " + "x " * (i % 7)) for i in range(30)]
        answers = teacher.complete(requests, stage="summarize")
    assert [a.text for a in answers] == [f"echo: {r.prompt}" for r in requests]
    table = teacher.usage_table()
    row = table.iloc[0]
    assert (row["stage"], row["model"], row["calls"], row["failures"]) == ("summarize", "gpt-test", 30, 0)
    assert row["estimated_cost_usd"] == pytest.approx((row["prompt_tokens"] * 1.0 + row["completion_tokens"] * 2.0) / 1e6)


def test_429_with_retry_after_then_success():
    sleeps = []
    with FakeOpenAIServer() as server:
        server.rate_limit_times["busy"] = 2
        answers = openai_teacher(server, sleeps=sleeps).complete([CompletionRequest("busy")], stage="s")
    assert answers[0].text == "echo: busy" and answers[0].attempts == 3
    assert server.requests["busy"] == 3
    assert len(sleeps) == 2 and min(sleeps) >= 0.2  # Retry-After: 0.2 beats the tiny backoff


def test_500_past_the_budget_is_a_recorded_failure_and_the_rest_complete(caplog):
    with FakeOpenAIServer() as server:
        server.always_fail.add("doomed")
        teacher = openai_teacher(server, max_retries=2)
        with caplog.at_level(logging.WARNING):
            answers = teacher.complete([CompletionRequest("a"), CompletionRequest("doomed"), CompletionRequest("b")], stage="s")
    assert [a.ok for a in answers] == [True, False, True]
    assert "gave up after 3 attempts" in answers[1].error and server.requests["doomed"] == 3
    assert teacher.usage_table().iloc[0]["failures"] == 1
    assert "1 of 3 requests failed" in caplog.text
    # A failure is not cached: the next run asks again.
    assert teacher.cache.get(teacher.key(CompletionRequest("doomed"))) is None


def test_a_full_rerun_makes_zero_calls(tmp_path):
    requests = [CompletionRequest(f"p{i}", temperature=0.7, sample_index=i % 3) for i in range(12)]
    with FakeOpenAIServer() as server:
        first = openai_teacher(server, tmp_path / "cache.sqlite").complete(requests, stage="s")
        asked = sum(server.requests.values())
        second = openai_teacher(server, tmp_path / "cache.sqlite").complete(requests, stage="s")
        assert sum(server.requests.values()) == asked == 12
    assert [a.text for a in first] == [a.text for a in second] and all(a.cached for a in second)


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from reason4rec.completions import CompletionRequest
    from reason4rec.completions.cache import AnswerCache
    from reason4rec.completions.client import CompletionClient
    from reason4rec.completions.openai_backend import OpenAIBackend
    base_url, cache = sys.argv[1], sys.argv[2]
    teacher = CompletionClient(OpenAIBackend("gpt-test", api_key="k", base_url=base_url), AnswerCache(cache), concurrency=2)
    teacher.complete([CompletionRequest(f"prompt {i}") for i in range(60)], stage="s")
    """
)


def answered(cache_path) -> int:
    try:
        return sqlite3.connect(cache_path).execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_killed_run_resumes_without_repeating_a_completed_call(tmp_path):
    cache_path = tmp_path / "cache.sqlite"
    with FakeOpenAIServer(delay_s=0.05) as server:
        process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, server.base_url, str(cache_path)], stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and answered(cache_path) < 10:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
        teacher = openai_teacher(server, cache_path)
        done_before = {f"prompt {i}" for i in range(60) if teacher.cache.get(teacher.key(CompletionRequest(f"prompt {i}")))}
        assert 10 <= len(done_before) < 60, "the kill should land midway"
        answers = teacher.complete([CompletionRequest(f"prompt {i}") for i in range(60)], stage="s")
    assert all(a.ok for a in answers)
    assert all(server.requests[p] == 1 for p in done_before)  # no completed call repeated
    assert teacher.usage_table().iloc[0]["cache_hits"] == len(done_before)


def test_the_api_key_reaches_no_log_and_no_saved_file(tmp_path, caplog):
    cache_path = tmp_path / "cache.sqlite"
    with FakeOpenAIServer() as server, caplog.at_level(logging.DEBUG):
        dataset = TeacherDataset({"backend": "openai", "model": "gpt-test", "base_url": server.base_url, "cache_path": str(cache_path)}, credentials={"api_key": SECRET})
        teacher = dataset.load()
        teacher.complete([CompletionRequest("hello")], stage="s")
        table = teacher.usage_table()
        logging.getLogger("test").info("dataset %s teacher %s backend %r", dataset, teacher, teacher.backend)
    assert server.authorizations == [f"Bearer {SECRET}"]  # it was sent, to the server only
    assert SECRET not in caplog.text
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET not in table.to_csv() and SECRET not in str(dataset._describe())


def test_openai_backend_without_a_key_says_where_to_put_it(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="conf/local/credentials.yml"):
        OpenAIBackend("gpt-test")


def test_guard_asks_again_with_the_next_sample_index():
    class Flaky:
        name, model = "flaky", "flaky-1"

        def identity(self):
            return {"backend": self.name}

        def call(self, request):
            return ("no fields here" if request.sample_index == 0 else prompts.format_summary(["Melody"], [], ["Melody"])), 1, 1

    teacher = CompletionClient(Flaky(), AnswerCache(None))
    answers, attempts = complete_with_guard(teacher, [CompletionRequest("x"), CompletionRequest("y")], lambda t: prompts.parse_summary(t) is not None, 3, "summarize")
    assert all(prompts.parse_summary(a.text) for a in answers)
    assert attempts["outcome"].tolist() == ["rejected_by_guard", "rejected_by_guard", "accepted", "accepted"]


def test_an_answer_cut_at_the_token_budget_is_counted_as_truncated_not_as_a_bad_answer():
    class Cut:
        name, model = "cut", "cut-1"

        def identity(self):
            return {"backend": self.name}

        def call(self, request):  # the first sample of "x" uses its whole budget and stops mid-summary
            if request.prompt == "x" and request.sample_index == 0:
                return "Positive Aspects: Melody", 1, request.max_tokens
            return prompts.format_summary(["Melody"], [], ["Melody"]) if request.prompt == "x" else "no fields here", 1, 3

    teacher = CompletionClient(Cut(), AnswerCache(None))
    answers, attempts = complete_with_guard(teacher, [CompletionRequest("x", max_tokens=8), CompletionRequest("y", max_tokens=8)], lambda t: prompts.parse_summary(t) is not None, 2, "summarize")
    assert attempts["outcome"].tolist() == ["truncated", "rejected_by_guard", "accepted", "rejected_by_guard"]
    assert answers[0].ok and not answers[1].ok
