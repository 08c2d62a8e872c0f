from kedro.pipeline import Node, Pipeline

from .nodes import build_base, clean, collect_rejects, pool_histories, read_kept_text, sample_pairs, split, window_and_k_core, with_review_text


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(clean, ["raw_reviews", "ingest_engine"], ["interactions_clean", "clean_rejects"], name="clean_reviews"),
            Node(
                window_and_k_core,
                ["interactions_clean", "params:ingest", "ingest_engine"],
                ["interactions_5core_ids", "k_core_rejects"],
                name="filter_time_window_and_k_core",
            ),
            Node(read_kept_text, ["interactions_5core_ids", "raw_reviews", "ingest_engine"], "interactions_5core_with_text", name="read_kept_review_text"),
            Node(with_review_text, "interactions_5core_with_text", "interactions_5core", name="publish_interactions_5core"),
            Node(
                split,
                ["interactions_5core_with_text", "params:ingest", "ingest_engine"],
                ["interactions_train", "interactions_valid", "interactions_test", "dataset_stats", "split_rejects"],
                name="split_chronologically",
            ),
            Node(
                pool_histories,
                ["interactions_train", "interactions_valid", "interactions_test", "params:ingest"],
                "history_pool",
                name="pool_histories",
            ),
            Node(sample_pairs, ["interactions_train", "history_pool", "params:pairs"], ["reward_pairs", "reasoner_pairs"], name="sample_pairs"),
            Node(build_base, ["interactions_train", "params:llm.base", "params:prompting"], "base_model", name="build_base_model"),
            Node(
                collect_rejects,
                ["ingest_engine", "clean_rejects", "k_core_rejects", "split_rejects"],
                "ingest_rejects",
                name="collect_rejects",
            ),
        ],
        tags=["ingest_5core"],
    )
