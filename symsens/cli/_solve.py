"""``symsens solve``: integrate a model (and its sensitivities) with a compiled or NumPy integrator."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings

import numpy as np

from ._derive import add_model_arguments, resolve_model

__all__ = ["register", "scheme_argument"]


def scheme_argument(args: argparse.Namespace, default: str | None = None) -> str | None:
    """The scheme named by ``--scheme``, or by the deprecated ``--method`` spelling (with a FutureWarning)."""
    old = getattr(args, "deprecated_method", None)
    if old is not None:
        warnings.warn(f"symsens {args.command}: --method for the integration scheme is deprecated; use --scheme "
                      f"{old} (--method names gradient methods in symsens audit)", FutureWarning, stacklevel=2)
        if args.scheme is not None and args.scheme != old:
            raise ValueError(f"--scheme {args.scheme!r} and the deprecated --method {old!r} disagree: give --scheme only")
        return old
    return args.scheme if args.scheme is not None else default


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve",
        help="integrate a model and, optionally, its parameter sensitivities",
        description="Integrate a model with a catalogue method; --sensitivity forward|discrete adds dy/dp.",
    )
    add_model_arguments(parser)
    parser.add_argument("--scheme", default=None, metavar="SCHEME",
                        help="integration scheme (default tsit5; aliases such as radau5 are accepted; see symsens schemes)")
    parser.add_argument("--method", dest="deprecated_method", metavar="SCHEME", help=argparse.SUPPRESS)
    parser.add_argument("--t-span", nargs=2, type=float, metavar=("T0", "T1"), help="time span (default: the model's)")
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-8)
    parser.add_argument("--outputs", type=int, default=0, metavar="K",
                        help="K equally spaced output times (default: the accepted steps)")
    parser.add_argument("--sensitivity", choices=["forward", "discrete"], help="compute dy/dp this way")
    parser.add_argument("--parameters", metavar="P1,P2,...", help="differentiate w.r.t. these parameters only")
    parser.add_argument("--sensitivity-in-norm", action="store_true",
                        help="sensitivities (forward) or tangents (discrete) enter the error norm")
    parser.add_argument("--differentiate-steps", action="store_true", help="discrete mode: differentiate the step sizes")
    parser.add_argument("--backend", choices=["compiled", "numpy"], default="compiled")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG of the states and sensitivities")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--csv", metavar="FILE", help="write t, the states and the outputs as CSV (one row per time)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..integrate import solve

    model = resolve_model(args)
    t_span = tuple(args.t_span) if args.t_span else model.t_span
    if t_span is None:
        raise ValueError("the model has no default time span: pass --t-span T0 T1")
    t_eval = np.linspace(t_span[0], t_span[1], args.outputs) if args.outputs > 0 else None
    parameters = [p.strip() for p in args.parameters.split(",") if p.strip()] if args.parameters else None
    scheme = scheme_argument(args, "tsit5")
    if args.backend == "compiled":
        from ..integrate._compiled import method_spec

        try:
            method_spec(scheme)  # an unknown scheme is named as the argument that gave it
        except ValueError as error:
            raise ValueError(f"--scheme: {error}") from None
    from ._notice import notice_after

    working = (f"symsens solve: still working after 2 s: the first use of {model.name} with {scheme} compiles its "
               "solver (cached for later runs), then integrates" if args.backend == "compiled" else
               "symsens solve: still working after 2 s (the NumPy backend integrates in Python)")
    with notice_after(2.0, working):
        solution = solve(
            model, t_span, method=scheme, rtol=args.rtol, atol=args.atol, t_eval=t_eval,
            sensitivity=args.sensitivity, parameters=parameters, sensitivity_in_norm=args.sensitivity_in_norm,
            differentiate_steps=args.differentiate_steps, backend=args.backend,
        )
    if args.plot:
        from ..plotting import solution_figure

        solution_figure(solution, units=model.units, time_name=model.time.name).savefig(args.plot, dpi=120)
    stats = solution.stats
    outputs = solution.outputs or {}
    if args.csv:
        _write_csv(args.csv, solution, outputs)
    if args.json:
        record = {
            "model": model.name,
            "scheme": solution.method,
            "method": solution.method,  # the older name of "scheme", kept for existing readers
            "backend": solution.backend,
            "sensitivity": solution.sensitivity,
            "status": solution.status,
            "message": solution.message,
            "t_failure": solution.t_failure,
            "states": list(model.state_names),
            "parameters": list(solution.parameters),
            "t": solution.t.tolist(),
            "y": solution.y.tolist(),
            "output_names": list(outputs),
            "outputs": {name: values.tolist() for name, values in outputs.items()},
            "sensitivities": None if solution.sensitivities is None else solution.sensitivities.tolist(),
            "stats": {
                "accepted_steps": stats.accepted_steps, "rejected_steps": stats.rejected_steps,
                "rhs_evaluations": stats.rhs_evaluations, "jacobian_evaluations": stats.jacobian_evaluations,
                "lu_decompositions": stats.lu_decompositions,
            },
            "options": solution.options,
        }
        json.dump(record, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"{model.name}: {solution.method} ({solution.backend}) over {t_span}: {solution.status}")
        print(f"  steps {stats.accepted_steps} accepted, {stats.rejected_steps} rejected; "
              f"{stats.rhs_evaluations} rhs, {stats.jacobian_evaluations} Jacobians, {stats.lu_decompositions} LU")
        if len(solution.t):
            print(f"  y({solution.t[-1]:g}) = " + ", ".join(f"{n}={v:.10g}" for n, v in zip(model.state_names, solution.y[-1])))
            if outputs:
                print(f"  outputs({solution.t[-1]:g}) = " + ", ".join(f"{n}={v[-1]:.10g}" for n, v in outputs.items()))
        if solution.sensitivities is not None and len(solution.t):
            for j, p in enumerate(solution.parameters):
                print(f"  d{model.state_names[0]}/d{p}({solution.t[-1]:g}) = {solution.sensitivities[-1, 0, j]:.10g}")
        if args.plot:
            print(f"  figure: {args.plot}")
        if args.csv:
            print(f"  table: {args.csv}")
    return 0 if solution.success else 3


def _write_csv(path: str, solution, outputs: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    """``t``, every state and every output, one row per output time, full precision."""
    names = ["t", *solution.state_names, *outputs]
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(names)
            for k, t in enumerate(solution.t):
                writer.writerow([repr(float(t)), *(repr(float(v)) for v in solution.y[k, : len(solution.state_names)]),
                                 *(repr(float(values[k])) for values in outputs.values())])
    except OSError as error:
        raise ValueError(f"--csv {path!r}: {error.strerror or error}") from None
