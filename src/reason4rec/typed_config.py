"""Typed configuration blocks.

A YAML block arrives as a plain dict; read with ``.get(default)``, a misspelt key
silently becomes its default. Each block is turned into a dataclass where it
enters the code, and a key the dataclass does not have (or a required one that
is missing) stops the run with a message naming it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def typed_block(cls: type[T], block: Mapping[str, Any], name: str) -> T:
    """``cls(**block)``, refusing unknown and missing keys with an error that names ``name``.

    A field whose type is itself a dataclass (or one of them or None) is built
    the same way from its nested block, so a misspelt key at any depth is named
    with its dotted path (``summarize.teacher.max_atempts``). An empty ``name``
    is the root of the parameters: its blocks are named by their own key.
    """
    if not isinstance(block, Mapping):
        raise ValueError(f"{name or 'the top level'} must be a mapping of settings, got {block!r}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(block) - set(known))
    if unknown:
        raise ValueError(f"unknown {name or 'top-level'} setting(s) {', '.join(unknown)}; expected some of {', '.join(known)}")
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING and f.name not in block]
    if missing:
        raise ValueError(f"{name or 'the top level'} needs {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    values = dict(block)
    for key, value in block.items():
        nested = _dataclass_of(hints[key])
        if nested is not None and isinstance(value, Mapping):
            values[key] = typed_block(nested, value, f"{name}.{key}" if name else key)
    return cls(**values)


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass a field holds: ``X`` for ``X`` and ``X | None``, else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        classes = [arg for arg in typing.get_args(hint) if dataclasses.is_dataclass(arg)]
        return classes[0] if len(classes) == 1 else None
    return None
