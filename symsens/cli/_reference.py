"""``symsens reference``: a solution and its gradient with verified digits (:func:`symsens.reference`)."""

from __future__ import annotations

import argparse
import json
import sys

from ._derive import add_model_arguments, resolve_model

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reference",
        help="a high-precision solution and gradient with verified digits",
        description=(
            "Integrate a model and dy/dp on a ladder of independent high-order runs in extended precision and "
            "print every value with the number of significant digits two runs verify.  Progress goes to "
            "standard error for runs longer than two seconds."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("--digits", type=int, default=16, help="significant digits requested (default 16)")
    parser.add_argument("--t", type=float, action="append", metavar="T",
                        help="output time (repeatable; default: the end of the time span)")
    parser.add_argument("--t-span", nargs=2, type=float, metavar=("T0", "T1"), help="time span (default: the model's)")
    parser.add_argument("--parameters", metavar="P1,P2,...", help="differentiate w.r.t. these parameters only")
    parser.add_argument("--no-sensitivity", action="store_true", help="the solution only, no dy/dp")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="parameter value (decimal, taken exactly; repeatable)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS", help="stop verifying after this many seconds")
    parser.add_argument("--path", choices=["auto", "fast", "mpmath"], default="auto")
    parser.add_argument("--scheme", choices=["auto", "radau-iia", "gauss", "taylor"], default=None,
                        help="the family of every high-precision run (default auto: chosen by stiffness)")
    parser.add_argument("--method", dest="deprecated_method", choices=["auto", "radau-iia", "gauss", "taylor"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def _outputs(model, result) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """The model's outputs at the reference times, computed in double precision from the verified states."""
    if not model.outputs or len(result.t) == 0:
        return {}
    import numpy as np

    from ..integrate._solve import _OutputFunction

    p = np.array([float(v) for v in result.p])
    values = _OutputFunction(model, p)(np.asarray(result.t, dtype=float), np.asarray(result.y, dtype=float))
    return {name: [float(v) for v in values[i]] for i, name in enumerate(model.output_names)}


def run(args: argparse.Namespace) -> int:
    from ..reference import reference
    from ._solve import scheme_argument

    model = resolve_model(args)
    t_span = tuple(args.t_span) if args.t_span else model.t_span
    if t_span is None:
        raise ValueError("the model has no default time span: pass --t-span T0 T1")
    if args.t:
        t_span = (t_span[0], max(t_span[1], max(args.t))) if not args.t_span else t_span
    values: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        values[name.strip()] = value.strip()
    parameters = [p.strip() for p in args.parameters.split(",") if p.strip()] if args.parameters else None
    result = reference(
        model, t_span, p=values or None, t_eval=sorted(args.t) if args.t else None, digits=args.digits,
        sensitivity=not args.no_sensitivity, parameters=parameters, time_budget=args.time_budget, path=args.path,
        method=scheme_argument(args, "auto"), progress=sys.stderr.isatty() or not args.json,
    )
    outputs = _outputs(model, result)
    if args.json:
        record = result.to_dict()
        record["output_names"] = list(outputs)
        # Outputs are evaluated in double precision from the verified states: not themselves verified digits.
        record["outputs"] = outputs
        json.dump(record, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if result.verified else 1
    print(f"model {model.name}: {result.message}")
    for k, t in enumerate(result.t):
        print(f"t = {t:.17g}")
        for i, name in enumerate(result.state_names):
            print(f"  {name:>14} = {result.y_decimal(k, i):<40} [{int(result.y_digits[k, i])} digits]")
        if result.sensitivities is not None and result.sensitivity_digits is not None:
            for i, name in enumerate(result.state_names):
                for j, pname in enumerate(result.parameters):
                    label = f"d{name}/d{pname}"
                    print(f"  {label:>14} = {result.sensitivity_decimal(k, i, j):<40} "
                          f"[{int(result.sensitivity_digits[k, i, j])} digits]")
        for name, values in outputs.items():
            print(f"  {name:>14} = {values[k]:<40.17g} [output, in double precision from the states]")
    print("runs:")
    for index, run_record in enumerate(result.runs):
        print(f"  {index}: {run_record.describe()}")
    print("verified by comparing runs " + ", ".join(f"{a} and {b}" for a, b in result.verification))
    return 0 if result.verified else 1
