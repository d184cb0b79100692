"""The pure NumPy/SciPy backend of :func:`symsens.solve`: SciPy's integrators on lambdified exact kernels.

For ``y' = f(t, y, p)``, ``y(t0) = y0(p)`` and the chosen parameters ``p_0 .. p_{P-1}``, the forward
sensitivities ``S = dy/dp`` (n x P) satisfy the variational equation (Hairer, Nørsett & Wanner I, Sect. I.14)

    S' = J S + F_p,   S(t0) = dy0/dp,   J = df/dy,   F_p = df/dp.

This backend integrates either ``y`` alone or the augmented system ``Y = (y, S[:, 0], ..., S[:, P-1])`` of
dimension ``N = n (P + 1)`` with one of SciPy's ``solve_ivp`` methods, all the right-hand sides and
Jacobians being the *exact* symbolic ones of :mod:`symsens.derive`, lambdified once per model structure and
parameter tuple and cached.  The implicit methods (Radau, BDF, LSODA) get the analytic Jacobian of what they
integrate; for the augmented system that is

    dY'/dY = [[J,   0, ...,  0],
              [B_0, J, ...,  0],
              [ ...        ...  ],
              [B_{P-1}, 0, ..., J]],   B_j[i, l] = sum_k (d J[i, k]/d y_l) S[k, j] + d F_p[i, j]/d y_l,

assembled from the non-zero entries of ``J`` (repeated on the block diagonal) and of the ``B_j`` blocks,
which come from the sparse second derivatives ``dJ/dy`` and ``dF_p/dy`` (see :func:`_augmented_jacobian_kernel`).

Speed.  SciPy calls the right-hand side once per stage from Python, so the cost of one call is what
matters.  Each kernel is generated twice by :func:`sympy.lambdify` from the same common-subexpression
elimination: a fast version over Python floats and the ``math`` module (scalar ``math.exp`` is several
times faster than ``numpy.exp`` on a NumPy scalar), and an IEEE version over NumPy that is used only when
the fast one raises (``math`` raises ``OverflowError`` / ``ValueError`` where NumPy returns ``inf`` /
``nan``), so a blow-up is reported as such instead of crashing the solve.

The step loop is SciPy's own ``OdeSolver.step`` driven here rather than through ``solve_ivp``: it is the
same loop ``solve_ivp`` runs, and owning it gives ``max_steps`` (which ``solve_ivp`` lacks), the accepted
step sequence, dense output only when ``t_eval`` asks for it, and LSODA's failure code, which ``solve_ivp``
replaces by "Unexpected istate in LSODA".

References
----------
E. Hairer, S. P. Nørsett and G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., Springer,
1993, Sect. I.14 (the variational equation).
SciPy, ``scipy.integrate.solve_ivp`` and the ``OdeSolver`` classes ``RK45``, ``RK23``, ``DOP853``,
``Radau``, ``BDF``, ``LSODA`` (documentation and ``scipy/integrate/_ivp``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, Radau

from .._once import cached_once
from ..derive import common_subexpressions, jacobian, numpy_function, sensitivity_system
from ..model import Model
from ..model._functions import NUMPY_FUNCTIONS, _bernoulli_coefficients, _closed_form_derivative
from ._solution import Solution, SolverStats

__all__ = ["solve_numpy", "NUMPY_METHODS"]

#: symsens method name -> SciPy ``solve_ivp`` method.
NUMPY_METHODS: dict[str, str] = {
    "radau-iia-3": "Radau",
    "radau": "Radau",
    "bdf": "BDF",
    "dopri5": "RK45",
    "bs3": "RK23",
    "dop853": "DOP853",
    "lsoda": "LSODA",
}

_SOLVER_CLASSES: dict[str, type] = {
    "Radau": Radau, "BDF": BDF, "RK45": RK45, "RK23": RK23, "DOP853": DOP853, "LSODA": LSODA,
}
_IMPLICIT = frozenset({"Radau", "BDF", "LSODA"})
# Methods whose error test is SciPy's RMS norm over all components (LSODA uses a weighted max norm).
_RMS_NORM = frozenset({"Radau", "BDF", "RK45", "RK23", "DOP853"})

# SciPy's floor on rtol (scipy.integrate._ivp.common.validate_tol).
_SCIPY_MIN_RTOL = 100 * np.finfo(float).eps

#: The absolute tolerance that takes a component out of the error norm: its scaled error e / (atol + rtol |y|)
#: is then below 1e-280 for any error estimate e below 1e20, i.e. nothing next to the other components.
EXCLUDED_ATOL = 1e300

# How the augmented Jacobian is built: "blocks" (J and the B_j blocks from dJ/dy and dF_p/dy, one CSE over
# expressions free of S) or "symbolic" (SensitivitySystem.augmented_jacobian: the n (P + 1) augmented
# right-hand sides differentiated as one system).  The values are the same.  Measured (2 cores, shared):
# Hodgkin-Huxley with 3 sensitivities (N = 16): set-up 0.13 s vs 0.11 s, 9-10 us per evaluation either way;
# the calcium neuron with all 13 (N = 182, 1134 non-zeros): set-up 1.3 s vs 3.5-6 s, 87-91 us vs 97-98 us
# per evaluation.  Hence "blocks" by default.
_JACOBIAN_STRATEGIES = ("blocks", "symbolic")


# ----------------------------------------------------------------------------------------------------
# Scalar special functions for the fast (math-module) kernels
# ----------------------------------------------------------------------------------------------------

# Series terms kept for |x| < 2 in the scalar path: the truncation error is about (2 / 2 pi)^40 ~ 1e-20.
_SCALAR_SERIES_TERMS = 40
_SERIES_RADIUS = 2.0


@cached_once()
def _scalar_series(order: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Horner coefficients (highest power first) of the even and odd parts of the Bernoulli series.

    ``d^n/dx^n exprel(x) = sum_j c_j x^j`` with ``c_j = B_{j+n} / j!`` (Abramowitz & Stegun 23.1.1); the odd
    Bernoulli numbers beyond ``B_1`` vanish, so with ``E(u) = sum c_{2m} u^m`` and ``O(u) = sum c_{2m+1} u^m``
    the value is ``E(x^2) + x O(x^2)``, half the multiplications, and one of the two parts is a constant.
    """
    coefficients = _bernoulli_coefficients(order)[:_SCALAR_SERIES_TERMS]

    def horner(part: Sequence[float]) -> tuple[float, ...]:
        part = list(part)
        while len(part) > 1 and part[-1] == 0.0:
            part.pop()
        return tuple(reversed(part))

    return horner(coefficients[0::2]), horner(coefficients[1::2])


