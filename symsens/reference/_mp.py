"""The mpmath path: arbitrary precision, in Python, independent of the compiled code.

Two integrators of the augmented system ``u = (y, S)``, ``S' = f_y S + f_p``, both over mpmath numbers at
``dps`` decimal digits, with the model evaluated from straight-line programs built from the SymPy
expression tree (:mod:`symsens.reference._tape`):

* **Taylor series** (non-stiff problems): the Taylor coefficients ``u_0 .. u_K`` of the solution at each
  step by automatic Taylor expansion of the augmented right-hand side (``u_{k+1} = g_k / (k + 1)``), the step
  chosen from the last two coefficients so that the last term is below the tolerance of every component,
  ``h = 0.8 min_i min_{j in {K-1, K}} (w_i / |u_{i,j}|)^(1/j)``, ``w_i = atol + rtol |u_i|`` (after A. Jorba and
  M. Zou, "A software package for the numerical integration of ODEs by means of high-order Taylor methods",
  Experiment. Math. 14 (2005) 99-117).  The sensitivities are Taylor-expanded with the state (their
  equations are part of the tape), so the result is the Taylor method applied to the augmented system.
* **Collocation** (stiff problems): the same algorithm as the compiled path (``cpp/symsens_collocation.hpp``:
  simplified Newton on the stage equations, sensitivities solved exactly stage by stage, step doubling),
  re-implemented here in Python so the two paths share no code below the model's SymPy expressions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .._precision import mpmath_precision
from ..derive import sensitivity_system
from ..model import Model
from ._fast import RunOutput
from ._tableau import collocation_tableau
from ._tape import JetEvaluator, Tape

__all__ = ["MpEngine"]

SUCCESS, STEP_SIZE_UNDERFLOW, NEWTON_FAILURE, NON_FINITE, TOO_MANY_STEPS, BAD_INPUT, TIME_BUDGET = range(7)


class _Timer:
    def __init__(self, seconds: float, on_progress: Callable[[float], None] | None) -> None:
        self.start = time.perf_counter()
        self.seconds = seconds
        self.on_progress = on_progress
        self.last = self.start

    def expired(self) -> bool:
        return self.seconds > 0 and time.perf_counter() - self.start > self.seconds

    def tick(self, t: mpmath.mpf) -> None:
        if self.on_progress is not None:
            now = time.perf_counter()
            if now - self.last > 0.5:
                self.last = now
                self.on_progress(float(t))


class _Lu:
    """Dense LU with partial pivoting over mpmath numbers."""

    def __init__(self, matrix: list[list[mpmath.mpf]]) -> None:
        n = len(matrix)
        a = [row[:] for row in matrix]
        pivot = list(range(n))
        for k in range(n):
            p = max(range(k, n), key=lambda i: abs(a[i][k]))
            if a[p][k] == 0:
                raise ZeroDivisionError("singular matrix")
            if p != k:
                a[k], a[p] = a[p], a[k]
                pivot[k], pivot[p] = pivot[p], pivot[k]
            inverse = 1 / a[k][k]
            row_k = a[k]
            for i in range(k + 1, n):
                if a[i][k] == 0:
                    continue
                m = a[i][k] * inverse
                a[i][k] = m
                row_i = a[i]
                for j in range(k + 1, n):
                    row_i[j] -= m * row_k[j]
        self.a, self.pivot, self.n = a, pivot, n

    def solve(self, b: list[mpmath.mpf]) -> list[mpmath.mpf]:
        a, n = self.a, self.n
        x = [b[self.pivot[i]] for i in range(n)]
        for i in range(n):
            if i:
                x[i] -= mpmath.fdot([(a[i][j], x[j]) for j in range(i)])
        for i in range(n - 1, -1, -1):
            if i < n - 1:
                x[i] -= mpmath.fdot([(a[i][j], x[j]) for j in range(i + 1, n)])
            x[i] /= a[i][i]
        return x


class MpEngine:
    """Runs of the mpmath path for one model, parameter selection, parameter values and initial state."""

    name = "mpmath"

    def __init__(self, model: Model, chosen: tuple[str, ...], p: list[mpmath.mpf], y0: list[mpmath.mpf] | None,
                 t0: float, t1: float) -> None:
        self.model, self.chosen, self.p, self.y0_given, self.t0, self.t1 = model, chosen, p, y0, t0, t1
        self.n, self.np_ = model.n_states, len(chosen)
        self.unit_roundoff = 1e-30
        self.cap = 60
        self._system = sensitivity_system(model, list(chosen))
        self._tapes: dict[str, Tape] = {}

    # -- tapes -------------------------------------------------------------------------------------------------
    def _tape(self, kind: str) -> Tape:
        if kind in self._tapes:
            return self._tapes[kind]
        model, system, n, P = self.model, self._system, self.n, self.np_
        state_inputs = [model.time, *model.states]
        sens_symbols = [system.sensitivities[i, j] for j in range(P) for i in range(n)]  # column-major
        if kind == "augmented":
            expressions = list(system.augmented_rhs)
            inputs = [*state_inputs, *sens_symbols, *model.parameters]
        elif kind == "rhs":
            expressions = list(model.rhs)
            inputs = [*state_inputs, *model.parameters]
        elif kind == "jacobians":
            expressions = [system.jacobian[i, k] for i in range(n) for k in range(n)]
            expressions += [system.parameter_jacobian[i, j] for i in range(n) for j in range(P)]
            inputs = [*state_inputs, *model.parameters]
        else:  # "initial"
            expressions = list(model.initial_conditions)
            expressions += [system.initial_sensitivities[i, j] for i in range(n) for j in range(P)]
            inputs = list(model.parameters)
        tape = Tape([sp.sympify(e) for e in expressions], inputs)
        self._tapes[kind] = tape
        return tape

    def precision_bits(self, rung: Any) -> int:
        return int(rung.dps * math.log2(10))

    def initial_values(self) -> tuple[list[mpmath.mpf], list[mpmath.mpf]]:
        """``y0`` and ``S0`` (row-major n x P) at the working precision."""
        n, P = self.n, self.np_
        if self.y0_given is not None:
            return [mpmath.mpf(v) for v in self.y0_given], [mpmath.mpf(0)] * (n * P)
        values = self._tape("initial").evaluate(self.p)
        return values[:n], values[n:]

    def jacobian_at_start(self) -> np.ndarray:
        with mpmath_precision(dps=20):
            y0, _ = self.initial_values()
            values = self._tape("jacobians").evaluate([mpmath.mpf(self.t0), *y0, *self.p])
        n = self.n
        return np.array([float(v) for v in values[: n * n]]).reshape(n, n)

    # -- runs --------------------------------------------------------------------------------------------------
    def run(self, rung: Any, t_eval: np.ndarray, seconds: float, on_progress: Callable[[float], None] | None) -> RunOutput:
        start = time.perf_counter()
        with mpmath_precision(dps=rung.dps):
            if rung.family == "taylor":
                result = self._taylor(rung, t_eval, _Timer(seconds, on_progress))
            else:
                result = self._collocation(rung, t_eval, _Timer(seconds, on_progress))
        status, values, accumulated, accepted, rejected, nfev, t_failure = result
        return RunOutput(
            status=status, values=values, accumulated_error=accumulated, accepted=accepted, rejected=rejected,
            nfev=nfev, njev=0, newton_iterations=0, lu=0, t_failure=t_failure, seconds=time.perf_counter() - start,
        )

    def _taylor(self, rung: Any, t_eval: np.ndarray, timer: _Timer) -> tuple:
        n, P = self.n, self.np_
        N = n + n * P
        K = rung.stages
        tape = self._tape("augmented")
        jets = JetEvaluator(tape, K, static_inputs=range(1 + N, 1 + N + len(self.p)))
        y, S_row = self.initial_values()
        # augmented order: y, then S column-major (S[:, 0], S[:, 1], ...)
        u = list(y) + [S_row[i * P + j] for j in range(P) for i in range(n)]
        t = mpmath.mpf(self.t0)
        t1 = mpmath.mpf(self.t1)
        rtol, atol = mpmath.mpf(rung.rtol), mpmath.mpf(rung.atol)
        zeros_p = [mpmath.mpf(0)] * len(self.p)
        outputs: list[list[mpmath.mpf]] = []
        accumulated = np.zeros((len(t_eval), N))
        running = np.zeros(N)
        next_out = 0
        steps = 0

        def emit() -> None:
            nonlocal next_out
            while next_out < len(t_eval) and mpmath.mpf(t_eval[next_out]) <= t:
                outputs.append(_row_major(u, n, P))
                accumulated[next_out] = running
                next_out += 1

        emit()
        while t < t1:
            if timer.expired():
                return self._partial(TIME_BUDGET, outputs, t_eval, N, accumulated, steps, t)
            jets.start([t, *u, *self.p])
            coefficients = [[value] for value in u]
            for k in range(K):
                g = [jets.coefficient(i, k) for i in range(N)]
                nxt = [gi / (k + 1) for gi in g]
                for i in range(N):
                    coefficients[i].append(nxt[i])
                if k < K - 1:
                    jets.next_order([mpmath.mpf(1) if k == 0 else mpmath.mpf(0), *nxt, *zeros_p])
            h = None
            for i in range(N):
                w = atol + rtol * abs(coefficients[i][0])
                for j in (K - 1, K):
                    c = abs(coefficients[i][j])
                    if c > 0 and w > 0:
                        candidate = (w / c) ** (mpmath.mpf(1) / j)
                        h = candidate if h is None or candidate < h else h
            # Every component zero at the start of the step: no scale yet, take a short first step.
            h = (t1 - t) * mpmath.mpf("1e-6") if h is None else h * mpmath.mpf("0.8")
            target = mpmath.mpf(t_eval[next_out]) if next_out < len(t_eval) else t1
            if target > t1:
                target = t1
            landing = t + h >= target or t + h * mpmath.mpf("1.01") > target
            if landing:
                h = target - t
            if h <= 0 or h < abs(t) * mpmath.mpf(10) ** (-rung.dps + 2):
                return self._partial(STEP_SIZE_UNDERFLOW, outputs, t_eval, N, accumulated, steps, t)
            new_u = []
            for i in range(N):
                c = coefficients[i]
                value = c[K]
                for j in range(K - 1, -1, -1):
                    value = value * h + c[j]
                new_u.append(value)
                running[i] += float(abs(c[K]) * h**K)
            if not all(mpmath.isfinite(v) for v in new_u):
                return self._partial(NON_FINITE, outputs, t_eval, N, accumulated, steps, t)
            u = new_u
            t = target if landing else t + h
            steps += 1
            timer.tick(t)
            emit()
        while next_out < len(t_eval):
            outputs.append(_row_major(u, n, P))
            accumulated[next_out] = running
            next_out += 1
        values = [v for row in outputs for v in row]
        return SUCCESS, values, accumulated, steps, 0, steps * K, float(t)

    def _partial(self, status: int, outputs: list, t_eval: np.ndarray, N: int, accumulated: np.ndarray, steps: int,
                 t: mpmath.mpf) -> tuple:
        values = [v for row in outputs for v in row]
        values += [mpmath.mpf("nan")] * (len(t_eval) * N - len(values))
        return status, values, accumulated, steps, 0, 0, float(t)

    # -- collocation -------------------------------------------------------------------------------------------
    def _collocation(self, rung: Any, t_eval: np.ndarray, timer: _Timer) -> tuple:
        n, P = self.n, self.np_
        N = n + n * P
        tableau = collocation_tableau(rung.family, rung.stages, rung.dps + 20)
        s = tableau.stages
        A = [[+a for a in row] for row in tableau.A]
        c = [+x for x in tableau.c]
        d = [+x for x in tableau.d]
        order = tableau.order
        f_tape, jf_tape = self._tape("rhs"), self._tape("jacobians")
        f_consts, jf_consts = f_tape.constants(), jf_tape.constants()
        p = self.p
        rtol, atol = mpmath.mpf(rung.rtol), mpmath.mpf(rung.atol)
        unit = mpmath.mpf(10) ** (-rung.dps)
        counts = {"nfev": 0}

        def f(t: mpmath.mpf, y: list[mpmath.mpf]) -> list[mpmath.mpf]:
            counts["nfev"] += 1
            return f_tape.evaluate([t, *y, *p], f_consts)

        def jacobians(t: mpmath.mpf, y: list[mpmath.mpf]) -> tuple[list[list[mpmath.mpf]], list[list[mpmath.mpf]]]:
            values = jf_tape.evaluate([t, *y, *p], jf_consts)
            J = [values[i * n:(i + 1) * n] for i in range(n)]
            F = [values[n * n + i * P: n * n + (i + 1) * P] for i in range(n)]
            return J, F

        def weight(v: mpmath.mpf) -> mpmath.mpf:
            return atol + rtol * abs(v)

        def step(t: mpmath.mpf, h: mpmath.mpf, y: list, S: list) -> tuple[int, list, list]:
            sn = s * n
            J0, _ = jacobians(t, y)
            M = [[(1 if (i == j and r == k) else 0) - h * A[i][j] * J0[r][k] for j in range(s) for k in range(n)]
                 for i in range(s) for r in range(n)]
            try:
                lu = _Lu(M)
            except ZeroDivisionError:
                return NEWTON_FAILURE, [], []
            Z = [mpmath.mpf(0)] * sn
            previous = None
            floor = 100 * unit / rtol
            for iteration in range(25):
                F = []
                for i in range(s):
                    F.extend(f(t + c[i] * h, [y[k] + Z[i * n + k] for k in range(n)]))
                if not all(mpmath.isfinite(v) for v in F):
                    return NON_FINITE, [], []
                G = [h * mpmath.fdot([(A[i][j], F[j * n + k]) for j in range(s)]) - Z[i * n + k]
                     for i in range(s) for k in range(n)]
                dZ = lu.solve(G)
                Z = [Z[m] + dZ[m] for m in range(sn)]
                norm = mpmath.mpf(0)
                for k in range(n):
                    scale = weight(max([abs(y[k])] + [abs(y[k] + Z[i * n + k]) for i in range(s)]))
                    for i in range(s):
                        if dZ[i * n + k] != 0:
                            norm = max(norm, abs(dZ[i * n + k]) / scale if scale > 0 else mpmath.inf)
                if norm <= floor:
                    break
                if previous is not None:
                    theta = norm / previous
                    if theta >= mpmath.mpf("0.99"):
                        if iteration >= 3:  # see symsens_collocation.hpp: zero-start components
                            return NEWTON_FAILURE, [], []
                    elif theta / (1 - theta) * norm <= mpmath.mpf("0.01"):
                        break
                previous = norm
            else:
                return NEWTON_FAILURE, [], []
            y1 = [y[k] + mpmath.fdot([(d[i], Z[i * n + k]) for i in range(s)]) for k in range(n)]
            S1: list[mpmath.mpf] = []
            if P:
                stage = [jacobians(t + c[i] * h, [y[k] + Z[i * n + k] for k in range(n)]) for i in range(s)]
                M = [[(1 if (i == j and r == k) else 0) - h * A[i][j] * stage[j][0][r][k]
                      for j in range(s) for k in range(n)] for i in range(s) for r in range(n)]
                try:
                    lu = _Lu(M)
                except ZeroDivisionError:
                    return NEWTON_FAILURE, [], []
                S1 = [mpmath.mpf(0)] * (n * P)
                for q in range(P):
                    column = [S[r * P + q] + h * mpmath.fdot([(A[i][j], stage[j][1][r][q]) for j in range(s)])
                              for i in range(s) for r in range(n)]
                    sigma = lu.solve(column)
                    for r in range(n):
                        S1[r * P + q] = S[r * P + q] + mpmath.fdot([(d[i], sigma[i * n + r] - S[r * P + q]) for i in range(s)])
            return SUCCESS, y1, S1

        y, S = self.initial_values()
        t = mpmath.mpf(self.t0)
        t1 = mpmath.mpf(self.t1)
        outputs: list[list[mpmath.mpf]] = []
        accumulated = np.zeros((len(t_eval), N))
        running = np.zeros(N)
        next_out = 0
        accepted = rejected = 0

        def emit() -> None:
            nonlocal next_out
            while next_out < len(t_eval) and mpmath.mpf(t_eval[next_out]) <= t:
                outputs.append(list(y) + list(S))
                accumulated[next_out] = running
                next_out += 1

        emit()
        f0 = f(t, y)
        d0 = max((abs(v) / weight(v) for v in y if v != 0), default=mpmath.mpf(0))
        d1 = max((abs(fv) / weight(v) for fv, v in zip(f0, y) if v != 0), default=mpmath.mpf(0))
        h_value = (t1 - t) * mpmath.mpf("1e-6") if (d0 < 1e-5 or d1 < 1e-5) else min(mpmath.mpf("0.01") * d0 / d1, t1 - t)
        denominator = mpmath.mpf(2) ** order - 1
        rejected_last = False
        while t < t1:
            if timer.expired():
                return self._partial(TIME_BUDGET, outputs, t_eval, N, accumulated, accepted, t)
            target = mpmath.mpf(t_eval[next_out]) if next_out < len(t_eval) else t1
            target = min(target, t1)
            h = h_value
            lands = False
            if t + h >= target or t + h * mpmath.mpf("1.01") > target:
                h = target - t
                lands = True
            if h <= 64 * unit * max(1, abs(t)):
                return self._partial(STEP_SIZE_UNDERFLOW, outputs, t_eval, N, accumulated, accepted, t)
            half = h / 2
            status, y_full, S_full = step(t, h, y, S)
            if status == SUCCESS:
                status, y_mid, S_mid = step(t, half, y, S)
            if status == SUCCESS:
                status, y_new, S_new = step(t + half, half, y_mid, S_mid)
            if status != SUCCESS:
                rejected += 1
                h_value = h / 4
                rejected_last = True
                continue
            new = y_new + S_new
            full = y_full + S_full
            old = list(y) + list(S)
            local = [abs(a - b) / denominator for a, b in zip(new, full)]
            error = mpmath.mpf(0)
            for i in range(N):
                if local[i] != 0:
                    scale = atol + rtol * max(abs(new[i]), abs(old[i]))
                    error = max(error, local[i] / scale if scale > 0 else mpmath.inf)
            if error <= 1:
                accepted += 1
                t = target if lands else t + h
                y, S = y_new, S_new
                running += np.array([float(v) for v in local])
                timer.tick(t)
                emit()
                factor = mpmath.mpf("0.9") * max(error, mpmath.mpf("1e-12")) ** (mpmath.mpf(-1) / (order + 1))
                factor = min(mpmath.mpf(1) if rejected_last else mpmath.mpf(4), max(mpmath.mpf("0.2"), factor))
                h_value = max(h_value, h * factor) if lands else h * factor
                rejected_last = False
            else:
                rejected += 1
                h_value = h * max(mpmath.mpf("0.2"), mpmath.mpf("0.9") * error ** (mpmath.mpf(-1) / (order + 1)))
                rejected_last = True
        while next_out < len(t_eval):
            outputs.append(list(y) + list(S))
            accumulated[next_out] = running
            next_out += 1
        values = [v for row in outputs for v in row]
        return SUCCESS, values, accumulated, accepted, rejected, counts["nfev"], float(t)


def _row_major(u: Sequence[mpmath.mpf], n: int, P: int) -> list[mpmath.mpf]:
    """(y, S column-major) -> (y, S row-major n x P), the layout of every run's output."""
    return list(u[:n]) + [u[n + j * n + i] for i in range(n) for j in range(P)]
