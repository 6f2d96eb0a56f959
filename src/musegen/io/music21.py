"""MusicXML, ABC and the music21 corpus <-> :class:`~musegen.score.Score`, through music21.

music21 is imported inside the functions (it takes most of a second), so ``import
musegen.io`` stays cheap. Scores made here use :data:`TPQ` = 480 ticks per quarter, which
holds 16ths, triplets and quintuplets exactly.

Reading (:func:`from_music21`): one track per part, in order (a two-staff piano part arrives
as two tracks, the way music21 splits it); tied notes become one note (our own one-pass tie
join, so the caller's stream is not copied or changed); each chord pitch becomes a note; grace
notes (no duration) are skipped; velocity comes from a note's explicit volume, else 64. Tempo
marks, time and key signatures of all parts form the maps (the first part to place one at a
tick wins); a note or chord with a fermata puts a ``fermata`` :class:`~musegen.score.Marker`
at its onset. Parts named Soprano/Alto/Tenor/Bass (or S./A./T./B.) get voice labels. Files are
parsed from source every time: music21's pickle cache is neither read nor written.

Writing (:func:`write_musicxml`, :func:`musicxml_bytes`): notes are snapped to a grid (16ths
by default) so notation stays readable, same-pitch overlaps are cut (as in MIDI), notes with
the same onset and duration become chords (sharing one velocity, their mean: MusicXML has one
per chord), and overlapping chords go to separate voices. Bars fall where
:meth:`Score.bar_starts` puts them: a meter change in mid-bar ends that bar early, and the
short bar gets its own meter. Map events after the last note are dropped (there is no bar to
hold them). The document is built by our own writer (:mod:`musegen.io.measures` lays out
bars, ties, rests, beams and accidentals; :mod:`musegen.io.musicxml_out` writes them) in time
linear in the length: music21's ``makeNotation`` took 34 s for 2,000 bars. The same score
gives the same bytes every time.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.errors import InputError
from musegen.io._common import (
    DEFAULT_MAX_BYTES,
    check_corpus_name,
    check_span,
    one_line,
    read_input_bytes,
    resolve_overlaps,
    voice_from_name,
)
from musegen.score import (
    FERMATA,
    KeySignature,
    Marker,
    Score,
    Tempo,
    TimeSignature,
    Track,
    make_notes,
)
from musegen.utils import atomic_write_bytes

if TYPE_CHECKING:
    import music21

TPQ = 480
DEFAULT_GRID = 4
MUSICXML_EXTENSIONS = (".musicxml", ".xml", ".mxl")
ABC_EXTENSIONS = (".abc",)
CORPUS_PREFIX = "corpus:"
DEFAULT_VELOCITY = 64
MAX_BARS = 10_000
"""Longest score :func:`musicxml_bytes` notates (a hostile file could ask for millions of bars)."""
MAX_MEASURES = 160_000
"""Most bars times parts :func:`musicxml_bytes` writes (16 parts of 10,000 bars; each empty
measure is ~30 microseconds and ~150 bytes, so a file of thousands of tracks is refused)."""
_MXL_MIMETYPE = b"application/vnd.recordare.musicxml"


# =========================================================================== reading
def read_musicxml(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Score:
    """Read a MusicXML file (``.musicxml``/``.xml``, or compressed ``.mxl``)."""
    data = read_input_bytes(path, max_bytes)
    if str(path).lower().endswith(".mxl") or data[:2] == b"PK":
        data = _unzip_mxl(path, data, max_bytes)
    return _musicxml_to_score(path, data)


def read_abc(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Score:
    """Read an ABC file; of a file with several tunes, the first one."""
    data = read_input_bytes(path, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if not any(line.startswith("K:") for line in text.splitlines()):
        raise InputError(path, "not ABC: no 'K:' (key) header line")
    _check_abc_numbers(path, text)
    from music21 import converter

    try:
        with _quiet():
            parsed = converter.parseData(_abc_with_unit_length(text), format="abc")
    except Exception as e:  # music21 raises many kinds for bad ABC
        raise InputError(path, f"invalid ABC: {one_line(e)}") from None
    return _convert(path, parsed)


def read_corpus(ref: str) -> Score:
    """A piece of the music21 corpus, e.g. ``corpus:bach/bwv66.6`` (prefix optional)."""
    name = ref.removeprefix(CORPUS_PREFIX)
    check_corpus_name(ref, name)
    from music21 import corpus

    try:
        found = corpus.getWork(name)
    except Exception:
        found = None
    paths = found if isinstance(found, list) else [found] if found else []
    if not paths:
        raise InputError(ref, "no such piece in the music21 corpus (try corpus:bach/bwv66.6)")
    if len(paths) > 1:
        raise InputError(
            ref, f"names {len(paths)} corpus pieces, e.g. corpus:{_corpus_name(paths[0])}"
        )
    path = Path(paths[0])
    if path.suffix.lower() in MUSICXML_EXTENSIONS:
        data = read_input_bytes(path, DEFAULT_MAX_BYTES)
        if path.suffix.lower() == ".mxl":
            data = _unzip_mxl(ref, data, DEFAULT_MAX_BYTES)
        return _musicxml_to_score(ref, data)
    try:
        with _quiet():
            parsed = corpus.parse(name, forceSource=True)
    except Exception as e:
        raise InputError(ref, f"cannot parse corpus piece: {one_line(e)}") from None
    return _convert(ref, parsed)


def _corpus_name(path: str | Path) -> str:
    """A corpus file's name as ``corpus:`` takes it (relative to the corpus, no suffix)."""
    from music21 import common

    p = Path(path)
    with contextlib.suppress(ValueError):
        p = p.relative_to(common.getCorpusFilePath())
    return p.with_suffix("").as_posix()


