"""``symsens solve``: integrate a model (and its sensitivities) with a compiled or NumPy integrator."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ._derive import add_model_arguments, resolve_model

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve",
        help="integrate a model and, optionally, its parameter sensitivities",
        description="Integrate a model with a catalogue method; --sensitivity forward|discrete adds dy/dp.",
    )
    add_model_arguments(parser)
    parser.add_argument("--method", default="tsit5", help="integration method (default tsit5)")
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..integrate import solve

    model = resolve_model(args)
    t_span = tuple(args.t_span) if args.t_span else model.t_span
    if t_span is None:
        raise ValueError("the model has no default time span: pass --t-span T0 T1")
    t_eval = np.linspace(t_span[0], t_span[1], args.outputs) if args.outputs > 0 else None
    parameters = [p.strip() for p in args.parameters.split(",") if p.strip()] if args.parameters else None
    solution = solve(
        model, t_span, method=args.method, rtol=args.rtol, atol=args.atol, t_eval=t_eval,
        sensitivity=args.sensitivity, parameters=parameters, sensitivity_in_norm=args.sensitivity_in_norm,
        differentiate_steps=args.differentiate_steps, backend=args.backend,
    )
    if args.plot:
        from ..plotting import solution_figure

        solution_figure(solution).savefig(args.plot, dpi=120)
    stats = solution.stats
    if args.json:
        record = {
            "model": model.name,
            "method": solution.method,
            "backend": solution.backend,
            "sensitivity": solution.sensitivity,
            "status": solution.status,
            "message": solution.message,
            "t_failure": solution.t_failure,
            "states": list(model.state_names),
            "parameters": list(solution.parameters),
            "t": solution.t.tolist(),
            "y": solution.y.tolist(),
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
        if solution.sensitivities is not None and len(solution.t):
            for j, p in enumerate(solution.parameters):
                print(f"  d{model.state_names[0]}/d{p}({solution.t[-1]:g}) = {solution.sensitivities[-1, 0, j]:.10g}")
        if args.plot:
            print(f"  figure: {args.plot}")
    return 0 if solution.success else 3
