"""A solve that takes no step (t0 = t1) still has a gradient: its outputs at t0 are y0(p), so the loss's
cotangent there goes through dy0/dp.  Every family and backend of the discrete adjoint against the closed form."""

from __future__ import annotations

import numpy as np
import pytest

from _linear_system import P_LINEAR, linear_model
from symsens.integrate._discrete_adjoint import discrete_adjoint

SCHEMES = ["tsit5", "rodas4", "kvaerno5", "radau5", "bdf"]


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_solve_without_steps_sends_the_cotangent_through_the_initial_conditions(scheme, backend):
    model = linear_model()   # y0 = (1, c): d y0 / d(a, b, c) = [[0, 0, 0], [0, 0, 1]]
    w = np.array([[0.3, -2.0], [1.5, 0.25]])
    run = discrete_adjoint(model, scheme, P_LINEAR, ("a", "b", "c"), np.array([0.0]), np.array([]),
                           np.array([0.0, 0.0]), w, rtol=1e-6, atol=1e-9, backend=backend)
    np.testing.assert_array_equal(run.gradient, [0.0, 0.0, -2.0 + 0.25])
    np.testing.assert_array_equal(run.outputs, [[1.0, P_LINEAR[2]], [1.0, P_LINEAR[2]]])


@pytest.mark.parametrize("scheme, module", [("rodas4", "rosenbrock"), ("kvaerno5", "dirk"), ("radau5", "radau"),
                                            ("bdf", "bdf")])
def test_gradient_routes_each_implicit_family_to_the_backend_asked_for(scheme, module, monkeypatch):
    """``symsens.gradient(method="adjoint-discrete", backend=...)`` runs the compiled sweep of the family for
    "compiled" and the NumPy sweep for "numpy", and the two give the same gradient (to rounding), which equals the
    closed form of the linear model to the scheme's accuracy."""
    import importlib

    import symsens
    from _linear_system import OBSERVED, TIMES, linear_closed_form
    from symsens.audit import DataLoss

    model = linear_model()
    loss = DataLoss(TIMES, OBSERVED, ("x1", "x2"))
    options = dict(method="adjoint-discrete", scheme=scheme, rtol=1e-8, p=P_LINEAR)
    compiled = symsens.gradient(model, loss, backend="compiled", **options)
    numpy_ = symsens.gradient(model, loss, backend="numpy", **options)
    assert compiled.success and numpy_.success
    np.testing.assert_allclose(compiled.gradient, numpy_.gradient, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(compiled.gradient, linear_closed_form(P_LINEAR)[1], rtol=1e-5)

    compiled_module = importlib.import_module(f"symsens.integrate._discrete_adjoint_{module}_compiled")

    def refuse(*args, **kwargs):
        raise RuntimeError("the compiled sweep ran")

    monkeypatch.setattr(compiled_module, f"discrete_adjoint_{module}_compiled", refuse)
    assert symsens.gradient(model, loss, backend="numpy", **options).success
    with pytest.raises(RuntimeError, match="the compiled sweep ran"):
        symsens.gradient(model, loss, backend="compiled", **options)
