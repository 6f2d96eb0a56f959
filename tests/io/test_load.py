"""load / save / load_many: choosing a format, and files that are not there or not usable."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from musegen.errors import InputError
from musegen.io import (
    FORMATS,
    SUPPORTED_READ,
    SUPPORTED_WRITE,
    load,
    load_many,
    save,
)
from musegen.io.midi import midi_bytes
from musegen.score import Score, Tempo, Track, make_notes

SCORE = Score(
    tracks=[Track(make_notes([0, 480, 960], [480, 480, 960], [60, 64, 67]), program=19)],
    tempos=[Tempo(0, 100.0)],
)


@pytest.mark.parametrize("ext", [".mid", ".MIDI", ".musicxml", ".xml", ".mxl"])
def test_save_then_load_by_extension(ext: str, tmp_path: Path) -> None:
    path = tmp_path / f"song{ext}"
    save(SCORE, path)
    back = load(str(path))  # str and Path both work
    assert back.tracks[0].notes[["start", "duration", "pitch"]].tolist() == [
        (0, 480, 60),
        (480, 480, 64),
        (960, 960, 67),
    ]
    assert back.tracks[0].program == 19
    assert back.tempos == [Tempo(0, 100.0)]


def test_kar_reads_as_midi(tmp_path: Path) -> None:
    path = tmp_path / "song.kar"
    path.write_bytes(midi_bytes(SCORE))
    assert load(path).n_notes == 3


def test_supported_lists_and_help_text_agree() -> None:
    assert set(SUPPORTED_WRITE) < set(SUPPORTED_READ)
    for ext in SUPPORTED_READ:
        assert ext in FORMATS
    assert "corpus:" in FORMATS


# --------------------------------------------------------------------------- bad paths
def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("C D E")
    with pytest.raises(InputError) as info:
        load(path)
    assert "'.txt'" in info.value.reason
    for ext in SUPPORTED_READ:
        assert ext in info.value.reason
    with pytest.raises(InputError, match="a file without an extension"):
        load(tmp_path / "README")


@pytest.mark.parametrize("ext", [".mid", ".musicxml", ".abc"])
def test_missing_file(ext: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as info:
        load(tmp_path / f"missing{ext}")
    assert info.value.source.endswith(f"missing{ext}")


@pytest.mark.parametrize("ext", [".mid", ".xml", ".abc"])
def test_folder_and_empty_file(ext: str, tmp_path: Path) -> None:
    folder = tmp_path / f"folder{ext}"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder"):
        load(folder)
    empty = tmp_path / f"empty{ext}"
    empty.touch()
    with pytest.raises(InputError, match="file is empty"):
        load(empty)


@pytest.mark.parametrize("ext", [".mid", ".musicxml", ".abc"])
def test_files_over_max_bytes_are_refused_unread(ext: str, tmp_path: Path) -> None:
    path = tmp_path / f"big{ext}"
    with open(path, "wb") as f:  # a sparse 3 GB file: costs no disk, would cost RAM to read
        f.truncate(3 * 1024**3)
    with pytest.raises(InputError, match=re.escape("file is 3072.0 MiB, over the 200.0 MiB limit")):
        load(path)
    with pytest.raises(InputError, match="over the 1000 bytes limit"):
        load(path, max_bytes=1000)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.mid"
    path.write_bytes(midi_bytes(SCORE))
    path.chmod(0)
    with pytest.raises(InputError, match="cannot read"):
        load(path)


# --------------------------------------------------------------------------- saving
def test_save_refuses_read_only_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="read-only"):
        save(SCORE, tmp_path / "tune.abc")
    with pytest.raises(InputError, match=re.escape("supported: .mid, .midi, .musicxml")):
        save(SCORE, tmp_path / "song.wav")
    with pytest.raises(InputError, match=re.escape("'.kar'")):
        save(SCORE, tmp_path / "song.kar")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".mid", ".musicxml", ".mxl"])
def test_save_into_unwritable_place(ext: str, tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        save(SCORE, blocker / f"song{ext}")


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "song.mid"
    path.write_bytes(b"old")
    save(SCORE, path)
    assert load(path).n_notes == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid"]


# --------------------------------------------------------------------------- batches
def test_load_many_goes_on_past_bad_files(tmp_path: Path) -> None:
    good_mid = tmp_path / "good.mid"
    save(SCORE, good_mid)
    good_xml = tmp_path / "good.musicxml"
    save(SCORE, good_xml)
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"\x00\x01garbage" * 10)
    empty = tmp_path / "empty.abc"
    empty.touch()
    sources = [good_mid, garbage, tmp_path / "missing.mid", good_xml, empty, "x.doc"]
    loaded, failed = load_many(sources)
    assert [src for src, _ in loaded] == [good_mid, good_xml]
    assert all(score.n_notes == 3 for _, score in loaded)
    assert [src for src, _ in failed] == [garbage, tmp_path / "missing.mid", empty, "x.doc"]
    reasons = [reason for _, reason in failed]
    assert reasons[:3] == ["not a MIDI file (no MThd header)", "no such file", "file is empty"]
    assert reasons[3].startswith("cannot read extension '.doc'")
    assert all("\n" not in r for r in reasons)


def test_load_many_of_nothing() -> None:
    assert load_many([]) == ([], [])


def test_folder_sources_list_every_extension_load_reads() -> None:
    """The folder source keeps its own copy of the extensions (to list without importing
    symusic); it must match what :func:`musegen.io.load` reads."""
    from musegen.data.sources import folder
    from musegen.io import SUPPORTED_READ
    from musegen.io.midi import MIDI_EXTENSIONS

    assert set(folder.EXTENSIONS) == set(SUPPORTED_READ)
    assert set(folder.MIDI_EXTENSIONS) == set(MIDI_EXTENSIONS)
