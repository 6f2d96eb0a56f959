"""What one does with a MusicVAE's latent space: encode, interpolate, attribute vectors, sample.

:class:`LatentVAE` wraps a loaded ``music-vae`` model with the ``melody`` tokenizer it was
trained on (its folder's ``tokenizer``; a four-voice model's is ``chorale``, and a score is
then read and written as Soprano, Alto, Tenor and Bass):

* ``encode(score)`` → ``[segments, latent]`` posterior means, one per ``n_bars`` bars from the
  melody's first bar line (the top line of the score, on the 16th grid, as the tokenizer
  reads it; a pickup is left out, a short last segment padded with rests). ``refine`` > 0:
  each mean moved by up to that many gradient steps to a latent whose likeliest decoding is
  the segment itself (:func:`musegen.models.vae.refine_latents`), so that, for example, an
  interpolation starts and ends on the melodies given, not on the encoder's reconstruction.
* ``decode(z, temperature, seed)`` → one :class:`~musegen.score.Score` of the segments one
  after another (``temperature`` 0: the most likely class at every step).
* :func:`slerp`: spherical interpolation (Shoemake 1985; MusicVAE's choice, since a Gaussian's
  mass lies near a sphere), ``steps`` points from A to B, both included.
* Attribute vectors (MusicVAE section 5.3): for each attribute, the mean latent of the
  segments in its top quarter minus that of the bottom quarter; :data:`ATTRIBUTES` are
  pure functions of a segment's classes (of several voices: notes a bar per voice, onsets off
  the beat in any voice, the span from the lowest voice's lowest pitch to the top's highest).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import InputError, MusegenError
from musegen.models.pretrained import model_label
from musegen.models.vae_steps import (
    FIRST_PITCH,
    cells_to_steps,
    check_voices,
    cut_segment,
    steps_to_cells,
)
from musegen.sampling.generators import Generated, GenerateRequest, Generator
from musegen.score import Score

ATTRIBUTES_FILE = "attributes.json"
PRIOR_FILE = "latent_prior.json"


# ---------------------------------------------------------------------- attributes


def _onsets(steps: np.ndarray) -> np.ndarray:
    return np.asarray(steps) >= FIRST_PITCH


def note_density(steps: np.ndarray, steps_per_bar: int = 16, voices: int = 1) -> float:
    """Notes started per bar (per voice: a row of ``voices`` interleaved voices)."""
    steps = np.asarray(steps)
    bars = len(steps) / (steps_per_bar * voices)
    return float(_onsets(steps).sum() / voices / max(bars, 1e-9))


def syncopation(steps: np.ndarray, steps_per_bar: int = 16, voices: int = 1) -> float:
    """The share of onsets off the beat (not on a quarter note, four 16th steps)."""
    on = np.flatnonzero(_onsets(steps)) // voices
    if not len(on):
        return 0.0
    return float(np.mean(on % 4 != 0))


def pitch_range(steps: np.ndarray, steps_per_bar: int = 16, voices: int = 1) -> float:
    """Highest minus lowest pitch started, in semitones (0 without notes)."""
    steps = np.asarray(steps)
    pitched = steps[steps >= FIRST_PITCH]
    return float(pitched.max() - pitched.min()) if len(pitched) else 0.0


ATTRIBUTES: dict[str, Callable[[np.ndarray, int, int], float]] = {
    "density": note_density,
    "syncopation": syncopation,
    "range": pitch_range,
}


def attribute_values(
    segments: np.ndarray, name: str, steps_per_bar: int = 16, voices: int = 1
) -> np.ndarray:
    if name not in ATTRIBUTES:
        raise MusegenError(f"unknown attribute {name!r}; choose from {', '.join(ATTRIBUTES)}")
    f = ATTRIBUTES[name]
    return np.array([f(s, steps_per_bar, voices) for s in segments], dtype=np.float64)


def attribute_vector(latents: np.ndarray, values: np.ndarray, quantile: float = 0.25) -> np.ndarray:
    """Mean latent of the segments with the highest ``quantile`` of ``values`` minus that of
    the lowest (ties at an edge go to neither side, so the two groups never meet)."""
    lo_edge, hi_edge = np.quantile(values, [quantile, 1 - quantile])
    high, low = values >= hi_edge, values <= lo_edge
    if lo_edge == hi_edge:
        high, low = values > hi_edge, values < lo_edge
    if not high.any() or not low.any():
        raise MusegenError("the attribute has the same value on (almost) every segment")
    return latents[high].mean(0) - latents[low].mean(0)


def parse_additions(items: list[str] | None) -> dict[str, float]:
    """``["density=+1.5", "range=-1"]`` → ``{"density": 1.5, "range": -1.0}``."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            name, sep, amount = part.partition("=")
            try:
                value = float(amount)
            except ValueError:
                value = math.nan
            if not sep or not name.strip() or not math.isfinite(value):
                raise MusegenError(f"--add takes NAME=AMOUNT such as density=+1.5, got {part!r}")
            out[name.strip()] = value
    return out


