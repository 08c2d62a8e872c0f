"""``BundleDataset``: a model bundle (:mod:`reason4rec.bundle`) as one local folder, replaced atomically.

The folder is what ``reason4rec serve --bundle`` and ``Recommender.from_bundle``
are pointed at, so it is not versioned: an export writes a sibling folder and
swaps it in only when complete, so a reader never sees half a bundle and a
crashed export leaves the previous one in place.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from reason4rec.bundle import ModelBundle, read_bundle, write_bundle


class BundleDataset(AbstractDataset[ModelBundle, ModelBundle]):
    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def save(self, data: ModelBundle) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self._path.name}.writing-", dir=self._path.parent))
        try:
            write_bundle(data, staging)
            retired = self._path.with_name(f".{self._path.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            if self._path.exists():
                self._path.rename(retired)
            staging.chmod(0o755)  # mkdtemp makes it private
            staging.rename(self._path)
            shutil.rmtree(retired, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def load(self) -> ModelBundle:
        return read_bundle(self._path)

    def _exists(self) -> bool:
        return (self._path / "manifest.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
