"""Special functions of the model language that SymPy lacks.

``exprel(x) = x / (exp(x) - 1)`` with ``exprel(0) = 1``.  It is the function behind the textbook
Hodgkin–Huxley rate ``(V + 40) / (1 - exp(-(V + 40)/10)) = 10 * exprel(-(V + 40)/10)``, which is 0/0 at
``V = -40``.  Note the convention: this is the *reciprocal* of GSL's ``gsl_sf_exprel`` and SciPy's
``scipy.special.exprel`` (both ``(exp(x) - 1)/x``); the model language uses
``x/(exp(x) - 1)`` because it is what rate laws contain.

Near 0 the function and every derivative are evaluated from the generating function of the Bernoulli
numbers (Abramowitz & Stegun 23.1.1)

    x / (exp(x) - 1) = sum_{k>=0} B_k x^k / k!,   |x| < 2 pi,

so ``d^n/dx^n exprel(x) = sum_{k>=n} B_k x^(k-n) / (k-n)!``; away from 0 the closed form is used.
Symbolic differentiation yields ``exprel_derivative(n, x)``, so Jacobians and higher derivatives stay
free of removable singularities all the way to generated code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp
from mpmath.libmp import prec_to_dps

from .._once import cached_once

__all__ = ["exprel", "exprel_derivative", "numpy_exprel", "numpy_exprel_derivative", "NUMPY_FUNCTIONS"]

# Below this |x| the Bernoulli series is used: with 60 terms its truncation error at |x| = 2 is about
# (2 / 2 pi)^60 ~ 1e-30, while the closed form loses digits to cancellation at small |x|, the more the
# higher the derivative (3rd derivative at x = -0.6: 13 digits only).
_SERIES_RADIUS = 2.0
_SERIES_TERMS = 60


@cached_once()
def _bernoulli_coefficients(order: int) -> tuple[float, ...]:
    """Taylor coefficients B_k / (k - order)! for k = order .. order + _SERIES_TERMS - 1 (B_1 = -1/2)."""
    coefficients = []
    for k in range(order, order + _SERIES_TERMS):
        bernoulli = sp.bernoulli(k) if k != 1 else sp.Rational(-1, 2)
        coefficients.append(float(bernoulli / sp.factorial(k - order)))
    return tuple(coefficients)


@cached_once()
def _closed_form_derivative(order: int, positive: bool = False) -> sp.Expr:
    """n-th derivative in closed form; for ``x > 0`` written in ``exp(-x)`` so nothing overflows."""
    x = sp.Symbol("x")
    base = x * sp.exp(-x) / (1 - sp.exp(-x)) if positive else x / (sp.exp(x) - 1)
    return sp.diff(base, x, order)


@cached_once()
def _closed_form_numpy(order: int, positive: bool) -> Any:
    from ..derive._numeric import lambdify_safely  # derive imports this module: import on first use

    x = sp.Symbol("x")
    function = lambdify_safely([x], [_closed_form_derivative(order, positive)], "numpy")
    return lambda values: function(values)[0]


def numpy_exprel_derivative(order: int, x: Any) -> Any:
    """``d^order/dx^order [x/(exp(x)-1)]`` elementwise for float arrays, accurate near 0.

    Uses the Bernoulli series for ``|x| < 2`` and the closed form elsewhere; for ``x -> -inf`` the
    closed form's ``exp`` underflows harmlessly and for ``x -> +inf`` the value tends to 0.
    """
    order = int(order)
    values = np.asarray(x, dtype=float)
    result = np.empty_like(values)
    small = np.abs(values) < _SERIES_RADIUS
    if np.any(small):
        coefficients = _bernoulli_coefficients(order)
        # Horner evaluation of sum c_j x^j.
        xs = values[small]
        acc = np.zeros_like(xs)
        for coefficient in reversed(coefficients):
            acc = acc * xs + coefficient
        result[small] = acc
    for positive, mask in ((False, ~small & (values < 0)), (True, ~small & (values > 0))):
        if np.any(mask):
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                evaluated = np.asarray(_closed_form_numpy(order, positive)(values[mask]), dtype=float)
            # Far out the terms underflow to 0 * inf = nan; the true value is 0 to double precision there.
            result[mask] = np.where(np.isnan(evaluated) & (np.abs(values[mask]) > 30), 0.0, evaluated)
    result[np.isnan(values)] = np.nan
    if np.ndim(x) == 0:
        return float(result)
    return result


def numpy_exprel(x: Any) -> Any:
    """``x/(exp(x)-1)`` elementwise, with the removable singularity at 0 filled (value 1)."""
    return numpy_exprel_derivative(0, x)


def _evalf_derivative(order: int, x: sp.Expr, prec: int) -> sp.Expr | None:
    """``d^order/dx^order exprel`` at a numeric ``x`` to ``prec`` bits (Bernoulli series near 0)."""
    if not x.is_number:
        return None
    dps = prec_to_dps(prec)
    x_value = x.evalf(dps + 10)
    if not x_value.is_real:
        return None
    if abs(x_value) < sp.Rational(1, 2):
        # Terms decay like (|x| / 2 pi)^k <= (4 pi)^-k: enough of them for prec bits.
        terms = int(prec * math.log(2) / math.log(4 * math.pi)) + 10
        total = sp.Integer(0)
        for k in range(order, order + terms):
            bernoulli = sp.bernoulli(k) if k != 1 else sp.Rational(-1, 2)
            total += bernoulli / sp.factorial(k - order) * x_value ** (k - order)
        return total.evalf(dps)
    return _closed_form_derivative(order).subs(sp.Symbol("x"), x_value).evalf(dps)


class exprel(sp.Function):  # noqa: N801 - the model language's name
    """``exprel(x) = x/(exp(x) - 1)``, continuous at 0 with value 1 (Bernoulli generating function)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.One
        if x.is_Rational:
            # Exact input: the closed form is exact.  Floats are left to evalf (no cancellation).
            return x / (sp.exp(x) - 1)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return exprel_derivative(1, self.args[0])

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: Any) -> sp.Expr:
        return x / (sp.exp(x) - 1)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        return _evalf_derivative(0, self.args[0], prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _latex(self, printer: Any) -> str:
        return r"\operatorname{exprel}\left(%s\right)" % printer._print(self.args[0])


class exprel_derivative(sp.Function):  # noqa: N801
    """``exprel_derivative(n, x)``: the n-th derivative of ``exprel`` at ``x`` (n a non-negative integer)."""

    nargs = 2

    @classmethod
    def eval(cls, n: sp.Expr, x: sp.Expr) -> sp.Expr | None:
        if not (n.is_Integer and n >= 0):
            raise ValueError(f"exprel_derivative: order must be a non-negative integer, got {n}")
        if n == 0:
            return exprel(x)
        if x.is_zero:
            # d^n/dx^n at 0 is B_n (Bernoulli numbers with B_1 = -1/2).
            return sp.Rational(-1, 2) if n == 1 else sp.bernoulli(n)
        return None

    def fdiff(self, argindex: int = 2) -> sp.Expr:
        if argindex != 2:
            raise sp.ArgumentIndexError(self, argindex)
        n, x = self.args
        return exprel_derivative(n + 1, x)

    def _eval_rewrite_as_exp(self, n: sp.Expr, x: sp.Expr, **kwargs: Any) -> sp.Expr:
        return _closed_form_derivative(int(n)).subs(sp.Symbol("x"), x)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        n, x = self.args
        return _evalf_derivative(int(n), x, prec)

    def _latex(self, printer: Any) -> str:
        n, x = self.args
        return r"\operatorname{exprel}^{(%s)}\left(%s\right)" % (printer._print(n), printer._print(x))


NUMPY_FUNCTIONS: dict[str, Any] = {
    "exprel": numpy_exprel,
    "exprel_derivative": numpy_exprel_derivative,
}
"""Implementations to pass to :func:`sympy.lambdify` in ``modules`` for the model language's functions."""
