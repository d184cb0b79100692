// Pieces shared by the implicit steppers (SDIRK/ESDIRK, Radau IIA, Rosenbrock, BDF).
//
//   identical(a, b)          a and b are the same scalar: equal value *and* equal partials.  Decides whether an
//                            iteration matrix built with h (or h gamma) may be reused: with differentiated step
//                            sizes two steps of the same value but different partials need different matrices.
//   newton_tolerance(rtol)   the tolerance of simplified Newton in the weighted norm (scipy's Radau and BDF:
//                            max(10 eps / rtol, min(0.03, sqrt(rtol)))).
//   NewtonWeights            1 / (atol + rtol |y_i|) on values, and the weighted RMS norm of a correction on values.
//   NewtonControl            the convergence monitor of Hairer & Wanner II, Sect. IV.8 (stopping criterion): the rate
//                            theta_k = |dZ_k| / |dZ_{k-1}|, stop when theta_k / (1 - theta_k) |dZ_k| <= tol,
//                            give up when theta_k >= 1 or when the rate predicts no convergence within the
//                            iteration budget.
//   newton_budget(o, k)      k iterations when adaptive, 20 with fixed or replayed steps (nothing can retry).
//   DenseLu<T>               = Lu<T> of symsens_solver.hpp (dense real LU, pivots on values).
//   jacobian_blocks<P>       the block lower-triangular structure of the augmented (y, S) Jacobian.
//   IterationMatrix<T>       DenseIterationMatrix<T> or, in a sparse build, SparseIterationMatrix<T>
//                            (symsens_sparse.hpp).  DenseIterationMatrix<T>: J (dense, row-major) and the LU of  sigma I - J  or  I - sigma J, with the
//                            bookkeeping of when J was evaluated and which sigma the LU belongs to; for the
//                            augmented system one n x n LU and the staggered block solve.
//   ComplexLu<T>             dense complex LU over a real scalar T (pivots chosen on values), for the complex
//                            system of Radau IIA in Hairer's transformed form.
//   exact_time_derivative    f_t by duals in t, for Rosenbrock methods on non-autonomous problems.
//
// Every decision (iteration counts, refreshes, pivots) is taken on values (value_of), never on partials, so a
// run over Dual<double, P> takes exactly the branches the plain double run takes and its partials are the
// derivative of that program (the discrete forward mode).
//
// A Problem used with these steppers must expose a `Stats* stats` member (ModelProblem and AugmentedProblem
// do): the steppers count LU factorisations (stats->nlu) and Newton iterations (stats->newton_iterations).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "symsens_solver.hpp"

namespace symsens {

// ---- pairs of doubles ----------------------------------------------------------------------------------------
// Element-wise loops of the steppers over a length known only at run time are not vectorised by GCC at -O2 (its
// cost model then refuses the scalar epilogue).  For T = double the steppers' helpers process two entries at a
// time with these vector types (GCC and Clang vector extensions): each lane computes the scalar expression with the
// same operands in the same order (IEEE operations are exact per lane), so the results are bit-identical.
#if defined(__GNUC__) || defined(__clang__)
#define SYMSENS_PAIRS 1
namespace pairs {
typedef double d2 __attribute__((vector_size(16)));
inline d2 load(const double* p) { d2 v; __builtin_memcpy(&v, p, sizeof v); return v; }
inline void store(double* p, const d2& v) { __builtin_memcpy(p, &v, sizeof v); }
inline d2 splat(double x) { return d2{x, x}; }
}  // namespace pairs
#else
#define SYMSENS_PAIRS 0
#endif
template <class T> constexpr bool use_pairs = SYMSENS_PAIRS && std::is_same<T, double>::value;

// Loops over a handful of right-hand sides or rows, unrolled so that their values stay in registers.
#if defined(__clang__)
#define SYMSENS_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SYMSENS_UNROLL _Pragma("GCC unroll 8")
#else
#define SYMSENS_UNROLL
#endif

// Whether every entry is finite (is_finite: value and partials).  For doubles two at a time without branches:
// x * 0 is a zero exactly when x is finite (inf * 0 and nan * 0 are nan), and a sum of zeros stays a zero.
template <class T> inline bool all_finite(const T* x, int n) {
    int i = 0;
    bool finite = true;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        const d2 zero = splat(0.0);
        d2 sum = zero;
        for (; i + 2 <= n; i += 2) sum = sum + load(x + i) * zero;
        finite = sum[0] == 0.0 && sum[1] == 0.0;
    }
#endif
    for (; i < n; ++i) finite = finite & is_finite(x[i]);
    return finite;
}