@cached_once()
def _scalar_closed_form(order: int, positive: bool) -> Callable[[float], float]:
    x = sp.Symbol("x")
    # CSE matters here: the derivatives repeat exp(-x) / (1 - exp(-x)) many times.
    return sp.lambdify(x, _closed_form_derivative(order, positive), modules="math", cse=True)


def _scalar_exprel_derivative(order: int, x: float) -> float:
    """``d^order/dx^order [x / (exp(x) - 1)]`` at a Python float, matching :func:`numpy_exprel_derivative`.

    Bernoulli series for ``|x| < 2``, closed form outside (written in ``exp(-x)`` for ``x > 0``).  Raises
    ``OverflowError`` where ``math.exp`` overflows; the caller then falls back to the NumPy kernel.
    """
    if -_SERIES_RADIUS < x < _SERIES_RADIUS:
        even, odd = _scalar_series(order)
        u = x * x
        e = 0.0
        for c in even:
            e = e * u + c
        o = 0.0
        for c in odd:
            o = o * u + c
        return e + x * o
    if x != x:
        return x
    return _scalar_closed_form(order, x > 0)(x)


def _scalar_exprel(x: float) -> float:
    """``x / (exp(x) - 1)``, 1 at 0; ``expm1`` is accurate to rounding everywhere, so no series is needed."""
    if x == 0.0:
        return 1.0
    if x > 0.0:
        # x e^{-x} / (1 - e^{-x}) = -x e^{-x} / expm1(-x): no overflow for large x.
        return -x * math.exp(-x) / math.expm1(-x)
    return x / math.expm1(x)


def _heaviside(x: float, h0: float = 0.5) -> float:
    return 0.0 if x < 0 else (1.0 if x > 0 else h0)


def _dirac_delta(x: float, k: int = 0) -> float:
    """``DiracDelta`` (from differentiating ``sign``, ``Abs``, ``Heaviside``) as the pointwise derivative: 0.

    The solver samples the right-hand side at points, where the derivative of a step is 0 (at the step
    itself it does not exist); a jump of ``f`` in ``y`` would need a jump condition on ``S``, which the
    continuous forward sensitivity equations do not have.
    """
    return 0.0


_MATH_MODULES: list[Any] = [
    {
        "exprel": _scalar_exprel,
        "exprel_derivative": _scalar_exprel_derivative,
        "Heaviside": _heaviside,
        "DiracDelta": _dirac_delta,
    },
    "math",
]
_NUMPY_MODULES: list[Any] = [
    NUMPY_FUNCTIONS,
    {"Heaviside": lambda x, h0=0.5: np.heaviside(x, h0), "DiracDelta": lambda x, k=0: np.zeros_like(x)},
    "numpy",
]


# ----------------------------------------------------------------------------------------------------
# Kernels: exact expressions -> callables, built once per model structure and parameter tuple
# ----------------------------------------------------------------------------------------------------


