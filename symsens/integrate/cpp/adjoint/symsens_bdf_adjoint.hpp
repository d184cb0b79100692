// The discrete adjoint of a BDF/NDF solve: reverse mode through its accepted steps, their difference array and
// their Newton iterations, with the solver's decisions replayed on values.
//
// The compiled BDF (symsens_bdf.hpp: variable order 1-5, NDF, Shampine & Reichelt 1997 as SciPy's BDF) carries
// the backward differences D_0 .. D_(k+2) of its interpolating polynomial.  With the step sizes held, one
// accepted step of order k is
//
//   D[0..k] <- (R(h_new / h_old) U)^T D[0..k]                    when the step size changes (S&R 1997, 2.3)
//   y_pred = sum_{j<=k} D_j,   psi = (1/alpha_k) sum_{1<=j<=k} gamma_j D_j,   c = h / alpha_k
//   d^0 = 0, Y^0 = y_pred;  for q < K:  x^q = M^-1 (c f(t_new, Y^q) - psi - d^q),  Y^(q+1) = Y^q + x^q,
//                                       d^(q+1) = d^q + x^q,       M = I - c J
//   D_(k+2) = d - D_(k+1),  D_(k+1) = d,  D_j += D_(j+1) (j = k..0)       (d = d^K, y_(n+1) = D_0)
//
// and the outputs are the step's polynomial D_0 + sum_j p_j D_j.  The reverse is the transpose of this program
// operation by operation: the Newton iterations from the last back (rbar = M^-T (Ybar + dbar),
// Jbar += c rbar (x^q)^T, psibar -= rbar, dbar -= rbar, Ybar += J(Y^q)^T c rbar), the difference update and the
// re-sampling transposed, and the cotangent of a kept Jacobian taken back, through the model's second
// derivatives (symsens_implicit_adjoint_common.hpp), to the point where it was evaluated: (t0, y0), or the
// (t_new, y_pred) of the attempt whose Newton iteration failed with an older Jacobian.
//
// The compiled solve records only its accepted steps, so the sweep re-takes its decisions on values with the
// rules of symsens_bdf.hpp (symsens_newton_replay.hpp): the predictor, the Newton monitor (budget 4 adaptive, 20
// replayed), the Jacobian refresh, the order and step-size selection after k + 1 equal steps, and, for an
// adaptive solve, the rejected attempts before each accepted step (re-enacted from the controller's wish until an
// attempt lands on the recorded step; an attempt that refreshes the Jacobian changes every later step).  This is
// the program of symsens/integrate/_discrete_adjoint_bdf.py (the NumPy sweep, whose docstring says more),
// operation by operation, so the two agree to rounding and take the same path.
//
// Memory: a checkpoint (D, order, equal-step count, step size, the controller's wish and the kept Jacobian) every
// `every` steps; a block re-run from its checkpoint keeps each step's predictor, Newton iterates and corrections
// (Griewank & Walther 2008, Ch. 12).  A kept Jacobian keeps the LU of its latest iteration matrix, re-factored
// when c changes (as the solver does).
//
// References: L. F. Shampine and M. W. Reichelt, SIAM J. Sci. Comput. 18 (1997) 1-22; E. Hairer, S. P. Norsett
// and G. Wanner, Solving ODEs I, Sect. III.1-III.2; E. Hairer and G. Wanner, Solving ODEs II, Sect. IV.8;
// A. Griewank and A. Walther, Evaluating Derivatives, 2nd ed., SIAM 2008.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <vector>

#include "symsens_erk_adjoint.hpp"
#include "symsens_implicit_adjoint_common.hpp"
#include "symsens_newton_replay.hpp"

namespace symsens_adjoint {

// gamma_k = sum_{j<=k} 1/j, alpha_k = (1 - kappa_k) gamma_k, error_const_k = kappa_k gamma_k + 1/(k+1) with
// Shampine & Reichelt's NDF kappa (bdf_coefficients<double>(true) of symsens_bdf.hpp, formed the same way).
struct BdfCoefficientValues {
    double gamma[7], alpha[7], error_const[7];

