// The discrete adjoint of an explicit Runge–Kutta solve: reverse mode through its accepted steps.
//
// A step of size h from (t_n, y_n), with the step sizes held (the controller is not differentiated):
//
//   k_i = f(t_n + c_i h, Y_i),   Y_i = y_n + h sum_{j<i} a_ij k_j,   y_{n+1} = y_n + h sum_i b_i k_i,
//
// and its reverse, from the last stage back (Hager 2000, Sect. 2; Sandu 2006, Sect. 3; the ERK adjoint of
// FATODE, Zhang & Sandu 2014):
//
//   kbar_i = h b_i ybar_{n+1} + h sum_{m>i} a_mi Ybar_m,   Ybar_i = J(Y_i)^T kbar_i,
//   pbar  += F_p(Y_i)^T kbar_i,                           ybar_n = ybar_{n+1} + sum_i Ybar_i.
//
// Outputs between step ends are the compiled solver's cubic Hermite interpolant
// h00 y_n + h10 h f_n + h01 y_{n+1} + h11 h f_{n+1} (symsens_solver.hpp, Recorder::output); its reverse
// scatters an output's cotangent w onto ybar_n, ybar_{n+1} (h00 w, h01 w) and onto f_n = k_1 and f_{n+1}
// (h10 h w, h11 h w), whose cotangents go through J^T and F_p^T like a stage's.
//
// Memory (Griewank & Walther 2008, Ch. 12), two schedules:
// * uniform: the forward replay keeps y at every k-th step; the reverse pass re-runs each block of k steps from
//   its checkpoint, keeping the block's states and stages, and reverses it.  For M steps of s stages in n states
//   that is (M/k) n + k (2s + 2) n stored numbers instead of M s n, for one extra forward sweep (M s more
//   evaluations of f).  The default k = ceil(sqrt(M/s)) balances the two terms (about 2 sqrt(M s) n numbers).
// * binomial (the schedule of Griewank's revolve): c snapshots reverse M <= binom(c + r, c) steps with no step
//   advanced more than r times, so memory is c n + (2s + 2) n (logarithmic in M for c ~ log2 M) at a recompute
//   factor r (a few sweeps instead of two).  Both schedules recompute the same steps by the same operations, so
//   they give the same gradient bit for bit.
//
// Everything is sized at run time (n, P, s, M) and the model enters only through three function pointers, so
// one compiled sweep serves every model and scheme; the model's kernels are generated and compiled apart
// (symsens/codegen/_vjp.py), cheaply, over the non-zeros of J and F_p.  The arithmetic is that of the NumPy
// sweep (symsens/integrate/_discrete_adjoint.py) operation by operation, so the two agree to the rounding of
// the kernels' own evaluation order.
//
// Every compiled sweep includes this header for what they all share: the kernels and their table, the status
// codes, the output plan with its Hermite outputs and their transpose, the counters and CountedKernels (the
// counted f, J^T v, F_p^T v and the cotangents of a step's outputs).
//
// References: W. W. Hager, Numer. Math. 87 (2000) 247-282; A. Sandu, ICCS 2006, LNCS 3994, 550-557;
// H. Zhang and A. Sandu, SIAM J. Sci. Comput. 36(5) (2014) C504-C523; A. Griewank and A. Walther,
// Evaluating Derivatives, 2nd ed., SIAM 2008.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace symsens_adjoint {

using RhsFunction = void (*)(double t, const double* y, const double* p, double* out);
using ProductFunction = void (*)(double t, const double* y, const double* p, const double* v, double* out);

// The model: f, J^T v and F_p^T v (F_p over the gradient's P parameters); p holds all the model's parameters.
struct Kernels {
    RhsFunction rhs;
    ProductFunction vjp_state;
    ProductFunction vjp_parameters;
};

// The sweeps' status codes.  REPLAY_FAILED: the replay of an implicit solve left the compiled solve's path (a Newton
// solve the solver completed failed, or a Rosenbrock matrix was singular); OUT_OF_MEMORY: an allocation failed.
enum Status : int { SUCCESS = 0, BAD_INPUT = 5, REPLAY_FAILED = 6, OUT_OF_MEMORY = 7 };
enum OutputKind : int { OUTPUT_START = 0, OUTPUT_END = 1, OUTPUT_INNER = 2 };

