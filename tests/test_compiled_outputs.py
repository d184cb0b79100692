"""A compiled solve evaluates the model's outputs with the routine compiled into its library (no SymPy): the
values agree with the outputs evaluated from the expressions (NumPy), with closed forms, and a model that differs
only in its outputs gets a library of its own."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import symsens
from symsens.integrate._solve import _CompiledOutputs, _OutputFunction


def _decay(outputs: dict[str, str]) -> symsens.Model:
    return symsens.Model(states=["x", "v"], parameters={"k": 1.5, "w": 2.0}, rhs=["-k*x", "-w*v"],
                         initial_conditions=["2", "1"], outputs=outputs, name="decay with outputs", t_span=(0.0, 1.0))


OUTPUTS = {"twice": "2*x", "mixed": "exp(-k*x)*sin(t) + v^2/(1 + x)", "branch": "x if x > 1 else -v"}


def test_compiled_outputs_agree_with_the_expressions_and_closed_forms() -> None:
    model = _decay(OUTPUTS)
    times = np.linspace(0.0, 1.0, 11)
    solution = symsens.solve(model, method="tsit5", rtol=1e-10, atol=1e-12, t_eval=times)
    assert isinstance(solution.output_function, _CompiledOutputs)
    compiled = solution.outputs
    from_expressions = _OutputFunction(model, np.array(model.parameter_values))(solution.t, solution.y)
    for row, name in enumerate(OUTPUTS):
        np.testing.assert_allclose(compiled[name], from_expressions[row], rtol=1e-14, atol=1e-15)
    x, v = 2 * np.exp(-1.5 * times), np.exp(-2.0 * times)
    np.testing.assert_allclose(compiled["twice"], 2 * x, rtol=1e-8)
    np.testing.assert_allclose(compiled["mixed"], np.exp(-1.5 * x) * np.sin(times) + v**2 / (1 + x), rtol=1e-8)
    np.testing.assert_allclose(compiled["branch"], np.where(x > 1, x, -v), rtol=1e-8)
    # At other parameter values, the outputs use those values.
    other = symsens.solve(model, p={"k": 0.5}, method="tsit5", rtol=1e-10, atol=1e-12, t_eval=times).outputs
    x = 2 * np.exp(-0.5 * times)
    np.testing.assert_allclose(other["mixed"], np.exp(-0.5 * x) * np.sin(times) + v**2 / (1 + x), rtol=1e-8)
    # A pickled solution evaluates its outputs from the expressions (a loaded library does not travel).
    copy = pickle.loads(pickle.dumps(solution))
    assert isinstance(copy.output_function, _OutputFunction)
    for name in OUTPUTS:
        np.testing.assert_allclose(copy.outputs[name], compiled[name], rtol=1e-14, atol=1e-15)


def test_a_model_differing_only_in_its_outputs_gets_its_own_library() -> None:
    first = symsens.solve(_decay({"y": "2*x"}), method="tsit5", rtol=1e-10, atol=1e-12, t_eval=[1.0])
    second = symsens.solve(_decay({"y": "3*x"}), method="tsit5", rtol=1e-10, atol=1e-12, t_eval=[1.0])
    assert first.outputs["y"][0] == pytest.approx(4 * np.exp(-1.5), rel=1e-8)
    assert second.outputs["y"][0] == pytest.approx(6 * np.exp(-1.5), rel=1e-8)


def test_outputs_of_a_failed_solve_cover_the_rows_it_reached() -> None:
    model = symsens.Model(states=["x"], parameters={"k": 1.0}, rhs=["x^2"], initial_conditions=["1"],
                          outputs={"inverse": "1/x"}, t_span=(0.0, 2.0))
    solution = symsens.solve(model, method="tsit5", max_steps=50)
    assert not solution.success
    np.testing.assert_allclose(solution.outputs["inverse"], 1 / solution.y[:, 0], rtol=1e-14)
