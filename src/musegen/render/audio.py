"""Score -> stereo 16-bit WAV at 44.1 kHz, through a SoundFont or a built-in numpy synthesizer.

Two synthesizers give one result type, a float32 array of shape ``(samples, 2)``:

* ``soundfont``: General MIDI rendering through `tinysoundfont` (a compiled TinySoundFont
  binding from PyPI that needs no system library) and an ``.sf2``/``.sf3`` file, found from
  ``--soundfont``, ``$MUSEGEN_SOUNDFONT``, the ``TimGM6mb.sf2`` that pretty_midi's wheel
  carries (the ``audio`` extra installs it, so every install sounds the same), or the
  SoundFonts of the machine (``/usr/share/sounds/sf2`` ...).
* ``builtin``: additive synthesis in numpy, so WAV output always works offline. Each
  (timbre, pitch) gets one oscillator array, computed with a single sin/cos and the Chebyshev
  recurrence for its harmonics; each note is then a slice of it times an ADSR envelope, added
  into one of a few pan buses. Drums are noise-based one-shot samples.
* ``neural``: the DDSP-style synthesizer of :mod:`musegen.audio.synth`, trained on this
  SoundFont's renders (needs torch and scipy).

The mix is peak-normalised and keeps the release tail of the last notes.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import io
import mmap
import os
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import InputError, MusegenError
from musegen.score import Score, Track
from musegen.utils import atomic_write_bytes

SAMPLE_RATE = 44_100
PEAK = 0.89  # -1 dBFS after normalising
SYNTHS = ("auto", "builtin", "soundfont", "neural")  # neural: musegen.audio.synth
ENV_SOUNDFONT = "MUSEGEN_SOUNDFONT"
DRUM_CHANNEL = 9  # General MIDI channel 10, zero-based
BUILTIN_TAIL = 0.5  # seconds after the last note: the longest built-in release plus ring
SOUNDFONT_TAIL = 2.0  # at most this long after the last note; trailing silence is trimmed
TAIL_FLOOR = 1e-3  # a SoundFont note's release ends when it falls 60 dB below its peak
MIN_NOTE_SECONDS = 0.01
MAX_SECONDS = 900.0  # longer scores are refused: a stray far-off note must not eat all memory
FADE_SECONDS = 0.02  # fade at the very end so a cut tail never clicks
SYSTEM_SOUNDFONT_GLOBS = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/*.sf2",
    "/usr/share/sounds/sf3/*.sf3",
    "/usr/share/soundfonts/*.sf2",
    "/usr/share/soundfonts/*.sf3",
    "/usr/local/share/soundfonts/*.sf2",
    "~/.local/share/soundfonts/*.sf2",
)
PACKAGED_SOUNDFONTS = (("pretty_midi", "TimGM6mb.sf2"),)  # (package, file): wheels that carry one
INSTALL_HINT = (
    "pass --soundfont PATH, set MUSEGEN_SOUNDFONT, or install one "
    "(pip install pretty_midi, whose wheel carries TimGM6mb.sf2, or apt-get install "
    "timgm6mb-soundfont)"
)
TSF_HINT = (
    "the SoundFont synthesizer needs tinysoundfont: pip install --no-deps tinysoundfont "
    "(its pyaudio dependency is only for live playback), or use --synth builtin"
)


# --------------------------------------------------------------------------- public API
def render_audio(
    score: Score,
    *,
    synth: str = "auto",
    soundfont: str | Path | None = None,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float = MAX_SECONDS,
) -> np.ndarray:
    """The score as normalised stereo float32 audio, shape ``(samples, 2)``.

    ``synth``: ``builtin``, ``soundfont`` or ``auto`` (a SoundFont when one is found and
    tinysoundfont is installed, else the built-in synthesizer).
    """
    kind, path = resolve_synth(synth, soundfont)
    seconds = score.duration_seconds()
    if seconds > max_seconds:
        raise MusegenError(
            f"the score lasts {seconds:.0f} s; audio is rendered up to {max_seconds:.0f} s "
            "(render it in parts, or pass a larger max_seconds)"
        )
    if kind == "soundfont":
        assert path is not None
        audio = render_soundfont(score, path, sample_rate)
    elif kind == "neural":
        from musegen.audio.synth import render_neural

        audio = render_neural(score, sample_rate)
    else:
        audio = render_builtin(score, sample_rate)
    return normalize(audio, in_place=True)  # the renderers return fresh float32 arrays


def render_wav(
    score: Score,
    path: str | Path,
    *,
    synth: str = "auto",
    soundfont: str | Path | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Render ``score`` and write it as a 16-bit stereo WAV file (atomically)."""
    audio = render_audio(score, synth=synth, soundfont=soundfont, sample_rate=sample_rate)
    return write_wav(path, audio, sample_rate)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write float audio in [-1, 1], shape ``(samples, 2)``, as 16-bit PCM WAV."""
    pcm = np.clip(np.rint(np.asarray(audio, np.float32) * 32767.0), -32768, 32767)
    data = np.ascontiguousarray(pcm.astype("<i2").reshape(-1, 2))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(data.tobytes())
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file as float32 ``(samples, channels)`` and its sample rate."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise InputError(path, "only 16-bit PCM WAV files are supported")
            channels, rate = w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as e:
        raise InputError(path, f"not a readable WAV file ({e})") from e
    audio = np.frombuffer(raw, "<i2").reshape(-1, channels).astype(np.float32) / 32768.0
    return audio, rate


def normalize(audio: np.ndarray, peak: float = PEAK, *, in_place: bool = False) -> np.ndarray:
    """Scale so the loudest sample is ``peak``; silence stays silence."""
    out = audio if in_place else np.array(audio, np.float32)
    top = _peak(out)
    if top < 1e-9:
        out[...] = 0.0
    else:
        out *= np.float32(peak / top)
    return out


# --------------------------------------------------------------------------- choosing a synth
def resolve_synth(synth: str, soundfont: str | Path | None = None) -> tuple[str, Path | None]:
    """Which synthesizer to use and the SoundFont for it; raises a one-line error if impossible.

    An explicit ``soundfont`` (or ``$MUSEGEN_SOUNDFONT``) that is missing or not a SoundFont is
    an error even with ``auto``: the user asked for it.
    """
    if synth not in SYNTHS:
        raise MusegenError(f"unknown synth {synth!r}; choose one of: {', '.join(SYNTHS)}")
    if synth in ("builtin", "neural"):
        return synth, None
    path = find_soundfont(soundfont)
    asked = soundfont is not None or bool(os.environ.get(ENV_SOUNDFONT))
    if synth == "soundfont" or asked:
        if path is None:
            raise MusegenError(f"no SoundFont found: {INSTALL_HINT}, or use --synth builtin")
        if not has_tinysoundfont():
            raise MusegenError(TSF_HINT)
        return "soundfont", path
    if path is not None and has_tinysoundfont():
        return "soundfont", path
    return "builtin", None


def has_tinysoundfont() -> bool:
    return importlib.util.find_spec("tinysoundfont") is not None


def find_soundfont(explicit: str | Path | None = None) -> Path | None:
    """The SoundFont to use (see :func:`locate_soundfont`), or None."""
    found = locate_soundfont(explicit)
    return found[0] if found else None


def locate_soundfont(explicit: str | Path | None = None) -> tuple[Path, str] | None:
    """The SoundFont to use and where it came from, or None.

    In order: ``explicit`` (``--soundfont``), ``$MUSEGEN_SOUNDFONT``, a SoundFont inside an
    installed package (pretty_midi's ``TimGM6mb.sf2``: the same sound on every machine), then
    the machine's own. An explicit or environment path must be valid (else
    :class:`InputError`); other candidates that fail the header check are skipped.
    """
    if explicit is not None:
        return check_soundfont(explicit), "--soundfont"
    env = os.environ.get(ENV_SOUNDFONT)
    if env:
        try:
            return check_soundfont(env), f"${ENV_SOUNDFONT}"
        except InputError as e:
            raise InputError(env, f"{e.reason} (from ${ENV_SOUNDFONT})") from e
    for origin, candidates in (
        ("package", packaged_soundfonts()),
        ("system", system_soundfonts()),
    ):
        for candidate in candidates:
            try:
                path = check_soundfont(candidate)
            except InputError:
                continue
            if origin == "package":
                origin = f"the {_package_of(path)} package"
            return path, origin
    return None


def packaged_soundfonts() -> Iterator[Path]:
    """SoundFonts inside installed Python packages (found without importing them)."""
    for package, name in PACKAGED_SOUNDFONTS:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                candidate = Path(folder) / name
                if candidate.is_file():
                    yield candidate


def _package_of(path: Path) -> str:
    return next((pkg for pkg, name in PACKAGED_SOUNDFONTS if path.name == name), path.parent.name)


def system_soundfonts() -> Iterator[Path]:
    """SoundFonts installed on the machine: the Debian/Fedora folders and the user's own."""
    for pattern in SYSTEM_SOUNDFONT_GLOBS:
        pattern = os.path.expanduser(pattern)
        folder, glob = os.path.split(pattern)
        if os.path.isdir(folder):
            yield from sorted(Path(folder).glob(glob))


