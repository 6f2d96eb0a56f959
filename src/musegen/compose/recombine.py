"""Cope-style recombination: new chorales from beats of Bach's, joined where Bach's own voice
leading allows.

**Lexicon.** Each chorale of the corpus (``jsb-satb``: four voices per 16th note; or the
``bach`` MusicXML chorales) is moved to C major / A minor and cut into segments of one beat
(or ``unit_beats`` beats). A segment keeps the voicing that followed it in the original —
its *destination*, the four pitches that began the next segment — and is labelled by its
harmonic and voice-leading signature: the chord of its first sonority (root, quality,
inversion) and the voice motion into its destination. The final chord of a chorale (from the
beat where it starts to the end) is one *ending* segment.

**Recombination** (Cope's voice hooking). Segment B may follow segment A only if B begins
with exactly A's destination, so every join moves the four voices exactly as Bach moved them
at that point. Segments whose own motion or join has consecutive fifths/octaves, crossed
voices or silent voices are left out of the lexicon. The piece ends with an ending segment
on a root-position tonic triad, and the segment before it starts on a root-position dominant
with its leading tone (an authentic cadence); it begins with a chorale's opening segment. A backward pass counts,
for every segment, whether an ending can be reached from it in exactly ``k`` more segments
(vectorised over the lexicon), so the forward random walk never dead-ends; choices prefer
segments that are *not* Bach's own continuation, so the result recombines rather than quotes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musegen.compose.chords import chord_symbol_name, label_chords
from musegen.compose.scores import build_score
from musegen.compose.search import make_rng
from musegen.errors import MusegenError
from musegen.score import PITCH_NAMES, Score
from musegen.theory import Key, find_key, nearest_shift

STEPS_PER_BEAT = 4  # 16th notes
MAX_SEGMENTS = 512
DEFAULT_CORPUS = "jsb-satb"
REFERENCE_TONIC = {False: 0, True: 9}  # C major, A minor


# --------------------------------------------------------------------------- corpus
def chorale_steps(
    corpus: str = DEFAULT_CORPUS, split: str | None = "train", max_pieces: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """(piece id, int ``[T, 4]`` S/A/T/B pitches per 16th, -1 = silent) of each chorale."""
    from musegen.data.sources import get_source

    src = get_source(corpus)
    pieces = [p for p in src.pieces() if split is None or p.split == split][:max_pieces]
    out = []
    if hasattr(src, "steps"):
        for p in pieces:
            out.append((p.id, np.asarray(src.steps(p), np.int64)))
        return out
    from musegen.tokenizers.grid import score_to_steps

    for p in pieces:
        try:
            steps = np.asarray(score_to_steps(src.load(p), STEPS_PER_BEAT), np.int64)
        except MusegenError:
            continue
        if steps.ndim == 2 and steps.shape[1] == 4 and len(steps):
            out.append((p.id, steps))
    return out


def has_parallels(a: np.ndarray, b: np.ndarray) -> bool:
    """Consecutive perfect fifths/octaves (any two voices both moving) from sonority ``a``
    to ``b`` (four pitches each, S A T B)."""
    for i in range(4):
        for j in range(i + 1, 4):
            if a[i] == b[i] or a[j] == b[j]:
                continue
            p, q = abs(a[i] - a[j]) % 12, abs(b[i] - b[j]) % 12
            if p == q and p in (0, 7):
                return True
    return False


def _clean(rows: np.ndarray) -> bool:
    """All voices sound, no crossing, no parallels between successive sonorities."""
    if (rows < 0).any() or (np.diff(rows, axis=1) > 0).any():
        return False
    change = np.flatnonzero((rows[1:] != rows[:-1]).any(axis=1))
    return not any(has_parallels(rows[i], rows[i + 1]) for i in change)


# --------------------------------------------------------------------------- the lexicon
@dataclass
class Lexicon:
    """Segments of a corpus with their signatures (all arrays indexed by segment)."""

    minor: bool
    unit: int  # steps per regular segment
    rows: list[np.ndarray]  # each segment's [steps, 4] pitches
    first: np.ndarray  # id of the first sonority
    dest: np.ndarray  # id of the destination sonority (-1: none)
    ending: np.ndarray  # bool: a final-cadence segment
    dominant: np.ndarray  # bool: starts on a root-position dominant
    opening: np.ndarray  # bool: a chorale's first segment
    static: np.ndarray  # bool: one held sonority that goes on unchanged
    piece: np.ndarray
    index: np.ndarray  # segment number within its chorale
    labels: list[str]
    piece_ids: list[str]
    sources: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


def _in_reference_key(steps: np.ndarray, minor: bool) -> np.ndarray | None:
    """The chorale moved to C major / A minor without its trailing silence, or None if it
    is in the other mode."""
    pcs = np.zeros(12)
    np.add.at(pcs, steps[steps >= 0] % 12, 1)
    key = find_key(pcs)
    if key is None or key[1] != minor:
        return None
    x = steps + nearest_shift(key[0], REFERENCE_TONIC[minor]) * (steps >= 0)
    while len(x) and (x[-1] < 0).any():
        x = x[:-1]
    return x


def _cut(x: np.ndarray, unit: int) -> list[tuple[np.ndarray, np.ndarray | None, int]]:
    """(rows, destination or None, index) of each segment; the last one runs from the beat
    where the final chord begins to the end."""
    changes = np.flatnonzero((x != x[-1]).any(axis=1))
    final_from = int(changes[-1]) + 1 if len(changes) else 0
    b = min(-(-final_from // unit) * unit, len(x) - 1)
    out: list[tuple[np.ndarray, np.ndarray | None, int]] = [
        (x[i * unit : (i + 1) * unit], x[(i + 1) * unit], i) for i in range(b // unit)
    ]
    out.append((x[b:], None, b // unit))
    return out


def _tonic_ending(final: np.ndarray, minor: bool) -> bool:
    """A root-position tonic triad (the fifth may be missing; a Picardy third is allowed)."""
    tonic = REFERENCE_TONIC[minor]
    thirds = (3, 4) if minor else (4,)
    pcs = set((final % 12).tolist())
    return final[3] % 12 == tonic and any(
        {tonic, (tonic + t) % 12} <= pcs <= {tonic, (tonic + t) % 12, (tonic + 7) % 12}
        for t in thirds
    )


def _sonority_ids(
    keep: list[tuple[np.ndarray, np.ndarray | None]],
) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids of each segment's first sonority and of its destination (-1: none)."""

    def code(r: np.ndarray) -> int:
        return ((int(r[0]) * 128 + int(r[1])) * 128 + int(r[2])) * 128 + int(r[3])

    firsts = np.array([code(rows[0]) for rows, _ in keep])
    dests = np.array([code(d) if d is not None else -1 for _, d in keep])
    _, inv = np.unique(np.concatenate([firsts, dests[dests >= 0]]), return_inverse=True)
    dest_id = np.full(len(keep), -1)
    dest_id[dests >= 0] = inv[len(keep) :]
    return inv[: len(keep)], dest_id


