"""Grid tokenizers: a piano roll (``"roll"``) and four-voice chorale grids (``"satb"``).

Unlike the event tokenizers, **grid tokenizers return 2-D arrays of cell ids**: ``encode`` gives
``[frames, keys]`` (roll) or ``[steps, 4]`` (satb), one row per time step of
``1 / steps_per_quarter`` quarter notes. ``decode`` takes that grid or the same cells flattened
row-major (what a sampler produces), and the grammar walks the cells in that row-major order.
Decoded scores are at 480 ticks per quarter with the configured velocity.

Everything is vectorised: grids are built with fancy indexing, ``np.add.at`` and
``np.maximum.at``; notes are read back from onset/continuation flags with ``np.diff``,
``np.flatnonzero`` and ``np.searchsorted``. The only Python loops run over the four voices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import VOICES, Score, Track, make_notes
from musegen.tokenizers.base import Grammar, Tokenizer, TokenizerConfig, Vocab

DECODE_TPQ = 480
VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")

# Roll cell states (also the roll's token ids).
SILENT, SUSTAIN, ONSET = 0, 1, 2


# --------------------------------------------------------------------------- shared helpers
def _check_common(owner: str, steps_per_quarter: int, velocity: int) -> None:
    if steps_per_quarter <= 0 or DECODE_TPQ % steps_per_quarter:
        raise MusegenError(
            f"{owner}.steps_per_quarter must divide {DECODE_TPQ} (e.g. 1, 2, 4, 8, 12), "
            f"got {steps_per_quarter}"
        )
    if not 1 <= velocity <= 127:
        raise MusegenError(f"{owner}.velocity must be 1..127, got {velocity}")


def pitch_pair(owner: str, value: Any) -> tuple[int, int]:
    """An inclusive ``(low, high)`` MIDI range from a config value (JSON gives lists)."""
    pair = tuple(int(x) for x in value)
    if len(pair) != 2 or not 0 <= pair[0] <= pair[1] <= 127:
        raise MusegenError(
            f"{owner} must be [low, high] with 0 <= low <= high <= 127, got {value!r}"
        )
    return pair  # type: ignore[return-value]


def _to_frames(ticks: np.ndarray, tpq: int, steps_per_quarter: int) -> np.ndarray:
    """Ticks to the nearest frame index (halves round up), in exact integer arithmetic."""
    t = np.asarray(ticks, dtype=np.int64)
    return (2 * t * steps_per_quarter + tpq) // (2 * tpq)


def _note_frames(notes: np.ndarray, tpq: int, steps_per_quarter: int) -> tuple[np.ndarray, ...]:
    """Onset and offset frame of each note; every note lasts at least one frame."""
    on = _to_frames(notes["start"], tpq, steps_per_quarter)
    off = _to_frames(notes["start"] + notes["duration"], tpq, steps_per_quarter)
    return on, np.maximum(off, on + 1)


def _expand(on: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (note index, frame) pair a note covers, without a loop over notes."""
    lengths = off - on
    note = np.repeat(np.arange(len(on)), lengths)
    first = np.cumsum(lengths) - lengths  # flat position of each note's first frame
    frame = np.arange(int(lengths.sum())) - np.repeat(first - on, lengths)
    return note, frame