def describe_audio(synth: str = "auto", soundfont: str | Path | None = None) -> dict[str, str]:
    """How :func:`render_audio` will play with these settings, for a settings JSON.

    ``{"synth": "soundfont", "soundfont": PATH, "soundfont_from": ORIGIN}``, or
    ``{"synth": "builtin", "why": ...}``.
    """
    kind, _ = resolve_synth(synth, soundfont)
    if kind == "neural":
        return {"synth": "neural", "model": "synth-ddsp (musegen.audio.synth)"}
    if kind == "builtin":
        if synth == "builtin":
            why = "--synth builtin"
        elif not has_tinysoundfont():
            why = "tinysoundfont is not installed"
        else:
            why = "no SoundFont found"
        return {"synth": "builtin", "why": why}
    found = locate_soundfont(soundfont)
    assert found is not None  # resolve_synth found it a moment ago
    return {"synth": "soundfont", "soundfont": str(found[0]), "soundfont_from": found[1]}


def check_soundfont(path: str | Path) -> Path:
    """``path`` if it is a readable file with a SoundFont (RIFF ``sfbk``) header."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(path, f"SoundFont not found; {INSTALL_HINT}")
    if not p.is_file():
        raise InputError(path, "is a folder, not a SoundFont file (.sf2/.sf3)")
    try:
        with open(p, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise InputError(path, f"cannot read SoundFont ({e.strerror})") from e
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise InputError(path, "not a SoundFont (.sf2/.sf3): no RIFF 'sfbk' header")
    return p


# --------------------------------------------------------------------------- timing helpers
def note_samples(score: Score, track: Track, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset sample and sounding length in samples (>= 10 ms) of each note of ``track``."""
    notes = track.notes
    on = np.asarray(score.ticks_to_seconds(notes["start"]), np.float64).reshape(-1)
    off = np.asarray(score.ticks_to_seconds(notes["start"] + notes["duration"]), np.float64)
    onset = np.rint(np.maximum(on, 0.0) * sample_rate).astype(np.int64)
    min_len = max(1, round(MIN_NOTE_SECONDS * sample_rate))
    length = np.maximum(np.rint(off.reshape(-1) * sample_rate).astype(np.int64) - onset, min_len)
    return onset, length


