// Exponential Rosenbrock methods (Hochbruck, Ostermann & Schweitzer 2009), over a generic scalar T.
//
// With J = f_y(t_n, y_n), v = f_t(t_n, y_n) and the remainder g_n(t, y) = f(t, y) - J y - v t, one step of size h:
//
//   U       = y_n + h phi_1(hJ) f(t_n, y_n) + h^2 phi_2(hJ) v                 exponential Rosenbrock–Euler, order 2
//           = e^{hJ} y_n + h phi_1(hJ) g_n(t_n, y_n) + h^2 phi_2(hJ) v       (the form computed here)
//   D       = g_n(t_n + h, U) - g_n(t_n, y_n) = f(t_n + h, U) - f(t_n, y_n) - J (U - y_n) - h v
//   y_{n+1} = U + 2 h phi_3(hJ) D                                            exprb32, order 3
//   err     = 2 h phi_3(hJ) D = y_{n+1}(exprb32) - U                         (the embedded pair of exprb32)
//
// "exprb-euler" propagates U (order 2, the estimate is its local error: err ~ h^3), "exprb32" propagates y_{n+1}
// (order 3, local extrapolation).  On a linear problem y' = L y + b(t) with b linear in t, D = 0 and both methods
// give y_{n+1} = e^{hL} y_n + ... exactly: the stability function is R(z) = e^z, so the discrete sensitivity to a
// rate equals the exact one, t e^{lambda t}, up to the rounding of the matrix exponential.
//
// phi-functions: phi_0(A) = e^A, phi_{k+1}(A) = int_0^1 e^{(1-s)A} s^k / k! ds.  For vectors w_1..w_p,
//
//   exp([[A, W], [0, K_p]]) [0; e_p] = [sum_j phi_j(A) w_j; ...],   W = [w_p, ..., w_1],  K_p the p x p upper shift
//
// (Al-Mohy & Higham 2011, Thm. 2.1; Saad 1992), so each stage is one exponential of an (n + p) x (n + p) matrix,
// computed by scaling and squaring with the diagonal [13/13] Padé approximant (Higham 2005): choose s >= 0 with
// ||2^-s M||_1 <= theta_13 = 5.371920351148152, r = q(M/2^s)^-1 p(M/2^s), then square s times.  The Padé
// coefficients are formed in T from their closed form c_j = (2m - j)! m! / ((2m)! j! (m - j)!), so none is typed
// as a binary literal.  s and every pivot are chosen on values, so a run over Dual<double, P> takes the branches
// of the double run and its partials are the derivative of that program (discrete forward mode).
//
// f_t: exact (duals in t) for ModelProblem / AugmentedProblem as in the Rosenbrock stepper; zero when the model is
// autonomous.  Work per step: one Jacobian, two matrix exponentials (counted as LU decompositions, each is one
// LU solve), two evaluations of f (f(t+h, U) and f(t+h, y_{n+1}); the second is the next step's f and is shared
// with U for exprb-euler).
//
// References: M. Hochbruck, A. Ostermann, J. Schweitzer, "Exponential Rosenbrock-type methods", SIAM J. Numer.
// Anal. 47 (2009) 786-803 (exprb32, Sect. 5.1); N. J. Higham, "The scaling and squaring method for the matrix
// exponential revisited", SIAM J. Matrix Anal. Appl. 26 (2005) 1179-1193 (theta_13, Padé [13/13]);
// A. H. Al-Mohy, N. J. Higham, "Computing the action of the matrix exponential", SIAM J. Sci. Comput. 33 (2011)
// 488-511 (Thm. 2.1: phi-functions from one augmented exponential).
#pragma once

#include <cmath>
#include <vector>

#include "symsens_implicit.hpp"
#include "symsens_solver.hpp"

