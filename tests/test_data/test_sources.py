"""Every corpus source lists and loads pieces; splits are the published or deterministic ones."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datahelpers import make_tar_gz, make_zip, serve, tiny_midi
from musegen.data.download import Archive
from musegen.data.sources import (
    SOURCES,
    available_sources,
    get_source,
    hash_split,
    shared_data_dir,
    source_class,
)
from musegen.data.sources._corpus import CorpusSource, music21_version
from musegen.data.sources._polymusic import PolyMusicSource, read_npz
from musegen.data.sources.folder import Folder
from musegen.data.sources.lakh import Lakh
from musegen.data.sources.maestro import Maestro
from musegen.errors import InputError, MusegenError
from musegen.score import Score

SHARED = shared_data_dir()
POLY = {
    "jsb": (229, 76, 77),
    "nottingham": (694, 173, 170),
    "musedata": (524, 135, 124),
    "pianomidi": (87, 12, 25),
}


def shared_file(*parts: str) -> Path:
    if SHARED is None or not SHARED.joinpath(*parts).is_file():
        pytest.skip(f"shared benchmark data not found ({'/'.join(parts)}); set MUSEGEN_DATA")
    return SHARED.joinpath(*parts)


def sizes(source) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    c = Counter(p.split for p in source.pieces())
    return c["train"], c["valid"], c["test"]


def assert_score(score: Score, min_notes: int = 1) -> None:
    assert isinstance(score, Score)
    assert score.n_notes >= min_notes
    assert score.tpq > 0


# --------------------------------------------------------------------------- registry
def test_registry_names_and_facts() -> None:
    assert available_sources() == list(SOURCES)
    assert set(available_sources()) >= {*POLY, "jsb-satb", "bach", "folk", "palestrina"}
    assert set(available_sources()) >= {"folder", "lakh", "maestro"}
    for name in available_sources():
        cls = source_class(name)
        assert cls.name == name
        assert cls.description and cls.license
        assert name == "folder" or cls.citation.lstrip().startswith("@")


def test_registry_errors() -> None:
    with pytest.raises(MusegenError, match="unknown source"):
        get_source("nope")
    with pytest.raises(MusegenError, match="jsb"):
        get_source("jsb", colour="blue")
    with pytest.raises(MusegenError, match="resolution"):
        get_source("jsb", resolution="32nd")
    with pytest.raises(MusegenError, match="root"):
        get_source("folder")


def test_listing_sources_imports_nothing_heavy() -> None:
    code = (
        "import sys; from musegen.data.sources import SOURCES, available_sources;"
        "available_sources(); list(SOURCES);"
        "print([m for m in ('scipy', 'music21', 'symusic', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_hash_split_is_stable_and_80_10_10() -> None:
    assert hash_split("bach/bwv66.6") == hash_split("bach/bwv66.6")
    c = Counter(hash_split(f"piece-{i}") for i in range(20_000))
    assert abs(c["train"] / 20_000 - 0.8) < 0.015
    assert abs(c["valid"] / 20_000 - 0.1) < 0.01
    assert abs(c["test"] / 20_000 - 0.1) < 0.01


# --------------------------------------------------------------------------- piano-roll sets
@pytest.mark.parametrize("name", list(POLY))
def test_benchmark_split_sizes_and_vendored_rolls(name: str) -> None:
    cls = SOURCES[name]
    assert issubclass(cls, PolyMusicSource)
    mat = shared_file("poly_music", cls.mat_file)
    from_mat = cls(root=mat)
    assert sizes(from_mat) == POLY[name]
    vendored = read_npz(Path(__file__).parents[2] / "src/musegen/data/vendor" / cls.vendored)
    rolls = from_mat.rolls()
    for split in ("train", "valid", "test"):
        offsets, frames = vendored[split]
        assert len(offsets) == len(rolls[split]) + 1
        for i, roll in enumerate(rolls[split]):
            assert np.array_equal(frames[offsets[i] : offsets[i + 1]], roll), (split, i)


@pytest.mark.parametrize("name", list(POLY))
def test_benchmark_loads_without_shared_data(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSEGEN_DATA", str(tmp_path))  # a data folder without the sets
    source = get_source(name)
    assert source.locate().suffix == ".npz"
    pieces = source.pieces()
    assert sizes(source) == POLY[name]
    piece = pieces[len(pieces) // 2]
    roll = source.roll(piece)
    assert roll.dtype == np.uint8 and roll.shape[1] == 88 and roll.max() == 1
    score = source.load(piece)
    assert_score(score)
    assert score.tpq == 480 and [t.program for t in score.tracks] == [0]
    from musegen.tokenizers.grid import to_binary_roll

    back = to_binary_roll(score, source.steps_per_quarter, n_frames=len(roll))
    assert np.array_equal(back, roll)


def test_shared_mat_wins_over_vendored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mat = shared_file("poly_music", "JSB_Chorales.mat")
    monkeypatch.setenv("MUSEGEN_DATA", str(mat.parents[1]))
    shared = get_source("jsb")
    assert shared.locate() == mat
    monkeypatch.setenv("MUSEGEN_DATA", str(tmp_path))
    vendored = get_source("jsb")
    assert vendored.locate().suffix == ".npz"
    assert [p.sha256 for p in vendored.pieces()] == [p.sha256 for p in shared.pieces()]


def test_wrong_file_md5_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "JSB_Chorales.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file, not really")
    with pytest.raises(MusegenError, match=r"JSB_Chorales\.mat: MD5"):
        get_source("jsb", root=tmp_path).pieces()
    with pytest.raises(MusegenError, match=r"no JSB_Chorales\.mat"):
        get_source("jsb", root=tmp_path / "elsewhere").pieces()


@pytest.mark.parametrize(("resolution", "factor"), [("8th", 2), ("16th", 4)])
def test_jsb_json_resolutions(resolution: str, factor: int) -> None:
    shared_file("jsb_chorales", f"jsb-chorales-{resolution}.json")
    quarter = get_source("jsb", root=SHARED)
    fine = get_source("jsb", root=SHARED, resolution=resolution)
    assert sizes(fine) == POLY["jsb"]
    assert fine.steps_per_quarter == factor
    # the JSON files list the same pieces in another order: compare per split as multisets
    for split in ("train", "valid", "test"):
        q_len = sorted(factor * len(r) for r in quarter.rolls()[split])
        assert sorted(len(r) for r in fine.rolls()[split]) == q_len
    piece = fine.pieces()[0]
    assert fine.load(piece).end <= len(fine.roll(piece)) * 480 // factor


def test_jsb_quarter_json_equals_mat() -> None:
    as_json = get_source("jsb", root=shared_file("jsb_chorales", "jsb-chorales-quarter.json"))
    as_mat = get_source("jsb", root=shared_file("poly_music", "JSB_Chorales.mat"))
    assert [p.sha256 for p in as_json.pieces()] == [p.sha256 for p in as_mat.pieces()]


def test_jsb_fine_resolution_needs_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSEGEN_DATA", str(tmp_path))
    with pytest.raises(MusegenError, match="not vendored"):
        get_source("jsb", resolution="16th").pieces()


# --------------------------------------------------------------------------- jsb-satb
def test_jsb_satb_splits_and_round_trip() -> None:
    shared_file("jsb_chorales", "Jsb16thSeparated.json")
    from musegen.tokenizers.grid import score_to_steps

    source = get_source("jsb-satb")
    assert sizes(source) == POLY["jsb"]
    piece = source.splits()["test"][0]
    steps = source.steps(piece)
    assert steps.ndim == 2 and steps.shape[1] == 4 and steps.min() >= -1
    score = source.load(piece)
    assert [t.voice for t in score.tracks] == ["S", "A", "T", "B"]
    assert np.array_equal(np.asarray(score_to_steps(score, 4)), steps)


# --------------------------------------------------------------------------- music21 corpora
@pytest.mark.parametrize(
    ("name", "piece_id", "tracks"),
    [
        ("bach", "bach/bwv66.6", 4),
        ("folk", "essenFolksong/altdeu10#2", 1),
        ("palestrina", "palestrina/Kyrie_39", None),
    ],
)
def test_music21_corpus_loads(name: str, piece_id: str, tracks: int | None) -> None:
    source = get_source(name)
    pieces = {p.id: p for p in source.pieces()}
    assert len(pieces) > 300
    assert set(Counter(p.split for p in pieces.values())) == {"train", "valid", "test"}
    score = source.load(pieces[piece_id])
    assert_score(score, min_notes=20)
    if tracks is not None:
        assert len(score.tracks) == tracks


@pytest.mark.parametrize("name", ["bach", "folk", "palestrina"])
def test_corpus_manifest_is_deterministic(name: str) -> None:
    source = get_source(name)
    assert isinstance(source, CorpusSource)
    stored, rebuilt = source.manifest(), source.build_manifest()
    assert rebuilt == source.build_manifest()
    if stored["music21"] != music21_version():
        pytest.skip(
            f"manifest made with music21 {stored['music21']}, installed {music21_version()}"
        )
    assert rebuilt == stored
    ids = [p.id for p in source.pieces()]
    assert len(ids) == len(set(ids)) == sum(stored["counts"].values())


def test_corpus_missing_files_are_warned_and_skipped(tmp_path: Path) -> None:
    from musegen.data.sources._corpus import music21_corpus_dir

    (tmp_path / "bach").mkdir()
    for name in ("bwv66.6.mxl", "bwv1.6.mxl"):
        shutil.copy(music21_corpus_dir() / "bach" / name, tmp_path / "bach" / name)
    with pytest.warns(UserWarning, match="not in"):
        pieces = get_source("bach", root=tmp_path).pieces()
    assert sorted(p.id for p in pieces) == ["bach/bwv1.6", "bach/bwv66.6"]


def test_bach_variants_share_a_split() -> None:
    splits = {p.id: p.split for p in get_source("bach").pieces()}
    assert splits["bach/bwv248.23-2"] == splits["bach/bwv248.23-s"]
    assert "bach/bwv846" not in splits  # a prelude, not a chorale


# --------------------------------------------------------------------------- folder
ABC_BOOK = b"""X:1
T:One
M:4/4
L:1/4
K:C
CDEF|G4|]

