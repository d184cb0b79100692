"""The compiled Radau IIA discrete adjoint (``symsens_radau_adjoint.hpp``) against the NumPy sweep and discrete
forward mode.

Two independent computations: the NumPy sweep of :mod:`symsens.integrate._discrete_adjoint_radau` (separate code,
lambdified kernels, SciPy's LUs) must give the same number to ~1e-12 and take the same path (the same counts of
``f`` evaluations, transposed products and stored numbers), and forward-mode AD through the compiled solver
(``sensitivity="discrete"``, the values-only norm: the plain solve's steps) must agree to 1e-11.  The settings are
those of ``tests/test_discrete_adjoint_implicit.py`` (its Robertson case and the long Robertson solves whose
rejected attempts refresh the Jacobian), so the compiled solver libraries are shared with it.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.integrate._discrete_adjoint_newton import ReplayError
from symsens.integrate._discrete_adjoint_radau import discrete_adjoint_radau
from symsens.integrate._discrete_adjoint_radau_compiled import discrete_adjoint_radau_compiled

PARAMETERS = ("k1", "k3")


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _same_path(compiled, numpy_run) -> None:  # noqa: ANN001
    """The two sweeps re-enacted the same attempts and Newton iterations: the same work and storage."""
    assert (compiled.steps, compiled.checkpoint_every, compiled.checkpoints, compiled.stored_numbers) == \
        (numpy_run.steps, numpy_run.checkpoint_every, numpy_run.checkpoints, numpy_run.stored_numbers)
    assert (compiled.rhs_evaluations, compiled.vjp_evaluations) == \
        (numpy_run.rhs_evaluations, numpy_run.vjp_evaluations)


@pytest.fixture(scope="module")
def robertson() -> symsens.Model:
    return symsens.load_model("robertson")


def test_equals_numpy_and_forward_mode_adaptive_and_replayed(robertson: symsens.Model) -> None:
    """The radau5 case of test_discrete_adjoint_implicit.py: the adaptive solve (rejections re-enacted, budget 6)
    and its replay (``replay_steps``: budget 20) with a checkpoint at every step, the default schedule and one
    checkpoint."""
    p = np.asarray(robertson.parameter_values, dtype=float)
    t_eval = np.geomspace(1e-3, 40.0, 15)
    options = dict(method="radau5", rtol=1e-6, atol=1e-9, t_eval=t_eval, sensitivity="discrete",
                   parameters=list(PARAMETERS))
    forward = symsens.solve(robertson, (0.0, 40.0), **options)
    assert forward.status == "success" and forward.stats.rejected_steps > 0
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape) / np.maximum(np.abs(forward.y), 1e-3)
    times, steps = forward.stats.step_times, forward.stats.step_sizes
    arguments = (robertson, "radau5", p, PARAMETERS, times, steps, t_eval, W)
    run = discrete_adjoint_radau_compiled(*arguments, rtol=1e-6, atol=1e-9)
    reference = discrete_adjoint_radau(*arguments, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(run.outputs, forward.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(forward.y)))
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11
    assert _relative(run.gradient, reference.gradient) < 1e-12
    assert _relative(run.outputs, reference.outputs) < 1e-13
    _same_path(run, reference)

    replayed = symsens.solve(robertson, (0.0, 40.0), replay_steps=steps, **options)
    assert replayed.status == "success"
    expected = np.einsum("ki,kij->j", W, replayed.sensitivities)
    runs = [discrete_adjoint_radau_compiled(*arguments, rtol=1e-6, atol=1e-9, replayed=True, checkpoint_every=every)
            for every in (1, None, len(steps))]
    for compiled in runs:
        np.testing.assert_allclose(compiled.outputs, replayed.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(replayed.y)))
        assert _relative(compiled.gradient, expected) < 1e-11
    # Checkpointing recomputes the same steps by the same operations: the same gradient bit for bit.
    assert all(np.array_equal(compiled.gradient, runs[0].gradient) for compiled in runs)
    assert runs[0].checkpoints == len(steps) and runs[-1].checkpoints == 1
    assert runs[1].stored_numbers < runs[-1].stored_numbers
    reference = discrete_adjoint_radau(*arguments, rtol=1e-6, atol=1e-9, replayed=True)
    assert _relative(runs[1].gradient, reference.gradient) < 1e-12
    _same_path(runs[1], reference)


@pytest.mark.parametrize("rtol", [1e-4, 1e-3])
def test_rejected_attempts_that_refresh_the_jacobian(robertson: symsens.Model, rtol: float) -> None:
    """The long Robertson solves of test_discrete_adjoint_implicit.py: Newton fails with an old Jacobian inside
    attempts that are then rejected, so an accepted step uses a Jacobian evaluated in a rejected attempt; the
    compiled replay re-enacts them as the NumPy one does (without that the gradient is off by 1.8e-5 and 1.6e-8)."""
    p = np.asarray(robertson.parameter_values, dtype=float)
    t_eval = np.linspace(0.0, 1e4, 11)
    forward = symsens.solve(robertson, (0.0, 1e4), method="radau5", rtol=rtol, atol=rtol * 1e-3, t_eval=t_eval,
                            sensitivity="discrete", parameters=list(PARAMETERS))
    assert forward.stats.rejected_steps > 0
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape)
    arguments = (robertson, "radau5", p, PARAMETERS, forward.stats.step_times, forward.stats.step_sizes, t_eval, W)
    run = discrete_adjoint_radau_compiled(*arguments, rtol=rtol, atol=rtol * 1e-3)
    reference = discrete_adjoint_radau(*arguments, rtol=rtol, atol=rtol * 1e-3)
    assert _relative(run.outputs, forward.y) < 1e-13
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11
    assert _relative(run.gradient, reference.gradient) < 1e-12
    _same_path(run, reference)


def test_non_autonomous_model_against_numpy_and_central_differences() -> None:
    """``t`` in ``f``: the stages are evaluated at ``t_n + c_i h`` and ``J`` at ``t_n``.  Given steps (replayed),
    against the NumPy sweep and against central differences of the compiled replay's own outputs (the map the
    adjoint differentiates; the Newton iteration counts do not change under the perturbation, so the difference
    quotient's error is its truncation and rounding: 5e-11 here)."""
    model = symsens.Model(states=["x", "v"], parameters={"a": 1.3, "w": 2.0, "k": 40.0},
                          rhs=["v", "-k*x - a*v + sin(w*t)*x^2 + cos(w*t)"], initial_conditions=["1", "0"],
                          name="forced", t_span=(0.0, 2.0))
    p = np.array([1.3, 2.0, 40.0])
    parameters = ("a", "w", "k")
    times = np.concatenate([[0.0], np.geomspace(0.01, 2.0, 40)])
    t_eval = np.linspace(0.0, 2.0, 9)
    W = np.sin(np.arange(2 * len(t_eval), dtype=float)).reshape(len(t_eval), 2)
    arguments = (times, np.diff(times), t_eval, W)
    run = discrete_adjoint_radau_compiled(model, "radau5", p, parameters, *arguments, rtol=1e-6, atol=1e-9,
                                          replayed=True)
    reference = discrete_adjoint_radau(model, "radau5", p, parameters, *arguments, rtol=1e-6, atol=1e-9,
                                       replayed=True)
    assert _relative(run.gradient, reference.gradient) < 1e-12
    _same_path(run, reference)
    differences = np.empty(3)
    for j in range(3):
        step = 1e-5 * p[j]
        values = []
        for sign in (1.0, -1.0):
            shifted = p.copy()
            shifted[j] += sign * step
            outputs = discrete_adjoint_radau_compiled(model, "radau5", shifted, parameters, *arguments, rtol=1e-6,
                                                      atol=1e-9, replayed=True).outputs
            values.append(float(np.sum(W * outputs)))
        differences[j] = (values[0] - values[1]) / (2.0 * step)
    assert _relative(run.gradient, differences) < 1e-8


