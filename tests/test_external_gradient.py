"""Bring your own gradient: external gradients in the audit, judged and identified (symsens.audit._external).

Every expected value comes from outside the code under test: an external that *is* symsens.gradient(...) of one
method (a separate call through its own entry point) must be identified as that method; an external made from
the verified true gradient with a known perturbation has the digits of that perturbation; a callable whose error
is c * rtol converges with rate 1.  The model is a damped linear oscillator (2 states, 2 parameters), one scheme
(tsit5) and two tolerances.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import symsens
from symsens.audit import DataLoss, ExternalGradient, TrajectoryLoss, audit, fit_loss, loss_data
from symsens.audit._external import agreement_digits
from symsens.cli import main

SCHEMES = ["tsit5"]
TOLERANCES = [1e-4, 1e-7]
METHODS = ["forward", "forward-error-control", "discrete", "discrete-tangent-norm", "adjoint-discrete"]

MODEL_FILE = """
[model]
name = "oscillator"
t_span = [0, 3]
[parameters]
k = 2.0
c = 0.3
[states]
x = 1.0
v = 0.0
[equations]
x = "v"
v = "-k*x - c*v"
"""


def _oscillator() -> symsens.Model:
    return symsens.Model(states=["x", "v"], parameters={"k": 2.0, "c": 0.3}, rhs=["v", "-k*x - c*v"],
                         initial_conditions=["1", "0"], name="oscillator", t_span=(0.0, 3.0))


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    model = _oscillator()
    loss = fit_loss(model, points=20)
    data = loss_data(model, loss)
    concrete = data.as_loss()
    truth = symsens.true_gradient(model, concrete)
    return model, loss, data, concrete, truth


def _unit(n: int) -> np.ndarray:
    u = np.arange(1.0, n + 1.0)
    return u / np.linalg.norm(u)


@pytest.fixture(scope="module")
def report(setup):  # type: ignore[no-untyped-def]
    model, loss, data, concrete, truth = setup
    g_star = truth.gradient
    # Separate calls of symsens.gradient: what a user's own script would compute.
    tangent = symsens.gradient(model, concrete, method="discrete-tangent-norm", scheme="tsit5", rtol=1e-4).check()
    discrete = symsens.gradient(model, concrete, method="discrete", scheme="tsit5", rtol=1e-7).check()
    seen = {}

    def converging(p, rtol, atol=None):  # type: ignore[no-untyped-def]
        seen[rtol] = (np.array(p), atol)
        return truth.loss, g_star + 50 * rtol * np.linalg.norm(g_star) * _unit(2)

    external = {
        "tangent": {"gradient": tangent.gradient.tolist(), "loss": tangent.loss, "rtol": 1e-4, "scheme": "tsit5"},
        "near-discrete": ExternalGradient(gradient=discrete.gradient * (1 + 1e-12 * _unit(2)), rtol=1e-7),
        "noisy": dict(zip(model.parameter_names, g_star * (1 + 1e-11 * _unit(2)))),
        "off": (truth.loss * 2.0, list(g_star + 1e-3 * np.linalg.norm(g_star) * _unit(2))),
        "converging": converging,
    }
    result = audit(model, loss, schemes=SCHEMES, tolerances=TOLERANCES, methods=METHODS, external=external)
    return result, seen, tangent, discrete


def _rows(report, name):  # type: ignore[no-untyped-def]
    return [r for r in report.results if r.get("external") and r["method"] == name]


def test_loss_data_is_the_loss_the_audit_differentiates(setup, report) -> None:  # type: ignore[no-untyped-def]
    model, loss, data, concrete, truth = setup
    result = report[0]
    assert data.times is not None and len(data.times) == 20 and data.targets.shape == (20, 2)
    assert data.parameter_names == ("k", "c") and list(data.parameter_values) == [2.0, 0.3]
    # The targets are the model's states at the data parameters (x 1.05): the closed form of the damped
    # oscillator x'' + c x' + k x = 0, x(0) = 1, x'(0) = 0 (underdamped) agrees.
    p_data = dict(loss.data_parameters)
    k, c, t = p_data["k"], p_data["c"], np.asarray(data.times)
    omega = math.sqrt(k - c * c / 4)
    x = np.exp(-c * t / 2) * (np.cos(omega * t) + c / (2 * omega) * np.sin(omega * t))
    v = -np.exp(-c * t / 2) * (k / omega) * np.sin(omega * t)
    assert np.max(np.abs(np.column_stack([x, v]) - data.targets)) < 1e-12
    # The report carries the same loss data, and its reference is the true gradient of that loss.
    assert np.allclose(result.loss_data["targets"], data.targets, rtol=0, atol=0)
    assert np.allclose(result.reference_gradient, truth.gradient, rtol=1e-10)
    assert "targets fixed" in result.loss_description


def test_loss_data_of_the_other_losses(setup) -> None:  # type: ignore[no-untyped-def]
    from symsens.audit import ExpressionLoss, IntegralLoss

    model = setup[0]
    given = loss_data(model, DataLoss((1.0, 2.0), ((0.5,), (0.25,)), ("x",)))
    assert given.kind == "least squares" and given.targets.tolist() == [[0.5], [0.25]] and given.times.tolist() == [1, 2]
    assert given.as_loss() is not None
    expression = loss_data(model, ExpressionLoss("x^2", (1.0, 2.0)))
    assert expression.kind == "expression" and expression.expression == "x^2" and expression.targets is None
    integral = loss_data(model, IntegralLoss("v^2"))
    assert integral.kind == "integral" and integral.times is None and "integral of v^2" in integral.formula
    steps = loss_data(model, TrajectoryLoss())  # at its data parameters: the tool's own steps, true gradient 0
    assert steps.times is None and steps.true_gradient_is_zero
    with pytest.raises(ValueError, match="grid="):
        loss_data(model, TrajectoryLoss(), p={"k": 2.5})


def test_an_external_that_is_a_symsens_method_is_identified_as_it(report) -> None:  # type: ignore[no-untyped-def]
    result, _, tangent, _ = report
    row, = _rows(result, "tangent")
    assert row["identified_as"] == {"method": "discrete-tangent-norm", "scheme": "tsit5", "rtol": 1e-4}
    assert row["match_digits"] >= 10
    assert "equals discrete-tangent-norm (forward-mode AD through the solver, tangents in the error norm)" \
        in row["identification"]
    # Its verdict is the verdict of the method it equals, and its loss is checked against the true loss.
    own = result.result("discrete-tangent-norm", "tsit5", 1e-4)
    assert row["category"] == own["category"] and row["digits"] == pytest.approx(own["digits"], abs=1e-6)
    assert row["loss_error"] == pytest.approx(abs(tangent.loss - result.loss_at_nominal) / result.loss_at_nominal)


def test_methods_that_agree_with_each_other_cannot_be_told_apart(report) -> None:  # type: ignore[no-untyped-def]
    result, _, _, discrete = report
    row, = _rows(result, "near-discrete")
    own = {m: result.result(m, "tsit5", 1e-7)["gradient"] for m in ("discrete", "adjoint-discrete")}
    mutual = agreement_digits(own["adjoint-discrete"], own["discrete"])
    assert mutual > 12.5  # the same number computed forwards and backwards: the premise of this test
    assert row["identified_as"]["method"] in ("discrete", "adjoint-discrete")
    assert 11 <= row["match_digits"] <= 13
    twins = {t["method"] for t in row["indistinguishable_from"]}
    assert twins & {"discrete", "adjoint-discrete"}
    assert "cannot tell them apart" in row["identification"]


def test_a_near_exact_gradient_is_accurate_and_matches_no_method(report) -> None:  # type: ignore[no-untyped-def]
    result = report[0]
    row, = _rows(result, "noisy")
    assert row["category"] == "accurate" and row["digits"] >= 9
    assert row["identified_as"] is None and "matches none" in row["identification"]
    assert "nearer to the true gradient" in row["identification"]


def test_a_gradient_off_by_a_known_amount_has_those_digits(report) -> None:  # type: ignore[no-untyped-def]
    result = report[0]
    row, = _rows(result, "off")
    # Off by exactly 1e-3 relative (2-norm): 3 digits.
    assert row["relative_error"] == pytest.approx(1e-3, rel=1e-6)
    assert row["digits"] == pytest.approx(3.0, abs=1e-5)
    assert row["category"] == "inaccurate" and row["rtol"] is None
    assert "from one tolerance the audit cannot tell truncation error" in row["verdict"]
    # Its loss is twice the true one: the verdict says so.
    assert row["loss_error"] == pytest.approx(1.0) and "more than 10% off" in row["verdict"]


def test_a_callable_is_called_at_every_tolerance_and_its_convergence_judged(report) -> None:  # type: ignore[no-untyped-def]
    result, seen, _, _ = report
    rows = sorted(_rows(result, "converging"), key=lambda r: -r["rtol"])
    assert [r["rtol"] for r in rows] == TOLERANCES
    for r in rows:  # error 50 rtol (relative, 2-norm) by construction
        assert r["relative_error"] == pytest.approx(50 * r["rtol"], rel=1e-4)
        assert r["atol"] == pytest.approx(r["rtol"] / 1000)
    assert "converges as the tolerance shrinks, fitted rate 1 " in rows[0]["verdict"]
    assert sorted(seen) == sorted(TOLERANCES)
    for rtol, (p, atol) in seen.items():
        assert list(p) == [2.0, 0.3] and atol == pytest.approx(rtol / 1000)


def test_the_answer_is_about_the_first_external(report) -> None:  # type: ignore[no-untyped-def]
    result = report[0]
    text = result.answer["text"]
    assert text.startswith("No: your gradient tangent (tsit5) at rtol 0.0001 has ")
    assert "equals discrete-tangent-norm" in text and "the true gradient is (k: " in text
    k = float(text.split("the true gradient is (k: ")[1].split(",")[0])
    assert k == pytest.approx(result.reference_gradient[0], rel=1e-6)
    assert result.user_setting["external"] is True and result.answer["identified_as"]["method"] == "discrete-tangent-norm"


def test_report_files_show_externals(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = report[0]
    paths = result.write(tmp_path)
    markdown = Path(paths["markdown"]).read_text()
    assert "## External gradients" in markdown and "Loss data" in markdown
    assert "equals discrete-tangent-norm" in markdown
    html_text = Path(paths["html"]).read_text()
    assert "External gradients" in html_text
    record = json.loads(Path(paths["json"]).read_text())
    rows = [r for r in record["results"] if r["external"]]
    assert {r["method"] for r in rows} == {"tangent", "near-discrete", "noisy", "off", "converging"}
    assert record["loss_data"]["times"] == pytest.approx(list(setup_times(result)))
    assert "convergence" in paths
    summary = result.summary()
    assert "external gradients (what each computed):" in summary and "off (rtol unknown)" in summary


def setup_times(result) -> list[float]:  # type: ignore[no-untyped-def]
    return result.loss_data["times"]


def test_user_setting_keeps_the_answer_on_symsens_method(setup) -> None:  # type: ignore[no-untyped-def]
    model, loss, _, _, truth = setup
    result = audit(model, loss, schemes=SCHEMES, tolerances=[1e-4], methods=["discrete"],
                   external={"mine": truth.gradient}, user_setting=("discrete", "tsit5", 1e-4))
    assert result.answer["text"].startswith(("Yes: your gradient (discrete with tsit5", "No: your gradient (discrete with tsit5"))


def test_failures_of_a_callable_are_rows_not_crashes(setup) -> None:  # type: ignore[no-untyped-def]
    model, loss, _, _, _ = setup

    def broken(p, rtol):  # type: ignore[no-untyped-def]
        if rtol > 1e-5:
            raise RuntimeError("solver diverged")
        return [1.0, 2.0, 3.0]

    result = audit(model, loss, schemes=SCHEMES, tolerances=TOLERANCES, methods=["discrete"],
                   external={"broken": broken, "nan": lambda p, rtol: [math.nan, 1.0]})
    rows = {(r["method"], r["rtol"]): r for r in result.results if r.get("external")}
    assert rows[("broken", 1e-4)]["category"] == "failed"
    assert "raised RuntimeError: solver diverged" in rows[("broken", 1e-4)]["verdict"]
    assert "3 values, but the audit differentiates with respect to 2 parameters" in rows[("broken", 1e-7)]["verdict"]
    assert "'k' is NaN" in rows[("nan", 1e-4)]["verdict"]
    assert result.answer["text"].startswith("No: your gradient broken at rtol 0.0001 failed")


def test_zero_true_gradient_on_a_steps_grid(setup) -> None:  # type: ignore[no-untyped-def]
    model = setup[0]
    # At the data parameters the true gradient is exactly 0 whatever grid the tool used.
    result = audit(model, TrajectoryLoss(), schemes=SCHEMES, tolerances=[1e-4], methods=["discrete"],
                   external={"zero": [0.0, 0.0], "floor": {"gradient": [3.0, 4.0], "loss": 0.01, "rtol": 1e-4}})
    zero, = _rows(result, "zero")
    floor, = _rows(result, "floor")
    assert zero["category"] == "uninformative"
    assert floor["category"] == "loss-floor" and floor["absolute_error"] == pytest.approx(5.0)
    assert result.loss_data is None or result.loss_data["times"] is None
    # Away from the data parameters a steps grid has no solver-independent times: refused, pointing to grid=.
    with pytest.raises(ValueError, match=r"fixed times.*grid="):
        audit(model, TrajectoryLoss(), p={"k": 2.1}, schemes=SCHEMES, tolerances=[1e-4], methods=["discrete"],
              external={"zero": [0.0, 0.0]})


@pytest.mark.parametrize("value, message", [
    ([1.0], "external gradient 'x': 1 value, but the audit differentiates with respect to 2 parameters"),
    ({"k": 1.0, "q": 2.0}, "external gradient 'x': unknown parameter 'q'"),
    ({"k": 1.0}, "external gradient 'x': no value for parameter c"),
    ([1.0, math.nan], "external gradient 'x': the value of 'c' is NaN"),
    ([math.inf, 1.0], "external gradient 'x': the value of 'k' is infinite"),
    ("1,2", "external gradient 'x': expected 2 numbers"),
    ([[1.0, 2.0]], "shape"),
    ({"gradient": [1.0, 2.0], "rtol": 2.0}, "rtol must be below 1"),
    ({"gradient": [1.0, 2.0], "tolerance": 1e-3}, "unknown key 'tolerance'"),
    ((math.nan, [1.0, 2.0]), "the loss must be a finite number"),
])
def test_bad_externals_are_named(setup, value, message) -> None:  # type: ignore[no-untyped-def]
    model, loss = setup[0], setup[1]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        audit(model, loss, schemes=SCHEMES, tolerances=[1e-4], methods=["discrete"], external={"x": value})


def test_bad_external_names(setup) -> None:  # type: ignore[no-untyped-def]
    model, loss = setup[0], setup[1]
    options = dict(schemes=SCHEMES, tolerances=[1e-4], methods=["discrete"])
    with pytest.raises(ValueError, match="'discrete' is a symsens gradient method"):
        audit(model, loss, external={"discrete": [1.0, 2.0]}, **options)
    with pytest.raises(ValueError, match="must be a mapping"):
        audit(model, loss, external=[[1.0, 2.0]], **options)


def test_tools_are_external_callables(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import symsens.bridges as bridges

    model, loss, data, _, truth = setup
    calls = []

    class FakeTool:
        tool, solver = "fake-tool", "a fake Tsit5"

        def __init__(self, plan, times, targets) -> None:  # type: ignore[no-untyped-def]
            self.plan, self.times, self.targets = plan, times, targets

        def __call__(self, p, rtol, atol):  # type: ignore[no-untyped-def]
            calls.append((rtol, atol))
            return truth.loss, truth.gradient * (1 + rtol)

    made = {}

    def provider(tool, model_, plan, *, times, targets, t_span):  # type: ignore[no-untyped-def]
        made["args"] = (tool, plan, times, targets, t_span)
        return FakeTool(plan, times, targets)

    monkeypatch.setattr(bridges, "TOOLS", ("fake-tool",), raising=False)
    monkeypatch.setattr(bridges, "gradient_provider", provider, raising=False)
    result = audit(model, loss, schemes=SCHEMES, tolerances=TOLERANCES, methods=["discrete"], tools=["fake-tool"])
    tool, plan, times, targets, t_span = made["args"]
    assert tool == "fake-tool" and plan.kind == "pointwise" and t_span == (0.0, 3.0)
    assert np.array_equal(times, data.times) and np.array_equal(targets, data.targets)
    assert [c[0] for c in calls] == TOLERANCES and calls[0][1] == pytest.approx(1e-7)
    rows = _rows(result, "fake-tool")
    assert len(rows) == 2 and rows[0]["solver"] == "a fake Tsit5"
    assert "fake-tool (a fake Tsit5) at rtol 0.0001" in result.answer["text"]
    with pytest.raises(ValueError, match="unknown tool 'nope'"):
        audit(model, loss, schemes=SCHEMES, tolerances=[1e-4], methods=["discrete"], tools=["nope"])


# -- the command line --------------------------------------------------------------------------------------------
def test_command_line_gradient_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "oscillator.toml"
    path.write_text(MODEL_FILE)
    base = ["audit", str(path), "--schemes", "tsit5", "--tolerances", "1e-4,1e-7", "--methods",
            "discrete,discrete-tangent-norm", "--quiet"]
    # The loss data first, then the user's gradient computed from them alone (a DataLoss built from the JSON).
    data_file = tmp_path / "loss.json"
    assert main([*base, "--write-loss-data", str(data_file)]) == 0
    assert str(data_file) in capsys.readouterr().out
    record = json.loads(data_file.read_text())
    assert record["parameter_names"] == ["k", "c"] and len(record["times"]) == 100
    model = symsens.load_model(str(path))
    user_loss = DataLoss(record["times"], record["targets"], record["outputs"])
    mine = symsens.gradient(model, user_loss, method="discrete", scheme="tsit5", rtol=1e-7).check()

    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps({"gradient": mine.gradient.tolist(), "loss": mine.loss, "rtol": 1e-7,
                                   "scheme": "tsit5"}))
    as_npy = tmp_path / "grad.npy"
    np.save(as_npy, mine.gradient)
    as_csv = tmp_path / "grad.csv"
    as_csv.write_text("parameter,value\n" + "".join(f"{n},{float(v)!r}\n" for n, v in zip(("c", "k"), mine.gradient[::-1])))
    assert main([*base, "--gradient", f"json={as_list}", "--gradient", f"npy={as_npy}", "--gradient",
                 f"csv={as_csv}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in out["results"] if r["external"]}
    assert rows["json"]["identified_as"] == {"method": "discrete", "scheme": "tsit5", "rtol": 1e-7}
    assert rows["json"]["match_exact"] or rows["json"]["match_digits"] >= 10
    for name in ("npy", "csv"):
        assert rows[name]["rtol"] is None
        assert agreement_digits(np.array(rows[name]["gradient"]), mine.gradient) > 15
    assert out["answer"].startswith(("Yes: your gradient json (tsit5) at rtol 1e-07 ",
                                     "No: your gradient json (tsit5) at rtol 1e-07 "))
    assert out["loss_data"]["targets"] == record["targets"]


def test_command_line_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "oscillator.toml"
    path.write_text(MODEL_FILE)
    base = ["audit", str(path), "--schemes", "tsit5", "--tolerances", "1e-4", "--methods", "discrete", "--quiet"]
    cases = {
        "short.json": ("[1.0]", "1 value, but the audit differentiates with respect to 2 parameters"),
        "nan.json": ('{"k": NaN, "c": 1}', "the value of 'k' is NaN"),
        "bad.json": ("[1.0, ", "does not parse as JSON"),
        "unknown.csv": ("k,1\nq,2\n", "unknown parameter 'q'"),
        "text.csv": ("k,one\nc,2\n", "row 1: the value 'one' of 'k' is not a number"),
        "bad.npy": ("not an array", "does not parse as a NumPy .npy array"),
    }
    for name, (content, message) in cases.items():
        file = tmp_path / name
        file.write_text(content)
        assert main([*base, "--gradient", f"g={file}"]) == 2, name
        err = capsys.readouterr().err
        assert f"--gradient g={file}" in err and message in err, (name, err)
    assert main([*base, "--gradient", f"g={tmp_path / 'missing.json'}"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main([*base, "--gradient", "nofile"]) == 2
    assert "--gradient expects NAME=FILE" in capsys.readouterr().err


def _stiff_pair() -> symsens.Model:
    # A fast mode decaying at rate k = 1000 beside a slow one: the backward state solve grows at exactly k.
    return symsens.Model(states=["u", "w"], parameters={"k": 1000.0, "a": 1.0}, rhs=["-k*(u - w)", "-a*w"],
                         initial_conditions=["2", "1"], name="stiff-pair", t_span=(0.0, 1.0))


def test_a_backsolve_external_on_a_stiff_model_is_diagnosed_by_the_backward_growth() -> None:
    from symsens.audit import ExternalGradient

    model = _stiff_pair()
    loss = fit_loss(model, points=10)
    truth = symsens.true_gradient(model, loss_data(model, loss).as_loss())
    wrong = np.asarray(truth.gradient) * (1.0 + 1e-2)   # 1e4 x rtol: beyond what the tolerance explains
    near = np.asarray(truth.gradient) * (1.0 + 3e-6)    # 3 x rtol: truncation, whatever the backward growth
    report = audit(model, loss, methods=["forward"], schemes=["rodas4"], tolerances=[1e-6],
                   external={"backsolve": ExternalGradient(gradient=wrong, rtol=1e-6, backsolve=True),
                             "other": ExternalGradient(gradient=wrong, rtol=1e-6),
                             "near": ExternalGradient(gradient=near, rtol=1e-6, backsolve=True)})
    rows = {row["method"]: row for row in report.results if row.get("external")}
    backsolve, other = rows["backsolve"], rows["other"]
    assert backsolve["category"] == "backsolve-instability"
    # max Re(-lambda) of the Jacobian [[-k, k], [0, -a]] is k = 1000 everywhere, over the span 1.
    assert "growth rate up to 1e+03 per unit time" in backsolve["verdict"]
    assert "exp(1e+03)" in backsolve["verdict"]
    assert other["category"] != "backsolve-instability" and "backwards" not in other["verdict"]
    assert backsolve["digits"] == pytest.approx(other["digits"])
    assert rows["near"]["category"] != "backsolve-instability" and "backwards" not in rows["near"]["verdict"]


def test_a_backsolve_external_on_a_non_stiff_model_keeps_the_ordinary_verdict(setup) -> None:  # type: ignore[no-untyped-def]
    from symsens.audit import ExternalGradient

    model, loss, _, _, truth = setup
    wrong = np.asarray(truth.gradient) * (1.0 + 1e-3)
    report = audit(model, loss, methods=["forward"], schemes=SCHEMES, tolerances=[1e-7],
                   external={"backsolve": ExternalGradient(gradient=wrong, rtol=1e-7, backsolve=True)})
    row = next(r for r in report.results if r.get("external"))
    # The oscillator's eigenvalues have real part -c/2 = -0.15: the backward solve grows by exp(0.45) < 100.
    assert row["category"] == "inaccurate" and "backwards" not in row["verdict"]
