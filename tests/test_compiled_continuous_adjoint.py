"""The interpolating continuous adjoint in compiled code (``symsens.integrate._compiled_adjoint``).

Every number is checked against something independent of the compiled backward pass: the closed form of
``y' = A(p) y`` from ``scipy.linalg.expm``/``expm_frechet`` (non-stiff and stiff), the verified reference
gradient (``symsens.true_gradient``), and the SciPy implementation of the same adjoint.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.audit import DataLoss, ExpressionLoss, IntegralLoss, TrajectoryLoss
from symsens.derive import adjoint_system, least_squares
from symsens.integrate._compiled_adjoint import compiled_adjoint_gradient

from _linear_system import OBSERVED, P_LINEAR, TIMES, linear_closed_form, linear_model


def closed_form(p: np.ndarray, stiffness: float = 1.0) -> tuple[float, np.ndarray]:
    """``L`` and ``dL/dp`` from the matrix exponential and its Fréchet derivative (``tests/_linear_system.py``)."""
    return linear_closed_form(p, stiffness)


@pytest.mark.parametrize(("scheme", "tolerance"), [("tsit5", 1e-9), ("radau-iia-3", 1e-10), ("bdf", 1e-7)])
def test_matches_the_closed_form_on_a_linear_system(scheme: str, tolerance: float) -> None:
    model = linear_model()
    system = adjoint_system(model, least_squares(model))
    value, expected = closed_form(P_LINEAR)
    run = compiled_adjoint_gradient(system, (0.0, 2.0), P_LINEAR, times=TIMES, data=OBSERVED, method=scheme,
                                    rtol=1e-10, atol=1e-13)
    assert run.status == "success", run.message
    assert abs(run.loss - value) <= 1e-8 * value
    assert np.max(np.abs(run.gradient - expected)) <= tolerance * np.max(np.abs(expected))
    assert run.backward["steps"] > 0 and run.forward["steps"] > 0


def test_error_falls_with_the_tolerance() -> None:
    """The error against the closed form shrinks with rtol (the backward pass has no fixed error floor)."""
    model = linear_model()
    system = adjoint_system(model, least_squares(model))
    _, expected = closed_form(P_LINEAR)
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8, 1e-10):
        run = compiled_adjoint_gradient(system, (0.0, 2.0), P_LINEAR, times=TIMES, data=OBSERVED, method="tsit5",
                                        rtol=rtol, atol=rtol * 1e-3)
        errors.append(float(np.max(np.abs(run.gradient - expected)) / np.max(np.abs(expected))))
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 1e-10


def test_stiff_linear_system_with_implicit_schemes() -> None:
    """A fast mode of rate 1.5e4: Radau IIA integrates lambda backwards stably and accurately.

    The forward solution has an initial transient of width ~1e-4 that the smooth adjoint steps over; the
    quadrature of ``F_p^T lambda`` must follow the forward steps there, or dL/da and dL/db are off by 50-80 %.
    """
    stiffness = 1e4
    model = linear_model(stiffness)
    system = adjoint_system(model, least_squares(model))
    _, expected = closed_form(P_LINEAR, stiffness)
    for scheme in ("radau-iia-3",):
        run = compiled_adjoint_gradient(system, (0.0, 2.0), P_LINEAR, times=TIMES, data=OBSERVED, method=scheme,
                                        rtol=1e-8, atol=1e-11)
        assert run.status == "success", run.message
        np.testing.assert_allclose(run.gradient, expected, rtol=1e-6, atol=1e-9 * np.max(np.abs(expected)))
        # Stiff: an explicit backward pass would need ~1e4 steps; the implicit one takes a few hundred.
        assert run.backward["steps"] < 2000


def test_hodgkin_huxley_against_the_true_gradient_and_the_scipy_adjoint() -> None:
    model = symsens.load_model("hodgkin-huxley")
    loss = ExpressionLoss("V^2", (5.0, 10.0))
    options = dict(parameters=["g_Na", "g_K"], t_span=(0.0, 10.0))
    truth = symsens.true_gradient(model, loss, **options)
    assert np.all(truth.digits >= 8)
    compiled = symsens.gradient(model, loss, method="adjoint-interpolating", scheme="rodas4", rtol=1e-9, **options)
    assert compiled.status == "success", compiled.message
    assert "compiled" in compiled.message
    np.testing.assert_allclose(compiled.gradient, truth.gradient, rtol=1e-6)
    scipy_result = symsens.gradient(model, loss, method="adjoint-interpolating", scheme="radau", rtol=1e-9, **options)
    np.testing.assert_allclose(compiled.gradient, scipy_result.gradient, rtol=1e-6)


def test_trajectory_loss_targets_come_from_the_same_compiled_scheme() -> None:
    """The audit's default loss: zero loss and gradient at the data parameters, a misfit away from them."""
    model = symsens.load_model("van-der-pol")
    loss = TrajectoryLoss(data_parameters={"mu": 1.0})
    at_data = symsens.gradient(model, loss, p={"mu": 1.0}, t_span=(0.0, 3.0), scheme="tsit5")
    assert at_data.status == "success" and at_data.loss < 1e-20 and abs(at_data.gradient[0]) < 1e-10
    grid = tuple(np.linspace(0.5, 3.0, 6))
    fitted = TrajectoryLoss(grid=grid, data_parameters={"mu": 1.0})
    truth = symsens.true_gradient(model, fitted, p={"mu": 1.3}, t_span=(0.0, 3.0), digits=10)
    away = symsens.gradient(model, fitted, p={"mu": 1.3}, t_span=(0.0, 3.0), scheme="tsit5", rtol=1e-9)
    np.testing.assert_allclose(away.gradient, truth.gradient, rtol=1e-6)