// The three kernels from their table (kernels[0] = f, kernels[1] = J^T v, kernels[2] = F_p^T v, needed when P > 0);
// false when one is missing.
inline bool read_kernels(void* const* table, int P, Kernels& kernels) {
    if (table == nullptr || table[0] == nullptr || table[1] == nullptr || (P > 0 && table[2] == nullptr)) return false;
    kernels = Kernels{reinterpret_cast<RhsFunction>(table[0]), reinterpret_cast<ProductFunction>(table[1]),
                      reinterpret_cast<ProductFunction>(table[2])};
    return true;
}

// An explicit tableau in double (strictly lower A, row-major), with the non-zero a_ij of each row and the
// stages whose cotangent can be non-zero (b_i != 0, or feeding a later such stage).
struct Tableau {
    int s = 0;
    bool fsal = false;
    std::vector<double> A, b, c;
    std::vector<std::vector<std::pair<int, double>>> rows;
    std::vector<char> live;

    Tableau(int stages, const double* a, const double* weights, const double* nodes, bool first_same_as_last)
        : s(stages), fsal(first_same_as_last), A(a, a + static_cast<std::size_t>(stages) * stages),
          b(weights, weights + stages), c(nodes, nodes + stages), rows(stages), live(stages, 0) {
        for (int i = 0; i < s; ++i)
            for (int j = 0; j < i; ++j)
                if (A[i * s + j] != 0.0) rows[i].emplace_back(j, A[i * s + j]);
        for (int i = s - 1; i >= 0; --i) {
            bool feeds = b[i] != 0.0;
            for (int m = i + 1; m < s && !feeds; ++m) feeds = live[m] && A[m * s + i] != 0.0;
            live[i] = feeds;
        }
    }
};

// Per step n, the outputs it writes: entries [first[n], first[n + 1]) of (index k, kind, theta).  A plan without
// kinds (kind == nullptr, BDF's) has only first and index.
struct OutputPlan {
    const long* first;
    const long* index;
    const int* kind;
    const double* theta;

    // The entries of M steps are in order and name outputs 0 .. K_out - 1 of a known kind.
    bool valid(long M, long K_out) const {
        for (long m = 0; m < M; ++m) {
            if (first[m] > first[m + 1]) return false;
            for (long e = first[m]; e < first[m + 1]; ++e)
                if (index[e] < 0 || index[e] >= K_out || (kind != nullptr && (kind[e] < 0 || kind[e] > 2)))
                    return false;
        }
        return true;
    }
};

struct Counters {
    long rhs_evaluations = 0;
    long product_evaluations = 0;   // one J^T v together with its F_p^T v (and the second-order gradients)
    long checkpoints = 0;
    long stored_numbers = 0;        // peak: checkpoints plus one block's states and stages

    // out[0..3], the order of every C entry's counters.
    void write(long* out) const {
        out[0] = rhs_evaluations;
        out[1] = product_evaluations;
        out[2] = checkpoints;
        out[3] = stored_numbers;
    }
};

inline void hermite(double theta, double& h00, double& h10, double& h01, double& h11) {
    h00 = (1.0 + 2.0 * theta) * (1.0 - theta) * (1.0 - theta);
    h10 = theta * (1.0 - theta) * (1.0 - theta);
    h01 = theta * theta * (3.0 - 2.0 * theta);
    h11 = theta * theta * (theta - 1.0);
}

// Whether step m writes an output inside it (one that needs f at the step's end).
inline bool has_inner_output(const OutputPlan& plan, long m) {
    for (long e = plan.first[m]; e < plan.first[m + 1]; ++e)
        if (plan.kind[e] == OUTPUT_INNER) return true;
    return false;
}

// Step m's outputs (rows of `outputs`, n each) as the compiled recorder writes them: the step's ends, or the cubic
// Hermite interpolant h00 y + h10 h f + h01 y_new + h11 h f_new inside it.
inline void write_step_outputs(const OutputPlan& plan, long m, int n, double h, const double* y, const double* f,
                               const double* y_new, const double* f_new, double* outputs) {
    for (long e = plan.first[m]; e < plan.first[m + 1]; ++e) {
        double* out = outputs + plan.index[e] * n;
        if (plan.kind[e] == OUTPUT_START) {
            std::copy(y, y + n, out);
        } else if (plan.kind[e] == OUTPUT_END) {
            std::copy(y_new, y_new + n, out);
        } else {
            double h00, h10, h01, h11;
            hermite(plan.theta[e], h00, h10, h01, h11);
            const double w10 = h10 * h, w11 = h11 * h;
            for (int q = 0; q < n; ++q) out[q] = h00 * y[q] + w10 * f[q] + h01 * y_new[q] + w11 * f_new[q];
        }
    }
}

