from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import generate_pair_reasons, predictor_sft_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                generate_pair_reasons,
                ["reasoner_contexts", "base_model", "reasoner_adapter", "params:domain", "params:llm.base", "params:reason_generation"],
                "reasoner_pair_reasons",
                name="generate_reasoner_pair_reasons",
            ),
            Node(predictor_sft_examples, ["reasoner_contexts", "reasoner_pair_reasons", "params:domain"], "predictor_sft_data", name="build_predictor_sft_data"),
            expert_training_pipeline("predictor"),
        ],
        tags=["train_predictor"],
    )