class _Kernel:
    """One vector function ``values(t, y, p)`` of the time, a state vector and all model parameters.

    ``replacements`` / ``reduced`` are a common-subexpression elimination of the outputs.  Two callables are
    generated from them: ``fast`` over Python floats (``math`` module) and ``ieee`` over NumPy scalars, the
    latter built on first need.
    """

    def __init__(
        self,
        time: sp.Symbol,
        states: Sequence[sp.Symbol],
        parameters: Sequence[sp.Symbol],
        replacements: Sequence[tuple[sp.Symbol, sp.Expr]],
        reduced: Sequence[sp.Expr],
    ) -> None:
        self._arguments = [time, list(states), list(parameters)]
        self._replacements = list(replacements)
        self._reduced = list(reduced)
        self.size = len(self._reduced)
        self.fast = self._lambdify(_MATH_MODULES)

    def _lambdify(self, modules: list[Any]) -> Callable[..., list]:
        # Our CSE (computed once, structured) is reused as is; every symbol is printed under a generated
        # identifier, so no model name (``e``, ``exp``, ``DiracDelta``, NFKC twins such as ``k``/``ｋ``) can
        # shadow a function or constant of the module or another argument.
        from ..derive._numeric import lambdify_safely

        return lambdify_safely(self._arguments, self._reduced, modules, replacements=self._replacements)

    @cached_property
    def ieee(self) -> Callable[..., list]:
        return self._lambdify(_NUMPY_MODULES)

    def evaluate_ieee(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """IEEE semantics (``inf``/``nan`` instead of exceptions); the fallback of the fast path."""
        with np.errstate(all="ignore"):
            return np.array(self.ieee(t, y, p), dtype=float)


def _name_nonatoms(
    exprs: Sequence[sp.Expr], prefix: str, taken: set[str], replacements: list[tuple[sp.Symbol, sp.Expr]]
) -> list[sp.Expr]:
    """Give every non-atomic expression a temporary (appended to ``replacements``), so repeats cost nothing."""
    while any(name.startswith(prefix + "_") for name in taken):
        prefix = "_" + prefix
    named = []
    for index, expr in enumerate(exprs):
        if expr.is_Atom:
            named.append(expr)
        else:
            symbol = sp.Symbol(f"{prefix}_{index}")
            replacements.append((symbol, expr))
            named.append(symbol)
    return named


class _ModelKernels:
    """Everything the backend evaluates for one model structure and one sensitivity-parameter tuple.

    ``parameters == ()`` means no sensitivities: the integrated state is ``y`` (n).  Otherwise it is
    ``(y, S[:, 0], ..., S[:, P-1])`` (n (P + 1)), the order of :attr:`SensitivitySystem.augmented_states`.
    """

    def __init__(self, model: Model, parameters: tuple[str, ...]) -> None:
        self.model = model
        self.parameters = parameters
        self.n = model.n_states
        self.n_sens = len(parameters)
        self.size = self.n * (self.n_sens + 1)
        self._jacobians: dict[str, tuple[_Kernel, np.ndarray]] = {}
        if parameters:
            self.system = sensitivity_system(model, parameters)
            self.states: tuple[sp.Symbol, ...] = self.system.augmented_states
        else:
            self.system = None
            self.states = model.states

    def _kernel(self, replacements: Sequence[tuple[sp.Symbol, sp.Expr]], reduced: Sequence[sp.Expr]) -> _Kernel:
        return _Kernel(self.model.time, self.states, self.model.parameters, replacements, reduced)

    @cached_property
    def rhs(self) -> _Kernel:
        """``f`` or the augmented ``(f, J S + F_p)``, from the structured CSE of the sensitivity system."""
        if self.system is None:
            result = common_subexpressions(self.model.rhs)
        else:
            result = self.system.cse()
        return self._kernel(result.replacements, result.reduced)

    @cached_property
    def initial_conditions(self) -> Callable[..., np.ndarray]:
        """``(y0(p), dy0/dp)`` as one flat vector in the order of the integrated state (p: all parameters)."""
        exprs = self.model.initial_conditions if self.system is None else self.system.augmented_initial_conditions
        return numpy_function(list(exprs), self.model.parameters)

    def jacobian(self, strategy: str = "blocks") -> tuple[_Kernel, np.ndarray]:
        """The kernel of the Jacobian's non-zero values and their flat positions in the N x N matrix.

        ``strategy`` ("blocks" or "symbolic") matters for the augmented system only; built on first use.
        """
        key = "state" if self.system is None else strategy
        if key not in self._jacobians:
            if self.system is None:
                self._jacobians[key] = _state_jacobian_kernel(self)
            elif strategy == "symbolic":
                self._jacobians[key] = _symbolic_augmented_jacobian_kernel(self)
            else:
                self._jacobians[key] = _augmented_jacobian_kernel(self)
        return self._jacobians[key]


def _state_jacobian_kernel(kernels: _ModelKernels) -> tuple[_Kernel, np.ndarray]:
    """``J = df/dy``: its structurally non-zero entries, CSE'd together."""
    J = jacobian(kernels.model)
    n = kernels.n
    entries = [(i, k) for i in range(n) for k in range(n) if J[i, k] != 0]
    result = common_subexpressions([J[i, k] for i, k in entries])
    positions = np.array([i * n + k for i, k in entries], dtype=np.intp)
    return kernels._kernel(result.replacements, result.reduced), positions


def _symbolic_augmented_jacobian_kernel(kernels: _ModelKernels) -> tuple[_Kernel, np.ndarray]:
    """The non-zero entries of :attr:`SensitivitySystem.augmented_jacobian`, differentiated as one system."""
    matrix = kernels.system.augmented_jacobian
    N = kernels.size
    entries = [(r, c) for r in range(N) for c in range(N) if matrix[r, c] != 0]
    result = common_subexpressions([matrix[r, c] for r, c in entries])
    positions = np.array([r * N + c for r, c in entries], dtype=np.intp)
    return kernels._kernel(result.replacements, result.reduced), positions


def _augmented_jacobian_kernel(kernels: _ModelKernels) -> tuple[_Kernel, np.ndarray]:
    """The augmented Jacobian assembled from ``J`` and the blocks ``B_j = d(J S_j + F_p[:, j])/dy``.

    ``B_j[i, l] = sum_k H[i, k, l] S[k, j] + G[i, j, l]`` with ``H[i, k, l] = d J[i, k] / d y_l`` and
    ``G[i, j, l] = d F_p[i, j] / d y_l``.  Only the structurally non-zero ``H`` and ``G`` entries are
    differentiated (``J[i, k]`` containing ``y_l``), CSE runs once over ``J``, ``H`` and ``G`` — expressions
    free of ``S``, so there are O(n^3) of them however large P is — and the ``n^2 P`` block entries are
    linear combinations of those temporaries with the ``S`` symbols, as :meth:`SensitivitySystem.cse` does for
    the right-hand side.  ``J`` appears P + 1 times on the block diagonal; its values are named temporaries, so
    the repeats cost one list entry each.
    """
    system = kernels.system
    model = kernels.model
    n, P, N = kernels.n, kernels.n_sens, kernels.size
    J, Fp, S = system.jacobian, system.parameter_jacobian, system.sensitivities
    ys = model.states
    j_entries = [(i, k) for i in range(n) for k in range(n) if J[i, k] != 0]
    h_entries = [(i, k, l) for i, k in j_entries for l in range(n) if ys[l] in J[i, k].free_symbols]
    g_entries = [
        (i, j, l)
        for i in range(n)
        for j in range(P)
        if Fp[i, j] != 0
        for l in range(n)
        if ys[l] in Fp[i, j].free_symbols
    ]
    pieces = [
        *(J[i, k] for i, k in j_entries),
        *(J[i, k].diff(ys[l]) for i, k, l in h_entries),
        *(Fp[i, j].diff(ys[l]) for i, j, l in g_entries),
    ]
    base = common_subexpressions(pieces)
    replacements = list(base.replacements)
    taken = set(model._symbol_table) | {s.name for s, _ in replacements} | {s.name for s in system.augmented_states}
    reduced_j = base.reduced[: len(j_entries)]
    named_j = _name_nonatoms(reduced_j, "Jv", taken, replacements)
    # H and G values are named too: each is used once per sensitivity column.
    h_start, g_start = len(j_entries), len(j_entries) + len(h_entries)
    reduced_h = _name_nonatoms(base.reduced[h_start:g_start], "Hv", taken, replacements)
    reduced_g = _name_nonatoms(base.reduced[g_start:], "Gv", taken, replacements)
    h_by_il: dict[tuple[int, int], list[tuple[int, sp.Expr]]] = {}
    for (i, k, l), expr in zip(h_entries, reduced_h):
        if expr != 0:
            h_by_il.setdefault((i, l), []).append((k, expr))
    g_by_ijl = {(i, j, l): expr for (i, j, l), expr in zip(g_entries, reduced_g) if expr != 0}

    values: list[sp.Expr] = []
    positions: list[int] = []
    # Block diagonal: J at (block b, block b) for b = 0 (the states) and b = 1..P (the sensitivity columns).
    for block in range(P + 1):
        offset = block * n
        for (i, k), value in zip(j_entries, named_j):
            values.append(value)
            positions.append((offset + i) * N + offset + k)
    # Lower-left column of blocks: d(J S_j + F_p[:, j]) / dy.
    for j in range(P):
        for i in range(n):
            for l in range(n):
                terms = [h * S[k, j] for k, h in h_by_il.get((i, l), ())]
                if (i, j, l) in g_by_ijl:
                    terms.append(g_by_ijl[(i, j, l)])
                if terms:
                    values.append(sp.Add(*terms))
                    positions.append((n + j * n + i) * N + l)
    return kernels._kernel(replacements, values), np.array(positions, dtype=np.intp)


class _StructureKey:
    """Hashes a model by its equations only (time, states, parameters, rhs, initial conditions).

    Kernels do not depend on nominal parameter values (``p`` is an argument), so copies made by
    :meth:`Model.with_parameter_values` — one per point of a parameter sweep — share one cache entry.
    """

    __slots__ = ("model", "_key", "_hash")

    def __init__(self, model: Model) -> None:
        self.model = model
        self._key = (model.time, model.states, model.parameters, model.rhs, model.initial_conditions)
        self._hash = hash(self._key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _StructureKey) and self._key == other._key


@cached_once(maxsize=32)
def _cached_kernels(key: _StructureKey, parameters: tuple[str, ...]) -> _ModelKernels:
    return _ModelKernels(key.model, parameters)


def model_kernels(model: Model, parameters: Sequence[str] = ()) -> _ModelKernels:
    """The (cached) kernels of ``model`` with sensitivities w.r.t. ``parameters`` (``()``: none)."""
    return _cached_kernels(_StructureKey(model), tuple(parameters))


# ----------------------------------------------------------------------------------------------------
# The callables handed to SciPy
# ----------------------------------------------------------------------------------------------------


class _Problem:
    """Right-hand side and Jacobian with the parameter values bound, in the form SciPy calls them.

    Records the latest time at which an evaluation gave a non-finite value (``t_nonfinite``), to tell a
    blow-up from a plain step size underflow when the solver gives up (a Newton iterate that overflowed and
    was rejected long before does not count: see :func:`_failure_status`).
    """

    def __init__(
        self, kernels: _ModelKernels, p: np.ndarray, with_jacobian: bool, jacobian_strategy: str = "blocks"
    ) -> None:
        self.kernels = kernels
        self.p_array = np.asarray(p, dtype=float)
        self.p_list = self.p_array.tolist()
        self.t_nonfinite: float | None = None
        self._rhs = kernels.rhs
        if with_jacobian:
            self._jac, self._positions = kernels.jacobian(jacobian_strategy)
        self._N = kernels.size

    def _flag(self, t: float, out: np.ndarray) -> None:
        if not np.all(np.isfinite(out)):
            self.t_nonfinite = float(t)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        # SciPy passes t as a NumPy scalar: as a Python float it keeps the fast path in plain float
        # arithmetic (1/0 raises instead of warning and giving inf).
        t = float(t)
        try:
            values = self._rhs.fast(t, y.tolist(), self.p_list)
            out = np.array(values, dtype=float)
        except (ArithmeticError, ValueError, TypeError):
            # math raised (overflow, log of a negative, ...) or produced a complex power: IEEE semantics.
            out = self._rhs.evaluate_ieee(t, y, self.p_array)
            self._flag(t, out)
            return out
        # sum() is a cheap screen: a nan/inf anywhere makes it non-finite (a false alarm from an overflowing
        # sum is cleared by the exact check in _flag).
        total = sum(values)
        if total - total != 0.0:
            self._flag(t, out)
        return out

    def jac(self, t: float, y: np.ndarray) -> np.ndarray:
        t = float(t)
        out = np.zeros(self._N * self._N)
        try:
            out[self._positions] = self._jac.fast(t, y.tolist(), self.p_list)
        except (ArithmeticError, ValueError, TypeError):
            out[self._positions] = self._jac.evaluate_ieee(t, y, self.p_array)
        return out.reshape(self._N, self._N)


# ----------------------------------------------------------------------------------------------------
# BLAS threads
# ----------------------------------------------------------------------------------------------------

# From this many unknowns on, OpenBLAS factorises with several threads.  Measured here (2 cores, other
# processes running): scipy's LSODA on a stiff 182 x 182 system took 7-9 ms per step with OpenBLAS's default
# threads and 0.05 ms with one thread (busy-waiting threads fighting for the cores); below ~130 unknowns
# OpenBLAS stays single-threaded anyway.
_BLAS_THREAD_LIMIT_SIZE = 64
_THREADPOOL_CONTROLLER: Any = None


@contextlib.contextmanager
def _single_blas_thread(size: int) -> Iterator[None]:
    """Run the LU factorisations of a dense ``size x size`` system on one BLAS thread (needs threadpoolctl).

    The matrices of an ODE solve are small and factorised thousands of times; OpenBLAS's thread pool costs
    more than it gains there and collapses when the cores are shared.  Without ``threadpoolctl`` installed
    (optional) nothing is changed: set ``OPENBLAS_NUM_THREADS=1`` for the same effect.
    """
    global _THREADPOOL_CONTROLLER
    if size < _BLAS_THREAD_LIMIT_SIZE:
        yield
        return
    try:
        import threadpoolctl
    except ImportError:
        yield
        return
    if _THREADPOOL_CONTROLLER is None:
        # Building the controller scans the loaded libraries once; limiting through it later is cheap.
        _THREADPOOL_CONTROLLER = threadpoolctl.ThreadpoolController()
    with _THREADPOOL_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


# ----------------------------------------------------------------------------------------------------
# solve_numpy
# ----------------------------------------------------------------------------------------------------


def _scipy_method(method: str) -> str:
    try:
        return NUMPY_METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"method {method!r} is not available with backend=\"numpy\"; it supports "
            f"{', '.join(repr(m) for m in NUMPY_METHODS)} (SciPy's solve_ivp methods); "
            f"use backend=\"compiled\" for the catalogue schemes"
        ) from None


