"""The generator of the adversarial models: noise in, pieces out (``musegen generate``).

* ``musegan``: each piece is ``ceil(bars / n_bars)`` phrases drawn from independent noise,
  joined and cut to ``--bars``; one track per generated track (S/A/T/B voices when there are
  four). Cells are drawn as the paper does (the most likely pitch or rest per step; a hard
  threshold for polyphonic tracks); repeated cells of a voice join into one note.
* ``midinet``: a melody written bar by bar, from noise, the chord of the bar (``--chords``,
  cycled; default the model's ``sampling.chords``, else ``C Am F G``) and the bar it wrote
  before. The noise is fresh for every bar, or, where the model's ``piece_noise`` is set, one
  draw for the whole piece (every bar of a tune then shares what the noise decides, its pace
  above all, as a tune's bars do). The piece has the melody and a second track holding
  each bar's chord (its triad or seventh chord under the melody, for listening; metrics read
  the melody). Where the model's ``sampling.register`` is ``[LOW, HIGH]`` (MIDI pitches), each
  note is moved by octaves to the pitch nearest the note before within that range, its pitch
  class kept (:func:`nearest_octaves`): the generator places a pitch class in an octave almost
  at random, which makes its melodies leap between registers (mean leap 6.7 semitones against
  the data's 3.1).
* ``crnngan``: note after note from the LSTM generator until the bars are full.

Cells are drawn as the model's ``sampling.draw`` says: ``"argmax"`` (MuseGAN's hard
thresholding: the most likely pitch or rest per step, cells over 0.5 for polyphonic tracks;
the default) or ``"sample"`` (its Bernoulli sampling: each step's pitch or rest drawn from the
generator's probabilities). Everything is drawn from one ``torch.Generator`` seeded by ``--seed``, on the CPU, so a seed
gives the same pieces on every machine with the same torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.sampling.generators import Generated, GenerateRequest, Generator
from musegen.score import Score, TimeSignature, Track, make_notes

DEFAULT_CHORDS = ("C", "Am", "F", "G")
VOICE_NAMES = ("S", "A", "T", "B")


def cells_to_score(
    cells: np.ndarray, steps_per_quarter: int, low: int, tpq: int = 480, names: tuple = ()
) -> Score:
    """A score from binary cells ``[tracks, T, P]`` (row 0 = MIDI ``low``): in each track a
    run of equal set cells is one note. Four tracks are labelled S, A, T, B."""
    from musegen.tokenizers.grid import from_binary_roll

    tracks = []
    for i, roll in enumerate(np.asarray(cells)):
        score = from_binary_roll(roll, steps_per_quarter, low=low)
        notes = score.tracks[0].notes if score.tracks else np.zeros(0)
        notes = _retick(notes, score.tpq, tpq)
        voice = VOICE_NAMES[i] if len(cells) == 4 and not names else None
        name = names[i] if i < len(names) else (voice or f"Track {i + 1}")
        tracks.append(Track(notes, name=name, voice=voice))
    return Score(tpq, tracks, time_signatures=[TimeSignature(0, 4, 4)])


def _retick(notes: np.ndarray, src: int, dst: int) -> np.ndarray:
    if not len(notes) or src == dst:
        return notes
    out = notes.copy()
    out["start"] = notes["start"] * dst // src
    out["duration"] = notes["duration"] * dst // src
    return out


def bar_agrees(cells: np.ndarray, chords: Sequence[Any], low_pitch: int) -> np.ndarray:
    """Per drawn melody bar ``[n, steps, P]`` (pitch row 0 = MIDI ``low_pitch``): whether the
    chord labeller that measures MidiNet's agreement (:func:`musegen.theory.label_chords` over
    the bar's duration-weighted pitch classes, as :func:`musegen.metrics.describe.bar_chords`)
    names it as its chord in ``chords`` (one per bar; root and quality). A silent bar agrees
    with nothing."""
    from musegen.theory import Chord, label_chords

    cells = np.asarray(cells, dtype=np.float64)
    n, _, n_pitches = cells.shape
    per_pitch = cells.sum(1)  # [n, P]: steps each pitch sounds
    weights = np.zeros((n, 12))
    for k in range(n_pitches):
        weights[:, (low_pitch + k) % 12] += per_pitch[:, k]
    sounding = per_pitch > 0
    bass = np.where(sounding.any(1), low_pitch + sounding.argmax(1), -1)

    def name(c: Any) -> str:
        return Chord(c.root, c.quality, c.root).name

    return np.array(
        [got is not None and name(got) == name(want)
         for got, want in zip(label_chords(weights, bass), chords, strict=True)],
        dtype=bool,
    )  # fmt: skip


def nearest_octaves(
    bar: np.ndarray, last: np.ndarray, low: int, high: int
) -> tuple[np.ndarray, np.ndarray]:
    """One bar of monophonic cells ``[n, steps, P]`` with each note (a run of one pitch) moved
    by whole octaves to the pitch nearest the note before, among the pitch indices ``low ..
    high`` (a tie goes to the side nearer the drawn pitch); ``last``: each row's note before,
    as an index (-1: none yet, the note keeps its octave if in range). The pitch classes and
    the rhythm stay. Returns the moved bar and each row's last note."""
    out = np.zeros_like(bar)
    last = np.array(last, dtype=np.int64)
    n, steps, size = bar.shape
    for i in range(n):
        drawn, shift = -1, 0
        for t in range(steps):
            on = np.flatnonzero(bar[i, t])
            if not len(on):
                drawn = -1
                continue
            p = int(on[0])
            if p != drawn:  # a new note
                near = last[i] if last[i] >= 0 else p
                choices = [q for q in range(p % 12, size, 12) if low <= q <= high] or [p]
                q = min(choices, key=lambda q: (abs(q - near), abs(q - p)))
                drawn, shift, last[i] = p, q - p, q
            out[i, t, p + shift] = 1
    return out, last


