// Radau IIA, 3 stages, order 5 (the method of RADAU5), with Hairer's transformed simplified Newton and the
// RADAU5 embedded error estimate.  Hairer & Wanner II, Sect. IV.8.
//
// Collocation system in Z_i = Y_i - y (i = 1..3, c_3 = 1):
//
//   Z = h (A (x) I) F(Z),   F(Z)_i = f(t + c_i h, y + Z_i),     y_new = y + Z_3   (stiffly accurate)
//
// Simplified Newton with J = f'(t, y) on (h^-1 A^-1 (x) I - I (x) J) dZ = -h^-1 (A^-1 (x) I) Z + F(Z).  With
// W = (T^-1 (x) I) Z and T^-1 A^-1 T = [[mu, 0, 0], [0, alpha, -beta], [0, beta, alpha]] it splits into one
// real and one complex n x n system (HW II, Sect. IV.8):
//
//   (mu/h I - J) dW_1                   = (T^-1 F)_1 - mu/h W_1
//   ((alpha + i beta)/h I - J) (dW_2 + i dW_3) = (T^-1 F)_2 + i (T^-1 F)_3 - (alpha + i beta)/h (W_2 + i W_3)
//
// so each Newton iteration costs one real and one complex solve instead of a solve with the 3n x 3n matrix,
// and a new step size costs one real and one complex LU (counted as 2 in stats->nlu).  We chose this
// transformed form (not the real 3n x 3n system) because it is 5x cheaper per factorisation and is what the
// error estimate needs anyway (the LU of mu/h I - J).  The complex LU is our own (ComplexLu<T>), since
// std::complex is unspecified for dual numbers.
//
// Error estimate (HW II, Sect. IV.8, as in RADAU5): with gamma0 = 1/mu,
//
//   err = (I - h gamma0 J)^-1 (gamma0 h f(t, y) + e_1 Z_1 + e_2 Z_2 + e_3 Z_3)
//       = (mu/h I - J)^-1 (f(t, y) + (mu/h)(e_1 Z_1 + e_2 Z_2 + e_3 Z_3)),
//
// the difference to an embedded solution of order 3; on the first step and after a rejection an estimate
// above 1 is improved once by replacing f(t, y) with f(t, y + err) (as RADAU5 and scipy's Radau do).
//
// Starting values: the collocation polynomial of the last accepted step, extrapolated (HW II, Sect. IV.8,
// starting values): Z_i^0 = u(1 + c_i h / h_old) - u(1), u the cubic with u(0) = 0, u(c_j) = Z_j^old; zero on the first step.
// Newton stops as in symsens_implicit.hpp's NewtonControl (at most 6 iterations); on failure with a Jacobian
// from an earlier point J is re-evaluated and the step retried at the same h before it is given up.  The LU pair
// is kept while h (value and partials) and J are unchanged; J is kept across accepted steps unless Newton
// converged slowly (more than 2 iterations with rate > 1e-3, as scipy's Radau).
#pragma once

#include <algorithm>
#include <vector>

#include "symsens_implicit.hpp"
#include "symsens_solver.hpp"

