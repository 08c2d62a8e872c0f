"""``summarize`` and ``distill_reasons`` with ``teacher.mode: batch``, through Kedro sessions in the
smoke environment (a scratch copy of the project), against a local fake of the OpenAI Batch API."""

import json

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from reason4rec.completions.fake_server import FakeBatchServer
from tests.helpers import rules_answer, scratch_project

PIPELINES = ["ingest_5core", "summarize", "reward_model", "distill_reasons"]


def run(project, pipelines: list[str], teacher: dict) -> None:
    """A smoke run with ``teacher``; tau below any s_eval, so every pair runs all its attempts (the
    first two are the reward model check's prompts too, answered from the cache; the third is not)."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke", runtime_params={"teacher": teacher, "distill_reasons": {"tau": -10.0}}) as session:
        session.run(pipeline_names=pipelines)


@pytest.mark.slow
def test_summarize_and_distill_reasons_run_in_batch_mode_and_resume_without_a_batch(tmp_path, monkeypatch):
    import pandas as pd

    project = scratch_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    with FakeBatchServer(answer=rules_answer) as server:
        teacher = {"backend": "openai", "model": "gpt-test", "base_url": server.base_url, "mode": "batch", "batch": {"poll_interval_s": 0.01}}
        run(project, PIPELINES, teacher)
        batches = len(server.batches)
        run(project, ["distill_reasons"], teacher)  # the journal and the cache answer everything: no batch

    def latest(relative: str) -> pd.DataFrame:
        return pd.read_parquet(sorted((project / relative).glob("*/*"))[0])  # the first run's version

    attempts = latest("data/07_model_output/distilled_reasons.parquet")
    pairs = latest("data/05_model_input/reasoner_pairs.parquet")
    assert set(attempts["pair_id"]) == {f"{u}|{i}" for u, i in zip(pairs["user_id"], pairs["item_id"])}
    assert "teacher_failed" not in set(attempts["status"]) and (attempts.groupby("pair_id").size() == 3).all()
    teacher_summaries = latest("data/02_intermediate/teacher_summaries.parquet")
    assert len(teacher_summaries) == 48 and teacher_summaries["parsed"].all()
    for stage, asked in (("summarize", 48), ("distill_reasons", len(attempts))):
        usage = latest(f"data/08_reporting/teacher_usage/{stage}.parquet").iloc[0]
        assert usage["calls"] > 0 and usage["batch_calls"] == usage["calls"] and usage["failures"] == 0
        assert usage["calls"] + usage["cache_hits"] == asked
    assert set(server.submitted.values()) == {1} and server.requests == {}  # no line twice, no synchronous call
    assert len(server.batches) == batches
    assert json.loads((project / "data/02_intermediate/teacher_cache.batches.json").read_text()) == []
