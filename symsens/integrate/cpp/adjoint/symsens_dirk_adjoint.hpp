// The discrete adjoint of an SDIRK/ESDIRK solve: reverse mode through the accepted steps' Newton iterations.
//
// The compiled stepper (symsens_dirk.hpp) takes, with the step h held, for each implicit stage i (a_ii = gamma;
// ESDIRK: k_1 = f(t_n, y_n)):
//
//   base_i = y_n + h sum_{j<i} a_ij k_j,     Z^0 = base_i + h gamma g_i    (g_1 = f(t_n, y_n), g_i = k_(i-1))
//   r^q = base_i + h gamma f(t_n + c_i h, Z^q) - Z^q,   x^q = M^-1 r^q,   Z^(q+1) = Z^q + x^q     (q < K_i)
//   k_i = (Z^(K_i) - base_i) / (h gamma),       M = I - h gamma J(t_m, y_m, p)
//   y_{n+1} = Z_s^(K_s) (stiffly accurate) or y_n + h sum_i b_i k_i,
//
// with the iteration counts K_i chosen by the Newton monitor on values and J kept from the start of an earlier
// accepted step m <= n.  Its reverse, from the last stage back, each Newton iteration from the last back (Zbar
// starting at kbar_i / (h gamma), plus ybar_{n+1} for the last stage of a stiffly accurate method):
//
//   rbar = M^-T Zbar,   Jbar_m += h gamma rbar (x^q)^T  (on J's pattern),   basebar += rbar,
//   Zbar <- Zbar - rbar + J(Z^q)^T (h gamma rbar),   pbar += F_p(Z^q)^T (h gamma rbar),
//
// then basebar += Zbar - kbar_i / (h gamma), gbar += h gamma Zbar, ybar_n += basebar, kbar_j += h a_ij basebar.
// The cotangent Jbar_m of a kept Jacobian is collected over every step that used it and applied at step m as the
// gradient of sum_kl Jbar_kl J_kl(t_m, y_m, p) (the second-order kernels of symsens_implicit_adjoint_common.hpp).
// This is FATODE's SDIRK adjoint (Zhang & Sandu 2014) taken through the iterations actually performed, which is
// what forward-mode AD through the solver differentiates (symsens/integrate/_discrete_adjoint_dirk.py says why).
//
// The replay re-takes the stepper's decisions on values (symsens_newton_replay.hpp): the same starting values,
// Newton monitor, weights 1 / (atol + rtol |y_n|), Jacobian reuse, refresh (slow convergence in the last accepted
// step) and retry (Newton failure with an old J: J is re-evaluated at y_n and the stage retried).  A Newton failure
// in a rejected attempt re-evaluates J at y_n for the accepted one, and the compiled solve records only accepted
// steps, so for an adaptive solve the replay re-enacts the controller (the wish from the last accepted step's error,
// the rejected attempts' errors, the landing rule on t1) until it lands on the recorded step, and keeps the
// Jacobian those attempts left (those before the first accepted step from the solve's initial step size).  The
// forward replay counts its Jacobian evaluations and Newton iterations as the solve's Stats do (first_pass): equal
// counts mean it re-enacted the solve's path.  This is the NumPy replay's algorithm operation by operation
// (symsens/integrate/_discrete_adjoint_dirk.py), so the two sweeps take the same path and agree to rounding.
//
// Memory: uniform checkpointing (Griewank & Walther 2008, Ch. 12): y_n, f(t_n, y_n), the kept Jacobian and the
// controller's state every k steps; a block is re-run from its checkpoint keeping its stages k_i, every Newton
// iterate Z^q and correction x^q (sum_i 2 K_i n numbers per step) and the factorisations it used, then reversed.
//
// References: E. Hairer and G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.6, IV.8; H. Zhang and
// A. Sandu, SIAM J. Sci. Comput. 36(5) (2014) C504-C523; A. Griewank and A. Walther, Evaluating Derivatives,
// 2nd ed., SIAM 2008 (Ch. 12, checkpointing; Ch. 15, derivatives of iterative solvers).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "symsens_erk_adjoint.hpp"
#include "symsens_implicit_adjoint_common.hpp"
#include "symsens_newton_replay.hpp"

