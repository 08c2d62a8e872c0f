"""Fixtures shared by the tests; the helpers and the smoke configuration are in ``tests.helpers``."""

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import LEARNING, MUSICAL_INSTRUMENTS, PROMPTING, SMOKE_WORLD, TINY_BASE_PARAMS, rating_examples, smoke_expert


@pytest.fixture
def smoke_world() -> dict:
    return dict(SMOKE_WORLD)


@pytest.fixture
def musical_instruments() -> Path:
    if not MUSICAL_INSTRUMENTS.is_file():
        pytest.skip(f"real data not present at {MUSICAL_INSTRUMENTS}")
    return MUSICAL_INSTRUMENTS

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
    return ctx.build_contexts(pairs, pool, summaries, {**PROMPTING, "history_length": 3})


@pytest.fixture(scope="session")
def predictor(tiny_base):
    """A tiny predictor trained on ``rating_examples``, and its loss curve."""
    from reason4rec.llm.training import train_adapter

    return train_adapter(tiny_base, rating_examples(), {**smoke_expert(**LEARNING), "loss_on": "rating"}, "predictor")


@pytest.fixture(scope="session")
def echo(tiny_base):
    """A tiny adapter that answers "Melody melody melody." to anything."""
    from reason4rec.llm.training import train_adapter

    rows = pd.DataFrame({"prompt": ["Say something."] * 48, "response": ["Melody melody melody."] * 48})
    return train_adapter(tiny_base, rows, smoke_expert(**LEARNING), "echo")[0]
