"""The discrete adjoint of Radau IIA (RADAU5) solves: reverse mode through the accepted steps' Newton iterations.

The compiled Radau IIA stepper (``symsens_radau.hpp``, Hairer & Wanner II, Sect. IV.8) solves the collocation
system for ``Z = (Z_1, Z_2, Z_3)`` (``Y_i = y_n + Z_i``) by simplified Newton in the transformed variables
``W = (T^-1 (x) I) Z``; with the step ``h`` held constant, an accepted step is

    Z^0 = G(h / h_(n-1)) Z_old               (the last step's collocation polynomial extrapolated; 0 at first)
    W^0 = T^-1 Z^0;  for q < K:   F_i = f(t_n + c_i h, y_n + Z^q_i),   R = (T^-1 F) - Lambda W^q
        dW_1 = (mu/h I - J)^-1 R_1,   dW_2 + i dW_3 = ((alpha + i beta)/h I - J)^-1 (R_2 + i R_3)
        W^(q+1) = W^q + dW,   Z^(q+1) = T W^(q+1)
    y_{n+1} = y_n + Z^K_3,

``Lambda = diag(mu/h, [[alpha, -beta], [beta, alpha]]/h)``, ``J = J(t_m, y_m, p)`` kept from the start of an
earlier accepted step ``m <= n``, ``K`` chosen by the Newton monitor on values.  The discrete forward mode
differentiates exactly this program (:mod:`._discrete_adjoint_newton`), including the starting values (a
function of the previous step's stages) and the kept Jacobian.  Its reverse, iteration by iteration from the
last back, with ``Wbar = T^T Zbar^K`` to start:

    rbar_1 = (mu/h I - J)^-T dWbar_1,    rbar_2 + i rbar_3 = ((alpha + i beta)/h I - J)^-H (dWbar_2 + i dWbar_3)
    Jbar_m += rbar_1 dW_1^T + Re(conj(rbar_c) dW_c^T)          (both matrices are ``shift - J``)
    Wbar <- Wbar - Lambda^T rbar,   Fbar = T^-T rbar,   Zbar^q_i = J(Y_i)^T Fbar_i,  pbar += F_p(Y_i)^T Fbar_i,
    ybar_n += sum_i Zbar^q_i,       Wbar += T^T Zbar^q   (q >= 1; for q = 0: Zbar^0 = Zbar^q + T^-T Wbar)

and ``Zbar_old += G^T Zbar^0`` goes to the previous step's last iterate.  The Jacobian's cotangent is applied at
the step where it was evaluated (second derivatives from SymPy, as for the SDIRK adjoint).  This is the
FATODE FIRK adjoint (Zhang & Sandu 2014) taken through the iterations performed, which is what equals the forward
mode to rounding.

The replay runs the stepper's algorithm in NumPy on the recorded steps (starting values, monitor, weights,
Jacobian reuse, refresh and retry, budget 6 adaptive or 20 replayed), re-enacting the rejected attempts of an
adaptive solve with RADAU5's error estimate (refined after a rejection and on the first step) and the
controller, since one of them may leave a re-evaluated Jacobian to the accepted step, and counting its Jacobian
evaluations and Newton iterations (one per evaluation of the three stages) as the solve does (see
:mod:`._discrete_adjoint_dirk`).  Memory: checkpoints of ``y_n``, ``f(t_n, y_n)``, ``Z_old`` and the
kept Jacobian every ``k`` steps; a block keeps every Newton iterate ``Z^q`` and correction ``dW`` of its steps.

References
----------
E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, Sect. IV.8.
H. Zhang and A. Sandu, "FATODE: a library for forward, adjoint, and tangent linear integration of ODEs",
SIAM J. Sci. Comput. 36(5) (2014) C504-C523.
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

__all__ = ["discrete_adjoint_radau", "radau_coefficients", "RadauCoefficients"]


@dataclass(frozen=True)
class RadauCoefficients:
    """The numbers of ``RadauTableau`` in double precision (``c``, ``mu``, ``alpha``, ``beta``, ``T``, ``T^-1``)."""

    c: np.ndarray
    mu: float
    alpha: float
    beta: float
    T: np.ndarray
    TI: np.ndarray
    gamma0: float
    e: np.ndarray           # RADAU5's error weights on Z


@lru_cache(maxsize=1)
def radau_coefficients() -> RadauCoefficients:
    """Hairer's transformation of the Radau IIA(3) tableau, the same constants the compiled stepper receives."""
    from ..schemes import get_scheme
    from ._compiled import _radau_constants

    k = _radau_constants()
    scheme = get_scheme("radau-iia-3")
    c = np.array([float(sp.N(v, 30)) for v in scheme.c])
    return RadauCoefficients(c, float(k["mu"][0]), float(k["alpha"][0]), float(k["beta"][0]),
                             np.array([float(v) for v in k["t"]]).reshape(3, 3),
                             np.array([float(v) for v in k["ti"]]).reshape(3, 3), float(k["gamma0"][0]),
                             np.array([float(v) for v in k["e"]]))


