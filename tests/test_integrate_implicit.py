"""Compiled implicit integrators through ``symsens.solve``: orders, stiff solves, gradient modes, backends.

Every check is against something computed independently of the compiled solvers: closed forms, scipy's Radau
at rtol 1e-12 (on hand-written right-hand sides and Jacobians), central finite differences of the solver with
its step sequence frozen, and the pure NumPy/SciPy backend.

Compiling is the slow part (about 2-3 s per model x parameter selection x method), so the libraries this module
needs are built up front, two at a time, into the session's private cache; the tests then only load them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import symsens
from symsens.integrate import solve
from symsens.integrate._compiled import EXPLICIT_METHODS, IMPLICIT_METHODS, compiled_solver, method_spec


def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.getbasetemp() / "kernel-cache")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", _cache_dir(tmp_path_factory))


# ---------------------------------------------------------------------------------------------------------------
# Models.
# ---------------------------------------------------------------------------------------------------------------
def _nonlinear() -> symsens.Model:
    """Non-autonomous and nonlinear with a closed form (y(0) = (1, 1)):

    y1' = -2 a t y1^2,  y2' = a y1 y2   =>   y1 = 1 / (1 + a t^2),  y2 = exp(sqrt(a) atan(sqrt(a) t)).
    """
    return symsens.Model(
        states=["y1", "y2"], parameters={"a": 1.0}, rhs=["-2*a*t*y1^2", "a*y1*y2"], initial_conditions=[1, 1],
        name="nonlinear-closed-form",
    )


def _nonlinear_exact(t: float, a: float = 1.0) -> np.ndarray:
    r = np.sqrt(a)
    return np.array([1.0 / (1.0 + a * t * t), np.exp(r * np.arctan(r * t))])


ROBERTSON = symsens.load_model("robertson")
VDP = symsens.load_model("van-der-pol")                       # mu = 1000, singular-perturbation scaling
VDP10 = VDP.with_parameter_values({"mu": 10.0})
ROBERTSON_PARAMETERS = tuple(ROBERTSON.parameter_names)

CONVERGENCE = {  # method: (order, step counts on [0, 1])
    "radau-iia-3": (5, (10, 20, 40)),
    "kvaerno5": (5, (20, 40, 80)),
    "tr-bdf2": (2, (100, 200, 400)),
    "rodas4": (4, (40, 80, 160)),
    "rodas5p": (5, (20, 40, 80)),
}
ADAPTIVE_METHODS = ("radau-iia-3", "rodas4", "rodas5p", "kvaerno5", "tr-bdf2", "bdf")
DISCRETE_METHODS = ("radau-iia-3", "rodas4", "kvaerno5")
FORWARD_METHODS = ("radau-iia-3", "rodas4")
BACKEND_METHOD = "radau-iia-3"


def _backend_cases() -> list[tuple[str, symsens.Model, tuple[str, ...]]]:
    cases = []
    for name in symsens.examples():
        model = symsens.load_model(name)
        # Robertson: all three rate constants (the library of the discrete-mode test, one compilation less).
        parameters = ROBERTSON_PARAMETERS if name == "robertson" else tuple(model.parameter_names[:2])
        cases.append((name, model, parameters))
    return cases


@pytest.fixture(scope="module", autouse=True)
def _prebuilt(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Build every library the module uses, two compilations at a time (the tests then load them)."""
    jobs: list[tuple[symsens.Model, tuple[str, ...], str]] = []
    jobs += [(_nonlinear(), (), method) for method in CONVERGENCE]
    jobs += [(model, (), method) for model in (ROBERTSON, VDP) for method in ADAPTIVE_METHODS]
    jobs += [(ROBERTSON, ROBERTSON_PARAMETERS, method) for method in DISCRETE_METHODS]
    jobs += [(model, parameters, BACKEND_METHOD) for _, model, parameters in _backend_cases()]
    previous = os.environ.get("SYMSENS_CACHE_DIR")
    os.environ["SYMSENS_CACHE_DIR"] = _cache_dir(tmp_path_factory)
    try:
        with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
            for future in [pool.submit(compiled_solver, *job) for job in jobs]:
                future.result()
    finally:
        if previous is None:
            del os.environ["SYMSENS_CACHE_DIR"]
        else:
            os.environ["SYMSENS_CACHE_DIR"] = previous