namespace symsens {

// e^M for a dense m x m row-major matrix M (scaling and squaring, Padé [13/13]).  Returns false if the
// denominator is singular (not for any finite M of moderate norm: q(x) has no zero in |x| <= theta_13).
template <class T>
bool expm_pade13(const std::vector<T>& M, int m, std::vector<T>& E) {
    constexpr int degree = 13;
    const double theta13 = 5.371920351148152;  // Higham (2005), Table 2.3
    double norm = 0.0;                         // ||M||_1 on values
    for (int j = 0; j < m; ++j) {
        double col = 0.0;
        for (int i = 0; i < m; ++i) col += std::fabs(value_of(M[i * m + j]));
        norm = std::max(norm, col);
    }
    int s = 0;
    if (norm > theta13) s = static_cast<int>(std::ceil(std::log2(norm / theta13)));
    const T scale = T(std::ldexp(1.0, -s));
    const size_t mm = static_cast<size_t>(m) * m;
    std::vector<T> A(mm);
    for (size_t k = 0; k < mm; ++k) A[k] = M[k] * scale;
    // Padé coefficients c_0 = 1, c_j = c_{j-1} (m - j + 1) / ((2m - j + 1) j).
    T c[degree + 1];
    c[0] = T(1.0);
    for (int j = 1; j <= degree; ++j) c[j] = c[j - 1] * T(double(degree - j + 1)) / T(double((2 * degree - j + 1) * j));
    auto multiply = [m, mm](const std::vector<T>& X, const std::vector<T>& Y) {
        std::vector<T> Z(mm, T(0.0));
        for (int i = 0; i < m; ++i)
            for (int k = 0; k < m; ++k) {
                const T& x = X[i * m + k];
                if (value_of(x) == 0.0 && identical(x, T(0.0))) continue;
                for (int j = 0; j < m; ++j) Z[i * m + j] = Z[i * m + j] + x * Y[k * m + j];
            }
        return Z;
    };
    const std::vector<T> A2 = multiply(A, A), A4 = multiply(A2, A2), A6 = multiply(A4, A2);
    std::vector<T> inner_u(mm), inner_v(mm), outer_u(mm), outer_v(mm);
    for (size_t k = 0; k < mm; ++k) {
        inner_u[k] = c[13] * A6[k] + c[11] * A4[k] + c[9] * A2[k];
        inner_v[k] = c[12] * A6[k] + c[10] * A4[k] + c[8] * A2[k];
    }
    std::vector<T> U6 = multiply(A6, inner_u), V6 = multiply(A6, inner_v);
    for (size_t k = 0; k < mm; ++k) {
        outer_u[k] = U6[k] + c[7] * A6[k] + c[5] * A4[k] + c[3] * A2[k];
        outer_v[k] = V6[k] + c[6] * A6[k] + c[4] * A4[k] + c[2] * A2[k];
    }
    for (int i = 0; i < m; ++i) {
        outer_u[i * m + i] = outer_u[i * m + i] + c[1];
        outer_v[i * m + i] = outer_v[i * m + i] + c[0];
    }
    const std::vector<T> U = multiply(A, outer_u);
    std::vector<T> Q(mm), P(mm);
    for (size_t k = 0; k < mm; ++k) {
        Q[k] = outer_v[k] - U[k];
        P[k] = outer_v[k] + U[k];
    }
    Lu<T> lu;
    if (!lu.factor(Q.data(), m)) return false;
    // E = Q^-1 P column by column.
    E.assign(mm, T(0.0));
    std::vector<T> col(m);
    for (int j = 0; j < m; ++j) {
        for (int i = 0; i < m; ++i) col[i] = P[i * m + j];
        lu.solve(col.data());
        for (int i = 0; i < m; ++i) E[i * m + j] = col[i];
    }
    for (int k = 0; k < s; ++k) E = multiply(E, E);
    return true;
}

// out = e^{hJ} y0 + sum_{j=1..p} phi_j(hJ) w_j with W = [w_p, ..., w_1] (p columns, each of length n), from the
// exponential of the augmented (n + p) x (n + p) matrix (Al-Mohy & Higham 2011, Thm. 2.1): its leading n x n
// block is e^{hJ}, the top of its last column the phi sum.  y0 may be null (then the first term is left out).
template <class T>
bool phi_combination(const std::vector<T>& hJ, int n, const std::vector<const T*>& W, const T* y0, T* out) {
    const int p = static_cast<int>(W.size());
    const int m = n + p;
    std::vector<T> M(static_cast<size_t>(m) * m, T(0.0)), E;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) M[i * m + j] = hJ[i * n + j];
    for (int k = 0; k < p; ++k)
        for (int i = 0; i < n; ++i) M[i * m + n + k] = W[k][i];
    for (int k = 0; k + 1 < p; ++k) M[(n + k) * m + n + k + 1] = T(1.0);
    if (!expm_pade13(M, m, E)) return false;
    for (int i = 0; i < n; ++i) {
        T acc = E[i * m + m - 1];
        if (y0)
            for (int j = 0; j < n; ++j) acc = acc + E[i * m + j] * y0[j];
        out[i] = acc;
    }
    return true;
}

