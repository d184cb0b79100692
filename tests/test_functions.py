"""exprel(x) = x/(exp(x)-1) and its derivatives against mpmath at 50 digits (an independent evaluation)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

from symsens.model import exprel, exprel_derivative
from symsens.model._functions import numpy_exprel, numpy_exprel_derivative

X = [-700.0, -30.0, -3.0, -2.01, -1.99, -0.6, -0.5, -0.4999, -1e-3, -1e-9, 0.0, 1e-12, 1e-6, 0.3, 0.49, 0.5, 0.51, 1.99, 2.01, 3.0, 30.0, 600.0]


def _reference(order: int, x: float) -> float:
    with mpmath.workdps(60):
        if x == 0:
            value = mpmath.diff(lambda u: u / mpmath.expm1(u) if u != 0 else mpmath.mpf(1), mpmath.mpf(0), order) if order else 1
        else:
            value = mpmath.diff(lambda u: u / mpmath.expm1(u), mpmath.mpf(x), order)
        return float(value)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_numpy_exprel_and_derivatives_match_mpmath(order: int) -> None:
    values = numpy_exprel_derivative(order, np.array(X))
    for x, value in zip(X, values):
        expected = _reference(order, x)
        assert value == pytest.approx(expected, rel=1e-13, abs=1e-15), (order, x)


def test_exprel_special_values_are_exact() -> None:
    x = sp.Symbol("x")
    assert exprel(0) == 1
    assert exprel_derivative(1, 0) == sp.Rational(-1, 2)
    assert exprel_derivative(2, 0) == sp.Rational(1, 6)  # B_2
    assert sp.diff(exprel(x), x) == exprel_derivative(1, x)
    assert sp.diff(exprel(x), x, 3) == exprel_derivative(3, x)
    # The closed form is what it stands for.
    assert sp.simplify(exprel(x).rewrite(sp.exp) - x / (sp.exp(x) - 1)) == 0
    assert numpy_exprel(0.0) == 1.0


@pytest.mark.parametrize("x", ["1e-20", "-0.25", "0.499", "3"])
def test_exprel_evalf_at_high_precision(x: str) -> None:
    value = exprel(sp.Float(x, 60)).evalf(50)
    d2 = exprel_derivative(2, sp.Float(x, 60)).evalf(40)
    with mpmath.workdps(70):
        u = mpmath.mpf(x)
        expected = u / mpmath.expm1(u)
        expected2 = mpmath.diff(lambda v: v / mpmath.expm1(v), u, 2)
        assert abs(mpmath.mpf(str(value)) - expected) < mpmath.mpf(10) ** -45
        assert abs(mpmath.mpf(str(d2)) - expected2) < mpmath.mpf(10) ** -35