def build_lexicon(
    chorales: list[tuple[str, np.ndarray]], minor: bool = False, unit_beats: int = 1
) -> Lexicon:
    """Segment and label the chorales of one mode (see the module docstring)."""
    if not 1 <= unit_beats <= 4:
        raise MusegenError(f"segments must be 1..4 beats, got {unit_beats}")
    unit = unit_beats * STEPS_PER_BEAT
    keep: list[tuple[np.ndarray, np.ndarray | None]] = []
    where: list[tuple[int, int, bool]] = []  # (chorale, index, tonic ending)
    ids: list[str] = []
    skipped = {"other mode": 0, "too short": 0, "unclean segments": 0}
    for pid, steps in chorales:
        x = _in_reference_key(steps, minor)
        if x is None or len(x) < 2 * unit:
            skipped["other mode" if x is None else "too short"] += 1
            continue
        ids.append(pid)
        for rows, dest, i in _cut(x, unit):
            if not _clean(rows if dest is None else np.vstack([rows, dest])):
                skipped["unclean segments"] += 1
                continue
            keep.append((rows, dest))
            where.append((len(ids) - 1, i, dest is None and _tonic_ending(x[-1], minor)))
    if not keep:
        raise MusegenError("no usable segments: the corpus has no clean chorales in this mode")
    first_id, dest_id = _sonority_ids(keep)
    starts = np.array([rows[0] for rows, _ in keep])
    weights = np.zeros((len(keep), 12))
    np.add.at(weights, (np.repeat(np.arange(len(keep)), 4), (starts % 12).ravel()), 1)
    chords = label_chords(weights)
    roots, bass = chords // 4, starts[:, 3] % 12
    dom = (REFERENCE_TONIC[minor] + 7) % 12
    has_lt = weights[:, (dom + 4) % 12] > 0
    dominant = (roots == dom) & np.isin(chords % 4, (0, 3)) & (bass == dom) & has_lt
    labels = []
    for n, (rows, dest) in enumerate(keep):
        slash = "" if bass[n] == roots[n] else f"/{PITCH_NAMES[bass[n]]}"
        motion = "end" if dest is None else ",".join(f"{int(d):+d}" for d in dest - rows[-1])
        labels.append(f"{chord_symbol_name(int(chords[n]))}{slash} [{motion}]")
    return Lexicon(
        minor=minor,
        unit=unit,
        rows=[rows for rows, _ in keep],
        first=first_id,
        dest=dest_id,
        ending=np.array([w[2] for w in where]),
        dominant=dominant,
        opening=np.array([w[1] == 0 for w in where]),
        static=np.array([d is not None and bool((r == d).all()) for r, d in keep]),
        piece=np.array([w[0] for w in where]),
        index=np.array([w[1] for w in where]),
        labels=labels,
        piece_ids=ids,
        sources=len(chorales),
        skipped=skipped,
    )


