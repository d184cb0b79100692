// Fixed-pattern sparse LU for the iteration matrices of the implicit steppers.
//
// The generated model supplies (namespace symsens_model::sparsity, printed by symsens/codegen/_sparsity.py):
// the CSR pattern of J = df/dy, a fill-reducing symmetric permutation of I + J (reverse Cuthill–McKee), the
// pattern of L + U of the permuted matrix with all fill-in (symbolic LU without pivoting, computed once in
// Python), where each Jacobian non-zero lands in it, and for forward sensitivities the pattern and column
// colouring of the coupling blocks D_j = d(J S_j + F_p[:, j])/dy.
//
//   SparseLu<T>              numerical LU over the fixed pattern, no pivoting.  The elimination is a list of
//                            (multiplier, update) index pairs built once from the pattern (what KPP generates as
//                            straight-line code, Damian, Sandu et al. 2002, kept here as data so that the code size
//                            does not grow with the fill), then replayed for every factorisation.  Each pivot is
//                            checked on values: |u_ii| <= 1e-12 max_j |a_ij| (the row of the matrix before
//                            elimination), or a non-finite entry, reports the matrix as unusable (factor() returns
//                            false): the stepper then fails its Newton iteration (STATUS_NEWTON_FAILURE, or a smaller
//                            step when adaptive, which moves shift I - scale J towards shift I) — never a silent
//                            solve with a tiny pivot.
//   SparseComplexLu<T>       the same over complex entries (re, im over a real scalar T), for Radau IIA's complex
//                            system (alpha + i beta)/h I - J (Hairer & Wanner II, Sect. IV.8).
//   SparseIterationMatrix<T> the interface of DenseIterationMatrix<T> (symsens_implicit.hpp) over these: J as its
//                            non-zeros, the LU of shift I - scale J, and for the augmented (y, S) system the
//                            staggered block solve x_0 = A^-1 b_0, x_j = A^-1 (b_j + scale D_j x_0) with D_j sparse,
//                            the blocks j >= 1 (and Radau IIA's real and complex systems) substituted together.
//   interleaved_solve        forward and backward substitution of several right-hand sides at once, row by row
//                            (U scaled by its pivots' reciprocals, so backward substitution does not divide):
//                            each has the operations of a substitution on its own, in the same order, and their
//                            dependency chains overlap (a single substitution is latency-bound).
//
// Decisions are taken on values (value_of), so a Dual<double, P> run factors exactly as the double run does
// and the discrete forward mode with a values-only norm takes the plain solve's steps bit for bit.  Over
// Dual<double, P> the LU is of the values only and every partial reuses it (staggered_duals, symsens_solver.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "symsens_solver.hpp"

namespace symsens {

// The elimination schedule of a fixed pattern (row-wise Doolittle, IKJ): for row i and each k < i in its pattern,
// in increasing order, l_ik = a_ik / u_kk and a_ij -= l_ik u_kj for every j > k in row k.  The symbolic LU
// guarantees that every (i, j) updated is in the pattern.
struct EliminationSchedule {
    int n = 0;
    const int* row_ptr = nullptr;
    const int* columns = nullptr;
    const int* diagonal = nullptr;
    std::vector<int> row_begin;      // per row: its multipliers are [row_begin[i], row_begin[i + 1])
    std::vector<int> mult_pos, mult_pivot, update_begin;   // per multiplier: position, position of u_kk, updates
    std::vector<int> target, source;                        // a[target] -= l * a[source]

    void setup(int size, const int* rp, const int* cols, const int* diag) {
        n = size;
        row_ptr = rp;
        columns = cols;
        diagonal = diag;
        std::vector<int> where(n, -1);
        row_begin.assign(1, 0);
        mult_pos.clear(); mult_pivot.clear(); update_begin.assign(1, 0); target.clear(); source.clear();
        for (int i = 0; i < n; ++i) {
            for (int q = rp[i]; q < rp[i + 1]; ++q) where[cols[q]] = q;
            for (int q = rp[i]; q < diag[i]; ++q) {
                const int k = cols[q];
                mult_pos.push_back(q);
                mult_pivot.push_back(diag[k]);
                for (int r = diag[k] + 1; r < rp[k + 1]; ++r) {
                    target.push_back(where[cols[r]]);
                    source.push_back(r);
                }
                update_begin.push_back(static_cast<int>(target.size()));
            }
            row_begin.push_back(static_cast<int>(mult_pos.size()));
            for (int q = rp[i]; q < rp[i + 1]; ++q) where[cols[q]] = -1;
        }
    }
};

constexpr double sparse_pivot_tolerance = 1e-12;

template <class T>
struct SparseLu {
    const EliminationSchedule* s = nullptr;
    std::vector<T> a;   // values over the pattern: the matrix before factor(), L (unit, strict) and U after
    std::vector<T> inverse_pivot;   // 1 / u_ii after factor()

