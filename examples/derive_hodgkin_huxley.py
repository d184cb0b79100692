"""Derive the forward sensitivity system of Hodgkin–Huxley and use it: S(t) for three conductances.

Run: ``python examples/derive_hodgkin_huxley.py``.  Prints the sensitivity equations for g_Na and the
sensitivities of V at t = 10 ms, integrated with SciPy from the exact symbolic system, next to central finite
differences of V(10 ms) as a check.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

import symsens
from symsens.derive import numpy_function, sensitivity_system, to_text

model = symsens.load_model("hodgkin-huxley")
parameters = ["g_Na", "g_K", "g_L"]
system = sensitivity_system(model, parameters)
print(to_text(sensitivity_system(model, ["g_Na"])))

arguments = [model.time, *system.augmented_states, *model.parameters]
rhs = numpy_function(list(system.augmented_rhs), arguments)
jac = numpy_function(list(system.augmented_jacobian), arguments)
p = np.array(model.parameter_values)
u0 = numpy_function(list(system.augmented_initial_conditions), model.parameters)(*p).ravel()
size = len(u0)


def solve(p_values: np.ndarray, y0: np.ndarray) -> np.ndarray:
    sol = solve_ivp(
        lambda t, u: rhs(t, *u, *p_values).ravel(),
        (0.0, 10.0),
        y0,
        method="Radau",
        jac=lambda t, u: jac(t, *u, *p_values).reshape(size, size),
        rtol=1e-10,
        atol=1e-12,
    )
    return sol.y[:, -1]


u = solve(p, u0)
sensitivities = u[model.n_states :].reshape(len(parameters), model.n_states)[:, 0]
print("dV/dp at t = 10 ms (sensitivity equations):", {k: round(float(v), 6) for k, v in zip(parameters, sensitivities)})

finite_differences = []
for name in parameters:
    j = model.parameter_names.index(name)
    step = 1e-5 * p[j]
    plus, minus = p.copy(), p.copy()
    plus[j] += step
    minus[j] -= step
    y0_plus = np.concatenate([u0[: model.n_states], np.zeros(size - model.n_states)])
    v_plus = solve(plus, y0_plus)[0]
    v_minus = solve(minus, y0_plus)[0]
    finite_differences.append((v_plus - v_minus) / (2 * step))
print("dV/dp at t = 10 ms (central differences):  ", {k: round(float(v), 6) for k, v in zip(parameters, finite_differences)})