# ---------------------------------------------------------------------------------------------------------------
# Method table.
# ---------------------------------------------------------------------------------------------------------------
def test_method_table() -> None:
    assert {"radau-iia-3", "radau5", "tr-bdf2", "kvaerno5", "rodas4", "rodas5p", "bdf"} <= set(IMPLICIT_METHODS)
    assert method_spec("radau5").tableau_code == method_spec("radau-iia-3").tableau_code
    assert method_spec("sdirk2").error_order is None
    assert method_spec("kvaerno5").error_order == 5 and method_spec("tr-bdf2").error_order == 3
    assert method_spec("rodas4").error_order == 4 and method_spec("radau-iia-3").error_order == 4
    with pytest.raises(ValueError) as info:
        method_spec("no-such-method")
    for name in EXPLICIT_METHODS + IMPLICIT_METHODS:
        assert name in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# Fixed-step convergence orders on the nonlinear non-autonomous closed form.
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(CONVERGENCE))
def test_fixed_step_convergence_order(method: str) -> None:
    """Log-log slope of the global error at t = 1 against the closed form, within 0.3 of the catalogue order.

    Measured slopes (step counts as listed; errors 6e-8 .. 1e-12): radau-iia-3 5.01, kvaerno5 4.99, tr-bdf2 2.00,
    rodas4 4.05 (pairwise 4.12, 4.07, 4.03: approaching 4 from above), rodas5p 5.03.  No superconvergence on this
    nonlinear problem (on y' = lambda y Rodas5P shows order 6, since R(z) - e^z = O(z^7)).
    Tight rtol/atol only set the Newton tolerance of the implicit stages (max(10 eps/rtol, min(0.03, sqrt rtol))
    in the weighted norm), so the Newton error stays far below the discretisation error.
    """
    order, counts = CONVERGENCE[method]
    model = _nonlinear()
    errors, steps = [], []
    for n in counts:
        sol = solve(model, (0, 1), method=method, fixed_step=1.0 / n, t_eval=[1.0], rtol=1e-12, atol=1e-14)
        sol.check()
        errors.append(float(np.max(np.abs(sol.y[-1] - _nonlinear_exact(1.0)))))
        steps.append(1.0 / n)
    slope = float(np.polyfit(np.log(steps), np.log(errors), 1)[0])
    assert abs(slope - order) < 0.3, (method, slope, errors)


# ---------------------------------------------------------------------------------------------------------------
# Adaptive stiff solves against scipy's Radau at rtol 1e-12.
# ---------------------------------------------------------------------------------------------------------------
ROBERTSON_TIMES = np.array([1.0, 10.0, 100.0, 1e3, 1e4, 1e5])
VDP_TIMES = np.array([0.25, 0.5, 1.0, 1.5, 2.0])


def _robertson_f(k: np.ndarray):  # type: ignore[no-untyped-def]
    k1, k2, k3 = k

    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2], k2 * y[1] ** 2])

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([[-k1, k3 * y[2], k3 * y[1]],
                         [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
                         [0.0, 2 * k2 * y[1], 0.0]])

    return f, jac


@pytest.fixture(scope="module")
def robertson_reference() -> np.ndarray:
    f, jac = _robertson_f(np.array(ROBERTSON.parameter_values))
    sol = solve_ivp(f, (0, 1e5), [1.0, 0.0, 0.0], method="Radau", jac=jac, rtol=1e-12, atol=1e-20, t_eval=ROBERTSON_TIMES)
    assert sol.success
    return sol.y.T


@pytest.fixture(scope="module")
def vdp_reference() -> np.ndarray:
    (mu,) = VDP.parameter_values

    def f(t: float, y: np.ndarray) -> list[float]:
        return [y[1], mu * ((1 - y[0] ** 2) * y[1] - y[0])]

    def jac(t: float, y: np.ndarray) -> list[list[float]]:
        return [[0.0, 1.0], [mu * (-2 * y[0] * y[1] - 1), mu * (1 - y[0] ** 2)]]

    sol = solve_ivp(f, (0, 2), [2.0, 0.0], method="Radau", jac=jac, rtol=1e-12, atol=1e-12, t_eval=VDP_TIMES)
    assert sol.success
    return sol.y.T


# rtol 1e-6, steps ending on the output times (the error is the integrator's own, not the interpolant's).
# Measured max relative errors: Robertson / van der Pol
#   radau-iia-3 6e-9 / 5e-8, rodas4 4e-8 / 2e-7, rodas5p 1e-7 / 7e-7, kvaerno5 2e-7 / 6e-6,
#   tr-bdf2 3e-5 / 1.6e-4 (order 2: phase error before the relaxation jumps), bdf 4e-6 / 3e-5.
ADAPTIVE_BOUND = {"robertson": 2e-5, "vdp": 2e-5}
ADAPTIVE_BOUND_METHOD = {("tr-bdf2", "robertson"): 3e-4, ("tr-bdf2", "vdp"): 1e-3, ("bdf", "vdp"): 3e-4}
MAX_STEPS = {"robertson": 2000, "vdp": 6000}


def _relative_error(y: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(y - reference) / np.abs(reference)))


