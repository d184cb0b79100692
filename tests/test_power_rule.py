"""Powers with a symbolic exponent at a zero base: Hill terms ``(x/K)^h`` with ``x(0) = 0``.

SymPy differentiates ``b^e`` (symbolic ``e``) as ``e b^e / b``, which is 0/0 at ``b = 0``: every implicit solver
then starts from a NaN Jacobian.  symsens differentiates by the power rule ``e b^(e-1)``, which is the same
function wherever SymPy's form is defined, and defined (here 0) at ``b = 0``.  Checked against SymPy's own
derivative away from 0, against the limit at 0, and by solving from ``x(0) = 0`` with implicit schemes, whose
results must agree with an explicit scheme that never uses the Jacobian.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.derive import jacobian


def _hill() -> symsens.Model:
    return symsens.Model(
        states=["x"], parameters={"k": 1.0, "K": 0.5, "h": 2.0, "v": 1.0},
        rhs=["v*(x/K)^h/(1 + (x/K)^h) - k*x + 0.1"], initial_conditions=["0"], name="hill", t_span=(0.0, 5.0),
    )


def test_jacobian_is_sympys_derivative_away_from_zero_and_its_limit_at_zero() -> None:
    model = _hill()
    (x,) = model.states
    values = dict(zip(model.parameters, model.parameter_values))
    entry = jacobian(model)[0].subs(values)
    reference = sp.diff(model.rhs[0], x).subs(values)
    for point in (0.05, 0.3, 1.7, 12.0):
        assert float(entry.subs(x, point)) == pytest.approx(float(reference.subs(x, point)), rel=1e-14)
    with np.errstate(divide="ignore", invalid="ignore"):  # SymPy's form, evaluated as the solver would: 0/0
        sympy_form = sp.lambdify([x, *model.parameters], sp.diff(model.rhs[0], x), "numpy")
        assert np.isnan(sympy_form(np.float64(0.0), *model.parameter_values))
    assert float(entry.subs(x, 0)) == -1.0  # the limit: d/dx (x/K)^2/(1+(x/K)^2) = 0 at 0, so J = -k


@pytest.mark.parametrize("scheme", ["radau5", "bdf", "rodas4"])
@pytest.mark.parametrize("mode", ["forward", "discrete"])
def test_implicit_schemes_start_from_a_zero_base(scheme: str, mode: str) -> None:
    model = _hill()
    common = dict(sensitivity=mode, parameters=["k", "K", "v"], rtol=1e-10, atol=1e-12)
    implicit = symsens.solve(model, (0.0, 5.0), method=scheme, **common)
    explicit = symsens.solve(model, (0.0, 5.0), method="verner7", **common)
    assert implicit.status == "success", implicit.message
    np.testing.assert_allclose(implicit.y[-1], explicit.y[-1], rtol=1e-7)
    np.testing.assert_allclose(implicit.sensitivities[-1], explicit.sensitivities[-1], rtol=1e-6)
