// The discrete adjoint of a Radau IIA (RADAU5) solve: reverse mode through the accepted steps' Newton iterations.
//
// The compiled stepper (symsens_radau.hpp; Hairer & Wanner II, Sect. IV.8) solves the collocation system for
// Z = (Z_1, Z_2, Z_3) (Y_i = y_n + Z_i) by simplified Newton in W = (T^-1 (x) I) Z.  With h held, a step is
//
//   Z^0 = G(h / h_old) Z_old            (the last step's collocation polynomial extrapolated; 0 on the first step)
//   W^0 = T^-1 Z^0;  for q < K:  F_i = f(t_n + c_i h, y_n + Z^q_i),   R = (T^-1 F) - Lambda W^q,
//       dW_1 = (mu/h I - J)^-1 R_1,   dW_2 + i dW_3 = ((alpha + i beta)/h I - J)^-1 (R_2 + i R_3),
//       W^(q+1) = W^q + dW,  Z^(q+1) = T W^(q+1);          y_(n+1) = y_n + Z^K_3,
//
// Lambda = diag(mu/h, [[alpha, -beta], [beta, alpha]]/h), J = J(t_m, y_m, p) kept from the start of an accepted
// step m <= n, K chosen by the Newton monitor on values.  Its reverse, iteration by iteration from the last back,
// starting from Wbar = T^T Zbar^K (FATODE's FIRK adjoint, Zhang & Sandu 2014, taken through the iterations
// performed, which is what equals forward-mode AD through the solver):
//
//   rbar_1 = (mu/h I - J)^-T dWbar_1,   rbar_2 + i rbar_3 = ((alpha + i beta)/h I - J)^-H (dWbar_2 + i dWbar_3)
//   Jbar_m += rbar_1 dW_1^T + rbar_2 dW_2^T + rbar_3 dW_3^T          (both matrices are shift - J)
//   Wbar <- Wbar - Lambda^T rbar,  Fbar = T^-T rbar,  Zbar^q_i = J(Y_i)^T Fbar_i,  pbar += F_p(Y_i)^T Fbar_i,
//   ybar_n += sum_i Zbar^q_i,  Wbar += T^T Zbar^q (q >= 1; for q = 0: Zbar^0 = Zbar^q + T^-T Wbar),
//
// and Zbar_old += G^T Zbar^0 goes to the previous step's last iterate.  The Jacobian's cotangent (on J's pattern)
// is taken back at the step where J was evaluated by the model's second-order kernel.
//
// The replay takes the compiled solve's path: the starting values, the Newton monitor and weights, J kept across
// steps and refreshed after slow convergence, the retry with a fresh J when Newton fails with an old one, and,
// for an adaptive solve, the rejected attempts re-enacted with RADAU5's error estimate and the controller (one of
// them may leave a re-evaluated J to the accepted step).  This is symsens/integrate/_discrete_adjoint_radau.py
// operation by operation, with the rules of symsens_newton_replay.hpp, so the two sweeps agree to rounding.
// Memory: uniform checkpoints of (y_n, f_n, Z_old, the kept J, the controller's state) every k steps; a block
// keeps every Newton iterate Z^q and correction dW of its steps.
//
// References: E. Hairer and G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.8; H. Zhang and
// A. Sandu, SIAM J. Sci. Comput. 36(5) (2014) C504-C523; A. Griewank and A. Walther, Evaluating Derivatives,
// 2nd ed., SIAM 2008, Ch. 12.
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include "symsens_erk_adjoint.hpp"
#include "symsens_implicit_adjoint_common.hpp"
#include "symsens_newton_replay.hpp"

namespace symsens_adjoint {

// A Newton solve of the replay did not converge where the compiled solve's did.
enum RadauStatus : int { RADAU_REPLAY_FAILED = 6 };

// Hairer's transformation of the Radau IIA(3) tableau in double (RadauTableau of symsens_radau.hpp).
struct RadauCoefficients {
    double c[3], mu, alpha, beta, T[9], TI[9], gamma0, e[3];

