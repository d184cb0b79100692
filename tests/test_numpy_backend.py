"""The NumPy/SciPy backend of ``symsens.solve``, each result checked against something independent of it.

- closed forms: ``y' = lam y`` (``dy/dlam = t e^{lam t} y0``) and a linear 3 x 3 system ``y' = A(p) y``
  against ``scipy.linalg.expm`` / ``expm_frechet`` (``d/dp expm(tA) = expm_frechet(tA, t dA/dp)``);
- high-accuracy references from hand-written augmented systems (Robertson with its Jacobian typed in,
  Hodgkin–Huxley with ``J`` and ``F_p`` by complex-step differentiation of a hand-written right-hand side in
  the textbook 0/0 form) integrated by SciPy at rtol 1e-12: the error decreases as rtol shrinks;
- the assembled Jacobian against central differences of the right-hand side, and the two Jacobian
  strategies against each other;
- the scalar ``exprel`` kernels against mpmath.
"""

from __future__ import annotations

import warnings


import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.linalg import expm, expm_frechet

from symsens._errors import IntegrationError
from symsens.integrate._numpy_backend import (
    NUMPY_METHODS,
    _Problem,
    _scalar_exprel,
    _scalar_exprel_derivative,
    model_kernels,
    solve_numpy,
)
from symsens.model import Model, load_model
from symsens.model import exprel as model_exprel

ALL_METHODS = tuple(NUMPY_METHODS)
IMPLICIT_METHODS = ("radau", "bdf", "lsoda")


def run(model: Model, t_span, **overrides):
    """``solve_numpy`` with the defaults of ``symsens.solve`` filled in."""
    arguments = dict(
        p=np.array(model.parameter_values), y0=None, method="radau", rtol=1e-6, atol=1e-8, t_eval=None,
        sensitivity="forward", parameters=model.parameter_names, sensitivity_in_norm=False,
        first_step=None, max_step=None, max_steps=100_000,
    )
    arguments.update(overrides)
    if arguments["t_eval"] is not None:
        arguments["t_eval"] = np.asarray(arguments["t_eval"], dtype=float)
    return solve_numpy(model, t_span, **arguments)


# ----------------------------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_stiff_linear_matches_closed_form(method):
    """y' = lam y, y(0) = y0: y = y0 e^{lam t}, dy/dlam = t y0 e^{lam t}, dy/dy0 = e^{lam t}."""
    model = load_model("stiff-linear")
    lam, y0 = (-50.0, 2.0) if method in IMPLICIT_METHODS else (-3.0, 2.0)
    t_eval = np.linspace(0.0, 1.0, 21)
    rtol = 1e-8
    solution = run(model, (0.0, 1.0), p=np.array([lam, y0]), method=method, rtol=rtol, atol=1e-12, t_eval=t_eval,
                   sensitivity_in_norm=True).check()
    decay = np.exp(lam * t_eval)
    assert solution.t == pytest.approx(t_eval, abs=0)
    # Global errors of a tolerance-controlled solve: a small multiple of rtol times the scale of the quantity.
    np.testing.assert_allclose(solution.y[:, 0], y0 * decay, rtol=0, atol=200 * rtol * y0)
    dy_dlam = t_eval * y0 * decay
    np.testing.assert_allclose(solution.sensitivities[:, 0, 0], dy_dlam, rtol=0,
                               atol=200 * rtol * np.abs(dy_dlam).max())
    np.testing.assert_allclose(solution.sensitivities[:, 0, 1], decay, rtol=0, atol=200 * rtol)


def test_explicit_initial_state_has_zero_initial_sensitivity():
    """With ``y0`` given, S(t0) = 0: dy/dy0 (the parameter) stays 0 while dy/dlam = t e^{lam t} y0 still."""
    model = load_model("stiff-linear")
    t_eval = np.linspace(0.0, 1.0, 11)
    solution = run(model, (0.0, 1.0), p=np.array([-3.0, 1.0]), y0=np.array([5.0]), rtol=1e-9, atol=1e-12,
                   t_eval=t_eval, sensitivity_in_norm=True).check()
    np.testing.assert_allclose(solution.y[:, 0], 5.0 * np.exp(-3.0 * t_eval), rtol=1e-6)
    assert np.all(solution.sensitivities[:, 0, 1] == 0.0)
    np.testing.assert_allclose(solution.sensitivities[:, 0, 0], 5.0 * t_eval * np.exp(-3.0 * t_eval), atol=1e-7)