def midinet_bars(
    model: Any, chords: list[list[Any]], g: Any, *, sample: bool, piece_noise: bool,
    tries: int = 1, register: Sequence[int] | None = None,
) -> np.ndarray:  # fmt: skip
    """MidiNet's melodies ``[n, bars, steps, P]`` (binary cells), one per list of bar chords
    in ``chords`` (all of one length), written bar by bar from noise, the bar's chord and the
    bar before, on ``g``.

    ``piece_noise``: one noise draw per piece (else a fresh one per bar). ``tries`` > 1: a
    bar the labeller (:func:`bar_agrees`) does not name as its chord is drawn again from fresh
    noise, up to ``tries`` draws in all; the first draw that agrees replaces it (none: the
    first draw stays). With ``tries`` 1 the draws are exactly those without the check.
    ``register`` ``(low, high)``, MIDI pitches: each drawn bar's notes moved by octaves into
    that range, each near the note before (:func:`nearest_octaves`), before the chord check
    and before the next bar reads it."""
    import torch

    from musegen.models.gan.midinet import chord_vector

    if tries < 1:
        raise MusegenError(f"chord tries must be >= 1, got {tries}")
    c = model.config
    n, bars = len(chords), len(chords[0]) if chords else 0
    last = np.full(n, -1)
    if register is not None:
        low, high = (int(x) - c.low_pitch for x in register)
        if high - low < 11 or low < 0 or high >= c.n_pitches:
            raise MusegenError(
                f"register {list(register)}: give MIDI pitches LOW, HIGH at least 11 apart "
                f"within the model's {c.low_pitch}..{c.low_pitch + c.n_pitches - 1}"
            )

    def drawn(cells: Any, before: np.ndarray) -> tuple[Any, np.ndarray]:
        if register is None:
            return cells, before
        moved, after = nearest_octaves(cells[:, 0].numpy(), before, low, high)
        return torch.from_numpy(moved).to(cells.dtype)[:, None], after

    vectors = torch.tensor(
        np.array([[chord_vector(x.root, x.pitch_classes) for x in ch] for ch in chords])
    ).reshape(n, bars, -1)
    prev = torch.zeros(n, 1, c.steps, c.n_pitches)
    out = []
    z = model.latent(n, generator=g)  # the piece's, or the first bar's
    for b in range(bars):
        if b and not piece_noise:
            z = model.latent(n, generator=g)
        cond = {"chord": vectors[:, b], "prev": prev}
        cells, after = drawn(model.draw(model.fake(z, cond), sample=sample, generator=g), last)
        if tries > 1:
            wanted = [ch[b] for ch in chords]
            ok = bar_agrees(cells[:, 0].numpy(), wanted, c.low_pitch)
            for _ in range(tries - 1):
                if ok.all():
                    break
                z_again = model.latent(n, generator=g)
                again, again_after = drawn(
                    model.draw(model.fake(z_again, cond), sample=sample, generator=g), last
                )
                fits = ~ok & bar_agrees(again[:, 0].numpy(), wanted, c.low_pitch)
                cells[torch.from_numpy(fits)] = again[torch.from_numpy(fits)]
                after[fits] = again_after[fits]
                ok |= fits
        last = after
        prev = cells
        out.append(cells[:, 0].numpy())
    return np.stack(out, 1) if out else np.zeros((n, 0, c.steps, c.n_pitches))


def chord_track(chords: list[Any], bar_ticks: int, low: int = 48) -> Track:
    """Each bar's chord as a block chord (root position from the octave of ``low``)."""
    starts, durations, pitches = [], [], []
    for b, chord in enumerate(chords):
        if chord is None:
            continue
        root = low + (chord.root - low) % 12
        for k, pc in enumerate(chord.tones):
            p = root + (pc - chord.root) % 12 + (12 if k and (pc - chord.root) % 12 == 0 else 0)
            starts.append(b * bar_ticks)
            durations.append(bar_ticks)
            pitches.append(p)
    return Track(make_notes(starts, durations, pitches, 56), name="Chords")