    // From 27 numbers: c (3), mu, alpha, beta, T (9, row-major), T^-1 (9), gamma0, e (3).
    explicit RadauCoefficients(const double* k) {
        std::copy(k, k + 3, c);
        mu = k[3];
        alpha = k[4];
        beta = k[5];
        std::copy(k + 6, k + 15, T);
        std::copy(k + 15, k + 24, TI);
        gamma0 = k[24];
        std::copy(k + 25, k + 28, e);
    }
};

// The LU pair of one kept J at one step size: mu/h I - J and (alpha + i beta)/h I - J.
struct RadauFactors {
    double h = 0.0;
    bool regular = false;            // both factorisations found no zero pivot
    DenseLu<double> real;
    DenseLu<std::complex<double>> complex_;
};

// J(t_m, y_m, p) evaluated at the start of step m and kept by the stepper (KeptJacobian of the NumPy replay),
// with the factorisations made from it, by step size.
struct RadauJacobian {
    long point = 0;
    std::vector<double> J;           // dense n x n, row-major
    std::vector<std::shared_ptr<RadauFactors>> factors;
};

// One Newton solve as recorded for the reverse pass.
struct RadauSolve {
    std::shared_ptr<RadauJacobian> jacobian;
    std::shared_ptr<RadauFactors> factors;
    bool extrapolated = false;       // Z^0 = G Z_old (else Z^0 = 0, the first step)
    double G[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    int iterations = 0;              // K
    std::vector<double> iterates;    // Z^0 .. Z^(K-1), 3n each: where F was evaluated
    std::vector<double> corrections; // dW^0 .. dW^(K-1), 3n each

    void reset(std::shared_ptr<RadauJacobian> jac, bool has_old) {
        jacobian = std::move(jac);
        factors.reset();
        extrapolated = has_old;
        iterations = 0;
        iterates.clear();
        corrections.clear();
    }
};

// What the replay carries from one accepted step to the next (a checkpoint).
struct RadauState {
    std::vector<double> y, f;
    std::shared_ptr<RadauJacobian> jacobian;   // null before the first step
    bool refresh = false;                      // the last solve converged slowly: re-evaluate J
    bool has_old = false;                      // the last step's stages and size, for the starting values
    std::vector<double> Z_old;
    double h_old = 0.0;
    bool has_wish = false;                     // the controller's next wish (adaptive solves after step 1)
    double h_wish = 0.0;
    double previous = 1e-4;                    // the controller's last accepted error
};

// The Lagrange basis on {0, c_1, c_2, c_3} for node c_j at x (RadauIIA3::lagrange).
inline double radau_lagrange(const double* c, int j, double x) {
    double r = x / c[j];
    for (int m = 0; m < 3; ++m)
        if (m != j) r = r * (x - c[m]) / (c[j] - c[m]);
    return r;
}

class RadauAdjoint {
  public:
    ReplayDecisions first_pass;   // the forward replay's counts (not the reverse pass's block re-runs)

    // controller == nullptr: the steps were replayed (no rejected attempts to re-enact).
    RadauAdjoint(const Kernels& kernels, const SecondOrderKernels& second, const RadauCoefficients& coefficients,
                 const Controller* controller, int n, int P, const double* p, double rtol, double atol, int budget)
        : f_(kernels), second_(second), k_(coefficients), controller_(controller), n_(n), P_(P), p_(p),
          rtol_(rtol), atol_(atol), monitor_(rtol, budget),
          stage_(n), F_(3 * n), g_(3 * n), W_(3 * n), dW_(3 * n), Z_(3 * n), Z0_(3 * n), weights_(n),
          complex_(n), err_(n), ez_(n), work_(n), f_err_(n), jt_(n), fpt_(P > 0 ? P : 1),
          matrix_(static_cast<std::size_t>(n) * n), complex_matrix_(static_cast<std::size_t>(n) * n),
          values_(second.nnz > 0 ? second.nnz : 1) {}

