"""symsens.vanishing: measured test-equation sensitivities against closed forms, fitted exponents, explicit boundary,
the diagnosis on a model, and the ``symsens vanishing`` command.

Independent checks: the closed forms are evaluated from the exact stability polynomials at 40 digits (or from the
root decomposition of the multistep recurrence); the measurements run the compiled integrators, a 50-digit Newton
solve of the stage equations, or the 50-digit multistep recurrence; exact exponents come from
``decay_asymptotics``; the diagnosis is checked against ``n h R^(n-1) R'`` and ``t e^{λt}`` on y' = λy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.cli import main
from symsens.schemes import get_scheme, scheme_names
from symsens.schemes._analysis import is_multistep
from symsens.vanishing._explicit import explicit_boundary, stability_boundary
from symsens.vanishing._fit import MULTISTEP_RANGE, ONE_STEP_RANGE, exponent_table, fit_exponent
from symsens.vanishing._report import prepare_compiled
from symsens.vanishing._testeq import (
    _measure_stage_solve, closed_form, compiled_method_names, engine_of, exact, measure,
)

EPS = np.finfo(float).eps
Z_POINTS = np.array([-1.0, -1e2, -1e4, -1e6])


def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.getbasetemp() / "kernel-cache")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", _cache_dir(tmp_path_factory))


def _implicit_one_step() -> list[str]:
    names = []
    for name in scheme_names():
        scheme = get_scheme(name)
        if is_multistep(scheme) or getattr(scheme, "family", "") == "explicit":
            continue
        names.append(name)
    return names


IMPLICIT = _implicit_one_step()
COMPILED_IMPLICIT = [n for n in IMPLICIT if n in compiled_method_names()]


@pytest.fixture(scope="module", autouse=True)
def _compiled(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Build the test-equation solvers this module uses up front, two at a time, into the session cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SYMSENS_CACHE_DIR", _cache_dir(tmp_path_factory))
    try:
        prepare_compiled(COMPILED_IMPLICIT + ["exprb-euler", "exprb32", "euler", "rk4"], workers=2)
    finally:
        mp.undo()


def test_every_implicit_scheme_is_covered_and_the_engines_are_as_documented():
    assert len(IMPLICIT) == 21
    assert set(COMPILED_IMPLICIT) == {"radau-iia-3", "sdirk2", "sdirk4", "tr-bdf2", "kvaerno3", "kvaerno4",
                                      "kvaerno5", "ros2", "ros3p", "rodas3", "rodas4", "rodas5p"}
    for name in IMPLICIT:
        assert engine_of(name) == ("compiled" if name in COMPILED_IMPLICIT else "stage-solve")
    assert engine_of("bdf3") == "lmm-recurrence"


# A compiled integrator forms y1 = y0 + sum_i b_i (stage increment) in double precision; where R(z) ~ c/z the O(1)
# (ESDIRK: O(|z|)) terms cancel, so its result carries the summation error bound of s terms, s eps sum_i |b_i| |z|
# relative (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., (4.4)).  Measured at z = -1e6:
# kvaerno5 4.8e-11, kvaerno3 3.7e-10, ros2 4.1e-11; Radau IIA-3, Rodas4 and the SDIRKs stay below 1e-14.  The formula
# itself is checked to 12 digits for every Butcher tableau by the 50-digit stage solve.
@pytest.mark.parametrize("name", IMPLICIT)
@pytest.mark.parametrize("vary", ["rate", "step"])
def test_measured_one_step_sensitivity_equals_closed_form(name: str, vary: str) -> None:
    measured = measure(name, Z_POINTS, 1, vary)
    closed = closed_form(name, Z_POINTS, 1, vary)
    rel = np.abs(measured - closed) / np.abs(closed)
    scheme = get_scheme(name)
    if name in COMPILED_IMPLICIT:
        floor = scheme.stages * EPS * float(sum(abs(float(b)) for b in scheme.b)) * np.abs(Z_POINTS)
        assert np.all(rel <= np.maximum(1e-12, floor)), (name, rel, floor)
        if name in ("radau-iia-3", "rodas4", "sdirk2", "sdirk4"):
            assert np.all(rel <= 1e-12), (name, rel)
    else:
        assert np.all(rel <= 1e-12), (name, rel)
    if hasattr(scheme, "A"):  # the formula without double rounding: 50-digit stage solve of the same tableau
        stage = _measure_stage_solve(name, Z_POINTS, 1, vary, 50)
        assert np.all(np.abs(stage - closed) <= 1e-12 * np.abs(closed)), (name, stage, closed)


@pytest.mark.parametrize("name", ["radau-iia-3", "rodas4", "gauss-2", "lobatto-iiic-3", "bdf2", "bdf5"])
def test_n_step_sensitivity_equals_closed_form(name: str) -> None:
    z = np.array([-0.3, -3.0, -30.0, -3e3])
    measured = measure(name, z, 10, "rate")
    closed = closed_form(name, z, 10, "rate")
    assert np.all(np.abs(measured - closed) <= 1e-11 * np.abs(closed)), (name, measured, closed)


def test_closed_form_is_the_schemes_module_formula() -> None:
    """closed_form agrees with symsens.schemes.n_step_sensitivity (SymPy, exact) and the exact law at small z."""
    import sympy as sp

    from symsens.schemes import n_step_sensitivity
    from symsens.schemes._analysis import z as zs
    from symsens.schemes._decay import h, lam, p, y0

    scheme = get_scheme("sdirk4")
    expr = n_step_sensitivity(scheme, 3).subs({sp.Derivative(lam(p), p): 1, h: 1, y0: 1})
    for zz in (-0.5, -7.0, -1e3):
        assert closed_form("sdirk4", [zz], 3)[0] == pytest.approx(float(expr.subs(zs, zz)), rel=1e-13)
    assert exact([-2.0], 3)[0] == pytest.approx(3 * np.exp(-6.0), rel=1e-15)
    assert exact([-2.0], 3, "step")[0] == pytest.approx(-6 * np.exp(-6.0), rel=1e-15)


def test_fitted_exponents_equal_exact() -> None:
    names = ["radau-iia-3", "kvaerno5", "rodas4", "gauss-2", "lobatto-iiic-3", "trapezoid", "bdf1", "bdf2", "bdf4",
             "bdf6"]
    table = exponent_table(names)
    assert [e.scheme for e in table] == names
    for e in table:
        if e.scheme.startswith("bdf"):
            k = int(e.scheme[3:])
            assert e.exact == {"root": pytest.approx(-1.0 / k)}
            assert e.z_range == MULTISTEP_RANGE
        else:
            assert e.z_range == ONE_STEP_RANGE
            assert e.exact["zdR"] == e.exact["dR"] + 1
        assert e.max_deviation < 0.05, e
    lobatto = next(e for e in table if e.scheme == "lobatto-iiic-3")
    assert lobatto.exact == {"dR": -3.0, "zdR": -2.0}


def test_fit_exponent_recovers_a_power_law_and_rejects_empty_ranges() -> None:
    z = -np.logspace(0, 6, 13)
    assert fit_exponent(z, 7.0 * np.abs(z) ** -2.5) == pytest.approx(-2.5, abs=1e-12)
    with pytest.raises(ValueError, match="fewer than two"):
        fit_exponent(z, z, (1e8, 1e9))


def test_explicit_boundary_and_amplification() -> None:
    # |R(x)| = 1 at the end of the real stability interval: Euler -2, RK4 -2.78529356340528 (HW II, IV.2).
    assert stability_boundary("euler") == pytest.approx(-2.0, abs=1e-12)
    assert stability_boundary("rk4") == pytest.approx(-2.785293563405282, abs=1e-11)
    result = explicit_boundary("rk4", steps=(1, 5, 20))
    # measured n-step sensitivity equals n R^(n-1) R' (closed form) and exceeds the exact one by orders of magnitude
    for n, value in zip(result.steps, result.n_step_measured):
        assert value == pytest.approx(closed_form("rk4", [result.at], int(n))[0], rel=1e-11)
    amplification = np.abs(result.amplification)
    assert np.all(np.diff(amplification) > 0) and amplification[-1] > 1e20
    assert result.one_step_amplification > 20


def test_diagnosis_on_the_test_equation() -> None:
    """stiff-linear with λ = -50, h = 0.1 (z = -5), two steps: gradient = 2h R(z) R'(z) against 0.2 e^{-10}."""
    from symsens.schemes._decay import stability_numpy
    from symsens.vanishing import diagnose

    model = symsens.load_model("stiff-linear")
    d = diagnose(model, "lam", method="radau-iia-3", t_span=(0.0, 0.2), p={"lam": -50.0, "y0": 1.0},
                 fixed_step=0.1, t_eval=[0.2])
    R, dR = stability_numpy(get_scheme("radau-iia-3"))
    scheme_value = 2 * 0.1 * R(-5.0) * dR(-5.0)
    assert d.solver_gradient[0, 0] == pytest.approx(scheme_value, rel=1e-12)
    assert d.reference_gradient[0, 0] == pytest.approx(0.2 * np.exp(-10.0), rel=1e-7)
    assert d.measured_ratio == pytest.approx(abs(scheme_value) / (0.2 * np.exp(-10.0)), rel=1e-7)
    assert np.allclose(d.driven_z, -5.0) and np.allclose(d.stiffness, 5.0)
    assert d.predicted_scheme == pytest.approx(np.abs(5.0 * dR(-5.0)), rel=1e-13)
    assert d.predicted_exact == pytest.approx(5.0 * np.exp(-5.0), rel=1e-13)


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["vanishing", "--schemes", "backward-euler,radau-iia-3,bdf3", "--explicit", "euler", "--steps", "1",
                   "--json"])
    out, _ = capsys.readouterr()
    assert status == 0
    record = json.loads(out)
    assert set(record["exponents"]) == {"backward-euler", "radau-iia-3", "bdf3"}
    assert set(record["exponents"]["radau-iia-3"]) == {"dR", "zdR"}
    assert record["exponents"]["radau-iia-3"]["dR"] == pytest.approx(-2.0, abs=0.05)
    assert record["exponents"]["bdf3"]["root"] == pytest.approx(-1 / 3, abs=0.05)
    assert record["explicit"]["euler"]["boundary"] == pytest.approx(-2.0)


