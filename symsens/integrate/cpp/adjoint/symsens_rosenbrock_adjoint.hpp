// The discrete adjoint of a Rosenbrock solve: reverse mode through its accepted steps.
//
// A step of size h from (t_n, y_n) in Hairer & Wanner's transformed variables (HW II, Sect. IV.7), with the step
// sizes held (the controller is not differentiated) and J, f_t evaluated afresh at the step's start:
//
//   W = (1/(h gamma)) I - J(t_n, y_n, p)
//   r_i = f(t_n + alpha_i h, y_n + sum_{j<i} a_ij u_j) + sum_{j<i} (c_ij / h) u_j + gamma_i h f_t(t_n, y_n)
//   u_i = W^-1 r_i        (stage 1 evaluates f(t_n, y_n); a stage at stage i-1's argument reuses its f)
//   y_{n+1} = y_n + sum_j m_j u_j
//
// Its exact reverse (FATODE's Rosenbrock adjoint, Zhang & Sandu 2014, Sect. 3.4; Sandu 2006), from the last
// stage back with ubar_j = m_j ybar_{n+1}:
//
//   rbar_i = W^-T ubar_i,   Jbar += rbar_i u_i^T (on J's pattern),   qbar += gamma_i h rbar_i,
//   ubar_j += (c_ij / h) rbar_i,   ybar_n += J(Y_i)^T rbar_i,   ubar_j += a_ij J(Y_i)^T rbar_i,
//   pbar += F_p(Y_i)^T rbar_i,
//   ybar_n += ybar_{n+1} + d/dy [<Jbar, J(t_n, y_n, p)> + <qbar, f_t(t_n, y_n, p)>],   pbar += d/dp [the same].
//
// The last line is one call of the model's generated second-order kernel (symsens/codegen/_second_order.py).
// Outputs between step ends are the compiled solver's cubic Hermite interpolant of (y_n, f(t_n, y_n), y_{n+1},
// f(t_{n+1}, y_{n+1})), reversed as in the explicit-RK adjoint (f(t_n, y_n) is stage 1's value, so its cotangent
// joins rbar_1's in the J^T, F_p^T products).
//
// Memory (Griewank & Walther 2008, Ch. 12), two schedules:
// * uniform: the forward replay keeps (y_n, f(t_n, y_n)) every k steps; the reverse pass re-runs each block of
//   k steps, keeping y_n and the s stage vectors u_i, and reverses it, re-evaluating J and the LU of W of each
//   step (cheaper to redo than n^2 numbers to keep).  Stored: (M / k) 2 n + k (s + 1) n numbers.
// * binomial (Griewank's revolve): c snapshots of (y_n, f_n) reverse M <= binom(c + r, c) steps with no step
//   advanced more than r times: c 2 n + (s + 2) n numbers, at up to r forward sweeps.
//
// The sweep is that of the NumPy module (symsens/integrate/_discrete_adjoint_rosenbrock.py) operation by
// operation (the same output plan, checkpoints, counters and order of the sums); only the LU differs (LAPACK's
// getrf there, DenseLu of symsens_implicit_adjoint_common.hpp here), so the two agree to the rounding of the
// linear solves.  Sized at run time; the model enters through six function pointers.
//
// References: E. Hairer and G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.7; A. Sandu, ICCS 2006,
// LNCS 3994, 550-557; H. Zhang and A. Sandu, SIAM J. Sci. Comput. 36(5) (2014) C504-C523; A. Griewank and
// A. Walther, Evaluating Derivatives, 2nd ed., SIAM 2008.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "symsens_erk_adjoint.hpp"
#include "symsens_implicit_adjoint_common.hpp"

namespace symsens_adjoint {

// W = I/(h gamma) - J was singular (or not finite) at a step: the steps are not those of a successful solve.
constexpr int SINGULAR_MATRIX = REPLAY_FAILED;

// The transformed coefficients of rosenbrock_coefficients() (Python): a_t, c_t strictly lower (s x s, row-major),
// m, the stage times c, gamma_sum, and same_argument (stage i evaluates f where stage i - 1 did).
struct RosenbrockTableau {
    int s = 0;
    double gamma = 0.0;
    std::vector<double> m, c, gamma_sum;
    std::vector<char> same;
    std::vector<std::vector<std::pair<int, double>>> a_rows, c_rows;   // the non-zero a_ij, c_ij of row i

