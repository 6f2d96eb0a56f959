"""Train a sequence model on a prepared dataset: what ``musegen train`` does.

A run file (JSON) says everything about a run, so a shipped model can be retrained from a
committed file::

    {"model": "transformer", "model_config": {"n_layer": 4, ...},
     "train": {"max_steps": 3000, ...}, "augment": {"transpose": 5}}

The run folder gets ``run.json`` (the settings actually used, with the seed), ``log.jsonl``,
``checkpoint/`` (resumable) and ``best/`` (the model with the lowest valid loss, loadable
by ``musegen generate --model RUN/best``).

Every model trains through here and the one :class:`~musegen.train.trainer.Trainer`; what
differs by model kind is only the data it reads: sequence models (transformer, lstm, gru)
read a dataset made by ``musegen data prepare``; Coconet reads four-voice 16th-note grids
(:mod:`musegen.train.coconet`); the piano-roll frame models (rnn-nade, frame-bernoulli) read
binary piano rolls (:mod:`musegen.train.frame`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError
from musegen.train.config import TrainConfig

RUN_KEYS = {"model", "model_config", "train", "augment", "data", "objective", "init_parts"}


def read_run_file(path: str | Path) -> dict[str, Any]:
    try:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: bad JSON or bad UTF-8
        raise MusegenError(f"{path}: cannot read run config ({e})") from e
    if not isinstance(run, dict):
        raise MusegenError(f"{path}: a run config is a JSON object")
    unknown = set(run) - RUN_KEYS
    if unknown:
        raise MusegenError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; expected {sorted(RUN_KEYS)}"
        )
    for key, value in run.items():
        kind = str if key == "model" else dict
        if not isinstance(value, kind) and not (key == "data" and value is None):
            raise MusegenError(
                f"{path}: '{key}' must be a JSON {'string' if kind is str else 'object'}, "
                f"got {json.dumps(value)[:60]}"
            )
    return run


def train_run(
    run: dict[str, Any],
    data_dir: str | Path | None,
    out_dir: str | Path,
    resume: bool = False,
    init: str | None = None,
) -> dict[str, Any]:
    """Train as ``run`` says; returns a summary (steps, best valid loss, size, device).

    ``data_dir`` is the data the run's model kind reads (see the module docstring); ``init``
    names a saved model (folder or shipped name) of the same configuration whose weights start
    the run in place of a random initialisation (a fresh schedule and optimizer).
    """
    try:
        return _train_run(run, data_dir, out_dir, resume, init)
    except MemoryError as e:  # numpy's allocation failures are MemoryErrors
        raise MusegenError(f"out of memory: {_TOO_BIG}") from e
    except RuntimeError as e:  # PyTorch's are RuntimeErrors that say so
        if "allocate" not in str(e) and "out of memory" not in str(e):
            raise
        raise MusegenError(f"out of memory: {_TOO_BIG}") from e


_TOO_BIG = (
    "the run's model or batch is too big for this machine (model_config, batch_size, seq_len)"
)


def _train_run(
    run: dict[str, Any],
    data_dir: str | Path | None,
    out_dir: str | Path,
    resume: bool,
    init: str | None,
) -> dict[str, Any]:
    from musegen.train.frame import FRAME_MODELS, train_frame

    name = run.get("model", "transformer")
    if name == "coconet":  # the one place a model kind picks its data
        from musegen.train.coconet import train_coconet

        return train_coconet(run, out_dir, resume=resume, init=init, data_path=data_dir)
    if "init_parts" in run and name != "music-vae":
        raise MusegenError(f"init_parts is for music-vae runs; this run trains a {name}")
    if name == "music-vae":
        from musegen.train.vae import train_vae

        return train_vae(run, out_dir, resume=resume, init=init, data_path=data_dir)
    if name == "latent-diffusion":
        from musegen.train.latent_diffusion import train_latent_diffusion

        return train_latent_diffusion(run, out_dir, resume=resume, init=init, data_path=data_dir)
    if name in FRAME_MODELS:
        return train_frame(run, out_dir, resume=resume, init=init, data_path=data_dir)
    if name in ("crnngan", "midinet", "musegan"):  # musegen.train.gan.GAN_MODELS
        from musegen.train.gan import train_gan

        return train_gan(run, out_dir, resume=resume, init=init, data_path=data_dir)
    if data_dir is None:
        raise MusegenError(
            f"training a {name} model needs --data DIR, a folder made by 'musegen data prepare'"
        )
    return _train_sequence_model(run, data_dir, out_dir, resume, init)


def _train_sequence_model(
    run: dict[str, Any], data_dir: str | Path, out_dir: str | Path, resume: bool, init: str | None
) -> dict[str, Any]:
    """A token model (transformer, lstm, gru) on the prepared dataset ``data_dir``."""

    from musegen.data.augment import TokenTranspose
    from musegen.data.dataset import load_prepared
    from musegen.data.training import WindowDataset
    from musegen.train.trainer import Trainer

    cfg = TrainConfig.from_dict(run.get("train", {}))
    shift = run.get("augment", {}).get("transpose", 0)
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= 127:
        raise MusegenError(f"augment.transpose must be a whole number of semitones: {shift}")
    data = load_prepared(data_dir)
    tok = data.tokenizer
    if data.manifest.frame_width is not None:
        raise MusegenError(
            f"{data_dir}: grid datasets ({tok.name}) train frame models, not sequence models"
        )
    extra: dict[str, Any] = {}
    if "objective" in run:  # an objective other than next-token prediction: its own items
        from musegen.train.infill import infill_datasets

        tok, train_ds, valid_ds, extra = infill_datasets(
            data, cfg.seq_len, cfg.seed, run["objective"], shift
        )
    else:
        train_split = data.split("train")
        valid = data.split("valid") if "valid" in data.split_names else None
        augment = None
        if shift:
            augment = TokenTranspose(tok, max_shift=shift)
        if hasattr(train_split, "shards"):  # a sharded dataset: windows streamed from its tars
            from musegen.data.shards import StreamWindows

            train_ds: Any = StreamWindows(train_split, cfg.seq_len, seed=cfg.seed, augment=augment)
        else:
            train_ds = WindowDataset(
                train_split,
                cfg.seq_len,
                mode="random",
                seed=cfg.seed,
                augment=augment,
                samples=max(train_split.n_tokens, 1),
            )
        valid_ds = (
            WindowDataset(valid, cfg.seq_len, mode="tile")
            if valid is not None and valid.n_tokens > 1
            else None
        )
    name = run.get("model", "transformer")
    config = {**run.get("model_config", {}), "vocab_size": len(tok)}
    model = initial_model(name, config, cfg.seed, init, resume, tok)
    used = {
        **run,
        "model": name,
        "model_config": model.config.to_dict(),
        "train": cfg.to_dict(),
        "data": str(data_dir),
    }
    out = write_run(out_dir, used, init)
    meta = {"tokenizer": tok.to_dict(), "data": str(data_dir), "parameters": model.num_parameters()}
    meta.update(extra)
    return fit_and_summarize(Trainer(model, train_ds, valid_ds, cfg, out, meta=meta), resume)


def data_section(
    run: dict[str, Any], defaults: dict[str, Any], owner: str, data_path: str | Path | None
) -> dict[str, Any]:
    """A run file's ``data`` section over ``defaults`` (an unknown key is an error naming
    ``owner``), with ``data_path`` (``musegen train --data``) as its ``root``."""
    given = dict(run.get("data") or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise MusegenError(
            f"unknown data option(s) {unknown} for {owner}; expected {sorted(defaults)}"
        )
    options = {**defaults, **given}
    if data_path is not None:
        options["root"] = str(data_path)
    return options


def require_counts(options: dict[str, Any], least: dict[str, int]) -> None:
    """Each ``options[key]`` a whole number >= ``least[key]`` (a bool is not), else an error."""
    for key, lo in least.items():
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise MusegenError(f"data.{key} must be a whole number >= {lo}, got {value!r}")


def write_run(out_dir: str | Path, used: dict[str, Any], init: str | None) -> Path:
    """Create the run folder and write what the run used (and the ``--init`` it started
    from) as its ``run.json``; returns the folder."""
    from musegen.utils import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if init is not None:
        used = {**used, "init": str(init)}
    atomic_write_text(out / "run.json", json.dumps(used, indent=2))
    return out


def initial_model(
    name: str,
    config: dict[str, Any],
    seed: int,
    init: str | None,
    resume: bool,
    tokenizer: Any = None,
) -> Any:
    """The network a run starts from: ``build_model(name, **config)`` after seeding torch with
    ``seed`` (so its random initialisation is the run's), with the weights of ``init`` (see
    :func:`load_init`) unless the run resumes from its checkpoint."""
    import torch

    from musegen.models import build_model

    torch.manual_seed(seed)
    model = build_model(name, **config)
    if init is not None and not resume:
        load_init(model, init, tokenizer)
    return model


def load_init(model: Any, ref: str, tokenizer: Any = None) -> None:
    """Copy the weights of the saved model ``ref`` (a folder or a shipped model's name) into
    ``model``; both must have the same class and configuration.

    One difference is allowed when the run's ``tokenizer`` is given: a vocabulary that grew
    (e.g. the chorale tokenizer with ``phrases``). Rows of the token-indexed weights are
    copied by token name; a token the saved model never had keeps its fresh initialisation.
    """
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model

    source, meta = load_model(resolve_model(ref))
    mine, theirs = model.config.to_dict(), source.config.to_dict()
    rows = None
    if tokenizer is not None and "vocab_size" in mine and isinstance(meta.get("tokenizer"), dict):
        rows = _vocab_rows(meta["tokenizer"], tokenizer)
        if len(rows[1]) == theirs["vocab_size"]:  # every saved token is still there
            theirs = {**theirs, "vocab_size": mine["vocab_size"]}
    if type(source) is not type(model) or theirs != mine:
        raise MusegenError(
            f"--init {ref}: its model_config {source.config.to_dict()} differs from the run "
            f"file's {model.config.to_dict()}"
        )
    state = source.state_dict()
    if rows is not None and source.config.vocab_size != model.config.vocab_size:
        import torch

        old_size, target = source.config.vocab_size, model.state_dict()
        new, old = torch.as_tensor(rows[0]), torch.as_tensor(rows[1])
        for key, value in state.items():
            if value.shape[:1] == (old_size,) and target[key].shape[:1] != (old_size,):
                grown = target[key].clone()
                grown[new] = value[old]
                state[key] = grown
    model.load_state_dict(state)


def _vocab_rows(saved: dict[str, Any], tokenizer: Any) -> tuple[list[int], list[int]]:
    """(ids in ``tokenizer``, ids in the saved model's tokenizer) of the tokens both name."""
    from musegen.tokenizers import tokenizer_from_dict

    old = tokenizer_from_dict(saved)
    where = {old.vocab.token(i): i for i in range(len(old.vocab))}
    pairs = [
        (i, where[label])
        for i in range(len(tokenizer.vocab))
        if (label := tokenizer.vocab.token(i)) in where
    ]
    return [a for a, _ in pairs], [b for _, b in pairs]


def fit_and_summarize(trainer: Any, resume: bool) -> dict[str, Any]:
    """Run ``trainer`` (a :class:`~musegen.train.trainer.Trainer`) and write (on the main
    process) and return the run's ``summary.json``: steps, best valid loss, size, device."""
    from musegen.utils import atomic_write_text

    state = trainer.fit(resume=resume)
    summary = {
        "steps": state.step,
        "best_valid_loss": state.best_valid,
        "parameters": trainer.raw_model.num_parameters(),
        "device": str(trainer.device),
        "out": str(trainer.out),
    }
    if trainer.dist.main:
        atomic_write_text(trainer.out / "summary.json", json.dumps(summary, indent=2))
    return summary