    // The whole sweep: the forward replay (outputs, K_out x n, written where the plan says), then the reverse pass
    // block by block.  ybar0 (n) and pbar (P) are overwritten.  On RADAU_REPLAY_FAILED, failed_step is the step.
    int run(const double* y0, long M, const double* step_times, const double* step_sizes, const OutputPlan& plan,
            long K_out, const double* cotangents, long every, double* outputs, double* ybar0, double* pbar,
            Counters& counters, long& failed_step) {
        if (every < 1 || M < 0) return BAD_INPUT;
        for (long m = 0; m < M; ++m) {
            if (plan.first[m] > plan.first[m + 1]) return BAD_INPUT;
            for (long e = plan.first[m]; e < plan.first[m + 1]; ++e)
                if (plan.index[e] < 0 || plan.index[e] >= K_out || plan.kind[e] < 0 || plan.kind[e] > 2)
                    return BAD_INPUT;
        }
        times_ = step_times;
        sizes_ = step_sizes;
        t_end_ = step_times[M];
        const int n = n_;
        const std::size_t n3 = 3 * static_cast<std::size_t>(n);
        std::fill(pbar, pbar + P_, 0.0);

        // Forward replay with checkpoints and the outputs.
        const long n_checkpoints = M == 0 ? 0 : (M + every - 1) / every;
        std::vector<RadauState> checkpoints;
        checkpoints.reserve(static_cast<std::size_t>(n_checkpoints));
        RadauState state, next;
        state.y.assign(y0, y0 + n);
        state.f.assign(n, 0.0);
        call_rhs(step_times[0], state.y.data(), state.f.data());
        // The first wish is the solve's initial step: the attempts rejected before the first acceptance cannot
        // refresh J (it is current until then), but their Newton iterations are the solve's.
        if (controller_ != nullptr && M > 0) {
            state.h_wish = initial_step([this](double t, const double* y, double* out) { call_rhs(t, y, out); },
                                        step_times[0], t_end_, state.y.data(), state.f.data(), n,
                                        controller_->error_order, rtol_, atol_);
            state.has_wish = true;
        }
        RadauSolve scratch;
        for (long m = 0; m < M; ++m) {
            if (m % every == 0) checkpoints.push_back(state);
            if (!step(m, state, next, scratch)) {
                failed_step = m;
                return RADAU_REPLAY_FAILED;
            }
            write_outputs(plan, m, outputs, state, next);
            std::swap(state, next);
        }
        first_pass = ReplayDecisions{jacobian_evaluations_, newton_iterations_};   // the solve's, if on its path

        // Reverse pass.
        std::vector<double> ybar(n, 0.0), ybar_n(n), ybar_end(n), fbar_n(n), fbar_end(n);
        std::vector<double> zbar_carry(n3, 0.0), Zbar(n3), Wbar(n3), rbar(n3), Fbar(n3), Zqbar(n3), Z0bar(n3);
        std::vector<double> gy(n), gp(P_ > 0 ? P_ : 1), qbar(n, 0.0);
        std::vector<std::complex<double>> rc(n);
        std::map<long, std::vector<double>> jbars;
        const long nnz = second_.nnz;
        const long* rows = second_.rows;
        const long* cols = second_.cols;
        const double* T = k_.T;
        const double* TI = k_.TI;
        std::vector<std::vector<double>> block_y;
        std::vector<RadauSolve> block;
        long peak = 0;
        for (long b = n_checkpoints - 1; b >= 0; --b) {
            const long start = b * every, stop = std::min(start + every, M);
            state = checkpoints[static_cast<std::size_t>(b)];
            const std::size_t length = static_cast<std::size_t>(stop - start);
            if (block.size() < length) {
                block.resize(length);
                block_y.resize(length);
            }
            long stored = 0;
            for (long m = start; m < stop; ++m) {
                const std::size_t i = static_cast<std::size_t>(m - start);
                block_y[i] = state.y;
                if (!step(m, state, next, block[i])) {   // not reached: the forward replay took these steps
                    failed_step = m;
                    return RADAU_REPLAY_FAILED;
                }
                std::swap(state, next);
                stored += n + 6L * n * block[i].iterations + 3L * n;
            }
            peak = std::max(peak, n_checkpoints * (5L * n + static_cast<long>(n) * n) + stored);
            const double* y_next = state.y.data();
            for (long m = stop - 1; m >= start; --m) {
                const std::size_t i = static_cast<std::size_t>(m - start);
                const std::vector<double>& y_n = block_y[i];
                const RadauSolve& record = block[i];
                const double t = times_[m], h = sizes_[m];
                const double mu_h = k_.mu / h, al_h = k_.alpha / h, be_h = k_.beta / h;
                output_cotangents(plan, m, cotangents, h, ybar_n, ybar_end, fbar_n, fbar_end);
                for (int q = 0; q < n; ++q) ybar[q] = ybar[q] + ybar_end[q];
                if (any_nonzero(fbar_end.data(), n)) {
                    products(t + h, y_next, fbar_end.data());
                    for (int q = 0; q < n; ++q) ybar[q] = ybar[q] + jt_[q];
                    for (int j = 0; j < P_; ++j) pbar[j] += fpt_[j];
                }
                Zbar = zbar_carry;
                for (int q = 0; q < n; ++q) Zbar[2 * n + q] += ybar[q];
                for (int q = 0; q < n; ++q) ybar_n[q] += ybar[q];
                transposed_product(T, Zbar.data(), Wbar.data());
                const RadauFactors& lu = *record.factors;
                std::vector<double>& jbar = jbars[record.jacobian->point];
                if (jbar.empty()) jbar.assign(static_cast<std::size_t>(nnz > 0 ? nnz : 1), 0.0);
                std::fill(Z0bar.begin(), Z0bar.end(), 0.0);
                for (int iteration = record.iterations - 1; iteration >= 0; --iteration) {
                    const double* Zq = &record.iterates[static_cast<std::size_t>(iteration) * n3];
                    const double* dW = &record.corrections[static_cast<std::size_t>(iteration) * n3];
                    std::copy(Wbar.begin(), Wbar.begin() + n, rbar.begin());
                    lu.real.solve_transposed(rbar.data());
                    for (int q = 0; q < n; ++q) rc[q] = std::complex<double>(Wbar[n + q], Wbar[2 * n + q]);
                    lu.complex_.solve_conjugate_transposed(rc.data());
                    for (int q = 0; q < n; ++q) {
                        rbar[n + q] = rc[q].real();
                        rbar[2 * n + q] = rc[q].imag();
                    }
                    for (long e = 0; e < nnz; ++e) {
                        const long r = rows[e], c = cols[e];
                        jbar[e] += rbar[r] * dW[c] + rbar[n + r] * dW[n + c] + rbar[2 * n + r] * dW[2 * n + c];
                    }
                    for (int q = 0; q < n; ++q) {
                        const double r1 = rbar[q], r2 = rbar[n + q], r3 = rbar[2 * n + q];
                        Wbar[q] -= mu_h * r1;
                        Wbar[n + q] -= al_h * r2 + be_h * r3;
                        Wbar[2 * n + q] -= -be_h * r2 + al_h * r3;
                    }
                    transposed_product(TI, rbar.data(), Fbar.data());
                    for (int s = 0; s < 3; ++s) {
                        for (int q = 0; q < n; ++q) stage_[q] = y_n[q] + Zq[s * n + q];
                        products(t + k_.c[s] * h, stage_.data(), &Fbar[s * n]);
                        std::copy(jt_.begin(), jt_.end(), Zqbar.begin() + s * n);
                        for (int j = 0; j < P_; ++j) pbar[j] += fpt_[j];
                    }
                    for (int q = 0; q < n; ++q) ybar_n[q] += (Zqbar[q] + Zqbar[n + q]) + Zqbar[2 * n + q];
                    if (iteration >= 1) {
                        transposed_product(T, Zqbar.data(), rbar.data());
                        for (std::size_t q = 0; q < n3; ++q) Wbar[q] = Wbar[q] + rbar[q];
                    } else {
                        transposed_product(TI, Wbar.data(), rbar.data());
                        for (std::size_t q = 0; q < n3; ++q) Z0bar[q] = Zqbar[q] + rbar[q];
                    }
                }
                if (record.extrapolated) transposed_product(record.G, Z0bar.data(), zbar_carry.data());
                else std::fill(zbar_carry.begin(), zbar_carry.end(), 0.0);
                if (any_nonzero(fbar_n.data(), n)) {
                    products(t, y_n.data(), fbar_n.data());
                    for (int q = 0; q < n; ++q) ybar_n[q] += jt_[q];
                    for (int j = 0; j < P_; ++j) pbar[j] += fpt_[j];
                }
                auto pending = jbars.find(m);
                if (pending != jbars.end()) {
                    ++product_count_;
                    second_.second_order(t, y_n.data(), p_, pending->second.data(), qbar.data(), gy.data(),
                                         gp.data());
                    for (int q = 0; q < n; ++q) ybar_n[q] += gy[q];
                    for (int j = 0; j < P_; ++j) pbar[j] += gp[j];
                    jbars.erase(pending);
                }
                std::swap(ybar, ybar_n);
                y_next = y_n.data();
            }
        }
        std::copy(ybar.begin(), ybar.end(), ybar0);
        counters.rhs_evaluations = rhs_count_;
        counters.product_evaluations = product_count_;
        counters.checkpoints = n_checkpoints;
        counters.stored_numbers = peak;
        return SUCCESS;
    }

