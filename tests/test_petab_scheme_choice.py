"""``scheme="auto"`` of PEtab problems (symsens.petab._scheme_choice) on small problems with known spectra.

Independent checks:

* the probe's spectral radius against the closed-form eigenvalues of linear test systems (their Jacobian is
  constant), and its classification: a fast reversible reaction (eigenvalue -2e4 over 10 time units) is stiff and
  gets an implicit scheme, the same network with rates of order 1 is not and gets an explicit one, and a stiff
  oscillatory mode (-1000 +- 1e4 i, 84.3 deg off the negative real axis, outside the 51.84 deg sector where BDF5 is
  stable) gets the L-stable Rosenbrock scheme instead of BDF;
* the objective with ``"auto"`` against the same objective with the chosen scheme named (bit-identical: the same
  compiled solve) and against a negative log-likelihood computed here by hand from a SciPy ``solve_ivp`` (Radau,
  rtol 1e-10) solution of the ODE written out below;
* the fallback: at parameters that make the non-stiff problem stiff, the explicit choice fails and the solve is
  repeated with ``rodas4``, whose objective agrees with the SciPy one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from symsens.integrate._compiled import method_spec
from symsens.model import Model, to_sbml
from symsens.petab import load
from symsens.petab._scheme_choice import BDF_STABILITY_ANGLE, choose_scheme, decide

# A <-> B (kf, kb), B -> C (k); observables A + C and B, normal noise 0.1.
MEASUREMENTS = [("obs_AC", 0.5, 0.55), ("obs_B", 0.5, 0.3), ("obs_AC", 2.0, 0.6), ("obs_B", 2.0, 0.25),
                ("obs_AC", 5.0, 0.7), ("obs_B", 5.0, 0.15), ("obs_AC", 10.0, 0.85), ("obs_B", 10.0, 0.05)]
SIGMA = 0.1
STIFF = {"kf": 1e4, "kb": 1e4, "k": 0.5}       # eigenvalues -2e4 and about -0.25 (and 0)
NONSTIFF = {"kf": 1.0, "kb": 0.5, "k": 0.3}


def _write(folder: Path, rates: dict[str, float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = Model(["A", "B", "C"], {"kf": 1.0, "kb": 1.0, "k": 1.0},
                  ["-kf*A + kb*B", "kf*A - kb*B - k*B", "k*B"], ["1", "0", "0"], name="abc")
    (folder / "model.xml").write_text(to_sbml(model))
    (folder / "conditions.tsv").write_text("conditionId\nc0\n")
    (folder / "observables.tsv").write_text(
        "observableId\tobservableFormula\tnoiseFormula\nobs_AC\tA + C\t0.1\nobs_B\tB\t0.1\n")
    (folder / "measurements.tsv").write_text(
        "observableId\tsimulationConditionId\tmeasurement\ttime\n"
        + "".join(f"{o}\tc0\t{m}\t{t}\n" for o, t, m in MEASUREMENTS))
    (folder / "parameters.tsv").write_text(
        "parameterId\tparameterScale\tlowerBound\tupperBound\tnominalValue\testimate\n"
        + "".join(f"{name}\tlog10\t1e-3\t1e6\t{value!r}\t1\n" for name, value in rates.items()))
    (folder / "problem.yaml").write_text(
        "format_version: 1\nparameter_file: parameters.tsv\nproblems:\n- condition_files: [conditions.tsv]\n"
        "  measurement_files: [measurements.tsv]\n  observable_files: [observables.tsv]\n"
        "  sbml_files: [model.xml]\n")
    return folder / "problem.yaml"


def _scipy_nll(rates: dict[str, float]) -> float:
    """The NLL written out: the ODE by SciPy's Radau (rtol 1e-10, atol 1e-13), normal noise with sigma 0.1."""
    kf, kb, k = rates["kf"], rates["kb"], rates["k"]

    def f(t, x):  # type: ignore[no-untyped-def]
        a, b, c = x
        return [-kf * a + kb * b, kf * a - kb * b - k * b, k * b]

    def jac(t, x):  # type: ignore[no-untyped-def]
        return [[-kf, kb, 0.0], [kf, -kb - k, 0.0], [0.0, k, 0.0]]

    times = sorted({t for _, t, _ in MEASUREMENTS})
    solution = solve_ivp(f, (0.0, 10.0), [1.0, 0.0, 0.0], method="Radau", jac=jac, t_eval=times, rtol=1e-10,
                         atol=1e-13)
    assert solution.success
    at = {t: solution.y[:, i] for i, t in enumerate(times)}
    total = 0.0
    for observable, t, m in MEASUREMENTS:
        a, b, c = at[t]
        y = a + c if observable == "obs_AC" else b
        total += 0.5 * math.log(2 * math.pi * SIGMA**2) + 0.5 * ((m - y) / SIGMA) ** 2
    return total


@pytest.fixture(scope="module")
def stiff(tmp_path_factory):
    return load(_write(tmp_path_factory.mktemp("auto") / "stiff", STIFF))


@pytest.fixture(scope="module")
def nonstiff(tmp_path_factory):
    return load(_write(tmp_path_factory.mktemp("auto") / "nonstiff", NONSTIFF))


