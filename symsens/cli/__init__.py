"""The ``symsens`` command line: a thin layer over the library API.

Each subcommand lives in its own module ``symsens.cli._<name>`` exposing
``register(subparsers) -> None``, which adds a parser whose default ``handler`` is a function
``(argparse.Namespace) -> int``.  Library errors (:class:`symsens.SymsensError`, and ``ValueError`` for bad
arguments) become one-line messages on standard error and exit status 2; nothing prints a traceback for
bad input.  ``symsens solve`` exits 3 when the integration itself fails (its status says why and when).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from .._errors import SymsensError

__all__ = ["main", "build_parser"]

# Subcommand modules, in the order ``symsens --help`` lists them.  A module that does not exist yet is an
# error, not a silent omission.
_SUBCOMMAND_MODULES: tuple[str, ...] = ("_derive", "_schemes", "_solve", "_audit", "_vanishing", "_reference", "_petab")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="symsens",
        description="Are the parameter gradients of your ODE model trustworthy? Derive, analyse, audit.",
    )
    parser.add_argument("--version", action="version", version=f"symsens {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _SUBCOMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        module.register(subparsers)
    return parser


def _format_warning_plainly(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                            line: str | None = None) -> str:
    """``warnings.formatwarning`` for the command line: ``warning: <message>``, no file and line."""
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``symsens`` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 1
    try:
        # On the command line a warning is a sentence for the user, not a source location.
        plain, warnings.formatwarning = warnings.formatwarning, _format_warning_plainly
        try:
            return int(handler(args) or 0)
        finally:
            warnings.formatwarning = plain
    except SymsensError as error:
        print(f"symsens {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as error:
        # Bad input reaches the library as ValueError naming the argument; show that sentence, no traceback.
        print(f"symsens {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
