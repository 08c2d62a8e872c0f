from kedro.pipeline import Node, Pipeline

from reason4rec.contexts import build_contexts
from reason4rec.evaluation.baselines import predict_with_baselines
from reason4rec.evaluation.faithfulness import score_counterfactual_reasons
from reason4rec.evaluation.gptscore import judge_reasons
from reason4rec.evaluation.report import PLOT_FILES
from reason4rec.inference import predict_with_reasons
from reason4rec.pipelines.engine import engine_pipeline

from .nodes import (
    assess_predictions,
    assess_reasons,
    compile_accuracy,
    compile_metrics,
    plot_results,
    predict_without_reasons,
    sample_test_rows,
    select_report_examples,
    select_timed_rows,
    summarize_distillation,
    time_predictions,
    write_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(sample_test_rows, ["interactions_test", "params:evaluate"], "test_targets", name="sample_test_rows"),
            Node(build_contexts, ["test_targets", "history_pool", "summaries", "params:prompting"], "test_contexts", name="build_test_contexts"),
            Node(
                predict_with_reasons,
                ["test_contexts", "engine", "reasoner_adapter", "predictor_adapter", "params:prompting", "params:reason_generation"],
                "test_predictions",
                name="predict_with_reasons",
            ),
            Node(
                score_counterfactual_reasons,
                ["test_contexts", "test_predictions", "engine", "predictor_adapter", "params:prompting"],
                "counterfactual_predictions",
                name="score_counterfactual_reasons",
            ),
            Node(assess_predictions, ["test_predictions", "counterfactual_predictions"], "prediction_assessment", name="assess_predictions"),
            Node(select_timed_rows, ["test_contexts", "params:evaluate"], "timed_contexts", name="select_timed_rows"),
            Node(
                time_predictions,
                ["timed_contexts", "engine", "reasoner_adapter", "predictor_adapter", "params:prompting", "params:reason_generation"],
                "test_timings",
                name="time_predictions",
            ),
            Node(
                predict_without_reasons,
                ["test_contexts", "engine", "predictor_no_reason_adapter", "params:prompting"],
                "test_predictions_no_reason",
                name="predict_without_reasons",
            ),
            Node(predict_with_baselines, ["interactions_train", "test_targets", "params:baselines"], "baseline_predictions", name="predict_with_baselines"),
            Node(compile_accuracy, ["test_predictions", "test_predictions_no_reason", "baseline_predictions"], "accuracy_table", name="compile_accuracy"),
            Node(judge_reasons, ["test_predictions", "interactions_test", "teacher", "params:prompting", "params:evaluate"], "reason_gptscore", name="judge_reasons"),
            Node(assess_reasons, ["test_predictions", "interactions_test", "reason_gptscore", "params:evaluate"], "reason_assessment", name="assess_reasons"),
            Node(summarize_distillation, ["distilled_reasons", "interactions_train", "params:evaluate"], "distillation_summary", name="summarize_distillation"),
            Node(
                compile_metrics,
                ["accuracy_table", "reason_assessment", "distillation_summary", "reward_check", "prediction_assessment", "test_timings"],
                "evaluation_metrics",
                name="compile_metrics",
            ),
            Node(select_report_examples, ["test_predictions", "interactions_test", "params:evaluate"], "report_examples", name="select_report_examples"),
            Node(
                plot_results,
                ["accuracy_table", "test_predictions", "distilled_reasons", "params:distill_reasons.tau", "counterfactual_predictions"],
                [f"plot_{name}" for name in PLOT_FILES],
                name="plot_results",
            ),
            Node(
                write_report,
                ["evaluation_metrics", "accuracy_table", "reward_check", "distilled_reasons", "report_examples"],
                "evaluation_report",
                name="write_report",
            ),
        ],
        tags=["evaluate"],
    )
