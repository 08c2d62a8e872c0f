"""Throughput and latency of ``reason4rec serve`` under load, on loopback.

    python bench/serve_load.py --bundle data/06_models/bundle                        # the default run's bundle
    python bench/serve_load.py --bundle data/06_models/bundle --write docs/serving-load.md
    python bench/serve_load.py --bundle data/06_models/bundle --phases               # where a prediction's time goes

Starts the service on a bundle in its own process on a free loopback port, then
for each concurrency (1, 4, 16 clients, each sending its next request when its
last is answered) sends ``--requests`` prediction requests and measures
requests per second and p50/p95 latency, all in one run. Every request is a
different (user, item) pair the bundle's data has not seen rated, and no pair is
asked twice in the run, so no answer comes from the engine's cache. Concurrency
1 is one request at a time; the ratios are against it. Each level stops sending
after ``--max-seconds``.

``--phases`` instead times the engine in this process, without HTTP, on the
same kind of pairs: the reasoner prompt's prefill alone, the reason's whole
generation and the predictor's scoring, for one pair and for a batch of
``--max-batch``. Prefill and scoring read hundreds of prompt tokens each and
are bound by arithmetic, which a batch does not share; only the token-by-token
decoding gets cheaper per pair in a batch. Their shares bound what batching
can give.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd

from reason4rec.evaluation.results_page import machine


def unseen_pairs(bundle: Path, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct (user, item) pairs of known users and items that the data holds no rating for."""
    interactions = pd.read_parquet(bundle / "interactions.parquet", columns=["user_id", "item_id"])
    rated = set(zip(interactions["user_id"], interactions["item_id"]))
    users, items = sorted(interactions["user_id"].unique()), sorted(interactions["item_id"].unique())
    pairs = [(user, item) for user in users for item in items if (user, item) not in rated]
    if len(pairs) < count:
        raise SystemExit(f"the bundle has {len(pairs)} unrated pairs; the benchmark needs {count}")
    return random.Random(seed).sample(pairs, count)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def load(url: str, pairs: list[tuple[str, str]], concurrency: int, max_seconds: float) -> dict:
    """``pairs`` sent by ``concurrency`` clients; requests/s and latency percentiles of the answered ones."""
    queue, latencies, lock = list(pairs), [], threading.Lock()
    start = time.perf_counter()

    def client() -> None:
        while time.perf_counter() - start < max_seconds:
            with lock:
                if not queue:
                    return
                user, item = queue.pop(0)
            sent = time.perf_counter()
            reply = post(f"{url}/v1/predict", {"user_id": user, "item_id": item})
            assert reply["rating"] is not None, reply
            with lock:
                latencies.append(time.perf_counter() - sent)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(ordered),
        "seconds": elapsed,
        "per_second": len(ordered) / elapsed,
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
    }


