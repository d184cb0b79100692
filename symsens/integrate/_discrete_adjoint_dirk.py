"""The discrete adjoint of SDIRK/ESDIRK solves: reverse mode through the accepted steps' Newton iterations.

A compiled diagonally implicit solve (``symsens_dirk.hpp``) takes, with the step ``h`` held constant, for each
implicit stage ``i`` (``a_ii = gamma``; ESDIRK: ``k_1 = f(t_n, y_n)``)

    base_i = y_n + h sum_{j<i} a_ij k_j,     Z^0 = base_i + h gamma g_i   (g_1 = f(t_n, y_n), g_i = k_(i-1))
    r^q = base_i + h gamma f(t_n + c_i h, Z^q) - Z^q,   x^q = M^-1 r^q,   Z^(q+1) = Z^q + x^q     (q < K_i)
    k_i = (Z^(K_i) - base_i) / (h gamma),       M = I - h gamma J(t_m, y_m, p)
    y_{n+1} = Z_s^(K_s) (stiffly accurate) or y_n + h sum_i b_i k_i,

with the iteration counts ``K_i`` chosen by the monitor on values and ``J`` kept from the start of an earlier
accepted step ``m <= n`` (re-evaluated after slow convergence, or when Newton fails with an old ``J``).  The
discrete forward mode differentiates exactly this program (:mod:`._discrete_adjoint_newton`).  Its reverse, from
the last stage back, for each Newton iteration from the last back (``Zbar`` starting at ``kbar_i / (h gamma)``
plus ``ybar_{n+1}`` for the last stage of a stiffly accurate method):

    rbar = M^-T Zbar,   Jbar_m += h gamma rbar (x^q)^T,   basebar += rbar,
    Zbar <- Zbar - rbar + J(Z^q)^T (h gamma rbar),   pbar += F_p(Z^q)^T (h gamma rbar)

then ``basebar += Zbar - kbar_i / (h gamma)``, ``gbar += h gamma Zbar`` and ``base``'s inputs
(``ybar_n``, ``kbar_j += h a_ij basebar``).  The cotangent ``Jbar_m`` of a kept Jacobian is collected over all the
steps that used it and applied at step ``m`` as the exact gradient of ``sum_kl Jbar_kl J_kl(t_m, y_m, p)``
(second derivatives from SymPy, on ``J``'s pattern).  This is FATODE's SDIRK adjoint (Zhang & Sandu 2014) taken
through the iterations actually performed instead of through the converged stage equations: the two differ by
terms of the size of the Newton error, and only the former equals the forward mode to rounding.

The replay runs the stepper's algorithm in NumPy on the recorded steps: the same starting values, Newton monitor,
weights ``1 / (atol + rtol |y_n|)``, Jacobian reuse, refresh and retry rules, with the iteration budget of an
adaptive solve (7) or of a replayed one (20).  The compiled solve records only its accepted steps, but a Newton
failure in a *rejected* attempt makes the stepper re-evaluate ``J`` at ``y_n`` for the accepted one; so for an
adaptive solve the replay re-enacts the controller (:class:`._discrete_adjoint_newton.Controller`: the wish from
the last accepted step's error estimate, the rejected attempts' errors, the landing rule on ``t1``) until it lands
on the recorded step, and takes the Jacobian those attempts left; the attempts rejected before the first accepted
step are re-enacted from the solve's initial step size (:func:`._discrete_adjoint_newton.initial_step`).  The
replay counts its Jacobian evaluations and Newton iterations (one per ``f`` in a Newton loop, a diverged one
included) as the compiled solve counts them in ``Solution.stats``: on the solve's path it re-enacts every attempt,
so the counts are equal (``DiscreteAdjointRun.jacobian_evaluations``/``newton_iterations``, compared by the
audit), and a different count proves a path it did not reproduce (another controller setting such as ``max_step``,
or a decision at the edge of the replay's rounding), even when its states agree with the compiled outputs
(``DiscreteAdjointRun.outputs``) to rounding; a Newton solve that fails in the replay raises :class:`ReplayError`.
With ``symsens.solve(replay_steps=...)`` (no rejections) the agreement is exact by construction.

Memory: uniform checkpointing as in the explicit-RK adjoint: ``y_n``, ``f(t_n, y_n)`` and the kept Jacobian every
``k`` steps; a block is re-run from its checkpoint keeping its stages ``k_i`` and every Newton iterate ``Z^q``
and correction ``x^q`` (``sum_i 2 K_i n`` numbers per step), then reversed.

References
----------
E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, Sect. IV.6, IV.8.
H. Zhang and A. Sandu, "FATODE: a library for forward, adjoint, and tangent linear integration of ODEs",
SIAM J. Sci. Comput. 36(5) (2014) C504-C523.
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing; Ch. 15,
derivatives of iterative solvers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import math

import numpy as np
import sympy as sp
from scipy.linalg import lu_factor, lu_solve

from ..model import Model
from ._discrete_adjoint import CountedKernels, DiscreteAdjointRun, _kernels, _output_plan, output_cotangents, \
    outputs_of_a_solve_without_steps, cotangent_of_a_solve_without_steps, replay_inputs, write_outputs
from ._discrete_adjoint_newton import ADAPTIVE_BUDGET, REPLAY_BUDGET, Controller, KeptJacobian, NewtonMonitor, \
    ReplayError, error_norm, initial_step, same_step, weighted_norm
from ._discrete_adjoint_rosenbrock import _second_order_kernels

__all__ = ["discrete_adjoint_dirk", "dirk_coefficients", "DirkCoefficients"]


@dataclass(frozen=True)
class DirkCoefficients:
    """A diagonally implicit tableau in double precision, as ``symsens_dirk.hpp`` receives it."""

    name: str
    A: np.ndarray
    b: np.ndarray
    c: np.ndarray
    gamma: float
    explicit_first_stage: bool
    stiffly_accurate: bool
    e: np.ndarray          # b - bhat (all zero without an embedded pair)

    @property
    def stages(self) -> int:
        return len(self.b)


@lru_cache(maxsize=16)
def dirk_coefficients(scheme: str) -> DirkCoefficients:
    """The coefficients of the SDIRK/ESDIRK ``scheme`` (a ValueError names a scheme that is not one)."""
    from ..schemes import get_scheme

    try:
        tableau = get_scheme(scheme)
    except Exception as error:
        raise ValueError(f"`scheme`: {error}") from None
    if getattr(tableau, "family", None) not in ("sdirk", "esdirk"):
        raise ValueError(f"`scheme`: {scheme!r} is not a diagonally implicit scheme "
                         f"({getattr(tableau, 'family', type(tableau).__name__)!r})")

    def value(x: sp.Expr) -> float:
        return float(sp.N(x, 30))

    s = tableau.stages
    A = np.array([[value(tableau.A[i][j]) for j in range(s)] for i in range(s)])
    b = np.array([value(v) for v in tableau.b])
    c = np.array([value(v) for v in tableau.c])
    stiff = bool(np.all(A[s - 1] == b))
    # e = b - bhat, differenced exactly and then rounded (as the generator prints it).
    e = np.zeros(s) if tableau.b_error is None else \
        np.array([value(bi - bh) for bi, bh in zip(tableau.b, tableau.b_error)])
    return DirkCoefficients(scheme, A, b, c, value(tableau.A[s - 1][s - 1]), tableau.family == "esdirk", stiff, e)


@dataclass
class _Stage:
    jacobian: KeptJacobian
    iterates: list[np.ndarray]      # Z^0 .. Z^(K-1): where f was evaluated
    corrections: list[np.ndarray]   # x^0 .. x^(K-1)


def discrete_adjoint_dirk(
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
) -> DiscreteAdjointRun:
    """Reverse mode through an SDIRK/ESDIRK solve with the given accepted steps (module docstring).

    Arguments as :func:`symsens.integrate._discrete_adjoint.discrete_adjoint_erk`, plus the solve's ``rtol`` and
    ``atol`` (the Newton weights and tolerance) and ``replayed``: the Newton budget of a solve with replayed
    steps (20) instead of an adaptive one (7).

    Raises
    ------
    ReplayError
        When a Newton solve the compiled solver completed does not converge in the replay.
    """
    coef = dirk_coefficients(scheme)
    parameters = tuple(parameters)
    kernels = _kernels(model, parameters)
    second = _second_order_kernels(model, parameters)
    n, P, s = kernels.n, kernels.P, coef.stages
    counted = CountedKernels(kernels, p)
    p_list = counted.p_list
    rtol, atol = float(rtol), float(atol)
    monitor = NewtonMonitor(rtol, REPLAY_BUDGET if replayed else ADAPTIVE_BUDGET["dirk"])
    rhs, vjp = counted.rhs, counted.vjp
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, 4 * s)
    M = len(h_all)
    A, b, c, gamma, e = coef.A, coef.b, coef.c, coef.gamma, coef.e
    controller = None if replayed or not np.any(e) else Controller.of(scheme)
    t_end = float(step_times[-1])
    rows = [[(j, A[i, j]) for j in range(i) if A[i, j] != 0.0] for i in range(s)]
    t0 = float(step_times[0])
    y0 = kernels.initial(t0, p_list)

    # The forward replay's decisions, counted as the compiled solve counts them (``njev``, and one Newton iteration
    # per right-hand side evaluated in a Newton loop, the one that diverged included): equal counts over the first
    # pass are the replay's proof that it re-enacted every attempt of the solve.
    decisions = {"jacobian_evaluations": 0, "newton_iterations": 0}

    def evaluate(n_: int, t: float, y: np.ndarray) -> KeptJacobian:
        decisions["jacobian_evaluations"] += 1
        return KeptJacobian(n_, second.jacobian(t, y, p_list))

    def lu_of(jac: KeptJacobian, hg: float):  # noqa: ANN202
        lu = jac.factors.get(hg)
        if lu is None:
            lu = lu_factor(np.eye(n) - hg * jac.J, check_finite=False)
            jac.factors[hg] = lu
        return lu

    def newton(t_stage: float, hg: float, base: np.ndarray, guess: np.ndarray, lu, weights: np.ndarray,
               stage: _Stage) -> tuple[np.ndarray | None, bool]:  # noqa: ANN001
        """``(Z, slow)`` or ``(None, False)`` when the monitor gives up; iterates recorded in ``stage``."""
        Z = base + hg * guess
        monitor.start()
        while True:
            F = rhs(t_stage, Z)
            decisions["newton_iterations"] += 1
            if not np.all(np.isfinite(F)):
                return None, False
            x = lu_solve(lu, base + hg * F - Z, check_finite=False)
            verdict = monitor.check(weighted_norm(x, weights))
            if verdict < 0:
                return None, False
            stage.iterates.append(Z)
            stage.corrections.append(x)
            Z = Z + x
            if verdict > 0:
                return Z, monitor.iterations > 2 and monitor.rate > 1e-3

    def attempt(n_: int, h: float, y: np.ndarray, f: np.ndarray, jac: KeptJacobian, current: bool,
                weights: np.ndarray):  # noqa: ANN202
        """One attempt at ``h``: ``(y_new or None, K, stages, jac, current, slow, lu)`` (None: Newton failed)."""
        t = float(step_times[n_])
        hg = h * gamma
        slow = False
        lu = lu_of(jac, hg)
        K = np.empty((s, n))
        stages: list[_Stage | None] = [None] * s
        Z = y
        for st in range(s):
            if st == 0 and coef.explicit_first_stage:
                K[0] = f
                continue
            acc = np.zeros(n)
            for j, a in rows[st]:
                acc = acc + a * K[j]
            base = y + h * acc
            guess = f if st == 0 else K[st - 1]
            t_stage = t + c[st] * h
            record = _Stage(jac, [], [])
            Z, stage_slow = newton(t_stage, hg, base, guess, lu, weights, record)
            if Z is None and not current:
                jac = evaluate(n_, t, y)
                current = True
                lu = lu_of(jac, hg)
                record = _Stage(jac, [], [])
                Z, stage_slow = newton(t_stage, hg, base, guess, lu, weights, record)
            if Z is None:
                return None, K, stages, jac, current, False, lu
            slow = slow or stage_slow
            stages[st] = record
            K[st] = (Z - base) / hg
        if coef.stiffly_accurate:
            y_new = Z
        else:
            acc = np.zeros(n)
            for j in range(s):
                if b[j] != 0.0:
                    acc = acc + b[j] * K[j]
            y_new = y + h * acc
        return y_new, K, stages, jac, current, slow, lu

    def error_of(h: float, y: np.ndarray, y_new: np.ndarray, K: np.ndarray, lu) -> float:  # noqa: ANN001
        """The controller's error of an attempt: ``(I - h gamma J)^-1 h sum_i e_i k_i`` in the error norm."""
        if not np.any(e):
            return 0.0
        acc = np.zeros(n)
        for j in range(s):
            if e[j] != 0.0:
                acc = acc + e[j] * K[j]
        return error_norm(lu_solve(lu, h * acc, check_finite=False), y, y_new, rtol, atol)

    def step(n_: int, state: tuple):  # noqa: ANN202
        """One accepted step from ``state = (y, f, jac, refresh, h_wish, previous_error)``: ``(state, K, stages)``.
        For an adaptive solve the attempts its controller rejected before the step are re-enacted first: one of
        them may have re-evaluated the Jacobian (at ``y_n``)."""
        y, f, jac, refresh, h_wish, previous = state
        t, h = float(step_times[n_]), float(h_all[n_])
        current = False
        if jac is None or refresh:
            jac = evaluate(n_, t, y)
            current = True
        weights = 1.0 / (atol + rtol * np.abs(y))
        if not replayed and h_wish is not None and controller is not None:
            saved = (jac, current)
            reproduced = False
            for _ in range(50):
                h_try = Controller.landed(t, h_wish, t_end)
                if same_step(h_try, h):
                    reproduced = True
                    break
                y_try, K_try, _, jac, current, _, lu_try = attempt(n_, h_try, y, f, jac, current, weights)
                error = math.nan if y_try is None or not np.all(np.isfinite(y_try)) else \
                    error_of(h_try, y, y_try, K_try, lu_try)
                if not math.isfinite(error):
                    h_wish = h_try * 0.25
                    continue
                if error <= 1.0:
                    break       # the controller would have accepted it: not the recorded path
                h_wish = controller.rejected(h_try, error)
            if not reproduced:  # another controller setting (max_step, step_onto_outputs): no rejections assumed
                jac, current = saved
        y_new, K, stages, jac, current, slow, lu = attempt(n_, h, y, f, jac, current, weights)
        if y_new is None:
            raise ReplayError(f"Newton did not converge in step {n_ + 1} at t = {t:g} (h = {h:g}) of the replayed "
                              f"{scheme} solve")
        if controller is not None:
            h_wish, previous = controller.accepted(h, error_of(h, y, y_new, K, lu), previous)
        return (y_new, rhs(t + h, y_new), jac, slow, h_wish, previous), K, stages

    # Forward replay with checkpoints and the outputs.
    plan = _output_plan(step_times, output_times)
    outputs = np.full((len(output_times), n), np.nan)
    checkpoints: dict[int, tuple] = {}
    y = y0.copy()
    f = rhs(t0, y)
    # The first wish is the solve's initial step: the attempts rejected before the first acceptance cannot refresh J
    # (the first Jacobian is current until then), but their Newton iterations are the solve's.
    h_first = None if controller is None or M == 0 else \
        initial_step(rhs, t0, t_end, y, f, controller.error_order, rtol, atol)
    state: tuple = (y, f, None, False, h_first, 1e-4)
    for n_ in range(M):
        if n_ % kb == 0:
            checkpoints[n_] = state
        state, _, _ = step(n_, state)
        y_new, f_new = state[0], state[1]
        h = float(h_all[n_])
        write_outputs(outputs, plan[n_], h, y, f, y_new, f_new)
        y, f = y_new, f_new
    if M == 0:
        outputs_of_a_solve_without_steps(outputs, output_times, t0, y0)
    first_pass = dict(decisions)

    # Reverse pass, block by block; Jacobian cotangents wait for the step where their J was evaluated.
    ybar = cotangent_of_a_solve_without_steps(output_times, t0, cotangents) if M == 0 else np.zeros(n)
    pbar = np.zeros(P)
    jbars: dict[int, np.ndarray] = {}
    peak = 0
    for start in sorted(checkpoints, reverse=True):
        stop = min(start + kb, M)
        state = checkpoints[start]
        block = []
        stored = 0
        for n_ in range(start, stop):
            y = state[0]
            state, K, stages = step(n_, state)
            block.append((y, K, stages))
            stored += (s + 1) * n + sum(2 * len(st.iterates) * n for st in stages if st is not None)
        y = state[0]
        peak = max(peak, len(checkpoints) * (2 * n + n * n) + stored)
        y_next = y
        for n_ in range(stop - 1, start - 1, -1):
            y_n, K, stages = block[n_ - start]
            t, h = float(step_times[n_]), float(h_all[n_])
            hg = h * gamma
            ybar_n, ybar_end, fbar_n, fbar_end = output_cotangents(plan[n_], cotangents, h, n)
            ybar = ybar + ybar_end
            if np.any(fbar_end):
                JT, FpT = vjp(t + h, y_next, fbar_end)
                ybar = ybar + JT
                pbar += FpT
            kbar = np.zeros((s, n))
            zbar_last = np.zeros(n)
            if coef.stiffly_accurate:
                zbar_last = ybar
            else:
                ybar_n += ybar
                for j in range(s):
                    if b[j] != 0.0:
                        kbar[j] += (h * b[j]) * ybar
            for st in range(s - 1, -1, -1):
                record = stages[st]
                if record is None:                  # ESDIRK: k_1 = f(t_n, y_n)
                    fbar_n += kbar[0]
                    continue
                Zbar = kbar[st] / hg + (zbar_last if st == s - 1 else 0.0)
                basebar = -kbar[st] / hg
                lu = lu_of(record.jacobian, hg)
                point = record.jacobian.point
                jbar = jbars.setdefault(point, np.zeros(len(second.pattern)))
                t_stage = t + c[st] * h
                for Zq, xq in zip(reversed(record.iterates), reversed(record.corrections)):
                    rbar = lu_solve(lu, Zbar, trans=1, check_finite=False)
                    if len(jbar):
                        jbar += hg * (rbar[second.rows] * xq[second.cols])
                    basebar = basebar + rbar
                    JT, FpT = vjp(t_stage, Zq, hg * rbar)
                    Zbar = Zbar - rbar + JT
                    pbar += FpT
                basebar = basebar + Zbar
                if st == 0:
                    fbar_n += hg * Zbar
                else:
                    kbar[st - 1] += hg * Zbar
                ybar_n += basebar
                for j, a in rows[st]:
                    kbar[j] += (h * a) * basebar
            if np.any(fbar_n):
                JT, FpT = vjp(t, y_n, fbar_n)
                ybar_n += JT
                pbar += FpT
            if n_ in jbars:
                gy, gp = counted.second_order(second, t, y_n, jbars.pop(n_))
                ybar_n += gy
                pbar += gp
            ybar = ybar_n
            y_next = y_n
        del block
    return replace(counted.run(t0, ybar, pbar, outputs, M, kb, len(checkpoints), peak), **first_pass)
