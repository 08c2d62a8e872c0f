from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import check_reward_model, request_check_reasons, reward_sft_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(reward_sft_examples, ["reward_contexts", "params:prompting"], "reward_model_sft_data", name="build_reward_sft_data"),
            expert_training_pipeline("reward_model"),
            Node(
                request_check_reasons,
                ["reasoner_contexts", "teacher", "params:prompting", "params:reward_model", "params:distill_reasons"],
                "reward_check_reasons",
                name="request_check_reasons",
            ),
            engine_pipeline(),
            Node(check_reward_model, ["reward_check_reasons", "engine", "reward_model_adapter", "params:prompting"], "reward_check", name="check_reward_model"),
        ],
        tags=["reward_model"],
    )
