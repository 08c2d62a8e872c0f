"""``kedro run --pipelines predict``, after a run: the trained reasoner and predictor on
the pairs of ``prediction_requests`` (not part of the default run)."""

from kedro.pipeline import Pipeline

from reason4rec.pipelines.prediction import prediction_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([prediction_pipeline("prediction_requests", "prediction")], tags=["predict"])
