"""Supervised fine-tuning of the LoRA experts (reason4rec.llm.training)."""

import logging

import pandas as pd
import pytest
import torch

from reason4rec.llm.chat import RATING_PREFIX, chat_prompt
from reason4rec.llm.loading import use_bf16
from reason4rec.llm.training import encode_sft_example, train_adapter, training_arguments
from tests.helpers import rating_examples, smoke_expert


def test_training_lowers_the_loss_and_records_metadata(predictor):
    adapter, curve = predictor
    assert curve["loss"].iloc[-1] < 0.5 * curve["loss"].iloc[0]
    assert adapter.metadata["training_examples"] == 96 and adapter.metadata["final_loss"] == pytest.approx(curve["loss"].iloc[-1])
    assert any("lora_A" in key for key in adapter.state_dict)


def test_response_only_masking(tiny_base):
    tokenizer = tiny_base.tokenizer
    example = encode_sft_example(tokenizer, "Rate this.", "Predicted Rating: 4.0", max_length=128)
    prompt_len = len(tokenizer(chat_prompt(tokenizer, "Rate this."), add_special_tokens=False)["input_ids"])
    assert example["labels"][:prompt_len] == [-100] * prompt_len
    assert example["labels"][prompt_len:] == example["input_ids"][prompt_len:]
    assert tokenizer.decode(example["input_ids"][prompt_len:]).startswith("Predicted Rating: 4.0")
    assert example["input_ids"][-2] == tokenizer.eos_token_id  # the end-of-turn token is learned too


def test_over_long_prompts_are_cut_from_the_left_counted_and_reported(tiny_base, caplog):
    tokenizer = tiny_base.tokenizer
    long_prompt = "The album is superb. " * 40 + "Rate it."
    whole = encode_sft_example(tokenizer, long_prompt, "Predicted Rating: 5.0", max_length=1024)
    cut = encode_sft_example(tokenizer, long_prompt, "Predicted Rating: 5.0", max_length=64)
    assert whole["prompt_tokens_cut"] == 0 and len(cut["input_ids"]) == 64
    assert cut["prompt_tokens_cut"] == len(whole["input_ids"]) - 64
    assert cut["input_ids"] == whole["input_ids"][-64:] and cut["labels"] == whole["labels"][-64:]  # the response is whole
    rows = pd.DataFrame({"prompt": [long_prompt, "Rate it."], "response": ["Predicted Rating: 5.0"] * 2})
    with caplog.at_level(logging.WARNING, logger="reason4rec.llm.training"):
        adapter, _ = train_adapter(tiny_base, rows, {**smoke_expert(num_train_epochs=1), "max_length": 64}, "predictor")
    assert adapter.metadata["training_examples_cut"] == 1
    assert "1 of 2 predictor training examples are longer than max_length=64" in caplog.text
    assert "Raise max_length in its llm.experts block" in caplog.text


def test_training_does_not_depend_on_what_ran_before(tiny_base):
    examples = rating_examples(16)
    hyper = smoke_expert(num_train_epochs=1)
    first, _ = train_adapter(tiny_base, examples, hyper, "predictor")
    torch.rand(1000)  # anything else the process does between two trainings
    second, _ = train_adapter(tiny_base, examples, hyper, "predictor")
    for key, weights in first.state_dict.items():
        assert torch.equal(weights, second.state_dict[key]), key


def test_training_resumes_from_its_last_checkpoint(tiny_base, tmp_path):
    hyper = smoke_expert(output_dir=str(tmp_path), max_steps=4, save_steps=2, num_train_epochs=1)
    examples = rating_examples(32)
    _, first = train_adapter(tiny_base, examples, hyper, "predictor")
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoint-4").is_dir() and not first.empty
    # The same job again (as after a crash once the last checkpoint was written) resumes there.
    _, again = train_adapter(tiny_base, examples, hyper, "predictor")
    # Resumed at its final step: nothing left to train, and the curve still covers the steps before.
    pd.testing.assert_frame_equal(again, first)
    # A changed configuration is a different run and starts afresh.
    _, other = train_adapter(tiny_base, examples, {**hyper, "training": {**hyper["training"], "learning_rate": 1e-3}}, "predictor")
    assert not other.empty and len(list(tmp_path.iterdir())) == 2


