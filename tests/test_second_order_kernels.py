"""The generated second-order kernels (:mod:`symsens.codegen._second_order`) of the implicit discrete adjoints.

Each kernel is checked against an independent computation: the lambdified SymPy kernels of the NumPy Rosenbrock
adjoint (``_SecondOrderKernels``: the same derivatives evaluated by another code path), the closed-form Jacobian
and ``f_t`` of a forced oscillator, and central finite differences of ``<jbar, J> + <qbar, f_t>`` in ``y`` and
``p`` (which use the compiled Jacobian and ``f_t`` only, never the second-order kernel).
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.codegen import _second_order
from symsens.codegen._printer import CodegenError
from symsens.codegen._second_order import compile_second_order, loaded_second_order
from symsens.integrate._discrete_adjoint_rosenbrock import _SecondOrderKernels


def forced_model() -> symsens.Model:
    return symsens.Model(states=["x", "v"], parameters={"a": 1.3, "w": 2.0, "k": 40.0},
                         rhs=["v", "-k*x - a*v + sin(w*t)*x^2 + cos(w*t)"], initial_conditions=["1", "0"],
                         name="forced", t_span=(0.0, 2.0))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _points(model: symsens.Model, rng: np.random.Generator, count: int) -> list[tuple[float, np.ndarray]]:
    """States near the model's resting state (Hodgkin–Huxley) or a typical state (the oscillator), each entry
    perturbed by 20 %, and times in [0, 2]."""
    base = {"hodgkin-huxley": np.array([-60.0, 0.05, 0.6, 0.32]), "forced": np.array([0.7, -1.1])}[model.name]
    return [(float(rng.uniform(0.0, 2.0)), base * (1.0 + 0.2 * rng.normal(size=base.size))) for _ in range(count)]


def _weighted(library, t: float, y: np.ndarray, p: np.ndarray, jbar: np.ndarray, qbar: np.ndarray) -> float:
    value = float(jbar @ library.jacobian_nonzeros(t, y, p))
    return value + (0.0 if library.autonomous else float(qbar @ library.time_derivative(t, y, p)))


CASES = [("hodgkin-huxley", ("g_Na", "E_K", "C_m")), ("forced", ("a", "w", "k"))]


@pytest.mark.parametrize("name, parameters", CASES)
def test_kernels_equal_the_lambdified_sympy_kernels(name: str, parameters: tuple[str, ...]) -> None:
    model = forced_model() if name == "forced" else symsens.load_model(name)
    library = loaded_second_order(model, parameters)
    reference = _SecondOrderKernels(model, parameters)
    assert library is loaded_second_order(model, parameters)          # remembered per model object
    assert (library.n_states, library.n_parameters, library.n_chosen) == (model.n_states, model.n_parameters,
                                                                          len(parameters))
    assert list(zip(library.rows.tolist(), library.cols.tolist())) == reference.pattern
    assert library.nnz == len(reference.pattern) and library.autonomous == reference.autonomous
    assert library.rows.dtype.itemsize == np.dtype("long").itemsize and library.rows.flags.c_contiguous
    assert len(library.pointers) == 3 and all(library.pointers)
    p = np.asarray(model.parameter_values, dtype=float)
    rng = np.random.default_rng(11)
    for t, y in _points(model, rng, 5):
        J = reference.jacobian(t, y, list(p))
        assert _relative(library.jacobian(t, y, p), J) < 1e-13
        ft = reference.time_derivative(t, y, list(p))
        if reference.autonomous:
            np.testing.assert_array_equal(library.time_derivative(t, y, p), 0.0)
        else:
            assert _relative(library.time_derivative(t, y, p), ft) < 1e-13
        jbar, qbar = rng.normal(size=library.nnz), rng.normal(size=model.n_states)
        gy, gp = library.second_order(t, y, p, jbar, qbar)
        ry, rp = reference.second_order(t, y, list(p), jbar, qbar if not reference.autonomous else 0.0 * qbar)
        assert gy.shape == (model.n_states,) and gp.shape == (len(parameters),)
        assert _relative(np.concatenate([gy, gp]), np.concatenate([ry, rp])) < 1e-13


@pytest.mark.parametrize("name, parameters", CASES)
def test_second_order_equals_central_differences(name: str, parameters: tuple[str, ...]) -> None:
    """``d/dy`` and ``d/dp`` of ``<jbar, J> + <qbar, f_t>`` by central differences of the compiled ``J`` and
    ``f_t`` (step ``1e-5`` relative: observed agreement ``~1e-10``)."""
    model = forced_model() if name == "forced" else symsens.load_model(name)
    library = loaded_second_order(model, parameters)
    p = np.asarray(model.parameter_values, dtype=float)
    chosen = [model.parameter_names.index(q) for q in parameters]
    rng = np.random.default_rng(3)
    for t, y in _points(model, rng, 3):
        jbar, qbar = rng.normal(size=library.nnz), rng.normal(size=model.n_states)
        gy, gp = library.second_order(t, y, p, jbar, qbar)
        fd = []
        for i in range(model.n_states):
            step = 1e-5 * max(abs(y[i]), 1e-2)
            up, down = y.copy(), y.copy()
            up[i] += step
            down[i] -= step
            fd.append((_weighted(library, t, up, p, jbar, qbar) - _weighted(library, t, down, p, jbar, qbar))
                      / (2 * step))
        for j in chosen:
            step = 1e-5 * max(abs(p[j]), 1e-2)
            up, down = p.copy(), p.copy()
            up[j] += step
            down[j] -= step
            fd.append((_weighted(library, t, y, up, jbar, qbar) - _weighted(library, t, y, down, jbar, qbar))
                      / (2 * step))
        assert _relative(np.concatenate([gy, gp]), np.array(fd)) < 1e-8


def test_forced_oscillator_closed_form() -> None:
    """``J = [[0, 1], [-k + 2 sin(w t) x, -a]]``, ``f_t = [0, w cos(w t) x^2 - w sin(w t)]``, and the
    second-order gradient of ``<jbar, J> + <qbar, f_t>`` written out by hand."""
    model = forced_model()
    library = loaded_second_order(model, ("a", "w", "k"))
    a, w, k = 1.3, 2.0, 40.0
    p = np.array([a, w, k])
    t, (x, v) = 0.7, (0.9, -0.4)
    y = np.array([x, v])
    s, c = np.sin(w * t), np.cos(w * t)
    assert [tuple(e) for e in zip(library.rows.tolist(), library.cols.tolist())] == [(0, 1), (1, 0), (1, 1)]
    np.testing.assert_allclose(library.jacobian(t, y, p), [[0.0, 1.0], [-k + 2 * s * x, -a]], rtol=1e-15)
    np.testing.assert_allclose(library.time_derivative(t, y, p), [0.0, w * c * x * x - w * s], rtol=1e-15)
    jbar, qbar = np.array([0.3, -1.7, 0.8]), np.array([2.5, 0.6])
    gy, gp = library.second_order(t, y, p, jbar, qbar)
    # d/dx: jbar1 * 2 s + qbar1 * 2 w c x;  d/da: -jbar2;  d/dw: jbar1 2 t c x + qbar1 (c x^2 - s - w t s x^2 - w t c)
    np.testing.assert_allclose(gy, [jbar[1] * 2 * s + qbar[1] * 2 * w * c * x, 0.0], rtol=1e-14, atol=1e-15)
    dw = jbar[1] * 2 * t * c * x + qbar[1] * (c * x * x - w * t * s * x * x - s - w * t * c)
    np.testing.assert_allclose(gp, [-jbar[2], dw, -jbar[1]], rtol=1e-14)


def test_warm_load_runs_no_sympy_and_checks_its_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second process (here: the uncached function) finds the library through the model-level index and reads
    the pattern from it, without generating code; bad input is refused by name."""
    model = forced_model()
    first = loaded_second_order(model, ("a", "w", "k"))

    def refuse(*_: object) -> None:
        raise AssertionError("generated code on a warm hit")

    monkeypatch.setattr(_second_order, "second_order_source", refuse)
    warm = compile_second_order.__wrapped__(model, ("a", "w", "k"))
    assert warm.library_path == first.library_path and warm.nnz == first.nnz
    np.testing.assert_array_equal(warm.rows, first.rows)
    np.testing.assert_array_equal(warm.cols, first.cols)
    with pytest.raises(CodegenError, match="unknown 'nope'"):
        compile_second_order(model, ("a", "nope"))
    with pytest.raises(CodegenError, match="repeated"):
        compile_second_order(model, ("a", "a"))
    with pytest.raises(ValueError, match="`jbar_nonzeros` must have shape \\(3,\\)"):
        first.second_order(0.0, np.zeros(2), np.ones(3), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="`p` must have shape \\(3,\\)"):
        first.jacobian(0.0, np.zeros(2), np.ones(2))


def test_a_jacobian_without_non_zeros() -> None:
    """``y' = a cos(t)``: no structural non-zero in ``J``; only ``f_t`` carries second derivatives."""
    model = symsens.Model(states=["y"], parameters={"a": 2.0}, rhs=["a*cos(t)"], initial_conditions=["0"],
                          name="quadrature", t_span=(0.0, 1.0))
    library = loaded_second_order(model, ("a",))
    assert library.nnz == 0 and not library.autonomous and library.rows.shape == (0,)
    np.testing.assert_array_equal(library.jacobian(0.3, np.ones(1), np.array([2.0])), [[0.0]])
    np.testing.assert_allclose(library.time_derivative(0.3, np.ones(1), np.array([2.0])), [-2.0 * np.sin(0.3)],
                               rtol=1e-15)
    gy, gp = library.second_order(0.3, np.ones(1), np.array([2.0]), np.zeros(0), np.array([1.5]))
    np.testing.assert_array_equal(gy, [0.0])
    np.testing.assert_allclose(gp, [-1.5 * np.sin(0.3)], rtol=1e-15)
