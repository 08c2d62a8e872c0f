from kedro.pipeline import Node, Pipeline

from reason4rec.contexts import build_contexts

from .nodes import (
    baseline_predictions,
    build_report,
    compile_accuracy,
    compile_metrics,
    judge_reasons,
    predict_with_reasons,
    predict_without_reasons,
    sample_test_rows,
    time_one_at_a_time,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(sample_test_rows, ["interactions_test", "params:evaluate"], "test_targets", name="sample_test_rows"),
            Node(build_contexts, ["test_targets", "history_pool", "summaries", "params:history_length"], "test_contexts", name="build_test_contexts"),
            Node(
                predict_with_reasons,
                ["test_contexts", "base_model", "reasoner_adapter", "predictor_adapter", "params:domain", "params:prompt_wording", "params:reason_generation", "params:inference_batch_size", "params:llm.inference"],
                "test_predictions",
                name="predict_with_reasons",
            ),
            Node(
                time_one_at_a_time,
                ["test_contexts", "base_model", "reasoner_adapter", "predictor_adapter", "params:domain", "params:prompt_wording", "params:reason_generation", "params:evaluate", "params:llm.inference"],
                "test_timings",
                name="time_one_at_a_time",
            ),
            Node(
                predict_without_reasons,
                ["test_contexts", "base_model", "predictor_no_reason_adapter", "params:domain", "params:prompt_wording", "params:inference_batch_size", "params:llm.inference"],
                "test_predictions_no_reason",
                name="predict_without_reasons",
            ),
            Node(baseline_predictions, ["interactions_train", "test_targets", "params:baselines"], "baseline_predictions", name="predict_with_baselines"),
            Node(compile_accuracy, ["test_predictions", "test_predictions_no_reason", "baseline_predictions"], "accuracy_table", name="compile_accuracy"),
            Node(judge_reasons, ["test_predictions", "interactions_test", "teacher", "params:domain", "params:evaluate"], "reason_gptscore", name="judge_reasons"),
            Node(
                compile_metrics,
                ["accuracy_table", "test_predictions", "interactions_test", "interactions_train", "reward_check", "distilled_reasons", "reason_gptscore", "test_timings"],
                "evaluation_metrics",
                name="compile_metrics",
            ),
            Node(
                build_report,
                ["evaluation_metrics", "accuracy_table", "test_predictions", "interactions_test", "reward_check", "distilled_reasons", "params:evaluate", "params:distill_reasons.tau"],
                ["evaluation_report", "plot_error_by_method", "plot_predicted_vs_true", "plot_s_eval_distribution", "plot_acceptance_by_attempt"],
                name="build_report",
            ),
        ],
        tags=["evaluate"],
    )
