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

For the audit's verified reference, :func:`extended_steady_state` refines ``x*`` by Newton's method on the
same ``G`` in extended precision (mpmath) and solves the implicit-function system there, twice, at two
precisions: their difference bounds the error of each (:func:`preequilibration_map` carries the result into
the audit, :class:`symsens.audit.ParameterMap`).

The conservation laws are found exactly: every ``f_i`` is expanded into terms ``c * u`` (``c`` rational,
``u`` a product of symbols and functions) and ``gamma`` spans the left null space of the rational matrix of
coefficients (``f = C u``, ``gamma^T C = 0`` gives ``gamma^T f = 0`` identically), in reduced row echelon
form, computed by SymPy with rational arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import mpmath
import numpy as np
import sympy as sp

from .._errors import IntegrationError

if TYPE_CHECKING:
    from ..audit._parameter_map import ParameterMap

__all__ = ["ConservationLaws", "conservation_laws", "SteadyState", "steady_state", "ExtendedSteadyState",
           "extended_steady_state", "preequilibration_map"]


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


# ------------------------------------------------------------------------------------------------------------
# Extended precision: the steady state and its sensitivity for the verified reference
# ------------------------------------------------------------------------------------------------------------

#: The two working precisions (decimal digits) of :func:`extended_steady_state`; their difference bounds the
#: error of the less precise one.
EXTENDED_DPS: tuple[int, int] = (40, 60)


@dataclass(frozen=True, eq=False)
class ExtendedSteadyState:
    """``x*`` and ``dx*/dp`` in extended precision (decimal strings of ``digits`` significant digits, rounded
    to double in ``x`` and ``sensitivity``) with componentwise error bounds (absolute): the distance between
    two independent solutions at :data:`EXTENDED_DPS` digits plus the rounding to double (``x_error`` and
    ``sensitivity_error`` bound the distance of the doubles from the exact values; ``x_text`` is correct to its
    last digits within ``x_text_error``).  ``residual``: ``max |G(x*)|`` at the higher precision;
    ``iterations``: Newton steps of the higher-precision run."""

    x: np.ndarray
    sensitivity: np.ndarray
    x_error: np.ndarray
    sensitivity_error: np.ndarray
    x_text: tuple[str, ...]
    x_text_error: np.ndarray
    residual: float
    iterations: int
    conservation_laws: ConservationLaws


class _ExtendedFunctions:
    """Tapes (mpmath straight-line programs, :class:`symsens.reference._tape.Tape`) of ``f``, ``f_x``, ``f_p``
    in ``(x, p)`` and of ``x0``, ``dx0/dp`` in ``p`` (t fixed at 0)."""

    def __init__(self, rhs: Sequence[sp.Expr], states: Sequence[sp.Symbol], parameters: Sequence[sp.Symbol],
                 initial: Sequence[sp.Expr], time: sp.Symbol | None) -> None:
        from ..reference._tape import Tape

        f = sp.Matrix(list(rhs))
        if time is not None:
            f = f.xreplace({time: sp.S.Zero})
        x, p = list(states), list(parameters)
        self.n, self.P = len(x), len(p)
        self.model = Tape([*f, *f.jacobian(x), *(f.jacobian(p) if p else [])], [*x, *p])
        x0 = sp.Matrix(list(initial))
        self.initial = Tape([*x0, *(x0.jacobian(p) if p else [])], p)

    def at(self, x: Sequence[mpmath.mpf], p: Sequence[mpmath.mpf], constants: list
           ) -> tuple[mpmath.matrix, mpmath.matrix, mpmath.matrix]:
        """``f``, ``f_x`` and ``f_p`` at the working precision."""
        n, P = self.n, self.P
        values = self.model.evaluate([*x, *p], constants)
        f = mpmath.matrix(values[:n])
        fx = mpmath.matrix(n, n)
        fp = mpmath.matrix(n, max(P, 1))
        for i in range(n):
            for j in range(n):
                fx[i, j] = values[n + i * n + j]
            for j in range(P):
                fp[i, j] = values[n + n * n + i * P + j]
        return f, fx, fp


