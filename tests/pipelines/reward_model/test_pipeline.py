import math

import pytest

from reason4rec import prompts
from reason4rec.pipelines.reward_model import create_pipeline
from reason4rec.pipelines.reward_model.nodes import reward_sft_examples
from tests.conftest import LORA_HYPER, run_pipeline


def test_the_target_review_fills_the_analysis_slot(pair_contexts):
    sft = reward_sft_examples(pair_contexts, "Digital Music")
    for review, prompt in zip(pair_contexts["review"], sft["prompt"]):
        assert f"{prompts.ANALYSIS_HEADER}\n{review}" in prompt
    assert sft["response"].tolist() == [prompts.rating_answer(r) for r in pair_contexts["rating"]]


def test_pipeline_trains_on_the_reward_pairs_and_checks_on_the_reasoner_pairs(tiny_base, pair_contexts):
    reward_contexts, reasoner_contexts = pair_contexts.iloc[:8], pair_contexts.iloc[8:]
    out = run_pipeline(
        create_pipeline(),
        {
            "reward_contexts": reward_contexts, "reasoner_contexts": reasoner_contexts, "base_model": tiny_base, "params:domain": "Digital Music",
            "params:llm.experts.reward_model": {**LORA_HYPER, "epochs": 1, "loss_on": "rating"}, "params:reward_model": {"check_pairs": 3}, "params:inference_batch_size": 8, "params:llm.inference": {},
        },
        ["reward_model_sft_data", "reward_model_adapter", "reward_check"],
    )  # fmt: skip
    assert out["reward_model_adapter"].metadata["training_examples"] == len(reward_contexts)
    check = out["reward_check"].set_index("reason_type")
    assert list(check.index) == ["Review-guided Reason", "Without Reason"] and (check["rows"] == 3).all()
    assert all(math.isfinite(v) for v in check["mae"])


def test_a_misspelt_check_setting_is_refused(tiny_base, pair_contexts):
    from reason4rec.pipelines.reward_model.nodes import check_reward_model

    with pytest.raises(ValueError, match="unknown reward_model setting.*check_pair\\b"):
        check_reward_model(pair_contexts, tiny_base, None, "Digital Music", {"check_pair": 3}, 8)