@pytest.mark.parametrize("method", ADAPTIVE_METHODS)
def test_robertson_adaptive(method: str, robertson_reference: np.ndarray) -> None:
    sol = solve(ROBERTSON, (0, 1e5), method=method, rtol=1e-6, atol=1e-14, t_eval=ROBERTSON_TIMES,
                step_onto_outputs=True)
    sol.check()
    error = _relative_error(sol.y, robertson_reference)
    assert error < ADAPTIVE_BOUND_METHOD.get((method, "robertson"), ADAPTIVE_BOUND["robertson"]), (method, error)
    assert sol.stats.accepted_steps < MAX_STEPS["robertson"]
    assert sol.stats.jacobian_evaluations > 0 and sol.stats.lu_decompositions >= sol.stats.jacobian_evaluations


@pytest.mark.parametrize("method", ADAPTIVE_METHODS)
def test_van_der_pol_adaptive(method: str, vdp_reference: np.ndarray) -> None:
    sol = solve(VDP, (0, 2), method=method, rtol=1e-6, atol=1e-6, t_eval=VDP_TIMES, step_onto_outputs=True)
    sol.check()
    error = _relative_error(sol.y, vdp_reference)
    assert error < ADAPTIVE_BOUND_METHOD.get((method, "vdp"), ADAPTIVE_BOUND["vdp"]), (method, error)
    assert sol.stats.accepted_steps < MAX_STEPS["vdp"]


# ---------------------------------------------------------------------------------------------------------------
# Discrete forward mode = central differences of the same solver replaying the same steps.
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", DISCRETE_METHODS)
def test_discrete_mode_equals_frozen_step_differences(method: str) -> None:
    t1 = 40.0
    kwargs = dict(method=method, rtol=1e-6, atol=1e-10, t_eval=[1.0, t1])
    sol = solve(ROBERTSON, (0, t1), sensitivity="discrete", parameters=ROBERTSON_PARAMETERS, **kwargs)
    sol.check()
    steps = sol.stats.step_sizes
    p = np.array(ROBERTSON.parameter_values)
    for j in range(len(p)):
        delta = 1e-6 * p[j]
        runs = []
        for sign in (1, -1):
            q = p.copy()
            q[j] += sign * delta
            run = solve(ROBERTSON, (0, t1), p=q, replay_steps=steps, **kwargs)
            run.check()
            runs.append(run)
        # The same program on both sides: no Newton iteration count changed between p - delta and p + delta.
        assert runs[0].stats.newton_iterations == runs[1].stats.newton_iterations
        fd = (runs[0].y - runs[1].y) / (2 * delta)
        dual = sol.sensitivities[:, :, j]
        # Measured: max |dual - fd| / max |fd| about 5e-9 for all three methods.
        np.testing.assert_allclose(dual, fd, rtol=1e-7, atol=1e-7 * np.abs(fd).max(),
                                   err_msg=f"{method} d/d{ROBERTSON_PARAMETERS[j]}")


# ---------------------------------------------------------------------------------------------------------------
# Continuous forward sensitivities converge to an independent augmented solve.
# ---------------------------------------------------------------------------------------------------------------
FORWARD_T = 100.0


