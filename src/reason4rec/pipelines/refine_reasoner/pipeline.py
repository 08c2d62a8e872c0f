"""After a run, ``kedro run --pipelines refine_reasoner``: the trained reasoner continued by GRPO
(TRL's ``GRPOTrainer``) on the reasoner pairs, each sampled reason rewarded by the frozen
predictor's error (``reason4rec.refinement``), with ``llm.experts.reasoner_rl``'s settings.
Then the refined reasoner's reasons for ``evaluate``'s test rows, rated by the same predictor, beside
Reason4Rec and its "w/o reason" ablation (``refinement_report``). Its nodes are the library's
functions; it reads only what a run has written."""

from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.inference import predict_with_reasons
from reason4rec.refinement import compare_refined_reasoner, plot_refinement, refine_reasoner, refinement_examples, refinement_report, teacher_verdicts


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(refinement_examples, ["reasoner_contexts", "params:prompting"], "reasoner_rl_data", name="build_reasoner_rl_data"),
            Node(
                refine_reasoner,
                ["base_model", "reasoner_adapter", "predictor_adapter", "engine", "reasoner_rl_data", "params:llm.experts.reasoner_rl"],
                ["reasoner_rl_adapter", "reasoner_rl_log"],
                name="refine_reasoner",
            ),
            Node(
                predict_with_reasons,
                ["test_contexts", "engine", "reasoner_rl_adapter", "predictor_adapter", "params:prompting", "params:reason_generation"],
                "test_predictions_rl",
                name="predict_with_refined_reasoner",
            ),
            Node(teacher_verdicts, ["test_contexts", "teacher", "params:prompting", "params:distill_reasons"], "test_teacher_verdicts", name="ask_teacher_verdicts"),
            Node(
                compare_refined_reasoner,
                ["test_predictions_rl", "test_predictions", "test_predictions_no_reason", "test_teacher_verdicts"],
                "refinement_accuracy",
                name="compare_refined_reasoner",
            ),
            Node(refinement_report, ["refinement_accuracy", "reasoner_rl_log"], "refinement_report", name="write_refinement_report"),
            Node(plot_refinement, "reasoner_rl_log", "plot_refinement_rewards", name="plot_refinement_rewards"),
        ],
        tags=["refine_reasoner"],
    )
