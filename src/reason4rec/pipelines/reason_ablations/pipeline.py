"""Table 4 (section 4.3.2): steps 2 and 3 of the method again, once per alternative supervision of the
reasoner, each in its own namespace (the kedro-viz demo project's pattern), scored on the test rows
``evaluate`` scores. Every step is the method's own node; only the reasoner's training answers differ."""

from kedro.pipeline import Node, Pipeline

from reason4rec.inference import generate_pair_reasons, predict_with_reasons, predictor_sft_examples
from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.pipelines.expert_training import bound, expert_training_pipeline

from .nodes import SUPERVISIONS, ablation_reasoner_sft_examples, compile_reason_ablations, reason_ablations_report, stack_reasoned_predictions

SHARED_INPUTS = {"reasoner_contexts", "distilled_reasons", "teacher", "predictor_contexts", "test_contexts", "base_model", "engine"}
SHARED_PARAMETERS = {"params:prompting", "params:distill_reasons", "params:reason_generation", "params:llm.experts.reasoner", "params:llm.experts.predictor", "params:llm.launcher"}


def supervision_pipeline(supervision: str) -> Pipeline:
    """The reasoner trained on ``supervision``, the predictor on that reasoner's reasons, both scored on the test rows."""
    steps = Pipeline(
        [
            Node(
                bound(ablation_reasoner_sft_examples, supervision=supervision),
                ["reasoner_contexts", "distilled_reasons", "teacher", "params:prompting", "params:distill_reasons"],
                "reasoner_sft_data",
                name="build_reasoner_sft_data",
            ),
            expert_training_pipeline("reasoner"),
            Node(
                generate_pair_reasons,
                ["predictor_contexts", "engine", "reasoner_adapter", "params:prompting", "params:reason_generation"],
                "reasoner_pair_reasons",
                name="generate_reasoner_pair_reasons",
            ),
            Node(predictor_sft_examples, ["predictor_contexts", "reasoner_pair_reasons", "params:prompting"], "predictor_sft_data", name="build_predictor_sft_data"),
            expert_training_pipeline("predictor"),
            Node(
                predict_with_reasons,
                ["test_contexts", "engine", "reasoner_adapter", "predictor_adapter", "params:prompting", "params:reason_generation"],
                "test_predictions",
                name="predict_with_reasons",
            ),
        ]
    )
    return Pipeline(
        steps, namespace=supervision, inputs=SHARED_INPUTS, outputs={"test_predictions": f"{supervision}_test_predictions"}, parameters=SHARED_PARAMETERS
    )


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            *(supervision_pipeline(name) for name in SUPERVISIONS),
            Node(
                stack_reasoned_predictions,
                {"test_predictions": "test_predictions", **{name: f"{name}_test_predictions" for name in SUPERVISIONS}},
                "reason_ablation_predictions",
                name="stack_reasoned_predictions",
            ),
            Node(
                compile_reason_ablations,
                ["reason_ablation_predictions", "test_predictions_no_reason", "interactions_test", "teacher", "params:prompting", "params:evaluate"],
                "reason_ablation_accuracy",
                name="compile_reason_ablations",
            ),
            Node(reason_ablations_report, "reason_ablation_accuracy", "reason_ablations_report", name="write_reason_ablations_report"),
        ],
        tags=["reason_ablations"],
    )
