"""Style tokens of the remi-instruments tokenizer (``styles``), ``generate --style`` and the
multi-part corpus script's instrument and split rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.cli.main import main
from musegen.errors import MusegenError
from musegen.io import load, save
from musegen.models import build_model, save_model
from musegen.sampling.capabilities import model_capabilities
from musegen.score import Marker, Score, TimeSignature, Track, make_notes
from musegen.tokenizers import get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.instruments import InstrumentsTokenizer

Q = 480
STYLES = ["bach", "haydn", "monteverdi"]
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def trio(bars: int = 2, style: str | None = "haydn") -> Score:
    """``bars`` bars of quarters, one track each for violin, viola, cello."""
    n = 4 * bars
    tracks = [
        Track(
            make_notes([i * Q for i in range(n)], [Q] * n, [72 - 12 * k + i % 5 for i in range(n)]),
            program=p,
        )
        for k, p in enumerate((40, 41, 42))
    ]
    markers = [Marker(0, f"style:{style}")] if style else []
    return Score(tpq=Q, tracks=tracks, time_signatures=[TimeSignature(0, 4, 4)], markers=markers)


def styled_tok(**extra: object) -> InstrumentsTokenizer:
    return get_tokenizer(  # type: ignore[return-value]
        "remi-instruments", velocity_bins=8, tempo_bins=0, styles=STYLES, **extra
    )


def test_the_style_comes_after_bos_and_every_bar_and_decodes_to_its_marker() -> None:
    tok = styled_tok()
    ids = tok.encode(trio(bars=3))
    labels = tok.tokens(ids)
    assert labels[:5] == ["BOS", "STYLE_haydn", "INST_40", "INST_41", "INST_42"]
    bars = [i for i, t in enumerate(labels) if t == "Bar"]
    assert len(bars) == 3 and all(labels[i + 1] == "STYLE_haydn" for i in bars)
    assert labels.count("STYLE_haydn") == 4
    assert tok.header(ids) == (40, 41, 42) and tok.style_of(ids) == "haydn"
    assert tok.grammar().feed(ids).done
    back = tok.decode(ids)
    assert [m.text for m in back.markers] == ["style:haydn"]
    assert np.array_equal(tok.encode(back), ids)  # round trip, the style included
    plain = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0)
    np.testing.assert_array_equal(tok.body(ids), plain.remi.encode(trio(bars=3)))


def test_without_styles_nothing_changes() -> None:
    """The shipped quartet's tokenizer: no style ids, a marker ignored, the same dict."""
    plain = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0)
    assert len(plain) == 592 and plain.controls == ("instruments",)
    assert "styles" not in plain.to_dict()["config"]
    assert np.array_equal(plain.encode(trio()), plain.encode(trio(style=None)))
    tok = styled_tok()
    assert len(tok) == 592 + len(STYLES) and tok.controls == ("instruments", "style")
    assert tokenizer_from_dict(tok.to_dict()).to_dict() == tok.to_dict()
    assert tok.tokens(tok.encode(trio(style=None)))[1] == "INST_40"  # no style, no token


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), style=st.sampled_from(STYLES), forced=st.booleans())
def test_a_sampled_sequence_keeps_one_style_after_every_bar(
    seed: int, style: str, forced: bool
) -> None:
    tok = styled_tok(positions_per_quarter=2)
    tok = tok.instrumented([40, 42]) if forced else tok
    tok = tok.styled(style)
    rng = np.random.default_rng(seed)
    g, out = tok.grammar(), []
    while not g.done and len(out) < 300:
        t = int(rng.choice(np.flatnonzero(g.mask())))
        g.step(t)
        out.append(t)
    labels = tok.tokens(out)
    assert labels[1] == f"STYLE_{style}"
    assert {t for t in labels if t.startswith("STYLE_")} == {f"STYLE_{style}"}
    assert all(labels[i + 1] == f"STYLE_{style}" for i, t in enumerate(labels[:-1]) if t == "Bar")
    styled_tok(positions_per_quarter=2).grammar().feed(out)  # the free grammar accepts it
    assert tok.decode(out).markers[0].text == f"style:{style}"


