"""Supervised fine-tuning of LoRA experts on the shared base (transformers ``Trainer``)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from transformers import DataCollatorForSeq2Seq, PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.base import load_model, use_bf16
from reason4rec.llm.chat import RATING_PREFIX, chat_prompt, end_of_turn_ids, rating_token_ids
from reason4rec.parameters import ExpertConfig, TrainingConfig
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
        return (loss, outputs) if return_outputs else loss


def fit(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[dict[str, list[int]]],
    hyper: TrainingConfig,
    run_name: str,
) -> tuple[PreTrainedModel, pd.DataFrame]:
    """Train ``model`` on tokenized examples; returns it and its loss curve.

    Checkpoints go to ``hyper.checkpoint_dir/run_name`` (when set) every
    ``save_steps`` steps; a run killed midway resumes from the last one, and
    its loss curve (``trainer.state.log_history``, restored with the
    checkpoint) covers the steps before the kill too. The run name carries a
    fingerprint of the data and hyperparameters, so a changed configuration
    never resumes a stale run.
    """
    output_dir = Path(hyper.checkpoint_dir) / run_name if hyper.checkpoint_dir else None
    args = TrainingArguments(
        output_dir=str(output_dir) if output_dir else None,
        per_device_train_batch_size=hyper.batch_size,
        gradient_accumulation_steps=hyper.gradient_accumulation_steps,
        num_train_epochs=hyper.epochs,
        max_steps=hyper.max_steps or -1,
        learning_rate=hyper.learning_rate,
        lr_scheduler_type=hyper.lr_scheduler,
        **({"optim": hyper.optim} if hyper.optim else {}),
        warmup_steps=hyper.warmup_steps,
        weight_decay=hyper.weight_decay,
        logging_steps=hyper.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if output_dir else "no",
        save_steps=hyper.save_steps,
        save_total_limit=1,
        save_only_model=False,
        report_to=[],
        bf16=use_bf16(hyper.bf16),
        activation_checkpointing=hyper.checkpointing_activations,
        use_cpu=not torch.cuda.is_available(),
        seed=hyper.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    trainer = ResponseOnlyTrainer(model=model, args=args, train_dataset=examples, data_collator=collator)
    resume = get_last_checkpoint(str(output_dir)) if output_dir and output_dir.is_dir() else None
    if resume:
        logger.info("Resuming %s from %s", run_name, resume)
    trainer.train(resume_from_checkpoint=resume)
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    curve = pd.DataFrame(
        [{"step": e["step"], "epoch": float(e.get("epoch") or 0), "loss": float(e["loss"]), "learning_rate": float(e.get("learning_rate", float("nan")))} for e in logged],
        columns=LOSS_CURVE_COLUMNS,
    )
    return trainer.model, curve


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (data and hyperparameters)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def lora_config(hyper: ExpertConfig, num_layers: int) -> LoraConfig:
    """LoRA on ``target_modules``; ``top_layers: k`` puts it in the last k decoder
    layers only, so the backward pass stops there (a cheaper step on a CPU)."""
    top = hyper.top_layers
    if top is not None and not 0 < top <= num_layers:
        raise ValueError(f"top_layers={top} must be between 1 and the base's {num_layers} layers")
    return LoraConfig(
        r=hyper.lora_r,
        lora_alpha=hyper.lora_alpha,
        lora_dropout=hyper.lora_dropout,
        target_modules=list(hyper.target_modules),
        layers_to_transform=list(range(num_layers - top, num_layers)) if top else None,
        modules_to_save=list(hyper.modules_to_save or []) or None,
        task_type="CAUSAL_LM",
        bias="none",
    )


def train_adapter(base: BaseModelArtifact, examples: pd.DataFrame, expert_params: dict[str, Any], expert: str) -> tuple[AdapterArtifact, pd.DataFrame]:
    """SFT of one LoRA expert on ``examples`` (columns ``prompt``, ``response``), loss on responses only,
    on a fresh copy of the base. ``expert_params`` is its ``llm.experts`` block. Returns the adapter and its loss curve."""
    hyper = typed_block(ExpertConfig, expert_params, f"llm.experts ({expert})")
    if examples.empty:
        raise ValueError(f"no training examples for the {expert} adapter")
    model, tokenizer = load_model(base)
    if base.loading.get("quantization") == "4bit" and torch.cuda.is_available():
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=hyper.checkpointing_activations)
    config = lora_config(hyper, model.config.num_hidden_layers)
    # LoRA's A matrices are drawn here, before Trainer seeds anything: without
    # this the adapter would depend on what the process ran before (a whole
    # `kedro run` and `kedro run --pipelines <one>` would train different experts).
    set_seed(hyper.seed)
    model = get_peft_model(model, config)
    rating_only = hyper.loss_on == "rating"
    encoded = [encode_sft_example(tokenizer, p, r, hyper.max_length, rating_only) for p, r in zip(examples["prompt"], examples["response"])]
    cuts = [example.pop("prompt_tokens_cut") for example in encoded]
    examples_cut = sum(cut > 0 for cut in cuts)
    if examples_cut:
        # Not an error: a few long outliers should not stop a long run. But the expert then learns
        # from prompts that lack their start (the chat template's system turn, the oldest history),
        # where inference reads them whole, so it is said loudly.
        logger.warning(
            "%d of %d %s training examples are longer than max_length=%d tokens: their prompts were cut from the left "
            "(up to %d tokens dropped), while inference reads every prompt whole. Raise max_length in its llm.experts block to keep them whole.",
            examples_cut, len(encoded), expert, hyper.max_length, max(cuts),
        )
    pairs = examples[["prompt", "response"]].values.tolist()
    run = f"{expert}-{fingerprint(base.metadata, asdict(hyper), pairs)}"
    model, curve = fit(model, tokenizer, encoded, hyper, run_name=run)
    state = {k: v.detach().to("cpu").clone() for k, v in get_peft_model_state_dict(model).items()}
    metadata = {
        "expert": expert,
        "base_model": base.name,
        "base_metadata": {k: v for k, v in base.metadata.items() if k in ("base_model", "build_id", "parameters", "vocab_size")},
        "hyperparameters": {k: v for k, v in asdict(hyper).items() if k != "checkpoint_dir"},
        "training_examples": len(examples),
        "training_examples_cut": examples_cut,
        "training_data_fingerprint": fingerprint(pairs),
        "final_loss": float(curve["loss"].iloc[-1]) if len(curve) else None,
        "run": run,
    }
    return AdapterArtifact(config, state, metadata), curve
