"""Pieces named by a reference string: the one resolver behind every command that reads a set of
pieces (``musegen evaluate``, the training corpora of ``musegen compose``, the benchmarks).

=================================  ============================================================
``source:NAME[:SPLIT]``            a corpus source (``musegen data list``), e.g.
                                   ``source:jsb-satb:test``; without SPLIT the caller's split
``corpus:NAME``                    a music21 collection that is a source (``corpus:bach``,
                                   ``corpus:folk``, ``corpus:palestrina``), like ``source:NAME``
``corpus:PATH``                    one piece of music21's corpus, e.g. ``corpus:bach/bwv66.6``
a prepared dataset folder          (it holds ``manifest.json``) its pieces, decoded from tokens
a folder                           the MIDI / MusicXML / ABC files under it (recursive), named
                                   by their path inside the folder
a file                             that one file
``NAME``                           a source by its bare name, when no such file or folder exists
=================================  ============================================================

:func:`resolve` lists the pieces with a loader each, reading nothing yet, so a caller can pick
a subset first and skip (and report) a piece that fails to load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musegen.errors import InputError, MusegenError
from musegen.score import Score

SOURCE_PREFIX = "source:"
CORPUS_PREFIX = "corpus:"  # as musegen.io reads it
REFS_HELP = (
    "a MIDI/MusicXML/ABC file, a folder of them, a prepared dataset folder, "
    "source:NAME[:SPLIT] (e.g. source:jsb-satb:test; 'musegen data list' names the sources), "
    "corpus:NAME for a music21 collection (bach, folk, palestrina) or corpus:PATH for one "
    "corpus piece (e.g. corpus:bach/bwv66.6)"
)


@dataclass(frozen=True)
class PieceRef:
    """One piece of a reference: its name and how to read it (``load`` raises
    :class:`~musegen.errors.MusegenError` for a piece that cannot be read)."""

    name: str
    load: Callable[[], Score]


def resolve(spec: str, split: str | None = None, *, distinct: bool = False) -> list[PieceRef]:
    """The pieces that ``spec`` names (see the module docstring), not yet read.

    ``split``: the split of a source or prepared dataset when ``spec`` names none (None:
    every split). ``distinct``: a folder gives each content once and each tune of an ABC tune
    book apart (the folder source, as for training); otherwise every file as it is, copies
    included (as an evaluation counts them).
    """
    from musegen.data.sources import available_sources

    text = spec.strip()
    if text.startswith(SOURCE_PREFIX):
        name, _, named = text[len(SOURCE_PREFIX) :].partition(":")
        return _source_refs(spec, name, named or split)
    if text.startswith(CORPUS_PREFIX):
        name = text[len(CORPUS_PREFIX) :]
        if name in available_sources():
            return _source_refs(spec, name, split)
        return [PieceRef(text, lambda: _load_file(text))]
    path = Path(text)
    if path.is_dir() and (path / "manifest.json").is_file():
        return _prepared_refs(path, split)
    if path.is_dir():
        return _folder_refs(spec, path, distinct)
    if path.exists():
        return [PieceRef(str(path), lambda: _load_file(path))]
    if text in available_sources():
        return _source_refs(spec, text, split)
    raise MusegenError(
        f"{spec}: no such file or folder, and not a source, corpus or dataset reference; "
        f"give {REFS_HELP}"
    )


def iter_scores(
    spec: str,
    split: str | None = None,
    *,
    max_pieces: int | None = None,
    distinct: bool = True,
) -> Iterator[Score]:
    """The scores ``spec`` names, in order, at most ``max_pieces`` of them. Pieces of a
    collection that cannot be read are skipped; a single named piece that cannot be read is
    an error. ``split`` and ``distinct`` as in :func:`resolve` (here ``distinct`` defaults to
    True: a training corpus wants each piece once)."""
    refs = resolve(spec, split, distinct=distinct)
    single = _names_one_piece(spec)
    count = 0
    for ref in refs:
        if max_pieces is not None and count >= max_pieces:
            return
        try:
            score = ref.load()
        except MusegenError:
            if single:
                raise
            continue
        count += 1
        yield score


def _names_one_piece(spec: str) -> bool:
    """Whether ``spec`` is one file or one music21 corpus piece (not a collection)."""
    from musegen.data.sources import available_sources

    text = spec.strip()
    if text.startswith(CORPUS_PREFIX):
        return text[len(CORPUS_PREFIX) :] not in available_sources()
    return not text.startswith(SOURCE_PREFIX) and Path(text).is_file()


def _load_file(path: str | Path) -> Score:
    from musegen.io import load

    return load(path)


def _source_refs(spec: str, name: str, split: str | None) -> list[PieceRef]:
    from musegen.data.sources import SPLITS, get_source

    if split and split not in SPLITS:
        raise MusegenError(f"{spec}: no split {split!r}; choose one of {', '.join(SPLITS)}")
    source = get_source(name)
    refs = [
        PieceRef(p.id, lambda p=p: source.load(p))
        for p in source.pieces()
        if split is None or p.split == split
    ]
    if not refs:
        raise MusegenError(f"{spec}: no pieces in split {split!r}")
    return refs


def _prepared_refs(folder: Path, split: str | None) -> list[PieceRef]:
    from musegen.data.dataset import load_prepared

    data = load_prepared(folder)
    tok = data.tokenizer
    refs = []
    for name in [split] if split else data.split_names:
        part = data.split(name)
        for i, entry in enumerate(part.entries):

            def load(part=part, i=i, entry=entry) -> Score:  # type: ignore[no-untyped-def]
                try:
                    return tok.decode(np.asarray(part.piece(i)))
                except ValueError as e:
                    raise InputError(f"{folder}:{entry.id}", f"cannot decode: {e}") from None

            refs.append(PieceRef(entry.id, load))
    return refs


def _folder_refs(spec: str, folder: Path, distinct: bool) -> list[PieceRef]:
    from musegen.data.sources.folder import Folder

    source = Folder(folder)
    if distinct:
        refs = [PieceRef(p.id, lambda p=p: source.load(p)) for p in source.pieces()]
    else:
        refs = [
            PieceRef(path.relative_to(folder).as_posix(), lambda path=path: _load_file(path))
            for path in source.files()
        ]
    if not refs:
        raise MusegenError(f"{spec}: no MIDI / MusicXML / ABC files in this folder")
    return refs