// ---- exact identity of scalars ---------------------------------------------------------------------------

// ---- Newton tolerance and weights -------------------------------------------------------------------------
// Iteration budget of simplified Newton.  With fixed or replayed steps a failed Newton iteration cannot be
// rescued by a smaller step (drive() reports the failure), so the budget is larger there; the convergence
// test is the same, so a solve that converges within the adaptive budget takes the same iterations.
inline int newton_budget(const Options& o, int adaptive) {
    return (o.fixed_step || o.n_replay > 0) ? std::max(adaptive, 20) : adaptive;
}

inline double newton_tolerance(double rtol) {
    const double eps = std::numeric_limits<double>::epsilon();
    return std::max(10.0 * eps / rtol, std::min(0.03, std::sqrt(rtol)));
}

// Weights of the Newton norm, 1 / (atol + rtol |y_i|), on values only.  Newton's stopping decisions must not
// depend on partials: a dual run has to iterate exactly as often as the double run it differentiates.
struct NewtonWeights {
    std::vector<double> w;
    template <class T> void set(const T* y, int n, const Options& o) {
        w.resize(n);
        fill(w.data(), y, n, o.atol, o.rtol);
    }
    // (restrict: w and y do not overlap, so the compiler may use SIMD divisions; each weight is unchanged.)
    template <class T>
    static void fill(double* __restrict weights, const T* __restrict y, int n, double atol, double rtol) {
        for (int i = 0; i < n; ++i) weights[i] = 1.0 / (atol + rtol * std::fabs(value_of(y[i])));
    }
    // RMS of x_i w_{i mod n} over `count` entries (count may be a multiple of n: stage vectors).  The squares are
    // summed in NORM_LANES partial sums, entry i of each block of n going to sum (i mod NORM_LANES) in increasing
    // order, and the partial sums are added pairwise at the end: one running sum would make the norm of a long
    // vector a chain of dependent additions (latency-bound), and the replays of the adjoint sweeps
    // (weighted_norm, symsens_newton_replay.hpp) sum in exactly this order.
    static constexpr int NORM_LANES = 8;
    template <class T> double norm(const T* x, int count) const {
        const int n = static_cast<int>(w.size());
        double partial[NORM_LANES] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        for (int start = 0; start < count && n > 0; start += n) {
            const int length = std::min(n, count - start);
            const T* xb = x + start;
            int i = 0;
#if SYMSENS_PAIRS
            if constexpr (use_pairs<T>) {
                using namespace pairs;
                d2 s0 = load(partial), s1 = load(partial + 2), s2 = load(partial + 4), s3 = load(partial + 6);
                for (; i + NORM_LANES <= length; i += NORM_LANES) {
                    const d2 q0 = load(xb + i) * load(&w[i]), q1 = load(xb + i + 2) * load(&w[i + 2]);
                    const d2 q2 = load(xb + i + 4) * load(&w[i + 4]), q3 = load(xb + i + 6) * load(&w[i + 6]);
                    s0 = s0 + q0 * q0;
                    s1 = s1 + q1 * q1;
                    s2 = s2 + q2 * q2;
                    s3 = s3 + q3 * q3;
                }
                store(partial, s0); store(partial + 2, s1); store(partial + 4, s2); store(partial + 6, s3);
            }
#endif
            for (; i < length; ++i) {
                const double q = value_of(xb[i]) * w[i];
                partial[i % NORM_LANES] += q * q;
            }
        }
        const double s = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                         ((partial[4] + partial[5]) + (partial[6] + partial[7]));
        return std::sqrt(s / std::max(count, 1));
    }
};

