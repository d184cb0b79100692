"""The audit of a PEtab problem with pre-equilibration audits the total derivative through the steady state.

The synthetic problem of tests/test_petab.py: A <-> B (``A' = -k1 u A + k2 B``, ``B' = -A'``, ``A(0) = T``,
``B(0) = 0``) with the conservation law ``A + B = T``, a copy pre-equilibrated at ``u = 1``
(``A* = k2 T / (k1 + k2)``) and then run at ``u = 2``, another copy without pre-equilibration, every PEtab noise
model.  Its negative log-likelihood is written out in SymPy there (``_closed_form``) and differentiated exactly
here, in 40-digit arithmetic: the independent value every check compares with.  The "frozen" gradient, the
initial values held at ``A*`` as constants, is what the audit reported before the composition; it differs from
the total derivative by far more than every tolerance here, so each comparison with the total derivative fails
if the composition is dropped.  (The same problem as tests/test_petab.py's, so the compiled kernels are shared.)
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.audit import ParameterMap
from symsens.petab import load
from symsens.petab._steady import extended_steady_state

# The problem's tables and its NLL in closed form (pytest puts tests/ on the path).
from test_petab import _closed_form, _write_synthetic

THETA = np.array([math.log10(0.7), math.log(0.4), 3.0, 1.2])   # log10 k1, ln k2, T, scale: not the nominal point
NAMES = ["log10_k1", "log_k2", "T", "scale"]


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    return load(_write_synthetic(tmp_path_factory.mktemp("petab_preeq") / "ab"))


def _exact_gradient(frozen: bool = False) -> np.ndarray:
    """The closed-form gradient at THETA (the doubles, exactly) in 40-digit arithmetic; ``frozen``: with the
    pre-equilibrated copy starting from the constants A*, T - A* (dx*/dtheta left out)."""
    th, nll, a_star = _closed_form()
    point = {v: sp.Float(float(x), 40) for v, x in zip(th, THETA)}
    if frozen:
        a = float(sp.N(a_star.subs(point), 40))
        th, nll, _ = _closed_form(frozen=(a, float(THETA[2]) - a))
    return np.array([float(sp.N(sp.diff(nll, v).subs(point), 40)) for v in th])


def test_extended_steady_state_against_closed_form(problem) -> None:
    """x* and dx*/dtheta from the 40/60-digit Newton and implicit-function runs, against A* = k2 T/(k1 + k2)
    differentiated exactly: within the bounds they report, which are at the level of double rounding."""
    (pre,) = problem.preequilibrations
    states = [problem.model.states[i] for i in pre.states]
    estimated = problem.model.parameters[: len(problem.parameters)]
    (double,) = problem.steady_states(THETA)
    refined = extended_steady_state(pre.rhs, states, estimated, pre.initial_conditions, THETA, double.x,
                                    time=problem.model.time)
    th, _, a_star = _closed_form()
    with mpmath.workdps(50):
        point = {v: sp.Float(float(x), 60) for v, x in zip(th, THETA)}
        exact_x = [sp.N(a_star.subs(point), 50), sp.N((th[2] - a_star).subs(point), 50)]
        exact_s = [[sp.N(sp.diff(e, v).subs(point), 50) for v in th] for e in (a_star, th[2] - a_star)]
        for i in range(2):
            assert abs(mpmath.mpf(refined.x_text[i]) - mpmath.mpf(str(exact_x[i]))) <= refined.x_text_error[i]
            assert abs(refined.x[i] - float(exact_x[i])) <= refined.x_error[i] <= 2.3e-16 * abs(float(exact_x[i]))
            for j in range(4):
                error = abs(mpmath.mpf(float(refined.sensitivity[i, j])) - mpmath.mpf(str(exact_s[i][j])))
                assert error <= refined.sensitivity_error[i, j] <= 2.3e-16 * max(abs(float(exact_s[i][j])), 1e-300)
    assert refined.x_text_error.max() < 1e-30 and refined.residual < 1e-50
    assert refined.conservation_laws.count == 1


def test_compose_reference_bound_holds() -> None:
    """g J_ref and its bound against exact rational arithmetic: the bound covers every corner of the boxes
    |g - g_true| <= b, |J_ref - J_true| <= E (the product is bilinear, so its extremes are at corners)."""
    rng = np.random.default_rng(7)
    m, P = 5, 3
    g = rng.normal(size=m) * 10.0 ** rng.integers(-3, 3, size=m)
    b = np.abs(g) * 10.0 ** rng.uniform(-12, -6, size=m)
    J = rng.normal(size=(m, P))
    E = np.abs(J) * 10.0 ** rng.uniform(-15, -10, size=(m, P))
    J[1, 2] = E[1, 2] = 0.0  # an independent pair: no term
    parameter_map = ParameterMap(("a", "b", "c"), np.zeros(P), tuple(f"q{i}" for i in range(m)), J, J, E)
    composed, bound = parameter_map.compose_reference(g, b)
    for j in range(P):
        exact = sum(Fraction(float(g[i])) * Fraction(float(J[i, j])) for i in range(m))
        assert abs(Fraction(float(composed[j])) - exact) <= abs(exact) * Fraction(2) ** -53
        for corner in range(2 ** (2 * m)):
            signs = [1 if corner >> k & 1 else -1 for k in range(2 * m)]
            true = sum((Fraction(float(g[i])) + signs[i] * Fraction(float(b[i])))
                       * (Fraction(float(J[i, j])) + signs[m + i] * Fraction(float(E[i, j]))) for i in range(m))
            assert abs(Fraction(float(composed[j])) - true) <= Fraction(float(bound[j]))
    # An unknown bound on a term that enters makes the composed bound unknown; one that does not enter does not.
    b[1] = np.inf
    _, bound = parameter_map.compose_reference(g, b)
    assert np.isinf(bound[0]) and np.isinf(bound[1]) and np.isfinite(bound[2])


def test_audit_is_the_total_derivative(problem) -> None:
    """symsens.audit(**problem.audit_arguments(theta)): the reference equals the closed-form total derivative
    within its verified error bound (at least the 8 digits asked for); every method's row is within 1e-5 of it,
    the sensitivity methods' accurate; the report says the Jacobian is applied; problem.gradient agrees."""
    arguments = problem.audit_arguments(THETA)
    assert arguments["parameters"] == NAMES
    assert arguments["parameter_map"].model_parameters[4:] == ("A_pre_stim_preequilibrated",
                                                               "B_pre_stim_preequilibrated")
    total = problem.gradient(THETA, rtol=1e-11).check()
    report = symsens.audit(**arguments, methods=["forward", "discrete", "finite-differences"], schemes=["rodas4"],
                           tolerances=[1e-8], reference_digits=8,
                           external={"problem.gradient": {"gradient": total.gradient, "loss": total.loss}})
    exact = _exact_gradient()
    frozen = _exact_gradient(frozen=True)
    assert report.parameters == tuple(NAMES)
    assert np.allclose(report.parameter_values, THETA, rtol=0, atol=0)
    reference = report._references[0]
    assert report.reference_verified and np.all(report.reference_digits >= 8)
    assert np.all(np.abs(report.reference_gradient - exact) <= reference.error_bound)
    assert np.all(reference.error_bound <= 1e-8 * np.abs(exact))
    # The composition matters: without dx*/dtheta the gradient is far away in the three parameters that move the
    # steady state (scale does not).
    assert np.all(np.abs(frozen - exact)[:3] > 0.2 * np.abs(exact)[:3])  # 23 %, 63 %, 59 %
    assert report.parameter_map is not None and "pre-equilibration Jacobian is applied" in report.parameter_map
    assert "pre-equilibration Jacobian is applied" in report.summary()
    assert len(report.results) == 4
    for row in report.results[:3]:
        # Central differences at rtol 1e-8 keep a truncation error of about 1e-6: a fair verdict, not tested.
        assert row["method"] == "finite-differences" or row["category"] == "accurate", row["verdict"]
        assert np.max(np.abs(row["gradient"] - exact)) <= 1e-5 * np.linalg.norm(exact), row["method"]
    # problem.gradient composes in the same way: its converged gradient is the audit's reference, and as an
    # external gradient (over the estimated parameters) it is judged accurate.
    assert np.max(np.abs(total.gradient - report.reference_gradient)) <= 1e-7 * np.linalg.norm(exact)
    external = report.results[3]
    assert external["method"] == "problem.gradient" and external["category"] == "accurate", external["verdict"]
    forward = problem.gradient(THETA, method="forward", scheme="rodas4", rtol=1e-8)
    row = report.result("forward", "rodas4", 1e-8)
    assert np.max(np.abs(forward.gradient - row["gradient"])) <= 1e-9 * np.linalg.norm(exact)


