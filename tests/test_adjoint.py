"""Adjoint gradients: the derived system, both continuous adjoints, ``symsens.gradient`` and ``true_gradient``.

Each number is checked against something independent of the adjoint code: closed forms through
``scipy.linalg.expm``/``expm_frechet`` and elementary integrals, the verified reference gradient, and
the audit's own runs for the methods ``gradient`` shares with it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from scipy.linalg import expm, expm_frechet

import symsens
from symsens.audit import DataLoss, ExpressionLoss, IntegralLoss, TrajectoryLoss
from symsens.cli import main
from symsens.derive import (
    adjoint_system, adjoint_to_json_dict, adjoint_to_latex, adjoint_to_text, integral_loss, jacobian, least_squares,
    parameter_jacobian,
)

# ---------------------------------------------------------------------------------------------------------
# y' = A(p) y, y(0) = (1, c): closed form y(t) = expm(A t) y0, dy/dp_j = expm_frechet(A t, dA/dp_j t) y0 + ...
# ---------------------------------------------------------------------------------------------------------

P_LINEAR = np.array([1.5, 0.7, 0.3])
TIMES = np.array([0.0, 0.5, 1.0, 2.0])          # data at t0 and at t1 too: jumps at both ends
OBSERVED = np.array([[0.9, 0.2], [0.5, 0.1], [0.2, -0.1], [0.1, 0.0]])


def linear_model() -> symsens.Model:
    return symsens.Model(states=["x1", "x2"], parameters={"a": 1.5, "b": 0.7, "c": 0.3},
                         rhs=["-a*x1 + x2", "-b*x1 - 0.5*x2"], initial_conditions=["1", "c"], name="linear",
                         t_span=(0.0, 2.0))


def _A(p: np.ndarray) -> np.ndarray:
    return np.array([[-p[0], 1.0], [-p[1], -0.5]])


_DA = [np.array([[-1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [-1.0, 0.0]]), np.zeros((2, 2))]


def linear_closed_form(p: np.ndarray, times: np.ndarray = TIMES, observed: np.ndarray = OBSERVED
                       ) -> tuple[float, np.ndarray]:
    """``L = sum_k |y(t_k) - d_k|^2`` and its gradient from the matrix exponential and its Fréchet derivative."""
    y0 = np.array([1.0, p[2]])
    dy0 = [np.zeros(2), np.zeros(2), np.array([0.0, 1.0])]
    value, grad = 0.0, np.zeros(3)
    for t, d in zip(times, observed):
        E = expm(_A(p) * t)
        r = E @ y0 - d
        value += float(r @ r)
        for j in range(3):
            dy = expm_frechet(_A(p) * t, _DA[j] * t, compute_expm=False) @ y0 + E @ dy0[j]
            grad[j] += 2.0 * float(r @ dy)
    return value, grad


@pytest.fixture(scope="module")
def linear() -> symsens.Model:
    return linear_model()


@pytest.mark.parametrize("method", ["adjoint-interpolating", "adjoint-backsolve"])
@pytest.mark.parametrize(("rtol", "bound"), [(1e-6, 1e-4), (1e-10, 1e-7)])
def test_adjoints_match_the_matrix_exponential(linear: symsens.Model, method: str, rtol: float, bound: float) -> None:
    value, expected = linear_closed_form(P_LINEAR)
    loss = DataLoss(TIMES, OBSERVED, ("x1", "x2"))
    result = symsens.gradient(linear, loss, method=method, rtol=rtol, atol=rtol * 1e-3)
    assert result.status == "success", result.message
    assert result.parameters == ("a", "b", "c")
    assert abs(result.loss - value) <= bound * value
    assert np.max(np.abs(result.gradient - expected)) <= bound * np.max(np.abs(expected))
    assert result.statistics["forward"]["steps"] > 0 and result.statistics["backward"]["steps"] > 0
    if method == "adjoint-backsolve":
        assert result.y0_reconstruction_error is not None and result.y0_reconstruction_error < 1e-3
    else:
        assert result.y0_reconstruction_error is None


def test_adjoint_tolerances_are_separate(linear: symsens.Model) -> None:
    """A loose backward pass (adjoint_rtol) costs fewer backward steps and more error than a tight one."""
    loss = DataLoss(TIMES, OBSERVED, ("x1", "x2"))
    _, expected = linear_closed_form(P_LINEAR)
    tight = symsens.gradient(linear, loss, rtol=1e-10, atol=1e-13)
    loose = symsens.gradient(linear, loss, rtol=1e-10, atol=1e-13, adjoint_rtol=1e-4, adjoint_atol=1e-7)
    assert loose.adjoint_rtol == 1e-4 and tight.adjoint_rtol == 1e-10
    assert loose.statistics["forward"] == tight.statistics["forward"]
    assert loose.statistics["backward"]["steps"] < tight.statistics["backward"]["steps"]
    assert np.max(np.abs(loose.gradient - expected)) > np.max(np.abs(tight.gradient - expected))


def test_integral_loss_against_its_closed_form() -> None:
    """``L = int_0^1 y^2 dt`` for ``y' = lam y``: ``L = y0^2 (e^{2 lam} - 1) / (2 lam)``."""
    model = symsens.load_model("stiff-linear")
    lam, y0 = -3.0, 1.5
    E = np.exp(2 * lam)
    value = y0**2 * (E - 1) / (2 * lam)
    expected = np.array([y0**2 * (E / lam - (E - 1) / (2 * lam**2)), y0 * (E - 1) / lam])
    for method in ("adjoint-interpolating", "adjoint-backsolve"):
        result = symsens.gradient(model, IntegralLoss("y^2"), p={"lam": lam, "y0": y0}, method=method, rtol=1e-10)
        assert result.status == "success", result.message
        assert abs(result.loss - value) <= 1e-8 * value
        np.testing.assert_allclose(result.gradient, expected, rtol=1e-7)