def _unzip_mxl(path: str | Path, data: bytes, max_bytes: int) -> bytes:
    """The score document inside a compressed MusicXML (``.mxl``) archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            name = _mxl_rootfile(zf)
            if zf.getinfo(name).file_size > max_bytes:
                raise InputError(path, "compressed MusicXML unpacks to more than max_bytes")
            return zf.read(name)
    except InputError:
        raise
    except Exception as e:  # BadZipFile, KeyError, zlib.error, ...
        raise InputError(path, f"not a valid .mxl archive: {one_line(e)}") from None


def _mxl_rootfile(zf: zipfile.ZipFile) -> str:
    """The score's name in an .mxl: from META-INF/container.xml, else the first XML file."""
    names = zf.namelist()
    if "META-INF/container.xml" in names and zf.getinfo("META-INF/container.xml").file_size < 2**20:
        root = ET.fromstring(zf.read("META-INF/container.xml"))
        for el in root.iter():
            if el.tag.endswith("rootfile") and el.get("full-path"):
                return el.get("full-path", "")
    for n in names:
        if n.lower().endswith((".xml", ".musicxml")) and not n.startswith("META-INF/"):
            return n
    raise KeyError("no score document in the archive")


def _musicxml_to_score(path: str | Path, data: bytes) -> Score:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise InputError(path, f"not valid XML: {one_line(e)}") from None
    if root.tag == "score-timewise":
        raise InputError(path, "timewise MusicXML is not supported (convert to partwise)")
    if root.tag != "score-partwise":
        raise InputError(path, f"not MusicXML: root element is <{root.tag}>")
    _check_musicxml_numbers(path, root)
    try:
        with _quiet():
            importer = _importer()()
            importer.xmlRootToScore(root, importer.stream)
        parsed = importer.stream
        _restore_midi(parsed, _part_midi(root))
    except Exception as e:  # music21 raises many kinds for odd MusicXML
        raise InputError(path, f"invalid MusicXML: {one_line(e)}") from None
    return _convert(path, parsed)


@functools.lru_cache(maxsize=1)
def _importer() -> type:
    """music21's MusicXML importer, with each part's measures put in without measuring the
    whole part again for every one.

    music21 keeps a part it builds marked sorted, and to keep it so, works out the part's
    length again before each measure goes in: reading grew with the square of the length
    (2,000 bars: 4.8 s). Here the part is marked unsorted while its measures go in (in
    order) and sorted once after them: the same part.
    """
    from music21.musicxml.xmlToM21 import MusicXMLImporter, PartParser

    class Parts(PartParser):  # type: ignore[misc]
        def parseMeasures(self) -> None:
            self.stream.isSorted = False
            super().parseMeasures()
            self.stream.sort()

    class Importer(MusicXMLImporter):  # type: ignore[misc]
        def xmlPartToPart(self, mxPart: Any, mxScorePart: Any) -> Any:
            parser = Parts(mxPart, mxScorePart=mxScorePart, parent=self)
            parser.parse()
            return parser.stream if parser.appendToScoreAfterParse else None

    return Importer


