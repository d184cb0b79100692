"""The bursting-neuron gradient of the Julia Discourse question, audited:
``python examples/audit_bursting_neuron.py [FIGURE_DIR]``.

Audits the calcium neuron (Liu et al. 1998; 13 states, 13 parameters) in the experiment of the forum question
(https://discourse.julialang.org/t/when-forwarddiff-ing-through-an-ode-is-unstable/49484): Tsitouras 5(4)
at rtol 1e-3, atol 1e-6 over (0, 500 ms), the loss re-solving with output at the nominal solve's own step times.
Prints the verdicts and writes the report to ``audit-bursting-neuron/``; with FIGURE_DIR, also copies the three figures the
docs show there as ``audit-bursting-*.png``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

import symsens
from symsens.audit import TrajectoryLoss, audit

model = symsens.load_model("calcium-neuron")
report = audit(model, TrajectoryLoss(), t_span=(0.0, 500.0), schemes=["tsit5"], tolerances=[1e-3, 1e-4, 1e-5, 1e-6])
for method in ("discrete", "discrete-tangent-norm"):
    row = report.result(method, "tsit5", 1e-3)
    print(f"{method:>22}: loss {row['loss']:.4g}, |gradient| {np.linalg.norm(row['gradient']):.4g} "
          f"(the forum question: 1.45e6 with ForwardDiff) -> {row['verdict']}")
written = report.write("audit-bursting-neuron")
print(f"report: {written['html']}")
if len(sys.argv) > 1:
    target = Path(sys.argv[1])
    for name in ("convergence", "loss_floor", "steps", "sensitivity"):
        if name in written:
            shutil.copy(written[name], target / f"audit-bursting-{name.replace('_', '-')}.png")