// The transpose of write_step_outputs: step m's output cotangents (rows of `cotangents`) scattered with the Hermite
// weights onto ybar_start, ybar_end, fbar_start, fbar_end (n each, overwritten).
inline void scatter_output_cotangents(const OutputPlan& plan, long m, int n, double h, const double* cotangents,
                                      double* ybar_start, double* ybar_end, double* fbar_start, double* fbar_end) {
    std::fill(ybar_start, ybar_start + n, 0.0);
    std::fill(ybar_end, ybar_end + n, 0.0);
    std::fill(fbar_start, fbar_start + n, 0.0);
    std::fill(fbar_end, fbar_end + n, 0.0);
    for (long e = plan.first[m]; e < plan.first[m + 1]; ++e) {
        const double* w = cotangents + plan.index[e] * n;
        if (plan.kind[e] == OUTPUT_START) {
            for (int q = 0; q < n; ++q) ybar_start[q] += w[q];
        } else if (plan.kind[e] == OUTPUT_END) {
            for (int q = 0; q < n; ++q) ybar_end[q] += w[q];
        } else {
            double h00, h10, h01, h11;
            hermite(plan.theta[e], h00, h10, h01, h11);
            const double w10 = h10 * h, w11 = h11 * h;
            for (int q = 0; q < n; ++q) {
                ybar_start[q] += h00 * w[q];
                fbar_start[q] += w10 * w[q];
                ybar_end[q] += h01 * w[q];
                fbar_end[q] += w11 * w[q];
            }
        }
    }
}

inline bool any_nonzero(const double* x, int n) {
    for (int i = 0; i < n; ++i)
        if (x[i] != 0.0) return true;   // NaN counts as non-zero, as in the NumPy sweep
    return false;
}

// The model's f, J^T v and F_p^T v at the parameter values p, each evaluation counted: the base of every sweep.
class CountedKernels {
  protected:
    CountedKernels(const Kernels& kernels, int n, int P, const double* p)
        : f_(kernels), n_(n), P_(P), p_(p), jt_(n), fpt_(P > 0 ? P : 1) {}

    void call_rhs(double t, const double* y, double* out) {
        ++rhs_count_;
        f_.rhs(t, y, p_, out);
    }

    // jt_ = J(t, y)^T v and fpt_ = F_p(t, y)^T v (one counted product).
    void products(double t, const double* y, const double* v) {
        ++product_count_;
        f_.vjp_state(t, y, p_, v, jt_.data());
        if (P_ > 0) f_.vjp_parameters(t, y, p_, v, fpt_.data());
    }

    void add_parameters(double* pbar) const {
        for (int j = 0; j < P_; ++j) pbar[j] += fpt_[j];
    }

    // The cotangent fbar of f(t, y) through J^T into ybar and F_p^T into pbar (nothing to do when it is zero).
    void take_rhs_cotangent(double t, const double* y, const double* fbar, double* ybar, double* pbar) {
        if (!any_nonzero(fbar, n_)) return;
        products(t, y, fbar);
        for (int q = 0; q < n_; ++q) ybar[q] = ybar[q] + jt_[q];
        add_parameters(pbar);
    }

    // At the end (t, y_end) of a step in reverse: ybar += ybar_end (the cotangent of y_end from the step's outputs),
    // then the outputs' cotangent fbar_end of f(t, y_end).
    void take_end_cotangents(double t, const double* y_end, const double* ybar_end, const double* fbar_end,
                             double* ybar, double* pbar) {
        for (int q = 0; q < n_; ++q) ybar[q] = ybar[q] + ybar_end[q];
        take_rhs_cotangent(t, y_end, fbar_end, ybar, pbar);
    }

    void count(Counters& counters) const {
        counters.rhs_evaluations = rhs_count_;
        counters.product_evaluations = product_count_;
    }

