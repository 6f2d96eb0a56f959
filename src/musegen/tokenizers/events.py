"""Performance-RNN style event tokenizer (Oore et al. 2018): NOTE_ON / NOTE_OFF / TIME_SHIFT.

A score becomes one stream of events in time order. Each note gives a ``NOTE_ON`` at its onset
and a ``NOTE_OFF`` at its offset; ``TIME_SHIFT_k`` moves the clock ``k`` grid steps (longer gaps
chain several shifts). State tokens are written only when they change:

* ``VELOCITY_v`` sets the velocity of the following ``NOTE_ON`` tokens,
* ``PROGRAM_p`` / ``PROGRAM_DRUMS`` selects the track that following NOTE_ON/NOTE_OFF belong to,
* ``TEMPO_b`` (optional, ``tempo_bins > 0``) sets the tempo from that time on.

Time is counted in steps of a beat-relative grid (``steps_per_quarter``, 12 by default so that
16ths and 8th-note triplets are exact); decoded scores are at :data:`TPQ` ticks per quarter.

**Tracks and unisons.** A track is known by its program (and drum flag) only: tracks of one
program merge into one track (``programs=False``: every track into one). Two notes of one
pitch at one time, from two merged tracks (two voices in unison), are two NOTE_ONs and two
NOTE_OFFs and decode as two notes; tracks of different programs stay apart.

**Overlapping notes of one pitch.** A NOTE_OFF only names a pitch, so when two notes of the
same pitch and track overlap, the events cannot say which onset an offset closes. The decoder
pairs them first-in-first-out (an offset closes the oldest open note of that pitch), and
:meth:`EventTokenizer.prepare` canonicalises a score the same way: per track and pitch, the
sorted onsets are paired with the sorted offsets. This keeps every onset, every offset and
every velocity (it stays with its onset); only which offset belongs to which overlapping onset
can change. Among onsets at the same time the quieter one gets the earlier offset.

A NOTE_OFF only closes a note begun *before* the current time, so no note is ever zero-length;
at one time point, offsets are written before onsets.

Encoding and decoding are vectorised numpy: events are packed into one int64 sort key per event
(time, track, off/on, pitch, velocity), sorted once and unpacked; decoding pairs onsets with
offsets per (track, pitch) with one sort and prefix sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from musegen.errors import MusegenError
from musegen.score import NOTE_DTYPE, Score, Tempo, Track
from musegen.tokenizers.base import BOS, EOS, PAD, Grammar, Tokenizer, TokenizerConfig, Vocab

TPQ = 480  # ticks per quarter of decoded and prepared scores
DRUMS = 128  # track code of the drum kit; codes 0..127 are General MIDI programs
N_CODES = 129

# token kinds (lookup tables map every id to one of these and to its value)
_SPECIAL, _ON, _OFF, _SHIFT, _VEL, _PROG, _TEMPO = range(7)

# Events are packed into int64 sort keys; times (in steps) must fit in _TIME_BITS bits.
_TIME_BITS = 38
_MAX_STEPS = 1 << _TIME_BITS


@dataclass
class EventConfig(TokenizerConfig):
    """Settings of :class:`EventTokenizer`.

    ``velocity_bins=0`` writes no velocity tokens (every note decodes at ``default_velocity``);
    ``programs=False`` merges all tracks into one piano track; ``tempo_bins=0`` writes no tempo
    tokens (the tempo map is dropped), otherwise tempos are binned log-evenly between
    ``min_qpm`` and ``max_qpm``.
    """

    steps_per_quarter: int = 12
    max_shift_steps: int = 48
    velocity_bins: int = 32
    default_velocity: int = 64
    programs: bool = True
    tempo_bins: int = 0
    min_qpm: float = 40.0
    max_qpm: float = 240.0

    def __post_init__(self) -> None:
        spq = self.steps_per_quarter
        if spq < 1 or TPQ % spq:
            raise MusegenError(f"steps_per_quarter must divide {TPQ} (e.g. 4, 12, 24), got {spq}")
        checks = [
            (self.max_shift_steps >= 1, "max_shift_steps must be >= 1"),
            (0 <= self.velocity_bins <= 127, "velocity_bins must be 0..127"),
            (1 <= self.default_velocity <= 127, "default_velocity must be 1..127"),
            (0 <= self.tempo_bins <= 128, "tempo_bins must be 0..128"),
            (0 < self.min_qpm < self.max_qpm, "need 0 < min_qpm < max_qpm"),
        ]
        for ok, message in checks:
            if not ok:
                raise MusegenError(f"events tokenizer: {message}")


class _Notes(NamedTuple):
    """Note columns on the step grid: onset/offset steps, pitch, velocity bin, track code."""

    start: np.ndarray
    end: np.ndarray
    pitch: np.ndarray
    vel: np.ndarray
    code: np.ndarray


def _empty_notes() -> _Notes:
    z = np.zeros(0, np.int64)
    return _Notes(z, z, z, z, z)


def _round_ratio(x: np.ndarray, num: int, den: int) -> np.ndarray:
    """``x * num / den`` rounded half up, in exact integer arithmetic."""
    return (np.asarray(x, np.int64) * (2 * num) + den) // (2 * den)


def _velocity_tables(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin of each velocity 0..127 (0 counts as 1) and the centre velocity of each bin."""
    v = np.arange(1, 128)
    bin_of_v = (v - 1) * bins // 127
    centres = np.rint(np.bincount(bin_of_v, weights=v) / np.bincount(bin_of_v)).astype(np.int64)
    return np.concatenate([[0], bin_of_v]), centres


