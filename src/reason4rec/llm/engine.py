"""One base LLM, several LoRA experts: building, training, generation and rating scoring.

Reason4Rec's summarizer, reward model, reasoner and predictor are LoRA
adapters on one shared base. This module is the only place that touches torch,
transformers and peft; pipelines pass around two plain artifacts:

- :class:`BaseModelArtifact`: the base (``tiny``, built here, or a Hugging Face
  id / local path, loaded on demand, in 4-bit on CUDA when asked);
- :class:`AdapterArtifact`: a LoRA config, its weights and training metadata,
  saved by ``reason4rec.datasets.model_folders.AdapterDataset`` in PEFT's
  folder format.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from tqdm.auto import tqdm
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from reason4rec.llm.tiny import build_tiny_model, train_tokenizer

logger = logging.getLogger(__name__)

RATING_PREFIX = "Predicted Rating: "
RATING_TOKENS = ("1", "2", "3", "4", "5")


@dataclass
class BaseModelArtifact:
    """The shared base model. ``model``/``tokenizer`` are set for ``tiny`` (built
    locally); for a hub id or path they are loaded by :func:`load_base`."""

    name_or_path: str
    model: PreTrainedModel | None = None
    tokenizer: PreTrainedTokenizerBase | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class AdapterArtifact:
    """A trained LoRA expert: PEFT config, weights (PEFT key names) and metadata."""

    config: LoraConfig
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- devices


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_bf16(setting: str | bool) -> bool:
    """``auto``: bf16 on a CUDA GPU that supports it, bf16 autocast on a CPU with
    native bf16 (AVX512-BF16 or AMX), else fp32."""
    if setting != "auto":
        return bool(setting)
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


# ---------------------------------------------------------------- base model


def build_base_model(texts: Sequence[str], params: dict[str, Any]) -> BaseModelArtifact:
    """The base for every expert: ``tiny`` is built and pre-trained on ``texts``;
    anything else is a hub id or path, recorded and loaded later."""
    if params["base_model"] != "tiny":
        return BaseModelArtifact(params["base_model"], metadata={"base_model": params["base_model"]})
    tiny = params["tiny"]
    tokenizer = train_tokenizer(texts, tiny["vocab_size"])
    model = build_tiny_model(tokenizer, tiny["architecture"], tiny["seed"])
    examples = [encode_text(tokenizer, text, tiny["architecture"]["max_position_embeddings"]) for text in texts]
    model, curve = fit(model, tokenizer, examples, tiny["pretraining"], run_name="tiny-pretraining")
    parameters = sum(p.numel() for p in model.parameters())
    logger.info("Built the tiny base: %d parameters, vocab %d, final loss %.3f", parameters, len(tokenizer), curve["loss"].iloc[-1])
    return BaseModelArtifact(
        "tiny",
        model,
        tokenizer,
        metadata={"base_model": "tiny", "build_id": fingerprint(list(texts), tiny), "parameters": parameters, "vocab_size": len(tokenizer), "final_loss": float(curve["loss"].iloc[-1]), **tiny},
    )


def load_base(artifact: BaseModelArtifact, params: dict[str, Any]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh copy of the base model on the best device, and its tokenizer.

    ``quantization: 4bit`` loads NF4 with double quantization and bf16 compute
    (QLoRA) on CUDA. Where CUDA is absent, 4-bit is not used: the model loads in
    full precision and a WARNING says so.
    """
    target = device()
    if artifact.model is not None:
        model = copy.deepcopy(artifact.model).to(target)
        return model, artifact.tokenizer
    tokenizer = AutoTokenizer.from_pretrained(artifact.name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if use_bf16(params.get("bf16", "auto")) else torch.float32}
    if params.get("quantization") == "4bit":
        if target.type == "cuda":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
            kwargs["device_map"] = {"": 0}
        else:
            logger.warning("quantization=4bit needs CUDA; no GPU here, so %s loads unquantized on the CPU", artifact.name_or_path)
    model = AutoModelForCausalLM.from_pretrained(artifact.name_or_path, **kwargs)
    if "device_map" not in kwargs:
        model = model.to(target)
    return model, tokenizer


