// Diagonally implicit Runge–Kutta stepper (SDIRK / ESDIRK) with an embedded error estimate, for any
// diagonally implicit tableau of the catalogue: TR-BDF2, Kvaerno 3/4/5, SDIRK2, SDIRK4, ...
//
//   k_i = f(t + c_i h, Z_i),   Z_i = y + h sum_{j<i} a_ij k_j + h gamma k_i        (a_ii = gamma)
//   y_new = y + h sum_i b_i k_i    (= Z_s exactly when the method is stiffly accurate, b = last row of A)
//   err   = (I - h gamma J)^-1  h sum_i e_i k_i,     e = b - bhat
//
// Each implicit stage is solved for Z_i by simplified Newton (Hairer & Wanner II, Sect. IV.6 and IV.8):
//
//   (I - h gamma J) dZ = base_i + h gamma f(t_i, Z) - Z,    base_i = y + h sum_{j<i} a_ij k_j,
//
// and then k_i = (Z_i - base_i) / (h gamma), which equals f(t_i, Z_i) at convergence but does not multiply the
// remaining Newton error by the stiff Jacobian (HW II, Sect. IV.8, the z-formulation).  Because every implicit stage
// has the same diagonal gamma, one LU of I - h gamma J serves all stages, and further steps as long as h is
// unchanged; J itself is kept across steps and re-evaluated only when Newton fails with an old J (then the
// stage is retried at the same h before the step is given up) or converged slowly (rate > 1e-3) in the last
// accepted step.  With an explicit first stage (ESDIRK: a_11 = 0, c_1 = 0) k_1 = f(t, y) is taken from the
// caller.  The predictor of stage i is k_i^0 = k_{i-1} (k_1^0 = f for SDIRK).
//
// The error estimate is premultiplied by (I - h gamma J)^-1 (the filter of Shampine, as in Hosea & Shampine
// 1996 for TR-BDF2 and HW II, Sect. IV.8 for RADAU5): h sum e_i k_i alone overestimates the error of stiff
// components by |h lambda| and would throttle the step size on stiff problems.
//
// References: E. Hairer, G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.6 (SDIRK), IV.8 (Newton);
// A. Kværnø, BIT 44 (2004) 489-502 (ESDIRK); M. E. Hosea, L. F. Shampine, Appl. Numer. Math. 20 (1996) 21-37.
#pragma once

#include <vector>

#include "symsens_implicit.hpp"
#include "symsens_solver.hpp"

namespace symsens {

// ---- the tableau, as the generator fills it -------------------------------------------------------------
// stages                s
// error_order           q + 1 with q = min(order, embedded order): err = O(h^(q+1))  (TR-BDF2: 3, Kvaerno5: 5,
//                       SDIRK4: 4)
// explicit_first_stage  true iff a_11 = 0 (ESDIRK; then c_1 = 0 and the first stage is f(t, y))
// gamma                 the common diagonal a_ii (i >= 2 for ESDIRK, all i for SDIRK)
// a                     s x s, row-major, lower triangular *including* the diagonal: a[i*s + j] = a_ij
// b                     s weights of the propagated solution
// e                     s weights of the error estimate, e_i = b_i - bhat_i (all zero: no estimate, fixed steps)
// c                     s nodes, c_i = sum_j a_ij
// Whether the method is stiffly accurate (b = last row of A) is derived from the values.
template <class T>
struct DiagonallyImplicitTableau {
    int stages = 0;
    int error_order = 0;
    bool explicit_first_stage = false;
    T gamma;
    std::vector<T> a, b, e, c;
};

template <class T>
struct DiagonallyImplicitRungeKutta {
    DiagonallyImplicitTableau<T> tableau;
    int n;
    Options options;
    bool filter_error = true;      // premultiply the estimate by (I - h gamma J)^-1
    bool stiffly_accurate = false;
    bool has_error_estimate = false;
    IterationMatrix<T> matrix;
    NewtonControl newton;
    NewtonWeights weights;
    bool refresh_jacobian = false; // slow convergence in the last step: evaluate J at the next step's start
    bool slow_convergence = false;
    std::vector<T> k, base, Z, residual, stage_last;

    DiagonallyImplicitRungeKutta(const DiagonallyImplicitTableau<T>& tab, int dimension, const Options& o)
        : tableau(tab), n(dimension), options(o), matrix(dimension),
          k(static_cast<size_t>(tab.stages) * dimension), base(dimension), Z(dimension), residual(dimension),
          stage_last(dimension) {
        const int s = tableau.stages;
        stiffly_accurate = true;
        for (int j = 0; j < s; ++j)
            if (value_of(tableau.a[(s - 1) * s + j]) != value_of(tableau.b[j])) stiffly_accurate = false;
        for (int j = 0; j < s; ++j)
            if (value_of(tableau.e[j]) != 0.0) has_error_estimate = true;
        newton.configure(o.rtol, newton_budget(o, 7));
    }

