import math

import pytest

from reason4rec import prompts
from reason4rec.pipelines.reward_model import create_pipeline
from reason4rec.pipelines.reward_model.nodes import REASON_TYPES, TEACHER_REASON_TYPES, request_check_reasons, reward_sft_examples
from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.teacher.rules import RulesBackend
from tests.helpers import PROMPTING, run_pipeline, smoke_expert

DISTILL = {"max_attempts": 3, "tau": 0.1, "baseline": "none", "temperature": 0.9, "max_tokens": 256, "chunk_size": 8, "journal_dir": None}


def test_the_target_review_fills_the_analysis_slot(pair_contexts):
    sft = reward_sft_examples(pair_contexts, PROMPTING)
    for review, prompt in zip(pair_contexts["review"], sft["prompt"]):
        assert f"{prompts.ANALYSIS_HEADER}\n{review}" in prompt
    assert sft["response"].tolist() == [prompts.rating_answer(r) for r in pair_contexts["rating"]]


def test_pipeline_trains_on_the_reward_pairs_and_checks_on_the_reasoner_pairs(tiny_base, pair_contexts):
    teacher = CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2)
    reward_contexts, reasoner_contexts = pair_contexts.iloc[:8], pair_contexts.iloc[8:]
    out = run_pipeline(
        create_pipeline(),
        {
            "reward_contexts": reward_contexts, "reasoner_contexts": reasoner_contexts, "base_model": tiny_base, "params:prompting": PROMPTING,
            "params:llm.experts.reward_model": {**smoke_expert("reward_model", num_train_epochs=1), "loss_on": "rating"}, "params:reward_model": {"check_pairs": 3},
            "params:llm.inference": {"cache_path": None, "batch_size": 8}, "teacher": teacher, "params:distill_reasons": DISTILL,
        },
        ["reward_model_sft_data", "reward_model_adapter", "reward_check_reasons", "reward_check"],
    )  # fmt: skip
    assert out["reward_model_adapter"].metadata["training_examples"] == len(reward_contexts)
    check = out["reward_check"].set_index("reason_type")
    assert list(check.index) == list(REASON_TYPES) and (check["rows"] == 3).all()
    assert all(math.isfinite(v) for v in check["mae"])
    # Every checked pair carries a reason of each type (the rules teacher's reasons are all usable).
    check_reasons = out["reward_check_reasons"]
    assert len(check_reasons) == 3 and check_reasons[["Review-guided Reason", *TEACHER_REASON_TYPES]].notna().all().all()
    # The three teacher rows were asked for: review-inferred, hinted and unhinted reasons for each checked pair.
    assert teacher.usage[("reward_check", "rules-v1")].calls == 9


def test_every_reason_type_reaches_the_reward_model_and_unusable_pairs_are_left_out(pair_contexts, monkeypatch):
    """``request_check_reasons`` asks the teacher for the three teacher-written reasons and leaves out a pair
    whose reason states the rating; ``check_reward_model`` scores each type of reason on the pairs kept."""
    from reason4rec.pipelines.reward_model import nodes

    seen: dict[int, list] = {}

    def fake_score(engine, contexts, reasons, adapter, prompting):
        seen[len(seen)] = None if reasons is None else list(reasons)
        return [3.0] * len(contexts), 0.0

    class NoEngine:
        """The scores are faked: the engine only has the adapter loaded into it."""

        def __init__(self):
            self.loaded = {}

        def load_adapters(self, adapters):
            self.loaded.update(adapters)

    asked = []

    class StatingTeacher(CompletionClient):
        def complete(self, requests, stage, desc=None):
            asked.append(list(requests))
            answers = super().complete(requests, stage, desc)
            answers[0].text = "They would rate it 4 stars."  # the first pair's reasons state the rating: left out
            return answers

    monkeypatch.setattr(nodes, "score_ratings", fake_score)
    checked = pair_contexts.head(4)
    teacher = StatingTeacher(RulesBackend(), AnswerCache(None), concurrency=2)
    reasons = request_check_reasons(checked, teacher, PROMPTING, {"check_pairs": None}, DISTILL)
    assert list(zip(reasons["user_id"], reasons["item_id"])) == list(zip(checked["user_id"].iloc[1:], checked["item_id"].iloc[1:]))
    engine = NoEngine()
    table = nodes.check_reward_model(reasons, engine, "the reward adapter", PROMPTING).set_index("reason_type")
    assert engine.loaded == {"reward_model": "the reward adapter"}
    assert list(table.index) == list(REASON_TYPES) and (table["rows"] == 3).all()
    review_guided, review_inferred, hint_inferred, history_inferred, without = (seen[i] for i in range(5))
    assert review_guided == checked["review"].iloc[1:].tolist()
    assert all(r.startswith("In the review the user") or r.startswith("The review names") for r in review_inferred)
    assert without is None
    # What the teacher was asked: the review with the histories; Algorithm 1's first hinted prompt; its first prompt.
    review_asked, hint_asked, history_asked = asked
    assert all(prompts.REVIEW_HEADER in r.prompt and "Hint:" not in r.prompt for r in review_asked)
    assert all("Hint:" in r.prompt and r.sample_index == 1 and r.temperature == DISTILL["temperature"] for r in hint_asked)
    assert all("Hint:" not in r.prompt and prompts.REVIEW_HEADER not in r.prompt and r.sample_index == 0 for r in history_asked)
    assert len(hint_inferred) == len(history_inferred) == 3


def test_a_misspelt_check_setting_is_refused(pair_contexts):
    with pytest.raises(ValueError, match="unknown reward_model setting.*check_pair\\b"):
        request_check_reasons(pair_contexts, None, PROMPTING, {"check_pair": 3}, DISTILL)
