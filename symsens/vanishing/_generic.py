"""Generic fixed-step integrators in high precision, differentiated by forward-mode dual numbers.

For catalogue schemes that have no compiled integrator (Gauss, Lobatto IIIC, Radau IIA-2, backward Euler, the
implicit midpoint and trapezoidal rules, SDIRK3) and for the fixed-order BDF``k`` methods, the test-equation
sensitivity is *measured* by running an integrator, not by evaluating ``R'``:

* :func:`irk_fixed_step` — an implicit Runge–Kutta method of any Butcher tableau, stage equations
  ``K_i = f(t + c_i h, y + h sum_j a_ij K_j)`` solved by full Newton iterations (matrix ``I - h A ⊗ J``) until the
  correction is below ``10^-(dps - 5)``, ``y_{n+1} = y_n + h sum_i b_i K_i``;
* :func:`lmm_fixed_step` — a linear multistep method ``sum_j alpha_j y_{m+j} = h sum_j beta_j f(y_{m+j})`` with its
  implicit value found by Newton's method, started from supplied exact values ``y_0 .. y_{k-1}``.

Both run over :class:`Dual` numbers whose value and derivative are mpmath floats, so the result carries the exact
derivative of the computed numerical solution (the discrete forward mode) with respect to whatever the caller
seeded — here the rate ``λ`` of ``y' = λ y``.  Working precision ``dps`` decimal digits (default 50), so rounding
does not limit the comparison with the closed forms at ``|z|`` up to ``10^8``.  Nothing here knows that the test
problem is linear: ``f`` and its Jacobian are callables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mpmath

from .._precision import mpmath_precision

__all__ = ["Dual", "irk_fixed_step", "lmm_fixed_step"]


class Dual:
    """``v + d ε`` with ``ε² = 0``: one directional derivative carried through arithmetic (mpmath scalars)."""

    __slots__ = ("v", "d")

    def __init__(self, v: Any, d: Any = 0) -> None:
        self.v = mpmath.mpf(v) if not isinstance(v, (mpmath.mpf, mpmath.mpc)) else v
        self.d = mpmath.mpf(d) if not isinstance(d, (mpmath.mpf, mpmath.mpc)) else d

    @staticmethod
    def lift(x: Any) -> Dual:
        return x if isinstance(x, Dual) else Dual(x, 0)

    def __add__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        return Dual(self.v + o.v, self.d + o.d)

    __radd__ = __add__

    def __sub__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        return Dual(self.v - o.v, self.d - o.d)

    def __rsub__(self, o: Any) -> Dual:
        return Dual.lift(o) - self

    def __mul__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        return Dual(self.v * o.v, self.v * o.d + self.d * o.v)

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        q = self.v / o.v
        return Dual(q, (self.d - q * o.d) / o.v)

    def __rtruediv__(self, o: Any) -> Dual:
        return Dual.lift(o) / self

    def __neg__(self) -> Dual:
        return Dual(-self.v, -self.d)

    def __repr__(self) -> str:
        return f"Dual({mpmath.nstr(self.v, 12)}, {mpmath.nstr(self.d, 12)})"


def _solve(M: list[list[Dual]], rhs: list[Dual]) -> list[Dual]:
    """Gaussian elimination with partial pivoting (pivots chosen on values) over duals."""
    n = len(rhs)
    a = [row[:] + [rhs[i]] for i, row in enumerate(M)]
    for k in range(n):
        p = max(range(k, n), key=lambda i: abs(a[i][k].v))
        if a[p][k].v == 0:
            raise ZeroDivisionError("singular Newton matrix")
        a[k], a[p] = a[p], a[k]
        for i in range(k + 1, n):
            m = a[i][k] / a[k][k]
            for j in range(k, n + 1):
                a[i][j] = a[i][j] - m * a[k][j]
    x = [Dual(0)] * n
    for k in range(n - 1, -1, -1):
        acc = a[k][n]
        for j in range(k + 1, n):
            acc = acc - a[k][j] * x[j]
        x[k] = acc / a[k][k]
    return x


Rhs = Callable[[Any, Sequence[Dual]], list[Dual]]
Jac = Callable[[Any, Sequence[Dual]], list[list[Dual]]]


def irk_fixed_step(
    A: Sequence[Sequence[Any]], b: Sequence[Any], c: Sequence[Any], f: Rhs, jac: Jac, y0: Sequence[Dual],
    h: Any, steps: int, *, dps: int = 50, max_iterations: int = 50,
) -> list[Dual]:
    """``steps`` steps of size ``h`` of the Runge–Kutta method ``(A, b, c)`` from ``y0`` at ``t = 0``.

    ``f(t, y)`` and ``jac(t, y)`` return lists of duals; coefficients may be exact SymPy numbers (converted once at
    ``dps + 10`` digits).  Full Newton on the stage derivatives ``K`` (``s n`` unknowns), starting from ``K_i = f(t,
    y)``; raises ``ArithmeticError`` if the correction does not fall below ``10^-(dps-5)`` times the scale of ``K``.
    """
    with mpmath_precision(dps=dps + 10):
        def num(x: Any) -> mpmath.mpf:
            return mpmath.mpf(str(__import__("sympy").N(x, dps + 10)))

        Am = [[num(v) for v in row] for row in A]
        bm = [num(v) for v in b]
        cm = [num(v) for v in c]
        s, n = len(bm), len(y0)
        hh = Dual.lift(h)
        y = [Dual.lift(v) for v in y0]
        t = Dual(0)
        tolerance = mpmath.mpf(10) ** (-(dps - 5))
        for _ in range(steps):
            f0 = f(t, y)
            K = [list(f0) for _ in range(s)]
            for _iteration in range(max_iterations):
                args = [[y[l] + hh * sum((Am[i][j] * K[j][l] for j in range(s)), Dual(0)) for l in range(n)] for i in range(s)]
                F = [f(t + cm[i] * hh, args[i]) for i in range(s)]
                G = [K[i][l] - F[i][l] for i in range(s) for l in range(n)]
                Js = [jac(t + cm[i] * hh, args[i]) for i in range(s)]
                M = [[Dual(0)] * (s * n) for _ in range(s * n)]
                for i in range(s):
                    for l in range(n):
                        for j in range(s):
                            for m in range(n):
                                value = -(hh * Am[i][j] * Js[i][l][m])
                                if i == j and l == m:
                                    value = value + 1
                                M[i * n + l][j * n + m] = value
                delta = _solve(M, G)
                K = [[K[i][l] - delta[i * n + l] for l in range(n)] for i in range(s)]
                scale = max(max(abs(K[i][l].v) for i in range(s) for l in range(n)), mpmath.mpf(1) * 10 ** -300)
                if max(abs(d.v) for d in delta) <= tolerance * scale and max(abs(d.d) for d in delta) <= tolerance * max(
                    max(abs(K[i][l].d) for i in range(s) for l in range(n)), mpmath.mpf(10) ** -300
                ):
                    break
            else:
                raise ArithmeticError("stage equations: Newton did not converge")
            y = [y[l] + hh * sum((bm[i] * K[i][l] for i in range(s)), Dual(0)) for l in range(n)]
            t = t + hh
        return y


def lmm_fixed_step(
    alpha: Sequence[Any], beta: Sequence[Any], f: Rhs, jac: Jac, start: Sequence[Sequence[Dual]], h: Any, steps: int,
    *, dps: int = 50, max_iterations: int = 50,
) -> list[list[Dual]]:
    """Run ``sum_j alpha_j y_{m+j} = h sum_j beta_j f(t_{m+j}, y_{m+j})`` for ``m = 0 .. steps-k``.

    ``start`` holds ``y_0 .. y_{k-1}`` (duals); returns the whole sequence ``y_0 .. y_steps``.  The new value solves
    ``alpha_k y - h beta_k f(t, y) = -sum_{j<k} (alpha_j y_{m+j} - h beta_j f_{m+j})`` by Newton's method.
    """
    k = len(alpha) - 1
    if len(start) != k:
        raise ValueError(f"`start` must hold k = {k} values, got {len(start)}")
    with mpmath_precision(dps=dps + 10):
        a = [mpmath.mpf(str(__import__("sympy").N(v, dps + 10))) for v in alpha]
        bb = [mpmath.mpf(str(__import__("sympy").N(v, dps + 10))) for v in beta]
        hh = Dual.lift(h)
        ys = [[Dual.lift(v) for v in row] for row in start]
        fs = [f(hh * j, ys[j]) for j in range(k)]
        n = len(ys[0])
        tolerance = mpmath.mpf(10) ** (-(dps - 5))
        for m in range(steps - k + 1):
            t_new = hh * (m + k)
            rhs = [-sum(((a[j] * ys[m + j][l] - hh * bb[j] * fs[m + j][l]) for j in range(k)), Dual(0)) for l in range(n)]
            y = list(ys[-1])
            for _iteration in range(max_iterations):
                fy = f(t_new, y)
                G = [a[k] * y[l] - hh * bb[k] * fy[l] - rhs[l] for l in range(n)]
                J = jac(t_new, y)
                M = [[(a[k] if l == q else 0) - hh * bb[k] * J[l][q] for q in range(n)] for l in range(n)]
                M = [[Dual.lift(v) for v in row] for row in M]
                delta = _solve(M, G)
                y = [y[l] - delta[l] for l in range(n)]
                scale = max(max(abs(v.v) for v in y), mpmath.mpf(10) ** -300)
                dscale = max(max(abs(v.d) for v in y), mpmath.mpf(10) ** -300)
                if max(abs(d.v) for d in delta) <= tolerance * scale and max(abs(d.d) for d in delta) <= tolerance * dscale:
                    break
            else:
                raise ArithmeticError("multistep step: Newton did not converge")
            ys.append(y)
            fs.append(f(t_new, y))
        return ys
