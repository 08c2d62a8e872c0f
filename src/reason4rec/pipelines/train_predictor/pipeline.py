from kedro.pipeline import Node, Pipeline

from reason4rec.inference import generate_pair_reasons, predictor_sft_examples
from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import no_reason_sft_examples, predictor_pairs


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(predictor_pairs, ["reasoner_contexts", "distilled_reasons", "params:train_predictor"], "predictor_contexts", name="select_predictor_pairs"),
            Node(
                generate_pair_reasons,
                ["predictor_contexts", "engine", "reasoner_adapter", "params:prompting", "params:reason_generation"],
                "reasoner_pair_reasons",
                name="generate_reasoner_pair_reasons",
            ),
            Node(predictor_sft_examples, ["predictor_contexts", "reasoner_pair_reasons", "params:prompting"], "predictor_sft_data", name="build_predictor_sft_data"),
            expert_training_pipeline("predictor"),
            # The "Without Reason" ablation (Table 4): the same pairs and training, no reason in the prompt.
            Node(no_reason_sft_examples, ["predictor_contexts", "params:prompting"], "predictor_no_reason_sft_data", name="build_no_reason_sft_data"),
            expert_training_pipeline("predictor_no_reason"),
        ],
        tags=["train_predictor"],
    )
