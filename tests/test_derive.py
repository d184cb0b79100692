"""Derivation checked against independent computations: finite differences, closed forms, hand algebra."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import sympy as sp

import symsens
from symsens import DerivationError
from symsens.derive import (
    common_subexpressions,
    integral_loss,
    jacobian,
    least_squares,
    loss_gradient,
    numpy_function,
    parameter_jacobian,
    pointwise_loss,
    sensitivity_system,
)


def _random_state(model: symsens.Model, rng: np.random.Generator) -> np.ndarray:
    # Points near the initial state keep logs and exps of the neuron models in range.
    y0 = numpy_function(model.initial_conditions, model.parameters)(*model.parameter_values).ravel()
    scale = np.maximum(np.abs(y0), 0.1)
    return y0 + 0.05 * scale * rng.standard_normal(model.n_states) + 0.01


def _central_difference(f, x: np.ndarray, index: int, step: float) -> np.ndarray:
    e = np.zeros_like(x)
    e[index] = step
    return (f(x + e) - f(x - e)) / (2 * step)


def _fd_tolerance(f_value: np.ndarray, fd: np.ndarray, step: float) -> float:
    """Rounding error of a central difference (~ eps |f| / step) plus its truncation error (~ 1e-6 |fd|)."""
    return 100 * np.finfo(float).eps * float(np.abs(f_value).max()) / step + 1e-6 * (1 + float(np.abs(fd).max()))


@pytest.mark.parametrize("name", symsens.examples())
def test_jacobians_match_central_differences(name: str) -> None:
    model = symsens.load_model(name)
    rng = np.random.default_rng(7)
    f = numpy_function(model.rhs, [model.time, *model.states, *model.parameters])
    J = numpy_function(list(jacobian(model)), [model.time, *model.states, *model.parameters])
    Fp = numpy_function(list(parameter_jacobian(model)), [model.time, *model.states, *model.parameters])
    p = np.array(model.parameter_values)
    for _ in range(3):
        t = 0.3
        y = _random_state(model, rng)
        J_exact = J(t, *y, *p).reshape(model.n_states, model.n_states)
        for k in range(model.n_states):
            step = 1e-6 * max(1.0, abs(y[k]))
            fd = _central_difference(lambda v: f(t, *v, *p).ravel(), y, k, step)
            atol = _fd_tolerance(f(t, *y, *p), fd, step)
            np.testing.assert_allclose(J_exact[:, k], fd, rtol=1e-5, atol=atol)
        Fp_exact = Fp(t, *y, *p).reshape(model.n_states, model.n_parameters)
        for j in range(model.n_parameters):
            step = 1e-6 * max(1.0, abs(p[j]))
            fd = _central_difference(lambda q: f(t, *y, *q).ravel(), p, j, step)
            atol = _fd_tolerance(f(t, *y, *p), fd, step)
            np.testing.assert_allclose(Fp_exact[:, j], fd, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("name", symsens.examples())
def test_sensitivity_rhs_is_directional_derivative(name: str) -> None:
    """(J S + F_p)[:, j] equals d/de f(y + e S[:, j], p + e e_j) at e = 0 by central differences."""
    model = symsens.load_model(name)
    system = sensitivity_system(model)
    rng = np.random.default_rng(11)
    args = [model.time, *model.states, *model.parameters]
    f = numpy_function(model.rhs, args)
    sens_rhs = numpy_function(list(system.augmented_rhs), [*args, *system.augmented_states[model.n_states :]])
    y = _random_state(model, rng)
    p = np.array(model.parameter_values)
    S = rng.standard_normal((model.n_states, model.n_parameters)) * 0.01
    full = sens_rhs(0.2, *y, *p, *S.T.ravel()).ravel()[model.n_states :].reshape(model.n_parameters, model.n_states)
    for j in range(model.n_parameters):
        step = 1e-6 * max(1.0, abs(p[j]))
        direction_p = np.zeros_like(p)
        direction_p[j] = 1.0
        plus = f(0.2, *(y + step * S[:, j]), *(p + step * direction_p)).ravel()
        minus = f(0.2, *(y - step * S[:, j]), *(p - step * direction_p)).ravel()
        fd = (plus - minus) / (2 * step)
        atol = _fd_tolerance(f(0.2, *y, *p), fd, step)
        np.testing.assert_allclose(full[j], fd, rtol=1e-5, atol=atol)


def test_robertson_jacobian_by_hand() -> None:
    model = symsens.load_model("robertson")
    y1, y2, y3 = model.states
    k1, k2, k3 = (model.symbol(n) for n in ("k1", "k2", "k3"))
    expected = sp.Matrix(
        [
            [-k1, k3 * y3, k3 * y2],
            [k1, -k3 * y3 - 2 * k2 * y2, -k3 * y2],
            [0, 2 * k2 * y2, 0],
        ]
    )
    assert sp.simplify(jacobian(model) - expected) == sp.zeros(3, 3)
    expected_fp = sp.Matrix([[-y1, 0, y2 * y3], [y1, -(y2**2), -y2 * y3], [0, y2**2, 0]])
    assert sp.simplify(parameter_jacobian(model) - expected_fp) == sp.zeros(3, 3)


def _linear_model() -> tuple[symsens.Model, sp.Matrix]:
    a, b, c = sp.symbols("a b c", real=True)
    y = sp.symbols("y1 y2 y3", real=True)
    A = sp.Matrix([[-a, b, 0], [a, -b - c, 1], [0, c, -2 * a]])
    rhs = list(A * sp.Matrix(y))
    model = symsens.Model(
        states=y, parameters={"a": 0.7, "b": 1.3, "c": 0.4}, rhs=rhs, initial_conditions=[1, b, 0], name="linear"
    )
    return model, A


def test_linear_sensitivities_match_expm_frechet() -> None:
    """S(t) of y' = A(p) y equals L_expm(A t, dA/dp t) y0 + expm(A t) dy0/dp (Fréchet derivative of expm)."""
    model, A_sym = _linear_model()
    system = sensitivity_system(model)
    p = np.array(model.parameter_values)
    rhs = numpy_function(list(system.augmented_rhs), [model.time, *system.augmented_states, *model.parameters])
    y0 = numpy_function(list(system.augmented_initial_conditions), model.parameters)(*p).ravel()
    T = 1.7
    sol = scipy.integrate.solve_ivp(
        lambda t, u: rhs(t, *u, *p).ravel(), (0, T), y0, method="DOP853", rtol=1e-12, atol=1e-14
    )
    S_numeric = sol.y[3:, -1].reshape(3, 3).T  # columns per parameter
    A = np.array(A_sym.subs(dict(zip(model.parameters, p))), dtype=float)
    y_init = np.array([1.0, p[1], 0.0])
    for j, param in enumerate(model.parameters):
        dA = np.array(A_sym.diff(param).subs(dict(zip(model.parameters, p))), dtype=float)
        expm_At, frechet = scipy.linalg.expm_frechet(A * T, dA * T)
        dy0 = np.array([0.0, 1.0 if param.name == "b" else 0.0, 0.0])
        exact = frechet @ y_init + expm_At @ dy0
        np.testing.assert_allclose(S_numeric[:, j], exact, rtol=1e-9, atol=1e-11)