def end_sample(score: Score, sample_rate: int) -> int:
    """Sample at which the last note ends (0 for an empty score)."""
    return round(max(score.duration_seconds(), 0.0) * sample_rate)


def track_pans(score: Score) -> list[float]:
    """Stereo position of each track in [-0.5, 0.5] (quarter steps); drums in the middle."""
    pitched = [i for i, t in enumerate(score.tracks) if not t.is_drum]
    pans = [0.0] * len(score.tracks)
    if len(pitched) > 1:
        for i, p in zip(pitched, np.linspace(-0.5, 0.5, len(pitched)), strict=True):
            pans[i] = round(float(p) * 4) / 4
    return pans


def _pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power left/right gains for ``pan`` in [-1, 1]."""
    angle = (pan + 1.0) * np.pi / 4
    return float(np.cos(angle)), float(np.sin(angle))


def _fade_out(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(len(audio), round(FADE_SECONDS * sample_rate))
    if n > 0:
        audio[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]
    return audio


# --------------------------------------------------------------------------- built-in synth
@dataclass(frozen=True)
class Timbre:
    """An additive voice: harmonic amplitudes and decay rates (1/s), and an ADSR envelope."""

    harmonics: tuple[float, ...]
    decays: tuple[float, ...] = ()  # per harmonic; empty means sustained
    attack: float = 0.005
    decay: float = 0.0
    sustain: float = 1.0
    release: float = 0.2


TIMBRES = {
    "piano": Timbre(
        (1.0, 0.45, 0.25, 0.18, 0.1, 0.06, 0.04),
        (0.9, 1.3, 1.8, 2.4, 3.0, 3.6, 4.2),
        attack=0.004,
        release=0.25,
    ),
    "organ": Timbre((1.0, 0.7, 0.0, 0.45, 0.0, 0.25, 0.0, 0.2), attack=0.012, release=0.08),
    "pluck": Timbre(
        (1.0, 0.6, 0.4, 0.28, 0.18, 0.12, 0.08),
        (2.0, 3.5, 5.0, 7.0, 9.0, 11.0, 13.0),
        attack=0.002,
        release=0.12,
    ),
    "pad": Timbre(
        (1.0, 0.5, 0.33, 0.25, 0.2, 0.16), attack=0.08, decay=0.2, sustain=0.8, release=0.35
    ),
    "wind": Timbre(
        (1.0, 0.12, 0.5, 0.1, 0.3, 0.05, 0.18), attack=0.03, decay=0.1, sustain=0.9, release=0.1
    ),
}
# General MIDI family (program // 8) -> built-in timbre.
FAMILY_TIMBRE = (
    "piano", "piano", "organ", "pluck", "pluck", "pad", "pad", "wind",
    "wind", "wind", "organ", "pad", "pad", "pluck", "pluck", "pad",
)  # fmt: skip
DRUMS = "drums"


def timbre_name(track: Track) -> str:
    """The built-in timbre that plays ``track``: by GM family, or the drum kit."""
    return DRUMS if track.is_drum else FAMILY_TIMBRE[track.program // 8]


def render_builtin(score: Score, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Unnormalised stereo float32 audio of ``score`` from the built-in synthesizer."""
    total = end_sample(score, sample_rate) + round(BUILTIN_TAIL * sample_rate)
    pans = track_pans(score)
    buses = {pan: np.zeros(total, np.float32) for pan in sorted(set(pans))}
    groups: dict[str, list[tuple[Track, np.ndarray]]] = {}
    for track, pan in zip(score.tracks, pans, strict=True):
        playable = track.copy(track.notes[_playable(track.notes)])
        if len(playable):
            groups.setdefault(timbre_name(track), []).append((playable, buses[pan]))
    for name, members in groups.items():
        if name == DRUMS:
            for track, bus in members:
                onset, _ = note_samples(score, track, sample_rate)
                gain = _velocity_gain(track.notes["velocity"])
                _add_drums(bus, onset, track.notes["pitch"], gain, sample_rate)
        else:
            _add_timbre(TIMBRES[name], members, score, sample_rate)
    out = np.zeros((total, 2), np.float32)
    for pan, bus in buses.items():
        left, right = _pan_gains(pan)
        out[:, 0] += left * bus
        out[:, 1] += right * bus
    return _fade_out(out, sample_rate)


