"""Corpus sources by name: ``get_source("jsb")``, ``available_sources()``, ``SOURCES``.

``SOURCES`` maps each name to its class; a source's module is imported only when its class is
looked up, so listing names stays cheap (no scipy or music21 import).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path

from musegen.data.sources.base import SPLITS, Piece, Source, data_home, hash_split, shared_data_dir
from musegen.errors import MusegenError

_CLASSES: dict[str, tuple[str, str]] = {
    "jsb": ("jsb", "Jsb"),
    "nottingham": ("nottingham", "Nottingham"),
    "musedata": ("musedata", "MuseData"),
    "pianomidi": ("pianomidi", "PianoMidi"),
    "jsb-satb": ("jsb_satb", "JsbSatb"),
    "bach": ("bach", "Bach"),
    "folk": ("folk", "Folk"),
    "palestrina": ("palestrina", "Palestrina"),
    "folder": ("folder", "Folder"),
    "lakh": ("lakh", "Lakh"),
    "maestro": ("maestro", "Maestro"),
}


class _LazySources(Mapping[str, type[Source]]):
    """Name -> source class, importing the class's module on first access."""

    def __getitem__(self, name: str) -> type[Source]:
        if name not in _CLASSES:
            raise KeyError(name)
        module, cls = _CLASSES[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(_CLASSES)

    def __len__(self) -> int:
        return len(_CLASSES)


SOURCES: Mapping[str, type[Source]] = _LazySources()


def available_sources() -> list[str]:
    return list(_CLASSES)


def source_class(name: str) -> type[Source]:
    if name not in _CLASSES:
        raise MusegenError(f"unknown source {name!r}; choose one of: {', '.join(_CLASSES)}")
    return SOURCES[name]


def get_source(name: str, root: str | Path | None = None, **options: object) -> Source:
    """A source by name; ``root`` is where its files are (None: the source's default)."""
    cls = source_class(name)
    try:
        inspect.signature(cls).bind(root=root, **options)
    except TypeError as e:
        raise MusegenError(f"source {name!r}: {e}") from e
    return cls(root=root, **options)  # type: ignore[arg-type]


__all__ = [
    "SOURCES",
    "SPLITS",
    "Piece",
    "Source",
    "available_sources",
    "data_home",
    "get_source",
    "hash_split",
    "shared_data_dir",
    "source_class",
]
