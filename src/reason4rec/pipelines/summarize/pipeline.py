from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline

from reason4rec.contexts import build_contexts
from reason4rec.pipelines.expert_training import expert_training_pipeline

from .nodes import check_summarizer, request_teacher_summaries, summarize_interactions, summarizer_sft_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(
                request_teacher_summaries,
                ["interactions_train", "teacher", "params:prompting", "params:summarize"],
                ["teacher_summaries", "teacher_usage_summarize"],
                name="request_teacher_summaries",
            ),
            Node(summarizer_sft_examples, ["teacher_summaries", "interactions_train", "params:prompting"], "summarizer_sft_data", name="build_summarizer_sft_data"),
            expert_training_pipeline("summarizer"),
            Node(
                summarize_interactions,
                ["history_pool", "engine", "summarizer_adapter", "teacher", "params:prompting", "params:summarize"],
                "summaries",
                name="summarize_interactions",
            ),
            Node(
                check_summarizer,
                ["teacher_summaries", "interactions_train", "engine", "summarizer_adapter", "params:prompting", "params:summarize"],
                "summarizer_check",
                name="check_summarizer",
            ),
            Node(build_contexts, ["reward_pairs", "history_pool", "summaries", "params:prompting"], "reward_contexts", name="build_reward_contexts"),
            Node(build_contexts, ["reasoner_pairs", "history_pool", "summaries", "params:prompting"], "reasoner_contexts", name="build_reasoner_contexts"),
        ],
        tags=["summarize"],
    )
