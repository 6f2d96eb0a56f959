"""Atomic writes: the file appears whole, with the permissions a plain open() would give."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from musegen.utils import atomic_write_bytes, atomic_write_text, default_file_mode


def test_atomic_write_gives_the_usual_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = tmp_path / "sub" / "a.txt"
        atomic_write_text(path, "one")
        atomic_write_bytes(path, b"two")  # replaces the file in place
        assert default_file_mode() == 0o640
    finally:
        os.umask(old)
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_reject_unknown_names_every_unknown_option_in_one_line() -> None:
    from musegen.errors import MusegenError
    from musegen.utils import reject_unknown

    reject_unknown({"lr": 1}, ("lr", "steps"), "run settings")  # all known: nothing
    with pytest.raises(MusegenError, match=r"^unknown run settings: lrr, stpes$"):
        reject_unknown({"stpes": 1, "lrr": 2, "lr": 3}, ("lr", "steps"), "run settings")
