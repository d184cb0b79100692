"""What gets compiled: one solver library per (model, sensitivity parameters, scheme) runs every gradient mode,
and the iteration matrix of the forward-sensitivity system comes from J and F_p over colour duals.

Compiles are counted (``symsens.codegen._build.compile_count``), never timed.  Each test uses a model of its own
(a unique name), so nothing another test loaded or cached can serve it.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen._build import compile_count
from symsens.integrate._compiled import plain_solver

PARAMETERS = ["a", "b", "c"]


def forced(name: str) -> symsens.Model:
    """A small non-autonomous, nonlinear model whose Jacobian and F_p depend on the states (so the coupling
    blocks d(J S + F_p)/dy of the forward-sensitivity system are non-trivial and t enters f_t)."""
    x, y, z = sp.symbols("x y z")
    a, b, c = sp.symbols("a b c")
    t = sp.Symbol("t")
    rhs = [
        -a * x + y * z + sp.sin(2 * t),
        b * x - y ** 2 + c * sp.cos(t) * x,
        -c * z ** 2 + a * x * y + b * t * x / (1 + z ** 2),
    ]
    return symsens.Model(states=[x, y, z], parameters={"a": 1.3, "b": 0.7, "c": 0.4}, rhs=rhs,
                         initial_conditions=[0.5, 1.0, -0.3], name=name, t_span=(0.0, 2.0))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path / "kernels"))
    return tmp_path


def test_one_library_serves_every_mode(fresh_cache) -> None:  # type: ignore[no-untyped-def]
    """Forward, the three discrete variants and the plain solve: one compile between them, and the plain solve
    is bit-identical to the discrete mode with the values-only norm (same steps, same values)."""
    model = forced("compile-units-every-mode")
    before = compile_count()
    common = dict(method="tsit5", rtol=1e-8, atol=1e-10, parameters=PARAMETERS)
    forward = symsens.solve(model, sensitivity="forward", **common)
    discrete = symsens.solve(model, sensitivity="discrete", **common)
    symsens.solve(model, sensitivity="discrete", sensitivity_in_norm=True, **common).check()
    symsens.solve(model, sensitivity="discrete", differentiate_steps=True, **common).check()
    plain = symsens.solve(model, **common)
    assert compile_count() - before == 1
    for solution in (forward, discrete, plain):
        solution.check()
    np.testing.assert_array_equal(plain.stats.step_sizes, discrete.stats.step_sizes)
    np.testing.assert_array_equal(plain.y, discrete.y)
    assert plain.sensitivities is None and plain.parameters == ()
    # Continuous and discrete sensitivities of the same solve are close (both converge to dy/dp).
    np.testing.assert_allclose(discrete.sensitivities[-1], forward.sensitivities[-1], rtol=1e-5, atol=1e-7)


def test_plain_solve_is_the_same_program_in_every_library(fresh_cache) -> None:  # type: ignore[no-untyped-def]
    """A plain solve before any sensitivity solve compiles the plain-only library; after one, it runs in the
    sensitivity library (no compile).  Both give bit-identical steps and values (Rosenbrock, non-autonomous:
    J and f_t enter every step)."""
    model = forced("compile-units-plain")
    before = compile_count()
    first = symsens.solve(model, method="rodas4", rtol=1e-7, atol=1e-9, parameters=PARAMETERS)
    assert compile_count() - before == 1
    assert plain_solver(model, PARAMETERS, "rodas4").n_sensitivity_parameters == 0
    symsens.solve(model, method="rodas4", rtol=1e-7, atol=1e-9, parameters=PARAMETERS, sensitivity="forward").check()
    assert compile_count() - before == 2
    shared = plain_solver(model, PARAMETERS, "rodas4")
    assert shared.n_sensitivity_parameters == len(PARAMETERS)
    again = symsens.solve(model, method="rodas4", rtol=1e-7, atol=1e-9, parameters=PARAMETERS)
    assert compile_count() - before == 2
    first.check()
    np.testing.assert_array_equal(again.stats.step_sizes, first.stats.step_sizes)
    np.testing.assert_array_equal(again.y, first.y)


@pytest.mark.parametrize("linear_solver", ["dense", "sparse"])
def test_rosenbrock_forward_equals_discrete(fresh_cache, linear_solver: str) -> None:  # type: ignore[no-untyped-def]
    """Fixed steps of Rodas4: the forward sensitivities (Rodas4 on (y, S), whose Jacobian blocks
    d(J S + F_p)/dy come from J and F_p over colour duals and whose g_t from them over a dual in t) equal the
    discrete ones (forward-mode AD through the Rodas4 steps on y: J over duals in p, f_t over nested duals).
    A Rosenbrock method with the exact Jacobian commutes with differentiation, so the two agree to rounding;
    a wrong coupling block or time derivative would make them differ at O(h)."""
    model = forced(f"compile-units-rosenbrock-{linear_solver}")
    common = dict(method="rodas4", fixed_step=0.02, parameters=PARAMETERS, linear_solver=linear_solver)
    forward = symsens.solve(model, sensitivity="forward", **common)
    discrete = symsens.solve(model, sensitivity="discrete", **common)
    forward.check()
    discrete.check()
    np.testing.assert_array_equal(forward.t, discrete.t)
    scale = np.max(np.abs(discrete.sensitivities))
    assert np.max(np.abs(forward.sensitivities - discrete.sensitivities)) <= 1e-11 * scale
    # and the discrete derivative is the derivative: central differences of the same fixed-step solve
    p = np.array(model.parameter_values, dtype=float)
    for j, name in enumerate(PARAMETERS):
        step = 1e-6 * p[model.parameter_names.index(name)]
        values = []
        for sign in (1, -1):
            shifted = p.copy()
            shifted[model.parameter_names.index(name)] += sign * step
            values.append(symsens.solve(model, p=shifted, method="rodas4", fixed_step=0.02,
                                        linear_solver=linear_solver).y[-1])
        difference = (values[0] - values[1]) / (2 * step)
        np.testing.assert_allclose(discrete.sensitivities[-1, :, j], difference, rtol=1e-6, atol=1e-8)
