"""A bursting-neuron gradient question, reproduced: the gradient of a zero loss at the nominal parameters.

Run: ``python examples/bursting_neuron_gradient.py``.  The calcium neuron (Liu et al. 1998, as the code of a Julia Discourse question
defines it: https://discourse.julialang.org/t/when-forwarddiff-ing-through-an-ode-is-unstable/49484) is solved with Tsitouras 5(4) at rtol 1e-3, atol 1e-6 over (0, 500).  The loss re-solves with output
at the nominal solve's own step times and sums the squared differences to the nominal solution, so at the nominal
parameters the true loss and gradient are 0.  The discrete forward mode (forward-mode AD through the solver)
gives that 0 exactly when the controller's norm sees values only, and a gradient of norm ~1e6 when it sees the
tangents too (the question reported 1.45e6), because the differentiated solve then takes other steps.
"""

from __future__ import annotations

import numpy as np

import symsens
from symsens.integrate import solve

model = symsens.load_model("calcium-neuron")
settings = dict(method="tsit5", rtol=1e-3, atol=1e-6)
nominal = solve(model, (0, 500), **settings).check()
print(f"nominal solve: {nominal.stats.accepted_steps} accepted, {nominal.stats.rejected_steps} rejected steps")

for tangents in (False, True):
    differentiated = solve(model, (0, 500), t_eval=nominal.t, sensitivity="discrete",
                           sensitivity_in_norm=tangents, **settings).check()
    residual = differentiated.y - nominal.y
    loss = float(np.sum(residual**2))
    gradient = 2 * np.einsum("ki,kij->j", residual, differentiated.sensitivities)
    label = "tangents in the norm" if tangents else "values-only norm    "
    print(f"{label}: {differentiated.stats.accepted_steps} steps, loss {loss:.4g}, "
          f"|gradient| {np.linalg.norm(gradient):.4g}, max |dy/dp| {np.abs(differentiated.sensitivities).max():.3g}")