namespace symsens {

// ---- the coefficients, as the generator fills them ----------------------------------------------------------
// a            3 x 3 row-major, the Radau IIA matrix A (a[i*3 + j] = a_ij)
// b            3 weights (equal to the last row of A; unused by the stepper, kept for the record)
// c            3 nodes ((4 - sqrt 6)/10, (4 + sqrt 6)/10, 1)
// mu           the real eigenvalue of A^-1
// alpha, beta  the complex pair of eigenvalues of A^-1 is alpha +- i beta, with the sign of beta tied to T below
// t, ti        3 x 3 row-major real matrices, ti = t^-1, with  ti A^-1 t = [[mu, 0, 0], [0, alpha, -beta],
//              [0, beta, alpha]]  (t = [v, u, -w] for the eigenvector u + i w of alpha + i beta)
// gamma0       1 / mu
// e            3 weights of the error estimate on Z: e = gamma0 (-13 - 7 sqrt 6, -13 + 7 sqrt 6, -1) / 3, i.e.
//              e^T = (bhat - b)^T A^-1 for the order-3 embedded weights bhat (with bhat_0 = gamma0 on f(t, y))
// error_order  4 (the embedded solution has order 3)
template <class T>
struct RadauTableau {
    std::vector<T> a, b, c;
    T mu, alpha, beta;
    std::vector<T> t, ti;
    T gamma0;
    std::vector<T> e;
    int error_order = 4;
};

// Element-wise pieces of the Newton iteration over distinct (non-overlapping) rows; for T = double two entries at
// a time (use_pairs, symsens_implicit.hpp), each computed by the same expression as the scalar tail.
// out_i = m0 x0_i + m1 x1_i + m2 x2_i (one row of a 3 x 3 transform of the stage vectors).
template <class T>
inline void radau_combine(T* __restrict out, const T& m0, const T& m1, const T& m2, const T* __restrict x0,
                          const T* __restrict x1, const T* __restrict x2, int n) {
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        const d2 a = splat(m0), b = splat(m1), c = splat(m2);
        for (; i + 2 <= n; i += 2) store(out + i, a * load(x0 + i) + b * load(x1 + i) + c * load(x2 + i));
    }
#endif
    for (; i < n; ++i) out[i] = m0 * x0[i] + m1 * x1[i] + m2 * x2[i];
}
template <class T> inline void radau_sum(T* __restrict out, const T* __restrict a, const T* __restrict b, int n) {
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        for (; i + 2 <= n; i += 2) store(out + i, load(a + i) + load(b + i));
    }
#endif
    for (; i < n; ++i) out[i] = a[i] + b[i];
}
template <class T> inline void radau_accumulate(T* __restrict a, const T* __restrict b, int n) {
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        for (; i + 2 <= n; i += 2) store(a + i, load(a + i) + load(b + i));
    }
#endif
    for (; i < n; ++i) a[i] = a[i] + b[i];
}
// The right-hand sides of the transformed Newton systems: g = (T^-1 (x) I) F and
//   dW_1 = g_1 - mu/h W_1,   dW_2 + i dW_3 = g_2 + i g_3 - (alpha + i beta)/h (W_2 + i W_3),
// with (alpha + i beta)/h (w2 + i w3) = (al w2 - be w3) + i (be w2 + al w3).
template <class T>
inline void radau_residual(T* __restrict out1, T* __restrict out2, T* __restrict out3, const T* __restrict F1,
                           const T* __restrict F2, const T* __restrict F3, const T* __restrict W1,
                           const T* __restrict W2, const T* __restrict W3, const T* ti, const T& mu_h,
                           const T& al_h, const T& be_h, int n) {
    const T t00 = ti[0], t01 = ti[1], t02 = ti[2], t10 = ti[3], t11 = ti[4], t12 = ti[5], t20 = ti[6], t21 = ti[7],
            t22 = ti[8];
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        const d2 a00 = splat(t00), a01 = splat(t01), a02 = splat(t02), a10 = splat(t10), a11 = splat(t11),
                 a12 = splat(t12), a20 = splat(t20), a21 = splat(t21), a22 = splat(t22);
        const d2 mu = splat(mu_h), al = splat(al_h), be = splat(be_h);
        for (; i + 2 <= n; i += 2) {
            const d2 f1 = load(F1 + i), f2 = load(F2 + i), f3 = load(F3 + i);
            const d2 g0 = a00 * f1 + a01 * f2 + a02 * f3;
            const d2 g1 = a10 * f1 + a11 * f2 + a12 * f3;
            const d2 g2 = a20 * f1 + a21 * f2 + a22 * f3;
            const d2 w1 = load(W1 + i), w2 = load(W2 + i), w3 = load(W3 + i);
            store(out1 + i, g0 - mu * w1);
            store(out2 + i, g1 - (al * w2 - be * w3));
            store(out3 + i, g2 - (be * w2 + al * w3));
        }
    }
#endif
    for (; i < n; ++i) {
        const T g0 = t00 * F1[i] + t01 * F2[i] + t02 * F3[i];
        const T g1 = t10 * F1[i] + t11 * F2[i] + t12 * F3[i];
        const T g2 = t20 * F1[i] + t21 * F2[i] + t22 * F3[i];
        const T w1 = W1[i], w2 = W2[i], w3 = W3[i];
        out1[i] = g0 - mu_h * w1;
        out2[i] = g1 - (al_h * w2 - be_h * w3);
        out3[i] = g2 - (be_h * w2 + al_h * w3);
    }
}