    // Factor a in place.  False if a pivot is tiny relative to its row or anything is not finite.
    bool factor() {
        const EliminationSchedule& e = *s;
        inverse_pivot.resize(e.n);
        for (int i = 0; i < e.n; ++i) {
            double row_max = 0.0;
            for (int q = e.row_ptr[i]; q < e.row_ptr[i + 1]; ++q) row_max = std::max(row_max, std::fabs(value_of(a[q])));
            for (int m = e.row_begin[i]; m < e.row_begin[i + 1]; ++m) {
                const T l = a[e.mult_pos[m]] / a[e.mult_pivot[m]];
                a[e.mult_pos[m]] = l;
                for (int u = e.update_begin[m]; u < e.update_begin[m + 1]; ++u)
                    a[e.target[u]] = a[e.target[u]] - l * a[e.source[u]];
            }
            const double pivot = std::fabs(value_of(a[e.diagonal[i]]));
            if (!(pivot > sparse_pivot_tolerance * row_max) || !std::isfinite(pivot)) return false;
        }
        // Each row of U divided by its pivot, once the elimination (which reads U unscaled) is done: backward
        // substitution then has one multiplication and one subtraction per term and no division.
        for (int i = 0; i < e.n; ++i) {
            const T inverse = T(1.0) / a[e.diagonal[i]];
            inverse_pivot[i] = inverse;
            for (int q = e.diagonal[i] + 1; q < e.row_ptr[i + 1]; ++q) a[q] = a[q] * inverse;
        }
        return true;
    }
    // x <- (LU)^-1 x, x in the permuted numbering, with U' = diag(U)^-1 U (strict upper part kept in a):
    //   forward   x_i <- x_i - sum_{q in L row i} a_q x_{col q}
    //   backward  x_i <- x_i (1 / u_ii) - sum_{q in U' row i} a_q x_{col q}
    // terms subtracted in the pattern's order, except the one reading the row just computed, which comes last
    // (interleaved_solve with one right-hand side, below.)
    void solve(T* x) const;
};

// Forward and backward substitution of several right-hand sides at once with a real LU (KR of them) and a complex LU
// over the same schedule (KC of them), interleaved row by row: x[i * KR + k] (real), x_re / x_im[i * KC + k]
// (complex).  Every right-hand side undergoes exactly the operations, in the same order, of a substitution on its
// own (SparseLu::solve and SparseComplexLu::solve are the cases KR = 1 and KC = 1), so the results are identical
// bit for bit; interleaving only lets the processor overlap their dependency chains.  A single substitution is
// latency-bound: row i waits for the rows it reads (in a banded order, the row before).
// The loops over the K right-hand sides are unrolled, so that their accumulators live in registers.
// inv (real) and inv_re, inv_im (complex) are the reciprocals of the pivots kept by factor(), whose U is scaled by
// them: backward substitution has no division on the chain from row to row.
template <int KR, int KC, class T>
void interleaved_solve(const EliminationSchedule& e, const T* a, const T* are, const T* aim, const T* inv,
                       const T* inv_re, const T* inv_im, T* x, T* x_re, T* x_im) {
    constexpr int R = KR > 0 ? KR : 1;
    constexpr int C = KC > 0 ? KC : 1;
    // The row just computed is kept in registers (prev): in a banded order the next row reads it (its last L entry
    // in forward, its first U entry in backward substitution), and taking it from a register instead of memory
    // takes a store-to-load forwarding off the chain from row to row.  The term is the same, in the same place.
    // Only while the accumulators and the kept row fit in the 16 vector registers of x86-64 (otherwise the kept
    // row is spilled and the chain gets longer, not shorter).
    constexpr bool carry = KR + 2 * KC <= 6;
    const int* rp = e.row_ptr;
    const int* cols = e.columns;
    const int* diag = e.diagonal;
    const int n = e.n;
    T prev[R], prev_re[C], prev_im[C];
    SYMSENS_UNROLL for (int k = 0; k < R; ++k) prev[k] = T(0.0);
    SYMSENS_UNROLL for (int k = 0; k < C; ++k) { prev_re[k] = T(0.0); prev_im[k] = T(0.0); }
    // One term of a substitution: acc -= m x_j (real) and s -= m x_j (complex), m the factor's entry q, x_j read
    // from memory or from the kept row.
    auto subtract = [&](int q, const T* xj, const T* xr, const T* xi, T* acc, T* sr, T* si)
        __attribute__((always_inline)) {
        if constexpr (KR > 0) {
            const T m = a[q];
            SYMSENS_UNROLL for (int k = 0; k < KR; ++k) acc[k] = acc[k] - m * xj[k];
        }
        if constexpr (KC > 0) {
            const T mr = are[q], mi = aim[q];
            SYMSENS_UNROLL for (int k = 0; k < KC; ++k) {
                sr[k] = sr[k] - (mr * xr[k] - mi * xi[k]);
                si[k] = si[k] - (mr * xi[k] + mi * xr[k]);
            }
        }
    };
    for (int i = 0; i < n; ++i) {
        T acc[R], sr[C], si[C];
        SYMSENS_UNROLL for (int k = 0; k < KR; ++k) acc[k] = x[i * KR + k];
        SYMSENS_UNROLL for (int k = 0; k < KC; ++k) { sr[k] = x_re[i * KC + k]; si[k] = x_im[i * KC + k]; }
        int end = diag[i];
        const bool chained = carry && end > rp[i] && cols[end - 1] == i - 1;
        if (chained) --end;
        for (int q = rp[i]; q < end; ++q) {
            const int j = cols[q];
            subtract(q, x + j * KR, x_re + j * KC, x_im + j * KC, acc, sr, si);
        }
        if (chained) subtract(end, prev, prev_re, prev_im, acc, sr, si);  // the same term, x_{i-1} from registers
        SYMSENS_UNROLL for (int k = 0; k < KR; ++k) { x[i * KR + k] = acc[k]; if (carry) prev[k] = acc[k]; }
        SYMSENS_UNROLL for (int k = 0; k < KC; ++k) {
            x_re[i * KC + k] = sr[k];
            x_im[i * KC + k] = si[k];
            if (carry) { prev_re[k] = sr[k]; prev_im[k] = si[k]; }
        }
    }
    // Backward, over U scaled by its pivots (SparseLu::factor): x_i = x_i / u_ii - sum_j (u_ij / u_ii) x_j, the
    // term of x_{i+1} (the row just computed) subtracted last, so that only its multiply and subtract wait for it.
    for (int i = n - 1; i >= 0; --i) {
        T acc[R], sr[C], si[C];
        if constexpr (KR > 0) {
            const T inverse = inv[i];
            SYMSENS_UNROLL for (int k = 0; k < KR; ++k) acc[k] = x[i * KR + k] * inverse;
        }
        if constexpr (KC > 0) {
            const T ir = inv_re[i], ii = inv_im[i];
            SYMSENS_UNROLL for (int k = 0; k < KC; ++k) {
                const T xr = x_re[i * KC + k], xi = x_im[i * KC + k];
                sr[k] = xr * ir - xi * ii;
                si[k] = xr * ii + xi * ir;
            }
        }
        // The term of x_{i+1} is last whether or not x_{i+1} is kept in registers (carry), so that the order of the
        // sum does not depend on how many right-hand sides are solved together.
        int begin = diag[i] + 1;
        const bool chained = i + 1 < n && begin < rp[i + 1] && cols[begin] == i + 1;
        if (chained) ++begin;
        for (int q = begin; q < rp[i + 1]; ++q) {
            const int j = cols[q];
            subtract(q, x + j * KR, x_re + j * KC, x_im + j * KC, acc, sr, si);
        }
        if (chained) {
            if (carry) {
                subtract(begin - 1, prev, prev_re, prev_im, acc, sr, si);  // x_{i+1} from registers
            } else {
                subtract(begin - 1, x + (i + 1) * KR, x_re + (i + 1) * KC, x_im + (i + 1) * KC, acc, sr, si);
            }
        }
        SYMSENS_UNROLL for (int k = 0; k < KR; ++k) { x[i * KR + k] = acc[k]; if (carry) prev[k] = acc[k]; }
        SYMSENS_UNROLL for (int k = 0; k < KC; ++k) {
            x_re[i * KC + k] = sr[k];
            x_im[i * KC + k] = si[k];
            if (carry) { prev_re[k] = sr[k]; prev_im[k] = si[k]; }
        }
    }
}

template <class T> void SparseLu<T>::solve(T* x) const {
    interleaved_solve<1, 0, T>(*s, a.data(), nullptr, nullptr, inverse_pivot.data(), nullptr, nullptr, x, nullptr,
                               nullptr);
}

template <class T>
struct SparseComplexLu {
    const EliminationSchedule* s = nullptr;
    std::vector<T> re, im;
    std::vector<T> inverse_re, inverse_im;   // 1 / u_ii = conj(u_ii) / |u_ii|^2 after factor()

