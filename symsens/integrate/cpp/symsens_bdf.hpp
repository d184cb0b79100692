// Variable-step, variable-order BDF / NDF of orders 1-5 in the fixed-leading-coefficient form on a
// modified-divided-differences array, following scipy's BDF (scipy/integrate/_ivp/bdf.py), which implements
// Shampine & Reichelt 1997, "The MATLAB ODE Suite" (ode15s): quasi-constant step size, the numerical
// differentiation formulas (NDF, kappa != 0) or plain BDF (kappa = 0), and the order/step selection of
// ode15s.  Written here from the description, over generic scalars.
//
// State: D[0..order+2] (rows of length n), D[j] = nabla^j y_n, the backward differences of the interpolating
// polynomial at the spacing h of the current step.  One step to t_new = t + h (HW I, III.1; S&R 1997, Sect. 2):
//
//   y_pred = sum_{j<=k} D[j],   psi = (1/alpha_k) sum_{j=1..k} gamma_j D[j],   c = h / alpha_k
//   solve  d - c f(t_new, y_pred + d) + psi = 0  by simplified Newton with the LU of I - c J,
//   y_new = y_pred + d,   err = error_const_k d,
//
// with gamma_j = sum_{m<=j} 1/m, alpha_k = (1 - kappa_k) gamma_k, error_const_k = kappa_k gamma_k + 1/(k+1).
// After an accepted step D is updated with d = nabla^{k+1} y_new; after k+1 steps of the same size the
// order may change by one (error estimates of orders k-1, k, k+1 from D[k], d, D[k+2]) and the step size by
// factor min(10, safety * max_j err_j^(-1/(j+1))); a change of step size re-samples D (the R U product of
// S&R 1997, Sect. 2.3).  Outputs at t_eval come from the BDF interpolating polynomial of the step (scipy's
// BdfDenseOutput), not from a Hermite cubic, which would need f(t_new, y_new) (one more evaluation, or the
// implicit derivative (d + psi)/c, which carries the Newton residual times 1/c).
//
// The Newton iteration (at most 4 iterations, tolerance max(10 eps/rtol, min(0.03, sqrt rtol)), the monitor of
// symsens_implicit.hpp) and its J / LU reuse follow scipy: J is kept across steps and re-evaluated at (t_new, y_pred) only when Newton fails
// with a J from an earlier step; the LU is kept while c = h/alpha_k (value and partials) and J are unchanged.
//
// Since BDF is multistep it has its own step loop, drive_bdf(), with the same Options / Stats / Recorder as
// drive(): fixed steps (order ramping 1, 2, ... up to BdfSettings.fixed_order or 5), replayed steps
// (Options.n_replay; the order sequence is re-derived from values, see the note at drive_bdf), stepping onto
// output times and onto t1.
//
// References: L. F. Shampine, M. W. Reichelt, SIAM J. Sci. Comput. 18 (1997) 1-22; E. Hairer, S. P. Nørsett,
// G. Wanner, Solving ODEs I, Sect. III.1-III.2; scipy.integrate.BDF.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "symsens_implicit.hpp"
#include "symsens_solver.hpp"

