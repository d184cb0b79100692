"""Exponential Rosenbrock schemes: catalogue entries, analysis behaviour, and the compiled integrators.

Independent checks: exp(z) and the φ-function series; the exact t e^{λt} of y' = λy; the closed form of a nonlinear,
non-autonomous problem (convergence orders 2 and 3 fitted from log-log slopes); scipy's Radau at rtol 1e-12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens import SchemeError
from symsens.schemes import (
    decay_asymptotics, get_scheme, is_A_stable, is_L_stable, scheme_names, stability_function, R_infinity,
)
from symsens.schemes._exponential import EXPONENTIAL_SCHEMES, exponential_stability_function, phi

EPS = np.finfo(float).eps
THETA13 = 5.371920351148152


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


@pytest.mark.parametrize("name", EXPONENTIAL_SCHEMES)
def test_catalogue_entry_and_analysis(name: str) -> None:
    scheme = get_scheme(name)
    assert get_scheme(name) is scheme and scheme.family == "exponential"
    assert name not in scheme_names()  # the listed catalogue is the rational one
    assert exponential_stability_function(scheme) == sp.exp(sp.Symbol("z"))
    assert is_A_stable(scheme) is True
    for func, match in ((stability_function, "not a rational function"), (R_infinity, "no limit"),
                        (is_L_stable, "no limit"), (decay_asymptotics, "faster than any power")):
        with pytest.raises(SchemeError, match=match):
            func(scheme)


def test_phi_functions() -> None:
    x = sp.Symbol("x")
    for k in range(4):
        series = sp.series(phi(k, x), x, 0, 5).removeO()
        expected = sum(x**j / sp.factorial(j + k) for j in range(5))
        assert sp.expand(series - expected) == 0
    assert phi(1, x).subs(x, 2) == (sp.exp(2) - 1) / 2


def _rounding_bound(z: float, steps: int) -> float:
    """Padé [13/13] evaluated at |x| <= θ13 loses at most e^{θ13/2} to cancellation (for negative x the alternating
    numerator and denominator terms are bounded by p(|x|) ~ e^{|x|/2}); each of the s squarings doubles the relative
    error; errors add over the steps."""
    s = max(0, math.ceil(math.log2(abs(z) / THETA13))) if abs(z) > THETA13 else 0
    return steps * (2**s + 1) * 4 * math.exp(THETA13 / 2) * EPS


@pytest.mark.parametrize("name", EXPONENTIAL_SCHEMES)
def test_sensitivity_equals_exact_on_the_test_equation(name: str) -> None:
    model = symsens.load_model("stiff-linear")
    for z in (-1.0, -10.0, -50.0, -300.0):
        for n in (1, 5):
            if n * z < -700:
                continue  # e^{nz} underflows
            s = symsens.solve(model, (0.0, float(n)), p={"lam": z, "y0": 1.0}, method=name, sensitivity="discrete",
                              fixed_step=1.0, parameters=["lam", "y0"], t_eval=[float(n)])
            t = float(n)
            exact_y = math.exp(z * t)
            bound = _rounding_bound(z, n)
            assert abs(s.y[-1, 0] - exact_y) <= bound * exact_y, (z, n)
            assert abs(s.sensitivities[-1, 0, 0] - t * exact_y) <= bound * t * exact_y, (z, n)
            assert abs(s.sensitivities[-1, 0, 1] - exact_y) <= bound * exact_y, (z, n)


def _nonlinear() -> symsens.Model:
    """y1' = -2 a t y1^2, y2' = a y1 y2:  y1 = 1/(1 + a t^2), y2 = exp(sqrt(a) atan(sqrt(a) t))."""
    return symsens.Model(states=["y1", "y2"], parameters={"a": 1.0}, rhs=["-2*a*t*y1^2", "a*y1*y2"],
                         initial_conditions=[1, 1], name="nonlinear-closed-form")


@pytest.mark.parametrize(("name", "order"), [("exprb-euler", 2), ("exprb32", 3)])
def test_convergence_order_on_a_nonautonomous_problem(name: str, order: int) -> None:
    model = _nonlinear()
    exact_end = np.array([1.0 / 2.0, math.exp(math.atan(1.0))])
    errors = []
    steps = (20, 40, 80)
    for n in steps:
        s = symsens.solve(model, (0.0, 1.0), method=name, fixed_step=1.0 / n, t_eval=[1.0])
        errors.append(np.max(np.abs(s.y[-1] - exact_end)))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope == pytest.approx(order, abs=0.2), errors


def test_adaptive_exprb32_against_radau_reference() -> None:
    """Adaptive exprb32 (embedded estimate) on van der Pol: solution and discrete gradient against Radau IIA-3's
    continuous forward sensitivities at rtol 1e-12 (a different method and a different gradient mode)."""
    model = symsens.load_model("van-der-pol").with_parameter_values({"mu": 10.0})
    s = symsens.solve(model, (0.0, 2.0), method="exprb32", rtol=1e-9, atol=1e-11, t_eval=[2.0],
                      sensitivity="discrete").check()
    ref = symsens.solve(model, (0.0, 2.0), method="radau-iia-3", rtol=1e-12, atol=1e-14, t_eval=[2.0],
                        sensitivity="forward", sensitivity_in_norm=True).check()
    assert np.allclose(s.y[-1], ref.y[-1], rtol=1e-6, atol=1e-8)
    assert np.allclose(s.sensitivities[-1], ref.sensitivities[-1], rtol=1e-4, atol=1e-6)
    assert s.stats.accepted_steps > 10 and s.stats.rejected_steps < s.stats.accepted_steps
