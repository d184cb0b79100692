"""Code generation: printer strings, compiled kernels against SymPy/NumPy, the cache, errors, the export."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen import CodegenError, ConstantTable, CxxPrinter, build_library, compile_model, write_standalone
from symsens.derive import jacobian, numpy_function, parameter_jacobian, sensitivity_system
from symsens.model import exprel


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # One cache per test session keeps tests independent of the user's cache but shares compiles between tests.
    cache = tmp_path_factory.getbasetemp() / "kernel-cache"
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(cache))


def _printer(*names: str) -> tuple[CxxPrinter, list[sp.Symbol], ConstantTable]:
    symbols = [sp.Symbol(n) for n in names]
    constants = ConstantTable()
    return CxxPrinter({s: f"y[{i}]" for i, s in enumerate(symbols)}, constants), symbols, constants


def test_printer_exact_strings() -> None:
    printer, (x, y), constants = _printer("x", "y")
    assert printer.doprint(x + 2 * y) == "(y[0] + (T(2)*y[1]))"
    assert printer.doprint(x - 2 * y) == "(y[0] - (T(2)*y[1]))"
    assert printer.doprint(-x / (2 * y)) == "(-(y[0]/(T(2)*y[1])))"
    assert printer.doprint(x**3) == "symsens::ipow<3>(y[0])"
    assert printer.doprint(x**-2) == "(T(1)/symsens::ipow<2>(y[0]))"
    assert printer.doprint(sp.sqrt(x)) == "symsens::sqrt(y[0])"
    assert printer.doprint(x / y) == "(y[0]/y[1])"
    assert printer.doprint(x - y) == "(y[0] - y[1])"
    assert printer.doprint(sp.exp(-x)) == "symsens::exp((-y[0]))"
    assert printer.doprint(exprel(x)) == "symsens::exprel(y[0])"
    assert printer.doprint(sp.diff(exprel(x), x, 2)) == "symsens::exprel_derivative<2>(y[0])"
    assert printer.doprint(sp.Rational(33, 25) * x) == "(c[0]*y[0])"
    assert constants.initialisers() == [("1.32", "1.32")]
    assert printer.doprint(sp.Piecewise((x, x < 1), (y, True))) == (
        "((symsens::value(y[0]) < symsens::value(T(1))) ? y[0] : y[1])"
    )
    assert printer.doprint(sp.Max(x, y)) in ("symsens::max(y[0], y[1])", "symsens::max(y[1], y[0])")


def test_printer_constants_are_exact_to_40_digits() -> None:
    printer, (x,), constants = _printer("x")
    printer.doprint(sp.Rational(2, 3) * x + sp.pi)
    table = dict(zip(constants.values, constants.initialisers()))
    assert table[sp.Rational(2, 3)][1] == "6.666666666666666666666666666666666666667e-1"
    assert table[sp.pi][1].startswith("3.14159265358979323846264338327950288")


def test_printer_refuses_unknown_nodes() -> None:
    printer, (x,), _ = _printer("x")
    with pytest.raises(CodegenError, match="has no storage"):
        printer.doprint(sp.Symbol("z"))
    with pytest.raises(CodegenError, match="no C\\+\\+ implementation"):
        printer.doprint(sp.gamma(x))


@pytest.mark.parametrize("name", symsens.examples())
def test_compiled_kernels_match_numpy_evaluation(name: str) -> None:
    """Every generated routine equals the lambdified SymPy expression (an independent evaluation path)."""
    model = symsens.load_model(name)
    parameters = list(model.parameter_names[:3])
    kernels = compile_model(model, parameters)
    system = sensitivity_system(model, parameters)
    p = np.array(model.parameter_values)
    rng = np.random.default_rng(1)
    y0 = numpy_function(model.initial_conditions, model.parameters)(*p).ravel()
    np.testing.assert_allclose(kernels.initial_conditions(p), y0, rtol=1e-14, atol=1e-300)
    S0 = numpy_function(list(system.initial_sensitivities), model.parameters)(*p).reshape(model.n_states, -1)
    np.testing.assert_allclose(kernels.initial_sensitivities(p), S0, rtol=1e-14, atol=1e-300)
    args = [model.time, *model.states, *model.parameters]
    for _ in range(3):
        y = y0 + 0.05 * np.maximum(np.abs(y0), 0.1) * rng.standard_normal(model.n_states) + 0.01
        t = 0.37
        expected = numpy_function(model.rhs, args)(t, *y, *p).ravel()
        np.testing.assert_allclose(kernels.rhs(t, y, p), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
        J = numpy_function(list(jacobian(model)), args)(t, *y, *p).reshape(model.n_states, model.n_states)
        np.testing.assert_allclose(kernels.jacobian(t, y, p), J, rtol=1e-12, atol=1e-12 * np.abs(J).max())
        Fp = numpy_function(list(parameter_jacobian(model, parameters)), args)(t, *y, *p).reshape(model.n_states, -1)
        np.testing.assert_allclose(kernels.parameter_jacobian(t, y, p), Fp, rtol=1e-12, atol=1e-12 * (np.abs(Fp).max() + 1e-300))
        u = np.concatenate([y, rng.standard_normal(model.n_states * len(parameters))])
        aug_args = [model.time, *system.augmented_states, *model.parameters]
        g = numpy_function(list(system.augmented_rhs), aug_args)(t, *u, *p).ravel()
        np.testing.assert_allclose(kernels.augmented_rhs(t, u, p), g, rtol=1e-11, atol=1e-11 * np.abs(g).max())


def test_removable_singularity_of_hodgkin_huxley_rates() -> None:
    """At V = -40 and V = -55 the exprel-form rates and their derivatives are finite and equal the limits."""
    model = symsens.load_model("hodgkin-huxley")
    kernels = compile_model(model, ["g_Na"])
    p = np.array(model.parameter_values)
    for V in (-40.0, -55.0):
        y = np.array([V, 0.1, 0.5, 0.3])
        f = kernels.rhs(0.0, y, p)
        J = kernels.jacobian(0.0, y, p)
        assert np.all(np.isfinite(f)) and np.all(np.isfinite(J))
        # The same entries at V +- 1e-4 (central difference) agree: no spike at the singular point.
        plus, minus = y.copy(), y.copy()
        plus[0] += 1e-4
        minus[0] -= 1e-4
        fd = (kernels.rhs(0.0, plus, p) - kernels.rhs(0.0, minus, p)) / 2e-4
        np.testing.assert_allclose(J[:, 0], fd, rtol=1e-6, atol=1e-9)
    # alpha_m(-40) = 1: dm/dt at m = 0, V = -40 is alpha_m(-40) (beta_m term vanishes with m).
    y = np.array([-40.0, 0.0, 0.5, 0.3])
    assert kernels.rhs(0.0, y, p)[1] == pytest.approx(1.0, rel=1e-15)


def test_cache_hit_skips_generation_and_compilation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    model = symsens.load_model("robertson")
    first = compile_model(model)
    mtime = first.library_path.stat().st_mtime_ns
    import symsens.codegen._kernels as kernels_module

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("generation ran although the library was cached")

    monkeypatch.setattr(kernels_module, "generate_model_source", no_generation)
    second = compile_model(model)
    assert second.library_path == first.library_path
    assert second.library_path.stat().st_mtime_ns == mtime
    p = np.array(model.parameter_values)
    np.testing.assert_array_equal(second.rhs(0.0, [1, 0, 0], p), first.rhs(0.0, [1, 0, 0], p))


def _compile_in_subprocess(args: tuple[str, str]) -> str:
    cache, name = args
    os.environ["SYMSENS_CACHE_DIR"] = cache
    kernels = compile_model(symsens.load_model(name))
    return str(kernels.library_path)


def test_two_processes_compiling_the_same_model_both_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        paths = pool.map(_compile_in_subprocess, [(str(tmp_path), "van-der-pol")] * 2)
    assert paths[0] == paths[1]
    assert Path(paths[0]).exists()
    leftovers = [p for p in Path(paths[0]).parent.iterdir() if p.name.startswith(".build-")]
    assert leftovers == []


def test_missing_compiler_error_names_the_way_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(CodegenError, match='no C\\+\\+ compiler found .*backend="numpy"'):
        compile_model(symsens.load_model("stiff-linear"))


def test_compile_failure_reports_compiler_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    with pytest.raises(CodegenError, match="(?s)compiling broken.cpp failed.*error"):
        build_library({"broken.cpp": "int f( { return 0; }\n"}, "broken.cpp")


def test_standalone_export_compiles_and_agrees(tmp_path: Path) -> None:
    model = symsens.load_model("robertson")
    files = write_standalone(model, tmp_path)
    names = sorted(p.name for p in files)
    assert names == ["robertson.cpp", "robertson.h", "robertson_model.hpp", "robertson_runtime.hpp"]
    header = (tmp_path / "robertson.h").read_text()
    assert "void robertson_rhs(double t, const double* y, const double* p, double* out);" in header
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "robertson.h"\n'
        "int main(void) { double y[3] = {0.5, 1e-5, 0.2}, p[3] = {0.04, 3e7, 1e4}, f[3];\n"
        '  robertson_rhs(0.0, y, p, f); printf("%.17g %.17g %.17g\\n", f[0], f[1], f[2]); return 0; }\n'
    )
    subprocess.run(["c++", "-std=c++17", "-c", "robertson.cpp", "-o", "robertson.o"], cwd=tmp_path, check=True)
    subprocess.run(["cc", "-c", "main.c", "-o", "main.o"], cwd=tmp_path, check=True)
    subprocess.run(["c++", "main.o", "robertson.o", "-o", "main"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout
    values = np.array([float(v) for v in out.split()])
    y, p = np.array([0.5, 1e-5, 0.2]), np.array([0.04, 3e7, 1e4])
    expected = [-p[0] * y[0] + p[2] * y[1] * y[2], p[0] * y[0] - p[2] * y[1] * y[2] - p[1] * y[1] ** 2, p[1] * y[1] ** 2]
    np.testing.assert_allclose(values, expected, rtol=1e-15)


def test_two_models_in_one_process_keep_their_own_constants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: inline-template static tables must not be shared between loaded libraries."""
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    a = symsens.Model(states=["x"], parameters={}, rhs=["7/100 + 0*x"], initial_conditions=["7/100"], name="a")
    b = symsens.Model(states=["x"], parameters={}, rhs=["1/20 + 0*x"], initial_conditions=["1/20"], name="b")
    ka, kb = compile_model(a), compile_model(b)
    assert ka.initial_conditions([])[0] == 0.07
    assert kb.initial_conditions([])[0] == 0.05
    assert kb.rhs(0.0, [0.0], [])[0] == 0.05