def _tempo_centres(cfg: EventConfig) -> np.ndarray:
    return np.round(np.geomspace(cfg.min_qpm, cfg.max_qpm, cfg.tempo_bins), 2)


def _previous(x: np.ndarray, first: int = -1) -> np.ndarray:
    """``x`` shifted right by one, with ``first`` in front."""
    out = np.empty_like(x)
    if len(x):
        out[0] = first
        out[1:] = x[:-1]
    return out


def _latest(where: np.ndarray, at: np.ndarray, values: np.ndarray, default: int) -> np.ndarray:
    """For each position in ``at``, ``values`` at the latest of ``where`` before it (sorted)."""
    if not len(where):
        return np.full(len(at), default, np.int64)
    last = np.searchsorted(where, at) - 1
    return np.where(last >= 0, values[where[last]], default)


def _clean(notes: _Notes) -> _Notes:
    """Drop notes outside MIDI pitch 0..127; clamp negative times to 0."""
    ok = (notes.pitch >= 0) & (notes.pitch <= 127)
    start = np.maximum(notes.start[ok], 0)
    end = np.maximum(notes.end[ok], start + 1)
    return _Notes(start, end, notes.pitch[ok], notes.vel[ok], notes.code[ok])


def _fifo_pairing(notes: _Notes) -> _Notes:
    """Re-pair onsets and offsets first-in-first-out per (track, pitch).

    Within each (track, pitch) the k-th onset (ties: quieter first) gets the k-th offset. The
    k-th smallest offset always lies after the k-th smallest onset, so no note becomes empty.
    """
    if len(notes.start) < 2:
        return notes
    by_start = np.lexsort((notes.vel, notes.start, notes.pitch, notes.code))
    by_end = np.lexsort((notes.end, notes.pitch, notes.code))
    return _Notes(
        notes.start[by_start],
        notes.end[by_end],
        notes.pitch[by_start],
        notes.vel[by_start],
        notes.code[by_start],
    )


