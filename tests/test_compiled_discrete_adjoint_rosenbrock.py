"""The compiled (C++) discrete adjoint of Rosenbrock solves.

Independent checks: forward-mode AD through the compiled solver on the same steps (dual numbers, ``method=
"discrete"`` with the values-only norm: no transposes, no second-order kernel), the NumPy sweep (the same maths
with lambdified SymPy kernels and LAPACK's LU), and central differences of the replayed outputs.  The models and
settings are those of ``tests/test_discrete_adjoint_implicit.py`` where they can be (their compiled solvers are
cache hits), plus Robertson (stiff) and a one-state model whose ``W`` can be made exactly singular.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.integrate._discrete_adjoint_newton import ReplayError
from symsens.integrate._discrete_adjoint_rosenbrock import discrete_adjoint_rosenbrock, rosenbrock_coefficients
from symsens.integrate._discrete_adjoint_rosenbrock_compiled import discrete_adjoint_rosenbrock_compiled

ROSENBROCK_SCHEMES = ("ros2", "ros3p", "rodas3", "rodas4", "rodas5p")


def forced_model() -> symsens.Model:
    """Non-autonomous: ``f_t`` enters every stage (``gamma_i h f_t``), and its derivatives the reverse."""
    return symsens.Model(states=["x", "v"], parameters={"a": 1.3, "w": 2.0, "k": 40.0},
                         rhs=["v", "-k*x - a*v + sin(w*t)*x^2 + cos(w*t)"], initial_conditions=["1", "0"],
                         name="forced", t_span=(0.0, 2.0))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


CASES = {
    # name: (model, scheme, span, parameters, output times)
    "hodgkin-huxley": (lambda: symsens.load_model("hodgkin-huxley"), "rodas4", (0.0, 5.0), ("g_Na", "E_K"),
                       np.linspace(0.0, 5.0, 26)),
    "forced": (forced_model, "ros3p", (0.0, 2.0), ("a", "w", "k"), np.linspace(0.0, 2.0, 7)),
    "robertson": (lambda: symsens.load_model("robertson"), "rodas4", (0.0, 40.0), ("k1", "k3"),
                  np.geomspace(1e-3, 40.0, 15)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_equals_forward_mode_and_the_numpy_sweep(case: str) -> None:
    """The adaptive solve's steps (rejections included), with a checkpoint at every step, the default schedule
    and a single checkpoint: the same outputs, gradient, schedule and counted work as the NumPy sweep, and the
    forward mode's gradient to 1e-11."""
    make, scheme, span, parameters, t_eval = CASES[case]
    model = make()
    p = np.asarray(model.parameter_values, dtype=float)
    tolerances = dict(rtol=1e-5, atol=1e-8) if case == "forced" else dict(rtol=1e-6, atol=1e-9)
    forward = symsens.solve(model, span, method=scheme, t_eval=t_eval, sensitivity="discrete",
                            parameters=list(parameters), **tolerances)
    assert forward.status == "success" and forward.stats.accepted_steps > 20
    W = np.cos(np.arange(forward.y.size, dtype=float)).reshape(forward.y.shape) / np.maximum(np.abs(forward.y), 1e-3)
    expected = np.einsum("ki,kij->j", W, forward.sensitivities)
    steps = forward.stats.step_sizes
    args = (model, scheme, p, parameters, forward.stats.step_times, steps, t_eval, W)
    runs = []
    for every in (1, None, len(steps)):
        compiled = discrete_adjoint_rosenbrock_compiled(*args, checkpoint_every=every)
        numpy = discrete_adjoint_rosenbrock(*args, checkpoint_every=every)
        np.testing.assert_allclose(compiled.outputs, forward.y, rtol=1e-12, atol=1e-14 * np.max(np.abs(forward.y)))
        assert _relative(compiled.gradient, expected) < 1e-11
        assert _relative(compiled.gradient, numpy.gradient) < 1e-12
        for key in ("steps", "checkpoint_every", "checkpoints", "stored_numbers", "rhs_evaluations",
                    "vjp_evaluations", "schedule"):
            assert getattr(compiled, key) == getattr(numpy, key), key
        runs.append(compiled)
    assert runs[0].checkpoints == len(steps) and runs[-1].checkpoints == 1
    assert runs[1].stored_numbers < runs[-1].stored_numbers
    # The checkpoint schedules recompute the same steps by the same operations.
    np.testing.assert_array_equal(runs[0].gradient, runs[1].gradient)
    np.testing.assert_array_equal(runs[0].gradient, runs[2].gradient)


