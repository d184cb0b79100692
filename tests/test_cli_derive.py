"""``symsens derive`` from the command line: JSON, LaTeX, text, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sympy as sp

import symsens
from symsens.cli import main
from symsens.derive import jacobian
from symsens.model import exprel, exprel_derivative


def test_derive_json_carries_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "--example", "robertson", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["states"] == ["y1", "y2", "y3"]
    assert data["parameters"] == {"k1": 0.04, "k2": 3e7, "k3": 1e4}
    for key in ("rhs", "jacobian", "parameter_jacobian", "initial_conditions", "sensitivity_rhs"):
        assert key in data
    # Expressions are SymPy syntax: parsing them back gives the model's Jacobian.
    model = symsens.load_model("robertson")
    names = {s.name: s for s in (*model.states, *model.parameters)}
    J = jacobian(model)
    for i in range(3):
        for j in range(3):
            assert sp.sympify(data["jacobian"][i][j], locals=names) == J[i, j]


def test_derive_json_of_hodgkin_huxley_round_trips_exprel(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "--example", "hodgkin-huxley", "--json", "--parameters", "g_Na,g_K"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["states"] == ["V", "m", "h", "n"]
    assert data["sensitivity_parameters"] == ["g_Na", "g_K"]
    model = symsens.load_model("hodgkin-huxley")
    names = {s.name: s for s in (*model.states, *model.parameters)}
    names.update(exprel=exprel, exprel_derivative=exprel_derivative)
    J = jacobian(model)
    assert sp.simplify(sp.sympify(data["jacobian"][1][0], locals=names) - J[1, 0]) == 0


def test_derive_latex_and_cse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "--example", "hodgkin-huxley", "--latex", "--parameters", "g_Na"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\\begin{align*}") and out.rstrip().endswith("\\end{align*}")
    assert "\\dot S_{V,g_{Na}}" in out
    assert main(["derive", "--example", "hodgkin-huxley", "--cse"]) == 0
    out = capsys.readouterr().out
    assert "# common subexpressions:" in out and "operations before" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["derive", "--example", "robertsen"], "did you mean 'robertson'"),
        (["derive"], "no model given"),
        (["derive", "--example", "robertson", "--parameters", "k9"], "unknown parameter 'k9'"),
        (["derive", "missing.toml"], "does not exist"),
    ],
)
def test_derive_errors_exit_2_with_a_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_console_script_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "symsens.cli", "derive", "--list"], capture_output=True, text=True, check=True
    )
    assert "calcium-neuron" in result.stdout.split()
