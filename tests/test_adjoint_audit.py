"""Adjoints in the audit, backsolve's verdict, and the discrete adjoint of explicit Runge–Kutta solves.

Every number is checked against an independent computation: the matrix exponential and its Fréchet derivative
for ``y' = A(p) y``; the eigenvalue ``lam`` of ``y' = lam y`` for the backward growth rate; forward-mode AD
through the compiled solver (``method="discrete"``, the same steps) for the discrete adjoint.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import symsens
from symsens.audit import DataLoss, IntegralLoss, TrajectoryLoss, audit, fit_loss
from symsens.audit._glossary import GLOSSARY
from symsens.audit._methods import ADJOINT_METHODS, DEFAULT_METHODS, adjoint_integrator
from symsens.integrate._discrete_adjoint import discrete_adjoint_erk

from _linear_system import OBSERVED, P_LINEAR, TIMES, linear_model
from _linear_system import linear_closed_form as _closed_form


def linear_closed_form(p: np.ndarray) -> np.ndarray:
    """``d/dp sum_k |y(t_k) - d_k|^2`` for ``y' = A(p) y``, ``y0 = (1, c)``, from ``expm`` and ``expm_frechet``."""
    return _closed_form(p)[1]


NEW_FIELDS = ("integrator", "adjoint_rtol", "adjoint_atol", "y0_reconstruction_error", "max_reconstruction_error",
              "backward_growth_rate", "backward_span", "checkpoints")


@pytest.fixture(scope="module")
def linear_report():
    model = linear_model()
    return audit(model, DataLoss(TIMES, OBSERVED, ("x1", "x2")), methods=list(ADJOINT_METHODS),
                 schemes=["radau-iia-3", "tsit5"], tolerances=[1e-6, 1e-9], target_digits=5)


def test_audit_adjoints_on_a_linear_model_match_the_closed_form(linear_report) -> None:
    exact = linear_closed_form(P_LINEAR)
    np.testing.assert_allclose(linear_report.reference_gradient, exact, rtol=1e-8)
    rows = linear_report.results
    # 3 adjoints x 2 schemes x 2 tolerances (adjoint-discrete through tsit5's stages and radau's Newton iterations).
    assert len(rows) == 12
    for row in rows:
        assert row["category"] == "accurate", row["verdict"]
        bound = 1e-5 if row["rtol"] == 1e-6 else 1e-7
        assert np.linalg.norm(row["gradient"] - exact) / np.linalg.norm(exact) < bound, row
        # A pointwise loss: every adjoint runs compiled with the setting's own scheme.
        assert row["integrator"] == row["scheme"]
        if row["method"] == "adjoint-discrete":
            assert row["checkpoints"]["checkpoints"] >= 1
        else:
            assert row["adjoint_rtol"] == row["rtol"] and row["adjoint_atol"] == row["atol"]
        if row["method"] == "adjoint-backsolve":
            assert row["y0_reconstruction_error"] < 1e-3
            assert row["backward_growth_rate"] is not None


def test_json_and_report_have_the_adjoint_fields(linear_report, tmp_path) -> None:
    paths = linear_report.write(tmp_path)
    data = json.loads(open(paths["json"], encoding="utf-8").read())
    markdown = open(paths["markdown"], encoding="utf-8").read()
    assert "### Adjoints" in markdown and "| adjoint rtol |" in markdown
    for row in data["results"]:
        for name in NEW_FIELDS:
            assert name in row
    backsolve = [r for r in data["results"] if r["method"] == "adjoint-backsolve"]
    assert backsolve and all(r["adjoint_rtol"] == r["rtol"] for r in backsolve)
    assert data["diagnostics"]["backward_growth"]["max_rate"] is not None
    # The growth rate is max Re(-lambda) of the constant A: independent of the audit's trajectory.
    A = np.array([[-P_LINEAR[0], 1.0], [-P_LINEAR[1], -0.5]])
    assert data["diagnostics"]["backward_growth"]["max_rate"] == pytest.approx(max((-np.linalg.eigvals(A)).real),
                                                                               rel=1e-12)
    assert "adjoint-backsolve" in linear_report.summary(verbose=True)


def test_backsolve_verdict_on_stiff_linear() -> None:
    """``y' = -1000 y``, ``L = int y^2``: backwards the state grows like e^{1000 (1 - t)}."""
    model = symsens.load_model("stiff-linear")
    report = audit(model, IntegralLoss("y^2"), methods=["adjoint-interpolating", "adjoint-backsolve"],
                   schemes=["radau-iia-3"], tolerances=[1e-8])
    good = report.result("adjoint-interpolating", "radau-iia-3", 1e-8)
    bad = report.result("adjoint-backsolve", "radau-iia-3", 1e-8)
    assert good["category"] == "accurate"
    closed = np.array([-(np.exp(-2000.0) - 1) / (2 * 1000.0**2) + np.exp(-2000.0) / -1000.0, 1.0 / 1000.0])
    np.testing.assert_allclose(good["gradient"], closed, rtol=1e-7)
    assert bad["category"] == "backsolve-instability", bad["verdict"]
    assert bad["y0_reconstruction_error"] > 0.5                          # y(0) = 1 is not recovered
    assert bad["backward_growth_rate"] == pytest.approx(1000.0, rel=1e-12)   # -lam, the eigenvalue flipped
    assert bad["backward_span"] == pytest.approx(1.0)
    assert bad["adjoint_rtol"] == 1e-8 and bad["integrator"] == "Radau"
    assert "biased by the unstable backward solve: y(t0) reconstructed with relative error" in bad["verdict"]
    assert "backward growth rate up to 1e+03 per unit time over a span of 1" in bad["verdict"]
    answer = audit(model, IntegralLoss("y^2"), methods=["adjoint-backsolve"], schemes=["radau-iia-3"],
                   tolerances=[1e-8]).answer
    assert answer["trustworthy"] is False and "unstable backward solve" in answer["cause"]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("rtol", [1e-4, 1e-7])