    bool factor() {
        const EliminationSchedule& e = *s;
        inverse_re.resize(e.n);
        inverse_im.resize(e.n);
        for (int i = 0; i < e.n; ++i) {
            double row_max = 0.0;
            for (int q = e.row_ptr[i]; q < e.row_ptr[i + 1]; ++q)
                row_max = std::max(row_max, std::hypot(value_of(re[q]), value_of(im[q])));
            for (int m = e.row_begin[i]; m < e.row_begin[i + 1]; ++m) {
                const int q = e.mult_pos[m], d = e.mult_pivot[m];
                // l = a_ik / u_kk = a (conj u) / |u|^2
                const T dd = re[d] * re[d] + im[d] * im[d];
                const T lr = (re[q] * re[d] + im[q] * im[d]) / dd;
                const T li = (im[q] * re[d] - re[q] * im[d]) / dd;
                re[q] = lr;
                im[q] = li;
                for (int u = e.update_begin[m]; u < e.update_begin[m + 1]; ++u) {
                    const int t = e.target[u], r = e.source[u];
                    re[t] = re[t] - (lr * re[r] - li * im[r]);
                    im[t] = im[t] - (lr * im[r] + li * re[r]);
                }
            }
            const int d = e.diagonal[i];
            const double pivot = std::hypot(value_of(re[d]), value_of(im[d]));
            if (!(pivot > sparse_pivot_tolerance * row_max) || !std::isfinite(pivot)) return false;
        }
        // U scaled by its pivots' reciprocals, as in SparseLu::factor.
        for (int i = 0; i < e.n; ++i) {
            const int d = e.diagonal[i];
            const T dd = re[d] * re[d] + im[d] * im[d];
            const T ir = re[d] / dd, ii = -(im[d] / dd);
            inverse_re[i] = ir;
            inverse_im[i] = ii;
            for (int q = d + 1; q < e.row_ptr[i + 1]; ++q) {
                const T ur = re[q], ui = im[q];
                re[q] = ur * ir - ui * ii;
                im[q] = ur * ii + ui * ir;
            }
        }
        return true;
    }
    // (x_re + i x_im) <- (LU)^-1 (x_re + i x_im), as SparseLu::solve in complex arithmetic written out:
    // s -= (a_re x_re - a_im x_im) + i (a_re x_im + a_im x_re), and s starts as x (1 / u_ii) in backward
    // substitution.
    void solve(T* x_re, T* x_im) const {
        interleaved_solve<0, 1, T>(*s, nullptr, re.data(), im.data(), nullptr, inverse_re.data(), inverse_im.data(),
                                   nullptr, x_re, x_im);
    }
};

// Problems that are the augmented forward-sensitivity system expose sparse_jacobian(t, u, J values, D values).
template <class Problem, class = void> struct has_sparse_coupling : std::false_type {};
template <class Problem>
struct has_sparse_coupling<Problem, std::void_t<decltype(&Problem::sparse_jacobian)>> : std::true_type {};

template <class T>
struct SparseIterationMatrix {
    int n = 0;                       // full dimension N (n (P + 1) for the augmented system)
    int nb = 0;                      // block size: the model's state count
    int blocks = 1;
    bool ready = false;
    EliminationSchedule schedule;
    const int* row_ptr = nullptr;    // pattern of J (original numbering)
    const int* columns = nullptr;
    const int* to_lu = nullptr;
    const int* perm = nullptr;       // permuted index -> original index
    const int* coupling_row_ptr = nullptr;
    const int* coupling_columns = nullptr;
    int nnz = 0, lu_nnz = 0, coupling_nnz = 0;
    std::vector<T> Jv;               // the non-zeros of J
    std::vector<T> Dv;               // coupling blocks: (blocks - 1) x coupling_nnz
    SparseLu<T> lu;
    SparseComplexLu<T> complex_lu;
    mutable std::vector<T> work, work_im, coupled;
    // Interleaved right-hand sides of up to group_size blocks (interleaved_solve): real, complex re and im.
    static constexpr int group_size = 4;
    mutable std::vector<T> group, group_re, group_im;
    // Dual scalars (the discrete forward mode): LUs of the values only, reused for every partial
    // (staggered_duals, symsens_solver.hpp); lu.a / complex_lu.re, .im then keep the unfactored dual matrices.
    static constexpr bool staggered = staggered_duals<T>::value;
    SparseLu<double> lu0;
    SparseComplexLu<double> complex_lu0;
    mutable std::vector<double> xv, xi, rv, ri;
    bool have_jacobian = false;
    bool jacobian_current = false;
    bool have_lu = false;
    T lu_shift, lu_scale;
    long jacobian_version = 0, lu_jacobian_version = -1;