namespace symsens_adjoint {

// A diagonally implicit tableau in double (A lower triangular with the diagonal, row-major), as
// dirk_coefficients() of the NumPy module extracts it; rows[i]: the non-zero a_ij, j < i.
struct DirkTableau {
    int s = 0;
    double gamma = 0.0;
    bool explicit_first_stage = false, stiffly_accurate = false, has_error_estimate = false;
    std::vector<double> A, b, c, e;
    std::vector<std::vector<std::pair<int, double>>> rows;

    DirkTableau(int stages, const double* a, const double* weights, const double* nodes, const double* error,
                double diagonal, bool esdirk, bool stiff)
        : s(stages), gamma(diagonal), explicit_first_stage(esdirk), stiffly_accurate(stiff),
          A(a, a + static_cast<std::size_t>(stages) * stages), b(weights, weights + stages),
          c(nodes, nodes + stages), e(error, error + stages), rows(stages) {
        for (int i = 0; i < s; ++i)
            for (int j = 0; j < i; ++j)
                if (A[static_cast<std::size_t>(i) * s + j] != 0.0) rows[i].emplace_back(j, A[i * s + j]);
        for (int j = 0; j < s; ++j)
            if (e[j] != 0.0) has_error_estimate = true;
    }
};

// The LU of I - h gamma J for one h gamma (singular: a zero or non-finite pivot; Newton then fails).
struct IterationFactor {
    double hg = 0.0;
    bool ok = false;
    DenseLu<double> lu;
};

// J(t_m, y_m, p) evaluated at the start of accepted step m (`point`) and kept by the stepper, with the factor
// of its last h gamma (a factorisation is a pure function of J and h gamma, so re-making one gives the same bits).
struct KeptJacobian {
    long point = 0;
    std::vector<double> J;
    std::shared_ptr<const IterationFactor> factor;
};

using JacobianHandle = std::shared_ptr<KeptJacobian>;
using FactorHandle = std::shared_ptr<const IterationFactor>;

// The replay's state at the start of a step: y_n, f(t_n, y_n), the kept Jacobian, the refresh flag (slow
// convergence in the last step) and the controller's wish and last accepted error.
struct DirkState {
    std::vector<double> y, f;
    JacobianHandle jac;
    bool refresh = false;
    bool has_wish = false;
    double h_wish = 0.0;
    double previous = 1e-4;
};

// One implicit stage of an accepted step, as the reverse pass needs it: the factor it solved with (and the
// point of its Jacobian) and its iterates Z^q and corrections x^q at [first, first + count) of the step's store.
struct StageRecord {
    bool implicit = false;
    long point = 0;
    FactorHandle factor;
    long first = 0;
    int count = 0;
};

struct StepRecord {
    std::vector<double> y, K;       // y_n (n) and the stages k_i (s x n)
    std::vector<StageRecord> stages;
    std::vector<double> Z, X;       // the iterates and corrections of all stages, n each
};

class DirkAdjoint : private CountedKernels {
  public:
    ReplayDecisions first_pass;   // the forward replay's counts (not the reverse pass's block re-runs)

    DirkAdjoint(const Kernels& kernels, const SecondOrderKernels& second, const DirkTableau& tableau, int n, int P,
                const double* p, double rtol, double atol, int budget, const Controller* controller)
        : CountedKernels(kernels, n, P, p), so_(second), tab_(tableau), rtol_(rtol), atol_(atol),
          monitor_(rtol, budget), controller_(controller), acc_(n), base_(n), Z_(n), F_(n),
          x_(n), weights_(n), err_(n), Kt_(static_cast<std::size_t>(tableau.s) * n), y_try_(n) {}

