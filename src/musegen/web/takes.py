"""The studio's takes: each result (generated, uploaded, harmonized, infilled) in its own
folder under the studio's data folder, named by a random id the server makes.

A client names a take by its id only; :meth:`TakeStore.folder` accepts nothing but an id of
the expected shape that the store made, so no request can name another file on the server.
The files a take may have are a fixed list (:data:`FILES`).
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError

TAKE_ID = re.compile(r"^[0-9a-f]{12}$")

FILES: dict[str, tuple[str, str]] = {
    "mid": ("take.mid", "audio/midi"),
    "json": ("take.json", "application/json"),
    "wav": ("take.wav", "audio/wav"),
    "musicxml": ("take.musicxml", "application/vnd.recordare.musicxml+xml"),
    "svg": ("take.svg", "image/svg+xml"),
}
"""A take's files by kind: file name and media type (rendered ones made on first request)."""
RENDERED = {"wav": "wav", "musicxml": "musicxml", "svg": "svg"}


@dataclass
class Take:
    id: str
    folder: Path
    parent: str | None = None
    label: str = ""
    view: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """What the page gets: the take's notes, settings and its files' addresses."""
        files = {kind: f"/api/takes/{self.id}/{kind}" for kind in FILES}
        return {"id": self.id, "parent": self.parent, "label": self.label, "files": files,
                **self.view}  # fmt: skip


class TakeStore:
    """Takes in memory (the newest ``limit``) with their folders under ``root``."""

    def __init__(self, root: str | Path, limit: int = 200) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self._takes: dict[str, Take] = {}
        self._lock = threading.Lock()

    def new_folder(self) -> tuple[str, Path]:
        """A fresh id and its (new, empty) folder."""
        take_id = secrets.token_hex(6)
        folder = self.root / take_id
        folder.mkdir()
        return take_id, folder

    def add(self, take: Take) -> Take:
        with self._lock:
            self._takes[take.id] = take
            while len(self._takes) > self.limit:  # the oldest leave the history
                self._takes.pop(next(iter(self._takes)))
        return take

    def get(self, take_id: str) -> Take:
        if not TAKE_ID.match(take_id or ""):
            raise MusegenError("no such take")
        with self._lock:
            take = self._takes.get(take_id)
        if take is None:
            raise MusegenError("no such take (it may have left the history)")
        return take

    def all(self) -> list[Take]:
        with self._lock:
            return list(self._takes.values())

    def file(self, take_id: str, kind: str) -> tuple[Path, str]:
        """The path and media type of a take's file of ``kind`` (it may not exist yet)."""
        if kind not in FILES:
            raise MusegenError(f"a take has no {kind!r} file; kinds: {', '.join(FILES)}")
        name, media = FILES[kind]
        return self.get(take_id).folder / name, media
