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
    parser.add_argument("--adjoint", action="store_true",
                        help="print the adjoint system lambda' = -J^T lambda - (dg/dy)^T of a loss instead")
    parser.add_argument("--loss", default=None, metavar="SPEC",
                        help="with --adjoint: the loss, as for `symsens audit` (trajectory[:OUTPUTS], data:FILE.csv, "
                             "integral:EXPR, model; default trajectory: least squares of every state)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..derive import sensitivity_system, to_json_dict, to_latex, to_text
    from ..model import examples

    if args.list:
        print("\n".join(examples()))
        return 0
    model = resolve_model(args)
    parameters = [p.strip() for p in args.parameters.split(",") if p.strip()] if args.parameters else None
    if args.adjoint:
        return _run_adjoint(args, model, parameters)
    if args.loss is not None:
        raise ValueError("--loss needs --adjoint (the forward sensitivity system does not depend on a loss)")
    system = sensitivity_system(model, parameters)
    if args.json:
        json.dump(to_json_dict(model, system, cse=args.cse), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.latex:
        sys.stdout.write(to_latex(system, cse=args.cse))
    else:
        sys.stdout.write(to_text(system, cse=args.cse))
    return 0


def _run_adjoint(args: argparse.Namespace, model, parameters):  # type: ignore[no-untyped-def]
    """``--adjoint``: the exact adjoint system of the loss ``--loss`` (parsed as ``symsens audit`` parses it)."""
    from .._gradient import derived_loss
    from ..audit import parse_loss
    from ..derive import adjoint_system, adjoint_to_json_dict, adjoint_to_latex, adjoint_to_text
    from ..model import examples

    if args.cse:
        raise ValueError("--cse is not available with --adjoint yet")
    model_file = None if (args.example or args.model in examples()) else args.model
    loss = parse_loss(args.loss if args.loss is not None else "trajectory", model_file)
    system = adjoint_system(model, derived_loss(model, loss), parameters)
    if args.json:
        json.dump(adjoint_to_json_dict(system), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.latex:
        sys.stdout.write(adjoint_to_latex(system))
    else:
        sys.stdout.write(adjoint_to_text(system))
    return 0
