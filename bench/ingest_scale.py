"""Ingest at scale: wall time and peak memory of `kedro run --pipelines ingest_5core`
on generated Amazon-format dumps, this tree's ingest against an earlier commit's.

    python bench/ingest_scale.py                                  # 1M and 5M lines, baseline 47cfc19
    python bench/ingest_scale.py --lines 5000000 20000000         # the baseline only up to 5M
    python bench/ingest_scale.py --lines 200000 --baseline-max-lines 200000

Each dump is Amazon 2014 JSON lines, gzip-compressed, about 400-character
reviews, users and items drawn with log-normal activity and popularity, so
that the 5-core keeps a minority of rows, as on a raw (not pre-cored) dump. Dumps are
generated once into --workdir and reused.

Both ingests run as `kedro run --pipelines ingest_5core --to-outputs <splits,
rejects, stats>` (the pair samples and the base model are left out) in their
own process, in a copy of their own code (this tree's src/ and conf/; the
baseline commit's, by `git archive`) with a data/ folder of their own, one after the other on the same dump; peak memory is the process's
own high-water resident set (``VmHWM``, read as it exits). Not ``wait4``'s ``ru_maxrss``: at ``exec``
the kernel carries the parent's high-water mark into the child's, so the bench's own peak (from
reading back an earlier run's tables) would be reported as the next ingest's. Run it on an idle machine, with
MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set high (see docs/lineage.md, "Benchmarks").
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = "interactions_train,interactions_valid,interactions_test,ingest_rejects,dataset_stats"
# `python -m kedro ...` that writes its own peak resident set (VmHWM, in kB) to the file named first, as it exits.
KEDRO_REPORTING_PEAK = """
import atexit, runpy, sys
peak_file, sys.argv = sys.argv[1], ["kedro", *sys.argv[2:]]

def write_peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(peak_file, "w") as out:
        out.write(peak)

atexit.register(write_peak)
runpy.run_module("kedro", run_name="__main__", alter_sys=True)
"""
WORDS = "the sound tone strings neck frets pickup amp cable pedal build quality price value great good poor loud warm bright buzz tuning stays case".split()


def generate_dump(path: Path, n_lines: int, seed: int = 0) -> None:
    """Amazon 2014 lines: 4 reviews a user and 10 an item on average, activity and
    popularity log-normal, so a raw dump's long tail falls outside the 5-core."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 70)).capitalize() + "." for _ in range(2000)]  # about 400 characters each
    n_users, n_items = max(n_lines // 4, 10), max(n_lines // 10, 10)
    activity, popularity = rng.lognormal(0, 1.0, n_users), rng.lognormal(0, 1.2, n_items)
    activity, popularity = activity / activity.sum(), popularity / popularity.sum()
    chunk = 200_000
    with gzip.open(path.with_suffix(".tmp"), "wb", compresslevel=1) as out:
        for start in range(0, n_lines, chunk):
            n = min(chunk, n_lines - start)
            users = rng.choice(n_users, n, p=activity)
            items = rng.choice(n_items, n, p=popularity)
            ratings = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], n, p=[0.06, 0.06, 0.1, 0.23, 0.55])
            times = rng.integers(1_300_000_000, 1_500_000_000, n)
            review = rng.integers(0, len(texts), n)
            lines = [
                json.dumps({"reviewerID": f"A{u:09d}", "asin": f"B{i:09d}", "reviewerName": "x", "helpful": [0, 0], "reviewText": texts[t],
                            "overall": r, "summary": "ok", "unixReviewTime": int(s), "reviewTime": "01 1, 2014"})
                for u, i, r, s, t in zip(users, items, ratings, times, review)
            ]
            out.write(("\n".join(lines) + "\n").encode())
    path.with_suffix(".tmp").rename(path)


