"""Train a latent diffusion prior (``"latent-diffusion"``) on a MusicVAE's latents.

Each piece of a dataset prepared with the ``melody`` tokenizer is cut at its bar lines into
the VAE's segments (``n_bars`` apart, :func:`musegen.train.vae.melody_segments`) and
encoded (posterior means): one sequence of latents per piece. Pieces longer than
``max_len`` latents give windows ``max_len // 2`` apart; shorter ones are padded and masked.
A run file::

    {"model": "latent-diffusion", "model_config": {"max_len": 32, ...},
     "train": {...},
     "data": {"root": null, "vae": "folk-vae", "min_latents": 2}}

``vae`` is the model reference (a shipped name or a folder) that the prior's folder records,
so that the generator decodes with the same VAE; ``model_config.latent`` is taken from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.train.config import TrainConfig

DATA_DEFAULTS: dict[str, Any] = {"root": None, "vae": "folk-vae", "min_latents": 2}


def latent_sequences(vae: Any, pieces: Any, tokenizer: Any, min_latents: int) -> list[np.ndarray]:
    """One ``[segments, latent]`` array of posterior means per piece with enough segments."""
    from musegen.sampling.latent import encode_rows
    from musegen.train.vae import melody_segments

    n_bars = vae.config.n_bars
    rows, origin = melody_segments(pieces, tokenizer, vae.config, hop_bars=n_bars)
    if not len(rows):
        return []
    latents = encode_rows(vae, rows)
    by_piece: dict[int, list[int]] = {}
    for k, (piece, _start) in enumerate(origin):
        by_piece.setdefault(piece, []).append(k)
    out = []
    for ks in by_piece.values():
        if len(ks) >= min_latents:
            out.append(latents[ks].astype(np.float32))
    return out


class LatentWindows:
    """Items ``(latents [max_len, latent], mask [max_len])``: windows of the sequences."""

    def __init__(self, sequences: list[np.ndarray], max_len: int) -> None:
        self.max_len = max_len
        self.windows: list[np.ndarray] = []
        for seq in sequences:
            hop = max(max_len // 2, 1)
            starts = range(0, max(len(seq) - max_len, 0) + 1, hop)
            self.windows += [seq[s : s + max_len] for s in starts]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        w = self.windows[index]
        z = np.zeros((self.max_len, w.shape[1]), dtype=np.float32)
        z[: len(w)] = w
        mask = np.zeros(self.max_len, dtype=bool)
        mask[: len(w)] = True
        return torch.from_numpy(z), torch.from_numpy(mask)


def data_options(run: dict[str, Any], data_path: str | Path | None) -> dict[str, Any]:
    from musegen.train.run import data_section, require_counts

    options = data_section(run, DATA_DEFAULTS, "latent-diffusion", data_path)
    if not options["root"]:
        raise MusegenError(
            "training latent-diffusion needs --data DIR, a dataset made by "
            "'musegen data prepare SOURCE --tokenizer melody'"
        )
    require_counts(options, {"min_latents": 1})
    return options


def train_latent_diffusion(
    run: dict[str, Any],
    out_dir: str | Path,
    resume: bool = False,
    init: str | None = None,
    data_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train as the run file says; returns the summary (steps, best valid loss, size)."""
    import torch

    from musegen.data.dataset import load_prepared
    from musegen.models.latent_diffusion import diffusion_objective
    from musegen.sampling.latent import LatentVAE
    from musegen.train.run import fit_and_summarize, initial_model, write_run
    from musegen.train.trainer import Trainer

    cfg = TrainConfig.from_dict(run.get("train", {}))
    options = data_options(run, data_path)
    vae = LatentVAE.load(options["vae"])
    data = load_prepared(options["root"])
    if data.tokenizer.name != "melody":
        raise MusegenError(f"{options['root']}: latent-diffusion reads a melody dataset")
    sequences = {
        name: latent_sequences(vae, data.split(name), data.tokenizer, options["min_latents"])
        for name in data.split_names
    }
    for name in ("train", "valid"):
        if not sequences.get(name):
            raise MusegenError(f"{options['root']}: no {name} pieces the VAE can encode")
    config = {**run.get("model_config", {}), "latent": vae.config.latent}
    model = initial_model("latent-diffusion", config, cfg.seed, init, resume)
    model.set_statistics(torch.from_numpy(np.concatenate(sequences["train"])))
    train = LatentWindows(sequences["train"], model.config.max_len)
    valid = LatentWindows(sequences["valid"], model.config.max_len)
    used = {"model": "latent-diffusion", "model_config": model.config.to_dict()}
    used |= {"train": cfg.to_dict(), "data": options}
    out = write_run(out_dir, used, init)
    meta = {
        "vae": options["vae"],
        "bars_per_latent": vae.config.n_bars,
        "data": options,
        "sequences": {k: len(v) for k, v in sequences.items()},
        "parameters": model.num_parameters(),
        "loss_unit": "mean squared error of v per latent dimension",
    }
    trainer = Trainer(model, train, valid, cfg, out, objective=diffusion_objective, meta=meta)
    return fit_and_summarize(trainer, resume)