// ---- Newton convergence monitor (HW II, IV.8; scipy's Radau and BDF) -----------------------------------------
// Called with the weighted norm of each correction before it is applied:
//   k = 1:  converged only if the correction is at the rounding floor; otherwise iterate (the rate is unknown);
//   k > 1:  theta = |dZ_k| / |dZ_{k-1}|; diverged if theta >= 1 or if the rate predicts that the correction
//           after the last allowed iteration still exceeds tol (theta^(kmax - k) / (1 - theta) |dZ_k| > tol,
//           HW II, IV.8); converged if theta / (1 - theta) |dZ_k| <= tol (HW II, IV.8).
// Unlike RADAU5 we do not carry eta = theta/(1 - theta) from one solve to the next to allow convergence after a
// single iteration: with a Jacobian that is kept across steps, a stale eta hides a stale J (the actual rate is
// never measured, so J is never refreshed) and leaves Newton errors far above tol.  Every converged solve
// therefore measures its own rate, which also drives the Jacobian refresh (rate > 1e-3 after more than two
// iterations, as scipy).  The floor 4 eps / rtol is the weighted size of a few ulps of y: below it the
// corrections are rounding noise and their ratio means nothing.
struct NewtonControl {
    enum Verdict { CONTINUE = 0, CONVERGED = 1, DIVERGED = -1 };
    double tol = 1e-3;
    double floor = 0.0;
    int max_iterations = 7;
    double previous_norm = 0.0;
    double rate = 0.0;            // last theta of the current solve (0 if it converged in one iteration)
    int iterations = 0;

    void configure(double rtol, int max_iter) {
        tol = newton_tolerance(rtol);
        floor = 4.0 * std::numeric_limits<double>::epsilon() / rtol;
        max_iterations = max_iter;
    }
    void start() {
        previous_norm = 0.0;
        rate = 0.0;
        iterations = 0;
    }
    // DIVERGED: do not apply the correction.  CONVERGED: apply it and stop.  CONTINUE: apply it and iterate.
    Verdict check(double norm) {
        ++iterations;
        if (!std::isfinite(norm)) return DIVERGED;
        if (norm <= floor) return CONVERGED;
        if (iterations > 1) {
            rate = norm / previous_norm;
            if (!(rate < 1.0)) return DIVERGED;
            if (std::pow(rate, max_iterations - iterations) / (1.0 - rate) * norm > tol) return DIVERGED;
            if (rate / (1.0 - rate) * norm <= tol) return CONVERGED;
        }
        previous_norm = norm;
        if (iterations >= max_iterations) return DIVERGED;
        return CONTINUE;
    }
};

// ---- dense LU ---------------------------------------------------------------------------------------------
// symsens::Lu (symsens_solver.hpp): pivots on values, whole rows swapped, all interchanges applied before the
// substitution (LAPACK getrf/getrs convention), structurally zero multipliers skipped.
template <class T> using DenseLu = Lu<T>;

// ---- complex LU over a real scalar type ------------------------------------------------------------------
// std::complex<T> is only specified for the built-in floating types, so duals need their own complex LU.
// Partial pivoting on |value| of each entry, whole rows swapped, interchanges applied before the substitution
// (as DenseLu<T>).
template <class T>
struct ComplexLu {
    int n = 0;
    std::vector<T> re, im;
    std::vector<int> pivot;

