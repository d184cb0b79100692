"""The audit, checked against answers known independently of it.

* A smooth non-stiff model at tight tolerance: every gradient method agrees with the reference and is judged
  accurate; the reference itself is checked against the closed form.
* The stiff-linear model y' = lam y with an A-stable scheme at |h lam| >> 1: the audit's discrete gradient equals
  the closed form of the numerical solution's derivative, sum_k h_k R'(h_k lam) prod_{j != k} R(h_j lam) y0,
  with R the scheme's exact stability function (from symsens.schemes, not from the integrator).
* The bursting-neuron forum case (calcium neuron, Tsit5, rtol 1e-3): the true gradient is exactly 0, the values-only discrete
  gradient is exactly 0, the tangent-norm one is ~1e6 with a positive loss floor, and the verdicts say so.
* Losses, bad input, the JSON and files of the command, and a sweep through a Dask cluster.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.audit import (
    DataLoss, ExpressionLoss, IntegralLoss, TrajectoryLoss, audit, audit_sweep, loss_from_model_file, parse_loss,
)
from symsens.cli import main


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def _logistic() -> symsens.Model:
    """y' = r y (1 - y / K), y(0) = y0: closed form y = K / (1 + (K / y0 - 1) exp(-r t))."""
    return symsens.Model(
        states=["y"], parameters={"r": 1.5, "K": 2.0}, rhs=["r*y*(1 - y/K)"], initial_conditions=["0.1"],
        name="logistic", t_span=(0.0, 4.0),
    )


def _logistic_exact(t: np.ndarray, r: float, K: float, y0: float = 0.1) -> np.ndarray:
    return K / (1 + (K / y0 - 1) * np.exp(-r * t))


def test_smooth_model_every_method_accurate() -> None:
    model = _logistic()
    times = np.linspace(0.5, 4.0, 8)
    observed = _logistic_exact(times, 1.2, 2.5)[:, None]   # data from other parameters: a non-zero gradient
    loss = DataLoss(tuple(times), tuple(map(tuple, observed)), ("y",))
    report = audit(model, loss, schemes=["tsit5", "radau-iia-3"], tolerances=[1e-10], target_digits=4,
                   reference_digits=10)
    # The reference gradient against the closed form's (central differences of the exact solution in
    # extended precision would be circular; the closed form's own derivative is exact):
    r, K = sp.symbols("r K", positive=True)
    t = sp.Symbol("t")
    y = K / (1 + (K / sp.Rational(1, 10) - 1) * sp.exp(-r * t))
    L = sum((y.subs(t, sp.Float(tk, 30)) - sp.Float(dk, 30)) ** 2 for tk, dk in zip(times, observed[:, 0]))
    exact = [float(sp.diff(L, v).subs({r: sp.Rational(3, 2), K: 2})) for v in (r, K)]
    np.testing.assert_allclose(report.reference_gradient, exact, rtol=1e-9)
    assert not report.reference_exact
    assert np.all(report.reference_digits >= 8)
    for row in report.results:
        assert row["category"] == "accurate", row
        assert row["relative_error"] < 1e-4
    assert report.recommendation["found"]


def test_recommendation_is_the_same_on_every_run() -> None:
    """Ranked by the work estimate from the solvers' counters, not by wall time: two identical audits choose
    the same setting, and every run's work estimate is reproduced exactly."""
    model = _logistic()
    times = np.linspace(0.5, 4.0, 8)
    observed = _logistic_exact(times, 1.2, 2.5)[:, None]
    loss = DataLoss(tuple(times), tuple(map(tuple, observed)), ("y",))
    kwargs = dict(schemes=["tsit5", "radau-iia-3"], tolerances=[1e-6, 1e-8], target_digits=3, reference_digits=8,
                  methods=["forward", "discrete", "finite-differences"])
    first, second = audit(model, loss, **kwargs), audit(model, loss, **kwargs)
    assert first.recommendation["found"]
    assert first.recommendation["choice"] == second.recommendation["choice"]
    assert [row["work"] for row in first.results] == [row["work"] for row in second.results]
    assert all(row["work"] is not None and row["work"] > 0 for row in first.results)
    # Finite differences carry no tangents but solve 2P + 1 times; a forward run carries P tangents once.
    fd = first.result("finite-differences", "tsit5", 1e-6)
    assert fd["work"] > first.result("discrete", "tsit5", 1e-6)["work"] / 3