namespace symsens {

// ---- coefficients -------------------------------------------------------------------------------------------
// kappa[k]        the NDF modification of order k (k = 0..5; kappa[0] = kappa[5] = 0): Shampine & Reichelt's
//                 -0.1850, -1/9, -0.0823, -0.0415 for k = 1..4 (all zero: plain BDF)
// gamma[k]        sum_{j=1..k} 1/j                      (k = 0..5, gamma[0] = 0)
// alpha[k]        (1 - kappa[k]) gamma[k]
// error_const[k]  kappa[k] gamma[k] + 1/(k+1)           (k = 0..6, with kappa[6] = 0)
// All are rational, so they are formed here in T from integers: no decimal is typed as a binary float.
template <class T>
struct BdfCoefficients {
    T kappa[7], gamma[7], alpha[7], error_const[7];
};

template <class T>
BdfCoefficients<T> bdf_coefficients(bool ndf) {
    BdfCoefficients<T> c;
    const T zero(0.0);
    c.kappa[0] = zero;
    c.kappa[1] = ndf ? T(-37.0) / T(200.0) : zero;     // -0.1850
    c.kappa[2] = ndf ? T(-1.0) / T(9.0) : zero;        // -1/9
    c.kappa[3] = ndf ? T(-823.0) / T(10000.0) : zero;  // -0.0823
    c.kappa[4] = ndf ? T(-83.0) / T(2000.0) : zero;    // -0.0415
    c.kappa[5] = zero;
    c.kappa[6] = zero;
    c.gamma[0] = zero;
    for (int k = 1; k < 7; ++k) c.gamma[k] = c.gamma[k - 1] + T(1.0) / T(double(k));
    for (int k = 0; k < 7; ++k) {
        c.alpha[k] = (T(1.0) - c.kappa[k]) * c.gamma[k];
        c.error_const[k] = c.kappa[k] * c.gamma[k] + T(1.0) / T(double(k + 1));
    }
    return c;
}

// f(std::integral_constant<int, K>{}) with K = order + 1 rows of D (order 0..5; larger orders take 6): the row
// passes below are templates over K, so their loops over the rows unroll.
template <class F> inline void with_row_count(int order, F&& f) {
    switch (order) {
        case 0: f(std::integral_constant<int, 1>{}); break;
        case 1: f(std::integral_constant<int, 2>{}); break;
        case 2: f(std::integral_constant<int, 3>{}); break;
        case 3: f(std::integral_constant<int, 4>{}); break;
        case 4: f(std::integral_constant<int, 5>{}); break;
        default: f(std::integral_constant<int, 6>{}); break;
    }
}

struct BdfSettings {
    int max_order = 5;     // 1..5
    int fixed_order = 0;   // > 0: ramp up to this order and keep it (no order selection)
};

template <class T>
struct Bdf {
    static constexpr int NEWTON_MAXITER = 4;
    static constexpr double MIN_FACTOR = 0.2;
    static constexpr double MAX_FACTOR = 10.0;

    int n;
    BdfSettings settings;
    BdfCoefficients<T> coef;
    std::vector<T> D;           // (max_order + 3) x n
    int order = 1;
    bool have_history = false;  // D preset by set_history (tests: start from exact past values)
    IterationMatrix<T> matrix;
    NewtonWeights weights;
    NewtonControl newton;
    long orders_used[6] = {0, 0, 0, 0, 0, 0};  // accepted steps per order (diagnostics)

    Bdf(int dimension, const BdfSettings& s, const BdfCoefficients<T>& c)
        : n(dimension), settings(s), coef(c), D(static_cast<size_t>(8) * dimension, T(0.0)), matrix(dimension) {
        settings.max_order = std::min(std::max(settings.max_order, 1), 5);
        if (settings.fixed_order > settings.max_order) settings.fixed_order = settings.max_order;
    }
    T* row(int j) { return &D[static_cast<size_t>(j) * n]; }

    // Start from values y(t0 - j h), j = 0..k+1 (row-major, (k+2) x n) at the constant step h: D holds their
    // backward differences and the order is k.  Only for tests of the fixed-order convergence.
    void set_history(int k, const T* past) {
        for (int j = 0; j < k + 2; ++j)
            for (int i = 0; i < n; ++i) row(j)[i] = past[j * n + i];
        // In place: after pass p, rows p..k+1 hold nabla^p.
        for (int p = 1; p < k + 2; ++p)
            for (int j = k + 1; j >= p; --j)
                for (int i = 0; i < n; ++i) row(j)[i] = row(j - 1)[i] - row(j)[i];
        order = k;
        have_history = true;
    }