    void count(Counters& counters, long checkpoints, long stored_numbers) const {
        count(counters);
        counters.checkpoints = checkpoints;
        counters.stored_numbers = stored_numbers;
    }

    Kernels f_;
    int n_, P_;
    const double* p_;
    std::vector<double> jt_, fpt_;
    long rhs_count_ = 0, product_count_ = 0;
};

class ErkAdjoint : private CountedKernels {
  public:
    ErkAdjoint(const Kernels& kernels, const Tableau& tableau, int n, int P, const double* p)
        : CountedKernels(kernels, n, P, p), tab_(tableau), acc_(n), total_(n) {}

    // One step from y (length n): y_new, the stages k (s x n) and, when Y is given, the stage states (s x n).
    void step(double t, double h, const double* y, double* y_new, double* K, double* Y) {
        const int s = tab_.s, n = n_;
        call_rhs(t, y, K);
        if (Y) std::copy(y, y + n, Y);
        double* stage = Y ? nullptr : stage_buffer(n);
        for (int i = 1; i < s; ++i) {
            std::fill(acc_.begin(), acc_.end(), 0.0);
            for (const auto& [j, a] : tab_.rows[i])
                for (int q = 0; q < n; ++q) acc_[q] = acc_[q] + a * K[j * n + q];
            double* Yi = Y ? Y + static_cast<std::size_t>(i) * n : stage;
            for (int q = 0; q < n; ++q) Yi[q] = y[q] + h * acc_[q];
            call_rhs(t + tab_.c[i] * h, Yi, K + static_cast<std::size_t>(i) * n);
        }
        std::fill(total_.begin(), total_.end(), 0.0);
        for (int j = 0; j < s; ++j)
            if (tab_.b[j] != 0.0)
                for (int q = 0; q < n; ++q) total_[q] = total_[q] + tab_.b[j] * K[j * n + q];
        for (int q = 0; q < n; ++q) y_new[q] = y[q] + h * total_[q];
    }

    // The whole sweep (see the header comment).  outputs: K_out x n, written where the plan says (the replayed
    // solution, to compare with the compiled solve); ybar0 (n) and pbar (P) are overwritten.
    // schedule UNIFORM: a checkpoint every `every` steps; BINOMIAL: `every` snapshots placed by the binomial rule.
    int run(const double* y0, long M, const double* step_times, const double* step_sizes, const OutputPlan& plan,
            long K_out, const double* cotangents, int schedule, long every, double* outputs, double* ybar0,
            double* pbar, Counters& counters) {
        if (every < 1 || M < 0 || (schedule != UNIFORM && schedule != BINOMIAL) || !plan.valid(M, K_out))
            return BAD_INPUT;
        times_ = step_times;
        sizes_ = step_sizes;
        plan_ = &plan;
        cotangents_ = cotangents;
        outputs_ = outputs;
        const int n = n_;
        const std::size_t sn = static_cast<std::size_t>(tab_.s) * n;
        ybar_.assign(n, 0.0);
        ybar_n_.assign(n, 0.0);
        ybar_end_.assign(n, 0.0);
        fbar_start_.assign(n, 0.0);
        fbar_end_.assign(n, 0.0);
        kbar_.assign(sn, 0.0);
        f_end_.assign(n, 0.0);
        pbar_ = pbar;
        std::fill(pbar, pbar + P_, 0.0);
        if (schedule == UNIFORM) uniform(y0, M, every, counters);
        else binomial(y0, M, every, counters);
        std::copy(ybar_.begin(), ybar_.end(), ybar0);
        count(counters);
        return SUCCESS;
    }

    enum Schedule : int { UNIFORM = 0, BINOMIAL = 1 };

    // beta(c, r) = binom(c + r, c): the most steps c snapshots reverse with every step advanced at most r times
    // (Griewank 1992; Griewank & Walther 2008, Sect. 12.3), saturated far above any step count.
    static long beta(long c, long r) {
        double value = 1.0;
        for (long i = 1; i <= c; ++i) {
            value = value * static_cast<double>(r + i) / static_cast<double>(i);
            if (value > 4e18) return static_cast<long>(4e18);
        }
        return static_cast<long>(value + 0.5);
    }

