"""Compiled explicit integrators: orders, gradient modes against independent computations, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

import symsens
from symsens import IntegrationError
from symsens.derive import numpy_function
from symsens.integrate import solve


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def _oscillator() -> symsens.Model:
    """y'' = -w^2 y as a first-order system: closed form y = cos(w t), y' = -w sin(w t); dy/dw known."""
    return symsens.Model(
        states=["x", "v"], parameters={"w": 1.3}, rhs=["v", "-w^2*x"], initial_conditions=[1, 0], name="oscillator"
    )


def _rotation() -> tuple[symsens.Model, float]:
    """x' = -r y, y' = r x with r = |(x, y)|: nonlinear, two components, x(t) = r0 cos(r0 t)."""
    model = symsens.Model(
        states=["x", "y"], parameters={}, rhs=["-y*sqrt(x^2 + y^2)", "x*sqrt(x^2 + y^2)"],
        initial_conditions=["3/2", "0"], name="rotation",
    )
    return model, 1.5 * np.cos(1.5 * 10.0)


def _growth() -> tuple[symsens.Model, float]:
    """y' = cos(t) y: y = exp(sin t) (non-autonomous)."""
    model = symsens.Model(states=["y"], parameters={}, rhs=["cos(t)*y"], initial_conditions=["1"], name="growth")
    return model, float(np.exp(np.sin(10.0)))


@pytest.mark.parametrize(
    ("method", "order", "problem", "counts"),
    [
        ("heun", 2, _rotation, (320, 640, 1280)),
        ("bs3", 3, _rotation, (160, 320, 640)),
        ("rk4", 4, _rotation, (160, 320, 640)),
        ("dopri5", 5, _rotation, (320, 640, 1280)),
        ("tsit5", 5, _rotation, (320, 640, 1280)),
        ("verner7", 7, _growth, (40, 80, 160)),
    ],
)
def test_fixed_step_convergence_order(method: str, order: int, problem, counts: tuple[int, ...]) -> None:
    """Measured order: log-log slope of the global error at t = 10 against the closed form.

    Step counts per method keep the error in the asymptotic range and above double rounding.  (verner6 is
    left out: in double precision its rounding floor, ~1e-10 on these problems from coefficients of size
    ~200 that cancel, arrives before its asymptotic range; its order is checked in exact arithmetic by the
    scheme-catalogue tests.)
    """
    model, exact = problem()
    T = 10.0
    errors, steps = [], []
    for n in counts:
        sol = solve(model, (0, T), method=method, fixed_step=T / n, t_eval=[T])
        errors.append(abs(sol.y[-1, 0] - exact))
        steps.append(T / n)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.3, (method, slope, errors)


