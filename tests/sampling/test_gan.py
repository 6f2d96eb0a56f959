"""GAN models behind the generate interface: pieces, seeds, chords (tiny untrained models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model, save_model
from musegen.sampling.gan import cells_to_score, chord_track
from musegen.sampling.generators import GenerateRequest, load_generator
from musegen.theory import parse_chord

TINY = {
    "musegan": {"n_bars": 2, "steps": 8, "n_pitches": 24, "low_pitch": 48, "d_z": 8,
                "d_hidden": 16, "d_critic": 8},
    "midinet": {"steps": 8, "n_pitches": 24, "d_z": 8, "d_hidden": 16, "d_critic": 8},
    "crnngan": {"length": 6, "d_noise": 4, "d_hidden": 8, "n_layer": 1, "d_critic": 4},
}  # fmt: skip


@pytest.fixture(scope="module")
def folders(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("gan")
    torch.manual_seed(0)
    for name, options in TINY.items():
        save_model(build_model(name, **options), root / name)
    return root


def test_musegan_pieces_have_four_voices_and_the_bars_asked(folders) -> None:  # type: ignore[no-untyped-def]
    gen = load_generator(str(folders / "musegan"))
    out = gen.generate(GenerateRequest(num=3, bars=3, seed=4))
    assert len(out.pieces) == 3
    for score in out.pieces:
        assert [t.voice for t in score.tracks] == ["S", "A", "T", "B"]
        assert score.end <= 3 * 4 * score.tpq
    again = gen.generate(GenerateRequest(num=3, bars=3, seed=4))
    assert [t.notes.tolist() for t in again.pieces[0].tracks] == [
        t.notes.tolist() for t in out.pieces[0].tracks
    ]
    assert out.settings["sampling"]["seed"] == 4


def test_midinet_writes_melody_over_the_chords_asked(folders) -> None:  # type: ignore[no-untyped-def]
    gen = load_generator(str(folders / "midinet"))
    assert gen.controls() == ("chords",)
    out = gen.generate(GenerateRequest(num=2, bars=4, chords=("C", "Am", "F", "G"), seed=1))
    melody, chords = out.pieces[0].tracks
    assert melody.name == "Melody" and chords.name == "Chords"
    bar = 4 * out.pieces[0].tpq
    firsts = chords.notes[chords.notes["start"] == bar]  # bar 2: A minor
    assert sorted(p % 12 for p in firsts["pitch"]) == [0, 4, 9]
    assert out.settings["sampling"]["chords"] == ["C", "Am", "F", "G"]
    with pytest.raises(MusegenError):
        gen.generate(GenerateRequest(chords=("H#",)))


def test_crnngan_and_unused_options(folders) -> None:  # type: ignore[no-untyped-def]
    gen = load_generator(str(folders / "crnngan"))
    out = gen.generate(GenerateRequest(num=2, bars=2, seed=0))
    assert all(p.end <= 3 * 4 * p.tpq for p in out.pieces)
    with pytest.raises(MusegenError, match="--primer"):
        gen.generate(GenerateRequest(primer="x.mid"))
    assert load_generator(str(folders / "musegan")).controls() == ()


def test_cells_and_chord_tracks() -> None:
    cells = torch.zeros(1, 4, 24)
    cells[0, 0:2, 12] = 1  # a quarter note (2 eighths) on MIDI 60
    cells[0, 3, 14] = 1
    score = cells_to_score(cells.numpy(), steps_per_quarter=2, low=48, names=("Melody",))
    assert score.tracks[0].notes[["start", "duration", "pitch"]].tolist() == [
        (0, 480, 60),
        (720, 240, 62),
    ]
    track = chord_track([parse_chord("G7"), None], 1920)
    assert sorted(track.notes["pitch"].tolist()) == [55, 59, 62, 65]


def test_draw_by_sampling_when_the_model_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    save_model(
        build_model("musegan", **TINY["musegan"]), tmp_path, {"sampling": {"draw": "sample"}}
    )
    gen = load_generator(str(tmp_path))
    out = gen.generate(GenerateRequest(num=2, bars=2, seed=3))
    assert out.settings["sampling"]["draw"] == "sample"
    again = gen.generate(GenerateRequest(num=2, bars=2, seed=3))
    assert out.pieces[1].tracks[2].notes.tolist() == again.pieces[1].tracks[2].notes.tolist()


def test_midinet_noise_per_piece_when_the_model_says_so(folders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``piece_noise``: one noise draw for every bar (other pieces than fresh noise per bar
    from the same weights, the same again for the same seed, and said in the settings)."""
    from musegen.models import load_model

    model, _ = load_model(folders / "midinet")
    model.config.piece_noise = True
    save_model(model, tmp_path, {})
    request = GenerateRequest(num=2, bars=6, chords=("C",), seed=2)
    per_piece = load_generator(str(tmp_path)).generate(request)
    per_bar = load_generator(str(folders / "midinet")).generate(request)
    assert per_piece.settings["sampling"]["noise"] == "piece"
    assert per_bar.settings["sampling"]["noise"] == "bar"
    a, b = (out.pieces[0].tracks[0].notes.tolist() for out in (per_piece, per_bar))
    assert a != b
    again = load_generator(str(tmp_path)).generate(request)
    assert again.pieces[0].tracks[0].notes.tolist() == a


