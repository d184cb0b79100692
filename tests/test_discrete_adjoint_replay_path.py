"""The replay of an implicit solve proves that it took the compiled solve's path: equal work counts.

The discrete adjoints of SDIRK/ESDIRK, Radau IIA and BDF replay the compiled solve's decisions (Newton iteration
counts, Jacobian refreshes, rejected attempts re-enacted through the controller).  A replay on the solve's path
re-enacts every attempt, so over its forward pass it evaluates as many Jacobians and takes as many Newton
iterations (one per right-hand side in a Newton loop, the diverged ones included) as the solve counted in
``Solution.stats``; a different count proves a different path.  The independent side is the compiled solver's own
counters (``Stats::njev``, ``Stats::newton_iterations`` of ``symsens_solver.hpp``), against the counts of the C++
and the NumPy replays.  The cases reuse the settings of ``tests/test_discrete_adjoint_implicit.py`` and
``tests/test_compiled_discrete_adjoint_{dirk,radau,bdf}.py`` (compiled solvers: cache hits), each with rejected
attempts; Kvaerno5 on the stiff neural ODE rejects its first attempts (before any accepted step), which the replay
re-enacts from the solve's initial step size.  A replay taken off the path on purpose (the sweep given another
``rtol`` than the solve's) is detected, and ``symsens.gradient`` and the audit say so.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
import symsens.integrate._discrete_adjoint as discrete_adjoint_module
from symsens.audit import TrajectoryLoss
from symsens.integrate._discrete_adjoint import discrete_adjoint

CASES = {
    # scheme: (model, span, parameters, output times, rtol, atol)
    "kvaerno5": ("stiff-neural-ode", (0.0, 0.5), ("k1", "b2_0"), np.linspace(0.0, 0.5, 21), 1e-6, 1e-9),
    # Rejected attempts whose Newton failures re-evaluate the Jacobian for the accepted step.
    "radau5": ("robertson", (0.0, 1e4), ("k1", "k3"), np.linspace(0.0, 1e4, 11), 1e-4, 1e-7),
    "bdf": ("hodgkin-huxley", (0.0, 5.0), ("g_Na", "E_K"), np.linspace(0.0, 5.0, 26), 1e-6, 1e-9),
}


def _counts(run) -> tuple[int | None, int | None]:  # noqa: ANN001
    return run.jacobian_evaluations, run.newton_iterations


@pytest.mark.parametrize("scheme", list(CASES))
def test_replay_counts_equal_the_solve_counts(scheme: str) -> None:
    """Adaptive (rejected attempts re-enacted) and replayed steps (``replay_steps``: none), both sweeps."""
    name, span, parameters, t_eval, rtol, atol = CASES[scheme]
    model = symsens.load_model(name)
    p = np.asarray(model.parameter_values, dtype=float)
    options = dict(method=scheme, rtol=rtol, atol=atol, t_eval=t_eval, sensitivity="discrete",
                   parameters=list(parameters))
    solution = symsens.solve(model, span, **options)
    assert solution.status == "success" and solution.stats.rejected_steps > 0
    stats = solution.stats
    W = np.cos(np.arange(solution.y.size, dtype=float)).reshape(solution.y.shape)
    arguments = (model, scheme, p, parameters, stats.step_times, stats.step_sizes, t_eval, W)
    for backend in ("compiled", "numpy"):
        run = discrete_adjoint(*arguments, rtol=rtol, atol=atol, backend=backend)
        assert _counts(run) == (stats.jacobian_evaluations, stats.newton_iterations), backend
    replayed = symsens.solve(model, span, replay_steps=stats.step_sizes, **options)
    assert replayed.status == "success" and replayed.stats.rejected_steps == 0
    for backend in ("compiled", "numpy"):
        run = discrete_adjoint(*arguments, rtol=rtol, atol=atol, replayed=True, backend=backend)
        assert _counts(run) == (replayed.stats.jacobian_evaluations, replayed.stats.newton_iterations), backend


def test_attempts_rejected_before_the_first_accepted_step_are_counted() -> None:
    """The solve's first attempt is rejected (a solve allowed one attempt accepts none); the replay re-enacts it
    from the solve's initial step size, so its Newton iterations are in the count (without that re-enactment the
    count fell short by those attempts' 24 iterations)."""
    name, span, parameters, t_eval, rtol, atol = CASES["kvaerno5"]
    model = symsens.load_model(name)
    one_attempt = symsens.solve(model, span, method="kvaerno5", rtol=rtol, atol=atol, t_eval=t_eval, max_steps=1)
    assert one_attempt.status == "too many steps" and one_attempt.stats.accepted_steps == 0
    assert one_attempt.stats.newton_iterations > 0
    solution = symsens.solve(model, span, method="kvaerno5", rtol=rtol, atol=atol, t_eval=t_eval)
    W = np.ones_like(solution.y)
    run = discrete_adjoint(model, "kvaerno5", np.asarray(model.parameter_values, dtype=float), parameters,
                           solution.stats.step_times, solution.stats.step_sizes, t_eval, W, rtol=rtol, atol=atol)
    assert run.newton_iterations == solution.stats.newton_iterations


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_a_replay_off_the_path_shows_in_its_counts(backend: str) -> None:
    """The sweep given rtol 10% above the solve's: another Newton tolerance and controller, so other iteration
    counts and Jacobian refreshes, while the states still agree to 1e-9 (below the audit's 1e-8 threshold on
    ``replay_difference``): only the counts show it."""
    name, span, parameters, t_eval, rtol, atol = CASES["radau5"]
    model = symsens.load_model(name)
    solution = symsens.solve(model, span, method="radau5", rtol=rtol, atol=atol, t_eval=t_eval)
    stats = solution.stats
    run = discrete_adjoint(model, "radau5", np.asarray(model.parameter_values, dtype=float), parameters,
                           stats.step_times, stats.step_sizes, t_eval, np.ones_like(solution.y), rtol=1.1 * rtol,
                           atol=atol, backend=backend)
    assert _counts(run) != (stats.jacobian_evaluations, stats.newton_iterations)


