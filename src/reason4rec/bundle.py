"""A trained Reason4Rec in one folder: what a prediction needs, readable without a Kedro project.

::

    bundle/
      manifest.json              versions, settings, what it was trained on, a checksum per file
      base/                      the base model as a Hugging Face folder (or only its name, for a hub base)
      adapters/summarizer/       each expert in PEFT's format (vLLM's --lora-modules loads these folders)
      adapters/reasoner/
      adapters/predictor/
      history_pool.parquet       the interactions histories come from (no review text)
      summaries.parquet          their aspect-preference summaries
      interactions.parquet       every known (user, item, time, title): a pair's own time, an item's title

``kedro run --pipelines export_bundle`` writes it (:class:`~reason4rec.datasets.bundle.BundleDataset`);
:meth:`reason4rec.recommender.Recommender.from_bundle` reads it.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reason4rec.datasets.model_folders import METADATA_FILE, read_adapter_folder, read_base_folder, write_adapter_folder
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.parameters import Prompting, ReasonGeneration, Summarize, prompting_of
from reason4rec.typed_config import typed_block

FORMAT = 1
EXPERTS = ("summarizer", "reasoner", "predictor")
TABLES = ("history_pool", "summaries", "interactions")
MANIFEST = "manifest.json"


@dataclass(eq=False)
class ModelBundle:
    base: BaseModelArtifact
    adapters: dict[str, AdapterArtifact]
    tables: dict[str, pd.DataFrame]  # history_pool, summaries, interactions
    settings: dict[str, Any]  # prompting, reason_generation, summary_generation
    manifest: dict[str, Any] = field(default_factory=dict)


def bundle_tables(history_pool: pd.DataFrame, summaries: pd.DataFrame, interactions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tables a prediction reads, without review text (a prompt shows summaries, not reviews)."""
    return {
        "history_pool": history_pool.assign(review=""),
        "summaries": summaries[["user_id", "item_id", "positive", "negative", "preferences"]],
        "interactions": interactions[["user_id", "item_id", "rating", "timestamp", "title"]],
    }


def bundle_settings(prompting: Prompting, reason_generation: dict[str, Any], summarize: dict[str, Any]) -> dict[str, Any]:
    """The settings a prediction needs, as the run used them: ``summary_source`` says who
    wrote the histories' summaries (``summarizer``, or ``teacher`` with ``summarize.use_teacher_summaries``)."""
    summarizing = typed_block(Summarize, summarize, "summarize")
    return {
        "prompting": asdict(prompting_of(prompting)),
        "reason_generation": asdict(typed_block(ReasonGeneration, reason_generation, "reason_generation")),
        "summary_generation": asdict(summarizing.generation),
        "summary_source": "teacher" if summarizing.use_teacher_summaries else "summarizer",
        "summary_teacher": asdict(summarizing.teacher),
    }


def assemble_bundle(
    base_model: BaseModelArtifact, summarizer: AdapterArtifact, reasoner: AdapterArtifact, predictor: AdapterArtifact,
    tables: dict[str, pd.DataFrame], settings: dict[str, Any],
) -> ModelBundle:  # fmt: skip
    return ModelBundle(base_model, {"summarizer": summarizer, "reasoner": reasoner, "predictor": predictor}, tables, settings)


def write_bundle(bundle: ModelBundle, folder: Path) -> dict[str, Any]:
    """Write ``bundle`` into the empty ``folder``; return the manifest written last."""
    base_folder = folder / "base"
    if bundle.base.folder is not None:
        shutil.copytree(bundle.base.folder, base_folder, ignore=shutil.ignore_patterns("_COMPLETE"))
    else:
        base_folder.mkdir(parents=True)
        (base_folder / METADATA_FILE).write_text(json.dumps({"name": bundle.base.name, "loading": bundle.base.loading, **bundle.base.metadata}, indent=2, default=str))
    for name in EXPERTS:
        (folder / "adapters" / name).mkdir(parents=True)
        write_adapter_folder(bundle.adapters[name], folder / "adapters" / name)
    for name in TABLES:
        bundle.tables[name].to_parquet(folder / f"{name}.parquet", index=False)
    interactions = bundle.tables["interactions"]
    manifest = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {package: _version(package) for package in ("reason4rec", "torch", "transformers", "peft")},
        "base": {"name": bundle.base.name, "weights_included": bundle.base.folder is not None, "loading": bundle.base.loading},
        "adapters": {name: {key: bundle.adapters[name].metadata.get(key) for key in ("run", "base_model", "training_examples", "training_data_fingerprint")} for name in EXPERTS},
        "settings": bundle.settings,
        "trained_on": {
            "interactions": int(len(interactions)),
            "users": int(interactions["user_id"].nunique()),
            "items": int(interactions["item_id"].nunique()),
            "history_pool": int(len(bundle.tables["history_pool"])),
            "first_timestamp": int(interactions["timestamp"].min()) if len(interactions) else None,
            "last_timestamp": int(interactions["timestamp"].max()) if len(interactions) else None,
        },
        "files": {str(path.relative_to(folder)): _sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def read_bundle(folder: str | Path, verify: bool = True) -> ModelBundle:
    """The bundle in ``folder``; with ``verify``, every file is checked against the manifest's checksum first."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(f"{folder} is not a reason4rec bundle (no {MANIFEST}): write one with `kedro run --pipelines export_bundle`")
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{folder} is a bundle of format {manifest.get('format')}; this reason4rec reads format {FORMAT}")
    if verify:
        for relative, checksum in manifest["files"].items():
            path = folder / relative
            if not path.is_file():
                raise ValueError(f"bundle {folder} is missing {relative}")
            if _sha256(path) != checksum:
                raise ValueError(f"bundle {folder}: {relative} does not match its checksum in {MANIFEST} (changed or corrupt)")
    return ModelBundle(
        base=read_base_folder(folder / "base"),
        adapters={name: read_adapter_folder(folder / "adapters" / name) for name in EXPERTS},
        tables={name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES},
        settings=manifest["settings"],
        manifest=manifest,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