def _closed_form_discrete(scheme: str, lam: float, y0: float, steps: np.ndarray) -> tuple[float, float]:
    """(y_N, dy_N/dlam) of a one-step scheme with exact stability function R on y' = lam y, steps h_k fixed."""
    from symsens.schemes import get_scheme, stability_derivative, stability_function

    tableau = get_scheme(scheme)
    R = stability_function(tableau)
    dR = stability_derivative(tableau)
    (z,) = R.free_symbols
    with_mp = [(float(R.subs(z, sp.Float(h * lam, 40))), float(dR.subs(z, sp.Float(h * lam, 40)))) for h in steps]
    values = np.array([v for v, _ in with_mp])
    derivatives = np.array([d for _, d in with_mp])
    y = float(np.prod(values)) * y0
    dy = 0.0
    for k, h in enumerate(steps):
        others = np.prod(np.delete(values, k))
        dy += h * derivatives[k] * others * y0
    return y, dy


def test_stiff_linear_attenuation_matches_the_closed_form() -> None:
    model = symsens.load_model("stiff-linear")
    lam, y0 = -200.0, 1.0
    loss = ExpressionLoss("y", (0.2,))
    report = audit(model, loss, p={"lam": lam, "y0": y0}, t_span=(0.0, 0.2), parameters=["lam"],
                   methods=["discrete", "forward"], schemes=["radau-iia-3"], tolerances=[1e-3], reference_digits=8)
    setting = report._settings[0]
    discrete = next(r for r in setting.runs if r.method == "discrete")
    steps = np.diff(discrete.step_times)
    y_closed, dy_closed = _closed_form_discrete("radau-iia-3", lam, y0, steps)
    np.testing.assert_allclose(discrete.gradient[0], dy_closed, rtol=1e-9)
    # The audit saw the stiffness: steps far out on the stability function (|h lam| >> 1), and its measured
    # |R'(z)| per step is the exact one (SymPy's R' of the scheme, evaluated at the audit's own z = h lam).
    stiffness = report.diagnostics["stiffness"][0]
    assert stiffness["max_abs_h_lambda"] > 10
    assert stiffness["A_stable"]
    from symsens.schemes import get_scheme, stability_derivative

    dR = stability_derivative(get_scheme("radau-iia-3"))
    (z,) = dR.free_symbols
    entry = report._series["stiffness"][0]
    np.testing.assert_allclose(entry["z"], steps * lam, rtol=1e-12)  # the stiffest (only) eigenvalue is lam
    exact_dR = [abs(float(dR.subs(z, sp.Float(v, 40)))) for v in entry["z"].real]
    np.testing.assert_allclose(entry["dR"], exact_dR, rtol=1e-10)
    # and the exact gradient t e^{lam t} y0 is what the reference says.
    assert report.reference_gradient[0] == pytest.approx(0.2 * math.exp(lam * 0.2) * y0, rel=1e-7)


def test_bursting_neuron_forum_case() -> None:
    model = symsens.load_model("calcium-neuron")
    report = audit(model, TrajectoryLoss(), t_span=(0.0, 500.0), schemes=["tsit5"], tolerances=[1e-3],
                   methods=["discrete", "discrete-tangent-norm"])
    assert report.reference_exact and not np.any(report.reference_gradient)
    assert report.loss_at_nominal == 0.0
    values_only = report.result("discrete", "tsit5", 1e-3)
    tangents = report.result("discrete-tangent-norm", "tsit5", 1e-3)
    assert values_only["loss"] == 0.0 and not np.any(values_only["gradient"])
    # Exactly 0, but only because it reproduces its own targets: not evidence of accurate sensitivities, and
    # not recommended.
    assert values_only["category"] == "uninformative"
    assert not report.recommendation["found"]
    # The forum question reported 1.45e6 (Julia, ForwardDiff through OrdinaryDiffEq's Tsit5); the same experiment here:
    norm = float(np.linalg.norm(tangents["gradient"]))
    assert 1e5 < norm < 1e8
    assert tangents["loss"] > 1.0
    assert tangents["category"] == "loss-floor"
    assert "tangents" in tangents["verdict"] and "steps instead of" in tangents["verdict"]
    control = next(r for r in report.diagnostics["step_size_control"] if r["method"] == "discrete-tangent-norm")
    assert not control["identical_steps"] and control["steps"] != control["nominal_steps"]
    floor = next(r for r in report.diagnostics["loss_floor"] if r["method"] == "discrete-tangent-norm")
    # The residuals that make the floor: the largest is a sizeable part of a spike's amplitude (~ tens of mV).
    assert floor["max_residual"] > 0.1 and floor["loss_floor"] == pytest.approx(tangents["loss"])
    dominant = report.diagnostics["dominant_times"]
    assert dominant["method"] == "discrete-tangent-norm"
    # Spike-timing sensitivities: where the gradient comes from, ||S|| is far above its median.
    assert min(dominant["sensitivity_norm_there"]) > 10 * dominant["median_sensitivity_norm"]