    static double squared_modulus(const T& a, const T& b) {
        const double x = value_of(a), y = value_of(b);
        return x * x + y * y;
    }
    // Factor (A_re + i A_im), both n x n row-major.
    bool factor(const T* a_re, const T* a_im, int size) {
        n = size;
        re.assign(a_re, a_re + size * size);
        im.assign(a_im, a_im + size * size);
        pivot.resize(size);
        for (int k = 0; k < n; ++k) {
            // Pivot on |a|^2 = re^2 + im^2 (the order of hypot without its cost; hypot decides finiteness).
            int p = k;
            double best = squared_modulus(re[k * n + k], im[k * n + k]);
            for (int i = k + 1; i < n; ++i) {
                const double v = squared_modulus(re[i * n + k], im[i * n + k]);
                if (v > best) { best = v; p = i; }
            }
            pivot[k] = p;
            const double modulus = std::hypot(value_of(re[p * n + k]), value_of(im[p * n + k]));
            if (modulus == 0.0 || !std::isfinite(modulus)) return false;
            if (p != k)
                for (int j = 0; j < n; ++j) {
                    std::swap(re[k * n + j], re[p * n + j]);
                    std::swap(im[k * n + j], im[p * n + j]);
                }
            // 1 / (a + ib) = (a - ib) / (a^2 + b^2)
            const T pr = re[k * n + k], pi = im[k * n + k];
            const T d = pr * pr + pi * pi;
            const T inv_re = pr / d, inv_im = -(pi / d);
            for (int i = k + 1; i < n; ++i) {
                const T xr = re[i * n + k], xi = im[i * n + k];
                const T mr = xr * inv_re - xi * inv_im;
                const T mi = xr * inv_im + xi * inv_re;
                re[i * n + k] = mr;
                im[i * n + k] = mi;
                for (int j = k + 1; j < n; ++j) {
                    const T ur = re[k * n + j], ui = im[k * n + j];
                    re[i * n + j] = re[i * n + j] - (mr * ur - mi * ui);
                    im[i * n + j] = im[i * n + j] - (mr * ui + mi * ur);
                }
            }
        }
        return true;
    }
    // Solve in place: (x_re + i x_im) <- A^-1 (x_re + i x_im).
    void solve(T* x_re, T* x_im) const {
        for (int k = 0; k < n; ++k)
            if (pivot[k] != k) {
                std::swap(x_re[k], x_re[pivot[k]]);
                std::swap(x_im[k], x_im[pivot[k]]);
            }
        for (int k = 0; k < n; ++k) {
            for (int i = k + 1; i < n; ++i) {
                const T mr = re[i * n + k], mi = im[i * n + k];
                x_re[i] = x_re[i] - (mr * x_re[k] - mi * x_im[k]);
                x_im[i] = x_im[i] - (mr * x_im[k] + mi * x_re[k]);
            }
        }
        for (int k = n - 1; k >= 0; --k) {
            T sr = x_re[k], si = x_im[k];
            for (int j = k + 1; j < n; ++j) {
                const T ur = re[k * n + j], ui = im[k * n + j];
                sr = sr - (ur * x_re[j] - ui * x_im[j]);
                si = si - (ur * x_im[j] + ui * x_re[j]);
            }
            const T pr = re[k * n + k], pi = im[k * n + k];
            const T d = pr * pr + pi * pi;
            x_re[k] = (sr * pr + si * pi) / d;
            x_im[k] = (si * pr - sr * pi) / d;
        }
    }
};

