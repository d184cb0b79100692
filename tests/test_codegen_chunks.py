"""Long generated routines are split into chunks (separate, never-inlined functions sharing temporaries through a
scratch array) to keep the compiler's time linear in the model's size.  Chunking only reorders and splits the
statements, so a chunked library must give bit-identical results to the unchunked one in every mode.

A tiny chunk budget (``symsens.codegen._assemble.CHUNK_OPERATIONS``) forces a small model into many chunks, so the
test compiles in seconds; the unchunked library of the same model is the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen import _assemble
from symsens.codegen import compile_model
from symsens.codegen._assemble import generate_model_source

PARAMETERS = ["a", "b", "c"]


def oscillators(name: str) -> symsens.Model:
    """Five coupled nonlinear states, explicitly time-dependent (f_t and the dual-in-t routines are used), with
    an initial condition depending on a parameter (initial sensitivities are non-zero) and shared
    subexpressions between rows (common-subexpression temporaries cross chunk boundaries)."""
    y = sp.symbols("y0:5")
    a, b, c, t = sp.symbols("a b c t")
    coupling = sp.exp(-b * y[0] ** 2) * sp.sin(t)
    rhs = [
        -a * y[0] + coupling * y[1] + c * y[4] / (1 + y[3] ** 2),
        a * y[0] - y[1] ** 3 / 3 + coupling + sp.cos(2 * t) * c,
        b * (y[1] - y[2]) + c * y[0] * y[3] - sp.tanh(y[2]),
        -c * y[3] + a * y[2] ** 2 / (1 + y[3] ** 2) + coupling * y[4],
        b * y[3] - a * y[4] * (1 + y[0] ** 2) + sp.sqrt(1 + y[2] ** 2),
    ]
    return symsens.Model(states=list(y), parameters={"a": 1.1, "b": 0.6, "c": 0.35}, rhs=rhs,
                         initial_conditions=[0.4 * a, 1.0, -0.3, 0.2, 0.5], name=name, t_span=(0.0, 3.0))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path / "kernels"))
    return tmp_path


def _solve_all_modes(model: symsens.Model) -> list[symsens.Solution]:
    common = dict(method="rodas4", rtol=1e-7, atol=1e-9, parameters=PARAMETERS, linear_solver="sparse")
    return [
        symsens.solve(model, **common),
        symsens.solve(model, sensitivity="forward", **common),
        symsens.solve(model, sensitivity="discrete", **common),
        symsens.solve(model, sensitivity="discrete", sensitivity_in_norm=True, **common),
        symsens.solve(model, sensitivity="discrete", differentiate_steps=True, **common),
    ]


def test_chunked_routines_compute_the_same_numbers(fresh_cache, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every mode (plain, forward, the three discrete variants) of Rodas4 with the sparse iteration matrix (J,
    f_t, and the coupling blocks from J and F_p over dual numbers): the same steps, states and sensitivities,
    bit for bit, with every routine in one function and with every routine in many chunks."""
    whole_model, chunked_model = oscillators("chunks-whole"), oscillators("chunks-split")
    whole_code = generate_model_source(whole_model, PARAMETERS).code
    assert "struct chunk" not in whole_code
    whole = _solve_all_modes(whole_model)

    monkeypatch.setattr(_assemble, "CHUNK_OPERATIONS", 6)
    chunked_code = generate_model_source(chunked_model, PARAMETERS).code
    # Every routine is split, and temporaries pass between chunks.
    for routine in ("rhs", "jacobian_values", "parameter_jacobian", "augmented_rhs"):
        body = chunked_code[chunked_code.index(f"inline void {routine}("):]
        body = body[:body.index("\n}\n")]
        assert body.count("static void part") >= 3, routine
    assert "T w[" in chunked_code
    chunked = _solve_all_modes(chunked_model)

    for a, b in zip(whole, chunked):
        a.check()
        b.check()
        np.testing.assert_array_equal(a.stats.step_sizes, b.stats.step_sizes)
        np.testing.assert_array_equal(a.y, b.y)
        if a.sensitivities is None:
            assert b.sensitivities is None
        else:
            np.testing.assert_array_equal(a.sensitivities, b.sensitivities)
    # The plain solve and the discrete mode with the values-only norm stay the same program.
    np.testing.assert_array_equal(chunked[0].y, chunked[2].y)
    # And the sensitivities are right, not merely equal: forward and discrete agree to the tolerances.
    np.testing.assert_allclose(chunked[1].sensitivities[-1], chunked[2].sensitivities[-1], rtol=1e-4, atol=1e-6)


def test_many_shared_temporaries_live_in_a_thread_local_array(fresh_cache, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past a bound, the temporaries shared between chunks move off the stack into a thread-local array; the
    compiled routines (double) still equal the unchunked ones bit for bit at random points."""
    whole = compile_model(oscillators("chunks-kernels-whole"), PARAMETERS)
    monkeypatch.setattr(_assemble, "CHUNK_OPERATIONS", 6)
    monkeypatch.setattr(_assemble, "_STACK_SHARED", 0)
    model = oscillators("chunks-kernels-thread-local")
    assert "static thread_local T w[" in generate_model_source(model, PARAMETERS).code
    chunked = compile_model(model, PARAMETERS)
    rng = np.random.default_rng(7)
    n = model.n_states
    for _ in range(5):
        t, y, p = rng.uniform(0, 3), rng.uniform(-1, 1, n), rng.uniform(0.2, 2, 3)
        u = rng.uniform(-1, 1, n * (len(PARAMETERS) + 1))
        np.testing.assert_array_equal(whole.rhs(t, y, p), chunked.rhs(t, y, p))
        np.testing.assert_array_equal(whole.jacobian(t, y, p), chunked.jacobian(t, y, p))
        np.testing.assert_array_equal(whole.parameter_jacobian(t, y, p), chunked.parameter_jacobian(t, y, p))
        np.testing.assert_array_equal(whole.augmented_rhs(t, u, p), chunked.augmented_rhs(t, u, p))
        np.testing.assert_array_equal(whole.initial_sensitivities(p), chunked.initial_sensitivities(p))