def test_gradient_and_audit_say_when_the_replay_left_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``symsens.gradient(method="adjoint-discrete")`` (the audit's run, the radau5 case of
    test_discrete_adjoint_implicit.py): on the path its details say so; with the sweep taken off the path on
    purpose (rtol 10% above the solve's) the gradient is kept, the message and the details give both counts, and
    the audit's verdict sentence carries it."""
    from symsens.audit import _verdict

    model = symsens.load_model("robertson")
    loss = TrajectoryLoss(grid=tuple(np.geomspace(1e-3, 40.0, 15)), data_parameters=(("k1", 0.05),))
    options = dict(scheme="radau5", rtol=1e-6, t_span=(0.0, 40.0), parameters=["k1", "k3"])
    on_path = symsens.gradient(model, loss, method="adjoint-discrete", **options)
    details = on_path.statistics["discrete_adjoint"]
    assert on_path.success and details["path_matches"] is True
    assert details["replay_newton_iterations"] == on_path.statistics["forward"]["newton_iterations"] > 0
    assert "left the compiled solve's path" not in on_path.message

    original = discrete_adjoint_module.discrete_adjoint

    def off_the_path(*arguments, rtol, **options):  # noqa: ANN001, ANN002, ANN003, ANN202
        return original(*arguments, rtol=1.1 * rtol, **options)

    monkeypatch.setattr(discrete_adjoint_module, "discrete_adjoint", off_the_path)
    off = symsens.gradient(model, loss, method="adjoint-discrete", **options)
    details = off.statistics["discrete_adjoint"]
    assert off.success and off.gradient is not None
    assert details["path_matches"] is False
    assert details["replay_difference"] < 1e-8            # the states alone would not have told
    solve_counts = (details["solve_jacobian_evaluations"], details["solve_newton_iterations"])
    replay_counts = (details["replay_jacobian_evaluations"], details["replay_newton_iterations"])
    assert solve_counts[1] == off.statistics["forward"]["newton_iterations"] and replay_counts != solve_counts
    assert (f"the replay left the compiled solve's path: {replay_counts[0]} Jacobian evaluations / "
            f"{replay_counts[1]} Newton iterations against the solve's {solve_counts[0]} / {solve_counts[1]}; "
            "this is the derivative of a nearby numerical solution") in off.message

    # The audit's verdict keeps the category and says it in the sentence (the categories are decided by
    # _verdict from the reference gradient, not the subject here).
    from symsens.audit._methods import MethodRun

    monkeypatch.setattr(_verdict, "_verdict", lambda *arguments: ("accurate", "accurate to 9 digits", 9.0))
    run = MethodRun("adjoint-discrete", "radau5", 1e-6, 1e-9, off.gradient, off.loss, "success", off.message, 0.0,
                    1, 0, None, details=details)
    category, sentence, digits = _verdict.verdict(run, None, None, None, 6.0)
    assert (category, digits) == ("accurate", 9.0)
    assert sentence.startswith("accurate to 9 digits; the replay left the compiled solve's path (")
    on_run = MethodRun("adjoint-discrete", "radau5", 1e-6, 1e-9, on_path.gradient, on_path.loss, "success",
                       on_path.message, 0.0, 1, 0, None, details=on_path.statistics["discrete_adjoint"])
    assert _verdict.verdict(on_run, None, None, None, 6.0)[1] == "accurate to 9 digits"