# ---------------------------------------------------------------- tokenization


def chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The prompt as one user turn in the model's chat template, ready for the answer."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def encode_sft_example(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str, max_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + response with labels on the response only (prompt labels are -100).

    The response is tokenized as the chat template writes it after the prompt
    (so it ends with the end-of-turn token). Over-long examples are cut from the
    left of the prompt, keeping the response whole.
    """
    prompt_text = chat_prompt(tokenizer, prompt)
    full_text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False
    )
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template does not write the answer after the generation prompt; response-only masking needs it to")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    if len(response_ids) >= max_length:
        raise ValueError(f"response of {len(response_ids)} tokens does not fit max_length={max_length}")
    prompt_ids = prompt_ids[-(max_length - len(response_ids)) :]
    return {"input_ids": prompt_ids + response_ids, "labels": [-100] * len(prompt_ids) + response_ids}


def encode_text(tokenizer: PreTrainedTokenizerBase, text: str, max_length: int) -> dict[str, list[int]]:
    """A plain causal-LM example (every token carries loss), for pre-training the tiny base."""
    ids = ([tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])[:max_length]
    return {"input_ids": ids, "labels": list(ids)}


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to one length on ``side`` ('left' for inference, 'right' for training)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        span = slice(width - len(sequence), width) if side == "left" else slice(0, len(sequence))
        ids[row, span] = torch.tensor(sequence, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


class SFTCollator:
    """Right-pads input ids, attention masks and labels (label padding is -100)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([f["input_ids"] for f in features], self.pad_id, "right")
        labels, _ = pad_batch([f["labels"] for f in features], -100, "right")
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ---------------------------------------------------------------- training


class _LossCurve(TrainerCallback):
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - transformers' signature
        if logs and "loss" in logs:
            self.rows.append({"step": state.global_step, "epoch": float(state.epoch or 0), "loss": float(logs["loss"]), "learning_rate": float(logs.get("learning_rate", math.nan))})


def fit(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[dict[str, list[int]]],
    hyper: dict[str, Any],
    run_name: str,
) -> tuple[PreTrainedModel, pd.DataFrame]:
    """Train ``model`` on tokenized examples with transformers' ``Trainer``.

    Checkpoints go to ``hyper['checkpoint_dir']/run_name`` (when set) every
    ``save_steps`` steps; a run killed midway resumes from the last one. The
    run name carries a fingerprint of the data and hyperparameters, so a
    changed configuration never resumes a stale run.
    """
    on_gpu = torch.cuda.is_available()
    bf16 = use_bf16(hyper.get("bf16", "auto"))
    checkpoint_root = hyper.get("checkpoint_dir")
    output_dir = Path(checkpoint_root) / run_name if checkpoint_root else None
    args = TrainingArguments(
        output_dir=str(output_dir) if output_dir else None,
        per_device_train_batch_size=hyper["batch_size"],
        gradient_accumulation_steps=hyper.get("gradient_accumulation_steps", 1),
        num_train_epochs=hyper["epochs"],
        max_steps=hyper.get("max_steps") or -1,
        learning_rate=hyper["learning_rate"],
        lr_scheduler_type=hyper.get("lr_scheduler", "cosine"),
        warmup_steps=hyper.get("warmup_steps", 0),
        weight_decay=hyper.get("weight_decay", 0.0),
        logging_steps=hyper.get("logging_steps", 10),
        logging_first_step=True,
        save_strategy="steps" if output_dir else "no",
        save_steps=hyper.get("save_steps", 200),
        save_total_limit=1,
        save_only_model=False,
        report_to=[],
        bf16=bf16,
        activation_checkpointing=bool(hyper.get("gradient_checkpointing", on_gpu)) and on_gpu,
        use_cpu=not on_gpu,
        seed=hyper.get("seed", 0),
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    curve = _LossCurve()
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=SFTCollator(tokenizer.pad_token_id), callbacks=[curve])
    resume = get_last_checkpoint(str(output_dir)) if output_dir and output_dir.is_dir() else None
    if resume:
        logger.info("Resuming %s from %s", run_name, resume)
    trainer.train(resume_from_checkpoint=resume)
    history = pd.DataFrame(curve.rows, columns=["step", "epoch", "loss", "learning_rate"])
    return trainer.model, history


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (data and hyperparameters)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def lora_config(hyper: dict[str, Any]) -> LoraConfig:
    return LoraConfig(
        r=hyper["lora_r"],
        lora_alpha=hyper["lora_alpha"],
        lora_dropout=hyper.get("lora_dropout", 0.0),
        target_modules=list(hyper["target_modules"]),
        modules_to_save=list(hyper.get("modules_to_save") or []) or None,
        task_type="CAUSAL_LM",
        bias="none",
    )