def _check_musicxml_numbers(path: str | Path, root: ET.Element) -> None:
    """Refuse numbers music21 would spend minutes on: a key of 2**31 sharps (``<fifths>``
    over 15), a meter of 308 beats (``<beats>``/``<beat-type>`` over :data:`ABC_MAX_METER`,
    as ABC's ``M:999/8``)."""
    limits = {"fifths": 15, "beats": ABC_MAX_METER, "beat-type": ABC_MAX_METER}
    for tag, most in limits.items():
        for element in root.iter(tag):
            text = (element.text or "").strip()
            if any(int(n) > most for n in re.findall(r"\d+", text)):
                raise InputError(path, f"<{tag}>{text[:20]}</{tag}> is beyond reading")


def _part_midi(root: ET.Element) -> dict[str, tuple[int | None, int | None]]:
    """(program, channel), both 0-based, of each ``<score-part>``'s first MIDI instrument.

    music21 swaps every piano-family program (1..5) for plain piano (0) and forgets the
    channel of an instrument given only a channel (how drum parts are often written).
    """
    out: dict[str, tuple[int | None, int | None]] = {}
    for sp in root.iterfind("part-list/score-part"):
        if sp.get("id"):
            program = _midi_number(sp.findtext("midi-instrument/midi-program"), 128)
            channel = _midi_number(sp.findtext("midi-instrument/midi-channel"), 16)
            out[sp.get("id", "")] = (program, channel)
    return out


def _midi_number(text: str | None, top: int) -> int | None:
    """A 1-based MusicXML MIDI number (1..top) as 0-based, or None."""
    text = (text or "").strip()
    return int(text) - 1 if text.isdigit() and 1 <= int(text) <= top else None


def _restore_midi(parsed: Any, midi: dict[str, tuple[int | None, int | None]]) -> None:
    for part in parsed.parts:
        inst = part.getInstrument(returnDefault=False)
        if inst is None or inst.partId not in midi:
            continue
        program, channel = midi[inst.partId]
        if program is not None:
            inst.midiProgram = program
        if channel is not None:
            inst.midiChannel = channel


def _convert(label: str | Path, parsed: Any) -> Score:
    """:func:`from_music21` with music21's exceptions turned into :class:`InputError`."""
    try:
        with _quiet():
            score = from_music21(parsed)
    except InputError:
        raise
    except Exception as e:
        raise InputError(label, f"cannot convert: {one_line(e)}") from None
    return check_span(label, score)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence music21's warnings: what matters reaches the user as an InputError."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"music21(\.|$)")
        yield


ABC_MAX_METER = 64
"""Largest number in an ABC meter (``M:9/8``): music21 takes minutes on ``M:999/8``."""
ABC_MAX_QUARTERS = 128
"""Longest ABC note or rest, in quarter notes: music21 takes minutes on a bar of one note
999 eighths long (Essen's longest tunes hold notes of 55 quarters)."""
_ABC_FIELD = re.compile(r"(?:^|\[)([LM]):([^\]\n%]*)", re.M)
_ABC_NOTE = re.compile(r"(?:[A-Ga-gzxy][,']*|\])(\d+)(?:/(\d*))?")  # a note, rest or [chord]
_ABC_SKIPPED = re.compile(r'"[^"\n]*"|![^!\n]*!|%.*')