# ---------------------------------------------------------------------- interpolation


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points on the great-circle path from ``a`` to ``b`` (magnitudes interpolated
    linearly); collinear vectors fall back to a straight line."""
    if steps < 2:
        raise MusegenError(f"--steps must be at least 2, got {steps}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.dot(a, b) / max(na * nb, 1e-12))
    omega = math.acos(min(max(cos, -1.0), 1.0))
    if omega < 1e-6 or math.pi - omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)


# ---------------------------------------------------------------------- the model


@dataclass
class LatentVAE:
    """A loaded ``music-vae`` with its tokenizer (see the module docstring)."""

    model: Any
    meta: dict[str, Any]
    folder: Path
    tokenizer: Any

    @classmethod
    def load(cls, ref: str | None) -> LatentVAE:
        from musegen.models import load_model
        from musegen.models.pretrained import resolve_model

        folder = resolve_model(ref or "folk-vae")
        model, meta = load_model(folder)
        if meta.get("model") != "music-vae":
            raise MusegenError(f"{folder}: a {meta.get('model')} model, not a music-vae")
        return cls.wrap(model, meta, folder)

    @classmethod
    def wrap(cls, model: Any, meta: dict[str, Any], folder: Path) -> LatentVAE:
        """A loaded ``music-vae`` with the tokenizer its ``meta`` names, which must write as
        many voices as the model reads."""
        from musegen.tokenizers import tokenizer_from_dict

        if "tokenizer" not in meta:
            raise MusegenError(f"{folder}: its config.json names no melody tokenizer")
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
        check_voices(tokenizer, model.config, str(folder))
        return cls(model.float().eval(), meta, folder, tokenizer)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def default_temperature(self) -> float:
        """The decoder temperature the model's card chose for new melodies (0.5 if none)."""
        return float((self.meta.get("sampling") or {}).get("temperature", 0.5))

    # -------------------------------------------------------------- encode
    def steps(self, score: Score) -> np.ndarray:
        """The classes of a melody (or a chorale's four voices, interleaved) as one row from
        its first bar line, padded with rests to whole segments (see the module docstring)."""
        from musegen.train.vae import piece_units

        if not any(len(t) for t in score.tracks if not t.is_drum):
            raise MusegenError("the score has no notes to encode")
        ids = self.tokenizer.encode(score)
        units = piece_units(ids, self.tokenizer, self.config.steps_per_bar)
        if units is None:
            raise MusegenError(
                f"this model reads bars of {self.config.steps_per_bar} 16th steps (4/4, 2/2, "
                "2/4 ...); the piece's meter does not divide into them"
            )
        pad = (-len(units)) % self.config.n_bars
        if pad:
            rest = np.full((pad, units.shape[1]), self.tokenizer.rest_id, dtype=units.dtype)
            units = np.vstack([units, rest])
        return cells_to_steps(units, self.tokenizer, self.config).reshape(-1)

    def segments(self, score: Score) -> np.ndarray:
        """``[segments, n_steps]`` classes of a melody, each segment read alone: a note held
        into it starts at its first step (:func:`musegen.models.vae_steps.cut_segment`)."""

        steps, n, v = self.steps(score), self.config.n_steps, self.config.voices
        return np.stack([cut_segment(steps, start, n, v) for start in range(0, len(steps), n)])

    def encode_steps(self, steps: np.ndarray, refine: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Posterior ``mu`` and ``sigma`` ``[N, latent]`` of class rows ``[N, n_steps]``;
        ``refine`` > 0: ``mu`` refined by up to that many steps (see the module docstring)."""
        import torch

        from musegen.models.vae import refine_latents

        if refine < 0:
            raise MusegenError(f"--refine must be >= 0, got {refine}")
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(steps, dtype=np.int64))
            mu, sigma = self.model.encode(x)
            if refine:
                mu, _ = refine_latents(self.model, x, mu, iterations=refine)
        return mu.numpy().astype(np.float64), sigma.numpy().astype(np.float64)

    def encode(self, score: Score, refine: int = 0) -> np.ndarray:
        return self.encode_steps(self.segments(score), refine)[0]

    # -------------------------------------------------------------- decode
    def decode_steps(self, z: np.ndarray, temperature: float = 0.0, seed: int = 0) -> np.ndarray:
        """Class rows ``[N, n_steps]`` decoded from latents ``[N, latent]``."""
        import torch

        if temperature < 0 or not math.isfinite(temperature):
            raise MusegenError(f"--temperature must be >= 0, got {temperature}")
        g = torch.Generator().manual_seed(int(seed))
        z_t = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, self.config.latent)
        return self.model.sample(z_t, temperature=temperature, generator=g).numpy()

    def to_score(self, steps: np.ndarray, tempo: float | None = None) -> Score:
        """Class rows, one after another, as a 4/4 score: a melody, or the voices of a chorale."""
        return steps_score(np.asarray(steps).reshape(-1), self.tokenizer, self.config, tempo)

    def decode(self, z: np.ndarray, temperature: float = 0.0, seed: int = 0) -> Score:
        return self.to_score(self.decode_steps(z, temperature, seed))

    # -------------------------------------------------------------- attributes
    def attributes_path(self) -> Path:
        return self.folder / ATTRIBUTES_FILE

    def load_attributes(self, path: str | Path | None = None) -> dict[str, np.ndarray]:
        """Attribute vectors saved by ``musegen latent attribute`` (``{name: vector}``)."""
        path = Path(path) if path else self.attributes_path()
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            vectors = {k: np.asarray(v, dtype=np.float64) for k, v in record["vectors"].items()}
        except FileNotFoundError as e:
            raise InputError(
                path, "no attribute vectors: make them with 'musegen latent attribute'"
            ) from e
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(path, f"unreadable attribute vectors ({e})") from e
        for name, v in vectors.items():
            if v.shape != (self.config.latent,):
                raise InputError(
                    path, f"vector {name!r} has {v.size} dims, the model {self.config.latent}"
                )
        return vectors

    # -------------------------------------------------------------- the prior
    def prior_path(self) -> Path:
        return self.folder / PRIOR_FILE

    def load_prior(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The fitted prior ``musegen latent prior`` saved beside the model (mean, Cholesky
        factor of the covariance), or None: new latents then come from N(0, I)."""
        path = self.prior_path()
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            mean = np.asarray(record["mean"], dtype=np.float64)
            factor = np.asarray(record["cholesky"], dtype=np.float64)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(path, f"unreadable latent prior ({e})") from e
        d = self.config.latent
        if mean.shape != (d,) or factor.shape != (d, d):
            raise InputError(path, f"a prior of {mean.size} dims, the model has {d}")
        return mean, factor

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """New latents ``[*shape, latent]``: the fitted prior where the model has one, else
        N(0, I) (both from standard normal draws of ``rng``, so a seed gives one set)."""
        eps = rng.standard_normal((*shape, self.config.latent))
        prior = self.load_prior()
        if prior is None:
            return eps
        mean, factor = prior
        return mean + eps @ factor.T

    @property
    def prior_name(self) -> str:
        return f"fitted ({PRIOR_FILE})" if self.prior_path().is_file() else "N(0, I)"

    def add(
        self, z: np.ndarray, additions: dict[str, float], vectors: dict[str, np.ndarray]
    ) -> np.ndarray:
        """``z`` plus ``amount`` times each named attribute vector."""
        out = np.array(z, dtype=np.float64, copy=True)
        for name, amount in additions.items():
            if name not in vectors:
                raise MusegenError(
                    f"no attribute vector {name!r}; there are: {', '.join(sorted(vectors)) or 'none'}"
                )
            out = out + amount * vectors[name]
        return out


def steps_score(
    steps: np.ndarray, tokenizer: Any, config: Any, tempo: float | None = None
) -> Score:
    """A score of VAE classes (whole bars of ``config.steps_per_bar`` steps, each step
    ``config.voices`` classes) in 4/4: one melody track, or the tokenizer's voice tracks."""
    from musegen.score import Tempo
    from musegen.tokenizers.base import BOS, EOS

    cells = steps_to_cells(np.asarray(steps).reshape(-1), tokenizer, config)
    bar, width = config.steps_per_bar, config.bar_classes
    n_bars = math.ceil(len(cells) / width)
    label = {16: "4/4", 12: "3/4", 8: "2/4"}.get(bar)
    if label not in tokenizer.config.time_signatures:
        raise MusegenError(f"no meter of {bar} steps in the model's tokenizer")
    ts = tokenizer.vocab.offset("ts") + tokenizer.config.time_signatures.index(label)
    parts = [np.array([BOS, ts, tokenizer._count_id("len", n_bars)])]
    for b in range(n_bars):
        parts.append(np.array([tokenizer._count_id("bar", n_bars - b)]))
        parts.append(cells[b * width : (b + 1) * width])
    parts.append(np.array([EOS]))
    score = tokenizer.decode(np.concatenate(parts).astype(np.int64))
    if tempo is not None:
        score.tempos = [Tempo(0, float(tempo))]
    return score


def data_segments(
    vae: LatentVAE, data: str, split: str = "train", hop_bars: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """Class rows ``[N, n_steps]`` of ``data``: a dataset prepared with the ``melody``
    tokenizer (its ``split``, windows ``hop_bars`` apart, default ``n_bars``), else any reference
    :func:`musegen.data.refs.resolve` reads; and the names of the pieces skipped (unreadable,
    or with no segment the model reads)."""
    from musegen.train.vae import melody_segments

    skipped: list[str] = []
    if (Path(data) / "manifest.json").is_file():
        from musegen.data.dataset import load_prepared

        prepared = load_prepared(data)
        check_voices(prepared.tokenizer, vae.config, data)
        rows, _ = melody_segments(
            prepared.split(split), prepared.tokenizer, vae.config, hop_bars or vae.config.n_bars
        )
    else:
        from musegen.data.refs import resolve

        found = []
        for ref in resolve(data):
            try:
                found.append(vae.segments(ref.load()))
            except MusegenError:
                skipped.append(ref.name)
        rows = np.vstack(found) if found else np.zeros((0, vae.config.n_steps), dtype=np.int64)
    if not len(rows):
        raise MusegenError(f"{data}: no melody segments the model can read")
    return rows, skipped


def encode_rows(vae: LatentVAE, rows: np.ndarray, batch: int = 256, refine: int = 0) -> np.ndarray:
    """Posterior means (``refine``: refined) of many class rows, a batch at a time."""
    return np.vstack(
        [vae.encode_steps(rows[i : i + batch], refine)[0] for i in range(0, len(rows), batch)]
    )


def attribute_table(
    vae: LatentVAE, data: str, names: list[str], split: str = "train", quantile: float = 0.25
) -> dict[str, Any]:
    """Attribute vectors of ``names`` from ``data`` (see :func:`data_segments`), as the JSON
    record ``musegen latent attribute`` saves: the vectors and how each was made."""
    if not names:
        raise MusegenError("--compute names no attribute")
    for name in names:
        if name not in ATTRIBUTES:
            raise MusegenError(f"unknown attribute {name!r}; choose from {', '.join(ATTRIBUTES)}")
    rows, skipped = data_segments(vae, data, split)
    latents = encode_rows(vae, rows)
    record: dict[str, Any] = {
        "model": model_label(vae.folder),
        "data": data,
        "split": split,
        "segments": len(rows),
        "skipped": skipped,
        "quantile": quantile,
        "attributes": {},
        "vectors": {},
    }
    for name in names:
        values = attribute_values(rows, name, vae.config.steps_per_bar, vae.config.voices)
        vector = attribute_vector(latents, values, quantile)
        lo, hi = np.quantile(values, [quantile, 1 - quantile])
        record["attributes"][name] = {
            "low_edge": float(lo),
            "high_edge": float(hi),
            "mean": float(values.mean()),
            "norm": float(np.linalg.norm(vector)),
        }
        record["vectors"][name] = [round(float(x), 6) for x in vector]
    return record


def fit_prior(latents: np.ndarray, shrink: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Cholesky factor of a Gaussian fitted to ``latents`` [N, D], the covariance
    shrunk by ``shrink`` toward its diagonal's mean so it stays positive definite.

    Ex-post density estimation (Ghosh et al. 2020): the encoder's means of real segments
    fill a thin, correlated part of the latent space (a few directions carry most of their
    spread), and N(0, I) draws fall mostly outside it, where the decoder writes sparse
    melodies; drawing from a Gaussian fitted to the means keeps new latents where the real
    ones lie."""
    x = np.asarray(latents, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise MusegenError("fitting a latent prior needs at least two segments")
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False)
    cov = (1 - shrink) * cov + shrink * np.eye(len(cov)) * np.trace(cov) / len(cov)
    return mean, np.linalg.cholesky(cov)


def prior_record(
    vae: LatentVAE, data: str, split: str = "train", hop_bars: int = 1
) -> dict[str, Any]:
    """The JSON record ``musegen latent prior`` saves: a Gaussian fitted to the posterior
    means of ``data``'s segments (a prepared melody dataset: windows ``hop_bars`` apart;
    another reference: each piece's segments)."""
    rows, skipped = data_segments(vae, data, split, hop_bars)
    mean, factor = fit_prior(encode_rows(vae, rows))
    return {
        "model": model_label(vae.folder),
        "data": data,
        "split": split,
        "segments": len(rows),
        "skipped": skipped,
        "mean": [round(float(x), 6) for x in mean],
        "cholesky": [[round(float(x), 6) for x in row] for row in factor],
    }


# ---------------------------------------------------------------------- generators


def latent_generator_class(name: str) -> type[Generator]:
    """The generator of a ``music-vae`` (new melodies from its prior) or a
    ``latent-diffusion`` prior (long melodies, and infilling of bars)."""
    return MusicVAEGenerator if name == "music-vae" else LatentDiffusionGenerator


class MusicVAEGenerator(Generator):
    """New melodies from a MusicVAE: latents drawn from its prior (the fitted one saved
    beside the model by ``musegen latent prior``, else N(0, I)), one per ``n_bars`` bars,
    each decoded on its own."""

    kind = "melody VAE"
    serves = ("generate",)
    plans = False  # --form and --ending: sections that return, last bars drawn again
    ending = "free"  # the ending the last generate's pieces were closed with (_closed)
    fitted_prior = True  # False: N(0, I) even where the model has a fitted prior

    def __init__(self, model: Any, meta: dict[str, Any], folder: Path | None) -> None:
        super().__init__(model, meta, folder)
        self.vae = LatentVAE.wrap(model, meta, Path(folder or "."))

    def _latents(self, request: GenerateRequest, n: int, draws: Any) -> Any:
        import torch

        if not self.fitted_prior or not self.vae.prior_path().is_file():
            return torch.randn(request.num, n, self.vae.config.latent, generator=draws)
        rng = np.random.default_rng(request.seed)
        return torch.as_tensor(self.vae.draw((request.num, n), rng), dtype=torch.float32)

    def _bars_per_latent(self) -> int:
        return int(self.vae.config.n_bars)

    def generate(self, request: GenerateRequest) -> Generated:
        import torch

        from musegen.sampling.pieces import PieceRequest, finish_piece, primer_score

        _check_request(self.folder, request, bool(self.controls()), self.plans)
        asked = PieceRequest(
            bars=request.bars,
            seconds=request.seconds,
            tempo=request.tempo,
            time_signature="4/4",
            key=request.key,
            program=request.program,
        )
        empty = primer_score(asked)
        bars = _bars(request, empty)
        per = self._bars_per_latent()
        n = math.ceil(bars / per)
        temperature = self._temperature(request)
        draws = torch.Generator().manual_seed(request.seed)
        latents = self._latents(request, n, draws).numpy()
        rows = [
            self._restated(i, self.vae.decode_steps(z, temperature, request.seed * 1000 + i))
            for i, z in enumerate(latents)
        ]
        tempo = request.tempo or 100.0
        cut = bars * self.vae.config.bar_classes

        def score(steps: np.ndarray) -> Score:
            return self.vae.to_score(steps.reshape(-1)[:cut], tempo=tempo)

        rows = self._closed(request, latents, rows, score, temperature, draws)
        pieces = [finish_piece(score(steps), asked, empty) for steps in rows]
        sampling = {
            "seed": request.seed,
            "temperature": temperature,
            "latents": n,
            **self._extra(request),
        }
        # the ending its own _closed used (the token models' redraws in asked stay unused)
        request_used = vars(asked) | {"ending": self.ending}
        return Generated(pieces, {"sampling": sampling, "request": request_used})

    def _restated(self, piece: int, steps: np.ndarray) -> np.ndarray:
        """A piece's decoded ``[latents, steps]`` as it is kept (a form's copies: below)."""
        return steps

    def _closed(
        self, request: GenerateRequest, latents: np.ndarray, rows: list[np.ndarray],
        score: Callable[[np.ndarray], Score], temperature: float, draws: Any,
    ) -> list[np.ndarray]:  # fmt: skip
        """The pieces' decoded rows as they end (new endings: below)."""
        return rows

    def _temperature(self, request: GenerateRequest) -> float:
        t = request.temperature
        return self._decoding_temperature() if t is None else float(t)

    def _decoding_temperature(self) -> float:
        """The decoder temperature when none is asked: the VAE's."""
        return self.vae.default_temperature

    def _extra(self, request: GenerateRequest) -> dict[str, Any]:
        return {"prior": self.vae.prior_name if self.fitted_prior else "N(0, I)"}


# RePaint resamplings per DDIM step where latents are fixed: in infill, and where a long
# piece's next window continues the one before. More resampling binds the new half closer to
# the fixed one, and a long piece's pace then falls window by window (64 bars, 120 pieces:
# 4.3 notes a bar in bars 1-8; in bars 57-64 3.3 at 4, 3.6 at 2, 3.9 at 1; real tunes keep
# theirs), so windows take 1, with no loss of consistency between neighbouring bars
# (docs/experiments.md, "Latent models, eleventh pass").
RESAMPLE = 4
WINDOW_RESAMPLE = 1


class LatentDiffusionGenerator(MusicVAEGenerator):
    """A diffusion prior over sequences of 2-bar latents (:mod:`musegen.models.
    latent_diffusion`), decoded by the VAE its folder names (``vae``): long melodies,
    and bars rewritten with the others' latents fixed."""

    kind = "latent diffusion prior"
    serves = ("generate", "infill")
    plans = True
    # what the last generate drew, for its settings (_extra) and its decoding (_restated)
    paces: Any = None  # pace ranks [num] (a paced prior)
    forms: list[str] | None = None  # one form a piece
    copies: np.ndarray | None = None  # [num, latents]: the latent whose notes each copies, or -1

    def __init__(self, model: Any, meta: dict[str, Any], folder: Path | None) -> None:
        if "vae" not in meta:
            raise MusegenError(f"{folder}: its config.json names no VAE ('vae')")
        self.prior = model.float().eval()
        vae = LatentVAE.load(meta["vae"])
        Generator.__init__(self, model, meta, folder)
        self.vae = vae
        if vae.config.latent != model.config.latent:
            raise MusegenError(f"{folder}: its VAE {meta['vae']} has another latent size")

    def controls(self) -> tuple[str, ...]:
        return ("density",) if self.prior.config.pace else ()

    @classmethod
    def capabilities(cls, meta: dict[str, Any]) -> tuple[str, ...]:
        paced = bool((meta.get("config") or {}).get("pace"))
        return (*cls.serves, *(("density",) if paced else ()), "structure")

    def _steps(self) -> int:
        return int(self.setting("steps", default=50))

    def _pace(self, request: GenerateRequest, draws: Any) -> Any:
        """Each piece's pace rank [num] for a paced prior (else None): uniform in [0, 1],
        or in the third that ``--density`` low / medium / high names."""
        import torch

        from musegen.tokenizers.controls import DENSITY_BINS

        if not self.prior.config.pace:
            return None
        u = torch.rand(request.num, generator=draws)
        if request.density:
            return (DENSITY_BINS.index(request.density[0]) + u) / len(DENSITY_BINS)
        return u

    def _window(self) -> int:
        """Latents drawn at once (``sampling.window``; 0: the whole piece at once)."""
        window = int(self.setting("window", default=0))
        if window == 1 or window < 0:
            raise MusegenError(f"{self.folder}: sampling.window must be 0 or at least 2")
        return window

    def _extra(self, request: GenerateRequest) -> dict[str, Any]:
        extra: dict[str, Any] = {"ddim_steps": self._steps(), "vae": self.meta["vae"]}
        if self.paces is not None:
            extra["pace"] = [round(float(u), 4) for u in self.paces]
            extra["density"] = request.density[0] if request.density else "drawn"
        if self.forms is not None:
            extra["form"] = self.forms
        extra["ending"] = self.ending
        window = self._window()
        return extra | ({"window": window, "window_resample": WINDOW_RESAMPLE} if window else {})

    def _latents(self, request: GenerateRequest, n: int, draws: Any) -> Any:
        self.paces = self._pace(request, draws)
        tie = self._form(request, n)
        return self._draw_latents(request, n, draws, tie)

    def _form(self, request: GenerateRequest, n: int) -> Any:
        """The tie map [num, n] of the pieces' forms (``--form``, else ``sampling.form``),
        or None; sets :attr:`forms` and :attr:`copies`."""
        import torch

        from musegen.sampling.structure import parse_form
        from musegen.sampling.themes import corpus_forms

        self.forms, self.copies = None, None
        asked = request.form
        form = self.setting("form", asked)
        if form in (None, "none"):
            return None
        letters = 4 if form == "auto" else len(parse_form(form))  # forms.json's have four
        if n < letters:
            if asked is None:  # the model's default: for the pieces it fits
                return None
            per = self._bars_per_latent()
            raise MusegenError(
                f"--form {form}: latent-diffusion plans a form over {letters * per} bars at "
                f"least (a section a latent of {per} bars)"
            )
        bars = n * self._bars_per_latent()
        if form == "auto":
            self.forms = corpus_forms("melody", request.seed, bars, request.num)
        else:
            self.forms = ["".join(parse_form(form))] * request.num
        maps = [form_ties(parse_form(f), n) for f in self.forms]
        self.copies = np.stack([c for _, c in maps])
        return torch.as_tensor(np.stack([t for t, _ in maps]))

    def _closed(
        self, request: GenerateRequest, latents: np.ndarray, rows: list[np.ndarray],
        score: Callable[[np.ndarray], Score], temperature: float, draws: Any,
    ) -> list[np.ndarray]:  # fmt: skip
        """With ``--ending tonic`` (else ``sampling.ending``): a piece whose last note is not
        its key's tonic gets its last latent drawn again by infilling, the latents before it
        fixed (the last window's, for a long piece), and decoded; the first new ending that
        passes replaces the old one, up to :data:`~musegen.sampling.endings.TRIES` draws,
        else the piece stays as it was (as :mod:`musegen.sampling.endings` does for token
        models)."""
        import torch

        from musegen.sampling.endings import TRIES, ending_check

        ending = self.setting("ending", request.ending or None, "free")
        self.ending = ending
        if ending == "cadence":
            raise MusegenError("latent-diffusion writes melodies: --ending tonic or free")
        check = ending_check(ending)
        n = latents.shape[1]
        if check is None or n < 2:
            return rows
        rows = list(rows)
        open_ = [i for i, r in enumerate(rows) if not check(score(r))]
        width = min(n, self._window() or n, self.prior.config.max_len)
        for attempt in range(TRIES[ending]):
            if not open_:
                break
            known = torch.as_tensor(latents[open_, n - width :])
            mask = torch.ones(len(open_), width, dtype=torch.bool)
            mask[:, -1] = False
            pace = None if self.paces is None else self.paces[open_]
            z = self.prior.sample(
                len(open_), width, steps=self._steps(), known=known, known_mask=mask,
                resample=RESAMPLE, generator=draws, pace=pace,
            )[:, -1].numpy()  # fmt: skip
            still = []
            for k, i in enumerate(open_):
                seed = request.seed * 1000 + i + 7919 * (attempt + 1)
                new = rows[i].copy()
                new[-1] = self.vae.decode_steps(z[k : k + 1], temperature, seed)[0]
                if check(score(new)):
                    rows[i] = new
                else:
                    still.append(i)
            open_ = still
        return rows

    def _restated(self, piece: int, steps: np.ndarray) -> np.ndarray:
        if self.copies is None:
            return steps
        out = steps.copy()
        for j, k in enumerate(self.copies[piece]):
            if k >= 0:
                out[j] = steps[k]
        return out

    def _draw_latents(self, request: GenerateRequest, n: int, draws: Any, tie: Any = None) -> Any:
        import torch

        shortest = int((self.meta.get("data") or {}).get("min_latents", 1))
        if n < shortest:  # the prior never saw so short a sequence: draw one it knows, cut
            if tie is not None:
                tie = torch.cat([tie, torch.arange(n, shortest).expand(len(tie), -1)], 1)
            return self._draw_latents(request, shortest, draws, tie)[:, :n]
        window = self._window()
        if window and n > window:
            return self._windowed(request.num, n, window, draws, tie)
        if n > self.prior.config.max_len:
            most = self.prior.config.max_len * self._bars_per_latent()
            raise MusegenError(
                f"{self.folder}: writes at most {most} bars, not {n * self._bars_per_latent()}"
            )
        return self.prior.sample(
            request.num, n, steps=self._steps(), generator=draws, pace=self.paces, tie=tie
        )

    def _windowed(self, num: int, n: int, window: int, draws: Any, tie: Any = None) -> Any:
        """``n`` latents a window at a time: the first ``window``, then each next window
        with its first half fixed to the latents before it (infilling's RePaint, resampled
        :data:`WINDOW_RESAMPLE` times a step), keeping the second half. In the corpus long
        tunes are slow ones (Essen's tunes of 64 bars or more have a note a bar, those of
        8-15 bars four, shorter ones six): drawn whole, a long piece would be a slow tune;
        drawn in windows of a typical tune's length, it keeps a typical tune's pace.
        ``tie`` [num, n] (a form): a latent tied to one already drawn is fixed to it, and
        one tied to another in the same window is tied there."""
        import torch

        first = None if tie is None else tie[:, :window]
        z = self.prior.sample(
            num, window, steps=self._steps(), generator=draws, pace=self.paces, tie=first
        )
        keep = window // 2
        while z.shape[1] < n:
            done, new = z.shape[1], min(window - keep, n - z.shape[1])
            known = torch.zeros(num, keep + new, z.shape[2])
            known[:, :keep] = z[:, -keep:]
            mask = torch.zeros(num, keep + new, dtype=torch.bool)
            mask[:, :keep] = True
            local = None
            if tie is not None:
                source = tie[:, done : done + new]  # absolute indices
                drawn = source < done
                rows = torch.arange(num)[:, None].expand(-1, new)
                known[:, keep:][drawn] = z[rows[drawn], source[drawn]]
                mask[:, keep:] |= drawn
                start = done - keep
                local = torch.arange(keep + new).repeat(num, 1)
                local[:, keep:] = torch.where(drawn, local[:, keep:], source - start)
            part = self.prior.sample(
                num, keep + new, steps=self._steps(), known=known, known_mask=mask,
                resample=WINDOW_RESAMPLE, generator=draws, pace=self.paces, tie=local,
            )  # fmt: skip
            z = torch.cat([z, part[:, keep:]], dim=1)
        return z

    def _decoding_temperature(self) -> float:
        """The prior's ``sampling.temperature``, else its VAE's."""
        asked = self.setting("temperature")
        return self.vae.default_temperature if asked is None else float(asked)

    def infill_temperature(self) -> float:
        """As ``generate`` decodes: rewritten bars like the rest of a tune the prior wrote."""
        return self._decoding_temperature()

    def infill(
        self,
        score: Score,
        bars: tuple[int, int],
        voices: str = "SATB",
        *,
        seed: int = 0,
        temperature: float = 1.0,
        steps: int | None = None,
    ) -> Generated:
        """``score``'s melody with the 2-bar segments holding ``bars`` (counted from its
        first bar line) drawn again, every other segment kept as it was."""
        import torch

        rows = self.vae.segments(score)  # each read alone, to encode
        kept = self.vae.steps(score).reshape(rows.shape)  # as written, to keep
        per = self._bars_per_latent()
        first, last = bars
        if first < 1 or last < first:
            raise MusegenError(f"--bars {first}-{last}: bars are counted from 1")
        lo, hi = (first - 1) // per, (last - 1) // per
        if hi >= len(rows):
            raise MusegenError(f"--bars {first}-{last}: the melody has {len(rows) * per} bars")
        if len(rows) > self.prior.config.max_len:
            raise MusegenError(f"the melody is longer than {self.prior.config.max_len * per} bars")
        mu = self.vae.encode_steps(rows)[0]
        known = torch.as_tensor(mu, dtype=torch.float32)[None]
        mask = torch.ones(1, len(rows), dtype=torch.bool)
        mask[0, lo : hi + 1] = False
        ddim = steps or self._steps()
        draws = torch.Generator().manual_seed(seed)
        pace = self._melody_pace(kept[mask[0].numpy()], len(rows))
        z = self.prior.sample(
            1, len(rows), steps=ddim, known=known, known_mask=mask, resample=RESAMPLE,
            generator=draws, pace=pace,
        )[0].numpy()  # fmt: skip
        new = kept.copy()
        new[lo : hi + 1] = self.vae.decode_steps(z[lo : hi + 1], temperature, seed)
        out = self.vae.to_score(new, tempo=_first_tempo(score))
        settings = {
            "rewritten_bars": [lo * per + 1, (hi + 1) * per],
            "sampling": {
                "seed": seed,
                "temperature": temperature,
                "ddim_steps": ddim,
                "resample": RESAMPLE,
                "vae": self.meta["vae"],
            },
        }
        if pace is not None:
            settings["sampling"]["pace"] = round(float(pace[0]), 4)
        return Generated([out], settings)

    def _melody_pace(self, kept: np.ndarray, length: int) -> Any:
        """A paced prior's rank [1] for a melody whose kept segments' steps are ``kept``:
        its notes a segment ranked in the training windows' table (``pace_table``) for
        ``length`` latents; a prior saved without the table ranks it in the middle."""
        import torch

        from musegen.train.latent_diffusion import table_rank

        if not self.prior.config.pace:
            return None
        table = self.meta.get("pace_table")
        notes = float(_onsets(kept).sum(1).mean()) if len(kept) else 0.0
        rank = table_rank(table, length, notes) if table else 0.5
        return torch.tensor([rank])


def form_ties(letters: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """For ``n`` latents in the sections of ``letters`` (equal lengths, the last takes what is
    left): the latent each one is tied to (itself when free; a returning section's latents to
    its first statement's) and the one whose decoded notes it copies (-1: decoded itself, as
    are a returning section's last latent, so that it may close or lead on differently, and
    every free one)."""
    size = n // len(letters)
    starts = [i * size for i in range(len(letters))] + [n]
    tie, copy = np.arange(n), np.full(n, -1)
    first: dict[str, tuple[int, int]] = {}
    for s, letter in enumerate(letters):
        lo, hi = starts[s], starts[s + 1]
        if letter not in first:
            first[letter] = (lo, hi)
            continue
        src, src_hi = first[letter]
        for j in range(lo, hi):
            k = src + j - lo
            if k < src_hi:
                tie[j] = k
                copy[j] = k if j < hi - 1 else -1
    return tie, copy


def _check_request(folder: Any, request: Any, density: bool = False, plans: bool = False) -> None:
    """Refuse what a latent model cannot honour; ``density``: a paced prior's one bin;
    ``plans``: it plans ``--form`` and ``--ending``."""
    if density and len(set(request.density)) > 1:
        raise MusegenError(
            f"--density {','.join(request.density)}: this prior is told one pace for the "
            "whole piece: give one of low, medium, high"
        )
    unused = {
        "--primer": request.primer,
        "--tokens": request.tokens,
        "--top-k": request.top_k,
        "--top-p": request.top_p not in (None, 1.0),
        "--repetition-penalty": request.repetition_penalty != 1.0,
        "--chords": request.chords,
        "--density": request.density and not density,
        "--form": request.form not in (None, "none") and not plans,
        "--ending": request.ending not in (None, "free") and not plans,
        "--theme": request.theme,
    }
    if any(unused.values()):
        flags = ", ".join(flag for flag, given in unused.items() if given)
        raise MusegenError(
            f"{folder}: a latent model decodes latents drawn from its prior ({flags} do not "
            "apply): use --bars, --num, --seed, --temperature, --key, --tempo"
        )
    if request.num < 1:
        raise MusegenError(f"--num must be >= 1, got {request.num}")
    if request.time_signature not in (None, "4/4"):
        raise MusegenError("a latent model writes 4/4 melodies (its bars are 16 16th steps)")


def _bars(request: Any, empty: Score) -> int:
    if request.seconds is not None:
        if request.seconds <= 0:
            raise MusegenError("--seconds must be positive")
        ticks = empty.seconds_to_ticks(request.seconds)
        return max(1, math.ceil(ticks / empty.time_signatures[0].bar_ticks(empty.tpq)))
    bars = 8 if request.bars is None else request.bars
    if bars < 1:
        raise MusegenError("--bars must be >= 1")
    return int(bars)


def _first_tempo(score: Score) -> float | None:
    return float(score.tempos[0].qpm) if score.tempos else None
