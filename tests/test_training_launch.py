"""An expert trained by 2 processes (``llm.launcher``: torchrun, gloo, per-process batch b) equals the same training in
the Kedro process with batch 2b; the launched adapter is returned to the catalog once and loads with plain peft."""

import copy

import pytest
import torch
from kedro.io import Version

from reason4rec.datasets.model_folders import AdapterDataset
from reason4rec.pipelines.expert_training import expert_training_pipeline
from tests.helpers import rating_examples, run_pipeline, smoke_expert


def train(tiny_base, settings, launcher):
    pipeline = expert_training_pipeline("predictor").only_nodes("predictor.train_adapter")
    inputs = {"base_model": tiny_base, "predictor_sft_data": rating_examples(8), "params:llm.experts.predictor": settings, "params:llm.launcher": launcher}
    return run_pipeline(pipeline, inputs, ["predictor_adapter", "predictor_loss_curve"])


@pytest.mark.slow
def test_two_processes_train_the_adapter_one_process_trains(tiny_base, tmp_path):
    # Every step sees all 8 examples (8 = 2 ranks x 4 = 1 rank x 8), so both see the same data in every step whatever
    # order the samplers draw. Plain SGD: Adam's update does not change when every gradient is scaled alike, so it
    # would hide a loss that is num_processes times too small, and SGD does not.
    training = {"num_train_epochs": 3, "optim": "sgd", "learning_rate": 0.5, "lr_scheduler_type": "constant", "warmup_steps": 0, "max_grad_norm": 0.0,
                "seed": 7, "data_seed": 7, "save_strategy": "no", "logging_steps": 1}  # fmt: skip
    one = train(tiny_base, smoke_expert(per_device_train_batch_size=8, **training), {"processes": 1})
    two = train(tiny_base, smoke_expert(per_device_train_batch_size=4, **training), {"processes": 2, "command": "torchrun"})
    one_adapter, two_adapter = one["predictor_adapter"], two["predictor_adapter"]
    assert set(one_adapter.state_dict) == set(two_adapter.state_dict)
    assert two["predictor_loss_curve"]["step"].tolist() == one["predictor_loss_curve"]["step"].tolist() == [1, 2, 3]
    trained = [key for key in one_adapter.state_dict if "lora_B" in key]  # zero at the start: the weights are what training moved
    moved = torch.cat([one_adapter.state_dict[k].flatten().float() for k in trained])
    difference = torch.cat([(two_adapter.state_dict[k].float() - one_adapter.state_dict[k].float()).flatten() for k in trained])
    assert moved.norm() > 0
    # Tolerance: 1% of how far training moved the weights (float sums in another order, other padding per rank).
    print(f"2 processes vs 1: weights differ by {float(difference.norm() / moved.norm()):.2e} of how far training moved them")
    assert difference.norm() / moved.norm() < 0.01, float(difference.norm() / moved.norm())

    # The catalog writes the launched adapter as it writes any other, and plain peft loads that folder.
    from peft import PeftModel

    AdapterDataset(str(tmp_path / "predictor_adapter"), version=Version(None, None)).save(two_adapter)
    (folder,) = [p.parent for p in (tmp_path / "predictor_adapter").glob("*/*/adapter_model.safetensors")]
    loaded = PeftModel.from_pretrained(copy.deepcopy(tiny_base.model), str(folder))
    state = {k: v for k, v in loaded.state_dict().items() if "lora_B" in k}
    assert len(state) == len(trained) and all(torch.equal(state[k.replace("lora_B.weight", "lora_B.default.weight")], two_adapter.state_dict[k]) for k in trained)


def test_a_failed_launch_names_its_command(tiny_base):
    with pytest.raises(RuntimeError, match=r"launched training of predictor failed .*--nproc_per_node 2 --no-such-flag"):
        train(tiny_base, smoke_expert(), {"processes": 2, "arguments": ["--no-such-flag"]})


def test_launcher_settings_are_checked():
    from reason4rec.parameters import Launcher
    from reason4rec.typed_config import typed_block

    with pytest.raises(ValueError, match="config_file is accelerate's"):
        typed_block(Launcher, {"processes": 2, "config_file": "fsdp.yaml"}, "llm.launcher")
    with pytest.raises(ValueError, match="processes must be at least 1"):
        typed_block(Launcher, {"processes": 0}, "llm.launcher")
    with pytest.raises(ValueError, match="unknown llm.launcher setting"):
        typed_block(Launcher, {"procs": 2}, "llm.launcher")
