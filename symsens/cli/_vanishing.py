"""``symsens vanishing``: vanishing and exploding gradients of stiff and explicit solvers, measured.

``symsens vanishing [--schemes a,b,...] [--steps 1,10] [--model MODEL --parameter NAME [--method M]] [--out DIR]
[--json]``

On ``y' = λ y`` it runs the real integrators (fixed step, discrete mode) over ``z = hλ`` from ``-0.1`` to ``-1e8`` beside
the closed forms and the exact ``t e^{λt}``, fits the decay exponents of ``R'``, ``z R'`` (one-step) and of the
dominant-root sensitivity ``|z ζ'|`` (BDF) and measures the amplification of explicit schemes at their stability
boundary.  With ``--model`` it diagnoses a gradient of the user's model (see :mod:`symsens.vanishing._diagnose`).
``--out DIR`` writes the figures ``vanishing-<family>.png``, ``vanishing-explicit.png`` (and
``vanishing-diagnosis.png``).  ``--json`` prints ``exponents`` (scheme -> ``{"dR", "zdR"}`` or ``{"root"}``) and the
rest of the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "vanishing",
        help="measure vanishing/exploding gradients of stiff and explicit solvers (Fronk & Petzold)",
        description="Measure the sensitivity to fast rates on y' = lambda y with the real integrators beside the "
                    "closed forms; fit decay exponents; diagnose a parameter of your model.",
    )
    parser.add_argument("--schemes", metavar="S1,S2,...", help="schemes (default: implicit catalogue, bdf1-6, exprb)")
    parser.add_argument("--steps", default="1,10", metavar="N1,N2", help="step counts of the sweeps (default 1,10)")
    parser.add_argument("--explicit", metavar="S1,S2,...", help="explicit schemes at their stability boundary "
                        "(default: all compiled explicit schemes; 'none' to skip)")
    parser.add_argument("--model", help="built-in model name or model file to diagnose")
    parser.add_argument("--parameter", help="parameter of --model whose gradient is diagnosed")
    parser.add_argument("--scheme", default=None, metavar="SCHEME",
                        help="integration scheme for --model (default radau-iia-3; aliases such as radau5 accepted)")
    parser.add_argument("--method", dest="deprecated_method", metavar="SCHEME", help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress on standard error")
    parser.add_argument("--fixed-step", type=float, help="--model: fixed step size instead of adaptive steps")
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-8)
    parser.add_argument("--out", metavar="DIR", help="write the figures into DIR")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..vanishing._explicit import EXPLICIT_SCHEMES
    from ..vanishing._report import DEFAULT_SCHEMES, run_vanishing

    if (args.model is None) != (args.parameter is None):
        raise ValueError("--model and --parameter go together")
    schemes = _names(args.schemes) or list(DEFAULT_SCHEMES)
    explicit = _names(args.explicit)
    explicit = [] if explicit == ["none"] else (explicit or list(EXPLICIT_SCHEMES))
    try:
        steps = tuple(int(s) for s in args.steps.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--steps must be comma-separated integers, got {args.steps!r}") from None
    if not steps or min(steps) < 1:
        raise ValueError("--steps must list positive integers")
    from ._audit import ProgressBar
    from ._solve import scheme_argument

    scheme = scheme_argument(args, "radau-iia-3")
    progress = None if args.quiet or args.json else ProgressBar()
    report = run_vanishing(schemes, steps=steps, explicit=explicit, progress=progress)
    if args.model is not None:
        from ..vanishing._diagnose import diagnose
        from ._derive import resolve_model

        model = resolve_model(argparse.Namespace(model=args.model, example=None))
        diagnosis = diagnose(model, args.parameter, method=scheme, rtol=args.rtol, atol=args.atol,
                             fixed_step=args.fixed_step)
        report = replace(report, diagnosis=diagnosis)
    figures: list[str] = []
    if args.out:
        from ..vanishing._figures import diagnosis_figure, explicit_boundary_figure, family_figure

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for family, results in report.families().items():
            path = out / f"vanishing-{family}.png"
            family_figure(results, family).savefig(path, dpi=110)
            figures.append(str(path))
        if report.explicit:
            path = out / "vanishing-explicit.png"
            explicit_boundary_figure(report.explicit).savefig(path, dpi=110)
            figures.append(str(path))
        if report.diagnosis is not None:
            path = out / "vanishing-diagnosis.png"
            diagnosis_figure(report.diagnosis).savefig(path, dpi=110)
            figures.append(str(path))
    if args.json:
        record = report.to_json()
        record["figures"] = figures
        json.dump(record, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print("decay exponents (fitted from measurements | exact), asymptotic range:")
    print(f"  {'scheme':18s} {'engine':26s} {'quantity':9s} {'fitted':>9s} {'exact':>9s}  range |z|")
    for e in report.exponents:
        for key in e.fitted:
            label = {"dR": "R'", "zdR": "z R'", "root": "|z ζ'|"}[key]
            print(f"  {e.scheme:18s} {e.engine:26s} {label:9s} {e.fitted[key]:9.4f} {e.exact[key]:9.4f}  "
                  f"{e.z_range[0]:.0e}..{e.z_range[1]:.0e}")
    print("measured vs closed form (max relative difference over the z grid):")
    for r in report.sweeps:
        diff = r.relative_difference
        finite = diff[(r.closed_form != 0) & (abs(r.closed_form) > 1e-290)]
        finite = finite[~(finite != finite)]
        worst = f"{finite.max():.1e}" if len(finite) else "n/a"
        print(f"  {r.scheme:18s} n={r.steps:<3d} {r.engine:15s} {worst}")
    if report.explicit:
        print("explicit schemes at the stability boundary x_b (sensitivity measured / exact):")
        for b in report.explicit:
            amp = ", ".join(f"n={n}: {abs(a):.2g}" for n, a in zip(b.steps, b.amplification))
            print(f"  {b.scheme:8s} x_b = {b.boundary:8.4f}  |R'(x_b)|/e^x_b = {b.one_step_amplification:7.1f}   {amp}")
    if report.diagnosis is not None:
        s = report.diagnosis.summary()
        print(f"diagnosis of d/d{s['parameter']} on {s['model']} with {s['method']} ({s['sensitivity']}):")
        print(f"  {s['accepted_steps']} steps; max |hλ| = {s['max_stiffness']:.3g}, median {s['median_stiffness']:.3g}; "
              f"driven mode max |hλ| = {s['max_driven_z']:.3g}")
        print(f"  scheme |zR'| per step: median {s['predicted_scheme_factor_median']:.3g} "
              f"(exact |z e^z| median {s['predicted_exact_factor_median']:.3g})")
        print(f"  measured ||solver grad|| / ||reference grad|| = {s['measured_ratio']:.4g}, relative error "
              f"{s['relative_error']:.3g} (reference: {s['reference_source']}, {s['reference_verified_digits']:.1f} digits)")
    for path in figures:
        print(f"figure: {path}")
    print(f"time: {report.timings.get('total', 0):.1f} s")
    return 0
