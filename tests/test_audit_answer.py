"""The audit answers first: one sentence about the gradient the user computes, then the detail.

* ``audit(..., user_setting=...)``: the answer names the user's setting, says whether it is trustworthy and to how
  many digits, and otherwise the main cause and the cheapest setting that is; the same sentence is in the JSON,
  the terminal summary, report.md and report.html (which carries its figures as data URIs).
* The default loss of ``symsens audit`` for a model without data: a fit to data made at shifted parameters
  (each differentiated parameter x 1.05), stated in the output; ``--set``, ``--p-data`` and the zero-gradient
  ``trajectory-at-data`` loss.
* ``--explain``, ``--verbose`` and the text helpers (wrapping at word boundaries, never inside a word).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import symsens
from symsens.audit import DataLoss, TrajectoryLoss, audit, parse_loss
from symsens.audit._glossary import GLOSSARY
from symsens.audit._losses import DATA_SHIFT, fit_loss
from symsens.audit._report import shorten_words, wrap_words
from symsens.cli import main


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def _logistic() -> symsens.Model:
    """y' = r y (1 - y / K), y(0) = 0.1, with an output ``half = y / 2``."""
    return symsens.Model(
        states=["y"], parameters={"r": 1.5, "K": 2.0}, rhs=["r*y*(1 - y/K)"], initial_conditions=["0.1"],
        outputs={"half": "y/2"}, name="logistic", t_span=(0.0, 4.0),
    )


MODEL_FILE = """
[model]
name = "decay"
t_span = [0, 1]
[parameters]
k = 2.0
c = 0.0
[states]
y = 1.0
[equations]
y = "-k*y + c"
"""


@pytest.fixture(scope="module")
def fit_report() -> symsens.audit.AuditReport:
    model = _logistic()
    loss = fit_loss(model)
    return audit(model, loss, schemes=["tsit5"], tolerances=[1e-3, 1e-9], methods=["forward", "discrete"],
                 target_digits=6, user_setting=("discrete", "tsit5", 1e-3))


def test_the_answer_names_the_setting_the_digits_the_cause_and_the_cheapest(fit_report) -> None:  # type: ignore[no-untyped-def]
    answer = fit_report.answer
    assert fit_report.user_setting == {"method": "discrete", "scheme": "tsit5", "rtol": 1e-3}
    assert answer["setting"] == fit_report.user_setting
    row = fit_report.result("discrete", "tsit5", 1e-3)
    assert answer["category"] == row["category"] and answer["digits"] == row["digits"]
    # rtol 1e-3 on a smooth model cannot give 6 digits; rtol 1e-9 does, and is the cheapest that does.
    assert row["category"] != "accurate"
    assert answer["trustworthy"] is False
    text = answer["text"]
    assert text.startswith("No: your gradient (discrete with tsit5 at rtol 0.001)")
    assert f"{row['digits']:.1f} correct digits" in text or "no correct digit" in text
    assert "main cause: " in text and answer["cause"] in text
    assert fit_report.recommendation["found"]
    choice = fit_report.recommendation["choice"]
    assert answer["cheapest"] == choice
    assert f"the cheapest setting with 6 digits is {choice['method']} with {choice['scheme']} at rtol {choice['rtol']:g}" in text
    assert text.endswith(".")


def test_a_trustworthy_gradient_says_yes_with_its_digits() -> None:
    model = _logistic()
    report = audit(model, fit_loss(model), schemes=["tsit5"], tolerances=[1e-9], methods=["forward"],
                   target_digits=5)
    row = report.results[0]
    assert row["category"] == "accurate"
    assert report.answer["trustworthy"] is True
    assert report.answer["text"].startswith(f"Yes: your gradient (forward with tsit5 at rtol 1e-09) is trustworthy to "
                                            f"{int(row['digits'])} digits")


def test_the_default_setting_is_the_first_method_first_scheme_loosest_tolerance() -> None:
    model = _logistic()
    report = audit(model, fit_loss(model), schemes=["tsit5", "radau5"], tolerances=[1e-8, 1e-4],
                   methods=["discrete", "forward"], target_digits=4)
    assert report.user_setting == {"method": "discrete", "scheme": "tsit5", "rtol": 1e-4}
    # The alias is accepted and the report uses the catalogue name.
    assert {row["scheme"] for row in report.results} == {"tsit5", "radau-iia-3"}


def test_user_setting_errors_name_the_argument() -> None:
    model = _logistic()
    options = dict(schemes=["tsit5"], tolerances=[1e-6], methods=["forward"])
    with pytest.raises(ValueError, match="`user_setting`: method 'discrete' is not among"):
        audit(model, fit_loss(model), user_setting=("discrete", None, None), **options)
    with pytest.raises(ValueError, match="`user_setting`: rtol 0.001 is not among"):
        audit(model, fit_loss(model), user_setting={"rtol": 1e-3}, **options)
    with pytest.raises(ValueError, match="`user_setting`: scheme 'rodas4'"):
        audit(model, fit_loss(model), user_setting={"scheme": "rodas4"}, **options)
    with pytest.raises(ValueError, match="`user_setting` takes method, scheme and rtol"):
        audit(model, fit_loss(model), user_setting={"tolerance": 1e-6}, **options)


