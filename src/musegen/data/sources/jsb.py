"""JSB Chorales: 382 four-part Bach chorales, the Boulanger-Lewandowski (2012) split.

Default: the piano rolls of ``JSB_Chorales.mat``, one frame per quarter note (the benchmark
protocol). ``resolution="8th"`` or ``"16th"`` reads the finer JSON versions of the same split
(``jsb_chorales/jsb-chorales-{8th,16th}.json`` from czhuang/JSB-Chorales-dataset: each piece a
list of steps, each step the sounding MIDI pitches); those are not vendored, so they need the
shared data folder or a ``root``. They hold the same pieces per split as the quarter rolls but
in another order, so piece ids do not correspond across resolutions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from musegen.data.sources._citations import ALLAN_2005, BOULANGER_2012, POLY_LICENSE
from musegen.data.sources._polymusic import (
    LOW_PITCH,
    N_KEYS,
    Packed,
    PolyMusicSource,
    pack_checked,
)
from musegen.data.sources.base import SPLITS, check_md5, find_file
from musegen.errors import MusegenError

JSON_FILES = {
    "quarter": ("jsb-chorales-quarter.json", "3bf6c38f846f08869f8ae53078e34902"),
    "8th": ("jsb-chorales-8th.json", "37f4569aa69d2b84c3daa288d7ca04e3"),
    "16th": ("jsb-chorales-16th.json", "1c4febf715dcacdae074591e347dcaa3"),
}
FRAMES_PER_QUARTER = {"quarter": 1, "8th": 2, "16th": 4}


class Jsb(PolyMusicSource):
    name = "jsb"
    description = (
        "JSB Chorales (Allan & Williams 2005), Boulanger-Lewandowski (2012) split "
        "229/76/77; binary piano rolls, one frame per quarter note (or 8th/16th from JSON)"
    )
    citation = f"{BOULANGER_2012}\n\n{ALLAN_2005}"
    license = POLY_LICENSE + " The JSON versions come from czhuang/JSB-Chorales-dataset."
    mat_file = "JSB_Chorales.mat"
    md5 = "dc87109f2b96bd44f9ce21d117766594"
    vendored = "jsb.npz"
    content_hash = "be580ce1cdc2c33e2f57a70447c7ced4a39e2d9030b655cadf87d160aad50257"
    split_sizes: ClassVar[dict[str, int]] = {"train": 229, "valid": 76, "test": 77}
    steps_per_quarter = 1
    checksums: ClassVar[dict[str, str]] = {
        "JSB_Chorales.mat": f"md5:{md5}",
        **{name: f"md5:{digest}" for name, digest in JSON_FILES.values()},
    }

    def __init__(self, root: str | Path | None = None, resolution: str = "quarter") -> None:
        super().__init__(root)
        if resolution not in FRAMES_PER_QUARTER:
            raise MusegenError(
                f"jsb resolution must be one of {', '.join(FRAMES_PER_QUARTER)}, got {resolution!r}"
            )
        self.resolution = resolution
        self.steps_per_quarter = FRAMES_PER_QUARTER[resolution]

    def locate(self) -> Path:
        json_root = self.root is not None and self.root.suffix == ".json"
        if self.resolution == "quarter" and not json_root:
            return super().locate()
        filename = JSON_FILES[self.resolution][0]
        if self.root is not None and self.root.is_file() and not json_root:
            raise MusegenError(f"{self.root}: jsb at {self.resolution} resolution reads {filename}")
        path = find_file(self.root, filename, "jsb_chorales")
        if path is None:
            raise MusegenError(
                f"jsb at {self.resolution} resolution reads {filename}, which is not vendored: "
                "pass root= (the file or a folder holding it) or set MUSEGEN_DATA"
            )
        return path

    def read(self, path: Path) -> Packed:
        if path.suffix != ".json":
            return super().read(path)
        check_md5(path, JSON_FILES[self.resolution][1])
        return read_steps_json(path)


def read_steps_json(path: Path) -> Packed:
    """Rolls from a JSON ``{split: [piece: [step: [pitch, ...]]]}`` file (MIDI 21..108)."""
    try:
        data = json.loads(path.read_text())
        rolls = {split: [_steps_to_roll(piece) for piece in data[split]] for split in SPLITS}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise MusegenError(f"{path}: not a JSB steps JSON file ({e})") from e
    return pack_checked(path, rolls)


def _steps_to_roll(steps: list[list[int]]) -> np.ndarray:
    roll = np.zeros((len(steps), N_KEYS), dtype=np.uint8)
    frames = np.repeat(np.arange(len(steps)), [len(s) for s in steps])
    keys = np.fromiter((p for s in steps for p in s), dtype=np.int64, count=len(frames))
    if len(keys) and (keys.min() < LOW_PITCH or keys.max() >= LOW_PITCH + N_KEYS):
        raise ValueError(f"pitch outside MIDI {LOW_PITCH}..{LOW_PITCH + N_KEYS - 1}")
    roll[frames, keys - LOW_PITCH] = 1
    return roll
