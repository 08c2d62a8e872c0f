from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline

from .nodes import distill


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(
                distill,
                ["reasoner_contexts", "engine", "reward_model_adapter", "teacher", "params:prompting", "params:distill_reasons"],
                ["distilled_reasons", "teacher_usage_distill_reasons"],
                name="distill_reasons",
            )
        ],
        tags=["distill_reasons"],
    )