def _runs(onset: np.ndarray, cont: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Notes from cell flags laid out ``[rows, frames]``: ``(row, start, end)`` frames.

    A note starts at each ``onset`` cell and lasts over the following ``cont`` cells; any
    other cell (silence or the next onset) ends it.
    """
    rows, frames = onset.shape
    width = frames + 1  # one padding break per row keeps every run inside its row
    breaks = np.ones((rows, width), dtype=bool)
    breaks[:, :frames] = ~cont
    padded_onset = np.zeros((rows, width), dtype=bool)
    padded_onset[:, :frames] = onset
    starts = np.flatnonzero(padded_onset)
    stops = np.flatnonzero(breaks)
    ends = stops[np.searchsorted(stops, starts, side="right")]
    row = starts // width
    return row, starts - row * width, ends - row * width


def _as_grid(tokenizer: Tokenizer, ids: np.ndarray | Iterable[int], width: int) -> np.ndarray:
    """Cell ids as a ``[frames, width]`` int64 grid; flat row-major input is reshaped."""
    arr = tokenizer.check_ids(ids if isinstance(ids, np.ndarray) else list(ids))
    if arr.ndim == 1:
        if arr.size % width:
            raise MusegenError(
                f"{tokenizer.name}: {arr.size} cells is not a whole number of {width}-cell rows"
            )
        arr = arr.reshape(-1, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise MusegenError(
            f"{tokenizer.name}: expected a grid of shape [frames, {width}], got {arr.shape}"
        )
    return arr


def _maps_like(source: Score, tpq: int) -> dict[str, list]:
    """The source's tempo/meter/key maps with times rescaled to ``tpq``.

    Grids do not encode them, but ``prepare`` keeps them so a prepared score still plays at
    its tempo and shows its meter.
    """

    def scaled(items: list) -> list:  # type: ignore[type-arg]
        return [replace(x, time=(2 * x.time * tpq + source.tpq) // (2 * source.tpq)) for x in items]

    return {
        "tempos": scaled(source.tempos),
        "time_signatures": scaled(source.time_signatures),
        "key_signatures": scaled(source.key_signatures),
    }


# --------------------------------------------------------------------------- piano roll
@dataclass
class RollConfig(TokenizerConfig):
    """Piano-roll options.

    ``low``..``high`` are the keys kept (default: the 88 piano keys, MIDI 21..108); notes
    outside are dropped. With ``onsets`` a cell is 0 silent / 1 sustained / 2 onset, so repeated
    notes survive; without, cells are 0/1 and touching notes of one pitch merge (the
    Boulanger-Lewandowski binary format). ``tracks="merge"`` (the only mode) puts all pitched
    tracks into one roll and drops drum tracks.
    """

    steps_per_quarter: int = 4
    low: int = 21
    high: int = 108
    onsets: bool = True
    tracks: str = "merge"
    velocity: int = 64

    def __post_init__(self) -> None:
        _check_common("RollConfig", self.steps_per_quarter, self.velocity)
        if not 0 <= self.low <= self.high <= 127:
            raise MusegenError(
                f"RollConfig needs 0 <= low <= high <= 127, got low={self.low}, high={self.high}"
            )
        if self.tracks != "merge":
            raise MusegenError(
                f"RollConfig.tracks={self.tracks!r} is not supported; use 'merge' "
                "(all pitched tracks in one roll)"
            )


class RollGrammar(Grammar):
    """Roll cells in row-major order: SUSTAIN only where that key sounded in the frame before.

    In binary mode (no onsets) every cell state is always allowed.
    """

    def __init__(self, n_keys: int, n_states: int, onsets: bool) -> None:
        self.n_keys = n_keys
        self.n_states = n_states
        self.onsets = onsets
        self.position = 0  # cells consumed so far
        self._sounding = np.zeros(n_keys, dtype=bool)  # per key: sounding in the last frame

    @property
    def key(self) -> int:
        """Key index (0 = ``low``) of the next cell."""
        return self.position % self.n_keys

    def mask(self) -> np.ndarray:
        m = np.ones(self.n_states, dtype=bool)
        if self.onsets and not self._sounding[self.key]:
            m[SUSTAIN] = False
        return m

    def step(self, token: int) -> None:
        if not 0 <= token < self.n_states or not self.mask()[token]:
            frame, key = divmod(self.position, self.n_keys)
            raise ValueError(f"roll cell {token} not allowed at frame {frame}, key {key}")
        self._sounding[self.key] = token != SILENT
        self.position += 1


class RollTokenizer(Tokenizer):
    """Piano roll: ``encode(score)`` is a uint8 ``[frames, keys]`` grid of cell states.

    One stream by design: a cell says whether a key sounds, not how many tracks play it, so
    all pitched tracks merge into one and two tracks in unison give one note (the longest).
    ``satb`` keeps four voices apart; ``remi`` and ``events`` keep tracks and unisons.
    """

    name: ClassVar[str] = "roll"
    config_class: ClassVar[type[TokenizerConfig]] = RollConfig
    config: RollConfig

    @property
    def n_keys(self) -> int:
        return self.config.high - self.config.low + 1

    @property
    def frame_ticks(self) -> int:
        """Length of one frame in decoded ticks."""
        return DECODE_TPQ // self.config.steps_per_quarter

    def build_vocab(self) -> Vocab:
        vocab = Vocab(specials=())
        vocab.add("silent", 1, lambda _v: "SILENT")
        if self.config.onsets:
            vocab.add("sustain", 1, lambda _v: "SUSTAIN")
            vocab.add("onset", 1, lambda _v: "ONSET")
        else:
            vocab.add("on", 1, lambda _v: "ON")
        return vocab

    def _cells(self, score: Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Onset frame, offset frame and key index of every pitched in-range note."""
        cols = [t.notes for t in score.tracks if not t.is_drum and len(t)]
        if not cols:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        notes = np.concatenate(cols)
        notes = notes[(notes["pitch"] >= self.config.low) & (notes["pitch"] <= self.config.high)]
        on, off = _note_frames(notes, score.tpq, self.config.steps_per_quarter)
        return on, off, notes["pitch"].astype(np.int64) - self.config.low

    def encode(self, score: Score) -> np.ndarray:
        on, off, key = self._cells(score)
        n_frames = int(off.max()) if len(off) else 0
        edges = np.zeros((n_frames + 1, self.n_keys), dtype=np.int32)
        np.add.at(edges, (on, key), 1)
        np.add.at(edges, (off, key), -1)
        grid = (np.cumsum(edges[:-1], axis=0) > 0).astype(np.uint8)
        if self.config.onsets:
            grid[on, key] = ONSET
        return grid

    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        grid = _as_grid(self, ids, self.n_keys)
        sounding = grid != SILENT
        # silent -> sounding starts a note (the only onset in binary mode); so does ONSET
        onset = np.diff(sounding.astype(np.int8), axis=0, prepend=0) > 0
        if self.config.onsets:
            onset |= grid == ONSET
        key, start, end = _runs(onset.T, (sounding & ~onset).T)
        return self._score(start, end, key)

    def prepare(self, score: Score) -> Score:
        """The score as the roll sees it, computed on notes (not via the grid).

        Pitched tracks merged into one, notes outside ``low..high`` dropped, times quantized to
        frames, and per pitch: notes with one onset become the longest of them, a new onset
        cuts the sounding note (which may lengthen the later note to the end of what sounded),
        and in binary mode overlapping or touching notes merge.
        """
        on, off, key = self._cells(score)
        order = np.lexsort((off, on, key))
        on, off, key = on[order], off[order], key[order]
        # one note per (key, onset): the longest, i.e. the last in this order
        last = np.ones(len(on), dtype=bool)
        last[:-1] = (key[1:] != key[:-1]) | (on[1:] != on[:-1])
        on, off, key = on[last], off[last], key[last]
        # how far the notes of a key so far reach; keys ascend, so offsetting by key * span
        # lets one running maximum restart at every key
        span = int(off.max()) + 1 if len(off) else 1
        reach = np.maximum.accumulate(key * span + off) - key * span
        same_key_next = key[1:] == key[:-1]
        if self.config.onsets:
            end = reach.copy()
            end[:-1] = np.where(same_key_next, np.minimum(reach[:-1], on[1:]), reach[:-1])
        else:
            new_run = np.ones(len(on), dtype=bool)
            new_run[1:] = ~same_key_next | (on[1:] > reach[:-1])
            last_of_run = np.append(new_run[1:], True)[: len(on)]
            on, end, key = on[new_run], reach[last_of_run], key[new_run]
        return self._score(on, end, key, maps=_maps_like(score, DECODE_TPQ))

    def _score(
        self, start: np.ndarray, end: np.ndarray, key: np.ndarray, maps: dict | None = None
    ) -> Score:
        """One-track score from frame-level notes."""
        notes = make_notes(
            start * self.frame_ticks,
            (end - start) * self.frame_ticks,
            key + self.config.low,
            self.config.velocity,
        )
        return Score(tpq=DECODE_TPQ, tracks=[Track(notes, name="Piano")], **(maps or {}))

    def grammar(self) -> RollGrammar:
        return RollGrammar(self.n_keys, len(self.vocab), self.config.onsets)


def from_binary_roll(
    roll: np.ndarray, steps_per_quarter: int, low: int = 21, velocity: int = 64
) -> Score:
    """A score from a Boulanger-Lewandowski 0/1 roll ``[T, keys]`` (column 0 = MIDI ``low``).

    Runs of consecutive 1s become notes. ``steps_per_quarter`` is the roll's frame rate: the
    standard JSB rolls have one frame per quarter (1), Nottingham/MuseData/Piano-midi per eighth (2).
    """
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise MusegenError(f"a binary roll must be 2-D [frames, keys], got shape {roll.shape}")
    tokenizer = RollTokenizer(
        steps_per_quarter=steps_per_quarter,
        low=low,
        high=low + roll.shape[1] - 1,
        onsets=False,
        velocity=velocity,
    )
    return tokenizer.decode((roll != 0).astype(np.uint8))


def to_binary_roll(
    score: Score,
    steps_per_quarter: int,
    low: int = 21,
    high: int = 108,
    n_frames: int | None = None,
) -> np.ndarray:
    """A uint8 0/1 roll ``[T, high - low + 1]`` of the score's pitched notes.

    ``T`` is the frame where the last note ends, or ``n_frames`` (padding with silence or
    cutting) when given, e.g. to keep a source roll's trailing silence.
    """
    tokenizer = RollTokenizer(steps_per_quarter=steps_per_quarter, low=low, high=high, onsets=False)
    roll = tokenizer.encode(score)
    if n_frames is not None:
        out = np.zeros((n_frames, roll.shape[1]), dtype=np.uint8)
        keep = min(n_frames, len(roll))
        out[:keep] = roll[:keep]
        roll = out
    return roll


# --------------------------------------------------------------------------- SATB grid
# Voice ranges of Jsb16thSeparated.json (all splits): S 60..81, A 52..74, T 46..69, B 36..66.
# The defaults add three semitones each way, room for transposition by a minor third.
@dataclass
class SatbConfig(TokenizerConfig):
    """Four-voice grid options; each voice range is an inclusive ``(low, high)`` MIDI pair.

    Notes outside their voice's range are dropped. With ``hold=False`` (the Coconet format) a
    cell is a pitch or silent and equal neighbouring pitches are one note: a repeated note is
    indistinguishable from a held one. ``hold=True`` adds a HOLD token (the voice's note goes
    on) so a pitch token always starts a note.
    """

    steps_per_quarter: int = 4
    soprano: tuple[int, int] = (57, 84)
    alto: tuple[int, int] = (49, 77)
    tenor: tuple[int, int] = (43, 72)
    bass: tuple[int, int] = (33, 69)
    hold: bool = False
    velocity: int = 64

    def __post_init__(self) -> None:
        _check_common("SatbConfig", self.steps_per_quarter, self.velocity)
        for name in ("soprano", "alto", "tenor", "bass"):
            setattr(self, name, pitch_pair(f"SatbConfig.{name}", getattr(self, name)))

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """Voice ranges in S, A, T, B order."""
        return (self.soprano, self.alto, self.tenor, self.bass)


class SatbGrammar(Grammar):
    """SATB cells in row-major ``[step, voice]`` order.

    A cell is SILENT or a pitch inside its voice's range; HOLD only after a sounding cell of
    the same voice.
    """

    def __init__(self, allowed: np.ndarray, hold_id: int | None) -> None:
        self._allowed = allowed  # [4, vocab] pitch/silent mask per voice
        self._hold_id = hold_id
        self.position = 0
        self._sounding = np.zeros(len(VOICES), dtype=bool)

    @property
    def voice(self) -> int:
        """Voice index (0 = soprano) of the next cell."""
        return self.position % len(VOICES)

    def mask(self) -> np.ndarray:
        m = self._allowed[self.voice].copy()
        if self._hold_id is not None:
            m[self._hold_id] = self._sounding[self.voice]
        return m

    def step(self, token: int) -> None:
        if not 0 <= token < self._allowed.shape[1] or not self.mask()[token]:
            step, voice = divmod(self.position, len(VOICES))
            raise ValueError(f"SATB token {token} not allowed at step {step}, voice {voice}")
        self._sounding[self.voice] = token != SatbTokenizer.SILENT_ID
        self.position += 1


class SatbTokenizer(Tokenizer):
    """Four-voice grid: ``encode(score)`` is an int16 ``[steps, 4]`` grid of token ids.

    Ids: 0 = SILENT, ``1 + pitch`` for pitches 0..127, then HOLD (``hold=True`` only).

    Voices come from track voice labels when any track has one (tracks sharing a label are
    merged, unlabelled tracks ignored); otherwise the score must have exactly four pitched
    tracks, ordered by mean pitch from high (soprano) to low (bass). Where a voice has a chord,
    soprano and alto keep the highest note of each step, tenor and bass the lowest. Each voice
    has its own cell per step, so voices in unison stay apart.
    """

    name: ClassVar[str] = "satb"
    config_class: ClassVar[type[TokenizerConfig]] = SatbConfig
    config: SatbConfig

    SILENT_ID: ClassVar[int] = 0
    PITCH_OFFSET: ClassVar[int] = 1

    @property
    def hold_id(self) -> int | None:
        return self.vocab.offset("hold") if self.config.hold else None

    def build_vocab(self) -> Vocab:
        vocab = Vocab(specials=())
        vocab.add("silent", 1, lambda _v: "SILENT")
        vocab.add("pitch", 128)
        if self.config.hold:
            vocab.add("hold", 1, lambda _v: "HOLD")
        return vocab

    # ---------------------------------------------------------------- voices
    def _voice_notes(self, score: Score) -> list[np.ndarray]:
        """Notes of S, A, T, B (in the score's ticks)."""
        if any(t.voice for t in score.tracks):
            return [
                np.concatenate([t.notes for t in score.tracks if t.voice == v] or [_no_notes()])
                for v in VOICES
            ]
        pitched = [t for t in score.tracks if not t.is_drum]
        if len(pitched) != len(VOICES):
            raise MusegenError(
                f"the satb tokenizer needs voice labels (Track.voice = 'S'/'A'/'T'/'B') or "
                f"exactly 4 pitched tracks; this score has {len(pitched)} pitched tracks and no "
                "labels: label the tracks or keep only the four voices"
            )
        means = [float(t.notes["pitch"].mean()) if len(t) else -np.inf for t in pitched]
        order = sorted(range(len(pitched)), key=lambda i: -means[i])
        return [pitched[i].notes for i in order]

    def _cells(self, score: Score) -> tuple[np.ndarray, np.ndarray]:
        """Per step and voice: the pitch (-1 = silent) and whether that note starts there."""
        frames = []
        for v, notes in enumerate(self._voice_notes(score)):
            low, high = self.config.ranges[v]
            notes = notes[(notes["pitch"] >= low) & (notes["pitch"] <= high)]
            frames.append(
                (
                    notes["pitch"].astype(np.int64),
                    *_note_frames(notes, score.tpq, self.config.steps_per_quarter),
                )
            )
        n_steps = max((int(off.max()) for _, _, off in frames if len(off)), default=0)
        pitch = np.full((n_steps, len(VOICES)), -1, dtype=np.int64)
        onset = np.zeros((n_steps, len(VOICES)), dtype=bool)
        for v, (p, on, off) in enumerate(frames):
            pitch[:, v], onset[:, v] = _pick_voice(p, on, off, n_steps, top=v < 2)
        return pitch, onset

    # ---------------------------------------------------------------- hooks
    def encode(self, score: Score) -> np.ndarray:
        pitch, onset = self._cells(score)
        ids = np.where(pitch >= 0, pitch + self.PITCH_OFFSET, self.SILENT_ID)
        if self.config.hold:
            before = np.vstack([np.full((1, len(VOICES)), -1), pitch[:-1]])
            held = (pitch >= 0) & (pitch == before) & ~onset
            ids[held] = self.hold_id
        return ids.astype(np.int16)

    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        grid = _as_grid(self, ids, len(VOICES))
        is_pitch = (grid >= self.PITCH_OFFSET) & (grid < self.PITCH_OFFSET + 128)
        pitch = np.where(is_pitch, grid - self.PITCH_OFFSET, -1)
        if self.config.hold:
            # a HOLD cell takes the pitch of the last non-HOLD cell of its voice (silent if none)
            is_hold = grid == self.hold_id
            rows = np.arange(len(grid))[:, None]
            source = np.maximum.accumulate(np.where(is_hold, -1, rows), axis=0)
            cols = np.arange(len(VOICES))[None, :]
            pitch = np.where(source >= 0, pitch[np.maximum(source, 0), cols], -1)
            onset = is_pitch
            cont = is_hold & (pitch >= 0)
        else:
            before = np.vstack([np.full((1, len(VOICES)), -1), pitch[:-1]])
            onset = (pitch >= 0) & (pitch != before)
            cont = (pitch >= 0) & ~onset
        voice, start, end = _runs(onset.T, cont.T)
        return self._score(voice, start, end, pitch[start, voice])

    def prepare(self, score: Score) -> Score:
        """The score as the grid sees it: four voice tracks, quantized, in range, monophonic.

        Defined through the grid (the per-step voice reduction is a grid operation); the tests
        check that reduction against a slow reference implementation.
        """
        out = self.decode(self.encode(score))
        return replace(out, **_maps_like(score, DECODE_TPQ))

    def _score(
        self, voice: np.ndarray, start: np.ndarray, end: np.ndarray, pitch: np.ndarray
    ) -> Score:
        ticks = DECODE_TPQ // self.config.steps_per_quarter
        tracks = []
        for v, (label, name) in enumerate(zip(VOICES, VOICE_NAMES, strict=True)):
            sel = voice == v
            notes = make_notes(
                start[sel] * ticks,
                (end[sel] - start[sel]) * ticks,
                pitch[sel],
                self.config.velocity,
            )
            tracks.append(Track(notes, name=name, voice=label))
        return Score(tpq=DECODE_TPQ, tracks=tracks)

    def grammar(self) -> SatbGrammar:
        allowed = np.zeros((len(VOICES), len(self.vocab)), dtype=bool)
        allowed[:, self.SILENT_ID] = True
        for v, (low, high) in enumerate(self.config.ranges):
            allowed[v, self.PITCH_OFFSET + low : self.PITCH_OFFSET + high + 1] = True
        return SatbGrammar(allowed, self.hold_id)


def _no_notes() -> np.ndarray:
    return make_notes([], [], [])


def _pick_voice(
    pitch: np.ndarray, on: np.ndarray, off: np.ndarray, n_steps: int, top: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One note per step: the highest (``top``) or lowest sounding pitch, -1 where silent.

    Returns that pitch per step and whether a note of that pitch starts there (an onset wins
    over a held note of the same pitch, so a re-struck note cuts the held one).
    """
    note, frame = _expand(on, off)
    starts = frame == on[note]
    if top:  # maximise pitch, then prefer the onset
        best = np.full(n_steps, -1, dtype=np.int64)
        np.maximum.at(best, frame, 2 * pitch[note] + starts)
        sounding = best >= 0
        is_onset = best % 2 == 1
    else:  # minimise pitch, then prefer the onset
        none = 2 * 128
        best = np.full(n_steps, none, dtype=np.int64)
        np.minimum.at(best, frame, 2 * pitch[note] + ~starts)
        sounding = best < none
        is_onset = best % 2 == 0
    return np.where(sounding, best // 2, -1), sounding & is_onset


# --------------------------------------------------------------------------- JSON steps
def full_range_satb(steps_per_quarter: int, **options: Any) -> SatbTokenizer:
    """A Coconet-format tokenizer whose voices take any pitch, so conversions drop nothing
    (``options``: other :class:`SatbTokenizer` settings, e.g. ``velocity``, ``hold``)."""
    full = (0, 127)
    return SatbTokenizer(
        steps_per_quarter=steps_per_quarter,
        soprano=full,
        alto=full,
        tenor=full,
        bass=full,
        **options,
    )


def steps_to_score(
    steps: Sequence[Sequence[int]] | np.ndarray, steps_per_quarter: int = 4, velocity: int = 64
) -> Score:
    """A four-voice score from ``Jsb16thSeparated.json`` steps: ``[S, A, T, B]`` pitches per
    step, -1 = silent voice. Equal neighbouring pitches of a voice become one note."""
    arr = np.asarray(steps, dtype=np.int64)
    if arr.size == 0:
        arr = arr.reshape(0, len(VOICES))
    if arr.ndim != 2 or arr.shape[1] != len(VOICES):
        raise MusegenError(f"steps must be a list of [S, A, T, B] pitches, got shape {arr.shape}")
    if arr.size and (arr.min() < -1 or arr.max() > 127):
        raise MusegenError("step pitches must be MIDI 0..127 or -1 for a silent voice")
    ids = np.where(arr >= 0, arr + SatbTokenizer.PITCH_OFFSET, SatbTokenizer.SILENT_ID)
    return full_range_satb(steps_per_quarter, velocity=velocity).decode(ids)


def score_to_steps(score: Score, steps_per_quarter: int = 4) -> list[list[int]]:
    """The ``Jsb16thSeparated.json`` layout of a four-voice score (see :class:`SatbTokenizer`
    for how voices are found): one ``[S, A, T, B]`` list per step, -1 = silent."""
    ids = full_range_satb(steps_per_quarter).encode(score).astype(np.int64)
    pitch = np.where(ids == SatbTokenizer.SILENT_ID, -1, ids - SatbTokenizer.PITCH_OFFSET)
    return pitch.tolist()
