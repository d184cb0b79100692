"""``symsens derive``: the exact Jacobians and sensitivity equations of a model."""

from __future__ import annotations

import argparse
import json
import sys

from .._errors import ModelError

__all__ = ["register"]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``MODEL`` (file or built-in name) or ``--example NAME``: the way every subcommand names a model."""
    parser.add_argument("model", nargs="?", metavar="MODEL", help="model file (.toml) or built-in model name")
    parser.add_argument("--example", metavar="NAME", help="a built-in model (see `symsens derive --list`)")


def resolve_model(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The Model named by ``MODEL`` or ``--example``; exactly one must be given."""
    from ..model import examples, load_model

    if args.model and args.example:
        raise ModelError("give either MODEL or --example, not both")
    source = args.model or args.example
    if not source:
        raise ModelError(f"no model given: pass a model file or --example NAME (built-in: {', '.join(examples())})")
    if args.example and args.example not in examples():
        import difflib

        close = difflib.get_close_matches(args.example, examples(), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ModelError(f"unknown example {args.example!r}{hint} (built-in: {', '.join(examples())})")
    return load_model(source)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "derive",
        help="exact Jacobians and forward sensitivity equations of a model",
        description="Print df/dy, df/dp and the forward sensitivity system S' = J S + F_p of a model, exactly.",
    )
    add_model_arguments(parser)
    parser.add_argument("--parameters", metavar="P1,P2,...", help="differentiate only w.r.t. these parameters")
    parser.add_argument("--latex", action="store_true", help="print LaTeX (align*) instead of text")
    parser.add_argument("--cse", action="store_true", help="common-subexpression elimination with operation counts")
    parser.add_argument("--json", action="store_true", help="machine-readable output (expressions in SymPy syntax)")
    parser.add_argument("--list", action="store_true", help="list the built-in models and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..derive import sensitivity_system, to_json_dict, to_latex, to_text
    from ..model import examples

    if args.list:
        print("\n".join(examples()))
        return 0
    model = resolve_model(args)
    parameters = [p.strip() for p in args.parameters.split(",") if p.strip()] if args.parameters else None
    system = sensitivity_system(model, parameters)
    if args.json:
        json.dump(to_json_dict(model, system, cse=args.cse), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.latex:
        sys.stdout.write(to_latex(system, cse=args.cse))
    else:
        sys.stdout.write(to_text(system, cse=args.cse))
    return 0
