"""``musegen data prepare|list|info``: tokenize corpora into training files and look at them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from musegen.cli.common import print_json, require
from musegen.errors import MusegenError

DEFAULT_DATA_DIR = Path("data")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="prepare tokenized datasets from corpora, list and inspect them",
        description="Corpus sources and prepared (tokenized) datasets.",
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda _args: _missing_action(p))

    q = data_sub.add_parser(
        "prepare",
        help="tokenize every piece of a source into DIR",
        description="Tokenize every piece of SOURCE into DIR/{split}.bin + {split}.idx.npy + "
        "manifest.json (with pieces.jsonl and failures.jsonl). Re-running encodes only new or "
        "changed pieces; an interrupted run resumes. Pieces that cannot be read are skipped "
        "and listed in the manifest. Memory does not grow with the corpus.",
    )
    q.add_argument(
        "source", metavar="SOURCE", help="a source name (see 'musegen data list') or a folder"
    )
    q.add_argument("--root", metavar="PATH", help="where the source's files are (default: its own)")
    q.add_argument(
        "--tokenizer",
        "-t",
        required=True,
        metavar="NAME",
        help="remi, events, roll, satb, chorale, melody",
    )
    q.add_argument("--config", metavar="JSON", help="tokenizer options as a JSON object")
    q.add_argument("--out", "-o", required=True, metavar="DIR", help="dataset folder to write")
    q.add_argument(
        "--workers", "-j", type=int, default=2, metavar="N", help="processes (default 2)"
    )
    q.add_argument(
        "--shards",
        type=int,
        default=0,
        metavar="N",
        help="write N tar shards for train (valid and test cut to the same size) and a "
        "shards.json index, streamed in training; for corpora too big for one memmap "
        "(default 0: memmaps)",
    )
    q.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where the per-file work runs: local processes (default) or a Ray cluster "
        "(RAY_ADDRESS, else a local one with --workers CPUs; needs musegen[cluster])",
    )
    q.set_defaults(func=run_prepare)

    q = data_sub.add_parser(
        "list",
        help="sources (with licence and whether their data is here) and prepared datasets",
        description="List the corpus sources and the prepared datasets under ./data "
        "or the given folders.",
    )
    q.add_argument("--prepared", nargs="+", metavar="DIR", default=[], help="more places to look")
    q.add_argument("--json", action="store_true", help="print machine-readable JSON")
    q.set_defaults(func=run_list)

    q = data_sub.add_parser(
        "info",
        help="counts per split of a prepared dataset",
        description="Pieces, tokens, notes and failures per split of a prepared dataset.",
    )
    q.add_argument("dir", metavar="DIR")
    q.add_argument("--json", action="store_true", help="print machine-readable JSON")
    q.add_argument("--failures", action="store_true", help="also list each failed piece")
    q.set_defaults(func=run_info)


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# --------------------------------------------------------------------------- prepare
def open_source(name: str, root: str | None) -> Any:
    """A source by registry name, or a folder source for a path."""
    from musegen.data.sources import available_sources, get_source

    if name in available_sources():
        return get_source(name, root=root)
    if Path(name).is_dir():
        require(root is None, "give either a folder as SOURCE or --root, not both")
        return get_source("folder", root=name)
    raise MusegenError(
        f"{name!r} is neither a source ({', '.join(available_sources())}) nor a folder"
    )


def tokenizer_options(text: str | None) -> dict[str, Any]:
    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as e:
        raise MusegenError(f"--config is not valid JSON: {e}") from e
    require(isinstance(options, dict), "--config must be a JSON object")
    return options


def run_prepare(args: argparse.Namespace) -> int:
    from musegen.data.dataset import prepare_dataset
    from musegen.tokenizers import get_tokenizer

    require(args.workers >= 1, f"--workers must be >= 1, got {args.workers}")
    require(args.shards >= 0, f"--shards must be >= 0, got {args.shards}")
    tok = get_tokenizer(args.tokenizer, **tokenizer_options(args.config))
    source = open_source(args.source, args.root)
    manifest = prepare_dataset(
        source, tok, args.out, workers=args.workers, shards=args.shards, engine=args.engine
    )
    kind = f"{args.shards} train shards" if args.shards else "memmaps"
    print(f"wrote {args.out} ({source.name}, {tok.name} tokenizer, {kind}, engine {args.engine})")
    print(_counts_table(manifest.header()))
    failed = len(manifest.failures)
    if failed:
        first = manifest.failures[0]
        sys.stderr.write(
            f"musegen data prepare: skipped {failed} piece(s), e.g. {first.id}: {first.reason} "
            f"(all listed by 'musegen data info {args.out} --failures')\n"
        )
    require(bool(manifest.pieces), f"no piece of {source.name!r} could be prepared")
    return 0


# --------------------------------------------------------------------------- info
def summary(folder: str | Path) -> dict[str, Any]:
    """What ``data info`` shows: the manifest without its per-piece lists."""
    from musegen.data.dataset import Manifest

    manifest = Manifest.load(folder)
    d = manifest.header()
    return {
        "path": str(folder),
        "source": d["source"],
        "tokenizer": d["tokenizer"],
        "dtype": d["dtype"],
        "frame_width": d["frame_width"],
        "created": d["created"],
        "musegen_version": d["musegen_version"],
        "libraries": d["libraries"],
        "splits": d["splits"],
        "failures": [vars(f).copy() for f in manifest.failures],
    }


def _counts_table(info: dict[str, Any]) -> str:
    rows = [f"  {'split':<8}{'pieces':>8}{'tokens':>12}{'notes':>10}{'failed':>8}"]
    for name, c in info["splits"].items():
        rows.append(
            f"  {name:<8}{c['pieces']:>8}{c['tokens']:>12}{c['notes']:>10}{c['failures']:>8}"
        )
    return "\n".join(rows)


def run_info(args: argparse.Namespace) -> int:
    info = summary(args.dir)
    if args.json:
        if not args.failures:
            info["failures"] = len(info["failures"])
        print_json(info)
        return 0
    tok = info["tokenizer"]
    unit = "tokens" if info["frame_width"] is None else f"rows of {info['frame_width']} cells"
    print(
        f"{info['path']}: {info['source']['name']} with {tok['tokenizer']} ({unit}, {info['dtype']})"
    )
    print(f"  created {info['created']} by musegen {info['musegen_version']}")
    if info["libraries"]:
        print("  read with " + ", ".join(f"{k} {v}" for k, v in info["libraries"].items()))
    print(_counts_table(info))
    if args.failures:
        for f in info["failures"]:
            print(f"  failed {f['split']}/{f['id']}: {f['reason']}")
    return 0


# --------------------------------------------------------------------------- list
def source_rows() -> list[dict[str, Any]]:
    """Each source with its description, licence and whether its data can be read here."""
    from concurrent.futures import ThreadPoolExecutor

    from musegen.data.sources import available_sources

    with ThreadPoolExecutor(4) as pool:  # sources read their index files: mostly I/O
        return list(pool.map(_source_row, available_sources()))


def _source_row(name: str) -> dict[str, Any]:
    from musegen.data.sources import source_class

    row: dict[str, Any] = {"name": name, "description": "", "license": "", "pieces": 0}
    try:
        cls = source_class(name)
        row.update(description=cls.description, license=cls.license)
        row["pieces"] = len(cls().pieces())
        row["status"] = f"{row['pieces']} pieces"
    except MusegenError as e:  # no data here
        row["status"] = f"not available: {e}"
    except Exception as e:  # a missing dependency or a damaged file must not stop the list
        row["status"] = f"not available: {type(e).__name__}: {e}"
    row["available"] = row["pieces"] > 0
    return row


def find_prepared(places: list[str]) -> list[Path]:
    """Dataset folders: each place that has a manifest, or its subfolders that do."""
    from musegen.data.dataset import MANIFEST

    found: list[Path] = []
    for place in [DEFAULT_DATA_DIR, *map(Path, places)]:
        if (place / MANIFEST).is_file():
            found.append(place)
        elif place.is_dir():
            found.extend(sorted(p.parent for p in place.glob(f"*/{MANIFEST}")))
        elif place != DEFAULT_DATA_DIR:
            raise MusegenError(f"{place}: no such folder")
    return list(dict.fromkeys(found))


def run_list(args: argparse.Namespace) -> int:
    folders = find_prepared(args.prepared)
    sources = source_rows()
    prepared = []
    for folder in folders:
        try:
            prepared.append(summary(folder))
        except MusegenError as e:
            prepared.append({"path": str(folder), "error": str(e)})
    if args.json:
        for p in prepared:
            p["failures"] = len(p.get("failures", []))
        print_json({"sources": sources, "prepared": prepared})
        return 0
    print("sources:")
    for s in sources:
        mark = "*" if s["available"] else " "
        print(f" {mark} {s['name']:<11} {s['description']}")
        print(f"   {'':<11} licence: {_first_line(s['license'])}; {s['status']}")
    print("   (* = data available here)")
    print("prepared datasets:" if prepared else "prepared datasets: none under ./data")
    for p in prepared:
        if "error" in p:
            print(f"   {p['path']}: {p['error']}")
            continue
        counts = ", ".join(f"{k} {v['pieces']}" for k, v in p["splits"].items())
        print(f"   {p['path']}: {p['source']['name']} / {p['tokenizer']['tokenizer']} ({counts})")
    return 0


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "not stated"
    return line if len(line) <= 90 else line[:87] + "..."
