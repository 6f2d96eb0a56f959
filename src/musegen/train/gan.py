"""The adversarial objective, and the data of the GAN models, for the one trainer.

**Losses.** ``"wgan-gp"`` (Gulrajani et al. 2017: the critic's Wasserstein estimate with a
gradient penalty of ``gp_weight`` on points between real and fake) is the default for MuseGAN
and MidiNet: MuseGAN's paper trained with it; MidiNet's paper used the cross-entropy GAN loss
and needed feature matching to keep it from collapsing, and on our small CPU runs the
cross-entropy loss's discriminator wins early and the generator's gradient vanishes, which the
Wasserstein critic does not do. ``"hinge"`` (Miyato et al. 2018) is the default for C-RNN-GAN:
a gradient penalty through its LSTM critic needs a double backward through the recurrence,
several times slower on the CPU; the hinge loss bounds the critic without it. ``"bce"`` (the
original non-saturating loss) is there to compare.

**Feature matching** (Salimans et al. 2016, used by C-RNN-GAN's and MidiNet's papers):
``feature_matching`` > 0 adds to the generator's loss that weight times the squared distance
between the mean critic features (:meth:`critic_features`, the critic's last hidden layer) of
the real and the fake batch; with ``adversarial: false`` it is the generator's whole loss, as
in Mogren's C-RNN-GAN.

**Auxiliary classifier** (AC-GAN, Odena et al. 2017): ``auxiliary`` > 0 adds that weight
times the model's :meth:`auxiliary_loss` (MidiNet with ``chord_head``: the critic naming the
conditioning chord from the bar alone) to the critic's loss on the real items, and to the
generator's on its own: the critic learns how the data's bars show their chords, and the
generator is asked to write bars that show theirs. Logged as ``aux_real`` and ``aux_fake``.
``auxiliary_margin`` > 0 spares the generator's items the head already names with a
cross-entropy under the margin (the loss per item is ``max(0, CE - margin)``): a bar need only
show its chord clearly enough, not as plainly as it can, which with the full loss pushes
melodies onto the chord's three tones.

**Mean matching** (MidiNet's first regulariser, Yang et al. 2017, their λ1):
``mean_matching`` > 0 adds that weight times the squared distance between the mean real and
the mean generated item of the batch (cell by cell; both under the same conditions) to the
generator's loss, which holds the generator's cell marginals (its register above all) to the
data's. Logged as ``mean_matching``.

**Two optimizers in one trainer.** :class:`~musegen.train.trainer.Trainer` owns one AdamW
over every parameter; Adam's state is per parameter, so stepping it after a backward that
reached only the critic's parameters *is* the critic's optimizer, and after one that reached
only the generator's, the generator's (a parameter without a gradient is skipped, weight decay
included). Each training step of :class:`AdversarialObjective`: the batch is cut into
``n_critic`` parts; for each, the critic is updated on real vs fake (generator output
detached) through the trainer's optimizer; then the generator's loss is returned with the
critic frozen, and the trainer steps it. So checkpoints, ``--resume``, the schedule, logging
and batches are the trainer's, unchanged. The critic's loss and Wasserstein estimate go to
``log.jsonl`` as ``d_loss`` and ``w_distance``.

**EMA.** A model with an averaged generator (``ema`` in its config) has it moved towards the
generator at the start of every training step (so it averages the weights each earlier step
left); validation, ``best/`` and sampling then write with it.

**Valid loss.** A GAN has no likelihood; the figure the trainer tracks (``best/``) is the L1
distance between per-sample statistics (each track's pitch occupancy, empty-bar rate and
change rate, :func:`~musegen.models.gan.common.roll_stats`) of drawn samples (fixed noise)
and of the valid items: lower is closer to the data.

**Data** (a run file's ``"data"``): MuseGAN reads the four-voice chorales (``jsb-satb``,
16th-note steps, ``steps`` per bar: 16, or 8 for eighth notes) cut into phrases of
``n_bars`` bars; MidiNet reads Nottingham (the top line as the melody, one chord per bar
labelled by :func:`musegen.theory.label_chords` from every note of the bar, as the
``melody-chords`` tokenizer does, and the bar before); C-RNN-GAN reads note sequences of a
roll set (``pianomidi``, ``musedata``, …) or, with ``"source": "prepared"`` and ``root`` (or
``--data``), of any folder ``musegen data prepare`` wrote (e.g. Essen's melodies).
Bars are counted from each piece's first frame in 4/4 (the sources carry no meter).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musegen.errors import MusegenError

GAN_MODELS = ("crnngan", "midinet", "musegan")
LOSSES = ("wgan-gp", "hinge", "bce")
DEFAULT_LOSS = {"musegan": "wgan-gp", "midinet": "wgan-gp", "crnngan": "hinge"}


@dataclass
class ObjectiveOptions:
    loss: str = "wgan-gp"
    n_critic: int = 5  # critic updates per generator update (the batch is cut in as many parts)
    gp_weight: float = 10.0
    feature_matching: float = 0.0  # weight of the generator's feature-matching loss
    adversarial: bool = True  # false: the generator's loss is feature matching alone
    auxiliary: float = 0.0  # weight of the auxiliary classifier's loss (AC-GAN)
    auxiliary_margin: float = 0.0  # generator: no auxiliary loss on items below this CE
    mean_matching: float = 0.0  # weight of the distance between mean real and fake items

    @classmethod
    def from_dict(cls, d: dict[str, Any], model: str) -> ObjectiveOptions:
        d = {"loss": DEFAULT_LOSS.get(model, "wgan-gp"), **d}
        d.pop("name", None)
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise MusegenError(
                f"unknown objective option(s) {unknown}; expected "
                + ", ".join(cls.__dataclass_fields__)
            )
        o = cls(**d)
        if o.loss not in LOSSES:
            raise MusegenError(f"objective.loss must be one of {LOSSES}, got {o.loss!r}")
        if not (isinstance(o.n_critic, int) and o.n_critic >= 1) or o.gp_weight < 0:
            raise MusegenError("objective.n_critic must be >= 1 and gp_weight >= 0")
        if o.feature_matching < 0 or (not o.adversarial and o.feature_matching <= 0):
            raise MusegenError(
                "objective.feature_matching must be >= 0, and > 0 when adversarial is false"
            )
        if o.auxiliary < 0 or o.auxiliary_margin < 0 or o.mean_matching < 0:
            raise MusegenError(
                "objective.auxiliary, auxiliary_margin and mean_matching must be >= 0"
            )
        return o


def _split(batch: dict[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    n = len(batch["real"])
    if n < parts:
        raise MusegenError(f"batch_size {n} is smaller than objective.n_critic {parts}")
    size = n // parts
    return [{k: v[i * size : (i + 1) * size] for k, v in batch.items()} for i in range(parts)]


class AdversarialObjective:
    """``(model, batch) -> (generator loss, items)`` for the Trainer (see the module
    docstring); :meth:`bind` hands it the trainer whose optimizer also steps the critic."""

    def __init__(self, options: ObjectiveOptions, grad_clip: float = 1.0) -> None:
        self.o = options
        self.grad_clip = grad_clip
        self.trainer: Any = None
        self.last: dict[str, float] = {}

    def bind(self, trainer: Any) -> None:
        self.trainer = trainer

    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        if not model.training or not torch.is_grad_enabled() or self.trainer is None:
            return self.validation(model, batch)
        model.update_ema(self.trainer.state.step)
        parts = _split(batch, self.o.n_critic)
        for part in parts:
            self._critic_step(model, part)
        part = parts[-1]
        cond = model.condition(part)
        fake = model.fake(model.latent(len(part["real"])), cond)
        critic = model.discriminator
        frozen = [p for p in critic.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            loss = self._generator_loss(model, part["real"], fake, cond)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        self._log()
        return loss, len(part["real"])

    def _generator_loss(
        self, model: Any, real: torch.Tensor, fake: torch.Tensor, cond: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        loss = fake.new_zeros(())
        if self.o.adversarial:
            score = model.critic(fake, cond)
            if self.o.loss == "bce":
                loss = torch.nn.functional.softplus(-score).mean()
            else:
                loss = -score.mean()
        if self.o.feature_matching > 0:
            with torch.no_grad():
                target = model.critic_features(real, cond).mean(0)
            gap = model.critic_features(fake, cond).mean(0) - target
            fm = (gap**2).sum()
            self.last["feature_matching"] = float(fm.detach())
            loss = loss + self.o.feature_matching * fm
        if self.o.mean_matching > 0:
            mm = ((fake.mean(0) - real.mean(0)) ** 2).sum()
            self.last["mean_matching"] = float(mm.detach())
            loss = loss + self.o.mean_matching * mm
        if self.o.auxiliary > 0:
            aux = model.auxiliary_loss(fake, cond, margin=self.o.auxiliary_margin)
            self.last["aux_fake"] = float(aux.detach())
            loss = loss + self.o.auxiliary * aux
        return loss

    def _critic_step(self, model: Any, part: dict[str, torch.Tensor]) -> None:
        opt = self.trainer.optimizer
        real, cond = part["real"], model.condition(part)
        with torch.no_grad():
            fake = model.fake(model.latent(len(real)), cond)
        s_real, s_fake = model.critic(real, cond), model.critic(fake, cond)
        if self.o.loss == "wgan-gp":
            w = s_real.mean() - s_fake.mean()
            loss = -w + self.o.gp_weight * gradient_penalty(model, real, fake, cond)
        elif self.o.loss == "hinge":
            w = s_real.mean() - s_fake.mean()
            loss = torch.relu(1 - s_real).mean() + torch.relu(1 + s_fake).mean()
        else:
            w = s_real.mean() - s_fake.mean()
            sp = torch.nn.functional.softplus
            loss = sp(-s_real).mean() + sp(s_fake).mean()
        aux = model.auxiliary_loss(real, cond) if self.o.auxiliary > 0 else None
        if aux is not None:
            loss = loss + self.o.auxiliary * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.discriminator.parameters(), self.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.last = {"d_loss": float(loss.detach()), "w_distance": float(w.detach())}
        if aux is not None:
            self.last["aux_real"] = float(aux.detach())

    def _log(self) -> None:
        t = self.trainer
        step = t.state.step + 1
        if step % t.cfg.log_every == 0 or step == t.cfg.max_steps:
            t.log({"step": step, **self.last})

    @torch.no_grad()
    def validation(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """L1 distance between the mean statistics of drawn samples and of ``batch``."""
        real = batch["real"]
        g = torch.Generator().manual_seed(len(real))
        fake = model.draw(model.fake(model.latent(len(real), generator=g), model.condition(batch)))
        d = (model.stats(fake).mean(0) - model.stats(real).mean(0)).abs().sum()
        return d, len(real)


def gradient_penalty(
    model: Any, real: torch.Tensor, fake: torch.Tensor, cond: dict[str, torch.Tensor]
) -> torch.Tensor:
    """``E[(||grad critic(x_hat)|| - 1)^2]`` at random points between real and fake (as the
    critic reads them, :meth:`~musegen.models.gan.common.GanModel.critic_view`)."""
    real, fake = model.critic_view(real), model.critic_view(fake)
    shape = (len(real),) + (1,) * (real.dim() - 1)
    a = torch.rand(shape, device=real.device)
    x = (a * real + (1 - a) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(model.critic(x, cond).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


# --------------------------------------------------------------------------- data


class Items:
    """Dict items of equal-shaped arrays, as float tensors (the Trainer indexes them)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.n = len(next(iter(arrays.values())))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.asarray(v[i], np.float32)) for k, v in self.arrays.items()}


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def satb_phrases(
    steps: list[np.ndarray], n_bars: int, bar_steps: int, low: int, n_pitches: int, hop: int,
    stride: int = 1,
) -> np.ndarray:  # fmt: skip
    """Phrases ``[N, 4, n_bars * bar_steps, P]`` (uint8 one-hot per voice and step) of
    ``Jsb16thSeparated`` pieces ``[T, 4]``, every ``hop`` bars; ``stride`` 2 keeps every
    other 16th (eighth-note steps). Pitches outside the range move by octaves into it."""
    length = n_bars * bar_steps
    out = []
    for piece in steps:
        p = np.asarray(piece, np.int64)[::stride]
        for start in range(0, len(p) - length + 1, hop * bar_steps):
            out.append(one_hot_voices(p[start : start + length], low, n_pitches))
    if not out:
        raise MusegenError(f"no piece is {n_bars} bars long")
    return np.stack(out)