def _loss(model: symsens.Model, scheme: str, p: np.ndarray, times: np.ndarray, sizes: np.ndarray,
          t_eval: np.ndarray, W: np.ndarray) -> float:
    run = discrete_adjoint_rosenbrock_compiled(model, scheme, p, ("a", "w", "k"), times, sizes, t_eval,
                                               np.zeros_like(W))
    return float(np.sum(W * run.outputs))


@pytest.mark.parametrize("scheme", ROSENBROCK_SCHEMES)
def test_every_rosenbrock_scheme_on_given_steps(scheme: str) -> None:
    """Every Rosenbrock scheme of the catalogue on uneven given steps of the non-autonomous model, with outputs at
    ``t0``, at step ends and between steps: the NumPy sweep's gradient, and central differences of the replayed
    outputs' loss (step ``1e-6`` relative; the replay with fixed steps is a smooth function of ``p``)."""
    model = forced_model()
    rng = np.random.default_rng(ROSENBROCK_SCHEMES.index(scheme))
    sizes = 0.02 + 0.03 * rng.random(40)
    times = np.concatenate([[0.0], np.cumsum(sizes)])
    t_eval = np.sort(np.concatenate([[0.0], times[[3, 17, 40]], 0.5 * (times[5:35:6] + times[6:36:6])]))
    W = rng.normal(size=(len(t_eval), 2))
    p = np.array([1.3, 2.0, 40.0])
    parameters = ("a", "w", "k")
    compiled = discrete_adjoint_rosenbrock_compiled(model, scheme, p, parameters, times, sizes, t_eval, W)
    numpy = discrete_adjoint_rosenbrock(model, scheme, p, parameters, times, sizes, t_eval, W)
    assert _relative(compiled.outputs, numpy.outputs) < 1e-13
    assert _relative(compiled.gradient, numpy.gradient) < 1e-12
    differences = []
    for j in range(3):
        step = 1e-6 * p[j]
        up, down = p.copy(), p.copy()
        up[j] += step
        down[j] -= step
        differences.append((_loss(model, scheme, up, times, sizes, t_eval, W)
                            - _loss(model, scheme, down, times, sizes, t_eval, W)) / (2 * step))
    assert _relative(compiled.gradient, np.array(differences)) < 1e-6


def test_binomial_checkpointing_gives_the_uniform_gradient_bit_for_bit() -> None:
    """The binomial schedule recomputes the same steps by the same operations: the same bits, with less memory
    and more evaluations of ``f`` (up to ``r`` sweeps)."""
    model = forced_model()
    sizes = np.full(120, 2.0 / 120)
    times = np.concatenate([[0.0], np.cumsum(sizes)])
    t_eval = np.linspace(0.0, 1.9, 9)
    W = np.random.default_rng(2).normal(size=(len(t_eval), 2))
    args = (model, "rodas4", np.array([1.3, 2.0, 40.0]), ("a", "w", "k"), times, sizes, t_eval, W)
    uniform = discrete_adjoint_rosenbrock_compiled(*args)
    runs = []
    for snapshots in (2, None, 12):
        binomial = discrete_adjoint_rosenbrock_compiled(*args, checkpointing="binomial", snapshots=snapshots)
        np.testing.assert_array_equal(binomial.gradient, uniform.gradient)
        np.testing.assert_array_equal(binomial.outputs, uniform.outputs)
        assert binomial.schedule == "binomial" and binomial.vjp_evaluations == uniform.vjp_evaluations
        runs.append(binomial)
    assert runs[0].stored_numbers < runs[1].stored_numbers < runs[2].stored_numbers < uniform.stored_numbers
    assert runs[0].rhs_evaluations > runs[1].rhs_evaluations > runs[2].rhs_evaluations > uniform.rhs_evaluations
    assert runs[0].checkpoints == 2 and runs[2].checkpoints <= 12
    with pytest.raises(ValueError, match="`snapshots`: 1 snapshots for 120 steps would advance each step up to"):
        discrete_adjoint_rosenbrock_compiled(*args, checkpointing="binomial", snapshots=1)
    with pytest.raises(ValueError, match="`checkpoint_every` applies to checkpointing='uniform'"):
        discrete_adjoint_rosenbrock_compiled(*args, checkpointing="binomial", checkpoint_every=3)
    with pytest.raises(ValueError, match="`checkpointing` must be 'uniform' or 'binomial'"):
        discrete_adjoint_rosenbrock_compiled(*args, checkpointing="revolve")


