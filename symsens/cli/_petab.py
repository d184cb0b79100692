"""``symsens petab PROBLEM.yaml``: the negative log-likelihood of a PEtab problem and its gradient."""

from __future__ import annotations

import argparse
import json
import time

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "petab",
        help="negative log-likelihood of a PEtab problem and its gradient at the nominal parameters",
        description="Load a PEtab v1 problem (problem.yaml) and print the negative log-likelihood at the nominal "
                    "parameters and its gradient over the estimated parameters, on their estimation scale.",
    )
    parser.add_argument("problem", metavar="PROBLEM.yaml", help="the PEtab problem file")
    parser.add_argument("--method", default="forward", help="gradient method (default forward; see symsens audit "
                        "--explain and symsens.gradient)")
    parser.add_argument("--scheme", default=None, help="integration scheme (default: for forward sensitivities and "
                        "the discrete modes 'auto', chosen per problem by a stiffness probe: tsit5 if not stiff, bdf or "
                        "rodas4 if stiff; the JSON field 'scheme' says which ran)")
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--atol", type=float, default=None, help="default rtol / 1000")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..petab import load

    start = time.perf_counter()
    problem = load(args.problem)
    result = problem.gradient(method=args.method, scheme=args.scheme, rtol=args.rtol, atol=args.atol).check()
    seconds = time.perf_counter() - start
    assert result.loss is not None and result.gradient is not None
    if args.json:
        print(json.dumps({
            "negative_log_likelihood": result.loss,
            "parameters": list(problem.parameter_ids),
            "scales": [q.scale for q in problem.parameters],
            "values": [float(v) for v in problem.nominal],
            "gradient": [float(g) for g in result.gradient],
            "method": result.method, "scheme": result.scheme, "rtol": result.rtol, "atol": result.atol,
            "seconds": seconds,
        }, indent=2))
        return 0
    print(f"{problem.source}: {len(problem.measurements)} measurements, {len(problem.copies)} simulation "
          f"condition(s), {len(problem.parameters)} estimated parameters")
    print(f"negative log-likelihood at the nominal parameters: {result.loss:.12g}")
    print(f"gradient ({result.method}, {result.scheme}, rtol {result.rtol:g}, atol {result.atol:g}), "
          "on the estimation scale:")
    width = max(len("parameter"), *(len(q.id) for q in problem.parameters))
    print(f"  {'parameter':<{width}}  scale  {'value':>13}  {'dNLL/dvalue':>13}")
    for q, value, g in zip(problem.parameters, problem.nominal, result.gradient):
        print(f"  {q.id:<{width}}  {q.scale:<5}  {value:>13.6g}  {g:>13.6g}")
    print(f"time: {seconds:.2f} s (loading, deriving, compiling and solving)")
    return 0
