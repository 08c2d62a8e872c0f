"""An expert trained by 2 processes (torchrun, gloo, per-process batch b) equals the same training in 1 process with batch 2b."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from reason4rec.datasets.model_folders import METADATA_FILE, read_adapter_folder
from tests.helpers import rating_examples, smoke_expert


def launch(tmp_path, base, examples, settings, processes: int):
    out = tmp_path / f"adapter-{processes}"
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_addr", "127.0.0.1", "--master_port", str(port),
        "-m", "reason4rec.training_launch", "--base", str(base), "--examples", str(examples), "--expert", "predictor",
        "--settings", str(tmp_path / "settings.json"), "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return read_adapter_folder(out)


@pytest.mark.slow
def test_two_processes_train_the_adapter_one_process_trains(tiny_base, tmp_path):
    base = tmp_path / "base"
    tiny_base.model.save_pretrained(str(base))
    tiny_base.tokenizer.save_pretrained(str(base))
    (base / METADATA_FILE).write_text(json.dumps({"name": tiny_base.name, "loading": tiny_base.loading, **tiny_base.metadata}, default=str))
    examples = tmp_path / "examples.parquet"
    rating_examples(8).to_parquet(examples)
    # Every step sees all 8 examples (8 = 2 ranks x 4 = 1 rank x 8), so both see the same data in every step whatever
    # order the samplers draw. Plain SGD: Adam's update does not change when every gradient is scaled alike, so it
    # would hide a loss that is num_processes times too small, and SGD does not.
    training = {"num_train_epochs": 3, "optim": "sgd", "learning_rate": 0.5, "lr_scheduler_type": "constant", "warmup_steps": 0, "max_grad_norm": 0.0,
                "seed": 7, "data_seed": 7, "save_strategy": "no", "logging_steps": 1}  # fmt: skip
    one = launch(tmp_path, base, examples, smoke_expert(per_device_train_batch_size=8, **training), processes=1)
    two = launch(tmp_path, base, examples, smoke_expert(per_device_train_batch_size=4, **training), processes=2)
    assert set(one.state_dict) == set(two.state_dict)
    trained = [key for key in one.state_dict if "lora_B" in key]  # zero at the start: the weights are what training moved
    moved = torch.cat([one.state_dict[k].flatten().float() for k in trained])
    difference = torch.cat([(two.state_dict[k].float() - one.state_dict[k].float()).flatten() for k in trained])
    assert moved.norm() > 0
    # Tolerance: 1% of how far training moved the weights (float sums in another order, other padding per rank).
    print(f"2 processes vs 1: weights differ by {float(difference.norm() / moved.norm()):.2e} of how far training moved them")
    assert difference.norm() / moved.norm() < 0.01, float(difference.norm() / moved.norm())
