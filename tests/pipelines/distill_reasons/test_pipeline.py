import pytest

from reason4rec.contexts import rating_sft_examples
from reason4rec.distillation import ATTEMPT_COLUMNS
from reason4rec.llm.training import train_adapter
from reason4rec.pipelines.distill_reasons import create_pipeline
from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.fake_server import FakeBatchServer
from reason4rec.datasets.teacher import TeacherDataset
from reason4rec.teacher.rules import RulesBackend
from tests.helpers import PROMPTING, batch_teacher_config, rules_answer, run_pipeline, smoke_expert

# tau below any possible s_eval: every candidate is rejected, so every pair runs all its attempts.
PARAMS = {"max_attempts": 3, "tau": -10.0, "baseline": "review", "temperature": 0.9, "max_tokens": 64, "chunk_size": 4, "journal_dir": None}


@pytest.fixture(scope="module")
def reward_model(tiny_base, pair_contexts):
    return train_adapter(tiny_base, rating_sft_examples(pair_contexts, PROMPTING, pair_contexts["review"].tolist()), {**smoke_expert(num_train_epochs=1), "loss_on": "rating"}, "reward_model")[0]


def run_distill(tiny_base, pair_contexts, reward_model, teacher) -> tuple:
    out = run_pipeline(
        create_pipeline(),
        {
            "reasoner_contexts": pair_contexts, "base_model": tiny_base, "reward_model_adapter": reward_model, "teacher": teacher,
            "params:prompting": PROMPTING, "params:distill_reasons": PARAMS, "params:llm.inference": {"cache_path": None, "batch_size": 8},
        },
        ["distilled_reasons", "teacher_usage_distill_reasons"],
    )  # fmt: skip
    return out["distilled_reasons"], out["teacher_usage_distill_reasons"]


def test_pipeline_journals_every_rejected_attempt_and_counts_the_teachers_calls(tiny_base, pair_contexts, reward_model):
    attempts, usage = run_distill(tiny_base, pair_contexts, reward_model, CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2))
    assert list(attempts.columns) == ATTEMPT_COLUMNS and attempts["pair_id"].nunique() == len(pair_contexts)
    assert len(attempts) == PARAMS["max_attempts"] * len(pair_contexts) and not attempts["accepted"].any()
    # Algorithm 1: the first attempt has no hint; every resample carries the true rating as one.
    assert not attempts[attempts["attempt"] == 0]["hinted"].any() and attempts[attempts["attempt"] > 0]["hinted"].all()
    assert attempts["s_eval"].notna().all()
    assert usage["calls"].sum() == len(attempts)


def test_in_batch_mode_each_attempt_round_is_one_batch(tiny_base, pair_contexts, reward_model, tmp_path):
    with FakeBatchServer(answer=rules_answer) as server:
        teacher = TeacherDataset(batch_teacher_config(server.base_url, tmp_path / "teacher_cache.sqlite"), credentials={"api_key": "dummy"}).load()
        attempts, usage = run_distill(tiny_base, pair_contexts, reward_model, teacher)
    assert attempts["pair_id"].nunique() == len(pair_contexts) and len(attempts) == PARAMS["max_attempts"] * len(pair_contexts)
    assert attempts["teacher_error"].isna().all() and attempts["s_eval"].notna().all()
    # Every chunk of chunk_size pairs runs max_attempts rounds, each one batch holding the chunk's open pairs.
    rounds = -(-len(pair_contexts) // PARAMS["chunk_size"]) * PARAMS["max_attempts"]
    assert len(server.batches) == rounds and all(b["request_counts"]["total"] == PARAMS["chunk_size"] for b in server.batches.values())
    assert set(server.submitted.values()) == {1} and server.requests == {}
    assert usage["batch_calls"].sum() == usage["calls"].sum() == len(attempts)
