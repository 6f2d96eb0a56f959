"""benchmarks/chorale_tells.py: feature effect sizes and the model writing under a given
soprano (tiny pieces, a tiny random chorale model; no corpus is read)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchhelpers import load_benchmark
from metricshelpers import satb


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    return load_benchmark("chorale_tells")


def _pieces(shift: int, n: int = 6) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(shift)
    out = []
    for _ in range(n):
        roots = rng.choice([0, 2, 4, 5, 7, 9], size=8)
        chords = [(72 + r + shift, 67 + r + shift, 60 + r + shift, 48 + r + shift) for r in roots]
        out.append(satb(chords, beats=[2] * 8))
    return out


def test_tell_rows_zero_against_itself_and_signed_by_register(bench) -> None:  # type: ignore[no-untyped-def]
    same = _pieces(0)
    rows = bench.tell_rows(same, same, same)
    assert rows and all(r["effect"] == 0 and r["train_effect"] == 0 for r in rows)
    higher = {r["feature"]: r for r in bench.tell_rows(_pieces(5), same, same)}
    assert (
        higher["voice.S.mean_pitch"]["effect"] > 1
        and higher["voice.S.mean_pitch"]["train_effect"] == 0
    )
    effects = [abs(r["effect"]) for r in bench.tell_rows(_pieces(5), same, same)]
    assert effects == sorted(effects, reverse=True)


def test_given_soprano_keeps_the_line_and_writes_the_rest(bench, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from musegen.models import build_model, save_model
    from musegen.tokenizers import get_tokenizer

    tok = get_tokenizer("chorale")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    save_model(model, tmp_path / "m", {"tokenizer": tok.to_dict()})
    reals = _pieces(0, n=2)
    out = bench.given_soprano(str(tmp_path / "m"), reals, top_p=1.0, seed=3)
    assert len(out) == 2 and [t.voice for t in out[0].tracks] == ["S", "A", "T", "B"]
    for real, piece in zip(reals, out, strict=True):
        got, want = piece.tracks[0].notes, real.tracks[0].notes
        assert got["pitch"].tolist() == want["pitch"].tolist()
        assert (got["start"] / piece.tpq).tolist() == (want["start"] / real.tpq).tolist()
    again = bench.given_soprano(str(tmp_path / "m"), reals, top_p=1.0, seed=3)
    assert [p.tracks[2].notes.tolist() for p in again] == [p.tracks[2].notes.tolist() for p in out]