def test_integral_loss_gradient_matches_the_closed_form() -> None:
    model = symsens.load_model("two-scale-linear")
    k_slow = model.parameter_values[model.parameter_names.index("k_slow")]
    T = 2.0
    # symsens.audit is the package and, called, the function.
    report = symsens.audit(model, IntegralLoss("y2^2"), t_span=(0.0, T), parameters=["k_slow"],
                           schemes=["radau-iia-3"], tolerances=[1e-9], methods=["forward-error-control"],
                           target_digits=5)
    # y2 = exp(-k t): L = (1 - exp(-2 k T)) / (2 k), dL/dk = T exp(-2 k T) / k - (1 - exp(-2 k T)) / (2 k^2).
    exact = T * math.exp(-2 * k_slow * T) / k_slow - (1 - math.exp(-2 * k_slow * T)) / (2 * k_slow**2)
    assert report.reference_gradient[0] == pytest.approx(exact, rel=1e-10)
    assert report.loss_at_nominal == pytest.approx((1 - math.exp(-2 * k_slow * T)) / (2 * k_slow), rel=1e-10)
    row = report.results[0]
    assert row["category"] == "accurate", row
    assert row["gradient"][0] == pytest.approx(exact, rel=1e-5)


def test_state_error_is_not_called_a_loss_floor() -> None:
    """A data fit with a large true loss: the solver's residual error is a small part of its loss, so a biased
    gradient is blamed on the state error, not on a loss floor."""
    model = _logistic()
    times = np.linspace(0.5, 4.0, 8)
    observed = _logistic_exact(times, 1.0, 2.5)[:, None]
    loss = DataLoss(tuple(times), tuple(map(tuple, observed)), ("y",))
    report = audit(model, loss, schemes=["tsit5"], tolerances=[1e-3], methods=["forward", "discrete"],
                   target_digits=8)
    assert report.loss_at_nominal > 0.1
    for row in report.results:
        assert row["category"] != "loss-floor", row
        assert row["relative_error"] > 1e-8  # a loose tolerance: not accurate to 8 digits


