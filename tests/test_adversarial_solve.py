"""Adversarial inputs to ``symsens.solve``: wrong arguments, impossible step sequences and numerical failures.

Every case either raises ValueError/TypeError naming the argument, or returns a failed ``Solution`` whose
status names the true cause (one vocabulary for both backends), whose ``t_failure`` says when, and whose rows
are exactly the values the integration reached — never an invented row.  Cases that both backends support are
run on both (``backend="compiled"`` with a catalogue scheme, ``backend="numpy"`` with SciPy's).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import symsens
from symsens import Model, load_model, solve
from symsens._checks import STATUS_NAMES
from symsens.audit import audit
from symsens.reference import reference

ROBERTSON = load_model("robertson")
# Schemes already used by the other integrator tests (their compiled solvers are cached).
EXPLICIT = {"compiled": "tsit5", "numpy": "dopri5"}
IMPLICIT = {"compiled": "radau-iia-3", "numpy": "radau"}
BACKENDS = ("compiled", "numpy")


def _assert_failed_honestly(solution: symsens.integrate.Solution, status: str) -> None:
    """A failed solve: the status, its time, and only finite rows at times reached (t0 always)."""
    assert solution.status == status, solution.message
    assert not solution.success and solution.status in STATUS_NAMES.values()
    assert solution.message.startswith(f"{status} at t = ")
    assert solution.t_failure is not None and solution.t[-1] <= solution.t_failure
    assert len(solution.t) == len(solution.y) >= 1
    assert np.all(np.isfinite(solution.y))
    if solution.sensitivities is not None:
        assert len(solution.sensitivities) == len(solution.t)
        assert np.all(np.isfinite(solution.sensitivities))
    steps = solution.stats.step_times
    assert np.all(np.diff(steps) > 0), "every accepted step advances t"


# ---- replayed steps must cover t_span ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("steps", "error", "match"),
    [
        ([1.0, 1.0], ValueError,
         r"`replay_steps` must cover t_span exactly: they sum to 2, but t_span needs t1 - t0 = 40"),
        ([100.0], ValueError, r"`replay_steps` must cover t_span exactly: they sum to 100"),
        ([45.0, -5.0], ValueError, r"`replay_steps` must be positive step sizes"),
        ([45.0, 1.0], ValueError, r"`replay_steps` reach t1 = 40 after 1 of 2 steps"),
        ([], ValueError, r"`replay_steps` is empty"),
        ([20.0, float("nan"), 20.0], ValueError, r"`replay_steps` contains a non-finite step size \(nan\) at index 1"),
        ([50.0, -10.0], ValueError, r"`replay_steps` must be positive step sizes"),
        ([[20.0, 20.0]], ValueError, r"`replay_steps` must be a 1-D sequence"),
        (["a"], TypeError, r"`replay_steps` must be a sequence of step sizes"),
    ],
)
def test_replay_steps_that_do_not_cover_t_span_are_refused(backend: str, steps: list, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        solve(ROBERTSON, (0, 40), method="rodas4" if backend == "compiled" else "radau", replay_steps=steps,
              t_eval=[0, 10, 40], backend=backend)


def test_replay_steps_are_compiled_only() -> None:
    with pytest.raises(ValueError, match=r"`replay_steps` needs backend=\"compiled\""):
        solve(ROBERTSON, (0, 40), method="radau", replay_steps=[40.0], backend="numpy")


def test_replayed_steps_summing_to_the_span_up_to_rounding_land_on_t1() -> None:
    model = load_model("stiff-linear")  # y' = lam y, lam = -1000; y0 = 1
    steps = [0.1] * 10
    assert sum(steps) != 1.0  # 0.9999999999999999: the span up to rounding
    solution = solve(model, (0, 1), method="rodas4", replay_steps=steps, t_eval=[0.0, 0.5, 1.0]).check()
    assert solution.stats.step_times[-1] == 1.0 and solution.stats.accepted_steps == 10
    np.testing.assert_array_equal(solution.t, [0.0, 0.5, 1.0])
    # L-stable: ten steps of h lam = -100 damp y to (almost) 0.
    assert solution.y[0, 0] == 1.0 and abs(solution.y[-1, 0]) < 1e-10


def test_a_recorded_step_sequence_replays_bit_for_bit() -> None:
    original = solve(ROBERTSON, (0, 40), method="rodas4", rtol=1e-6, atol=1e-10, t_eval=[10.0, 40.0]).check()
    replayed = solve(ROBERTSON, (0, 40), method="rodas4", replay_steps=original.stats.step_sizes,
                     t_eval=[10.0, 40.0]).check()
    np.testing.assert_array_equal(replayed.stats.step_times, original.stats.step_times)
    np.testing.assert_array_equal(replayed.y, original.y)


# ---- a failed run returns exactly what it reached ---------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_run_returns_the_steps_it_took(backend: str) -> None:
    """Stopped by max_steps: y(t0) = [1, 0, 0] (not zeros), and every row is the one a longer run computes."""
    method = "verner7" if backend == "compiled" else "dopri5"
    kwargs = dict(method=method, sensitivity="forward", backend=backend)
    failed = solve(ROBERTSON, (0, 1e11), max_steps=10, **kwargs)
    _assert_failed_honestly(failed, "too many steps")
    np.testing.assert_array_equal(failed.y[0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(failed.sensitivities[0], np.zeros((3, 3)))  # y0 does not depend on k
    np.testing.assert_array_equal(failed.t, failed.stats.step_times)
    assert failed.t_failure == failed.t[-1] > 0
    # The solver is deterministic: the same steps are the first steps of a run allowed more of them.
    longer = solve(ROBERTSON, (0, 1e11), max_steps=len(failed.t) + 20, **kwargs)
    k = len(failed.t)
    np.testing.assert_array_equal(longer.t[:k], failed.t)
    np.testing.assert_array_equal(longer.y[:k], failed.y)
    np.testing.assert_array_equal(longer.sensitivities[:k], failed.sensitivities)


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_run_with_t_eval_returns_only_the_output_times_reached(backend: str) -> None:
    method = "verner7" if backend == "compiled" else "dopri5"
    t_eval = [0.0, 0.0, 1e-4, 1e-3, 1.0, 1e11]
    failed = solve(ROBERTSON, (0, 1e11), method=method, max_steps=10, sensitivity="forward", t_eval=t_eval,
                   backend=backend)
    _assert_failed_honestly(failed, "too many steps")
    k = len(failed.t)
    np.testing.assert_array_equal(failed.t, t_eval[:k])
    assert failed.t[-1] <= failed.stats.step_times[-1] < t_eval[k]
    np.testing.assert_array_equal(failed.y[:2], [[1.0, 0.0, 0.0]] * 2)


def _exp_overflow() -> Model:
    """f = exp(k) y with k = 1000: exp(1000) overflows, f(t0, y0) is inf."""
    return Model(states=["y"], parameters={"k": 1000.0}, rhs=["exp(k)*y"], initial_conditions=[1], name="exp-overflow")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("t_eval", [None, [0.0, 0.5, 1.0]])
def test_non_finite_rhs_at_t0_fails_at_t0_with_y0(backend: str, t_eval: list | None) -> None:
    failed = solve(_exp_overflow(), (0, 1), method=EXPLICIT[backend], sensitivity="forward", t_eval=t_eval,
                   backend=backend)
    _assert_failed_honestly(failed, "non-finite values")
    assert failed.t_failure == 0.0 and failed.stats.accepted_steps == 0
    np.testing.assert_array_equal(failed.t, [0.0])
    np.testing.assert_array_equal(failed.y, [[1.0]])
    np.testing.assert_array_equal(failed.sensitivities, [[[0.0]]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_initial_value_fails_at_t0(backend: str) -> None:
    """y0 = sqrt(a) with a = -1 is nan: the one row returned is that value, as computed, at t0."""
    model = Model(states=["y"], parameters={"a": -1.0}, rhs=["-y"], initial_conditions=["sqrt(a)"], name="bad-y0")
    failed = solve(model, (0, 1), method=EXPLICIT[backend], backend=backend)
    assert failed.status == "non-finite values" and failed.t_failure == 0.0
    np.testing.assert_array_equal(failed.t, [0.0])
    assert failed.y.shape == (1, 1) and np.isnan(failed.y[0, 0])


# ---- one failure vocabulary, with the true cause ----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_right_hand_side_is_non_finite_values_on_both_backends(backend: str) -> None:
    """f = y log(t - 1) is nan for t < 1, from t0 on."""
    model = Model(states=["y"], parameters={"k": 1.0}, rhs=["k*y*log(t - 1)"], initial_conditions=[1], name="nan-rhs")
    failed = solve(model, (0, 5), method=EXPLICIT[backend], backend=backend)
    _assert_failed_honestly(failed, "non-finite values")
    assert failed.t_failure == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["explicit", "implicit", "bdf"])
def test_nan_reached_later_is_non_finite_values_not_too_many_steps(backend: str, kind: str) -> None:
    """y' = log(y - k t), y(0) = 1: y - k t reaches 0 near t = 0.596 and log of a negative number is nan.

    An explicit pair whose error estimate alone sees the nan (the FSAL stage) used to turn it into a nan step
    size and spin until max_steps."""
    model = Model(states=["y"], parameters={"k": 1.0}, rhs=["log(y - k*t)"], initial_conditions=[1], name="log-drift")
    method = {"explicit": EXPLICIT, "implicit": IMPLICIT, "bdf": {"compiled": "bdf", "numpy": "bdf"}}[kind][backend]
    failed = solve(model, (0, 5), method=method, backend=backend)
    _assert_failed_honestly(failed, "non-finite values")
    assert failed.t_failure == pytest.approx(0.5963, abs=1e-3)
    assert failed.stats.accepted_steps + failed.stats.rejected_steps < 1000


def test_a_step_that_does_not_advance_t_is_a_step_size_underflow() -> None:
    """k2 = 1e308: the step the initial-step heuristic asks for is below every representable time step."""
    failed = solve(ROBERTSON, (0, 40), method="tsit5", p=[0.04, 1e308, 1e4])
    _assert_failed_honestly(failed, "step size underflow")
    assert failed.stats.accepted_steps == 0 and failed.t_failure == 0.0
    np.testing.assert_array_equal(failed.y, [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_overflowing_parameters_give_a_failed_solution_not_an_exception(backend: str) -> None:
    for method in (EXPLICIT[backend], IMPLICIT[backend], "bdf"):
        failed = solve(ROBERTSON, (0, 40), method=method, p=[0.04, 1e308, 1e4], backend=backend)
        assert not failed.success and failed.status in ("step size underflow", "non-finite values")
        _assert_failed_honestly(failed, failed.status)


@pytest.mark.parametrize(
    ("controller", "error", "match"),
    [
        ({"beta1": float("nan")}, ValueError, r"`controller`: 'beta1' must be finite, got nan"),
        ({"factor_min": 5.0, "factor_max": 2.0}, ValueError, r"`controller`: 'factor_min' must be in \(0, 1\)"),
        ({"factor_max": 0.5}, ValueError, r"`controller`: 'factor_max' must be greater than 1"),
        ({"factor_min": 0.0}, ValueError, r"`controller`: 'factor_min' must be in \(0, 1\)"),
        ({"safety": 0.0}, ValueError, r"`controller`: 'safety' must be in \(0, 1\]"),
        ({"safety": 1.5}, ValueError, r"`controller`: 'safety' must be in \(0, 1\]"),
        ({"beta1": -0.1}, ValueError, r"`controller`: 'beta1' must be positive"),
        ({"beta2": -1.0}, ValueError, r"`controller`: 'beta2' must be non-negative"),
        ({"beta2": float("inf")}, ValueError, r"`controller`: 'beta2' must be finite"),
        ({"gain": 1.0}, ValueError, r"`controller`: unknown setting 'gain'"),
        ({"beta1": "fast"}, TypeError, r"`controller`: 'beta1' must be a number"),
        ({"safety": None}, TypeError, r"`controller`: 'safety' must be a number"),
        ("fast", TypeError, r"`controller` must be a dict"),
    ],
)
def test_controller_settings_are_validated(controller, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        solve(ROBERTSON, (0, 40), method="tsit5", controller=controller)


def test_valid_controller_settings_are_used() -> None:
    solution = solve(ROBERTSON, (0, 1), method="tsit5", controller={"safety": 0.8, "beta2": 0.0}).check()
    assert solution.options["safety"] == 0.8 and solution.options["beta2"] == 0.0


@pytest.mark.parametrize(
    ("option", "value"),
    [("controller", {"safety": 0.8}), ("step_onto_outputs", True), ("fixed_step", 1.0)],
)
def test_compiled_only_options_are_refused_by_the_numpy_backend(option: str, value) -> None:
    with pytest.raises(ValueError, match=rf"`{option}` needs backend=\"compiled\""):
        solve(ROBERTSON, (0, 40), method="radau", backend="numpy", **{option: value})


# ---- numerical failures inside the NumPy backend are failed solutions -------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_square_root_reaching_zero_is_a_failed_solution(backend: str) -> None:
    """y' = -k sqrt(y), y(0) = 1: y = (1 - t/2)^2 reaches 0 at t = 2, where dS/dt = -k S / (2 sqrt y) - sqrt y
    is infinite; past it sqrt(y) is nan.  SciPy's LU used to raise "array must not contain infs or NaNs"."""
    model = Model(states=["y"], parameters={"k": 1.0}, rhs=["-k*sqrt(y)"], initial_conditions=[1], name="sqrt-decay")
    failed = solve(model, (0, 5), method=IMPLICIT[backend], sensitivity="forward", backend=backend)
    _assert_failed_honestly(failed, "non-finite values")
    assert failed.t_failure == pytest.approx(2.0, abs=1e-2)
    t = failed.t
    np.testing.assert_allclose(failed.y[:, 0], (1 - t / 2) ** 2, atol=1e-4)


