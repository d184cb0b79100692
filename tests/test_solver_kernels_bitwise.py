"""The solver's linear-algebra and norm kernels, compiled on their own and checked bit for bit.

* ``interleaved_solve`` (symsens_sparse.hpp) solves several right-hand sides together, real and complex, so that
  their dependency chains overlap; each must come out exactly as when solved alone (``SparseLu::solve``,
  ``SparseComplexLu::solve``), whatever the group size: the staggered sensitivity solve groups 1–4 blocks, and a
  parameter's sensitivities must not depend on how many others are requested.  The single solves are checked
  against NumPy's dense solve of the same matrix (an independent LU with pivoting) to 1e-12.
* ``NewtonWeights::norm`` (the solver), ``weighted_norm`` of the compiled replays (symsens_newton_replay.hpp) and
  ``weighted_norm`` of the NumPy replays must agree bit for bit (they decide the same Newton iterations), for
  blocks of fewer and more than eight entries and stage vectors of several blocks.
"""

from __future__ import annotations

import ctypes
from importlib import resources

import numpy as np
import pytest

from symsens.codegen._build import build_library, load_library
from symsens.codegen._runtime import runtime_header
from symsens.codegen._sparsity import symbolic_lu
from symsens.integrate._compiled import _solver_header_sources
from symsens.integrate._discrete_adjoint_newton import weighted_norm

HARNESS = r"""
#define SYMSENS_SPARSE_LINEAR_ALGEBRA 1
#include "symsens_implicit.hpp"
#include "symsens_newton_replay.hpp"

namespace {
template <int K>
void grouped(const symsens::SparseLu<double>& lu, const symsens::SparseComplexLu<double>& clu, int n,
             const double* b, const double* b_re, const double* b_im, double* x, double* x_re, double* x_im) {
    std::vector<double> g(static_cast<size_t>(K) * n), gr(g.size()), gi(g.size());
    for (int i = 0; i < n; ++i)
        for (int k = 0; k < K; ++k) {
            g[i * K + k] = b[k * n + i];
            gr[i * K + k] = b_re[k * n + i];
            gi[i * K + k] = b_im[k * n + i];
        }
    symsens::interleaved_solve<K, K, double>(*lu.s, lu.a.data(), clu.re.data(), clu.im.data(), lu.inverse_pivot.data(),
                                             clu.inverse_re.data(), clu.inverse_im.data(), g.data(), gr.data(), gi.data());
    for (int i = 0; i < n; ++i)
        for (int k = 0; k < K; ++k) {
            x[k * n + i] = g[i * K + k];
            x_re[k * n + i] = gr[i * K + k];
            x_im[k * n + i] = gi[i * K + k];
        }
}
}  // namespace

extern "C" {
// A = values over the LU pattern (real), A_c = A + i shift I (complex).  Solves `count` right-hand sides (1..4)
// one by one (single_*) and as one interleaved group (group_*).  Returns 0, or 1 if a factorisation failed.
__attribute__((visibility("default"))) int harness_solves(int n, const int* rp, const int* cols, const int* diag,
        const double* values, double shift, int count, const double* b, const double* b_re, const double* b_im,
        double* single, double* single_re, double* single_im, double* group, double* group_re, double* group_im) {
    symsens::EliminationSchedule schedule;
    schedule.setup(n, rp, cols, diag);
    symsens::SparseLu<double> lu;
    lu.s = &schedule;
    lu.a.assign(values, values + rp[n]);
    symsens::SparseComplexLu<double> clu;
    clu.s = &schedule;
    clu.re.assign(values, values + rp[n]);
    clu.im.assign(rp[n], 0.0);
    for (int i = 0; i < n; ++i) clu.im[diag[i]] = shift;
    if (!lu.factor() || !clu.factor()) return 1;
    for (int k = 0; k < count; ++k) {
        for (int i = 0; i < n; ++i) {
            single[k * n + i] = b[k * n + i];
            single_re[k * n + i] = b_re[k * n + i];
            single_im[k * n + i] = b_im[k * n + i];
        }
        lu.solve(single + k * n);
        clu.solve(single_re + k * n, single_im + k * n);
    }
    switch (count) {
        case 1: grouped<1>(lu, clu, n, b, b_re, b_im, group, group_re, group_im); break;
        case 2: grouped<2>(lu, clu, n, b, b_re, b_im, group, group_re, group_im); break;
        case 3: grouped<3>(lu, clu, n, b, b_re, b_im, group, group_re, group_im); break;
        default: grouped<4>(lu, clu, n, b, b_re, b_im, group, group_re, group_im); break;
    }
    return 0;
}
__attribute__((visibility("default"))) double harness_solver_norm(const double* x, int count, const double* w, int n) {
    symsens::NewtonWeights weights;
    weights.w.assign(w, w + n);
    return weights.norm(x, count);
}
__attribute__((visibility("default"))) double harness_replay_norm(const double* x, long count, const double* w, int n) {
    return symsens_adjoint::weighted_norm(x, count, w, n);
}
}
"""


