"""``kedro run --pipelines export_bundle``, after a run: ``model_bundle``
(``data/06_models/bundle``), which ``Recommender.from_bundle`` and
``reason4rec serve --bundle`` load without the project."""

from kedro.pipeline import Node, Pipeline

from reason4rec.bundle import assemble_bundle, bundle_settings, bundle_tables


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(bundle_tables, ["history_pool", "summaries", "interactions_5core"], "bundle_tables", name="select_bundle_tables"),
            Node(bundle_settings, ["params:prompting", "params:reason_generation", "params:summarize"], "bundle_settings", name="select_bundle_settings"),
            Node(
                assemble_bundle,
                ["base_model", "summarizer_adapter", "reasoner_adapter", "predictor_adapter", "bundle_tables", "bundle_settings"],
                "model_bundle",
                name="assemble_bundle",
            ),
        ],
        tags=["export_bundle"],
    )
