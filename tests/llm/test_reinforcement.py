"""GRPO on a trained LoRA expert (reason4rec.llm.reinforcement)."""


import pandas as pd
import pytest
import torch

from reason4rec.llm.reinforcement import POLICY_ADAPTER, grpo_arguments, refine_adapter, trainable_adapter
from tests.helpers import SMOKE_PARAMS


def smoke_grpo(**changes) -> dict:
    return {**SMOKE_PARAMS["llm"]["experts"]["reasoner_rl"]["training"], "output_dir": None, **changes}


def test_the_adapter_loads_trainable_with_its_own_weights(tiny_base, echo):
    echo.config.inference_mode = True  # as a config read back from a saved folder may say
    try:
        model, _ = trainable_adapter(tiny_base, echo, grpo_arguments(smoke_grpo(), "check"))
    finally:
        echo.config.inference_mode = False
    from peft import get_peft_model_state_dict

    held = get_peft_model_state_dict(model, adapter_name=POLICY_ADAPTER)
    assert set(held) == set(echo.state_dict) and all(torch.equal(held[k].cpu(), echo.state_dict[k]) for k in held)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_grpo_arguments_resolve_auto_and_keep_trl_fields():
    args = grpo_arguments(smoke_grpo(bf16="auto", activation_checkpointing="auto", beta=0.04), "check")
    assert args.num_generations == 4 and args.beta == 0.04 and args.max_completion_length == 16
    assert args.activation_checkpointing is torch.cuda.is_available()  # TRL's default is on; here only on CUDA
    assert args.report_to == [] or args.report_to == "none" or args.report_to == ["none"]


def test_a_failing_reward_stops_the_run(tiny_base, echo):
    def reward(prompts, completions, **_):
        raise RuntimeError("the predictor could not be scored")

    prompts = pd.DataFrame({"prompt": ["Say something."] * 2})
    with pytest.raises(RuntimeError, match="could not be scored"):
        refine_adapter(tiny_base, echo, prompts, reward, smoke_grpo(max_steps=1), "echo_rl", {})


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny_base, echo, tmp_path, caplog):
    def reward(prompts, completions, **_):  # longer is better: something to learn, deterministic
        return [float(len(c[-1]["content"] if isinstance(c, list) else c)) for c in completions]

    prompts = pd.DataFrame({"prompt": ["Say something.", "Say more."]})
    settings = smoke_grpo(output_dir=str(tmp_path), max_steps=3, save_steps=1, logging_steps=1, save_total_limit=None)
    _, log = refine_adapter(tiny_base, echo, prompts, reward, settings, "echo_rl", {})
    (run,) = list(tmp_path.iterdir())
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    # As if killed during step 3: its checkpoint never written. The rerun resumes at step 2 and trains step 3 alone.
    import shutil

    shutil.rmtree(run / "checkpoint-3")
    with caplog.at_level("INFO", logger="reason4rec.llm.training"):
        _, again = refine_adapter(tiny_base, echo, prompts, reward, settings, "echo_rl", {})
    assert "Resuming echo_rl" in caplog.text and f"{run / 'checkpoint-2'}" in caplog.text
    assert again["step"].tolist() == [1, 2, 3] and again["reward"].iloc[:2].tolist() == log["reward"].iloc[:2].tolist()