    BdfCoefficientValues() {
        const double kappa[7] = {0.0, -37.0 / 200.0, -1.0 / 9.0, -823.0 / 10000.0, -83.0 / 2000.0, 0.0, 0.0};
        gamma[0] = 0.0;
        for (int k = 1; k < 7; ++k) gamma[k] = gamma[k - 1] + 1.0 / static_cast<double>(k);
        for (int k = 0; k < 7; ++k) {
            alpha[k] = (1.0 - kappa[k]) * gamma[k];
            error_const[k] = kappa[k] * gamma[k] + 1.0 / static_cast<double>(k + 1);
        }
    }
};

// R(factor) U ((k+1) x (k+1), row-major) in the order of operations of Bdf::change_D.
inline std::vector<double> bdf_resampling(int k, double factor) {
    const int m = k + 1;
    auto compute = [k, m](double f) {
        std::vector<double> M(static_cast<std::size_t>(m) * m, 0.0);
        for (int j = 0; j <= k; ++j) M[j] = 1.0;
        for (int i = 1; i <= k; ++i) {
            M[i * m] = 0.0;
            for (int j = 1; j <= k; ++j)
                M[i * m + j] = M[(i - 1) * m + j] * ((static_cast<double>(i - 1) - f * static_cast<double>(j)) /
                                                     static_cast<double>(i));
        }
        return M;
    };
    const std::vector<double> R = compute(factor), U = compute(1.0);
    std::vector<double> RU(static_cast<std::size_t>(m) * m);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < m; ++j) {
            double acc = 0.0;
            for (int l = 0; l < m; ++l) acc = acc + R[i * m + l] * U[l * m + j];
            RU[i * m + j] = acc;
        }
    return RU;
}

// rows[0..m) of `X` (each of length n) <- A^T X (transpose = true) or A X, A m x m row-major.
inline void apply_rows(const std::vector<double>& A, int m, int n, bool transpose, double* X,
                       std::vector<double>& scratch) {
    scratch.assign(X, X + static_cast<std::size_t>(m) * n);
    for (int j = 0; j < m; ++j)
        for (int i = 0; i < n; ++i) {
            double acc = 0.0;
            for (int l = 0; l < m; ++l)
                acc = acc + (transpose ? A[l * m + j] : A[j * m + l]) * scratch[static_cast<std::size_t>(l) * n + i];
            X[static_cast<std::size_t>(j) * n + i] = acc;
        }
}

// J(t, y, p) evaluated at one point (`point`: where, see BdfAdjoint::step) and kept by the stepper, with the LU
// of its latest iteration matrix I - c J.
struct BdfKeptJacobian {
    long point = 0;
    std::vector<double> J;
    double factored_c = 0.0;
    bool factored = false, regular = false;
    DenseLu<double> lu;

    // The LU of I - c J (nullptr when singular).
    const DenseLu<double>* factor(double c, int n) {
        if (!factored || c != factored_c) {
            std::vector<double> M;
            regular = factor_iteration_matrix(J, c, n, M, lu);
            factored = true;
            factored_c = c;
        }
        return regular ? &lu : nullptr;
    }
};

// One attempt at a step: what its reverse needs.
struct BdfAttempt {
    int order = 1;
    std::vector<double> resampling;            // R U of a step-size change before it (empty: none)
    std::vector<double> y_pred;
    double t_new = 0.0, c = 0.0;
    std::shared_ptr<BdfKeptJacobian> jacobian;    // the Jacobian of its (last) Newton iteration
    bool refreshed = false;                    // `jacobian` was evaluated at this attempt's (t_new, y_pred)
    int iterations = 0;                        // K: Newton iterations recorded (accepted attempt only)
    std::vector<double> iterates, corrections; // Y^0 .. Y^(K-1), x^0 .. x^(K-1) (K x n each)
};