  private:
    // Step m from y into y_new (stages into K, stage states into Y when given), writing the step's outputs.
    void advance(long m, const double* y, double* y_new, double* K, double* Y) {
        const int s = tab_.s, n = n_;
        const double t = times_[m], h = sizes_[m];
        step(t, h, y, y_new, K, Y);
        // f at the step's end only for an output inside it (FSAL: the last stage's).
        if (has_inner_output(*plan_, m)) {
            if (tab_.fsal) std::copy(K + (s - 1) * n, K + s * n, f_end_.begin());
            else call_rhs(t + h, y_new, f_end_.data());
        }
        write_step_outputs(*plan_, m, n, h, y, K, y_new, f_end_.data(), outputs_);
    }

    // The reverse of step m (stage states Y, end state y_next): ybar_ from ybar_{m+1} to ybar_m, pbar += ...
    void reverse_step(long m, const double* Y, const double* y_next) {
        const int s = tab_.s, n = n_;
        const double t = times_[m], h = sizes_[m];
        // The outputs' cotangents, scattered with the Hermite weights.
        scatter_output_cotangents(*plan_, m, n, h, cotangents_, ybar_n_.data(), ybar_end_.data(),
                                  fbar_start_.data(), fbar_end_.data());
        take_end_cotangents(t + h, y_next, ybar_end_.data(), fbar_end_.data(), ybar_.data(), pbar_);
        // kbar_i = h b_i ybar_{n+1}; f_n is k_1 of the step (FSAL or not: the same function of y_n).
        for (int i = 0; i < s; ++i) {
            const double hb = h * tab_.b[i];
            for (int q = 0; q < n; ++q) kbar_[i * n + q] = hb * ybar_[q];
        }
        for (int q = 0; q < n; ++q) kbar_[q] += fbar_start_[q];
        for (int q = 0; q < n; ++q) ybar_n_[q] += ybar_[q];
        const bool start_cotangent = any_nonzero(fbar_start_.data(), n);
        for (int i = s - 1; i >= 0; --i) {
            if (!tab_.live[i] && !(i == 0 && start_cotangent)) continue;
            if (!any_nonzero(&kbar_[i * n], n)) continue;
            products(t + tab_.c[i] * h, Y + static_cast<std::size_t>(i) * n, &kbar_[i * n]);
            add_parameters(pbar_);
            for (int q = 0; q < n; ++q) ybar_n_[q] += jt_[q];
            for (const auto& [j, a] : tab_.rows[i]) {
                const double ha = h * a;
                for (int q = 0; q < n; ++q) kbar_[j * n + q] += ha * jt_[q];
            }
        }
        std::swap(ybar_, ybar_n_);
    }

    // Uniform checkpoints: a forward replay storing y every `every` steps, then each block re-run with its
    // states and stages kept and reversed.
    void uniform(const double* y0, long M, long every, Counters& counters) {
        const int s = tab_.s, n = n_;
        const std::size_t sn = static_cast<std::size_t>(s) * n;
        const long n_checkpoints = M == 0 ? 0 : (M + every - 1) / every;
        std::vector<double> checkpoints(static_cast<std::size_t>(n_checkpoints) * n);
        std::vector<double> y(y0, y0 + n), y_new(n), K(sn);
        for (long m = 0; m < M; ++m) {
            if (m % every == 0) std::copy(y.begin(), y.end(), checkpoints.begin() + (m / every) * n);
            advance(m, y.data(), y_new.data(), K.data(), nullptr);
            std::swap(y, y_new);
        }
        const long block_capacity = std::min<long>(every, std::max<long>(M, 1));
        std::vector<double> block_y(static_cast<std::size_t>(block_capacity + 1) * n);
        std::vector<double> block_K(static_cast<std::size_t>(block_capacity) * sn);
        std::vector<double> block_Y(static_cast<std::size_t>(block_capacity) * sn);
        long peak = n_checkpoints * n;
        for (long c = n_checkpoints - 1; c >= 0; --c) {
            const long start = c * every, stop = std::min(start + every, M);
            std::copy(checkpoints.begin() + c * n, checkpoints.begin() + (c + 1) * n, block_y.begin());
            for (long m = start; m < stop; ++m) {
                const std::size_t b = static_cast<std::size_t>(m - start);
                step(times_[m], sizes_[m], &block_y[b * n], &block_y[(b + 1) * n], &block_K[b * sn],
                     &block_Y[b * sn]);
            }
            peak = std::max(peak, n_checkpoints * n + (stop - start) * (2L * s + 2) * n);
            for (long m = stop - 1; m >= start; --m) {
                const std::size_t b = static_cast<std::size_t>(m - start);
                reverse_step(m, &block_Y[b * sn], &block_y[(b + 1) * n]);
            }
        }
        counters.checkpoints = n_checkpoints;
        counters.stored_numbers = peak;
    }

