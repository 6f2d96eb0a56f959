"""One interface per model kind: a request in, pieces out, so commands never branch on the kind.

:func:`load_generator` resolves a model reference (a shipped name, a model folder, a run
folder) and wraps the model in the :class:`Generator` for its kind:

- :class:`TokenGenerator`: token models (transformer, lstm, gru) with a tokenizer; they write
  new pieces (``generate``) by autoregressive sampling (:mod:`musegen.sampling.pieces`); one
  trained with the infill objective (``chorale-infill``, ``melody-infill`` tokens) also
  rewrites bars (``infill``) and writes voices under a melody (``accompany``), by
  :mod:`musegen.sampling.infill`.
- :class:`CoconetGenerator`: Coconet, an orderless model over four-voice 16th-note grids; it
  writes new chorales, harmonizes given lines (``harmonize``, ``accompany``) and rewrites bars
  by blocked Gibbs sampling (:mod:`musegen.sampling.gibbs`).
- :class:`FrameGenerator`: the piano-roll frame models (rnn-nade, frame-bernoulli); they write
  new pieces frame by frame from the model's exact distribution.
- :class:`CspGenerator`: no model but a method, ``csp``: the rule-based harmonizer
  (:mod:`musegen.compose.csp`), deterministic.

A generator says which commands it serves (:attr:`Generator.serves`); asking it for another
raises one :class:`~musegen.errors.MusegenError` line that names them. Each method returns
:class:`Generated`: the pieces and the settings it used, which the command saves beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from musegen.errors import MusegenError
from musegen.score import Score

if TYPE_CHECKING:
    from musegen.sampling.generate import SamplingConfig
    from musegen.sampling.gibbs import AnnealSchedule
    from musegen.sampling.pieces import PieceRequest


def sampling_defaults(meta: dict) -> dict[str, Any]:  # type: ignore[type-arg]
    """Temperature, top-p and meter a model's config asks for (chosen on its valid split),
    else 1.0, 0.95 and none; ``meters``: the shares each piece's meter is drawn with when none
    is asked for (a model that starts with a meter token and has none draws from that token);
    ``ending``: how pieces must close (``cadence``, ``tonic``; default ``free``, see
    :mod:`musegen.sampling.endings`); ``voice_ranges``: the ranges a new piece is moved into
    and ``voice_centres`` the mean pitches it is moved nearest among the keys that fit
    (:mod:`musegen.sampling.register`; default none); ``form``: the sections new pieces of a
    given length are planned in (``auto``: drawn per piece from the corpus's forms, see
    :mod:`musegen.sampling.themes`; default none); ``modes``: the shares each new piece's
    mode is drawn with, for a model whose tokenizer writes one (default: the model's own)."""
    given = meta.get("sampling") or {}
    return {
        "temperature": float(given.get("temperature", 1.0)),
        "top_p": float(given.get("top_p", 0.95)),
        "pitch_top_p": float(given.get("pitch_top_p", 1.0)),
        "key_bias": float(given.get("key_bias", 0.0)),
        "time_signature": given.get("time_signature"),  # None: each piece's meter is drawn
        "meters": given.get("meters"),
        "modes": given.get("modes"),
        "ending": given.get("ending", "free"),
        "voice_ranges": given.get("voice_ranges"),
        "voice_centres": given.get("voice_centres"),
        "form": given.get("form"),
    }


def with_default_form(request: GenerateRequest, form: str | None) -> GenerateRequest:
    """``request`` with the model's default ``form`` where it asks for none and plans new
    pieces of 8 bars or more (no primer, theme, seconds or token cap: sections of two bars
    at least); ``--form none`` asks for no form."""
    from dataclasses import replace

    if request.form == "none":
        return replace(request, form=None)
    plain = not (request.primer or request.theme or request.seconds or request.tokens)
    if request.form is None and form and plain and (request.bars or 0) >= 8:
        return replace(request, form=form)
    return request


@dataclass
class GenerateRequest:
    """New pieces, as ``musegen generate`` asks for them. None means the model's default
    (its config's sampling settings, else the documented fallback)."""

    num: int = 1
    seed: int = 0
    bars: int | None = 8
    seconds: float | None = None
    tokens: int | None = None  # a cap on new tokens (token models)
    primer: str | None = None  # a file or corpus: reference to continue
    primer_bars: int | None = None
    temperature: float | None = None
    top_k: int = 0
    top_p: float | None = None
    pitch_top_p: float | None = None
    key_bias: float | None = None  # nats off pitches out of the key so far (None: the model's)
    repetition_penalty: float = 1.0
    tempo: float | None = None
    time_signature: str | None = None
    key: str | None = None
    mode: str | None = None  # major / minor, for a model that writes the mode
    program: int | None = None
    voices: int | None = None  # deal notes out to N voices (None: the model's config says)
    ending: str | None = None  # cadence / tonic / free (None: the model's config says)
    # per-bar controls, cycled over the bars (token models whose tokenizer carries them)
    chords: tuple[str, ...] = ()  # chord names, e.g. ("C", "G", "Am", "F")
    density: tuple[str, ...] = ()  # density bins: low / medium / high
    instruments: tuple[int, ...] = ()  # GM programs the piece is played by (128: drums)
    style: str | None = None  # a style tag the model knows (remi-instruments ``styles``)
    # bar plans (token models with a bar grid; musegen.sampling.themes / .structure)
    theme: str | None = None  # a file whose first bars' top line the piece states and restates
    theme_at: tuple[int, ...] = ()  # 1-based bars where statements start (default: phrases)
    theme_variation: str = "mixed"  # how later statements vary: exact/sequence/varied/mixed
    form: str | None = None  # sections such as "AABA", or "auto" (drawn from corpus shares)
    chord_tones: str = "off"  # with chords: notes on beats (beats) or all notes (all) in the chord


@dataclass
class Generated:
    """What a generator wrote: the pieces, and the settings it used (saved as JSON)."""

    pieces: list[Score]
    settings: dict[str, Any] = field(default_factory=dict)


class Generator:
    """A loaded model (or a method) that turns requests into pieces. Subclasses implement the
    commands named in :attr:`serves`; the others raise a one-line error naming what it serves.
    ``folder`` is where the model was loaded from (None for a method such as ``csp``);
    ``file_tag`` is added to the names of the files a command writes by default."""

    kind: ClassVar[str] = "model"
    serves: ClassVar[tuple[str, ...]] = ()
    file_tag: ClassVar[str] = ""

    def __init__(self, model: Any, meta: dict[str, Any], folder: Path | None) -> None:
        self.model = model
        self.meta = meta
        self.folder = folder

    def setting(self, key: str, asked: Any = None, default: Any = None) -> Any:
        """``asked`` (what the request says) where it is not None, else the model config's
        ``sampling[key]``, else ``default``."""
        if asked is not None:
            return asked
        return (self.meta.get("sampling") or {}).get(key, default)

    def _unserved(self, command: str) -> MusegenError:
        name = self.meta.get("model")
        where = f"{self.folder}: a {name} model" if self.folder else str(name)
        return MusegenError(
            f"{where} ({self.kind}) serves "
            f"{', '.join(self.serves) or 'no musegen command'}, not {command}"
        )

    def generate(self, request: GenerateRequest) -> Generated:
        """New pieces from scratch or continuing a primer."""
        raise self._unserved("generate")

    def controls(self) -> tuple[str, ...]:
        """The per-bar controls of :class:`GenerateRequest` this generator honours
        (``chords``, ``density``)."""
        return ()

    @classmethod
    def capabilities(cls, meta: dict[str, Any]) -> tuple[str, ...]:
        """What a model of this kind saved with config ``meta`` can do, without loading it
        (``musegen models``; :mod:`musegen.sampling.capabilities`): the commands served."""
        return cls.serves

    def harmonize(
        self,
        melody: Score,
        voices: str = "S",
        *,
        seed: int = 0,
        temperature: float = 1.0,
        steps: int | None = None,
        samples: int = 1,
        strict: bool = False,
    ) -> Generated:
        """The other voices of a four-part piece around the given ``voices`` of ``melody``."""
        raise self._unserved("harmonize")

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
        """``score`` with ``voices`` in ``bars`` (1-based, inclusive) rewritten."""
        raise self._unserved("infill")

    def infill_temperature(self) -> float:
        """The temperature ``musegen infill`` uses when none is given."""
        return 1.0

    def accompany(
        self, melody: Score, voice: str = "S", *, seed: int = 0, temperature: float = 1.0
    ) -> Generated:
        """Four voices: ``melody`` sung by ``voice``, the others written around it."""
        raise self._unserved("accompany")


class TokenGenerator(Generator):
    """A token model and its tokenizer: autoregressive sampling, grammar-masked."""

    kind = "token model"
    serves = ("generate",)

    def __init__(self, model: Any, meta: dict[str, Any], folder: Path, tokenizer: Any) -> None:
        from musegen.tokenizers.infill import can_infill

        super().__init__(model, meta, folder)
        self.tokenizer = tokenizer
        if can_infill(tokenizer):  # trained with the infill objective (musegen.train.infill)
            self.serves = ("generate", "infill", "accompany")  # type: ignore[misc]

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
        """Bars rewritten by a model trained to infill (:mod:`musegen.sampling.infill`); the
        given cells are forced, so they are kept exactly. ``steps`` (Gibbs) does not apply."""
        if "infill" not in self.serves:
            raise self._unserved("infill")
        if steps:
            raise MusegenError("--steps counts Coconet's Gibbs steps; a token model takes none")
        from musegen.sampling.infill import InfillOptions, infill_score

        sampling = self._infill_sampling(seed, temperature)
        options = InfillOptions.from_meta(self.meta)
        out = infill_score(
            self.model, self.tokenizer, score, bars, voices, sampling=sampling, options=options
        )
        return Generated([out], {"sampling": sampling.to_dict()})

    def accompany(
        self, melody: Score, voice: str = "S", *, seed: int = 0, temperature: float = 1.0
    ) -> Generated:
        if "accompany" not in self.serves:
            raise self._unserved("accompany")
        from musegen.sampling.infill import InfillOptions, accompany_score

        sampling = self._infill_sampling(seed, temperature)
        options = InfillOptions.from_meta(self.meta)
        out = accompany_score(
            self.model, self.tokenizer, melody, voice, sampling=sampling, options=options
        )
        return Generated([out], {"sampling": sampling.to_dict()})

    def _infill_sampling(self, seed: int, temperature: float) -> SamplingConfig:
        from musegen.sampling.generate import SamplingConfig

        top_p = sampling_defaults(self.meta)["top_p"]
        return SamplingConfig(temperature=temperature, top_p=top_p, seed=seed)

    def generate(self, request: GenerateRequest) -> Generated:
        from musegen.io import load
        from musegen.sampling.pieces import PieceRequest, compose

        defaults = sampling_defaults(self.meta)
        request = with_default_form(request, defaults["form"])
        if request.form == "auto" and request.num > 1 and not request.theme:
            return self._generate_by_form(request)
        pieces_request = PieceRequest(
            bars=request.bars,
            seconds=request.seconds,
            primer=load(request.primer) if request.primer else None,
            primer_bars=request.primer_bars,
            tempo=request.tempo,
            time_signature=request.time_signature or defaults["time_signature"],
            meters=defaults["meters"],
            key=request.key,
            mode=request.mode,
            modes=defaults["modes"],
            program=request.program,
            max_tokens=request.tokens,
            ending=request.ending or defaults["ending"],
            voice_ranges=defaults["voice_ranges"],
            voice_centres=defaults["voice_centres"],
        )
        sampling = _sampling(request, defaults)
        voices = _voices(request, self.meta)
        tokenizer = self.tokenizer
        if request.chords or request.density:  # the grammar forces each bar's control tokens
            tokenizer = tokenizer.controlled(request.chords, request.density)
        if request.instruments:  # the grammar forces the header and keeps notes to it
            tokenizer = tokenizer.instrumented(request.instruments)
        if request.style:  # the grammar forces the STYLE token after BOS and every bar
            tokenizer = tokenizer.styled(request.style)
        if request.chord_tones != "off":  # melodies that spell the chords asked for
            from musegen.sampling.chord_tones import chord_toned

            tokenizer = chord_toned(tokenizer, request.chord_tones)
        plan = None
        if request.theme or request.form:  # the grammar forces the bars the plan restates
            from musegen.sampling.themes import plan_for

            tokenizer, pieces_request, plan = plan_for(tokenizer, request, pieces_request)
        pieces = compose(
            self.model, tokenizer, pieces_request, sampling, num=request.num, progress=True
        )
        if voices:
            from musegen.voices import separate_voices

            pieces = [separate_voices(score, voices) for score in pieces]
        settings = _settings(sampling, pieces_request, request.primer, voices)
        if request.chords or request.density:
            settings["controls"] = {
                "chords": list(request.chords),
                "density": list(request.density),
            }
            if request.chord_tones != "off":
                settings["controls"]["chord_tones"] = request.chord_tones
        if request.instruments:
            settings["instruments"] = list(request.instruments)
        if request.style:
            settings["style"] = request.style
        if plan:
            settings["plan"] = plan
        return Generated(pieces, settings)

    def _generate_by_form(self, request: GenerateRequest) -> Generated:
        """``--form auto`` for several pieces: each piece draws its own form (the first
        draw is the one a single piece gets); the pieces of one form are sampled together,
        the k-th form's with a seed derived from the request's and k."""
        from dataclasses import replace

        import numpy as np

        from musegen.sampling.themes import auto_forms

        forms = auto_forms(self.tokenizer, request.seed, request.bars or 0, request.num)
        groups: dict[str, list[int]] = {}
        for i, form in enumerate(forms):
            groups.setdefault(form, []).append(i)
        pieces: list[Score] = [Score()] * request.num
        settings: dict[str, Any] = {}
        for k, (form, where) in enumerate(groups.items()):
            seed = (
                request.seed
                if k == 0
                else int(np.random.SeedSequence([request.seed, k]).generate_state(1)[0] >> 1)
            )
            done = self.generate(replace(request, form=form, num=len(where), seed=seed))
            for i, piece in zip(where, done.pieces, strict=True):
                pieces[i] = piece
            settings = settings or done.settings
        settings["plan"] = {"form": "auto", "forms": forms}
        return Generated(pieces, settings)

    def controls(self) -> tuple[str, ...]:
        return tuple(getattr(self.tokenizer, "controls", ()))

    @classmethod
    def capabilities(cls, meta: dict[str, Any]) -> tuple[str, ...]:
        from musegen.sampling.capabilities import token_capabilities
        from musegen.tokenizers import tokenizer_from_dict

        return token_capabilities(tokenizer_from_dict(meta["tokenizer"]))


class CoconetGenerator(Generator):
    """Coconet: blocked Gibbs sampling on a four-voice grid, from scratch or around given
    notes. It writes its four voices itself, so ``voices`` is recorded, never applied."""

    kind = "four-voice grid model"
    serves = ("generate", "harmonize", "infill", "accompany")

    def generate(self, request: GenerateRequest) -> Generated:
        from musegen.sampling.gibbs import generate_chorales
        from musegen.sampling.pieces import PieceRequest, finish_piece

        if request.primer or request.seconds or request.tokens:
            raise MusegenError(
                f"{self.folder}: Coconet writes chorales from scratch: use --bars and --num "
                "(continue a primer with a token model; rewrite bars with 'musegen infill')"
            )
        defaults = sampling_defaults(self.meta)
        meter = request.time_signature or defaults["time_signature"]
        if meter not in (None, "4/4"):  # it wrote 4/4 bars whatever was asked
            raise MusegenError(
                f"{self.folder}: Coconet writes 4/4 chorales only (its grid has 16 steps a "
                f"bar), not {meter}: leave out --time-signature, or use a token model (bach)"
            )
        sampling = _sampling(request, defaults)
        voices = _voices(request, self.meta)
        bars = 8 if request.bars is None else request.bars
        pieces = generate_chorales(
            self.model,
            bars=bars,
            num=request.num,
            seed=request.seed,
            temperature=sampling.temperature,
            qpm=request.tempo or 80.0,
        )
        asked = PieceRequest(
            bars=bars,
            tempo=request.tempo,
            time_signature=request.time_signature or defaults["time_signature"],
            meters=defaults["meters"],
            key=request.key,
            program=request.program,
        )
        pieces = [finish_piece(p, asked, p) for p in pieces]  # --key and --program
        return Generated(pieces, _settings(sampling, asked, None, voices))

    def harmonize(
        self,
        melody: Score,
        voices: str = "S",
        *,
        seed: int = 0,
        temperature: float = 1.0,
        steps: int | None = None,
        samples: int = 1,
        strict: bool = False,
    ) -> Generated:
        from musegen.sampling.gibbs import HarmonizeOptions, harmonize

        score = harmonize(
            self.model,
            melody,
            voices,
            seed=seed,
            temperature=temperature,
            schedule=_schedule(steps),
            options=HarmonizeOptions(samples=samples, strict=strict),
        )
        return Generated([score])

    def accompany(
        self, melody: Score, voice: str = "S", *, seed: int = 0, temperature: float = 1.0
    ) -> Generated:
        """Coconet harmonizes the melody (:meth:`harmonize` with its defaults)."""
        return self.harmonize(melody, voice, seed=seed, temperature=temperature)

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
        from musegen.sampling.gibbs import infill

        out = infill(
            self.model,
            score,
            bars,
            voices,
            seed=seed,
            temperature=temperature,
            schedule=_schedule(steps),
        )
        return Generated([out])


class FrameGenerator(Generator):
    """A piano-roll frame model: each frame's keys drawn from the model's exact conditional
    given the frames before, from an empty start; runs of a held key become one note. Its
    folder says the frame rate and the lowest key (``frames_per_quarter``, ``low_pitch``)."""

    kind = "piano-roll frame model"
    serves = ("generate",)

    def generate(self, request: GenerateRequest) -> Generated:
        import math

        import torch

        from musegen.sampling.generate import decoding_threads
        from musegen.sampling.pieces import PieceRequest, finish_piece, primer_score
        from musegen.tokenizers.grid import from_binary_roll

        unused = {
            "--primer": request.primer,
            "--tokens": request.tokens,
            "--temperature": request.temperature not in (None, 1.0),
            "--top-k": request.top_k,
            "--top-p": request.top_p not in (None, 1.0),
            "--pitch-top-p": request.pitch_top_p not in (None, 1.0),
            "--key-bias": request.key_bias not in (None, 0.0),
            "--repetition-penalty": request.repetition_penalty != 1.0,
        }
        if any(unused.values()):
            flags = ", ".join(flag for flag, given in unused.items() if given)
            raise MusegenError(
                f"{self.folder}: a frame model draws new pieces from its own distribution "
                f"({flags} do not apply): use --bars or --seconds, --num, --seed and the maps"
            )
        if request.num < 1:
            raise MusegenError(f"--num must be >= 1, got {request.num}")
        rate, low = self._frames()
        asked = PieceRequest(
            bars=request.bars,
            seconds=request.seconds,
            tempo=request.tempo,
            time_signature=request.time_signature or "4/4",
            key=request.key,
            program=request.program,
        )
        empty = primer_score(asked)  # the tempo and meter asked for, checked
        n_frames = max(1, math.ceil(_length_ticks(empty, asked) * rate / empty.tpq))
        self.model.eval()
        device = next(self.model.parameters()).device
        draws = torch.Generator(device=device).manual_seed(request.seed)
        with decoding_threads(self.model, request.num, device):  # steps too small to share
            rolls = self.model.sample(n_frames, batch_size=request.num, generator=draws)
        pieces = [
            finish_piece(from_binary_roll(roll, rate, low=low), asked, empty)
            for roll in rolls.cpu().numpy()
        ]
        voices = _voices(request, self.meta)
        if voices:
            from musegen.voices import separate_voices

            pieces = [separate_voices(score, voices) for score in pieces]
        sampling = {"seed": request.seed, "frames": n_frames, "frames_per_quarter": rate}
        settings = {"sampling": sampling, "request": vars(asked), "voices": voices}
        return Generated(pieces, settings)

    def _frames(self) -> tuple[int, int]:
        """Frames per quarter note and the MIDI pitch of the roll's first key."""
        if "frames_per_quarter" not in self.meta:
            raise MusegenError(
                f"{self.folder}: its config.json names no frame rate (frames_per_quarter); "
                "retrain it with 'musegen train'"
            )
        return int(self.meta["frames_per_quarter"]), int(self.meta.get("low_pitch", 21))


class CspGenerator(Generator):
    """The rule-based four-part harmonizer (:func:`musegen.compose.csp.harmonize_csp`): exact
    dynamic programming over chords under the textbook rules; no model, no randomness."""

    kind = "rule-based harmonizer"
    serves = ("harmonize",)
    file_tag = "csp"

    def harmonize(
        self,
        melody: Score,
        voices: str = "S",
        *,
        seed: int = 0,
        temperature: float = 1.0,
        steps: int | None = None,
        samples: int = 1,
        strict: bool = False,
    ) -> Generated:
        """Four parts under a soprano (``seed``, ``temperature``, ``steps`` and ``samples``
        do not apply; it never writes parallel fifths or octaves, ``strict`` or not)."""
        from musegen.compose.csp import harmonize_csp

        if voices.upper() != "S":
            raise MusegenError("--model csp harmonizes a soprano melody only (--voices S)")
        if not any(len(t) for t in melody.tracks if not t.is_drum):
            raise MusegenError("the melody has no notes")
        return Generated([harmonize_csp(melody)], {"seed": None, "samples": None})


# model name -> its generator; a model not named here is a token model if it has a tokenizer
GENERATORS: dict[str, type[Generator]] = {
    "coconet": CoconetGenerator,
    "rnn-nade": FrameGenerator,
    "frame-bernoulli": FrameGenerator,
}
# models whose generators live in musegen.sampling.latent (loaded when one is asked for)
LATENT_MODELS = ("latent-diffusion", "music-vae")
# methods that need no model folder, by the name a command's --model takes
METHODS: dict[str, type[Generator]] = {"csp": CspGenerator}


def load_generator(ref: str | None, device: str = "cpu") -> Generator:
    """The generator for a model reference (see :func:`musegen.models.pretrained.resolve_model`;
    None: the default shipped model), its model loaded on ``device``; or for a method's name
    (:data:`METHODS`: ``csp``)."""
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model
    from musegen.tokenizers import tokenizer_from_dict

    if ref in METHODS:
        return METHODS[ref](None, {"model": ref}, None)
    folder = resolve_model(ref)
    model, meta = load_model(folder, map_location=device)
    cls = generator_class(meta)
    if cls is TokenGenerator:
        return TokenGenerator(model, meta, folder, tokenizer_from_dict(meta["tokenizer"]))
    if cls is not None:
        return cls(model, meta, folder)
    raise MusegenError(
        f"{folder}: a {meta.get('model')} model names no tokenizer, so it writes no pieces; "
        "load it with the Python API (musegen.models.load_model)"
    )


def generator_class(meta: dict[str, Any]) -> type[Generator] | None:
    """The generator that serves a model saved with config ``meta``: its kind's in
    :data:`GENERATORS`, else a token model's when it names a tokenizer, else None."""
    name = meta.get("model")
    if name in LATENT_MODELS:  # deferred: musegen.sampling.latent builds on us
        from musegen.sampling.latent import latent_generator_class

        return latent_generator_class(name)
    if name in GENERATORS:
        return GENERATORS[name]
    if name == "chord-lstm":  # deferred: musegen.sampling.rl_chord builds on us
        from musegen.sampling.rl_chord import RlChordGenerator

        return RlChordGenerator
    if name in ("crnngan", "midinet", "musegan"):  # deferred: musegen.sampling.gan builds on us
        from musegen.sampling.gan import GanGenerator

        return GanGenerator
    return TokenGenerator if "tokenizer" in meta else None


def _sampling(request: GenerateRequest, defaults: dict[str, Any]) -> SamplingConfig:
    """The :class:`~musegen.sampling.generate.SamplingConfig` of a request over defaults."""
    from musegen.sampling.generate import SamplingConfig

    return SamplingConfig(
        temperature=defaults["temperature"] if request.temperature is None else request.temperature,
        top_k=request.top_k,
        top_p=defaults["top_p"] if request.top_p is None else request.top_p,
        pitch_top_p=defaults["pitch_top_p"] if request.pitch_top_p is None else request.pitch_top_p,
        key_bias=defaults["key_bias"] if request.key_bias is None else request.key_bias,
        repetition_penalty=request.repetition_penalty,
        seed=request.seed,
    )


def _settings(
    sampling: SamplingConfig, asked: PieceRequest, primer: str | None, voices: int
) -> dict[str, Any]:
    """What a ``generate`` used, for its settings JSON: the sampling, the request (the primer
    as the file it came from, not its notes) and the voices."""
    request = {k: v for k, v in vars(asked).items() if k != "primer"} | {"primer": primer}
    return {"sampling": sampling.to_dict(), "request": request, "voices": voices}


def _length_ticks(score: Score, request: PieceRequest) -> int:
    """The length a request asks for, in ticks of ``score`` (its tempo and meter)."""
    if request.seconds is not None:
        if request.seconds <= 0:
            raise MusegenError("--seconds must be positive")
        return int(score.seconds_to_ticks(request.seconds))
    bars = 8 if request.bars is None else request.bars
    if bars < 1:
        raise MusegenError("--bars must be >= 1")
    return bars * score.time_signatures[0].bar_ticks(score.tpq)


def _voices(request: GenerateRequest, meta: dict[str, Any]) -> int:
    """Voices to deal notes out to: the request's, else the model config's, else 0."""
    voices = meta.get("voices", 0) if request.voices is None else request.voices
    if voices < 0:
        raise MusegenError(f"--voices must be >= 0, got {voices}")
    return int(voices)


def _schedule(steps: int | None) -> AnnealSchedule | None:
    """A fixed number of Gibbs steps, or None for the default annealed schedule."""
    from musegen.sampling.gibbs import AnnealSchedule

    return AnnealSchedule(steps=steps) if steps else None
