"""The two model artifacts the pipelines pass around.

Kept free of torch so that ``reason4rec.datasets`` can describe, list and
version them without importing the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class BaseModelArtifact:
    """The shared base model, and how to load it.

    ``name`` is ``tiny``, a named base (see ``reason4rec.llm.base.NAMED_BASES``)
    or a Hugging Face id / local path. ``loading`` says how to load it
    (``bf16``, ``quantization``), so the artifact loads itself and no node
    needs the settings. Weights come from ``model`` when it was built in this
    process, else from ``folder`` (a saved version), else from ``name``.
    """

    name: str
    loading: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    folder: str | None = None
    model: Any = None
    tokenizer: Any = None


@dataclass(eq=False)
class AdapterArtifact:
    """A trained LoRA expert: PEFT ``LoraConfig``, weights (PEFT key names) and metadata."""

    config: Any
    state_dict: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