# ---- arguments: named, with what was expected -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(max_steps=2**63), ValueError, r"`max_steps` must be between 1 and 2\*\*62, got 9223372036854775808"),
        (dict(max_steps=0), ValueError, r"`max_steps` must be between 1 and 2\*\*62, got 0"),
        (dict(max_steps=float("nan")), ValueError, r"`max_steps` must be a whole number of steps, got nan"),
        (dict(max_steps=2.5), ValueError, r"`max_steps` must be a whole number of steps, got 2.5"),
        (dict(max_steps="10"), TypeError, r"`max_steps` must be a whole number of steps, got str '10'"),
        (dict(max_steps=True), TypeError, r"`max_steps` must be a whole number of steps, got bool"),
        (dict(rtol=None), TypeError, r"`rtol` must be a positive finite number, got NoneType None"),
        (dict(rtol="abc"), TypeError, r"`rtol` must be a positive finite number, got str 'abc'"),
        (dict(rtol=float("nan")), ValueError, r"`rtol` must be a positive finite number, got nan"),
        (dict(atol=[1e-8, 1e-8]), TypeError, r"`atol` must be a single number, the same for every state"),
        (dict(atol=[1e-8, 1e-8, 1e-8]), TypeError,
         r"`atol` must be a single number, .*\(per-state values are not supported\)"),
        (dict(p=["a", "b", "c"]), TypeError, r"`p` must contain numbers, got str 'a' at index 0"),
        (dict(p="abc"), TypeError, r"`p` must be a sequence of 3 numbers"),
        (dict(p=[0.04, float("inf"), 1e4]), ValueError, r"`p` contains a non-finite value \(inf\) at index 1"),
        (dict(p={"k2": float("nan")}), ValueError, r"`p`: parameter 'k2' is not finite"),
        (dict(p={"k2": "1e4"}), TypeError, r"`p`: the value of parameter 'k2' must be a number"),
        (dict(p={"k4": 1.0}), ValueError, r"`p`: unknown parameter 'k4'"),
        (dict(y0=[1.0, None, 0.0]), TypeError, r"`y0` must contain numbers, got NoneType None at index 1"),
        (dict(t_eval=[[0.0], [10.0]]), ValueError,
         r"`t_eval` must be a 1-D sequence of times, got an array of shape \(2, 1\)"),
        (dict(t_eval="0 10"), TypeError, r"`t_eval` must be a sequence of times"),
        (dict(first_step=-1.0), ValueError, r"`first_step` must be a positive finite number, got -1.0"),
        (dict(max_step="1"), TypeError, r"`max_step` must be a positive finite number, got str '1'"),
        (dict(sensitivity_in_norm="yes"), TypeError, r"`sensitivity_in_norm` must be True or False, got str 'yes'"),
        (dict(parameters=["k1", "k9"]), ValueError, r"`parameters`: unknown parameter 'k9'"),
        (dict(parameters=5), TypeError, r"`parameters` must be a sequence of parameter names"),
        (dict(method=None), TypeError, r"`method` must be a method name"),
    ],
)
def test_bad_arguments_are_named(backend: str, kwargs: dict, error: type, match: str) -> None:
    kwargs = {"method": "tsit5" if backend == "compiled" else "dopri5", **kwargs}
    with pytest.raises(error, match=match):
        solve(ROBERTSON, (0, 40), backend=backend, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_whole_numbers_and_numpy_scalars_are_accepted(backend: str) -> None:
    method = "tsit5" if backend == "compiled" else "dopri5"
    solution = solve(ROBERTSON, (0, 1), method=method, max_steps=1e5, rtol=np.float32(1e-5), atol=np.array(1e-9),
                     p=np.array([0.04, 3e7, 1e4]), t_eval=np.array([0.5, 1.0]), backend=backend).check()
    assert solution.options["max_steps"] == 100_000 and isinstance(solution.options["max_steps"], int)


def test_a_large_max_steps_does_not_size_an_allocation() -> None:
    solution = solve(ROBERTSON, (0, 1), method="tsit5", max_steps=2**62).check()
    assert solution.stats.accepted_steps > 0


def test_audit_and_reference_word_the_same_mistakes_the_same_way() -> None:
    """The shared checks: the argument parsing of audit and reference raises solve's messages."""
    cases = [
        (dict(p=["a", "b", "c"]), TypeError),
        (dict(p={"k2": float("nan")}), ValueError),
        (dict(parameters=["k1", "k9"]), ValueError),
        (dict(max_steps=2.5), ValueError),
        (dict(max_steps="10"), TypeError),
        (dict(atol=[1e-8, 1e-8, 1e-8]), TypeError),
        (dict(atol=-1.0), ValueError),
    ]
    for kwargs, error in cases:
        with pytest.raises(error) as from_solve:
            solve(ROBERTSON, (0, 40), method="tsit5", **kwargs)
        with pytest.raises(error, match=f"^{_escape(str(from_solve.value))}$"):
            audit(ROBERTSON, t_span=(0, 40), schemes=["tsit5"], tolerances=[1e-6], **kwargs)
    for kwargs, error in [(dict(parameters=["k1", "k9"]), ValueError), (dict(t_eval=[[0.0], [10.0]]), ValueError)]:
        with pytest.raises(error) as from_solve:
            solve(ROBERTSON, (0, 40), method="tsit5", **kwargs)
        with pytest.raises(error, match=f"^{_escape(str(from_solve.value))}$"):
            reference(ROBERTSON, (0, 40), **kwargs)


def _escape(text: str) -> str:
    import re

    return re.escape(text)