def test_losses_and_their_errors(tmp_path: Path) -> None:
    assert parse_loss("trajectory") == TrajectoryLoss()
    assert parse_loss("trajectory:V").outputs == ("V",)
    loss = parse_loss("trajectory:V@0:10:11")
    assert loss.outputs == ("V",) and len(loss.grid) == 11 and loss.grid[-1] == 10.0
    assert isinstance(parse_loss("integral:V^2"), IntegralLoss)
    with pytest.raises(ValueError, match="START:STOP:COUNT"):
        parse_loss("trajectory@0:10")
    with pytest.raises(ValueError, match="expected"):
        parse_loss("nonsense")
    csv = tmp_path / "data.csv"
    csv.write_text("t,y\n0.5,1.0\n1.0,1.5\n")
    data = parse_loss(f"data:{csv}")
    assert isinstance(data, DataLoss) and data.outputs == ("y",) and data.times == (0.5, 1.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("t,y\n0.5,abc\n")
    with pytest.raises(ValueError, match="line 2"):
        DataLoss.from_csv(bad)
    with pytest.raises(ValueError, match="shape"):
        DataLoss((0.0, 1.0), ((1.0, 2.0),), ("y",))
    model_file = tmp_path / "m.toml"
    model_file.write_text(
        '[model]\nname = "decay"\nt_span = [0, 1]\n[parameters]\nk = 2.0\n[states]\ny = 1.0\n'
        '[equations]\ny = "-k*y"\n[loss]\nexpression = "(y - 0.5)^2"\ntimes = [0.5, 1.0]\n'
    )
    loss = loss_from_model_file(model_file)
    assert isinstance(loss, ExpressionLoss) and loss.times == (0.5, 1.0)
    decay = symsens.load_model(model_file)  # the model reader accepts the [loss] table
    report = audit(decay, loss, schemes=["tsit5"], tolerances=[1e-9], methods=["forward"], target_digits=5)
    k = 2.0
    exact = sum(2 * (math.exp(-k * t) - 0.5) * (-t * math.exp(-k * t)) for t in (0.5, 1.0))
    assert report.reference_gradient[0] == pytest.approx(exact, rel=1e-9)
    assert report.results[0]["category"] == "accurate"


def test_bad_input_is_named() -> None:
    model = _logistic()
    with pytest.raises(ValueError, match="schemes"):
        audit(model, schemes=["no-such-scheme"])
    with pytest.raises(ValueError, match="tolerances"):
        audit(model, tolerances=[0.0])
    with pytest.raises(ValueError, match="gradient method"):
        audit(model, methods=["backprop"])
    with pytest.raises(ValueError, match="not finite"):
        audit(model, p={"r": float("nan")})
    with pytest.raises(ValueError, match="neither a state nor an output"):
        audit(model, TrajectoryLoss(outputs=("V",)), schemes=["tsit5"], tolerances=[1e-6])
    with pytest.raises(ValueError, match="inside t_span"):
        audit(model, ExpressionLoss("y", (10.0,)), schemes=["tsit5"], tolerances=[1e-6])
    with pytest.raises(ValueError, match="atol"):
        audit(model, schemes=["tsit5"], tolerances=[1e-6], atol=-1.0)
    with pytest.raises(ValueError, match="data parameter"):
        audit(model, TrajectoryLoss(data_parameters={"r": float("nan")}), schemes=["tsit5"], tolerances=[1e-6])
    with pytest.raises(ValueError, match="twice"):
        audit(model, schemes=["tsit5"], tolerances=[1e-6, 1e-6])
    with pytest.raises(ValueError, match="another process"):
        audit_sweep(model, [{"atol": lambda r: r}], schemes=["tsit5"], tolerances=[1e-6])


def test_command_json_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    status = main(["audit", "--example", "stiff-linear", "--schemes", "tsit5,radau-iia-3", "--tolerances", "1e-4,1e-7",
                   "--out", str(out), "--json"])
    assert status == 0
    # Strict JSON: no NaN or Infinity.
    record = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"non-strict JSON: {name}"))
    for key in ("parameters", "reference_gradient", "loss_at_nominal", "results", "diagnostics"):
        assert key in record
    assert record["parameters"] == ["lam", "y0"]
    assert len(record["results"]) == 2 * 2 * 7
    for row in record["results"]:
        for key in ("method", "scheme", "rtol", "gradient", "relative_error", "verdict"):
            assert key in row
    for name in ("report.md", "report.html", "report.json", "convergence.png"):
        assert (out / name).stat().st_size > 0
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "convergence.png" in html
    status = main(["audit", "--example", "stiff-linear", "--schemes", "tsit5", "--tolerances", "bad"])
    assert status == 2


def test_sweep_on_a_dask_cluster() -> None:
    distributed = pytest.importorskip("distributed", reason="the `distributed` extra (it is in the test extra)")
    model = _logistic()
    points = [{"p": {"r": r}} for r in (1.0, 1.5)]
    loss = TrajectoryLoss(grid=tuple(np.linspace(0.5, 4.0, 8)), data_parameters={"r": 1.25})
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        reports = audit_sweep(model, points, loss, executor=client.get_executor(), schemes=["tsit5"],
                              tolerances=[1e-8], methods=["forward"], target_digits=4)
    assert [r.parameter_values[0] for r in reports] == [1.0, 1.5]
    for report in reports:
        assert report.results[0]["category"] == "accurate"
    # The two points straddle the data parameter r = 1.25: the gradients in r have opposite signs.
    assert reports[0].reference_gradient[0] < 0 < reports[1].reference_gradient[0]


def test_settings_through_a_process_pool_match_the_thread_pool() -> None:
    from concurrent.futures import ProcessPoolExecutor

    model = _logistic()
    loss = TrajectoryLoss(grid=tuple(np.linspace(0.5, 4.0, 8)), data_parameters={"r": 1.25})
    options = dict(schemes=["tsit5"], tolerances=[1e-5, 1e-7], methods=["forward", "discrete"])
    threads = audit(model, loss, **options)
    with ProcessPoolExecutor(max_workers=2) as pool:
        processes = audit(model, loss, executor=pool, **options)
    for a, b in zip(threads.results, processes.results):
        assert (a["method"], a["rtol"]) == (b["method"], b["rtol"])
        np.testing.assert_array_equal(a["gradient"], b["gradient"])  # the same compiled solves, bit for bit