def _check_abc_numbers(path: str | Path, text: str) -> None:
    """Refuse meters over :data:`ABC_MAX_METER` and notes over :data:`ABC_MAX_QUARTERS`
    quarters (before music21 spends minutes on them)."""
    unit = Fraction(1, 8)
    for line in text.splitlines():
        body = _ABC_SKIPPED.sub(" ", line)
        for kind, value in _ABC_FIELD.findall(body):
            # music21 reads a meter's numerator and denominator as their digits run together
            numbers = [int("".join(re.findall(r"\d", part)) or 0) for part in value.split("/")]
            if kind == "M" and any(n > ABC_MAX_METER for n in numbers):
                shown = "".join(c for c in value.strip() if c.isprintable())[:20]
                raise InputError(path, f"ABC meter M:{shown} is beyond reading")
            if kind == "L" and len(numbers) == 2 and numbers[1]:
                unit = Fraction(numbers[0], numbers[1])
        if re.match(r"[A-Za-z+]:", line):  # a field line, not notes
            continue
        for m in _ABC_NOTE.finditer(_ABC_FIELD.sub(" ", body)):
            below = (int(m.group(2)) if m.group(2) else 2) if m.group(2) is not None else 1
            if below == 0:
                raise InputError(path, f"ABC note {m.group(0)[:20]} divides by zero")
            length = Fraction(int(m.group(1)), below)
            if length * unit * 4 > ABC_MAX_QUARTERS:
                raise InputError(
                    path, f"ABC note {m.group(0)[:20]} is over {ABC_MAX_QUARTERS} quarters"
                )


def _abc_with_unit_length(text: str) -> str:
    """Add ``L:1/8`` to tune headers that give neither ``L:`` nor ``M:``.

    ABC's default unit is an eighth then, but music21 refuses such tunes.
    """
    out: list[str] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("X:"):
            header = [line]
            continue
        if header is not None:
            header.append(line)
            if line.startswith("K:"):
                if not any(h.startswith(("L:", "M:")) for h in header):
                    header.insert(1, "L:1/8")
                out.extend(header)
                header = None
            continue
        out.append(line)
    if header is not None:
        out.extend(header)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- music21 -> Score
def from_music21(obj: music21.stream.Stream, *, tpq: int = TPQ) -> Score:
    """Convert a music21 stream (Score, Part, Opus: first score; any Stream) to a Score.

    One pass over each part's flattened elements; the stream is not modified.
    """
    from music21 import stream

    if isinstance(obj, stream.Opus):
        scores = list(obj.scores)
        if not scores:
            return Score(tpq=tpq)
        obj = scores[0]
    parts = list(obj.parts) if isinstance(obj, stream.Score) else [obj]
    if not parts and obj.recurse().notes:  # a Score holding notes without parts
        parts = [obj]
    maps: dict[str, dict[int, Any]] = {"tempo": {}, "meter": {}, "key": {}, "marker": {}}
    shift = _pickup(parts[0]) if parts else 0
    tracks = [_part_to_track(p, tpq, shift, maps) for p in parts]
    return Score(
        tpq=tpq,
        tracks=tracks,
        tempos=list(maps["tempo"].values()),
        time_signatures=list(maps["meter"].values()),
        key_signatures=list(maps["key"].values()),
        markers=list(maps["marker"].values()),
    )


def _pickup(part: Any) -> Fraction | float:
    """How far (quarters) the first bar is short of a full bar: an anacrusis.

    Notes move later by this much so that bar lines fall where the score puts them.
    """
    from music21 import stream

    measures = part.getElementsByClass(stream.Measure)
    if len(measures) < 2:  # a lone short bar is just short, not a pickup
        return 0
    pad = measures.first().paddingLeft
    return pad if pad and pad > 0 else 0


def _part_to_track(
    part: Any, tpq: int, shift: Fraction | float, maps: dict[str, dict[int, Any]]
) -> Track:
    """One part's notes (ties joined) as a Track; its map events go into ``maps``.

    Everything after offset 0 moves ``shift`` quarters later (see :func:`_pickup`).
    """
    from music21 import note

    notes = _NoteRows()
    flat = part.flatten()
    for el in flat:
        off = el.getOffsetBySite(flat)
        if isinstance(el, note.NotRest):
            notes.add(el, off + shift, tpq)
            if any(type(x).__name__ == "Fermata" for x in el.expressions):
                tick = round((off + shift) * tpq)
                maps["marker"].setdefault(tick, Marker(tick, FERMATA))
        else:
            _add_map_event(el, round((off + shift) * tpq) if off > 0 else 0, maps)
    inst = part.getInstrument(returnDefault=False)
    program = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
    name = part.partName or ""
    voice = voice_from_name(name) or voice_from_name(getattr(part, "partAbbreviation", None))
    return Track(
        notes.array(),
        program=min(max(int(program), 0), 127),
        is_drum=_is_drum(inst),
        name=name,
        voice=voice,
    )