def _failure_status(solver: Any, scipy_method: str, message: str | None, problem: _Problem) -> str:
    """Map SciPy's failure to a :data:`~symsens.integrate._solution.STATUSES` entry."""
    # Evaluations of the failed attempts happen at or after the last accepted time solver.t.
    if (problem.t_nonfinite is not None and problem.t_nonfinite >= solver.t) or not np.all(np.isfinite(solver.y)):
        return "non-finite values"
    if scipy_method == "LSODA":
        # ODEPACK's istate (LSODA docs): -1 excess work, -4 repeated error test failures, -5 repeated
        # corrector convergence failures; scipy's LSODA wrapper hides it behind one message.
        istate = getattr(getattr(getattr(solver, "_lsoda_solver", None), "_integrator", None), "istate", None)
        by_istate = {-1: "too many steps", -4: "step size underflow", -5: "newton failure"}
        return by_istate.get(istate, "step size underflow")
    text = (message or "").lower()
    if "step size" in text and ("less than spacing" in text or "too small" in text):
        return "step size underflow"
    return "step size underflow" if "step" in text else "newton failure"


def _rejected_steps(scipy_method: str, nfev: int, accepted: int, dense_outputs: int) -> int | None:
    """Rejected steps of SciPy's explicit Runge–Kutta methods, recovered exactly from the rhs count.

    ``RK45``/``RK23``/``DOP853`` evaluate ``f`` once at ``t0`` and once for the initial step guess, then
    ``n_stages`` times per attempted step (FSAL); DOP853's dense output costs 3 more per interpolated step.
    SciPy does not count rejections of Radau, BDF or LSODA: None there.
    """
    stages = {"RK45": 6, "RK23": 3, "DOP853": 12}.get(scipy_method)
    if stages is None:
        return None
    extra = 3 * dense_outputs if scipy_method == "DOP853" else 0
    attempts, remainder = divmod(nfev - 2 - extra, stages)
    if remainder or attempts < accepted:
        return None
    return attempts - accepted


