"""REMI encoding: scores to their canonical form, and the canonical form to token ids.

There is one encoder, and it takes many pieces: a single piece is a batch of one. Numpy's
per-call cost is then paid once per batch, not once per piece, and ``prepare``, ``encode`` and
``encode_many`` cannot drift apart because they share every line.

The canonical form (what ``decode(encode(s))`` returns):

* onsets and offsets snap to the nearest grid step (ties go later); every note lasts at least
  one step and at most ``max_duration_quarters`` (longer notes are clipped);
* notes outside ``pitch_range`` or starting before tick 0 are dropped;
* velocities become the centre of their bin (64 when ``velocity_bins == 0``);
* tempos become the nearest of ``tempo_bins`` log-spaced values; the first tempo holds from tick
  0 (120 qpm if the score has none); changes that keep the bin are dropped, and so are changes
  after the last bar (no tempo map at all when ``tempo_bins == 0``);
* a time signature outside ``time_signatures`` becomes the supported one with the nearest bar
  length (ties: same denominator first, then the smaller numerator); 4/4 is assumed before
  the first one. A change takes effect at the first bar line at or after it (REMI cannot
  describe an incomplete bar); changes at or after the end of the last note are dropped;
* tracks are merged by (program, is_drum) key (all into one program-0 track when
  ``programs=False``) and empty tracks vanish. Identical notes (two voices of one program in
  unison, say) are kept up to ``unisons`` copies (the merged track then holds both); further
  copies are dropped. Track names, voice labels and key signatures are not encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from musegen.score import NOTE_DTYPE, Score
from musegen.tokenizers.base import BOS, EOS
from musegen.tokenizers.remi.arrays import (
    first_of_runs,
    last_of_runs,
    sorted_capped,
    sorted_unique,
)
from musegen.tokenizers.remi.vocab import (
    DRUMS,
    K_BAR,
    K_DUR,
    K_PITCH,
    K_POS,
    K_PROG,
    K_TEMPO,
    K_TS,
    K_VEL,
    RemiVocab,
)

_NOTE_RECORD = np.dtype((np.void, NOTE_DTYPE.itemsize))  # a note as raw bytes
Meter = tuple[list[int], list[int]]  # bar-line steps of meter changes (first 0), signatures


@dataclass
class Canonical:
    """One piece as REMI sees it: note columns and maps on the grid (times in steps)."""

    onset: np.ndarray  # int64 steps
    duration: np.ndarray  # int64 steps, 1..max
    pitch: np.ndarray  # int64 MIDI pitch
    velocity: np.ndarray  # int64 velocity bin
    program: np.ndarray  # int64 0..128 (128 = drums)
    ts_steps: np.ndarray  # int64 bar-line steps of meter changes, first is 0
    ts_index: np.ndarray  # int64 index into the supported signatures
    tempo_steps: np.ndarray  # int64 steps, first is 0
    tempo_index: np.ndarray  # int64 tempo bin

    @property
    def end(self) -> int:
        """Step at which the last note ends (0 without notes)."""
        return int((self.onset + self.duration).max()) if len(self.onset) else 0


@dataclass
class CanonicalBatch:
    """Many pieces as REMI sees them. Notes are sorted by (piece, onset, program, pitch,
    duration, velocity), none more than ``unisons`` times; ``pitch`` counts from the pitch block's lowest pitch.
    Tempo changes lie on the batch's time axis, where piece ``p``'s step ``s`` is
    ``p * span + s``, with ``span`` the longest piece's ``region``."""

    piece: np.ndarray
    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    program: np.ndarray
    ends: list[int]  # step at which each piece's last note ends
    meters: list[Meter]  # each piece's meter changes
    regions: list[int]  # end of each piece's last bar: the span its tokens cover
    tempo_at: np.ndarray
    tempo_index: np.ndarray

    @property
    def span(self) -> int:
        return max(self.regions)

    def only_piece(self, pitch_lo: int) -> Canonical:
        """The canonical form of a batch of one."""
        steps, index = self.meters[0]
        return Canonical(
            self.onset,
            self.duration,
            self.pitch + pitch_lo,
            self.velocity,
            self.program,
            np.array(steps, np.int64),
            np.array(index, np.int64),
            self.tempo_at,
            self.tempo_index,
        )