class _NoteRows:
    """Note rows gathered in time order, joining each tie chain into one note."""

    def __init__(self) -> None:
        self.rows: list[list[int]] = []  # [start, end, pitch, velocity]
        self.open_ties: dict[int, list[int]] = {}  # pitch -> row its tie continues

    def add(self, el: Any, offset: Fraction | float, tpq: int) -> None:
        """Add a note or chord at ``offset`` quarters (both ends rounded, so ties meet)."""
        ql = el.duration.quarterLength
        if ql <= 0:  # grace note: no time of its own
            return
        start, end = round(offset * tpq), round((offset + ql) * tpq)
        for midi, tie, vel in _sounding(el):
            row = self.open_ties.get(midi)
            if tie in ("stop", "continue") and row is not None and row[1] == start:
                row[1] = end
                if tie == "stop":
                    del self.open_ties[midi]
                continue
            row = [start, end, midi, vel]
            self.rows.append(row)
            if tie in ("start", "continue"):
                self.open_ties[midi] = row
            else:
                self.open_ties.pop(midi, None)

    def array(self) -> np.ndarray:
        cols = np.array(self.rows, dtype=np.int64).reshape(-1, 4)
        return make_notes(cols[:, 0], cols[:, 1] - cols[:, 0], cols[:, 2], cols[:, 3])


def _add_map_event(el: Any, tick: int, maps: dict[str, dict[int, Any]]) -> None:
    """Record a tempo mark, time or key signature (the first one at a tick wins)."""
    from music21 import key, meter, tempo

    if isinstance(el, tempo.MetronomeMark):
        qpm = _quarter_bpm(el)
        if qpm:
            maps["tempo"].setdefault(tick, Tempo(tick, qpm))
    elif isinstance(el, meter.TimeSignature) and el.numerator and el.denominator:
        maps["meter"].setdefault(tick, TimeSignature(tick, el.numerator, el.denominator))
    elif isinstance(el, key.KeySignature) and isinstance(el.sharps, int) and -7 <= el.sharps <= 7:
        minor = isinstance(el, key.Key) and el.mode == "minor"
        maps["key"].setdefault(tick, KeySignature(tick, el.sharps, minor))


def _is_drum(inst: Any) -> bool:
    """Channel 10 (9 from 0) means drums; so does a percussion instrument with no channel."""
    from music21 import instrument

    if inst is None:
        return False
    if inst.midiChannel is None:
        return isinstance(inst, instrument.UnpitchedPercussion)
    return inst.midiChannel == 9


def _sounding(el: Any) -> Iterator[tuple[int, str | None, int]]:
    """(MIDI pitch, tie type, velocity) of each sounding note of a note or chord."""
    members = el.notes if el.isChord else (el,)
    chord_tie = el.tie.type if el.isChord and el.tie is not None else None
    chord_vel = _velocity(el) if el.isChord else DEFAULT_VELOCITY
    for n in members:
        midi = _midi(n)
        if midi is None:
            continue
        tie = n.tie.type if n.tie is not None else chord_tie
        vel = _velocity(n) if n.hasVolumeInformation() else chord_vel
        yield midi, tie, vel


def _midi(n: Any) -> int | None:
    """MIDI pitch of a note; for an unpitched one, its instrument's percussion key."""
    if hasattr(n, "pitch"):
        return min(max(int(n.pitch.midi), 0), 127)
    inst = getattr(n, "storedInstrument", None)
    if inst is not None and getattr(inst, "percMapPitch", None) is not None:
        return int(inst.percMapPitch)
    try:
        return min(max(int(n.displayPitch().midi), 0), 127)
    except Exception:
        return None


def _velocity(n: Any) -> int:
    if not n.hasVolumeInformation():
        return DEFAULT_VELOCITY
    v = n.volume.velocity
    return DEFAULT_VELOCITY if v is None else min(max(int(v), 1), 127)