  private:
    // out = M^T x for a 3 x 3 row-major M acting on three n-vectors: out_i = sum_j M[j][i] x_j.
    void transposed_product(const double* M, const double* x, double* out) const {
        const int n = n_;
        for (int i = 0; i < 3; ++i)
            for (int q = 0; q < n; ++q)
                out[i * n + q] = M[i] * x[q] + M[3 + i] * x[n + q] + M[6 + i] * x[2 * n + q];
    }

    // out = M x: out_i = sum_j M[i][j] x_j.
    void product(const double* M, const double* x, double* out) const {
        const int n = n_;
        for (int i = 0; i < 3; ++i)
            for (int q = 0; q < n; ++q)
                out[i * n + q] = M[3 * i] * x[q] + M[3 * i + 1] * x[n + q] + M[3 * i + 2] * x[2 * n + q];
    }

    std::shared_ptr<RadauJacobian> evaluate_jacobian(long m, const double* y) {
        ++jacobian_evaluations_;
        auto jac = std::make_shared<RadauJacobian>();
        jac->point = m;
        second_.dense_jacobian(times_[m], y, p_, n_, values_, jac->J);
        return jac;
    }

    // The LU pair of `jac` at h, made on first use (a few sizes are kept: the accepted step's and its attempts').
    std::shared_ptr<RadauFactors> factors(RadauJacobian& jac, double h) {
        for (const auto& entry : jac.factors)
            if (entry->h == h) return entry;
        const int n = n_;
        const double mu_h = k_.mu / h, al_h = k_.alpha / h, be_h = k_.beta / h;
        for (std::size_t i = 0; i < matrix_.size(); ++i) {
            matrix_[i] = -jac.J[i];
            complex_matrix_[i] = std::complex<double>(-jac.J[i], 0.0);
        }
        for (int i = 0; i < n; ++i) {
            const std::size_t d = static_cast<std::size_t>(i) * n + i;
            matrix_[d] += mu_h;
            complex_matrix_[d] = std::complex<double>(complex_matrix_[d].real() + al_h, be_h);
        }
        auto entry = std::make_shared<RadauFactors>();
        entry->h = h;
        entry->regular = entry->real.factor(matrix_.data(), n);
        entry->regular = entry->complex_.factor(complex_matrix_.data(), n) && entry->regular;
        if (jac.factors.size() >= 4) jac.factors.erase(jac.factors.begin());
        jac.factors.push_back(entry);
        return entry;
    }

