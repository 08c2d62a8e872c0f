from pathlib import Path

import pandas as pd
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"
MUSICAL_INSTRUMENTS = REAL_DATA / "amazon_musical_instruments_5core_2014" / "reviews_Musical_Instruments_5.json.gz"

SMOKE_WORLD = {
    "seed": 3,
    "n_users": 60,
    "n_items": 30,
    "interactions_per_user": 8,
    "start_timestamp": 1609459200,
    "span_days": 365,
    "noise_sentence_rate": 0.35,
    "rating_noise": 0.45,
}


@pytest.fixture
def smoke_world() -> dict:
    return dict(SMOKE_WORLD)


@pytest.fixture
def musical_instruments() -> Path:
    if not MUSICAL_INSTRUMENTS.is_file():
        pytest.skip(f"real data not present at {MUSICAL_INSTRUMENTS}")
    return MUSICAL_INSTRUMENTS

TINY_BASE_PARAMS = {
    "base_model": "tiny",
    "bf16": False,  # fp32, so batched and one-by-one results compare at 1e-5
    "tiny": {
        "seed": 0,
        "vocab_size": 600,
        "architecture": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 512},
        "pretraining": {"batch_size": 16, "epochs": 3, "learning_rate": 1.0e-2, "logging_steps": 5, "bf16": False},
    },
}

LORA_HYPER = {
    "lora_r": 8,
    "lora_alpha": 16,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "learning_rate": 1.0e-2,
    "epochs": 6,
    "batch_size": 8,
    "max_length": 256,
    "logging_steps": 2,
    "bf16": False,
}


@pytest.fixture(scope="session")
def tiny_base():
    from reason4rec.data.synthetic import generate_review_world
    from reason4rec.llm.base import build_base_model

    world = generate_review_world(SMOKE_WORLD)
    # As in the pipeline, the corpus holds the reviews, titles and the prompts' own wording.
    prompts = [f"The album is {w}. Rate it. Predicted Rating: {k}.0" for k, w in enumerate(["awful", "poor", "okay", "good", "superb"], 1)]
    texts = (world["review"] + " " + world["title"]).tolist() + prompts * 20 + ["Say something. Melody melody melody."] * 20
    return build_base_model(texts, TINY_BASE_PARAMS)


@pytest.fixture(scope="session")
def pair_contexts() -> pd.DataFrame:
    """Twelve training pairs of the smoke world with histories (every summary ``Melody``), as
    ``build_reasoner_contexts`` writes them: the in-memory input of the per-pipeline tests."""
    from reason4rec import contexts as ctx
    from reason4rec.data.synthetic import generate_review_world

    world = generate_review_world(SMOKE_WORLD)
    pool = ctx.history_pool(world, world.iloc[:0], world.iloc[:0])
    pairs = ctx.sample_pairs(world, pool, {"pairs": 12}, seed=0)["pairs"]
    summaries = pool[["user_id", "item_id"]].assign(positive="Melody", negative="None", preferences="Melody")
    return ctx.build_contexts(pairs, pool, summaries, 3)


def run_pipeline(pipeline, inputs: dict, outputs: list[str]) -> dict:
    """Run ``pipeline`` on in-memory ``inputs`` (datasets and ``params:`` entries); return ``outputs``,
    intermediate ones included (the runner would release those once consumed)."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    class Kept(MemoryDataset):
        def _release(self) -> None:
            pass

    catalog = DataCatalog({name: MemoryDataset(value, copy_mode="assign") for name, value in inputs.items()})
    for name in outputs:
        catalog[name] = Kept(copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in outputs}


def rating_examples(n=96):
    """A learnable task: the word in the prompt decides the rating."""
    from reason4rec.llm.chat import RATING_PREFIX

    words = {1: "awful", 2: "poor", 3: "okay", 4: "good", 5: "superb"}
    rows = [(f"The album is {words[1 + i % 5]}. Rate it.", f"{RATING_PREFIX}{1 + i % 5}.0") for i in range(n)]
    return pd.DataFrame(rows, columns=["prompt", "response"])


@pytest.fixture(scope="session")
def predictor(tiny_base):
    """A tiny predictor trained on ``rating_examples``, and its loss curve."""
    from reason4rec.llm.training import train_adapter

    return train_adapter(tiny_base, rating_examples(), {**LORA_HYPER, "loss_on": "rating"}, "predictor")


@pytest.fixture(scope="session")
def echo(tiny_base):
    """A tiny adapter that answers "Melody melody melody." to anything."""
    from reason4rec.llm.training import train_adapter

    rows = pd.DataFrame({"prompt": ["Say something."] * 48, "response": ["Melody melody melody."] * 48})
    return train_adapter(tiny_base, rows, LORA_HYPER, "echo")[0]