def test_rounding_noise_is_not_bias_and_no_warnings_escape() -> None:
    """Robertson at its nominal parameters: the true gradient is exactly 0.  Rodas4's forward run follows the
    nominal steps, so its residuals and gradient are at rounding level: zero to rounding, not a loss-floor bias,
    and never the most accurate.  Tsit5's tangents explode on this stiff model (values stay on the nominal
    steps), so a gradient far above its natural size is judged on its error, not called uninformative."""
    import warnings

    model = symsens.load_model("robertson")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = audit(model, TrajectoryLoss(), schemes=["rodas4", "tsit5"], tolerances=[1e-3, 1e-5],
                       methods=["forward", "discrete"])
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert report.reference_exact
    rounding = report.result("forward", "rodas4", 1e-3)
    assert rounding["gradient"] is not None and 0 < np.linalg.norm(rounding["gradient"]) < 1e-12
    assert rounding["category"] == "zero-to-rounding", rounding["verdict"]
    assert "most accurate was forward with rodas4 at rtol 0.001" not in report.recommendation["text"]
    for row in report.results:
        if row["gradient"] is not None and np.linalg.norm(row["gradient"]) > 1e3:
            assert row["category"] not in ("uninformative", "zero-to-rounding"), row["verdict"]


def test_concurrent_audits_on_a_cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several audits at once in one process, from an empty kernel cache and empty in-process caches (as in a
    fresh interpreter): every lazily computed shared value is computed once under a lock, so all succeed and
    agree bit for bit."""
    import threading

    from symsens.audit import _diagnose, _methods
    from symsens.codegen import _build, _runtime
    from symsens.derive import _jacobian
    from symsens.integrate import _compiled

    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path / "cold-cache"))
    for cached in (_runtime.runtime_header, _runtime.warm_sympy_tables, _build._compiler_identity,
                   _compiled._compiled_solver, _compiled._explicit_spec, _compiled._implicit_spec,
                   _jacobian.jacobian, _jacobian._parameter_jacobian, _methods._plan, _diagnose._jacobian_function):
        cached.cache_clear()
    small = getattr(sp.factorial, "_small_factorials", None)
    if isinstance(small, list):
        small.clear()
    model = _logistic()
    times = np.linspace(0.5, 4.0, 8)
    loss = DataLoss(tuple(times), tuple(map(tuple, _logistic_exact(times, 1.2, 2.5)[:, None])), ("y",))
    barrier = threading.Barrier(3)
    reports: dict[int, symsens.AuditReport] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            reports[index] = audit(model, loss, schemes=["tsit5", "rodas4"], tolerances=[1e-6],
                                   methods=["forward", "discrete"], target_digits=3, reference_digits=8)
        except BaseException as error:  # noqa: BLE001 - reported with its thread below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    first = reports[0]
    for other in (reports[1], reports[2]):
        assert [r["gradient"].tolist() for r in other.results] == [r["gradient"].tolist() for r in first.results]
        assert other.recommendation["choice"] == first.recommendation["choice"]
    assert _runtime.runtime_header.cache_info().misses == 1


def test_exploding_tangents_are_not_called_a_state_error() -> None:
    """Hodgkin-Huxley with BDF at rtol 1e-3: differentiating the step sizes makes the gradient ~1e10 times too
    large.  The state-error part of the error is weighed with the reference sensitivities S*, so the blow-up is
    put down to the step-size controller (its values-only sibling is 1e9 times closer), not to the state."""
    from symsens.audit._presets import preset_for

    preset = preset_for("hodgkin-huxley")
    report = audit(symsens.load_model("hodgkin-huxley"), preset["loss"], parameters=preset["parameters"],
                   schemes=["bdf"], tolerances=[1e-3], methods=["discrete", "discrete-differentiated-steps"])
    exploding = report.result("discrete-differentiated-steps", "bdf", 1e-3)
    assert exploding["relative_error"] > 1e3
    assert exploding["category"] == "step-size-control", exploding["verdict"]
    assert report.result("discrete", "bdf", 1e-3)["relative_error"] < 1