    // Simplified Newton from Z0 (3n) at (t, h) from y with the kept J; on success Z_ holds the last iterate and
    // `slow` says whether it converged slowly (more than 2 iterations at a rate above 1e-3).
    bool newton(double t, double h, const double* y, const double* Z0, RadauJacobian& jac, RadauSolve& record,
                bool& slow) {
        const int n = n_;
        const std::size_t n3 = 3 * static_cast<std::size_t>(n);
        record.factors = factors(jac, h);
        const RadauFactors& lu = *record.factors;
        const double mu_h = k_.mu / h, al_h = k_.alpha / h, be_h = k_.beta / h;
        std::copy(Z0, Z0 + n3, Z_.begin());
        product(k_.TI, Z_.data(), W_.data());
        monitor_.start();
        while (true) {
            for (int s = 0; s < 3; ++s) {
                for (int q = 0; q < n; ++q) stage_[q] = y[q] + Z_[s * n + q];
                call_rhs(t + k_.c[s] * h, stage_.data(), &F_[s * n]);
            }
            ++newton_iterations_;   // as the compiled stepper counts: one per evaluation of the stages, a diverged one too
            for (std::size_t q = 0; q < n3; ++q)
                if (!std::isfinite(F_[q])) return false;
            if (!lu.regular) return false;   // a singular iteration matrix: the corrections are not finite
            product(k_.TI, F_.data(), g_.data());
            for (int q = 0; q < n; ++q) dW_[q] = g_[q] - mu_h * W_[q];
            lu.real.solve(dW_.data());
            for (int q = 0; q < n; ++q)
                complex_[q] = std::complex<double>(g_[n + q] - (al_h * W_[n + q] - be_h * W_[2 * n + q]),
                                                   g_[2 * n + q] - (be_h * W_[n + q] + al_h * W_[2 * n + q]));
            lu.complex_.solve(complex_.data());
            for (int q = 0; q < n; ++q) {
                dW_[n + q] = complex_[q].real();
                dW_[2 * n + q] = complex_[q].imag();
            }
            const int verdict = monitor_.check(weighted_norm(dW_.data(), static_cast<long>(n3), weights_.data(), n));
            if (verdict < 0) return false;
            record.iterates.insert(record.iterates.end(), Z_.begin(), Z_.end());
            record.corrections.insert(record.corrections.end(), dW_.begin(), dW_.end());
            ++record.iterations;
            for (std::size_t q = 0; q < n3; ++q) W_[q] = W_[q] + dW_[q];
            product(k_.T, W_.data(), Z_.data());
            if (verdict > 0) {
                slow = monitor_.iterations > 2 && monitor_.rate > 1e-3;
                return true;
            }
        }
    }