def phases(bundle: Path, batch: int) -> None:
    """Seconds per pair of each phase of a prediction, for one pair and for ``batch`` pairs at once (nothing cached)."""
    from reason4rec import Recommender
    from reason4rec import contexts as ctx
    from reason4rec.prediction import prediction_contexts

    model = Recommender.from_bundle(bundle, verify=False)
    tables, engine = model.bundle.tables, model.engine
    pairs = unseen_pairs(bundle, 2 + batch, seed=1)
    contexts = prediction_contexts(pd.DataFrame(pairs, columns=["user_id", "item_id"]), tables["interactions"], tables["history_pool"], tables["summaries"], model.prompting)
    engine.load_adapters({"reasoner": model.bundle.adapters["reasoner"], "predictor": model.bundle.adapters["predictor"]})
    rows = contexts.to_dict("records")
    tokens = model.generation["max_new_tokens"]
    print(f"{'pairs':>5} {'prefill':>9} {'generation':>11} {'scoring':>9} {'total':>9}   (seconds per pair)")
    with engine.uncached():
        engine.generate([ctx.reasoner_prompt(rows[0], model.prompting)], "reasoner", max_new_tokens=1)  # warm-up
        for chosen in (rows[1:2], rows[2 : 2 + batch]):
            prompts = [ctx.reasoner_prompt(r, model.prompting) for r in chosen]
            began = time.perf_counter()
            engine.generate(prompts, "reasoner", max_new_tokens=1, batch_size=len(prompts))
            prefill = time.perf_counter() - began
            began = time.perf_counter()
            reasons = engine.generate(prompts, "reasoner", max_new_tokens=tokens, batch_size=len(prompts))
            generation = time.perf_counter() - began
            began = time.perf_counter()
            engine.rating_distributions([ctx.predictor_prompt(r, model.prompting, o["text"]) for r, o in zip(chosen, reasons)], "predictor", batch_size=len(prompts))
            scoring = time.perf_counter() - began
            n = len(prompts)
            print(f"{n:>5} {prefill / n:>9.2f} {generation / n:>11.2f} {scoring / n:>9.2f} {(generation + scoring) / n:>9.2f}")


def serve(bundle: Path, max_batch: int, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "reason4rec", "serve", "--bundle", str(bundle), "--port", str(port), "--max-batch", str(max_batch)]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service stopped at start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("the service did not start within 600 s")


def markdown(results: list[dict], args: argparse.Namespace, cpu: dict) -> str:
    base = results[0]
    lines = [
        "# Serving under load",
        "",
        f"Written by `python bench/serve_load.py --bundle {args.bundle} --requests {args.requests} --max-batch {args.max_batch} --write {args.write}`"
        f" on {time.strftime('%Y-%m-%d')}: {cpu['cpu']}, {cpu['cores']} cores, AVX512-BF16 {cpu['avx512_bf16']}.",
        "The service runs in its own process on loopback; every request is a different unrated pair (no cached answer).",
        "",
        "| concurrency | requests | req/s | p50 latency (s) | p95 latency (s) | throughput vs one at a time |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['concurrency']} | {r['requests']} | {r['per_second']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['per_second'] / base['per_second']:.2f}x |"
        for r in results
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("data/06_models/bundle"))
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4, help="requests answered before timing (not counted)")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop sending at a level after this long")
    parser.add_argument("--write", type=Path, help="also write the table as Markdown here (e.g. docs/serving-load.md)")
    parser.add_argument("--phases", action="store_true", help="time the phases of a prediction in this process instead (see above)")
    args = parser.parse_args()
    if args.phases:
        print(machine()["cpu"])
        return phases(args.bundle, args.max_batch)
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 32))
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(1 << 32))

    cpu = machine()
    pairs = unseen_pairs(args.bundle, args.warmup + args.requests * len(args.concurrency))
    with tempfile.TemporaryDirectory() as scratch:
        process, url = serve(args.bundle, args.max_batch, Path(scratch) / "serve.log")
        try:
            load(url, pairs[: args.warmup], min(args.warmup, args.max_batch), args.max_seconds)
            results, offset = [], args.warmup
            for concurrency in args.concurrency:
                results.append(load(url, pairs[offset : offset + args.requests], concurrency, args.max_seconds))
                offset += args.requests
                r = results[-1]
                print(f"concurrency {concurrency:>3}: {r['requests']:>4} requests in {r['seconds']:6.1f} s = {r['per_second']:6.2f} req/s,"
                      f" p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s", flush=True)  # fmt: skip
        finally:
            process.terminate()
            process.wait(30)
    print(f"{cpu['cpu']}, {cpu['cores']} cores, AVX512-BF16 {cpu['avx512_bf16']}")
    for r in results[1:]:
        print(f"throughput at concurrency {r['concurrency']} / one at a time: {r['per_second'] / results[0]['per_second']:.2f}x")
    if args.write:
        args.write.write_text(markdown(results, args, cpu))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