def checkout(rev: str, workdir: Path) -> Path:
    """``rev``'s src/, conf/ and pyproject.toml in a folder of the bench's own, extracted once."""
    tree = workdir / f"tree-{rev}"
    if not tree.exists():
        partial = workdir / f".tree-{rev}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src", "conf", "pyproject.toml"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        # An older tree does not disable kedro-mlflow's hook, which would track (and fail on) every run.
        with (partial / "src" / "reason4rec" / "settings.py").open("a") as settings:
            settings.write('\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")\n')
        partial.rename(tree)
    return tree


def copy_this_tree(workdir: Path) -> Path:
    """This tree's code and configuration (uncommitted changes included, conf/local
    left out) in a folder of the bench's own, so no run touches this project's data/."""
    tree = workdir / "tree-this"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "conf", tree / "conf", ignore=lambda folder, names: names if folder.endswith("local") else [])
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def run_ingest(project: Path, dump: Path, log: Path) -> dict:
    """One `kedro run` of the ingest in a fresh data folder; wall seconds and peak RSS."""
    shutil.rmtree(project / "data", ignore_errors=True)
    # Kedro's telemetry would try to reach its server at startup, and time out here: no tree pays for that.
    (project / ".telemetry").write_text("consent: false\n")
    for layer in ("01_raw", "02_intermediate", "03_primary", "08_reporting"):
        (project / "data" / layer).mkdir(parents=True)
    peak_file = log.with_suffix(".peak_kb")
    peak_file.unlink(missing_ok=True)
    command = [sys.executable, "-c", KEDRO_REPORTING_PEAK, str(peak_file), "run", "--pipelines", "ingest_5core", "--to-outputs", OUTPUTS,
               "--params", f"dataset.source=amazon,dataset.reviews_path={dump}"]
    start = time.perf_counter()
    with log.open("w") as handle:
        returncode = subprocess.run(command, cwd=project, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(project / "src")}).returncode
    seconds = time.perf_counter() - start
    if returncode != 0 or not peak_file.exists():
        raise SystemExit(f"ingest failed in {project} on {dump}: see {log}")
    train = pd.read_parquet(project / "data" / "03_primary" / "interactions_train.parquet")
    rejects = pd.read_parquet(project / "data" / "08_reporting" / "ingest_rejects.parquet")
    digest = int(pd.util.hash_pandas_object(train.astype(str), index=False).sum()) ^ hash(tuple(sorted(rejects["reason"].value_counts().items())))
    return {"seconds": seconds, "peak_gb": int(peak_file.read_text()) / 2**20, "train_rows": len(train), "digest": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--baseline", default="47cfc19", help="commit of the ingest to compare with (the two-pass pyarrow ingest, in pandas; 988fd99: the in-memory one)")
    parser.add_argument("--baseline-max-lines", type=int, default=5_000_000, help="skip the baseline on larger dumps")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reason4rec_ingest_bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    baseline, current = checkout(args.baseline, args.workdir), copy_this_tree(args.workdir)
    print(f"{'lines':>9} {'dump_MB':>8} {'ingest':>10} {'wall_s':>8} {'peak_GB':>8} {'train_rows':>11}")
    for n_lines in args.lines:
        dump = args.workdir / f"amazon_{n_lines}.json.gz"
        if not dump.exists():
            generate_dump(dump, n_lines)
        size = dump.stat().st_size / 2**20
        results = {}
        for name, project in (("this tree", current), (f"{args.baseline}", baseline)):
            if project is baseline and n_lines > args.baseline_max_lines:
                continue
            results[name] = run_ingest(project, dump, args.workdir / f"{name.replace(' ', '_')}_{n_lines}.log")
            r = results[name]
            print(f"{n_lines:>9,} {size:>8.0f} {name:>10} {r['seconds']:>8.1f} {r['peak_gb']:>8.2f} {r['train_rows']:>11,}", flush=True)
        if len(results) == 2:
            new, old = results["this tree"], results[args.baseline]
            print(f"{'':>9} {'':>8} {'ratio':>10} {old['seconds'] / new['seconds']:>7.1f}x {old['peak_gb'] / new['peak_gb']:>7.1f}x"
                  f" {'same tables' if new['digest'] == old['digest'] else 'TABLES DIFFER'}")


if __name__ == "__main__":
    main()