def test_bar_agrees_names_the_bar_by_the_chord_labeller() -> None:
    """A bar of C, E and G agrees with C (and not Am or G); a bar of D, F and A with Dm; a
    silent bar with nothing. Pitch rows start at ``low_pitch``."""
    import numpy as np

    from musegen.sampling.gan import bar_agrees

    cells = np.zeros((3, 8, 24))
    for step, pitch in enumerate((0, 0, 4, 4, 7, 7, 12, 12)):  # C C E E G G C C (from C4)
        cells[0, step, pitch] = 1
    for step, pitch in enumerate((2, 2, 5, 5, 9, 9, 9, 9)):  # D F A
        cells[1, step, pitch] = 1
    c, am, g, dm = (parse_chord(x) for x in ("C", "Am", "G", "Dm"))
    assert bar_agrees(cells, [c] * 3, 60).tolist() == [True, False, False]
    assert bar_agrees(cells, [dm] * 3, 60).tolist() == [False, True, False]
    assert not bar_agrees(cells, [am] * 3, 60).any() and not bar_agrees(cells, [g] * 3, 60).any()
    assert bar_agrees(cells[:, :, 2:], [parse_chord("Bb")] * 3, 62).tolist() == [
        False,
        False,
        False,
    ]


class _TwoBarModel:
    """A stand-in MidiNet: from noise whose first value is > 0 a bar of C, E, G; else D, F, A.
    It counts its calls so the test can see the redraws."""

    class config:  # the fields midinet_bars reads
        steps, n_pitches, low_pitch = 8, 24, 60

    calls = 0

    def latent(self, n, generator=None):  # type: ignore[no-untyped-def]
        return torch.randn(n, 4, generator=generator)

    def fake(self, z, cond):  # type: ignore[no-untyped-def]
        self.calls += 1
        x = torch.zeros(len(z), 1, 8, 24)
        for i, up in enumerate((z[:, 0] > 0).tolist()):
            for step, p in enumerate((0, 0, 4, 4, 7, 7, 0, 0) if up else (2, 2, 5, 5, 9, 9, 2, 2)):
                x[i, 0, step, p] = 1.0
        return x

    def draw(self, probs, sample=False, generator=None):  # type: ignore[no-untyped-def]
        return probs.clone()


def test_midinet_bars_draws_a_bar_again_until_it_names_its_chord() -> None:
    """``tries`` 1: one draw a bar; more: each bar not named as its chord is drawn again from
    fresh noise until one is (or the tries run out), bars named at once stay as drawn, and
    the same seed gives the same melodies."""
    from musegen.sampling.gan import bar_agrees, midinet_bars

    chords = [[parse_chord("C")] * 6] * 40
    low = _TwoBarModel.config.low_pitch

    def run(tries: int):  # type: ignore[no-untyped-def]
        model = _TwoBarModel()
        g = torch.Generator().manual_seed(5)
        bars = midinet_bars(model, chords, g, sample=False, piece_noise=False, tries=tries)
        return bars, model.calls

    once, calls = run(1)
    assert once.shape == (40, 6, 8, 24) and calls == 6
    agree = [bar_agrees(once[:, b], [ch[b] for ch in chords], low) for b in range(6)]
    assert 0.3 < sum(a.mean() for a in agree) / 6 < 0.7  # about half the noise draws
    many, calls = run(8)
    assert all(
        bar_agrees(many[:, b], [ch[b] for ch in chords], low).mean() > 0.95 for b in range(6)
    )
    assert calls > 6
    assert (many[:, 0][agree[0]] == once[:, 0][agree[0]]).all()  # the first bar's hits stay
    again, _ = run(8)
    assert (again == many).all()
    with pytest.raises(MusegenError, match="tries"):
        midinet_bars(_TwoBarModel(), chords, torch.Generator(), sample=False,
                     piece_noise=False, tries=0)  # fmt: skip


