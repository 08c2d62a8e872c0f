import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from reason4rec.data.filtering import STAGES
from reason4rec.data.synthetic import generate_review_world
from reason4rec.datasets.review_source import ReviewSourceDataset
from reason4rec.pipelines.ingest_5core import create_pipeline
from reason4rec.pipelines.ingest_5core.nodes import build_base
from reason4rec.settings import CONFIG_LOADER_ARGS
from tests.helpers import PROJECT_ROOT, PROMPTING, TINY_BASE_PARAMS

PARAMS = {"k_core": 5, "time_window_days": None, "valid_fraction": 0.1, "test_fraction": 0.1}
PAIRS = {"seed": 1, "reward_model_size": 16, "reasoner_size": 8}
# A tiny base pre-trained on 40 training prompts, for a fast test.
BASE = {**TINY_BASE_PARAMS, "tiny": {**TINY_BASE_PARAMS["tiny"], "corpus_size": 40, "pretraining": {**TINY_BASE_PARAMS["tiny"]["pretraining"], "num_train_epochs": 1}}}


def project_catalog(pipeline, root):
    """conf/base's entries for the pipeline's datasets with their files (and DuckDB's spill
    folder) under ``root``: the ingest's tables pass between its nodes as DuckDB
    relations and are written by DuckDB, then read back as later pipelines read them."""
    config = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "smoke"})["catalog"]
    names = {name for name in pipeline.datasets() if not name.startswith("params:")}
    entries = {name: dict(entry) for name, entry in config.items() if name in names or "{" in name}
    for entry in entries.values():
        for key in ("filepath", "temp_directory"):
            if key in entry:
                entry[key] = str(root / entry[key])
    return DataCatalog.from_config(entries)


def run_ingest(raw_dataset, root):
    pipeline = create_pipeline()
    catalog = project_catalog(pipeline, root)
    inputs = {"raw_reviews": raw_dataset.load(), "params:ingest": PARAMS, "params:pairs": PAIRS, "params:llm.base": BASE, "params:prompting": PROMPTING}
    for name, value in inputs.items():
        catalog[name] = MemoryDataset(value, copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)
    splits = [f"interactions_{split}" for split in ("train", "valid", "test")]
    return {name: catalog.load(name) for name in [*splits, "history_pool", "interactions_5core", "dataset_stats", "ingest_rejects", "reward_pairs", "reasoner_pairs", "base_model"]}


def check_invariants(out, n_raw):
    train, valid, test = out["interactions_train"], out["interactions_valid"], out["interactions_test"]
    assert list(train.columns[:6]) == ["user_id", "item_id", "rating", "review", "title", "timestamp"]
    assert train["timestamp"].max() < test["timestamp"].min() and valid["timestamp"].max() < test["timestamp"].min()
    assert test["user_id"].isin(train["user_id"]).all() and test["item_id"].isin(train["item_id"]).all()
    assert len(train) + len(valid) + len(test) + len(out["ingest_rejects"]) == n_raw  # nothing lost silently
    for part in (train, valid, test, out["interactions_5core"]):
        assert part[["timestamp", "user_id", "item_id"]].equals(part[["timestamp", "user_id", "item_id"]].sort_values(["timestamp", "user_id", "item_id"]))
    assert len(out["interactions_5core"]) == len(train) + len(valid) + len(test) + (out["ingest_rejects"]["stage"] == "split").sum()
    # The rejects by stage, in the ingest's order, then by line (written stage by stage).
    order = out["ingest_rejects"].assign(stage=out["ingest_rejects"]["stage"].map(STAGES.index))[["stage", "line_number"]]
    assert order.equals(order.sort_values(["stage", "line_number"]))
    stats = out["dataset_stats"].set_index("split")
    assert stats.loc["train", "rows"] == len(train) and stats.loc["test", "users"] == test["user_id"].nunique()
    # Two disjoint samples of training pairs, for the reward model and the reasoner.
    train_keys = set(zip(train["user_id"], train["item_id"]))
    reward_keys = set(zip(out["reward_pairs"]["user_id"], out["reward_pairs"]["item_id"]))
    reasoner_keys = set(zip(out["reasoner_pairs"]["user_id"], out["reasoner_pairs"]["item_id"]))
    assert (len(reward_keys), len(reasoner_keys)) == (PAIRS["reward_model_size"], PAIRS["reasoner_size"])
    assert reward_keys <= train_keys and reasoner_keys <= train_keys and not reward_keys & reasoner_keys
    assert out["base_model"].name == "tiny" and out["base_model"].metadata["vocab_size"] > 0


def test_ingest_on_synthetic_world(smoke_world, tmp_path):
    dataset = ReviewSourceDataset(source="synthetic", synthetic=smoke_world)
    out = run_ingest(dataset, tmp_path)
    check_invariants(out, dataset.load().scan().read_all().num_rows)
    assert list(out["history_pool"]["timestamp"]) == sorted(out["history_pool"]["timestamp"])
    assert len(out["history_pool"]) == len(out["interactions_train"]) and set(out["history_pool"]["split"]) == {"train"}  # ingest.history_pool: train


def test_ingest_on_real_musical_instruments(musical_instruments, tmp_path):
    dataset = ReviewSourceDataset(source="amazon", reviews_path=str(musical_instruments))
    out = run_ingest(dataset, tmp_path)
    check_invariants(out, 10261)
    rejects = out["ingest_rejects"]["reason"].value_counts()
    assert rejects["empty_review"] == 7  # PROVENANCE.md: 7 reviews have empty text
    assert set(out["ingest_rejects"]["stage"]) == {"clean", "k_core", "split"}  # the order checked across stages
    assert (out["interactions_train"]["title"].str.startswith("Item ")).all()  # no metadata: placeholders


def test_a_misspelt_base_setting_is_refused_before_anything_is_built(smoke_world):
    train = generate_review_world(smoke_world)
    with pytest.raises(ValueError, match=r"unknown llm.base.tiny setting\(s\) corpus_sise"):
        build_base(train, {**BASE, "tiny": {**BASE["tiny"], "corpus_sise": 10}}, PROMPTING)
