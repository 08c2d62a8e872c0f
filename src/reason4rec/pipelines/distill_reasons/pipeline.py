from kedro.pipeline import Node, Pipeline

from .nodes import distill


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                distill,
                ["reasoner_contexts", "base_model", "reward_model_adapter", "teacher", "params:domain", "params:prompt_wording", "params:distill_reasons", "params:inference_batch_size", "params:llm.inference"],
                ["distilled_reasons", "teacher_usage_distill_reasons"],
                name="distill_reasons",
            )
        ],
        tags=["distill_reasons"],
    )