struct BdfStepRecord {
    BdfAttempt accepted;
    std::vector<BdfAttempt> rejected;          // the controller's rejected attempts before it, in order
};

// The stepper's state after an accepted step (and at a checkpoint).
struct BdfState {
    std::vector<double> D;                     // 8 x n
    int order = 1, n_equal = 0;
    double h = 0.0;
    std::shared_ptr<BdfKeptJacobian> jacobian;    // nullptr before the first step
    bool has_wish = false;                     // the controller's wish after an accepted step (none before)
    double h_wish = 0.0;
};

class BdfAdjoint : private CountedKernels {
  public:
    ReplayDecisions first_pass;   // the forward replay's counts (not the reverse pass's block re-runs)
    static constexpr int ROWS = 8;
    static constexpr int ADAPTIVE_BUDGET = 4;   // Bdf::NEWTON_MAXITER
    static constexpr int REPLAY_BUDGET = 20;
    static constexpr int MAX_ORDER = 5;
    static constexpr double MIN_FACTOR = 0.2, MAX_FACTOR = 10.0;

    BdfAdjoint(const Kernels& kernels, const SecondOrderKernels& second, int n, int P, const double* p, double rtol,
               double atol, bool replayed)
        : CountedKernels(kernels, n, P, p), second_(second), rtol_(rtol), atol_(atol), replayed_(replayed),
          monitor_(rtol, replayed ? REPLAY_BUDGET : ADAPTIVE_BUDGET), fz_(n), rhs_(n), x_(n), Y_(n), d_(n),
          psi_(n), s_(n), weights_(n), err_(n), v_(n), values_(std::max<long>(second.nnz, 1)), rbar_(n) {}