    RosenbrockTableau(int stages, double gamma_, const double* a_t, const double* c_t, const double* m_,
                      const double* c_, const double* gamma_sum_, const int* same_argument)
        : s(stages), gamma(gamma_), m(m_, m_ + stages), c(c_, c_ + stages), gamma_sum(gamma_sum_, gamma_sum_ + stages),
          same(stages, 0), a_rows(stages), c_rows(stages) {
        for (int i = 0; i < s; ++i) {
            same[i] = same_argument[i] != 0;
            for (int j = 0; j < i; ++j) {
                if (a_t[i * s + j] != 0.0) a_rows[i].emplace_back(j, a_t[i * s + j]);
                if (c_t[i * s + j] != 0.0) c_rows[i].emplace_back(j, c_t[i * s + j]);
            }
        }
    }
};

// The counters (rhs_evaluations counts f and f_t; product_evaluations J^T v with its F_p^T v and the second-order
// gradients) and the step whose W was singular (status SINGULAR_MATRIX).
struct RosenbrockCounters : Counters {
    long failed_step = -1;
};

class RosenbrockAdjoint : private CountedKernels {
  public:
    RosenbrockAdjoint(const Kernels& kernels, const SecondOrderKernels& second, const RosenbrockTableau& tableau,
                      int n, int P, const double* p)
        : CountedKernels(kernels, n, P, p), so_(second), tab_(tableau), ft_(n), acc_(n), r_(n), arg_(n),
          total_(n), sum_(n), jbar_(std::max<long>(second.nnz, 1)), qbar_(n), gy_(n), gp_(std::max(P, 1)) {}

    // The whole sweep.  outputs: K_out x n, written where the plan says; ybar0 (n) and pbar (P) are overwritten.
    int run(const double* y0, long M, const double* step_times, const double* step_sizes, const OutputPlan& plan,
            long K_out, const double* cotangents, int schedule, long every, double* outputs, double* ybar0,
            double* pbar, RosenbrockCounters& counters) {
        if (every < 1 || M < 0 || (schedule != UNIFORM && schedule != BINOMIAL) || !plan.valid(M, K_out))
            return BAD_INPUT;
        times_ = step_times;
        sizes_ = step_sizes;
        plan_ = &plan;
        cotangents_ = cotangents;
        outputs_ = outputs;
        pbar_ = pbar;
        const int n = n_;
        ybar_.assign(n, 0.0);
        ybar_n_.assign(n, 0.0);
        ybar_end_.assign(n, 0.0);
        fbar_start_.assign(n, 0.0);
        fbar_end_.assign(n, 0.0);
        ubar_.assign(static_cast<std::size_t>(tab_.s) * n, 0.0);
        std::fill(pbar, pbar + P_, 0.0);
        const int status = schedule == UNIFORM ? uniform(y0, M, every, counters) : binomial(y0, M, every, counters);
        std::copy(ybar_.begin(), ybar_.end(), ybar0);
        count(counters);
        return status;
    }

    enum Schedule : int { UNIFORM = 0, BINOMIAL = 1 };

  private:
    // J at the step's start into jacobian_ (dense) and the LU of W = I/(h gamma) - J; false when W is singular.
    bool factor(double t, double h, const double* y) {
        const int n = n_;
        so_.dense_jacobian(t, y, p_, n, values_, w_);
        for (auto& entry : w_) entry = -entry;
        const double diagonal = 1.0 / (h * tab_.gamma);
        for (int i = 0; i < n; ++i) w_[static_cast<std::size_t>(i) * n + i] += diagonal;
        return lu_.factor(w_.data(), n);
    }

    // y + sum_{j<i} a_ij u_j (the argument of stage i) into arg_.
    void argument(const double* y, const double* U, int i) {
        const int n = n_;
        std::fill(acc_.begin(), acc_.end(), 0.0);
        for (const auto& [j, a] : tab_.a_rows[i])
            for (int q = 0; q < n; ++q) acc_[q] = acc_[q] + a * U[static_cast<std::size_t>(j) * n + q];
        for (int q = 0; q < n; ++q) arg_[q] = y[q] + acc_[q];
    }

