"""Supervised fine-tuning of LoRA experts on the shared base (transformers ``Trainer``)."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments, set_seed
from transformers.integrations.fsdp import is_fsdp_enabled
from transformers.trainer_utils import get_last_checkpoint

from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.loading import load_model, use_bf16
from reason4rec.llm.chat import RATING_PREFIX, chat_prompt, end_of_turn_ids, rating_token_ids
from reason4rec.parameters import ExpertConfig
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)

LOSS_CURVE_COLUMNS = ["step", "epoch", "loss", "learning_rate"]


def encode_sft_example(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str, max_length: int, rating_only: bool = False) -> dict[str, list[int]]:
    """Token ids of prompt + response with labels on the response only (prompt labels are -100).

    The response is tokenized as the chat template writes it after the prompt
    (so it ends with the end-of-turn token). Over-long examples are cut from the
    left of the prompt, keeping the response whole; ``prompt_tokens_cut`` says
    how many tokens that dropped (``train_adapter`` reports them, since
    inference reads every prompt whole). ``rating_only`` labels just
    the rating digit after ``Predicted Rating: ``: the one token that
    logit-weighted decoding reads, so a rating expert spends its training on it
    rather than on the fixed words around it.
    """
    prompt_text = chat_prompt(tokenizer, prompt)
    full_text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False
    )
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template does not write the answer after the generation prompt; response-only masking needs it to")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    response_ids = response_ids[: _turn_end(tokenizer, response_ids)]
    if len(response_ids) >= max_length:
        raise ValueError(f"response of {len(response_ids)} tokens does not fit max_length={max_length}")
    cut = max(0, len(prompt_ids) + len(response_ids) - max_length)
    prompt_ids = prompt_ids[cut:]
    labels = list(response_ids)
    if rating_only:
        prefix = tokenizer(RATING_PREFIX, add_special_tokens=False)["input_ids"]
        if response_ids[: len(prefix)] != prefix or response_ids[len(prefix)] not in rating_token_ids(tokenizer):
            raise ValueError(f"rating_only needs a response of the form '{RATING_PREFIX}<digit>...', got {response!r}")
        labels = [-100] * len(response_ids)
        labels[len(prefix)] = response_ids[len(prefix)]
    return {"input_ids": prompt_ids + response_ids, "labels": [-100] * len(prompt_ids) + labels, "prompt_tokens_cut": cut}


def _turn_end(tokenizer: PreTrainedTokenizerBase, response_ids: list[int]) -> int:
    """Where the answer's turn ends: after its first end-of-turn token and the
    whitespace the template puts after it. Some templates (Llama-3-Instruct's
    first release) write another assistant header there; that is not the answer."""
    stops = end_of_turn_ids(tokenizer)
    end = next((i + 1 for i, t in enumerate(response_ids) if t in stops), len(response_ids))
    while end < len(response_ids) and not tokenizer.decode(response_ids[end : end + 1]).strip():
        end += 1
    return end


def encode_text(tokenizer: PreTrainedTokenizerBase, text: str, max_length: int) -> dict[str, list[int]]:
    """A plain causal-LM example (every token carries loss), for pre-training the tiny base."""
    ids = ([tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])[:max_length]
    return {"input_ids": ids, "labels": list(ids)}


class ResponseOnlyTrainer(Trainer):
    """Computes logits only where the loss is.

    Batches are left-padded, so every row's response sits at the end and the
    loss needs the logits of the last few positions only. On a small base the
    vocabulary head (49k x 576 for SmolLM2) and its softmax over every prompt
    position are a large share of a step; this skips them. Positions are
    counted from each row's first real token, as at inference.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001 - Trainer's signature
        labels = inputs.pop("labels")
        answered = (labels != -100).any(dim=0)
        keep = labels.shape[1] - int(answered.int().argmax()) + 1 if answered.any() else 1
        keep = min(keep, labels.shape[1])
        positions = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        outputs = model(**inputs, position_ids=positions, logits_to_keep=keep)
        logits = outputs.logits[:, :-1].float()
        targets = labels[:, labels.shape[1] - keep + 1 :].to(logits.device)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum")
        loss = loss / (num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum().clamp(min=1))
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # ``num_items_in_batch`` counts the tokens of every rank, and DDP then averages the ranks'
            # gradients: without this the loss, and so every gradient, is num_processes times too
            # small (Trainer.compute_loss applies the same factor; this override replaces it).
            loss = loss * (self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1 else self.args.n_gpu)
        return (loss, outputs) if return_outputs else loss


# Set for every run: the examples are token-id dicts (no columns to drop), and the
# dataloader stays in this process. A training block cannot change these.
FIXED_TRAINING_SETTINGS = {"remove_unused_columns": False, "dataloader_num_workers": 0}
# Set unless a training block says otherwise: the first loss logged, one checkpoint kept, no trackers.
DEFAULT_TRAINING_SETTINGS = {"logging_first_step": True, "save_total_limit": 1, "report_to": "none", "disable_tqdm": False}