X:2
T:Two
M:3/4
L:1/4
K:G
GAB|d3|]
"""


@pytest.fixture
def music_folder(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    (root / "sub").mkdir(parents=True)
    (root / "copies").mkdir()
    (root / ".git").mkdir()
    (root / "a.mid").write_bytes(tiny_midi(60))
    (root / "sub" / "b.midi").write_bytes(tiny_midi(64, 960))
    (root / "copies" / "a again.mid").write_bytes(tiny_midi(60))  # duplicate content
    (root / "garbage.mid").write_bytes(os.urandom(300))
    (root / "empty.mid").write_bytes(b"")
    (root / "book.abc").write_bytes(ABC_BOOK)
    (root / "notes.txt").write_text("not music")
    (root / ".hidden.mid").write_bytes(tiny_midi(70))
    (root / ".git" / "x.mid").write_bytes(tiny_midi(71))
    return root


def test_folder_lists_dedupes_and_splits_by_content(music_folder: Path) -> None:
    source = get_source("folder", root=music_folder, workers=2)
    assert isinstance(source, Folder)
    pieces = {p.id: p for p in source.pieces()}
    assert sorted(pieces) == [
        "a.mid",
        "book.abc#1",
        "book.abc#2",
        "empty.mid",
        "garbage.mid",
        "sub/b.midi",
    ]
    assert source.duplicates == {"a.mid": ["copies/a again.mid"]}
    a = pieces["a.mid"]
    assert a.sha256 == hashlib.sha256(tiny_midi(60)).hexdigest()
    assert all(p.split == hash_split(p.sha256) for p in pieces.values())
    assert Path(a.origin) == music_folder / "a.mid"


def test_folder_loads_good_files_and_refuses_bad_ones(music_folder: Path) -> None:
    source = get_source("folder", root=music_folder)
    pieces = {p.id: p for p in source.pieces()}
    score = source.load(pieces["sub/b.midi"])
    assert score.n_notes == 1 and score.tracks[0].notes["duration"][0] == 960 * score.tpq // 480
    assert source.load(pieces["book.abc#2"]).n_notes == 4
    for bad in ("garbage.mid", "empty.mid"):
        with pytest.raises(InputError, match=bad.replace(".", r"\.")):
            source.load(pieces[bad])


def _same_score(a: Score, b: Score) -> bool:
    return (
        (a.tpq, a.tempos, a.time_signatures, a.key_signatures)
        == (b.tpq, b.tempos, b.time_signatures, b.key_signatures)
        and [(t.program, t.is_drum, t.name, t.voice) for t in a.tracks]
        == [(t.program, t.is_drum, t.name, t.voice) for t in b.tracks]
        and all(np.array_equal(x.notes, y.notes) for x, y in zip(a.tracks, b.tracks, strict=True))
    )


def test_folder_load_many_gives_what_reading_each_file_gives(music_folder: Path) -> None:
    for i in range(6):  # more MIDI files, so that several are read together
        (music_folder / f"more{i}.mid").write_bytes(tiny_midi(50 + i, 240 * (i + 1)))
    (music_folder / "cut.mid").write_bytes(tiny_midi(62)[:-5])
    source = get_source("folder", root=music_folder)
    pieces = source.pieces()
    assert "a.mid" in source._data  # the bytes hashed are kept for load...
    files = pickle.loads(pickle.dumps(source))  # ...but not sent to another process
    assert not files._data
    loaded = source.load_many(pieces)
    assert len(loaded) == len(pieces)
    for piece, got in zip(pieces, loaded, strict=True):
        try:
            expected = files.load(piece)
        except InputError as e:
            assert isinstance(got, InputError) and str(got) == str(e)
            continue
        assert isinstance(got, Score) and _same_score(got, expected)
        assert _same_score(source.load(piece), expected)


def test_folder_loads_the_content_it_hashed(music_folder: Path) -> None:
    source = get_source("folder", root=music_folder)
    piece = next(p for p in source.pieces() if p.id == "a.mid")
    (music_folder / "a.mid").write_bytes(tiny_midi(72))  # changed after the listing
    assert source.load(piece).tracks[0].notes["pitch"][0] == 60  # what piece.sha256 names


# --------------------------------------------------------------------------- lakh / maestro
def test_lakh_fetch_extract_pieces_and_splits(tmp_path: Path) -> None:
    songs = [tiny_midi(p) for p in (60, 62, 64)]
    md5 = [hashlib.md5(s).hexdigest() for s in songs]
    members = {
        f"lmd_matched/A/B/C/TRABC01/{md5[0]}.mid": songs[0],
        f"lmd_matched/A/B/C/TRABC02/{md5[0]}.mid": songs[0],  # one file matched to two tracks
        f"lmd_matched/X/Y/Z/TRXYZ01/{md5[1]}.mid": songs[1],
        f"lmd_matched/X/Y/Z/TRXYZ01/{md5[2]}.mid": songs[2],
    }
    data = make_tar_gz(members)
    with serve({"/lmd_matched.tar.gz": data}) as srv:
        mirror = Archive(
            srv.url("/lmd_matched.tar.gz"),
            "lmd_matched.tar.gz",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        folder = Lakh.fetch(tmp_path, variant="matched", archive=mirror, progress=False)
    assert folder == tmp_path / "lmd_matched"
    source = get_source("lakh", root=tmp_path, variant="matched")
    pieces = source.pieces()
    by_id = {p.id: p for p in pieces}
    assert sorted(by_id) == sorted(
        [f"A/B/C/TRABC01/{md5[0]}", f"X/Y/Z/TRXYZ01/{md5[1]}", f"X/Y/Z/TRXYZ01/{md5[2]}"]
    )
    assert source.duplicates == {f"A/B/C/TRABC01/{md5[0]}": [f"A/B/C/TRABC02/{md5[0]}"]}
    assert all(p.split == hash_split(p.id.rsplit("/", 1)[1]) for p in pieces)
    second = by_id[f"X/Y/Z/TRXYZ01/{md5[1]}"]
    assert source.load(second).tracks[0].notes["pitch"].tolist() == [62]


def test_lakh_not_downloaded_says_how(tmp_path: Path) -> None:
    with pytest.raises(MusegenError, match=r"Lakh\.fetch"):
        get_source("lakh", root=tmp_path).pieces()
    with pytest.raises(MusegenError, match="variant"):
        get_source("lakh", variant="huge")


def test_maestro_fetch_and_official_split(tmp_path: Path) -> None:
    csv = (
        "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n"
        'Bach,"Prelude, BWV 846",train,2018,2018/a.midi,2018/a.wav,1.0\n'
        "Chopin,Etude,validation,2017,2017/b.midi,2017/b.wav,1.0\n"
        "Liszt,Sonata,test,2004,2004/c.midi,2004/c.wav,1.0\n"
    )
    members = {
        "maestro-v3.0.0/maestro-v3.0.0.csv": csv.encode(),
        "maestro-v3.0.0/2018/a.midi": tiny_midi(60),
        "maestro-v3.0.0/2017/b.midi": tiny_midi(61),
        "maestro-v3.0.0/2004/c.midi": tiny_midi(62),
    }
    data = make_zip(members)
    with serve({"/m.zip": data}) as srv:
        mirror = Archive(
            srv.url("/m.zip"),
            "maestro-v3.0.0-midi.zip",
            len(data),
            hashlib.sha256(data).hexdigest(),
        )
        folder = Maestro.fetch(tmp_path, archive=mirror, progress=False)
    assert folder == tmp_path / "maestro-v3.0.0"
    source = get_source("maestro", root=tmp_path)
    pieces = source.pieces()
    assert [(p.id, p.split) for p in pieces] == [
        ("2018/a.midi", "train"),
        ("2017/b.midi", "valid"),
        ("2004/c.midi", "test"),
    ]
    assert source.load(pieces[2]).tracks[0].notes["pitch"].tolist() == [62]
    (folder / "2004" / "c.midi").unlink()
    with pytest.warns(UserWarning, match="missing"):
        assert len(get_source("maestro", root=folder).pieces()) == 2


def test_maestro_json_metadata_and_bad_rows(tmp_path: Path) -> None:
    import json

    (tmp_path / "x.midi").write_bytes(tiny_midi())
    meta = {"midi_filename": {"0": "x.midi"}, "split": {"0": "validation"}}
    (tmp_path / "maestro-v3.0.0.json").write_text(json.dumps(meta))
    assert [p.split for p in get_source("maestro", root=tmp_path).pieces()] == ["valid"]
    meta["midi_filename"]["0"] = "../../etc/passwd"
    (tmp_path / "maestro-v3.0.0.json").write_text(json.dumps(meta))
    with pytest.raises(MusegenError, match="bad row"):
        get_source("maestro", root=tmp_path).pieces()