struct ExponentialTableau {
    bool third_order = false;  // false: exprb-euler (propagate U), true: exprb32 (propagate U + 2h phi_3 D)
    int error_order = 3;       // the estimate 2h phi_3(hJ) D behaves like h^3
};

template <class T>
struct ExponentialRosenbrock {
    ExponentialTableau tableau;
    int n;
    bool autonomous;
    std::vector<T> J, hJ, ft, w1, w2, g, U, fU, D, corr;

    ExponentialRosenbrock(const ExponentialTableau& tab, int dimension, bool autonomous_problem = false)
        : tableau(tab), n(dimension), autonomous(autonomous_problem), J(static_cast<size_t>(dimension) * dimension),
          hJ(static_cast<size_t>(dimension) * dimension), ft(dimension, T(0.0)), w1(dimension), w2(dimension),
          g(dimension), U(dimension), fU(dimension), D(dimension), corr(dimension) {}

    int error_order() const { return tableau.error_order; }
    void notify_rejected() {}
    void notify_accepted() {}

    template <class Problem, class Time>
    void time_derivative(const Problem& problem, const Time& t, const T* y) {
        if (autonomous) {
            for (int i = 0; i < n; ++i) ft[i] = T(0.0);
            return;
        }
        if constexpr (has_exact_time_derivative<Problem>::value) {
            exact_time_derivative(problem, t, y, ft.data());
        } else {
            for (int i = 0; i < n; ++i) ft[i] = T(0.0);  // pragma: no cover - every driver problem has it
        }
    }

    template <class Problem, class Time>
    int attempt(const Problem& problem, const Time& t, const Time& h, const T* y, const T* f, T* y_new, T* f_new,
                T* err) {
        const T hT = T(h);
        problem.jacobian(t, y, J.data());
        time_derivative(problem, t, y);
        for (size_t k = 0; k < J.size(); ++k) hJ[k] = hT * J[k];
        // Written with the remainder g(t, y) = f(t, y) - J y, so that the linear part is propagated by e^{hJ} itself
        // (y + h phi_1(hJ) f = e^{hJ} y + h phi_1(hJ) g): no cancellation between y and h phi_1 f when e^{hJ} is
        // small, and on a linear f the remainders vanish (exactly, for a scalar f = lambda y).
        // Stage 1: U = e^{hJ} y + phi_1(hJ) (h g) + phi_2(hJ) (h^2 v);  W = [w_2, w_1].
        auto remainder = [&](const T* x, const T* fx, T* out) {
            for (int i = 0; i < n; ++i) {
                T Jx(0.0);
                for (int j = 0; j < n; ++j) Jx = Jx + J[i * n + j] * x[j];
                out[i] = fx[i] - Jx;
            }
        };
        remainder(y, f, g.data());
        for (int i = 0; i < n; ++i) {
            w1[i] = hT * g[i];
            w2[i] = hT * hT * ft[i];
        }
        ++problem.stats->nlu;
        if (!phi_combination(hJ, n, {w2.data(), w1.data()}, y, U.data())) return STATUS_NEWTON_FAILURE;
        // Stage 2: D = 2h (g(t + h, U) - g(t, y) - h v);  corr = phi_3(hJ) D;  W = [w_3, w_2, w_1].
        problem.rhs(t + h, U.data(), fU.data());
        remainder(U.data(), fU.data(), D.data());
        for (int i = 0; i < n; ++i) {
            D[i] = T(2.0) * hT * (D[i] - g[i] - hT * ft[i]);
            w1[i] = T(0.0);
        }
        ++problem.stats->nlu;
        if (!phi_combination(hJ, n, {D.data(), w1.data(), w1.data()}, static_cast<const T*>(nullptr), corr.data())) return STATUS_NEWTON_FAILURE;
        for (int i = 0; i < n; ++i) {
            err[i] = corr[i];
            y_new[i] = tableau.third_order ? U[i] + corr[i] : U[i];
            if (!is_finite(y_new[i])) return STATUS_NON_FINITE;
        }
        if (tableau.third_order) {
            problem.rhs(t + h, y_new, f_new);
        } else {
            for (int i = 0; i < n; ++i) f_new[i] = fU[i];
        }
        return STATUS_SUCCESS;
    }
};

}  // namespace symsens