template <class T>
struct RadauIIA3 {
    RadauTableau<T> tableau;
    int n;
    Options options;
    IterationMatrix<T> matrix;   // J, the real LU of mu/h I - J and the complex LU of (alpha + i beta)/h I - J
    bool have_complex_lu = false;
    T complex_lu_h;
    long complex_lu_version = -1;
    NewtonControl newton;
    NewtonWeights weights;
    bool refresh_jacobian = false, slow_convergence = false;
    bool first_step = true, after_rejection = false;
    // The last accepted step's stages (for the starting values of the next) and the current attempt's.
    std::vector<T> Z_old, Z_try;
    T h_old, h_try;
    bool have_old = false;
    std::vector<T> Z, W, F, dW, rhs_c, tmp;
    std::vector<T> Z0, ez, f_err;   // per-attempt work arrays, allocated once

    RadauIIA3(const RadauTableau<T>& tab, int dimension, const Options& o)
        : tableau(tab), n(dimension), options(o), matrix(dimension),
          Z_old(3 * static_cast<size_t>(dimension)), Z_try(3 * static_cast<size_t>(dimension)),
          Z(3 * static_cast<size_t>(dimension)), W(3 * static_cast<size_t>(dimension)),
          F(3 * static_cast<size_t>(dimension)), dW(3 * static_cast<size_t>(dimension)),
          rhs_c(static_cast<size_t>(dimension)), tmp(static_cast<size_t>(dimension)),
          Z0(3 * static_cast<size_t>(dimension)), ez(static_cast<size_t>(dimension)),
          f_err(static_cast<size_t>(dimension)) {
        newton.configure(o.rtol, newton_budget(o, 6));
    }

    int error_order() const { return tableau.error_order; }
    void notify_rejected() { after_rejection = true; }
    void notify_accepted() {
        matrix.jacobian_current = false;
        if (slow_convergence) refresh_jacobian = true;
        first_step = false;
        after_rejection = false;
        Z_old = Z_try;
        h_old = h_try;
        have_old = true;
    }

    template <class Problem> bool factor(const Problem& problem, const T& hT) {
        if (!matrix.factor(problem, tableau.mu / hT, T(1.0))) return false;
        if (have_complex_lu && complex_lu_version == matrix.jacobian_version && identical(complex_lu_h, hT)) return true;
        // The leading block only (the whole matrix unless the problem is the block-structured augmented system).
        ++problem.stats->nlu;
        have_complex_lu = matrix.factor_complex(tableau.alpha / hT, tableau.beta / hT);
        complex_lu_h = hT;
        complex_lu_version = matrix.jacobian_version;
        return have_complex_lu;
    }

    // (x_re + i x_im) <- ((alpha + i beta)/h I - J)^-1 (x_re + i x_im), block-wise as IterationMatrix::solve.
    void complex_solve(T* x_re, T* x_im) const { matrix.complex_solve(x_re, x_im); }

    // Lagrange basis on {0, c_1, c_2, c_3} at x, for the node c_j (j = 0..2): u(x) = sum_j Z_j L_j(x).
    T lagrange(int j, const T& x) const {
        const T& cj = tableau.c[j];
        T r = x / cj;
        for (int m = 0; m < 3; ++m)
            if (m != j) r = r * (x - tableau.c[m]) / (cj - tableau.c[m]);
        return r;
    }