def test_cse_is_exact_and_saves_operations() -> None:
    model = symsens.load_model("hodgkin-huxley")
    system = sensitivity_system(model, ["g_Na", "g_K", "g_L"])
    result = system.cse()
    assert result.operations_after < result.operations_before
    # Substituting the temporaries back gives the original right-hand side (checked numerically).
    back = result.substitute_back()
    rng = np.random.default_rng(3)
    args = [model.time, *system.augmented_states, *model.parameters]
    point = [0.0, -60.0, 0.05, 0.6, 0.3, *rng.standard_normal(12), *model.parameter_values]
    original = numpy_function(list(system.augmented_rhs), args)(*point).ravel()
    reduced = numpy_function(list(back), args)(*point).ravel()
    np.testing.assert_allclose(reduced, original, rtol=1e-13, atol=1e-13)


def test_cse_temporaries_do_not_capture_model_names() -> None:
    x0, x1 = sp.symbols("x0 x1")
    result = common_subexpressions([sp.exp(x0 + x1) * x0, sp.exp(x0 + x1) + x1])
    names = {s.name for s, _ in result.replacements}
    assert not names & {"x0", "x1"}
    back = result.substitute_back()
    assert sp.simplify(back[0] - sp.exp(x0 + x1) * x0) == 0


def test_least_squares_gradient_matches_finite_differences_of_closed_form() -> None:
    """dL/dp from the chain-rule pieces equals finite differences of L computed with expm."""
    model, A_sym = _linear_model()
    loss = least_squares(model, ["y1", "y2"], weights=[1.0, 0.5])
    gradient = loss_gradient(model, loss)
    times = np.array([0.3, 0.9, 1.5])
    data = np.array([[0.5, 1.0], [0.4, 0.9], [0.3, 0.8]])

    def solution(p: np.ndarray) -> np.ndarray:
        A = np.array(A_sym.subs(dict(zip(model.parameters, p))), dtype=float)
        y0 = np.array([1.0, p[1], 0.0])
        return np.array([scipy.linalg.expm(A * t) @ y0 for t in times])

    def loss_value(p: np.ndarray) -> float:
        return gradient.value(times, solution(p), p=p, data=data)

    p = np.array(model.parameter_values)
    # Sensitivities from the Fréchet derivative (independent of the symbolic pieces under test).
    S = np.zeros((len(times), 3, 3))
    A = np.array(A_sym.subs(dict(zip(model.parameters, p))), dtype=float)
    for j, param in enumerate(model.parameters):
        dA = np.array(A_sym.diff(param).subs(dict(zip(model.parameters, p))), dtype=float)
        for k, t in enumerate(times):
            E, L = scipy.linalg.expm_frechet(A * t, dA * t)
            dy0 = np.array([0.0, 1.0 if j == 1 else 0.0, 0.0])
            S[k, :, j] = L @ np.array([1.0, p[1], 0.0]) + E @ dy0
    grad = gradient.evaluate(times, solution(p), S, p=p, data=data)
    fd = np.array([_central_difference(lambda q: np.array([loss_value(q)]), p, j, 1e-6)[0] for j in range(3)])
    np.testing.assert_allclose(grad, fd, rtol=1e-7)
    # The data-free residual at the truth is zero, and so is the gradient.
    exact_data = solution(p)[:, :2]
    assert gradient.value(times, solution(p), p=p, data=exact_data) == pytest.approx(0.0, abs=1e-28)
    np.testing.assert_allclose(gradient.evaluate(times, solution(p), S, p=p, data=exact_data), 0.0, atol=1e-14)


