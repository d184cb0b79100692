"""``symsens solve`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from symsens.cli import main


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def test_solve_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figure = tmp_path / "vdp.png"
    code = main(["solve", "--example", "van-der-pol", "--t-span", "0", "0.5", "--sensitivity", "discrete",
                 "--outputs", "5", "--json", "--plot", str(figure)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "success" and data["states"] == ["y1", "y2"] and data["parameters"] == ["mu"]
    assert np.array(data["y"]).shape == (5, 2)
    assert np.array(data["sensitivities"]).shape == (5, 2, 1)
    assert data["t"][0] == 0.0 and data["t"][-1] == 0.5
    assert figure.stat().st_size > 10_000


def test_solve_text_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "--example", "robertson", "--t-span", "0", "1", "--rtol", "1e-4"]) == 0
    assert "robertson: tsit5 (compiled)" in capsys.readouterr().out
    assert main(["solve", "--example", "robertson", "--rtol", "0"]) == 2
    assert "`rtol` must be a positive" in capsys.readouterr().err
    assert main(["solve", "--example", "robertson", "--scheme", "nope"]) == 2
    assert "method 'nope'" in capsys.readouterr().err
