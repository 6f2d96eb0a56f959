"""``generate --instruments``: names to programs, and a remi-instruments model that plays only
the instruments asked for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from musegen.cli.main import main
from musegen.errors import MusegenError
from musegen.io import load
from musegen.models import build_model, save_model
from musegen.sampling.capabilities import model_capabilities
from musegen.sampling.instruments import parse_instruments
from musegen.tokenizers import get_tokenizer


def test_names_words_and_numbers_become_programs() -> None:
    assert parse_instruments("violin, Violin,viola,cello") == (40, 40, 41, 42)
    assert parse_instruments("Acoustic Grand Piano,piano,flute,7,drums") == (0, 0, 73, 7, 128)
    for bad, message in (
        ("kazooo", "not a General MIDI name"),
        (" , ", "empty"),
        ("200", "0..127"),
    ):
        with pytest.raises(MusegenError, match=message):
            parse_instruments(bad)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0, positions_per_quarter=4)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    folder = tmp_path_factory.mktemp("m") / "model"
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "random weights"})
    return folder


def test_generate_plays_only_the_instruments_asked_for(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], one_torch_thread: None
) -> None:
    meta = json.loads((model_dir / "config.json").read_text())
    assert "instruments" in model_capabilities(meta)
    out = tmp_path / "out"
    args = ["generate", "--model", str(model_dir), "--bars", "2", "--seed", "4", "--num", "3"]
    assert main([*args, "--instruments", "violin,viola,cello", "--out", str(out)]) == 0
    settings = json.loads((out / "piece.json").read_text())
    assert settings["instruments"] == [40, 41, 42]
    programs = set()
    for path in sorted(out.glob("*.mid")):
        programs |= {t.program for t in load(path).tracks if len(t)}
    assert programs and programs <= {40, 41, 42}
    capsys.readouterr()
    assert main([*args, "--instruments", "kazooo", "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["generate", "--model", "bach", "--instruments", "violin", "--out", str(out)]) == 2
    assert "takes no instruments" in capsys.readouterr().err


def test_a_meter_asked_for_holds_and_the_model_still_writes_its_instruments(
    model_dir: Path, one_torch_thread: None
) -> None:
    """``--time-signature`` on a REMI model: every new bar is in it (no meter changes, the bars
    asked for), and the instrument header still comes from the model (it comes before the
    first bar line, so the meter is held by a constraint rather than a primer)."""
    import torch

    from musegen.sampling.generate import SamplingConfig, generate
    from musegen.sampling.generators import GenerateRequest, load_generator

    generator = load_generator(str(model_dir))
    got = generator.generate(GenerateRequest(num=3, seed=2, bars=3, time_signature="3/4"))
    for piece in got.pieces:
        assert [(t.numerator, t.denominator) for t in piece.time_signatures] == [(3, 4)]
        assert piece.n_bars <= 3
    tok = generator.tokenizer
    lo, hi = tok.vocab.span("time_sig")
    meter = lo + list(tok.config.time_signatures).index("3/4")
    from functools import partial

    from musegen.sampling.filters import hold_meter

    torch.manual_seed(0)
    seqs = generate(
        generator.model,
        tok,
        num=4,
        config=SamplingConfig(max_new_tokens=96, seed=3),
        hold_eos=True,
        constraints=[partial(hold_meter, meter=meter, lo=lo, hi=hi)],
    )
    inst = tok.vocab.span("instrument")
    bar = tok.vocab.offset("bar")
    barred = [seq for seq in seqs if (seq == bar).any()]
    assert barred
    for seq in barred:
        assert seq[(seq >= lo) & (seq < hi)].tolist() == [meter]  # once, the one asked for
        first_bar = int(np.flatnonzero(seq == bar)[0])
        assert seq[first_bar + 1] == meter  # right after the first bar line
        assert ((seq[:first_bar] >= inst[0]) & (seq[:first_bar] < inst[1])).any()