def test_midinet_chord_tries_come_from_the_model_and_are_said(folders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from musegen.models import load_model

    model, _ = load_model(folders / "midinet")
    save_model(model, tmp_path, {"sampling": {"chord_tries": 3}})
    request = GenerateRequest(num=2, bars=3, chords=("C", "G"), seed=4)
    out = load_generator(str(tmp_path)).generate(request)
    assert out.settings["sampling"]["chord_tries"] == 3
    plain = load_generator(str(folders / "midinet")).generate(request)
    assert plain.settings["sampling"]["chord_tries"] == 1
    again = load_generator(str(tmp_path)).generate(request)
    assert again.pieces[1].tracks[0].notes.tolist() == out.pieces[1].tracks[0].notes.tolist()


def test_nearest_octaves_keeps_pitch_classes_and_rhythm_and_stays_near() -> None:
    """Each note (a run of one pitch) moves by octaves to the pitch nearest the note before,
    inside the range; a held note stays one note; a rest breaks a run; the first note keeps its
    octave when it is in range."""
    from musegen.sampling.gan import nearest_octaves

    bar = np.zeros((2, 8, 36), dtype=np.float32)
    for step, p in enumerate((12, 12, 28, 28, -1, 26, 4, 4)):  # C5 C5 E6 E6 rest D6 E4 E4
        if p >= 0:
            bar[0, step, p] = 1
    bar[1, :, 30] = 1  # F#6 held the whole bar, in a row whose note before was C5
    moved, last = nearest_octaves(bar, np.array([-1, 12]), 2, 24)
    pitches = [int(np.flatnonzero(r)[0]) if r.any() else -1 for r in moved[0]]
    assert pitches == [12, 12, 16, 16, -1, 14, 16, 16]  # C5 C5 E5 E5 rest D5 E5 E5
    assert (moved[1].argmax(-1) == 18).all() and moved[1].sum() == 8  # F#5, still one note
    assert last.tolist() == [16, 18]
    assert ((moved.argmax(-1) % 12) == (bar.argmax(-1) % 12))[bar.any(-1)].all()
    assert (moved.any(-1) == bar.any(-1)).all()  # the same steps sound
    first, _ = nearest_octaves(bar[:1, 6:], np.array([-1]), 2, 24)
    assert first[0].argmax(-1).tolist() == [4, 4]  # E4 in range: as drawn


def test_midinet_bars_in_a_register(folders) -> None:  # type: ignore[no-untyped-def]
    """With ``register`` every note lies in it, the chord check still runs, a seed repeats,
    and a range too narrow to hold every pitch class is refused."""
    from musegen.models import load_model
    from musegen.sampling.gan import midinet_bars

    model, _ = load_model(folders / "midinet")
    c = model.config
    chords = [[parse_chord(x) for x in ("C", "G", "Am", "F")]] * 6
    low, high = c.low_pitch + 2, c.low_pitch + 16

    def run() -> np.ndarray:
        with torch.no_grad():
            return midinet_bars(model, chords, torch.Generator().manual_seed(3), sample=False,
                                piece_noise=True, tries=2, register=(low, high))  # fmt: skip

    bars = run()
    on = np.argwhere(bars)
    assert len(on) and (on[:, -1] + c.low_pitch >= low).all()
    assert (on[:, -1] + c.low_pitch <= high).all()
    assert (run() == bars).all()
    with pytest.raises(MusegenError, match="register"):
        midinet_bars(model, chords, torch.Generator(), sample=False, piece_noise=True,
                     register=(low, low + 7))  # fmt: skip


def test_midinet_register_comes_from_the_model_and_is_said(folders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from musegen.models import load_model

    model, _ = load_model(folders / "midinet")
    low = model.config.low_pitch
    save_model(model, tmp_path, {"sampling": {"register": [low + 2, low + 16]}})
    request = GenerateRequest(num=2, bars=3, chords=("C", "G"), seed=4)
    out = load_generator(str(tmp_path)).generate(request)
    assert out.settings["sampling"]["register"] == [low + 2, low + 16]
    melody = np.concatenate([p.tracks[0].notes["pitch"] for p in out.pieces])
    assert melody.min() >= low + 2 and melody.max() <= low + 16
    assert (
        load_generator(str(folders / "midinet")).generate(request).settings["sampling"]["register"]
        is None
    )
