"""The explicit side: sensitivities *amplified* by explicit schemes working at their stability boundary.

An explicit Runge–Kutta method has a polynomial ``R``; on the negative axis it is stable on ``[x_b, 0]`` with
``|R(x_b)| = 1``.  An adaptive explicit solver on a stiff problem settles where ``h λ`` sits at ``x_b`` (the step
size is limited by stability, not accuracy), and there

* ``|R'(x_b)|`` is ``O(1)`` or larger (Euler: ``R' = 1``; RK4 at ``x_b = -2.785``: ``|R'| = 1.5``), while the exact
  ``e^{x_b}`` is ``0.06``: the one-step sensitivity is too large by ``|R'(x_b)| / e^{x_b}``;
* after ``n`` steps the sensitivity is ``n R^{n-1} R'`` with ``|R| ≈ 1``: it *grows* like ``n`` while the exact
  ``n e^{n x_b}`` decays — the amplification is ``≈ n |R'(x_b)| e^{-n x_b}``.

This is the regime of the bursting neuron of the forum question (Tsit5 through a stiff spike): exploding rather than vanishing
gradients.  Measured here with the compiled explicit integrators (fixed step, discrete mode) on ``y' = λ y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ._testeq import closed_form, exact, measure

__all__ = ["stability_boundary", "BoundaryResult", "explicit_boundary", "EXPLICIT_SCHEMES"]

EXPLICIT_SCHEMES: tuple[str, ...] = ("euler", "heun", "rk4", "bs3", "dopri5", "tsit5", "verner6", "verner7")


def stability_boundary(name: str) -> float:
    """``x_b < 0``: the end of the real stability interval ``[x_b, 0]`` (``|R(x)| <= 1`` there), to 1e-13."""
    from ..schemes import get_scheme
    from ..schemes._decay import stability_numpy

    R, _ = stability_numpy(get_scheme(name))
    x = -np.linspace(1e-6, 20.0, 200_001)
    outside = np.abs(R(x)) > 1.0 + 1e-12
    if not outside.any():
        raise ValueError(f"{name!r}: no stability boundary on [-20, 0]")
    i = int(np.argmax(outside))
    return float(brentq(lambda v: abs(float(R(v))) - 1.0, x[i], x[i - 1], xtol=1e-14))


@dataclass(frozen=True)
class BoundaryResult:
    """One explicit scheme near its stability boundary.

    ``x`` one-step grid (``h = 1``, ``λ = x``) up to ``1.2 x_b``; ``measured``/``closed`` ``R'(x)``, ``exact_`` ``e^x``.
    ``steps``: step counts; ``amplification[k]`` = measured ``n``-step sensitivity over the exact one at ``0.98 x_b``.
    """

    scheme: str
    boundary: float
    x: np.ndarray
    measured: np.ndarray
    closed: np.ndarray
    exact_: np.ndarray
    steps: np.ndarray
    at: float
    n_step_measured: np.ndarray
    n_step_exact: np.ndarray

    @property
    def amplification(self) -> np.ndarray:
        return self.n_step_measured / self.n_step_exact

    @property
    def one_step_amplification(self) -> float:
        """``|R'(x_b)| / e^{x_b}`` from the closed form at the boundary."""
        return float(abs(closed_form(self.scheme, [self.boundary], 1)[0]) / np.exp(self.boundary))


def explicit_boundary(name: str, steps: Sequence[int] = (1, 2, 5, 10, 20, 50), fraction: float = 0.98) -> BoundaryResult:
    """Measure ``R'`` up to beyond the boundary and the ``n``-step amplification at ``fraction * x_b``."""
    xb = stability_boundary(name)
    x = -np.logspace(-1, np.log10(1.2 * abs(xb)), 25)
    at = fraction * xb
    steps_arr = np.asarray(steps, dtype=int)
    n_measured = np.array([measure(name, [at], int(n), "rate")[0] for n in steps_arr])
    n_exact = np.array([exact([at], int(n), "rate")[0] for n in steps_arr])
    return BoundaryResult(
        scheme=name, boundary=xb, x=x, measured=measure(name, x, 1, "rate"), closed=closed_form(name, x, 1, "rate"),
        exact_=exact(x, 1, "rate"), steps=steps_arr, at=at, n_step_measured=n_measured, n_step_exact=n_exact,
    )