# ---------------------------------------------------------------------------------------------------------
# Against the verified reference
# ---------------------------------------------------------------------------------------------------------


def test_interpolating_adjoint_converges_to_the_true_gradient() -> None:
    """Van der Pol at mu = 1.3 fitted to its trajectory at mu = 1: the error falls with rtol."""
    model = symsens.load_model("van-der-pol")
    loss = TrajectoryLoss(grid=tuple(np.linspace(0.5, 3.0, 6)), data_parameters={"mu": 1.0})
    options = dict(p={"mu": 1.3}, t_span=(0.0, 3.0))
    truth = symsens.true_gradient(model, loss, digits=10, **options)
    assert truth.verified and np.all(truth.digits >= 9)
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        result = symsens.gradient(model, loss, rtol=rtol, **options)
        assert result.status == "success", result.message
        errors.append(float(np.max(np.abs(result.gradient - truth.gradient) / np.abs(truth.gradient))))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-7 and errors[0] < 1e-3


def test_trajectory_loss_on_the_step_grid_vanishes_at_the_data_parameters() -> None:
    """The audit's default loss: targets from the same integrator at the data parameters, on its own steps."""
    model = symsens.load_model("van-der-pol")
    loss = TrajectoryLoss(data_parameters={"mu": 1.0})
    at_data = symsens.gradient(model, loss, p={"mu": 1.0}, t_span=(0.0, 3.0))
    assert at_data.status == "success" and at_data.loss < 1e-20 and abs(at_data.gradient[0]) < 1e-10
    away = symsens.gradient(model, loss, p={"mu": 1.1}, t_span=(0.0, 3.0), rtol=1e-8)
    assert away.loss > 1e-3 and away.gradient[0] > 0     # moving mu further away increases the misfit


def test_interpolating_adjoint_on_hodgkin_huxley_matches_the_true_gradient() -> None:
    """Stiff, nonlinear, with the model language's ``exprel``: dL/d(g_Na, g_K) of V^2 at t = 5, 10 ms."""
    model = symsens.load_model("hodgkin-huxley")
    loss = ExpressionLoss("V^2", (5.0, 10.0))
    options = dict(parameters=["g_Na", "g_K"], t_span=(0.0, 10.0))
    truth = symsens.true_gradient(model, loss, **options)
    assert np.all(truth.digits >= 8)
    result = symsens.gradient(model, loss, rtol=1e-8, **options)
    assert result.status == "success", result.message
    np.testing.assert_allclose(result.gradient, truth.gradient, rtol=1e-7)