    // The whole sweep.  outputs (K_out x n) are written where the plan says; ybar0 (n) and pbar (P) are
    // overwritten.  REPLAY_FAILED: a recorded step's Newton solve failed in the replay (failed_step says which).
    int run(const double* y0, long M, const double* step_times, const double* step_sizes, const OutputPlan& plan,
            long K_out, const double* cotangents, long every, double* outputs, double* ybar0, double* pbar,
            Counters& counters, long& failed_step) {
        if (every < 1 || M < 0 || !plan.valid(M, K_out)) return BAD_INPUT;
        times_ = step_times;
        sizes_ = step_sizes;
        t_end_ = step_times[M];
        const int n = n_, s = tab_.s;
        std::fill(pbar, pbar + P_, 0.0);

        // Forward replay with checkpoints and the outputs.
        const double t0 = step_times[0];
        DirkState state;
        state.y.assign(y0, y0 + n);
        state.f.assign(n, 0.0);
        call_rhs(t0, state.y.data(), state.f.data());
        // The first wish is the solve's initial step: the attempts rejected before the first acceptance cannot
        // refresh J (it is current until then), but their Newton iterations are the solve's.
        if (controller_ && M > 0) {
            state.h_wish = initial_step([this](double t, const double* y, double* out) { call_rhs(t, y, out); }, t0,
                                        t_end_, state.y.data(), state.f.data(), n, controller_->error_order, rtol_,
                                        atol_);
            state.has_wish = true;
        }
        std::vector<DirkState> checkpoints;
        for (long m = 0; m < M; ++m) {
            if (m % every == 0) checkpoints.push_back(state);
            DirkState next;
            if (!step(m, state, next, nullptr)) {
                failed_step = m;
                return REPLAY_FAILED;
            }
            write_step_outputs(plan, m, n, sizes_[m], state.y.data(), state.f.data(), next.y.data(), next.f.data(),
                               outputs);
            state = std::move(next);
        }
        first_pass = ReplayDecisions{jacobian_evaluations_, newton_iterations_};   // the solve's, if on its path

        // Reverse pass, block by block; the Jacobians' cotangents wait for the step where their J was evaluated.
        std::vector<double> ybar(n, 0.0), ybar_n(n), ybar_end(n), fbar_n(n), fbar_end(n), kbar(
            static_cast<std::size_t>(s) * n), zbar(n), basebar(n), rbar(n), w(n), y_next(n);
        JacobianCotangents jbars;
        const long n_checkpoints = static_cast<long>(checkpoints.size());
        long peak = 0;
        const long nnz = so_.nnz;
        for (long cp = n_checkpoints - 1; cp >= 0; --cp) {
            const long start = cp * every, stop = std::min(start + every, M);
            std::vector<StepRecord> block(static_cast<std::size_t>(stop - start));
            DirkState walk = checkpoints[cp];
            long stored = 0;
            for (long m = start; m < stop; ++m) {
                StepRecord& record = block[m - start];
                record.y = walk.y;
                DirkState next;
                if (!step(m, walk, next, &record)) {   // not reached: the forward replay took this step
                    failed_step = m;
                    return REPLAY_FAILED;
                }
                walk = std::move(next);
                long iterations = 0;
                for (const StageRecord& stage : record.stages) iterations += stage.count;
                stored += (s + 1L) * n + 2L * iterations * n;
            }
            peak = std::max(peak, n_checkpoints * (2L * n + static_cast<long>(n) * n) + stored);
            y_next = walk.y;
            for (long m = stop - 1; m >= start; --m) {
                const StepRecord& record = block[m - start];
                const double t = times_[m], h = sizes_[m], hg = h * tab_.gamma;
                scatter_output_cotangents(plan, m, n, h, cotangents, ybar_n.data(), ybar_end.data(), fbar_n.data(),
                                          fbar_end.data());
                take_end_cotangents(t + h, y_next.data(), ybar_end.data(), fbar_end.data(), ybar.data(), pbar);
                std::fill(kbar.begin(), kbar.end(), 0.0);
                const bool stiff = tab_.stiffly_accurate;
                if (!stiff) {
                    for (int q = 0; q < n; ++q) ybar_n[q] += ybar[q];
                    for (int j = 0; j < s; ++j)
                        if (tab_.b[j] != 0.0) {
                            const double hb = h * tab_.b[j];
                            for (int q = 0; q < n; ++q) kbar[j * n + q] += hb * ybar[q];
                        }
                }
                for (int st = s - 1; st >= 0; --st) {
                    const StageRecord& stage = record.stages[st];
                    double* kbar_st = &kbar[static_cast<std::size_t>(st) * n];
                    if (!stage.implicit) {   // ESDIRK: k_1 = f(t_n, y_n)
                        for (int q = 0; q < n; ++q) fbar_n[q] += kbar_st[q];
                        continue;
                    }
                    for (int q = 0; q < n; ++q) {
                        zbar[q] = kbar_st[q] / hg;
                        if (st == s - 1 && stiff) zbar[q] = zbar[q] + ybar[q];
                        basebar[q] = -kbar_st[q] / hg;
                    }
                    const DenseLu<double>& lu = stage.factor->lu;
                    std::vector<double>& jbar = jbars.at(stage.point, nnz);
                    const double t_stage = t + tab_.c[st] * h;
                    for (int it = stage.count - 1; it >= 0; --it) {
                        const double* Zq = &record.Z[static_cast<std::size_t>(stage.first + it) * n];
                        const double* xq = &record.X[static_cast<std::size_t>(stage.first + it) * n];
                        rbar = zbar;
                        lu.solve_transposed(rbar.data());
                        for (long k = 0; k < nnz; ++k) jbar[k] += hg * (rbar[so_.rows[k]] * xq[so_.cols[k]]);
                        for (int q = 0; q < n; ++q) {
                            basebar[q] = basebar[q] + rbar[q];
                            w[q] = hg * rbar[q];
                        }
                        products(t_stage, Zq, w.data());
                        for (int q = 0; q < n; ++q) zbar[q] = zbar[q] - rbar[q] + jt_[q];
                        add_parameters(pbar);
                    }
                    for (int q = 0; q < n; ++q) basebar[q] = basebar[q] + zbar[q];
                    double* gbar = st == 0 ? fbar_n.data() : &kbar[static_cast<std::size_t>(st - 1) * n];
                    for (int q = 0; q < n; ++q) gbar[q] += hg * zbar[q];
                    for (int q = 0; q < n; ++q) ybar_n[q] += basebar[q];
                    for (const auto& [j, a] : tab_.rows[st]) {
                        const double ha = h * a;
                        for (int q = 0; q < n; ++q) kbar[static_cast<std::size_t>(j) * n + q] += ha * basebar[q];
                    }
                }
                take_rhs_cotangent(t, record.y.data(), fbar_n.data(), ybar_n.data(), pbar);
                if (jbars.take(m, so_, t, record.y.data(), p_, n, P_, ybar_n.data(), pbar)) ++product_count_;
                std::swap(ybar, ybar_n);
                y_next = record.y;
            }
        }
        std::copy(ybar.begin(), ybar.end(), ybar0);
        count(counters, n_checkpoints, peak);
        return SUCCESS;
    }

