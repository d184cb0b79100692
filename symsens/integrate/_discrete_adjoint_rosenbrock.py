"""The discrete adjoint of Rosenbrock solves: reverse mode through the solver's accepted steps.

A compiled Rosenbrock solve (``symsens.solve(method="rodas4", ...)``, ``symsens_rosenbrock.hpp``) takes, with the
accepted step sizes ``h_n`` held constant (as reverse-mode AD tools hold them), the step

    W = (1/(h gamma)) I - J(t_n, y_n, p),        J = df/dy
    r_i = f(t_n + alpha_i h, y_n + sum_{j<i} a_ij u_j, p) + sum_{j<i} (c_ij / h) u_j + gamma_i h f_t(t_n, y_n, p)
    u_i = W^-1 r_i                               (i = 1..s;  stage 1 evaluates f(t_n, y_n))
    y_{n+1} = y_n + sum_j m_j u_j

in Hairer & Wanner's transformed variables (HW II, Sect. IV.7; ``(a_ij) = (alpha_ij) Gamma^-1``,
``(c_ij) = diag(1/gamma) - Gamma^-1``, ``m = b^T Gamma^-1``).  The Jacobian is evaluated afresh at every accepted
step's start, so the step is a closed function of ``(y_n, p)``: forward-mode AD through it (the discrete mode,
``symsens.solve(sensitivity="discrete")``) differentiates ``J(t_n, y_n, p)`` too, so ``W`` carries partials.

Its exact reverse (FATODE's Rosenbrock adjoint, Zhang & Sandu 2014, Sect. 3.4; Sandu 2006), from the last stage
back, with ``ubar_j = m_j ybar_{n+1}`` to start:

    rbar_i  = W^-T ubar_i
    Jbar   += rbar_i u_i^T                      (u_i = W^-1 r_i and dW = -dJ)
    ubar_j += (c_ij / h) rbar_i,   qbar += gamma_i h rbar_i                           (j < i)
    ybar_n += J(Y_i)^T rbar_i,     ubar_j += a_ij J(Y_i)^T rbar_i,    pbar += F_p(Y_i)^T rbar_i
    ybar_n += ybar_{n+1} + d/dy [ sum_kl Jbar_kl J_kl(t_n, y_n, p) + qbar . f_t(t_n, y_n, p) ]
    pbar   +=              d/dp [ the same ]

The last line is the second-order term: one evaluation per step of the exact gradient of a weighted sum of the
structurally non-zero Jacobian entries (and of ``f_t`` when ``t`` occurs in ``f``), derived with SymPy
(:func:`symsens.derive.derivative_matrix`), weighted by ``Jbar`` on ``J``'s pattern only (no dense second
derivative tensor).  ``J^T w`` and ``F_p^T w`` are the exact transposed products of the explicit-RK adjoint
(:mod:`symsens.integrate._discrete_adjoint`); the linear solves use one LU of ``W`` per step (SciPy's
``lu_factor``/``lu_solve``, the transposed solve for ``W^-T``).  Outputs between step ends are the compiled
solver's cubic Hermite interpolant of ``(y_n, f(t_n, y_n), y_{n+1}, f(t_{n+1}, y_{n+1}))``, reversed as in the
explicit-RK adjoint (``f(t_n, y_n)`` is stage 1's value, so its cotangent joins ``rbar_1``'s).

This is the transpose of the linear map the discrete forward mode computes (the same steps under the values-only
norm; the solver's dual LU ``staggered_solve`` is the exact derivative of ``W^-1 r``), so the two agree to
rounding: one number by two independent computations (``tests/test_discrete_adjoint_implicit.py``).

Memory: uniform checkpointing as in the explicit-RK adjoint (Griewank & Walther 2008, Ch. 12).  The replay
stores ``y_n`` every ``k`` steps; the reverse pass re-runs each block of ``k`` steps from its checkpoint, keeping
``y_n`` and the ``s`` stage vectors ``u_i`` of each step, and reverses it, re-evaluating ``J`` and the LU of ``W``
of each step (one more Jacobian and LU per step: cheaper to redo than ``n^2`` numbers to keep).  Stored:
``(M / k) n + k (s + 1) n`` numbers for ``M`` steps (default ``k = ceil(sqrt(M / (s + 1)))``, about
``2 sqrt(M (s + 1)) n``), for one extra forward sweep (``M`` Jacobians, LUs and ``M (s - 1)`` evaluations of ``f``).

References
----------
E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, Sect. IV.7.
A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006, LNCS 3994, 550-557.
H. Zhang and A. Sandu, "FATODE: a library for forward, adjoint, and tangent linear integration of ODEs",
SIAM J. Sci. Comput. 36(5) (2014) C504-C523.
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.linalg import lu_factor, lu_solve

from ..model import Model
from ._discrete_adjoint import CountedKernels, DiscreteAdjointRun, _kernels, _output_plan, output_cotangents, \
    outputs_of_a_solve_without_steps, cotangent_of_a_solve_without_steps, replay_inputs, write_outputs

__all__ = ["discrete_adjoint_rosenbrock", "rosenbrock_coefficients", "RosenbrockCoefficients"]


@dataclass(frozen=True)
class RosenbrockCoefficients:
    """A Rosenbrock tableau in double precision and its transformed coefficients, formed in the order of
    ``symsens_rosenbrock.hpp`` (``a_t``, ``c_t`` s x s; ``m``; ``c`` the stage times ``alpha_i``; ``gamma_sum``
    the ``gamma_i``; ``same_argument[i]``: stage ``i`` evaluates ``f`` where stage ``i - 1`` did)."""

    name: str
    gamma: float
    a_t: np.ndarray
    c_t: np.ndarray
    m: np.ndarray
    c: np.ndarray
    gamma_sum: np.ndarray
    same_argument: tuple[bool, ...]

    @property
    def stages(self) -> int:
        return len(self.m)


@lru_cache(maxsize=16)
def rosenbrock_coefficients(scheme: str) -> RosenbrockCoefficients:
    """The coefficients the compiled Rosenbrock stepper uses for ``scheme`` (a ValueError names a scheme that is
    not a Rosenbrock method of the catalogue)."""
    from ..schemes import get_scheme

    try:
        tableau = get_scheme(scheme)
    except Exception as error:
        raise ValueError(f"`scheme`: {error}") from None
    if getattr(tableau, "family", None) != "rosenbrock":
        raise ValueError(f"`scheme`: {scheme!r} is not a Rosenbrock scheme "
                         f"({getattr(tableau, 'family', type(tableau).__name__)!r})")

    def value(x: sp.Expr) -> float:
        return float(sp.N(x, 30))

    s = tableau.stages
    alpha = [[value(tableau.alpha[i][j]) for j in range(s)] for i in range(s)]
    gam = [[value(tableau.gamma[i][j]) for j in range(s)] for i in range(s)]
    b = [value(v) for v in tableau.b]
    c = [value(v) for v in tableau.alpha_sum]
    gamma_sum = [value(v) for v in tableau.gamma_sum]
    # Gamma^-1 by forward substitution, in the stepper's order of operations.
    gi = [[0.0] * s for _ in range(s)]
    for j in range(s):
        gi[j][j] = 1.0 / gam[j][j]
        for i in range(j + 1, s):
            acc = 0.0
            for l_ in range(j, i):
                acc = acc + gam[i][l_] * gi[l_][j]
            gi[i][j] = -(acc / gam[i][i])
    a_t = np.zeros((s, s))
    c_t = np.zeros((s, s))
    for i in range(s):
        for j in range(i):
            acc = 0.0
            for l_ in range(j, i):
                acc = acc + alpha[i][l_] * gi[l_][j]
            a_t[i, j] = acc
            c_t[i, j] = -gi[i][j]
    m = np.zeros(s)
    for j in range(s):
        acc = 0.0
        for l_ in range(j, s):
            acc = acc + b[l_] * gi[l_][j]
        m[j] = acc
    same = [False] * s
    for i in range(1, s):
        flag = c[i] == c[i - 1] and alpha[i][i - 1] == 0.0
        for j in range(i - 1):
            if alpha[i][j] != alpha[i - 1][j]:
                flag = False
        same[i] = flag
    return RosenbrockCoefficients(scheme, gam[0][0], a_t, c_t, m, np.array(c), np.array(gamma_sum), tuple(same))


class _SecondOrderKernels:
    """``J(t, y, p)`` (dense values from its structural non-zeros), ``f_t(t, y, p)`` when ``t`` occurs in ``f``, and
    the gradient in ``(y, p_chosen)`` of ``sum_{(k,l) in nz(J)} M_kl J_kl + q . f_t``: the second-order term of the
    Rosenbrock adjoint, from the exact second derivatives (SymPy), evaluated by the safe lambdified functions."""

    def __init__(self, model: Model, parameters: tuple[str, ...]) -> None:
        from ..derive import derivative_matrix, jacobian
        from ._adjoint import _vector_function

        n = model.n_states
        chosen = [model.symbol(name) for name in parameters]
        rhs = list(model.rhs)
        J = jacobian(model)   # cached per model
        self.n, self.P = n, len(parameters)
        self.pattern = [(k, l_) for k in range(n) for l_ in range(n) if J[k, l_] != 0]
        self.rows = np.array([k for k, _ in self.pattern], dtype=int)
        self.cols = np.array([l_ for _, l_ in self.pattern], dtype=int)
        entries = [J[k, l_] for k, l_ in self.pattern]
        ft = [sp.diff(e, model.time) for e in rhs]
        self.autonomous = all(e == 0 for e in ft)
        weights = [sp.Dummy(f"m{q}") for q in range(len(entries))]
        q_ft = [sp.Dummy(f"q{i}") for i in range(n)]
        arguments = [model.time, *model.states, *model.parameters, *weights, *q_ft]
        self.n_weights = len(weights)
        variables = [*model.states, *chosen]
        terms = list(entries) + ([] if self.autonomous else ft)
        multipliers = list(weights) + ([] if self.autonomous else q_ft)
        D = derivative_matrix(terms, variables)
        gradient = [sp.Add(*[multipliers[r] * D[r, v] for r in range(len(terms)) if D[r, v] != 0])
                    for v in range(len(variables))]
        self._entries = _vector_function(entries or [sp.S.Zero], arguments)
        self._ft = None if self.autonomous else _vector_function(ft, arguments)
        self._gradient = _vector_function(gradient, arguments)
        self._zeros = [0.0] * (self.n_weights + n)

    def jacobian(self, t: float, y: np.ndarray, p: list[float]) -> np.ndarray:
        values = self._entries(t, *y.tolist(), *p, *self._zeros)
        J = np.zeros((self.n, self.n))
        if self.pattern:
            J[self.rows, self.cols] = values
        return J

    def time_derivative(self, t: float, y: np.ndarray, p: list[float]) -> np.ndarray:
        if self._ft is None:
            return np.zeros(self.n)
        return self._ft(t, *y.tolist(), *p, *self._zeros)

    def second_order(self, t: float, y: np.ndarray, p: list[float], jbar: np.ndarray,
                     qbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._gradient(t, *y.tolist(), *p, *jbar.tolist(), *qbar.tolist())
        return out[: self.n], out[self.n:]


@lru_cache(maxsize=16)
def _second_order_kernels(model: Model, parameters: tuple[str, ...]) -> _SecondOrderKernels:
    return _SecondOrderKernels(model, parameters)


def discrete_adjoint_rosenbrock(
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
) -> DiscreteAdjointRun:
    """Reverse mode through a Rosenbrock solve with the given accepted steps (module docstring).

    The arguments are those of :func:`symsens.integrate._discrete_adjoint.discrete_adjoint_erk`: the model the
    compiled solver integrated, a Rosenbrock ``scheme`` of the catalogue (``ros2``, ``ros3p``, ``rodas3``,
    ``rodas4``, ``rodas5p``), all parameter values, the gradient's parameters, the solve's
    ``stats.step_times``/``stats.step_sizes``, its output times and ``dL/dy(t_k)`` (K x n).

    Returns
    -------
    DiscreteAdjointRun
        ``gradient = (dy0/dp)^T ybar_0 + pbar``; ``vjp_evaluations`` counts the transposed products ``J^T w``,
        ``F_p^T w`` and the second-order gradients; ``rhs_evaluations`` the evaluations of ``f`` (and ``f_t``).
    """
    coef = rosenbrock_coefficients(scheme)
    parameters = tuple(parameters)
    kernels = _kernels(model, parameters)
    second = _second_order_kernels(model, parameters)
    n, P, s = kernels.n, kernels.P, coef.stages
    counted = CountedKernels(kernels, p)
    p_list = counted.p_list
    rhs, vjp = counted.rhs, counted.vjp
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, s + 1)
    M = len(h_all)
    a_t, c_t, m, c, gsum = coef.a_t, coef.c_t, coef.m, coef.c, coef.gamma_sum
    a_rows = [[(j, a_t[i, j]) for j in range(i) if a_t[i, j] != 0.0] for i in range(s)]
    c_rows = [[(j, c_t[i, j]) for j in range(i) if c_t[i, j] != 0.0] for i in range(s)]
    t0 = float(step_times[0])
    y0 = kernels.initial(t0, p_list)

    def factor(t: float, h: float, y: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        J = second.jacobian(t, y, p_list)
        W = -J
        W[np.diag_indices(n)] += 1.0 / (h * coef.gamma)
        return J, lu_factor(W, check_finite=False)

    def argument(y: np.ndarray, U: np.ndarray, i: int) -> np.ndarray:
        acc = np.zeros(n)
        for j, a in a_rows[i]:
            acc = acc + a * U[j]
        return y + acc

    def step(n_: int, y: np.ndarray, f_start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(y_{n+1}, f(t_{n+1}, y_{n+1}), U)`` from ``y_n`` and ``f(t_n, y_n)``."""
        t, h = float(step_times[n_]), float(h_all[n_])
        _, lu = factor(t, h, y)
        ft = np.zeros(n)
        if not second.autonomous:
            counted.rhs_count += 1
            ft = second.time_derivative(t, y, p_list)
        U = np.empty((s, n))
        fi = f_start
        for i in range(s):
            if i > 0 and not coef.same_argument[i]:
                fi = rhs(t + c[i] * h, argument(y, U, i))
            acc = np.zeros(n)
            for j, cc in c_rows[i]:
                acc = acc + cc * U[j]
            U[i] = lu_solve(lu, fi + acc / h + (gsum[i] * h) * ft, check_finite=False)
        total = np.zeros(n)
        for j in range(s):
            if m[j] != 0.0:
                total = total + m[j] * U[j]
        y_new = y + total
        return y_new, rhs(t + h, y_new), U

    # Forward replay with checkpoints (y_n and f(t_n, y_n)) and the outputs.
    plan = _output_plan(step_times, output_times)
    outputs = np.full((len(output_times), n), np.nan)
    checkpoints: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    y = y0.copy()
    f = rhs(t0, y)
    for n_ in range(M):
        if n_ % kb == 0:
            checkpoints[n_] = (y.copy(), f.copy())
        y_new, f_new, _ = step(n_, y, f)
        h = float(h_all[n_])
        write_outputs(outputs, plan[n_], h, y, f, y_new, f_new)
        y, f = y_new, f_new
    if M == 0:
        outputs_of_a_solve_without_steps(outputs, output_times, t0, y0)

    # Reverse pass, block by block from the last checkpoint.
    ybar = cotangent_of_a_solve_without_steps(output_times, t0, cotangents) if M == 0 else np.zeros(n)
    pbar = np.zeros(P)
    peak = len(checkpoints) * 2 * n
    for start in sorted(checkpoints, reverse=True):
        stop = min(start + kb, M)
        y, f = checkpoints[start]
        block: list[tuple[np.ndarray, np.ndarray]] = []
        for n_ in range(start, stop):
            y_new, f_new, U = step(n_, y, f)
            block.append((y, U))
            y, f = y_new, f_new
        peak = max(peak, len(checkpoints) * 2 * n + len(block) * (s + 1) * n)
        y_next = y
        for n_ in range(stop - 1, start - 1, -1):
            y_n, U = block[n_ - start]
            t, h = float(step_times[n_]), float(h_all[n_])
            ybar_n, ybar_end, fbar_start, fbar_end = output_cotangents(plan[n_], cotangents, h, n)
            ybar = ybar + ybar_end
            if np.any(fbar_end):
                JT, FpT = vjp(t + h, y_next, fbar_end)
                ybar = ybar + JT
                pbar += FpT
            _, lu = factor(t, h, y_n)
            ubar = m[:, None] * ybar[None, :]
            ybar_n += ybar
            jbar = np.zeros(len(second.pattern))
            qbar = np.zeros(n)
            for i in range(s - 1, -1, -1):
                rbar = lu_solve(lu, ubar[i], trans=1, check_finite=False)
                if len(jbar):
                    jbar += rbar[second.rows] * U[i][second.cols]
                for j, cc in c_rows[i]:
                    ubar[j] += (cc / h) * rbar
                qbar += (gsum[i] * h) * rbar
                if i == 0:
                    JT, FpT = vjp(t, y_n, rbar + fbar_start)
                    ybar_n += JT
                    pbar += FpT
                    continue
                JT, FpT = vjp(t + c[i] * h, argument(y_n, U, i), rbar)
                ybar_n += JT
                pbar += FpT
                for j, a in a_rows[i]:
                    ubar[j] += a * JT
            if second.autonomous:
                qbar[:] = 0.0
            gy, gp = counted.second_order(second, t, y_n, jbar, qbar)
            ybar = ybar_n + gy
            pbar += gp
            y_next = y_n
        del block
    return counted.run(t0, ybar, pbar, outputs, M, kb, len(checkpoints), peak)
