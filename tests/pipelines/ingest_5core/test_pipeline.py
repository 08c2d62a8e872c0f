import pytest

from reason4rec.data.synthetic import generate_review_world
from reason4rec.datasets.review_source import ReviewSourceDataset
from reason4rec.pipelines.ingest_5core import create_pipeline
from reason4rec.pipelines.ingest_5core.nodes import build_base
from tests.helpers import PROMPTING, TINY_BASE_PARAMS, run_pipeline

PARAMS = {"k_core": 5, "time_window_days": None, "valid_fraction": 0.1, "test_fraction": 0.1}
PAIRS = {"seed": 1, "reward_model_size": 16, "reasoner_size": 8}
# A tiny base pre-trained on 40 training prompts, for a fast test.
BASE = {**TINY_BASE_PARAMS, "tiny": {**TINY_BASE_PARAMS["tiny"], "corpus_size": 40, "pretraining": {**TINY_BASE_PARAMS["tiny"]["pretraining"], "num_train_epochs": 1}}}


def run_ingest(raw_dataset):
    inputs = {"raw_reviews": raw_dataset.load(), "params:ingest": PARAMS, "params:pairs": PAIRS, "params:llm.base": BASE, "params:prompting": PROMPTING}
    splits = [f"interactions_{split}" for split in ("train", "valid", "test")] + ["history_pool"]
    return run_pipeline(create_pipeline(), inputs, [*splits, "dataset_stats", "ingest_rejects", "reward_pairs", "reasoner_pairs", "base_model"])


def check_invariants(out, n_raw):
    train, valid, test = out["interactions_train"], out["interactions_valid"], out["interactions_test"]
    assert list(train.columns[:6]) == ["user_id", "item_id", "rating", "review", "title", "timestamp"]
    assert train["timestamp"].max() < test["timestamp"].min() and valid["timestamp"].max() < test["timestamp"].min()
    assert test["user_id"].isin(train["user_id"]).all() and test["item_id"].isin(train["item_id"]).all()
    assert len(train) + len(valid) + len(test) + len(out["ingest_rejects"]) == n_raw  # nothing lost silently
    stats = out["dataset_stats"].set_index("split")
    assert stats.loc["train", "rows"] == len(train) and stats.loc["test", "users"] == test["user_id"].nunique()
    # Two disjoint samples of training pairs, for the reward model and the reasoner.
    train_keys = set(zip(train["user_id"], train["item_id"]))
    reward_keys = set(zip(out["reward_pairs"]["user_id"], out["reward_pairs"]["item_id"]))
    reasoner_keys = set(zip(out["reasoner_pairs"]["user_id"], out["reasoner_pairs"]["item_id"]))
    assert (len(reward_keys), len(reasoner_keys)) == (PAIRS["reward_model_size"], PAIRS["reasoner_size"])
    assert reward_keys <= train_keys and reasoner_keys <= train_keys and not reward_keys & reasoner_keys
    assert out["base_model"].name == "tiny" and out["base_model"].metadata["vocab_size"] > 0


def test_ingest_on_synthetic_world(smoke_world):
    dataset = ReviewSourceDataset(source="synthetic", synthetic=smoke_world)
    out = run_ingest(dataset)
    check_invariants(out, len(dataset.load().scan()))
    assert list(out["history_pool"]["timestamp"]) == sorted(out["history_pool"]["timestamp"])
    assert len(out["history_pool"]) == len(out["interactions_train"]) and set(out["history_pool"]["split"]) == {"train"}  # ingest.history_pool: train


def test_ingest_on_real_musical_instruments(musical_instruments):
    dataset = ReviewSourceDataset(source="amazon", reviews_path=str(musical_instruments))
    out = run_ingest(dataset)
    check_invariants(out, 10261)
    rejects = out["ingest_rejects"]["reason"].value_counts()
    assert rejects["empty_review"] == 7  # PROVENANCE.md: 7 reviews have empty text
    assert (out["interactions_train"]["title"].str.startswith("Item ")).all()  # no metadata: placeholders


def test_a_misspelt_base_setting_is_refused_before_anything_is_built(smoke_world):
    train = generate_review_world(smoke_world)
    with pytest.raises(ValueError, match=r"unknown llm.base.tiny setting\(s\) corpus_sise"):
        build_base(train, {**BASE, "tiny": {**BASE["tiny"], "corpus_sise": 10}}, PROMPTING)
