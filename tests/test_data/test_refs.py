"""The one resolver of piece references: files, folders, prepared datasets, source:, corpus:."""

from __future__ import annotations

from pathlib import Path

import pytest

from metricshelpers import CLEAN, satb
from musegen.data.refs import REFS_HELP, iter_scores, resolve
from musegen.errors import MusegenError
from musegen.io import save


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "gen"
    for i in range(3):
        save(satb(CLEAN).transpose(i), out / f"{i}.mid")
    (out / "copy.mid").write_bytes((out / "0.mid").read_bytes())
    (out / "sub").mkdir()
    save(satb(CLEAN).transpose(5), out / "sub" / "x.mid")
    return out


def test_a_folder_gives_every_file_or_each_content_once(folder: Path) -> None:
    every = resolve(str(folder))
    assert [r.name for r in every] == ["0.mid", "1.mid", "2.mid", "copy.mid", "sub/x.mid"]
    distinct = resolve(str(folder), distinct=True)
    assert [r.name for r in distinct] == ["0.mid", "1.mid", "2.mid", "sub/x.mid"]
    assert every[3].load().n_notes == distinct[0].load().n_notes == 32


def test_a_file_is_one_piece_and_nothing_is_read_before_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.mid"
    path.write_bytes(b"not midi")
    (ref,) = resolve(str(path))  # resolving reads nothing
    assert ref.name == str(path)
    with pytest.raises(MusegenError):
        ref.load()
    with pytest.raises(MusegenError):  # one named file that cannot be read is an error
        list(iter_scores(str(path)))


def test_iter_scores_skips_bad_pieces_of_a_collection_and_counts_good_ones(folder: Path) -> None:
    (folder / "bad.mid").write_bytes(b"not midi")
    assert len(list(iter_scores(str(folder)))) == 4  # the copy once, the bad file skipped
    assert len(list(iter_scores(str(folder), distinct=False))) == 5
    assert len(list(iter_scores(str(folder), max_pieces=2))) == 2


def test_what_is_not_there_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(MusegenError, match="no such file or folder") as e:
        resolve(str(tmp_path / "missing"))
    assert REFS_HELP in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MusegenError, match="no MIDI"):
        resolve(str(tmp_path / "empty"))
    with pytest.raises(MusegenError, match="no split"):
        resolve("source:jsb-satb:nope")


def test_sources_by_reference_and_by_bare_name() -> None:
    from musegen.data.sources import get_source

    try:
        get_source("jsb-satb").locate()
    except MusegenError:
        pytest.skip("the JSB data is not in the shared data folder")
    test = resolve("source:jsb-satb:test")
    assert len(test) == 77 and all(r.name.startswith("test/") for r in test)
    assert [r.name for r in resolve("source:jsb-satb", "test")] == [r.name for r in test]
    assert [r.name for r in resolve("jsb-satb", "test")] == [r.name for r in test]
    assert len(resolve("source:jsb-satb")) == 382  # no split named or given: all of them
    assert test[0].load().n_notes > 0
