"""Verdict rules on hand-made runs, where the right verdict is known by construction.

At the data parameters of a trajectory loss the true gradient is exactly 0, and a run's gradient is
``sum_k 2 r_k S_k`` with ``r_k`` its residuals against its own targets: a run whose residuals are far below its
solver's tolerance level retraces the solve that made the targets, so its small gradient says nothing about its
sensitivities.  Such runs must be called uninformative and never ranked as the most accurate.
"""

from __future__ import annotations

import numpy as np

from symsens.audit._diagnose import Diagnostics
from symsens.audit._methods import MethodRun, SettingRuns
from symsens.audit._reference import ReferenceGradient
from symsens.audit._verdict import NEAR_REPRODUCTION, recommendation, verdict


def _run(method: str, gradient: list[float], loss: float, max_residual: float) -> MethodRun:
    return MethodRun(method=method, scheme="rodas4", rtol=1e-4, atol=1e-7, gradient=np.array(gradient), loss=loss,
                     status="success", message="", seconds=0.01, accepted_steps=100, rejected_steps=0,
                     step_times=None, max_residual=max_residual, time_of_max_residual=1.0)


def _setting(runs: tuple[MethodRun, ...]) -> SettingRuns:
    targets = np.array([[-60.0], [20.0], [-65.0]])  # mV: tolerance level 1e-4 * 65 + 1e-7
    return SettingRuns(scheme="rodas4", rtol=1e-4, atol=1e-7, output_times=np.array([1.0, 2.0, 3.0]),
                       targets=targets, nominal_step_times=np.array([1.0, 2.0, 3.0]), nominal_y=None,
                       nominal_seconds=0.01, runs=runs)


ZERO = ReferenceGradient(np.zeros(2), 0.0, np.full(2, np.inf), True, "exact")
NO_DIAGNOSTICS = Diagnostics(summary={}, series={})


def test_nearly_reproducing_run_is_uninformative_and_not_ranked() -> None:
    level = 1e-4 * 65.0 + 1e-7
    near = _run("forward-error-control", [2.0e-4, -1.0e-4], 2.6e-19, 0.1 * NEAR_REPRODUCTION * level)
    real = _run("discrete-tangent-norm", [3.0e1, 5.0], 34.5, 4.0)
    setting = _setting((near, real))
    category, sentence, _ = verdict(near, setting, ZERO, NO_DIAGNOSTICS, 6.0)
    assert category == "uninformative"
    assert "nearly reproduces its targets" in sentence
    category_real, _, _ = verdict(real, setting, ZERO, NO_DIAGNOSTICS, 6.0)
    assert category_real != "uninformative"
    rows = []
    for run in (near, real):
        category, sentence, digits = verdict(run, setting, ZERO, NO_DIAGNOSTICS, 6.0)
        rows.append({"method": run.method, "scheme": run.scheme, "rtol": run.rtol, "atol": run.atol,
                     "digits": digits, "category": category, "seconds": run.seconds,
                     "absolute_error": float(np.linalg.norm(run.gradient))})
    advice = recommendation(rows, 6.0)
    assert not advice["found"]
    assert "1 run ruled out" in advice["text"]
    # The nearly reproducing run has the smaller error, yet it is not called the most accurate.
    assert "forward-error-control" not in advice["text"]


def test_residuals_at_the_tolerance_level_are_judged_on_their_gradient() -> None:
    level = 1e-4 * 65.0 + 1e-7
    run = _run("forward-error-control", [2.0e-4, -1.0e-4], 1e-8, 10 * NEAR_REPRODUCTION * level)
    category, _, _ = verdict(run, _setting((run,)), ZERO, NO_DIAGNOSTICS, 6.0)
    assert category != "uninformative"


def test_a_nonzero_true_gradient_is_not_judged_by_reproduction() -> None:
    # Away from the data parameters the true gradient is not 0 and residuals do not bound the error.
    reference = ReferenceGradient(np.array([2.0e-4, -1.0e-4]), 1e-9, np.full(2, 12.0), False, "reference",
                                  error_bound=np.full(2, 1e-16))
    run = _run("forward", [2.0e-4, -1.0e-4], 2.6e-19, 1e-12)
    category, sentence, _ = verdict(run, _setting((run,)), reference, NO_DIAGNOSTICS, 6.0)
    assert category == "accurate", sentence


def test_recommendation_ranks_by_work_not_wall_time() -> None:
    rows = [
        {"method": "forward", "scheme": "tsit5", "rtol": 1e-6, "atol": 1e-9, "digits": 7.0, "category": "accurate",
         "seconds": 0.5, "work": 1.0e6, "absolute_error": 1e-9},
        {"method": "discrete", "scheme": "radau-iia-3", "rtol": 1e-6, "atol": 1e-9, "digits": 7.0,
         "category": "accurate", "seconds": 0.001, "work": 5.0e6, "absolute_error": 1e-9},
    ]
    advice = recommendation(rows, 6.0)
    assert advice["choice"]["method"] == "forward"
    assert advice == recommendation(list(reversed(rows)), 6.0)


def test_a_nearly_reproducing_run_with_exploding_tangents_is_not_uninformative() -> None:
    # Rounding-level residuals times sensitivities of norm ~1e119 (an explicit scheme's tangents exploding on a
    # stiff model while its values follow the nominal steps): a gradient of 1e104 is evidence, of inaccuracy.
    level = 1e-4 * 65.0 + 1e-7
    run = _run("forward", [2.9e104, 1.0], 1e-28, 1e-14)
    assert run.max_residual is not None and run.max_residual < NEAR_REPRODUCTION * level
    category, sentence, _ = verdict(run, _setting((run,)), ZERO, NO_DIAGNOSTICS, 6.0, np.array([0.04, 3e7]))
    assert category != "uninformative", sentence
    assert category == "inaccurate"