    template <class Problem, class Time>
    int newton_solve(const Problem& problem, const Time& t, const Time& h, const T& hT, const T* y, const T* Z_start) {
        const T* ti = tableau.ti.data();
        const T* tt = tableau.t.data();
        const int n3 = 3 * n;
        for (int k = 0; k < n3; ++k) Z[k] = Z_start[k];
        // W = (T^-1 (x) I) Z, Z = (T (x) I) W and the residual below: stage by stage over contiguous rows (the
        // helpers' restrict lets the compiler use SIMD); each entry is computed by the same expression as before.
        for (int r = 0; r < 3; ++r)
            radau_combine(&W[r * n], ti[r * 3 + 0], ti[r * 3 + 1], ti[r * 3 + 2], &Z[0], &Z[n], &Z[2 * n], n);
        const T mu_h = tableau.mu / hT, al_h = tableau.alpha / hT, be_h = tableau.beta / hT;
        newton.start();
        for (;;) {
            for (int s = 0; s < 3; ++s) {
                radau_sum(tmp.data(), y, &Z[s * n], n);
                problem.rhs(t + as_time<Time>(tableau.c[s]) * h, tmp.data(), &F[s * n]);
            }
            ++problem.stats->newton_iterations;
            if (!all_finite(F.data(), n3)) return STATUS_NON_FINITE;
            radau_residual(&dW[0], &dW[n], &dW[2 * n], &F[0], &F[n], &F[2 * n], &W[0], &W[n], &W[2 * n], ti, mu_h,
                           al_h, be_h, n);
            // matrix.solve(&dW[0]) and complex_solve(&dW[n], &dW[2 * n]), independent systems, solved together.
            matrix.solve_pair(&dW[0], &dW[n], &dW[2 * n]);
            const auto verdict = newton.check(weights.norm(dW.data(), n3));
            if (verdict == NewtonControl::DIVERGED) return STATUS_NEWTON_FAILURE;
            radau_accumulate(W.data(), dW.data(), n3);
            for (int r = 0; r < 3; ++r)
                radau_combine(&Z[r * n], tt[r * 3 + 0], tt[r * 3 + 1], tt[r * 3 + 2], &W[0], &W[n], &W[2 * n], n);
            if (verdict == NewtonControl::CONVERGED) {
                if (newton.iterations > 2 && newton.rate > 1e-3) slow_convergence = true;
                return STATUS_SUCCESS;
            }
        }
    }

    template <class Problem, class Time>
    int attempt(const Problem& problem, const Time& t, const Time& h, const T* y, const T* f, T* y_new, T* f_new,
                T* err) {
        const T hT = T(h);
        slow_convergence = false;
        if (!matrix.have_jacobian || refresh_jacobian) {
            matrix.evaluate(problem, t, y);
            refresh_jacobian = false;
        }
        if (!factor(problem, hT)) return STATUS_NEWTON_FAILURE;
        weights.set(y, n, options);
        // Starting values from the last accepted step's collocation polynomial.
        std::fill(Z0.begin(), Z0.end(), T(0.0));
        if (have_old) {
            for (int s = 0; s < 3; ++s) {
                const T x = T(1.0) + tableau.c[s] * hT / h_old;
                const T l0 = lagrange(0, x), l1 = lagrange(1, x), l2 = lagrange(2, x);
                for (int i = 0; i < n; ++i)
                    Z0[s * n + i] = l0 * Z_old[i] + l1 * Z_old[n + i] + l2 * Z_old[2 * n + i] - Z_old[2 * n + i];
            }
        }
        int status = newton_solve(problem, t, h, hT, y, Z0.data());
        if (status == STATUS_NEWTON_FAILURE && !matrix.jacobian_current) {
            matrix.evaluate(problem, t, y);
            if (!factor(problem, hT)) return STATUS_NEWTON_FAILURE;
            status = newton_solve(problem, t, h, hT, y, Z0.data());
        }
        if (status != STATUS_SUCCESS) return status;
        for (int i = 0; i < n; ++i) y_new[i] = y[i] + Z[2 * n + i];
        Z_try = Z;
        h_try = hT;
        // err = (mu/h I - J)^-1 (mu/h) (gamma0 h f + sum e_i Z_i)
        const T mu_h = tableau.mu / hT;
        for (int i = 0; i < n; ++i)
            ez[i] = tableau.e[0] * Z[i] + tableau.e[1] * Z[n + i] + tableau.e[2] * Z[2 * n + i];
        for (int i = 0; i < n; ++i) err[i] = mu_h * (tableau.gamma0 * hT * f[i] + ez[i]);
        matrix.solve(err);
        if (first_step || after_rejection) {
            const int m = problem.error_components();
            const double e = error_norm(err, y, y_new, n, m, options, options.tangents_in_norm != 0);
            if (e > 1.0) {
                for (int i = 0; i < n; ++i) tmp[i] = y[i] + err[i];
                problem.rhs(t, tmp.data(), f_err.data());
                for (int i = 0; i < n; ++i) err[i] = mu_h * (tableau.gamma0 * hT * f_err[i] + ez[i]);
                matrix.solve(err);
            }
        }
        problem.rhs(t + h, y_new, f_new);
        return STATUS_SUCCESS;
    }
};

}  // namespace symsens