  private:
    // ---- the forward replay ---------------------------------------------------------------------------------

    JacobianHandle evaluate(long m, double t, const double* y) {
        ++jacobian_evaluations_;
        return kept_jacobian<KeptJacobian>(so_, m, t, y, p_, n_, values_);
    }

    // The factor of I - hg J (made once per Jacobian and h gamma; the last one is kept).
    FactorHandle factor_of(KeptJacobian& jac, double hg) {
        if (jac.factor && jac.factor->hg == hg) return jac.factor;
        auto made = std::make_shared<IterationFactor>();
        made->hg = hg;
        made->ok = factor_iteration_matrix(jac.J, hg, n_, matrix_, made->lu);
        jac.factor = made;
        return made;
    }

    // Simplified Newton for one stage into Z_: true on convergence (slow: more than two iterations at a rate
    // above 1e-3).  The iterates Z^q and corrections x^q are appended to `record` when given.
    bool newton(double t_stage, double hg, const double* guess, const IterationFactor& factor, StepRecord* record,
                int& count, bool& slow) {
        const int n = n_;
        for (int q = 0; q < n; ++q) Z_[q] = base_[q] + hg * guess[q];
        monitor_.start();
        count = 0;
        for (;;) {
            call_rhs(t_stage, Z_.data(), F_.data());
            ++newton_iterations_;   // as the compiled stepper counts: one per f in the loop, a diverged one included
            for (int q = 0; q < n; ++q)
                if (!std::isfinite(F_[q])) return false;
            if (!factor.ok) return false;   // a singular matrix: non-finite corrections, as in the NumPy replay
            for (int q = 0; q < n; ++q) x_[q] = base_[q] + hg * F_[q] - Z_[q];
            factor.lu.solve(x_.data());
            const int verdict = monitor_.check(weighted_norm(x_.data(), n, weights_.data(), n));
            if (verdict == NewtonMonitor::DIVERGED) return false;
            if (record) {
                record->Z.insert(record->Z.end(), Z_.begin(), Z_.end());
                record->X.insert(record->X.end(), x_.begin(), x_.end());
            }
            ++count;
            for (int q = 0; q < n; ++q) Z_[q] = Z_[q] + x_[q];
            if (verdict == NewtonMonitor::CONVERGED) {
                slow = monitor_.iterations > 2 && monitor_.rate > 1e-3;
                return true;
            }
        }
    }