def growth_model() -> symsens.Model:
    return symsens.Model(states=["y"], parameters={"k": 2.0, "b": 0.5}, rhs=["k*y + b*sin(t)"],
                         initial_conditions=["b"], name="growth", t_span=(0.0, 1.0))


def test_a_solve_without_steps_and_a_singular_matrix() -> None:
    """No steps: the outputs at ``t0`` are ``y0`` and the gradient ``(dy0/dp)^T w``.  A step whose
    ``W = 1/(h gamma) - k`` is exactly zero: a ReplayError naming the step."""
    model = growth_model()
    p = np.array([2.0, 0.5])
    run = discrete_adjoint_rosenbrock_compiled(model, "rodas4", p, ("k", "b"), np.array([0.0]), np.zeros(0),
                                               np.array([0.0]), np.array([[3.0]]))
    np.testing.assert_array_equal(run.outputs, [[0.5]])
    np.testing.assert_array_equal(run.gradient, [0.0, 3.0])
    gamma = rosenbrock_coefficients("rodas4").gamma
    h = 0.1
    singular = np.array([1.0 / (h * gamma), 0.5])        # k = 1/(h gamma) as the sweep computes it
    for schedule in ("uniform", "binomial"):
        with pytest.raises(ReplayError, match=r"W = I/\(h gamma\) - J of step 2 \(t = 0.05, h = 0.1\) is singular"):
            discrete_adjoint_rosenbrock_compiled(model, "rodas4", singular, ("k",), np.array([0.0, 0.05, 0.15]),
                                                 np.array([0.05, 0.1]), np.array([0.15]), np.ones((1, 1)),
                                                 checkpointing=schedule)


def test_bad_input_is_refused_by_name() -> None:
    model = growth_model()
    p = np.array([2.0, 0.5])
    times, sizes, t_eval, W = np.array([0.0, 0.5, 1.0]), np.array([0.5, 0.5]), np.array([1.0]), np.ones((1, 1))
    call = discrete_adjoint_rosenbrock_compiled
    with pytest.raises(ValueError, match="`scheme`: 'tsit5' is not a Rosenbrock scheme"):
        call(model, "tsit5", p, ("k",), times, sizes, t_eval, W)
    with pytest.raises(ValueError, match="`scheme`"):
        call(model, "no-such-scheme", p, ("k",), times, sizes, t_eval, W)
    with pytest.raises(ValueError, match="`parameters`: unknown parameter 'q'"):
        call(model, "rodas4", p, ("q",), times, sizes, t_eval, W)
    with pytest.raises(ValueError, match="`parameters`: a parameter is listed twice"):
        call(model, "rodas4", p, ("k", "k"), times, sizes, t_eval, W)
    with pytest.raises(ValueError, match="`p` must hold all 2 parameter values"):
        call(model, "rodas4", p[:1], ("k",), times, sizes, t_eval, W)
    with pytest.raises(ValueError, match="`step_times` must have one entry more than `step_sizes`"):
        call(model, "rodas4", p, ("k",), times[:2], sizes, t_eval, W)
    with pytest.raises(ValueError, match="`cotangents` must have shape \\(1, 1\\)"):
        call(model, "rodas4", p, ("k",), times, sizes, t_eval, np.ones((2, 1)))
    with pytest.raises(ValueError, match="`checkpoint_every` must be a positive integer"):
        call(model, "rodas4", p, ("k",), times, sizes, t_eval, W, checkpoint_every=0)
    with pytest.raises(ValueError, match="must be finite"):
        call(model, "rodas4", p, ("k",), times, np.array([0.5, np.nan]), t_eval, W)
