"""Typed configuration blocks.

A YAML block arrives as a plain dict; read with ``.get(default)``, a misspelt key
silently becomes its default. Each block is turned into a dataclass where it
enters the code, and a key the dataclass does not have (or a required one that
is missing) stops the run with a message naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def typed_block(cls: type[T], block: Mapping[str, Any], name: str) -> T:
    """``cls(**block)``, refusing unknown and missing keys with an error that names ``name``."""
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(block) - set(known))
    if unknown:
        raise ValueError(f"unknown {name} setting(s) {', '.join(unknown)}; expected some of {', '.join(known)}")
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING and f.name not in block]
    if missing:
        raise ValueError(f"{name} needs {', '.join(missing)}")
    return cls(**block)
