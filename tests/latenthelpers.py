"""Tiny melodies and chorales, prepared datasets of them and tiny MusicVAE models, for the
latent-model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from musegen.data.dataset import prepare_dataset
from musegen.data.sources.base import Piece, Source
from musegen.models import build_model, save_model
from musegen.score import VOICES, Score, Tempo, TimeSignature, Track, make_notes
from musegen.tokenizers import get_tokenizer

TINY_VAE = {
    "d_embed": 8,
    "enc_hidden": 16,
    "dec_hidden": 16,
    "conductor_hidden": 16,
    "bar_embed": 8,
    "latent": 4,
    "beta_warmup": 2,
}


def tune(seed: int, bars: int = 4, meter: tuple[int, int] = (4, 4), tpq: int = 480) -> Score:
    """A melody of quarter, eighth and half notes (a rest now and then) drawn by ``seed``."""
    rng = np.random.default_rng(seed)
    num, den = meter
    total = bars * num * 4 * tpq // den
    starts, durs, pitches = [], [], []
    t = 0
    pitch = 60 + int(rng.integers(-3, 4))
    while t < total:
        length = int(rng.choice([tpq // 2, tpq, tpq, 2 * tpq]))
        length = min(length, total - t)
        if rng.random() > 0.1:
            starts.append(t)
            durs.append(length)
            pitches.append(pitch)
        pitch = int(np.clip(pitch + rng.integers(-4, 5), 50, 80))
        t += length
    notes = make_notes(np.array(starts), np.array(durs), np.array(pitches), 80)
    return Score(
        tpq=tpq,
        tracks=[Track(notes, name="tune")],
        tempos=[Tempo(0, 100.0)],
        time_signatures=[TimeSignature(0, num, den)],
    )


class Tunes(Source):
    """Twelve 4/4 tunes of four bars (eight train, two valid, two test) and one in 3/4."""

    name = "tunes"

    def pieces(self) -> list[Piece]:
        splits = ["train"] * 8 + ["valid"] * 2 + ["test"] * 2 + ["train"]
        return [Piece(f"t{i}", s, "code", f"{i:064x}") for i, s in enumerate(splits)]

    def load(self, piece: Piece) -> Score:
        i = int(piece.id[1:])
        return tune(i, meter=(3, 4) if i == 12 else (4, 4))


def chorale(seed: int, bars: int = 4, tpq: int = 480) -> Score:
    """Four voices in 4/4 (Soprano, Alto, Tenor, Bass, each in its own range) of quarter and
    half notes drawn by ``seed``; the alto now and then sings the soprano's pitch."""
    rng = np.random.default_rng(seed)
    total = bars * 4 * tpq
    tracks = []
    for v, (label, centre) in enumerate(zip(VOICES, (72, 64, 57, 48), strict=True)):
        starts, durs, pitches = [], [], []
        t, pitch = 0, centre
        while t < total:
            length = min(int(rng.choice([tpq, tpq, 2 * tpq])), total - t)
            starts.append(t)
            durs.append(length)
            pitches.append(pitch)
            pitch = int(np.clip(pitch + rng.integers(-2, 3), centre - 5, centre + 5))
            t += length
        if v == 1:  # a unison with the soprano's first note
            pitches[0] = int(tracks[0].notes["pitch"][0])
        notes = make_notes(np.array(starts), np.array(durs), np.array(pitches), 80)
        tracks.append(Track(notes, name=label, voice=label))
    return Score(
        tpq=tpq, tracks=tracks, tempos=[Tempo(0, 90.0)], time_signatures=[TimeSignature(0, 4, 4)]
    )


class Chorales(Source):
    """Eight four-voice pieces of four bars in 4/4 (six train, one valid, one test)."""

    name = "chorales"

    def pieces(self) -> list[Piece]:
        splits = ["train"] * 6 + ["valid", "test"]
        return [Piece(f"c{i}", s, "code", f"{i:064x}") for i, s in enumerate(splits)]

    def load(self, piece: Piece) -> Score:
        return chorale(int(piece.id[1:]))


def chorale_tokenizer():  # type: ignore[no-untyped-def]
    return get_tokenizer("chorale", max_bars=8)


def melody_tokenizer():  # type: ignore[no-untyped-def]
    return get_tokenizer("melody", max_bars=8)


def tiny_dataset(folder: Path, source: Source | None = None, tokenizer: object = None) -> Path:
    """The tunes (or ``source``) prepared with the melody tokenizer (or ``tokenizer``)."""
    tokenizer = tokenizer or melody_tokenizer()
    prepare_dataset(source or Tunes(), tokenizer, folder, workers=1, progress=False)  # type: ignore[arg-type]
    return folder


def tiny_chorale_dataset(folder: Path) -> Path:
    return tiny_dataset(folder, Chorales(), chorale_tokenizer())


def tiny_vae(folder: Path, seed: int = 0, tokenizer: object = None, **options: object) -> Path:
    """An untrained tiny music-vae saved with the melody tokenizer (or ``tokenizer``)."""
    torch.manual_seed(seed)
    model = build_model("music-vae", **{**TINY_VAE, **options})
    tokenizer = tokenizer or melody_tokenizer()
    save_model(model, folder, {"tokenizer": tokenizer.to_dict()})  # type: ignore[attr-defined]
    return folder


def tiny_chorale_vae(folder: Path, seed: int = 0) -> Path:
    """An untrained tiny four-voice music-vae saved with the chorale tokenizer."""
    return tiny_vae(folder, seed, chorale_tokenizer(), voices=4)


TINY_PRIOR = {"latent": 4, "max_len": 8, "d_model": 16, "n_layer": 1, "n_head": 2, "d_ff": 32}


def tiny_prior(folder: Path, vae: Path, seed: int = 0) -> Path:
    """An untrained tiny latent-diffusion prior over the latents of the VAE at ``vae``."""
    torch.manual_seed(seed)
    model = build_model("latent-diffusion", **TINY_PRIOR)
    with torch.no_grad():  # an untrained prior predicts v = 0; make it say something
        model.out.weight.normal_(0, 0.1)
    save_model(model, folder, {"vae": str(vae), "bars_per_latent": 2, "sampling": {"steps": 4}})
    return folder