def test_data_loss_with_backend_compiled_and_scipy_names() -> None:
    """``backend="compiled"`` runs symsens' own BDF for the name SciPy shares; both agree with each other."""
    model = linear_model()
    loss = DataLoss(TIMES[1:], OBSERVED[1:], ("x1", "x2"))
    compiled = symsens.gradient(model, loss, scheme="bdf", backend="compiled", rtol=1e-9)
    scipy_result = symsens.gradient(model, loss, scheme="bdf", rtol=1e-9)
    assert "compiled" in compiled.message and "compiled" not in scipy_result.message
    np.testing.assert_allclose(compiled.gradient, scipy_result.gradient, rtol=1e-5)


def test_backsolve_matches_the_closed_form_where_the_backward_state_solve_is_stable() -> None:
    """Non-stiff: the reconstructed states agree with the forward ones, and so does the gradient."""
    model = linear_model()
    system = adjoint_system(model, least_squares(model))
    _, expected = closed_form(P_LINEAR)
    for scheme in ("tsit5", "radau-iia-3"):
        run = compiled_adjoint_gradient(system, (0.0, 2.0), P_LINEAR, times=TIMES, data=OBSERVED, method=scheme,
                                        rtol=1e-10, atol=1e-13, variant="backsolve")
        assert run.status == "success", run.message
        assert np.max(np.abs(run.gradient - expected)) <= 1e-8 * np.max(np.abs(expected))
        # Three restarts below t1 (t = 1, 0.5, then t0): each distance measured, all small.
        assert len(run.reconstruction_errors) == 3 and np.all(run.reconstruction_errors < 1e-8)
        assert run.y0_reconstruction_error == run.reconstruction_errors[-1]


def test_backsolve_fails_on_the_stiff_system_where_interpolating_succeeds() -> None:
    """Backwards, the fast mode (rate 1.5e4) grows like exp(1.5e4 (1 - t)): the state solve cannot follow."""
    stiffness = 1e4
    model = linear_model(stiffness)
    loss = DataLoss(TIMES[1:], OBSERVED[1:], ("x1", "x2"))
    _, expected = closed_form(P_LINEAR, stiffness)
    options = dict(scheme="radau-iia-3", rtol=1e-8, atol=1e-11)
    interpolating = symsens.gradient(model, loss, method="adjoint-interpolating", **options)
    np.testing.assert_allclose(interpolating.gradient, closed_form_without_t0(stiffness), rtol=1e-6)
    # The backward state solve needs ever smaller steps as the fast mode grows: a step budget ends it.
    system = adjoint_system(model, least_squares(model))
    backsolve = compiled_adjoint_gradient(system, (0.0, 2.0), P_LINEAR, times=TIMES[1:], data=OBSERVED[1:],
                                          method="radau-iia-3", rtol=1e-8, atol=1e-11, variant="backsolve",
                                          max_steps=3000)
    if backsolve.status == "success":  # then it is far off, and says so
        assert np.max(np.abs(backsolve.gradient - interpolating.gradient)) > 1e-2 * np.max(np.abs(expected))
        assert "unreliable" in backsolve.message
    else:
        assert backsolve.gradient is None and "backward pass" in backsolve.message
        assert backsolve.t_failure is not None and 1.9 < backsolve.t_failure <= 2.0


def closed_form_without_t0(stiffness: float) -> np.ndarray:
    """The closed-form gradient of the DataLoss above (no data point at t0)."""
    full = closed_form(P_LINEAR, stiffness)[1]
    r0 = np.array([1.0, P_LINEAR[2]]) - OBSERVED[0]
    return full - 2.0 * np.array([0.0, 0.0, r0[1]])


def test_a_blow_up_is_a_status_not_a_number() -> None:
    model = symsens.Model(states=["y"], parameters={"k": 1.0}, rhs=["k*y^2"], initial_conditions=["1"], t_span=(0, 2))
    for method in ("adjoint-interpolating", "adjoint-backsolve"):
        result = symsens.gradient(model, ExpressionLoss("y", (0.5,)), method=method, scheme="tsit5")
        assert result.status != "success" and result.gradient is None
        assert result.t_failure is not None and 0.9 < result.t_failure < 1.01
        with pytest.raises(symsens.IntegrationError, match="forward pass"):
            result.check()


def test_bad_requests_name_the_problem() -> None:
    model = linear_model()
    loss = DataLoss(TIMES[1:], OBSERVED[1:], ("x1", "x2"))
    with pytest.raises(ValueError, match="`backend`"):
        symsens.gradient(model, loss, scheme="tsit5", backend="gpu")
    with pytest.raises(ValueError, match="IntegralLoss"):
        symsens.gradient(model, IntegralLoss("x1^2"), scheme="tsit5")
    with pytest.raises(ValueError, match="exponential"):
        symsens.gradient(model, loss, scheme="exprb32")
    with pytest.raises(ValueError, match="`backend` applies"):
        symsens.gradient(model, loss, method="forward", backend="compiled")
    system = adjoint_system(model, [least_squares(model)])
    from symsens.derive import integral_loss

    with pytest.raises(ValueError, match="pointwise"):
        compiled_adjoint_gradient(adjoint_system(model, integral_loss(model, "x1^2")), (0.0, 2.0), P_LINEAR)
    assert system.has_pointwise