def test_backsolve_fails_on_a_stiff_problem_where_interpolating_does_not() -> None:
    """``y' = -1000 y``, ``L = int y^2``: backwards, the state grows like e^{1000 (1 - t)} from y(1) ~ 0."""
    model = symsens.load_model("stiff-linear")
    loss = IntegralLoss("y^2")
    truth = symsens.true_gradient(model, loss, digits=8)
    closed = np.array([(np.exp(-2000.0) - 1) / (2 * 1000.0**2) * -1.0 + np.exp(-2000.0) / -1000.0, 1.0 / 1000.0])
    np.testing.assert_allclose(truth.gradient, closed, rtol=1e-8)
    good = symsens.gradient(model, loss, method="adjoint-interpolating", rtol=1e-8)
    assert good.status == "success"
    np.testing.assert_allclose(good.gradient, truth.gradient, rtol=1e-6)
    bad = symsens.gradient(model, loss, method="adjoint-backsolve", rtol=1e-8)
    if bad.status == "success":
        assert bad.y0_reconstruction_error > 0.5          # y(0) = 1 is not recovered
        assert "unreliable" in bad.message
        assert np.max(np.abs(bad.gradient - truth.gradient) / np.abs(truth.gradient)) > 0.5
    else:
        assert bad.gradient is None and bad.t_failure is not None


# ---------------------------------------------------------------------------------------------------------
# The audit's methods and reference, through gradient() and true_gradient()
# ---------------------------------------------------------------------------------------------------------


def test_gradient_shares_the_audit_methods_and_reference(linear: symsens.Model) -> None:
    loss = DataLoss(TIMES[1:], OBSERVED[1:], ("x1", "x2"))
    report = symsens.audit(linear, loss, methods=["forward", "finite-differences"], schemes=["rodas4"],
                           tolerances=[1e-7], reference_digits=8)
    for method in ("forward", "finite-differences"):
        row = report.result(method, "rodas4", 1e-7)
        ours = symsens.gradient(linear, loss, method=method, scheme="rodas4", rtol=1e-7)
        assert ours.status == "success" and ours.scheme == "rodas4"
        np.testing.assert_array_equal(ours.gradient, np.asarray(row["gradient"]))
    truth = symsens.true_gradient(linear, loss, digits=8)
    np.testing.assert_allclose(truth.gradient, report.reference_gradient, rtol=1e-12)
    # ... and the reference is the closed form (an independent check of the shared machinery).
    value, expected = linear_closed_form(P_LINEAR, TIMES[1:], OBSERVED[1:])
    np.testing.assert_allclose(truth.gradient, expected, rtol=1e-8)
    assert abs(truth.loss - value) <= 1e-8 * value
    assert truth.error_bound is not None and np.all(truth.error_bound <= 1e-7 * np.abs(expected))


def test_objective_for_scipy_minimize(linear: symsens.Model) -> None:
    loss = DataLoss(TIMES, OBSERVED, ("x1", "x2"))
    fun = symsens.objective(linear, loss, parameters=["b", "a"], rtol=1e-10)
    value, grad = fun(np.array([0.7, 1.5]))
    expected_value, expected = linear_closed_form(P_LINEAR)
    assert abs(value - expected_value) <= 1e-8 * expected_value
    np.testing.assert_allclose(grad, expected[[1, 0]], rtol=1e-6)


def test_failure_is_reported_not_a_number() -> None:
    """``y' = y^2``, ``y(0) = 1`` blows up at t = 1: a status and a time, no gradient."""
    model = symsens.Model(states=["y"], parameters={"k": 1.0}, rhs=["k*y^2"], initial_conditions=["1"], t_span=(0, 2))
    for method in ("adjoint-interpolating", "adjoint-backsolve"):
        result = symsens.gradient(model, IntegralLoss("y"), method=method)
        assert result.status != "success"
        assert result.gradient is None
        assert result.t_failure is not None and 0.9 < result.t_failure < 1.01
        with pytest.raises(symsens.IntegrationError, match="forward pass"):
            result.check()


# ---------------------------------------------------------------------------------------------------------
# The derivation and its printing
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["robertson", "hodgkin-huxley", "van-der-pol"])
def test_adjoint_rhs_is_minus_jacobian_transpose_times_lambda(name: str) -> None:
    model = symsens.load_model(name)
    first = model.state_names[0]
    system = adjoint_system(model, [least_squares(model), integral_loss(model, f"{first}^2")])
    lam = sp.Matrix(system.adjoints)
    J = jacobian(model)
    g = model.states[0] ** 2
    dg_dy = sp.Matrix([g.diff(y) for y in model.states])
    expected = -J.T * lam - dg_dy
    for i in range(model.n_states):
        assert sp.expand(system.adjoint_rhs[i] - expected[i]) == 0
    Fp = parameter_jacobian(model)
    quad = Fp.T * lam
    for j in range(len(system.parameters)):
        assert sp.expand(system.quadrature_integrand[j] - quad[j]) == 0
    for i, y in enumerate(model.states):   # least squares jumps: 2 (y_i - data_i)
        assert sp.expand(system.jumps[i] - 2 * (y - system.data_symbols[i])) == 0
    assert all(e == 0 for e in system.terminal_condition)