    // The sweep.  Outputs: entries [first[m], first[m+1]) of `index` are the outputs of step m (their times in
    // output_times); `start` (n_start indices) are those at t0.  outputs (K x n): written at those rows;
    // ybar0 (n), pbar (P): overwritten.  On REPLAY_FAILED, failure = (step, t, h, order).
    int run(double t0, const double* y0, long M, const double* step_times, const double* step_sizes, long K_out,
            const double* output_times, const long* first, const long* index, long n_start, const long* start,
            const double* cotangents, long every, double* outputs, double* ybar0, double* pbar, double* failure,
            Counters& counters) {
        const int n = n_;
        const OutputPlan plan{first, index, nullptr, nullptr};   // no kinds: y(te) from the step's polynomial
        if (every < 1 || M < 0 || K_out < 0 || n_start < 0 || !plan.valid(M, K_out)) return BAD_INPUT;
        for (long e = 0; e < n_start; ++e)
            if (start[e] < 0 || start[e] >= K_out) return BAD_INPUT;
        times_ = step_times;
        sizes_ = step_sizes;
        output_times_ = output_times;
        first_ = first;
        index_ = index;
        t0_ = t0;
        y0_ = y0;
        t_end_ = step_times[M];
        std::fill(pbar, pbar + P_, 0.0);
        pbar_ = pbar;

        // Forward replay with checkpoints and the outputs.
        for (long e = 0; e < n_start; ++e) std::copy(y0, y0 + n, outputs + start[e] * n);
        BdfState state;
        state.D.assign(static_cast<std::size_t>(ROWS) * n, 0.0);
        call_rhs(t0, y0, rhs_.data());
        // D_1 = h f(t0, y0) with the solve's first attempted step size: for an adaptive solve its initial step (the
        // attempts rejected before the first acceptance re-sample D and spend Newton iterations; they cannot
        // refresh J, the first Jacobian being current until then), kept as the recorded step when it is that step.
        double h_first = M > 0 ? step_sizes[0] : 0.0;
        if (M > 0 && !replayed_) {
            state.h_wish = initial_step([this](double t, const double* y, double* out) { call_rhs(t, y, out); }, t0,
                                        t_end_, y0, rhs_.data(), n, 1, rtol_, atol_);
            state.has_wish = true;
            if (!same_step(state.h_wish, h_first)) h_first = state.h_wish;
        }
        for (int i = 0; i < n; ++i) {
            state.D[i] = y0[i];
            state.D[n + i] = rhs_[i] * h_first;
        }
        state.order = 1;
        state.h = h_first;
        const long n_checkpoints = M == 0 ? 0 : (M + every - 1) / every;
        std::vector<BdfState> checkpoints;
        checkpoints.reserve(static_cast<std::size_t>(n_checkpoints));
        BdfStepRecord record;
        for (long m = 0; m < M; ++m) {
            if (m % every == 0) checkpoints.push_back(state);
            if (!step(m, state, record, failure)) return REPLAY_FAILED;
            write_outputs(m, state, record.accepted.order, outputs);
        }
        first_pass = ReplayDecisions{jacobian_evaluations_, newton_iterations_};   // the solve's, if on its path

        // Reverse pass, block by block from the last checkpoint.
        Dbar_.assign(static_cast<std::size_t>(ROWS) * n, 0.0);
        jbars_.clear();
        long peak = 0;
        std::vector<BdfStepRecord> block(static_cast<std::size_t>(std::min<long>(every, std::max<long>(M, 1))));
        for (long c = n_checkpoints - 1; c >= 0; --c) {
            const long begin = c * every, stop = std::min(begin + every, M);
            state = checkpoints[static_cast<std::size_t>(c)];
            long stored = 0;
            for (long m = begin; m < stop; ++m) {
                BdfStepRecord& r = block[static_cast<std::size_t>(m - begin)];
                if (!step(m, state, r, failure)) return REPLAY_FAILED;
                stored += n + 2L * n * r.accepted.iterations;
            }
            peak = std::max(peak, n_checkpoints * (static_cast<long>(ROWS) * n + static_cast<long>(n) * n) + stored);
            for (long m = stop - 1; m >= begin; --m)
                reverse_step(m, block[static_cast<std::size_t>(m - begin)], cotangents);
        }
        // The start: D_0 = y0, D_1 = h_1 f(t0, y0), J(t0, y0); outputs at t0.
        std::vector<double> ybar(Dbar_.begin(), Dbar_.begin() + n);
        for (long e = 0; e < n_start; ++e)
            for (int i = 0; i < n; ++i) ybar[i] += cotangents[start[e] * n + i];
        if (M > 0) {
            for (int i = 0; i < n; ++i) v_[i] = h_first * Dbar_[static_cast<std::size_t>(n) + i];
            products(t0, y0, v_.data());
            for (int i = 0; i < n; ++i) ybar[i] += jt_[i];
            add_parameters(pbar_);
        }
        take_jacobian_cotangent(START, t0, y0, ybar.data());
        std::copy(ybar.begin(), ybar.end(), ybar0);
        count(counters, n_checkpoints, peak);
        return SUCCESS;
    }

  private:
    // Where a Jacobian was evaluated: START = (t0, y0); attempt a of step m: m * SLOTS + a; the accepted attempt
    // of step m: m * SLOTS + ATTEMPTS.
    static constexpr long START = -1;
    static constexpr int ATTEMPTS = 50;
    static constexpr long SLOTS = ATTEMPTS + 1;

    enum Newton : int { CONVERGED = 0, DIVERGED = 1, NON_FINITE = 2 };