def test_cli_rejects_unknown_scheme_and_lonely_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vanishing", "--schemes", "radau-iia-9x"]) == 2
    assert "unknown scheme" in capsys.readouterr().err
    assert main(["vanishing", "--model", "stiff-linear"]) == 2
    assert "--model and --parameter" in capsys.readouterr().err


# --- the (k1, k3) fit of the stiff neural ODE -------------------------------------------------------------------
# Independent checks: the truth is known (data are the verified reference at k1 = 1, k3 = 1e4); a fixed-step
# gradient is checked against central differences of the same fixed-step loss; the reference is symsens.reference.

def _fit_source(label_start: str):
    from symsens.vanishing._neuralfit import fit_sources

    return next(s for s in fit_sources() if s.label.startswith(label_start))


def test_reference_sensitivities_is_the_verified_reference() -> None:
    from symsens.vanishing import reference_sensitivities

    model = symsens.load_model("stiff-linear")
    ref = reference_sensitivities(model, (0.0, 0.5), p={"lam": -40.0, "y0": 1.0}, t_eval=[0.1, 0.5],
                                  parameters=["lam"], digits=8)
    assert ref.source == "symsens.reference" and ref.verified and ref.verified_digits >= 8
    assert "verified" in ref.message
    t = np.array([0.1, 0.5])
    assert ref.y[:, 0] == pytest.approx(np.exp(-40.0 * t), rel=1e-8)
    assert ref.sensitivities[:, 0, 0] == pytest.approx(t * np.exp(-40.0 * t), rel=1e-8)


