"""Compare the forward-gradient modes of one solver on van der Pol (mu = 10).

Run: ``python examples/compare_gradient_modes.py``.  For each rtol, the sensitivity dy1/dmu at t = 10 from

* forward            continuous forward sensitivities, S not in the error norm (CVODES errconS = false)
* forward+norm       continuous forward sensitivities, S in the error norm    (CVODES errconS = true)
* discrete           exact derivative of the numerical solution, steps held constant
* discrete+tangents  the same, but the controller's norm sees the tangents (ForwardDiff through
                     OrdinaryDiffEq since 2020): the differentiated solve takes other steps
* discrete+steps     the step sizes differentiated too (AD through the controller)

against a tight reference (verner7, rtol 1e-13, steps landing on t = 10).
"""

from __future__ import annotations

import symsens
from symsens.integrate import solve

model = symsens.load_model("van-der-pol").with_parameter_values({"mu": 10.0})
T = 10.0
reference = solve(model, (0, T), method="verner7", rtol=1e-13, atol=1e-13, t_eval=[T], sensitivity="forward",
                  sensitivity_in_norm=True).sensitivities[-1, 0, 0]
modes = {
    "forward": dict(sensitivity="forward"),
    "forward+norm": dict(sensitivity="forward", sensitivity_in_norm=True),
    "discrete": dict(sensitivity="discrete"),
    "discrete+tangents": dict(sensitivity="discrete", sensitivity_in_norm=True),
    "discrete+steps": dict(sensitivity="discrete", differentiate_steps=True),
}
print(f"dy1/dmu at t = {T}: reference {reference:.12g}\n")
print(f"{'rtol':>8} " + " ".join(f"{name:>18}" for name in modes) + "   (relative error; steps)")
for rtol in (1e-3, 1e-5, 1e-7, 1e-9):
    cells = []
    for kwargs in modes.values():
        sol = solve(model, (0, T), method="tsit5", rtol=rtol, atol=rtol * 1e-2, t_eval=[T], **kwargs)
        error = abs(sol.sensitivities[-1, 0, 0] - reference) / abs(reference)
        cells.append(f"{error:10.2e};{sol.stats.accepted_steps:6d}")
    print(f"{rtol:8.0e} " + " ".join(f"{c:>18}" for c in cells))
