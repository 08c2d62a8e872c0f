from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import generate_pair_reasons, no_reason_sft_examples, predictor_pairs, predictor_sft_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(predictor_pairs, ["reasoner_contexts", "distilled_reasons", "params:train_predictor"], "predictor_contexts", name="select_predictor_pairs"),
            Node(
                generate_pair_reasons,
                ["predictor_contexts", "base_model", "reasoner_adapter", "params:domain", "params:prompt_wording", "params:reason_generation", "params:inference_batch_size", "params:llm.inference"],
                "reasoner_pair_reasons",
                name="generate_reasoner_pair_reasons",
            ),
            Node(predictor_sft_examples, ["predictor_contexts", "reasoner_pair_reasons", "params:domain", "params:prompt_wording"], "predictor_sft_data", name="build_predictor_sft_data"),
            expert_training_pipeline("predictor"),
            # The "Without Reason" ablation (Table 4): the same pairs and training, no reason in the prompt.
            Node(no_reason_sft_examples, ["predictor_contexts", "params:domain", "params:prompt_wording"], "predictor_no_reason_sft_data", name="build_no_reason_sft_data"),
            expert_training_pipeline("predictor_no_reason"),
        ],
        tags=["train_predictor"],
    )
