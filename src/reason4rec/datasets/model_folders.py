"""Versioned model folders in the catalog: the base model and LoRA adapter checkpoints.

Each version is a folder ``<filepath>/<version>/<name>/``. Adapters use PEFT's
own format (``adapter_config.json``, ``adapter_model.safetensors``), so plain
``peft`` and vLLM's LoRA support load them; ``training_metadata.json`` sits
beside them and is what kedro-viz previews.

Writes are atomic in effect on any fsspec filesystem: files are written first
and the ``_COMPLETE`` marker last, and a version without the marker does not
exist for ``load``, ``exists`` or "latest", so a crash mid-save never leaves
a version that later loads half-written.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import get_filepath_str, get_protocol_and_path
from kedro_datasets._typing import JSONPreview
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact

COMPLETE_MARKER = "_COMPLETE"
METADATA_FILE = "training_metadata.json"


class _VersionedFolderDataset(AbstractVersionedDataset):
    """Shared mechanics: write a folder locally, upload it, then mark it complete."""

    def __init__(self, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None, fs_args: dict | None = None):
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(fs_args or {}))
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=lambda p: self._fs.exists(f"{p}/{COMPLETE_MARKER}"),
            glob_function=self._fs.glob,
        )

    def _full(self, path: PurePosixPath) -> str:
        return get_filepath_str(path, self._protocol)

    def _write_files(self, data: Any, folder: Path) -> None:
        raise NotImplementedError

    def _read_files(self, folder: str) -> Any:
        raise NotImplementedError

    def save(self, data: Any) -> None:
        target = self._full(self._get_save_path())
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            self._write_files(data, folder)
            self._fs.makedirs(target, exist_ok=True)
            for file in sorted(folder.iterdir()):
                self._fs.put_file(str(file), f"{target}/{file.name}")
        with self._fs.open(f"{target}/{COMPLETE_MARKER}", "w") as marker:
            marker.write("complete\n")
        self._fs.invalidate_cache(target)

    def load(self) -> Any:
        source = self._full(self._get_load_path())
        if not self._fs.exists(f"{source}/{COMPLETE_MARKER}"):
            raise DatasetError(f"{source} is not a complete checkpoint (no {COMPLETE_MARKER} marker): it was never finished writing")
        if self._protocol == "file":
            return self._read_files(source)
        with tempfile.TemporaryDirectory() as scratch:
            self._fs.get(f"{source}/", scratch, recursive=True)
            return self._read_files(scratch)

    def _local_copy(self, source: str) -> str:
        """The version as a local folder that outlives this call (remote versions are downloaded once)."""
        if self._protocol == "file":
            return source
        scratch = tempfile.mkdtemp(prefix="reason4rec-base-")
        self._fs.get(f"{source}/", scratch, recursive=True)
        return scratch

    def _exists(self) -> bool:
        return self._fs.exists(f"{self._full(self._get_load_path())}/{COMPLETE_MARKER}")

    def read_metadata(self) -> dict[str, Any]:
        with self._fs.open(f"{self._full(self._get_load_path())}/{METADATA_FILE}") as handle:
            return json.load(handle)

    def preview(self) -> JSONPreview:
        """The training metadata, for kedro-viz."""
        return JSONPreview(json.dumps(self.read_metadata()))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol, "version": self._version}


class AdapterDataset(_VersionedFolderDataset):
    """A LoRA adapter checkpoint in PEFT's folder format plus ``training_metadata.json``."""

    def _write_files(self, data: AdapterArtifact, folder: Path) -> None:
        write_adapter_folder(data, folder)

    def _read_files(self, folder: str) -> AdapterArtifact:
        return read_adapter_folder(folder)


def write_adapter_folder(adapter: AdapterArtifact, folder: Path) -> None:
    """PEFT's files (``adapter_config.json``, ``adapter_model.safetensors``) and ``training_metadata.json``."""
    from safetensors.torch import save_file

    config = adapter.config
    config.base_model_name_or_path = adapter.metadata.get("base_model")
    config.save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in adapter.state_dict.items()}, str(folder / "adapter_model.safetensors"))
    (folder / METADATA_FILE).write_text(json.dumps(adapter.metadata, indent=2, default=str))


def read_adapter_folder(folder: str | Path) -> AdapterArtifact:
    from peft import LoraConfig
    from safetensors.torch import load_file

    config = LoraConfig.from_pretrained(str(folder))
    state = load_file(f"{folder}/adapter_model.safetensors")
    metadata = json.loads(Path(folder, METADATA_FILE).read_text())
    return AdapterArtifact(config, state, metadata)


def write_base_folder(base: BaseModelArtifact, folder: Path) -> None:
    """A Hugging Face folder (weights, tokenizer) when ``base`` holds its model, and ``training_metadata.json`` saying how to load it."""
    folder.mkdir(parents=True, exist_ok=True)
    if base.model is not None:
        base.model.save_pretrained(str(folder))
        base.tokenizer.save_pretrained(str(folder))
    (folder / METADATA_FILE).write_text(json.dumps({"name": base.name, "loading": base.loading, **base.metadata}, indent=2, default=str))


def read_base_folder(folder: str | Path) -> BaseModelArtifact:
    """A local base folder: its weights when it holds them, else the reference its metadata names."""
    metadata = json.loads(Path(folder, METADATA_FILE).read_text())
    name, loading = metadata.pop("name"), metadata.pop("loading")
    return BaseModelArtifact(name, loading, metadata, folder=str(folder) if Path(folder, "config.json").exists() else None)


class BaseModelDataset(_VersionedFolderDataset):
    """The shared base model.

    A base built here (``tiny``, a converted named base) is saved as a Hugging
    Face folder (weights and tokenizer with its chat template), so plain
    transformers loads it; a hub id or path is saved as a reference only. The
    folder's ``training_metadata.json`` says how to load it (dtype,
    quantization). ``load`` returns an artifact that points at the folder: the
    weights are read when an expert trains or the run's engine is built
    (``reason4rec.llm.engine.load_engine``). A remote version is downloaded
    once per dataset instance, that is once per session's catalog.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._local_copies: dict[str, str] = {}

    def _write_files(self, data: BaseModelArtifact, folder: Path) -> None:
        write_base_folder(data, folder)

    def load(self) -> BaseModelArtifact:
        source = self._full(self._get_load_path())
        if not self._fs.exists(f"{source}/{COMPLETE_MARKER}"):
            raise DatasetError(f"{source} is not a complete checkpoint (no {COMPLETE_MARKER} marker): it was never finished writing")
        with self._fs.open(f"{source}/{METADATA_FILE}") as handle:
            metadata = json.load(handle)
        name, loading = metadata.pop("name"), metadata.pop("loading")
        folder = None
        if self._fs.exists(f"{source}/config.json"):
            if source not in self._local_copies:
                self._local_copies[source] = self._local_copy(source)
            folder = self._local_copies[source]
        return BaseModelArtifact(name, loading, metadata, folder=folder)
