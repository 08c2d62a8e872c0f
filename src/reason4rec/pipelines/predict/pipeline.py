"""``kedro run --pipelines predict``, after a run: the trained reasoner and predictor on
the pairs of ``prediction_requests`` (not part of the default run)."""

from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.prediction import predict_requests, prediction_contexts


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(
                prediction_contexts,
                ["prediction_requests", "interactions_5core", "history_pool", "summaries", "params:prompting"],
                "prediction_contexts",
                name="build_prediction_contexts",
            ),
            Node(
                predict_requests,
                ["prediction_contexts", "engine", "reasoner_adapter", "predictor_adapter", "params:prompting", "params:reason_generation"],
                "predictions",
                name="predict_requests",
            ),
        ],
        tags=["predict"],
    )