    // One step of size h from (y, f(t, y)): y_new, f(t + h, y_new) and the stage vectors U (s x n).
    bool step(long m, const double* y, const double* f_start, double* y_new, double* f_new, double* U) {
        const int s = tab_.s, n = n_;
        const double t = times_[m], h = sizes_[m];
        if (!factor(t, h, y)) return false;
        std::fill(ft_.begin(), ft_.end(), 0.0);
        if (!so_.autonomous) {
            ++rhs_count_;
            so_.time_derivative(t, y, p_, ft_.data());
        }
        const double* fi = f_start;
        for (int i = 0; i < s; ++i) {
            if (i > 0 && !tab_.same[i]) {
                argument(y, U, i);
                call_rhs(t + tab_.c[i] * h, arg_.data(), r_.data());
                fi = r_.data();
            }
            std::fill(acc_.begin(), acc_.end(), 0.0);
            for (const auto& [j, cc] : tab_.c_rows[i])
                for (int q = 0; q < n; ++q) acc_[q] = acc_[q] + cc * U[static_cast<std::size_t>(j) * n + q];
            const double gh = tab_.gamma_sum[i] * h;
            double* u = U + static_cast<std::size_t>(i) * n;
            for (int q = 0; q < n; ++q) u[q] = fi[q] + acc_[q] / h + gh * ft_[q];
            lu_.solve(u);
        }
        std::fill(total_.begin(), total_.end(), 0.0);
        for (int j = 0; j < s; ++j)
            if (tab_.m[j] != 0.0)
                for (int q = 0; q < n; ++q) total_[q] = total_[q] + tab_.m[j] * U[static_cast<std::size_t>(j) * n + q];
        for (int q = 0; q < n; ++q) y_new[q] = y[q] + total_[q];
        call_rhs(t + h, y_new, f_new);
        return true;
    }

    // Step m and its outputs (the step's ends, or the Hermite interpolant inside it).
    bool advance(long m, const double* y, const double* f, double* y_new, double* f_new, double* U) {
        if (!step(m, y, f, y_new, f_new, U)) return false;
        write_step_outputs(*plan_, m, n_, sizes_[m], y, f, y_new, f_new, outputs_);
        return true;
    }

    // The reverse of step m from y_n (stage vectors U, end state y_next): ybar_ from ybar_{m+1} to ybar_m.
    bool reverse_step(long m, const double* y_n, const double* U, const double* y_next) {
        const int s = tab_.s, n = n_;
        const double t = times_[m], h = sizes_[m];
        scatter_output_cotangents(*plan_, m, n, h, cotangents_, ybar_n_.data(), ybar_end_.data(),
                                  fbar_start_.data(), fbar_end_.data());
        take_end_cotangents(t + h, y_next, ybar_end_.data(), fbar_end_.data(), ybar_.data(), pbar_);
        if (!factor(t, h, y_n)) return false;
        for (int i = 0; i < s; ++i)
            for (int q = 0; q < n; ++q) ubar_[static_cast<std::size_t>(i) * n + q] = tab_.m[i] * ybar_[q];
        for (int q = 0; q < n; ++q) ybar_n_[q] += ybar_[q];
        std::fill(jbar_.begin(), jbar_.end(), 0.0);
        std::fill(qbar_.begin(), qbar_.end(), 0.0);
        for (int i = s - 1; i >= 0; --i) {
            double* rbar = &ubar_[static_cast<std::size_t>(i) * n];   // ubar_i is not needed after rbar_i
            lu_.solve_transposed(rbar);
            const double* u = U + static_cast<std::size_t>(i) * n;
            for (long k = 0; k < so_.nnz; ++k) jbar_[k] += rbar[so_.rows[k]] * u[so_.cols[k]];
            for (const auto& [j, cc] : tab_.c_rows[i]) {
                const double ch = cc / h;
                for (int q = 0; q < n; ++q) ubar_[static_cast<std::size_t>(j) * n + q] += ch * rbar[q];
            }
            const double gh = tab_.gamma_sum[i] * h;
            for (int q = 0; q < n; ++q) qbar_[q] += gh * rbar[q];
            if (i == 0) {
                for (int q = 0; q < n; ++q) sum_[q] = rbar[q] + fbar_start_[q];
                products(t, y_n, sum_.data());
                for (int q = 0; q < n; ++q) ybar_n_[q] += jt_[q];
                add_parameters(pbar_);
                continue;
            }
            argument(y_n, U, i);
            products(t + tab_.c[i] * h, arg_.data(), rbar);
            for (int q = 0; q < n; ++q) ybar_n_[q] += jt_[q];
            add_parameters(pbar_);
            for (const auto& [j, a] : tab_.a_rows[i])
                for (int q = 0; q < n; ++q) ubar_[static_cast<std::size_t>(j) * n + q] += a * jt_[q];
        }
        if (so_.autonomous) std::fill(qbar_.begin(), qbar_.end(), 0.0);
        ++product_count_;
        so_.second_order(t, y_n, p_, jbar_.data(), qbar_.data(), gy_.data(), gp_.data());
        for (int q = 0; q < n; ++q) ybar_[q] = ybar_n_[q] + gy_[q];
        for (int j = 0; j < P_; ++j) pbar_[j] += gp_[j];
        return true;
    }