def test_the_probe_classifies_by_the_spectrum(stiff, nonstiff) -> None:
    """The Jacobian of A <-> B -> C is constant, eigenvalues 0 and the roots of l^2 + (kf + kb + k) l + kf k."""
    for problem, rates in ((stiff, STIFF), (nonstiff, NONSTIFF)):
        s = rates["kf"] + rates["kb"] + rates["k"]
        radius = (s + math.sqrt(s * s - 4 * rates["kf"] * rates["k"])) / 2
        assert problem.scheme_choice.spectral_radius == pytest.approx(radius, rel=1e-12)
    choice = stiff.scheme_choice
    assert choice.stiff and method_spec(choice.scheme).family != "explicit"
    assert choice.scheme == "bdf" and choice.stiff_angle == 0.0        # real eigenvalues: inside BDF's sector
    # Accuracy needs a few hundred steps; stability would need 10 * 2e4 / 3.25 ~ 6e4 explicit steps.
    assert choice.stiffness_ratio > 100
    choice = nonstiff.scheme_choice
    assert not choice.stiff and method_spec(choice.scheme).family == "explicit"
    assert choice.stiffness_ratio == 1.0 and choice.fallback == "rodas4"
    # Made once per problem, deterministic: the same object again, an equal one for the problem loaded anew.
    assert nonstiff.scheme_choice is choice and nonstiff.chosen_scheme == choice.scheme
    assert load(nonstiff.source).scheme_choice == choice


def test_stiff_oscillatory_modes_get_a_rosenbrock_scheme() -> None:
    """x' = a x - w y, y' = w x + a y (eigenvalues a +- i w, a = -1000, w = 1e4) beside a slow decay z' = -z: stiff
    once the oscillation has decayed, with stiff eigenvalues atan(w / |a|) = 84.3 deg off the negative real axis."""
    model = Model(["x", "y", "z"], {"a": -1000.0, "w": 1e4}, ["a*x - w*y", "w*x + a*y", "-z"], ["1", "0", "1"],
                  t_span=(0.0, 10.0))
    choice = choose_scheme(model, [-1000.0, 1e4])
    assert choice.spectral_radius == pytest.approx(math.hypot(1000.0, 1e4), rel=1e-12)
    assert choice.stiff and choice.scheme == "rodas4"
    assert choice.stiff_angle == pytest.approx(math.degrees(math.atan2(1e4, 1000.0)), abs=1e-9)
    assert choice.stiff_angle > BDF_STABILITY_ANGLE


def test_decide_on_given_spectra() -> None:
    """The rule itself: R = mean max(1, h rho / 3.25)."""
    h = np.array([0.1, 0.1, 0.1, 0.1])
    assert decide(h, np.array([[-10.0], [-10.0], [-10.0], [-10.0]])).scheme == "tsit5"      # h rho = 1: R = 1
    stiff = decide(h, np.array([[-1000.0], [-10.0], [-10.0], [-10.0]]))                      # R = (100/3.25 + 3)/4
    assert stiff.scheme == "bdf" and stiff.stiffness_ratio == pytest.approx((100 / 3.25 + 3) / 4, rel=1e-14)
    assert decide(h, np.array([[-1000.0 + 1000.0j], [-10.0], [-10.0], [-10.0]])).scheme == "bdf"   # 45 deg
    assert decide(h, np.array([[-1000.0 + 2000.0j], [-10.0], [-10.0], [-10.0]])).scheme == "rodas4"  # 63 deg


@pytest.mark.parametrize("which", ["stiff", "nonstiff"])
def test_auto_objective_is_the_chosen_scheme_and_agrees_with_scipy(which: str, request) -> None:
    problem = request.getfixturevalue(which)
    rates = STIFF if which == "stiff" else NONSTIFF
    value = problem.objective(rtol=1e-10)
    assert value == problem.objective(scheme=problem.chosen_scheme, rtol=1e-10)     # bit-identical
    assert value == pytest.approx(_scipy_nll(rates), rel=1e-6)
    assert np.array_equal(problem.simulate(rtol=1e-10), problem.simulate(scheme=problem.chosen_scheme, rtol=1e-10))
    result = problem.gradient(rtol=1e-10).check()
    assert result.scheme == problem.chosen_scheme
    assert result.loss == pytest.approx(_scipy_nll(rates), rel=1e-6)


def test_a_failed_explicit_choice_is_repeated_with_rodas4(nonstiff) -> None:
    """At kf = kb = 1e5 the problem chosen non-stiff at its nominal point is stiff: tsit5 would need about
    10 * 2e5 / 3.3 = 6e5 steps and stops at its limit of 1e5, the objective comes from rodas4 and agrees with SciPy."""
    assert nonstiff.chosen_scheme == "tsit5"
    p = {"kf": 5.0, "kb": 5.0, "k": math.log10(0.3)}
    value = nonstiff.objective(p, rtol=1e-8)
    assert value == nonstiff.objective(p, scheme="rodas4", rtol=1e-8)
    assert value == pytest.approx(_scipy_nll({"kf": 1e5, "kb": 1e5, "k": 0.3}), rel=1e-6)
    result = nonstiff.gradient(p, rtol=1e-8).check()
    assert result.scheme == "rodas4"
    assert result.loss == pytest.approx(_scipy_nll({"kf": 1e5, "kb": 1e5, "k": 0.3}), rel=1e-6)


def test_a_bad_scheme_name_is_an_error_naming_it(nonstiff) -> None:
    for call in (nonstiff.objective, nonstiff.simulate, nonstiff.gradient):
        with pytest.raises(ValueError, match="'no-such-scheme'"):
            call(scheme="no-such-scheme")
    with pytest.raises(ValueError, match="'auto'"):
        nonstiff.objective(scheme="no-such-scheme")


def test_cli_reports_the_scheme(nonstiff, capsys) -> None:
    from symsens.cli import main

    assert main(["petab", nonstiff.source, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scheme"] == nonstiff.chosen_scheme
    for field in ("negative_log_likelihood", "parameters", "gradient", "seconds"):
        assert field in report
