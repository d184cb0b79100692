// Rosenbrock stepper with an embedded error estimate, for any Rosenbrock tableau of the catalogue in the
// Hairer–Wanner form (HW II, Sect. IV.7, (7.4), with the terms for non-autonomous problems):
//
//   (I - h gamma J) k_i = h f(t + alpha_i h, y + sum_{j<i} alpha_ij k_j) + h J sum_{j<i} gamma_ij k_j
//                         + gamma_i h^2 f_t(t, y),        J = f_y(t, y), gamma_i = sum_{j<=i} gamma_ij
//   y_new = y + sum_i b_i k_i,     err = sum_i e_i k_i,    e = b - bhat
//
// It is carried out in the transformed variables u_i = sum_{j<=i} gamma_ij k_j (HW II, Sect. IV.7, implementation),
// which need no products with J:
//
//   (1/(h gamma) I - J) u_i = f(t + alpha_i h, y + sum_{j<i} a_ij u_j) + sum_{j<i} (c_ij / h) u_j + gamma_i h f_t
//   y_new = y + sum_j m_j u_j,   err = sum_j me_j u_j,
//
//   (a_ij) = (alpha_ij) Gamma^-1,  (c_ij) = diag(1/gamma) - Gamma^-1,  m = b^T Gamma^-1,  me = e^T Gamma^-1.
//
// The transformed coefficients are computed here, once, from the catalogue's (alpha, gamma, b, e) by forward
// substitution in T (one rounding per entry), so the generator only prints the catalogue's own fields.
//
// Work per step: one Jacobian, one LU of (1/(h gamma)) I - J, s solves, s - 1 evaluations of f (stage 1 is
// f(t, y); a stage whose argument equals the previous stage's reuses its value), one evaluation of f(t + h,
// y_new) for the next step and the Hermite output, and, for non-autonomous problems, one evaluation for f_t.
//
// f_t: a problem with a member time_derivative(t, y, f, ft) provides it; for ModelProblem / AugmentedProblem it
// is computed exactly by evaluating the model over Dual<T, 1> with t seeded (symsens_implicit.hpp); for any
// other problem by the forward difference of Hairer's RODAS code
//
//   f_t ~ (f(t + delta, y) - f(t, y)) / delta,   delta = sqrt(eps max(1e-5, |t|)),
//
// whose O(sqrt eps) relative error enters the solution as O(h sqrt eps) and limits the attainable accuracy
// (so the exact derivative is the default).  A model known to be autonomous (the generator sees whether t
// occurs in f) passes autonomous = true to skip the term.  After a rejection J (and f_t) are kept, since t and
// y are unchanged; only the LU is refactored for the new h.
//
// References: E. Hairer, G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.7 and VI.4 (Rodas);
// G. Steinebach, "Construction of Rosenbrock–Wanner method Rodas5P ...", BIT 63 (2023) (Rodas5P);
// J. Lang, J. Verwer, BIT 41 (2001) 731-738 (ROS3P).
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "symsens_implicit.hpp"
#include "symsens_solver.hpp"

namespace symsens {

// ---- the tableau, as the generator fills it (the catalogue's RosenbrockTableau) ------------------------------
// stages       s
// error_order  q + 1 with q = min(order, embedded order) (Rodas4: 4, Rodas5P: 5, ROS3P: 3, ROS2: 2, Rodas3: 3)
// alpha        s x s, row-major, strictly lower triangular: alpha[i*s + j] = alpha_ij
// gamma        s x s, row-major, lower triangular *including* the diagonal gamma_ii = gamma (all equal)
// b            s weights of the propagated solution
// e            s weights of the error estimate, e_i = b_i - bhat_i (all zero: no estimate, fixed steps only)
// c            s stage times alpha_i = sum_j alpha_ij   (RosenbrockTableau.alpha_sum)
// gamma_sum    s sums gamma_i = sum_{j<=i} gamma_ij     (RosenbrockTableau.gamma_sum, diagonal included)
template <class T>
struct RosenbrockTableauT {
    int stages = 0;
    int error_order = 0;
    std::vector<T> alpha, gamma, b, e, c, gamma_sum;
};

template <class T>
struct Rosenbrock {
    RosenbrockTableauT<T> tableau;
    int n;
    Options options;
    bool autonomous;
    T gamma;                          // the diagonal
    std::vector<T> a_t, c_t, m, me;   // transformed coefficients (s x s row-major; s; s)
    std::vector<bool> same_argument;  // stage i evaluates f where stage i-1 did
    IterationMatrix<T> matrix;
    std::vector<T> u, arg, fi, ft, rhs;
    bool have_ft = false;
    bool time_difference = false;     // take the forward difference even where f_t is available exactly

