import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from reason4rec.datasets.review_source import ReviewSourceDataset
from reason4rec.pipelines.ingest_5core import create_pipeline

PARAMS = {"k_core": 5, "time_window_days": None, "valid_fraction": 0.1, "test_fraction": 0.1}


def run_ingest(raw_dataset):
    catalog = DataCatalog({"raw_reviews": raw_dataset})
    catalog["params:ingest"] = PARAMS
    outputs = ["interactions_all", "dataset_stats", "ingest_rejects"]
    for name in outputs:
        catalog[name] = MemoryDataset()
    SequentialRunner().run(create_pipeline(), catalog)
    out = {name: catalog.load(name) for name in outputs}
    # The splits are intermediate here (released after use); interactions_all carries them.
    for split, part in out["interactions_all"].groupby("split"):
        out[f"interactions_{split}"] = part.drop(columns="split").reset_index(drop=True)
    return out


def check_invariants(out, n_raw):
    train, valid, test = out["interactions_train"], out["interactions_valid"], out["interactions_test"]
    assert list(train.columns[:6]) == ["user_id", "item_id", "rating", "review", "title", "timestamp"]
    assert train["timestamp"].max() < test["timestamp"].min() and valid["timestamp"].max() < test["timestamp"].min()
    assert test["user_id"].isin(train["user_id"]).all() and test["item_id"].isin(train["item_id"]).all()
    assert len(train) + len(valid) + len(test) + len(out["ingest_rejects"]) == n_raw  # nothing lost silently
    stats = out["dataset_stats"].set_index("split")
    assert stats.loc["train", "rows"] == len(train) and stats.loc["test", "users"] == test["user_id"].nunique()


def test_ingest_on_synthetic_world(smoke_world):
    dataset = ReviewSourceDataset(source="synthetic", synthetic=smoke_world)
    out = run_ingest(dataset)
    check_invariants(out, len(dataset.load()))
    assert list(out["interactions_all"]["timestamp"]) == sorted(out["interactions_all"]["timestamp"])


def test_ingest_on_real_musical_instruments(musical_instruments):
    dataset = ReviewSourceDataset(source="amazon", reviews_path=str(musical_instruments))
    out = run_ingest(dataset)
    check_invariants(out, 10261)
    rejects = out["ingest_rejects"]["reason"].value_counts()
    assert rejects["empty_review"] == 7  # PROVENANCE.md: 7 reviews have empty text
    assert (out["interactions_train"]["title"].str.startswith("Item ")).all()  # no metadata: placeholders