def training_arguments(settings: dict[str, Any], run_name: str, arguments: type[TrainingArguments] = TrainingArguments) -> TrainingArguments:
    """``arguments(**settings)``, with what only this machine can decide filled in.

    ``settings`` is a ``training`` block in transformers' own names (or those of
    a ``TrainingArguments`` subclass given as ``arguments``, such as TRL's
    ``GRPOConfig``, whose own defaults for ``bf16`` and checkpointing are
    overridden here the same way). ``bf16``
    and ``activation_checkpointing`` may be ``auto`` (bf16 where the hardware
    computes it natively; activation checkpointing on CUDA, where memory is
    what runs out). ``output_dir`` is the root for checkpoints: this run's go to
    ``output_dir/run_name``, and without one nothing is saved (so nothing resumes).
    """
    block = {**DEFAULT_TRAINING_SETTINGS, **settings}
    fixed = [key for key in FIXED_TRAINING_SETTINGS if key in settings and settings[key] != FIXED_TRAINING_SETTINGS[key]]
    if fixed:
        raise ValueError(f"training setting(s) {', '.join(fixed)} cannot be changed: the training code needs {FIXED_TRAINING_SETTINGS}")
    on_gpu = torch.cuda.is_available()
    root = block.pop("output_dir", None)
    block["bf16"] = use_bf16(block.get("bf16", "auto"))
    checkpointing = block.get("activation_checkpointing", "auto")
    block["activation_checkpointing"] = on_gpu and (checkpointing == "auto" or bool(checkpointing))
    block.setdefault("use_cpu", not on_gpu)
    block.setdefault("save_strategy", "steps" if root else "no")
    return arguments(output_dir=str(Path(root) / run_name) if root else None, **block, **FIXED_TRAINING_SETTINGS)


def train_resumably(trainer: Trainer, run_name: str) -> None:
    """``trainer.train()``, resumed from the last checkpoint under its ``output_dir`` when one is there."""
    args = trainer.args
    output_dir = Path(args.output_dir) if args.output_dir and args.save_strategy != "no" else None
    resume = get_last_checkpoint(str(output_dir)) if output_dir and output_dir.is_dir() else None
    if resume:
        logger.info("Resuming %s from %s", run_name, resume)
    trainer.train(resume_from_checkpoint=resume)


def fit(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[dict[str, list[int]]],
    args: TrainingArguments,
    run_name: str,
) -> tuple[Trainer, pd.DataFrame]:
    """Train ``model`` on tokenized examples; returns the trainer (its ``model`` trained) and the loss curve.

    Checkpoints go to ``args.output_dir`` every ``save_steps`` steps; a run
    killed midway resumes from the last one, and its loss curve
    (``trainer.state.log_history``, restored with the checkpoint) covers the
    steps before the kill too. The run name (in the folder) carries a
    fingerprint of the data and settings, so a changed configuration never
    resumes a stale run.
    """
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    trainer = ResponseOnlyTrainer(model=model, args=args, train_dataset=examples, data_collator=collator)
    if trainer.is_fsdp_enabled and isinstance(model, PeftModel):
        # peft's FSDP recipe: the LoRA layers wrapped on their own, so only they are trainable in each shard.
        from peft.utils.other import fsdp_auto_wrap_policy

        trainer.accelerator.state.fsdp_plugin.auto_wrap_policy = fsdp_auto_wrap_policy(trainer.model)
    train_resumably(trainer, run_name)
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    curve = pd.DataFrame(
        [{"step": e["step"], "epoch": float(e.get("epoch") or 0), "loss": float(e["loss"]), "learning_rate": float(e.get("learning_rate", float("nan")))} for e in logged],
        columns=LOSS_CURVE_COLUMNS,
    )
    return trainer, curve