def _lagrange(c: np.ndarray, j: int, x: float) -> float:
    """The Lagrange basis on ``{0, c_1, c_2, c_3}`` for node ``c_j`` at ``x`` (``RadauIIA3::lagrange``)."""
    r = x / c[j]
    for m in range(3):
        if m != j:
            r = r * (x - c[m]) / (c[j] - c[m])
    return r


@dataclass
class _Solve:
    jacobian: KeptJacobian
    start: np.ndarray               # Z^0 (3 x n)
    iterates: list[np.ndarray]      # Z^0 .. Z^(K-1) (3 x n), where F was evaluated
    corrections: list[np.ndarray]   # dW^0 .. dW^(K-1) (3 x n)
    extrapolation: np.ndarray | None  # G (3 x 3): Z^0 = G Z_old, None on the first step


def discrete_adjoint_radau(
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
    """Reverse mode through a Radau IIA(3) solve with the given accepted steps (module docstring); arguments as
    :func:`symsens.integrate._discrete_adjoint_dirk.discrete_adjoint_dirk` (``scheme`` is ``radau-iia-3`` or
    ``radau5``).

    Raises
    ------
    ReplayError
        When a Newton solve the compiled solver completed does not converge in the replay.
    """
    if scheme not in ("radau-iia-3", "radau5"):
        raise ValueError(f"`scheme`: the Radau IIA adjoint covers radau-iia-3 (radau5), not {scheme!r}")
    coef = radau_coefficients()
    parameters = tuple(parameters)
    kernels = _kernels(model, parameters)
    second = _second_order_kernels(model, parameters)
    n, P = kernels.n, kernels.P
    counted = CountedKernels(kernels, p)
    p_list = counted.p_list
    rtol, atol = float(rtol), float(atol)
    monitor = NewtonMonitor(rtol, REPLAY_BUDGET if replayed else ADAPTIVE_BUDGET["radau"])
    c, T, TI = coef.c, coef.T, coef.TI
    controller = None if replayed else Controller.of("radau-iia-3")
    rhs, vjp = counted.rhs, counted.vjp
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, 12)
    M = len(h_all)
    t0 = float(step_times[0])
    t_end = float(step_times[-1])
    y0 = kernels.initial(t0, p_list)

    # The forward replay's decisions, counted as the compiled solve counts them (``njev``; one Newton iteration per
    # evaluation of the three stages' right-hand sides, the one that diverged included): see
    # :class:`._discrete_adjoint.DiscreteAdjointRun`.
    decisions = {"jacobian_evaluations": 0, "newton_iterations": 0}

    def evaluate(n_: int, t: float, y: np.ndarray) -> KeptJacobian:
        decisions["jacobian_evaluations"] += 1
        return KeptJacobian(n_, second.jacobian(t, y, p_list))

    def factors(jac: KeptJacobian, h: float):  # noqa: ANN202
        pair = jac.factors.get(h)
        if pair is None:
            real = -jac.J.copy()
            real[np.diag_indices(n)] += coef.mu / h
            complex_ = -jac.J.astype(complex)
            complex_[np.diag_indices(n)] += complex(coef.alpha / h, coef.beta / h)
            pair = (lu_factor(real, check_finite=False), lu_factor(complex_, check_finite=False))
            jac.factors[h] = pair
        return pair

    def newton(t: float, h: float, y: np.ndarray, Z0: np.ndarray, jac: KeptJacobian,
               weights: np.ndarray, record: _Solve) -> tuple[np.ndarray | None, bool]:
        real_lu, complex_lu = factors(jac, h)
        mu_h, al_h, be_h = coef.mu / h, coef.alpha / h, coef.beta / h
        Z = Z0
        W = TI @ Z
        monitor.start()
        while True:
            F = np.empty((3, n))
            for s in range(3):
                F[s] = rhs(t + c[s] * h, y + Z[s])
            decisions["newton_iterations"] += 1
            if not np.all(np.isfinite(F)):
                return None, False
            g = TI @ F
            dW = np.empty((3, n))
            dW[0] = lu_solve(real_lu, g[0] - mu_h * W[0], check_finite=False)
            x = lu_solve(complex_lu, (g[1] - (al_h * W[1] - be_h * W[2]))
                         + 1j * (g[2] - (be_h * W[1] + al_h * W[2])), check_finite=False)
            dW[1], dW[2] = x.real, x.imag
            verdict = monitor.check(weighted_norm(dW.reshape(-1), weights))
            if verdict < 0:
                return None, False
            record.iterates.append(Z)
            record.corrections.append(dW)
            W = W + dW
            Z = T @ W
            if verdict > 0:
                return Z, monitor.iterations > 2 and monitor.rate > 1e-3

    def attempt(n_: int, h: float, y: np.ndarray, jac: KeptJacobian, current: bool,
                old: tuple[np.ndarray, float] | None, weights: np.ndarray):  # noqa: ANN202
        """One attempt at ``h``: ``(Z or None, jac, current, slow, record)`` (None: Newton failed)."""
        t = float(step_times[n_])
        G = None
        Z0 = np.zeros((3, n))
        if old is not None:
            Z_old, h_old = old
            G = np.empty((3, 3))
            for s in range(3):
                x = 1.0 + c[s] * h / h_old
                G[s] = [_lagrange(c, 0, x), _lagrange(c, 1, x), _lagrange(c, 2, x)]
                Z0[s] = G[s, 0] * Z_old[0] + G[s, 1] * Z_old[1] + G[s, 2] * Z_old[2] - Z_old[2]
            G[:, 2] -= 1.0
        record = _Solve(jac, Z0, [], [], G)
        Z, slow = newton(t, h, y, Z0, jac, weights, record)
        if Z is None and not current:
            jac = evaluate(n_, t, y)
            current = True
            record = _Solve(jac, Z0, [], [], G)
            Z, slow = newton(t, h, y, Z0, jac, weights, record)
        return Z, jac, current, slow, record

    def error_of(n_: int, h: float, y: np.ndarray, f: np.ndarray, Z: np.ndarray, jac: KeptJacobian,
                 refine: bool) -> float:
        """RADAU5's estimate ``(mu/h I - J)^-1 (mu/h)(gamma0 h f + sum e_i Z_i)``, refined once with
        ``f(t, y + err)`` on the first step and after a rejection when above 1 (``RadauIIA3::attempt``)."""
        real_lu = factors(jac, h)[0]
        y_new = y + Z[2]
        mu_h = coef.mu / h
        ez = coef.e[0] * Z[0] + coef.e[1] * Z[1] + coef.e[2] * Z[2]
        err = lu_solve(real_lu, mu_h * (coef.gamma0 * h * f + ez), check_finite=False)
        if refine and error_norm(err, y, y_new, rtol, atol) > 1.0:
            f_err = rhs(float(step_times[n_]), y + err)
            err = lu_solve(real_lu, mu_h * (coef.gamma0 * h * f_err + ez), check_finite=False)
        return error_norm(err, y, y_new, rtol, atol)

    def step(n_: int, state: tuple):  # noqa: ANN202
        """One accepted step from ``state = (y, f, jac, refresh, old, h_wish, previous_error)``:
        ``(state, record)``; for an adaptive solve the attempts its controller rejected before the step are
        re-enacted first (one of them may have re-evaluated the Jacobian at ``y_n``)."""
        y, f, jac, refresh, old, h_wish, previous = state
        t, h = float(step_times[n_]), float(h_all[n_])
        current = False
        if jac is None or refresh:
            jac = evaluate(n_, t, y)
            current = True
        weights = 1.0 / (atol + rtol * np.abs(y))
        after_rejection = False
        if controller is not None and h_wish is not None:
            saved = (jac, current)
            reproduced = False
            for _ in range(50):
                h_try = Controller.landed(t, h_wish, t_end)
                if same_step(h_try, h):
                    reproduced = True
                    break
                Z_try, jac, current, _, _ = attempt(n_, h_try, y, jac, current, old, weights)
                # RADAU5 refines the estimate on the first step and after a rejection.
                error = math.nan if Z_try is None or not np.all(np.isfinite(Z_try)) else \
                    error_of(n_, h_try, y, f, Z_try, jac, n_ == 0 or after_rejection)
                after_rejection = True
                if not math.isfinite(error):
                    h_wish = h_try * 0.25
                    continue
                if error <= 1.0:
                    break       # the controller would have accepted it: not the recorded path
                h_wish = controller.rejected(h_try, error)
            if not reproduced:  # another controller setting (max_step, step_onto_outputs): no rejections assumed
                jac, current = saved
                after_rejection = False
        Z, jac, current, slow, record = attempt(n_, h, y, jac, current, old, weights)
        if Z is None:
            raise ReplayError(f"Newton did not converge in step {n_ + 1} at t = {t:g} (h = {h:g}) of the replayed "
                              f"radau-iia-3 solve")
        y_new = y + Z[2]
        if controller is not None:
            error = error_of(n_, h, y, f, Z, jac, n_ == 0 or after_rejection)
            h_wish, previous = controller.accepted(h, error, previous)
        return (y_new, rhs(t + h, y_new), jac, slow, (Z, h), h_wish, previous), record

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
    state: tuple = (y, f, None, False, None, h_first, 1e-4)
    for n_ in range(M):
        if n_ % kb == 0:
            checkpoints[n_] = state
        state, _ = step(n_, state)
        y_new, f_new = state[0], state[1]
        h = float(h_all[n_])
        write_outputs(outputs, plan[n_], h, y, f, y_new, f_new)
        y, f = y_new, f_new
    if M == 0:
        outputs_of_a_solve_without_steps(outputs, output_times, t0, y0)
    first_pass = dict(decisions)

    # Reverse pass.
    ybar = cotangent_of_a_solve_without_steps(output_times, t0, cotangents) if M == 0 else np.zeros(n)
    pbar = np.zeros(P)
    zbar_carry = np.zeros((3, n))   # cotangent of the last iterate of the step being reversed (from the next step)
    jbars: dict[int, np.ndarray] = {}
    peak = 0
    rows, cols = second.rows, second.cols
    for start in sorted(checkpoints, reverse=True):
        stop = min(start + kb, M)
        state = checkpoints[start]
        block = []
        stored = 0
        for n_ in range(start, stop):
            y = state[0]
            state, record = step(n_, state)
            block.append((y, record))
            stored += n + 6 * n * len(record.iterates) + 3 * n
        y = state[0]
        peak = max(peak, len(checkpoints) * (5 * n + n * n) + stored)
        y_next = y
        for n_ in range(stop - 1, start - 1, -1):
            y_n, record = block[n_ - start]
            t, h = float(step_times[n_]), float(h_all[n_])
            mu_h, al_h, be_h = coef.mu / h, coef.alpha / h, coef.beta / h
            ybar_n, ybar_end, fbar_n, fbar_end = output_cotangents(plan[n_], cotangents, h, n)
            ybar = ybar + ybar_end
            if np.any(fbar_end):
                JT, FpT = vjp(t + h, y_next, fbar_end)
                ybar = ybar + JT
                pbar += FpT
            Zbar = zbar_carry.copy()
            Zbar[2] += ybar
            ybar_n += ybar
            Wbar = T.T @ Zbar
            real_lu, complex_lu = factors(record.jacobian, h)
            point = record.jacobian.point
            jbar = jbars.setdefault(point, np.zeros(len(second.pattern)))
            K = len(record.iterates)
            Z0bar = np.zeros((3, n))
            for q in range(K - 1, -1, -1):
                Zq, dW = record.iterates[q], record.corrections[q]
                rbar = np.empty((3, n))
                rbar[0] = lu_solve(real_lu, Wbar[0], trans=1, check_finite=False)
                rc = lu_solve(complex_lu, Wbar[1] + 1j * Wbar[2], trans=2, check_finite=False)
                rbar[1], rbar[2] = rc.real, rc.imag
                if len(jbar):
                    jbar += (rbar[0][rows] * dW[0][cols] + rbar[1][rows] * dW[1][cols]
                             + rbar[2][rows] * dW[2][cols])
                Wbar = Wbar.copy()
                Wbar[0] -= mu_h * rbar[0]
                Wbar[1] -= al_h * rbar[1] + be_h * rbar[2]
                Wbar[2] -= -be_h * rbar[1] + al_h * rbar[2]
                Fbar = TI.T @ rbar
                Zqbar = np.empty((3, n))
                for s in range(3):
                    JT, FpT = vjp(t + c[s] * h, y_n + Zq[s], Fbar[s])
                    Zqbar[s] = JT
                    pbar += FpT
                ybar_n += Zqbar.sum(axis=0)
                if q >= 1:
                    Wbar = Wbar + T.T @ Zqbar
                else:
                    Z0bar = Zqbar + TI.T @ Wbar
            zbar_carry = np.zeros((3, n)) if record.extrapolation is None else record.extrapolation.T @ Z0bar
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