    // One simplified-Newton solve (iterates recorded in `record` when `keep`): y_new = Y^K, d = d^K in Y_, d_.
    int newton(double t_new, double c, const double* psi, BdfKeptJacobian& jacobian, BdfAttempt& record, bool keep) {
        const int n = n_;
        const DenseLu<double>* lu = jacobian.factor(c, n);
        std::fill(d_.begin(), d_.end(), 0.0);
        std::copy(record.y_pred.begin(), record.y_pred.end(), Y_.begin());
        monitor_.start();
        record.iterations = 0;
        record.iterates.clear();
        record.corrections.clear();
        for (;;) {
            call_rhs(t_new, Y_.data(), fz_.data());
            ++newton_iterations_;   // as the compiled stepper counts: one per f in the loop, a diverged one included
            for (int i = 0; i < n; ++i)
                if (!std::isfinite(fz_[i])) return NON_FINITE;
            for (int i = 0; i < n; ++i) x_[i] = c * fz_[i] - psi[i] - d_[i];
            if (lu != nullptr) lu->solve(x_.data());
            else std::fill(x_.begin(), x_.end(), std::numeric_limits<double>::quiet_NaN());
            const int verdict = monitor_.check(weighted_norm(x_.data(), n, weights_.data(), n));
            if (verdict == NewtonMonitor::DIVERGED) return DIVERGED;
            if (keep) {
                record.iterates.insert(record.iterates.end(), Y_.begin(), Y_.end());
                record.corrections.insert(record.corrections.end(), x_.begin(), x_.end());
            }
            ++record.iterations;
            for (int i = 0; i < n; ++i) {
                Y_[i] = Y_[i] + x_[i];
                d_[i] = d_[i] + x_[i];
            }
            if (verdict == NewtonMonitor::CONVERGED) return CONVERGED;
        }
    }

    // One attempt at h_target on state.D (re-sampled in place; state.h, state.jacobian updated), recorded.
    int attempt(long m, BdfState& state, double h_target, bool& current, long key, BdfAttempt& record, bool keep) {
        const int n = n_, k = state.order;
        double* D = state.D.data();
        record.order = k;
        record.resampling.clear();
        if (h_target != state.h) {
            record.resampling = bdf_resampling(k, h_target / state.h);
            apply_rows(record.resampling, k + 1, n, true, D, scratch_);
            state.h = h_target;
        }
        const double t_new = times_[m] + state.h;
        record.t_new = t_new;
        record.y_pred.assign(D, D + n);
        for (int j = 1; j <= k; ++j)
            for (int i = 0; i < n; ++i) record.y_pred[i] = record.y_pred[i] + D[static_cast<std::size_t>(j) * n + i];
        std::fill(s_.begin(), s_.end(), 0.0);
        for (int j = 1; j <= k; ++j)
            for (int i = 0; i < n; ++i) s_[i] = s_[i] + coef_.gamma[j] * D[static_cast<std::size_t>(j) * n + i];
        for (int i = 0; i < n; ++i) psi_[i] = s_[i] / coef_.alpha[k];
        newton_weights(record.y_pred.data(), n, rtol_, atol_, weights_.data());
        const double c = state.h / coef_.alpha[k];
        record.c = c;
        record.jacobian = state.jacobian;
        record.refreshed = false;
        int result = newton(t_new, c, psi_.data(), *state.jacobian, record, keep);
        if (result != CONVERGED && !current) {
            state.jacobian = evaluate_jacobian(key, t_new, record.y_pred.data());
            current = true;
            record.jacobian = state.jacobian;
            record.refreshed = true;
            result = newton(t_new, c, psi_.data(), *state.jacobian, record, keep);
        }
        return result;
    }

    double safety_factor() const {
        return 0.9 * (2 * ADAPTIVE_BUDGET + 1) /
               (2 * ADAPTIVE_BUDGET + std::min(monitor_.iterations, ADAPTIVE_BUDGET));
    }

    // sqrt(mean((scale * v_i / (atol + rtol |y_i|))^2)): error_norm(err, y, y) of the solver.
    double scaled_error(double scale, const double* v, const double* y) {
        for (int i = 0; i < n_; ++i) err_[i] = scale * v[i];
        return error_norm(err_.data(), y, y, n_, rtol_, atol_);
    }