    // One attempt at h from (y, f) with the Jacobian `jac` (current: evaluated at this step's start): the new
    // state into y_new and the stages into K; false when Newton failed.  `jac`/`current` are updated when a
    // failure with an old J re-evaluated it; `factor` is the last factor used (for the error estimate).
    bool attempt(long m, double h, const double* y, const double* f, JacobianHandle& jac, bool& current,
                 double* y_new, double* K, StepRecord* record, bool& slow, FactorHandle& factor) {
        const int n = n_, s = tab_.s;
        const double t = times_[m], hg = h * tab_.gamma;
        slow = false;
        factor = factor_of(*jac, hg);
        if (record) {
            record->stages.assign(s, StageRecord{});
            record->Z.clear();
            record->X.clear();
        }
        for (int st = 0; st < s; ++st) {
            double* Kst = K + static_cast<std::size_t>(st) * n;
            if (st == 0 && tab_.explicit_first_stage) {
                std::copy(f, f + n, Kst);
                continue;
            }
            std::fill(acc_.begin(), acc_.end(), 0.0);
            for (const auto& [j, a] : tab_.rows[st])
                for (int q = 0; q < n; ++q) acc_[q] = acc_[q] + a * K[static_cast<std::size_t>(j) * n + q];
            for (int q = 0; q < n; ++q) base_[q] = y[q] + h * acc_[q];
            const double* guess = st == 0 ? f : K + static_cast<std::size_t>(st - 1) * n;
            const double t_stage = t + tab_.c[st] * h;
            const long first = record ? static_cast<long>(record->Z.size() / n) : 0;
            int count = 0;
            bool stage_slow = false;
            bool ok = newton(t_stage, hg, guess, *factor, record, count, stage_slow);
            if (!ok && !current) {
                // The Jacobian is from an earlier point: re-evaluate it at y_n and retry the stage at the same h.
                if (record) {   // the failed iterations are not part of the program
                    record->Z.resize(static_cast<std::size_t>(first) * n);
                    record->X.resize(static_cast<std::size_t>(first) * n);
                }
                jac = evaluate(m, t, y);
                current = true;
                factor = factor_of(*jac, hg);
                ok = newton(t_stage, hg, guess, *factor, record, count, stage_slow);
            }
            if (!ok) return false;
            slow = slow || stage_slow;
            if (record) record->stages[st] = StageRecord{true, jac->point, factor, first, count};
            for (int q = 0; q < n; ++q) Kst[q] = (Z_[q] - base_[q]) / hg;
        }
        if (tab_.stiffly_accurate) {
            std::copy(Z_.begin(), Z_.end(), y_new);
        } else {
            std::fill(acc_.begin(), acc_.end(), 0.0);
            for (int j = 0; j < s; ++j)
                if (tab_.b[j] != 0.0)
                    for (int q = 0; q < n; ++q) acc_[q] = acc_[q] + tab_.b[j] * K[static_cast<std::size_t>(j) * n + q];
            for (int q = 0; q < n; ++q) y_new[q] = y[q] + h * acc_[q];
        }
        return true;
    }