def _quarter_bpm(mm: Any) -> float | None:
    try:
        qpm = mm.getQuarterBPM()
    except Exception:
        return None
    return round(float(qpm), 2) if qpm and qpm > 0 else None


# =========================================================================== writing
def musicxml_bytes(
    score: Score, *, grid: int | None = DEFAULT_GRID, title: str | None = None
) -> bytes:
    """The score as uncompressed MusicXML (partwise) bytes, one part per track.

    ``grid`` is the number of grid steps per quarter that onsets and offsets snap to (4 =
    16ths, 12 = 16ths and triplets); ``None`` leaves times as they are. Written by
    :mod:`musegen.io.musicxml_out` in time linear in the length; raises :class:`InputError`
    for scores over :data:`MAX_BARS` bars or :data:`MAX_MEASURES` bars times parts.
    """
    from musegen.io.musicxml_out import musicxml_document

    s = _on_grid(score, grid)
    n_bars = len(s.bar_starts())
    if n_bars > MAX_BARS:
        raise InputError("<score>", f"{n_bars} bars is too long to notate (limit {MAX_BARS})")
    parts = max(len(s.tracks), 1)
    if n_bars * parts > MAX_MEASURES:
        raise InputError(
            "<score>",
            f"{n_bars} bars x {parts} parts is too much to notate (limit {MAX_MEASURES} measures)",
        )
    return musicxml_document(s, title=title or "Untitled", instruments=_gm_instrument)


@functools.lru_cache(maxsize=128)
def _gm_instrument(program: int) -> tuple[str | None, str | None, bool]:
    """(name, abbreviation, percussion?) of a General MIDI program, as music21 names it."""
    from music21 import instrument

    try:
        known = instrument.instrumentFromMidiProgram(program)
    except Exception:
        return None, None, False
    percussion = isinstance(known, instrument.UnpitchedPercussion)
    return known.instrumentName, known.instrumentAbbreviation, percussion


def to_music21(
    score: Score, *, grid: int | None = DEFAULT_GRID, title: str | None = None
) -> music21.stream.Score:
    """The score as notated music21 parts with measures: :func:`musicxml_bytes` read back by
    music21 (so it holds exactly what a written file holds)."""
    root = ET.fromstring(musicxml_bytes(score, grid=grid, title=title))
    with _quiet():
        importer = _importer()()
        importer.xmlRootToScore(root, importer.stream)
    _restore_midi(importer.stream, _part_midi(root))
    return importer.stream


def write_musicxml(score: Score, path: str | Path, *, grid: int | None = DEFAULT_GRID) -> None:
    """Write MusicXML (``.musicxml``/``.xml``) or compressed MusicXML (``.mxl``) atomically."""
    p = Path(path)
    try:
        data = musicxml_bytes(score, grid=grid, title=p.stem)
    except InputError as e:
        raise InputError(path, e.reason) from None
    if p.suffix.lower() == ".mxl":
        data = _zip_mxl(p.stem + ".musicxml", data)
    try:
        atomic_write_bytes(p, data)
    except OSError as e:
        raise InputError(path, f"cannot write: {e.strerror or one_line(e)}") from None


def _zip_mxl(inner: str, xml: bytes) -> bytes:
    container = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<container><rootfiles>'
        f'<rootfile full-path="{inner}" media-type="application/vnd.recordare.musicxml+xml"/>'
        "</rootfiles></container>\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, method in (
            ("mimetype", _MXL_MIMETYPE, zipfile.ZIP_STORED),
            ("META-INF/container.xml", container.encode(), zipfile.ZIP_DEFLATED),
            (inner, xml, zipfile.ZIP_DEFLATED),
        ):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # same bytes each time
            info.compress_type = method
            zf.writestr(info, data)
    return buf.getvalue()


def _on_grid(score: Score, grid: int | None) -> Score:
    """Snap to ``grid`` steps per quarter (resampling to 480 tpq first if needed)."""
    if grid is None:
        out = score.copy()
    else:
        if grid <= 0:
            raise ValueError(f"grid must be positive, got {grid}")
        s = score if score.tpq % grid == 0 else score.resample(TPQ * grid)
        out = s.quantize(s.tpq // grid)
    for t in out.tracks:
        t.notes = resolve_overlaps(t.notes)
    return out
