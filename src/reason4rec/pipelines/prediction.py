"""The prediction steps ``predict`` and ``recommend`` share, written once and named per use.

``prediction_pipeline("prediction_requests", "prediction")`` reads the requests,
builds their contexts (``prediction_contexts``) and predicts them
(``predictions``): the run's engine, the trained reasoner and predictor, and the
history pool and summaries, as ``evaluate`` uses them.
"""

from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.prediction import predict_requests, prediction_contexts


def prediction_pipeline(requests: str, name: str) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(
                prediction_contexts,
                [requests, "interactions_5core", "history_pool", "summaries", "params:prompting"],
                f"{name}_contexts",
                name=f"build_{name}_contexts",
            ),
            Node(
                predict_requests,
                [f"{name}_contexts", "engine", "reasoner_adapter", "predictor_adapter", "params:prompting", "params:reason_generation"],
                f"{name}s",
                name=f"predict_{name}s",
            ),
        ]
    )
