"""Numbers printed as the routine's real type (``S``): over dual numbers a constant scales or shifts a dual
instead of becoming one, and the numbers computed stay those of the all-``T`` printing.

The reference is a second build of the same equations with the former printing forced (every number a ``T``,
``_assemble._NUMBER_TYPE = "T"``): values must agree to the bit, partials exactly (only the sign of a zero
may differ).  The discrete-mode sensitivities are also checked against the continuous forward ones (a second
method), and the double routines against NumPy evaluation of the SymPy expressions.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen import ConstantTable, CxxPrinter, compile_model
from symsens.codegen import _assemble
from symsens.derive import jacobian, numpy_function, sensitivity_system
from symsens.model import exprel

PARAMETERS = ["a", "b", "k"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path_factory.getbasetemp() / "kernel-cache"
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(cache))


def _model(name: str) -> symsens.Model:
    """Three states whose equations hold every kind of number: integers, rationals, floats, negatives, pi,
    sqrt(2), exprel, constant exponents and bases, a constant over a state, max with a constant, a conditional
    with a constant branch, and explicit time dependence (so the implicit methods differentiate in t too)."""
    t = sp.Symbol("t")
    y1, y2, y3 = sp.symbols("y1 y2 y3")
    a, b, k = sp.symbols("a b k")
    rhs = [
        -a * y1 / 3 + 7 * b * y2 - sp.Float("0.1") * y1**2 + sp.pi * sp.sin(y2) / 4 - sp.Rational(5, 2) * y1 * y2
        + k * exprel(-y1 / 2) + sp.cos(t) / 5,
        (1 - y2) * sp.exp(-y1 / 5) * a - sp.sqrt(2) * y2 ** sp.Rational(3, 2) * b + k * 2 ** (-y1) / 10
        + 1 / (3 + y1**2) - sp.Max(y1 - 2, 0) / 7,
        k * (sp.Rational(5, 7) - y3) + sp.Piecewise((sp.Rational(1, 4), y1 > 1), (y1 / 4, True)) - 3 / (y3 + 2)
        + sp.Float("-2.5e-3") * y3**3,
    ]
    return symsens.Model(states=[y1, y2, y3], parameters={"a": 0.8, "b": 0.3, "k": 1.7}, rhs=rhs,
                         initial_conditions=[0.5, 0.4, 0.2], name=name)


def _solves(model: symsens.Model, method: str) -> dict[str, symsens.Solution]:
    common = dict(method=method, rtol=1e-7, atol=1e-9, t_eval=np.linspace(0.0, 4.0, 9), parameters=PARAMETERS)
    out = {"plain": symsens.solve(model, (0.0, 4.0), **common)}
    out["forward"] = symsens.solve(model, (0.0, 4.0), sensitivity="forward", **common)
    out["discrete"] = symsens.solve(model, (0.0, 4.0), sensitivity="discrete", **common)
    out["discrete, steps"] = symsens.solve(model, (0.0, 4.0), sensitivity="discrete", differentiate_steps=True,
                                           **common)
    for solution in out.values():
        solution.check()
    return out


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64)


def test_printer_writes_numbers_as_the_real_scalar_and_converts_where_t_is_needed() -> None:
    x, y = sp.symbols("x y")
    constants = ConstantTable()
    printer = CxxPrinter({x: "y[0]", y: "y[1]"}, constants, scalar="S")
    assert printer.doprint(x + 2 * y) == "(y[0] + (S(2)*y[1]))"
    assert printer.doprint(x**-2) == "(S(1)/symsens::ipow<2>(y[0]))"
    assert printer.doprint(x / 3) == "(y[0]/S(3))"
    assert printer.doprint(x ** sp.Rational(3, 2)) == "symsens::pow(y[0], c[0])"
    # A statement's value is a T: a number alone is converted.
    assert printer.doprint(sp.Integer(0)) == "T(0)"
    assert printer.doprint(sp.Rational(3, 2)) == "T(c[0])"
    assert printer.doprint(2 * sp.pi) == "T((S(2)*c[1]))"
    # min, max, heaviside and the branches of ?: take T on both sides.
    assert printer.doprint(sp.Max(x, 1)) in ("symsens::max(y[0], T(1))", "symsens::max(T(1), y[0])")
    assert printer.doprint(sp.Heaviside(x)) == "symsens::heaviside(y[0], T(c[2]))"
    assert printer.doprint(sp.Piecewise((1, x < 1), (y, True))) == (
        "((symsens::value(y[0]) < symsens::value(S(1))) ? T(1) : y[1])"
    )
    # A conditional between numbers is a number (the statement converts it), whatever its condition reads.
    assert printer.doprint(sp.Piecewise((0, x > 1), (sp.Rational(3, 2), True))) == (
        "T(((symsens::value(y[0]) > symsens::value(S(1))) ? S(0) : c[0]))"
    )
    with pytest.raises(ValueError, match="scalar"):
        CxxPrinter({}, constants, scalar="double")


def test_double_routines_agree_with_numpy() -> None:
    """The double routines of the model with many constants against NumPy evaluation of the SymPy expressions."""
    model = _model("constants-kernels")
    kernels = compile_model(model, PARAMETERS)
    system = sensitivity_system(model, PARAMETERS)
    p = np.array(model.parameter_values)
    args = [model.time, *model.states, *model.parameters]
    rng = np.random.default_rng(3)
    for y in ([0.5, 0.4, 0.2], [2.5, 0.9, -0.3], [-1.2, 0.1, 1.5]):
        y = np.array(y)
        t = 0.7
        f = numpy_function(model.rhs, args)(t, *y, *p).ravel()
        np.testing.assert_allclose(kernels.rhs(t, y, p), f, rtol=1e-14, atol=1e-15)
        J = numpy_function(list(jacobian(model)), args)(t, *y, *p).reshape(3, 3)
        np.testing.assert_allclose(kernels.jacobian(t, y, p), J, rtol=1e-14, atol=1e-15)
        u = np.concatenate([y, rng.standard_normal(3 * len(PARAMETERS))])
        aug_args = [model.time, *system.augmented_states, *model.parameters]
        g = numpy_function(list(system.augmented_rhs), aug_args)(t, *u, *p).ravel()
        np.testing.assert_allclose(kernels.augmented_rhs(t, u, p), g, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("method", ["rodas4"])
def test_solves_equal_the_all_t_printing(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain, forward and discrete (dual numbers; nested duals in rodas4's derivatives in t) solves of the
    new printing against the former one: the same values to the bit, the same partials exactly."""
    new = _solves(_model("constants"), method)
    monkeypatch.setattr(_assemble, "_NUMBER_TYPE", "T")
    old = _solves(_model("constants-all-t"), method)  # another name: another cache entry, another library
    old_code = _assemble.generate_model_source(_model("constants-all-t"), PARAMETERS).code
    monkeypatch.undo()
    new_code = _assemble.generate_model_source(_model("constants"), PARAMETERS).code
    assert "S(" not in old_code and "T(2)" in old_code and "S(2)" in new_code
    for mode, solution in new.items():
        reference = old[mode]
        assert np.array_equal(solution.t, reference.t)
        assert np.array_equal(_bits(solution.y), _bits(reference.y)), mode
        if mode.startswith("discrete"):  # the dual values are the plain program's, to the bit
            assert np.array_equal(_bits(solution.y), _bits(new["plain"].y)), mode
        if mode != "plain":
            assert np.isfinite(solution.sensitivities).all()
            # == treats -0.0 and 0.0 as equal: the only difference the scalar constants may make.
            assert np.array_equal(solution.sensitivities, reference.sensitivities), mode
    # The exact derivative of the discrete solve is close to the continuous sensitivities (a second method).
    scale = np.abs(new["forward"].sensitivities).max()
    np.testing.assert_allclose(new["discrete"].sensitivities, new["forward"].sensitivities, rtol=0,
                               atol=1e-5 * scale)
