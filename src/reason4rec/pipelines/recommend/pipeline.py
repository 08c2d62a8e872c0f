"""``kedro run --pipelines recommend``, after a run: for each user of
``recommendation_requests``, the candidates predicted as ``predict`` predicts them
(in batches), ranked, the top ``k`` kept (not part of the default run)."""

from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.prediction import prediction_pipeline
from reason4rec.prediction import rank_recommendations, recommendation_candidates


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(recommendation_candidates, ["recommendation_requests", "interactions_5core"], "recommendation_candidates", name="list_recommendation_candidates"),
            prediction_pipeline("recommendation_candidates", "candidate_prediction"),
            Node(rank_recommendations, ["recommendation_candidates", "candidate_predictions"], "recommendations", name="rank_recommendations"),
        ],
        tags=["recommend"],
    )