def test_compiled_exprel_and_derivatives_against_mpmath() -> None:
    """exprel and its first three derivatives, compiled (series in x^2 inside |x| < 2, closed forms outside),
    equal mpmath's 50-digit d^n/dx^n x/(e^x - 1) (at 0: the Bernoulli numbers, B_1 = -1/2) on both sides of the
    series radius; the model's rhs carries each derivative as exprel_derivative<n>(X)."""
    import mpmath

    from symsens.model import exprel

    X = sp.Symbol("X", real=True)
    model = symsens.Model(
        states=["X", "d0", "d1", "d2", "d3"], parameters={"one": 1.0},
        rhs=[sp.S.Zero, *(sp.diff(exprel(X), X, n) for n in range(4))], initial_conditions=[0, 0, 0, 0, 0],
        name="exprel-check",
    )
    kernels = compile_model(model)
    p = np.array([1.0])
    with mpmath.workdps(50):
        for value in (-30.0, -5.0, -2.0000001, -1.9999999, -0.7, -1e-3, 0.0, 1e-9, 0.3, 1.25, 1.9999999, 2.5, 8.0, 40.0):
            f = kernels.rhs(0.0, np.array([value, 0, 0, 0, 0]), p)[1:]
            for n in range(4):
                if value == 0.0:
                    exact = float(mpmath.bernoulli(n))
                else:
                    exact = float(mpmath.diff(lambda s: s / mpmath.expm1(s), mpmath.mpf(value), n))
                assert f[n] == pytest.approx(exact, rel=2e-13, abs=1e-300), (value, n, f[n], exact)