@pytest.fixture(scope="module")
def robertson_sensitivity_reference() -> np.ndarray:
    """scipy Radau at rtol 1e-12 on the hand-written augmented system (y, S), S' = J S + F_p, S(0) = 0."""
    k = np.array(ROBERTSON.parameter_values)
    f, jac = _robertson_f(k)

    def fp(y: np.ndarray) -> np.ndarray:  # df/dk, 3 x 3
        return np.array([[-y[0], 0.0, y[1] * y[2]],
                         [y[0], -y[1] ** 2, -y[1] * y[2]],
                         [0.0, y[1] ** 2, 0.0]])

    def g(t: float, u: np.ndarray) -> np.ndarray:
        y, S = u[:3], u[3:].reshape(3, 3)
        return np.concatenate([f(t, y), (jac(t, y) @ S + fp(y)).ravel()])

    def g_jac(t: float, u: np.ndarray) -> np.ndarray:
        y, S = u[:3], u[3:].reshape(3, 3)
        J = jac(t, y)
        M = np.zeros((12, 12))
        M[:3, :3] = J
        eps = 1e-7  # the coupling block d(J S + F_p)/dy only shapes Newton, not the solution
        base = (J @ S + fp(y)).ravel()
        for l in range(3):
            yl = y.copy()
            yl[l] += eps * max(1.0, abs(y[l]))
            M[3:, l] = ((jac(t, yl) @ S + fp(yl)).ravel() - base) / (yl[l] - y[l])
        for b in range(3):
            M[3:, 3:].reshape(3, 3, 3, 3)[:, b, :, b] = J
        return M

    sol = solve_ivp(g, (0, FORWARD_T), np.concatenate([[1.0, 0.0, 0.0], np.zeros(9)]), method="Radau", jac=g_jac,
                    rtol=1e-12, atol=1e-20, t_eval=[FORWARD_T])
    assert sol.success
    return sol.y[3:, -1].reshape(3, 3)


@pytest.mark.parametrize("method", FORWARD_METHODS)
def test_forward_sensitivities_converge(method: str, robertson_sensitivity_reference: np.ndarray) -> None:
    reference = robertson_sensitivity_reference
    scale = np.abs(reference).max(axis=0)  # per parameter
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        sol = solve(ROBERTSON, (0, FORWARD_T), method=method, rtol=rtol, atol=rtol * 1e-6, sensitivity="forward",
                    sensitivity_in_norm=True, parameters=ROBERTSON_PARAMETERS, t_eval=[FORWARD_T])
        sol.check()
        errors.append(float(np.max(np.abs(sol.sensitivities[-1] - reference) / scale)))
    # Measured: radau-iia-3 8e-8, 4e-11, 4e-13; rodas4 4e-7, 1e-8, 9e-11.
    assert errors[0] > errors[1] > errors[2], (method, errors)
    assert errors[2] < 1e-9, (method, errors)


# ---------------------------------------------------------------------------------------------------------------
# Compiled and NumPy backends agree on every built-in model.
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "model", "parameters"), _backend_cases(), ids=[c[0] for c in _backend_cases()])
def test_compiled_and_numpy_backends_agree(name: str, model: symsens.Model, parameters: tuple[str, ...]) -> None:
    t0, t1 = model.t_span
    span = (t0, t0 + 0.1 * (t1 - t0))
    t_eval = np.linspace(span[0], span[1], 5)
    rtol, atol = 1e-8, 1e-10
    kwargs = dict(rtol=rtol, atol=atol, t_eval=t_eval, sensitivity="forward", parameters=parameters,
                  sensitivity_in_norm=True)
    compiled = solve(model, span, method=BACKEND_METHOD, **kwargs)
    reference = solve(model, span, method="radau", backend="numpy", **kwargs)
    compiled.check()
    reference.check()
    # In units of the local tolerance atol + rtol |y| (sensitivities: scaled per parameter); measured: below 0.7
    # on every model.  Global errors may exceed the local tolerance by a modest factor, hence 20.
    y_scale = atol + rtol * np.abs(reference.y)
    assert np.max(np.abs(compiled.y - reference.y) / y_scale) < 20, name
    s_ref = reference.sensitivities
    s_scale = atol + rtol * np.abs(s_ref).max(axis=0, keepdims=True)
    assert np.max(np.abs(compiled.sensitivities - s_ref) / s_scale) < 20, name