    // The controller's error of an attempt: (I - h gamma J)^-1 h sum_i e_i k_i in the error norm.
    double error_of(double h, const double* y, const double* y_new, const double* K, const IterationFactor& factor) {
        const int n = n_, s = tab_.s;
        if (!tab_.has_error_estimate) return 0.0;
        std::fill(acc_.begin(), acc_.end(), 0.0);
        for (int j = 0; j < s; ++j)
            if (tab_.e[j] != 0.0)
                for (int q = 0; q < n; ++q) acc_[q] = acc_[q] + tab_.e[j] * K[static_cast<std::size_t>(j) * n + q];
        for (int q = 0; q < n; ++q) err_[q] = h * acc_[q];
        factor.lu.solve(err_.data());   // a singular factor never gets here: its Newton solves fail
        return error_norm(err_.data(), y, y_new, n, rtol_, atol_);
    }

    // One accepted step from `state` into `next` (record: the stages, iterates and factors, when given).  For an
    // adaptive solve the attempts its controller rejected before the step are re-enacted first: one of them may
    // have re-evaluated the Jacobian (at y_n).  False: the recorded step's Newton failed (the replay left the path).
    bool step(long m, const DirkState& state, DirkState& next, StepRecord* record) {
        const int n = n_, s = tab_.s;
        const double t = times_[m], h = sizes_[m];
        const double* y = state.y.data();
        const double* f = state.f.data();
        JacobianHandle jac = state.jac;
        bool current = false;
        if (!jac || state.refresh) {
            jac = evaluate(m, t, y);
            current = true;
        }
        newton_weights(y, n, rtol_, atol_, weights_.data());
        bool slow = false;
        FactorHandle factor;
        if (controller_ && state.has_wish) {
            const JacobianHandle saved_jac = jac;
            const bool saved_current = current;
            const bool reproduced = reenact_rejections(*controller_, t, h, state.h_wish, t_end_, [&](double h_try) {
                double error = std::numeric_limits<double>::quiet_NaN();
                if (attempt(m, h_try, y, f, jac, current, y_try_.data(), Kt_.data(), nullptr, slow, factor)) {
                    bool finite = true;
                    for (int q = 0; q < n; ++q) finite = finite && std::isfinite(y_try_[q]);
                    if (finite) error = error_of(h_try, y, y_try_.data(), Kt_.data(), *factor);
                }
                return error;
            });
            if (!reproduced) {   // another controller setting (max_step, step_onto_outputs): no rejections assumed
                jac = saved_jac;
                current = saved_current;
            }
        }
        next.y.assign(n, 0.0);
        std::vector<double> K_local;
        double* K = record ? (record->K.assign(static_cast<std::size_t>(s) * n, 0.0), record->K.data())
                           : (K_local.assign(static_cast<std::size_t>(s) * n, 0.0), K_local.data());
        if (!attempt(m, h, y, f, jac, current, next.y.data(), K, record, slow, factor)) return false;
        next.previous = state.previous;
        next.has_wish = state.has_wish;
        next.h_wish = state.h_wish;
        if (controller_) {
            const double error = error_of(h, y, next.y.data(), K, *factor);
            double previous = state.previous;
            next.h_wish = controller_->accepted(h, error, previous);
            next.previous = previous;
            next.has_wish = true;
        }
        next.f.assign(n, 0.0);
        call_rhs(t + h, next.y.data(), next.f.data());
        next.jac = jac;
        next.refresh = slow;
        return true;
    }

    const SecondOrderKernels& so_;
    const DirkTableau& tab_;
    double rtol_, atol_;
    NewtonMonitor monitor_;
    const Controller* controller_;
    const double* times_ = nullptr;
    const double* sizes_ = nullptr;
    double t_end_ = 0.0;
    long jacobian_evaluations_ = 0, newton_iterations_ = 0;
    std::vector<double> acc_, base_, Z_, F_, x_, weights_, err_, Kt_, y_try_, values_, matrix_;
};

}  // namespace symsens_adjoint