    // Re-sample D[0..order] from spacing h to factor * h: D <- (R(factor) U)^T D, where
    // R_ij(f) = prod_{m=1..i} (m - 1 - f j) / m (i, j = 1..order, R_0j = 1) and U = R(1) (S&R 1997, Sect. 2.3).
    template <class Time>
    void change_D(const Time& factor) {
        const int k = order;
        std::vector<T> R((k + 1) * (k + 1)), U((k + 1) * (k + 1)), RU((k + 1) * (k + 1));
        auto compute = [k](std::vector<T>& M, const T& f) {
            for (int j = 0; j <= k; ++j) M[0 * (k + 1) + j] = T(1.0);
            for (int i = 1; i <= k; ++i) {
                M[i * (k + 1) + 0] = T(0.0);  // cumprod of a zero first column (i >= 1)
                for (int j = 1; j <= k; ++j)
                    M[i * (k + 1) + j] =
                        M[(i - 1) * (k + 1) + j] * ((T(double(i - 1)) - f * T(double(j))) / T(double(i)));
            }
        };
        compute(R, T(factor));
        compute(U, T(1.0));
        for (int i = 0; i <= k; ++i)
            for (int j = 0; j <= k; ++j) {
                T acc(0.0);
                for (int l = 0; l <= k; ++l) acc = acc + R[i * (k + 1) + l] * U[l * (k + 1) + j];
                RU[i * (k + 1) + j] = acc;
            }
        // row j <- 0 + RU_0j D_0 + RU_1j D_1 + ... + RU_kj D_k, summed in this order for every entry.  All rows in
        // one pass over the entries (the old values of an entry are read before its new ones are written): D is
        // read and written once instead of once per term.
        with_row_count(k, [&](auto rows) { resample<decltype(rows)::value>(RU.data()); });
    }
    // change_D's product for K = order + 1 rows (RU is K x K, row-major).
    template <int K> void resample(const T* RU) {
        T* rows[K];
        for (int l = 0; l < K; ++l) rows[l] = row(l);
        int i = 0;
#if SYMSENS_PAIRS
        if constexpr (use_pairs<T>) {
            using namespace pairs;
            d2 coefficient[K][K];
            for (int l = 0; l < K; ++l)
                for (int j = 0; j < K; ++j) coefficient[l][j] = splat(RU[l * K + j]);
            for (; i + 2 <= n; i += 2) {
                d2 old[K];
                SYMSENS_UNROLL for (int l = 0; l < K; ++l) old[l] = load(rows[l] + i);
                SYMSENS_UNROLL for (int j = 0; j < K; ++j) {
                    d2 acc = splat(0.0);
                    SYMSENS_UNROLL for (int l = 0; l < K; ++l) acc = acc + coefficient[l][j] * old[l];
                    store(rows[j] + i, acc);
                }
            }
        }
#endif
        for (; i < n; ++i) {
            T old[K];
            for (int l = 0; l < K; ++l) old[l] = rows[l][i];
            for (int j = 0; j < K; ++j) {
                T acc(0.0);
                for (int l = 0; l < K; ++l) acc = acc + RU[l * K + j] * old[l];
                rows[j][i] = acc;
            }
        }
    }
};

// Element-wise pieces of the step over distinct rows.  Each reads and writes every row once, entry by entry (the
// rows as parallel contiguous streams): D has up to 8 rows of N entries, beyond the L1 cache for large systems,
// and a pass per row and term would move it through the caches several times per step.  For doubles two
// entries at a time; each entry's operations are the scalar ones, in the same order.
//
// y_pred_i = D0_i + D1_i + ... + Dk_i and psi_i = (0 + gamma_1 D1_i + ... + gamma_k Dk_i) / alpha_k, K = k + 1.
template <int K, class T>
inline void bdf_predict_rows(T* __restrict y_pred, T* __restrict psi, const Bdf<T>& bdf, int n) {
    const T* rows[K];
    for (int j = 0; j < K; ++j) rows[j] = &bdf.D[static_cast<size_t>(j) * bdf.n];
    const T alpha = bdf.coef.alpha[K - 1];
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        d2 gamma[K];
        for (int j = 1; j < K; ++j) gamma[j] = splat(bdf.coef.gamma[j]);
        const d2 a = splat(alpha);
        for (; i + 2 <= n; i += 2) {
            d2 y = load(rows[0] + i), p = splat(0.0);
            SYMSENS_UNROLL for (int j = 1; j < K; ++j) {
                const d2 Dj = load(rows[j] + i);
                y = y + Dj;
                p = p + gamma[j] * Dj;
            }
            store(y_pred + i, y);
            store(psi + i, p / a);
        }
    }
#endif
    for (; i < n; ++i) {
        T y = rows[0][i], p(0.0);
        for (int j = 1; j < K; ++j) {
            y = y + rows[j][i];
            p = p + bdf.coef.gamma[j] * rows[j][i];
        }
        y_pred[i] = y;
        psi[i] = p / alpha;
    }
}
template <class T>
inline void bdf_predict(T* __restrict y_pred, T* __restrict psi, const Bdf<T>& bdf, int order, int n) {
    with_row_count(order, [&](auto rows) { bdf_predict_rows<decltype(rows)::value>(y_pred, psi, bdf, n); });
}
// After an accepted step of order k (K = k + 1): nabla^{k+2} = d - nabla^{k+1}, nabla^{k+1} = d, then
// D_j += D_{j+1} for j = k, ..., 0 (S&R 1997; scipy), entry by entry.
template <int K, class T> inline void bdf_update_rows(Bdf<T>& bdf, const T* __restrict d, int n) {
    T* rows[K + 2];
    for (int j = 0; j < K + 2; ++j) rows[j] = bdf.row(j);
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        for (; i + 2 <= n; i += 2) {
            const d2 di = load(d + i);
            d2 next = di;
            store(rows[K + 1] + i, di - load(rows[K] + i));
            store(rows[K] + i, di);
            SYMSENS_UNROLL for (int j = K - 1; j >= 0; --j) {
                next = load(rows[j] + i) + next;
                store(rows[j] + i, next);
            }
        }
    }
