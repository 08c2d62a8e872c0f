"""Loading a copy of the base (reason4rec.llm.loading)."""

import torch

from reason4rec.llm.artifacts import BaseModelArtifact
from reason4rec.llm.loading import load_model


def test_hub_style_base_loads_from_a_path_and_4bit_falls_back_on_cpu(tmp_path, tiny_base, caplog):
    tiny_base.model.save_pretrained(tmp_path)
    tiny_base.tokenizer.save_pretrained(tmp_path)
    reference = BaseModelArtifact(str(tmp_path), {"quantization": "4bit", "bf16": False})
    with caplog.at_level("WARNING"):
        model, tokenizer = load_model(reference)
    if not torch.cuda.is_available():
        assert "quantization=4bit needs CUDA" in caplog.text
    ids = torch.tensor([[1, 7, 9]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits.cpu(), tiny_base.model(ids).logits, atol=1e-5)
    assert tokenizer.chat_template == tiny_base.tokenizer.chat_template


def test_hub_kernels_is_transformers_use_kernels_and_off_unless_set(tmp_path, tiny_base, monkeypatch):
    # Left to transformers, a model loaded on CUDA fetches kernels from the Hugging Face Hub at load time
    # (offline, the load fails): the base's loading settings decide, and say no unless told otherwise.
    from reason4rec.llm import loading
    from reason4rec.llm.base import build_base_model

    tiny_base.model.save_pretrained(tmp_path)
    tiny_base.tokenizer.save_pretrained(tmp_path)
    asked = []
    original = loading.AutoModelForCausalLM.from_pretrained
    # What transformers was asked is recorded; it loads without kernels either way (asked, it would fetch them).
    monkeypatch.setattr(loading.AutoModelForCausalLM, "from_pretrained", lambda *a, **kw: asked.append(kw["use_kernels"]) or original(*a, **{**kw, "use_kernels": False}))
    for params in ({"base_model": str(tmp_path)}, {"base_model": str(tmp_path), "hub_kernels": True}):
        load_model(build_base_model([], params))
    assert asked == [False, True]
