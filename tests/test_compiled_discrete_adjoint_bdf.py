"""The compiled BDF discrete adjoint against the NumPy one and against discrete forward mode.

The independent computation is forward-mode AD through the compiled C++ BDF solver (dual numbers,
``sensitivity="discrete"``: the values-only norm, so the plain solve's steps, Newton iterations and Jacobian
refreshes): the compiled reverse sweep replays those accepted steps (re-enacting the rejected attempts of an
adaptive solve) and must give the same number to rounding, 1e-11 relative.  The NumPy sweep
(:mod:`symsens.integrate._discrete_adjoint_bdf`) runs the same program with lambdified kernels and SciPy's LU:
the two agree to ~1e-12 and take the same path, which the work counters (right-hand sides, transposed products,
stored numbers: each a count of the replay's decisions) show.  The Hodgkin–Huxley case is the one of
``tests/test_discrete_adjoint_implicit.py`` (14 rejected attempts, some re-evaluating the Jacobian), so its
compiled solver is a cache hit.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.integrate._discrete_adjoint_bdf import discrete_adjoint_bdf
from symsens.integrate._discrete_adjoint_bdf_compiled import discrete_adjoint_bdf_compiled
from symsens.integrate._discrete_adjoint_newton import ReplayError

RTOL, ATOL = 1e-6, 1e-9
CASES = {
    # name: (model, span, parameters, output times)
    "hodgkin-huxley": ("hodgkin-huxley", (0.0, 5.0), ("g_Na", "E_K"), np.linspace(0.0, 5.0, 26)),
    # Stiff, over eleven decades of time: 4 rejected attempts, one of which re-evaluates the Jacobian.
    "robertson": ("robertson", (0.0, 1e5), ("k1", "k3"), np.linspace(0.0, 1e5, 11)),
}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _same_path(compiled, numpy_run) -> None:  # noqa: ANN001
    """The two sweeps took the same decisions: the same work, checkpoints and stored numbers."""
    assert (compiled.steps, compiled.checkpoint_every, compiled.checkpoints, compiled.stored_numbers,
            compiled.rhs_evaluations, compiled.vjp_evaluations) == \
        (numpy_run.steps, numpy_run.checkpoint_every, numpy_run.checkpoints, numpy_run.stored_numbers,
         numpy_run.rhs_evaluations, numpy_run.vjp_evaluations)


@pytest.mark.parametrize("case", list(CASES))
def test_adaptive_solve_equals_numpy_and_forward_mode(case: str) -> None:
    """The adaptive solve, its rejected attempts re-enacted, against the compiled forward mode and the NumPy sweep."""
    name, span, parameters, t_eval = CASES[case]
    model = symsens.load_model(name)
    p = np.asarray(model.parameter_values, dtype=float)
    forward = symsens.solve(model, span, method="bdf", rtol=RTOL, atol=ATOL, t_eval=t_eval, sensitivity="discrete",
                            parameters=list(parameters))
    assert forward.status == "success" and forward.stats.rejected_steps > 0
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape) / np.maximum(np.abs(forward.y), 1e-3)
    arguments = (model, "bdf", p, parameters, forward.stats.step_times, forward.stats.step_sizes, t_eval, W)
    compiled = discrete_adjoint_bdf_compiled(*arguments, rtol=RTOL, atol=ATOL)
    reference = discrete_adjoint_bdf(*arguments, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(compiled.outputs, forward.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(forward.y)))
    assert _relative(compiled.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11
    assert _relative(compiled.gradient, reference.gradient) < 1e-12
    _same_path(compiled, reference)


def test_replayed_steps_and_checkpoint_schedules() -> None:
    """The replay (``replay_steps``: no rejections, Newton budget 20) with a checkpoint at every step, the default
    schedule and a single checkpoint: the same operations, so the same gradient bit for bit, equal to forward
    mode; the NumPy sweep on the default schedule."""
    name, span, parameters, t_eval = CASES["hodgkin-huxley"]
    model = symsens.load_model(name)
    p = np.asarray(model.parameter_values, dtype=float)
    plain = symsens.solve(model, span, method="bdf", rtol=RTOL, atol=ATOL, t_eval=t_eval)
    steps = plain.stats.step_sizes
    replayed = symsens.solve(model, span, method="bdf", rtol=RTOL, atol=ATOL, t_eval=t_eval,
                             sensitivity="discrete", parameters=list(parameters), replay_steps=steps)
    assert replayed.status == "success"
    W = np.cos(np.arange(replayed.y.size, dtype=float)).reshape(replayed.y.shape) \
        / np.maximum(np.abs(replayed.y), 1e-3)
    arguments = (model, "bdf", p, parameters, plain.stats.step_times, steps, t_eval, W)
    runs = [discrete_adjoint_bdf_compiled(*arguments, rtol=RTOL, atol=ATOL, replayed=True, checkpoint_every=every)
            for every in (1, None, len(steps))]
    expected = np.einsum("ki,kij->j", W, replayed.sensitivities)
    for run in runs:
        np.testing.assert_allclose(run.outputs, replayed.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(replayed.y)))
        assert _relative(run.gradient, expected) < 1e-11
        np.testing.assert_array_equal(run.gradient, runs[0].gradient)
    assert runs[0].checkpoints == len(steps) and runs[-1].checkpoints == 1
    assert runs[1].stored_numbers < runs[-1].stored_numbers
    reference = discrete_adjoint_bdf(*arguments, rtol=RTOL, atol=ATOL, replayed=True)
    assert _relative(runs[1].gradient, reference.gradient) < 1e-12
    _same_path(runs[1], reference)


def test_non_autonomous_model() -> None:
    """``t`` enters ``f(t_new, Y)`` in every Newton iteration and the Jacobians at ``(t_new, y_pred)``."""
    model = symsens.Model(states=["x", "v"], parameters={"a": 1.3, "w": 2.0, "k": 40.0},
                          rhs=["v", "-k*x - a*v + sin(w*t)*x^2 + cos(w*t)"], initial_conditions=["1", "0"],
                          name="forced", t_span=(0.0, 2.0))
    t_eval = np.linspace(0.0, 2.0, 7)
    forward = symsens.solve(model, (0.0, 2.0), method="bdf", rtol=1e-5, atol=1e-8, t_eval=t_eval,
                            sensitivity="discrete")
    assert forward.status == "success" and forward.stats.rejected_steps > 0
    W = np.sin(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape)
    run = discrete_adjoint_bdf_compiled(model, "bdf", np.array([1.3, 2.0, 40.0]), ("a", "w", "k"),
                                        forward.stats.step_times, forward.stats.step_sizes, t_eval, W,
                                        rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(run.outputs, forward.y, rtol=1e-12, atol=1e-14)
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11


def test_replay_failure_and_bad_input() -> None:
    model = symsens.load_model("robertson")
    p = np.asarray(model.parameter_values, dtype=float)
    times, steps = np.array([0.0, 1.0]), np.array([1.0])
    # One replayed step of h = 1 from y0: Newton with J(y0) does not converge within 20 iterations; the same
    # ReplayError, word for word, as the NumPy sweep's.
    messages = []
    for sweep in (discrete_adjoint_bdf_compiled, discrete_adjoint_bdf):
        with pytest.raises(ReplayError, match="step 1 at t = 0") as error:
            sweep(model, "bdf", p, ("k1", "k3"), times, steps, times, np.ones((2, 3)), rtol=1e-6, atol=1e-9,
                  replayed=True)
        messages.append(str(error.value))
    assert messages[0] == messages[1]

    def call(**changes):  # noqa: ANN003, ANN202
        arguments = dict(model=model, scheme="bdf", p=p, parameters=("k1", "k3"), step_times=times,
                         step_sizes=steps, output_times=times, cotangents=np.ones((2, 3)), rtol=1e-6, atol=1e-9)
        arguments.update(changes)
        return discrete_adjoint_bdf_compiled(**arguments)

    for changes, match in [({"scheme": "radau5"}, "`scheme`"), ({"parameters": ("k9",)}, "unknown parameter 'k9'"),
                           ({"parameters": ("k1", "k1")}, "listed twice"), ({"p": p[:2]}, "`p` must hold all 3"),
                           ({"rtol": 0.0}, "`rtol`"), ({"atol": -1.0}, "`atol`"),
                           ({"step_times": np.array([0.0, 0.5, 1.0])}, "`step_times`"),
                           ({"step_sizes": np.array([np.nan])}, "finite"),
                           ({"cotangents": np.ones((2, 2))}, r"`cotangents` must have shape \(2, 3\)"),
                           ({"checkpoint_every": 0}, "`checkpoint_every`")]:
        with pytest.raises(ValueError, match=match):
            call(**changes)