def test_fit_fixed_step_gradient_is_its_own_loss_gradient_with_a_wrong_minimum() -> None:
    """At |h k3| >> 1 the fixed-step gradient is exact for the fixed-step model, whose loss is minimal near
    k3 = 2.9e3, not at the true 1e4; the reference loss still decreases there."""
    from symsens.vanishing._neuralfit import (
        FIT_RATIO, REFERENCE_SOURCE, _evaluate, _loss_and_log_gradient, _truth, fit_times,
    )

    model = symsens.load_model("stiff-neural-ode")
    truth = _truth(FIT_RATIO)
    t_eval = fit_times(truth["k3"])
    data = _evaluate(REFERENCE_SOURCE, model, truth, t_eval)[0]
    fixed = _fit_source("radau-iia-3 h=")

    def loss(source, k3: float) -> tuple[float, float]:
        y, S, _, status, _ = _evaluate(source, model, {**truth, "k3": k3}, t_eval)
        assert status == "success"
        value, g = _loss_and_log_gradient(y, S, data, np.array([1.0, k3]))
        return value, g[1]

    value, g = loss(fixed, 4000.0)
    e = 1e-4
    fd = (loss(fixed, 4000.0 * np.exp(e))[0] - loss(fixed, 4000.0 * np.exp(-e))[0]) / (2 * e)
    assert g == pytest.approx(fd, rel=1e-5)
    low, mid, high = (loss(fixed, k)[0] for k in (2400.0, 2900.0, 3500.0))
    assert mid < low and mid < high
    ref_mid, ref_high = (loss(REFERENCE_SOURCE, k)[0] for k in (2900.0, 3500.0))
    assert ref_high < ref_mid


