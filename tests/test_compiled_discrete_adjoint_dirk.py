"""The compiled SDIRK/ESDIRK discrete adjoint (``symsens_dirk_adjoint.hpp``) against the NumPy sweep and against
discrete forward mode.

The independent computation is forward-mode AD through the compiled C++ solver (dual numbers,
``sensitivity="discrete"`` with the values-only norm, so the plain solve's steps and Newton iterations): the
compiled reverse pass replays the same accepted steps, Newton iterations, kept Jacobians and (for an adaptive
solve) re-enacted rejected attempts, and must give the same number to rounding, 1e-11 relative.  The NumPy sweep
(:mod:`symsens.integrate._discrete_adjoint_dirk`) runs the same algorithm with LAPACK's LU and lambdified kernels:
the two count the same work and agree to the rounding of the problem (1e-12; 5e-12 on Robertson at a loose
tolerance, where one ulp in a parameter moves the gradient by 1.3e-12).  Kvaerno5 (ESDIRK) on the stiff neural ODE uses the settings of
``tests/test_discrete_adjoint_implicit.py`` (its compiled solver is a cache hit there); SDIRK4 (SDIRK) runs on
Robertson at a loose tolerance (25 rejected attempts) and TR-BDF2 (ESDIRK) on a forced, non-autonomous oscillator.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
import symsens.integrate._discrete_adjoint_dirk as numpy_module
import symsens.integrate._discrete_adjoint_dirk_compiled as compiled_module
from symsens.integrate._discrete_adjoint_dirk import DirkCoefficients, discrete_adjoint_dirk
from symsens.integrate._discrete_adjoint_dirk_compiled import discrete_adjoint_dirk_compiled
from symsens.integrate._discrete_adjoint_newton import ReplayError


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _same_work(compiled, numpy_run) -> None:  # noqa: ANN001
    for name in ("steps", "checkpoint_every", "checkpoints", "stored_numbers", "rhs_evaluations",
                 "vjp_evaluations"):
        assert getattr(compiled, name) == getattr(numpy_run, name), name


def test_kvaerno5_equals_numpy_sweep_and_discrete_forward_mode() -> None:
    """The adaptive solve (rejections included) and its replay (``replay_steps``: Newton budget 20, no rejected
    attempts), the replay with a checkpoint at every step, the default schedule and a single checkpoint."""
    model = symsens.load_model("stiff-neural-ode")
    parameters = ("k1", "b2_0")
    p = np.asarray(model.parameter_values, dtype=float)
    t_eval = np.linspace(0.0, 0.5, 21)
    options = dict(method="kvaerno5", rtol=1e-6, atol=1e-9, t_eval=t_eval, sensitivity="discrete",
                   parameters=list(parameters))
    forward = symsens.solve(model, (0.0, 0.5), **options)
    assert forward.status == "success" and forward.stats.rejected_steps > 0
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape) / np.maximum(np.abs(forward.y), 1e-3)
    times, steps = forward.stats.step_times, forward.stats.step_sizes
    arguments = (model, "kvaerno5", p, parameters, times, steps, t_eval, W)
    run = discrete_adjoint_dirk_compiled(*arguments, rtol=1e-6, atol=1e-9)
    reference = discrete_adjoint_dirk(*arguments, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(run.outputs, forward.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(forward.y)))
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11
    assert _relative(run.gradient, reference.gradient) < 1e-12
    _same_work(run, reference)

    replayed = symsens.solve(model, (0.0, 0.5), replay_steps=steps, **options)
    assert replayed.status == "success"
    expected = np.einsum("ki,kij->j", W, replayed.sensitivities)
    runs = [discrete_adjoint_dirk_compiled(*arguments, rtol=1e-6, atol=1e-9, replayed=True, checkpoint_every=every)
            for every in (1, None, len(steps))]
    for each in runs:
        np.testing.assert_allclose(each.outputs, replayed.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(replayed.y)))
        assert _relative(each.gradient, expected) < 1e-11
    # The recomputed blocks are the same operations whatever the schedule: the same gradient bit for bit.
    assert all(np.array_equal(each.gradient, runs[0].gradient) for each in runs)
    assert runs[0].checkpoints == len(steps) and runs[-1].checkpoints == 1
    assert runs[1].stored_numbers < runs[-1].stored_numbers
    reference = discrete_adjoint_dirk(*arguments, rtol=1e-6, atol=1e-9, replayed=True)
    assert _relative(runs[1].gradient, reference.gradient) < 1e-12
    _same_work(runs[1], reference)


@pytest.fixture(scope="module")
def robertson() -> tuple:
    """SDIRK4 on Robertson to t = 1e4 at rtol 1e-4: long stiff steps and 25 rejected attempts."""
    model = symsens.load_model("robertson")
    t_eval = np.linspace(0.0, 1e4, 11)
    forward = symsens.solve(model, (0.0, 1e4), method="sdirk4", rtol=1e-4, atol=1e-7, t_eval=t_eval,
                            sensitivity="discrete", parameters=["k1", "k3"])
    assert forward.status == "success" and forward.stats.rejected_steps > 10
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape) / np.maximum(np.abs(forward.y), 1e-3)
    return model, t_eval, forward, W


def test_sdirk4_on_stiff_robertson_with_rejected_attempts(robertson: tuple) -> None:
    """The re-enacted rejected attempts cost evaluations of f (more than the replayed solve's) and may refresh the
    Jacobian the accepted step uses; the gradient equals forward mode through the adaptive solve."""
    model, t_eval, forward, W = robertson
    p = np.asarray(model.parameter_values, dtype=float)
    arguments = (model, "sdirk4", p, ("k1", "k3"), forward.stats.step_times, forward.stats.step_sizes, t_eval, W)
    run = discrete_adjoint_dirk_compiled(*arguments, rtol=1e-4, atol=1e-7)
    assert _relative(run.outputs, forward.y) < 1e-13
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11
    reference = discrete_adjoint_dirk(*arguments, rtol=1e-4, atol=1e-7)
    # This program amplifies rounding: moving one parameter by one ulp moves its gradient by up to 1.3e-12
    # (measured), so the two sweeps (LAPACK's LU and lambdified J against DenseLu and generated J), 1.8e-12 apart,
    # agree to the rounding of the problem; forward mode above is the check to 1e-11.
    assert _relative(run.gradient, reference.gradient) < 5e-12
    _same_work(run, reference)
    replay = discrete_adjoint_dirk_compiled(*arguments, rtol=1e-4, atol=1e-7, replayed=True)
    assert run.rhs_evaluations > replay.rhs_evaluations


def test_replay_that_leaves_the_solve_path_raises_like_numpy(robertson: tuple) -> None:
    """Replayed at another tolerance than the solve's, Newton does not converge within the adaptive budget: the
    same ReplayError, naming the same step, as the NumPy sweep."""
    model, t_eval, forward, W = robertson
    arguments = (model, "sdirk4", np.asarray(model.parameter_values, dtype=float), ("k1",),
                 forward.stats.step_times, forward.stats.step_sizes, t_eval, W)
    with pytest.raises(ReplayError) as numpy_error:
        discrete_adjoint_dirk(*arguments, rtol=1e-12, atol=1e-15)
    with pytest.raises(ReplayError) as compiled_error:
        discrete_adjoint_dirk_compiled(*arguments, rtol=1e-12, atol=1e-15)
    assert str(compiled_error.value) == str(numpy_error.value)
    assert "step 1 " in str(compiled_error.value)


def test_tr_bdf2_on_a_non_autonomous_model() -> None:
    """t enters every stage (``f(t_n + c_i h, Z)``) and every transposed product; the forced oscillator of the
    Rosenbrock tests (its transposed-product and second-order libraries are shared)."""
    model = symsens.Model(states=["x", "v"], parameters={"a": 1.3, "w": 2.0, "k": 40.0},
                          rhs=["v", "-k*x - a*v + sin(w*t)*x^2 + cos(w*t)"], initial_conditions=["1", "0"],
                          name="forced", t_span=(0.0, 2.0))
    t_eval = np.linspace(0.0, 2.0, 7)
    forward = symsens.solve(model, (0.0, 2.0), method="tr-bdf2", rtol=1e-5, atol=1e-8, t_eval=t_eval,
                            sensitivity="discrete")
    assert forward.status == "success" and forward.stats.rejected_steps > 0
    W = np.sin(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape)
    run = discrete_adjoint_dirk_compiled(model, "tr-bdf2", np.array([1.3, 2.0, 40.0]), ("a", "w", "k"),
                                         forward.stats.step_times, forward.stats.step_sizes, t_eval, W,
                                         rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(run.outputs, forward.y, rtol=1e-12, atol=1e-14)
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11


def test_a_tableau_that_is_not_stiffly_accurate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every diagonally implicit scheme of the catalogue is stiffly accurate (``y_{n+1} = Z_s``); the other
    branch (``y_{n+1} = y_n + h sum_i b_i k_i``, whose cotangent reaches ``ybar_n`` and every ``kbar_i``) is
    checked on Crouzeix's two-stage SDIRK of order 3 (gamma = (3 + sqrt 3) / 6, b = (1/2, 1/2); Hairer & Wanner,
    Solving ODEs II, Sect. IV.6; the error weights are made up so that the controller's re-enactment runs too), replayed
    on the steps of a Kvaerno5 solve: against central differences of the replayed program's loss and against the
    NumPy sweep (the same work, hence the same path, including the re-enacted attempts)."""
    gamma = (3.0 + np.sqrt(3.0)) / 6.0
    coefficients = DirkCoefficients("crouzeix", np.array([[gamma, 0.0], [1.0 - 2.0 * gamma, gamma]]),
                                    np.array([0.5, 0.5]), np.array([gamma, 1.0 - gamma]), gamma, False, False,
                                    np.array([0.1, -0.1]))
    monkeypatch.setattr(numpy_module, "dirk_coefficients", lambda scheme: coefficients)
    monkeypatch.setattr(compiled_module, "dirk_coefficients", lambda scheme: coefficients)
    model = symsens.load_model("stiff-neural-ode")
    parameters = ("k1", "b2_0")
    p = np.asarray(model.parameter_values, dtype=float)
    t_eval = np.linspace(0.0, 0.5, 21)
    solution = symsens.solve(model, (0.0, 0.5), method="kvaerno5", rtol=1e-6, atol=1e-9, t_eval=t_eval)
    W = np.cos(np.arange(solution.y.size, dtype=float)).reshape(solution.y.shape)

    def run(values: np.ndarray, replayed: bool, numpy: bool = False):  # noqa: ANN202
        sweep = numpy_module.discrete_adjoint_dirk if numpy else compiled_module.discrete_adjoint_dirk_compiled
        return sweep(model, "kvaerno5", values, parameters, solution.stats.step_times, solution.stats.step_sizes,
                     t_eval, W, rtol=1e-6, atol=1e-9, replayed=replayed)

    replayed = run(p, True)
    names = list(model.parameter_names)
    for j, name in enumerate(parameters):
        delta = 1e-4 * abs(p[names.index(name)])
        shifted = [p.copy(), p.copy()]
        shifted[0][names.index(name)] += delta
        shifted[1][names.index(name)] -= delta
        plus, minus = (run(values, True) for values in shifted)
        # The same program at p +- delta: the same number of evaluations of f.
        assert plus.rhs_evaluations == minus.rhs_evaluations == replayed.rhs_evaluations
        difference = (np.sum(W * plus.outputs) - np.sum(W * minus.outputs)) / (2.0 * delta)
        # Measured 4.5e-10 and 1.1e-10: truncation O(delta^2) and rounding / delta.
        assert abs(difference - replayed.gradient[j]) < 1e-7 * abs(replayed.gradient[j])
    adaptive = run(p, False)
    reference = run(p, False, numpy=True)
    assert adaptive.rhs_evaluations > replayed.rhs_evaluations   # the re-enacted attempts
    assert _relative(adaptive.gradient, reference.gradient) < 1e-12
    assert _relative(adaptive.outputs, reference.outputs) < 1e-13
    _same_work(adaptive, reference)


def test_a_solve_without_steps_and_bad_input() -> None:
    model = symsens.load_model("robertson")
    p = [0.04, 3e7, 1e4]
    # No steps: the outputs at t0 are y0(p) = (1, 0, 0), which does not depend on p.
    run = discrete_adjoint_dirk_compiled(model, "kvaerno5", p, ("k1",), np.array([0.0]), np.array([]),
                                         np.array([0.0]), np.ones((1, 3)), rtol=1e-6, atol=1e-9)
    assert run.steps == 0 and np.array_equal(run.outputs, [[1.0, 0.0, 0.0]]) and np.array_equal(run.gradient, [0.0])

    one_step = (np.array([0.0, 1.0]), np.array([1.0]), np.array([1.0]), np.zeros((1, 3)))
    cases = [
        (("rodas4", p, ("k1",), *one_step), {}, "`scheme`"),
        (("no-such-scheme", p, ("k1",), *one_step), {}, "`scheme`"),
        (("kvaerno5", p, ("k9",), *one_step), {}, "unknown parameter 'k9'"),
        (("kvaerno5", p, ("k1", "k1"), *one_step), {}, "listed twice"),
        (("kvaerno5", p[:2], ("k1",), *one_step), {}, "`p` must hold all 3"),
        (("kvaerno5", p, ("k1",), np.array([0.0, 1.0, 2.0]), np.array([1.0]), np.array([1.0]), np.zeros((1, 3))),
         {}, "`step_times`"),
        (("kvaerno5", p, ("k1",), *one_step[:3], np.zeros((1, 2))), {}, "`cotangents`"),
        (("kvaerno5", p, ("k1",), *one_step), {"checkpoint_every": 0}, "`checkpoint_every`"),
        (("kvaerno5", p, ("k1",), *one_step), {"rtol": 0.0}, "`rtol`"),
        (("kvaerno5", p, ("k1",), *one_step), {"atol": float("nan")}, "`atol`"),
        (("kvaerno5", p, ("k1",), np.array([0.0, np.nan]), np.array([np.nan]), np.array([1.0]), np.zeros((1, 3))),
         {}, "finite"),
    ]
    for arguments, options, message in cases:
        with pytest.raises(ValueError, match=message):
            discrete_adjoint_dirk_compiled(model, *arguments, **{"rtol": 1e-6, "atol": 1e-9, **options})
