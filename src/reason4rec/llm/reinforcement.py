"""GRPO on a trained LoRA expert (TRL's ``GRPOTrainer``): the adapter continued, trainable, against a reward.

This module knows adapters, TRL and checkpoints, not ratings or reasons: the
method's reward is built in ``reason4rec.refinement`` and passed in. The
expert's LoRA shape is kept and its trained weights are the start. With
``beta > 0``, TRL copies them into a second, frozen adapter (``ref``) and
measures the KL penalty against it, so the policy is held near the SFT expert,
not near the bare base. Two faults this avoids: loading a saved adapter with
``PeftModel.from_pretrained`` without ``is_trainable=True`` freezes it (GRPO
then trains nothing), and passing a ``peft_config`` beside it would start a
fresh LoRA instead of continuing the expert.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
from datasets import Dataset
from peft import PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from transformers import PreTrainedTokenizerBase
from trl import GRPOConfig, GRPOTrainer

from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.chat import end_of_turn_ids
from reason4rec.llm.training import adapter_metadata, fingerprint, load_for_training, train_resumably, training_arguments

logger = logging.getLogger(__name__)

# Where GRPOTrainer keeps the trained adapter (and, with beta > 0, builds its frozen "ref" copy from).
POLICY_ADAPTER = "default"


def grpo_arguments(settings: dict[str, Any], run_name: str) -> GRPOConfig:
    """``GRPOConfig(**settings)``, with ``auto`` resolved and the defaults every training here shares
    (``reason4rec.llm.training.training_arguments``). TRL's own defaults of ``bf16=True`` and
    gradient checkpointing on are replaced by this machine's choice, as for SFT."""
    return training_arguments(settings, run_name, arguments=GRPOConfig)


def trainable_adapter(base: BaseModelArtifact, adapter: AdapterArtifact, args: GRPOConfig) -> tuple[PeftModel, PreTrainedTokenizerBase]:
    """A fresh copy of the base with ``adapter`` on it, its LoRA weights trainable and equal to the adapter's."""
    model, tokenizer = load_for_training(base, args)
    config = copy.deepcopy(adapter.config)
    config.inference_mode = False  # a config read back from a saved folder may say True: peft would freeze the weights
    model = get_peft_model(model, config, adapter_name=POLICY_ADAPTER)
    loaded = set_peft_model_state_dict(model, adapter.state_dict, adapter_name=POLICY_ADAPTER)
    unexpected = getattr(loaded, "unexpected_keys", [])
    held = get_peft_model_state_dict(model, adapter_name=POLICY_ADAPTER)
    if unexpected or set(held) != set(adapter.state_dict):
        missing = sorted(set(held) - set(adapter.state_dict))
        raise ValueError(
            f"the adapter {adapter.metadata.get('run', '(no run id)')} does not fit its own LoRA config on {base.name}: "
            f"unexpected weights {sorted(unexpected)[:3]}, missing {missing[:3]}"
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("no trainable weight in the adapter: GRPO would change nothing")
    return model, tokenizer


def refine_adapter(
    base: BaseModelArtifact,
    adapter: AdapterArtifact,
    prompts: pd.DataFrame,
    reward: Callable[..., list[float]],
    settings: dict[str, Any],
    name: str,
    identity: dict[str, Any],
) -> tuple[AdapterArtifact, pd.DataFrame]:
    """GRPO of ``adapter`` on ``prompts`` (a ``prompt`` column, each put in the chat template as
    one user turn; every other column reaches ``reward`` by its name, as TRL passes dataset columns).

    ``settings`` is a ``GRPOConfig`` block (``output_dir``: the checkpoints' root,
    null for none); ``identity`` is what else the run depends on (the reward's
    own settings and models), so a changed reward starts afresh rather than
    resuming a stale run. Generation stops at the end of turn, as the engine's
    does. Returns the refined adapter (same LoRA config) and the per-step log
    (``trainer.state.log_history``, which a resumed run restores, so it
    covers the steps before a kill).
    """
    if prompts.empty:
        raise ValueError(f"no prompts to refine the {name} adapter on")
    columns = prompts.to_dict("list")
    portable = {k: v for k, v in settings.items() if k != "output_dir"}
    run = f"{name}-{fingerprint(base.metadata, adapter.metadata.get('run'), portable, columns, identity)}"
    args = grpo_arguments(settings, run)
    model, tokenizer = trainable_adapter(base, adapter, args)
    model.generation_config.eos_token_id = end_of_turn_ids(tokenizer)
    dataset = Dataset.from_dict({**columns, "prompt": [[{"role": "user", "content": p}] for p in columns["prompt"]]})
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset, processing_class=tokenizer)
    train_resumably(trainer, run)
    log = pd.DataFrame([entry for entry in trainer.state.log_history if "reward" in entry])
    state = {k: v.detach().to("cpu").clone() for k, v in get_peft_model_state_dict(trainer.model, adapter_name=POLICY_ADAPTER).items()}
    metadata = {
        "expert": name,
        **adapter_metadata(base, args),
        "parent_expert": adapter.metadata.get("expert"),
        "parent_run": adapter.metadata.get("run"),
        "lora": adapter.config.to_dict(),
        **identity,
        "training_prompts": len(prompts),
        "training_data_fingerprint": fingerprint(columns),
        "final_reward": float(log["reward"].iloc[-1]) if len(log) else None,
        "run": run,
    }
    return AdapterArtifact(copy.deepcopy(adapter.config), state, metadata), log