def test_adjoint_json_parses_and_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "--example", "robertson", "--adjoint", "--json", "--parameters", "k1,k3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["adjoints"] == ["lambda_y1", "lambda_y2", "lambda_y3"]
    assert data["parameters"] == ["k1", "k3"]
    model = symsens.load_model("robertson")
    system = adjoint_system(model, least_squares(model), ["k1", "k3"])
    names = {s.name: s for s in (*model.states, *model.parameters, *system.adjoints, *system.data_symbols)}
    for text, expr in zip(data["adjoint_rhs"], system.adjoint_rhs):
        assert sp.expand(sp.sympify(text, locals=names) - expr) == 0
    assert set(data["products"]) == {"JT_lambda_y1", "JT_lambda_y2", "JT_lambda_y3", "FpT_lambda_k1", "FpT_lambda_k3"}
    assert adjoint_to_json_dict(system) == data


def test_adjoint_text_latex_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    model = symsens.load_model("stiff-linear")
    system = adjoint_system(model, integral_loss(model, "y^2"))
    text = adjoint_to_text(system)
    assert "lambda_y' = -lam*lambda_y - 2*y" in text
    latex = adjoint_to_latex(system)
    assert r"\dot \lambda_{y} &= - \lambda_{y} lam - 2 y \\" in latex
    assert r"\frac{\partial L}{\partial y_{0}} &= \left(\lambda_{y}\right)\big|_{t_0}" in latex
    assert main(["derive", "--example", "stiff-linear", "--adjoint", "--loss", "integral:y^2"]) == 0
    assert capsys.readouterr().out == text
    assert main(["derive", "--example", "van-der-pol", "--adjoint", "--latex"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\\begin{align*}") and out.rstrip().endswith("\\end{align*}")
    assert "(t_k^-)" in out


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"method": "adjoint"}, ValueError, r"`method`: unknown gradient method 'adjoint'.*known: adjoint-interpolating"),
        ({"p": [1.0, 2.0]}, ValueError, r"`p` must have length 3"),
        ({"p": [1.0, float("nan"), 0.3]}, ValueError, r"`p` contains a non-finite value"),
        ({"p": {"d": 1.0}}, ValueError, r"`p`: unknown parameter 'd'"),
        ({"parameters": ["a", "zz"]}, ValueError, r"`parameters`: unknown parameter 'zz'"),
        ({"parameters": "a"}, ValueError, r"`parameters` must be a sequence"),
        ({"scheme": "tsit5", "backend": "scipy"}, ValueError, r"`scheme` 'tsit5' is not available for the adjoint"),
        ({"scheme": "nonsense"}, ValueError, r"`scheme`"),
        ({"rtol": -1.0}, ValueError, r"`rtol`"),
        ({"adjoint_atol": 0.0}, ValueError, r"`adjoint_atol`"),
        ({"method": "forward", "adjoint_rtol": 1e-6}, ValueError, r"adjoint methods only"),
        ({"method": "forward", "scheme": "nonsense"}, ValueError, r"`scheme`"),
        ({"t_span": (1.0, 0.0)}, ValueError, r"`t_span` must be two finite times"),
    ],
)
def test_bad_input_names_the_argument(linear: symsens.Model, options: dict, error: type, message: str) -> None:
    loss = DataLoss(TIMES, OBSERVED, ("x1", "x2"))
    with pytest.raises(error, match=message):
        symsens.gradient(linear, loss, **options)


def test_bad_loss_and_digits(linear: symsens.Model) -> None:
    with pytest.raises(TypeError, match="`loss` must be"):
        symsens.gradient(linear, "x1^2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grid=\"steps\""):
        symsens.true_gradient(linear, TrajectoryLoss())
    with pytest.raises(ValueError, match="`digits`"):
        symsens.true_gradient(linear, IntegralLoss("x1^2"), digits=0)
    with pytest.raises(ValueError, match="loss: unknown symbol|unknown symbol"):
        symsens.gradient(linear, ExpressionLoss("x3^2", (1.0,)))