    // One accepted step m from `state` (updated in place), the rejected attempts of an adaptive solve before it
    // re-enacted first; false (failure filled) when its Newton solve fails.
    bool step(long m, BdfState& state, BdfStepRecord& record, double* failure) {
        const int n = n_;
        const double t = times_[m], h_step = sizes_[m];
        bool current = false;
        if (!state.jacobian) {
            state.jacobian = evaluate_jacobian(START, t0_, y0_);
            current = true;
        }
        record.rejected.clear();
        double h_wish = state.has_wish ? state.h_wish : h_step;
        if (!replayed_ && state.has_wish) {
            trial_ = state;
            bool trial_current = current;
            bool reproduced = false;
            for (int a = 0; a < ATTEMPTS; ++a) {
                double h_target = h_wish;
                if (t + h_target - t_end_ >= 0 || t + 1.01 * h_target - t_end_ > 0) h_target = t_end_ - t;
                // The attempt that lands on the recorded step is the accepted one, taken with the recorded size.
                if (same_step(h_target, h_step)) {
                    reproduced = true;
                    break;
                }
                if (h_target != state.h) state.n_equal = 0;
                record.rejected.emplace_back();
                BdfAttempt& tried = record.rejected.back();
                const int result = attempt(m, state, h_target, current, m * SLOTS + a, tried, false);
                if (!tried.refreshed) tried.y_pred.clear();   // its reverse needs y_pred only for a refresh
                if (result != CONVERGED) {
                    h_wish = state.h * (result == NON_FINITE ? 0.25 : 0.5);
                    continue;
                }
                const int k = state.order;
                const double error = scaled_error(coef_.error_const[k], d_.data(), Y_.data());
                bool finite = std::isfinite(error);
                for (int i = 0; i < n && finite; ++i) finite = std::isfinite(Y_[i]);
                if (!finite) {
                    h_wish = state.h * 0.25;
                    continue;
                }
                if (error <= 1.0) break;   // the controller would have accepted it: not the recorded path
                h_wish = state.h * std::max(safety_factor() * std::pow(error, -1.0 / (k + 1)), MIN_FACTOR);
            }
            if (!reproduced) {   // another controller setting (max_step, step_onto_outputs): no rejections assumed
                std::swap(state, trial_);
                current = trial_current;
                record.rejected.clear();
                h_wish = h_step;
            }
        } else {
            h_wish = h_step;
        }
        if (h_step != state.h) state.n_equal = 0;
        const int k = state.order;
        const int result = attempt(m, state, h_step, current, m * SLOTS + ATTEMPTS, record.accepted, true);
        if (result != CONVERGED) {
            failure[0] = static_cast<double>(m);
            failure[1] = t;
            failure[2] = state.h;
            failure[3] = static_cast<double>(k);
            return false;
        }
        // y_new = Y_, d = d_.
        ++state.n_equal;
        const double safety = safety_factor();
        const double error = scaled_error(coef_.error_const[k], d_.data(), Y_.data());
        double* D = state.D.data();
        double* Dk1 = D + static_cast<std::size_t>(k + 1) * n;
        double* Dk2 = D + static_cast<std::size_t>(k + 2) * n;
        for (int i = 0; i < n; ++i) {
            Dk2[i] = d_[i] - Dk1[i];
            Dk1[i] = d_[i];
        }
        for (int j = k; j >= 0; --j)
            for (int i = 0; i < n; ++i)
                D[static_cast<std::size_t>(j) * n + i] = D[static_cast<std::size_t>(j) * n + i] +
                                                         D[static_cast<std::size_t>(j + 1) * n + i];
        int new_order = k;
        if (state.n_equal >= k + 1) {
            const double inf = std::numeric_limits<double>::infinity();
            double em = inf, ep = inf;
            if (k > 1) em = scaled_error(coef_.error_const[k - 1], D + static_cast<std::size_t>(k) * n, Y_.data());
            if (k < MAX_ORDER) ep = scaled_error(coef_.error_const[k + 1], Dk2, Y_.data());
            const double fm = em == 0 ? inf : std::pow(em, -1.0 / k);
            const double f0 = error == 0 ? inf : std::pow(error, -1.0 / (k + 1));
            const double fp = ep == 0 ? inf : std::pow(ep, -1.0 / (k + 2));
            int delta = 0;
            double best = f0;
            if (fm > best) { best = fm; delta = -1; }
            if (fp > best) { best = fp; delta = 1; }
            if (fm == best) delta = -1;
            else if (f0 == best) delta = 0;
            double factor;
            if (!std::isfinite(best)) {
                factor = MAX_FACTOR;
            } else {
                const double chosen = delta < 0 ? em : (delta > 0 ? ep : error);
                factor = std::min(safety * std::pow(chosen, -1.0 / (k + delta + 1)), MAX_FACTOR);
            }
            new_order = k + delta;
            state.n_equal = 0;
            h_wish = state.h * factor;
        }
        state.order = new_order;
        state.has_wish = true;
        state.h_wish = h_wish;
        return true;
    }