@pytest.fixture(scope="module")
def harness() -> ctypes.CDLL:
    sources = _solver_header_sources()
    adjoint = resources.files("symsens.integrate").joinpath("cpp").joinpath("adjoint")
    sources["symsens_newton_replay.hpp"] = adjoint.joinpath("symsens_newton_replay.hpp").read_text()
    sources["symsens_runtime.hpp"] = runtime_header()
    sources["harness.cpp"] = HARNESS
    library = load_library(build_library(sources, "harness.cpp"))
    double_p, int_p = ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_int)
    library.harness_solves.restype = ctypes.c_int
    library.harness_solves.argtypes = [ctypes.c_int, int_p, int_p, int_p, double_p, ctypes.c_double, ctypes.c_int,
                                       *([double_p] * 9)]
    for name in ("harness_solver_norm", "harness_replay_norm"):
        getattr(library, name).restype = ctypes.c_double
    library.harness_solver_norm.argtypes = [double_p, ctypes.c_int, double_p, ctypes.c_int]
    library.harness_replay_norm.argtypes = [double_p, ctypes.c_long, double_p, ctypes.c_int]
    return library


def _pointer(array: np.ndarray, kind=ctypes.c_double):  # noqa: ANN001, ANN202
    return array.ctypes.data_as(ctypes.POINTER(kind))


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_interleaved_solves_equal_single_solves_bit_for_bit(harness: ctypes.CDLL, count: int) -> None:
    """A banded matrix with a few distant couplings (so rows read the row just computed and others), real and
    complex; every right-hand side of a group of `count` equals its own solve exactly."""
    rng = np.random.default_rng(count)
    n = 40
    pattern = [{i} | {j for j in (i - 2, i - 1, i + 1, i + 2, (i * 7) % n) if 0 <= j < n} for i in range(n)]
    rows = symbolic_lu(pattern, n)
    assert rows is not None
    row_ptr = np.array([0, *np.cumsum([len(r) for r in rows])], dtype=np.intc)
    columns = np.array([j for r in rows for j in r], dtype=np.intc)
    diagonal = np.array([row_ptr[i] + rows[i].index(i) for i in range(n)], dtype=np.intc)
    dense = np.zeros((n, n))
    for i in range(n):
        for j in pattern[i]:
            dense[i, j] = rng.uniform(-1.0, 1.0)
        dense[i, i] = 4.0 + rng.uniform(0.0, 1.0)
    values = np.array([dense[i, j] for i, r in enumerate(rows) for j in r])
    shift = 1.5
    b, b_re, b_im = (rng.standard_normal(count * n) for _ in range(3))
    out = [np.empty(count * n) for _ in range(6)]
    status = harness.harness_solves(n, _pointer(row_ptr, ctypes.c_int), _pointer(columns, ctypes.c_int),
                                    _pointer(diagonal, ctypes.c_int), _pointer(values), shift, count, _pointer(b),
                                    _pointer(b_re), _pointer(b_im), *(_pointer(o) for o in out))
    assert status == 0
    single, single_re, single_im, group, group_re, group_im = out
    assert np.array_equal(group, single)
    assert np.array_equal(group_re, single_re)
    assert np.array_equal(group_im, single_im)
    # The single solves are solves: NumPy's pivoted dense LU of the same matrices.
    real = np.linalg.solve(dense, b.reshape(count, n).T).T.ravel()
    complex_ = np.linalg.solve(dense + 1j * shift * np.eye(n), (b_re + 1j * b_im).reshape(count, n).T).T.ravel()
    assert np.max(np.abs(single - real)) <= 1e-12 * np.max(np.abs(real))
    assert np.max(np.abs(single_re + 1j * single_im - complex_)) <= 1e-12 * np.max(np.abs(complex_))


@pytest.mark.parametrize("n, blocks", [(1, 1), (3, 4), (5, 3), (8, 1), (13, 3), (40, 4), (1027, 1)])
def test_newton_norms_agree_bit_for_bit(harness: ctypes.CDLL, n: int, blocks: int) -> None:
    rng = np.random.default_rng(100 * n + blocks)
    x = rng.standard_normal(n * blocks) * 10.0 ** rng.uniform(-8, 3, n * blocks)
    w = 1.0 / (1e-9 + 1e-6 * np.abs(rng.standard_normal(n)))
    solver = harness.harness_solver_norm(_pointer(x), n * blocks, _pointer(w), n)
    replay = harness.harness_replay_norm(_pointer(x), n * blocks, _pointer(w), n)
    assert solver == replay == weighted_norm(x, w)
    assert solver == pytest.approx(np.sqrt(np.mean((x.reshape(blocks, n) * w) ** 2)), rel=1e-14)