def _playable(notes: np.ndarray) -> np.ndarray:
    """Mask of notes a MIDI synth would play: keys 0..127 with a velocity above 0."""
    return (notes["velocity"] > 0) & (notes["pitch"] >= 0) & (notes["pitch"] <= 127)


def _velocity_gain(velocity: np.ndarray) -> np.ndarray:
    v = np.clip(velocity.astype(np.float32), 0, 127) / 127.0
    return v**1.5


def _add_timbre(
    timbre: Timbre, members: list[tuple[Track, np.ndarray]], score: Score, sample_rate: int
) -> None:
    """Add every note of the tracks in ``members`` (all of one timbre) into their buses."""
    rows = []
    for k, (track, _) in enumerate(members):
        onset, length = note_samples(score, track, sample_rate)
        rows.append(
            (onset, length, track.notes["pitch"], _velocity_gain(track.notes["velocity"]), k)
        )
    onset = np.concatenate([r[0] for r in rows])
    length = np.concatenate([r[1] for r in rows])
    pitch = np.concatenate([r[2] for r in rows]).astype(np.int64)
    gain = np.concatenate([r[3] for r in rows])
    owner = np.concatenate([np.full(len(r[0]), r[4]) for r in rows])
    total = len(members[0][1])
    release = max(1, round(timbre.release * sample_rate))
    span = np.minimum(length + release, total - onset)  # samples each note writes
    if len(span) == 0 or span.max() <= 0:
        return
    ads = _ads_envelope(timbre, int(length.max()), sample_rate)
    rel = _release_curve(release)
    weights = _harmonic_weights(timbre, int(span.max()), sample_rate)
    for p in np.unique(pitch):
        idx = np.flatnonzero((pitch == p) & (span > 0))
        if len(idx) == 0:
            continue
        osc = _oscillator(timbre, int(p), int(span[idx].max()), sample_rate, weights)
        for i in idx:
            s, n_on, n = int(onset[i]), int(length[i]), int(span[i])
            seg = osc[:n] * gain[i]
            k = min(n_on, n)
            seg[:k] *= ads[:k]
            if n > n_on:
                seg[n_on:] *= rel[: n - n_on] * ads[n_on - 1]
            members[owner[i]][1][s : s + n] += seg