@dataclass
class _Run:
    """What the step loop collected: accepted step times, states or dense outputs, and how it ended."""

    status: str = "success"
    scipy_message: str | None = None
    step_times: list[float] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    output_t: list[np.ndarray] = field(default_factory=list)
    output_y: list[np.ndarray] = field(default_factory=list)
    dense_outputs: int = 0


# What SciPy's solvers and linear algebra raise on numerical trouble (a nan Jacobian in ``lu_factor``'s
# finiteness check, a singular matrix, an overflow in a Python-float kernel): a failed solve, not a crash.
_NUMERICAL_ERRORS = (ArithmeticError, ValueError, np.linalg.LinAlgError)


def _exception_status(error: BaseException, problem: _Problem, t: float) -> str:
    """The status of a solve SciPy aborted with ``error`` after the last accepted time ``t``."""
    text = str(error).lower()
    if (problem.t_nonfinite is not None and problem.t_nonfinite >= t) or any(
        word in text for word in ("infs or nans", "nan", "infinit", "overflow")
    ):
        return "non-finite values"
    if isinstance(error, np.linalg.LinAlgError):
        return "newton failure"
    return "step size underflow"


def _start_run(start: np.ndarray, t0: float, t_eval: np.ndarray | None) -> tuple[_Run, int]:
    """A run that has reached t0 only: ``y0`` as the first step state, or as the outputs at ``t_eval == t0``.

    The outputs at t0 are ``y0`` itself (not a dense-output evaluation), and they exist even when the very
    first step fails.  Returns the run and the index of the first output time not yet produced.
    """
    run = _Run(step_times=[t0])
    if t_eval is None:
        run.states.append(start.copy())
        return run, 0
    at_start = int(np.searchsorted(t_eval, t0, side="right"))
    if at_start:
        run.output_t.append(t_eval[:at_start])
        run.output_y.append(np.tile(start, (at_start, 1)))
    return run, at_start