    int error_order() const { return tableau.error_order; }
    void notify_rejected() {}
    void notify_accepted() {
        matrix.jacobian_current = false;  // the next step starts at a new point
        if (slow_convergence) refresh_jacobian = true;
    }

    // Newton for stage `st`: Z = base + h gamma f(t_st, Z).  Returns STATUS_SUCCESS or the failure.
    template <class Problem, class Time>
    int solve_stage(const Problem& problem, const Time& t_stage, const T& hg, const T* guess) {
        for (int i = 0; i < n; ++i) Z[i] = base[i] + hg * guess[i];
        newton.start();
        for (;;) {
            problem.rhs(t_stage, Z.data(), residual.data());
            ++problem.stats->newton_iterations;
            for (int i = 0; i < n; ++i) {
                if (!is_finite(residual[i])) return STATUS_NON_FINITE;
                residual[i] = base[i] + hg * residual[i] - Z[i];
            }
            matrix.solve(residual.data());
            const auto verdict = newton.check(weights.norm(residual.data(), n));
            if (verdict == NewtonControl::DIVERGED) return STATUS_NEWTON_FAILURE;
            for (int i = 0; i < n; ++i) Z[i] = Z[i] + residual[i];
            if (verdict == NewtonControl::CONVERGED) {
                if (newton.iterations > 2 && newton.rate > 1e-3) slow_convergence = true;
                return STATUS_SUCCESS;
            }
        }
    }

    template <class Problem, class Time>
    int attempt(const Problem& problem, const Time& t, const Time& h, const T* y, const T* f, T* y_new, T* f_new,
                T* err) {
        const int s = tableau.stages;
        const T hT = T(h);
        const T hg = hT * tableau.gamma;
        slow_convergence = false;
        if (!matrix.have_jacobian || refresh_jacobian) {
            matrix.evaluate(problem, t, y);
            refresh_jacobian = false;
        }
        if (!matrix.factor(problem, T(1.0), hg)) return STATUS_NEWTON_FAILURE;
        weights.set(y, n, options);
        for (int st = 0; st < s; ++st) {
            T* kst = &k[static_cast<size_t>(st) * n];
            if (st == 0 && tableau.explicit_first_stage) {
                for (int i = 0; i < n; ++i) kst[i] = f[i];
                continue;
            }
            for (int i = 0; i < n; ++i) {
                T acc(0.0);
                for (int j = 0; j < st; ++j) {
                    const T& a = tableau.a[st * s + j];
                    if (value_of(a) != 0.0) acc = acc + a * k[static_cast<size_t>(j) * n + i];
                }
                base[i] = y[i] + hT * acc;
            }
            const T* guess = st == 0 ? f : &k[static_cast<size_t>(st - 1) * n];
            const Time t_stage = t + as_time<Time>(tableau.c[st]) * h;
            int status = solve_stage(problem, t_stage, hg, guess);
            if (status == STATUS_NEWTON_FAILURE && !matrix.jacobian_current) {
                // The Jacobian is from an earlier point: refresh it and retry this stage at the same h.
                matrix.evaluate(problem, t, y);
                if (!matrix.factor(problem, T(1.0), hg)) return STATUS_NEWTON_FAILURE;
                status = solve_stage(problem, t_stage, hg, guess);
            }
            if (status != STATUS_SUCCESS) {
                return status;
            }
            for (int i = 0; i < n; ++i) kst[i] = (Z[i] - base[i]) / hg;
        }
        if (stiffly_accurate) {
            for (int i = 0; i < n; ++i) y_new[i] = Z[i];  // Z_s: exactly L-stable, whatever Newton left behind
        } else {
            for (int i = 0; i < n; ++i) {
                T acc(0.0);
                for (int j = 0; j < s; ++j)
                    if (value_of(tableau.b[j]) != 0.0) acc = acc + tableau.b[j] * k[static_cast<size_t>(j) * n + i];
                y_new[i] = y[i] + hT * acc;
            }
        }
        for (int i = 0; i < n; ++i) {
            T acc(0.0);
            for (int j = 0; j < s; ++j)
                if (value_of(tableau.e[j]) != 0.0) acc = acc + tableau.e[j] * k[static_cast<size_t>(j) * n + i];
            err[i] = hT * acc;
        }
        if (filter_error && has_error_estimate) matrix.solve(err);
        // f at the new point is evaluated rather than taken from k_s: it starts the next ESDIRK step and feeds
        // the Hermite output, and (Z_s - base_s)/(h gamma) carries the Newton residual times 1/(h gamma).
        problem.rhs(t + h, y_new, f_new);
        return STATUS_SUCCESS;
    }
};

}  // namespace symsens