    // Binomial checkpoints: reverse steps [start, end) from the state y_start with `free` snapshot slots.  A
    // snapshot goes to start + m, m = max(1, l - beta(free - 1, r)) for the fewest r with beta(free, r) >= l,
    // so the right part [start + m, end) fits free - 1 snapshots and r sweeps and the left part free snapshots
    // and r - 1 sweeps (Griewank & Walther 2008, Sect. 12.3; Griewank 1992): no step is advanced more than r
    // times.  Outputs are written whenever a step is taken (the same values each time).
    void treeverse(long start, long end, const double* y_start, long free) {
        const int n = n_;
        const long l = end - start;
        if (l <= 0) return;
        if (l == 1) {
            advance(start, y_start, y_one_.data(), K_one_.data(), Y_one_.data());
            reverse_step(start, Y_one_.data(), y_one_.data());
            return;
        }
        if (free == 0) {   // no snapshot left (not reached from binomial(): the rule keeps l <= 1 here)
            for (long m = end - 1; m >= start; --m) {
                std::copy(y_start, y_start + n, walk_.begin());
                for (long q = start; q < m; ++q) {
                    advance(q, walk_.data(), y_one_.data(), K_one_.data(), nullptr);
                    std::copy(y_one_.begin(), y_one_.end(), walk_.begin());
                }
                advance(m, walk_.data(), y_one_.data(), K_one_.data(), Y_one_.data());
                reverse_step(m, Y_one_.data(), y_one_.data());
            }
            return;
        }
        long r = 0;
        while (beta(free, r) < l) ++r;
        const long m = std::max<long>(1, l - beta(free - 1, r));
        double* slot = &slots_[static_cast<std::size_t>(free - 1) * n];
        std::copy(y_start, y_start + n, slot);
        for (long q = start; q < start + m; ++q) {
            advance(q, slot, y_one_.data(), K_one_.data(), nullptr);
            std::copy(y_one_.begin(), y_one_.end(), slot);
        }
        used_ = std::max(used_, snapshots_ - free + 1);
        treeverse(start + m, end, slot, free - 1);
        treeverse(start, start + m, y_start, free);
    }

    void binomial(const double* y0, long M, long snapshots, Counters& counters) {
        const int s = tab_.s, n = n_;
        const std::size_t sn = static_cast<std::size_t>(s) * n;
        snapshots_ = snapshots;
        used_ = 0;
        slots_.assign(static_cast<std::size_t>(snapshots) * n, 0.0);
        y_one_.assign(n, 0.0);
        walk_.assign(n, 0.0);
        K_one_.assign(sn, 0.0);
        Y_one_.assign(sn, 0.0);
        std::vector<double> start(y0, y0 + n);
        treeverse(0, M, start.data(), snapshots);
        counters.checkpoints = used_;
        counters.stored_numbers = used_ * n + (2L * s + 2) * n;
    }

  private:
    double* stage_buffer(int n) {
        if (static_cast<int>(stage_.size()) != n) stage_.assign(n, 0.0);
        return stage_.data();
    }

    const Tableau& tab_;
    std::vector<double> acc_, total_, stage_;
    // One run's inputs and work arrays.
    const double* times_ = nullptr;
    const double* sizes_ = nullptr;
    const OutputPlan* plan_ = nullptr;
    const double* cotangents_ = nullptr;
    double* outputs_ = nullptr;
    double* pbar_ = nullptr;
    std::vector<double> ybar_, ybar_n_, ybar_end_, fbar_start_, fbar_end_, kbar_, f_end_;
    std::vector<double> slots_, y_one_, walk_, K_one_, Y_one_;
    long snapshots_ = 0, used_ = 0;
};

}  // namespace symsens_adjoint
