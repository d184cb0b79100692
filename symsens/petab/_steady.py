"""Steady states of ``dx/dt = f(x, p)`` and their parameter sensitivities, with conservation laws.

Pre-equilibration (PEtab's ``preequilibrationConditionId``) starts an experiment from the steady state
``x*(p)`` of the model under another condition, reached from ``x0(p)``.  Two ways to get ``x*`` and
``dx*/dp``:

* simulation to convergence: integrate ``x' = f``, ``S' = f_x S + f_p``, ``S(0) = dx0/dp`` until
  ``|f_i| <= atol + rtol |x_i|`` for every ``i``; then ``S -> dx*/dp``;
* the implicit-function theorem: ``f(x*(p), p) = 0`` gives ``f_x dx*/dp = -f_p``.  When the system has
  conservation laws ``gamma^T f = 0`` (``gamma`` constant), ``f_x`` is singular: its left null space holds the
  ``gamma``.  The laws fix the steady state within its invariant set, ``Gamma x* = Gamma x0(p)``, so the
  dependent equations of ``f`` (one per law) are replaced by them (Vanlier et al., Math. Biosci. 2012;
  AMICI's Newton solver does the same):

      G(x, p) = [ f_I(x, p) ; Gamma (x - x0(p)) ] = 0,   dx*/dp = -G_x^{-1} G_p.

The conservation laws are found exactly: every ``f_i`` is expanded into terms ``c * u`` (``c`` rational,
``u`` a product of symbols and functions) and ``gamma`` spans the left null space of the rational matrix of
coefficients (``f = C u``, ``gamma^T C = 0`` gives ``gamma^T f = 0`` identically), in reduced row echelon
form, computed by SymPy with rational arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sympy as sp

from .._errors import IntegrationError

__all__ = ["ConservationLaws", "conservation_laws", "SteadyState", "steady_state"]


@dataclass(frozen=True)
class ConservationLaws:
    """``Gamma x`` constant in time: ``Gamma`` (c x n, rational, reduced row echelon form) and, per law, the state
    it makes dependent (the pivot column of its row)."""

    matrix: sp.Matrix
    dependent: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.dependent)


def conservation_laws(rhs: Sequence[sp.Expr], states: Sequence[sp.Symbol]) -> ConservationLaws:
    """The linear conservation laws ``gamma^T f(x, p) = 0`` (for all ``x``, ``p``, ``t``) of ``dx/dt = f``.

    Exact: the coefficient matrix of ``f`` over its distinct terms and its left null space in rational
    arithmetic (module docstring).  Laws whose coefficients would depend on parameters (e.g. compartment
    volumes kept symbolic) are not found; the Newton matrix is then singular and :func:`steady_state` says so.
    """
    n = len(states)
    columns: dict[sp.Expr, int] = {}
    entries: list[tuple[int, int, sp.Rational]] = []
    for i, f in enumerate(rhs):
        for term in sp.Add.make_args(sp.expand(f)):
            coefficient, rest = term.as_coeff_Mul()
            if not coefficient.is_Rational:
                rest, coefficient = term, sp.S.One
            j = columns.setdefault(rest, len(columns))
            entries.append((i, j, sp.Rational(coefficient)))
    coefficients = sp.zeros(n, max(len(columns), 1))
    for i, j, c in entries:
        coefficients[i, j] += c
    null = coefficients.T.nullspace()
    if not null:
        return ConservationLaws(sp.zeros(0, n), ())
    gamma, pivots = sp.Matrix.hstack(*null).T.rref()
    return ConservationLaws(gamma[: len(pivots), :], tuple(int(k) for k in pivots))


@dataclass(frozen=True, eq=False)
class SteadyState:
    """``x*`` and ``dx*/dp`` (n x P) and how they were found.

    ``residual`` is ``max_i |f_i(x*)| / (atol + rtol |x*_i|)`` (below 1: converged); ``time`` the simulated time
    to convergence; ``conservation_laws`` the laws used by the Newton/implicit-function step.
    """

    x: np.ndarray
    sensitivity: np.ndarray
    method: str
    residual: float
    time: float
    conservation_laws: ConservationLaws


class _Functions:
    """NumPy functions of ``f``, ``f_x``, ``f_p``, ``x0`` and ``dx0/dp`` (t fixed at ``t_fixed``)."""

    def __init__(self, rhs: Sequence[sp.Expr], states: Sequence[sp.Symbol], parameters: Sequence[sp.Symbol],
                 initial: Sequence[sp.Expr], time: sp.Symbol | None) -> None:
        from ..derive._numeric import numpy_function

        f = sp.Matrix(list(rhs))
        if time is not None:
            f = f.xreplace({time: sp.S.Zero})
        x, p = list(states), list(parameters)
        arguments = [*x, *p]
        self.n, self.P = len(x), len(p)
        self.f = numpy_function(list(f), arguments)
        self.fx = numpy_function(list(f.jacobian(x)), arguments)
        self.fp = numpy_function(list(f.jacobian(p)), arguments) if p else None
        x0 = sp.Matrix(list(initial))
        self.x0 = numpy_function(list(x0), p)
        self.x0p = numpy_function(list(x0.jacobian(p)), p) if p else None

    def rhs(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.asarray(self.f(*x, *p), dtype=float).reshape(self.n)

    def jacobian(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.asarray(self.fx(*x, *p), dtype=float).reshape(self.n, self.n)

    def parameter_jacobian(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        if self.fp is None:
            return np.zeros((self.n, 0))
        return np.asarray(self.fp(*x, *p), dtype=float).reshape(self.n, self.P)

    def initial(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(self.x0(*p), dtype=float).reshape(self.n)

    def initial_jacobian(self, p: np.ndarray) -> np.ndarray:
        if self.x0p is None:
            return np.zeros((self.n, 0))
        return np.asarray(self.x0p(*p), dtype=float).reshape(self.n, self.P)


def _scaled_residual(f: np.ndarray, x: np.ndarray, rtol: float, atol: float) -> float:
    return float(np.max(np.abs(f) / (atol + rtol * np.abs(x)))) if len(f) else 0.0


def steady_state(
    rhs: Sequence[sp.Expr],
    states: Sequence[sp.Symbol],
    parameters: Sequence[sp.Symbol],
    initial_conditions: Sequence[sp.Expr],
    p: Sequence[float],
    *,
    time: sp.Symbol | None = None,
    method: Literal["newton", "simulation"] = "newton",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    t_max: float = 1e10,
    functions: Any = None,
) -> SteadyState:
    """The steady state ``x*`` of ``dx/dt = f(x, p)`` reached from ``x0(p)``, and ``dx*/dp`` (n x P).

    ``method="simulation"``: ``x'`` and ``S' = f_x S + f_p`` integrated (SciPy BDF) until every
    ``|f_i| <= atol + rtol |x_i|``, ``S`` taken as ``dx*/dp``.  ``method="newton"``: the same simulation
    to a looser criterion, then Newton's method on ``G = [f_I; Gamma (x - x0(p))]`` and
    ``dx*/dp = -G_x^{-1} G_p`` (the implicit-function theorem with the conservation laws; module docstring).
    ``time``: the model's time symbol, set to 0 (pre-equilibration of an autonomous system).

    Raises
    ------
    IntegrationError
        If no steady state is reached by ``t_max`` or the Newton matrix is singular (the message says which).
    """
    from scipy.integrate import solve_ivp

    funcs = functions if functions is not None else _Functions(rhs, states, parameters, initial_conditions, time)
    p = np.asarray(p, dtype=float)
    n, P = funcs.n, funcs.P
    x0 = funcs.initial(p)
    laws = conservation_laws(rhs, states) if method == "newton" else ConservationLaws(sp.zeros(0, n), ())
    with_sensitivity = method == "simulation"
    # The Newton step converges fast from close by; the simulation only has to bring it there.
    sim_rtol, sim_atol = (rtol, atol) if with_sensitivity else (max(rtol, 1e-8), max(atol, 1e-10))

    def augmented(_t: float, z: np.ndarray) -> np.ndarray:
        x = z[:n]
        dx = funcs.rhs(x, p)
        if not with_sensitivity:
            return dx
        S = z[n:].reshape(n, P)
        return np.concatenate([dx, (funcs.jacobian(x, p) @ S + funcs.parameter_jacobian(x, p)).ravel()])

    z = np.concatenate([x0, funcs.initial_jacobian(p).ravel()]) if with_sensitivity else x0.copy()
    t, horizon = 0.0, 1.0
    while True:
        result = solve_ivp(augmented, (t, horizon), z, method="BDF", rtol=sim_rtol, atol=sim_atol)
        if result.status != 0 or not np.all(np.isfinite(result.y)):
            raise IntegrationError(f"steady state: the simulation failed at t = {result.t[-1]:.6g}: {result.message}",
                                   t=float(result.t[-1]))
        z, t = result.y[:, -1], horizon
        residual = _scaled_residual(funcs.rhs(z[:n], p), z[:n], sim_rtol, sim_atol)
        if residual <= 1.0:
            break
        if horizon >= t_max:
            raise IntegrationError(f"steady state: not reached by t = {t_max:g} (scaled residual {residual:.3g})",
                                   status="no steady state", t=horizon)
        horizon *= 10.0
    x = z[:n].copy()
    if with_sensitivity:
        return SteadyState(x, z[n:].reshape(n, P).copy(), "simulation", residual, t, laws)

    gamma = np.asarray(laws.matrix.evalf(), dtype=float).reshape(laws.count, n)
    kept = [i for i in range(n) if i not in laws.dependent]

    def newton_matrix(state: np.ndarray) -> np.ndarray:
        return np.vstack([funcs.jacobian(state, p)[kept, :], gamma])

    def equations(state: np.ndarray) -> np.ndarray:
        return np.concatenate([funcs.rhs(state, p)[kept], gamma @ (state - x0)])

    for _ in range(50):
        matrix = newton_matrix(x)
        if np.linalg.cond(matrix) > 1e14:
            raise IntegrationError(
                f"steady state: the Newton matrix [f_x; conservation laws] is singular (condition number "
                f"{np.linalg.cond(matrix):.3g}, {laws.count} conservation laws found); the steady state is not "
                "isolated", status="singular jacobian")
        step = np.linalg.solve(matrix, -equations(x))
        x = x + step
        if np.all(np.abs(step) <= 1e-3 * (atol + rtol * np.abs(x))):
            break
    residual = _scaled_residual(funcs.rhs(x, p), x, rtol, atol)
    matrix = newton_matrix(x)
    G_p = np.vstack([funcs.parameter_jacobian(x, p)[kept, :], -gamma @ funcs.initial_jacobian(p)])
    sensitivity = -np.linalg.solve(matrix, G_p) if P else np.zeros((n, 0))
    return SteadyState(x, sensitivity, "newton", residual, t, laws)
