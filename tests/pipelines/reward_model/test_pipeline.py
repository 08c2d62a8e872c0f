import math

import pytest

from reason4rec import prompts
from reason4rec.pipelines.reward_model import create_pipeline
from reason4rec.pipelines.reward_model.nodes import REASON_TYPES, reward_sft_examples
from reason4rec.teacher import Teacher
from reason4rec.teacher.cache import AnswerCache
from reason4rec.teacher.rules import RulesBackend
from tests.conftest import LORA_HYPER, run_pipeline

DISTILL = {"max_attempts": 3, "tau": 0.1, "baseline": "none", "temperature": 0.9, "max_tokens": 256, "chunk_size": 8, "journal_dir": None}


def test_the_target_review_fills_the_analysis_slot(pair_contexts):
    sft = reward_sft_examples(pair_contexts, "Digital Music", "paper")
    for review, prompt in zip(pair_contexts["review"], sft["prompt"]):
        assert f"{prompts.ANALYSIS_HEADER}\n{review}" in prompt
    assert sft["response"].tolist() == [prompts.rating_answer(r) for r in pair_contexts["rating"]]


def test_pipeline_trains_on_the_reward_pairs_and_checks_on_the_reasoner_pairs(tiny_base, pair_contexts):
    teacher = Teacher(RulesBackend(), AnswerCache(None), concurrency=2)
    reward_contexts, reasoner_contexts = pair_contexts.iloc[:8], pair_contexts.iloc[8:]
    out = run_pipeline(
        create_pipeline(),
        {
            "reward_contexts": reward_contexts, "reasoner_contexts": reasoner_contexts, "base_model": tiny_base, "params:domain": "Digital Music", "params:prompt_wording": "paper",
            "params:llm.experts.reward_model": {**LORA_HYPER, "epochs": 1, "loss_on": "rating"}, "params:reward_model": {"check_pairs": 3}, "params:inference_batch_size": 8, "params:llm.inference": {},
            "teacher": teacher, "params:distill_reasons": DISTILL,
        },
        ["reward_model_sft_data", "reward_model_adapter", "reward_check"],
    )  # fmt: skip
    assert out["reward_model_adapter"].metadata["training_examples"] == len(reward_contexts)
    check = out["reward_check"].set_index("reason_type")
    assert list(check.index) == list(REASON_TYPES) and (check["rows"] == 3).all()
    assert all(math.isfinite(v) for v in check["mae"])
    # The three teacher rows were asked for: review-inferred, hinted and unhinted reasons for each checked pair.
    assert teacher.usage[("reward_check", "rules-v1")].calls == 9


def test_every_reason_type_reaches_the_reward_model_and_unusable_pairs_are_left_out(tiny_base, pair_contexts, monkeypatch):
    from reason4rec.pipelines.reward_model import nodes

    seen: dict[int, list] = {}

    def fake_score(engine, contexts, reasons, adapter, domain, wording, batch_size):
        seen[len(seen)] = None if reasons is None else list(reasons)
        return [3.0] * len(contexts), 0.0

    asked = []

    class StatingTeacher(Teacher):
        def complete(self, requests, stage, desc=None):
            asked.append(list(requests))
            answers = super().complete(requests, stage, desc)
            answers[0].text = "They would rate it 4 stars."  # the first pair's reasons state the rating: left out
            return answers

    monkeypatch.setattr(nodes, "score_ratings", fake_score)
    monkeypatch.setattr(nodes, "engine_for", lambda *a, **k: None)
    checked = pair_contexts.head(4)
    teacher = StatingTeacher(RulesBackend(), AnswerCache(None), concurrency=2)
    table = nodes.check_reward_model(checked, tiny_base, None, teacher, "Digital Music", "paper", {"check_pairs": None}, DISTILL, 8).set_index("reason_type")
    assert (table["rows"] == 3).all()
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


def test_a_misspelt_check_setting_is_refused(tiny_base, pair_contexts):
    from reason4rec.pipelines.reward_model.nodes import check_reward_model

    with pytest.raises(ValueError, match="unknown reward_model setting.*check_pair\\b"):
        check_reward_model(pair_contexts, tiny_base, None, None, "Digital Music", "paper", {"check_pair": 3}, DISTILL, 8)
