"""One vocabulary on the command line: ``--scheme`` names an integration scheme, ``--method`` a gradient method.

* ``solve`` and ``reference`` take ``--scheme``; their old ``--method`` still works with a FutureWarning.
* Scheme aliases (``radau5`` for ``radau-iia-3``) are accepted by ``solve``, ``stability`` and ``audit`` and
  listed by ``schemes``.
* Outputs: ``Solution.outputs`` (both backends) and the output columns of ``solve`` (text, JSON, ``--csv``) and
  ``reference``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import symsens
from symsens.cli import main
from symsens.integrate import solve


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


MODEL_FILE = """
[model]
name = "decay"
t_span = [0, 1]
[parameters]
k = 2.0
[states]
y = 1.0
[equations]
y = "-k*y"
[outputs]
twice = "2*y"
shifted = "y + k"
"""


def _model_file(tmp_path: Path) -> str:
    path = tmp_path / "decay.toml"
    path.write_text(MODEL_FILE)
    return str(path)


def test_solve_scheme_and_deprecated_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model_file(tmp_path)
    assert main(["solve", model, "--scheme", "radau5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "radau5" and record["status"] == "success"
    with pytest.warns(FutureWarning, match="--method for the integration scheme is deprecated; use --scheme rodas4"):
        assert main(["solve", model, "--method", "rodas4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "rodas4"
    with pytest.warns(FutureWarning):
        assert main(["solve", model, "--method", "rodas4", "--scheme", "tsit5"]) == 2
    assert "disagree" in capsys.readouterr().err
    assert main(["solve", model, "--scheme", "radau6"]) == 2
    assert "--scheme: method 'radau6' has no compiled integrator" in capsys.readouterr().err


def test_stability_and_schemes_know_the_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stability", "radau5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["name"] == "radau-iia-3" and record["aliases"] == ["radau5"]
    assert main(["schemes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "aliases"
    row = next(line for line in lines if line.startswith("radau-iia-3 "))
    assert row.split()[-1] == "radau5"
    assert main(["schemes", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["radau-iia-3"]["aliases"] == ["radau5"] and records["tsit5"]["aliases"] == []


def test_audit_accepts_a_scheme_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model_file(tmp_path)
    assert main(["audit", model, "--schemes", "radau5", "--tolerances", "1e-6", "--methods", "forward", "--quiet",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert {row["scheme"] for row in record["results"]} == {"radau-iia-3"}
    assert record["user_setting"]["scheme"] == "radau-iia-3"


def test_solution_outputs_on_both_backends() -> None:
    model = symsens.load_model("hodgkin-huxley")
    assert model.output_names == ("voltage",)
    for backend, scheme in (("compiled", "tsit5"), ("numpy", "radau")):
        solution = solve(model, (0.0, 2.0), method=scheme, backend=backend, t_eval=np.linspace(0, 2, 5),
                         p={"g_Na": 110.0})
        assert solution.output_names == ("voltage",)
        outputs = solution.outputs
        assert list(outputs) == ["voltage"] and outputs["voltage"].shape == (5,)
        # voltage = V, evaluated from the solution at the output times
        np.testing.assert_array_equal(outputs["voltage"], solution.y[:, model.state_names.index("V")])
    plain = solve(symsens.load_model("robertson"), (0.0, 1.0))
    assert plain.outputs == {} and plain.output_names == ()


def test_solution_outputs_use_the_solve_parameters(tmp_path: Path) -> None:
    model = symsens.load_model(_model_file(tmp_path))
    solution = solve(model, (0.0, 1.0), p={"k": 3.0}, t_eval=[0.0, 0.5, 1.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solution.outputs["twice"], 2 * np.exp(-3.0 * np.array([0.0, 0.5, 1.0])), rtol=1e-8)
    np.testing.assert_allclose(solution.outputs["shifted"], solution.y[:, 0] + 3.0)


def test_solve_output_columns_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model_file(tmp_path)
    table = tmp_path / "out.csv"
    assert main(["solve", model, "--outputs", "3", "--json", "--csv", str(table)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["output_names"] == ["twice", "shifted"]
    np.testing.assert_allclose(record["outputs"]["twice"], 2 * np.array(record["y"])[:, 0])
    with open(table, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["t", "y", "twice", "shifted"]
    assert len(rows) == 4
    values = np.array(rows[1:], dtype=float)
    np.testing.assert_array_equal(values[:, 0], record["t"])
    np.testing.assert_array_equal(values[:, 2], record["outputs"]["twice"])  # full precision
    assert main(["solve", model]) == 0
    assert "outputs(1) = twice=" in capsys.readouterr().out
    assert main(["solve", model, "--csv", str(tmp_path / "missing" / "x.csv")]) == 2
    assert "--csv" in capsys.readouterr().err


def test_reference_scheme_and_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model_file(tmp_path)
    assert main(["reference", model, "--digits", "10", "--scheme", "gauss", "--t", "0.5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "gauss"
    assert record["output_names"] == ["twice", "shifted"]
    assert record["outputs"]["twice"][0] == pytest.approx(2 * np.exp(-1.0), rel=1e-12)
    with pytest.warns(FutureWarning, match="use --scheme gauss"):
        assert main(["reference", model, "--digits", "8", "--method", "gauss", "--t", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "twice = " in out and "[output, in double precision from the states]" in out