def _step_loop(
    solver: Any, start: np.ndarray, t_eval: np.ndarray | None, max_steps: int, problem: _Problem
) -> _Run:
    """SciPy's ``solve_ivp`` loop without events: step until ``t_bound``, failure or ``max_steps``.

    Without ``t_eval`` the accepted steps and their states are kept; with it, each step that covers output
    times builds its dense output and evaluates them (the times in ``(t_old, t]``; those at ``t0`` are ``y0``),
    as ``solve_ivp`` does.  ``status`` is ``"failed"`` when SciPy gave up (mapped by the caller); an exception
    from SciPy's numerics ends the run with the status it indicates (:func:`_exception_status`).
    """
    size = start.size
    run, next_output = _start_run(start, solver.t, t_eval)
    while solver.status == "running":
        if len(run.step_times) > max_steps:
            run.status = "too many steps"
            break
        try:
            run.scipy_message = solver.step()
        except _NUMERICAL_ERRORS as error:
            run.status = _exception_status(error, problem, run.step_times[-1])
            run.scipy_message = f"{type(error).__name__}: {error}"
            break
        if solver.status == "failed":
            run.status = "failed"
            break
        if solver.t == run.step_times[-1]:
            # ODEPACK's LSODA goes on "stepping" once t + h == t (it only warns); a step that does not
            # advance is a step size underflow.
            run.status = "step size underflow"
            run.scipy_message = "t + h == t: the step size fell below the spacing of floating-point times"
            break
        if not np.isfinite(solver.y).all():
            # LSODA accepts a step whose state is nan (its error test compares nan < 1 as false the wrong
            # way round); the RK and implicit methods reject them and end with a step size underflow.
            run.status = "non-finite values"
            run.scipy_message = "the accepted state contains inf or nan"
            break
        run.step_times.append(solver.t)
        if t_eval is None:
            run.states.append(solver.y.copy())
        else:
            upto = int(np.searchsorted(t_eval, solver.t, side="right"))
            if upto > next_output:
                interpolant = solver.dense_output()
                run.dense_outputs += 1
                times = t_eval[next_output:upto]
                run.output_t.append(times)
                run.output_y.append(np.asarray(interpolant(times)).reshape(size, -1).T)
                next_output = upto
    return run


