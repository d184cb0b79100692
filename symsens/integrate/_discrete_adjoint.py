"""The discrete adjoint of explicit Runge–Kutta solves: reverse mode through the solver's accepted steps.

A compiled explicit Runge–Kutta solve (``symsens.solve(method="tsit5", ...)``) is a map from ``(y0(p), p)`` to
its step values and outputs.  With the accepted step sizes ``h_n`` held constant (as reverse-mode AD tools
hold them: the controller is not differentiated), each step is

    k_i = f(t_n + c_i h_n, Y_i, p),     Y_i = y_n + h_n sum_{j<i} a_ij k_j,     i = 1..s
    y_{n+1} = y_n + h_n sum_i b_i k_i,

and its exact reverse-mode derivative (Hager 2000, Sect. 2; Sandu 2006, Sect. 3; FATODE's ERK adjoint, Zhang &
Sandu 2014) takes the cotangent ``ybar_{n+1}`` to

    kbar_i = h_n b_i ybar_{n+1} + h_n sum_{j>i} a_ji Ybar_j       (i = s..1, from the last stage back)
    Ybar_i = J(t_n + c_i h_n, Y_i)^T kbar_i,     pbar += F_p(t_n + c_i h_n, Y_i)^T kbar_i
    ybar_n = ybar_{n+1} + sum_i Ybar_i,

with ``J = df/dy`` and ``F_p = df/dp`` applied as the exact transposed products of
:func:`symsens.derive.adjoint_system` (written out entry by entry, evaluated by the safe lambdified functions of
:mod:`symsens.derive._numeric`).  A stage whose cotangent is zero (the last stage of an FSAL pair: ``b_s = 0``
and no later stage) costs nothing.  Outputs between step ends are the compiled solver's cubic Hermite
interpolant ``y(t_n + theta h) = h00 y_n + h10 h f_n + h01 y_{n+1} + h11 h f_{n+1}``
(``symsens_solver.hpp``, ``Recorder::output``), whose reverse adds ``h00 w + J(y_n)^T h10 h w`` to
``ybar_n``, ``h01 w + J(y_{n+1})^T h11 h w`` to ``ybar_{n+1}`` and the ``F_p^T`` terms to ``pbar``.  At the
end ``dL/dp = (dy0/dp)^T ybar_0 + pbar + sum_k (dl/dp)_k``.

This is the derivative of the same numerical map that forward-mode AD through the solver differentiates
(``symsens.solve(sensitivity="discrete")`` with the values-only norm takes the plain solve's steps), so the two
agree to rounding: one number by two independent computations (``tests/test_adjoint_audit.py``).

Memory: checkpointing (Griewank & Walther 2008, Ch. 12).  The forward replay stores the state at every
``k``-th step; the reverse pass re-runs each block of ``k`` steps from its checkpoint, keeping that block's
stages, and reverses it.  Memory ``(M / k) n + k s n`` numbers for ``M`` steps of ``s`` stages in ``n`` states
(at ``k = sqrt(M / s)`` about ``2 sqrt(M s) n``, against ``M s n`` for storing every stage), for one extra
forward sweep (``M s`` more right-hand side evaluations, the price of any uniform checkpointing; Griewank's
binomial ``revolve`` schedule lowers memory to logarithmic at a logarithmic recompute factor).

Two implementations of one sweep.  ``backend="compiled"`` (the default when a C++ compiler is found) runs the
replay and the reverse pass in C++ (``cpp/adjoint/symsens_erk_adjoint.hpp``,
:mod:`._discrete_adjoint_erk_compiled`): sized at run time, compiled once for
every model, with ``f``, ``J^T v`` and ``F_p^T v`` from the model's generated transposed-product library
(:mod:`symsens.codegen._vjp`: written over the non-zeros of ``J`` and ``F_p``, so it compiles in seconds at a
thousand parameters) passed as function pointers.  ``backend="numpy"`` runs this module's sweep with lambdified
kernels.  Both take the same output plan (:func:`_output_plan`), checkpoints and operation order, so they agree
to the rounding of the kernels' evaluation order; the NumPy sweep is the fallback and the independent check.
:func:`discrete_adjoint_backend` chooses for callers that do not pass ``backend`` (``symsens.gradient``, the audit).

Explicit Runge–Kutta schemes are here; the implicit families have their own modules
(:mod:`._discrete_adjoint_rosenbrock`, :mod:`._discrete_adjoint_dirk`, :mod:`._discrete_adjoint_radau`,
:mod:`._discrete_adjoint_bdf`), and :func:`discrete_adjoint` picks the one for a scheme.

References
----------
W. W. Hager, "Runge–Kutta methods in optimal control and the transformed adjoint system", Numer. Math. 87
(2000) 247-282.
A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006, LNCS 3994, 550-557.
H. Zhang and A. Sandu, "FATODE: a library for forward, adjoint, and tangent linear integration of ODEs",
SIAM J. Sci. Comput. 36(5) (2014) C504-C523.
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from functools import lru_cache

import numpy as np
import sympy as sp

from ..model import Model

__all__ = ["DiscreteAdjointRun", "discrete_adjoint", "discrete_adjoint_erk", "discrete_adjoint_family",
           "explicit_tableau", "default_checkpoint_interval", "ERK_BACKENDS", "discrete_adjoint_backend",
           "erk_adjoint_backend"]


@dataclass(frozen=True)
class ExplicitTableauValues:
    """An explicit Runge–Kutta tableau in double precision (from the catalogue's exact coefficients)."""

    name: str
    A: np.ndarray        # s x s, strictly lower triangular
    b: np.ndarray
    c: np.ndarray
    fsal: bool

    @property
    def stages(self) -> int:
        return len(self.b)


@lru_cache(maxsize=32)
def explicit_tableau(scheme: str) -> ExplicitTableauValues:
    """The tableau of the explicit scheme ``scheme`` (``symsens.schemes.get_scheme``), rounded to double as the
    compiled integrator's coefficients are; a ValueError names ``scheme`` when it is not explicit."""
    from ..schemes import get_scheme

    try:
        tableau = get_scheme(scheme)
    except Exception as error:
        raise ValueError(f"`scheme`: {error}") from None
    if getattr(tableau, "family", None) != "explicit":
        raise ValueError(f"`scheme`: the discrete adjoint covers explicit Runge–Kutta schemes only; {scheme!r} is "
                         f"{getattr(tableau, 'family', type(tableau).__name__)!r}")
    s = tableau.stages
    A = np.array([[float(sp.N(tableau.A[i][j], 30)) for j in range(s)] for i in range(s)])
    b = np.array([float(sp.N(v, 30)) for v in tableau.b])
    c = np.array([float(sp.N(v, 30)) for v in tableau.c])
    return ExplicitTableauValues(scheme, A, b, c, bool(tableau.fsal))


class _Kernels:
    """``f(t, y, p)``, ``(J^T w, F_p^T w)`` for the chosen parameters, and ``(dy0/dp)^T w``: safe lambdified
    functions of the model's exact expressions (scalar ``math`` evaluation with an IEEE fallback)."""

    def __init__(self, model: Model, parameters: tuple[str, ...]) -> None:
        from ..derive import derivative_matrix
        from ._adjoint import _vector_function

        n = model.n_states
        chosen = [model.symbol(name) for name in parameters]
        w = [sp.Dummy(f"w{i}") for i in range(n)]
        self.n, self.P = n, len(parameters)
        arguments = [model.time, *model.states, *model.parameters, *w]
        J = derivative_matrix(list(model.rhs), list(model.states))
        Fp = derivative_matrix(list(model.rhs), chosen)
        JT = [sp.Add(*[J[k, i] * w[k] for k in range(n) if J[k, i] != 0]) for i in range(n)]
        FpT = [sp.Add(*[Fp[k, j] * w[k] for k in range(n) if Fp[k, j] != 0]) for j in range(self.P)]
        self._rhs = _vector_function(list(model.rhs), arguments)
        self._vjp = _vector_function([*JT, *FpT], arguments)
        Y0 = derivative_matrix(list(model.initial_conditions), chosen)
        self._y0 = _vector_function(list(model.initial_conditions), arguments)
        self._y0T = _vector_function([sp.Add(*[Y0[k, j] * w[k] for k in range(n) if Y0[k, j] != 0])
                                      for j in range(self.P)], arguments) if self.P else None

    def rhs(self, t: float, y: np.ndarray, p: list[float]) -> np.ndarray:
        return self._rhs(t, *y.tolist(), *p, *([0.0] * self.n))

    def vjp(self, t: float, y: np.ndarray, p: list[float], w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._vjp(t, *y.tolist(), *p, *w.tolist())
        return out[: self.n], out[self.n:]

    def initial(self, t0: float, p: list[float]) -> np.ndarray:
        return self._y0(t0, *([0.0] * self.n), *p, *([0.0] * self.n))

    def initial_vjp(self, t0: float, p: list[float], w: np.ndarray) -> np.ndarray:
        if self._y0T is None:
            return np.zeros(0)
        return self._y0T(t0, *([0.0] * self.n), *p, *w.tolist())


@lru_cache(maxsize=16)
def _kernels(model: Model, parameters: tuple[str, ...]) -> _Kernels:
    return _Kernels(model, parameters)


@dataclass(frozen=True, eq=False)
class DiscreteAdjointRun:
    """The outcome of :func:`discrete_adjoint_erk`.

    ``gradient`` is ``(dy0/dp)^T ybar_0 + pbar`` for the chosen parameters (without the loss's direct
    ``dl/dp``); ``outputs`` the replayed solution at the output times (to compare with the compiled solve);
    ``checkpoint_every``/``checkpoints`` the schedule; ``stored_numbers`` the peak count of stored floats
    (checkpoints plus one block's stages); ``rhs_evaluations`` (forward replay and recomputation) and
    ``vjp_evaluations`` (transposed products) the work.  ``schedule`` is ``"uniform"`` or ``"binomial"`` (then
    ``checkpoint_every`` is 0 and ``checkpoints`` the snapshots used).  ``jacobian_evaluations`` and
    ``newton_iterations`` (SDIRK/ESDIRK, Radau IIA, BDF; None for the others): the Jacobian evaluations and Newton
    iterations of the forward replay (its first pass, rejected attempts re-enacted included), counted as the
    compiled solve counts them in ``Solution.stats``: equal counts mean the replay re-enacted the solve's path.
    """

    gradient: np.ndarray
    outputs: np.ndarray
    steps: int
    checkpoint_every: int
    checkpoints: int
    stored_numbers: int
    rhs_evaluations: int
    vjp_evaluations: int
    schedule: str = "uniform"
    jacobian_evaluations: int | None = None
    newton_iterations: int | None = None


def default_checkpoint_interval(steps: int, stages: int) -> int:
    """``k = ceil(sqrt(M / s))``: balances the ``M / k`` checkpoints against the ``k s`` stages of one block."""
    return max(1, int(math.ceil(math.sqrt(max(steps, 1) / max(stages, 1)))))


class CountedKernels:
    """One run's view of the shared :class:`_Kernels`: the parameter values fixed, each ``f`` and ``(J^T w,
    F_p^T w)`` evaluation counted (per run, since the kernels are shared between threads)."""

    def __init__(self, kernels: _Kernels, p: Sequence[float] | np.ndarray) -> None:
        self.kernels = kernels
        self.p_list = [float(v) for v in np.asarray(p, dtype=float)]
        self.rhs_count = 0
        self.vjp_count = 0

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        self.rhs_count += 1
        return self.kernels.rhs(t, y, self.p_list)

    def vjp(self, t: float, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.vjp_count += 1
        return self.kernels.vjp(t, y, self.p_list, w)

    def second_order(self, second: Any, t: float, y: np.ndarray, jacobian_cotangent: np.ndarray,
                     time_cotangent: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(d/dy, d/dp)`` of ``<Jbar, J(t, y, p)> + <qbar, f_t(t, y, p)>``: the cotangents of a Jacobian's
        non-zeros (and of ``f_t``) taken back to the point where it was evaluated; one counted product."""
        self.vjp_count += 1
        qbar = np.zeros(len(y)) if time_cotangent is None else time_cotangent
        return second.second_order(t, y, self.p_list, jacobian_cotangent, qbar)

    def run(self, t0: float, ybar0: np.ndarray, pbar: np.ndarray, outputs: np.ndarray, steps: int,
            checkpoint_every: int, checkpoints: int, peak: int) -> "DiscreteAdjointRun":
        """The finished reverse pass: ``gradient = (dy0/dp)^T ybar_0 + pbar`` with the run's schedule and work."""
        gradient = pbar + (self.kernels.initial_vjp(t0, self.p_list, ybar0) if self.kernels.P else 0.0)
        return DiscreteAdjointRun(np.asarray(gradient, dtype=float), outputs, steps, checkpoint_every, checkpoints,
                                  int(peak), self.rhs_count, self.vjp_count)


def replay_inputs(step_times: np.ndarray, step_sizes: np.ndarray, output_times: np.ndarray, cotangents: np.ndarray,
                  n: int, checkpoint_every: int | None, block_work: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The recorded steps, outputs and cotangents as arrays, checked, and the checkpoint interval
    (default :func:`default_checkpoint_interval` with ``block_work`` stored vectors per step):
    ``(step_times, step_sizes, output_times, cotangents (K x n), checkpoint_every)``."""
    step_times = np.asarray(step_times, dtype=float)
    step_sizes = np.asarray(step_sizes, dtype=float)
    M = len(step_sizes)
    if len(step_times) != M + 1:
        raise ValueError(f"`step_times` must have one entry more than `step_sizes` ({M + 1}), got {len(step_times)}")
    output_times = np.asarray(output_times, dtype=float)
    if output_times.ndim != 1:
        raise ValueError(f"`output_times` must be one-dimensional, got shape {output_times.shape}")
    cotangents = np.asarray(cotangents, dtype=float)
    if cotangents.size != len(output_times) * n:
        raise ValueError(f"`cotangents` must have shape ({len(output_times)}, {n}) (one row of dL/dy per output "
                         f"time, one column per state), got {cotangents.shape}")
    cotangents = cotangents.reshape(len(output_times), n)
    if checkpoint_every is None:
        checkpoint_every = default_checkpoint_interval(M, block_work)
    if not (isinstance(checkpoint_every, (int, np.integer)) and checkpoint_every >= 1):
        raise ValueError(f"`checkpoint_every` must be a positive integer, got {checkpoint_every!r}")
    return step_times, step_sizes, output_times, cotangents, int(checkpoint_every)


def _hermite(theta: float) -> tuple[float, float, float, float]:
    """The cubic Hermite basis of ``symsens_solver.hpp`` in the same arithmetic order."""
    h00 = (1.0 + 2.0 * theta) * (1.0 - theta) * (1.0 - theta)
    h10 = theta * (1.0 - theta) * (1.0 - theta)
    h01 = theta * theta * (3.0 - 2.0 * theta)
    h11 = theta * theta * (theta - 1.0)
    return h00, h10, h01, h11


def write_outputs(outputs: np.ndarray, entries: Sequence[tuple[int, str, float]], h: float, y: np.ndarray,
                  f_start: np.ndarray, y_new: np.ndarray, f_end: np.ndarray) -> None:
    """Write one step's outputs as the compiled recorder does: the step's ends, or the cubic Hermite interpolant
    ``h00 y_n + h10 h f_n + h01 y_{n+1} + h11 h f_{n+1}`` inside it."""
    for k, kind, theta in entries:
        if kind == "start":
            outputs[k] = y
        elif kind == "end":
            outputs[k] = y_new
        else:
            h00, h10, h01, h11 = _hermite(theta)
            outputs[k] = h00 * y + (h10 * h) * f_start + h01 * y_new + (h11 * h) * f_end


def output_cotangents(entries: Sequence[tuple[int, str, float]], cotangents: np.ndarray, h: float, n: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The transpose of :func:`write_outputs`: one step's output cotangents ``w_k`` scattered onto
    ``(ybar_n, ybar_{n+1}, fbar_n, fbar_{n+1})`` with the Hermite weights."""
    ybar_start = np.zeros(n)
    ybar_end = np.zeros(n)
    fbar_start = np.zeros(n)
    fbar_end = np.zeros(n)
    for k, kind, theta in entries:
        w = cotangents[k]
        if kind == "start":
            ybar_start += w
        elif kind == "end":
            ybar_end += w
        else:
            h00, h10, h01, h11 = _hermite(theta)
            ybar_start += h00 * w
            fbar_start += (h10 * h) * w
            ybar_end += h01 * w
            fbar_end += (h11 * h) * w
    return ybar_start, ybar_end, fbar_start, fbar_end


def outputs_of_a_solve_without_steps(outputs: np.ndarray, output_times: np.ndarray, t0: float,
                                     y0: np.ndarray) -> None:
    """A solve of no steps reaches only t0: the outputs at t0 are ``y0`` (in place)."""
    for k, te in enumerate(output_times):
        if te == t0:
            outputs[k] = y0


def cotangent_of_a_solve_without_steps(output_times: np.ndarray, t0: float, cotangents: np.ndarray) -> np.ndarray:
    """``ybar_0`` of a solve of no steps: its outputs at t0 are ``y0`` itself, so their cotangents add up there."""
    at_start = np.asarray(output_times) == t0
    return np.asarray(cotangents, dtype=float)[at_start].sum(axis=0)


def _output_plan(step_times: np.ndarray, output_times: np.ndarray) -> list[list[tuple[int, str, float]]]:
    """Per step ``n``: the outputs it writes, as ``(k, kind, theta)`` with kind ``start`` (``t_k = t0`` on the
    first step), ``end`` (``t_k`` is the step end) or ``inner`` (Hermite at ``theta``); the rule of the compiled
    solver's recorder (an output at a step end belongs to the step ending there)."""
    M = len(step_times) - 1
    plan: list[list[tuple[int, str, float]]] = [[] for _ in range(M)]
    start: list[int] = []
    k = 0
    K = len(output_times)
    t0 = float(step_times[0])
    while k < K and output_times[k] <= t0:
        if output_times[k] == t0:
            start.append(k)
        k += 1
    for n in range(M):
        ta, tb = float(step_times[n]), float(step_times[n + 1])
        h = tb - ta
        while k < K and output_times[k] <= tb:
            te = float(output_times[k])
            if te < ta or (te == ta and n > 0):
                k += 1
                continue
            if te == tb:
                plan[n].append((k, "end", 1.0))
            elif te == ta:
                plan[n].append((k, "start", 0.0))
            else:
                plan[n].append((k, "inner", (te - ta) / h))
            k += 1
    if start and M:
        plan[0] = [(i, "start", 0.0) for i in start] + plan[0]
    return plan


def discrete_adjoint_erk(
    model: Model,
    scheme: str,
    p: Sequence[float] | np.ndarray,
    parameters: Sequence[str],
    step_times: np.ndarray,
    step_sizes: np.ndarray,
    output_times: np.ndarray,
    cotangents: np.ndarray,
    *,
    checkpoint_every: int | None = None,
    backend: str | None = None,
    checkpointing: str = "uniform",
    snapshots: int | None = None,
) -> DiscreteAdjointRun:
    """Reverse mode through an explicit Runge–Kutta solve with the given accepted steps (module docstring).

    Parameters
    ----------
    model : Model
        The model the compiled solver integrated (the quadrature-augmented one for an integral loss).
    scheme : an explicit scheme of the catalogue (``tsit5``, ``dopri5``, ``verner7``, ...).
    p : all parameter values, in the model's order.
    parameters : the parameters of the gradient, in its order.
    step_times, step_sizes : ``solution.stats.step_times`` (``t0`` then every accepted step end) and
        ``solution.stats.step_sizes`` of the compiled solve.
    output_times : the solve's ``t_eval`` (its outputs' times).
    cotangents : ndarray (K x n)
        ``dL/dy(t_k)`` of the loss at each output.
    checkpoint_every : store the state every this many steps (default :func:`default_checkpoint_interval`).
    backend : ``"compiled"`` (the C++ sweep of ``symsens_erk_adjoint.hpp`` with generated kernels),
        ``"numpy"`` (this module's sweep with lambdified kernels) or ``"auto"`` (compiled when a C++ compiler is
        found); None: the setting of :func:`erk_adjoint_backend` (default ``"auto"``).  Both compute the same
        number by the same operations, up to the kernels' own rounding.
    checkpointing : ``"uniform"`` (a checkpoint every ``checkpoint_every`` steps) or ``"binomial"`` (compiled
        backend only): ``snapshots`` states (default ``ceil(log2(M + 1))``) placed by the binomial rule of
        Griewank's ``revolve``, so that ``M`` steps are reversed with ``c`` snapshots when
        ``binom(c + r, c) >= M`` and no step is advanced more than ``r`` times: memory ``c n`` plus one step's
        stages, at up to ``r`` forward sweeps (uniform: ``(M / k + 2 k s) n`` numbers for two sweeps).  Both
        schedules give the same gradient bit for bit (the recomputed steps are the same operations).

    Returns
    -------
    DiscreteAdjointRun
    """
    tableau = explicit_tableau(scheme)
    parameters = tuple(parameters)
    if checkpointing not in ("uniform", "binomial"):
        raise ValueError(f"`checkpointing` must be 'uniform' or 'binomial', got {checkpointing!r}")
    if checkpointing == "binomial" and _resolve_backend(backend) != "compiled":
        raise ValueError("`checkpointing`: the binomial schedule is implemented in the compiled sweep only "
                         "(backend='compiled', which needs a C++ compiler)")
    if snapshots is not None and checkpointing != "binomial":
        raise ValueError("`snapshots` applies to checkpointing='binomial' only")
    if _resolve_backend(backend) == "compiled":
        from ._discrete_adjoint_erk_compiled import discrete_adjoint_erk_compiled

        return discrete_adjoint_erk_compiled(model, tableau, p, parameters, step_times, step_sizes, output_times,
                                             cotangents, checkpoint_every, checkpointing, snapshots)
    kernels = _kernels(model, parameters)
    n, P, s = kernels.n, kernels.P, tableau.stages
    counted = CountedKernels(kernels, p)
    rhs, vjp = counted.rhs, counted.vjp
    p_list = counted.p_list
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, s)
    M = len(h_all)
    A, b, c = tableau.A, tableau.b, tableau.c
    rows = [[(j, A[i, j]) for j in range(i) if A[i, j] != 0.0] for i in range(s)]
    # Stages whose cotangent can be non-zero: b_i != 0 or feeding a later stage that can be.
    live = [False] * s
    for i in range(s - 1, -1, -1):
        live[i] = b[i] != 0.0 or any(live[m] and A[m, i] != 0.0 for m in range(i + 1, s))
    t0 = float(step_times[0])
    y0 = kernels.initial(t0, p_list)

    def step(n_: int, y: np.ndarray, keep: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        t, h = float(step_times[n_]), float(h_all[n_])
        K = np.empty((s, n))
        Y = np.empty((s, n)) if keep else None
        K[0] = rhs(t, y)
        if keep:
            Y[0] = y
        for i in range(1, s):
            acc = np.zeros(n)
            for j, a in rows[i]:
                acc = acc + a * K[j]
            stage = y + h * acc
            if keep:
                Y[i] = stage
            K[i] = rhs(t + c[i] * h, stage)
        total = np.zeros(n)
        for j in range(s):
            if b[j] != 0.0:
                total = total + b[j] * K[j]
        return y + h * total, (K if keep else None), Y

    # Forward replay with checkpoints (and the outputs, to compare with the compiled solve).
    plan = _output_plan(step_times, output_times)
    outputs = np.full((len(output_times), n), np.nan)
    checkpoints: dict[int, np.ndarray] = {}
    y = y0.copy()
    for n_ in range(M):
        if n_ % kb == 0:
            checkpoints[n_] = y.copy()
        y_new, K, _ = step(n_, y, keep=bool(plan[n_]))
        if plan[n_]:
            h = float(h_all[n_])
            f_end = None
            for k, kind, theta in plan[n_]:
                if kind == "start":
                    outputs[k] = y
                elif kind == "end":
                    outputs[k] = y_new
                else:
                    if f_end is None:
                        f_end = K[s - 1] if tableau.fsal else rhs(float(step_times[n_]) + h, y_new)
                    h00, h10, h01, h11 = _hermite(theta)
                    outputs[k] = h00 * y + (h10 * h) * K[0] + h01 * y_new + (h11 * h) * f_end
        y = y_new
    if M == 0:
        outputs_of_a_solve_without_steps(outputs, output_times, t0, y0)

    # Reverse pass, block by block from the last checkpoint.
    ybar = cotangent_of_a_solve_without_steps(output_times, t0, cotangents) if M == 0 else np.zeros(n)
    pbar = np.zeros(P)
    peak = len(checkpoints) * n
    for start in sorted(checkpoints, reverse=True):
        stop = min(start + kb, M)
        y = checkpoints[start]
        block: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for n_ in range(start, stop):
            y_new, K, Y = step(n_, y, keep=True)
            block.append((y, y_new, K, Y))
            y = y_new
        peak = max(peak, len(checkpoints) * n + len(block) * (2 * s + 2) * n)
        for n_ in range(stop - 1, start - 1, -1):
            y_n, y_next, K, Y = block[n_ - start]
            t, h = float(step_times[n_]), float(h_all[n_])
            ybar_n, ybar_end, fbar_start, fbar_end = output_cotangents(plan[n_], cotangents, h, n)
            ybar = ybar + ybar_end
            if np.any(fbar_end):
                JT, FpT = vjp(t + h, y_next, fbar_end)
                ybar = ybar + JT
                pbar += FpT
            # The stage cotangents: kbar_i = h b_i ybar_{n+1} + h sum_{m>i} a_mi Ybar_m.
            kbar = (h * b)[:, None] * ybar[None, :]
            kbar[0] += fbar_start   # f_n = k_1 of the step (FSAL or not: the same function of y_n)
            ybar_n += ybar
            for i in range(s - 1, -1, -1):
                if not live[i] and not (i == 0 and np.any(fbar_start)):
                    continue
                if not np.any(kbar[i]):
                    continue
                JT, FpT = vjp(t + c[i] * h, Y[i], kbar[i])
                pbar += FpT
                ybar_n += JT
                for j, a in rows[i]:
                    kbar[j] += (h * a) * JT
            ybar = ybar_n
        del block
    return counted.run(t0, ybar, pbar, outputs, M, kb, len(checkpoints), peak)


#: ``backend=`` values of :func:`discrete_adjoint_erk` and :func:`discrete_adjoint`.
ERK_BACKENDS: tuple[str, ...] = ("auto", "compiled", "numpy")

_backend_setting: contextvars.ContextVar[str] = contextvars.ContextVar("symsens_erk_adjoint_backend",
                                                                       default="auto")


def _check_backend(backend: object) -> str:
    if not isinstance(backend, str) or backend not in ERK_BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(map(repr, ERK_BACKENDS))}, got {backend!r}")
    return backend


@contextlib.contextmanager
def discrete_adjoint_backend(backend: str) -> Iterator[None]:
    """Within the ``with`` block (this thread or task), discrete adjoints called without ``backend=``
    (as :func:`symsens.gradient` and the audit call them) run on ``backend``: ``"compiled"``, ``"numpy"`` or
    ``"auto"``.  ``symsens.gradient(..., method="adjoint-discrete", backend=...)`` sets it for one call."""
    token = _backend_setting.set(_check_backend(backend))
    try:
        yield
    finally:
        _backend_setting.reset(token)


#: The name under which the explicit family introduced the setting.
erk_adjoint_backend = discrete_adjoint_backend


def _resolve_backend(backend: str | None) -> str:
    """``"compiled"`` or ``"numpy"``: ``auto`` is compiled when a C++ compiler is found."""
    chosen = _backend_setting.get() if backend is None else _check_backend(backend)
    if chosen != "auto":
        return chosen
    from ..codegen._build import find_compiler
    from ..codegen._printer import CodegenError

    try:
        find_compiler()
    except CodegenError:
        return "numpy"
    return "compiled"


#: The compiled families with a discrete adjoint (``MethodSpec.family``).
DISCRETE_ADJOINT_FAMILIES: tuple[str, ...] = ("explicit", "rosenbrock", "dirk", "radau", "bdf")


def discrete_adjoint_family(scheme: str) -> str | None:
    """The compiled family of ``scheme`` when it has a discrete adjoint, else None (also for an unknown name)."""
    from ._compiled import _ALIASES, method_spec

    try:
        family = method_spec(_ALIASES.get(scheme, scheme)).family
    except Exception:
        return None
    return family if family in DISCRETE_ADJOINT_FAMILIES else None


#: The implicit families whose discrete adjoint has a compiled sweep (module ``_discrete_adjoint_<family>_compiled``,
#: function ``discrete_adjoint_<family>_compiled``, the NumPy function's arguments and result).
_COMPILED_IMPLICIT_FAMILIES: tuple[str, ...] = ("rosenbrock", "dirk", "radau", "bdf")


def discrete_adjoint(
    model: Model,
    scheme: str,
    p: Sequence[float] | np.ndarray,
    parameters: Sequence[str],
    step_times: np.ndarray,
    step_sizes: np.ndarray,
    output_times: np.ndarray,
    cotangents: np.ndarray,
    *,
    rtol: float,
    atol: float,
    replayed: bool = False,
    checkpoint_every: int | None = None,
    backend: str | None = None,
) -> DiscreteAdjointRun:
    """Reverse mode through the accepted steps of a compiled solve with ``scheme``: explicit Runge–Kutta
    (:func:`discrete_adjoint_erk`), Rosenbrock, SDIRK/ESDIRK, Radau IIA or BDF (their modules).  ``rtol``/``atol`` are
    the solve's (the Newton replay of SDIRK, Radau and BDF needs them); ``replayed``: the steps were replayed
    (``solve(replay_steps=...)``: Newton budget 20) rather than chosen adaptively.  A ValueError names a scheme
    without a discrete adjoint.  ``backend``: ``"compiled"`` (the C++ sweep of the family, built once for every
    model), ``"numpy"`` (the NumPy sweep, the same arithmetic in the same order) or ``"auto"``/None (compiled
    when a C++ compiler is found; :func:`discrete_adjoint_backend` sets it for a block of calls)."""
    import importlib

    family = discrete_adjoint_family(scheme)
    arguments = (model, scheme, p, parameters, step_times, step_sizes, output_times, cotangents)
    if family == "explicit":
        return discrete_adjoint_erk(*arguments, checkpoint_every=checkpoint_every, backend=backend)
    if family is None:
        raise ValueError(f"`scheme`: the discrete adjoint covers the compiled explicit Runge–Kutta, Rosenbrock, "
                         f"SDIRK/ESDIRK, Radau IIA and BDF schemes; {scheme!r} is not one of them")
    options: dict[str, Any] = {"checkpoint_every": checkpoint_every}
    if family != "rosenbrock":
        options.update(rtol=rtol, atol=atol, replayed=replayed)
    compiled = family in _COMPILED_IMPLICIT_FAMILIES and _resolve_backend(backend) == "compiled"
    if backend is not None and _check_backend(backend) == "compiled" and not compiled:
        raise ValueError(f"`backend`: {scheme!r} has no compiled discrete adjoint; use backend='numpy' or 'auto'")
    suffix = "_compiled" if compiled else ""
    module = importlib.import_module(f"._discrete_adjoint_{family}{suffix}", __package__)
    return getattr(module, f"discrete_adjoint_{family}{suffix}")(*arguments, **options)