def _ads_envelope(timbre: Timbre, n: int, sample_rate: int) -> np.ndarray:
    """Linear attack to 1, linear decay to the sustain level, then sustain; ``n`` samples."""
    a = max(1, round(timbre.attack * sample_rate))
    d = max(1, round(timbre.decay * sample_rate))
    t = np.arange(max(n, 1), dtype=np.float32)
    return np.interp(t, [0, a, a + d], [0.0, 1.0, timbre.sustain]).astype(np.float32)


def _release_curve(n: int) -> np.ndarray:
    """An exponential fall from 1 to exactly 0 over ``n`` samples."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    return ((np.exp(-5.0 * t) - np.exp(-5.0)) / (1.0 - np.exp(-5.0))).astype(np.float32)


def _harmonic_weights(timbre: Timbre, n: int, sample_rate: int) -> np.ndarray | None:
    """Per-harmonic amplitude over time (harmonics x samples), or None when sustained."""
    if not timbre.decays:
        return None
    t = np.arange(n, dtype=np.float32) / sample_rate
    rates = np.asarray(timbre.decays, np.float32)[:, None]
    return np.exp(-rates * t[None, :])


def _oscillator(
    timbre: Timbre, pitch: int, n: int, sample_rate: int, weights: np.ndarray | None
) -> np.ndarray:
    """``n`` samples of ``timbre`` at ``pitch``, harmonics above 0.45 fs left out.

    One sin and one cos per sample; harmonic k+1 comes from the Chebyshev recurrence
    ``sin((k+1)x) = 2 cos(x) sin(kx) - sin((k-1)x)``.
    """
    freq = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    phase = np.arange(n, dtype=np.float64) * (freq / sample_rate)
    x = (2.0 * np.pi * (phase - np.floor(phase))).astype(np.float32)
    amps = np.asarray(timbre.harmonics, np.float32) / np.float32(sum(timbre.harmonics))
    n_harm = int(min(len(amps), max(1, (0.45 * sample_rate) // freq)))
    s_prev = np.zeros(n, np.float32)
    s_cur = np.sin(x)
    cos2 = 2.0 * np.cos(x)
    out = np.zeros(n, np.float32)
    for h in range(n_harm):
        if amps[h]:
            term = s_cur * amps[h]
            if weights is not None:
                term *= weights[h, :n]
            out += term
        if h + 1 < n_harm:
            s_next = cos2 * s_cur
            s_next -= s_prev
            s_prev, s_cur = s_cur, s_next
    return out


# --------------------------------------------------------------------------- built-in drums
def _add_drums(
    bus: np.ndarray, onset: np.ndarray, keys: np.ndarray, gain: np.ndarray, sample_rate: int
) -> None:
    """Add one-shot drum sounds (General MIDI key map) at each onset."""
    cache: dict[int, np.ndarray] = {}
    total = len(bus)
    for s, key, g in zip(onset.tolist(), keys.tolist(), gain.tolist(), strict=True):
        if s >= total or g <= 0:
            continue
        if key not in cache:
            cache[key] = drum_sound(key, sample_rate)
        sound = cache[key]
        n = min(len(sound), total - s)
        bus[s : s + n] += g * sound[:n]


def drum_sound(key: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A noise/sine one-shot for a General MIDI drum key (deterministic per key)."""
    rng = np.random.default_rng(key)

    def noise(seconds: float, bright: int = 0) -> np.ndarray:
        x = rng.standard_normal(round(seconds * sample_rate) + bright).astype(np.float32)
        for _ in range(bright):  # each difference tilts the spectrum up by 6 dB/octave
            x = np.diff(x)
        return x / np.float32(max(1e-9, float(np.abs(x).max())))

    def decay(sound: np.ndarray, t60: float) -> np.ndarray:
        t = np.arange(len(sound), dtype=np.float32) / sample_rate
        return sound * np.exp(-6.9 / t60 * t).astype(np.float32)

    def sweep(f0: float, f1: float, seconds: float) -> np.ndarray:
        n = round(seconds * sample_rate)
        freq = f1 + (f0 - f1) * np.exp(-np.arange(n) / (0.04 * sample_rate))
        return np.sin(2 * np.pi * np.cumsum(freq) / sample_rate).astype(np.float32)

    def tone(freq: float, seconds: float) -> np.ndarray:
        t = np.arange(round(seconds * sample_rate), dtype=np.float32) / sample_rate
        return np.sin(2 * np.pi * freq * t).astype(np.float32)

    def mix(*parts: np.ndarray) -> np.ndarray:
        out = np.zeros(max(len(p) for p in parts), np.float32)
        for p in parts:
            out[: len(p)] += p
        return out

    if key in (35, 36):  # kicks
        return mix(decay(sweep(160, 48, 0.45), 0.4), 0.3 * decay(noise(0.02), 0.01))
    if key in (38, 40):  # snares
        return mix(0.5 * decay(tone(185, 0.15), 0.1), 0.8 * decay(noise(0.3, 1), 0.2))
    if key == 37:  # side stick
        return mix(decay(tone(1800, 0.05), 0.03), 0.5 * decay(noise(0.05, 2), 0.02))
    if key == 39:  # clap
        return 0.9 * decay(noise(0.25, 1), 0.15)
    if key in (41, 43, 45, 47, 48, 50):  # toms, pitched by key
        freq = 440.0 * 2.0 ** ((key - 69) / 12.0) * 1.5
        return decay(sweep(freq * 1.4, freq, 0.5), 0.45)
    if key in (42, 44):  # closed / pedal hi-hat
        return 0.5 * decay(noise(0.1, 2), 0.06)
    if key in (46, 54):  # open hi-hat, tambourine
        return 0.5 * decay(noise(0.5, 2), 0.35)
    if key in (49, 52, 55, 57):  # crashes
        return 0.6 * decay(noise(1.5, 1), 1.2)
    if key in (51, 53, 59):  # rides
        return mix(0.35 * decay(noise(1.0, 2), 0.8), 0.15 * decay(tone(3100, 1.0), 0.6))
    if key == 56:  # cowbell
        return 0.4 * decay(tone(540, 0.4) + tone(800, 0.4), 0.3)
    freq = 440.0 * 2.0 ** ((min(max(key, 30), 90) - 69) / 12.0) * 2.0  # other percussion
    return mix(0.7 * decay(tone(freq, 0.3), 0.2), 0.3 * decay(noise(0.03, 1), 0.02))