// ---- block structure of the Jacobian -------------------------------------------------------------------------
// The Jacobian of the augmented forward-sensitivity system u = (y, S_1, ..., S_P) is block lower triangular,
// [[J, 0, ..., 0], [D_1, J, 0, ...], ..., [D_P, 0, ..., J]] (AugmentedProblem), so every linear system with
// shift I - scale M splits into P + 1 systems with the *same* n x n matrix shift I - scale J:
//     x_0 = A^-1 b_0,    x_j = A^-1 (b_j + scale D_j x_0),    A = shift I - scale J
// (the staggered direct solve of CVODES).  One LU of n x n instead of n(P+1) x n(P+1): O(n^3 + P n^2) per
// factorisation and solve instead of O(n^3 P^3), and no row interchange can mix sensitivity rows into state rows.
template <class Problem> struct jacobian_blocks {
    static constexpr bool structured = false;
    static int block_size(const Problem& problem) { return problem.dimension(); }
};
template <class Model> struct jacobian_blocks<AugmentedProblem<Model>> {
    static constexpr bool structured = true;
    static int block_size(const AugmentedProblem<Model>&) { return Model::n_states; }
};

// ---- the iteration matrix ----------------------------------------------------------------------------------
// J = df/dy at some (t, y) (N x N), and the LU of  A = shift I - scale J  (shift, scale chosen by the method:
// SDIRK and BDF use I - (h gamma) J, Radau IIA and Rosenbrock use (1/(h gamma)) I - J), block-wise for the
// augmented system (see jacobian_blocks): the LU is of the leading nb x nb block, nb = N / blocks.
template <class T>
struct DenseIterationMatrix {
    int n = 0;                       // N, the full dimension
    int nb = 0;                      // block size (= n unless the problem is block structured)
    int blocks = 1;
    std::vector<T> J, M;
    DenseLu<T> lu;
    bool have_jacobian = false;
    bool jacobian_current = false;   // J was evaluated at the start point of the step being attempted
    bool have_lu = false;
    T lu_shift, lu_scale;            // the (shift, scale) the current LU belongs to
    long jacobian_version = 0, lu_jacobian_version = -1;

    ComplexLu<T> complex_lu;         // Radau IIA: the LU of (alpha + i beta) I - J (leading block)
    std::vector<T> M_im;
    // Dual scalars (the discrete forward mode): the LUs of the values only, reused for every partial
    // (staggered_duals in symsens_solver.hpp); M and M_im then keep the unfactored dual matrices.
    static constexpr bool staggered = staggered_duals<T>::value;
    Lu<double> lu0;
    ComplexLu<double> complex_lu0;
    std::vector<double> M0, M0_im;
    mutable std::vector<double> xv, xi, rv, ri;

