"""The lean objective and gradient of a PEtab problem (symsens.petab._lean) against independent computations.

* The closed-form noise terms and their partials (:func:`symsens.petab._noise.nll_and_partials`) against SymPy's
  own derivatives of :func:`symsens.petab._noise.negative_log_likelihood`, for all six noise models.
* The lean chain rule against the audit's (``LossPlan.value_and_gradient``: the NLL intermediate differentiated
  as one SymPy expression), on the same solution: equal to the rounding of the sum.
* End to end, ``problem.objective``/``problem.gradient`` against :func:`symsens.gradient` on the problem's model
  and loss (the previous path), with pre-equilibration and every noise model (the synthetic problem of
  test_petab.py), for the forward, error-controlled forward and discrete modes.

The published problems' values (hand-computed NLL, finite differences, the collection's simulations) are checked
in test_petab.py, which runs the lean path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.audit._losses import loss_plan
from symsens.integrate import solve
from symsens.petab import load
from symsens.petab._noise import NOISE_CODES, negative_log_likelihood, nll_and_partials
from test_petab import _write_synthetic


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return load(_write_synthetic(tmp_path_factory.mktemp("petab_lean") / "ab"))


THETA = np.array([math.log10(0.7), math.log(0.4), 3.0, 1.2])


@pytest.mark.parametrize("distribution, transformation", list(NOISE_CODES))
def test_noise_terms_and_partials_against_sympy(distribution: str, transformation: str) -> None:
    y, s = sp.symbols("y s", positive=True)
    rng = np.random.default_rng(7)
    m = rng.uniform(0.2, 3.0, 6)
    h = rng.uniform(0.2, 3.0, 6)
    sigma = rng.uniform(0.1, 2.0, 6)
    value, d_y, d_sigma = nll_and_partials(m, h, sigma, NOISE_CODES[(distribution, transformation)])
    for r in range(6):
        expr = negative_log_likelihood(float(m[r]), y, s, distribution, transformation)
        point = {y: sp.Float(h[r], 30), s: sp.Float(sigma[r], 30)}
        exact = [float(e.subs(point).evalf(30)) for e in (expr, sp.diff(expr, y), sp.diff(expr, s))]
        assert [value[r], d_y[r], d_sigma[r]] == pytest.approx(exact, rel=1e-13, abs=1e-14)


def test_lean_chain_rule_equals_the_audit_chain_rule_on_one_solution(synthetic) -> None:
    """The same states and sensitivities through both chain rules: equal up to the rounding of the sum
    (bounded by 1e-13 of the sum of the absolute values of its terms)."""
    lean = synthetic._lean()
    states = synthetic.steady_states(THETA)
    full = synthetic._full_point(THETA, states)
    solution = solve(lean.solve_model, synthetic.model.t_span, p=full, t_eval=lean.times, parameters=lean.parameters,
                     sensitivity="forward", method="rodas4", rtol=1e-9, atol=1e-12).check()
    value, gradient = lean.value_and_gradient(solution.y, solution.sensitivities, full)
    plan = loss_plan(synthetic.model, synthetic.loss, lean.parameters, synthetic.model.t_span)
    expected_value, expected = plan.value_and_gradient(solution.t, solution.y, solution.sensitivities, full, None)
    assert value == pytest.approx(expected_value, rel=1e-14)
    contributions = plan.residual_contributions(solution.t, solution.y, solution.sensitivities, full, None)
    scale = np.abs(contributions).sum(axis=0) + np.abs(expected - contributions.sum(axis=0))
    assert np.all(np.abs(gradient - expected) <= 1e-13 * scale)
    # Nothing trivial: every parameter's gradient is far from 0 here.
    assert np.all(np.abs(expected) > 1e-3)


@pytest.mark.parametrize("method", ["forward", "forward-error-control", "discrete"])
def test_lean_gradient_equals_the_previous_path(synthetic, method: str) -> None:
    """``problem.gradient`` (lean) against :func:`symsens.gradient` on ``problem.model``/``problem.loss`` with the
    pre-equilibrated initial values as parameters, chained with the steady state's sensitivity as before."""
    states = synthetic.steady_states(THETA)
    full = synthetic._full_point(THETA, states)
    chosen = list(synthetic._gradient_parameters())
    previous = symsens.gradient(synthetic.model, synthetic.loss, p=full, parameters=chosen, method=method,
                                scheme="rodas4", rtol=1e-9, atol=1e-12).check()
    total = np.array(previous.gradient[:4])
    offset = 4
    for pre, steady in zip(synthetic.preequilibrations, states):
        for i, name in enumerate(pre.initial_parameters):
            if name is not None:
                total += previous.gradient[offset] * steady.sensitivity[i, :]
                offset += 1
    result = synthetic.gradient(THETA, method=method, scheme="rodas4", rtol=1e-9, atol=1e-12).check()
    assert result.method == method and result.scheme == "rodas4" and result.parameters == synthetic.parameter_names
    assert result.statistics["forward"]["accepted_steps"] == previous.statistics["forward"]["accepted_steps"]
    assert result.loss == pytest.approx(previous.loss, rel=1e-12)
    assert result.gradient == pytest.approx(total, rel=1e-12, abs=1e-14)


def test_lean_objective_equals_the_previous_path(synthetic) -> None:
    """``problem.objective`` (lean) against a plain solve of ``problem.model`` and its NLL intermediate summed over
    the measurement times (the previous path)."""
    full = synthetic._full_point(THETA, synthetic.steady_states(THETA))
    times = np.asarray(synthetic.loss.times)
    solution = solve(synthetic.model, synthetic.model.t_span, p=full, t_eval=times, method="rodas4", rtol=1e-9,
                     atol=1e-12).check()
    plan = loss_plan(synthetic.model, synthetic.loss, synthetic.parameter_names, synthetic.model.t_span)
    previous, _ = plan.value_and_gradient(solution.t, solution.y, None, full, None)
    assert synthetic.objective(THETA, scheme="rodas4", rtol=1e-9, atol=1e-12) == pytest.approx(previous, rel=1e-12)


def test_lean_gradient_refuses_bad_settings(synthetic) -> None:
    with pytest.raises(ValueError, match="scheme"):
        synthetic.gradient(THETA, scheme="no-such-scheme")
    with pytest.raises(ValueError, match="error estimate"):
        synthetic.gradient(THETA, scheme="rk4")
    with pytest.raises(ValueError, match="rtol"):
        synthetic.gradient(THETA, rtol=2.0)


def test_simulate_equals_the_observables_on_the_previous_path(synthetic) -> None:
    """``problem.simulate`` (lean) against each row's observable formula evaluated by SymPy on a plain solve of
    ``problem.model``."""
    full = synthetic._full_point(THETA, synthetic.steady_states(THETA))
    times = list(synthetic.loss.times)
    solution = solve(synthetic.model, synthetic.model.t_span, p=full, t_eval=times, method="rodas4", rtol=1e-9,
                     atol=1e-12).check()
    m = synthetic.model
    expected = []
    for row in synthetic.measurements:
        k = times.index(row.time)
        point = {**dict(zip(m.states, solution.y[k])), **dict(zip(m.parameters, full)), m.time: row.time}
        expected.append(float(row.simulated.xreplace(point)))
    assert synthetic.simulate(THETA, scheme="rodas4", rtol=1e-9, atol=1e-12) == pytest.approx(expected, rel=1e-13)