    // p_j (j = 0..k) of output e of step m: y(te) = sum_j p_j D_j (D after the step; scipy's BdfDenseOutput).
    void output_weights(long m, long e, int k, double* w) const {
        const double te = output_times_[index_[e]], t_new = times_[m + 1], h = sizes_[m];
        std::fill(w, w + k + 1, 0.0);
        w[0] = 1.0;
        if (te == t_new) return;
        double pj = 1.0;
        for (int j = 1; j <= k; ++j) {
            pj = pj * (te - t_new + static_cast<double>(j - 1) * h) / (static_cast<double>(j) * h);
            w[j] = pj;
        }
    }

    void write_outputs(long m, const BdfState& state, int k, double* outputs) const {
        const int n = n_;
        double w[MAX_ORDER + 1];
        for (long e = first_[m]; e < first_[m + 1]; ++e) {
            output_weights(m, e, k, w);
            double* out = outputs + index_[e] * n;
            for (int i = 0; i < n; ++i) out[i] = state.D[i] * w[0];
            for (int j = 1; j <= k; ++j)
                for (int i = 0; i < n; ++i) out[i] = out[i] + w[j] * state.D[static_cast<std::size_t>(j) * n + i];
        }
    }

    // The cotangent of the Jacobian evaluated at `point`, if any is pending, taken to (t, y): ybar += d/dy,
    // pbar += d/dp of <Jbar, J(t, y, p)>.  All uses of that Jacobian are reversed by now.
    void take_jacobian_cotangent(long point, double t, const double* y, double* ybar) {
        if (jbars_.take(point, second_, t, y, p_, n_, P_, ybar, pbar_)) ++product_count_;
    }