    // One attempt of step m at h from `state`: the starting values, Newton with the kept J and, when that fails
    // with an older J, again with J re-evaluated at (t_m, y_m) (jac and current updated).  Z_ holds the result.
    bool attempt(long m, double h, const RadauState& state, std::shared_ptr<RadauJacobian>& jac, bool& current,
                 RadauSolve& record, bool& slow) {
        const int n = n_;
        const double t = times_[m];
        const double* y = state.y.data();
        std::fill(Z0_.begin(), Z0_.end(), 0.0);
        record.reset(jac, state.has_old);
        if (state.has_old) {
            const double* Zo = state.Z_old.data();
            for (int s = 0; s < 3; ++s) {
                const double x = 1.0 + k_.c[s] * h / state.h_old;
                double* G = &record.G[3 * s];
                for (int j = 0; j < 3; ++j) G[j] = radau_lagrange(k_.c, j, x);
                for (int q = 0; q < n; ++q)
                    Z0_[s * n + q] = G[0] * Zo[q] + G[1] * Zo[n + q] + G[2] * Zo[2 * n + q] - Zo[2 * n + q];
                G[2] -= 1.0;
            }
        }
        if (newton(t, h, y, Z0_.data(), *jac, record, slow)) return true;
        if (current) return false;
        jac = evaluate_jacobian(m, y);
        current = true;
        record.reset(jac, state.has_old);
        return newton(t, h, y, Z0_.data(), *jac, record, slow);
    }

