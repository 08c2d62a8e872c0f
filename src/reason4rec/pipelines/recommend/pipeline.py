"""``kedro run --pipelines recommend``, after a run: for each user of
``recommendation_requests``, the candidates predicted as ``predict`` predicts them
(in batches), ranked, the top ``k`` kept (not part of the default run)."""

from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.prediction import predict_requests, prediction_contexts, rank_recommendations, recommendation_candidates


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(recommendation_candidates, ["recommendation_requests", "interactions_5core"], "recommendation_candidates", name="list_recommendation_candidates"),
            Node(
                prediction_contexts,
                ["recommendation_candidates", "interactions_5core", "history_pool", "summaries", "params:prompting"],
                "recommendation_contexts",
                name="build_recommendation_contexts",
            ),
            Node(
                predict_requests,
                ["recommendation_contexts", "engine", "reasoner_adapter", "predictor_adapter", "params:prompting", "params:reason_generation"],
                "recommendation_predictions",
                name="predict_candidates",
            ),
            Node(rank_recommendations, ["recommendation_candidates", "recommendation_predictions"], "recommendations", name="rank_recommendations"),
        ],
        tags=["recommend"],
    )