    // Uniform checkpoints of (y_n, f(t_n, y_n)) every `every` steps, then each block re-run and reversed.
    int uniform(const double* y0, long M, long every, RosenbrockCounters& counters) {
        const int s = tab_.s, n = n_;
        const std::size_t sn = static_cast<std::size_t>(s) * n;
        const long n_checkpoints = M == 0 ? 0 : (M + every - 1) / every;
        std::vector<double> checkpoints(static_cast<std::size_t>(n_checkpoints) * 2 * n);
        std::vector<double> y(y0, y0 + n), f(n), y_new(n), f_new(n), U(sn);
        call_rhs(times_[0], y.data(), f.data());
        for (long m = 0; m < M; ++m) {
            if (m % every == 0) {
                const std::size_t at = static_cast<std::size_t>(m / every) * 2 * n;
                std::copy(y.begin(), y.end(), checkpoints.begin() + at);
                std::copy(f.begin(), f.end(), checkpoints.begin() + at + n);
            }
            if (!advance(m, y.data(), f.data(), y_new.data(), f_new.data(), U.data())) {
                counters.failed_step = m;
                return SINGULAR_MATRIX;
            }
            std::swap(y, y_new);
            std::swap(f, f_new);
        }
        const long capacity = std::min<long>(every, std::max<long>(M, 1));
        std::vector<double> block_y(static_cast<std::size_t>(capacity + 1) * n);
        std::vector<double> block_U(static_cast<std::size_t>(capacity) * sn);
        long peak = n_checkpoints * 2 * n;
        for (long k = n_checkpoints - 1; k >= 0; --k) {
            const long start = k * every, stop = std::min(start + every, M);
            const std::size_t at = static_cast<std::size_t>(k) * 2 * n;
            std::copy(checkpoints.begin() + at, checkpoints.begin() + at + n, block_y.begin());
            std::copy(checkpoints.begin() + at + n, checkpoints.begin() + at + 2 * n, f.begin());
            for (long m = start; m < stop; ++m) {
                const std::size_t b = static_cast<std::size_t>(m - start);
                if (!step(m, &block_y[b * n], f.data(), &block_y[(b + 1) * n], f_new.data(), &block_U[b * sn])) {
                    counters.failed_step = m;
                    return SINGULAR_MATRIX;
                }
                std::swap(f, f_new);
            }
            peak = std::max(peak, n_checkpoints * 2 * n + (stop - start) * (static_cast<long>(s) + 1) * n);
            for (long m = stop - 1; m >= start; --m) {
                const std::size_t b = static_cast<std::size_t>(m - start);
                if (!reverse_step(m, &block_y[b * n], &block_U[b * sn], &block_y[(b + 1) * n])) {
                    counters.failed_step = m;
                    return SINGULAR_MATRIX;
                }
            }
        }
        counters.checkpoints = n_checkpoints;
        counters.stored_numbers = peak;
        return SUCCESS;
    }