def train_adapter(
    base: BaseModelArtifact,
    examples: pd.DataFrame,
    hyper: dict[str, Any],
    expert: str,
    base_params: dict[str, Any],
) -> tuple[AdapterArtifact, pd.DataFrame]:
    """SFT of one LoRA expert on ``examples`` (columns ``prompt``, ``response``), loss on responses only.

    Returns the adapter and its loss curve (step, epoch, loss, learning rate).
    """
    if examples.empty:
        raise ValueError(f"no training examples for the {expert} adapter")
    model, tokenizer = load_base(base, base_params)
    if base_params.get("quantization") == "4bit" and torch.cuda.is_available():
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=hyper.get("gradient_checkpointing", True))
    config = lora_config(hyper)
    # LoRA's A matrices are drawn here, before Trainer seeds anything: without
    # this the adapter would depend on what the process ran before (a whole
    # `kedro run` and `kedro run --pipelines <one>` would train different experts).
    set_seed(hyper.get("seed", 0))
    model = get_peft_model(model, config)
    encoded = [encode_sft_example(tokenizer, p, r, hyper["max_length"]) for p, r in zip(examples["prompt"], examples["response"])]
    run = f"{expert}-{fingerprint(base.metadata, hyper, examples[['prompt', 'response']].values.tolist())}"
    model, curve = fit(model, tokenizer, encoded, hyper, run_name=run)
    state = {k: v.detach().to("cpu").clone() for k, v in get_peft_model_state_dict(model).items()}
    metadata = {
        "expert": expert,
        "base_model": base.name_or_path,
        "base_metadata": {k: v for k, v in base.metadata.items() if k in ("base_model", "build_id", "parameters", "vocab_size")},
        "hyperparameters": {k: v for k, v in hyper.items() if k != "checkpoint_dir"},
        "training_examples": len(examples),
        "training_data_fingerprint": fingerprint(examples[["prompt", "response"]].values.tolist()),
        "final_loss": float(curve["loss"].iloc[-1]) if len(curve) else None,
        "run": run,
    }
    return AdapterArtifact(config, state, metadata), curve


# ---------------------------------------------------------------- inference


