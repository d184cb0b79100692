"""Sparse linear algebra of the implicit schemes: symbolic Jacobian pattern, fixed-pattern LU, staggered solves.

Dense and sparse solves take the same steps on these problems and agree to rounding; the generated code grows
with the Jacobian's non-zeros, not with n^2; a tiny pivot of the unpivoted sparse LU is a reported failure.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen import compile_model
from symsens.codegen._assemble import generate_model_source
from symsens.codegen._sparsity import plan_sparsity, symbolic_lu
from symsens.derive import jacobian, numpy_function, parameter_jacobian
from symsens.integrate._compiled import MODE_DISCRETE, MODE_FORWARD, MODE_PLAIN, OptionsStruct, compiled_solver

IMPLICIT = ["bdf", "radau5", "rodas4", "kvaerno5"]   # one scheme of every implicit family


def brusselator(N: int) -> symsens.Model:
    """The 1-D Brusselator of Hairer & Wanner II, Sect. IV.1 (2N states, interleaved u_i, v_i)."""
    u, v = sp.symbols(f"u0:{N}"), sp.symbols(f"v0:{N}")
    A, B, a = sp.symbols("A B alpha")
    c = a * (N + 1) ** 2
    rhs = []
    for i in range(N):
        ul, ur = (u[i - 1] if i else sp.Integer(1)), (u[i + 1] if i < N - 1 else sp.Integer(1))
        vl, vr = (v[i - 1] if i else sp.Integer(3)), (v[i + 1] if i < N - 1 else sp.Integer(3))
        rhs.append(A + u[i] ** 2 * v[i] - (B + 1) * u[i] + c * (ul - 2 * u[i] + ur))
        rhs.append(B * u[i] - u[i] ** 2 * v[i] + c * (vl - 2 * v[i] + vr))
    y0 = [x for i in range(N) for x in (1.0 + math.sin(2 * math.pi * (i + 1) / (N + 1)), 3.0)]
    return symsens.Model(states=[s for pair in zip(u, v) for s in pair], parameters={"A": 1.0, "B": 3.0, "alpha": 0.02},
                         rhs=rhs, initial_conditions=y0, name=f"brusselator-{N}", t_span=(0.0, 10.0))


def chain(n: int) -> symsens.Model:
    """y_0' = -k y_0^2, y_i' = k (y_{i-1}^2 - y_i^2): a bidiagonal Jacobian."""
    y, k = sp.symbols(f"y0:{n}"), sp.Symbol("k")
    rhs = [-k * y[0] ** 2] + [k * (y[i - 1] ** 2 - y[i] ** 2) for i in range(1, n)]
    return symsens.Model(states=list(y), parameters={"k": 1.0}, rhs=rhs, initial_conditions=[1.0] + [0.0] * (n - 1),
                         name=f"chain-{n}")


PROBLEMS = {
    "brusselator": (brusselator(32), ["A", "B", "alpha"], (0.0, 10.0), 1e-6, 1e-6),
    "robertson": (symsens.load_model("robertson"), None, (0.0, 40.0), 1e-6, 1e-10),
}


def _options(rtol: float, atol: float) -> OptionsStruct:
    return OptionsStruct(rtol=rtol, atol=atol, first_step=0.0, max_step=0.0, min_step=0.0, max_steps=100_000,
                         tangents_in_norm=0, differentiate_steps=0, fixed_step=0, step_onto_outputs=0, n_replay=0,
                         replay_steps=None, safety=0.9, factor_min=0.2, factor_max=10.0, beta1=0.7 / 4,
                         beta2=0.4 / 4, record_steps=1, outputs_at_steps=0, step_capacity=0)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("method", IMPLICIT)
def test_sparse_and_dense_agree(problem: str, method: str) -> None:
    """Plain, forward and discrete solves: same steps, results equal to rounding (1e-11 relative); discrete
    mode's values bit-identical to the plain solve's with either linear solver."""
    model, parameters, span, rtol, atol = PROBLEMS[problem]
    parameters = list(parameters or model.parameter_names)
    p = np.array(model.parameter_values, dtype=float)
    t_eval = np.array([span[1]])
    results = {}
    for linear in ("dense", "sparse"):
        solver = compiled_solver(model, parameters, method, linear)
        assert solver.sparse == (linear == "sparse")
        runs = {}
        for mode in (MODE_PLAIN, MODE_FORWARD, MODE_DISCRETE):
            status, y, sens, times, sizes, stats = solver(mode, p, None, None, span[0], span[1], t_eval,
                                                          _options(rtol, atol))
            assert status == 0, (linear, mode, status)
            runs[mode] = (y[-1], sens[-1] if sens is not None else None, sizes)
        # The discrete mode runs the plain program on values: same steps, same values, bit for bit.
        assert np.array_equal(runs[MODE_PLAIN][0], runs[MODE_DISCRETE][0])
        assert np.array_equal(runs[MODE_PLAIN][2], runs[MODE_DISCRETE][2])
        results[linear] = runs
    for mode in (MODE_PLAIN, MODE_FORWARD, MODE_DISCRETE):
        dense, sparse = results["dense"][mode], results["sparse"][mode]
        assert len(dense[2]) == len(sparse[2])
        assert _relative(sparse[0], dense[0]) < 1e-11
        if mode != MODE_PLAIN:
            assert _relative(sparse[1], dense[1]) < 1e-10


def test_generated_pattern_and_values() -> None:
    """The pattern printed into the C++ is the symbolic one (non-zero exact derivatives); the compiled Jacobian,
    assembled from the non-zeros, equals symsens.derive.jacobian at random points and is zero elsewhere."""
    model = brusselator(6)
    J = jacobian(model)
    n = model.n_states
    symbolic = {(i, k) for i in range(n) for k in range(n) if J[i, k] != 0}
    # ... which is the free-symbol pattern here (no derivative cancels).
    assert symbolic == {(i, k) for i in range(n) for k in range(n) if model.states[k] in model.rhs[i].free_symbols}
    source = generate_model_source(model, ["A"])
    code = source.code

    def table(name: str) -> list[int]:
        body = re.search(rf"inline const int\* {name}\(\) \{{\s*static const int table\[\d+\] = \{{([^}}]*)\}}", code)
        assert body, name
        return [int(x) for x in body.group(1).replace("\n", " ").split(",") if x.strip()]

    row_ptr, columns = table("row_ptr"), table("columns")
    printed = {(i, columns[q]) for i in range(n) for q in range(row_ptr[i], row_ptr[i + 1])}
    assert printed == symbolic
    kernels = compile_model(model, ["A"])
    rng = np.random.default_rng(3)
    args = [model.time, *model.states, *model.parameters]
    J_numeric = numpy_function(list(J), args)
    for _ in range(5):
        y, p = rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, model.n_parameters)
        expected = np.asarray(J_numeric(0.0, *y, *p), dtype=float).reshape(n, n)
        got = kernels.jacobian(0.0, y, p)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
        assert all(got[i, k] == 0.0 for i in range(n) for k in range(n) if (i, k) not in symbolic)


def test_generated_code_grows_with_the_nonzeros() -> None:
    """A 500-state chain: the generated C++ is linear in the non-zeros (about twice the 250-state chain's), far
    below n^2 bytes, and its Jacobian routine has one assignment per non-zero."""
    small, large = generate_model_source(chain(250), []), generate_model_source(chain(500), [])
    nnz = 2 * 500 - 1
    assert len(large.code) < 1.1 * 2 * len(small.code)
    # ~200 bytes per non-zero (rhs, Jacobian values, patterns, LU pattern); one "out[k] = T(0);" per dense entry
    # alone would be 15 n^2 = 3.75 MB.
    assert len(large.code) < 300 * nnz
    values = large.code[large.code.index("inline void jacobian_values"):]
    values = values[:values.index("\n}\n")]
    assert values.count("    out[") == nnz


def test_symbolic_lu_fill_and_ordering() -> None:
    """Arrow matrix (dense first row and column): the natural order fills completely, reversed it does not;
    the plan of the Brusselator keeps the band (fill within 3x the non-zeros)."""
    n = 8
    arrow = [set(range(n)) if i == 0 else {0, i} for i in range(n)]
    full = symbolic_lu(arrow, n)
    assert full is not None and sum(map(len, full)) == n * n
    reversed_arrow = [{i, n - 1} if i < n - 1 else set(range(n)) for i in range(n)]
    assert sum(map(len, symbolic_lu(reversed_arrow, n))) == 3 * n - 2
    model = brusselator(32)
    plan = plan_sparsity(jacobian(model), parameter_jacobian(model, ["A"]), model.states)
    assert plan.available and plan.lu_nnz <= 3 * (plan.nnz + model.n_states)


def test_tiny_pivot_is_a_reported_failure() -> None:
    """I - h gamma J with a zero first pivot and no pivoting: the sparse LU refuses it and a fixed-step solve
    fails with a Newton failure (never a wrong answer); the pivoted dense LU solves the same steps."""
    y1, y2 = sp.symbols("y1 y2")
    a = sp.Symbol("a")
    # J = [[1, a], [a, 0]]; rodas4 factors (1/(h gamma)) I - J with gamma = 0.25: h = 4 gives [[0, -a], [-a, 1]].
    model = symsens.Model(states=[y1, y2], parameters={"a": 1.0}, rhs=[y1 + a * y2, a * y1],
                          initial_conditions=[1.0, 0.0], name="zero-pivot")
    sparse = symsens.solve(model, (0.0, 8.0), method="rodas4", fixed_step=4.0, linear_solver="sparse")
    assert sparse.status == "newton failure"
    with pytest.raises(symsens.IntegrationError):
        sparse.check()
    dense = symsens.solve(model, (0.0, 8.0), method="rodas4", fixed_step=4.0, linear_solver="dense")
    assert dense.status == "success"


def test_linear_solver_argument_errors_name_it() -> None:
    model = symsens.load_model("robertson")
    for bad in ("lu", "", None, 1):
        with pytest.raises(ValueError, match="`linear_solver`"):
            symsens.solve(model, (0.0, 1.0), method="bdf", linear_solver=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`linear_solver`"):
        symsens.solve(model, (0.0, 1.0), method="bdf", backend="numpy", linear_solver="sparse")


def _boolean_fill(entries: list[tuple[int, int]], order: list[int], n: int) -> int:
    """Entries of L + U of the permuted pattern, by elimination on a boolean matrix (independent of symbolic_lu)."""
    position = {old: new for new, old in enumerate(order)}
    pattern = np.eye(n, dtype=bool)
    for i, k in entries:
        pattern[position[i], position[k]] = True
    for k in range(n):
        rows = np.nonzero(pattern[k + 1:, k])[0] + k + 1
        pattern[np.ix_(rows, np.arange(k + 1, n))] |= pattern[k, k + 1:]
    return int(pattern.sum())


def _grid_model(k: int) -> symsens.Model:
    """Reaction-diffusion on a k x k grid: u' = D (sum of neighbours - 4 u) - r u^2, zero outside."""
    u = [[sp.Symbol(f"u_{i}_{j}") for j in range(k)] for i in range(k)]
    D, r = sp.symbols("D r")
    rhs = []
    for i in range(k):
        for j in range(k):
            around = sum((u[a][b] for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
                          if 0 <= a < k and 0 <= b < k), sp.Integer(0))
            rhs.append(D * (around - 4 * u[i][j]) - r * u[i][j] ** 2)
    y0 = [1.0 + 0.1 * ((3 * i + 5 * j) % 7) for i in range(k) for j in range(k)]
    return symsens.Model(states=[s for row in u for s in row], parameters={"D": 50.0, "r": 1.0}, rhs=rhs,
                         initial_conditions=y0, name=f"grid-{k}")


def test_minimum_degree_ordering_is_chosen_where_it_fills_less() -> None:
    """On a 2-D grid, reverse Cuthill–McKee leaves a wide band and minimum degree fills less (George & Liu 1981):
    the plan keeps minimum degree, its LU pattern has exactly the entries of elimination on a boolean matrix in
    its order, and sparse solves with forward sensitivities agree with the pivoted dense ones."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    model = _grid_model(6)
    n = model.n_states
    J = jacobian(model)
    entries = sorted(key for key, value in J.todok().items() if value != 0)
    plan = plan_sparsity(J, parameter_jacobian(model, ["D"]), model.states)
    assert plan.available and sorted(plan.permutation) == list(range(n))
    assert plan.lu_nnz == _boolean_fill(entries, list(plan.permutation), n)
    rows, cols = zip(*entries)
    symmetric = csr_matrix((np.ones(2 * len(entries)), (rows + cols, cols + rows)), shape=(n, n))
    rcm = [int(i) for i in reverse_cuthill_mckee(symmetric, symmetric_mode=True)]
    assert plan.lu_nnz < _boolean_fill(entries, rcm, n)
    # An arrow with its hub first: the natural order fills completely; minimum degree eliminates the hub last
    # and fills nothing (3n - 2 entries), and so does the plan's choice.
    from symsens.codegen._sparsity import _minimum_degree_ordering

    a, b = sp.symbols("a b")
    x = sp.symbols("x0:8")
    arrow = symsens.Model(states=list(x), parameters={"a": 1.0, "b": 1.0},
                          rhs=[-a * x[0] * sum(x[1:])] + [-b * x[i] * x[0] for i in range(1, 8)],
                          initial_conditions=[1.0] * 8, name="arrow")
    arrow_entries = sorted(key for key, value in jacobian(arrow).todok().items() if value != 0)
    assert _boolean_fill(arrow_entries, list(range(8)), 8) == 64
    order = _minimum_degree_ordering(8, arrow_entries)
    assert order is not None and order.index(0) >= 6  # the hub goes once at most one leaf is left
    assert _boolean_fill(arrow_entries, order, 8) == 3 * 8 - 2
    arrow_plan = plan_sparsity(jacobian(arrow), parameter_jacobian(arrow, ["a"]), arrow.states)
    assert arrow_plan.lu_nnz == 3 * 8 - 2
    options = dict(method="bdf", rtol=1e-8, atol=1e-10, sensitivity="forward", parameters=["D", "r"],
                   t_eval=[0.05, 0.1])
    sparse = symsens.solve(model, (0.0, 0.1), linear_solver="sparse", **options)
    dense = symsens.solve(model, (0.0, 0.1), linear_solver="dense", **options)
    assert sparse.status == dense.status == "success"
    assert np.max(np.abs(sparse.y - dense.y)) <= 1e-13 * np.max(np.abs(dense.y))
    assert np.max(np.abs(sparse.sensitivities - dense.sensitivities)) <= 1e-13 * np.max(np.abs(dense.sensitivities))
