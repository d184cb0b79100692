"""The Model constructor: exact content and errors that name the problem."""

from __future__ import annotations

import math

import pytest
import sympy as sp

import symsens
from symsens import Model, ModelError


def test_model_from_sympy_symbols_with_assumptions_matches_names() -> None:
    x = sp.Symbol("x", real=True)
    k = sp.Symbol("k", positive=True)
    m1 = Model(states=[x], parameters={k: 2.0}, rhs=[-k * x], initial_conditions=[k])
    m2 = Model(states=["x"], parameters={"k": 2.0}, rhs=[-sp.Symbol("k") * sp.Symbol("x")], initial_conditions=["k"])
    assert m1 == m2
    assert m1.state_names == ("x",)
    assert m1.nominal_parameters == {"k": 2.0}
    assert m1.initial_conditions[0] == m1.symbol("k")


def test_intermediates_are_substituted_and_kept() -> None:
    m = Model(
        states=["V"],
        parameters={"g": 1.0, "E": -70.0},
        intermediates={"I": "g*(E - V)", "I2": "2*I"},
        rhs=["I2"],
        initial_conditions=[-65],
        outputs={"current": "I"},
    )
    V, g, E = m.symbol("V"), m.symbol("g"), m.symbol("E")
    assert sp.expand(m.rhs[0] - 2 * g * (E - V)) == 0
    assert [s.name for s, _ in m.intermediates] == ["I", "I2"]
    assert sp.expand(m.output("current") - g * (E - V)) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(states=["x", "x"], parameters={}, rhs=[1, 1], initial_conditions=[0, 0]), "duplicate name 'x'"),
        (dict(states=["x"], parameters={"x": 1.0}, rhs=[1], initial_conditions=[0]), "duplicate name 'x'"),
        (dict(states=["x"], parameters={"exp": 1.0}, rhs=[1], initial_conditions=[0]), "shadows a function"),
        (dict(states=["x"], parameters={"k": math.nan}, rhs=["k"], initial_conditions=[0]), "must be finite"),
        (dict(states=["x"], parameters={"k": math.inf}, rhs=["k"], initial_conditions=[0]), "must be finite"),
        (dict(states=["x"], parameters={"k": "1.0"}, rhs=["k"], initial_conditions=[0]), "must be a real number"),
        (dict(states=["x"], parameters={"k": True}, rhs=["k"], initial_conditions=[0]), "must be a real number"),
        (dict(states=["x", "y"], parameters={}, rhs=[1], initial_conditions=[0, 0]), "every state needs exactly one"),
        (dict(states=["x"], parameters={}, rhs=[sp.Symbol("z")], initial_conditions=[0]), "unknown symbol 'z'"),
        (dict(states=["x"], parameters={}, rhs=[1], initial_conditions=[sp.Symbol("x")]), "unknown symbol 'x' in initial"),
        (dict(states=["x"], parameters={}, rhs=[sp.S.One / 0], initial_conditions=[0]), "division by zero"),
        (dict(states=["x"], parameters={}, rhs=[sp.Function("f")(sp.Symbol("x"))], initial_conditions=[0]), "not supported"),
        (dict(states=["1x"], parameters={}, rhs=[1], initial_conditions=[0]), "not a valid identifier"),
        (dict(states=[], parameters={}, rhs=[], initial_conditions=[]), "at least one state"),
    ],
)
def test_model_errors_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        Model(**kwargs)


def test_with_parameter_values_checks_names_and_values() -> None:
    m = Model(states=["x"], parameters={"k": 1.0}, rhs=["-k*x"], initial_conditions=[1])
    assert m.with_parameter_values({"k": 3.0}).parameter_values == (3.0,)
    assert m.parameter_values == (1.0,)
    with pytest.raises(ModelError, match="unknown parameter 'kk'"):
        m.with_parameter_values({"kk": 1.0})
    with pytest.raises(ModelError, match="finite"):
        m.with_parameter_values({"k": float("nan")})


def test_load_model_unknown_name_suggests() -> None:
    with pytest.raises(ModelError, match="did you mean 'robertson'"):
        symsens.load_model("robertsen")
    with pytest.raises(ModelError, match="does not exist"):
        symsens.load_model("no/such/file.toml")