def one_hot_voices(steps: np.ndarray, low: int, n_pitches: int) -> np.ndarray:
    """``[T, V]`` pitches (-1 rest) → ``[V, T, P]`` uint8 cells."""
    T, V = steps.shape
    x = np.zeros((V, T, n_pitches), np.uint8)
    on = steps >= 0
    rel = np.where(on, fold_into(steps, low, n_pitches) - low, 0)
    t, v = np.nonzero(on)
    x[v, t, rel[t, v]] = 1
    return x


def fold_into(pitches: np.ndarray, low: int, n_pitches: int) -> np.ndarray:
    """Pitches moved by whole octaves into ``[low, low + n_pitches)`` (n_pitches >= 12)."""
    p = np.asarray(pitches, np.int64).copy()
    below = p < low
    p[below] += 12 * np.ceil((low - p[below]) / 12).astype(np.int64)
    above = p >= low + n_pitches
    p[above] -= 12 * np.ceil((p[above] - (low + n_pitches - 1)) / 12).astype(np.int64)
    return p


def piece_bars(
    roll: np.ndarray, bar_steps: int, low: int, n_pitches: int, roll_low: int = 21
) -> tuple[np.ndarray, list[Any]]:
    """One binary roll ``[T, keys]`` (melody + accompaniment) as 4/4 bars: the top line's
    cells ``[bars, steps, P]`` and each bar's chord (:func:`musegen.theory.label_chords` over
    every note of the bar, duration-weighted; None where nothing sounds)."""
    from musegen.theory import label_chords

    n_bars = len(roll) // bar_steps
    if n_bars < 1:
        return np.zeros((0, bar_steps, n_pitches), np.uint8), []
    r = np.asarray(roll[: n_bars * bar_steps], bool)
    on = r.any(1)
    top = np.where(on, r.shape[1] - 1 - np.argmax(r[:, ::-1], 1) + roll_low, -1)
    melody = one_hot_voices(top[:, None], low, n_pitches)[0]  # [T, P]
    frames, keys = np.nonzero(r)
    weights = np.zeros((n_bars, 12))
    np.add.at(weights, (frames // bar_steps, (keys + roll_low) % 12), 1.0)
    bass = np.full(n_bars, 999)
    np.minimum.at(bass, frames // bar_steps, keys + roll_low)
    labels = label_chords(weights, np.where(bass == 999, -1, bass))
    return melody.reshape(n_bars, bar_steps, n_pitches), labels


def melody_bars(
    rolls: list[np.ndarray], bar_steps: int, low: int, n_pitches: int, roll_low: int = 21
) -> dict[str, np.ndarray]:
    """MidiNet's items from binary rolls (:func:`piece_bars`): per bar with a melody the top
    line ``real [1, steps, P]``, the bar before ``prev`` (zeros for a first bar) and the
    bar's chord vector (:func:`~musegen.models.gan.midinet.chord_vector` of its label)."""
    from musegen.models.gan.midinet import chord_vector

    reals, prevs, chords = [], [], []
    for roll in rolls:
        bars, labels = piece_bars(roll, bar_steps, low, n_pitches, roll_low)
        for b in range(len(bars)):
            if not bars[b].any():
                continue
            reals.append(bars[b][None])
            prevs.append(bars[b - 1][None] if b else np.zeros_like(bars[b][None]))
            c = labels[b]
            chords.append(chord_vector(c.root, c.pitch_classes) if c else chord_vector(None, set()))
    if not reals:
        raise MusegenError("no bar with a melody in the data")
    return {"real": np.stack(reals), "prev": np.stack(prevs), "chord": np.stack(chords)}


DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "musegan": {"source": "jsb-satb", "root": None, "hop_bars": 1},
    "midinet": {"source": "nottingham", "root": None},
    "crnngan": {"source": "pianomidi", "root": None},
}


def data_options(name: str, run: dict[str, Any], data_path: str | Path | None) -> dict[str, Any]:
    from musegen.train.run import data_section

    return data_section(run, DATA_DEFAULTS[name], name, data_path)


def gan_items(model: Any, options: dict[str, Any], split: str) -> Items:
    """The items of one split for ``model`` (its config fixes the grid)."""
    from musegen.data.sources import get_source

    c = model.config
    name = model.model_name
    if name == "musegan":
        if options["source"] != "jsb-satb":
            raise MusegenError("musegan reads the four-voice chorales: data.source 'jsb-satb'")
        steps = get_source("jsb-satb", root=options["root"]).all_steps()[split]
        stride = 16 // c.steps
        if stride * c.steps != 16:
            raise MusegenError("musegan on jsb-satb: steps per bar must be 16 or 8")
        x = satb_phrases(
            steps, c.n_bars, c.steps, c.low_pitch, c.n_pitches, options["hop_bars"], stride
        )
        return Items({"real": x})
    if name == "crnngan" and options["source"] == "prepared":
        from musegen.models.gan.crnngan import prepared_sequences

        if not options["root"]:
            raise MusegenError(
                "crnngan on data.source 'prepared' reads a 'musegen data prepare' folder: "
                "give it as data.root or --data"
            )
        return Items({"real": prepared_sequences(options["root"], split, c.length)})
    source = get_source(options["source"], root=options["root"])
    rolls = source.rolls()[split]
    if name == "midinet":
        if source.steps_per_quarter != c.steps_per_quarter:
            raise MusegenError(
                f"{options['source']} has {source.steps_per_quarter} frames per quarter; set "
                f"model_config.steps_per_quarter to it"
            )
        return Items(melody_bars(rolls, c.steps, c.low_pitch, c.n_pitches))
    from musegen.models.gan.crnngan import note_sequences

    return Items({"real": note_sequences(rolls, source.steps_per_quarter, c.length)})


def train_gan(
    run: dict[str, Any],
    out_dir: str | Path,
    resume: bool = False,
    init: str | None = None,
    data_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train a GAN as the run file says (``musegen train --config configs/musegan.json``)."""
    from musegen.train.config import TrainConfig
    from musegen.train.run import fit_and_summarize, initial_model, write_run
    from musegen.train.trainer import Trainer

    name = run.get("model")
    if name not in GAN_MODELS:
        raise MusegenError(f"this trains the GAN models {GAN_MODELS}, not {name!r}")
    cfg = TrainConfig.from_dict(run.get("train", {}))
    if cfg.grad_accum != 1:
        raise MusegenError("GAN training takes grad_accum 1 (the critic steps inside each step)")
    options = data_options(name, run, data_path)
    objective_options = ObjectiveOptions.from_dict(dict(run.get("objective") or {}), name)
    model = initial_model(name, run.get("model_config", {}), cfg.seed, init, resume)
    train, valid = gan_items(model, options, "train"), gan_items(model, options, "valid")
    used = {
        "model": name,
        "model_config": model.config.to_dict(),
        "train": cfg.to_dict(),
        "objective": asdict(objective_options),
        "data": options,
    }
    out = write_run(out_dir, used, init)
    meta = {
        "dataset": options["source"],
        "data": options,
        "objective": asdict(objective_options),
        "parameters": model.num_parameters(),
        "train_items": len(train),
        "loss_unit": "L1 distance of sample statistics (valid)",
    }
    objective = AdversarialObjective(objective_options, grad_clip=cfg.grad_clip)
    trainer = Trainer(
        model, train, valid, cfg, out, objective=objective, collate=collate, meta=meta
    )
    objective.bind(trainer)
    return fit_and_summarize(trainer, resume)
