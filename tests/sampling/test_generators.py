"""One generator per model kind: the same request gives what the commands wrote before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model, save_model
from musegen.sampling.generate import SamplingConfig
from musegen.sampling.generators import (
    CoconetGenerator,
    CspGenerator,
    FrameGenerator,
    GenerateRequest,
    Generator,
    TokenGenerator,
    load_generator,
)
from musegen.sampling.pieces import PieceRequest, compose
from musegen.tokenizers import get_tokenizer


@pytest.fixture(scope="module")
def token_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = get_tokenizer("remi", positions_per_quarter=4, velocity_bins=0, tempo_bins=0)
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=32, n_head=2)
    folder = tmp_path_factory.mktemp("m") / "tiny"
    meta = {"tokenizer": tok.to_dict(), "sampling": {"temperature": 0.9, "top_p": 0.8}}
    save_model(model, folder, meta)
    return folder


def notes(score: object) -> list[np.ndarray]:
    return [t.notes for t in score.tracks]  # type: ignore[attr-defined]


def test_token_generator_equals_compose_with_the_models_defaults(token_model: Path) -> None:
    """The generator is compose() with the config's sampling defaults, nothing more."""
    generator = load_generator(str(token_model))
    assert isinstance(generator, TokenGenerator) and generator.serves == ("generate",)
    got = generator.generate(GenerateRequest(num=2, seed=4, bars=2))
    sampling = SamplingConfig(temperature=0.9, top_p=0.8, seed=4)
    want = compose(generator.model, generator.tokenizer, PieceRequest(bars=2), sampling, num=2)
    for a, b in zip(got.pieces, want, strict=True):
        for x, y in zip(notes(a), notes(b), strict=True):
            np.testing.assert_array_equal(x, y)
    assert got.settings["sampling"] == sampling.to_dict()
    assert got.settings["request"]["bars"] == 2 and got.settings["voices"] == 0
    with pytest.raises(MusegenError, match="serves generate, not infill"):
        generator.infill(got.pieces[0], (1, 1))


def test_coconet_generator_serves_four_commands_and_refuses_a_primer() -> None:
    generator = load_generator("coconet")
    assert isinstance(generator, CoconetGenerator)
    assert generator.serves == ("generate", "harmonize", "infill", "accompany")
    with pytest.raises(MusegenError, match="from scratch"):
        generator.generate(GenerateRequest(primer="corpus:bach/bwv66.6"))
    with pytest.raises(MusegenError, match="--voices must be >= 0"):
        generator.generate(GenerateRequest(voices=-1))


def test_frame_generator_draws_the_models_rolls() -> None:
    """jsb-frame's pieces are the model's own samples for the seed, frame for frame."""
    from musegen.tokenizers.grid import to_binary_roll

    generator = load_generator("jsb-frame")
    assert isinstance(generator, FrameGenerator) and generator.serves == ("generate",)
    got = generator.generate(GenerateRequest(num=2, seed=3, bars=2))
    assert got.settings["sampling"] == {"seed": 3, "frames": 8, "frames_per_quarter": 1}
    generator.model.eval()
    want = generator.model.sample(8, 2, torch.Generator().manual_seed(3)).numpy()
    for score, roll in zip(got.pieces, want, strict=True):
        np.testing.assert_array_equal(to_binary_roll(score, 1, n_frames=8), roll)
    with pytest.raises(MusegenError, match="--top-p, --repetition-penalty do not apply"):
        generator.generate(GenerateRequest(top_p=0.9, repetition_penalty=1.2))
    with pytest.raises(MusegenError, match="serves generate, not harmonize"):
        generator.harmonize(got.pieces[0])


def test_csp_is_a_generator_without_a_model() -> None:
    from musegen.compose.csp import harmonize_csp
    from musegen.io import load

    generator = load_generator("csp")
    assert isinstance(generator, CspGenerator) and generator.folder is None
    melody = load("corpus:bach/bwv66.6")
    melody.tracks = melody.tracks[:1]
    got = generator.harmonize(melody, seed=9)
    assert got.settings == {"seed": None, "samples": None}
    for a, b in zip(notes(got.pieces[0]), notes(harmonize_csp(melody)), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(MusegenError, match="soprano melody only"):
        generator.harmonize(melody, "A")
    with pytest.raises(MusegenError, match=r"csp \(rule-based harmonizer\) serves harmonize, not"):
        generator.infill(melody, (1, 1))


def test_key_bias_from_the_request_or_the_models_config(token_model: Path) -> None:
    """``key_bias`` reaches the sampler (saved with the settings), off unless asked for; a
    block of pitches above MIDI 0 is read from its vocabulary's lowest pitch."""
    from musegen.sampling.generate import _pitch_base

    generator = load_generator(str(token_model))
    assert _pitch_base(generator.tokenizer) == generator.tokenizer.vocab.pitch_lo
    plain = generator.generate(GenerateRequest(num=2, seed=4, bars=4))
    biased = generator.generate(GenerateRequest(num=2, seed=4, bars=4, key_bias=50.0))
    assert plain.settings["sampling"]["key_bias"] == 0.0
    assert biased.settings["sampling"]["key_bias"] == 50.0
    assert any(
        not np.array_equal(x, y)
        for a, b in zip(plain.pieces, biased.pieces, strict=True)
        for x, y in zip(notes(a), notes(b), strict=True)
    )
    generator.meta["sampling"]["key_bias"] = 50.0
    again = generator.generate(GenerateRequest(num=2, seed=4, bars=4))
    assert again.settings["sampling"]["key_bias"] == 50.0


def test_setting_is_the_request_else_the_models_sampling_else_the_default() -> None:
    gen = Generator(None, {"sampling": {"steps": 20, "form": None}}, None)
    assert gen.setting("steps") == 20
    assert gen.setting("steps", 5) == 5  # asked wins
    assert gen.setting("window", default=0) == 0
    assert gen.setting("form", default="AABA") is None  # the model's own None is its setting
    assert Generator(None, {}, None).setting("steps", default=50) == 50