def test_fixed_step_explicit_discrete_equals_forward_to_rounding() -> None:
    """For explicit RK with fixed steps, differentiating the scheme = applying it to the variational system."""
    model = symsens.load_model("van-der-pol").with_parameter_values({"mu": 5.0})
    kwargs = dict(method="tsit5", fixed_step=1e-3, t_eval=[0.5, 1.0])
    discrete = solve(model, (0, 1), sensitivity="discrete", **kwargs)
    forward = solve(model, (0, 1), sensitivity="forward", **kwargs)
    np.testing.assert_allclose(discrete.y, forward.y, rtol=0, atol=1e-13)
    scale = np.abs(forward.sensitivities).max()
    np.testing.assert_allclose(discrete.sensitivities, forward.sensitivities, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("tangents", [False, True])
def test_discrete_mode_equals_frozen_step_finite_differences(tangents: bool) -> None:
    """dy/dp of the discrete mode = central differences of the same solver replaying the same steps."""
    model = symsens.load_model("hodgkin-huxley")
    names = ["g_Na", "g_K", "g_L"]
    T = 20.0
    sol = solve(model, (0, T), method="tsit5", rtol=1e-6, atol=1e-8, sensitivity="discrete", parameters=names,
                sensitivity_in_norm=tangents, t_eval=[T])
    steps = sol.stats.step_sizes
    p = np.array(model.parameter_values)
    for j, name in enumerate(names):
        k = model.parameter_names.index(name)
        h = 1e-6 * p[k]
        plus, minus = p.copy(), p.copy()
        plus[k] += h
        minus[k] -= h
        y_plus = solve(model, (0, T), p=plus, method="tsit5", replay_steps=steps, t_eval=[T]).y[-1]
        y_minus = solve(model, (0, T), p=minus, method="tsit5", replay_steps=steps, t_eval=[T]).y[-1]
        fd = (y_plus - y_minus) / (2 * h)
        np.testing.assert_allclose(sol.sensitivities[-1, :, j], fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


def test_forward_sensitivities_converge_to_expm_frechet() -> None:
    """Continuous forward sensitivities of y' = A(p) y approach the exact derivative as rtol shrinks."""
    model = symsens.Model(
        states=["y1", "y2"], parameters={"a": 0.8, "b": 0.3},
        rhs=["-a*y1 + b*y2", "a*y1 - 2*b*y2"], initial_conditions=[1, "b"], name="linear2",
    )
    T = 3.0
    a, b = model.parameter_values
    A = np.array([[-a, b], [a, -2 * b]])
    dA = [np.array([[-1.0, 0], [1, 0]]), np.array([[0, 1.0], [0, -2]])]
    y0 = np.array([1.0, b])
    exact = np.column_stack(
        [scipy.linalg.expm_frechet(A * T, d * T)[1] @ y0 + scipy.linalg.expm(A * T) @ np.array([0.0, float(j == 1)])
         for j, d in enumerate(dA)]
    )
    errors = []
    for rtol in (1e-4, 1e-7, 1e-10):
        sol = solve(model, (0, T), method="dopri5", rtol=rtol, atol=rtol * 1e-2, sensitivity="forward",
                    sensitivity_in_norm=True, t_eval=[T])
        errors.append(np.abs(sol.sensitivities[-1] - exact).max())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-8


def test_solution_agrees_with_scipy_dop853() -> None:
    model = symsens.load_model("robertson")
    f = numpy_function(model.rhs, [model.time, *model.states, *model.parameters])
    p = model.parameter_values
    ref = scipy.integrate.solve_ivp(lambda t, y: f(t, *y, *p).ravel(), (0, 0.1), [1, 0, 0], method="Radau",
                                    rtol=1e-12, atol=1e-14)
    sol = solve(model, (0, 0.1), method="verner7", rtol=1e-10, atol=1e-14, t_eval=[0.1])
    np.testing.assert_allclose(sol.y[-1], ref.y[:, -1], rtol=1e-7, atol=1e-12)


def test_outputs_at_t_eval_by_interpolation_and_exactly() -> None:
    model = _oscillator()
    t_eval = np.linspace(0, 5, 11)
    interpolated = solve(model, (0, 5), method="tsit5", rtol=1e-10, atol=1e-12, t_eval=t_eval)
    exact_steps = solve(model, (0, 5), method="tsit5", rtol=1e-10, atol=1e-12, t_eval=t_eval, step_onto_outputs=True)
    np.testing.assert_allclose(interpolated.y[:, 0], np.cos(1.3 * t_eval), atol=1e-7)
    np.testing.assert_allclose(exact_steps.y[:, 0], np.cos(1.3 * t_eval), atol=1e-9)
    assert set(np.round(t_eval, 12)) <= set(np.round(exact_steps.stats.step_times, 12))


def test_failure_is_reported_with_its_time() -> None:
    model = symsens.Model(states=["y"], parameters={}, rhs=["y^2"], initial_conditions=[1], name="blowup")
    sol = solve(model, (0, 2), method="dopri5", rtol=1e-6, atol=1e-8, max_steps=5000)
    assert not sol.success
    assert sol.status in ("step size underflow", "non-finite values", "too many steps")
    assert sol.t_failure == pytest.approx(1.0, abs=1e-2)
    with pytest.raises(IntegrationError, match="at t = "):
        sol.check()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(p=[np.nan, 1.0, 1.0]), "`p` contains a non-finite value"),
        (dict(p=[1.0, 1.0]), "`p` must have length 3"),
        (dict(y0=[1.0, np.inf, 0.0]), "`y0` contains a non-finite value"),
        (dict(rtol=0.0), "`rtol` must be a positive"),
        (dict(atol=-1.0), "`atol` must be a positive"),
        (dict(t_eval=[0.0, 50.0]), "`t_eval` must lie inside t_span"),
        (dict(t_eval=[1.0, 0.5]), "non-decreasing"),
        (dict(sensitivity="adjoint"), "`sensitivity` must be one of"),
        (dict(method="no-such-method"), "method 'no-such-method'"),
        (dict(parameters=["k9"]), "unknown parameter 'k9'"),
        (dict(differentiate_steps=True), "applies to sensitivity=\"discrete\" only"),
        (dict(backend="gpu"), "`backend` must be"),
        (dict(method="rk4"), "no embedded error estimate"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, message: str) -> None:
    model = symsens.load_model("robertson")
    with pytest.raises(ValueError, match=message):
        solve(model, (0, 40), **kwargs)


def test_sensitivity_of_stiff_linear_matches_closed_form() -> None:
    """y' = lam y: dy/dlam = t e^{lam t} y0 (explicit method on a mildly stiff setting)."""
    model = symsens.load_model("stiff-linear").with_parameter_values({"lam": -3.0})
    t = np.array([0.5, 1.0])
    # Steps land on the output times: cubic Hermite output (O(h^4)) would limit a 7th-order method here.
    sol = solve(model, (0, 1), method="verner7", rtol=1e-11, atol=1e-13, sensitivity="forward",
                sensitivity_in_norm=True, t_eval=t, parameters=["lam"], step_onto_outputs=True)
    np.testing.assert_allclose(sol.sensitivities[:, 0, 0], t * np.exp(-3.0 * t), rtol=1e-8)


def test_bursting_neuron_tangents_in_the_norm_change_the_steps() -> None:
    """The bursting neuron of the forum question: a values-only norm reproduces the nominal steps (loss and gradient exactly 0);
    a norm that sees the tangents takes other steps, leaves residuals and a large gradient."""
    model = symsens.load_model("calcium-neuron")
    settings = dict(method="tsit5", rtol=1e-3, atol=1e-6)
    nominal = solve(model, (0, 500), **settings).check()
    values_only = solve(model, (0, 500), t_eval=nominal.t, sensitivity="discrete", **settings).check()
    np.testing.assert_array_equal(values_only.stats.step_sizes, nominal.stats.step_sizes)
    np.testing.assert_array_equal(values_only.y, nominal.y)
    tangents = solve(model, (0, 500), t_eval=nominal.t, sensitivity="discrete", sensitivity_in_norm=True,
                     **settings).check()
    assert tangents.stats.accepted_steps != nominal.stats.accepted_steps
    residual = tangents.y - nominal.y
    gradient = 2 * np.einsum("ki,kij->j", residual, tangents.sensitivities)
    assert np.sum(residual**2) > 1.0
    assert np.linalg.norm(gradient) > 1e5