def test_zero_true_gradient_answer_cannot_tell() -> None:
    """At the data parameters of the trajectory loss the discrete run reproduces its targets: the answer says
    the audit cannot tell, instead of calling an exact 0 trustworthy."""
    model = _logistic()
    report = audit(model, TrajectoryLoss(), schemes=["tsit5"], tolerances=[1e-4], methods=["discrete"])
    assert report.reference_exact
    assert report.answer["trustworthy"] is None
    assert report.answer["text"].startswith("Cannot tell at these parameters")


def test_json_terminal_markdown_and_html_lead_with_the_answer(fit_report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    record = json.loads(json.dumps(fit_report.to_json_dict(), allow_nan=False))
    assert record["answer"] == fit_report.answer["text"]
    assert record["user_setting"] == fit_report.user_setting
    assert next(iter(record)) == "answer"

    summary = fit_report.summary(width=90)
    assert summary.startswith("ANSWER: No: your gradient")
    assert all(len(line) <= 90 for line in summary.splitlines())
    # The answer is wrapped, not cut: joining the wrapped lines gives the sentence back.
    lines = summary.splitlines()
    end = lines.index("")
    assert " ".join(line.strip() for line in lines[:end]) == "ANSWER: " + fit_report.answer["text"]
    assert "verdicts (4 runs, worst first):" in summary
    assert "--verbose" in summary and "method " not in summary  # the table only with verbose
    verbose = fit_report.summary(verbose=True)
    assert "method " in verbose and verbose.count("forward ") >= 2

    written = fit_report.write(tmp_path / "report")
    markdown = Path(written["markdown"]).read_text()
    first_lines = [line for line in markdown.splitlines() if line][:2]
    assert first_lines[0].startswith("# Gradient audit")
    assert first_lines[1].startswith("> **Answer.** No: your gradient")
    # the convergence figure comes right after the answer
    assert markdown.index("(convergence.png)") < markdown.index("## Findings")
    page = Path(written["html"]).read_text()
    body = page[page.index("<body>"):]
    assert body.index('class="answer no"') < body.index("<img") < body.index("<h2>")
    # self-contained: every figure is a data URI, none is a file reference
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    # the glossary of the methods that ran
    assert "Gradient methods" in markdown and "CVODES with errconS off" in markdown


def test_terminal_groups_worst_first(fit_report) -> None:  # type: ignore[no-untyped-def]
    from symsens.audit._verdict import SEVERITY

    table = fit_report.summary_table()
    groups = re.findall(r"^\[([^:\]]+): \d+\]$", table, flags=re.M)
    from symsens.audit._report import VERDICT_LABELS

    order = [next(c for c, label in VERDICT_LABELS.items() if label == g) for g in groups]
    assert order == sorted(order, key=SEVERITY.index)


def test_words_are_never_cut() -> None:
    text = "discrete-tangent-norm-differentiated-steps with radau-iia-3 at rtol 1e-05: biased by the loss floor"
    lines = wrap_words(text, 30, indent="  ")
    assert " ".join(line.strip() for line in lines) == text
    assert "discrete-tangent-norm-differentiated-steps" in lines[0]  # a long name is kept whole
    short = shorten_words("the residual error puts 0.631 into the gradient", 25)
    assert short == "the residual error puts…"
    assert shorten_words("short", 25) == "short"


def test_fit_loss_rule() -> None:
    model = _logistic()
    loss = fit_loss(model, parameters=["r"])
    assert dict(loss.data_parameters) == {"r": 1.5 * DATA_SHIFT}
    assert loss.outputs == ("half",)  # the model's outputs, when it declares any
    assert len(loss.grid) == 100 and loss.grid[0] > 0 and loss.grid[-1] == 4.0
    assert "x 1.05" in loss.description and "r = 1.575" in loss.description
    both = fit_loss(model, p={"K": 3.0})
    assert dict(both.data_parameters) == {"r": pytest.approx(1.575), "K": pytest.approx(3.15)}
    chosen = fit_loss(model, p_data={"K": 2.5})
    assert dict(chosen.data_parameters) == {"K": 2.5}
    with pytest.raises(ValueError, match="`p_data`: unknown parameter 'k'"):
        fit_loss(model, p_data={"k": 1.0})
    with pytest.raises(ValueError, match="`p_data`: the data parameters equal the audited ones"):
        fit_loss(model, p_data={"K": 2.0})
    # The zero-gradient experiment keeps its names.
    assert parse_loss("trajectory") == TrajectoryLoss() == parse_loss("trajectory-at-data")
    assert parse_loss("trajectory-at-data:y").outputs == ("y",)
    fit = parse_loss("fit:y@0:4:9", model=model, fit_options={"parameters": ["K"]})
    assert fit.outputs == ("y",) and len(fit.grid) == 9 and dict(fit.data_parameters) == {"K": 2.1}
    with pytest.raises(ValueError, match="--loss fit needs the model"):
        parse_loss("fit")


def test_command_default_is_an_informative_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "decay.toml"
    path.write_text(MODEL_FILE)
    args = ["audit", str(path), "--schemes", "tsit5", "--tolerances", "1e-4,1e-8", "--methods", "forward,discrete",
            "--quiet"]
    assert main([*args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert "x 1.05" in record["loss"] and "k = 2.1" in record["loss"]
    assert not record["reference"]["exact"] and abs(record["reference_gradient"][0]) > 1e-3
    assert record["user_setting"] == {"method": "forward", "scheme": "tsit5", "rtol": 1e-4}
    assert record["answer"].startswith(("Yes: ", "No: "))

    # The user's own setting, the audited point and the data point.
    assert main([*args, "--method", "discrete", "--scheme", "radau5", "--rtol", "1e-6", "--set", "k=2.5",
                 "--p-data", "k=3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["user_setting"] == {"method": "discrete", "scheme": "radau-iia-3", "rtol": 1e-6}
    assert {row["scheme"] for row in record["results"]} == {"tsit5", "radau-iia-3"}
    assert sorted({row["rtol"] for row in record["results"]}) == [1e-8, 1e-6, 1e-4]
    assert record["parameter_values"][0] == 2.5
    assert "k = 3" in record["loss"] and "chosen by the user" in record["loss"]

    # The terminal: the answer first, the rule stated.
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("ANSWER: ")
    assert "each differentiated parameter x 1.05" in " ".join(out.split())

    # The zero-gradient experiment by name; --p-data moves its data.
    assert main([*args, "--loss", "trajectory-at-data", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reference"]["exact"]
    assert main([*args, "--loss", "trajectory", "--p-data", "k=2.2", "--json"]) == 0
    assert not json.loads(capsys.readouterr().out)["reference"]["exact"]


def test_command_argument_errors_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "decay.toml"
    path.write_text(MODEL_FILE)
    data = tmp_path / "data.csv"
    data.write_text("t,y\n0.5,0.4\n1.0,0.2\n")
    base = ["audit", str(path), "--schemes", "tsit5", "--tolerances", "1e-4", "--quiet"]
    assert main([*base, "--set", "k"]) == 2
    assert "--set expects NAME=VALUE" in capsys.readouterr().err
    assert main([*base, "--set", "q=1"]) == 2
    assert "--set" in capsys.readouterr().err
    assert main([*base, "--p-data", "k=abc"]) == 2
    assert "--p-data 'k=abc': the value is not a number" in capsys.readouterr().err
    assert main([*base, "--loss", f"data:{data}", "--p-data", "k=3"]) == 2
    assert "--p-data applies to a fit or trajectory loss" in capsys.readouterr().err


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--explain"]) == 0
    listing = capsys.readouterr().out
    for name in GLOSSARY:
        assert re.search(rf"^{re.escape(name)} ", listing, flags=re.M)
    assert "…" not in listing
    assert main(["audit", "--explain", "discrete-tangent-norm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("discrete-tangent-norm: ") and "ForwardDiff through OrdinaryDiffEq" in out
    assert main(["audit", "--explain", "discrete-tangent"]) == 2
    assert "--explain: unknown gradient method 'discrete-tangent'" in capsys.readouterr().err
    assert set(GLOSSARY) == set(symsens.audit.GRADIENT_METHODS)


def test_answer_for_a_failed_setting() -> None:
    from symsens.audit._verdict import answer

    rows = [
        {"method": "forward", "scheme": "tsit5", "rtol": 1e-3, "category": "failed", "digits": None,
         "verdict": "failed: too many steps at t = 0.5", "relative_error": None, "absolute_error": None, "work": None},
        {"method": "forward", "scheme": "rodas4", "rtol": 1e-3, "category": "accurate", "digits": 7.2,
         "verdict": "accurate to 7 digits", "relative_error": 6e-8, "absolute_error": 1e-7, "work": 2.0e5},
    ]
    advice = {"found": True, "choice": {"method": "forward", "scheme": "rodas4", "rtol": 1e-3, "atol": 1e-6}}
    result = answer(rows, ("forward", "tsit5", 1e-3), advice, 6)
    assert result["trustworthy"] is False
    assert result["text"] == ("No: your gradient (forward with tsit5 at rtol 0.001) failed (too many steps at t = 0.5); "
                              "the cheapest setting with 6 digits is forward with rodas4 at rtol 0.001, 7.2 digits, "
                              "about 2.0e5 flops.")
    assert not math.isnan(result["digits"] or 0.0)
