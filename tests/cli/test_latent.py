"""``musegen latent``: encode, interpolate, attribute, sample; seeds reproduce; bad input is
one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latenthelpers import tiny_dataset, tiny_vae, tune
from musegen.cli.main import main
from musegen.io import save

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("latent")
    for i in (1, 2):
        save(tune(i), root / f"t{i}.mid")
    return {
        "model": str(tiny_vae(root / "vae")),
        "a": str(root / "t1.mid"),
        "b": str(root / "t2.mid"),
        "data": str(tiny_dataset(root / "data")),
    }


def test_encode(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latent", "encode", files["a"], "--model", files["model"]]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["segments"]) == 2 and record["segments"][1]["bars"] == [3, 4]
    assert len(record["segments"][0]["mu"]) == 4 and record["refine"] == 0
    assert main(["latent", "encode", files["a"], "--model", files["model"], "--refine", "3"]) == 0
    refined = json.loads(capsys.readouterr().out)
    assert refined["refine"] == 3 and len(refined["segments"]) == 2


@pytest.mark.slow
def test_interpolate_reproduces(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["latent", "interpolate", files["a"], files["b"], "--model", files["model"]]
    args += ["--steps", "3", "--temperature", "1", "--seed", "5", "--refine", "2"]
    for out in ("x", "y"):
        assert main([*args, "--out", str(tmp_path / out)]) == 0
    a, b = (tmp_path / "x" / "interpolation.mid"), (tmp_path / "y" / "interpolation.mid")
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "x" / "interpolation.png").stat().st_size > 0
    settings = json.loads((tmp_path / "x" / "interpolation.json").read_text())
    assert settings["seed"] == 5 and settings["steps"] == 3 and settings["refine"] == 2
    assert "seed 5" in capsys.readouterr().out


@pytest.mark.slow
def test_attribute_then_sample(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = tmp_path / "attributes.json"
    args = ["latent", "attribute", "--data", files["data"], "--model", files["model"]]
    assert main([*args, "--compute", "density,range", "--out", str(vectors)]) == 0
    assert set(json.loads(vectors.read_text())["vectors"]) == {"density", "range"}
    sample = ["latent", "sample", "--model", files["model"], "--attributes", str(vectors)]
    assert main([*sample, "--add", "density=+1.5", "--num", "2", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "sample_2.mid").is_file()
    settings = json.loads((tmp_path / "s" / "sample.json").read_text())
    assert settings["add"] == {"density": 1.5} and settings["seed"] == 0
    assert settings["temperature"] == 0.5  # the model's (a card without one: 0.5), not argmax
    from_args = [*sample, "--from", files["a"], "--add", "range=-1", "--temperature", "0"]
    assert main([*from_args, "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "sample.mid").is_file()
    from_file = json.loads((tmp_path / "f" / "sample.json").read_text())
    assert from_file["refine"] == 0 and from_file["temperature"] == 0.0
    refined = [*sample, "--from", files["a"], "--refine", "2", "--out", str(tmp_path / "r")]
    assert main(refined) == 0
    assert json.loads((tmp_path / "r" / "sample.json").read_text())["refine"] == 2


def test_prior_written_beside_the_model_or_out(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "prior.json"
    args = ["latent", "prior", "--data", files["data"], "--model", files["model"]]
    assert main([*args, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert len(record["mean"]) == 4 and len(record["cholesky"]) == 4 and record["segments"] == 24
    assert "24 segments" in capsys.readouterr().out
    folder = tmp_path / "tunes"
    folder.mkdir()
    (folder / "t1.mid").write_bytes(Path(files["a"]).read_bytes())
    (folder / "broken.mid").write_bytes(b"not a MIDI file")
    prior = ["latent", "prior", "--data", str(folder), "--model", files["model"]]
    assert main([*prior, "--out", str(tmp_path / "p2.json")]) == 0
    assert "skipped 1 piece(s) unreadable or in a meter" in capsys.readouterr().out
    assert json.loads((tmp_path / "p2.json").read_text())["skipped"] == ["broken.mid"]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--hop", "0"])
    assert stop.value.code == 2 and "--hop: must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["encode", "missing.mid"], "no such file"),
        (["interpolate", "A", "B", "--steps", "1"], "steps"),
        (["interpolate", "A", "B", "--refine", "-1"], "refine"),
        (["encode", "A", "--refine", "-1"], "refine"),
        (["sample", "--add", "density"], "NAME=AMOUNT"),
        (["sample", "--add", "density=1"], "attribute vectors"),
        (["sample", "--num", "0"], ">= 1"),
        (["sample", "--temperature", "-1"], "temperature"),
        (["attribute", "--data", "DATA", "--compute", "loudness"], "unknown attribute"),
        (["prior", "--data", "missing-folder"], "missing-folder"),
    ],
)
def test_bad_input(
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    args = [files.get(a.lower(), a) for a in args]
    code = main(["latent", *args, "--model", files["model"], "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_generate_and_infill_with_the_prior(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``musegen generate`` and ``musegen infill`` serve the latent diffusion prior."""
    from latenthelpers import tiny_prior
    from musegen.io import load

    prior = str(tiny_prior(tmp_path / "prior", Path(files["model"])))
    args = ["generate", "--model", prior, "--bars", "6", "--seed", "2", "--out", str(tmp_path)]
    assert main([*args, "--name", "g"]) == 0
    assert load(tmp_path / "g.mid").end <= 6 * 4 * load(tmp_path / "g.mid").tpq
    assert json.loads((tmp_path / "g.json").read_text())["sampling"]["seed"] == 2
    infill = ["infill", files["a"], "--model", prior, "--bars", "2-2", "--seed", "1"]
    assert main([*infill, "--out", str(tmp_path), "--name", "i"]) == 0
    settings = json.loads((tmp_path / "i.json").read_text())
    assert settings["rewritten_bars"] == [1, 2]
    assert settings["temperature"] == settings["sampling"]["temperature"] == 0.5  # as generate
    assert main(["generate", "--model", prior, "--bars", "40", "--out", str(tmp_path)]) == 2
    assert "at most 16 bars" in capsys.readouterr().err
    form = ["generate", "--bars", "16", "--form", "AABA", "--out", str(tmp_path), "--name", "f"]
    assert main([*form, "--model", prior]) == 0
    assert json.loads((tmp_path / "f.json").read_text())["sampling"]["form"] == ["AABA"]
    assert main([*form, "--model", files["model"]]) == 2  # a VAE alone plans no form
    assert "--form needs a token model with a bar grid" in capsys.readouterr().err
