"""Discrete adjoints of the implicit families (Rosenbrock, SDIRK/ESDIRK, Radau IIA, BDF) against discrete forward
mode.

The independent computation is forward-mode AD through the compiled C++ solver (dual numbers,
``method="discrete"``: the values-only norm, so the plain solve's steps): the reverse pass in NumPy replays the
same accepted steps (and, for SDIRK, Radau and BDF, the same Newton iterations with the same kept Jacobians; for
BDF also the rejected attempts that re-evaluated the Jacobian) and must give the same number to rounding, 1e-11
relative.  Each family runs on one of the three stiff examples here (one
compiled kernel each); ``benchmarks/discrete_adjoint_implicit.py`` runs the full family x model table.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.audit import TrajectoryLoss
from symsens.integrate._discrete_adjoint import discrete_adjoint, discrete_adjoint_family

CASES = {
    # scheme: (model, span, parameters, loss)
    "rodas4": ("hodgkin-huxley", (0.0, 5.0), ("g_Na", "E_K"),
               TrajectoryLoss(grid=tuple(np.linspace(0.0, 5.0, 26)), data_parameters=(("g_Na", 115.0),))),
    "kvaerno5": ("stiff-neural-ode", (0.0, 0.5), ("k1", "b2_0"),
                 TrajectoryLoss(grid=tuple(np.linspace(0.0, 0.5, 21)), data_parameters=(("k1", 1.05),))),
    "radau5": ("robertson", (0.0, 40.0), ("k1", "k3"),
               TrajectoryLoss(grid=tuple(np.geomspace(1e-3, 40.0, 15)), data_parameters=(("k1", 0.05),))),
    # 14 rejected attempts, some of which re-evaluate the Jacobian (Newton budget 4): the hard case.
    "bdf": ("hodgkin-huxley", (0.0, 5.0), ("g_Na", "E_K"),
            TrajectoryLoss(grid=tuple(np.linspace(0.0, 5.0, 26)), data_parameters=(("g_Na", 115.0),))),
}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.mark.parametrize("scheme", list(CASES))
def test_discrete_adjoint_equals_discrete_forward_mode(scheme: str) -> None:
    """The adaptive solve (rejections included) and its replay (``replay_steps``: no rejections, Newton budget
    20), each against the compiled forward mode of the same program; the replay with a checkpoint at every step,
    the default schedule and a single checkpoint.  (The dual solve's values and steps are the plain solve's.)"""
    name, span, parameters, loss = CASES[scheme]
    model = symsens.load_model(name)
    p = np.asarray(model.parameter_values, dtype=float)
    t_eval = np.asarray(loss.grid)
    forward = symsens.solve(model, span, method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval,
                            sensitivity="discrete", parameters=list(parameters))
    assert forward.status == "success" and forward.stats.rejected_steps > 0
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape) / np.maximum(np.abs(forward.y), 1e-3)
    times, steps = forward.stats.step_times, forward.stats.step_sizes
    run = discrete_adjoint(model, scheme, p, parameters, times, steps, t_eval, W, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(run.outputs, forward.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(forward.y)))
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11

    replayed = symsens.solve(model, span, method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval,
                             sensitivity="discrete", parameters=list(parameters), replay_steps=steps)
    assert replayed.status == "success"
    expected = np.einsum("ki,kij->j", W, replayed.sensitivities)
    runs = [discrete_adjoint(model, scheme, p, parameters, times, steps, t_eval, W, rtol=1e-6, atol=1e-9,
                             replayed=True, checkpoint_every=every) for every in (1, None, len(steps))]
    for run in runs:
        np.testing.assert_allclose(run.outputs, replayed.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(replayed.y)))
        assert _relative(run.gradient, expected) < 1e-11
    assert runs[0].checkpoints == len(steps) and runs[-1].checkpoints == 1
    assert runs[1].stored_numbers < runs[-1].stored_numbers


@pytest.mark.parametrize("model_name, span, rtol, parameters", [
    ("robertson", (0.0, 1e4), 1e-4, ("k1", "k3")),
    ("robertson", (0.0, 1e4), 1e-3, ("k1", "k3")),
])
def test_radau_rejected_attempts_that_refresh_the_jacobian(model_name, span, rtol, parameters) -> None:
    """Long steps at a loose tolerance: Newton fails with an old Jacobian inside attempts that are then rejected,
    so the accepted step uses a Jacobian evaluated in a rejected attempt.  The replay re-enacts those attempts
    (without that, the two computations differ by 1.8e-5 and 1.6e-8 here, the states by 2.2e-6 and 3.4e-9)."""
    model = symsens.load_model(model_name)
    p = np.asarray(model.parameter_values, dtype=float)
    t_eval = np.linspace(span[0], span[1], 11)
    forward = symsens.solve(model, span, method="radau5", rtol=rtol, atol=rtol * 1e-3, t_eval=t_eval,
                            sensitivity="discrete", parameters=list(parameters))
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape)
    run = discrete_adjoint(model, "radau5", p, parameters, forward.stats.step_times, forward.stats.step_sizes,
                           t_eval, W, rtol=rtol, atol=rtol * 1e-3)
    assert _relative(run.outputs, forward.y) < 1e-13
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11


def test_gradient_and_audit_route_adjoint_discrete_to_the_implicit_adjoints() -> None:
    """``symsens.gradient(method="adjoint-discrete")`` (the audit's run) against ``method="discrete"``."""
    name, span, parameters, loss = CASES["radau5"]
    model = symsens.load_model(name)
    options = dict(scheme="radau5", rtol=1e-6, t_span=span, parameters=list(parameters))
    forward = symsens.gradient(model, loss, method="discrete", **options)
    reverse = symsens.gradient(model, loss, method="adjoint-discrete", **options)
    assert forward.success and reverse.success, (forward.message, reverse.message)
    assert reverse.loss == forward.loss
    assert reverse.statistics["forward"]["accepted_steps"] == forward.statistics["forward"]["accepted_steps"]
    assert reverse.statistics["discrete_adjoint"]["replay_difference"] < 1e-12
    assert _relative(reverse.gradient, forward.gradient) < 1e-11


def test_rosenbrock_adjoint_of_a_non_autonomous_model() -> None:
    """``f_t`` enters every Rosenbrock stage (``gamma_i h f_t``): its derivatives in ``y`` and ``p`` too."""
    model = symsens.Model(states=["x", "v"], parameters={"a": 1.3, "w": 2.0, "k": 40.0},
                          rhs=["v", "-k*x - a*v + sin(w*t)*x^2 + cos(w*t)"], initial_conditions=["1", "0"],
                          name="forced", t_span=(0.0, 2.0))
    t_eval = np.linspace(0.0, 2.0, 7)
    # The dual solve's values and steps are the plain solve's (values-only norm): one compiled kernel suffices.
    forward = symsens.solve(model, (0.0, 2.0), method="ros3p", rtol=1e-5, atol=1e-8, t_eval=t_eval,
                            sensitivity="discrete")
    W = np.sin(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape)
    run = discrete_adjoint(model, "ros3p", np.array([1.3, 2.0, 40.0]), ("a", "w", "k"), forward.stats.step_times,
                           forward.stats.step_sizes, t_eval, W, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(run.outputs, forward.y, rtol=1e-12, atol=1e-14)
    assert forward.stats.accepted_steps > 20
    assert _relative(run.gradient, np.einsum("ki,kij->j", W, forward.sensitivities)) < 1e-11


def test_families_and_errors() -> None:
    assert [discrete_adjoint_family(s) for s in ("tsit5", "rodas5p", "tr-bdf2", "radau5", "bdf", "exprb32", "x")] \
        == ["explicit", "rosenbrock", "dirk", "radau", "bdf", None, None]
    model = symsens.load_model("robertson")
    with pytest.raises(ValueError, match="`scheme`"):
        discrete_adjoint(model, "exprb32", [0.04, 3e7, 1e4], ("k1",), np.array([0.0, 1.0]), np.array([1.0]),
                         np.array([1.0]), np.zeros((1, 3)), rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="`scheme`"):
        symsens.gradient(model, method="adjoint-discrete", scheme="exprb32", t_span=(0.0, 1.0))
    with pytest.raises(ValueError, match="`checkpoint_every`"):
        discrete_adjoint(model, "radau5", [0.04, 3e7, 1e4], ("k1",), np.array([0.0, 1.0]), np.array([1.0]),
                         np.array([1.0]), np.zeros((1, 3)), rtol=1e-6, atol=1e-9, checkpoint_every=0)