class GanGenerator(Generator):
    """MuseGAN, MidiNet and C-RNN-GAN behind the one interface (see the module docstring)."""

    kind = "adversarial model"
    serves = ("generate",)
    sample = False  # the model's sampling.draw is "sample"
    chord_tries = 1  # MidiNet: draws a bar until the labeller names its chord
    register: list[int] | None = None  # MidiNet: notes moved by octaves into this range

    def controls(self) -> tuple[str, ...]:
        return ("chords",) if self.meta.get("model") == "midinet" else ()

    @classmethod
    def capabilities(cls, meta: dict[str, Any]) -> tuple[str, ...]:
        return cls.serves + (("chords",) if meta.get("model") == "midinet" else ())

    def generate(self, request: GenerateRequest) -> Generated:
        import torch

        from musegen.sampling.pieces import PieceRequest, finish_piece, primer_score

        self._check(request)
        asked = PieceRequest(
            bars=request.bars, tempo=request.tempo, time_signature="4/4", key=request.key,
            program=request.program,
        )  # fmt: skip
        empty = primer_score(asked)
        bars = 8 if request.bars is None else request.bars
        if bars < 1:
            raise MusegenError("--bars must be >= 1")
        self.model.eval()
        g = torch.Generator().manual_seed(request.seed)
        name = self.meta.get("model")
        sampling = self.meta.get("sampling") or {}
        self.sample = sampling.get("draw", "argmax") == "sample"
        self.chord_tries = int(sampling.get("chord_tries", 1))
        self.register = sampling.get("register")
        settings: dict[str, Any] = {"seed": request.seed, "bars": bars, "draw": self._draw_name()}
        with torch.no_grad():
            if name == "musegan":
                pieces = self._musegan(bars, request.num, g)
            elif name == "midinet":
                chords = list(request.chords) or list(sampling.get("chords", DEFAULT_CHORDS))
                pieces = self._midinet(bars, request.num, g, chords)
                settings["chords"] = chords
                settings["noise"] = "piece" if self.model.config.piece_noise else "bar"
                settings["chord_tries"] = self.chord_tries
                settings["register"] = self.register
            else:
                pieces = self._crnngan(bars, request.num, g)
        pieces = [finish_piece(p, asked, empty) for p in pieces]
        return Generated(pieces, {"sampling": settings, "request": vars(asked)})

    def _draw_name(self) -> str:
        return "sample" if self.sample else "argmax"

    def _draw(self, probs: Any, g: Any) -> Any:
        return self.model.draw(probs, sample=self.sample, generator=g)

    def _check(self, request: GenerateRequest) -> None:
        unused = {
            "--primer": request.primer,
            "--seconds": request.seconds,
            "--tokens": request.tokens,
            "--temperature": request.temperature not in (None, 1.0),
            "--top-k": request.top_k,
            "--top-p": request.top_p not in (None, 1.0),
            "--repetition-penalty": request.repetition_penalty != 1.0,
            "--density": request.density,
            "--time-signature": request.time_signature not in (None, "4/4"),
            "--voices": request.voices,
            "--ending": request.ending not in (None, "free"),
            "--theme": getattr(request, "theme", None),
            "--form": getattr(request, "form", None),
        }
        if any(unused.values()):
            flags = ", ".join(flag for flag, given in unused.items() if given)
            raise MusegenError(
                f"{self.folder}: a GAN draws 4/4 pieces from noise ({flags} do not apply): "
                "use --bars, --num, --seed, --tempo, --key, --program"
                + (" and --chords" if self.controls() else "")
            )
        if request.num < 1:
            raise MusegenError(f"--num must be >= 1, got {request.num}")

    def _musegan(self, bars: int, num: int, g: Any) -> list[Score]:
        import torch

        c = self.model.config
        phrases = math.ceil(bars / c.n_bars)
        z = torch.randn(num * phrases, self.model.latent_size, generator=g)
        x = self._draw(self.model.fake(z, {}), g).cpu().numpy()
        x = x.reshape(num, phrases, c.n_tracks, c.n_bars * c.steps, c.n_pitches)
        x = x.transpose(0, 2, 1, 3, 4).reshape(num, c.n_tracks, -1, c.n_pitches)
        x = x[:, :, : bars * c.steps]
        return [cells_to_score(piece, c.steps // 4, c.low_pitch) for piece in x]

    def _midinet(self, bars: int, num: int, g: Any, names: list[str]) -> list[Score]:
        from musegen.theory import parse_chord

        c = self.model.config
        chords = [parse_chord(names[b % len(names)]) for b in range(bars)]
        melody = midinet_bars(
            self.model, [chords] * num, g, sample=self.sample, piece_noise=c.piece_noise,
            tries=self.chord_tries, register=self.register,
        )  # fmt: skip
        pieces = []
        for piece in melody:  # [bars, steps, P]
            score = cells_to_score(
                piece.reshape(1, -1, c.n_pitches), c.steps_per_quarter, c.low_pitch,
                names=("Melody",),
            )  # fmt: skip
            score.tracks.append(chord_track(chords, score.tpq * 4))
            pieces.append(score)
        return pieces

    def _crnngan(self, bars: int, num: int, g: Any) -> list[Score]:
        from musegen.models.gan.crnngan import features_to_score

        quarters = 4 * bars
        feats = self.model.sample_until(num, quarters, generator=g)
        mono = self.model.config.monophonic
        return [features_to_score(f, quarters, monophonic=mono) for f in feats.cpu().numpy()]
