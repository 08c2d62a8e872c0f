import math

from reason4rec import contexts as ctx
from reason4rec import prompts
from reason4rec.data.synthetic import generate_review_world
from reason4rec.pipelines.reward_model import create_pipeline
from reason4rec.pipelines.reward_model.nodes import reward_sft_examples
from tests.conftest import LORA_HYPER, SMOKE_WORLD, run_pipeline


def test_the_target_review_fills_the_analysis_slot(pair_contexts):
    sft = reward_sft_examples(pair_contexts, "Digital Music")
    for review, prompt in zip(pair_contexts["review"], sft["prompt"]):
        assert f"{prompts.ANALYSIS_HEADER}\n{review}" in prompt
    assert sft["response"].tolist() == [prompts.rating_answer(r) for r in pair_contexts["rating"]]


def test_pipeline_samples_disjoint_pairs_trains_and_checks_the_reward_model(tiny_base):
    world = generate_review_world(SMOKE_WORLD)
    pool = ctx.interaction_pool(world, world.iloc[:0], world.iloc[:0])
    summaries = pool[["user_id", "item_id"]].assign(positive="Melody", negative="None", preferences="Melody")
    out = run_pipeline(
        create_pipeline(),
        {
            "interactions_train": world, "interactions_all": pool, "summaries": summaries, "base_model": tiny_base,
            "params:pairs": {"seed": 1, "reward_model_size": 16, "reasoner_size": 8}, "params:history_length": 3, "params:domain": "Digital Music",
            "params:llm.experts.reward_model": {**LORA_HYPER, "epochs": 1, "loss_on": "rating"}, "params:reward_model": {"check_pairs": 4}, "params:inference_batch_size": 8,
        },
        ["reward_contexts", "reasoner_contexts", "reward_model_sft_data", "reward_model_adapter", "reward_check"],
    )  # fmt: skip
    reward_keys = set(zip(out["reward_contexts"]["user_id"], out["reward_contexts"]["item_id"]))
    reasoner_keys = set(zip(out["reasoner_contexts"]["user_id"], out["reasoner_contexts"]["item_id"]))
    assert len(reward_keys) == 16 and len(reasoner_keys) == 8 and not reward_keys & reasoner_keys
    assert out["reward_model_adapter"].metadata["training_examples"] == 16
    check = out["reward_check"].set_index("reason_type")
    assert list(check.index) == ["Review-guided Reason", "Without Reason"] and (check["rows"] == 4).all()
    assert all(math.isfinite(v) for v in check["mae"])