def _compartments() -> Model:
    """y' = A(p) y with A = [[-a, b, 0], [a, -b - c, d], [0, c, -d]] (a linear three-compartment chain)."""
    return Model(
        states=["y1", "y2", "y3"],
        parameters={"a": 2.0, "b": 0.5, "c": 1.5, "d": 0.3},
        rhs=["-a*y1 + b*y2", "a*y1 - (b + c)*y2 + d*y3", "c*y2 - d*y3"],
        initial_conditions=[1, 0, 0],
        name="compartments",
    )


def _compartment_matrix(a: float, b: float, c: float, d: float) -> tuple[np.ndarray, list[np.ndarray]]:
    A = np.array([[-a, b, 0.0], [a, -b - c, d], [0.0, c, -d]])
    dA = [
        np.array([[-1.0, 0, 0], [1, 0, 0], [0, 0, 0]]),
        np.array([[0.0, 1, 0], [0, -1, 0], [0, 0, 0]]),
        np.array([[0.0, 0, 0], [0, -1, 0], [0, 1, 0]]),
        np.array([[0.0, 0, 0], [0, 0, 1], [0, 0, -1]]),
    ]
    return A, dA


@pytest.mark.parametrize("method", ["radau", "bdf", "lsoda", "dop853"])
def test_linear_system_matches_matrix_exponential(method):
    """y(t) = expm(tA) y0 and dy/dp_j = expm_frechet(tA, t dA/dp_j) y0 (the Fréchet derivative of expm)."""
    model = _compartments()
    p = np.array(model.parameter_values)
    A, dA = _compartment_matrix(*p)
    y0 = np.array([1.0, 0.0, 0.0])
    t_eval = np.linspace(0.0, 5.0, 26)
    rtol = 1e-10
    solution = run(model, (0.0, 5.0), method=method, rtol=rtol, atol=1e-13, t_eval=t_eval, sensitivity_in_norm=True)
    solution.check()
    for k, t in enumerate(t_eval):
        np.testing.assert_allclose(solution.y[k], expm(t * A) @ y0, rtol=0, atol=1e-7)
        for j, dA_j in enumerate(dA):
            expected = expm_frechet(t * A, t * dA_j, compute_expm=False) @ y0
            np.testing.assert_allclose(solution.sensitivities[k, :, j], expected, rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------------------------------
# High-accuracy references from hand-written augmented systems
# ----------------------------------------------------------------------------------------------------

ROBERTSON_K = np.array([0.04, 3e7, 1e4])
ROBERTSON_T = np.r_[np.logspace(-5, 1.5, 39), 40.0]


def _robertson_augmented(t: float, z: np.ndarray) -> np.ndarray:
    """Robertson with S = dy/dk by hand: f, J = df/dy, F_p = df/dk, S' = J S + F_p; z = (y, S[:, 0..2])."""
    k1, k2, k3 = ROBERTSON_K
    y1, y2, y3 = z[:3]
    S = z[3:].reshape(3, 3).T  # S[i, j] = d y_i / d k_j
    f = [-k1 * y1 + k3 * y2 * y3, k1 * y1 - k3 * y2 * y3 - k2 * y2**2, k2 * y2**2]
    J = np.array([[-k1, k3 * y3, k3 * y2], [k1, -k3 * y3 - 2 * k2 * y2, -k3 * y2], [0.0, 2 * k2 * y2, 0.0]])
    Fp = np.array([[-y1, 0.0, y2 * y3], [y1, -y2**2, -y2 * y3], [0.0, y2**2, 0.0]])
    return np.concatenate([f, (J @ S + Fp).T.ravel()])


def _robertson_augmented_jacobian(t: float, z: np.ndarray) -> np.ndarray:
    """By hand: [[J, 0], [B_j, J]] with B_j = sum_k dJ[:, k]/dy S[k, j] + dF_p[:, j]/dy."""
    k1, k2, k3 = ROBERTSON_K
    y1, y2, y3 = z[:3]
    J = np.array([[-k1, k3 * y3, k3 * y2], [k1, -k3 * y3 - 2 * k2 * y2, -k3 * y2], [0.0, 2 * k2 * y2, 0.0]])
    dFp_dy = [
        np.array([[-1.0, 0, 0], [1, 0, 0], [0, 0, 0]]),
        np.array([[0.0, 0, 0], [0, -2 * y2, 0], [0, 2 * y2, 0]]),
        np.array([[0.0, y3, y2], [0, -y3, -y2], [0, 0, 0]]),
    ]
    out = np.zeros((12, 12))
    for block in range(4):
        out[3 * block : 3 * block + 3, 3 * block : 3 * block + 3] = J
    for j in range(3):
        s1, s2, s3 = z[3 + 3 * j : 6 + 3 * j]
        B = np.array([[0.0, k3 * s3, k3 * s2], [0, -k3 * s3 - 2 * k2 * s2, -k3 * s2], [0, 2 * k2 * s2, 0]])
        out[3 + 3 * j : 6 + 3 * j, :3] = B + dFp_dy[j]
    return out


@pytest.fixture(scope="module")
def robertson_reference() -> np.ndarray:
    """S(t) (K x 3 x 3) at ROBERTSON_T from Radau at rtol 1e-12 on the hand-written system."""
    z0 = np.r_[1.0, 0.0, 0.0, np.zeros(9)]
    reference = solve_ivp(_robertson_augmented, (0.0, 40.0), z0, method="Radau", jac=_robertson_augmented_jacobian,
                          rtol=1e-12, atol=1e-22, t_eval=ROBERTSON_T)
    assert reference.success
    return reference.y[3:].reshape(3, 3, -1).transpose(2, 1, 0)


def _relative_error(sensitivities: np.ndarray, reference: np.ndarray) -> float:
    """Max over times and entries of |S - S_ref|, each entry scaled by its largest |S_ref| over time."""
    return float(np.max(np.abs(sensitivities - reference) / np.abs(reference).max(axis=0)))


def _robertson_error(reference: np.ndarray, rtol: float, in_norm: bool, method: str = "radau") -> float:
    solution = run(load_model("robertson"), (0.0, 40.0), p=ROBERTSON_K, method=method, rtol=rtol, atol=1e-10,
                   t_eval=ROBERTSON_T, sensitivity_in_norm=in_norm).check()
    return _relative_error(solution.sensitivities, reference)


@pytest.mark.parametrize(("method", "bound"), [("radau", 1e-6), ("lsoda", 1e-5)])
def test_robertson_sensitivities_converge(robertson_reference, method, bound):
    """Sensitivities in the error norm: the error falls with rtol.

    Measured (rtol 1e-4, 1e-6, 1e-8): Radau 2.6e-5, 6.9e-7, 5.1e-8; LSODA 6.0e-5, 5.3e-6, 2.8e-7 (2.1e-6 on
    this test's output grid).  Further down it stalls (rtol 1e-10: Radau 7.9e-8, LSODA 3.7e-7): with atol
    1e-10 shared by y and S, dy/dk2 (of size 1e-12) is below the absolute tolerance and never resolved.
    """
    errors = [_robertson_error(robertson_reference, rtol, True, method) for rtol in (1e-4, 1e-6, 1e-8)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < bound


def test_robertson_sensitivity_error_smaller_in_norm(robertson_reference):
    """At the same rtol the sensitivities are more accurate when they are in the error norm.

    Measured with Radau (relative error; accepted steps): rtol 1e-6: 6.9e-7 (95) in the norm vs 1.7e-6 (80)
    out; rtol 1e-8: 5.1e-8 (210) vs 5.3e-6 (165).  At rtol 1e-4 it is the other way round (2.6e-5 in vs
    2.0e-5 out), so that tolerance is not asserted.  Out of the norm the error does not fall with rtol at
    all (1.7e-6 at 1e-6, 5.3e-6 at 1e-8): it sits in dy2/dk1 and dy2/dk2 during the initial transient
    (t ~ 1e-3), where steps chosen for y alone are too long for S.
    """
    for rtol in (1e-6, 1e-8):
        assert _robertson_error(robertson_reference, rtol, True) < _robertson_error(robertson_reference, rtol, False)


HH_T_END = 30.0
HH_T = np.linspace(0.0, HH_T_END, 151)
HH_CONSTANTS = {"E_Na": 50.0, "E_K": -77.0, "E_L": -54.387, "C_m": 1.0, "I_ext": 10.0}
HH_CONDUCTANCES = np.array([120.0, 36.0, 0.3])  # g_Na, g_K, g_L


def _hh_rates(V):
    """The textbook rates (Dayan & Abbott 2001, Sect. 5.6), with the 0/0 forms as written there."""
    alpha_m = 0.1 * (V + 40) / (1 - np.exp(-(V + 40) / 10))
    beta_m = 4 * np.exp(-(V + 65) / 18)
    alpha_h = 0.07 * np.exp(-(V + 65) / 20)
    beta_h = 1 / (1 + np.exp(-(V + 35) / 10))
    alpha_n = 0.01 * (V + 55) / (1 - np.exp(-(V + 55) / 10))
    beta_n = 0.125 * np.exp(-(V + 65) / 80)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def _hh_rhs(y, g):
    """Hodgkin–Huxley by hand; works on complex arrays (columns = evaluation points)."""
    V, m, h, n = y
    g_Na, g_K, g_L = g
    c = HH_CONSTANTS
    a_m, b_m, a_h, b_h, a_n, b_n = _hh_rates(V)
    current = g_Na * m**3 * h * (V - c["E_Na"]) + g_K * n**4 * (V - c["E_K"]) + g_L * (V - c["E_L"])
    return np.array([(c["I_ext"] - current) / c["C_m"], a_m * (1 - m) - b_m * m, a_h * (1 - h) - b_h * h,
                     a_n * (1 - n) - b_n * n])


_COMPLEX_STEP = 1e-30
_UNIT = np.eye(7)


def _hh_augmented(t: float, z: np.ndarray) -> np.ndarray:
    """y' = f, S' = J S + F_p with [J | F_p] by complex steps: Im f(x + i h e_l) / h is exact to rounding."""
    y, S = z[:4], z[4:].reshape(3, 4).T
    F = _hh_rhs(y[:, None] + 1j * _COMPLEX_STEP * _UNIT[:4], HH_CONDUCTANCES[:, None] + 1j * _COMPLEX_STEP * _UNIT[4:])
    D = F.imag / _COMPLEX_STEP
    return np.concatenate([F.real[:, 0], (D[:, :4] @ S + D[:, 4:]).T.ravel()])


@pytest.fixture(scope="module")
def hodgkin_huxley_reference() -> tuple[np.ndarray, np.ndarray]:
    """(y, S) at HH_T from DOP853 at rtol 1e-12 on the hand-written augmented system (several spikes)."""
    a_m, b_m, a_h, b_h, a_n, b_n = _hh_rates(-65.0)
    y0 = np.array([-65.0, a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)])
    reference = solve_ivp(_hh_augmented, (0.0, HH_T_END), np.r_[y0, np.zeros(12)], method="DOP853",
                          rtol=1e-12, atol=1e-12, t_eval=HH_T)
    assert reference.success
    return reference.y[:4].T, reference.y[4:].reshape(3, 4, -1).transpose(2, 1, 0)


@pytest.mark.parametrize("in_norm", [False, True])
def test_hodgkin_huxley_sensitivities_converge(hodgkin_huxley_reference, in_norm):
    """dy/d(g_Na, g_K, g_L) over 30 ms; measured (Radau): out of the norm 6.9e-4, 2.6e-6, 2.2e-8;
    in the norm 1.5e-5, 3.0e-7, 2.8e-9 at rtol 1e-4, 1e-6, 1e-8."""
    y_reference, s_reference = hodgkin_huxley_reference
    model = load_model("hodgkin-huxley")
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        solution = run(model, (0.0, HH_T_END), rtol=rtol, atol=1e-8, t_eval=HH_T, parameters=("g_Na", "g_K", "g_L"),
                       sensitivity_in_norm=in_norm).check()
        errors.append(_relative_error(solution.sensitivities, s_reference))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-6
    np.testing.assert_allclose(solution.y, y_reference, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------
# Error control, statistics, Jacobians
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dopri5", "bs3"])
def test_sensitivities_out_of_norm_leave_the_state_steps_unchanged(method):
    """Out of the norm, y is controlled exactly as without sensitivities (the sqrt(P + 1) rescaling of the
    y tolerances undoes the RMS over n (P + 1) components), so an explicit method takes the same steps."""
    model = load_model("hindmarsh-rose")
    plain = run(model, (0.0, 200.0), method=method, sensitivity=None).check()
    augmented = run(model, (0.0, 200.0), method=method, parameters=("a", "b", "c")).check()
    assert augmented.stats.accepted_steps == plain.stats.accepted_steps
    np.testing.assert_allclose(augmented.stats.step_times, plain.stats.step_times, rtol=1e-8)
    assert augmented.options["state_tolerance_scale"] == pytest.approx(2.0)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_solution_fields_and_statistics(method):
    model = load_model("van-der-pol")
    p = np.array([5.0])
    solution = run(model, (0.0, 2.0), p=p, method=method, parameters=("mu",), sensitivity_in_norm=True).check()
    stats = solution.stats
    assert solution.backend == "numpy" and solution.method == method
    assert solution.sensitivity == "forward-error-control" and solution.parameters == ("mu",)
    assert solution.state_names == ("y1", "y2") and solution.t_failure is None
    assert solution.y.shape == (len(solution.t), 2) and solution.sensitivities.shape == (len(solution.t), 2, 1)
    # Without t_eval the output times are the accepted steps.
    assert stats.accepted_steps == len(solution.t) - 1 == len(stats.step_sizes)
    np.testing.assert_array_equal(stats.step_times, solution.t)
    assert stats.step_times[0] == 0.0 and stats.step_times[-1] == 2.0 and np.all(stats.step_sizes > 0)
    assert stats.rhs_evaluations > stats.accepted_steps
    if NUMPY_METHODS[method] in ("Radau", "BDF"):
        # (LSODA may stay with its non-stiff Adams method on this mildly stiff problem: no Jacobian then.)
        assert stats.jacobian_evaluations >= 1 and stats.lu_decompositions >= 1
    if NUMPY_METHODS[method] in ("RK45", "RK23", "DOP853"):
        # Rejections recovered from nfev: attempts = (nfev - 2) / stages, an integer.
        assert solution.options["rejected_steps_counted"] and stats.rejected_steps >= 0
    assert solution.options["scipy_method"] == NUMPY_METHODS[method]


def test_t_eval_outputs_and_no_sensitivities():
    model = load_model("stiff-linear")
    t_eval = np.array([0.0, 0.0, 0.25, 0.5, 1.0])
    solution = run(model, (0.0, 1.0), p=np.array([-2.0, 1.0]), t_eval=t_eval, sensitivity=None, rtol=1e-9,
                   atol=1e-12).check()
    np.testing.assert_array_equal(solution.t, t_eval)
    np.testing.assert_allclose(solution.y[:, 0], np.exp(-2.0 * t_eval), rtol=1e-7)
    assert solution.sensitivities is None and solution.sensitivity is None and solution.parameters == ()
    assert solution.stats.step_times[-1] == 1.0 and solution.stats.accepted_steps == len(solution.stats.step_sizes)


@pytest.mark.parametrize("strategy", ["blocks", "symbolic"])
def test_augmented_jacobian_matches_differences_of_the_rhs(strategy):
    """The analytic augmented Jacobian against central differences of the augmented right-hand side."""
    model = load_model("hodgkin-huxley")
    kernels = model_kernels(model, ("g_Na", "g_K", "g_L"))
    problem = _Problem(kernels, np.array(model.parameter_values), with_jacobian=True, jacobian_strategy=strategy)
    rng = np.random.default_rng(5)
    for V in (-65.0, -40.0, -55.0, 20.0):
        y = np.r_[V, rng.uniform(0.05, 0.95, 3), rng.normal(0.0, 2.0, 12)]
        J = problem.jac(0.0, y)
        differences = np.empty_like(J)
        for l in range(y.size):
            step = 1e-6 * max(1.0, abs(y[l]))
            up, down = y.copy(), y.copy()
            up[l] += step
            down[l] -= step
            differences[:, l] = (problem.rhs(0.0, up) - problem.rhs(0.0, down)) / (2 * step)
        np.testing.assert_allclose(J, differences, rtol=1e-5, atol=1e-6 * np.abs(J).max())


def test_jacobian_strategies_agree():
    model = load_model("robertson")
    p = np.array(model.parameter_values)
    y = np.r_[0.7, 2e-5, 0.3, np.linspace(-1.0, 1.0, 9)]
    kernels = model_kernels(model, model.parameter_names)
    a = _Problem(kernels, p, True, "blocks").jac(0.0, y)
    b = _Problem(kernels, p, True, "symbolic").jac(0.0, y)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)


def test_removable_singularity_of_the_rates_is_finite_and_continuous():
    """At V = -40 (and -55) the textbook rates are 0/0; the kernels evaluate them through exprel."""
    model = load_model("hodgkin-huxley")
    kernels = model_kernels(model, ("g_Na", "g_K", "g_L"))
    problem = _Problem(kernels, np.array(model.parameter_values), with_jacobian=True)
    state = np.r_[0.0, 0.1, 0.6, 0.3, np.ones(12)]
    for V in (-40.0, -55.0):
        at, near = state.copy(), state.copy()
        at[0], near[0] = V, V + 1e-7
        for function in (problem.rhs, problem.jac):
            value_at, value_near = function(0.0, at), function(0.0, near)
            assert np.all(np.isfinite(value_at))
            np.testing.assert_allclose(value_at, value_near, rtol=1e-5, atol=1e-6)


def test_fast_and_ieee_kernels_agree_on_every_function_of_the_language():
    """The math-module kernels (fast path) and the NumPy ones (fallback) give the same values."""
    y1, y2, a, b, t = sp.symbols("y1 y2 a b t")
    model = Model(
        [y1, y2], {a: 1.0, b: 2.0},
        [sp.Piecewise((-a * y1, y1 > 0.5), (-b * y1, True)) + sp.Min(y2, 1) - sp.Abs(y1) / 10 + sp.Heaviside(t - 0.5),
         -sp.Max(a, y2) * y2 + sp.sign(y1) / 100 + sp.tanh(y1) + sp.log(1 + y2**2) + sp.sqrt(1 + b)
         + model_exprel(y1 - 1)],
        [1, sp.Rational(1, 2)],
    )
    kernels = model_kernels(model, ("a", "b"))
    p = np.array([1.0, 2.0])
    problem = _Problem(kernels, p, with_jacobian=True)
    values, positions = kernels.jacobian()
    for time, state in ((0.7, np.r_[0.7, 0.2, np.ones(4)]), (0.2, np.r_[0.3, 1.5, -np.ones(4)])):
        np.testing.assert_allclose(problem.rhs(time, state), kernels.rhs.evaluate_ieee(time, state, p), rtol=1e-14)
        dense = np.zeros(36)
        dense[positions] = values.evaluate_ieee(time, state, p)
        np.testing.assert_allclose(problem.jac(time, state), dense.reshape(6, 6), rtol=1e-14, atol=1e-15)


def test_overflow_falls_back_to_ieee_values():
    """math raises OverflowError for (1e200)**2 where NumPy gives inf: the kernel returns inf and records when."""
    kernels = model_kernels(_blow_up())
    problem = _Problem(kernels, np.array([1.0]), with_jacobian=True)
    assert problem.rhs(0.5, np.array([2.0]))[0] == 4.0 and problem.t_nonfinite is None
    assert problem.rhs(0.75, np.array([1e200]))[0] == np.inf and problem.t_nonfinite == 0.75
    assert problem.jac(0.8, np.array([1e308 * 10]))[0, 0] == np.inf


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_scalar_exprel_against_mpmath(order):
    mpmath.mp.dps = 40
    for x in (-30.0, -5.0, -2.0, -1.999, -0.7, -1e-9, 0.0, 1e-9, 0.3, 1.5, 2.0, 2.5, 8.0, 40.0):
        if x == 0.0:
            exact = mpmath.bernoulli(order) if order != 1 else mpmath.mpf(-0.5)
        else:
            exact = mpmath.diff(lambda z: z / (mpmath.exp(z) - 1), x, order)
        value = _scalar_exprel(x) if order == 0 else _scalar_exprel_derivative(order, x)
        assert abs(value - float(exact)) <= 1e-14 * max(abs(float(exact)), 1e-3), (order, x)


def test_kernels_are_cached_across_nominal_value_changes():
    model = load_model("robertson")
    other = model.with_parameter_values({"k1": 0.05})
    assert model_kernels(model, ("k1",)) is model_kernels(other, ("k1",))
    assert model_kernels(model, ("k1",)) is not model_kernels(model, ("k2",))


# ----------------------------------------------------------------------------------------------------
# Bad input and failures
# ----------------------------------------------------------------------------------------------------


def test_discrete_sensitivities_need_the_compiled_backend():
    with pytest.raises(ValueError, match=r"discrete.*compiled"):
        run(load_model("stiff-linear"), (0.0, 1.0), sensitivity="discrete")


@pytest.mark.parametrize("method", ["rodas4", "tsit5", "RADAU"])
def test_unknown_method_is_named(method):
    with pytest.raises(ValueError, match=rf"{method!r}.*'radau'.*'lsoda'"):
        run(load_model("stiff-linear"), (0.0, 1.0), method=method)


def _blow_up() -> Model:
    """y' = y^2, y(0) = 1: y = 1 / (1 - t), infinite at t = 1."""
    return Model(states=["y"], parameters={"a": 1.0}, rhs=["a*y**2"], initial_conditions=[1], name="blow-up")


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("sensitivity", [None, "forward"])
def test_finite_time_blow_up_is_reported(method, sensitivity):
    solution = run(_blow_up(), (0.0, 2.0), method=method, sensitivity=sensitivity, parameters=("a",))
    assert solution.status != "success" and not solution.success
    assert solution.t_failure == pytest.approx(1.0, abs=1e-3)
    assert f"{solution.t_failure:.6g}"[:4] in solution.message and solution.status in solution.message
    assert solution.t[-1] <= solution.t_failure and len(solution.t) == len(solution.y)
    with pytest.raises(IntegrationError) as raised:
        solution.check()
    assert raised.value.status == solution.status and raised.value.t == solution.t_failure


@pytest.mark.parametrize("method", ALL_METHODS)
def test_non_finite_values_are_reported(method):
    """y' = log(a - t): nan past t = a.  Every method stops near t = 1 with "non-finite values" (LSODA, whose
    error test lets a nan state through, is caught by the check on each accepted state), and y there is
    int_0^1 log(1 - t) dt = -1."""
    model = Model(states=["y"], parameters={"a": 1.0}, rhs=["log(a - t)"], initial_conditions=[0], name="log")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # nan and inf are reported, not warned about
        solution = run(model, (0.0, 2.0), method=method, parameters=("a",))
    assert solution.status == "non-finite values"
    assert solution.t_failure == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.isfinite(solution.y)) and solution.y[-1, 0] == pytest.approx(-1.0, abs=5e-3)
    with pytest.raises(IntegrationError, match="non-finite values at t = "):
        solution.check()


def test_too_many_steps():
    solution = run(load_model("van-der-pol"), (0.0, 2.0), method="radau", max_steps=5)
    assert solution.status == "too many steps" and solution.stats.accepted_steps == 5
    assert "max_steps = 5" in solution.message and solution.t_failure == solution.t[-1]