    explicit SparseIterationMatrix(int dimension = 0) : n(dimension), nb(dimension) {}

    template <class Problem> void setup(const Problem&) {
        using Model = typename Problem::model_type;
        using S = typename Model::sparsity;
        nb = Model::n_states;
        blocks = n / nb;
        row_ptr = S::row_ptr();
        columns = S::columns();
        to_lu = S::jacobian_to_lu();
        perm = S::permutation();
        coupling_row_ptr = S::coupling_row_ptr();
        coupling_columns = S::coupling_columns();
        nnz = S::nnz;
        lu_nnz = S::lu_nnz;
        coupling_nnz = S::coupling_nnz;
        schedule.setup(nb, S::lu_row_ptr(), S::lu_columns(), S::lu_diagonal());
        lu.s = &schedule;
        complex_lu.s = &schedule;
        lu0.s = &schedule;
        complex_lu0.s = &schedule;
        xv.assign(nb, 0.0); xi.assign(nb, 0.0); rv.assign(nb, 0.0); ri.assign(nb, 0.0);
        Jv.assign(std::max(nnz, 1), T(0.0));
        Dv.assign(static_cast<size_t>(std::max(blocks - 1, 0)) * std::max(coupling_nnz, 1), T(0.0));
        lu.a.assign(std::max(lu_nnz, 1), T(0.0));
        work.assign(nb, T(0.0));
        work_im.assign(nb, T(0.0));
        coupled.assign(nb, T(0.0));
        if constexpr (!staggered) {
            group.assign(static_cast<size_t>(group_size) * nb, T(0.0));
            group_re.assign(static_cast<size_t>(group_size) * nb, T(0.0));
            group_im.assign(static_cast<size_t>(group_size) * nb, T(0.0));
        }
        ready = true;
    }