    // Binomial checkpoints (the schedule of Griewank's revolve; ErkAdjoint::treeverse in symsens_erk_adjoint.hpp
    // states the rule): reverse steps [start, end) from (y_start, f_start) with `free` snapshot slots of
    // (y, f).  No step is advanced more than r times for M <= binom(c + r, c); the same steps are recomputed by
    // the same operations as in the uniform schedule, so both give the same gradient bit for bit.
    bool treeverse(long start, long end, const double* y_start, const double* f_start, long free) {
        const int n = n_;
        const long l = end - start;
        if (l <= 0) return true;
        if (l == 1) {
            if (!advance(start, y_start, f_start, y_one_.data(), f_one_.data(), U_one_.data())
                || !reverse_step(start, y_start, U_one_.data(), y_one_.data())) {
                failed_ = start;
                return false;
            }
            return true;
        }
        if (free == 0) {   // no snapshot left (not reached from binomial(): the rule keeps l <= 1 here)
            for (long m = end - 1; m >= start; --m) {
                std::copy(y_start, y_start + n, walk_y_.begin());
                std::copy(f_start, f_start + n, walk_f_.begin());
                for (long q = start; q <= m; ++q) {
                    if (!advance(q, walk_y_.data(), walk_f_.data(), y_one_.data(), f_one_.data(), U_one_.data())) {
                        failed_ = q;
                        return false;
                    }
                    if (q < m) {
                        std::copy(y_one_.begin(), y_one_.end(), walk_y_.begin());
                        std::copy(f_one_.begin(), f_one_.end(), walk_f_.begin());
                    }
                }
                if (!reverse_step(m, walk_y_.data(), U_one_.data(), y_one_.data())) {
                    failed_ = m;
                    return false;
                }
            }
            return true;
        }
        long r = 0;
        while (ErkAdjoint::beta(free, r) < l) ++r;
        const long m = std::max<long>(1, l - ErkAdjoint::beta(free - 1, r));
        double* slot_y = &slots_[static_cast<std::size_t>(free - 1) * 2 * n];
        double* slot_f = slot_y + n;
        std::copy(y_start, y_start + n, slot_y);
        std::copy(f_start, f_start + n, slot_f);
        for (long q = start; q < start + m; ++q) {
            if (!advance(q, slot_y, slot_f, y_one_.data(), f_one_.data(), U_one_.data())) {
                failed_ = q;
                return false;
            }
            std::copy(y_one_.begin(), y_one_.end(), slot_y);
            std::copy(f_one_.begin(), f_one_.end(), slot_f);
        }
        used_ = std::max(used_, snapshots_ - free + 1);
        return treeverse(start + m, end, slot_y, slot_f, free - 1)
            && treeverse(start, start + m, y_start, f_start, free);
    }

    int binomial(const double* y0, long M, long snapshots, RosenbrockCounters& counters) {
        const int n = n_;
        snapshots_ = snapshots;
        used_ = 0;
        failed_ = -1;
        slots_.assign(static_cast<std::size_t>(snapshots) * 2 * n, 0.0);
        y_one_.assign(n, 0.0);
        f_one_.assign(n, 0.0);
        walk_y_.assign(n, 0.0);
        walk_f_.assign(n, 0.0);
        U_one_.assign(static_cast<std::size_t>(tab_.s) * n, 0.0);
        std::vector<double> y(y0, y0 + n), f(n);
        call_rhs(times_[0], y.data(), f.data());
        if (!treeverse(0, M, y.data(), f.data(), snapshots)) {
            counters.failed_step = failed_;
            return SINGULAR_MATRIX;
        }
        counters.checkpoints = used_;
        counters.stored_numbers = used_ * 2 * n + (static_cast<long>(tab_.s) + 2) * n;
        return SUCCESS;
    }

    SecondOrderKernels so_;
    const RosenbrockTableau& tab_;
    std::vector<double> ft_, acc_, r_, arg_, total_, sum_, jbar_, qbar_, gy_, gp_, values_, w_;
    DenseLu<double> lu_;
    const double* times_ = nullptr;
    const double* sizes_ = nullptr;
    const OutputPlan* plan_ = nullptr;
    const double* cotangents_ = nullptr;
    double* outputs_ = nullptr;
    double* pbar_ = nullptr;
    std::vector<double> ybar_, ybar_n_, ybar_end_, fbar_start_, fbar_end_, ubar_;
    std::vector<double> slots_, y_one_, f_one_, walk_y_, walk_f_, U_one_;
    long snapshots_ = 0, used_ = 0, failed_ = -1;
};

}  // namespace symsens_adjoint