class Engine:
    """One base model with any number of named adapters, switched per call.

    ``adapter=None`` runs the bare base model.
    """

    def __init__(self, base: BaseModelArtifact, adapters: dict[str, AdapterArtifact], params: dict[str, Any]):
        model, self.tokenizer = load_base(base, params)
        self.model: PreTrainedModel | PeftModel = model
        for name, adapter in adapters.items():
            if not isinstance(self.model, PeftModel):
                self.model = get_peft_model(self.model, adapter.config, adapter_name=name)
            else:
                self.model.add_adapter(name, adapter.config)
            set_peft_model_state_dict(self.model, adapter.state_dict, adapter_name=name)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self.bf16 = use_bf16(params.get("bf16", "auto"))
        # End of turn: the eos token, plus Llama-3's <|eot_id|> where the vocabulary has it.
        vocabulary = self.tokenizer.get_vocab()
        self.stop_ids = sorted({self.tokenizer.eos_token_id, *([vocabulary["<|eot_id|>"]] if "<|eot_id|>" in vocabulary else [])})
        self.rating_ids = rating_token_ids(self.tokenizer)

    def _activate(self, adapter: str | None):
        if adapter is None:
            return self.model.disable_adapter() if isinstance(self.model, PeftModel) else nullcontext()
        if not isinstance(self.model, PeftModel) or adapter not in self.model.peft_config:
            raise KeyError(f"no adapter named {adapter!r} is loaded")
        self.model.set_adapter(adapter)
        return nullcontext()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        adapter: str | None,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int = 16,
        seed: int = 0,
        desc: str = "generating",
    ) -> list[dict[str, Any]]:
        """Batched chat completion, left-padded, greedy at temperature 0.

        Returns, in order, ``{"text", "new_tokens"}`` per prompt.
        """
        torch.manual_seed(seed)
        results: list[dict[str, Any]] = [{} for _ in prompts]
        encoded = [self.tokenizer(chat_prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts]
        with self._activate(adapter), self._autocast():
            for batch in _progress(length_sorted_batches(encoded, batch_size), desc):
                ids, mask = pad_batch([encoded[i] for i in batch], self.tokenizer.pad_token_id, "left")
                output = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=top_p if temperature > 0 else None,
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                for index, row in zip(batch, output[:, ids.shape[1] :].tolist()):
                    end = next((i for i, t in enumerate(row) if t in self.stop_ids), len(row))
                    results[index] = {"text": self.tokenizer.decode(row[:end], skip_special_tokens=True).strip(), "new_tokens": min(end + 1, len(row))}
        return results

    @torch.inference_mode()
    def score_ratings(self, prompts: Sequence[str], adapter: str | None, batch_size: int = 16, desc: str = "scoring") -> list[float]:
        """Logit-weighted rating decoding (the paper's section 3.3).

        The chat prompt plus the fixed answer prefix ``Predicted Rating: `` is
        read in one forward pass; the logits of the tokens "1".."5" at the last
        position are softmaxed and the expected rating returned, in [1, 5].
        """
        prefix = self.tokenizer(RATING_PREFIX, add_special_tokens=False)["input_ids"]
        encoded = [self.tokenizer(chat_prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"] + prefix for p in prompts]
        values = torch.arange(1, 6, dtype=torch.float32)
        ratings = [math.nan] * len(prompts)
        with self._activate(adapter), self._autocast():
            for batch in _progress(length_sorted_batches(encoded, batch_size), desc):
                ids, mask = pad_batch([encoded[i] for i in batch], self.tokenizer.pad_token_id, "left")
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device),
                    logits_to_keep=1,
                ).logits[:, -1, :]
                for index, rating in zip(batch, expected_rating(logits.float().cpu(), self.rating_ids, values).tolist()):
                    ratings[index] = rating
        return ratings


def length_sorted_batches(sequences: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices of ``sequences`` in batches of similar length, longest first.

    Prompts of one batch are left-padded to its longest; batching neighbours in
    length keeps that padding (compute spent on nothing) small, and longest
    first makes an out-of-memory batch fail at once. Callers put results back
    by index, so the output order is the input order.
    """
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _progress(batches: list[list[int]], desc: str):
    return tqdm(batches, desc=desc, unit="batch", disable=len(batches) <= 1)


def rating_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids of "1".."5" as they follow the rating prefix; each must be one token."""
    prefix = tokenizer(RATING_PREFIX, add_special_tokens=False)["input_ids"]
    ids = []
    for digit in RATING_TOKENS:
        together = tokenizer(RATING_PREFIX + digit, add_special_tokens=False)["input_ids"]
        if together[: len(prefix)] != prefix or len(together) != len(prefix) + 1:
            raise ValueError(f"'{RATING_PREFIX}{digit}' does not tokenize as the prefix plus one token, so logit-weighted decoding cannot read it")
        ids.append(together[-1])
    return ids


def expected_rating(logits: torch.Tensor, rating_ids: Sequence[int], values: torch.Tensor) -> torch.Tensor:
    """Softmax over the rating tokens' logits, expectation over 1..5, clamped to [1, 5]."""
    probabilities = torch.softmax(logits[:, list(rating_ids)], dim=-1)
    return (probabilities * values).sum(-1).clamp(1.0, 5.0)