    // RADAU5's error estimate (mu/h I - J)^-1 (mu/h)(gamma0 h f + sum e_i Z_i) of the attempt in Z_, refined once
    // with f(t, y + err) when `refine` and above 1 (RadauIIA3::attempt).
    double error_of(long m, double h, const double* y, const double* f, const RadauFactors& lu, bool refine) {
        const int n = n_;
        const double mu_h = k_.mu / h;
        const double gh = k_.gamma0 * h;
        for (int q = 0; q < n; ++q) {
            work_[q] = y[q] + Z_[2 * n + q];   // y_new
            ez_[q] = k_.e[0] * Z_[q] + k_.e[1] * Z_[n + q] + k_.e[2] * Z_[2 * n + q];
            err_[q] = mu_h * (gh * f[q] + ez_[q]);
        }
        lu.real.solve(err_.data());
        if (refine && error_norm(err_.data(), y, work_.data(), n, rtol_, atol_) > 1.0) {
            for (int q = 0; q < n; ++q) stage_[q] = y[q] + err_[q];
            call_rhs(times_[m], stage_.data(), f_err_.data());
            for (int q = 0; q < n; ++q) err_[q] = mu_h * (gh * f_err_[q] + ez_[q]);
            lu.real.solve(err_.data());
        }
        return error_norm(err_.data(), y, work_.data(), n, rtol_, atol_);
    }

    // Accepted step m from `in` into `out`, its Newton solve into `record`; for an adaptive solve the attempts its
    // controller rejected before the step are re-enacted first.  False when Newton fails (ReplayError).
    bool step(long m, const RadauState& in, RadauState& out, RadauSolve& record) {
        const int n = n_;
        const double t = times_[m], h = sizes_[m];
        const double* y = in.y.data();
        std::shared_ptr<RadauJacobian> jac = in.jacobian;
        bool current = false;
        if (!jac || in.refresh) {
            jac = evaluate_jacobian(m, y);
            current = true;
        }
        newton_weights(y, n, rtol_, atol_, weights_.data());
        bool after_rejection = false;
        bool slow = false;
        if (controller_ != nullptr && in.has_wish) {
            const std::shared_ptr<RadauJacobian> saved = jac;
            const bool saved_current = current;
            bool reproduced = false;
            double h_wish = in.h_wish;
            for (int tries = 0; tries < 50; ++tries) {
                const double h_try = Controller::landed(t, h_wish, t_end_);
                if (same_step(h_try, h)) {
                    reproduced = true;
                    break;
                }
                double error = std::nan("");
                if (attempt(m, h_try, in, jac, current, rejected_, slow)) {
                    bool finite = true;
                    for (std::size_t q = 0; q < Z_.size(); ++q) finite = finite && std::isfinite(Z_[q]);
                    // RADAU5 refines the estimate on the first step and after a rejection.
                    if (finite)
                        error = error_of(m, h_try, y, in.f.data(), *rejected_.factors, m == 0 || after_rejection);
                }
                after_rejection = true;
                if (!std::isfinite(error)) {
                    h_wish = h_try * 0.25;
                    continue;
                }
                if (error <= 1.0) break;   // the controller would have accepted it: not the recorded path
                h_wish = controller_->rejected(h_try, error);
            }
            if (!reproduced) {   // another controller setting (max_step, outputs): no rejections assumed
                jac = saved;
                current = saved_current;
                after_rejection = false;
            }
        }
        if (!attempt(m, h, in, jac, current, record, slow)) return false;
        const std::size_t n3 = 3 * static_cast<std::size_t>(n);
        out.y.resize(n);
        out.f.resize(n);
        for (int q = 0; q < n; ++q) out.y[q] = y[q] + Z_[2 * n + q];
        out.has_wish = in.has_wish;
        out.h_wish = in.h_wish;
        out.previous = in.previous;
        if (controller_ != nullptr) {
            const double error = error_of(m, h, y, in.f.data(), *record.factors, m == 0 || after_rejection);
            out.previous = in.previous;
            out.h_wish = controller_->accepted(h, error, out.previous);
            out.has_wish = true;
        }
        call_rhs(t + h, out.y.data(), out.f.data());
        out.jacobian = jac;
        out.refresh = slow;
        out.has_old = true;
        out.Z_old.assign(Z_.begin(), Z_.begin() + static_cast<std::ptrdiff_t>(n3));
        out.h_old = h;
        return true;
    }

