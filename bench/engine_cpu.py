"""LLM engine on the CPU: batched vs one-by-one scoring and generation, and SFT throughput.

    MALLOC_MMAP_THRESHOLD_=1000000000000 MALLOC_TRIM_THRESHOLD_=1000000000000 python bench/engine_cpu.py

The model is the default ``tiny`` shape (4 layers, hidden 256) with random
weights: speed does not depend on the weights' values. glibc's allocator makes
batched CPU runs noisy; the two variables above steady them.

Scoring is also put against the machine: the forward's arithmetic (weight
matmuls plus dense attention) per second, next to what one large matmul reaches
in the same precision. When one-by-one scoring already runs near that ceiling,
batching has little left to gain.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from reason4rec.data.synthetic import generate_review_world
from reason4rec.llm.artifacts import BaseModelArtifact
from reason4rec.llm.engine import Engine
from reason4rec.llm.training import encode_sft_example, train_adapter
from reason4rec.llm.tiny import build_tiny_model, train_tokenizer

ARCHITECTURE = {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4, "max_position_embeddings": 2048}
WORLD = {"seed": 0, "n_users": 300, "n_items": 120, "interactions_per_user": 8, "start_timestamp": 0, "span_days": 100, "noise_sentence_rate": 0.3, "rating_noise": 0.4}


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def scoring_flops(model: torch.nn.Module, tokens: int) -> float:
    """Floating-point operations of one scoring forward over ``tokens`` tokens:
    2 per weight per token in the decoder layers, plus QK^T and AV counted dense."""
    config = model.config
    layer_weights = sum(p.numel() for name, p in model.named_parameters() if ".layers." in name and p.dim() == 2)
    return 2 * layer_weights * tokens + 4 * config.num_hidden_layers * config.hidden_size * tokens**2


def matmul_ceiling(bf16: bool, size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of a square matmul in the engine's precision: a practical ceiling for this CPU."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        torch.matmul(a, b)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        seconds = time.perf_counter() - start
    return 2 * size**3 * repeats / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--bf16", choices=["auto", "true", "false"], default="auto")
    args = parser.parse_args()
    torch.manual_seed(0)
    world = generate_review_world(WORLD)
    tokenizer = train_tokenizer(world["review"].tolist(), 4000)
    params = {"bf16": {"auto": "auto", "true": True, "false": False}[args.bf16]}
    base = BaseModelArtifact("tiny", params, {"base_model": "tiny"}, model=build_tiny_model(tokenizer, ARCHITECTURE, seed=0), tokenizer=tokenizer)

    text = " ".join(world["review"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prompts = [tokenizer.decode(ids[i * 50 : i * 50 + args.prompt_tokens - 20]) for i in range(args.prompts)]
    engine = Engine(base)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, bf16={engine.bf16}, "
          f"{sum(p.numel() for p in engine.model.parameters()) / 1e6:.1f}M parameters, {args.prompts} prompts of ~{args.prompt_tokens} tokens")

    engine.score_ratings(prompts[:2], None, batch_size=2)  # warm-up
    _, batched = timed(engine.score_ratings, prompts, None, batch_size=args.batch_size)
    _, single = timed(lambda: [engine.score_ratings([p], None, batch_size=1) for p in prompts])
    print(f"scoring    batch {args.batch_size}: {args.prompts / batched:7.1f} prompts/s | one-by-one: {args.prompts / single:7.1f} prompts/s | speed-up {single / batched:.1f}x")
    lengths = [len(engine.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    work = sum(scoring_flops(engine.model, n) for n in lengths)
    ceiling = matmul_ceiling(engine.bf16)
    print(f"scoring arithmetic: batched {work / batched / 1e9:6.1f} GFLOP/s | one-by-one {work / single / 1e9:6.1f} GFLOP/s | "
          f"1024x1024 matmul {ceiling / 1e9:6.1f} GFLOP/s (one-by-one at {work / single / ceiling:.0%} of it)")

    # Mixed lengths, as real histories give: batches in arrival order (each call
    # holds one batch, so nothing is regrouped) vs one call, regrouped by length.
    generator = torch.Generator().manual_seed(0)
    mixed = [tokenizer.decode(ids[i * 50 : i * 50 + int(torch.randint(args.prompt_tokens // 4, args.prompt_tokens, (1,), generator=generator))])
             for i in range(args.prompts * 2)]
    _, arrival = timed(lambda: [engine.score_ratings(mixed[s : s + args.batch_size], None, batch_size=args.batch_size) for s in range(0, len(mixed), args.batch_size)])
    _, regrouped = timed(engine.score_ratings, mixed, None, batch_size=args.batch_size)
    print(f"scoring, {len(mixed)} prompts of {args.prompt_tokens // 4}-{args.prompt_tokens} tokens, batch {args.batch_size}: "
          f"arrival order {len(mixed) / arrival:6.1f} prompts/s | regrouped by length {len(mixed) / regrouped:6.1f} prompts/s | speed-up {arrival / regrouped:.2f}x")

    short = [p[:400] for p in prompts]
    out, batched = timed(engine.generate, short, None, max_new_tokens=args.new_tokens, batch_size=args.batch_size)
    tokens = sum(o["new_tokens"] for o in out)
    out_single, single = timed(lambda: [engine.generate([p], None, max_new_tokens=args.new_tokens)[0] for p in short])
    tokens_single = sum(o["new_tokens"] for o in out_single)
    print(f"generation batch {args.batch_size}: {tokens / batched:7.1f} tokens/s | one-by-one: {tokens_single / single:7.1f} tokens/s | speed-up {(tokens / batched) / (tokens_single / single):.1f}x")

    examples = pd.DataFrame({"prompt": prompts[:16], "response": ["Predicted Rating: 4.0"] * 16})
    hyper = {
        "lora": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
        "training": {"learning_rate": 1e-4, "num_train_epochs": 1, "max_steps": 4, "per_device_train_batch_size": 8, "logging_steps": 1, "bf16": params["bf16"]},
        "max_length": args.prompt_tokens,
    }
    n_tokens = sum(len(encode_sft_example(tokenizer, p, r, args.prompt_tokens)["input_ids"]) for p, r in zip(examples["prompt"], examples["response"]))
    _, seconds = timed(train_adapter, base, examples, hyper, "bench")
    print(f"LoRA SFT   batch 8: {4 / seconds:.2f} steps/s, {n_tokens * 2 / seconds:,.0f} tokens/s ({seconds / 4:.2f} s a step, model load included)")


if __name__ == "__main__":
    main()