# --------------------------------------------------------------------------- SoundFont synth
def channel_plan(score: Score) -> list[int]:
    """The MIDI channel (0-based) of each track: drums on 9 (GM channel 10).

    With up to 15 pitched tracks each gets its own channel; beyond that, tracks share a
    channel per program (programs beyond 15 distinct ones wrap around).
    """
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    pitched = [i for i, t in enumerate(score.tracks) if not t.is_drum]
    plan = [DRUM_CHANNEL] * len(score.tracks)
    if len(pitched) <= len(free):
        for i, c in zip(pitched, free, strict=False):
            plan[i] = c
        return plan
    programs: list[int] = []
    for i in pitched:
        prog = score.tracks[i].program
        if prog not in programs:
            programs.append(prog)
        plan[i] = free[programs.index(prog) % len(free)]
    return plan


MIDI_NOTE = np.dtype(
    [
        ("onset", np.int64),
        ("length", np.int64),
        ("channel", np.int16),
        ("key", np.int16),
        ("velocity", np.int16),
    ]
)


def midi_notes(score: Score, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Every playable note as (onset sample, length in samples, channel, key, velocity)."""
    parts = []
    for track, channel in zip(score.tracks, channel_plan(score), strict=True):
        n = track.notes
        keep = _playable(n)
        onset, length = note_samples(score, track, sample_rate)
        part = np.zeros(int(keep.sum()), MIDI_NOTE)
        part["onset"], part["length"] = onset[keep], length[keep]
        part["channel"] = channel
        part["key"] = n["pitch"][keep]
        part["velocity"] = np.minimum(n["velocity"][keep], 127)
        parts.append(part)
    return np.concatenate(parts) if parts else np.zeros(0, MIDI_NOTE)


def render_soundfont(
    score: Score, soundfont: str | Path, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Unnormalised stereo float32 audio of ``score`` through tinysoundfont and ``soundfont``.

    TinySoundFont mixes independent voices linearly, so each distinct (channel, key, velocity,
    length) note is rendered once, alone, and added at every onset where it occurs: the same
    sound as streaming the events, at the cost of the distinct notes only. The synthesis runs
    in a forked child where the OS allows: TinySoundFont can crash on a SoundFont whose
    tables are corrupt, and that must become an error message, not a dead process.
    """
    path = check_soundfont(soundfont)
    try:
        import tinysoundfont  # noqa: F401  (imported before a fork, checked before any work)
    except ImportError as e:
        raise MusegenError(TSF_HINT) from e
    end = end_sample(score, sample_rate)
    total = end + round(SOUNDFONT_TAIL * sample_rate)
    if hasattr(os, "fork"):
        out = _shared_frames(total)
        _in_child(lambda: _synthesize_into(out, score, path, sample_rate), path)
    else:
        out = np.zeros((total, 2), np.float32)
        _synthesize_into(out, score, path, sample_rate)
    np.nan_to_num(out, copy=False, posinf=0.0, neginf=0.0)
    return _trim_tail(out, end, sample_rate)


def _synthesize_into(out: np.ndarray, score: Score, path: Path, sample_rate: int) -> None:
    """Add every note of ``score``, played by the SoundFont at ``path``, into ``out``."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    try:
        sfid = synth.sfload(str(path))
    except Exception as e:  # the binding raises RuntimeError for unreadable files
        raise InputError(path, f"not a usable SoundFont ({e})") from e
    _select_programs(synth, sfid, score, path)
    notes = midi_notes(score, sample_rate)
    max_tail = round(SOUNDFONT_TAIL * sample_rate)
    kinds, which = np.unique(notes[["channel", "key", "velocity", "length"]], return_inverse=True)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(len(kinds) + 1))
    for k, kind in enumerate(kinds.tolist()):
        sound = _render_note(synth, *kind, max_tail)
        for onset in notes["onset"][order[bounds[k] : bounds[k + 1]]].tolist():
            n = min(len(sound), len(out) - onset)
            if n > 0:
                out[onset : onset + n] += sound[:n]


def _shared_frames(total: int) -> np.ndarray:
    """Zeroed stereo float32 frames in anonymous shared memory (a forked child writes them)."""
    shared = mmap.mmap(-1, max(total, 1) * 8)
    return np.frombuffer(shared, np.float32, count=total * 2).reshape(total, 2)


def _in_child(work: Callable[[], None], path: Path) -> None:
    """Run ``work`` in a forked child; its errors, and a crash, come back as exceptions."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's code
        code = 0
        try:
            os.close(read_end)
            faulthandler.disable()  # a crash here is reported by the parent, not dumped
            work()
        except BaseException as e:
            kind = "I" if isinstance(e, InputError) else "M" if isinstance(e, MusegenError) else "X"
            reason = e.reason if isinstance(e, InputError) else f"{e}"
            if kind == "X":
                reason = f"synthesizer failed: {type(e).__name__}: {e}"
            os.write(write_end, (kind + " ".join(reason.split()))[:2000].encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        message = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise InputError(
            path,
            f"the SoundFont crashed the synthesizer (signal {os.WTERMSIG(status)}); "
            "the file is probably corrupt: try another one or --synth builtin",
        )
    if status != 0:
        if message[:1] == "M":
            raise MusegenError(message[1:])
        raise InputError(path, message[1:] or f"synthesizer exited with status {status}")


def _select_programs(synth: Any, sfid: int, score: Score, path: Path) -> None:
    """Give each used channel its General MIDI program (drum kit on channel 9) and pan."""
    done: set[int] = set()
    for track, channel, pan in zip(
        score.tracks, channel_plan(score), track_pans(score), strict=True
    ):
        if channel in done:
            continue
        done.add(channel)
        program = 0 if track.is_drum else track.program
        try:
            synth.program_select(channel, sfid, 0, program, track.is_drum)
        except Exception:
            try:  # a small SoundFont may lack the program: fall back to its first preset
                synth.program_select(channel, sfid, 0, 0, track.is_drum)
            except Exception as e:
                raise InputError(path, f"SoundFont has no preset for program {program}") from e
        synth.control_change(channel, 10, int(np.clip(round(64 + pan * 126), 0, 127)))


def _render_note(
    synth: Any, channel: int, key: int, velocity: int, length: int, max_tail: int
) -> np.ndarray:
    """One note alone: ``length`` frames held, then its release down to -60 dB (or ``max_tail``)."""
    block = 1024
    synth.noteon(channel, key, velocity)
    held = _frames(synth.generate_simple(length)) if length else np.zeros((0, 2), np.float32)
    synth.noteoff(channel, key)
    peak = float(np.abs(held).max()) if len(held) else 0.0
    tail, done = [], 0
    while done < max_tail:
        chunk = _frames(synth.generate_simple(min(block, max_tail - done)))
        tail.append(chunk)
        done += len(chunk)
        level = float(np.abs(chunk).max())
        peak = max(peak, level)
        if level <= max(peak * TAIL_FLOOR, 1e-7):
            break
    synth.sounds_off(channel)
    return np.concatenate([held, *tail])


def _frames(view: memoryview) -> np.ndarray:
    return np.frombuffer(view, np.float32).reshape(-1, 2)


def _trim_tail(
    audio: np.ndarray, end: int, sample_rate: int, floor_db: float = -70.0
) -> np.ndarray:
    """Cut near-silence after ``end`` (the last note-off; 0.1 s always kept), fade the cut.

    Returns a view of ``audio``: only the tail after ``end`` is scanned, so this stays cheap.
    """
    first = min(len(audio), end + round(0.1 * sample_rate))
    floor = _peak(audio) * 10 ** (floor_db / 20)
    tail = np.abs(audio[first:]).max(axis=1) if first < len(audio) else np.zeros(0)
    loud = np.flatnonzero(tail > floor) if floor > 0 else np.zeros(0, np.int64)
    keep = first + (int(loud[-1]) + 1 if len(loud) else 0)
    return _fade_out(audio[:keep], sample_rate)


def _peak(audio: np.ndarray) -> float:
    """Largest absolute sample, without a temporary copy of the whole array."""
    return max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
