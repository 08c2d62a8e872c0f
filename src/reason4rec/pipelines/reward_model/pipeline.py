from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import check_reward_model, reward_sft_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(reward_sft_examples, ["reward_contexts", "params:domain", "params:prompt_wording"], "reward_model_sft_data", name="build_reward_sft_data"),
            expert_training_pipeline("reward_model"),
            Node(
                check_reward_model,
                [
                    "reasoner_contexts", "base_model", "reward_model_adapter", "teacher", "params:domain", "params:prompt_wording", "params:reward_model",
                    "params:distill_reasons", "params:inference_batch_size", "params:llm.inference",
                ],  # fmt: skip
                "reward_check",
                name="check_reward_model",
            ),
        ],
        tags=["reward_model"],
    )
