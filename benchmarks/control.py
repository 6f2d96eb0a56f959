"""Chord and density control of a melody model: how often a bar carries what was asked for.

For the first ``--pieces`` pieces of a split (default **valid**) of a source (default
``nottingham``), the piece's own first ``--bars`` bar chords and density bins (as the model's
``melody-chords`` tokenizer labels them: the project's chord labeller over the melody and its
accompaniment) are asked of the model (``generate --chords … --density …``: the grammar forces
each bar's tokens; ``--chord-tones`` adds :mod:`musegen.sampling.chord_tones` guidance), one
piece per progression, seed = the piece index, sampled from the forced grammar as ``generate``
samples. Each generated melody is then labelled again, from its notes alone, in the sampled
sequence itself (re-encoding a decoded piece that opens on a rest would shift its bars by one:
the encoder reads leading rests as a pickup's padding; the first figures, measured on
re-encoded pieces, came out the same on the line model: 0.160, free 0.039):

* **chord hit**: the bar's chord by the project's labeller (``theory.best_chords`` with the
  tokenizer's chord qualities, over the melody alone) equals the one asked (root and quality);
* **tone share**: the share of the bar's sounding melody on tones of the asked chord (an
  independent check: no template matching);
* **density hit**: the bar's notes per beat fall in the bin asked for (the tokenizer's edges,
  the encoder's count); by default the grammar counts each bar's onsets into its bin, as
  ``generate --density`` does; ``--density-token-only`` forces the token alone (what the model
  itself makes of it);
* **overlap**: Yang-Lerch overlapping area of the generated melodies against the pieces' own
  melodies (cut to ``--bars``), so control is not bought with worse music.

``peer`` is the same model with nothing forced (the control tokens it writes itself are
ignored): how often its bars carry the asked chord / density by chance; ``data`` is the
pieces' own melodies checked the same way (a melody alone often spells its chord partly, so
this is the ceiling to read ``ours`` against). Bars where the asked
chord is ``N`` (silence) are left out. Prints JSON lines; ratio = ours / peer (null when peer is 0).

Run: ``python benchmarks/control.py --model runs/melody-chords`` (``--pieces 16`` for a quick
look).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from musegen.score import Score


@dataclass
class BarCheck:
    chord_hit: bool
    tone_share: float
    density_hit: bool | None


def chord_tone_shares(tok: Any, ids: np.ndarray, tones: list[frozenset[int]]) -> list[float]:
    """Per bar of a melody-chords sequence: the share of its sounding rows whose pitch is one
    of ``tones[bar]`` (NaN for a silent bar). Reads the cells alone (a HOLD keeps the pitch
    before it), not the chord tokens: an independent check of the chord labeller."""
    lo, hi = tok.vocab.span("bar")
    bar, cur = -1, -1
    on = np.zeros(len(tones))
    total = np.zeros(len(tones))
    for t in np.asarray(ids).tolist():
        if lo <= t < hi:
            bar += 1
            continue
        if t < tok.rest_id:
            continue  # header, control tokens, EOS
        if t == tok.rest_id:
            cur = -1
        elif t >= tok.pitch_offset:
            cur = t - tok.pitch_offset
        if 0 <= bar < len(tones) and cur >= 0:
            total[bar] += 1
            on[bar] += cur % 12 in tones[bar]
    return [float(a / b) if b else float("nan") for a, b in zip(on, total, strict=True)]


def check_piece(tok: Any, score: Score, chords: list[str], density: list[str]) -> list[BarCheck]:
    """Each asked bar of ``score`` checked against ``chords`` / ``density`` (see the module
    docstring); the melody is labelled again by encoding it alone."""
    return _bar_checks(tok, tok.encode(score), None, chords, density)


def check_ids(tok: Any, ids: np.ndarray, chords: list[str], density: list[str]) -> list[BarCheck]:
    """:func:`check_piece` on a sampled sequence itself: each bar's chord labelled from the
    line's own cells (the tokenizer's labeller with ``chord_source`` line), onsets counted in
    its rows. Re-encoding the decoded piece would shift its bars when it opens on a rest (the
    encoder takes leading rests for the padding of a pickup)."""
    ids = np.asarray(ids, dtype=np.int64)
    marks = np.flatnonzero(tok.vocab.is_in(ids, "bar"))
    labels = [tok.chord_name(int(t)) for t in tok._line_chords(ids, marks)]
    return _bar_checks(tok, ids, labels, chords, density)


def _bar_checks(
    tok: Any,
    ids: np.ndarray,
    labels: list[str | None] | None,
    chords: list[str],
    density: list[str],
) -> list[BarCheck]:
    """Each asked bar of the sequence ``ids``: its chord label (``labels[i]``, else the one the
    encoder wrote) against ``chords[i]``, its share of chord tones, its density bin against
    ``density[i]``."""
    from musegen.theory import parse_chord

    bars = tok.bar_controls(ids)
    if labels is None:
        labels = [b.chord for b in bars]
    wanted = [parse_chord(c).pitch_classes if c else frozenset() for c in chords]
    shares = chord_tone_shares(tok, ids, wanted)
    out = []
    for i, (asked, label, got) in enumerate(zip(chords, labels, bars, strict=False)):
        if asked is None:
            continue
        dens = None
        if density and tok.has_density:
            bin_ = int(tok.density_bin(got.notes / got.beats))
            dens = ("low", "medium", "high")[bin_] == density[i]
        out.append(BarCheck(label == asked, shares[i], dens))
    return out


def asked_controls(tok: Any, score: Score, bars: int) -> tuple[list[str | None], list[str]]:
    """A piece's own first ``bars`` bar chords and density bins."""
    controls = tok.bar_controls(tok.encode(score))[:bars]
    return [c.chord for c in controls], [c.density for c in controls if c.density]


