from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import reasoner_sft_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(reasoner_sft_examples, ["distilled_reasons", "reasoner_contexts", "params:prompting"], "reasoner_sft_data", name="build_reasoner_sft_data"),
            expert_training_pipeline("reasoner"),
        ],
        tags=["train_reasoner"],
    )