def test_style_errors_are_one_line() -> None:
    tok = styled_tok()
    with pytest.raises(MusegenError, match="knows bach, haydn, monteverdi"):
        tok.styled("mozart")
    with pytest.raises(MusegenError, match="not one of this tokenizer's"):
        tok.encode(trio(style="mozart"))
    for bad in (["Bach"], ["a b"], ["bach", "bach"], [""]):
        with pytest.raises(MusegenError, match="style"):
            styled_tok().config_class.from_dict({**tok.config.to_dict(), "styles": bad})
    plain = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0)
    with pytest.raises(MusegenError, match="no style tokens"):
        plain.styled("bach")  # type: ignore[attr-defined]


def test_a_primer_takes_the_forced_style() -> None:
    tok = styled_tok().styled("bach")
    labels = tok.tokens(tok.encode(trio(style="haydn"), eos=False))
    assert labels[1] == "STYLE_bach" and "STYLE_haydn" not in labels


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = styled_tok(positions_per_quarter=4)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    folder = tmp_path_factory.mktemp("m") / "model"
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "random weights"})
    return folder


def test_generate_style_writes_that_style_and_errors_name_the_styles(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], one_torch_thread: None
) -> None:
    meta = json.loads((model_dir / "config.json").read_text())
    assert {"instruments", "style"} <= set(model_capabilities(meta))
    assert main(["models", str(model_dir)]) == 0
    assert "styles (--style): bach, haydn, monteverdi" in capsys.readouterr().out
    out = tmp_path / "out"
    args = ["generate", "--model", str(model_dir), "--bars", "2", "--seed", "3", "--num", "2"]
    assert (
        main([*args, "--style", "monteverdi", "--instruments", "violin,cello", "-o", str(out)]) == 0
    )
    assert json.loads((out / "piece.json").read_text())["style"] == "monteverdi"
    for path in sorted(out.glob("*.mid")):
        piece = load(path)
        assert "style:monteverdi" in [m.text for m in piece.markers]
        assert {t.program for t in piece.tracks if len(t)} <= {40, 42}
    capsys.readouterr()
    assert main([*args, "--style", "mozart", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bach, haydn, monteverdi" in err
    plain = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0)
    model = build_model("transformer", vocab_size=len(plain), n_layer=1, d_model=16, n_head=2)
    save_model(model, tmp_path / "plain", {"tokenizer": plain.to_dict()})
    assert main(["generate", "-m", str(tmp_path / "plain"), "--style", "bach", "-o", str(out)]) == 2
    assert "knows no styles" in capsys.readouterr().err


def test_the_corpus_script_names_strings_and_keeps_the_plain_files_split(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import multipart_corpora as mc
    finally:
        sys.path.remove(str(SCRIPTS))
    assert mc.voice_programs([70.0, 65.0, 55.0, 45.0]) == [40, 40, 41, 42]
    assert mc.voice_programs([70, 66, 62, 55, 45]) == [40, 40, 41, 41, 42]
    assert mc.voice_programs([45.0, 70.0]) == [42, 40]
    assert mc.program_for("Violino II.") == 40 and mc.program_for("Violone e Organo") is None
    score = trio(style=None)
    plain = mc.midi_bytes(score, tmp_path / "a.mid")
    score.markers = [Marker(0, "style:haydn")]
    tagged = mc.midi_bytes(score, tmp_path / "b.mid")
    assert plain != tagged and [m.text for m in load(tmp_path / "b.mid").markers] == ["style:haydn"]
    save(trio(bars=1), tmp_path / "c.mid")
    (tmp_path / "splits.json").write_text(json.dumps({"b.mid": "valid", "c.mid": "test"}))
    (tmp_path / "a.mid").unlink()
    pieces = mc.styled_folder(tmp_path).pieces()
    assert {p.id: p.split for p in pieces} == {"b.mid": "valid", "c.mid": "test"}