    // Step m's outputs (the step's ends, or the cubic Hermite interpolant inside it), as the compiled recorder.
    void write_outputs(const OutputPlan& plan, long m, double* outputs, const RadauState& a,
                       const RadauState& b) const {
        const int n = n_;
        const double h = sizes_[m];
        for (long e = plan.first[m]; e < plan.first[m + 1]; ++e) {
            double* out = outputs + plan.index[e] * n;
            if (plan.kind[e] == OUTPUT_START) {
                std::copy(a.y.begin(), a.y.end(), out);
            } else if (plan.kind[e] == OUTPUT_END) {
                std::copy(b.y.begin(), b.y.end(), out);
            } else {
                double h00, h10, h01, h11;
                hermite(plan.theta[e], h00, h10, h01, h11);
                const double w10 = h10 * h, w11 = h11 * h;
                for (int q = 0; q < n; ++q) out[q] = h00 * a.y[q] + w10 * a.f[q] + h01 * b.y[q] + w11 * b.f[q];
            }
        }
    }

    // The transpose of write_outputs: step m's output cotangents onto (ybar_n, ybar_(n+1), fbar_n, fbar_(n+1)).
    void output_cotangents(const OutputPlan& plan, long m, const double* cotangents, double h,
                           std::vector<double>& ybar_n, std::vector<double>& ybar_end, std::vector<double>& fbar_n,
                           std::vector<double>& fbar_end) const {
        const int n = n_;
        std::fill(ybar_n.begin(), ybar_n.end(), 0.0);
        std::fill(ybar_end.begin(), ybar_end.end(), 0.0);
        std::fill(fbar_n.begin(), fbar_n.end(), 0.0);
        std::fill(fbar_end.begin(), fbar_end.end(), 0.0);
        for (long e = plan.first[m]; e < plan.first[m + 1]; ++e) {
            const double* w = cotangents + plan.index[e] * n;
            if (plan.kind[e] == OUTPUT_START) {
                for (int q = 0; q < n; ++q) ybar_n[q] += w[q];
            } else if (plan.kind[e] == OUTPUT_END) {
                for (int q = 0; q < n; ++q) ybar_end[q] += w[q];
            } else {
                double h00, h10, h01, h11;
                hermite(plan.theta[e], h00, h10, h01, h11);
                const double w10 = h10 * h, w11 = h11 * h;
                for (int q = 0; q < n; ++q) {
                    ybar_n[q] += h00 * w[q];
                    fbar_n[q] += w10 * w[q];
                    ybar_end[q] += h01 * w[q];
                    fbar_end[q] += w11 * w[q];
                }
            }
        }
    }

    void call_rhs(double t, const double* y, double* out) {
        ++rhs_count_;
        f_.rhs(t, y, p_, out);
    }
    void products(double t, const double* y, const double* v) {
        ++product_count_;
        f_.vjp_state(t, y, p_, v, jt_.data());
        if (P_ > 0) f_.vjp_parameters(t, y, p_, v, fpt_.data());
    }

    Kernels f_;
    SecondOrderKernels second_;
    RadauCoefficients k_;
    const Controller* controller_;
    int n_, P_;
    const double* p_;
    double rtol_, atol_;
    NewtonMonitor monitor_;
    const double* times_ = nullptr;
    const double* sizes_ = nullptr;
    double t_end_ = 0.0;
    std::vector<double> stage_, F_, g_, W_, dW_, Z_, Z0_, weights_;
    std::vector<std::complex<double>> complex_;
    std::vector<double> err_, ez_, work_, f_err_, jt_, fpt_, matrix_;
    std::vector<std::complex<double>> complex_matrix_;
    std::vector<double> values_;
    RadauSolve rejected_;   // the record of a re-enacted attempt (not reversed)
    long rhs_count_ = 0, product_count_ = 0, jacobian_evaluations_ = 0, newton_iterations_ = 0;
};

}  // namespace symsens_adjoint
