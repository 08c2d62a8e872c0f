from kedro.pipeline import Node, Pipeline

from reason4rec.contexts import build_contexts
from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import check_summarizer, request_teacher_summaries, summarize_interactions, summarizer_sft_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                request_teacher_summaries,
                ["interactions_train", "teacher", "params:domain", "params:summarize"],
                ["teacher_summaries", "teacher_usage_summarize"],
                name="request_teacher_summaries",
            ),
            Node(summarizer_sft_examples, ["teacher_summaries", "interactions_train", "params:domain"], "summarizer_sft_data", name="build_summarizer_sft_data"),
            expert_training_pipeline("summarizer"),
            Node(
                summarize_interactions,
                ["history_pool", "base_model", "summarizer_adapter", "teacher", "params:domain", "params:summarize", "params:inference_batch_size", "params:llm.inference"],
                "summaries",
                name="summarize_interactions",
            ),
            Node(
                check_summarizer,
                ["teacher_summaries", "interactions_train", "base_model", "summarizer_adapter", "params:domain", "params:summarize", "params:inference_batch_size", "params:llm.inference"],
                "summarizer_check",
                name="check_summarizer",
            ),
            Node(build_contexts, ["reward_pairs", "history_pool", "summaries", "params:history_length"], "reward_contexts", name="build_reward_contexts"),
            Node(build_contexts, ["reasoner_pairs", "history_pool", "summaries", "params:history_length"], "reasoner_contexts", name="build_reasoner_contexts"),
        ],
        tags=["summarize"],
    )
