"""What a first use compiles: the discrete (dual-number) modes of a large model are a library of their own, built
on their first use, and a library's large routine instantiations compile in translation units of their own,
at most one compiler per core at a time.

The size rules are lowered for a small model (``_SEPARATE_DUAL_SIZE``, ``_APART_OPERATIONS``), so every part of
the split runs in a few seconds of compiling.  Compiles are counted (``symsens.codegen._build.compile_count``),
never timed; the reference for every number is the same model built as one library with every routine inlined
where it is used (the layout before the split), which must agree bit for bit.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen import _build
from symsens.codegen._build import build_library, compile_count
from symsens.integrate import _compiled

PARAMETERS = ["a", "b", "c"]


def stiff(name: str) -> symsens.Model:
    """Three nonlinear states, non-autonomous, with states in J and F_p (non-trivial coupling blocks)."""
    x, y, z = sp.symbols("x y z")
    a, b, c = sp.symbols("a b c")
    t = sp.Symbol("t")
    rhs = [
        -a * x + y * z + sp.sin(2 * t),
        b * x - y ** 2 + c * sp.cos(t) * x,
        -c * z ** 2 + a * x * y + b * t * x / (1 + z ** 2),
    ]
    return symsens.Model(states=[x, y, z], parameters={"a": 1.3, "b": 0.7, "c": 0.4}, rhs=rhs,
                         initial_conditions=[0.5 * a, 1.0, -0.3], name=name, t_span=(0.0, 2.0))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path / "kernels"))
    return tmp_path


def _modes(model: symsens.Model) -> list[symsens.Solution]:
    common = dict(method="bdf", rtol=1e-7, atol=1e-9, parameters=PARAMETERS)
    return [
        symsens.solve(model, sensitivity="forward", **common),
        symsens.solve(model, **common),
        symsens.solve(model, sensitivity="discrete", **common),
        symsens.solve(model, sensitivity="discrete", sensitivity_in_norm=True, **common),
        symsens.solve(model, sensitivity="discrete", differentiate_steps=True, **common),
    ]


def test_forward_first_use_builds_no_dual_library(fresh_cache, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Forward sensitivities and the plain solve: one library without the discrete modes; the first discrete
    solve builds their library, later discrete variants reuse it.  Every result equals bit for bit the one of
    the same model built as a single library with no routine compiled apart, and the plain solve equals the
    discrete mode with the values-only norm (same steps, same values)."""
    whole = _modes(stiff("compile-split-whole"))  # the default rules keep a 3-state model in one library

    monkeypatch.setattr(_compiled, "_SEPARATE_DUAL_SIZE", 0)
    monkeypatch.setattr(_compiled, "_APART_OPERATIONS", 0)
    model = stiff("compile-split-parts")
    before = compile_count()
    forward = symsens.solve(model, method="bdf", rtol=1e-7, atol=1e-9, parameters=PARAMETERS, sensitivity="forward")
    assert compile_count() - before == 1
    first = _compiled.compiled_solver(model, PARAMETERS, "bdf")
    assert first.modes == _compiled._FORWARD_MODES
    assert not first.runs(_compiled.MODE_DISCRETE) and first.runs(_compiled.MODE_FORWARD)
    dual_purpose = _compiled._solver_purpose_of(model, "bdf", "auto", _compiled._DUAL_MODES)[3]
    assert _compiled.cached_library(model, PARAMETERS, dual_purpose) is None

    split = [forward] + _modes(model)[1:]
    assert compile_count() - before == 2  # the plain solve ran in the forward library; the discrete modes built one
    second = _compiled.discrete_solver(model, PARAMETERS, "bdf")
    assert second.modes == _compiled._DUAL_MODES and second.library_path != first.library_path
    assert _compiled.cached_library(model, PARAMETERS, dual_purpose) is not None
    # The routine instantiations were compiled in units of their own (the driver calls them there).
    assert "apart<" in _compiled._units(_source(model), "bdf", _compiled._FORWARD_MODES)["model_units.hpp"]

    for a, b in zip(whole, split):
        a.check()
        b.check()
        np.testing.assert_array_equal(a.stats.step_sizes, b.stats.step_sizes)
        np.testing.assert_array_equal(a.y, b.y)
        if a.sensitivities is None:
            assert b.sensitivities is None
        else:
            np.testing.assert_array_equal(a.sensitivities, b.sensitivities)
    plain, discrete = split[1], split[2]
    np.testing.assert_array_equal(plain.stats.step_sizes, discrete.stats.step_sizes)
    np.testing.assert_array_equal(plain.y, discrete.y)
    # Continuous and discrete sensitivities of the same solve are close (both converge to dy/dp).
    np.testing.assert_allclose(discrete.sensitivities[-1], forward.sensitivities[-1], rtol=1e-4, atol=1e-6)


def _source(model: symsens.Model):  # type: ignore[no-untyped-def]
    from symsens.codegen._assemble import generate_model_source

    return generate_model_source(model, PARAMETERS)


def test_at_most_one_compiler_per_core(fresh_cache, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Six units with two cores allowed: never more than two compilers alive at once, and all six linked."""
    monkeypatch.setattr(_build, "compiler_jobs", lambda: 2)
    started: list[subprocess.Popen] = []  # type: ignore[type-arg]
    alive_at_start: list[int] = []
    start = _build._start_compiler

    def counting(command):  # type: ignore[no-untyped-def]
        alive_at_start.append(sum(process.poll() is None for process in started))
        process = start(command)
        started.append(process)
        return process

    monkeypatch.setattr(_build, "_start_compiler", counting)
    sources = {f"u{k}.cpp": f'extern "C" __attribute__((visibility("default"))) int f{k}() {{ return {k}; }}\n' for k in range(6)}
    path = build_library(sources, list(sources))
    assert len(alive_at_start) == 7  # six compilers and the link
    assert max(alive_at_start) <= 1  # at each start, at most one other was still running
    import ctypes

    library = ctypes.CDLL(str(path))
    assert [getattr(library, f"f{k}")() for k in range(6)] == list(range(6))