def solve_numpy(
    model: Model,
    t_span: tuple[float, float],
    *,
    p: np.ndarray,
    y0: np.ndarray | None,
    method: str,
    rtol: float,
    atol: float,
    t_eval: np.ndarray | None,
    sensitivity: str | None,
    parameters: tuple[str, ...],
    sensitivity_in_norm: bool,
    first_step: float | None,
    max_step: float | None,
    max_steps: int,
    jacobian_strategy: str = "blocks",
) -> Solution:
    r"""Integrate ``model`` (and its forward sensitivities) with one of SciPy's ``solve_ivp`` methods.

    The arguments are those of :func:`symsens.solve`, already validated there.

    Parameters
    ----------
    model : Model
    t_span : (t0, t1), t0 < t1
    p : ndarray (P_all,)
        Values of all model parameters, in the model's order.
    y0 : ndarray (n,) or None
        None: the model's initial conditions ``y0(p)``, and ``S(t0) = dy0/dp``.  Given: ``S(t0) = 0``.
    method : str
        ``"radau-iia-3"``/``"radau"`` (SciPy ``Radau``, order 5), ``"bdf"`` (``BDF``, orders 1-5),
        ``"dopri5"`` (``RK45``), ``"bs3"`` (``RK23``), ``"dop853"`` (``DOP853``), ``"lsoda"`` (``LSODA``).
        Radau, BDF and LSODA get the analytic Jacobian.
    rtol, atol : float
    t_eval : ndarray (K,) or None
        Output times (increasing, inside ``t_span``), from each step's dense output; None: the accepted
        steps.
    sensitivity : None or "forward"
        ``"forward"``: continuous forward sensitivities, ``S' = J S + F_p`` integrated with ``y``.
        ``"discrete"`` (derivative of the numerical solution) needs the compiled backend: ValueError.
    parameters : tuple of str
        Sensitivity parameters, in gradient order.
    sensitivity_in_norm : bool
        Whether ``S`` enters the step-size controller's error norm (CVODES' ``errconS``).
    first_step, max_step : float or None
    max_steps : int
        Accepted steps allowed before giving up with status ``"too many steps"``.
    jacobian_strategy : "blocks" or "symbolic"
        How the augmented Jacobian is built (the values are identical): from ``J`` and the blocks
        ``d(J S_j + F_p[:, j])/dy`` (default; cheap to set up on large models), or by differentiating the
        augmented right-hand side as one system.

    Returns
    -------
    Solution
        ``backend="numpy"``; ``stats.accepted_steps``, ``step_times`` and ``step_sizes`` are SciPy's
        accepted steps, ``rhs_evaluations``/``jacobian_evaluations``/``lu_decompositions`` its ``nfev``,
        ``njev``, ``nlu``; ``rejected_steps`` is recovered for the explicit methods and 0 (not reported by
        SciPy, see ``options["rejected_steps_counted"]``) for Radau, BDF and LSODA.

    Notes
    -----
    **Sensitivities in the error norm or not.**  SciPy weighs every component ``i`` of the integrated state
    with ``atol_i + rtol |Y_i|`` (``atol`` may be an array, ``rtol`` must be a scalar — Radau and BDF derive
    their Newton tolerance from it) and tests the RMS norm over all ``N = n (P + 1)`` components:

    .. math::

        \|e\| = \Big(\frac{1}{N} \sum_{i=1}^{N}
                 \Big(\frac{e_i}{\mathrm{atol}_i + \mathrm{rtol}\,|Y_i|}\Big)^2\Big)^{1/2} \le 1.

    *In the norm* (``sensitivity_in_norm=True``, label ``"forward-error-control"``): ``atol_i = atol`` for
    ``y`` and ``S`` alike.  *Not in the norm* (label ``"forward"``): ``atol_i = 1e300`` for the ``S``
    components, an infinite tolerance that makes their scaled error vanish.  Because the norm is an RMS over
    all ``N`` components, the ``y`` part alone would then be divided by ``N`` instead of ``n`` — a controller
    ``sqrt(P + 1)`` times looser than for ``y`` alone.  To control ``y`` exactly as without sensitivities, the
    ``y`` tolerances are divided by ``c = sqrt(P + 1)`` (``rtol/c``, ``atol/c``), which multiplies each
    scaled ``y`` error by ``c`` and restores ``(1/n) sum_y``.  (LSODA tests a weighted *max* norm, where
    excluded components do not dilute anything: no rescaling there.)  Radau and BDF also test Newton
    convergence in the same weighted norm, so with ``S`` out of the norm the Newton iteration is stopped on
    ``y`` alone, and their Newton tolerance (derived from ``rtol/c``) is slightly tighter.  Consequence,
    measured on Robertson (Radau, t in (0, 40)): out of the norm the error of ``S`` does not fall with rtol
    (1.7e-6 at 1e-6, 5.3e-6 at 1e-8, in dy2/dk during the initial transient); in the norm it does (6.9e-7,
    5.1e-8).  In the norm, ``S`` shares ``atol`` with ``y`` unscaled (CVODES would divide it by the
    parameter's magnitude), so a sensitivity much smaller than ``atol`` (Robertson's dy/dk2 ~ 1e-12) is not
    resolved.

    Raises
    ------
    ValueError
        For ``sensitivity="discrete"``, an unknown sensitivity mode, or a method SciPy does not provide.

    References
    ----------
    Hairer, Nørsett & Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., Sect. I.14; SciPy
    ``solve_ivp`` documentation.
    """
    if sensitivity == "discrete":
        raise ValueError(
            "sensitivity=\"discrete\" (the derivative of the numerical solution, i.e. forward-mode AD through "
            "the solver) needs backend=\"compiled\"; the numpy backend computes sensitivity=\"forward\" only"
        )
    if sensitivity not in (None, "forward"):
        raise ValueError(f"`sensitivity` must be None or \"forward\" with backend=\"numpy\", got {sensitivity!r}")
    scipy_method = _scipy_method(method)
    t0, t1 = float(t_span[0]), float(t_span[1])
    sens_params = tuple(parameters) if sensitivity is not None else ()
    n, P = model.n_states, len(sens_params)
    implicit = scipy_method in _IMPLICIT

    if jacobian_strategy not in _JACOBIAN_STRATEGIES:
        raise ValueError(f"`jacobian_strategy` must be one of {_JACOBIAN_STRATEGIES}, got {jacobian_strategy!r}")
    kernels = model_kernels(model, sens_params)
    problem = _Problem(kernels, p, with_jacobian=implicit, jacobian_strategy=jacobian_strategy)
    p_values = np.asarray(p, dtype=float)
    if y0 is None:
        # y0(p) may be inf or nan (sqrt of a negative parameter, ...): reported below as a failure at t0.
        with np.errstate(all="ignore"):
            try:
                start = np.asarray(kernels.initial_conditions(*p_values), dtype=float).reshape(-1)
            except _NUMERICAL_ERRORS:
                start = np.full(kernels.size, np.nan)
    else:
        start = np.concatenate([np.asarray(y0, dtype=float), np.zeros(n * P)])

    # Tolerances (see Notes): the S part in or out of the norm; y rescaled so an excluded S does not dilute.
    scale = 1.0
    if P and not sensitivity_in_norm and scipy_method in _RMS_NORM:
        scale = math.sqrt(P + 1)
    rtol_used = rtol / scale
    if rtol_used < _SCIPY_MIN_RTOL <= rtol:
        # SciPy raises any rtol below 100 eps to that floor with a warning; do it here without one, as the
        # user's own rtol is fine.
        rtol_used = _SCIPY_MIN_RTOL
    if P:
        atol_vector = np.full(n * (P + 1), atol if sensitivity_in_norm else EXCLUDED_ATOL)
        atol_vector[:n] = atol / scale
        atol_used: float | np.ndarray = atol_vector
    else:
        atol_used = atol

    options: dict[str, Any] = {}
    if first_step is not None:
        # SciPy refuses a first step longer than the span; the compiled integrators shorten it to land on t1.
        options["first_step"] = min(float(first_step), t1 - t0)
    if max_step is not None:
        options["max_step"] = float(max_step)
    if implicit:
        options["jac"] = problem.jac
    # Non-finite values are detected and reported through the status; NumPy's warnings about them from
    # inside SciPy's step (nan in a stage, an error norm of inf) would only repeat that, once per attempt.
    solver: Any = None
    with _single_blas_thread(kernels.size), np.errstate(all="ignore"):
        f0 = problem.rhs(t0, start)
        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(f0))):
            # No step can be taken from a non-finite y0 or f(t0, y0) (SciPy would fail on its first step with
            # a step size underflow, or raise): report it as what it is, at t0.
            run, _ = _start_run(start, t0, t_eval)
            run.status = "non-finite values"
            run.scipy_message = "y0 or f(t0, y0) is not finite"
        else:
            try:
                solver = _SOLVER_CLASSES[scipy_method](
                    problem.rhs, t0, start, t1, rtol=rtol_used, atol=atol_used, **options
                )
            except _NUMERICAL_ERRORS as error:
                # The arguments were checked by symsens.solve: what fails here is the numerics at t0 (the
                # initial step selection or the first Jacobian).
                run, _ = _start_run(start, t0, t_eval)
                run.status = _exception_status(error, problem, t0)
                run.scipy_message = f"{type(error).__name__}: {error}"
            else:
                run = _step_loop(solver, start, t_eval, max_steps, problem)
    status, scipy_message = run.status, run.scipy_message
    if status == "failed":
        status = _failure_status(solver, scipy_method, scipy_message, problem)
    step_times = run.step_times

    if t_eval is None:
        t_out = np.array(step_times, dtype=float)
        states = np.array(run.states, dtype=float).reshape(len(run.states), kernels.size)
    else:
        t_out = np.concatenate(run.output_t) if run.output_t else np.empty(0)
        states = np.concatenate(run.output_y) if run.output_y else np.empty((0, kernels.size))
    y_out = states[:, :n]
    # The integrated state stores S column by column: (y, S[:, 0], ..., S[:, P-1]) -> (K, n, P).
    sens_out = states[:, n:].reshape(len(states), P, n).transpose(0, 2, 1) if sensitivity is not None else None

    times_array = np.array(step_times, dtype=float)
    # The last time reached (SciPy's solver.t is that too, except after an exception inside a step).
    t_failure = None if status == "success" else float(step_times[-1])
    if status == "success":
        message = "integration successful"
    else:
        detail = f" ({scipy_message})" if scipy_message else ""
        if status == "too many steps":
            detail = f" (max_steps = {max_steps} accepted steps reached)"
        message = f"{status} at t = {t_failure:.17g}{detail}"
    accepted = len(step_times) - 1
    rejected = _rejected_steps(scipy_method, solver.nfev, accepted, run.dense_outputs) if status == "success" else None
    stats = SolverStats(
        accepted_steps=accepted,
        rejected_steps=rejected or 0,
        rhs_evaluations=int(solver.nfev) if solver is not None else 1,
        jacobian_evaluations=int(solver.njev) if solver is not None else 0,
        lu_decompositions=int(solver.nlu) if solver is not None else 0,
        step_times=times_array,
        step_sizes=np.diff(times_array),
    )
    used: dict[str, Any] = {
        "rtol": rtol,
        "atol": atol,
        "scipy_method": scipy_method,
        "first_step": first_step,
        "max_step": max_step,
        "max_steps": max_steps,
        "jacobian": "analytic" if implicit else None,
        "jacobian_strategy": jacobian_strategy if (implicit and P) else None,
        "sensitivity_atol": (atol if sensitivity_in_norm else EXCLUDED_ATOL) if P else None,
        "state_tolerance_scale": scale,
        "rejected_steps_counted": rejected is not None,
    }
    return Solution(
        t=t_out,
        y=y_out,
        sensitivities=sens_out,
        parameters=sens_params,
        method=method,
        sensitivity=None if sensitivity is None else ("forward-error-control" if sensitivity_in_norm else "forward"),
        backend="numpy",
        status=status,
        message=message,
        stats=stats,
        options=used,
        t_failure=t_failure,
        state_names=model.state_names,
    )