def run(
    model: str,
    source: str,
    split: str,
    pieces: int,
    bars: int,
    temperature: float | None = None,
    chord_tones: str = "off",
    count: bool = True,
) -> dict[str, float]:
    from musegen.data.refs import resolve
    from musegen.evaluate.quality import quality_report
    from musegen.sampling.chord_tones import chord_toned
    from musegen.sampling.generate import SamplingConfig, generate
    from musegen.sampling.generators import load_generator, sampling_defaults
    from musegen.score import TimeSignature

    gen = load_generator(model)
    tok = gen.tokenizer  # type: ignore[attr-defined]
    defaults = sampling_defaults(gen.meta)
    primer = tok.primer_for_length(Score(tpq=480, time_signatures=[TimeSignature(0)]), bars)
    refs = resolve(f"source:{source}:{split}")[:pieces]
    rows: dict[str, list[BarCheck]] = {"ours": [], "peer": [], "data": []}
    scores: dict[str, list[Score]] = {"ours": [], "peer": [], "data": []}
    for k, ref in enumerate(refs):
        score = ref.load()
        chords, density = asked_controls(tok, score, bars)
        if None in chords or len(chords) < bars:  # a silent or missing bar: skip the piece
            continue
        melody = tok.decode(tok.encode(score))  # the piece's own melody, without its chords
        rows["data"] += check_piece(tok, melody, chords, density)[:bars]  # type: ignore[arg-type]
        scores["data"].append(melody)
        for side in ("ours", "peer"):
            # sampled as 'musegen generate --bars B --time-signature 4/4 --chords ...
            # --density ... --chord-tones ...' samples (the same grammar-forced tokenizer)
            forced = tok.controlled(chords, density, count=count) if side == "ours" else tok
            if side == "ours":
                forced = chord_toned(forced, chord_tones)
            cfg = SamplingConfig(
                temperature=defaults["temperature"] if temperature is None else temperature,
                top_p=defaults["top_p"],
                seed=k,
            )
            (ids,) = generate(gen.model, forced, num=1, primer=primer, config=cfg)
            rows[side] += check_ids(tok, ids, chords, density)  # type: ignore[arg-type]
            scores[side].append(tok.decode(ids))
    result = {}
    for side in ("ours", "peer"):  # the music itself: against the pieces' own melodies
        report = quality_report(scores[side], scores["data"], bars=bars)
        result[f"{side}_overlap"] = float(report["generated"]["oa_mean"])
    for side, checks in rows.items():
        shares = [c.tone_share for c in checks if not np.isnan(c.tone_share)]
        dens = [c.density_hit for c in checks if c.density_hit is not None]
        result[f"{side}_chord_hit"] = float(np.mean([c.chord_hit for c in checks]))
        result[f"{side}_tone_share"] = float(np.mean(shares)) if shares else float("nan")
        result[f"{side}_density_hit"] = float(np.mean(dens)) if dens else float("nan")
        result[f"{side}_bars"] = len(checks)
    return result


UNITS = {
    "chord_hit": "share of bars",
    "tone_share": "share of sounding rows",
    "density_hit": "share of bars",
    "overlap": "Yang-Lerch overlapping area (0-1) with the pieces' own melodies",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a melody-chords model (folder or run)")
    p.add_argument("--source", default="nottingham")
    p.add_argument("--split", default="valid")
    p.add_argument("--pieces", type=int, default=64)
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--temperature", type=float, help="default: the model's")
    p.add_argument(
        "--chord-tones",
        default="off",
        choices=("off", "beats", "all", "spell"),
        help="chord-tone guidance of the forced side (musegen.sampling.chord_tones)",
    )
    p.add_argument(
        "--density-token-only",
        action="store_true",
        help="force each bar's density token but do not count its notes into the bin",
    )
    args = p.parse_args(argv)
    r = run(
        args.model,
        args.source,
        args.split,
        args.pieces,
        args.bars,
        args.temperature,
        args.chord_tones,
        not args.density_token_only,
    )
    print(
        f"{args.model} on {args.source}:{args.split}, {r['ours_bars']} bars: chord hit "
        f"{r['ours_chord_hit']:.3f} (free {r['peer_chord_hit']:.3f}), chord-tone share "
        f"{r['ours_tone_share']:.3f} ({r['peer_tone_share']:.3f}), density hit "
        f"{r['ours_density_hit']:.3f} ({r['peer_density_hit']:.3f}); the pieces' own melodies: "
        f"chord hit {r['data_chord_hit']:.3f}, tone share {r['data_tone_share']:.3f}, density "
        f"hit {r['data_density_hit']:.3f}; overlap with them {r['ours_overlap']:.3f} (free "
        f"{r['peer_overlap']:.3f})",
        file=sys.stderr,
    )
    for name in ("chord_hit", "tone_share", "density_hit", "overlap"):
        ours, peer = r[f"ours_{name}"], r[f"peer_{name}"]
        if np.isnan(ours):
            continue
        row = {
            "benchmark": f"control_{name}",
            "ours": round(ours, 3),
            "peer": round(peer, 3),
            "ratio": round(ours / peer, 3) if peer > 0 else None,
            "unit": UNITS[name],
            "model": args.model,
            "split": f"{args.source}:{args.split}",
            "bars": r["ours_bars"],
            "data": round(r[f"data_{name}"], 3) if f"data_{name}" in r else None,
            "temperature": args.temperature,
            "chord_tones": args.chord_tones,
            "density_count": not args.density_token_only,
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
