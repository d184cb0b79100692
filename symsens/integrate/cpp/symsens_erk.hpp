// Explicit Runge–Kutta stepper with an embedded error estimate, for any tableau of the catalogue.
//
//   k_1 = f(t, y)                       (= f, given; FSAL methods also return k_s as f(t + h, y_new))
//   k_i = f(t + c_i h, y + h sum_{j<i} a_ij k_j)
//   y_new = y + h sum_i b_i k_i,        err = h sum_i (b_i - bhat_i) k_i
//
// Hairer, Nørsett & Wanner I, Sect. II.4.  Coefficients arrive as T (exact to T's precision, generated
// from the catalogue's exact values), so the stepper is the scheme the schemes module analysed.
#pragma once

#include <vector>

#include "symsens_solver.hpp"

namespace symsens {

template <class T>
struct ExplicitTableau {
    int stages;
    int error_order;           // lower order of the pair + 1
    bool fsal;                 // last stage is f(t + h, y_new)
    std::vector<T> a;          // stages x stages, row-major, strictly lower
    std::vector<T> b, e, c;    // e = b - bhat
};

template <class T>
struct ExplicitRungeKutta {
    ExplicitTableau<T> tableau;
    int n;
    std::vector<T> k, stage;

    ExplicitRungeKutta(const ExplicitTableau<T>& tab, int dimension)
        : tableau(tab), n(dimension), k(static_cast<size_t>(tab.stages) * dimension), stage(dimension) {}

    int error_order() const { return tableau.error_order; }
    void notify_rejected() {}
    void notify_accepted() {}

    template <class Problem, class Time>
    int attempt(const Problem& problem, const Time& t, const Time& h, const T* y, const T* f, T* y_new, T* f_new, T* err) {
        const int s = tableau.stages;
        for (int i = 0; i < n; ++i) k[i] = f[i];
        for (int st = 1; st < s; ++st) {
            for (int i = 0; i < n; ++i) {
                T acc(0.0);
                for (int j = 0; j < st; ++j) {
                    const T& a = tableau.a[st * s + j];
                    if (value_of(a) != 0.0) acc = acc + a * k[j * n + i];
                }
                stage[i] = y[i] + T(h) * acc;
            }
            problem.rhs(t + as_time<Time>(tableau.c[st]) * h, stage.data(), &k[st * n]);
        }
        for (int i = 0; i < n; ++i) {
            T sum_b(0.0), sum_e(0.0);
            for (int j = 0; j < s; ++j) {
                if (value_of(tableau.b[j]) != 0.0) sum_b = sum_b + tableau.b[j] * k[j * n + i];
                if (value_of(tableau.e[j]) != 0.0) sum_e = sum_e + tableau.e[j] * k[j * n + i];
            }
            y_new[i] = y[i] + T(h) * sum_b;
            err[i] = T(h) * sum_e;
        }
        if (tableau.fsal) {
            for (int i = 0; i < n; ++i) f_new[i] = k[(s - 1) * n + i];
        } else {
            problem.rhs(t + h, y_new, f_new);
        }
        return STATUS_SUCCESS;
    }
};

}  // namespace symsens
