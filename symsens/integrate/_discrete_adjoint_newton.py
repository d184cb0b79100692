"""What the implicit adjoints share: the compiled steppers' simplified-Newton monitor, replayed in NumPy, and the
bookkeeping of a Jacobian that is kept across steps.

The compiled SDIRK/ESDIRK and Radau IIA steppers (``symsens_dirk.hpp``, ``symsens_radau.hpp``) solve their stage
equations by simplified Newton with an iteration matrix built from ``J = f_y`` evaluated at the start of some
earlier accepted step and kept (``symsens_implicit.hpp``).  Every decision (iteration count, divergence, Jacobian
refresh) is taken on values, so forward-mode AD through the solver (the discrete mode) differentiates exactly
the iterations the plain solve carried out: the partials pass through each Newton correction, and the matrix
carries the partials of the ``y_m`` and ``p`` its Jacobian was evaluated at.  A discrete adjoint equal to that
forward mode must therefore reverse the same, stopped, iterations (not the implicit-function-theorem derivative
of the converged stage equations, which differs from it by terms of the size of the Newton error) and must send
the cotangent of the kept Jacobian back to the step where it was evaluated.  This module replays the monitor
(:class:`NewtonMonitor`, the rules of ``NewtonControl``), the weights (``NewtonWeights``) and keeps the
Jacobians (:class:`KeptJacobian`) so that the per-family modules can record and reverse the iterations.

References: E. Hairer and G. Wanner, *Solving ODEs II*, 2nd ed., Springer 1996, Sect. IV.8 (simplified Newton and
its stopping rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["NewtonMonitor", "newton_tolerance", "weighted_norm", "error_norm", "Controller", "same_step",
           "KeptJacobian", "ReplayError", "initial_step",
           "ADAPTIVE_BUDGET", "REPLAY_BUDGET"]

#: The iteration budget of a compiled adaptive solve and of a replayed or fixed-step one
#: (``newton_budget`` in ``symsens_implicit.hpp``): SDIRK 7, Radau 6; 20 for replayed steps.
ADAPTIVE_BUDGET = {"dirk": 7, "radau": 6}
REPLAY_BUDGET = 20


class ReplayError(RuntimeError):
    """The NumPy replay of an implicit solve did not take the compiled solve's path (a Newton solve that the
    compiled solver completed failed here)."""


def newton_tolerance(rtol: float) -> float:
    """``max(10 eps / rtol, min(0.03, sqrt(rtol)))`` (``symsens_implicit.hpp``; SciPy's Radau and BDF)."""
    eps = np.finfo(float).eps
    return max(10.0 * eps / rtol, min(0.03, math.sqrt(rtol)))


def weighted_norm(x: np.ndarray, weights: np.ndarray) -> float:
    """The RMS of ``x_i w_(i mod n)`` (``NewtonWeights::norm``), ``x`` of length a multiple of ``n``."""
    n = len(weights)
    q = x.reshape(-1, n) * weights[None, :]
    squares = q * q
    # Summed as the compiled norm sums: entry i of each block into partial sum (i mod 8), each partial sum in
    # increasing order (np.cumsum accumulates left to right), the eight added pairwise; so the NumPy replay takes
    # the compiled solve's Newton decisions bit for bit.
    partial = [float(np.cumsum(squares[:, lane::8].ravel())[-1]) if n > lane and squares.size else 0.0
               for lane in range(8)]
    total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
    return math.sqrt(total / max(q.size, 1))


@dataclass
class NewtonMonitor:
    """``NewtonControl`` of ``symsens_implicit.hpp``: converged at the rounding floor ``4 eps / rtol``; from the
    second iteration on, rate ``theta = |dZ_k| / |dZ_(k-1)|``, diverged when ``theta >= 1`` or
    ``theta^(kmax - k) / (1 - theta) |dZ_k| > tol``, converged when ``theta / (1 - theta) |dZ_k| <= tol``
    (HW II, Sect. IV.8); diverged after ``kmax`` iterations."""

    rtol: float
    max_iterations: int
    tol: float = 0.0
    floor: float = 0.0
    previous: float = 0.0
    rate: float = 0.0
    iterations: int = 0

    def __post_init__(self) -> None:
        self.tol = newton_tolerance(self.rtol)
        self.floor = 4.0 * np.finfo(float).eps / self.rtol

    def start(self) -> None:
        self.previous = 0.0
        self.rate = 0.0
        self.iterations = 0

    def check(self, norm: float) -> int:
        """1 converged (apply and stop), 0 continue (apply), -1 diverged (do not apply)."""
        self.iterations += 1
        if not math.isfinite(norm):
            return -1
        if norm <= self.floor:
            return 1
        if self.iterations > 1:
            self.rate = norm / self.previous
            if not self.rate < 1.0:
                return -1
            if self.rate ** (self.max_iterations - self.iterations) / (1.0 - self.rate) * norm > self.tol:
                return -1
            if self.rate / (1.0 - self.rate) * norm <= self.tol:
                return 1
        self.previous = norm
        if self.iterations >= self.max_iterations:
            return -1
        return 0


@dataclass(eq=False)
class KeptJacobian:
    """``J(t_m, y_m, p)`` evaluated at the start of accepted step ``m`` (``point``) and kept by the stepper; its
    factorisations (by key, e.g. the ``h gamma`` of an SDIRK matrix) are made on demand."""

    point: object                    # hashable: the step (or attempt) where J was evaluated
    J: np.ndarray
    factors: dict[Any, Any] = field(default_factory=dict)


def error_norm(err: np.ndarray, y0: np.ndarray, y1: np.ndarray, rtol: float, atol: float) -> float:
    """The controller's norm on values (``error_norm`` of ``symsens_solver.hpp``, summed in its order):
    ``sqrt(mean((err_i / (atol + rtol max(|y0_i|, |y1_i|)))^2))``."""
    total = 0.0
    for e, a, b in zip(err.tolist(), y0.tolist(), y1.tolist()):
        scale = atol + rtol * max(abs(a), abs(b))
        total += e * e / (scale * scale)
    return math.sqrt(total / max(len(err), 1))


@dataclass(frozen=True)
class Controller:
    """The step-size rules of ``drive()`` (``symsens_solver.hpp``) for a one-step method: after an accepted step
    ``h *= clamp(safety err^-beta1 err_prev^beta2, factor_min, factor_max)`` (PI control, ``err_prev >= 1e-4``),
    after a rejection ``h *= clamp(safety err^(-1/q), factor_min, 1)``, after a failed attempt ``h *= 1/4``; a
    step that would end within 1% of ``t1`` (or beyond) is stretched or cut to land on it.  Used to re-enact the
    rejected attempts of an adaptive solve, which the compiled solve does not record."""

    safety: float
    factor_min: float
    factor_max: float
    beta1: float
    beta2: float
    error_order: int

    @staticmethod
    def of(scheme: str) -> "Controller":
        from ._compiled import _ALIASES, method_spec

        spec = method_spec(_ALIASES.get(scheme, scheme))
        c = spec.controller
        return Controller(float(c["safety"]), float(c["factor_min"]), float(c["factor_max"]), float(c["beta1"]),
                          float(c["beta2"]), int(spec.error_order))

    def accepted(self, h: float, error: float, previous: float) -> tuple[float, float]:
        """``(next h, next previous error)`` after an accepted step with this error."""
        e = max(error, 1e-10)
        factor = self.safety * (e if error < 1e-10 else error) ** (-self.beta1) * previous ** self.beta2
        factor = min(max(factor, self.factor_min), self.factor_max)
        return h * factor, max(error, 1e-4)

    def rejected(self, h: float, error: float) -> float:
        factor = self.safety * error ** (-1.0 / self.error_order)
        return h * min(max(factor, self.factor_min), 1.0)

    @staticmethod
    def landed(t: float, h: float, t1: float) -> float:
        """The attempted size for the wish ``h`` at ``t`` (``drive()``'s rule for landing on ``t1``)."""
        if t + h - t1 >= 0 or t + 1.01 * h - t1 > 0:
            return t1 - t
        return h


def same_step(h_try: float, h_recorded: float) -> bool:
    """Whether a re-enacted attempt is the recorded step.  The replay's states agree with the compiled solve's to
    rounding relative to the largest component, so a component far below it (Robertson's y2 ~ 1e-6) agrees only
    to ~1e-7 of itself, and the error estimates and step sizes derived from it to ~1e-5 at worst; a different
    attempt differs by a factor (a rejection shrinks the step by 10% at least)."""
    return abs(h_try - h_recorded) <= 1e-4 * abs(h_recorded)


def initial_step(rhs: Callable[[float, np.ndarray], np.ndarray], t0: float, t1: float, y0: np.ndarray,
                 f0: np.ndarray, order: int, rtol: float, atol: float) -> float:
    """The compiled solve's first attempted step size (``initial_step`` of ``symsens_solver.hpp``; Hairer, Nørsett
    & Wanner I, Sect. II.4), in the same arithmetic: with ``sc_i = atol + rtol |y0_i|``, ``d0 = ||y0 / sc||``,
    ``d1 = ||f0 / sc||`` (RMS norms), ``h0 = 0.01 d0 / d1`` (``1e-6`` when either is below ``1e-5``), one explicit
    Euler probe ``d2 = ||(f(t0 + h0, y0 + h0 f0) - f0) / sc|| / h0`` and ``h = min(100 h0,
    (0.01 / max(d1, d2))^(1 / (order + 1)), |t1 - t0|)``.  The replay re-enacts the attempts the controller
    rejected before the first accepted step from it (their Newton iterations are part of the solve's count).
    ``order`` is the controller's error order (BDF: 1).  Without ``max_step``/``first_step`` (which the replay
    does not receive), as :func:`symsens.solve` by default and the audit run it."""
    n = len(y0)
    d0 = d1 = 0.0
    for i in range(n):
        sc = atol + rtol * abs(float(y0[i]))
        d0 += float(y0[i]) * float(y0[i]) / (sc * sc)
        d1 += float(f0[i]) * float(f0[i]) / (sc * sc)
    d0 = math.sqrt(d0 / n)
    d1 = math.sqrt(d1 / n)
    span = abs(t1 - t0)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = rhs(t0 + h0, y0 + h0 * f0)
    d2 = 0.0
    for i in range(n):
        sc = atol + rtol * abs(float(y0[i]))
        diff = float(f1[i]) - float(f0[i])
        d2 += diff * diff / (sc * sc)
    d2 = math.sqrt(d2 / n) / h0
    dmax = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if dmax <= 1e-15 else (0.01 / dmax) ** (1.0 / (order + 1))
    return min(min(100 * h0, h1), span)
