"""Bring your own gradient: the bursting calcium neuron's gradient from diffrax, audited by symsens.

The case of a bursting-neuron gradient question on the Julia Discourse forum (ForwardDiff through OrdinaryDiffEq's
Tsit5, https://discourse.julialang.org/t/when-forwarddiff-ing-through-an-ode-is-unstable/49484), as a JAX user
would bring it: the calcium neuron of Liu et al. (1998) (built-in example ``calcium-neuron``), least squares of
every state against the nominal trajectory, gradient over all 13 parameters, forward-mode AD through an
explicit Tsit5 solve at rtol 1e-3, atol 1e-6.  The true gradient is exactly 0 (the loss is minimal at the data
parameters).

Steps:

1. ``symsens.audit.loss_data`` makes the loss concrete (times and the targets, the verified reference's
   trajectory at the data parameters) so that the tool differentiates exactly the loss the audit checks;
2. ``symsens.bridges.gradient_provider("diffrax-forward", ...)`` computes ``(L, dL/dp)`` with ``jax.jacfwd``
   through ``diffrax.diffeqsolve`` (Tsit5, PIDController): what a JAX user would write by hand;
3. the gradient is written to ``calcium_neuron_diffrax_gradient.json`` (the form ``symsens audit --gradient``
   reads);
4. ``symsens.audit(..., external={"diffrax": ...})`` grades it against the reference and names the symsens
   method it equals.

Needs the ``jax`` extra: ``pip install 'symsens[jax]'``.  Run: ``python examples/audit_tool_gradient.py
[--out DIR]`` (about a minute: JAX compiles the neuron's right-hand side once).
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import numpy as np

import symsens
from symsens.audit._losses import TrajectoryLoss, loss_plan
from symsens.bridges import ToolUnavailableError, gradient_provider

RTOL, ATOL = 1e-3, 1e-6
T_SPAN = (0.0, 500.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=".", help="folder for the gradient's JSON file")
    args = parser.parse_args()

    model = symsens.load_model("calcium-neuron")
    # The preset loss of the example (every state against the nominal trajectory) on a fixed grid, 1 ms apart,
    # so that the loss is concrete for any tool (the preset's grid="steps" belongs to one solver).
    loss = TrajectoryLoss(grid=tuple(np.linspace(T_SPAN[0], T_SPAN[1], 501)[1:]))
    data = symsens.audit.loss_data(model, loss, t_span=T_SPAN)
    print(f"loss: {data.description}; {len(data.times)} times, targets from the verified reference")

    plan = loss_plan(model, loss, model.parameter_names, T_SPAN)
    try:
        provider = gradient_provider("diffrax-forward", model, plan, times=data.times, targets=data.targets,
                                     t_span=T_SPAN)
    except ToolUnavailableError as error:
        raise SystemExit(str(error)) from None
    p = np.asarray(model.parameter_values, dtype=float)
    start = time.perf_counter()
    value, gradient = provider(p, RTOL, ATOL)
    print(f"{provider.solver} at rtol {RTOL:g}, atol {ATOL:g}: L = {value:.6g}, |dL/dp| = "
          f"{np.linalg.norm(gradient):.4g} (true: 0) in {time.perf_counter() - start:.1f} s (with JAX compilation)")
    for name, component in zip(model.parameter_names, gradient):
        print(f"  dL/d{name:<6} = {component: .6e}")

    path = Path(args.out) / "calcium_neuron_diffrax_gradient.json"
    path.write_text(json.dumps({"gradient": dict(zip(model.parameter_names, map(float, gradient))), "loss": value,
                                "rtol": RTOL, "atol": ATOL, "solver": provider.solver}, indent=2), encoding="utf-8")
    print(f"wrote {path}")

    # The audit: symsens' own Tsit5 methods at the same tolerance beside the diffrax gradient (a small audit, so
    # that the example runs in about a minute; `symsens audit --example calcium-neuron --gradient
    # diffrax=FILE.json` runs the full one).
    if "external" not in inspect.signature(symsens.audit.audit).parameters:
        print("this version of symsens.audit takes no `external=` gradients: the JSON file above is the gradient "
              "to audit")
        return
    brought = json.loads(path.read_text(encoding="utf-8"))      # as a user would bring it: from the file
    report = symsens.audit(model, loss, t_span=T_SPAN, schemes=("tsit5",), tolerances=(RTOL,), atol=ATOL,
                           methods=("forward", "forward-error-control", "discrete", "discrete-tangent-norm"),
                           external={"diffrax": brought})
    print(report.answer.get("text"))
    print(f"{'gradient':<24} {'scheme':<8} {'rtol':>6} {'|dL/dp| (true: 0)':>18}  verdict")
    for row in report.results:
        norm = float(np.linalg.norm(row["gradient"])) if row.get("gradient") is not None else float("nan")
        print(f"{row['method']:<24} {str(row['scheme']):<8} {row['rtol']:6.0e} {norm:18.4g}  {row.get('verdict')}")


if __name__ == "__main__":
    main()
