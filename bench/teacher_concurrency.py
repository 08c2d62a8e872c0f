"""Teacher throughput against a local OpenAI-compatible server that answers after a fixed delay.

    python bench/teacher_concurrency.py                 # 500 prompts at concurrency 16; one-at-a-time on 50, scaled
    python bench/teacher_concurrency.py --full          # one-at-a-time on all 500 (100 s at 200 ms)

Prints requests/s for both, the speed-up and its ratio to the ideal
(min(concurrency, prompts)), then reruns the concurrent job against the same
cache and prints how many requests reached the server (should be zero).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from reason4rec.completions import CompletionClient, CompletionRequest
from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.fake_server import FakeOpenAIServer
from reason4rec.completions.openai_backend import OpenAIBackend


def run(server: FakeOpenAIServer, prompts: list[str], concurrency: int, cache: Path | None) -> float:
    teacher = CompletionClient(OpenAIBackend("bench", api_key="EMPTY", base_url=server.base_url), AnswerCache(cache), concurrency=concurrency)
    start = time.perf_counter()
    answers = teacher.complete([CompletionRequest(p) for p in prompts], stage="bench")
    assert all(a.ok for a in answers)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--sequential-sample", type=int, default=50)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    prompts = [f"prompt {i}" for i in range(args.prompts)]
    with FakeOpenAIServer(delay_s=args.delay) as server, tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache.sqlite"
        concurrent = run(server, prompts, args.concurrency, cache)
        sample = prompts if args.full else [f"sequential {i}" for i in range(args.sequential_sample)]
        sequential = run(server, sample, 1, None) * len(prompts) / len(sample)
        before = sum(server.requests.values())
        rerun = run(server, prompts, args.concurrency, cache)
        repeated = sum(server.requests.values()) - before
    ideal = min(args.concurrency, args.prompts)
    speedup = sequential / concurrent
    print(f"{args.prompts} prompts, server delay {args.delay * 1000:.0f} ms")
    print(f"concurrency {args.concurrency:>3}: {concurrent:7.2f} s ({args.prompts / concurrent:6.1f} req/s)")
    scaled = "" if args.full else f" (timed on {len(sample)}, scaled)"
    print(f"one at a time : {sequential:7.2f} s ({args.prompts / sequential:6.1f} req/s){scaled}")
    print(f"speed-up {speedup:.1f}x of an ideal {ideal}x = {speedup / ideal:.2f} of ideal")
    print(f"rerun from cache: {rerun:.2f} s, {repeated} requests reached the server")


if __name__ == "__main__":
    main()
