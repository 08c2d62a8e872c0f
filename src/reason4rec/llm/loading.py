"""Loading a fresh copy of the shared base on the best device, in the precision the hardware computes best.

Below choosing and building a base (``reason4rec.llm.base``): training, the
engine and the tiny base's pre-training all load through here.
"""

from __future__ import annotations

import copy
import logging
import os
import platform
import time
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.integrations.fsdp import is_fsdp_enabled

from reason4rec.llm.artifacts import BaseModelArtifact

logger = logging.getLogger(__name__)


def device() -> torch.device:
    """This process's GPU (``LOCAL_RANK``, which torchrun and accelerate set, for a launched training), else the CPU."""
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")


def describe_device() -> str:
    """What inference and training run on, for reports: the GPU's name, or the CPU and its threads."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def use_bf16(setting: str | bool) -> bool:
    """``auto``: bf16 on a CUDA GPU that supports it, bf16 autocast on a CPU with
    native bf16 (AVX512-BF16 or AMX), else fp32 (bf16 emulated on a CPU without
    it is several times slower than fp32)."""
    if setting != "auto":
        return bool(setting)
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def load_tokenizer(base: BaseModelArtifact) -> PreTrainedTokenizerBase:
    """The base's tokenizer, left-padding (answers start at the same column of a batch), with a pad token."""
    tokenizer = copy.deepcopy(base.tokenizer) if base.tokenizer is not None else AutoTokenizer.from_pretrained(base.folder or base.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(base: BaseModelArtifact) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh copy of the base on the best device, and its tokenizer (left padding).

    ``quantization: 4bit`` loads NF4 with double quantization and bf16 compute
    (QLoRA) on CUDA. Where CUDA is absent, 4-bit is not used: the model loads in
    full precision and a WARNING says so. Under FSDP (a launch with accelerate's
    FSDP config) the 4-bit weights are stored as bf16 and the rest loads in bf16,
    as FSDP shards only layers of one dtype, and accelerate places the shards.

    ``hub_kernels`` (off unless the base's loading settings turn it on) is
    transformers' ``use_kernels``: left to transformers, a model loaded on CUDA
    has layers swapped for kernels downloaded from the Hugging Face Hub at load
    time, which offline fails the load (seen on an H200 with HF_HUB_OFFLINE=1:
    "kernels-community/rotary is not available in the local cache") and online
    runs code that no pin of this project names.
    """
    target = device()
    began = time.perf_counter()
    tokenizer = load_tokenizer(base)
    if base.model is not None:
        model = copy.deepcopy(base.model).to(target)
        source = "memory"
    else:
        source = base.folder or base.name
        # A hub model loads in bf16 where bf16 is used; a saved folder (tiny, a
        # converted named base) keeps fp32 weights and computes under bf16 autocast.
        hub_bf16 = base.folder is None and use_bf16(base.loading.get("bf16", "auto"))
        kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if hub_bf16 else torch.float32, "use_kernels": bool(base.loading.get("hub_kernels", False))}
        if base.loading.get("quantization") == "4bit":
            if target.type == "cuda":
                from transformers import BitsAndBytesConfig

                sharded = is_fsdp_enabled()
                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16,
                    bnb_4bit_quant_storage=torch.bfloat16 if sharded else torch.uint8,
                )  # fmt: skip
                if sharded:
                    kwargs["dtype"] = torch.bfloat16
                else:
                    kwargs["device_map"] = {"": target.index}
            else:
                logger.warning("quantization=4bit needs CUDA; no GPU here, so %s loads unquantized on the CPU", base.name)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        if "device_map" not in kwargs and not is_fsdp_enabled():  # under FSDP accelerate places each rank's shards
            model = model.to(target)
    logger.info("Loaded the base %s from %s in %.1f s (%s, %s)", base.name, source, time.perf_counter() - began, next(model.parameters()).dtype, target)
    return model, tokenizer
