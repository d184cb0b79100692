// symsens reference integrator: a fully implicit s-stage Runge-Kutta (collocation) method for any tableau,
// over any scalar type T (double-double for references), with time in T too, forward sensitivities solved
// exactly stage by stage, and step-doubling error control.  Used by symsens.reference only.
//
// Step from (t, y, S) with step h (Hairer & Wanner II, Sect. IV.8; the stage form in Z_i = Y_i - y):
//
//   Z_i = h sum_j a_ij f(t + c_j h, y + Z_j),                          i = 1..s
//   y1  = y + sum_i d_i Z_i,     d^T = b^T A^-1                        (= Z_s when the method is stiffly
//                                                                        accurate, as Radau IIA)
//
// The stage system is solved by simplified Newton with J0 = f_y(t, y):
//   (I - h A (x) J0) dZ = -Z + h (A (x) I) F(Z),
// iterated until the estimated remaining error theta/(1 - theta) |dZ| is 1/100 of the tolerance (or at the
// rounding level of T).
//
// Sensitivities S = dy/dp (n x P): the Runge-Kutta method applied to the augmented system (y, S) with
// S' = f_y S + f_p has stage equations that are *linear* in the stage sensitivities Sigma_i once the Y_i are
// known:
//
//   Sigma_i - h sum_j a_ij J_j Sigma_j = S + h sum_j a_ij Fp_j,      J_j = f_y(t_j, Y_j), Fp_j = f_p(t_j, Y_j)
//   S1 = S + sum_i d_i (Sigma_i - S)
//
// so they are solved exactly with one LU of the (s n) x (s n) matrix I - h (A (x) I) diag(J_j) and P right-hand
// sides (the "staggered direct" method of M. Caracotsios and W. E. Stewart, Comput. Chem. Eng. 9 (1985)
// 359-365).  The result is exactly the collocation solution of the augmented system, i.e. a consistent
// discretisation of the continuous forward sensitivities, converging to the gradient of the exact solution.
//
// Error control (step doubling, HNW I, Sect. II.4): one step of h and two of h/2; the difference over
// 2^p - 1 estimates the error of the two half steps, which are kept (no extrapolation, so stiff decay is
// not disturbed).  The norm is the maximum over every component of y and S of |err| / (atol + rtol |u|):
// each value, the sensitivities included, is controlled.  Two floors replace |u| where it says nothing:
// a sensitivity S_ij is measured against max(|S_ij|, w_j |y_i|) with w_j = eta / |p_j| (the state's scale,
// as in CVODES' sensitivity weights: a sensitivity that starts at exactly 0 grows like t^k, and the
// relative error of a step from 0 of such a component does not shrink with h), and every component against
// max(|u|, tiny), tiny the magnitude below which T loses precision.  Steps land exactly on every output time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace symsens {
namespace reference {

enum Status : int {
    SUCCESS = 0,
    STEP_SIZE_UNDERFLOW = 1,
    NEWTON_FAILURE = 2,
    NON_FINITE = 3,
    TOO_MANY_STEPS = 4,
    BAD_INPUT = 5,
    TIME_BUDGET = 6,
};

inline double val(double x) { return x; }
template <class T> inline double val(const T& x) { return value_of(x); }
inline bool finite(double x) { return std::isfinite(x); }
template <class T> inline bool finite(const T& x) { return is_finite(x); }

// Dense LU with partial pivoting (pivots chosen on the leading double of each entry).
template <class T>
struct DenseLu {
    int n = 0;
    std::vector<T> a;
    std::vector<int> pivot;
    bool factor(const std::vector<T>& matrix, int size) {
        n = size;
        a = matrix;
        pivot.assign(size, 0);
        for (int k = 0; k < n; ++k) {
            int p = k;
            double best = std::fabs(val(a[k * n + k]));
            for (int i = k + 1; i < n; ++i) {
                const double v = std::fabs(val(a[i * n + k]));
                if (v > best) { best = v; p = i; }
            }
            pivot[k] = p;
            if (best == 0.0 || !std::isfinite(best)) return false;
            if (p != k) for (int j = 0; j < n; ++j) std::swap(a[k * n + j], a[p * n + j]);
            const T inverse = T(1.0) / a[k * n + k];
            for (int i = k + 1; i < n; ++i) {
                if (val(a[i * n + k]) == 0.0) { a[i * n + k] = T(0.0); continue; }
                const T m = a[i * n + k] * inverse;
                a[i * n + k] = m;
                for (int j = k + 1; j < n; ++j) a[i * n + j] = a[i * n + j] - m * a[k * n + j];
            }
        }
        return true;
    }
    void solve(T* x) const {
        for (int k = 0; k < n; ++k)
            if (pivot[k] != k) std::swap(x[k], x[pivot[k]]);
        for (int k = 0; k < n; ++k) {
            if (val(x[k]) == 0.0 && x[k] == T(0.0)) continue;
            for (int i = k + 1; i < n; ++i) x[i] = x[i] - a[i * n + k] * x[k];
        }
        for (int k = n - 1; k >= 0; --k) {
            for (int j = k + 1; j < n; ++j) x[k] = x[k] - a[k * n + j] * x[j];
            x[k] = x[k] / a[k * n + k];
        }
    }
};

struct Settings {
    double rtol;
    double atol;
    double first_step;     // 0: automatic
    double max_step;       // <= 0: unbounded
    double max_steps;      // accepted + rejected
    double seconds;        // wall-clock budget of this run; <= 0: none
    double unit_roundoff;  // of T (2^-104 for double-double)
    // Sensitivity weights: S_ij is measured against max(|S_ij|, sensitivity_scale[j] |y_i|) (the state's
    // scale borrowed, as CVODES does with 1/|p_j|); NULL: pure relative control.
    const double* sensitivity_scale = nullptr;
    // Magnitude below which T no longer carries its full precision (for double-double, where the low part
    // becomes subnormal): every component is measured against max(|u|, tiny), i.e. controlled absolutely at
    // rtol * tiny once it falls below tiny.  0: none.
    double tiny = 0.0;
};

struct Report {
    double accepted, rejected, nfev, njev, newton_iterations, lu, status, t_failure;
};

// Model: a policy with static n_states, n_parameters, n_sensitivity_parameters and templated rhs, jacobian,
// parameter_jacobian (the generated routines).
template <class Model, class T>
struct Collocation {
    static constexpr int n = Model::n_states;
    static constexpr int P = Model::n_sensitivity_parameters;
    int s;
    int order;
    std::vector<T> A, c, d;  // A row-major s x s; d = b^T A^-1
    const T* p;
    Settings settings;
    Report* report;
    // work
    std::vector<T> Z, F, G, tmp, J0, Jst, Fpst, Sig, M;
    std::vector<double> wscale;  // equilibration of the stage systems (powers of two)
    std::vector<double> wsize;
    DenseLu<T> newton_lu, sens_lu;