def test_cli_audit_at_a_set_point(problem, capsys) -> None:
    """`symsens audit PROBLEM.yaml --set ...`: the steady state and its Jacobian follow the point."""
    from symsens.cli import main

    assignments = [f"{name}={float(value)!r}" for name, value in zip(NAMES, THETA)]
    assert main(["audit", problem.source, "--methods", "forward", "--schemes", "rodas4", "--tolerances", "1e-8",
                 "--json", *(a for item in assignments for a in ("--set", item))]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"] == NAMES and "pre-equilibration Jacobian" in report["parameter_map"]
    exact = _exact_gradient()
    assert np.all(np.abs(np.array(report["reference_gradient"]) - exact) <= 1e-8 * np.abs(exact))
    assert main(["audit", problem.source, "--set", "A_pre_stim_preequilibrated=1.0"]) == 2
    assert "--set: 'A_pre_stim_preequilibrated' is not an estimated parameter" in capsys.readouterr().err


def test_parameter_map_checks(problem) -> None:
    arguments = problem.audit_arguments(THETA)
    moved = dict(arguments, p=np.array(arguments["p"]) * np.array([1, 1, 1.01, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"`p`: T = 3.03, but `parameter_map` was made at T = 3; make the map"):
        symsens.audit(**moved, methods=["forward"], schemes=["rodas4"], tolerances=[1e-6])
    with pytest.raises(ValueError, match=r"`parameters`: 'k1' is not a parameter of the parameter map"):
        symsens.audit(**dict(arguments, parameters=["k1"]), methods=["forward"], schemes=["rodas4"])
    with pytest.raises(ValueError, match=r"cannot be combined with `tools`"):
        symsens.audit(**arguments, methods=["forward"], schemes=["rodas4"], tools=["diffrax-forward"])
    with pytest.raises(ValueError, match=r"`jacobian` must have shape \(6, 4\)"):
        ParameterMap(tuple(NAMES), THETA, arguments["parameter_map"].model_parameters, np.eye(4), np.eye(4),
                     np.zeros((4, 4)))
