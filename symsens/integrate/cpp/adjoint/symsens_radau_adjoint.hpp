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
#include <memory>
#include <vector>

#include "symsens_erk_adjoint.hpp"
#include "symsens_implicit_adjoint_common.hpp"
#include "symsens_newton_replay.hpp"

namespace symsens_adjoint {

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

class RadauAdjoint : private CountedKernels {
  public:
    ReplayDecisions first_pass;   // the forward replay's counts (not the reverse pass's block re-runs)

    // controller == nullptr: the steps were replayed (no rejected attempts to re-enact).
    RadauAdjoint(const Kernels& kernels, const SecondOrderKernels& second, const RadauCoefficients& coefficients,
                 const Controller* controller, int n, int P, const double* p, double rtol, double atol, int budget)
        : CountedKernels(kernels, n, P, p), second_(second), k_(coefficients), controller_(controller),
          rtol_(rtol), atol_(atol), monitor_(rtol, budget),
          stage_(n), F_(3 * n), g_(3 * n), W_(3 * n), dW_(3 * n), Z_(3 * n), Z0_(3 * n), weights_(n),
          complex_(n), err_(n), ez_(n), work_(n), f_err_(n),
          matrix_(static_cast<std::size_t>(n) * n), complex_matrix_(static_cast<std::size_t>(n) * n),
          values_(second.nnz > 0 ? second.nnz : 1) {}

    // The whole sweep: the forward replay (outputs, K_out x n, written where the plan says), then the reverse pass
    // block by block.  ybar0 (n) and pbar (P) are overwritten.  On REPLAY_FAILED, failed_step is the step.
    int run(const double* y0, long M, const double* step_times, const double* step_sizes, const OutputPlan& plan,
            long K_out, const double* cotangents, long every, double* outputs, double* ybar0, double* pbar,
            Counters& counters, long& failed_step) {
        if (every < 1 || M < 0 || !plan.valid(M, K_out)) return BAD_INPUT;
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
                return REPLAY_FAILED;
            }
            write_step_outputs(plan, m, n, sizes_[m], state.y.data(), state.f.data(), next.y.data(), next.f.data(),
                               outputs);
            std::swap(state, next);
        }
        first_pass = ReplayDecisions{jacobian_evaluations_, newton_iterations_};   // the solve's, if on its path

        // Reverse pass.
        std::vector<double> ybar(n, 0.0), ybar_n(n), ybar_end(n), fbar_n(n), fbar_end(n);
        std::vector<double> zbar_carry(n3, 0.0), Zbar(n3), Wbar(n3), rbar(n3), Fbar(n3), Zqbar(n3), Z0bar(n3);
        std::vector<std::complex<double>> rc(n);
        JacobianCotangents jbars;
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
                    return REPLAY_FAILED;
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
                scatter_output_cotangents(plan, m, n, h, cotangents, ybar_n.data(), ybar_end.data(), fbar_n.data(),
                                          fbar_end.data());
                take_end_cotangents(t + h, y_next, ybar_end.data(), fbar_end.data(), ybar.data(), pbar);
                Zbar = zbar_carry;
                for (int q = 0; q < n; ++q) Zbar[2 * n + q] += ybar[q];
                for (int q = 0; q < n; ++q) ybar_n[q] += ybar[q];
                transposed_product(T, Zbar.data(), Wbar.data());
                const RadauFactors& lu = *record.factors;
                std::vector<double>& jbar = jbars.at(record.jacobian->point, nnz);
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
                take_rhs_cotangent(t, y_n.data(), fbar_n.data(), ybar_n.data(), pbar);
                if (jbars.take(m, second_, t, y_n.data(), p_, n, P_, ybar_n.data(), pbar)) ++product_count_;
                std::swap(ybar, ybar_n);
                y_next = y_n.data();
            }
        }
        std::copy(ybar.begin(), ybar.end(), ybar0);
        count(counters, n_checkpoints, peak);
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
        return kept_jacobian<RadauJacobian>(second_, m, times_[m], y, p_, n_, values_);
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
            const bool reproduced = reenact_rejections(*controller_, t, h, in.h_wish, t_end_, [&](double h_try) {
                double error = std::nan("");
                if (attempt(m, h_try, in, jac, current, rejected_, slow)) {
                    bool finite = true;
                    for (std::size_t q = 0; q < Z_.size(); ++q) finite = finite && std::isfinite(Z_[q]);
                    // RADAU5 refines the estimate on the first step and after a rejection.
                    if (finite)
                        error = error_of(m, h_try, y, in.f.data(), *rejected_.factors, m == 0 || after_rejection);
                }
                after_rejection = true;
                return error;
            });
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

    SecondOrderKernels second_;
    RadauCoefficients k_;
    const Controller* controller_;
    double rtol_, atol_;
    NewtonMonitor monitor_;
    const double* times_ = nullptr;
    const double* sizes_ = nullptr;
    double t_end_ = 0.0;
    std::vector<double> stage_, F_, g_, W_, dW_, Z_, Z0_, weights_;
    std::vector<std::complex<double>> complex_;
    std::vector<double> err_, ez_, work_, f_err_, matrix_;
    std::vector<std::complex<double>> complex_matrix_;
    std::vector<double> values_;
    RadauSolve rejected_;   // the record of a re-enacted attempt (not reversed)
    long jacobian_evaluations_ = 0, newton_iterations_ = 0;
};

}  // namespace symsens_adjoint
