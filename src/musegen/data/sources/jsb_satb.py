"""JSB Chorales as four separate voices, Coconet's ``Jsb16thSeparated.json`` (Huang et al. 2017).

Same 382 chorales and Boulanger-Lewandowski split (229/76/77) as ``jsb``, but each 16th-note
step is exactly four pitches ``[S, A, T, B]`` (-1 = that voice is silent). ``steps(piece)``
gives the raw ``int16 [T, 4]`` array; ``load`` a four-track score with voice labels S/A/T/B.
The file is read from ``root`` (the file or a folder holding it) or the shared data folder's
``jsb_chorales/``; it is not vendored (its repository states no licence).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from musegen.data.sources._citations import ALLAN_2005, BOULANGER_2012
from musegen.data.sources.base import SPLITS, Piece, Source, check_md5, find_file
from musegen.errors import MusegenError
from musegen.score import Score

FILENAME = "Jsb16thSeparated.json"
MD5 = "23a2736fa53a40f09bc0c4c825b381c8"
STEPS_PER_QUARTER = 4

COCONET_2017 = """@inproceedings{huang2017counterpoint,
  title     = {Counterpoint by Convolution},
  author    = {Huang, Cheng-Zhi Anna and Cooijmans, Tim and Roberts, Adam and
               Courville, Aaron and Eck, Douglas},
  booktitle = {Proceedings of the 18th International Society for Music Information Retrieval
               Conference (ISMIR)},
  year      = {2017}
}"""


class JsbSatb(Source):
    name = "jsb-satb"
    description = (
        "JSB Chorales as four voices per 16th-note step (Coconet's Jsb16thSeparated), "
        "Boulanger-Lewandowski split 229/76/77"
    )
    citation = f"{COCONET_2017}\n\n{BOULANGER_2012}\n\n{ALLAN_2005}"
    license = (
        "From czhuang/JSB-Chorales-dataset (no licence stated there); Bach's chorales are in "
        "the public domain. Not redistributed with musegen."
    )
    checksums: ClassVar[dict[str, str]] = {FILENAME: f"md5:{MD5}"}
    split_sizes: ClassVar[dict[str, int]] = {"train": 229, "valid": 76, "test": 77}

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__(root)
        self._steps: dict[str, list[np.ndarray]] | None = None
        self._origin = ""

    def locate(self) -> Path:
        path = find_file(self.root, FILENAME, "jsb_chorales")
        if path is None:
            raise MusegenError(
                f"jsb-satb reads {FILENAME}, which ships with the benchmark data, not with "
                "musegen: pass root= (the file or a folder holding it) or set MUSEGEN_DATA"
            )
        return path

    def all_steps(self) -> dict[str, list[np.ndarray]]:
        """Every piece's ``[T, 4]`` steps by split (read and verified once)."""
        if self._steps is None:
            path = self.locate()
            check_md5(path, MD5)
            try:
                data = json.loads(path.read_text())
                steps = {s: [_as_steps(p) for p in data[s]] for s in SPLITS}
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise MusegenError(f"{path}: not a Jsb16thSeparated file ({e})") from e
            sizes = {s: len(steps[s]) for s in SPLITS}
            if sizes != self.split_sizes:
                raise MusegenError(f"{path}: split sizes {sizes}, published {self.split_sizes}")
            self._steps, self._origin = steps, str(path)
        return self._steps

    def pieces(self) -> list[Piece]:
        steps = self.all_steps()
        return [
            Piece(f"{s}/{i:03d}", s, self._origin, hashlib.sha256(a.data).hexdigest())
            for s in SPLITS
            for i, a in enumerate(steps[s])
        ]

    def steps(self, piece: Piece) -> np.ndarray:
        """The piece's ``int16 [T, 4]`` pitches (S, A, T, B; -1 = silent)."""
        split, _, index = piece.id.partition("/")
        try:
            return self.all_steps()[split][int(index)]
        except (KeyError, ValueError, IndexError) as e:
            raise MusegenError(f"{self.name}: no piece {piece.id!r}") from e

    def load(self, piece: Piece) -> Score:
        """A four-track score (S, A, T, B labelled), 480 ticks per quarter."""
        from musegen.tokenizers.grid import steps_to_score

        return steps_to_score(self.steps(piece), steps_per_quarter=STEPS_PER_QUARTER)


def _as_steps(piece: list[list[int]]) -> np.ndarray:
    arr = np.asarray(piece, dtype=np.int16).reshape(-1, 4)
    if arr.size and (arr.min() < -1 or arr.max() > 127):
        raise ValueError("pitches must be -1 or MIDI 0..127")
    return np.ascontiguousarray(arr)
