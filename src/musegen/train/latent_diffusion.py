"""Train a latent diffusion prior (``"latent-diffusion"``) on a MusicVAE's latents.

Each piece of a dataset prepared with the ``melody`` tokenizer is cut at its bar lines into
the VAE's segments (``n_bars`` apart, :func:`musegen.train.vae.melody_segments`) and
encoded (posterior means): one sequence of latents per piece. Pieces longer than
``max_len`` latents give windows ``max_len // 2`` apart; shorter ones are padded and masked.
For a prior with ``pace``, each window also carries its pace rank (:func:`pace_ranks`).
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


Sequence = tuple[np.ndarray, np.ndarray]  # posterior means [segments, latent], notes [segments]


def latent_sequences(vae: Any, pieces: Any, tokenizer: Any, min_latents: int) -> list[Sequence]:
    """Per piece with enough segments: the ``[segments, latent]`` posterior means and each
    segment's number of notes."""
    from musegen.models.vae_steps import FIRST_PITCH
    from musegen.sampling.latent import encode_rows
    from musegen.train.vae import melody_segments

    n_bars = vae.config.n_bars
    rows, origin = melody_segments(pieces, tokenizer, vae.config, hop_bars=n_bars)
    if not len(rows):
        return []
    latents = encode_rows(vae, rows)
    notes = (rows >= FIRST_PITCH).sum(1)
    by_piece: dict[int, list[int]] = {}
    for k, (piece, _start) in enumerate(origin):
        by_piece.setdefault(piece, []).append(k)
    out = []
    for ks in by_piece.values():
        if len(ks) >= min_latents:
            out.append((latents[ks].astype(np.float32), notes[ks]))
    return out


def _compared(lengths: np.ndarray, n: int, least: int) -> np.ndarray:
    """Which windows one of ``n`` latents is ranked among: those of its length, widened to
    neighbouring lengths until there are at least ``least``."""
    k = 0
    while (np.abs(lengths - n) <= k).sum() < min(least, len(lengths)):
        k += 1
    return np.abs(lengths - n) <= k


def pace_ranks(density: np.ndarray, lengths: np.ndarray, least: int = 32) -> np.ndarray:
    """Each window's rank in [0, 1] by ``density`` (notes a segment) among the windows of its
    length (``lengths``, in latents), widened to neighbouring lengths until at least ``least``
    windows are compared: a short tune is ranked among short tunes, a long one among long
    ones (in the corpus long tunes are slow), so a uniform rank draws each length's spread."""
    density, lengths = np.asarray(density, float), np.asarray(lengths)
    ranks = np.zeros(len(density))
    for n in np.unique(lengths):
        pool = np.sort(density[_compared(lengths, n, least)])
        mine = lengths == n
        below = np.searchsorted(pool, density[mine], "left")
        above = np.searchsorted(pool, density[mine], "right")
        ranks[mine] = (below + above) / (2 * len(pool))  # ties share the middle rank
    return ranks


def pace_table(
    density: np.ndarray, lengths: np.ndarray, least: int = 32, points: int = 21
) -> dict[str, list[float]]:
    """Per length (in latents, as a string): ``points`` evenly spaced quantiles of the
    windows' ``density`` among the windows :func:`pace_ranks` compares them with, saved with
    a paced prior to rank a given melody (:func:`table_rank`)."""
    density, lengths = np.asarray(density, float), np.asarray(lengths)
    table = {}
    for n in np.unique(lengths):
        pool = density[_compared(lengths, n, least)]
        quantiles = np.quantile(pool, np.linspace(0, 1, points))
        table[str(int(n))] = [round(float(q), 4) for q in quantiles]
    return table


def table_rank(table: dict[str, list[float]], length: int, density: float) -> float:
    """The pace rank in [0, 1] of a sequence of ``length`` latents with ``density`` notes a
    segment, read from a :func:`pace_table` (the nearest length it holds)."""
    near = min(table, key=lambda k: (abs(int(k) - length), int(k)))
    q = np.asarray(table[near])
    return float(np.interp(density, q, np.linspace(0, 1, len(q))))


class LatentWindows:
    """Items ``(latents [max_len, latent], mask [max_len])``: windows of the sequences; with
    ``pace``, also each window's pace rank (:func:`pace_ranks`, among these windows)."""

    def __init__(self, sequences: list[Sequence], max_len: int, pace: bool = False) -> None:
        self.max_len = max_len
        self.windows: list[np.ndarray] = []
        density = []
        for seq, notes in sequences:
            hop = max(max_len // 2, 1)
            starts = range(0, max(len(seq) - max_len, 0) + 1, hop)
            self.windows += [seq[s : s + max_len] for s in starts]
            density += [notes[s : s + max_len].mean() for s in starts]
        self.density = np.array(density)
        self.lengths = np.array([len(w) for w in self.windows])
        self.pace = pace_ranks(self.density, self.lengths) if pace else None

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        import torch

        w = self.windows[index]
        z = np.zeros((self.max_len, w.shape[1]), dtype=np.float32)
        z[: len(w)] = w
        mask = np.zeros(self.max_len, dtype=bool)
        mask[: len(w)] = True
        item = (torch.from_numpy(z), torch.from_numpy(mask))
        if self.pace is None:
            return item
        return (*item, torch.tensor(self.pace[index], dtype=torch.float32))


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
    if vae.config.voices != 1:
        raise MusegenError(f"{options['vae']}: latent-diffusion is for melody VAEs (one voice)")
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
    model.set_statistics(torch.from_numpy(np.concatenate([z for z, _ in sequences["train"]])))
    pace = model.config.pace
    train = LatentWindows(sequences["train"], model.config.max_len, pace)
    valid = LatentWindows(sequences["valid"], model.config.max_len, pace)
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
    if pace:
        meta["pace_table"] = pace_table(train.density, train.lengths)
    trainer = Trainer(model, train, valid, cfg, out, objective=diffusion_objective, meta=meta)
    return fit_and_summarize(trainer, resume)