# ---------------------------------------------------------------------- the canonical form
def canonical_batch(vocab: RemiVocab, scores: list[Score]) -> CanonicalBatch | None:
    """The canonical form of every score at once; None when the notes' sort keys of several
    pieces would not fit 63 bits (then encode them one at a time)."""
    notes = _note_columns(vocab, scores)
    if notes is None:
        return None
    piece, onset, duration, pitch, velocity, program = notes
    ends = [0] * len(scores)
    if len(onset):
        firsts = np.flatnonzero(first_of_runs(piece))
        last_end = np.maximum.reduceat(onset + duration, firsts)
        for p, e in zip(piece[firsts].tolist(), last_end.tolist(), strict=True):
            ends[p] = e
    meters = [meter_changes(vocab, score, end) for score, end in zip(scores, ends, strict=True)]
    regions = []
    for (steps, index), end in zip(meters, ends, strict=True):
        start, length = steps[-1], vocab.bar_lengths[index[-1]]
        regions.append(start + -(-(max(end, 1) - start) // length) * length)
    tempos = _tempo_changes(vocab, scores, regions)
    return CanonicalBatch(
        piece, onset, duration, pitch, velocity, program, ends, meters, regions, *tempos
    )


def _note_columns(vocab: RemiVocab, scores: list[Score]) -> tuple[np.ndarray, ...] | None:
    """All notes quantized, binned and sorted, copies beyond ``unisons`` dropped: (piece,
    onset, duration, pitch, velocity, program) columns; None when several pieces' keys would
    not fit 63 bits."""
    arrays, tracks_piece, tracks_program, tracks_tpq = [], [], [], []
    programs = vocab.config.programs
    for p, score in enumerate(scores):
        for t in score.tracks:
            if len(t.notes):
                arrays.append(t.notes)
                tracks_piece.append(p)
                tracks_program.append((DRUMS if t.is_drum else t.program) if programs else 0)
                tracks_tpq.append(score.tpq)
    if not arrays:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, empty, empty
    sizes = [len(a) for a in arrays]
    if len(arrays) == 1:
        notes = arrays[0]
    else:  # as raw records: concatenating structured arrays is slow in numpy 2
        notes = np.concatenate([a.view(_NOTE_RECORD) for a in arrays]).view(NOTE_DTYPE)
    start, length = notes["start"], notes["duration"]
    tpqs = set(tracks_tpq)
    if len(tpqs) == 1:
        tpq = tpqs.pop()
        onset = vocab.to_steps(np.asarray(start, np.int64), tpq)
        duration = vocab.to_steps(np.asarray(start + length, np.int64), tpq) - onset
    else:  # to_steps' general rule, which its shortcut equals where that applies
        ppq2 = 2 * vocab.config.positions_per_quarter
        tpq_of = np.repeat(np.array(tracks_tpq, np.int64), sizes)
        onset = (start * ppq2 + tpq_of) // (2 * tpq_of)
        duration = ((start + length) * ppq2 + tpq_of) // (2 * tpq_of) - onset
    duration = np.minimum(np.maximum(duration, 1), vocab.max_steps)
    pitch = notes["pitch"].astype(np.int64) - vocab.pitch_lo
    velocity = vocab.velocity_bin[np.minimum(np.maximum(notes["velocity"], 0), 127)]
    program = np.repeat(np.array(tracks_program, np.int64), sizes)
    n_pitch, n_dur, n_vel = vocab.n_pitch, vocab.max_steps, len(vocab.velocities)
    keep = (pitch >= 0) & (pitch < n_pitch) & (onset >= 0)
    if len(scores) == 1:
        span, piece = 1, None
    else:
        piece = np.repeat(np.array(tracks_piece, np.int64), sizes)
        if not keep.all():
            piece, onset = piece[keep], onset[keep]
        span = int(onset.max()) + 1 if len(onset) else 1
        if len(scores) * span * 129 * n_pitch * n_dur * n_vel >= 1 << 62:
            return None
        onset = piece * span + onset

    # one int64 key per note sorts everything at once and finds the copies
    if piece is not None and not keep.all():
        program, pitch, duration, velocity = (
            program[keep],
            pitch[keep],
            duration[keep],
            velocity[keep],
        )
    key = ((onset * 129 + program) * n_pitch + pitch) * n_dur + duration - 1
    key = key * n_vel + velocity
    key = key if piece is not None or keep.all() else key[keep]
    key = sorted_capped(key, vocab.config.unisons)
    key, velocity = np.divmod(key, n_vel)
    key, duration = np.divmod(key, n_dur)
    key, pitch = np.divmod(key, n_pitch)
    onset, program = np.divmod(key, 129)
    if piece is None:
        piece = np.zeros(len(onset), np.int64)
    else:
        piece, onset = np.divmod(onset, span)
    return piece, onset, duration + 1, pitch, velocity, program


def meter_changes(vocab: RemiVocab, score: Score, end: int) -> Meter:
    """Meter changes moved to bar lines, redundant ones and those at or after ``end`` dropped
    (plain Python: a score has a few at most)."""
    sigs = [
        (vocab.to_steps(ts.time, score.tpq), vocab.signature_index(ts.numerator, ts.denominator))
        for ts in score.time_signatures
    ]
    if not sigs or sigs[0][0] > 0:
        sigs.insert(0, (0, vocab.default_signature))
    steps, index = [0], [sigs[0][1]]
    for t, sig in sigs[1:]:
        start, length = steps[-1], vocab.bar_lengths[index[-1]]
        at = start + max(0, -(-(t - start) // length)) * length  # first bar line at or after t
        if at == start:
            index[-1] = sig  # a later change at the same bar line wins
        else:
            steps.append(at)
            index.append(sig)
        if len(index) > 1 and index[-1] == index[-2]:
            steps.pop()
            index.pop()
    limit = max(end, 1)
    n = sum(1 for s in steps if s < limit)
    return steps[:n], index[:n]


def _tempo_changes(
    vocab: RemiVocab, scores: list[Score], regions: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Binned tempo changes of every piece on the batch's axis: the first at the piece's step
    0, none that keeps the bin, none after the piece's last bar."""
    if not vocab.config.tempo_bins:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    piece, time, qpm, tpq = [], [], [], []
    for p, score in enumerate(scores):
        tempos = [(t.time, t.qpm) for t in score.tempos if t.qpm > 0] or [(0, 120.0)]
        piece += [p] * len(tempos)
        time += [0] + [t for t, _q in tempos[1:]]  # the first holds from 0
        qpm += [q for _t, q in tempos]
        tpq += [score.tpq] * len(tempos)
    span = max(regions)
    index = np.searchsorted(vocab.tempo_mid, np.log(qpm))
    pieces = np.array(piece, np.int64)
    if len(piece) == len(regions):  # one tempo per piece, at step 0
        return pieces * span, index
    ticks, tpqs = np.array(time, np.int64), np.array(tpq, np.int64)
    ppq = vocab.config.positions_per_quarter
    steps = np.maximum((ticks * (2 * ppq) + tpqs) // (2 * tpqs), 0)
    # the later of two changes at one step wins; then only changes of bin count
    last = last_of_runs(steps) | last_of_runs(pieces)
    steps, index, pieces = steps[last], index[last], pieces[last]
    change = (first_of_runs(index) | first_of_runs(pieces)) & (
        steps < np.array(regions, np.int64)[pieces]
    )
    return pieces[change] * span + steps[change], index[change]


def bar_lines(
    vocab: RemiVocab, meters: list[Meter], ends: list[int], span: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bar-line steps of every bar that starts before its piece's end (at least one bar a
    piece), on the batch's axis; and each bar's piece (None for a batch of one)."""
    seg_piece, seg_start, seg_count, seg_len = [], [], [], []
    for p, ((steps, index), end) in enumerate(zip(meters, ends, strict=True)):
        limits = [*steps[1:], max(end, steps[-1] + 1)]
        for s, e, i in zip(steps, limits, index, strict=True):
            length = vocab.bar_lengths[i]
            seg_start.append(s)
            seg_count.append(-(-(e - s) // length))
            seg_len.append(length)
        seg_piece += [p] * len(steps)
    if len(seg_start) == 1:  # one piece in one meter
        bars = np.arange(seg_count[0], dtype=np.int64) * seg_len[0] + seg_start[0]
    else:
        seg_first = np.cumsum(seg_count) - seg_count
        bars = np.repeat(
            np.array(seg_start, np.int64) + np.array(seg_piece, np.int64) * span, seg_count
        )
        bars += (np.arange(len(bars)) - np.repeat(seg_first, seg_count)) * np.repeat(
            np.array(seg_len, np.int64), seg_count
        )
    if len(meters) == 1:
        return bars, None
    return bars, np.repeat(np.array(seg_piece, np.int64), seg_count)


# ---------------------------------------------------------------------- token ids
def encode_batch(vocab: RemiVocab, batch: CanonicalBatch, bos: bool, eos: bool) -> list[np.ndarray]:
    """The ids of each piece of ``batch``, as views of one array.

    Each bar, position and note is a *unit* that writes 1 to 4 tokens: BAR [TIME_SIG],
    POSITION [TEMPO], [PROGRAM] PITCH [VELOCITY] DURATION. The three time-sorted unit lists
    are merged, each unit's first token index is a cumulative sum, and every kind of token is
    written with one scatter.
    """
    c, off = vocab.config, vocab.off
    piece, onset, duration = batch.piece, batch.onset, batch.duration
    pitch, velocity, program = batch.pitch, batch.velocity, batch.program
    n_pieces, span = len(batch.meters), batch.span
    bars, bars_piece = bar_lines(vocab, batch.meters, batch.ends, span)
    ts_piece = [p for p, (steps, _i) in enumerate(batch.meters) for _s in steps]
    ts_at = np.array([s for steps, _i in batch.meters for s in steps], np.int64)
    ts_at += np.array(ts_piece, np.int64) * span
    ts_index = np.array([i for _s, index in batch.meters for i in index], np.int64)
    tempo_at, tempo_index = batch.tempo_at, batch.tempo_index
    when_note = piece * span + onset

    # units: bar headers, position headers, notes; each unit emits 1..4 tokens
    bar_has_ts = np.zeros(len(bars), bool)
    bar_has_ts[np.searchsorted(bars, ts_at)] = True
    first = first_of_runs(when_note)
    positions = sorted_unique(np.concatenate([when_note[first], tempo_at]))
    pos_tempo = np.full(len(positions), -1, np.int64)
    pos_tempo[np.searchsorted(positions, tempo_at)] = tempo_index
    new_prog = first | first_of_runs(program) if c.programs else np.zeros(len(onset), bool)
    has_vel = int(bool(c.velocity_bins))

    # merge the three time-sorted unit lists (stable sort of sorted runs: a linear merge)
    when = np.concatenate([bars * 3, positions * 3 + 1, when_note * 3 + 2])
    sizes = np.concatenate([1 + bar_has_ts, 1 + (pos_tempo >= 0), 2 + has_vel + new_prog])
    order = np.argsort(when, kind="stable")
    starts = np.empty(len(order), np.int64)
    starts[order] = np.cumsum(sizes[order]) - sizes[order]
    head, frame = int(bos), int(bos) + int(eos)
    if bars_piece is None:
        starts += head
        bounds = [0, int(sizes.sum()) + frame]
    else:  # each piece's units move past the BOS/EOS of the pieces before it
        unit_piece = np.concatenate([bars_piece, positions // span, piece])
        starts += unit_piece * frame + head
        per_piece = np.bincount(unit_piece, weights=sizes, minlength=n_pieces)
        bounds = np.concatenate([[0], np.cumsum(per_piece.astype(np.int64) + frame)]).tolist()
    out = np.empty(bounds[-1], np.int64)
    if bos:
        out[bounds[:-1]] = BOS
    if eos:
        out[np.array(bounds[1:]) - 1] = EOS

    nb, npos = len(bars), len(positions)
    s_bar, s_pos, s_note = starts[:nb], starts[nb : nb + npos], starts[nb + npos :]
    out[s_bar] = off[K_BAR]
    out[s_bar[bar_has_ts] + 1] = off[K_TS] + ts_index
    bar_of_pos = np.searchsorted(bars, positions, side="right") - 1
    out[s_pos] = off[K_POS] + positions - bars[bar_of_pos]
    if len(tempo_at):
        out[s_pos[pos_tempo >= 0] + 1] = off[K_TEMPO] + tempo_index
    if c.programs:
        out[s_note[new_prog]] = off[K_PROG] + program[new_prog]
    s_note = s_note + new_prog
    out[s_note] = off[K_PITCH] + pitch
    if has_vel:
        out[s_note + 1] = off[K_VEL] + velocity
    out[s_note + 1 + has_vel] = off[K_DUR] + duration - 1
    return [out[lo:hi] for lo, hi in pairwise(bounds)]
