"""Continuous adjoint gradients with SciPy's integrators (the NumPy/SciPy implementation).

The equations are those of :func:`symsens.derive.adjoint_system` (exact, lambdified with
:func:`symsens.derive.numpy_function`): for ``L = int_{t0}^{t1} g dt + sum_k l(t_k, y(t_k), p; d_k)``,

    lambda' = -J^T lambda - (dg/dy)^T,   lambda(t1) = 0,   lambda(t_k-) = lambda(t_k+) + (dl/dy)^T(t_k),
    mu'     = -(F_p^T lambda + (dg/dp)^T),   mu(t1) = 0,
    dL/dp   = (dy0/dp)^T lambda(t0) + mu(t0) + sum_k (dl/dp)^T(t_k).

Two variants, differing in where the state ``y(t)`` needed by ``J``, ``F_p`` and ``g`` comes from:

``interpolating``
    a forward solve with dense output (``solve_ivp(..., dense_output=True)``) gives ``y(t)`` by its interpolant;
    ``(lambda, mu)`` are integrated backwards segment by segment between the data times, restarting with the
    jump at each, with their own tolerances.  The backward system is linear in ``(lambda, mu)`` and, where the
    forward problem is dissipative (eigenvalues of ``J`` with negative real part), so is the backward one in
    reversed time: stable.  This is CVODES's adjoint scheme with an interpolated forward solution (Hindmarsh et
    al. 2005, Sect. 5; CVODES stores checkpoints and Hermite or polynomial interpolation data).
``backsolve``
    only ``y(t1)`` is kept; ``(y, lambda, mu)`` are integrated backwards together (Chen et al. 2018,
    Algorithm 1; torchdiffeq's ``odeint_adjoint`` and diffrax's ``BacksolveAdjoint``).  At each data time the
    state is reset to the forward value, as torchdiffeq does.  Running ``y' = f`` backwards flips the sign of
    the eigenvalues of ``J``: a decaying mode of the forward problem grows like ``exp(|Re lambda| (t1 - t))``
    backwards, so on stiff problems the reconstructed state, and the gradient with it, are wrong or overflow.
    The distance of the reconstructed ``y(t0)`` from ``y0`` (and of ``y(t_k)`` from the forward values) is
    recorded as a diagnostic.

References
----------
Y. Cao, S. Li, L. Petzold and R. Serban, SIAM J. Sci. Comput. 24(3) (2003) 1076-1089.
A. C. Hindmarsh et al., "SUNDIALS: Suite of nonlinear and differential/algebraic equation solvers",
ACM TOMS 31(3) (2005) 363-396.
R. T. Q. Chen, Y. Rubanova, J. Bettencourt and D. Duvenaud, "Neural ordinary differential equations",
NeurIPS 2018.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from ..derive import AdjointSystem, derivative_matrix, numpy_function

try:  # the safe binding of symbols to generated identifiers (symsens.derive._numeric)
    from ..derive._numeric import lambdify_safely
except ImportError:  # pragma: no cover - older symsens.derive
    lambdify_safely = None

__all__ = ["AdjointRun", "adjoint_gradient", "ADJOINT_VARIANTS", "SCIPY_METHODS", "scipy_method"]

ADJOINT_VARIANTS: tuple[str, ...] = ("interpolating", "backsolve")

#: Names accepted for the integrator of the adjoint variants -> SciPy ``solve_ivp`` method.
SCIPY_METHODS: dict[str, str] = {
    "radau": "Radau", "radau-iia-3": "Radau", "Radau": "Radau",
    "bdf": "BDF", "BDF": "BDF",
    "lsoda": "LSODA", "LSODA": "LSODA",
    "dopri5": "RK45", "RK45": "RK45",
    "bs3": "RK23", "RK23": "RK23",
    "dop853": "DOP853", "DOP853": "DOP853",
}

_IMPLICIT = ("Radau", "BDF", "LSODA")
_COUNTERS = ("steps", "rhs_evaluations", "jacobian_evaluations", "lu_decompositions")


def scipy_method(name: str) -> str:
    """The SciPy ``solve_ivp`` method for ``name`` (a ValueError names the accepted ones)."""
    try:
        return SCIPY_METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"`scheme` {name!r} is not available for the adjoint methods, which run SciPy's solve_ivp; "
            f"known: {', '.join(sorted(set(SCIPY_METHODS)))}"
        ) from None


@dataclass(frozen=True, eq=False)
class AdjointRun:
    """The outcome of :func:`adjoint_gradient`.

    Attributes
    ----------
    loss : float or None
        ``L`` from the forward solve (None when it failed).
    gradient : ndarray (P) or None
        ``dL/dp``; None unless ``status == "success"`` (never a number from a failed run).
    status : str
        ``"success"``, ``"step size underflow"``, ``"newton failure"``, ``"non-finite values"`` or ``"failed"``.
    message : str
        What happened; on failure which pass (forward or backward) and when.
    t_failure : float or None
    forward, backward : dict
        Work counters of the passes: ``steps``, ``rhs_evaluations``, ``jacobian_evaluations``,
        ``lu_decompositions`` (the backward ones summed over the segments between data times).
    y0_reconstruction_error : float or None
        Backsolve: ``max_i |y_i(t0) reconstructed - y0_i| / max(max_i |y0_i|, atol)`` (None for interpolating, or
        when the backward pass did not reach t0).
    reconstruction_errors : ndarray or None
        Backsolve: the same relative distance at each restart time (the data times below t1, then t0), in the
        order reached.
    """

    loss: float | None
    gradient: np.ndarray | None
    status: str
    message: str
    t_failure: float | None = None
    forward: dict[str, int] = field(default_factory=dict)
    backward: dict[str, int] = field(default_factory=dict)
    y0_reconstruction_error: float | None = None
    reconstruction_errors: np.ndarray | None = None


def _vector_function(expressions: Sequence[sp.Expr], arguments: list[sp.Symbol]) -> Callable[..., np.ndarray]:
    """``F(*values) -> ndarray (len(expressions),)`` for scalar arguments.

    The same exact expressions and the same safe binding of the model's names as
    :func:`symsens.derive.numpy_function`, evaluated the way the NumPy backend of ``symsens.solve`` evaluates
    its kernels: over Python floats with ``math`` (several times faster per call than NumPy on scalars, and
    SciPy calls these once per stage), and with NumPy's IEEE semantics (``inf``/``nan``) when ``math`` raises.
    """
    expressions = [sp.sympify(e) for e in expressions]
    size = len(expressions)
    if lambdify_safely is None:  # pragma: no cover
        general = numpy_function(expressions, arguments)
        return lambda *values: general(*values).reshape(size)
    from ._numpy_backend import _MATH_MODULES, _NUMPY_MODULES

    fast = lambdify_safely([arguments], expressions, _MATH_MODULES, cse=True)
    ieee: list[Callable[..., Any]] = []

    def evaluate(*values: float) -> np.ndarray:
        try:
            return np.array(fast(values), dtype=float).reshape(size)
        except (ArithmeticError, ValueError, TypeError):
            if not ieee:
                ieee.append(lambdify_safely([arguments], expressions, _NUMPY_MODULES, cse=True))
            with np.errstate(all="ignore"):
                return np.array(ieee[0](np.asarray(values, dtype=float)), dtype=float).reshape(size)

    return evaluate


class _Kernels:
    """NumPy functions of one adjoint system, all with the arguments ``(t, y, lambda, p, d)`` flattened."""

    def __init__(self, system: AdjointSystem) -> None:
        model = system.model
        self.system = system
        self.n = model.n_states
        self.P = system.n_parameters
        self.n_data = len(system.data_symbols)
        self.integral = system.has_integral
        self.arguments = [model.time, *model.states, *system.adjoints, *model.parameters, *system.data_symbols]
        self.pointwise = _vector_function([system.pointwise], self.arguments)
        self.jumps = _vector_function([*system.jumps, *system.parameter_jumps], self.arguments)
        self.initial_gradient = _vector_function(list(system.initial_gradient), self.arguments)

    # The forward and backward kernels are made on first use: the compiled adjoint needs none of them (only the
    # loss, its jumps and the initial gradient), and backsolve's Jacobian holds second derivatives of f.

    @cached_property
    def _forward_expressions(self) -> list[sp.Expr]:
        return [*self.system.model.rhs, *([self.system.integrand] if self.integral else [])]

    @cached_property
    def forward_rhs(self) -> Callable[..., np.ndarray]:
        return _vector_function(self._forward_expressions, self.arguments)

    @cached_property
    def forward_jacobian(self) -> Callable[[list[float]], np.ndarray]:
        return _sparse_jacobian(self._forward_expressions, list(self.system.model.states), self.arguments)

    @cached_property
    def initial_conditions(self) -> Callable[..., np.ndarray]:
        return _vector_function(list(self.system.model.initial_conditions), self.arguments)

    @cached_property
    def backward_rhs(self) -> Callable[..., np.ndarray]:
        return _vector_function(list(self.system.backward_rhs), self.arguments)

    @cached_property
    def backward_jacobian(self) -> Callable[[list[float]], np.ndarray]:
        return _sparse_jacobian(list(self.system.backward_rhs), list(self.system.adjoints), self.arguments,
                                size=self.n + self.P)

    @cached_property
    def backsolve_rhs(self) -> Callable[..., np.ndarray]:
        return _vector_function([*self.system.model.rhs, *self.system.backward_rhs], self.arguments)

    @cached_property
    def backsolve_jacobian(self) -> Callable[[list[float]], np.ndarray]:
        system = self.system
        return _sparse_jacobian([*system.model.rhs, *system.backward_rhs], [*system.model.states, *system.adjoints],
                                self.arguments, size=2 * self.n + self.P)

    def pack(self, t: float, y: np.ndarray | None, lam: np.ndarray | None, p: np.ndarray,
             d: np.ndarray | None) -> list[float]:
        zeros = [0.0] * self.n
        y_part = zeros if y is None else np.asarray(y[: self.n], dtype=float).tolist()
        l_part = zeros if lam is None else np.asarray(lam[: self.n], dtype=float).tolist()
        d_part = [0.0] * self.n_data if d is None else np.asarray(d, dtype=float).tolist()
        return [float(t), *y_part, *l_part, *np.asarray(p, dtype=float).tolist(), *d_part]


def _sparse_jacobian(expressions: Sequence[sp.Expr], variables: Sequence[sp.Symbol], arguments: list[sp.Symbol],
                     size: int | None = None) -> Callable[[list[float]], np.ndarray]:
    """``M[i, j] = d expressions[i] / d variables[j]`` as a dense ``size x size`` array from its non-zero entries."""
    M = derivative_matrix(expressions, variables)
    rows = len(expressions) if size is None else size
    positions = [(i, j) for i in range(M.rows) for j in range(M.cols) if M[i, j] != 0]
    entries = _vector_function([M[i, j] for i, j in positions], arguments) if positions else None
    index = (np.array([i for i, _ in positions], dtype=int), np.array([j for _, j in positions], dtype=int))

    def evaluate(args: list[float]) -> np.ndarray:
        out = np.zeros((rows, rows))
        if entries is not None:
            out[index] = entries(*args)
        return out

    return evaluate


@lru_cache(maxsize=16)
def _kernels(system: AdjointSystem) -> _Kernels:
    return _Kernels(system)


class _Watch:
    """Records the latest time a right-hand side evaluation was not finite (to name a blow-up as such)."""

    def __init__(self) -> None:
        self.t_nonfinite: float | None = None
        self.t_last: float | None = None

    def check(self, t: float, values: np.ndarray) -> np.ndarray:
        self.t_last = float(t)
        if not np.all(np.isfinite(values)):
            self.t_nonfinite = float(t)
        return values


def _counts(result: Any, into: dict[str, int]) -> dict[str, int]:
    into["steps"] += max(len(result.t) - 1, 0)
    into["rhs_evaluations"] += int(result.nfev)
    into["jacobian_evaluations"] += int(result.njev)
    into["lu_decompositions"] += int(result.nlu)
    return into


class _Failure(Exception):
    def __init__(self, status: str, message: str, t: float | None) -> None:
        super().__init__(message)
        self.status, self.message, self.t = status, message, t


def _integrate(fun: Callable[[float, np.ndarray], np.ndarray], jac: Callable[[float, np.ndarray], np.ndarray] | None,
               t_span: tuple[float, float], z0: np.ndarray, method: str, rtol: float, atol: float | np.ndarray,
               counts: dict[str, int], what: str, watch: _Watch, **options: Any) -> Any:
    """``solve_ivp`` with its failures turned into :class:`_Failure` (status, message naming ``what``, time)."""
    if method in _IMPLICIT and jac is not None:
        options["jac"] = jac
    try:
        with np.errstate(all="ignore"):
            result = solve_ivp(fun, t_span, z0, method=method, rtol=rtol, atol=atol, **options)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as error:
        t = watch.t_nonfinite if watch.t_nonfinite is not None else watch.t_last
        nonfinite = watch.t_nonfinite is not None or "inf" in str(error).lower() or "nan" in str(error).lower()
        status = "non-finite values" if nonfinite else "failed"
        where = "" if t is None else f" at t = {t:.6g}"
        raise _Failure(status, f"{what} failed{where}: {type(error).__name__}: {error}", t) from None
    _counts(result, counts)
    t_last = float(result.t[-1]) if len(result.t) else float(t_span[0])
    if result.status != 0:
        if watch.t_nonfinite is not None or not np.all(np.isfinite(result.y)):
            status = "non-finite values"
        elif "step size" in (result.message or "").lower():
            status = "step size underflow"
        else:
            status = "failed"
        raise _Failure(status, f"{what} failed at t = {t_last:.6g}: {result.message}", t_last)
    if not np.all(np.isfinite(result.y)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(result.y), axis=0))[0])
        t_bad = float(result.t[bad])
        raise _Failure("non-finite values", f"{what}: non-finite values at t = {t_bad:.6g}", t_bad)
    return result


def _first_step(step: float | None, length: float) -> dict[str, float]:
    """Restart a segment with the step size the previous one ended with (SciPy's guess starts tiny)."""
    return {} if step is None or not step > 0 else {"first_step": min(step, length)}


def _last_step(result: Any, previous: float | None) -> float | None:
    """The size of the last full step of a segment (not the one shortened to land on the segment's end)."""
    steps = np.abs(np.diff(result.t))
    return float(steps[-2]) if len(steps) >= 2 else previous


def _restart_times(times: np.ndarray, t0: float, t1: float) -> list[float]:
    """The distinct data times and ``t0`` in decreasing order (``t1`` excluded: the pass starts there)."""
    inner = sorted({float(t) for t in times if t0 < t < t1}, reverse=True)
    return [*inner, t0]


def adjoint_gradient(
    system: AdjointSystem,
    t_span: tuple[float, float],
    p: np.ndarray,
    *,
    times: np.ndarray | None = None,
    data: np.ndarray | None = None,
    variant: str = "interpolating",
    method: str = "Radau",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
) -> AdjointRun:
    """``L`` and ``dL/dp`` by the continuous adjoint (module docstring: the equations and the two variants).

    Parameters
    ----------
    system : AdjointSystem
        From :func:`symsens.derive.adjoint_system`; its pointwise term is summed over ``times``.
    t_span : (t0, t1)
    p : ndarray
        All parameter values of the model, in the model's order.
    times : ndarray (K), optional
        The data times of the pointwise term (non-decreasing, inside ``t_span``; a repeated time counts twice).
    data : ndarray (K x D), optional
        The values of the system's data symbols at each data time.
    variant : ``"interpolating"`` or ``"backsolve"``
    method : a SciPy ``solve_ivp`` method (``"Radau"``, ``"BDF"``, ``"LSODA"`` for stiff problems, ``"RK45"``, ...).
    rtol, atol : forward tolerances.
    adjoint_rtol, adjoint_atol : tolerances of the backward pass (default the forward ones).

    Returns
    -------
    AdjointRun
        A failed pass gives ``status`` and ``t_failure`` and no gradient.
    """
    if variant not in ADJOINT_VARIANTS:
        raise ValueError(f"`variant` must be one of {', '.join(ADJOINT_VARIANTS)}, got {variant!r}")
    method = scipy_method(method)
    k = _kernels(system)
    n, P = k.n, k.P
    t0, t1 = float(t_span[0]), float(t_span[1])
    p = np.asarray(p, dtype=float)
    times = np.zeros(0) if times is None else np.asarray(times, dtype=float)
    if not system.has_pointwise:
        times = np.zeros(0)
    d_rows = np.zeros((len(times), k.n_data)) if data is None else np.asarray(data, dtype=float).reshape(len(times), k.n_data)
    a_rtol = rtol if adjoint_rtol is None else adjoint_rtol
    a_atol = atol if adjoint_atol is None else adjoint_atol
    forward = dict.fromkeys(_COUNTERS, 0)
    backward = dict.fromkeys(_COUNTERS, 0)
    watch = _Watch()

    def fail(error: _Failure, loss: float | None = None, **extra: Any) -> AdjointRun:
        return AdjointRun(loss, None, error.status, error.message, error.t, forward, backward, **extra)

    # Forward pass: y (and the integral's quadrature q' = g) from y0(p).
    y0 = k.initial_conditions(*k.pack(t0, None, None, p, None))
    z0 = np.concatenate([y0, [0.0]]) if k.integral else y0

    def forward_rhs(t: float, z: np.ndarray) -> np.ndarray:
        return watch.check(t, k.forward_rhs(*k.pack(t, z, None, p, None)))

    def forward_jac(t: float, z: np.ndarray) -> np.ndarray:
        return watch.check(t, k.forward_jacobian(k.pack(t, z, None, p, None)))

    restarts = _restart_times(times, t0, t1)
    try:
        if variant == "interpolating":
            fwd = _integrate(forward_rhs, forward_jac, (t0, t1), z0, method, rtol, atol, forward, "forward pass",
                             watch, dense_output=True)
            state_at: Callable[[float], np.ndarray] = lambda t: fwd.sol(t)[:n]  # noqa: E731
        else:
            # Only the states at the data times are kept (what torchdiffeq's forward pass returns); the
            # interpolant that gives them is dropped at once.
            fwd = _integrate(forward_rhs, forward_jac, (t0, t1), z0, method, rtol, atol, forward, "forward pass",
                             watch, dense_output=True)
            at_stop = {t: fwd.sol(t)[:n].copy() for t in restarts}
            at_stop[t0] = y0.copy()
            fwd.sol = None
            state_at = at_stop.__getitem__
    except _Failure as error:
        return fail(error)
    y_end = fwd.y[:n, -1].copy()

    # Loss value and the jumps at the data times (from the forward states).
    jumps_at: dict[float, np.ndarray] = {}
    parameter_jumps = np.zeros(P)
    loss = float(fwd.y[n, -1]) if k.integral else 0.0
    for tk, dk in zip(times, d_rows):
        yk = y_end if tk == t1 else (y0 if tk == t0 else state_at(float(tk)))
        args = k.pack(tk, yk, None, p, dk)
        loss += float(k.pointwise(*args)[0])
        jump = k.jumps(*args)
        jumps_at[float(tk)] = jumps_at.get(float(tk), np.zeros(n)) + jump[:n]
        parameter_jumps += jump[n:]
    if not math.isfinite(loss):
        return AdjointRun(None, None, "non-finite values", "the loss is not finite on the forward solution", None,
                          forward, backward)

    # Backward pass.
    lam = np.zeros(n) + jumps_at.get(t1, np.zeros(n))
    mu = np.zeros(P)
    watch_back = _Watch()
    errors: list[float] = []
    scale = max(float(np.max(np.abs(y0))) if n else 0.0, float(np.min(np.atleast_1d(atol))))
    t_current = t1
    step: float | None = None   # the last backward step size, to restart the next segment with
    try:
        if variant == "interpolating":
            def backward_rhs(t: float, z: np.ndarray) -> np.ndarray:
                return watch_back.check(t, k.backward_rhs(*k.pack(t, state_at(t), z, p, None)))

            def backward_jac(t: float, z: np.ndarray) -> np.ndarray:
                return watch_back.check(t, k.backward_jacobian(k.pack(t, state_at(t), z, p, None)))

            for t_next in restarts:
                if t_next < t_current:
                    result = _integrate(backward_rhs, backward_jac, (t_current, t_next), np.concatenate([lam, mu]),
                                        method, a_rtol, a_atol, backward, "backward pass", watch_back,
                                        **_first_step(step, t_current - t_next))
                    step = _last_step(result, step)
                    lam, mu = result.y[:n, -1].copy(), result.y[n:, -1].copy()
                lam = lam + jumps_at.get(t_next, 0.0)
                t_current = t_next
        else:
            y = y_end

            def backsolve_rhs(t: float, z: np.ndarray) -> np.ndarray:
                return watch_back.check(t, k.backsolve_rhs(*k.pack(t, z[:n], z[n:], p, None)))

            def backsolve_jac(t: float, z: np.ndarray) -> np.ndarray:
                return watch_back.check(t, k.backsolve_jacobian(k.pack(t, z[:n], z[n:], p, None)))

            for t_next in restarts:
                if t_next < t_current:
                    result = _integrate(backsolve_rhs, backsolve_jac, (t_current, t_next),
                                        np.concatenate([y, lam, mu]), method, a_rtol, a_atol, backward,
                                        "backward pass", watch_back, **_first_step(step, t_current - t_next))
                    step = _last_step(result, step)
                    y_back = result.y[:n, -1]
                    lam, mu = result.y[n:2 * n, -1].copy(), result.y[2 * n:, -1].copy()
                    target = y0 if t_next == t0 else state_at(t_next)
                    errors.append(float(np.max(np.abs(y_back - target))) / scale if n else 0.0)
                    y = target.copy()   # torchdiffeq: continue from the forward value at the data time
                lam = lam + jumps_at.get(t_next, 0.0)
                t_current = t_next
    except _Failure as error:
        extra: dict[str, Any] = {}
        if variant == "backsolve":
            extra = {"reconstruction_errors": np.asarray(errors)}
        return fail(error, loss, **extra)

    gradient = k.initial_gradient(*k.pack(t0, None, lam, p, None)) + mu + parameter_jumps
    extra = {}
    if variant == "backsolve":
        extra = {"y0_reconstruction_error": errors[-1] if errors else 0.0,
                 "reconstruction_errors": np.asarray(errors)}
    if not np.all(np.isfinite(gradient)):
        return AdjointRun(loss, None, "non-finite values", "the adjoint gradient is not finite", t0, forward,
                          backward, **extra)
    message = f"{variant} adjoint with {method}: {forward['steps']} forward and {backward['steps']} backward steps"
    if variant == "backsolve" and errors and max(errors) > math.sqrt(max(rtol, a_rtol)):
        message += (f"; the backward state solve missed the forward states by up to {max(errors):.3g} (relative): "
                    "the gradient is unreliable (use the interpolating adjoint)")
    return AdjointRun(loss, np.asarray(gradient, dtype=float), "success", message, None, forward, backward, **extra)