def test_discrete_adjoint_equals_discrete_forward_mode_on_hodgkin_huxley(rtol: float) -> None:
    model = symsens.load_model("hodgkin-huxley")
    loss = fit_loss(model)       # 201 output times: Hermite outputs between the steps
    forward = symsens.gradient(model, loss, method="discrete", scheme="tsit5", rtol=rtol)
    reverse = symsens.gradient(model, loss, method="adjoint-discrete", scheme="tsit5", rtol=rtol)
    assert forward.success and reverse.success
    assert reverse.loss == forward.loss
    assert _relative(reverse.gradient, forward.gradient) < 1e-11
    assert reverse.statistics["forward"]["accepted_steps"] == forward.statistics["forward"]["accepted_steps"]


@pytest.mark.parametrize("loss", [
    TrajectoryLoss(grid=tuple(np.linspace(0.0, 0.02, 41)), data_parameters=(("k1", 1.05),)),
    IntegralLoss("y1^2"),
    TrajectoryLoss(data_parameters=(("k1", 1.1),)),                    # the nominal solve's step grid
], ids=["grid", "integral", "steps"])
def test_discrete_adjoint_equals_discrete_forward_mode_on_the_stiff_neural_ode(loss) -> None:
    model = symsens.load_model("stiff-neural-ode")   # rates 1, 1e3, 1e6: thousands of explicit steps on (0, 0.02)
    options = dict(scheme="tsit5", rtol=1e-6, t_span=(0.0, 0.02))
    forward = symsens.gradient(model, loss, method="discrete", **options)
    reverse = symsens.gradient(model, loss, method="adjoint-discrete", **options)
    assert forward.success and reverse.success
    assert forward.statistics["forward"]["accepted_steps"] > 1000
    assert _relative(reverse.gradient, forward.gradient) < 1e-11


@pytest.mark.parametrize("scheme", ["dopri5", "verner7", "bs3"])
def test_discrete_adjoint_of_other_explicit_schemes_against_replayed_forward_mode(scheme: str) -> None:
    """Reverse mode over recorded steps = forward mode replaying the same steps (``replay_steps``), for
    several checkpoint intervals (every step stored, the default, a single checkpoint)."""
    model = linear_model()
    t_eval = TIMES
    plain = symsens.solve(model, (0.0, 2.0), method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval)
    steps = plain.stats.step_sizes
    replayed = symsens.solve(model, (0.0, 2.0), method=scheme, t_eval=t_eval, sensitivity="discrete",
                             replay_steps=steps)
    W = 2.0 * (plain.y - OBSERVED)                    # d/dy of sum_k |y_k - d_k|^2
    expected = np.einsum("ki,kij->j", W, replayed.sensitivities)
    results = []
    for every in (1, None, len(steps)):
        run = discrete_adjoint_erk(model, scheme, P_LINEAR, ("a", "b", "c"), plain.stats.step_times, steps, t_eval,
                                   W, checkpoint_every=every)
        np.testing.assert_allclose(run.outputs, plain.y, rtol=1e-12, atol=1e-14)
        assert _relative(run.gradient, expected) < 1e-11
        results.append(run)
    assert results[0].checkpoints == len(steps) and results[-1].checkpoints == 1


def test_defaults_and_errors() -> None:
    assert not set(ADJOINT_METHODS) & set(DEFAULT_METHODS)
    assert set(ADJOINT_METHODS) <= set(GLOSSARY)
    assert adjoint_integrator("bdf") == "BDF" and adjoint_integrator("rodas4") == "Radau"
    assert adjoint_integrator("verner7") == "DOP853" and adjoint_integrator("tsit5") == "RK45"
    with pytest.raises(ValueError, match="`methods`: adjoint-discrete covers the Runge–Kutta"):
        audit(linear_model(), methods=["adjoint-discrete"], schemes=["exprb32"], tolerances=[1e-6])
    with pytest.raises(ValueError, match="`scheme`"):
        symsens.gradient(linear_model(), method="adjoint-discrete", scheme="exprb32")
    with pytest.raises(ValueError, match="`user_setting`: adjoint-discrete has no discrete adjoint"):
        audit(linear_model(), methods=["adjoint-discrete"], schemes=["tsit5", "exprb32"], tolerances=[1e-6],
              user_setting=("adjoint-discrete", "exprb32", 1e-6))
    with pytest.raises(ValueError, match="`checkpoint_every`"):
        discrete_adjoint_erk(linear_model(), "tsit5", P_LINEAR, ("a",), np.array([0.0, 2.0]), np.array([2.0]),
                             np.array([2.0]), np.zeros((1, 2)), checkpoint_every=0)


def test_audit_gives_adjoint_discrete_the_verdict_of_discrete() -> None:
    """The same numerical derivative (same steps): the same gradient to rounding, and the same verdict."""
    report = audit(linear_model(), DataLoss(TIMES, OBSERVED, ("x1", "x2")), methods=["discrete", "adjoint-discrete"],
                   schemes=["tsit5"], tolerances=[1e-3, 1e-5])
    for rtol in (1e-3, 1e-5):
        forward = report.result("discrete", "tsit5", rtol)
        reverse = report.result("adjoint-discrete", "tsit5", rtol)
        assert _relative(np.asarray(reverse["gradient"]), np.asarray(forward["gradient"])) < 1e-11
        assert reverse["category"] == forward["category"] and reverse["steps"] == forward["steps"]