    explicit DenseIterationMatrix(int dimension = 0) { resize(dimension); }
    void resize(int dimension) {
        n = nb = dimension;
        blocks = 1;
        J.assign(static_cast<size_t>(n) * n, T(0.0));
        M.assign(static_cast<size_t>(n) * n, T(0.0));
    }
    template <class Problem, class Time> void evaluate(const Problem& problem, const Time& t, const T* y) {
        // The augmented system: only the blocks the staggered solve reads (no N x N fill, no copies of J).
        if constexpr (jacobian_blocks<Problem>::structured) {
            problem.used_jacobian(t, y, J.data());
        } else {
            problem.jacobian(t, y, J.data());
        }
        have_jacobian = true;
        jacobian_current = true;
        ++jacobian_version;
        nb = jacobian_blocks<Problem>::block_size(problem);
        blocks = n / nb;
    }
    // Factor shift I - scale J unless the LU already is that matrix.  Returns false if it is singular.
    template <class Problem> bool factor(const Problem& problem, const T& shift, const T& scale) {
        if (have_lu && lu_jacobian_version == jacobian_version && identical(shift, lu_shift) && identical(scale, lu_scale))
            return true;
        for (int i = 0; i < nb; ++i)
            for (int j = 0; j < nb; ++j) M[i * nb + j] = (i == j ? shift : T(0.0)) - scale * J[i * n + j];
        ++problem.stats->nlu;
        if constexpr (staggered) {
            M0.resize(static_cast<size_t>(nb) * nb);
            for (size_t q = 0; q < M0.size(); ++q) M0[q] = M[q].v;
            have_lu = lu0.factor(M0.data(), nb);
            A_factored = M;  // A itself: its partials multiply x.v in every solve
        } else {
            have_lu = lu.factor(M.data(), nb);
        }
        lu_shift = shift;
        lu_scale = scale;
        lu_jacobian_version = jacobian_version;
        return have_lu;
    }
    // x_b += s D_b x_0 for block b >= 1 (D_b: rows of block b, columns of block 0).
    void add_coupling(T* xb, const T* x0, int b, const T& s) const {
        for (int i = 0; i < nb; ++i) {
            T acc(0.0);
            const T* row = &J[static_cast<size_t>(b * nb + i) * n];
            for (int l = 0; l < nb; ++l) acc = acc + row[l] * x0[l];
            xb[i] = xb[i] + s * acc;
        }
    }
    std::vector<T> A_factored, A_complex_re, A_complex_im;   // staggered: the dual matrices factored
    // x <- A^-1 x for dual x with A dual, by the LU of A's values (see staggered_duals).
    void staggered_solve(const Lu<double>& lu_values, const std::vector<T>& A, T* x) const {
        constexpr int P = staggered_duals<T>::partials;
        xv.resize(nb);
        rv.resize(nb);
        for (int i = 0; i < nb; ++i) xv[i] = value_of(x[i]);
        lu_values.solve(xv.data());
        for (int j = 0; j < P; ++j) {
            for (int i = 0; i < nb; ++i) {
                double acc = x[i].d[j];
                const T* row = &A[static_cast<size_t>(i) * nb];
                for (int l = 0; l < nb; ++l) acc -= row[l].d[j] * xv[l];
                rv[i] = acc;
            }
            lu_values.solve(rv.data());
            for (int i = 0; i < nb; ++i) x[i].d[j] = rv[i];
        }
        for (int i = 0; i < nb; ++i) x[i].v = xv[i];
    }
    void solve_block(T* x) const {
        if constexpr (staggered) {
            staggered_solve(lu0, A_factored, x);
        } else {
            lu.solve(x);
        }
    }
    void solve(T* x) const {
        solve_block(x);
        for (int b = 1; b < blocks; ++b) {
            add_coupling(x + b * nb, x, b, lu_scale);
            solve_block(x + b * nb);
        }
    }
    // Radau IIA's complex system: factor (sr + i si) I - J of the leading block (M holds its real part).
    bool factor_complex(const T& sr, const T& si) {
        M_im.assign(static_cast<size_t>(nb) * nb, T(0.0));
        for (int i = 0; i < nb; ++i)
            for (int j = 0; j < nb; ++j) {
                M[i * nb + j] = (i == j ? sr : T(0.0)) - J[i * n + j];
                if (i == j) M_im[i * nb + j] = si;
            }
        if constexpr (staggered) {
            M0.resize(static_cast<size_t>(nb) * nb);
            M0_im.resize(static_cast<size_t>(nb) * nb);
            for (size_t q = 0; q < M0.size(); ++q) { M0[q] = M[q].v; M0_im[q] = M_im[q].v; }
            A_complex_re.assign(M.begin(), M.begin() + static_cast<size_t>(nb) * nb);
            A_complex_im = M_im;
            return complex_lu0.factor(M0.data(), M0_im.data(), nb);
        } else {
            return complex_lu.factor(M.data(), M_im.data(), nb);
        }
    }
    void complex_solve_block(T* x_re, T* x_im) const {
        if constexpr (staggered) {
            constexpr int P = staggered_duals<T>::partials;
            xv.resize(nb); xi.resize(nb); rv.resize(nb); ri.resize(nb);
            for (int i = 0; i < nb; ++i) { xv[i] = value_of(x_re[i]); xi[i] = value_of(x_im[i]); }
            complex_lu0.solve(xv.data(), xi.data());
            for (int j = 0; j < P; ++j) {
                for (int i = 0; i < nb; ++i) {
                    double ar = x_re[i].d[j], ai = x_im[i].d[j];
                    for (int l = 0; l < nb; ++l) {
                        const T& mr = A_complex_re[static_cast<size_t>(i) * nb + l];
                        const T& mi = A_complex_im[static_cast<size_t>(i) * nb + l];
                        ar -= mr.d[j] * xv[l] - mi.d[j] * xi[l];
                        ai -= mr.d[j] * xi[l] + mi.d[j] * xv[l];
                    }
                    rv[i] = ar;
                    ri[i] = ai;
                }
                complex_lu0.solve(rv.data(), ri.data());
                for (int i = 0; i < nb; ++i) { x_re[i].d[j] = rv[i]; x_im[i].d[j] = ri[i]; }
            }
            for (int i = 0; i < nb; ++i) { x_re[i].v = xv[i]; x_im[i].v = xi[i]; }
        } else {
            complex_lu.solve(x_re, x_im);
        }
    }
    // (x_re + i x_im) <- ((sr + i si) I - J)^-1 (x_re + i x_im), block-wise as solve() (coupling scale 1).
    void complex_solve(T* x_re, T* x_im) const {
        complex_solve_block(x_re, x_im);
        for (int b = 1; b < blocks; ++b) {
            add_coupling(x_re + b * nb, x_re, b, T(1.0));
            add_coupling(x_im + b * nb, x_im, b, T(1.0));
            complex_solve_block(x_re + b * nb, x_im + b * nb);
        }
    }
    // solve(x) and complex_solve(x_re, x_im) (SparseIterationMatrix interleaves them; here one after the other).
    void solve_pair(T* x, T* x_re, T* x_im) const {
        solve(x);
        complex_solve(x_re, x_im);
    }
};
// ---- df/dt for Rosenbrock methods -----------------------------------------------------------------------------
// Rosenbrock methods need f_t(t, y) for non-autonomous problems.  In order of preference:
//   1. the problem's own member time_derivative(t, y, f, ft) (f = f(t, y) given), if it has one;
//   2. for ModelProblem and AugmentedProblem: exactly, by evaluating the model over Dual<T, 1> with t seeded
//      (one evaluation at about twice the cost of f; nested duals when T is itself a dual);
//   3. otherwise a forward difference (see symsens_rosenbrock.hpp).
template <class Problem, class Time, class T, class = void>
struct has_time_derivative : std::false_type {};
template <class Problem, class Time, class T>
struct has_time_derivative<Problem, Time, T,
                           std::void_t<decltype(std::declval<const Problem&>().time_derivative(
                               std::declval<const Time&>(), std::declval<const T*>(), std::declval<const T*>(),
                               std::declval<T*>()))>> : std::true_type {};

