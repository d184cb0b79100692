"""``symsens schemes`` and ``symsens stability``: JSON contract, table, figure, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from symsens.cli import main
from symsens.cli._schemes import _table, scheme_record
from symsens.schemes import _registry as registry


ONE_STEP_KEYS = {"name", "family", "stability_function", "order", "A_stable", "L_stable", "R_infinity", "a_alpha_degrees", "decay"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_schemes_json_lists_the_whole_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "schemes", "--json")
    assert status == 0
    records = json.loads(out)
    assert [r["name"] for r in records] == list(registry.scheme_names())
    for record in records:
        assert ONE_STEP_KEYS <= set(record)
        if record["kind"] == "multistep":
            assert record["stability_function"] is None and isinstance(record["a_alpha_degrees"], float)
            assert set(record["decay"]) >= {"root"}
        else:
            assert record["a_alpha_degrees"] is None
            assert set(record["decay"]) == {"R", "dR", "zdR"}
            z = sp.Symbol("z")
            assert sp.sympify(record["stability_function"]).free_symbols <= {z}
        for coefficient, exponent in record["decay"].values():
            assert isinstance(coefficient, str) and isinstance(exponent, (int, float))
            sp.sympify(coefficient)
        assert record["order"] == record["claimed_order"], record["name"]


def test_schemes_table(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "schemes")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "family", "stages", "order"]
    names = {line.split()[0] for line in lines[2:]}
    assert set(registry.scheme_names()) <= names


@pytest.mark.parametrize(
    ("name", "A", "L", "R_inf", "zdR"),
    [
        ("radau-iia-3", True, True, "0", ["3", -1]),
        ("gauss-2", True, False, "1", ["-12", -1]),
        ("backward-euler", True, True, "0", ["1", -1]),
        ("trapezoid", True, False, "-1", ["4", -1]),
        ("rk4", False, False, "zoo", ["1/6", 4]),
    ],
)
def test_stability_json(capsys: pytest.CaptureFixture[str], name: str, A: bool, L: bool, R_inf: str, zdR: list[object]) -> None:
    status, out, _ = _run(capsys, "stability", name, "--json")
    assert status == 0
    record = json.loads(out)
    assert ONE_STEP_KEYS <= set(record)
    assert (record["name"], record["A_stable"], record["L_stable"], record["R_infinity"]) == (name, A, L, R_inf)
    assert record["decay"]["zdR"] == zdR
    assert record["a_alpha_degrees"] is None


def test_stability_json_multistep(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "stability", "bdf3", "--json")
    assert status == 0
    record = json.loads(out)
    assert record["stability_function"] is None and record["A_stable"] is False
    assert abs(record["a_alpha_degrees"] - 86.03) < 0.01
    coefficient, exponent = record["decay"]["root"]
    assert abs(exponent + 1 / 3) < 1e-15
    assert sp.simplify(sp.sympify(coefficient) - sp.Rational(1, 3) ** sp.Rational(1, 3)) == 0


def test_stability_text_latex_and_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    figure = tmp_path / "radau.png"
    status, out, _ = _run(capsys, "stability", "radau-iia-3", "--latex", "--plot", str(figure))
    assert status == 0
    assert "R(z) =" in out and "\\frac" in out and "L-stable: yes" in out
    assert figure.stat().st_size > 10_000 and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_scheme_exits_2_with_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "stability", "radau-iia3")
    assert status == 2
    assert "radau-iia-3" in err


def test_console_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "symsens.cli", "stability", "backward-euler", "--json"],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(out.stdout)["stability_function"] == "1/(1 - z)"


def test_record_and_table_for_a_scheme_outside_the_catalogue() -> None:
    from types import SimpleNamespace

    theta = SimpleNamespace(name="theta-0.3", A=((0, 0), (sp.Rational(7, 10), sp.Rational(3, 10))), b=(sp.Rational(7, 10), sp.Rational(3, 10)), order=1)
    record = scheme_record(theta)
    assert record["A_stable"] is False and record["order"] == 1
    assert "theta-0.3" in _table([record])


def test_text_shows_infinity_not_sympy_zoo() -> None:
    """R(z) of an explicit scheme is a polynomial, so |R(z)| -> oo: people read ∞, the JSON keeps SymPy's zoo."""
    records = [scheme_record(registry.get_scheme(name)) for name in ("rk4", "radau-iia-3")]
    assert records[0]["R_infinity"] == "zoo"
    table = _table(records)
    assert "zoo" not in table
    rk4_line = next(line for line in table.splitlines() if line.startswith("rk4"))
    assert "∞" in rk4_line


def test_catalogue_is_read_back_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact analysis is computed once and read back (no SymPy work on the second call); a damaged cache
    file is ignored, not trusted."""
    from symsens.cli import _schemes

    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    first = _schemes.catalogue_records()
    (cached,) = (tmp_path / "schemes").glob("catalogue-*.json")

    def no_analysis(*args: object, **kwargs: object) -> None:
        raise AssertionError("the catalogue was analysed again")

    monkeypatch.setattr(_schemes, "scheme_record", no_analysis)
    assert _schemes.catalogue_records() == json.loads(json.dumps(first))
    cached.write_text("{not json", encoding="utf-8")
    monkeypatch.undo()
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    assert _schemes.catalogue_records() == json.loads(json.dumps(first))