#endif
    for (; i < n; ++i) {
        const T di = d[i];
        rows[K + 1][i] = di - rows[K][i];
        rows[K][i] = di;
        T next = di;
        for (int j = K - 1; j >= 0; --j) {
            next = rows[j][i] + next;
            rows[j][i] = next;
        }
    }
}
template <class T> inline void bdf_update(Bdf<T>& bdf, const T* d, int order, int n) {
    with_row_count(order, [&](auto rows) { bdf_update_rows<decltype(rows)::value>(bdf, d, n); });
}
// The Newton residual dy_i = c fz_i - psi_i - d_i and whether every fz_i is finite (all_finite), in one pass
// (for doubles two entries at a time: each lane computes the scalar expression, the check is all_finite's).
template <class T>
inline bool bdf_residual(T* __restrict dy, const T* __restrict fz, const T* __restrict psi, const T* __restrict d,
                         const T& c, int n) {
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        const d2 cc = splat(c), zero = splat(0.0);
        d2 check = zero;
        for (; i + 2 <= n; i += 2) {
            const d2 f = load(fz + i);
            check = check + f * zero;
            store(dy + i, cc * f - load(psi + i) - load(d + i));
        }
        bool finite = check[0] == 0.0 && check[1] == 0.0;
        for (; i < n; ++i) {
            finite = finite & is_finite(fz[i]);
            dy[i] = c * fz[i] - psi[i] - d[i];
        }
        return finite;
    }
#endif
    for (; i < n; ++i) dy[i] = c * fz[i] - psi[i] - d[i];
    return all_finite(fz, n);
}
// The Newton update y_new_i += dy_i, d_i += dy_i.
template <class T>
inline void bdf_apply_correction(T* __restrict y_new, T* __restrict d, const T* __restrict dy, int n) {
    int i = 0;
#if SYMSENS_PAIRS
    if constexpr (use_pairs<T>) {
        using namespace pairs;
        for (; i + 2 <= n; i += 2) {
            const d2 step = load(dy + i);
            store(y_new + i, load(y_new + i) + step);
            store(d + i, load(d + i) + step);
        }
    }
#endif
    for (; i < n; ++i) { y_new[i] = y_new[i] + dy[i]; d[i] = d[i] + dy[i]; }
}

// Outputs of the step (t_old, t_new] from the polynomial y(s) = D0 + sum_{j=1..k} D_j prod_{m<j} (s - t_new +
// m h) / ((m + 1) h), D after the update of the accepted step (scipy's BdfDenseOutput).
template <class T, class Time>
void bdf_outputs(Recorder<T, Time>& rec, const Bdf<T>& bdf, int k, const Time& t_old, const Time& t_new,
                 const Time& h) {
    const int n = bdf.n;
    if (rec.at_steps) { rec.store(bdf.D.data()); return; }  // D0 is the new value
    const double t_end = value_of(t_new);
    while (rec.next < rec.n_eval && rec.t_eval[rec.next] <= t_end) {
        const double te = rec.t_eval[rec.next];
        T* dst = rec.out + rec.next * rec.dimension;
        if (te <= value_of(t_old)) { ++rec.next; continue; }  // (t0 itself was written before the first step)
        if (te == t_end) {
            for (int i = 0; i < n; ++i) dst[i] = bdf.D[i];
        } else {
            for (int i = 0; i < n; ++i) dst[i] = bdf.D[i];
            Time p(1.0);
            for (int j = 1; j <= k; ++j) {
                p = p * (Time(te) - t_new + Time(double(j - 1)) * h) / (Time(double(j)) * h);
                const T pT = T(p);
                for (int i = 0; i < n; ++i) dst[i] = dst[i] + pT * bdf.D[static_cast<size_t>(j) * n + i];
            }
        }
        ++rec.next;
    }
}

