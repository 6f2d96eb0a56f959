"""``python -m musegen.tokenizers.remi --describe``: print REMI's vocabulary and grammar."""

from __future__ import annotations

import argparse
import json

from musegen.tokenizers.remi.tokenizer import RemiTokenizer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m musegen.tokenizers.remi",
        description="The REMI tokenizer's language: its vocabulary blocks and grammar rules.",
    )
    p.add_argument(
        "--describe", action="store_true", help="print the vocabulary blocks and grammar rules"
    )
    p.add_argument(
        "--config", default="{}", help="tokenizer options as JSON, e.g. '{\"programs\": false}'"
    )
    args = p.parse_args(argv)
    if not args.describe:
        p.print_help()
        return 0
    print(RemiTokenizer(**json.loads(args.config)).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
