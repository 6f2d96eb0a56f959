"""The one ``musegen`` entry point.

Each subcommand lives in a small module of this package exposing ``register(subparsers)``;
handlers import heavy libraries lazily so ``musegen --help`` stays instant. A
:class:`~musegen.errors.MusegenError` becomes one line on stderr and exit code 2 (``--debug``
shows the traceback instead).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from musegen import __version__

COMMAND_MODULES = (
    "musegen.cli.files",
    "musegen.cli.tokens",
    "musegen.cli.render",
    "musegen.cli.data",
    "musegen.cli.train",
    "musegen.cli.generate",
    "musegen.cli.evaluate",
    "musegen.cli.compose",
    "musegen.cli.harmonize",
)
EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> Parser:
    parser = Parser(
        prog="musegen",
        description="Music generation toolkit: read, tokenize, generate, evaluate and render music.",
        epilog="Run 'musegen COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"musegen {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from musegen.errors import MusegenError

    try:
        return int(args.func(args) or 0)
    except MusegenError as e:
        if args.debug:
            raise
        sys.stderr.write(f"musegen {args.command}: error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("musegen: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
