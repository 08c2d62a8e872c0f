import json

import pytest
import torch
from kedro.io import DatasetError, Version

from reason4rec.datasets.model_folders import COMPLETE_MARKER, AdapterDataset, BaseModelDataset
from reason4rec.llm.engine import Engine


def test_adapter_round_trip_gives_identical_logits(tmp_path, tiny_base, predictor):  # noqa: F811
    adapter = predictor[0]
    dataset = AdapterDataset(str(tmp_path / "predictor_adapter"), version=Version(None, None))
    dataset.save(adapter)
    loaded = AdapterDataset(str(tmp_path / "predictor_adapter"), version=Version(None, None)).load()
    assert loaded.metadata == json.loads(json.dumps(adapter.metadata, default=str))
    prompts = ["The album is good. Rate it.", "The album is poor. Rate it."]
    before = Engine(tiny_base, {"p": adapter}).score_ratings(prompts, "p")
    after = Engine(tiny_base, {"p": loaded}).score_ratings(prompts, "p")
    assert before == after
    folder = next((tmp_path / "predictor_adapter").iterdir()) / "predictor_adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "training_metadata.json"} <= {p.name for p in folder.iterdir()}


def test_plain_peft_loads_the_saved_folder(tmp_path, tiny_base, predictor):  # noqa: F811
    import copy

    from peft import PeftModel

    dataset = AdapterDataset(str(tmp_path / "a"), version=Version(None, None))
    dataset.save(predictor[0])
    folder = next((tmp_path / "a").iterdir()) / "a"
    model = PeftModel.from_pretrained(copy.deepcopy(tiny_base.model), str(folder))  # peft injects in place
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_versions_latest_and_half_written(tmp_path, predictor, echo):  # noqa: F811
    path = str(tmp_path / "adapter")
    AdapterDataset(path, version=Version(None, "2026-01-01T00.00.00.000Z")).save(predictor[0])
    AdapterDataset(path, version=Version(None, "2026-01-02T00.00.00.000Z")).save(echo)
    assert AdapterDataset(path, version=Version(None, None)).load().metadata["expert"] == "echo"
    # A crash mid-save: a newer folder with files but no completion marker.
    broken = tmp_path / "adapter" / "2026-01-03T00.00.00.000Z" / "adapter"
    broken.mkdir(parents=True)
    (broken / "adapter_config.json").write_text("{}")
    latest = AdapterDataset(path, version=Version(None, None))
    assert latest.exists() and latest.load().metadata["expert"] == "echo"
    with pytest.raises(DatasetError, match=f"no {COMPLETE_MARKER} marker"):
        AdapterDataset(path, version=Version("2026-01-03T00.00.00.000Z", None)).load()
    assert not AdapterDataset(str(tmp_path / "never_saved"), version=Version(None, None)).exists()


def test_tiny_base_round_trips_and_is_read_only_when_an_expert_needs_it(tmp_path, tiny_base):
    from reason4rec.llm.loading import load_model

    dataset = BaseModelDataset(str(tmp_path / "base"), version=Version(None, None))
    dataset.save(tiny_base)
    loaded = BaseModelDataset(str(tmp_path / "base"), version=Version(None, None)).load()
    # Nothing is shared between datasets (two sessions in one process keep their own).
    assert BaseModelDataset(str(tmp_path / "base"), version=Version(None, None)).load() is not loaded
    assert loaded.loading == tiny_base.loading and loaded.model is None  # weights are read when an expert needs them
    model, tokenizer = load_model(loaded)
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.equal(tiny_base.model(ids).logits, model(ids).logits)
    assert tokenizer.chat_template == tiny_base.tokenizer.chat_template
    assert json.loads(dataset.preview())["base_model"] == "tiny"


def test_a_trained_lm_head_is_saved_in_the_adapter_folder_and_restored(tmp_path, tiny_base):
    """``modules_to_save: [lm_head]`` (the published scripts' last-layer tuning, in ``-e paper``):
    the trained head travels in the PEFT folder and scores the same after a reload."""
    from safetensors.torch import load_file

    from reason4rec.llm.training import train_adapter
    from tests.helpers import rating_examples, smoke_expert

    adapter, _ = train_adapter(tiny_base, rating_examples(40), {**smoke_expert(num_train_epochs=1, lora={"modules_to_save": ["lm_head"]}), "loss_on": "rating"}, "predictor")
    AdapterDataset(str(tmp_path / "head"), version=Version(None, None)).save(adapter)
    folder = next((tmp_path / "head").iterdir()) / "head"
    head_keys = [k for k in load_file(str(folder / "adapter_model.safetensors")) if "lm_head" in k]
    assert head_keys, "the trained lm_head is not in the saved adapter"
    loaded = AdapterDataset(str(tmp_path / "head"), version=Version(None, None)).load()
    prompts = ["The album is good. Rate it.", "The album is poor. Rate it."]
    assert Engine(tiny_base, {"p": adapter}).score_ratings(prompts, "p") == Engine(tiny_base, {"p": loaded}).score_ratings(prompts, "p")
    trained_head = load_file(str(folder / "adapter_model.safetensors"))[head_keys[0]]
    assert not torch.equal(trained_head, tiny_base.model.lm_head.weight.detach().to(trained_head.dtype))