    Rosenbrock(const RosenbrockTableauT<T>& tab, int dimension, const Options& o, bool autonomous_problem = false)
        : tableau(tab), n(dimension), options(o), autonomous(autonomous_problem), matrix(dimension),
          u(static_cast<size_t>(tab.stages) * dimension), arg(dimension), fi(dimension), ft(dimension, T(0.0)),
          rhs(dimension) {
        const int s = tableau.stages;
        gamma = tableau.gamma[0];
        // Gamma^-1 by forward substitution (Gamma lower triangular).
        std::vector<T> gi(static_cast<size_t>(s) * s, T(0.0));
        for (int j = 0; j < s; ++j) {
            gi[j * s + j] = T(1.0) / tableau.gamma[j * s + j];
            for (int i = j + 1; i < s; ++i) {
                T acc(0.0);
                for (int l = j; l < i; ++l) acc = acc + tableau.gamma[i * s + l] * gi[l * s + j];
                gi[i * s + j] = -(acc / tableau.gamma[i * s + i]);
            }
        }
        a_t.assign(static_cast<size_t>(s) * s, T(0.0));
        c_t.assign(static_cast<size_t>(s) * s, T(0.0));
        m.assign(s, T(0.0));
        me.assign(s, T(0.0));
        for (int i = 0; i < s; ++i)
            for (int j = 0; j < i; ++j) {
                T acc(0.0);
                for (int l = j; l < i; ++l) acc = acc + tableau.alpha[i * s + l] * gi[l * s + j];
                a_t[i * s + j] = acc;
                c_t[i * s + j] = -gi[i * s + j];
            }
        for (int j = 0; j < s; ++j) {
            T mb(0.0), mbe(0.0);
            for (int l = j; l < s; ++l) {
                mb = mb + tableau.b[l] * gi[l * s + j];
                mbe = mbe + tableau.e[l] * gi[l * s + j];
            }
            m[j] = mb;
            me[j] = mbe;
        }
        // Stage i repeats stage i-1's argument iff alpha_i = alpha_{i-1} and sum_{j<i} a_ij u_j is the same sum:
        // a_{i,i-1} = 0 and a_ij = a_{i-1,j} for j < i-1.  Decided on the catalogue's alpha (exact zeros survive).
        same_argument.assign(s, false);
        for (int i = 1; i < s; ++i) {
            bool same = value_of(tableau.c[i]) == value_of(tableau.c[i - 1]) &&
                        value_of(tableau.alpha[i * s + i - 1]) == 0.0;
            for (int j = 0; j < i - 1 && same; ++j)
                if (value_of(tableau.alpha[i * s + j]) != value_of(tableau.alpha[(i - 1) * s + j])) same = false;
            same_argument[i] = same;
        }
    }

    int error_order() const { return tableau.error_order; }
    // t and y are unchanged after a rejection: J and f_t stay valid.
    void notify_rejected() {}
    void notify_accepted() {
        matrix.have_jacobian = false;
        have_ft = false;
    }

    template <class Problem, class Time>
    void time_derivative(const Problem& problem, const Time& t, const T* y, const T* f) {
        have_ft = true;
        if (autonomous) {
            for (int i = 0; i < n; ++i) ft[i] = T(0.0);
            return;
        }
        if constexpr (has_time_derivative<Problem, Time, T>::value) {
            problem.time_derivative(t, y, f, ft.data());
            return;
        }
        if constexpr (has_exact_time_derivative<Problem>::value) {
            if (!time_difference) {
                exact_time_derivative(problem, t, y, ft.data());
                return;
            }
        }
        const double eps = std::numeric_limits<double>::epsilon();
        const double delta = std::sqrt(eps * std::max(1e-5, std::fabs(value_of(t))));
        problem.rhs(t + Time(delta), y, ft.data());
        for (int i = 0; i < n; ++i) ft[i] = (ft[i] - f[i]) / T(delta);
    }

    template <class Problem, class Time>
    int attempt(const Problem& problem, const Time& t, const Time& h, const T* y, const T* f, T* y_new, T* f_new,
                T* err) {
        const int s = tableau.stages;
        const T hT = T(h);
        if (!matrix.have_jacobian) matrix.evaluate(problem, t, y);
        if (!have_ft) time_derivative(problem, t, y, f);
        if (!matrix.factor(problem, T(1.0) / (hT * gamma), T(1.0))) return STATUS_NEWTON_FAILURE;
        for (int st = 0; st < s; ++st) {
            if (st == 0) {
                for (int i = 0; i < n; ++i) fi[i] = f[i];
            } else if (!same_argument[st]) {
                for (int i = 0; i < n; ++i) {
                    T acc(0.0);
                    for (int j = 0; j < st; ++j) {
                        const T& a = a_t[st * s + j];
                        if (value_of(a) != 0.0) acc = acc + a * u[static_cast<size_t>(j) * n + i];
                    }
                    arg[i] = y[i] + acc;
                }
                problem.rhs(t + as_time<Time>(tableau.c[st]) * h, arg.data(), fi.data());
            }
            T* ust = &u[static_cast<size_t>(st) * n];
            const T gh = tableau.gamma_sum[st] * hT;
            for (int i = 0; i < n; ++i) {
                T acc(0.0);
                for (int j = 0; j < st; ++j) {
                    const T& c = c_t[st * s + j];
                    if (value_of(c) != 0.0) acc = acc + c * u[static_cast<size_t>(j) * n + i];
                }
                ust[i] = fi[i] + acc / hT + gh * ft[i];
            }
            matrix.solve(ust);
            for (int i = 0; i < n; ++i) if (!is_finite(ust[i])) return STATUS_NON_FINITE;
        }
        for (int i = 0; i < n; ++i) {
            T acc(0.0), acc_e(0.0);
            for (int j = 0; j < s; ++j) {
                const T uj = u[static_cast<size_t>(j) * n + i];
                if (value_of(m[j]) != 0.0) acc = acc + m[j] * uj;
                if (value_of(me[j]) != 0.0) acc_e = acc_e + me[j] * uj;
            }
            y_new[i] = y[i] + acc;
            err[i] = acc_e;
        }
        problem.rhs(t + h, y_new, f_new);
        return STATUS_SUCCESS;
    }
};

}  // namespace symsens
