"""``prepare --engine ray``: the same dataset as the local run, failures listed; one local
Ray cluster for the module (starting one takes seconds)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from musegen.data.dataset import Manifest, prepare_dataset
from musegen.data.engines import chunk_runner, import_ray
from musegen.data.sources import get_source
from musegen.errors import MusegenError
from musegen.tokenizers import get_tokenizer
from shardhelpers import write_corpus


def _prepare(corpus: Path, out: Path, engine: str, shards: int = 0) -> Manifest:
    source = get_source("folder", root=corpus)
    return prepare_dataset(
        source, get_tokenizer("remi"), out, workers=2, progress=False, shards=shards, engine=engine
    )


def _outputs(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name not in ("manifest.json", "shards.json")
    }


def test_unknown_engine_and_missing_ray_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(MusegenError, match="unknown engine"):
        chunk_runner("spark")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(MusegenError, match=r"musegen\[cluster\]"):
        import_ray()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install musegen[cluster])")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_corpus(tmp_path_factory.mktemp("corpus"), 200, per_folder=100)
    (folder / "000" / "broken.mid").write_bytes(b"MThd not really a MIDI file")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("shards", [0, 3])
def test_ray_gives_the_local_runs_dataset(
    ray_cluster: None, corpus: Path, tmp_path: Path, shards: int, capsys: pytest.CaptureFixture
) -> None:
    from musegen.cli.main import main

    local = _prepare(corpus, tmp_path / "local", "local", shards)
    args = ["data", "prepare", str(corpus), "-t", "remi", "--engine", "ray"]
    assert main([*args, "--shards", str(shards), "-o", str(tmp_path / "ray")]) == 0
    assert "engine ray" in capsys.readouterr().out
    on_ray = Manifest.load(tmp_path / "ray")
    assert on_ray.same_content(local)
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    assert [f.id for f in on_ray.failures] == ["000/broken.mid"]  # listed, with its reason
    assert on_ray.failures[0].reason == local.failures[0].reason


@pytest.mark.slow
def test_a_run_resumes_from_chunks_the_other_engine_made(
    ray_cluster: None, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    first = _prepare(corpus, out, "ray")
    chunks = {p: p.stat().st_mtime_ns for p in out.glob("cache/*/*.npz")}
    again = _prepare(corpus, out, "local")  # nothing left to encode
    assert again.same_content(first)
    assert {p: p.stat().st_mtime_ns for p in out.glob("cache/*/*.npz")} == chunks
