"""Order-n Markov chains over melody pitch, note length and (optionally) chord, with back-off.

A melody is a run of events ``(pitch or rest, length in 16th notes)``. Three chains model it:

* **length** chain: the next length given the previous ``n`` lengths, conditioned on the
  position in the bar (so rhythms stay bar-aligned);
* **pitch** chain: the next pitch (or rest) given the previous ``n`` pitches, conditioned on
  the chord sounding at the note when ``chords=True``;
* **chord** chain (``chords=True``): one chord per beat given the previous ``n`` chords and
  the beat in the bar; chords come from the whole training texture by template matching.

Training pieces are transposed to C major / A minor first (key from the key signature or a
Krumhansl-Schmuckler estimate), so chains learn scale degrees; output is transposed to the
requested key. An unseen context backs off to the longest seen suffix (dropping the chord
condition last), down to the unigram.

Training is vectorised: each context is encoded as one integer (mixed radix, the history plus
the condition), and ``np.unique`` counts (context, next) pairs at every order at once. A
chain is stored as sorted context codes with a CSR table of next-symbol counts, which is also
its JSON form. Sampling draws a whole batch of melodies in lock-step: per step one
``searchsorted`` per back-off level and one into the cumulative weights, so 1,000 melodies
take well under a second. Each melody has its own random stream (spawned from the seed), so
melody ``i`` of a seed is the same whatever the batch size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musegen.compose.chords import NO_CHORD, label_chords
from musegen.compose.melody import melody_line
from musegen.compose.scores import build_score, chord_track_parts
from musegen.compose.search import make_rng
from musegen.errors import MusegenError
from musegen.score import Score
from musegen.theory import C_MAJOR, Key, nearest_shift, score_key
from musegen.utils import atomic_write_text

FORMAT = 1
STEPS_PER_QUARTER = 4  # events are measured in 16th notes
MAX_LENGTH = 32  # longest event, in steps (two 4/4 bars)
MAX_BAR_STEPS = 48
MAX_BEATS = 12
REST = 128
PITCH_SYMBOLS = 129  # MIDI 0..127 and REST
LENGTH_SYMBOLS = MAX_LENGTH + 1
CHORD_SYMBOLS = NO_CHORD + 1
MAX_ORDER = 4


# --------------------------------------------------------------------------- one chain
@dataclass
class Level:
    """One back-off level: contexts of ``history`` symbols (and the condition if
    ``conditioned``), as sorted integer codes with a CSR table of next-symbol counts."""

    history: int
    conditioned: bool
    keys: np.ndarray
    ptr: np.ndarray
    targets: np.ndarray
    counts: np.ndarray
    _cum: dict[float, np.ndarray] = field(default_factory=dict, repr=False)

    def code(self, hist: np.ndarray, cond: np.ndarray | None, radix: int) -> np.ndarray:
        """Context codes of histories ``[B, order]`` (most recent last) and conditions."""
        out = np.zeros(len(hist), np.int64)
        for j in range(1, self.history + 1):
            out += hist[:, -j].astype(np.int64) * radix ** (j - 1)
        if self.conditioned and cond is not None:
            out += np.asarray(cond, np.int64) * radix**self.history
        return out

    def cumulative(self, temperature: float) -> np.ndarray:
        """Cumulative sampling weights over all entries: ``count ** (1 / T)`` scaled per row
        (computed in the log domain, so tiny temperatures do not overflow)."""
        if temperature not in self._cum:
            logc = np.log(self.counts.astype(np.float64))
            rowmax = np.maximum.reduceat(logc, self.ptr[:-1])
            rows = np.repeat(np.arange(len(self.keys)), np.diff(self.ptr))
            w = np.exp((logc - rowmax[rows]) / temperature)
            self._cum[temperature] = np.cumsum(w)
        return self._cum[temperature]

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "conditioned": self.conditioned,
            "keys": self.keys.tolist(),
            "lengths": np.diff(self.ptr).tolist(),
            "targets": self.targets.tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Level:
        lengths = np.asarray(d["lengths"], np.int64)
        return cls(
            int(d["history"]),
            bool(d["conditioned"]),
            np.asarray(d["keys"], np.int64),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.asarray(d["targets"], np.int64),
            np.asarray(d["counts"], np.int64),
        )


@dataclass
class Chain:
    """An order-``order`` chain over ``alphabet`` symbols, optionally conditioned on one of
    ``conditions`` values per step. Histories are padded with BOS (= ``alphabet``)."""

    alphabet: int
    conditions: int
    order: int
    levels: list[Level]

    @property
    def radix(self) -> int:
        return self.alphabet + 1

    @property
    def bos(self) -> int:
        return self.alphabet

    @classmethod
    def fit(
        cls,
        seqs: Sequence[np.ndarray],
        alphabet: int,
        order: int,
        conds: Sequence[np.ndarray] | None = None,
        conditions: int = 0,
    ) -> Chain:
        """Count every (context, next) pair of every back-off level at once."""
        seqs = [np.asarray(s, np.int64) for s in seqs if len(s)]
        if not seqs:
            raise MusegenError("no training sequences (the corpus gave no melodies)")
        pad = np.full(order, alphabet, np.int64)
        arr = np.concatenate([np.concatenate([pad, s]) for s in seqs])
        lens = np.array([len(s) for s in seqs])
        starts = np.concatenate([[0], np.cumsum(lens + order)[:-1]]) + order
        idx = np.concatenate([np.arange(a, a + n) for a, n in zip(starts, lens, strict=True)])
        cond = None
        if conds is not None and conditions:
            cond = np.concatenate(
                [np.asarray(c, np.int64) for c, s in zip(conds, seqs, strict=True)]
            )
        target = arr[idx]
        chain = cls(alphabet, conditions if cond is not None else 0, order, [])
        specs = [(k, True) for k in range(order, -1, -1)] if cond is not None else []
        specs += [(k, False) for k in (range(order, -1, -1) if cond is None else [0])]
        hist = np.stack([arr[idx - j] for j in range(order, 0, -1)], axis=1) if order else None
        for k, conditioned in specs:
            level = Level(k, conditioned, *(np.zeros(0, np.int64),) * 4)
            h = hist if hist is not None else np.zeros((len(idx), 0), np.int64)
            code = level.code(h, cond, chain.radix)
            joint, counts = np.unique(code * alphabet + target, return_counts=True)
            keys, first = np.unique(joint // alphabet, return_index=True)
            level.keys = keys
            level.ptr = np.append(first, len(joint)).astype(np.int64)
            level.targets = joint % alphabet
            level.counts = counts.astype(np.int64)
            chain.levels.append(level)
        return chain

    def draw(
        self,
        hist: np.ndarray,
        cond: np.ndarray | None,
        u: np.ndarray,
        temperature: float = 1.0,
    ) -> np.ndarray:
        """One next symbol per row of ``hist`` ``[B, order]``, backing off as needed;
        ``u`` holds one uniform random number in [0, 1) per row."""
        n = len(hist)
        out = np.empty(n, np.int64)
        todo = np.arange(n)
        for level in self.levels:
            if not len(todo):
                break
            c = None if cond is None else cond[todo]
            code = level.code(hist[todo], c, self.radix)
            r = np.minimum(np.searchsorted(level.keys, code), len(level.keys) - 1)
            hit = level.keys[r] == code
            rows, who = r[hit], todo[hit]
            cum = level.cumulative(temperature)
            a, b = level.ptr[rows], level.ptr[rows + 1]
            lo = np.where(a > 0, cum[np.maximum(a - 1, 0)], 0.0)
            x = lo + u[who] * (cum[b - 1] - lo)
            j = np.clip(np.searchsorted(cum, x, side="right"), a, b - 1)
            out[who] = level.targets[j]
            todo = todo[~hit]
        if len(todo):  # cannot happen: the last level is the unigram
            raise MusegenError("Markov chain has no unigram level")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "alphabet": self.alphabet,
            "conditions": self.conditions,
            "order": self.order,
            "levels": [lv.to_dict() for lv in self.levels],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Chain:
        return cls(
            int(d["alphabet"]),
            int(d["conditions"]),
            int(d["order"]),
            [Level.from_dict(x) for x in d["levels"]],
        )


# --------------------------------------------------------------------------- melody events
@dataclass
class Events:
    """One melody as events: pitch (or REST), length and bar position in steps, chord."""

    pitch: np.ndarray
    length: np.ndarray
    position: np.ndarray
    chord: np.ndarray  # chord symbol at each event (NO_CHORD if none)
    beat_chords: np.ndarray  # one chord symbol per beat from the first event's beat
    beat_positions: np.ndarray  # beat in bar of each of those beats
    minor: bool


def melody_events(score: Score, with_chords: bool = False) -> Events | None:
    """A score's top line as events in C major / A minor (None if it has no notes)."""
    try:
        line = melody_line(score)
    except MusegenError:
        return None
    key = score_key(score) or C_MAJOR
    shift = nearest_shift(key[0], 9 if key[1] else 0)
    scale = STEPS_PER_QUARTER / score.tpq
    on = np.rint(line.start * scale).astype(np.int64)
    off = np.maximum(np.rint((line.start + line.duration) * scale).astype(np.int64), on + 1)
    keep = np.concatenate([[True], np.diff(on) > 0])
    on, off, pitch = on[keep], off[keep], line.pitch[keep] + shift
    ok = (pitch >= 0) & (pitch <= 127)
    on, off, pitch = on[ok], off[ok], pitch[ok]
    if not len(on):
        return None
    nxt = np.append(on[1:], off[-1])
    end = np.minimum(off, nxt)
    rest = nxt > end  # a gap after note i becomes a rest event
    at = np.arange(len(on)) + np.concatenate([[0], np.cumsum(rest)[:-1]])
    n_ev = len(on) + int(rest.sum())
    ev_on_a, ev_len, ev_pitch = (np.zeros(n_ev, np.int64) for _ in range(3))
    ev_on_a[at], ev_len[at], ev_pitch[at] = on, end - on, pitch
    ev_on_a[at[rest] + 1], ev_len[at[rest] + 1] = end[rest], (nxt - end)[rest]
    ev_pitch[at[rest] + 1] = REST
    bar = score.time_signatures[0].bar_ticks(score.tpq) if score.time_signatures else 4 * score.tpq
    bar_steps = int(np.clip(round(bar * scale), 1, MAX_BAR_STEPS))
    beats_per_bar = max(1, min(MAX_BEATS, bar_steps // STEPS_PER_QUARTER))
    first_beat = int(ev_on_a[0]) // STEPS_PER_QUARTER
    last_beat = int(ev_on_a[-1] + ev_len[-1] - 1) // STEPS_PER_QUARTER
    beats = np.arange(first_beat, last_beat + 1)
    chords = np.full(len(beats), NO_CHORD, np.int64)
    if with_chords:
        chords = _beat_chords(score, shift, first_beat, len(beats))
    ev_chord = chords[np.clip(ev_on_a // STEPS_PER_QUARTER - first_beat, 0, len(beats) - 1)]
    return Events(
        ev_pitch,
        np.clip(ev_len, 1, MAX_LENGTH),
        ev_on_a % bar_steps,
        ev_chord,
        chords,
        (beats % beats_per_bar) % MAX_BEATS,
        key[1],
    )


def _beat_chords(score: Score, shift: int, first_beat: int, n_beats: int) -> np.ndarray:
    """Template-matched chord per beat over all pitched tracks (weights: overlap in ticks)."""
    w = np.zeros((n_beats, 12))
    beat = score.tpq
    for t in score.tracks:
        if t.is_drum or not len(t):
            continue
        s = t.notes["start"].astype(np.int64)
        e = s + t.notes["duration"]
        pc = (t.notes["pitch"].astype(np.int64) + shift) % 12
        b0 = np.maximum(s // beat, first_beat)
        b1 = np.minimum((e - 1) // beat, first_beat + n_beats - 1)
        span = np.maximum(b1 - b0 + 1, 0)
        note = np.repeat(np.arange(len(s)), span)  # one row per (note, beat it touches)
        b = b0[note] + np.arange(len(note)) - np.repeat(np.cumsum(span) - span, span)
        overlap = np.minimum(e[note], (b + 1) * beat) - np.maximum(s[note], b * beat)
        np.add.at(w, (b - first_beat, pc[note]), np.maximum(overlap, 0))
    return label_chords(w)


# --------------------------------------------------------------------------- the model
@dataclass
class MarkovModel:
    """The three chains plus what they were trained on."""

    order: int
    chords: bool
    pitch: Chain
    length: Chain
    chord: Chain | None = None
    info: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        scores: Iterable[Score],
        order: int = 2,
        chords: bool = False,
        mode: str = "any",
        info: dict[str, Any] | None = None,
    ) -> MarkovModel:
        """Fit on the top line of each score (``mode``: 'major', 'minor' or 'any')."""
        if not 1 <= order <= MAX_ORDER:
            raise MusegenError(f"Markov order must be 1..{MAX_ORDER}, got {order}")
        if mode not in ("any", "major", "minor"):
            raise MusegenError(f"mode must be any, major or minor, got {mode!r}")
        events = [e for e in (melody_events(s, chords) for s in scores) if e is not None]
        if mode != "any":
            events = [e for e in events if e.minor == (mode == "minor")]
        if not events:
            raise MusegenError("no melodies to train on: the corpus gave no notes")
        pitch = Chain.fit(
            [e.pitch for e in events],
            PITCH_SYMBOLS,
            order,
            [e.chord for e in events] if chords else None,
            CHORD_SYMBOLS if chords else 0,
        )
        length = Chain.fit(
            [e.length for e in events],
            LENGTH_SYMBOLS,
            order,
            [e.position for e in events],
            MAX_BAR_STEPS,
        )
        chord = None
        if chords:
            chord = Chain.fit(
                [e.beat_chords for e in events],
                CHORD_SYMBOLS,
                order,
                [e.beat_positions for e in events],
                MAX_BEATS,
            )
        meta = dict(info or {})
        meta.update(
            pieces=len(events),
            events=int(sum(len(e.pitch) for e in events)),
            minor_pieces=int(sum(e.minor for e in events)),
            mode=mode,
        )
        return cls(order, chords, pitch, length, chord, meta)

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        num: int = 1,
        bars: int = 8,
        *,
        seed: int | None = None,
        temperature: float = 1.0,
        time_signature: tuple[int, int] = (4, 4),
    ) -> SampledMelodies:
        """``num`` melodies of ``bars`` bars, drawn together (reproducible from ``seed``)."""
        if temperature <= 0:
            raise MusegenError(f"temperature must be > 0, got {temperature}")
        if num < 1 or bars < 1:
            raise MusegenError("need at least one melody of at least one bar")
        num_, den = time_signature
        bar_steps = num_ * 16 // den
        if not 1 <= bar_steps <= MAX_BAR_STEPS or num_ * 16 % den:
            raise MusegenError(f"unsupported time signature {num_}/{den}")
        _, seed = make_rng(seed)
        total = bars * bar_steps
        n_beats = -(-total // STEPS_PER_QUARTER)
        # one random stream per melody, so melody i depends on (seed, i) and not on num
        streams = np.random.SeedSequence(seed).spawn(num)
        u = np.stack([np.random.default_rng(s).random(n_beats + 2 * total) for s in streams])
        u_chord, u_len, u_pitch = u[:, :n_beats], u[:, n_beats::2], u[:, n_beats + 1 :: 2]
        beats_per_bar = max(1, min(MAX_BEATS, bar_steps // STEPS_PER_QUARTER))
        chords = np.full((num, n_beats), NO_CHORD, np.int64)
        if self.chords and self.chord is not None:
            hist = np.full((num, self.order), self.chord.bos, np.int64)
            for b in range(n_beats):
                cond = np.full(num, (b % beats_per_bar) % MAX_BEATS)
                chords[:, b] = self.chord.draw(hist, cond, u_chord[:, b], temperature)
                hist = np.concatenate([hist[:, 1:], chords[:, b : b + 1]], axis=1)
        pitch = np.full((num, total), -1, np.int64)
        length = np.zeros((num, total), np.int64)
        p_hist = np.full((num, self.order), self.pitch.bos, np.int64)
        l_hist = np.full((num, self.order), self.length.bos, np.int64)
        t = np.zeros(num, np.int64)
        count = np.zeros(num, np.int64)
        active = np.arange(num)
        while len(active):
            now, k = t[active], count[active]
            lens = self.length.draw(l_hist[active], now % bar_steps, u_len[active, k], temperature)
            lens = np.clip(lens, 1, total - now)
            cond = chords[active, now // STEPS_PER_QUARTER] if self.chords else None
            pits = self.pitch.draw(p_hist[active], cond, u_pitch[active, k], temperature)
            pitch[active, count[active]] = pits
            length[active, count[active]] = lens
            l_hist[active] = np.concatenate([l_hist[active, 1:], lens[:, None]], axis=1)
            p_hist[active] = np.concatenate([p_hist[active, 1:], pits[:, None]], axis=1)
            count[active] += 1
            t[active] = now + lens
            active = active[t[active] < total]
        return SampledMelodies(
            pitch, length, count, chords if self.chords else None, bar_steps, seed
        )

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": "musegen-markov",
            "order": self.order,
            "chords": self.chords,
            "steps_per_quarter": STEPS_PER_QUARTER,
            "info": self.info,
            "chains": {
                "pitch": self.pitch.to_dict(),
                "length": self.length.to_dict(),
                **({"chord": self.chord.to_dict()} if self.chord is not None else {}),
            },
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: str | Path) -> MarkovModel:
        try:
            d = json.loads(Path(path).read_text())
            if d.get("kind") != "musegen-markov" or d.get("format") != FORMAT:
                raise ValueError("not a musegen Markov model (format 1)")
            chains = d["chains"]
            return cls(
                int(d["order"]),
                bool(d["chords"]),
                Chain.from_dict(chains["pitch"]),
                Chain.from_dict(chains["length"]),
                Chain.from_dict(chains["chord"]) if "chord" in chains else None,
                dict(d.get("info", {})),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise MusegenError(f"{path}: cannot read Markov model ({e})") from e


@dataclass
class SampledMelodies:
    """A batch of sampled melodies (C major / A minor frame): padded event arrays."""

    pitch: np.ndarray  # [num, max_events], REST = 128, padding -1
    length: np.ndarray  # in 16th-note steps
    count: np.ndarray  # events per melody
    chords: np.ndarray | None  # [num, beats] chord symbols, or None
    bar_steps: int
    seed: int

    def __len__(self) -> int:
        return len(self.count)

    def events(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        n = int(self.count[i])
        return self.pitch[i, :n], self.length[i, :n]

    def score(
        self,
        i: int,
        key: Key = C_MAJOR,
        qpm: float = 110.0,
        tpq: int = 480,
        time_signature: tuple[int, int] = (4, 4),
    ) -> Score:
        """Melody ``i`` (and its chord track, if any) transposed from C/A to ``key``."""
        shift = nearest_shift(9 if key[1] else 0, key[0])
        pitch, length = self.events(i)
        step = tpq // STEPS_PER_QUARTER
        onset = np.concatenate([[0], np.cumsum(length)[:-1]]) * step
        note = pitch != REST
        parts = [("melody", onset[note], length[note] * step, np.clip(pitch[note] + shift, 0, 127))]
        if self.chords is not None:
            sym = self.chords[i].copy()
            ok = sym < NO_CHORD
            sym[ok] = (((sym[ok] // 4) + shift) % 12) * 4 + sym[ok] % 4
            parts.append(("chords", *chord_track_parts(sym, tpq)))
        return build_score(parts, tpq=tpq, qpm=qpm, key=key, time_signature=time_signature)


def train_markov(
    specs: Sequence[str],
    order: int = 2,
    chords: bool = False,
    mode: str = "any",
    max_pieces: int | None = None,
    progress: bool = False,
) -> MarkovModel:
    """Train on the training split of one or more corpus references
    (:data:`musegen.data.refs.REFS_HELP`);
    ``progress`` shows a bar per corpus on stderr (music21 corpora read a few pieces/s)."""

    from musegen.data.refs import iter_scores

    scores: list[Score] = []
    for spec in specs:
        pieces: Iterable[Score] = iter_scores(spec, "train", max_pieces=max_pieces)
        if progress:
            from musegen.utils import progress as show

            pieces = show(
                pieces, desc=f"reading {spec}", unit="piece", total=max_pieces, leave=False
            )
        scores += list(pieces)
    if not scores:
        raise MusegenError(f"no pieces could be read from {', '.join(specs)}")
    return MarkovModel.train(scores, order, chords, mode, info={"train": list(specs)})


def describe(model: MarkovModel) -> str:
    i = model.info
    extra = ", chords" if model.chords else ""
    return (
        f"order-{model.order} Markov model{extra}: {i.get('pieces', '?')} melodies, "
        f"{i.get('events', '?')} events from {', '.join(i.get('train', [])) or 'scores'}"
    )


__all__ = [
    "Chain",
    "Level",
    "MarkovModel",
    "SampledMelodies",
    "describe",
    "melody_events",
    "train_markov",
]
