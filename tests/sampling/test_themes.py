"""Themes: the piece opens with the theme and restates it where the plan says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchhelpers import load_benchmark
from musegen.cli.main import main
from musegen.errors import MusegenError
from musegen.io import load, save
from musegen.models import build_model, save_model
from musegen.sampling.structure import bar_similarity, planned, top_line_bars
from musegen.sampling.themes import (
    auto_form,
    auto_forms,
    diatonic_shifts,
    plan_request,
    statement_bars,
    theme_bars,
    theme_plan,
)
from musegen.score import Score, TimeSignature, Track, make_notes
from musegen.tokenizers import get_tokenizer

Q = 480
ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "src" / "musegen" / "sampling" / "forms.json"


def line(pitches: list[int], meter: tuple[int, int] = (4, 4), step: int = Q // 2) -> Score:
    start = np.arange(len(pitches)) * step
    notes = make_notes(start, np.full(len(pitches), step), np.array(pitches), 80)
    return Score(tpq=Q, tracks=[Track(notes)], time_signatures=[TimeSignature(0, *meter)])


THEME = line([67, 67, 69, 71, 72, 71, 69, 67, 64, 64, 65, 67, 69, 67, 65, 64])  # two bars


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = get_tokenizer("melody", steps_per_quarter=2, max_bars=16)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    folder = tmp_path_factory.mktemp("m") / "model"
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "random weights"})
    return folder


def test_theme_bars_are_the_top_line_in_the_voice_range() -> None:
    tok = get_tokenizer("chorale")
    meter, bars = theme_bars(THEME, tok)
    assert meter == "4/4" and len(bars) == 2
    assert bars[0].shape == (16, 4) and (bars[0][:, 1:] == -1).all()  # other voices free
    assert bars[0][0, 0] == tok.pitch_offset + 67 and bars[0][1, 0] == tok.hold_id
    low = line([p - 36 for p in [67, 69, 71, 72]], step=Q)  # three octaves down: moved up
    _, moved = theme_bars(low, tok)
    assert moved[0][0, 0] - tok.pitch_offset == 67 - 36 + 24  # into the soprano (55-86)
    with pytest.raises(MusegenError, match="wider than"):
        theme_bars(line([30, 100]), tok)
    with pytest.raises(MusegenError, match="no notes"):
        theme_bars(Score(tpq=Q), tok)


def test_statements_and_shifts() -> None:
    assert statement_bars(2, 16) == [0, 4, 8, 12]
    assert statement_bars(3, 16) == [0, 8]
    assert statement_bars(1, 16, [1, 3, 40]) == [0, 2]
    with pytest.raises(MusegenError, match="include bar 1"):
        statement_bars(1, 16, [3])
    assert diatonic_shifts(np.array([60, 62, 64, 65, 67, 69, 71])) == (0,)  # a whole scale
    assert diatonic_shifts(np.array([60, 64, 67])) == (-7, -5, -2, 0, 2, 5, 7)
    assert len(diatonic_shifts(np.array([60, 61, 62, 63]))) == 15  # no major scale holds it


@pytest.mark.parametrize("variation", ["mixed", "exact", "sequence", "varied"])
def test_sampled_pieces_restate_the_theme(
    model_dir: Path, variation: str, one_torch_thread: None
) -> None:
    from musegen.models import load_model
    from musegen.sampling.generate import SamplingConfig, generate

    model, meta = load_model(model_dir)
    tok = get_tokenizer("melody", **meta["tokenizer"]["config"])
    plan, meter, _ = plan_request(tok, 8, THEME, variation=variation)
    assert meter == "4/4"
    primer = tok.primer_for_length(Score(tpq=Q, time_signatures=[TimeSignature(0)]), 8)
    seqs = generate(model, planned(tok, plan), num=2, primer=primer, config=SamplingConfig(seed=2))
    _, cells = theme_bars(THEME, tok)
    bar = tok.vocab.offset("bar")
    theme = top_line_bars(tok, np.concatenate([[bar], cells[0][:, 0], [bar], cells[1][:, 0]]))
    for ids in seqs:
        bars = top_line_bars(tok, ids)
        assert [np.array_equal(bars[b], theme[b]) for b in (0, 1)] == [True, True]  # opens so
        for b in (4, 5):  # the restatement: the same bar, or the same up to its mode
            sim = bar_similarity(theme[b - 4], bars[b])
            if variation in ("exact", "mixed"):
                assert np.array_equal(bars[b], theme[b - 4])
            elif variation == "sequence":
                assert sim == 1.0
            else:
                kinds = np.where(bars[b] >= 0, 0, bars[b])
                assert np.array_equal(kinds, np.where(theme[b - 4] >= 0, 0, theme[b - 4]))


def test_theme_plan_over_a_form_and_its_settings() -> None:
    tok = get_tokenizer("melody")
    plan, _, settings = plan_request(tok, 16, THEME, form="ABAB")
    assert settings["form"] == "ABAB" and settings["theme"]["at"] == [1, 5, 9, 13]
    assert plan.bars[8] is not None and plan.bars[8].theme  # the theme wins over the form
    assert plan.bars[10] is not None and not plan.bars[10].theme  # the form's restatement
    with pytest.raises(MusegenError, match="choose"):
        theme_plan([], 4, variation="wild")
    with pytest.raises(MusegenError, match="more than the 1"):
        plan_request(tok, 1, THEME)


def test_generate_theme_cli(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theme = tmp_path / "theme.mid"
    save(THEME, theme)
    out = tmp_path / "out"
    args = ["generate", "--model", str(model_dir), "--bars", "8", "--seed", "1", "--out", str(out)]
    assert main([*args, "--theme", str(theme), "--theme-at", "1,5"]) == 0
    settings = json.loads((out / "piece.json").read_text())
    assert settings["plan"]["theme"]["at"] == [1, 5]
    piece = load(out / "piece.mid")
    first = piece.tracks[0].notes[:8]
    assert first["pitch"].tolist() == [67, 67, 69, 71, 72, 71, 69, 67]
    assert main([*args, "--form", "AABB"]) == 0
    assert json.loads((out / "piece.json").read_text())["plan"]["form"] == "AABB"
    assert main([*args, "--form", "auto"]) == 0  # drawn from the corpus's measured forms
    drawn = json.loads((out / "piece.json").read_text())["plan"]["form"]
    assert drawn in json.loads(FORMS.read_text())["melody-8"]["shares"]  # 8-bar openings
    capsys.readouterr()
    for extra, message in (
        (["--theme", str(theme), "--primer", str(theme)], "leave out --primer"),
        (["--theme", str(theme), "--time-signature", "3/4"], "the theme is in 4/4"),
        (["--theme", str(theme), "--theme-at", "1,x"], "give bar numbers"),
        (["--form", "A1"], "one letter a section"),
    ):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert main(["generate", "--model", "jsb-frame", "--form", "AB", "--out", str(out)]) == 2
    assert "bar grid" in capsys.readouterr().err


def test_auto_forms_are_drawn_per_piece(model_dir: Path, tmp_path: Path) -> None:
    """Several pieces each draw a form (the first draw is a lone piece's); short pieces
    draw from the corpus's 8-bar openings, long ones from its whole pieces."""
    tok = get_tokenizer("melody")
    forms = auto_forms(tok, 3, 8, 12)
    assert forms[0] == auto_form(tok, 3, 8) and len(set(forms)) > 1
    table = json.loads(FORMS.read_text())
    assert set(forms) <= set(table["melody-8"]["shares"])
    assert set(auto_forms(tok, 3, 32, 12)) <= set(table["melody"]["shares"])
    out = tmp_path / "out"
    args = ["generate", "--model", str(model_dir), "--bars", "8", "--num", "6", "--seed", "4"]
    assert main([*args, "--form", "auto", "--out", str(out)]) == 0
    plan = json.loads((out / "piece.json").read_text())["plan"]
    assert plan == {"form": "auto", "forms": auto_forms(get_tokenizer("melody"), 4, 8, 6)}
    assert len(list(out.glob("piece_*.mid"))) == 6


def test_a_models_default_form_applies_to_new_pieces_of_eight_bars_or_more() -> None:
    from musegen.sampling.generators import GenerateRequest, with_default_form

    assert with_default_form(GenerateRequest(bars=8), "auto").form == "auto"
    assert with_default_form(GenerateRequest(bars=8, form="AABB"), "auto").form == "AABB"
    assert with_default_form(GenerateRequest(bars=8, form="none"), "auto").form is None
    assert with_default_form(GenerateRequest(bars=8), None).form is None
    for request in (
        GenerateRequest(bars=4),  # sections would be single bars
        GenerateRequest(bars=None, seconds=20.0),
        GenerateRequest(bars=8, primer="a.mid"),
        GenerateRequest(bars=8, theme="t.mid"),
    ):
        assert with_default_form(request, "auto").form is None


def test_benchmark_recurrence_counts_restated_bars() -> None:
    bench = load_benchmark("theme")
    theme = [np.array([60, -1, 62, -1]), np.array([64, -1, -1, -2])]
    other = np.array([70, 71, 72, 73])
    bars = [*theme, other, theme[0] + 2 * (theme[0] >= 0), other, theme[1]]
    near, exact = bench.recurrence(bars, theme, 2)
    assert (near, exact) == (0.5, 0.25)  # 2 of 4 restate (one moved up a tone), 1 exactly
    assert np.isnan(bench.recurrence(bars[:2], theme, 2)[0])