// The BDF step loop.  Same contract as drive(): y is overwritten by the value at the end, outputs go to the
// recorder, stats are counted, the return value is a Status.
//
// Replay (Options.n_replay > 0): the step sizes are taken from the list and every step is accepted; the order
// is still selected from values after k+1 equal steps.  A replay has no rejected attempts, so its order
// sequence can differ from the original run's: it is the replay program (the same for its dual run and for
// finite differences of it) that is reproduced, not the original one.  Freezing the orders too would need a
// replay_orders array in Options (and the recorded orders in the Recorder).
template <class T, class Time, class Problem>
int drive_bdf(const Problem& problem, Bdf<T>& bdf, double t0, double t1, T* y, const Options& o,
              Recorder<T, Time>& recorder, Stats& stats) {
    const int n = problem.dimension();
    const int m = problem.error_components();
    const bool tangents = o.tangents_in_norm != 0;
    const bool fixed = o.fixed_step != 0;
    const bool replay = o.n_replay > 0;
    const BdfCoefficients<T>& C = bdf.coef;
    bdf.newton.configure(o.rtol, newton_budget(o, Bdf<T>::NEWTON_MAXITER));
    std::vector<T> f(n), y_pred(n), psi(n), d(n), y_new(n), dy(n), fz(n), err(n), err_m(n), err_p(n);
    auto fail = [&](int status, double when) {
        stats.status = status;
        stats.t_failure = when;
        return status;
    };
    Time t(t0);
    problem.rhs(t, y, f.data());
    recorder.start(t0, y);
    // A non-finite y0 or f(t0, y0) poisons every attempt: report it as what it is, at t0.
    if (!values_finite(y, n) || !values_finite(f.data(), n)) return fail(STATUS_NON_FINITE, t0);
    const double direction = t1 >= t0 ? 1.0 : -1.0;
    // As in drive(): non-finite attempts since the last accepted step (or in the initial step selection) make an
    // underflow a non-finite failure.
    bool non_finite_attempt = false;
    Time h;  // the spacing D currently describes (signed)
    if (replay) {
        h = Time(o.replay_steps[0]);
    } else if (o.first_step > 0) {
        h = Time(direction * o.first_step);
    } else {
        h = Time(direction * initial_step(problem, t0, t1, y, f.data(), 1, o, tangents, &non_finite_attempt));
    }
    if (!replay && o.max_step > 0 && std::fabs(value_of(h)) > o.max_step) h = Time(direction * o.max_step);
    if (!bdf.have_history) {
        for (int i = 0; i < n; ++i) {
            bdf.row(0)[i] = y[i];
            bdf.row(1)[i] = f[i] * T(h);
        }
        bdf.order = 1;
    }
    Time h_wish = h;  // what the controller asks for; h may be clipped below it (max_step, outputs, t1)
    int n_equal_steps = bdf.have_history ? bdf.order + 1 : 0;
    long replay_index = 0;
    bool jacobian_current = false;
    int& order = bdf.order;  // change_D reads bdf.order: one variable, never a copy
    const int target_order = bdf.settings.fixed_order > 0 ? bdf.settings.fixed_order : bdf.settings.max_order;
    auto give_up = [&](double when) {
        return fail(non_finite_attempt ? STATUS_NON_FINITE : STATUS_STEP_SIZE_UNDERFLOW, when);
    };

    while (direction * (t1 - value_of(t)) > 0) {
        if (stats.accepted + stats.rejected >= o.max_steps) return fail(STATUS_TOO_MANY_STEPS, value_of(t));
        // ---- the step size of this attempt ----
        Time h_target = h_wish;
        if (replay) {
            if (replay_index >= o.n_replay) break;
            // The last replayed step lands on t1 exactly (see drive()).
            h_target = replay_index + 1 == o.n_replay ? Time(t1 - value_of(t)) : Time(o.replay_steps[replay_index]);
        } else if (!fixed) {
            if (o.max_step > 0 && std::fabs(value_of(h_target)) > o.max_step) h_target = Time(direction * o.max_step);
            if (o.step_onto_outputs && !recorder.at_steps && recorder.next < recorder.n_eval) {
                const double target = recorder.t_eval[recorder.next];
                if (direction * (target - value_of(t)) > 0 && direction * (value_of(t + h_target) - target) > 0)
                    h_target = Time(target) - t;
            }
        }
        if (!replay) {
            if (direction * (value_of(t + h_target) - t1) >= 0 ||
                (!fixed && direction * (value_of(t + Time(1.01) * h_target) - t1) > 0))
                h_target = Time(t1) - t;
        }
        if (!identical(h_target, h)) {
            bdf.change_D(h_target / h);
            h = h_target;
            n_equal_steps = 0;
        }
        const double min_step = std::max(o.min_step, 16 * std::numeric_limits<double>::epsilon() * std::fabs(value_of(t)));
        // A step must advance t (see drive()): nan, or t + h == t, is a step size underflow in every mode.
        if ((!replay && !fixed && !(std::fabs(value_of(h)) >= min_step)) || !(std::fabs(value_of(h)) > 0.0) ||
            value_of(t + h) == value_of(t))
            return give_up(value_of(t));

        // ---- predictor and Newton ----
        const Time t_new = t + h;
        // y_pred_i = D0_i + D1_i + ... + Dk_i and psi_i = (0 + gamma_1 D1_i + ... + gamma_k Dk_i) / alpha_k, summed
        // in this order for every i; row by row, so that D is read contiguously.
        bdf_predict(y_pred.data(), psi.data(), bdf, order, n);
        bdf.weights.set(y_pred.data(), n, o);
        const T c = T(h) / C.alpha[order];
        bool converged = false, non_finite = false;
        int n_iter = 0;
        for (;;) {
            if (!bdf.matrix.have_jacobian) {
                bdf.matrix.evaluate(problem, t, y);
                jacobian_current = true;
            }
            if (!bdf.matrix.factor(problem, T(1.0), c)) break;
            // scipy's solve_bdf_system: d <- d + (I - cJ)^-1 (c f(t_new, y_pred + d) - psi - d)
            for (int i = 0; i < n; ++i) { d[i] = T(0.0); y_new[i] = y_pred[i]; }
            bdf.newton.start();
            for (;;) {
                problem.rhs(t_new, y_new.data(), fz.data());
                ++stats.newton_iterations;
                if (!bdf_residual(dy.data(), fz.data(), psi.data(), d.data(), c, n)) { non_finite = true; break; }
                bdf.matrix.solve(dy.data());
                const auto verdict = bdf.newton.check(bdf.weights.norm(dy.data(), n));
                n_iter = bdf.newton.iterations;
                if (verdict == NewtonControl::DIVERGED) break;
                bdf_apply_correction(y_new.data(), d.data(), dy.data(), n);
                if (verdict == NewtonControl::CONVERGED) { converged = true; break; }
            }
            if (converged || non_finite || jacobian_current) break;
            bdf.matrix.evaluate(problem, t_new, y_pred.data());
            jacobian_current = true;
        }
        if (!converged) {
            if (fixed || replay) return fail(non_finite ? STATUS_NON_FINITE : STATUS_NEWTON_FAILURE, value_of(t));
            if (non_finite) non_finite_attempt = true;
            ++stats.rejected;
            h_wish = h * Time(non_finite ? 0.25 : 0.5);
            continue;
        }
        const double safety = 0.9 * (2 * Bdf<T>::NEWTON_MAXITER + 1) / (2 * Bdf<T>::NEWTON_MAXITER + std::min(n_iter, Bdf<T>::NEWTON_MAXITER));
        for (int i = 0; i < n; ++i) err[i] = C.error_const[order] * d[i];
        const Time error = controller_error<T, Time>(err.data(), y_new.data(), y_new.data(), n, m, o);
        if (!values_finite(y_new.data(), n) || (!fixed && !replay && !std::isfinite(value_of(error)))) {
            // A converged Newton iterate that overflowed, or a nan error estimate: rejected as non-finite (a nan
            // error would otherwise pass the test below and be accepted).
            if (fixed || replay) return fail(STATUS_NON_FINITE, value_of(t));
            non_finite_attempt = true;
            ++stats.rejected;
            h_wish = h * Time(0.25);
            continue;
        }
        if (!fixed && !replay && value_of(error) > 1.0) {
            ++stats.rejected;
            Time factor = Time(safety) * pow(error, Time(-1.0 / (order + 1)));
            if (value_of(factor) < Bdf<T>::MIN_FACTOR) factor = Time(Bdf<T>::MIN_FACTOR);
            h_wish = h * factor;
            continue;
        }

        // ---- accept ----
        non_finite_attempt = false;
        ++stats.accepted;
        ++bdf.orders_used[order];
        ++n_equal_steps;
        const Time t_old = t;
        t = t_new;
        for (int i = 0; i < n; ++i) y[i] = y_new[i];
        // nabla^{j+1} y_new = nabla^j y_new - nabla^j y_n, and d = nabla^{k+1} y_new (S&R 1997; scipy).
        bdf_update(bdf, d.data(), order, n);
        bdf_outputs(recorder, bdf, order, t_old, t, h);
        recorder.accept(t_old, h);
        jacobian_current = false;
        if (replay) ++replay_index;

        // ---- order and step size for the next step ----
        if (fixed || bdf.settings.fixed_order > 0) {
            // Ramp: the update above made D[order+1] the next difference, so the order can rise by one per step.
            if (order < target_order && (fixed || n_equal_steps >= order + 1)) {
                ++order;
                n_equal_steps = 0;
            }
            if (!fixed && !replay && n_equal_steps >= order + 1) {
                Time factor(Bdf<T>::MAX_FACTOR);
                if (value_of(error) > 0) factor = Time(safety) * pow(error, Time(-1.0 / (order + 1)));
                if (value_of(factor) > Bdf<T>::MAX_FACTOR) factor = Time(Bdf<T>::MAX_FACTOR);
                h_wish = h * factor;
                n_equal_steps = 0;
            }
            continue;
        }
        if (n_equal_steps < order + 1) continue;
        Time error_m(0.0), error_p(0.0);
        double em = std::numeric_limits<double>::infinity(), ep = std::numeric_limits<double>::infinity();
        if (order > 1) {
            for (int i = 0; i < n; ++i) err_m[i] = C.error_const[order - 1] * bdf.row(order)[i];
            error_m = controller_error<T, Time>(err_m.data(), y_new.data(), y_new.data(), n, m, o);
            em = value_of(error_m);
        }
        if (order < bdf.settings.max_order) {
            for (int i = 0; i < n; ++i) err_p[i] = C.error_const[order + 1] * bdf.row(order + 2)[i];
            error_p = controller_error<T, Time>(err_p.data(), y_new.data(), y_new.data(), n, m, o);
            ep = value_of(error_p);
        }
        // factors_j = err_j^(-1/(j+1)), j = order-1, order, order+1; pick the largest (on values).
        const double e0 = value_of(error);
        const double fm = em == 0 ? std::numeric_limits<double>::infinity() : std::pow(em, -1.0 / order);
        const double f0 = e0 == 0 ? std::numeric_limits<double>::infinity() : std::pow(e0, -1.0 / (order + 1));
        const double fp = ep == 0 ? std::numeric_limits<double>::infinity() : std::pow(ep, -1.0 / (order + 2));
        int delta = 0;
        double best = f0;
        if (fm > best) { best = fm; delta = -1; }
        if (fp > best) { best = fp; delta = 1; }
        // scipy takes argmax over (m, 0, p), preferring the first maximum: ties go to the lower order.
        if (fm == best) delta = -1;
        else if (f0 == best) delta = 0;
        Time factor;
        if (!std::isfinite(best)) {
            factor = Time(Bdf<T>::MAX_FACTOR);
        } else {
            const Time& chosen = delta < 0 ? error_m : (delta > 0 ? error_p : error);
            const int q = order + delta + 1;
            factor = Time(safety) * pow(chosen, Time(-1.0 / q));
            if (value_of(factor) > Bdf<T>::MAX_FACTOR) factor = Time(Bdf<T>::MAX_FACTOR);
        }
        order += delta;
        n_equal_steps = 0;
        if (!replay) h_wish = h * factor;
    }
    stats.status = STATUS_SUCCESS;
    return STATUS_SUCCESS;
}

// drive() with a Bdf "stepper" is drive_bdf(): the one-step driver code (the generated extern "C" entry) works
// unchanged with `auto stepper = symsens::Bdf<T>(dimension, settings, symsens::bdf_coefficients<T>(true));`.
// (Partial ordering prefers this overload to the generic drive(const Problem&, Stepper&, ...).)
template <class T, class Time, class Problem>
int drive(const Problem& problem, Bdf<T>& bdf, double t0, double t1, T* y, const Options& o,
          Recorder<T, Time>& recorder, Stats& stats) {
    return drive_bdf<T, Time>(problem, bdf, t0, t1, y, o, recorder, stats);
}

}  // namespace symsens