class EventTokenizer(Tokenizer):
    """NOTE_ON / NOTE_OFF / TIME_SHIFT tokens with velocity, program and tempo state tokens."""

    name = "events"
    config_class = EventConfig
    config: EventConfig

    def __init__(self, config: EventConfig | None = None, **overrides: object) -> None:
        super().__init__(config, **overrides)
        cfg = self.config
        self.step_ticks = TPQ // cfg.steps_per_quarter
        self._vel_bin, centres = _velocity_tables(max(cfg.velocity_bins, 1))
        if cfg.velocity_bins == 0:
            self._vel_bin[:] = 0
            centres[:] = cfg.default_velocity
        self._vel_value = centres  # velocity of each bin
        self._tempo_centre = _tempo_centres(cfg) if cfg.tempo_bins else np.zeros(0)
        self._build_tables()

    # ------------------------------------------------------------------ vocabulary
    def build_vocab(self) -> Vocab:
        cfg = self.config
        v = Vocab()
        v.add("NOTE_ON", 128)
        v.add("NOTE_OFF", 128)
        v.add("TIME_SHIFT", cfg.max_shift_steps, lambda k: f"TIME_SHIFT_{k + 1}")
        if cfg.velocity_bins:
            centres = _velocity_tables(cfg.velocity_bins)[1]
            v.add("VELOCITY", cfg.velocity_bins, lambda b: f"VELOCITY_{centres[b]}")
        if cfg.programs:
            v.add("PROGRAM", N_CODES, lambda c: "PROGRAM_DRUMS" if c == DRUMS else f"PROGRAM_{c}")
        if cfg.tempo_bins:
            v.add("TEMPO", cfg.tempo_bins)
        return v

    def _build_tables(self) -> None:
        """Per-id kind and value lookup tables, and the grammar's fixed masks."""
        n = len(self.vocab)
        kind = np.full(n, _SPECIAL, np.int8)
        value = np.zeros(n, np.int64)
        blocks = {
            "NOTE_ON": (_ON, 0),
            "NOTE_OFF": (_OFF, 0),
            "TIME_SHIFT": (_SHIFT, 1),
            "VELOCITY": (_VEL, 0),
            "PROGRAM": (_PROG, 0),
            "TEMPO": (_TEMPO, 0),
        }
        for name, (k, first) in blocks.items():
            if name in self.vocab:
                lo, hi = self.vocab.span(name)
                kind[lo:hi] = k
                value[lo:hi] = np.arange(first, first + hi - lo)
        self._kind, self._value = kind, value
        self._steps = np.where(kind == _SHIFT, value, 0)  # clock advance of each id
        self._is_note = (kind == _ON) | (kind == _OFF)
        self._kind_list, self._value_list = kind.tolist(), value.tolist()
        self._on = self.vocab.offset("NOTE_ON")
        self._off = self.vocab.offset("NOTE_OFF")
        self._shift = self.vocab.offset("TIME_SHIFT")
        self._velo = self.vocab.offset("VELOCITY") if "VELOCITY" in self.vocab else -1
        self._prog = self.vocab.offset("PROGRAM") if "PROGRAM" in self.vocab else -1
        self._tempo = self.vocab.offset("TEMPO") if "TEMPO" in self.vocab else -1
        body = np.ones(n, bool)
        body[[PAD, BOS, EOS]] = False
        body[self._off : self._off + 128] = False
        self._body_mask = body

    # ------------------------------------------------------------------ canonical form
    def _track_code(self, track: Track) -> int:
        if not self.config.programs:
            return 0
        return DRUMS if track.is_drum else track.program

    def _columns(self, score: Score) -> _Notes:
        """All notes on the step grid with velocity bins and track codes (unpaired)."""
        tracks = [t for t in score.tracks if len(t)]
        if not tracks:
            return _empty_notes()
        if len(tracks) == 1:
            notes = tracks[0].notes
            ticks, dur, pitch, vel = (notes[c] for c in ("start", "duration", "pitch", "velocity"))
        else:  # column-wise: much cheaper than concatenating structured arrays
            ticks, dur, pitch, vel = (
                np.concatenate([t.notes[c] for t in tracks])
                for c in ("start", "duration", "pitch", "velocity")
            )
        codes = np.array([self._track_code(t) for t in tracks], np.int64)
        code = np.repeat(codes, [len(t) for t in tracks])
        spq, tpq = self.config.steps_per_quarter, score.tpq
        start = _round_ratio(ticks, spq, tpq)
        end = np.maximum(_round_ratio(ticks + dur, spq, tpq), start + 1)
        cols = _Notes(
            start, end, pitch.astype(np.int64), self._vel_bin.take(vel, mode="clip"), code
        )
        if start.min() < 0 or pitch.min() < 0 or pitch.max() > 127:
            cols = _clean(cols)
        if end.max() >= _MAX_STEPS:
            raise MusegenError(f"score too long for the events tokenizer ({end.max()} steps)")
        return cols

    def _tempo_events(self, score: Score) -> tuple[np.ndarray, np.ndarray]:
        """Tempo changes as (step, bin): last one per step, repeats of the same bin dropped."""
        if not self.config.tempo_bins or not score.tempos:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        times = _round_ratio(
            [t.time for t in score.tempos], self.config.steps_per_quarter, score.tpq
        )
        qpm = np.log(np.array([t.qpm for t in score.tempos], np.float64).clip(1e-3))
        logc = np.log(self._tempo_centre)
        bins = np.searchsorted((logc[1:] + logc[:-1]) / 2, qpm).astype(np.int64)
        times = np.maximum(times, 0)
        last_at_time = np.append(times[1:] != times[:-1], True)
        times, bins = times[last_at_time], bins[last_at_time]
        changed = bins != _previous(bins)
        return times[changed], bins[changed]

    def _to_score(self, notes: _Notes, tempos: tuple[np.ndarray, np.ndarray]) -> Score:
        """Build a score at :data:`TPQ` from grid columns: one track per code, sorted notes."""
        st = self.step_ticks
        dur = notes.end - notes.start
        velocity = self._vel_value[notes.vel]
        order = np.lexsort(
            (dur * 128 + velocity, (notes.code << 50) | (notes.start << 7) | notes.pitch)
        )
        arr = np.empty(len(order), NOTE_DTYPE)
        arr["start"] = notes.start[order] * st
        arr["duration"] = dur[order] * st
        arr["pitch"] = notes.pitch[order]
        arr["velocity"] = velocity[order]
        code = notes.code[order]
        bounds = [0, *(np.flatnonzero(code[1:] != code[:-1]) + 1).tolist(), len(code)]
        tracks = [
            Track(arr[a:b], program=int(code[a]) % DRUMS, is_drum=bool(code[a] == DRUMS))
            for a, b in pairwise(bounds)
            if b > a
        ]
        tempo_list = [
            Tempo(int(t) * st, float(self._tempo_centre[b]))
            for t, b in zip(tempos[0].tolist(), tempos[1].tolist(), strict=True)
        ]
        return Score(tpq=TPQ, tracks=tracks, tempos=tempo_list)

    def prepare(self, score: Score) -> Score:
        """The score as this tokenizer represents it, so that ``decode(encode(s)) == prepare(s)``.

        At :data:`TPQ` ticks per quarter: times snapped to the step grid (a note lasts at
        least one step), velocities at bin centres, one track per (program, drums) key (all
        merged when ``programs=False``), overlapping same-pitch notes paired first-in-first-out
        (see the module doc), notes outside MIDI pitch 0..127 dropped. Time signatures and
        keys are not tokenized, so they are dropped; tempos too unless ``tempo_bins > 0``.
        """
        return self._to_score(_fifo_pairing(self._columns(score)), self._tempo_events(score))

    # ------------------------------------------------------------------ encode
    def encode(self, score: Score, bos: bool = True, eos: bool = True) -> np.ndarray:
        """Token ids of ``score`` (int64), optionally framed by BOS and EOS."""
        notes = self._columns(score)
        t_time, t_bin = self._tempo_events(score)
        time = np.concatenate([notes.start, notes.end, t_time])
        code1 = np.concatenate([notes.code + 1, notes.code + 1, np.zeros_like(t_time)])
        low = np.concatenate(
            [
                (1 << 14) | (notes.pitch << 7) | notes.vel,  # NOTE_ON
                notes.pitch << 7,  # NOTE_OFF
                t_bin << 7,  # TEMPO: code 0 sorts before every track at its time
            ]
        )
        key = np.sort(((time * (N_CODES + 1) + code1) << 15) | low)
        return self._emit(key, len(t_time) > 0, bos, eos)

    def _emit(self, key: np.ndarray, has_tempo: bool, bos: bool, eos: bool) -> np.ndarray:
        """Token ids for sorted event keys.

        Each event writes: TIME_SHIFTs up to its time, PROGRAM if the track changed, VELOCITY
        if a NOTE_ON's velocity changed, then the event itself. Token counts per event give
        every token's position (a cumulative sum), so all tokens are scattered in place.
        """
        cfg, m = self.config, self.config.max_shift_steps
        hi = key >> 15
        time = hi // (N_CODES + 1)
        code1 = hi - time * (N_CODES + 1)
        is_on = (key & (1 << 14)) != 0
        pitch = (key >> 7) & 127
        delta = time.copy()
        delta[1:] -= time[:-1]
        n_shift = (delta + (m - 1)) // m
        n_tok = n_shift + 1
        prog = np.zeros(0, np.int64)
        if cfg.programs:
            notes = np.flatnonzero(code1) if has_tempo else slice(None)
            c = code1[notes]
            prog = np.arange(len(key))[notes][c != _previous(c)]
            n_tok[prog] += 1
        vel = np.zeros(0, np.int64)
        if cfg.velocity_bins:
            ons = np.flatnonzero(is_on)
            v = key[ons] & 127
            vel = ons[v != _previous(v)]
            n_tok[vel] += 1
        main = np.cumsum(n_tok)  # position of each event's own token, after BOS
        main -= 1 - int(bos)
        first = main - n_tok + n_shift + 1  # each event's first token after its shifts
        n_out = (int(main[-1]) + 1 if len(key) else int(bos)) + int(eos)
        out = np.full(n_out, self._shift + m - 1, np.int64)  # full-length shifts by default
        out[main] = np.where(is_on, self._on, self._off) + pitch
        if has_tempo:
            tempos = np.flatnonzero(code1 == 0)
            out[main[tempos]] = self._tempo + pitch[tempos]
        out[main[vel] - 1] = self._velo + (key[vel] & 127)
        out[first[prog]] = self._prog + code1[prog] - 1
        shifted = np.flatnonzero(delta)
        out[first[shifted] - 1] = self._shift - 1 + delta[shifted] - (n_shift[shifted] - 1) * m
        if bos:
            out[0] = BOS
        if eos:
            out[-1] = EOS
        return out

    # ------------------------------------------------------------------ decode
    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        """A score from token ids; tolerant of anything but out-of-vocabulary ids.

        PAD/BOS are skipped, decoding stops at the first EOS, a NOTE_OFF with no note of its
        pitch open (begun before the current time) in the current track is ignored, and a note
        still open at the end lasts until the sequence's final time (at least one step).
        Before any VELOCITY / PROGRAM token, notes use ``default_velocity`` (at its bin
        centre) / program 0. The result is in canonical form: ``prepare`` leaves it unchanged.
        """
        ids = self.check_ids(ids).ravel()  # as remi and chorale take nested ids
        is_eos = ids == EOS
        if is_eos.any():
            ids = ids[: int(is_eos.argmax())]
        kind, value = self._kind[ids], self._value[ids]
        time = np.cumsum(self._steps[ids])
        final = int(time[-1]) if len(time) else 0
        if final >= _MAX_STEPS:
            raise MusegenError(f"token sequence too long to decode ({final} steps)")
        ev = np.flatnonzero(self._is_note[ids])
        code = _latest(np.flatnonzero(kind == _PROG), ev, value, 0)
        default_vel = int(self._vel_bin[self.config.default_velocity])
        vel = _latest(np.flatnonzero(kind == _VEL), ev, value, default_vel)
        notes = _pair(time[ev], code, value[ev], kind[ev] == _ON, vel, final)
        return self._to_score(notes, self._decoded_tempos(kind, value, time))

    def _decoded_tempos(
        self, kind: np.ndarray, value: np.ndarray, time: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tempo tokens as (step, bin), the last one at each step."""
        where = np.flatnonzero(kind == _TEMPO)
        t, b = time[where], value[where]
        last_at_time = np.append(t[1:] != t[:-1], True) if len(t) else np.zeros(0, bool)
        return t[last_at_time], b[last_at_time]

    # ------------------------------------------------------------------ grammar
    def grammar(self) -> EventGrammar:
        return EventGrammar(self)


def _pair(
    time: np.ndarray,
    code: np.ndarray,
    pitch: np.ndarray,
    is_on: np.ndarray,
    vel: np.ndarray,
    final: int,
) -> _Notes:
    """Notes from on/off events: paired first-in-first-out per (track, pitch), vectorised.

    Events are sorted by (track, pitch, time, offs first, velocity), so an offset closes the
    oldest note of its pitch begun before its time. Offsets with nothing open are found with a
    per-group running sum ``S`` reflected at zero: open count ``c_k = S_k - min(0, min S_j)``.
    """
    if not is_on.any():
        return _empty_notes()
    group = code * 128 + pitch  # < 2**15
    key = (group << (_TIME_BITS + 8)) | (time << 8) | (is_on.astype(np.int64) << 7) | vel
    key.sort()
    on = (key & (1 << 7)) != 0
    t = (key >> 8) & (_MAX_STEPS - 1)
    group = key >> (_TIME_BITS + 8)
    first = np.empty(len(key), bool)
    first[0] = True
    np.not_equal(group[1:], group[:-1], out=first[1:])
    x = on * 2 - 1
    cs = np.cumsum(x)
    starts = np.flatnonzero(first)
    gid = np.cumsum(first) - 1
    s = cs - (cs[starts] - x[starts])[gid]  # running sum within each group
    on_idx = np.flatnonzero(on)
    lasts = np.append(starts[1:], len(key)) - 1
    if s.min() >= 0 and not s[lasts].any():  # every group balanced: zip ons with offs
        end = t[np.flatnonzero(~on)]
    else:
        end = _pair_tolerant(on, on_idx, t, s, gid, starts, final)
    start = t[on_idx]
    g = group[on_idx]
    return _Notes(start, np.maximum(end, start + 1), g & 127, key[on_idx] & 127, g >> 7)


def _pair_tolerant(
    on: np.ndarray,
    on_idx: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    gid: np.ndarray,
    starts: np.ndarray,
    final: int,
) -> np.ndarray:
    """Offset time of each onset when offsets may be stray and notes left open."""
    sep = 2 * len(s) + 2  # keeps running minima from leaking across groups
    low = np.minimum(np.minimum.accumulate(s - gid * sep) + gid * sep, 0)
    open_before = _previous(s - low, 0)
    open_before[starts] = 0
    off_idx = np.flatnonzero(~on & (open_before > 0))
    n_groups = len(starts)
    on_g = gid[on_idx]
    on_count = np.bincount(on_g, minlength=n_groups)
    off_count = np.bincount(gid[off_idx], minlength=n_groups)
    rank = np.arange(len(on_idx)) - (np.cumsum(on_count) - on_count)[on_g]
    matched = np.flatnonzero(rank < off_count[on_g])
    off_first = np.cumsum(off_count) - off_count
    end = np.full(len(on_idx), final, np.int64)
    end[matched] = t[off_idx[off_first[on_g[matched]] + rank[matched]]]
    return end


class EventGrammar(Grammar):
    """Which ids may follow, for sampling sequences that always decode cleanly.

    * before anything: only BOS; after EOS: only PAD;
    * NOTE_ON: any pitch (two notes of one pitch may overlap; they pair first-in-first-out);
    * NOTE_OFF: only for a pitch with a note open in the current track that began before the
      current time (so no note is empty and no offset is ignored);
    * EOS: only when no note is open (so every note's end comes from the tokens);
    * TIME_SHIFT, VELOCITY, PROGRAM, TEMPO: anywhere after BOS.

    Every sequence :meth:`EventTokenizer.encode` writes is grammatical. ``mask()`` costs one
    copy of a vocabulary-sized bool array; ``step()`` is O(1) apart from a time shift, which
    is O(notes begun at the current time).
    """

    def __init__(self, tok: EventTokenizer) -> None:
        self._kind, self._value = tok._kind_list, tok._value_list
        self._labels = tok.vocab
        self._body = tok._body_mask
        self._off = tok._off
        self._started = False
        self._done = False
        self._track = 0
        self._closable = np.zeros((N_CODES, 128), np.int32)  # open, begun before now
        self._fresh: dict[tuple[int, int], int] = {}  # open, begun at the current time
        self._open = 0

    @property
    def done(self) -> bool:
        return self._done

    def mask(self) -> np.ndarray:
        if not self._started or self._done:
            m = np.zeros(len(self._body), bool)
            m[PAD if self._done else BOS] = True
            return m
        m = self._body.copy()
        m[self._off : self._off + 128] = self._closable[self._track] > 0
        m[EOS] = self._open == 0
        return m

    def step(self, token: int) -> None:
        if not 0 <= token < len(self._kind):
            raise ValueError(f"token id {token} is outside the vocabulary")
        reason = self._consume(token)
        if reason:
            raise ValueError(f"{self._labels.token(token)} (id {token}) not allowed: {reason}")

    def _consume(self, token: int) -> str:
        """Apply ``token`` to the state; returns why it is not allowed (empty if it is)."""
        if self._done:
            return "" if token == PAD else "only PAD may follow EOS"
        if not self._started:
            self._started = token == BOS
            return "" if self._started else "a sequence starts with BOS"
        kind, value = self._kind[token], self._value[token]
        if kind == _ON:
            key = (self._track, value)
            self._fresh[key] = self._fresh.get(key, 0) + 1
            self._open += 1
        elif kind == _OFF:
            if self._closable[self._track, value] <= 0:
                return "no note of this pitch begun before now is open in the current track"
            self._closable[self._track, value] -= 1
            self._open -= 1
        elif kind == _SHIFT:
            for (track, pitch), n in self._fresh.items():
                self._closable[track, pitch] += n
            self._fresh.clear()
        elif kind == _PROG:
            self._track = value
        elif token == EOS:
            if self._open:
                return f"{self._open} note(s) still open"
            self._done = True
        elif kind == _SPECIAL:
            return "PAD/BOS only at the ends of a sequence"
        return ""


__all__ = ["TPQ", "EventConfig", "EventGrammar", "EventTokenizer"]