def adapter_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The trained LoRA weights (PEFT key names) on the CPU. Under FSDP every rank calls this: the
    shards are gathered into a full state dict first (peft's FSDP recipe saves the same way), which
    only rank 0 receives, so the other ranks get nothing (and write nothing)."""
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        whole = trainer.accelerator.get_state_dict(trainer.model)  # a collective: every rank takes part
        if not trainer.accelerator.is_main_process:
            return {}  # peft would look up modules_to_save (lm_head) in the empty dict and fail
        state = get_peft_model_state_dict(unwrapped_layout(trainer.accelerator.unwrap_model(trainer.model)), state_dict=whole)
    else:
        state = get_peft_model_state_dict(trainer.model)
    return {k: v.detach().to("cpu").clone() for k, v in state.items()}


def unwrapped_layout(model: PeftModel) -> PeftModel:
    """The same PEFT model without FSDP's wrappers, on the meta device (no memory), to pick an adapter's tensors out of a full state dict.

    peft finds them by the model's module names, and FSDP's auto-wrap puts
    ``_fsdp_wrapped_module`` inside those names (peft 0.21 strips a leading one
    only), while the full state dict's keys are clean: asked with the wrapped
    model, peft matched nothing and the adapter came out empty (seen on an H200;
    tests/llm/test_training.py shows it on the CPU).
    """
    config = copy.deepcopy(model.get_base_model().config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the layout only: nothing is loaded or quantized
    with torch.device("meta"):
        base = AutoModelForCausalLM.from_config(config)
    return get_peft_model(base, copy.deepcopy(model.peft_config["default"]))


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (data and hyperparameters)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def lora_config(expert: ExpertConfig, num_layers: int) -> LoraConfig:
    """``LoraConfig(**expert.lora)``; ``top_layers: k`` puts it in the last k decoder
    layers only, so the backward pass stops there (a cheaper step on a CPU)."""
    top = expert.top_layers
    if top is not None and not 0 < top <= num_layers:
        raise ValueError(f"top_layers={top} must be between 1 and the base's {num_layers} layers")
    if top is not None and "layers_to_transform" in expert.lora:
        raise ValueError("set top_layers or lora.layers_to_transform, not both")
    layers = {"layers_to_transform": list(range(num_layers - top, num_layers))} if top else {}
    return LoraConfig(**{"task_type": "CAUSAL_LM", "bias": "none", **expert.lora, **layers})


def load_for_training(base: BaseModelArtifact, args: TrainingArguments) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh copy of the base to put LoRA on; a 4-bit base on CUDA is prepared for QLoRA training."""
    model, tokenizer = load_model(base)
    if base.loading.get("quantization") == "4bit" and torch.cuda.is_available() and not is_fsdp_enabled():
        # Not under FSDP: it casts the layers it does not quantize to fp32, and FSDP shards only layers of one dtype.
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.activation_checkpointing)
    return model, tokenizer


def adapter_metadata(base: BaseModelArtifact, args: TrainingArguments) -> dict[str, Any]:
    """What every trained adapter records of its base and its training arguments (the checkpoint folder left out: it is this machine's)."""
    return {
        "base_model": base.name,
        "base_metadata": {k: v for k, v in base.metadata.items() if k in ("base_model", "build_id", "parameters", "vocab_size")},
        "training_arguments": {k: v for k, v in args.to_sanitized_dict().items() if k not in ("output_dir", "logging_dir")},
    }


def train_adapter(base: BaseModelArtifact, examples: pd.DataFrame, expert_params: dict[str, Any], expert: str) -> tuple[AdapterArtifact, pd.DataFrame]:
    """SFT of one LoRA expert on ``examples`` (columns ``prompt``, ``response``), loss on responses only,
    on a fresh copy of the base. ``expert_params`` is its ``llm.experts`` block. Returns the adapter and its loss curve."""
    settings = typed_block(ExpertConfig, expert_params, f"llm.experts ({expert})")
    if examples.empty:
        raise ValueError(f"no training examples for the {expert} adapter")
    pairs = examples[["prompt", "response"]].values.tolist()
    portable = {k: v for k, v in asdict(settings).items() if k != "training"} | {"training": {k: v for k, v in settings.training.items() if k != "output_dir"}}
    run = f"{expert}-{fingerprint(base.metadata, portable, pairs)}"
    args = training_arguments(settings.training, run)
    model, tokenizer = load_for_training(base, args)
    config = lora_config(settings, model.config.num_hidden_layers)
    # LoRA's A matrices are drawn here, before Trainer seeds anything: without
    # this the adapter would depend on what the process ran before (a whole
    # `kedro run` and `kedro run --pipelines <one>` would train different experts).
    set_seed(args.seed)
    model = get_peft_model(model, config)
    rating_only = settings.loss_on == "rating"
    encoded = [encode_sft_example(tokenizer, p, r, settings.max_length, rating_only) for p, r in zip(examples["prompt"], examples["response"])]
    cuts = [example.pop("prompt_tokens_cut") for example in encoded]
    examples_cut = sum(cut > 0 for cut in cuts)
    if examples_cut:
        # Not an error: a few long outliers should not stop a long run. But the expert then learns
        # from prompts that lack their start (the chat template's system turn, the oldest history),
        # where inference reads them whole, so it is said loudly.
        logger.warning(
            "%d of %d %s training examples are longer than max_length=%d tokens: their prompts were cut from the left "
            "(up to %d tokens dropped), while inference reads every prompt whole. Raise max_length in its llm.experts block to keep them whole.",
            examples_cut, len(encoded), expert, settings.max_length, max(cuts),
        )
    trainer, curve = fit(model, tokenizer, encoded, args, run_name=run)
    state = adapter_state(trainer)
    metadata = {
        "expert": expert,
        **adapter_metadata(base, args),
        "max_length": settings.max_length,
        "top_layers": settings.top_layers,
        "loss_on": settings.loss_on,
        "lora": config.to_dict(),
        "training_examples": len(examples),
        "training_examples_cut": examples_cut,
        "training_data_fingerprint": fingerprint(pairs),
        "final_loss": float(curve["loss"].iloc[-1]) if len(curve) else None,
        "run": run,
    }
    return AdapterArtifact(config, state, metadata), curve