    void reverse_step(long m, BdfStepRecord& record, const double* cotangents) {
        const int n = n_;
        BdfAttempt& step = record.accepted;
        const int k = step.order;
        const double t_new = times_[m + 1], c = step.c;
        double* Dbar = Dbar_.data();
        auto row = [Dbar, n](int j) { return Dbar + static_cast<std::size_t>(j) * n; };
        double w[MAX_ORDER + 1];
        for (long e = first_[m]; e < first_[m + 1]; ++e) {
            output_weights(m, e, k, w);
            const double* W = cotangents + index_[e] * n;
            for (int j = 0; j <= k; ++j)
                for (int i = 0; i < n; ++i) row(j)[i] += w[j] * W[i];
        }
        // The difference update, transposed.
        for (int j = 0; j <= k; ++j)
            for (int i = 0; i < n; ++i) row(j + 1)[i] += row(j)[i];
        std::vector<double>& dbar = dbar_;
        dbar.assign(row(k + 1), row(k + 1) + n);
        for (int i = 0; i < n; ++i) {
            row(k + 1)[i] = 0.0;
            dbar[i] += row(k + 2)[i];
            row(k + 1)[i] -= row(k + 2)[i];
            row(k + 2)[i] = 0.0;
        }
        // Newton, from the last iteration back (y_new = Y^K itself has no other use).
        Ybar_.assign(n, 0.0);
        psibar_.assign(n, 0.0);
        const DenseLu<double>* lu = step.jacobian->factor(c, n);
        std::vector<double>& jbar = jbars_.at(step.jacobian->point, second_.nnz);
        for (int q = step.iterations - 1; q >= 0; --q) {
            const double* Yq = &step.iterates[static_cast<std::size_t>(q) * n];
            const double* xq = &step.corrections[static_cast<std::size_t>(q) * n];
            for (int i = 0; i < n; ++i) rbar_[i] = Ybar_[i] + dbar[i];
            lu->solve_transposed(rbar_.data());   // lu exists: the forward Newton used it
            for (long e = 0; e < second_.nnz; ++e) jbar[e] += c * (rbar_[second_.rows[e]] * xq[second_.cols[e]]);
            for (int i = 0; i < n; ++i) {
                psibar_[i] -= rbar_[i];
                dbar[i] = dbar[i] - rbar_[i];
                v_[i] = c * rbar_[i];
            }
            products(t_new, Yq, v_.data());
            for (int i = 0; i < n; ++i) Ybar_[i] = Ybar_[i] + jt_[i];
            add_parameters(pbar_);
        }
        if (step.refreshed) take_jacobian_cotangent(step.jacobian->point, t_new, step.y_pred.data(), Ybar_.data());
        for (int i = 0; i < n; ++i) s_[i] = psibar_[i] / coef_.alpha[k];
        for (int j = 0; j <= k; ++j)
            for (int i = 0; i < n; ++i) {
                row(j)[i] += Ybar_[i];
                if (j >= 1) row(j)[i] += coef_.gamma[j] * s_[i];
            }
        if (!step.resampling.empty()) apply_rows(step.resampling, k + 1, n, false, Dbar, scratch_);
        // The rejected attempts before it: a Jacobian evaluated at one's y_pred, and their re-samplings.
        for (auto it = record.rejected.rbegin(); it != record.rejected.rend(); ++it) {
            if (it->refreshed) {
                std::fill(Ybar_.begin(), Ybar_.end(), 0.0);
                // (at t_n + c alpha_k, the time of the NumPy sweep)
                take_jacobian_cotangent(it->jacobian->point, times_[m] + it->c * coef_.alpha[k], it->y_pred.data(),
                                        Ybar_.data());
                for (int j = 0; j <= k; ++j)
                    for (int i = 0; i < n; ++i) row(j)[i] += Ybar_[i];
            }
            if (!it->resampling.empty()) apply_rows(it->resampling, k + 1, n, false, Dbar, scratch_);
        }
    }

    std::shared_ptr<BdfKeptJacobian> evaluate_jacobian(long point, double t, const double* y) {
        ++jacobian_evaluations_;
        return kept_jacobian<BdfKeptJacobian>(second_, point, t, y, p_, n_, values_);
    }

    SecondOrderKernels second_;
    double rtol_, atol_;
    bool replayed_;
    BdfCoefficientValues coef_;
    NewtonMonitor monitor_;
    std::vector<double> fz_, rhs_, x_, Y_, d_, psi_, s_, weights_, err_, v_, values_;
    std::vector<double> rbar_, scratch_, dbar_, Ybar_, psibar_, Dbar_;
    BdfState trial_;
    JacobianCotangents jbars_;
    long jacobian_evaluations_ = 0, newton_iterations_ = 0;
    const double* times_ = nullptr;
    const double* sizes_ = nullptr;
    const double* output_times_ = nullptr;
    const long* first_ = nullptr;
    const long* index_ = nullptr;
    double t0_ = 0.0, t_end_ = 0.0;
    const double* y0_ = nullptr;
    double* pbar_ = nullptr;
};

}  // namespace symsens_adjoint