    Collocation(int stages, int ord, const std::vector<T>& a, const std::vector<T>& nodes, const std::vector<T>& weights,
                const T* parameters, const Settings& o, Report* r)
        : s(stages), order(ord), A(a), c(nodes), d(weights), p(parameters), settings(o), report(r),
          Z(stages * n), F(stages * n), G(stages * n), tmp(n), J0(n * n), Jst(stages * n * n),
          Fpst(stages * n * (P > 0 ? P : 1)), Sig(stages * n * (P > 0 ? P : 1)), M(stages * n * stages * n), wscale(n, 1.0), wsize(n, 0.0) {}

    double weight(const T& y) const { return settings.atol + settings.rtol * std::fabs(val(y)); }

    // One collocation step of size h from (t, y, S) to (y1, S1).
    int step(const T& t, const T& h, const T* y, const T* S, T* y1, T* S1) {
        const int sn = s * n;
        Model::jacobian(t, y, p, J0.data());
        report->njev += 1;
        std::fill(Z.begin(), Z.end(), T(0.0));
        for (int i = 0; i < s; ++i) Model::rhs(t + c[i] * h, y, p, &F[i * n]);
        report->nfev += s;
        // Equilibration by powers of two (exact): unknown k and equation r are scaled by w_k ~ max(|y_k|, |h f_k|)
        // rounded to a power of two, so the pivots are chosen, and the rounding errors of the elimination are
        // made, relative to each component's own size.  Without it, a component 1e-70 times smaller than one
        // it is coupled to through a large rate (h C ~ 1e10) picks up rounding noise of the larger one.
        // A component that is nonzero but below tiny is sized tiny; one that is exactly 0 and not moving is sized
        // by what drives it, h max_k |J_rk| w_k over the sized components (twice, for chains), else 1.
        for (int k = 0; k < n; ++k) {
            double size = std::fabs(val(y[k]));
            for (int i = 0; i < s; ++i) size = std::max(size, std::fabs(val(h * F[i * n + k])));
            wsize[k] = (size > 0.0 && std::isfinite(size)) ? std::max(size, settings.tiny) : 0.0;
        }
        for (int sweep = 0; sweep < 2; ++sweep)
            for (int r = 0; r < n; ++r) {
                if (wsize[r] > 0.0) continue;
                double driven = 0.0;
                for (int k = 0; k < n; ++k)
                    if (k != r && wsize[k] > 0.0) driven = std::max(driven, std::fabs(val(h * J0[r * n + k])) * wsize[k]);
                if (driven > 0.0 && std::isfinite(driven)) wsize[r] = std::max(driven, settings.tiny);
            }
        for (int k = 0; k < n; ++k) {
            int exponent = 1;
            if (wsize[k] > 0.0) std::frexp(wsize[k], &exponent);
            wscale[k] = std::ldexp(1.0, exponent - 1);
        }
        for (int i = 0; i < s; ++i)
            for (int r = 0; r < n; ++r)
                for (int j = 0; j < s; ++j)
                    for (int k = 0; k < n; ++k)
                        M[(i * n + r) * sn + j * n + k] = ((i == j && r == k) ? T(1.0) : T(0.0)) -
                                                          h * A[i * s + j] * J0[r * n + k] * T(wscale[k] / wscale[r]);
        report->lu += 1;
        if (!newton_lu.factor(M, sn)) return NEWTON_FAILURE;
        double previous = 0.0;
        const double floor = 100.0 * settings.unit_roundoff / settings.rtol;
        bool converged = false;
        for (int iteration = 0; iteration < 25; ++iteration) {
            if (iteration > 0) {
                for (int i = 0; i < s; ++i) {
                    for (int k = 0; k < n; ++k) tmp[k] = y[k] + Z[i * n + k];
                    Model::rhs(t + c[i] * h, tmp.data(), p, &F[i * n]);
                }
                report->nfev += s;
            }
            report->newton_iterations += 1;
            for (int m = 0; m < sn; ++m) if (!finite(F[m])) return NON_FINITE;
            for (int i = 0; i < s; ++i)
                for (int k = 0; k < n; ++k) {
                    T acc = T(0.0);
                    for (int j = 0; j < s; ++j) acc += A[i * s + j] * F[j * n + k];
                    G[i * n + k] = (h * acc - Z[i * n + k]) * T(1.0 / wscale[k]);
                }
            newton_lu.solve(G.data());
            for (int i = 0; i < s; ++i)
                for (int k = 0; k < n; ++k) G[i * n + k] = G[i * n + k] * T(wscale[k]);
            for (int m = 0; m < sn; ++m) Z[m] += G[m];
            // Relative to the size of each component over the step (its start and the updated stages), so a
            // component that starts at zero is judged by the values it takes.
            double norm = 0.0;
            for (int k = 0; k < n; ++k) {
                double size = std::max(std::fabs(val(y[k])), settings.tiny);
                for (int i = 0; i < s; ++i) size = std::max(size, std::fabs(val(y[k] + Z[i * n + k])));
                const double scale = settings.atol + settings.rtol * size;
                for (int i = 0; i < s; ++i) {
                    const double update = std::fabs(val(G[i * n + k]));
                    if (update > 0.0) norm = std::max(norm, scale > 0.0 ? update / scale : HUGE_VAL);
                }
            }
            if (!std::isfinite(norm)) return NON_FINITE;
            if (norm <= floor) { converged = true; break; }
            if (iteration > 0) {
                // A component that starts at zero is first reached in a later iteration, which the relative
                // norm sees as a jump: divergence is only declared from the fourth iteration on.
                const double theta = norm / previous;
                if (theta >= 0.99) {
                    if (iteration >= 3) return NEWTON_FAILURE;
                } else if (theta / (1.0 - theta) * norm <= 0.01) {
                    converged = true;
                    break;
                }
            }
            previous = norm;
        }
        if (!converged) return NEWTON_FAILURE;
        for (int k = 0; k < n; ++k) {
            T acc = T(0.0);
            for (int i = 0; i < s; ++i) acc += d[i] * Z[i * n + k];
            y1[k] = y[k] + acc;
        }
        if constexpr (P > 0) {
            // Stage Jacobians and parameter Jacobians at the converged stage values.
            for (int i = 0; i < s; ++i) {
                for (int k = 0; k < n; ++k) tmp[k] = y[k] + Z[i * n + k];
                Model::jacobian(t + c[i] * h, tmp.data(), p, &Jst[i * n * n]);
                Model::parameter_jacobian(t + c[i] * h, tmp.data(), p, &Fpst[i * n * P]);
            }
            report->njev += s;
            for (int i = 0; i < s; ++i)
                for (int r = 0; r < n; ++r)
                    for (int j = 0; j < s; ++j)
                        for (int k = 0; k < n; ++k)
                            M[(i * n + r) * sn + j * n + k] = ((i == j && r == k) ? T(1.0) : T(0.0)) -
                                h * A[i * s + j] * Jst[j * n * n + r * n + k] * T(wscale[k] / wscale[r]);
            report->lu += 1;
            if (!sens_lu.factor(M, sn)) return NEWTON_FAILURE;
            std::vector<T> column(sn);
            for (int q = 0; q < P; ++q) {
                for (int i = 0; i < s; ++i)
                    for (int r = 0; r < n; ++r) {
                        T acc = T(0.0);
                        for (int j = 0; j < s; ++j) acc += A[i * s + j] * Fpst[j * n * P + r * P + q];
                        column[i * n + r] = (S[r * P + q] + h * acc) * T(1.0 / wscale[r]);
                    }
                sens_lu.solve(column.data());
                for (int i = 0; i < s; ++i)
                    for (int r = 0; r < n; ++r) column[i * n + r] = column[i * n + r] * T(wscale[r]);
                for (int r = 0; r < n; ++r) {
                    T acc = T(0.0);
                    for (int i = 0; i < s; ++i) acc += d[i] * (column[i * n + r] - S[r * P + q]);
                    S1[r * P + q] = S[r * P + q] + acc;
                }
            }
        }
        return SUCCESS;
    }
};

// Integrate from t0 to t1, landing on every t_eval (sorted, inside [t0, t1]); u = (y, S) with S row-major n x P.
// out: n_eval x (n + n P); error_out: n_eval x (n + n P) accumulated |local error estimates| up to each output.
template <class Model, class T>
int integrate(Collocation<Model, T>& method, T* y, T* S, double t0, double t1, const double* t_eval, long n_eval,
              T* out, double* error_out, volatile double* progress) {
    constexpr int n = Model::n_states;
    constexpr int P = Model::n_sensitivity_parameters;
    constexpr int N = n + n * P;
    Report& report = *method.report;
    const Settings& o = method.settings;
    const auto start = std::chrono::steady_clock::now();
    auto fail = [&](int status, const T& t) {
        report.status = status;
        report.t_failure = val(t);
        return status;
    };
    std::vector<double> accumulated(N, 0.0);
    T t = T(t0);
    long next = 0;
    auto emit = [&](long k) {
        for (int i = 0; i < n; ++i) out[k * N + i] = y[i];
        for (int m = 0; m < n * P; ++m) out[k * N + n + m] = S[m];
        for (int m = 0; m < N; ++m) error_out[k * N + m] = accumulated[m];
    };
    while (next < n_eval && t_eval[next] <= t0) emit(next++);
    if (!(t1 > t0)) return fail(BAD_INPUT, t);
    // Initial step: 1% of |y| / |f| in the weighted norm (Hairer's first guess), at most the span.
    double h_value = o.first_step;
    if (!(h_value > 0.0)) {
        std::vector<T> f(n);
        Model::rhs(t, y, method.p, f.data());
        report.nfev += 1;
        double d0 = 0.0, d1 = 0.0;
        for (int i = 0; i < n; ++i) {
            // relative weights: a zero (or unresolved tiny) start says nothing about the scale
            if (std::fabs(val(y[i])) <= o.tiny) continue;
            d0 = std::max(d0, std::fabs(val(y[i])) / method.weight(y[i]));
            d1 = std::max(d1, std::fabs(val(f[i])) / method.weight(y[i]));
        }
        h_value = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 * (t1 - t0) : 0.01 * d0 / d1;
        h_value = std::min(h_value, t1 - t0);
    }
    if (o.max_step > 0.0) h_value = std::min(h_value, o.max_step);
    std::vector<T> y_full(n), S_full(n * (P > 0 ? P : 1)), y_mid(n), S_mid(n * (P > 0 ? P : 1)), y_new(n),
        S_new(n * (P > 0 ? P : 1));
    const double denominator = std::pow(2.0, method.order) - 1.0;
    bool rejected_last = false;
    while (val(t) < t1) {
        if (report.accepted + report.rejected >= o.max_steps) return fail(TOO_MANY_STEPS, t);
        if (o.seconds > 0.0) {
            const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (elapsed > o.seconds) return fail(TIME_BUDGET, t);
        }
        const double target = next < n_eval ? std::min(t_eval[next], t1) : t1;
        T h = T(h_value);
        bool lands = false;
        if (val(t + h) >= target || val(t + T(1.01) * h) > target) {
            h = T(target) - t;
            lands = true;
        }
        if (std::fabs(val(h)) <= 64.0 * o.unit_roundoff * std::max(1.0, std::fabs(val(t)))) {
            return fail(STEP_SIZE_UNDERFLOW, t);
        }
        const T half = h * T(0.5);
        int status = method.step(t, h, y, S, y_full.data(), S_full.data());
        if (status == SUCCESS) status = method.step(t, half, y, S, y_mid.data(), S_mid.data());
        if (status == SUCCESS) status = method.step(t + half, half, y_mid.data(), S_mid.data(), y_new.data(), S_new.data());
        if (status == SUCCESS) {
            for (int i = 0; i < n; ++i) if (!finite(y_new[i])) status = NON_FINITE;
            for (int m = 0; m < n * P; ++m) if (!finite(S_new[m])) status = NON_FINITE;
        }
        if (status != SUCCESS) {
            report.rejected += 1;
            h_value = val(h) * 0.25;
            rejected_last = true;
            continue;
        }
        double error = 0.0;
        std::vector<double> local(N);
        for (int i = 0; i < N; ++i) {
            const T& a = i < n ? y_new[i] : S_new[i - n];
            const T& b = i < n ? y_full[i] : S_full[i - n];
            const T& u0 = i < n ? y[i] : S[i - n];
            local[i] = std::fabs(val(a - b)) / denominator;
            double size = std::max(std::max(std::fabs(val(a)), std::fabs(val(u0))), o.tiny);
            if (i >= n && o.sensitivity_scale) {
                const int r = (i - n) / P, q = (i - n) % P;
                size = std::max(size, o.sensitivity_scale[q] * std::max(std::fabs(val(y_new[r])), std::fabs(val(y[r]))));
            }
            const double scale = o.atol + o.rtol * size;
            if (local[i] > 0.0) error = std::max(error, scale > 0.0 ? local[i] / scale : HUGE_VAL);
        }
        if (!std::isfinite(error)) {
            report.rejected += 1;
            h_value = val(h) * 0.25;
            rejected_last = true;
            continue;
        }
        if (error <= 1.0) {
            report.accepted += 1;
            t = lands ? T(target) : t + h;
            for (int i = 0; i < n; ++i) y[i] = y_new[i];
            for (int m = 0; m < n * P; ++m) S[m] = S_new[m];
            for (int i = 0; i < N; ++i) accumulated[i] += local[i];
            if (progress) *progress = val(t);
            while (next < n_eval && t_eval[next] <= val(t)) emit(next++);
            double factor = 0.9 * std::pow(std::max(error, 1e-12), -1.0 / (method.order + 1));
            factor = std::min(rejected_last ? 1.0 : 4.0, std::max(0.2, factor));
            // A step shortened to land on an output does not shrink the next one.
            h_value = lands ? std::max(h_value, val(h) * factor) : val(h) * factor;
            rejected_last = false;
        } else {
            report.rejected += 1;
            h_value = val(h) * std::max(0.2, 0.9 * std::pow(error, -1.0 / (method.order + 1)));
            rejected_last = true;
        }
        if (o.max_step > 0.0) h_value = std::min(h_value, o.max_step);
    }
    while (next < n_eval) emit(next++);
    report.status = SUCCESS;
    return SUCCESS;
}

}  // namespace reference
}  // namespace symsens
