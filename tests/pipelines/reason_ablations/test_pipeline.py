import pandas as pd
import pytest

from reason4rec import prompts
from reason4rec.distillation import ATTEMPT_COLUMNS
from reason4rec.pipelines.reason_ablations import create_pipeline
from reason4rec.pipelines.reason_ablations.nodes import SUPERVISIONS, ablation_reasoner_sft_examples
from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.teacher.rules import RulesBackend
from tests.helpers import PROMPTING, run_pipeline, smoke_expert

DISTILL = {"max_attempts": 3, "tau": 0.1, "baseline": "none", "temperature": 0.9, "max_tokens": 256, "chunk_size": 8, "journal_dir": None}


def _attempts(contexts: pd.DataFrame) -> pd.DataFrame:
    """Two attempts per pair: a first reason (rejected by the reward model, or for the last pair
    stating the rating) and an accepted hinted one."""
    rows = []
    for k, r in enumerate(contexts.itertuples()):
        first_status = "forbidden_word" if k == len(contexts) - 1 else "rejected_by_reward"
        for attempt, status, reason in ((0, first_status, f"first reason {k}"), (1, "accepted", f"hinted reason {k}")):
            rows.append({"pair_id": f"{r.user_id}|{r.item_id}", "user_id": r.user_id, "item_id": r.item_id, "rating": r.rating, "attempt": attempt,
                         "hinted": attempt > 0, "reason": reason, "status": status, "r_reason": 4.0, "r_baseline": 4.0, "s_eval": 0.0,
                         "accepted": status == "accepted", "teacher_error": None})  # fmt: skip
    return pd.DataFrame(rows, columns=ATTEMPT_COLUMNS)


def test_each_alternative_supervises_the_reasoner_with_its_own_answers(pair_contexts):
    teacher = CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2)
    attempts = _attempts(pair_contexts)
    built = {name: ablation_reasoner_sft_examples(pair_contexts, attempts, teacher, PROMPTING, DISTILL, supervision=name) for name in SUPERVISIONS}
    # Every prompt is the reasoner's own, never hinted and never with the review.
    for sft in built.values():
        assert not sft["prompt"].str.contains("Hint:").any() and not sft["prompt"].str.contains(prompts.REVIEW_HEADER, regex=False).any()
    assert built["review_guided"]["response"].tolist() == pair_contexts["review"].tolist()
    assert built["review_inferred"]["response"].str.startswith(("In the review the user", "The review names")).all()
    # History-inferred: Algorithm 1's first reason whatever the reward model said, unless it states the rating.
    assert built["history_inferred"]["response"].tolist() == [f"first reason {k}" for k in range(len(pair_contexts) - 1)]
    with pytest.raises(ValueError, match="unknown reason_ablations supervision"):
        ablation_reasoner_sft_examples(pair_contexts, attempts, teacher, PROMPTING, DISTILL, supervision="hint_inferred")


def test_pipeline_runs_steps_two_and_three_per_alternative_and_tables_them_on_the_same_rows(tiny_base, pair_contexts):
    test_contexts = pair_contexts.iloc[:5]
    predictions = test_contexts[["user_id", "item_id", "rating"]].assign(prediction=4.0, reason="r", seconds=0.1, new_tokens=3)
    out = run_pipeline(
        create_pipeline(),
        {
            "reasoner_contexts": pair_contexts, "predictor_contexts": pair_contexts, "test_contexts": test_contexts, "distilled_reasons": _attempts(pair_contexts),
            "teacher": CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2), "base_model": tiny_base,
            "test_predictions": predictions, "test_predictions_no_reason": predictions[["user_id", "item_id", "rating", "prediction"]],
            "interactions_test": test_contexts, "params:evaluate": {"seed": 0, "report_examples": 1, "timed_rows": 1},
            "params:prompting": PROMPTING, "params:distill_reasons": DISTILL, "params:reason_generation": {"max_new_tokens": 6, "temperature": 0.0},
            "params:llm.inference": {"cache_path": None, "batch_size": 8}, "params:llm.experts.reasoner": smoke_expert("reasoner", num_train_epochs=1),
            "params:llm.experts.predictor": {**smoke_expert("predictor", num_train_epochs=1), "loss_on": "rating"},
        },
        ["reason_ablation_predictions", "reason_ablation_accuracy", "reason_ablations_report", "review_guided.reasoner_adapter", "history_inferred.predictor_sft_data", *(f"{n}_test_predictions" for n in SUPERVISIONS)],
    )  # fmt: skip
    table = out["reason_ablation_accuracy"].set_index("method")
    assert set(table.index) == {"Reason4Rec (Algorithm 1)", "Without Reason", *SUPERVISIONS.values()} and (table["rows"] == 5).all()
    assert out["review_guided.reasoner_adapter"].metadata["training_examples"] == len(pair_contexts)
    # The predictor of an alternative learns from its own reasoner's reasons for the predictor pairs.
    assert out["history_inferred.predictor_sft_data"]["prompt"].str.contains(prompts.ANALYSIS_HEADER).all()
    for name in SUPERVISIONS:
        scored = out[f"{name}_test_predictions"]
        assert len(scored) == 5 and scored["prediction"].between(1, 5).all()
    # Reason4Rec's own predictions and each alternative's, stacked with their method's name.
    stacked = out["reason_ablation_predictions"]
    assert stacked.groupby("method", sort=False).size().to_dict() == {"Reason4Rec (Algorithm 1)": 5, **{method: 5 for method in SUPERVISIONS.values()}}
    assert "Review-inferred Reason" in out["reason_ablations_report"]
    assert table["gptscore"].isna().all()  # the rules teacher cannot judge