def test_fit_converges_with_the_reference_and_error_control_not_with_fixed_steps() -> None:
    from symsens.vanishing import fit_study
    from symsens.vanishing._neuralfit import REFERENCE_SOURCE

    sources = [REFERENCE_SOURCE, _fit_source("forward sens."), _fit_source("radau-iia-3 h="), _fit_source("bdf (NDF 1-5) h=")]
    fit = fit_study(iterations=14, sources=sources)
    rows = {row["source"]: row for row in fit.table()}
    reference, forward, radau, bdf = (rows[s.label] for s in sources)
    for row in (reference, forward, radau, bdf):
        assert row["status"] == "success"
        assert row["k1 final error"] < 1e-2                  # the slow rate converges with every source
    for row in (reference, forward):
        assert row["k3 final error"] < 1e-3 and row["k3 verdict"] == "converged"
        assert row["k1 final error"] < 1e-3
    # Radau IIA-3 at h = 0.02 (|h k3| = 45 .. 200): k3 never comes within a factor e^0.9 of the truth, and bounces.
    radau_errors = np.asarray(fit.runs[sources[2].label].errors)[:, 1]
    assert np.all(radau_errors > 0.9) and radau["k3 verdict"] == "oscillates"
    # BDF at h = 0.02: the k3 gradient is ~100x too small and of the wrong sign: k3 drifts slowly away.
    bdf_values = np.asarray(fit.runs[sources[3].label].values)[:, 1]
    assert bdf_values[-1] < bdf_values[0] and abs(np.log(bdf_values[-1] / bdf_values[0])) < 0.1
    assert bdf["k3 verdict"] == "stalled" and bdf["k3 start gradient error"] > 0.9
    assert min(fit.runs[REFERENCE_SOURCE.label].reference_digits) >= 8


def test_wrong_sign_list_in_the_theory_doc_matches_the_exact_analysis() -> None:
    """The theory page names the schemes whose R'(x) is negative as x -> -inf (the exact derivative e^x is
    positive); that list must equal the set decided by the exact leading term c x^e of R'."""
    import re

    from symsens.schemes import decay_asymptotics, get_scheme

    text = (Path(__file__).resolve().parents[1] / "docs" / "vanishing-gradients-theory.md").read_text()
    header = "| scheme | family | L |"
    block = text[text.index(header):]
    block = block[: block.index("\n\n")]
    table_rows = [line for line in block.splitlines()[2:] if line.startswith("| ")]
    table = {line.split("|")[1].strip() for line in table_rows if "(wrong)" in line}
    item = text[text.index("**The discrete gradient often has the wrong sign.**"):]
    item = item[: item.index("that sign is negative")]
    listed = set(re.findall(r"`([a-z0-9-]+)`", item)) - {"x"}
    assert listed == table
    for name in (line.split("|")[1].strip() for line in table_rows):
        coefficient, exponent = decay_asymptotics(get_scheme(name))["dR"]
        sign_at_minus_infinity = sp.sign(coefficient) * (-1) ** int(exponent)
        assert (sign_at_minus_infinity < 0) == (name in listed), name


def test_cli_shows_progress_and_takes_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["vanishing", "--schemes", "backward-euler", "--explicit", "euler", "--steps", "1",
                   "--model", "stiff-linear", "--parameter", "lam", "--scheme", "radau5"])
    out, err = capsys.readouterr()
    assert status == 0, err
    # every piece of work is announced on standard error: compile, the sweep, the exponents, the explicit scheme
    assert "4/4" in err and "backward-euler, 1 step" in err and "euler at the stability boundary" in err
    assert "radau" in out