def test_replay_error_as_numpy(robertson: symsens.Model) -> None:
    """A step the replay's Newton cannot take (Robertson, h = 100 after two short steps): the NumPy sweep's
    ReplayError, naming the step."""
    p = np.asarray(robertson.parameter_values, dtype=float)
    times = np.array([0.0, 1e-4, 2e-4, 100.0])
    arguments = (robertson, "radau5", p, PARAMETERS, times, np.diff(times), np.array([100.0]), np.ones((1, 3)))
    for replayed in (False, True):
        with pytest.raises(ReplayError) as expected:
            discrete_adjoint_radau(*arguments, rtol=1e-6, atol=1e-9, replayed=replayed)
        with pytest.raises(ReplayError, match="step 3 at t = 0.0002") as raised:
            discrete_adjoint_radau_compiled(*arguments, rtol=1e-6, atol=1e-9, replayed=replayed)
        assert str(raised.value) == str(expected.value)


def test_bad_input(robertson: symsens.Model) -> None:
    p = [0.04, 3e7, 1e4]
    times, sizes = np.array([0.0, 1.0]), np.array([1.0])

    def call(**changes):  # noqa: ANN003, ANN202
        arguments = dict(model=robertson, scheme="radau5", p=p, parameters=PARAMETERS, step_times=times,
                         step_sizes=sizes, output_times=np.array([1.0]), cotangents=np.zeros((1, 3)), rtol=1e-6,
                         atol=1e-9)
        arguments.update(changes)
        return discrete_adjoint_radau_compiled(**arguments)

    with pytest.raises(ValueError, match="`scheme`"):
        call(scheme="bdf")
    with pytest.raises(ValueError, match="unknown parameter 'k9'"):
        call(parameters=("k9",))
    with pytest.raises(ValueError, match="listed twice"):
        call(parameters=("k1", "k1"))
    with pytest.raises(ValueError, match="`p` must hold all 3"):
        call(p=[0.04, 3e7])
    with pytest.raises(ValueError, match="`checkpoint_every`"):
        call(checkpoint_every=0)
    with pytest.raises(ValueError, match="`cotangents`"):
        call(cotangents=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="`step_times`"):
        call(step_times=np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="finite"):
        call(step_times=np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="`rtol`"):
        call(rtol=0.0)
    with pytest.raises(ValueError, match="`atol`"):
        call(atol=-1.0)


def test_a_solve_without_steps(robertson: symsens.Model) -> None:
    """No steps: the gradient is ``(dy0/dp)^T w`` (Robertson's y0 does not depend on k1, k3: zero) and the output
    at t0 is y0."""
    run = discrete_adjoint_radau_compiled(robertson, "radau5", [0.04, 3e7, 1e4], PARAMETERS, np.array([0.0]),
                                          np.array([]), np.array([0.0]), np.ones((1, 3)), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(run.outputs, [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(run.gradient, [0.0, 0.0])
    assert run.steps == 0 and run.checkpoints == 0
