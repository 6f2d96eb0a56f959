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
from musegen.cli.common import THREADS_HELP, command_threads

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
    "musegen.cli.live",
    "musegen.cli.describe",
    "musegen.cli.accompany",
    "musegen.cli.latent",
    "musegen.cli.serve",
    "musegen.cli.listen_test",
    "musegen.cli.audio",
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
    parser.add_argument("--threads", type=int, metavar="N", dest="all_threads", help=THREADS_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in _commands(parser):
        if "--threads" not in command._option_string_actions:
            command.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    return parser


def _commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser under ``parser`` that runs a command (the leaves of the subcommand tree)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return [parser]
    return [
        leaf for g in groups for p in dict.fromkeys(g.choices.values()) for leaf in _commands(p)
    ]


def _leaf(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The (sub)command parser that ``argv`` names, e.g. ``compose markov``'s."""
    current = parser
    for token in argv:
        groups = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups:
            break
        if token in groups[0].choices:
            current = groups[0].choices[token]
    return current


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the command whose options were mistyped, and its help
        _leaf(parser, argv).error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from musegen.errors import MusegenError

    try:
        threads = getattr(args, "threads", None) or args.all_threads
        with command_threads(threads):
            return int(args.func(args) or 0)
    except MusegenError as e:
        if args.debug:
            raise
        # named by the command that ran, e.g. 'musegen latent sample: error: ...'
        sys.stderr.write(f"{_leaf(parser, argv).prog}: error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        said = f": {e}" if str(e) else ""  # musegen.errors.Interrupted says what was saved
        sys.stderr.write(f"{_leaf(parser, argv).prog}: interrupted{said}\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
