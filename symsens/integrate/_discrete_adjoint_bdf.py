"""The discrete adjoint of BDF/NDF solves: reverse mode through the accepted steps, the difference array and the
Newton iterations.

The compiled BDF (``symsens_bdf.hpp``: variable order 1-5, NDF, Shampine & Reichelt 1997 as SciPy's ``BDF``)
carries the backward differences ``D_0 .. D_(k+2)`` of its interpolating polynomial.  With the step sizes held,
one accepted step of order ``k`` is

    D[0..k] <- (R(h_new / h_old) U)^T D[0..k]                    when the step size changes (S&R 1997, 2.3)
    y_pred = sum_{j<=k} D_j,   psi = (1/alpha_k) sum_{1<=j<=k} gamma_j D_j,   c = h / alpha_k
    d^0 = 0, Y^0 = y_pred;  for q < K:  x^q = M^-1 (c f(t_new, Y^q) - psi - d^q),  Y^(q+1) = Y^q + x^q,
                                        d^(q+1) = d^q + x^q,       M = I - c J
    D_(k+2) = d - D_(k+1),  D_(k+1) = d,  D_j += D_(j+1) (j = k..0)       (d = d^K, y_(n+1) = D_0)

and the outputs are the step's polynomial ``D_0 + sum_j p_j D_j``.  The order sequence and the iteration counts
are decided on values; ``J`` is evaluated once at ``(t_0, y_0)`` and re-evaluated at ``(t_new, y_pred)`` of a
step whose Newton iteration failed with an older one.  Forward-mode AD through the solver differentiates exactly
this program; the reverse here is its transpose operation by operation (every map but ``f`` and ``J`` is linear
with constant coefficients): the Newton iterations as in the SDIRK adjoint
(:mod:`symsens.integrate._discrete_adjoint_dirk`: ``rbar = M^-T xbar``, ``Jbar += c rbar (x^q)^T``,
``psibar -= rbar``, ``Ybar += J(Y^q)^T c rbar``), the difference update and the re-sampling transposed, and
the Jacobian's cotangent applied at the point where it was evaluated (``y_0`` or that step's ``y_pred``; second
derivatives from SymPy).  At the start ``D_0 = y_0`` and ``D_1 = h_1 f(t_0, y_0)``.

The replay runs the stepper's algorithm in NumPy on the recorded steps: re-sampling, predictor, Newton monitor
(budget 4 adaptive, 20 replayed), Jacobian refresh, and the order selection from the error estimates of orders
``k - 1, k, k + 1`` after ``k + 1`` equal steps.  As for SDIRK and Radau, the compiled solve records only its accepted
steps, so for an adaptive solve the replay re-enacts the attempts its controller rejected (a Jacobian re-evaluated
in one, at that attempt's ``y_pred``, is used by the accepted step), from the solve's initial step size before the
first accepted step; its Jacobian evaluations and Newton iterations equal the solve's ``Solution.stats`` when it
took the solve's path (see :mod:`._discrete_adjoint_dirk`).  With ``symsens.solve(replay_steps=...)`` the
agreement is exact by construction.

Memory: checkpoints of the difference array (``8 n``), the order, the equal-step count and the kept Jacobian
every ``k`` steps; a block keeps each step's predictor, Newton iterates and corrections.

References
----------
L. F. Shampine and M. W. Reichelt, "The MATLAB ODE suite", SIAM J. Sci. Comput. 18 (1997) 1-22.
E. Hairer, S. P. Nørsett and G. Wanner, *Solving Ordinary Differential Equations I*, Sect. III.1-III.2.
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import lu_factor, lu_solve

from ..model import Model
from ._discrete_adjoint import CountedKernels, DiscreteAdjointRun, _kernels, replay_inputs
from ._discrete_adjoint_newton import REPLAY_BUDGET, KeptJacobian, NewtonMonitor, ReplayError, initial_step, \
    same_step, weighted_norm
from ._discrete_adjoint_rosenbrock import _second_order_kernels

__all__ = ["discrete_adjoint_bdf", "bdf_coefficients"]

_ADAPTIVE_BUDGET = 4    # Bdf::NEWTON_MAXITER
_MIN_FACTOR = 0.2
_MAX_FACTOR = 10.0
_MAX_ORDER = 5
_ROWS = 8


def bdf_coefficients() -> tuple[list[float], list[float], list[float]]:
    """``(gamma, alpha, error_const)`` of the NDF of orders 0..6, formed as ``bdf_coefficients<double>(true)``."""
    kappa = [0.0, -37.0 / 200.0, -1.0 / 9.0, -823.0 / 10000.0, -83.0 / 2000.0, 0.0, 0.0]
    gamma = [0.0] * 7
    for k in range(1, 7):
        gamma[k] = gamma[k - 1] + 1.0 / float(k)
    alpha = [(1.0 - kappa[k]) * gamma[k] for k in range(7)]
    error_const = [kappa[k] * gamma[k] + 1.0 / float(k + 1) for k in range(7)]
    return gamma, alpha, error_const


def _resampling(k: int, factor: float) -> np.ndarray:
    """``R(factor) U`` ((k+1) x (k+1)) in the order of operations of ``Bdf::change_D``."""
    def compute(f: float) -> list[list[float]]:
        M = [[0.0] * (k + 1) for _ in range(k + 1)]
        for j in range(k + 1):
            M[0][j] = 1.0
        for i in range(1, k + 1):
            M[i][0] = 0.0
            for j in range(1, k + 1):
                M[i][j] = M[i - 1][j] * ((float(i - 1) - f * float(j)) / float(i))
        return M

    R, U = compute(factor), compute(1.0)
    RU = np.zeros((k + 1, k + 1))
    for i in range(k + 1):
        for j in range(k + 1):
            acc = 0.0
            for l_ in range(k + 1):
                acc = acc + R[i][l_] * U[l_][j]
            RU[i, j] = acc
    return RU


def _error_norm(err: np.ndarray, y: np.ndarray, rtol: float, atol: float) -> float:
    """``error_norm(err, y, y)`` of ``symsens_solver.hpp`` (values only), summed in its order."""
    total = 0.0
    for e, v in zip(err.tolist(), y.tolist()):
        scale = atol + rtol * abs(v)
        total += e * e / (scale * scale)
    return math.sqrt(total / max(len(err), 1))


@dataclass
class _Step:
    order: int
    resampling: np.ndarray | None     # R U of a step-size change before the step
    y_pred: np.ndarray
    c: float
    jacobian: KeptJacobian
    refreshed: KeptJacobian | None    # J evaluated at this step's (t_new, y_pred)
    iterates: list[np.ndarray]        # Y^0 .. Y^(K-1)
    corrections: list[np.ndarray]     # x^0 .. x^(K-1)
    rejected: list[_Step] | None = None   # the controller's rejected attempts before this step, in order


def discrete_adjoint_bdf(
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
    """Reverse mode through a BDF solve with the given accepted steps (module docstring); arguments as
    :func:`symsens.integrate._discrete_adjoint_dirk.discrete_adjoint_dirk` (``scheme`` is ``bdf``).

    Raises
    ------
    ReplayError
        When a Newton solve the compiled solver completed does not converge in the replay.
    """
    if scheme != "bdf":
        raise ValueError(f"`scheme`: the BDF adjoint covers bdf, not {scheme!r}")
    gamma, alpha, error_const = bdf_coefficients()
    parameters = tuple(parameters)
    kernels = _kernels(model, parameters)
    second = _second_order_kernels(model, parameters)
    n, P = kernels.n, kernels.P
    counted = CountedKernels(kernels, p)
    p_list = counted.p_list
    rtol, atol = float(rtol), float(atol)
    monitor = NewtonMonitor(rtol, REPLAY_BUDGET if replayed else _ADAPTIVE_BUDGET)
    rows, cols = second.rows, second.cols
    rhs, vjp = counted.rhs, counted.vjp
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, 8)
    M = len(h_all)
    t0 = float(step_times[0])
    y0 = kernels.initial(t0, p_list)

    # Outputs: those at t0 are y0; an output in (t_n, t_{n+1}] belongs to step n (bdf_outputs).
    start_outputs = [k for k, te in enumerate(output_times) if te == t0]
    step_outputs: list[list[int]] = [[] for _ in range(M)]
    if M:
        position = np.searchsorted(step_times, output_times, side="left")
        for k, (te, pos) in enumerate(zip(output_times, position)):
            if t0 < te <= step_times[-1]:
                step_outputs[int(pos) - 1].append(k)

    def weights_of(k: int, n_: int, order: int) -> np.ndarray:
        """``p_j`` (j = 0..order) of output ``k`` in step ``n_``: ``y(te) = sum_j p_j D_j`` (D after the step)."""
        te = float(output_times[k])
        t_new, h = float(step_times[n_ + 1]), float(h_all[n_])
        w = np.zeros(order + 1)
        w[0] = 1.0
        if te == t_new:
            return w
        pj = 1.0
        for j in range(1, order + 1):
            pj = pj * (te - t_new + float(j - 1) * h) / (float(j) * h)
            w[j] = pj
        return w

    # The forward replay's decisions, counted as the compiled solve counts them (``njev``; one Newton iteration per
    # right-hand side evaluated in a Newton loop, the one that diverged included): see
    # :class:`._discrete_adjoint.DiscreteAdjointRun`.
    decisions = {"jacobian_evaluations": 0, "newton_iterations": 0}

    def evaluate(point: object, t: float, y: np.ndarray) -> KeptJacobian:
        decisions["jacobian_evaluations"] += 1
        return KeptJacobian(point, second.jacobian(t, y, p_list))

    def factor_of(jac: KeptJacobian, c: float):  # noqa: ANN202
        lu = jac.factors.get(c)
        if lu is None:
            lu = lu_factor(np.eye(n) - c * jac.J, check_finite=False)
            jac.factors[c] = lu
        return lu

    def newton(t_new: float, c: float, y_pred: np.ndarray, psi: np.ndarray, jac: KeptJacobian,
               weights: np.ndarray, record: _Step) -> tuple[np.ndarray, np.ndarray] | str:
        """``(y_new, d)``, or ``"diverged"`` / ``"non-finite"``; iterates recorded in ``record``."""
        lu = factor_of(jac, c)
        d = np.zeros(n)
        Y = y_pred
        monitor.start()
        record.iterates, record.corrections = [], []
        while True:
            F = rhs(t_new, Y)
            decisions["newton_iterations"] += 1
            if not np.all(np.isfinite(F)):
                return "non-finite"
            x = lu_solve(lu, c * F - psi - d, check_finite=False)
            verdict = monitor.check(weighted_norm(x, weights))
            if verdict < 0:
                return "diverged"
            record.iterates.append(Y)
            record.corrections.append(x)
            Y = Y + x
            d = d + x
            if verdict > 0:
                return Y, d

    def attempt(n_: int, D: np.ndarray, order: int, h: float, h_target: float, jac: KeptJacobian, current: bool,
                key: object):  # noqa: ANN202
        """One attempt at ``h_target`` on ``D`` (re-sampled in place): ``(result, record, h, jac, current)``."""
        t = float(step_times[n_])
        resampling = None
        if h_target != h:
            resampling = _resampling(order, h_target / h)
            D[: order + 1] = resampling.T @ D[: order + 1]
            h = h_target
        t_new = t + h
        y_pred = D[0].copy()
        for j in range(1, order + 1):
            y_pred = y_pred + D[j]
        s = np.zeros(n)
        for j in range(1, order + 1):
            s = s + gamma[j] * D[j]
        psi = s / alpha[order]
        weights = 1.0 / (atol + rtol * np.abs(y_pred))
        c = h / alpha[order]
        record = _Step(order, resampling, y_pred, c, jac, None, [], [])
        result = newton(t_new, c, y_pred, psi, jac, weights, record)
        if isinstance(result, str) and not current:
            jac = evaluate(key, t_new, y_pred)
            current = True
            record.jacobian = record.refreshed = jac
            result = newton(t_new, c, y_pred, psi, jac, weights, record)
        return result, record, h, jac, current

    def safety_factor() -> float:
        return 0.9 * (2 * _ADAPTIVE_BUDGET + 1) / (2 * _ADAPTIVE_BUDGET + min(monitor.iterations, _ADAPTIVE_BUDGET))

    t_end = float(step_times[-1])

    def step(n_: int, state: tuple) -> tuple[tuple, _Step]:
        """One accepted step from ``state = (D, order, n_equal, h, jac, h_wish)``; for an adaptive solve the
        attempts the controller rejected before it are re-enacted first (module docstring)."""
        D, order, n_equal, h, jac, h_wish = state
        D = D.copy()
        t, h_step = float(step_times[n_]), float(h_all[n_])
        current = False
        if jac is None:
            jac = evaluate("start", t0, y0)
            current = True
        rejected: list[_Step] = []
        if not replayed and h_wish is not None:
            trial = (D.copy(), h, jac, current, n_equal)
            reproduced = False
            for a in range(50):
                h_target = h_wish
                if t + h_target - t_end >= 0 or t + 1.01 * h_target - t_end > 0:
                    h_target = t_end - t
                # The attempt that lands on the recorded step (to the agreement of the replay's error estimates
                # with the compiled ones) is the accepted one, taken with the recorded size.
                if same_step(h_target, h_step):
                    reproduced = True
                    break
                if h_target != h:
                    n_equal = 0
                result, record, h, jac, current = attempt(n_, D, order, h, h_target, jac, current, (n_, a))
                rejected.append(record)
                if isinstance(result, str):
                    h_wish = h * (0.25 if result == "non-finite" else 0.5)
                    continue
                y_try, d_try = result
                error = _error_norm(error_const[order] * d_try, y_try, rtol, atol)
                if not (np.all(np.isfinite(y_try)) and math.isfinite(error)):
                    h_wish = h * 0.25
                    continue
                if error <= 1.0:
                    break       # the controller would have accepted it: not the recorded path
                h_wish = h * max(safety_factor() * error ** (-1.0 / (order + 1)), _MIN_FACTOR)
            if not reproduced:  # another controller setting (max_step, step_onto_outputs): no rejections assumed
                D, h, jac, current, n_equal = trial
                rejected = []
                h_wish = h_step
        else:
            h_wish = h_step
        if h_step != h:
            n_equal = 0
        result, record, h, jac, current = attempt(n_, D, order, h, h_step, jac, current, n_)
        if isinstance(result, str):
            raise ReplayError(f"Newton did not converge in step {n_ + 1} at t = {t:g} (h = {h:g}, order {order}) "
                              f"of the replayed bdf solve")
        record.rejected = rejected
        y_new, d = result
        n_equal += 1
        safety = safety_factor()
        error = _error_norm(error_const[order] * d, y_new, rtol, atol)
        D[order + 2] = d - D[order + 1]
        D[order + 1] = d
        for j in range(order, -1, -1):
            D[j] = D[j] + D[j + 1]
        new_order = order
        if n_equal >= order + 1:
            em = ep = math.inf
            if order > 1:
                em = _error_norm(error_const[order - 1] * D[order], y_new, rtol, atol)
            if order < _MAX_ORDER:
                ep = _error_norm(error_const[order + 1] * D[order + 2], y_new, rtol, atol)
            fm = math.inf if em == 0 else em ** (-1.0 / order)
            f0 = math.inf if error == 0 else error ** (-1.0 / (order + 1))
            fp = math.inf if ep == 0 else ep ** (-1.0 / (order + 2))
            delta, best = 0, f0
            if fm > best:
                best, delta = fm, -1
            if fp > best:
                best, delta = fp, 1
            if fm == best:
                delta = -1
            elif f0 == best:
                delta = 0
            if not math.isfinite(best):
                factor = _MAX_FACTOR
            else:
                chosen = em if delta < 0 else (ep if delta > 0 else error)
                factor = min(safety * chosen ** (-1.0 / (order + delta + 1)), _MAX_FACTOR)
            new_order = order + delta
            n_equal = 0
            h_wish = h * factor
        return (D, new_order, n_equal, h, jac, h_wish), record

    # Forward replay with checkpoints and the outputs.
    outputs = np.full((len(output_times), n), np.nan)
    for k in start_outputs:
        outputs[k] = y0
    f0_ = rhs(t0, y0)
    D0 = np.zeros((_ROWS, n))
    D0[0] = y0
    # D_1 = h f(t0, y0) with the solve's first attempted step size: for an adaptive solve its initial step (the
    # attempts rejected before the first acceptance re-sample D and spend Newton iterations; they cannot refresh J,
    # the first Jacobian being current until then), kept as the recorded step when it is that step.
    h_first = float(h_all[0]) if M else 0.0
    h_wish = None
    if M and not replayed:
        h_wish = initial_step(rhs, t0, float(step_times[-1]), y0, f0_, 1, rtol, atol)
        if not same_step(h_wish, h_first):
            h_first = h_wish
    D0[1] = f0_ * h_first
    state = (D0, 1, 0, h_first, None, h_wish)
    checkpoints: dict[int, tuple] = {}
    for n_ in range(M):
        if n_ % kb == 0:
            checkpoints[n_] = state
        state, record = step(n_, state)
        D = state[0]
        for k in step_outputs[n_]:
            w = weights_of(k, n_, record.order)
            outputs[k] = D[0] * w[0]
            for j in range(1, record.order + 1):
                outputs[k] = outputs[k] + w[j] * D[j]

    first_pass = dict(decisions)

    # Reverse pass.
    Dbar = np.zeros((_ROWS, n))
    pbar = np.zeros(P)
    jbars: dict[object, np.ndarray] = {}

    def jacobian_point(record: _Step, t_new: float) -> np.ndarray:
        """The cotangent of ``y_pred`` from a Jacobian evaluated there (all its uses are reversed by now)."""
        nonlocal pbar
        if record.refreshed is None or record.refreshed.point not in jbars:
            return np.zeros(n)
        gy, gp = counted.second_order(second, t_new, record.y_pred, jbars.pop(record.refreshed.point))
        pbar = pbar + gp
        return gy
    peak = 0
    for start in sorted(checkpoints, reverse=True):
        stop = min(start + kb, M)
        state = checkpoints[start]
        block: list[_Step] = []
        stored = 0
        for n_ in range(start, stop):
            state, record = step(n_, state)
            block.append(record)
            stored += n + 2 * n * len(record.iterates)
        peak = max(peak, len(checkpoints) * (_ROWS * n + n * n) + stored)
        for n_ in range(stop - 1, start - 1, -1):
            record = block[n_ - start]
            k = record.order
            t_new, c = float(step_times[n_ + 1]), record.c
            for q in step_outputs[n_]:
                w = weights_of(q, n_, k)
                for j in range(k + 1):
                    Dbar[j] += w[j] * cotangents[q]
            # The difference update, transposed.
            for j in range(0, k + 1):
                Dbar[j + 1] += Dbar[j]
            dbar = Dbar[k + 1].copy()
            Dbar[k + 1] = 0.0
            dbar += Dbar[k + 2]
            Dbar[k + 1] -= Dbar[k + 2]
            Dbar[k + 2] = 0.0
            # Newton, from the last iteration back (y_new = Y^K itself has no other use).
            Ybar = np.zeros(n)
            psibar = np.zeros(n)
            lu = factor_of(record.jacobian, c)
            jbar = jbars.setdefault(record.jacobian.point, np.zeros(len(second.pattern)))
            for Yq, xq in zip(reversed(record.iterates), reversed(record.corrections)):
                rbar = lu_solve(lu, Ybar + dbar, trans=1, check_finite=False)
                if len(jbar):
                    jbar += c * (rbar[rows] * xq[cols])
                psibar -= rbar
                dbar = dbar - rbar
                JT, FpT = vjp(t_new, Yq, c * rbar)
                Ybar = Ybar + JT
                pbar += FpT
            ypredbar = Ybar + jacobian_point(record, t_new)
            s_bar = psibar / alpha[k]
            for j in range(k + 1):
                Dbar[j] += ypredbar
                if j >= 1:
                    Dbar[j] += gamma[j] * s_bar
            if record.resampling is not None:
                Dbar[: k + 1] = record.resampling @ Dbar[: k + 1]
            # The rejected attempts before it: a Jacobian evaluated at one's y_pred, and their re-samplings.
            for attempt_record in reversed(record.rejected or []):
                h_attempt = attempt_record.c * alpha[k]
                ypredbar = jacobian_point(attempt_record, float(step_times[n_]) + h_attempt)
                for j in range(k + 1):
                    Dbar[j] += ypredbar
                if attempt_record.resampling is not None:
                    Dbar[: k + 1] = attempt_record.resampling @ Dbar[: k + 1]
        del block
    # The start: D_0 = y0, D_1 = h_1 f(t0, y0), J(t0, y0); outputs at t0.
    ybar0 = Dbar[0].copy()
    for k in start_outputs:
        ybar0 += cotangents[k]
    if M:
        JT, FpT = vjp(t0, y0, h_first * Dbar[1])
        ybar0 += JT
        pbar += FpT
    if "start" in jbars:
        gy, gp = counted.second_order(second, t0, y0, jbars.pop("start"))
        ybar0 += gy
        pbar += gp
    return replace(counted.run(t0, ybar0, pbar, outputs, M, kb, len(checkpoints), peak), **first_pass)