    template <class Problem, class Time> void evaluate(const Problem& problem, const Time& t, const T* y) {
        if (!ready) setup(problem);
        if constexpr (has_sparse_coupling<Problem>::value) {
            problem.sparse_jacobian(t, y, Jv.data(), Dv.data());
        } else {
            problem.jacobian_values(t, y, Jv.data());
        }
        have_jacobian = true;
        jacobian_current = true;
        ++jacobian_version;
    }
    // shift I - scale J over the LU pattern (fill-in positions zero).
    template <class Problem> bool factor(const Problem& problem, const T& shift, const T& scale) {
        if (have_lu && lu_jacobian_version == jacobian_version && identical(shift, lu_shift) && identical(scale, lu_scale))
            return true;
        std::fill(lu.a.begin(), lu.a.end(), T(0.0));
        for (int i = 0; i < nb; ++i) lu.a[schedule.diagonal[i]] = shift;
        for (int k = 0; k < nnz; ++k) lu.a[to_lu[k]] = lu.a[to_lu[k]] - scale * Jv[k];
        ++problem.stats->nlu;
        if constexpr (staggered) {
            lu0.a.resize(lu.a.size());
            for (size_t q = 0; q < lu.a.size(); ++q) lu0.a[q] = lu.a[q].v;
            have_lu = lu0.factor();
        } else {
            have_lu = lu.factor();
        }
        lu_shift = shift;
        lu_scale = scale;
        lu_jacobian_version = jacobian_version;
        return have_lu;
    }
    bool factor_complex(const T& sr, const T& si) {
        complex_lu.re.assign(std::max(lu_nnz, 1), T(0.0));
        complex_lu.im.assign(std::max(lu_nnz, 1), T(0.0));
        for (int i = 0; i < nb; ++i) {
            complex_lu.re[schedule.diagonal[i]] = sr;
            complex_lu.im[schedule.diagonal[i]] = si;
        }
        for (int k = 0; k < nnz; ++k) complex_lu.re[to_lu[k]] = complex_lu.re[to_lu[k]] - Jv[k];
        if constexpr (staggered) {
            complex_lu0.re.resize(complex_lu.re.size());
            complex_lu0.im.resize(complex_lu.im.size());
            for (size_t q = 0; q < complex_lu.re.size(); ++q) {
                complex_lu0.re[q] = complex_lu.re[q].v;
                complex_lu0.im[q] = complex_lu.im[q].v;
            }
            return complex_lu0.factor();
        } else {
            return complex_lu.factor();
        }
    }
    // x_b += s D_b x_0 for block b >= 1.
    void add_coupling(T* xb, const T* x0, int b, const T& s) const {
        const T* d = &Dv[static_cast<size_t>(b - 1) * coupling_nnz];
        for (int i = 0; i < nb; ++i) {
            T acc(0.0);
            for (int q = coupling_row_ptr[i]; q < coupling_row_ptr[i + 1]; ++q) acc = acc + d[q] * x0[coupling_columns[q]];
            xb[i] = xb[i] + s * acc;
        }
    }
    void solve_block(T* x) const {
        for (int i = 0; i < nb; ++i) work[i] = x[perm[i]];
        if constexpr (staggered) {
            // x.v = A.v^-1 b.v, x.d_j = A.v^-1 (b.d_j - A.d_j x.v), A over the LU pattern (permuted numbering).
            constexpr int P = staggered_duals<T>::partials;
            const int* rp = schedule.row_ptr;
            const int* cols = schedule.columns;
            for (int i = 0; i < nb; ++i) xv[i] = work[i].v;
            lu0.solve(xv.data());
            for (int j = 0; j < P; ++j) {
                for (int i = 0; i < nb; ++i) {
                    double acc = work[i].d[j];
                    for (int q = rp[i]; q < rp[i + 1]; ++q) acc -= lu.a[q].d[j] * xv[cols[q]];
                    rv[i] = acc;
                }
                lu0.solve(rv.data());
                for (int i = 0; i < nb; ++i) work[i].d[j] = rv[i];
            }
            for (int i = 0; i < nb; ++i) work[i].v = xv[i];
        } else {
            lu.solve(work.data());
        }
        for (int i = 0; i < nb; ++i) x[perm[i]] = work[i];
    }
    // KR real blocks starting at xr (consecutive, nb apart) and KC complex blocks at (xc_re, xc_im), solved together
    // in the permuted numbering: gather, interleaved_solve, scatter (the values are those of solve_block and
    // complex_solve_block, bit for bit).  Blocks first >= 1 of the augmented system first receive their coupling
    // terms, in the gather: x_b += scale D_b x_0 (real blocks, x_0 = x0; add_coupling's sums, in its order) and
    // x_b += 1 D_b x_0 (complex blocks, x_0 = (x0_re, x0_im)), so the blocks are not read and written twice.
    template <int KR, int KC>
    void solve_group(T* xr, T* xc_re, T* xc_im, int first, const T* x0, const T* x0_re, const T* x0_im) const {
        T* g = group.data();
        T* gr = group_re.data();
        T* gi = group_im.data();
        if (first == 0) {
            for (int i = 0; i < nb; ++i) {
                const int pi = perm[i];
                for (int k = 0; k < KR; ++k) g[i * KR + k] = xr[k * nb + pi];
                for (int k = 0; k < KC; ++k) {
                    gr[i * KC + k] = xc_re[k * nb + pi];
                    gi[i * KC + k] = xc_im[k * nb + pi];
                }
            }
        } else {
            const T* d = &Dv[static_cast<size_t>(first - 1) * coupling_nnz];
            const T one(1.0);
            for (int i = 0; i < nb; ++i) {
                const int pi = perm[i];
                T acc[KR > 0 ? KR : 1], acc_re[KC > 0 ? KC : 1], acc_im[KC > 0 ? KC : 1];
                SYMSENS_UNROLL for (int k = 0; k < KR; ++k) acc[k] = T(0.0);
                SYMSENS_UNROLL for (int k = 0; k < KC; ++k) { acc_re[k] = T(0.0); acc_im[k] = T(0.0); }
                for (int q = coupling_row_ptr[pi]; q < coupling_row_ptr[pi + 1]; ++q) {
                    const int c = coupling_columns[q];
                    SYMSENS_UNROLL for (int k = 0; k < KR; ++k)
                        acc[k] = acc[k] + d[static_cast<size_t>(k) * coupling_nnz + q] * x0[c];
                    SYMSENS_UNROLL for (int k = 0; k < KC; ++k) {
                        const T& entry = d[static_cast<size_t>(k) * coupling_nnz + q];
                        acc_re[k] = acc_re[k] + entry * x0_re[c];
                        acc_im[k] = acc_im[k] + entry * x0_im[c];
                    }
                }
                SYMSENS_UNROLL for (int k = 0; k < KR; ++k) g[i * KR + k] = xr[k * nb + pi] + lu_scale * acc[k];
                SYMSENS_UNROLL for (int k = 0; k < KC; ++k) {
                    gr[i * KC + k] = xc_re[k * nb + pi] + one * acc_re[k];
                    gi[i * KC + k] = xc_im[k * nb + pi] + one * acc_im[k];
                }
            }
        }
        interleaved_solve<KR, KC, T>(schedule, lu.a.data(), KC > 0 ? complex_lu.re.data() : nullptr,
                                     KC > 0 ? complex_lu.im.data() : nullptr, lu.inverse_pivot.data(),
                                     KC > 0 ? complex_lu.inverse_re.data() : nullptr,
                                     KC > 0 ? complex_lu.inverse_im.data() : nullptr, g, gr, gi);
        for (int i = 0; i < nb; ++i) {
            const int pi = perm[i];
            for (int k = 0; k < KR; ++k) xr[k * nb + pi] = g[i * KR + k];
            for (int k = 0; k < KC; ++k) {
                xc_re[k * nb + pi] = gr[i * KC + k];
                xc_im[k * nb + pi] = gi[i * KC + k];
            }
        }
    }
    // Blocks first .. first + count - 1 (count <= group_size) of x, real (complex = false) or, with complex = true,
    // the same blocks of x (real LU) together with those of (x_re, x_im) (complex LU); x may be null for complex only.
    // Blocks b >= 1 get their coupling terms from block 0 (solve_group), which must be solved already.
    void solve_blocks(T* x, T* x_re, T* x_im, int first, int count, bool real, bool complex) const {
        T* xr = real ? x + static_cast<size_t>(first) * nb : nullptr;
        T* cre = complex ? x_re + static_cast<size_t>(first) * nb : nullptr;
        T* cim = complex ? x_im + static_cast<size_t>(first) * nb : nullptr;
        if (real && complex) {
            switch (count) {
                case 1: solve_group<1, 1>(xr, cre, cim, first, x, x_re, x_im); break;
                case 2: solve_group<2, 2>(xr, cre, cim, first, x, x_re, x_im); break;
                case 3: solve_group<3, 3>(xr, cre, cim, first, x, x_re, x_im); break;
                default: solve_group<4, 4>(xr, cre, cim, first, x, x_re, x_im); break;
            }
        } else if (real) {
            switch (count) {
                case 1: solve_group<1, 0>(xr, cre, cim, first, x, x_re, x_im); break;
                case 2: solve_group<2, 0>(xr, cre, cim, first, x, x_re, x_im); break;
                case 3: solve_group<3, 0>(xr, cre, cim, first, x, x_re, x_im); break;
                default: solve_group<4, 0>(xr, cre, cim, first, x, x_re, x_im); break;
            }
        } else {
            switch (count) {
                case 1: solve_group<0, 1>(xr, cre, cim, first, x, x_re, x_im); break;
                case 2: solve_group<0, 2>(xr, cre, cim, first, x, x_re, x_im); break;
                case 3: solve_group<0, 3>(xr, cre, cim, first, x, x_re, x_im); break;
                default: solve_group<0, 4>(xr, cre, cim, first, x, x_re, x_im); break;
            }
        }
    }
    // The staggered block solve.  Blocks b >= 1 depend on block 0 only (through D_b x_0), not on each other, so
    // after block 0 their couplings are added and they are solved group_size at a time (interleaved_solve); each
    // block sees the same operations as when solved alone.
    void solve(T* x) const {
        if constexpr (staggered) {
            solve_block(x);
            for (int b = 1; b < blocks; ++b) {
                add_coupling(x + b * nb, x, b, lu_scale);
                solve_block(x + b * nb);
            }
        } else {
            solve_block(x);
            for (int b = 1; b < blocks; b += group_size)
                solve_blocks(x, nullptr, nullptr, b, std::min(group_size, blocks - b), true, false);
        }
    }
    // solve(x) and complex_solve(x_re, x_im) together (Radau IIA's real and complex systems in one Newton
    // iteration are independent): their blocks are interleaved pairwise, with the results of the two calls.
    void solve_pair(T* x, T* x_re, T* x_im) const {
        if constexpr (staggered) {
            solve(x);
            complex_solve(x_re, x_im);
        } else {
            solve_blocks(x, x_re, x_im, 0, 1, true, true);
            for (int b = 1; b < blocks; b += group_size)
                solve_blocks(x, x_re, x_im, b, std::min(group_size, blocks - b), true, true);
        }
    }
    void complex_solve_block(T* x_re, T* x_im) const {
        for (int i = 0; i < nb; ++i) { work[i] = x_re[perm[i]]; work_im[i] = x_im[perm[i]]; }
        if constexpr (staggered) {
            constexpr int P = staggered_duals<T>::partials;
            const int* rp = schedule.row_ptr;
            const int* cols = schedule.columns;
            const std::vector<T>& are = complex_lu.re;
            const std::vector<T>& aim = complex_lu.im;
            for (int i = 0; i < nb; ++i) { xv[i] = work[i].v; xi[i] = work_im[i].v; }
            complex_lu0.solve(xv.data(), xi.data());
            for (int j = 0; j < P; ++j) {
                for (int i = 0; i < nb; ++i) {
                    double ar = work[i].d[j], ai = work_im[i].d[j];
                    for (int q = rp[i]; q < rp[i + 1]; ++q) {
                        const int l = cols[q];
                        ar -= are[q].d[j] * xv[l] - aim[q].d[j] * xi[l];
                        ai -= are[q].d[j] * xi[l] + aim[q].d[j] * xv[l];
                    }
                    rv[i] = ar;
                    ri[i] = ai;
                }
                complex_lu0.solve(rv.data(), ri.data());
                for (int i = 0; i < nb; ++i) { work[i].d[j] = rv[i]; work_im[i].d[j] = ri[i]; }
            }
            for (int i = 0; i < nb; ++i) { work[i].v = xv[i]; work_im[i].v = xi[i]; }
        } else {
            complex_lu.solve(work.data(), work_im.data());
        }
        for (int i = 0; i < nb; ++i) { x_re[perm[i]] = work[i]; x_im[perm[i]] = work_im[i]; }
    }
    void complex_solve(T* x_re, T* x_im) const {
        complex_solve_block(x_re, x_im);
        if constexpr (staggered) {
            for (int b = 1; b < blocks; ++b) {
                add_coupling(x_re + b * nb, x_re, b, T(1.0));
                add_coupling(x_im + b * nb, x_im, b, T(1.0));
                complex_solve_block(x_re + b * nb, x_im + b * nb);
            }
        } else {
            for (int b = 1; b < blocks; b += group_size)
                solve_blocks(nullptr, x_re, x_im, b, std::min(group_size, blocks - b), false, true);
        }
    }
};

}  // namespace symsens