def test_integral_loss_matches_closed_form() -> None:
    """L(k) = int_0^T y^2 dt for y' = -k y, y(0) = 1: L = (1 - e^{-2kT}) / (2k)."""
    model = symsens.Model(states=["y"], parameters={"k": 0.8}, rhs=["-k*y"], initial_conditions=[1])
    loss = integral_loss(model, "y^2")
    gradient = loss_gradient(model, loss)
    augmented = gradient.model
    assert augmented.state_names == ("y", "q")
    system = sensitivity_system(augmented)
    rhs = numpy_function(list(system.augmented_rhs), [augmented.time, *system.augmented_states, *augmented.parameters])
    T, k = 2.0, 0.8
    sol = scipy.integrate.solve_ivp(
        lambda t, u: rhs(t, *u, k).ravel(), (0, T), [1.0, 0.0, 0.0, 0.0], method="DOP853", rtol=1e-12, atol=1e-14
    )
    u = sol.y[:, -1]
    grad = gradient.evaluate([T], u[None, :2], u[None, 2:].reshape(1, 2, 1))
    exact_value = (1 - np.exp(-2 * k * T)) / (2 * k)
    exact_gradient = (2 * T * np.exp(-2 * k * T) * 2 * k - 2 * (1 - np.exp(-2 * k * T))) / (4 * k**2)
    assert u[1] == pytest.approx(exact_value, rel=1e-10)
    assert grad[0] == pytest.approx(exact_gradient, rel=1e-9)