def _extended_run(functions: _ExtendedFunctions, gamma: sp.Matrix, dependent: Sequence[int], p: np.ndarray,
                  x_start: np.ndarray, dps: int) -> tuple[list[mpmath.mpf], mpmath.matrix, mpmath.mpf, int]:
    """Newton on ``G = [f_I; Gamma (x - x0(p))]`` from ``x_start`` and ``dx*/dp = -G_x^{-1} G_p``, at ``dps``
    decimal digits: ``(x*, dx*/dp, max |G(x*)|, Newton steps)``."""
    from .._precision import mpmath_precision

    n, P = functions.n, functions.P
    kept = [i for i in range(n) if i not in dependent]
    c = len(dependent)
    with mpmath_precision(dps=dps):
        constants = functions.model.constants()
        initial_constants = functions.initial.constants()
        point = [mpmath.mpf(float(v)) for v in p]  # the double point, exactly
        x0_values = functions.initial.evaluate(point, initial_constants)
        x0 = mpmath.matrix(x0_values[:n])
        x0p = mpmath.matrix(n, max(P, 1))
        for i in range(n):
            for j in range(P):
                x0p[i, j] = x0_values[n + i * P + j]
        G_law = mpmath.matrix(c, n)
        for r in range(c):
            for j in range(n):
                value = sp.Rational(gamma[r, j])
                G_law[r, j] = mpmath.mpf(int(value.p)) / int(value.q)

        def system(state: mpmath.matrix) -> tuple[mpmath.matrix, mpmath.matrix, mpmath.matrix]:
            f, fx, fp = functions.at(list(state), point, constants)
            equations = mpmath.matrix(n, 1)
            matrix = mpmath.matrix(n, n)
            laws = G_law * (state - x0) if c else mpmath.matrix(0, 1)
            for row, i in enumerate(kept):
                equations[row] = f[i]
                for j in range(n):
                    matrix[row, j] = fx[i, j]
            for r in range(c):
                equations[len(kept) + r] = laws[r]
                for j in range(n):
                    matrix[len(kept) + r, j] = G_law[r, j]
            return equations, matrix, fp

        x = mpmath.matrix([mpmath.mpf(float(v)) for v in x_start])
        tolerance = mpmath.mpf(10) ** (5 - dps)
        for iteration in range(1, 61):
            equations, matrix, _ = system(x)
            step = mpmath.lu_solve(matrix, -equations)
            x = x + step
            # Converged to the working precision relative to the largest component (10^(-dps/2): all near 0).
            scale = max(max(abs(v) for v in x), mpmath.mpf(10) ** (-(dps // 2)))
            if max(abs(v) for v in step) <= tolerance * scale:
                break
        else:
            raise IntegrationError(f"steady state in {dps}-digit precision: Newton's method did not converge in 60 "
                                   "steps from the double-precision steady state", status="no steady state")
        equations, matrix, fp = system(x)
        residual = max([abs(v) for v in equations] + [mpmath.mpf(0)])
        G_p = mpmath.matrix(n, max(P, 1))
        for row, i in enumerate(kept):
            for j in range(P):
                G_p[row, j] = fp[i, j]
        minus_x0p = -(G_law * x0p) if c else None
        for r in range(c):
            for j in range(P):
                G_p[len(kept) + r, j] = minus_x0p[r, j]
        sensitivity = -(mpmath.inverse(matrix) * G_p)
        return list(x), sensitivity, residual, iteration


def extended_steady_state(
    rhs: Sequence[sp.Expr],
    states: Sequence[sp.Symbol],
    parameters: Sequence[sp.Symbol],
    initial_conditions: Sequence[sp.Expr],
    p: Sequence[float],
    x_start: Sequence[float],
    *,
    time: sp.Symbol | None = None,
    digits: int = 34,
    functions: Any = None,
) -> ExtendedSteadyState:
    """``x*`` and ``dx*/dp`` of ``dx/dt = f(x, p)`` from ``x0(p)`` in extended precision, with error bounds.

    Newton's method on ``G(x, p) = [f_I(x, p); Gamma (x - x0(p))] = 0`` (the conservation laws ``Gamma`` found
    exactly, :func:`conservation_laws`) from ``x_start`` (the double-precision steady state,
    :func:`steady_state`), then the implicit-function theorem ``G_x dx*/dp = -G_p``, in mpmath at each of
    :data:`EXTENDED_DPS` digits; ``p`` is taken exactly (the doubles).  The bound on each value is the distance
    between the two runs (the lower-precision run's error dominates it: Newton converges quadratically and the
    solve loses at most ``log10 cond(G_x)`` digits of 40), plus the rounding to double or to ``digits``
    significant digits.  The runs are independent in precision only: a Newton iteration that converged to
    another root in both would not be seen, so ``x_start`` must be the steady state the simulation reached.

    Raises
    ------
    IntegrationError
        If Newton's method does not converge, or ``G_x`` is singular (the message says which).
    """
    funcs = functions if functions is not None else _ExtendedFunctions(rhs, states, parameters,
                                                                          initial_conditions, time)
    laws = conservation_laws(rhs, states)
    p = np.asarray(p, dtype=float)
    start = np.asarray(x_start, dtype=float)
    n, P = funcs.n, funcs.P
    runs = []
    for dps in EXTENDED_DPS:
        try:
            runs.append(_extended_run(funcs, laws.matrix, laws.dependent, p, start, dps))
        except ZeroDivisionError:
            raise IntegrationError("steady state in extended precision: the Newton matrix [f_x; conservation laws] "
                                   "is singular; the steady state is not isolated",
                                   status="singular jacobian") from None
    (x_lo, s_lo, _, _), (x_hi, s_hi, residual, iterations) = runs
    from .._precision import mpmath_precision

    with mpmath_precision(dps=max(EXTENDED_DPS)):
        x = np.array([float(v) for v in x_hi])
        sensitivity = np.array([[float(s_hi[i, j]) for j in range(P)] for i in range(n)]).reshape(n, P)
        up = 1 + mpmath.mpf(2) ** -50  # bounds rounded up

        def bound(exact: mpmath.mpf, other: mpmath.mpf, rounded: float) -> float:
            return float((abs(exact - other) + abs(exact - mpmath.mpf(rounded))) * up)

        x_error = np.array([bound(x_hi[i], x_lo[i], x[i]) for i in range(n)])
        sensitivity_error = np.array([[bound(s_hi[i, j], s_lo[i, j], sensitivity[i, j]) for j in range(P)]
                                      for i in range(n)]).reshape(n, P)
        texts = tuple(mpmath.nstr(v, digits, min_fixed=1, max_fixed=0) for v in x_hi)
        text_error = np.array([float((abs(x_hi[i] - x_lo[i]) + abs(x_hi[i] - mpmath.mpf(texts[i]))) * up)
                               for i in range(n)])
    return ExtendedSteadyState(x, sensitivity, x_error, sensitivity_error, texts, text_error, float(residual),
                               iterations, laws)


def preequilibration_map(problem: Any, point: np.ndarray) -> tuple[np.ndarray, ParameterMap]:
    """The PEtab problem's model point at ``point`` (estimated parameters on their scale) and the
    :class:`symsens.audit.ParameterMap` of its pre-equilibrated initial values ``x*(theta)``.

    ``model_parameters``: the estimated parameters (identity rows of the Jacobian), then every
    ``<state>_<copy>_preequilibrated`` (rows ``dx*/dtheta``).  The compared methods are composed with
    ``dx*/dtheta`` from :func:`steady_state` in double precision (what :meth:`PetabProblem.gradient` uses); the
    reference with :func:`extended_steady_state`'s and its error bound, and it runs at ``x*`` to 34 digits
    (``reference_values``).  The point's initial values are the extended ``x*`` rounded to double.
    """
    from ..audit._parameter_map import ParameterMap

    model = problem.model
    names = list(problem.parameter_names)
    P = len(names)
    estimated = model.parameters[:P]
    doubles = problem.steady_states(point)
    initial_names: list[str] = []
    rows: list[np.ndarray] = []
    reference_rows: list[np.ndarray] = []
    error_rows: list[np.ndarray] = []
    exact: list[tuple[str, str]] = []
    values = dict(zip(model.parameter_names, model.parameter_values))
    values.update(zip(names, point))
    for k, (pre, steady) in enumerate(zip(problem.preequilibrations, doubles)):
        key = f"extended:{k}"
        functions = problem._cache.get(key)
        states = [model.states[i] for i in pre.states]
        if functions is None:
            functions = _ExtendedFunctions(pre.rhs, states, estimated, pre.initial_conditions, model.time)
            problem._cache[key] = functions
        refined = extended_steady_state(pre.rhs, states, estimated, pre.initial_conditions, point, steady.x,
                                        time=model.time, functions=functions)
        for i, name in enumerate(pre.initial_parameters):
            if name is None:
                continue
            initial_names.append(name)
            values[name] = float(refined.x[i])
            rows.append(steady.sensitivity[i])
            reference_rows.append(refined.sensitivity[i])
            error_rows.append(refined.sensitivity_error[i])
            exact.append((name, refined.x_text[i]))
    identity = np.eye(P)
    jacobian = np.vstack([identity, *rows]) if rows else identity
    reference_jacobian = np.vstack([identity, *reference_rows]) if rows else identity
    error = np.vstack([np.zeros((P, P)), *error_rows]) if rows else np.zeros((P, P))
    parameter_map = ParameterMap(
        tuple(names), np.asarray(point, dtype=float), (*names, *initial_names), jacobian, reference_jacobian,
        error, tuple(exact),
        description=(f"the pre-equilibration Jacobian is applied: each gradient is the total derivative "
                     f"dL/dtheta + dL/dx0 dx*/dtheta through the steady state of {len(doubles)} pre-equilibrated "
                     f"condition{'s' if len(doubles) != 1 else ''} (for the reference, x* and dx*/dtheta in "
                     f"{EXTENDED_DPS[0]}- and {EXTENDED_DPS[1]}-digit arithmetic)"))
    full = np.array([values[n] for n in model.parameter_names], dtype=float)
    return full, parameter_map