def test_rating_only_labels_just_the_digit(tiny_base):
    tokenizer = tiny_base.tokenizer
    example = encode_sft_example(tokenizer, "Rate this.", "Predicted Rating: 4.0", max_length=128, rating_only=True)
    labelled = [(i, t) for i, t in enumerate(example["labels"]) if t != -100]
    assert len(labelled) == 1 and tokenizer.decode([labelled[0][1]]) == "4"
    assert tokenizer.decode(example["input_ids"][: labelled[0][0]]).endswith(RATING_PREFIX)
    with pytest.raises(ValueError, match="rating_only needs a response"):
        encode_sft_example(tokenizer, "Say something.", "Melody melody.", max_length=128, rating_only=True)


def test_training_settings_pass_through_to_training_arguments_and_are_recorded(tiny_base):
    settings = smoke_expert(num_train_epochs=1, weight_decay=0.05, lr_scheduler_type="constant", max_steps=2)
    adapter, curve = train_adapter(tiny_base, rating_examples(16), settings, "predictor")
    recorded = adapter.metadata["training_arguments"]
    assert recorded["weight_decay"] == 0.05 and recorded["lr_scheduler_type"] == "constant" and recorded["max_steps"] == 2
    assert "output_dir" not in recorded and recorded["bf16"] is False
    assert curve["step"].max() == 2
    assert adapter.metadata["lora"]["r"] == settings["lora"]["r"] and adapter.config.r == settings["lora"]["r"]


def test_training_settings_transformers_or_this_code_cannot_take_are_refused(tiny_base):
    with pytest.raises(TypeError, match="weight_decy"):
        train_adapter(tiny_base, rating_examples(8), smoke_expert(weight_decy=0.05), "predictor")
    with pytest.raises(ValueError, match="remove_unused_columns"):
        train_adapter(tiny_base, rating_examples(8), smoke_expert(remove_unused_columns=True), "predictor")
    with pytest.raises(TypeError, match="rank"):
        train_adapter(tiny_base, rating_examples(8), smoke_expert(lora={"rank": 4}), "predictor")


def test_auto_settings_are_resolved_for_this_machine():
    args = training_arguments({"bf16": "auto", "activation_checkpointing": "auto", "output_dir": None}, "run")
    assert args.bf16 == use_bf16("auto") and args.activation_checkpointing == torch.cuda.is_available()
    assert args.save_strategy == "no"


def _gather_on_rank(rank: int, world: int, folder) -> None:
    """One rank of an FSDP job on the CPU (gloo): the seeded model wrapped by peft's auto-wrap policy, then
    ``adapter_state`` as a launched training calls it (the trainer's accelerate calls as accelerate makes them)."""
    from types import SimpleNamespace

    import torch.distributed as dist
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from peft.utils.other import fsdp_auto_wrap_policy
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from transformers import LlamaConfig, LlamaForCausalLM

    from reason4rec.llm.training import adapter_state

    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=world)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], modules_to_save=["lm_head"]))
    expected = {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}
    wrapped = FSDP(model, auto_wrap_policy=fsdp_auto_wrap_policy(model), device_id=torch.device("cpu"), use_orig_params=False)

    def full_state_dict(module):  # accelerate's Accelerator.get_state_dict under FSDP 1 (which offloads to the CPU: here the tensors are there)
        with FSDP.state_dict_type(module, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=False, rank0_only=True)):
            return module.state_dict()

    plugin = SimpleNamespace(set_state_dict_type=lambda kind: None)
    accelerator = SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin), get_state_dict=full_state_dict, unwrap_model=lambda m: m.module, is_main_process=rank == 0)
    state = adapter_state(SimpleNamespace(is_fsdp_enabled=True, model=wrapped, accelerator=accelerator))
    torch.save({"state": state, "expected": expected}, folder / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_an_adapter_gathered_from_fsdp_shards_keeps_every_tensor(tmp_path):
    # FSDP with peft's auto-wrap policy puts `_fsdp_wrapped_module` inside the module names, by which peft picks an
    # adapter's tensors out of the gathered full state dict: asked with the wrapped model it found next to none, so
    # the adapter a launched FSDP training wrote was empty (seen on an H200), and it reads modules_to_save through
    # the wrapped lm_head's own state_dict, a collective that rank 0 alone then entered. Only rank 0 receives the
    # full state dict; the other ranks must come back empty-handed, not fail on lm_head missing from it.
    torch.multiprocessing.spawn(_gather_on_rank, args=(2, tmp_path), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    expected = rank0["expected"]
    assert set(rank0["state"]) == set(expected) and all(torch.equal(rank0["state"][k], expected[k]) for k in expected)
    assert any("lm_head" in k for k in expected) and rank1["state"] == {}