def test_pointwise_loss_pieces_are_exact() -> None:
    model = symsens.Model(states=["x", "y"], parameters={"a": 1.0}, rhs=["-a*x", "x - y"], initial_conditions=[1, 0])
    loss = pointwise_loss(model, "(x - d)^2 + a*y", data=["d"])
    g = loss_gradient(model, loss)
    x, y = model.states
    d = sp.Symbol("d", real=True)
    assert sp.expand(g.dl_dy[0] - 2 * (x - d)) == 0
    assert g.dl_dy[1] == model.symbol("a")
    assert g.dl_dp[0] == y


def test_derivation_errors_name_the_problem() -> None:
    model = symsens.load_model("robertson")
    with pytest.raises(DerivationError, match="unknown parameter 'k4'"):
        sensitivity_system(model, ["k4"])
    with pytest.raises(DerivationError, match="listed twice"):
        sensitivity_system(model, ["k1", "k1"])
    with pytest.raises(DerivationError, match="neither a state nor an output"):
        least_squares(model, ["y9"])
    with pytest.raises(DerivationError, match="clashes"):
        pointwise_loss(model, "(y1 - k1)^2", data=["k1"])
    g = loss_gradient(model, least_squares(model))
    with pytest.raises(DerivationError, match="needs data"):
        g.value([0.0], np.ones((1, 3)))
    with pytest.raises(DerivationError, match="NaN"):
        g.value([0.0], np.ones((1, 3)), p=[np.nan, 1, 1], data=np.zeros((1, 3)))


@pytest.mark.parametrize("name", ["hodgkin-huxley", "robertson", "van-der-pol"])
def test_augmented_jacobian_matches_central_differences(name: str) -> None:
    """Second derivatives: d(J S + F_p)/d(y, S) against central differences of the augmented rhs."""
    model = symsens.load_model(name)
    system = sensitivity_system(model, model.parameter_names[:2])
    args = [model.time, *system.augmented_states, *model.parameters]
    rhs = numpy_function(list(system.augmented_rhs), args)
    size = len(system.augmented_states)
    jac = numpy_function(list(system.augmented_jacobian), args)
    rng = np.random.default_rng(5)
    u = np.concatenate([_random_state(model, rng), 0.1 * rng.standard_normal(size - model.n_states)])
    p = np.array(model.parameter_values)
    exact = jac(0.1, *u, *p).reshape(size, size)
    for k in range(size):
        step = 1e-6 * max(1.0, abs(u[k]))
        fd = _central_difference(lambda v: rhs(0.1, *v, *p).ravel(), u, k, step)
        np.testing.assert_allclose(exact[:, k], fd, rtol=1e-5, atol=_fd_tolerance(rhs(0.1, *u, *p), fd, step))


def test_abs_differentiates_to_sign_without_re_im() -> None:
    """Model symbols are real, so d|x|/dx = sign(x) (no re/im parts a code printer cannot handle)."""
    model = symsens.Model(states=["x"], parameters={"k": 1.0}, rhs=["-k*abs(x) + abs(exp(x))"], initial_conditions=[1])
    J = jacobian(model)[0, 0]
    x, k = model.symbol("x"), model.symbol("k")
    assert J == -k * sp.sign(x) + sp.exp(x)
    assert not J.has(sp.re, sp.im)