# --------------------------------------------------------------------------- recombining
@dataclass
class Recombination:
    """A recombined chorale: its segments (lexicon indices) and S/A/T/B steps in C/A."""

    lexicon: Lexicon
    segments: list[int]
    steps: np.ndarray
    seed: int

    def provenance(self) -> list[str]:
        lx = self.lexicon
        return [
            f"{lx.piece_ids[lx.piece[s]]} beat {lx.index[s] + 1}: {lx.labels[s]}"
            for s in self.segments
        ]

    def score(self, key: Key | None = None, qpm: float = 80.0, tpq: int = 480) -> Score:
        """Four tracks labelled S/A/T/B, moved from C major / A minor to ``key``."""
        from musegen.tokenizers.grid import steps_to_score

        minor = self.lexicon.minor
        key = key if key is not None else (REFERENCE_TONIC[minor], minor)
        if key[1] != minor:
            raise MusegenError(
                f"this lexicon is {'minor' if minor else 'major'}; ask for a key in that mode"
            )
        shift = nearest_shift(REFERENCE_TONIC[minor], key[0])
        grid = steps_to_score(self.steps + shift, steps_per_quarter=STEPS_PER_BEAT)
        parts = []
        for t in grid.tracks:
            n = t.notes
            scale = tpq / grid.tpq
            parts.append(
                (t.name or t.voice or "", n["start"] * scale, n["duration"] * scale, n["pitch"])
            )
        names = {"S": "Soprano", "A": "Alto", "T": "Tenor", "B": "Bass"}
        voices = [t.voice for t in grid.tracks]
        parts = [(names.get(v or "", p[0]), *p[1:]) for v, p in zip(voices, parts, strict=True)]
        return build_score(parts, tpq=tpq, qpm=qpm, key=key, voices=voices, program=52)


def recombine(lexicon: Lexicon, segments: int = 16, *, seed: int | None = None) -> Recombination:
    """A new chorale of ``segments`` segments (the last one the final chord).

    Raises :class:`MusegenError` when no chain of that length exists in the lexicon.
    """
    if not 2 <= segments <= MAX_SEGMENTS:
        raise MusegenError(f"segments must be 2..{MAX_SEGMENTS}, got {segments}")
    rng, seed = make_rng(seed)
    n_vo = int(max(lexicon.first.max(), lexicon.dest.max())) + 1
    has_dest = lexicon.dest >= 0

    def leads_to(mask: np.ndarray) -> np.ndarray:
        """Segments whose destination begins some segment of ``mask``."""
        begins = np.zeros(n_vo, bool)
        begins[lexicon.first[mask]] = True
        return has_dest & begins[np.maximum(lexicon.dest, 0)]

    good = [np.zeros(len(lexicon), bool), lexicon.ending.copy()]  # good[k]: k segments to go
    for k in range(2, segments + 1):
        nxt = leads_to(good[k - 1])
        good.append(nxt & lexicon.dominant if k == 2 else nxt)
    start = good[segments] & lexicon.opening
    if not start.any():
        raise MusegenError(
            f"no recombination of {segments} segments reaches a cadence from an opening in this "
            "corpus; try another length"
        )
    chosen = [int(rng.choice(np.flatnonzero(start)))]
    for left in range(segments - 1, 0, -1):
        prev = chosen[-1]
        cand = np.flatnonzero(good[left] & (lexicon.first == lexicon.dest[prev]))
        w = np.ones(len(cand))
        same = lexicon.piece[cand] == lexicon.piece[prev]
        w[same] = 0.5
        w[same & (lexicon.index[cand] == lexicon.index[prev] + 1)] = 0.1  # Bach's own next beat
        w[lexicon.static[cand]] *= 0.15  # a held chord (a fermata) is rarely worth a beat
        chosen.append(int(rng.choice(cand, p=w / w.sum())))
    steps = np.concatenate([lexicon.rows[s] for s in chosen])
    return Recombination(lexicon, chosen, steps, seed)


__all__ = [
    "Lexicon",
    "Recombination",
    "build_lexicon",
    "chorale_steps",
    "has_parallels",
    "recombine",
]
