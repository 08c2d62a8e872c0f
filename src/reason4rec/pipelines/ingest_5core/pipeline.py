from kedro.pipeline import Node, Pipeline

from reason4rec.contexts import interaction_pool
from reason4rec.data.filtering import clean_reviews

from .nodes import build_base, collect_rejects, sample_pairs, split, window_and_k_core


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(clean_reviews, "raw_reviews", ["interactions_clean", "clean_rejects"], name="clean_reviews"),
            Node(
                window_and_k_core,
                ["interactions_clean", "params:ingest"],
                ["interactions_5core", "k_core_rejects"],
                name="filter_time_window_and_k_core",
            ),
            Node(
                split,
                ["interactions_5core", "params:ingest"],
                ["interactions_train", "interactions_valid", "interactions_test", "dataset_stats", "split_rejects"],
                name="split_chronologically",
            ),
            Node(
                interaction_pool,
                ["interactions_train", "interactions_valid", "interactions_test"],
                "interactions_all",
                name="pool_interactions",
            ),
            Node(sample_pairs, ["interactions_train", "interactions_all", "params:pairs"], ["reward_pairs", "reasoner_pairs"], name="sample_pairs"),
            Node(build_base, ["interactions_train", "params:llm.base", "params:domain"], "base_model", name="build_base_model"),
            Node(
                collect_rejects,
                ["clean_rejects", "k_core_rejects", "split_rejects"],
                "ingest_rejects",
                name="collect_rejects",
            ),
        ],
        tags=["ingest_5core"],
    )