template <class Problem> struct has_exact_time_derivative : std::false_type {};
template <class Model, class T> struct has_exact_time_derivative<ModelProblem<Model, T>> : std::true_type {};
template <class Model> struct has_exact_time_derivative<AugmentedProblem<Model>> : std::true_type {};

// A model policy may declare `static constexpr bool autonomous = true` (the generated driver does when t occurs
// nowhere in f): its f_t is zero, and the dual-in-t routines below are then never instantiated (for the
// augmented system they are among the largest functions of a library, and the steppers skip f_t for such a
// model anyway).
template <class Model, class = void> struct declared_autonomous : std::false_type {};
template <class Model>
struct declared_autonomous<Model, std::void_t<decltype(Model::autonomous)>>
    : std::integral_constant<bool, Model::autonomous> {};

// f_t = d/dt f(t, y, p) by forward-mode differentiation in t alone.  Counted as one evaluation of f.
template <class Model, class T, class Time>
void exact_time_derivative(const ModelProblem<Model, T>& problem, const Time& t, const T* y, T* ft) {
    constexpr int n = Model::n_states;
    if constexpr (declared_autonomous<Model>::value) {
        for (int i = 0; i < n; ++i) ft[i] = T(0.0);
    } else {
        ++problem.stats->nfev;
        using TD = Dual<T, 1>;
        TD yd[n], fd[n];
        std::vector<TD> pd(Model::n_parameters);
        for (int k = 0; k < Model::n_parameters; ++k) pd[k] = TD(problem.p[k]);
        for (int i = 0; i < n; ++i) yd[i] = TD(y[i]);
        Model::rhs(TD::variable(T(t), 0), yd, pd.data(), fd);
        for (int i = 0; i < n; ++i) ft[i] = fd[i].d[0];
    }
}
// g_t of the augmented system g = (f, J S + F_p): (f_t, J_t S + F_p,t).  With the model's sparsity, from f, J's
// non-zeros and F_p over Dual<double, 1> in t (the terms are linear in S, so this is exact, and these
// instantiations are a fraction of augmented_rhs over duals); otherwise from augmented_rhs over duals.
template <class Model>
void exact_time_derivative(const AugmentedProblem<Model>& problem, double t, const double* u, double* gt) {
    using TD = Dual<double, 1>;
    constexpr int n = Model::n_states;
    constexpr int np = Model::n_sensitivity_parameters;
    const int N = problem.dimension();
    if constexpr (declared_autonomous<Model>::value) {
        for (int i = 0; i < N; ++i) gt[i] = 0.0;
    } else if constexpr (has_sparsity<Model>::value) {
        ++problem.stats->nfev;
        using S = typename Model::sparsity;
        std::vector<TD> yd(n), fd(n), jd(S::nnz > 0 ? S::nnz : 1), fpd(n * np), pd(Model::n_parameters);
        for (int k = 0; k < Model::n_parameters; ++k) pd[k] = TD(problem.p[k]);
        for (int i = 0; i < n; ++i) yd[i] = TD(u[i]);
        const TD td = TD::variable(t, 0);
        Model::rhs(td, yd.data(), pd.data(), fd.data());
        Model::jacobian_values(td, yd.data(), pd.data(), jd.data());
        Model::parameter_jacobian(td, yd.data(), pd.data(), fpd.data());
        const int* row_ptr = S::row_ptr();
        const int* columns = S::columns();
        for (int i = 0; i < n; ++i) gt[i] = fd[i].d[0];
        for (int j = 0; j < np; ++j) {
            const double* s = u + n + j * n;
            for (int i = 0; i < n; ++i) {
                double value = fpd[i * np + j].d[0];
                for (int r = row_ptr[i]; r < row_ptr[i + 1]; ++r) value += jd[r].d[0] * s[columns[r]];
                gt[n + j * n + i] = value;
            }
        }
    } else {
        ++problem.stats->nfev;
        std::vector<TD> ud(N), gd(N), pd(Model::n_parameters);
        for (int k = 0; k < Model::n_parameters; ++k) pd[k] = TD(problem.p[k]);
        for (int i = 0; i < N; ++i) ud[i] = TD(u[i]);
        Model::augmented_rhs(TD::variable(t, 0), ud.data(), pd.data(), gd.data());
        for (int i = 0; i < N; ++i) gt[i] = gd[i].d[0];
    }
}

// ---- which iteration matrix ----------------------------------------------------------------------------------
// Dense unless the generated driver asks for the fixed-pattern sparse LU (symsens_sparse.hpp), by defining
// SYMSENS_SPARSE_LINEAR_ALGEBRA to 1 before including this header (the model then supplies its pattern).
#if defined(SYMSENS_SPARSE_LINEAR_ALGEBRA) && SYMSENS_SPARSE_LINEAR_ALGEBRA
}  // namespace symsens
#include "symsens_sparse.hpp"
namespace symsens {
template <class T> using IterationMatrix = SparseIterationMatrix<T>;
#else
template <class T> using IterationMatrix = DenseIterationMatrix<T>;
#endif

}  // namespace symsens

