"""``y' = A(p) y`` with a closed-form loss gradient, shared by the adjoint tests.

``x1' = -s a x1 + x2``, ``x2' = -b x1 - x2/2``, ``x(0) = (1, c)`` on (0, 2); least squares against fixed data
at ``TIMES`` (data at t0 and t1 too, so the adjoints jump at both ends).  ``s`` scales the fast mode (1: non-stiff).
The gradient is exact: ``y(t) = expm(A t) y0`` and ``dy/dp_j = expm_frechet(A t, dA/dp_j t) y0 + expm(A t) dy0/dp_j``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm, expm_frechet

import symsens

TIMES = np.array([0.0, 0.5, 1.0, 2.0])
OBSERVED = np.array([[0.9, 0.2], [0.5, 0.1], [0.2, -0.1], [0.1, 0.0]])
P_LINEAR = np.array([1.5, 0.7, 0.3])


def linear_model(stiffness: float = 1.0) -> symsens.Model:
    """The model (the same text for ``stiffness = 1`` in every test file, so its compiled kernels are shared)."""
    first = "-a*x1 + x2" if stiffness == 1.0 else f"-{stiffness!r}*a*x1 + x2"
    name = "linear" if stiffness == 1.0 else f"linear-{stiffness:g}"
    return symsens.Model(states=["x1", "x2"], parameters={"a": 1.5, "b": 0.7, "c": 0.3},
                         rhs=[first, "-b*x1 - 0.5*x2"], initial_conditions=["1", "c"], name=name, t_span=(0.0, 2.0))


def linear_closed_form(p: np.ndarray, stiffness: float = 1.0, times: np.ndarray = TIMES,
                       observed: np.ndarray = OBSERVED) -> tuple[float, np.ndarray]:
    """``L = sum_k |y(t_k) - d_k|^2`` and ``dL/dp``, exactly (module docstring)."""
    A = np.array([[-stiffness * p[0], 1.0], [-p[1], -0.5]])
    dA = [np.array([[-stiffness, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [-1.0, 0.0]]), np.zeros((2, 2))]
    y0, dy0 = np.array([1.0, p[2]]), [np.zeros(2), np.zeros(2), np.array([0.0, 1.0])]
    value, grad = 0.0, np.zeros(3)
    for t, d in zip(times, observed):
        E = expm(A * t)
        r = E @ y0 - d
        value += float(r @ r)
        for j in range(3):
            grad[j] += 2.0 * float(r @ (expm_frechet(A * t, dA[j] * t, compute_expm=False) @ y0 + E @ dy0[j]))
    return value, grad
