from kedro.pipeline import Pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Empty until its issue lands; registered now so the pipeline names are stable."""
    return Pipeline([], tags=["reward_model"])
