from reason4rec.contexts import rating_sft_examples
from reason4rec.distillation import ATTEMPT_COLUMNS
from reason4rec.llm.training import train_adapter
from reason4rec.pipelines.distill_reasons import create_pipeline
from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.teacher.rules import RulesBackend
from tests.helpers import PROMPTING, run_pipeline, smoke_expert

# tau below any possible s_eval: every candidate is rejected, so every pair runs all its attempts.
PARAMS = {"max_attempts": 3, "tau": -10.0, "baseline": "review", "temperature": 0.9, "max_tokens": 64, "chunk_size": 4, "journal_dir": None}


def test_pipeline_journals_every_rejected_attempt_and_counts_the_teachers_calls(tiny_base, pair_contexts):
    reward_model, _ = train_adapter(tiny_base, rating_sft_examples(pair_contexts, PROMPTING, pair_contexts["review"].tolist()), {**smoke_expert(num_train_epochs=1), "loss_on": "rating"}, "reward_model")
    out = run_pipeline(
        create_pipeline(),
        {
            "reasoner_contexts": pair_contexts, "base_model": tiny_base, "reward_model_adapter": reward_model,
            "teacher": CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2), "params:prompting": PROMPTING,
            "params:distill_reasons": PARAMS, "params:llm.inference": {"cache_path": None, "batch_size": 8},
        },
        ["distilled_reasons", "teacher_usage_distill_reasons"],
    )  # fmt: skip
    attempts, usage = out["distilled_reasons"], out["teacher_usage_distill_reasons"]
    assert list(attempts.columns) == ATTEMPT_COLUMNS and attempts["pair_id"].nunique() == len(pair_contexts)
    assert len(attempts) == PARAMS["max_attempts"] * len(pair_contexts) and not attempts["accepted"].any()
    # Algorithm 1: the first attempt has no hint; every resample carries the true rating as one.
    assert not attempts[attempts["attempt"] == 0]["hinted"].any() and attempts[attempts["attempt"] > 0]["hinted"].all()
    assert attempts["s_eval"].notna().all()
    assert usage["calls"].sum() == len(attempts)
