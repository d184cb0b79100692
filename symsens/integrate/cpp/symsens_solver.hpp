// symsens solver core: what every integrator shares.
//
// Everything is a template over the scalar type T of the solution (double for plain solves and
// continuous forward sensitivities; Dual<double, P> for the discrete forward mode, i.e. forward-mode AD
// through the solver; an extended-precision type for references).  The time and step size have a type
// of their own, Time, which is double unless the step sizes themselves are differentiated (then Time = T).
//
// Pieces:
//   Status / Options / Stats        the plain-C structs exchanged with Python (ctypes mirrors them)
//   value_of, strip                 the real value of a scalar; a scalar with its partials dropped
//   ErrorNorm                       weighted RMS norms, with or without the tangents (partials) in them
//   Lu<T>                           dense LU with partial pivoting, pivots chosen on values
//   Recorder<T, Time>               accepted steps, outputs at t_eval by cubic Hermite interpolation
//   ModelProblem / AugmentedProblem the ODE a stepper integrates: the model, or (y, S) with S' = J S + F_p
//   drive(...)                      the adaptive (or fixed, or replayed) step loop around a Stepper, with
//                                   the PI controller h_new = h * clamp(safety err^-beta1 err_prev^beta2)
//                                   (Hairer, Nørsett & Wanner I, Sect. II.4; Gustafsson 1991)
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "symsens_runtime.hpp"

namespace symsens {

// ---- exchanged with Python ---------------------------------------------------------------------------
enum Status : int {
    STATUS_SUCCESS = 0,
    STATUS_STEP_SIZE_UNDERFLOW = 1,
    STATUS_NEWTON_FAILURE = 2,
    STATUS_NON_FINITE = 3,
    STATUS_TOO_MANY_STEPS = 4,
    STATUS_BAD_INPUT = 5,
};

struct Options {
    double rtol;
    double atol;
    double first_step;         // 0: automatic (Hairer's initial step selection)
    double max_step;           // <= 0: unbounded
    double min_step;           // a step below this (relative to |t|) is a step size underflow
    long max_steps;
    int tangents_in_norm;      // discrete mode: partials enter the error norm; forward mode: S enters it
    int differentiate_steps;   // discrete mode: step sizes are duals (AD through the controller)
    int fixed_step;            // 1: constant steps of first_step, no error control
    int step_onto_outputs;     // 1: steps end exactly on every output time
    long n_replay;             // > 0: take exactly these step sizes (frozen step sequence)
    const double* replay_steps;
    double safety;             // controller: h_new = h * clamp(safety * err^-beta1 * err_prev^beta2)
    double factor_min;
    double factor_max;
    double beta1;
    double beta2;
    int record_steps;          // 1: store accepted step times (for Solution.stats)
    int outputs_at_steps;      // 1: the outputs are t0 and every accepted step end (t_eval unused; n_eval is
                               //    the capacity of the output buffer, the count is the number of step times)
    long step_capacity;        // room in the caller's step-time buffer (the generated driver copies at most this
                               //    many; the count it reports is the full one, so the caller can retry)
};

struct Stats {
    long accepted;
    long rejected;
    long nfev;
    long njev;
    long nlu;
    long newton_iterations;
    int status;
    double t_failure;
    long n_outputs;            // output rows written (set by the generated driver; a failed run writes only the
                               //    outputs it reached, in order, so these are the first n_outputs rows)
};

// ---- scalars -----------------------------------------------------------------------------------------
inline double value_of(double x) { return x; }
inline double value_of(long double x) { return static_cast<double>(x); }
template <class T, int P> inline double value_of(const Dual<T, P>& x) { return value_of(x.v); }

template <class X> inline X strip(const X& x) { return x; }
template <class T, int P> inline Dual<T, P> strip(const Dual<T, P>& x) { return Dual<T, P>(x.v); }

// A coefficient or time of scalar type T as the Time type (double, or T itself when steps are differentiated).
template <class Time, class X> inline Time as_time(const X& x) {
    if constexpr (std::is_same<Time, X>::value) {
        return x;
    } else {
        return Time(value_of(x));
    }
}

template <class X> inline bool is_finite(const X& x) { return std::isfinite(value_of(x)); }
template <class T, int P> inline bool is_finite(const Dual<T, P>& x) {
    if (!is_finite(x.v)) return false;
    for (int i = 0; i < P; ++i) if (!is_finite(x.d[i])) return false;
    return true;
}

// Whether the value (not the partials) of every component is finite.  Decisions on values alone keep the plain
// and the discrete (dual-number) solves on the same steps.
template <class T> inline bool values_finite(const T* x, int n) {
    for (int i = 0; i < n; ++i) if (!std::isfinite(value_of(x[i]))) return false;
    return true;
}

// Sum of squares of a scalar: its value alone, or value and every partial (what a norm that "sees the
// tangents" adds up — OrdinaryDiffEq's ODE_DEFAULT_NORM on ForwardDiff duals does the latter).
inline double squares(double x, bool) { return x * x; }
inline double squares(long double x, bool) { return static_cast<double>(x * x); }
template <class T, int P> inline double squares(const Dual<T, P>& x, bool tangents) {
    double s = squares(x.v, tangents);
    if (tangents) for (int i = 0; i < P; ++i) s += squares(x.d[i], tangents);
    return s;
}
// |x| as the norm sees it (the scale atol + rtol |y| uses the same convention).
template <class X> inline double magnitude(const X& x, bool tangents) { return std::sqrt(squares(x, tangents)); }

// ---- error norm --------------------------------------------------------------------------------------
// err = sqrt( (1/m) sum_i |e_i / (atol + rtol max(|y0_i|, |y1_i|))|^2 ),  m = number of components summed.
// With tangents, |.| includes the partials and m counts the components only (as OrdinaryDiffEq does).
// `count` limits the norm to the first `count` components (forward mode without S in the norm).
template <class T>
inline double error_norm(const T* err, const T* y0, const T* y1, int n, int count, const Options& o, bool tangents) {
    double sum = 0.0;
    for (int i = 0; i < count; ++i) {
        const double scale = o.atol + o.rtol * std::max(magnitude(y0[i], tangents), magnitude(y1[i], tangents));
        sum += squares(err[i], tangents) / (scale * scale);
    }
    (void)n;
    return std::sqrt(sum / std::max(count, 1));
}

// Whether two scalars are the same: equal value and, for duals, equal partials (decides reuse of matrices).
inline bool identical(double a, double b) { return a == b; }
inline bool identical(long double a, long double b) { return a == b; }
template <class T, int P> inline bool identical(const Dual<T, P>& a, const Dual<T, P>& b) {
    if (!identical(a.v, b.v)) return false;
    for (int i = 0; i < P; ++i) if (!identical(a.d[i], b.d[i])) return false;
    return true;
}

// Scalars whose linear systems are solved staggered (symsens_implicit.hpp, symsens_sparse.hpp): Dual<double, P>.
// A x = b over duals is x.v = A.v^-1 b.v and x.d_j = A.v^-1 (b.d_j - A.d_j x.v): one LU of the values, reused
// for every partial, instead of an LU carried out in dual arithmetic (about 2P + 1 times the work).  The values
// are computed by the very LU and substitution the plain double solve runs, so they are bit-identical to it.
template <class T> struct staggered_duals : std::false_type { static constexpr int partials = 0; };
template <int P> struct staggered_duals<Dual<double, P>> : std::true_type { static constexpr int partials = P; };

// ---- dense LU with partial pivoting (pivot chosen on values, so it is identical for every T) -----------
template <class T>
struct Lu {
    int n = 0;
    std::vector<T> a;
    std::vector<int> pivot;
    bool factor(const T* matrix, int size) {
        n = size;
        a.assign(matrix, matrix + size * size);
        pivot.resize(size);
        for (int k = 0; k < n; ++k) {
            int p = k;
            double best = std::fabs(value_of(a[k * n + k]));
            for (int i = k + 1; i < n; ++i) {
                const double v = std::fabs(value_of(a[i * n + k]));
                if (v > best) { best = v; p = i; }
            }
            pivot[k] = p;
            if (best == 0.0 || !std::isfinite(best)) return false;
            if (p != k) for (int j = 0; j < n; ++j) std::swap(a[k * n + j], a[p * n + j]);
            const T inv = T(1) / a[k * n + k];
            for (int i = k + 1; i < n; ++i) {
                const T m = a[i * n + k] * inv;
                a[i * n + k] = m;
                // A structurally zero multiplier (value and all partials zero) changes nothing: skip the row,
                // which saves most of the work on the sparse Jacobians of real models.
                if (value_of(m) == 0.0 && identical(m, T(0.0))) continue;
                for (int j = k + 1; j < n; ++j) a[i * n + j] = a[i * n + j] - m * a[k * n + j];
            }
        }
        return true;
    }
    // Solve in place: x <- A^-1 x.  factor() swaps whole rows (multipliers included), so it stores
    // P A = L U with P the product of all swaps: apply P to x first, then substitute.
    void solve(T* x) const {
        for (int k = 0; k < n; ++k)
            if (pivot[k] != k) std::swap(x[k], x[pivot[k]]);
        for (int k = 0; k < n; ++k)
            for (int i = k + 1; i < n; ++i) x[i] = x[i] - a[i * n + k] * x[k];
        for (int k = n - 1; k >= 0; --k) {
            for (int j = k + 1; j < n; ++j) x[k] = x[k] - a[k * n + j] * x[j];
            x[k] = x[k] / a[k * n + k];
        }
    }
};

// ---- problems ------------------------------------------------------------------------------------------
// A problem exposes: dimension(), error_components() (how many leading components the norm may weigh),
// rhs(t, y, f), jacobian(t, y, J) (dense row-major), and counts evaluations in Stats.
// Model is a policy struct with static templated rhs/jacobian/augmented_rhs (see codegen's driver).
template <class Model, class T>
struct ModelProblem {
    using model_type = Model;
    const T* p;          // all model parameters (duals seeded for the discrete mode)
    Stats* stats;
    int dimension() const { return Model::n_states; }
    int error_components() const { return Model::n_states; }
    template <class Time> void rhs(const Time& t, const T* y, T* f) const { ++stats->nfev; Model::rhs(T(t), y, p, f); }
    template <class Time> void jacobian(const Time& t, const T* y, T* J) const { ++stats->njev; Model::jacobian(T(t), y, p, J); }
    // The structural non-zeros of J in the model's CSR order (sparse builds only).
    template <class Time> void jacobian_values(const Time& t, const T* y, T* v) const {
        ++stats->njev;
        Model::jacobian_values(T(t), y, p, v);
    }
};
template <class Model, class T, int P>
struct ModelProblem<Model, Dual<T, P>> {
    using D = Dual<T, P>;
    using model_type = Model;
    const D* p;
    Stats* stats;
    int dimension() const { return Model::n_states; }
    int error_components() const { return Model::n_states; }
    void rhs(const double& t, const D* y, D* f) const { ++stats->nfev; Model::rhs(D(t), y, p, f); }
    void rhs(const D& t, const D* y, D* f) const { ++stats->nfev; Model::rhs(t, y, p, f); }
    void jacobian(const double& t, const D* y, D* J) const { ++stats->njev; Model::jacobian(D(t), y, p, J); }
    void jacobian(const D& t, const D* y, D* J) const { ++stats->njev; Model::jacobian(t, y, p, J); }
    void jacobian_values(const double& t, const D* y, D* v) const { ++stats->njev; Model::jacobian_values(D(t), y, p, v); }
    void jacobian_values(const D& t, const D* y, D* v) const { ++stats->njev; Model::jacobian_values(t, y, p, v); }
};

// Whether a Model policy carries the generated sparsity constants (symsens/codegen/_sparsity.py).
template <class Model, class = void> struct has_sparsity : std::false_type {};
template <class Model> struct has_sparsity<Model, std::void_t<typename Model::sparsity>> : std::true_type {};

// Continuous forward sensitivities: u = (y, S[:,0], ..., S[:,P-1]) with S' = J S + F_p (double only).
// The Jacobian of the augmented system is block lower triangular, [[J, 0], [D_j, J]], with
// D_j = d(J S + F_p)[:, j]/dy; it is formed exactly by forward differentiation over duals seeded in y (of J's
// non-zeros and F_p, see coupling_blocks, for a model with its sparsity; else of augmented_rhs).
template <class Model>
struct AugmentedProblem {
    using model_type = Model;
    static constexpr int n = Model::n_states;
    static constexpr int np = Model::n_sensitivity_parameters;
    const double* p;
    Stats* stats;
    bool sensitivities_in_norm;
    int dimension() const { return n * (np + 1); }
    int error_components() const { return sensitivities_in_norm ? n * (np + 1) : n; }
    void rhs(double t, const double* u, double* g) const { ++stats->nfev; Model::augmented_rhs(t, u, p, g); }
    // The whole N x N Jacobian (the contract of a problem's jacobian()).
    void jacobian(double t, const double* u, double* M) const {
        const int N = dimension();
        std::fill(M, M + N * N, 0.0);
        used_jacobian(t, u, M);
        for (int b = 1; b <= np; ++b)
            for (int i = 0; i < n; ++i)
                for (int k = 0; k < n; ++k) M[(b * n + i) * N + b * n + k] = M[i * N + k];
    }
    // Only the entries the block solvers read (IterationMatrix): J in the leading n x n block and the coupling
    // rows D_j in the first n columns (within D's pattern when it is known); the others are left as they are
    // (the caller's buffer holds zeros there and nothing else writes them).  With a generated model that
    // carries its sparsity, D comes from coupling_blocks (compressed forward differentiation over the colours
    // of D's columns) instead of augmented_rhs over Dual<double, n>.
    void used_jacobian(double t, const double* u, double* M) const {
        ++stats->njev;
        const int N = dimension();
        std::vector<double> J(n * n);
        Model::jacobian(t, u, p, J.data());
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < n; ++k) M[i * N + k] = J[i * n + k];
        if constexpr (has_sparsity<Model>::value) {
            // Only D's pattern is written; the rest of the coupling rows stays zero.
            const int* columns = Model::sparsity::coupling_columns();
            coupling_blocks(t, u, [&](int j, int i, int q, double value) {
                M[(n + j * n + i) * N + columns[q]] = value;
            });
        } else {
            using D = Dual<double, n>;
            std::vector<D> ud(N), gd(N), pd(Model::n_parameters);
            for (int k = 0; k < Model::n_parameters; ++k) pd[k] = D(p[k]);
            for (int k = 0; k < N; ++k) ud[k] = D(u[k]);
            for (int l = 0; l < n; ++l) ud[l].d[l] = 1.0;
            Model::augmented_rhs(D(t), ud.data(), pd.data(), gd.data());
            for (int r = n; r < N; ++r)
                for (int l = 0; l < n; ++l) M[r * N + l] = gd[r].d[l];
        }
    }
    // Sparse builds: J's non-zeros (generated code) and the coupling blocks D_j over their shared pattern
    // (Dv[j * coupling_nnz + q]) from coupling_blocks, with no N x N matrix.
    void sparse_jacobian(double t, const double* u, double* Jv, double* Dv) const {
        using S = typename Model::sparsity;
        ++stats->njev;
        Model::jacobian_values(t, u, p, Jv);
        coupling_blocks(t, u, [&](int j, int, int q, double value) { Dv[j * S::coupling_nnz + q] = value; });
    }
    // D_j = d(J S_j + F_p[:, j])/dy over its pattern (row i: columns coupling_columns[q], q in
    // coupling_row_ptr[i] .. coupling_row_ptr[i + 1]), by compressed forward differentiation (Curtis, Powell &
    // Reid 1974): one evaluation of J's non-zeros and of F_p over Dual<double, colours>, y seeded with the colour
    // of each state.  Row i of D_j depends on y_l only for the columns l of its pattern, which have distinct
    // colours, and so does every J_ik and Fp_ij of that row (the pattern is their union, symsens/codegen/
    // _sparsity.py); the colour-c partial of J_ik is therefore dJ_ik/dy_l for the one column l of colour c, and
    //     D_j[i, l] = sum_k dJ_ik/dy_l S_kj + dFp_ij/dy_l
    // is exact.  Differentiating augmented_rhs instead gives the same numbers, but its dual instantiation is
    // the largest function of a library (8.6 of the 10.6 s of compiler CPU for the 13-state calcium neuron's
    // Rosenbrock library with 13 parameters); J and F_p over the same duals take 2.5 s.
    template <class Emit>
    void coupling_blocks(double t, const double* u, Emit&& emit) const {
        using S = typename Model::sparsity;
        using D = Dual<double, S::coupling_colors>;
        const int* colors = S::colors();
        std::vector<D> yd(n), jd(S::nnz > 0 ? S::nnz : 1), fd(n * np), pd(Model::n_parameters);
        for (int k = 0; k < Model::n_parameters; ++k) pd[k] = D(p[k]);
        for (int l = 0; l < n; ++l) {
            yd[l] = D(u[l]);
            yd[l].d[colors[l]] = 1.0;
        }
        Model::jacobian_values(D(t), yd.data(), pd.data(), jd.data());
        Model::parameter_jacobian(D(t), yd.data(), pd.data(), fd.data());
        const int* row_ptr = S::row_ptr();
        const int* columns = S::columns();
        const int* coupling_row_ptr = S::coupling_row_ptr();
        const int* coupling_columns = S::coupling_columns();
        for (int j = 0; j < np; ++j) {
            const double* s = u + n + j * n;
            for (int i = 0; i < n; ++i)
                for (int q = coupling_row_ptr[i]; q < coupling_row_ptr[i + 1]; ++q) {
                    const int c = colors[coupling_columns[q]];
                    double value = fd[i * np + j].d[c];
                    for (int r = row_ptr[i]; r < row_ptr[i + 1]; ++r) value += jd[r].d[c] * s[columns[r]];
                    emit(j, i, q, value);
                }
        }
    }
};

// ---- recorder: accepted steps and outputs ----------------------------------------------------------------
// Outputs at t_eval are taken from the cubic Hermite interpolant of each accepted step
// (y0, f0, y1, f1 on [t0, t0 + h]), or copied when a step ends exactly on an output time.
template <class T, class Time>
struct Recorder {
    const double* t_eval;
    long n_eval;
    long next = 0;
    int dimension;
    T* out;                          // n_eval x dimension
    std::vector<double> step_times;  // values of accepted step ends, starting with t0
    std::vector<double> step_sizes;
    bool record;
    bool at_steps = false;           // outputs at t0 and at every accepted step end instead of at t_eval

    // The next output slot gets y (a no-op once the buffer is full: the caller sees the count and retries).
    void store(const T* y) {
        if (next < n_eval) for (int i = 0; i < dimension; ++i) out[next * dimension + i] = y[i];
        ++next;
    }

    void start(double t0) { if (record) step_times.push_back(t0); }
    // t0 and the outputs at t0, before any step: a run that fails on its first step still reports y(t0), and
    // never a row it did not reach.  (The same values the first step would copy: y0 itself.)
    void start(double t0, const T* y) {
        start(t0);
        if (at_steps) { store(y); return; }
        while (next < n_eval && t_eval[next] <= t0) {
            if (t_eval[next] == t0) for (int i = 0; i < dimension; ++i) out[next * dimension + i] = y[i];
            ++next;
        }
    }
    void accept(const Time& t0, const Time& h) {
        if (record) { step_times.push_back(value_of(t0 + h)); step_sizes.push_back(value_of(h)); }
    }
    // Outputs inside (t0, t0 + h] (and t0 itself for the first step) from the Hermite interpolant.
    void output(const Time& t0, const Time& h, const T* y0, const T* f0, const T* y1, const T* f1, bool first) {
        if (at_steps) {
            // t0 itself was stored by start(t0, y0), unless the caller drives the recorder without it.
            if (first && next == 0) store(y0);
            store(y1);
            return;
        }
        const double t_end = value_of(t0 + h);
        while (next < n_eval && (t_eval[next] < t_end || t_eval[next] == t_end)) {
            const double te = t_eval[next];
            if (te < value_of(t0) || (te == value_of(t0) && !first)) { ++next; continue; }
            T* dst = out + next * dimension;
            if (te == t_end) {
                for (int i = 0; i < dimension; ++i) dst[i] = y1[i];
            } else if (te == value_of(t0)) {
                for (int i = 0; i < dimension; ++i) dst[i] = y0[i];
            } else {
                // theta = (te - t0)/h carries h's partials when step sizes are differentiated.
                const Time theta = (Time(te) - t0) / h;
                const Time h00 = (Time(1) + Time(2) * theta) * (Time(1) - theta) * (Time(1) - theta);
                const Time h10 = theta * (Time(1) - theta) * (Time(1) - theta);
                const Time h01 = theta * theta * (Time(3) - Time(2) * theta);
                const Time h11 = theta * theta * (theta - Time(1));
                for (int i = 0; i < dimension; ++i)
                    dst[i] = T(h00) * y0[i] + T(h10 * h) * f0[i] + T(h01) * y1[i] + T(h11 * h) * f1[i];
            }
            ++next;
        }
    }
};

// ---- Hairer's initial step (HNW I, Sect. II.4) ----------------------------------------------------------
// *non_finite (when given) is set if the trial evaluation f(t0 + h0, y0 + h0 f0) is not finite: the step it
// returns is then meaningless (often 0), and a failure that follows is caused by non-finite values.
template <class Problem, class T>
double initial_step(const Problem& problem, double t0, double t1, const T* y0, const T* f0, int order, const Options& o,
                    bool tangents, bool* non_finite = nullptr) {
    const int n = problem.dimension();
    const int m = problem.error_components();
    double d0 = 0, d1 = 0;
    for (int i = 0; i < m; ++i) {
        const double sc = o.atol + o.rtol * magnitude(y0[i], tangents);
        d0 += squares(y0[i], tangents) / (sc * sc);
        d1 += squares(f0[i], tangents) / (sc * sc);
    }
    d0 = std::sqrt(d0 / m);
    d1 = std::sqrt(d1 / m);
    const double span = std::fabs(t1 - t0);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, span);
    std::vector<T> y1(n), f1(n);
    for (int i = 0; i < n; ++i) y1[i] = y0[i] + T(h0) * f0[i];
    problem.rhs(t0 + h0, y1.data(), f1.data());
    if (non_finite && !values_finite(f1.data(), n)) *non_finite = true;
    double d2 = 0;
    for (int i = 0; i < m; ++i) {
        const double sc = o.atol + o.rtol * magnitude(y0[i], tangents);
        T diff = f1[i] - f0[i];
        d2 += squares(diff, tangents) / (sc * sc);
    }
    d2 = std::sqrt(d2 / m) / h0;
    const double dmax = std::max(d1, d2);
    const double h1 = dmax <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / dmax, 1.0 / (order + 1));
    double h = std::min(100 * h0, h1);
    if (o.max_step > 0) h = std::min(h, o.max_step);
    return std::min(h, span);
}

}  // namespace symsens

namespace symsens {

// ---- the step loop of one-step methods ---------------------------------------------------------------------
// A Stepper (explicit RK, SDIRK/ESDIRK, Radau IIA, Rosenbrock) exposes
//     int error_order() const;   // q + 1, where q is the lower order of the embedded pair: err ~ h^(q+1)
//     template <class Time>
//     int attempt(const Problem&, const Time& t, const Time& h, const T* y, const T* f,
//                 T* y_new, T* f_new, T* err);
// attempt() takes one step of size h from (t, y) with f = f(t, y), writes the new value, f(t + h, y_new)
// and the local error estimate; it returns STATUS_SUCCESS, STATUS_NEWTON_FAILURE (retry with a smaller
// step) or STATUS_NON_FINITE.  Steppers that keep an iteration matrix decide themselves when to refresh it
// (they are told of rejections through notify_rejected()).
//
// Time is double, or T when the step sizes are differentiated (then the controller's error estimate is
// computed as a T, so the derivative of h with respect to the parameters flows through the controller).
template <class T, class Time>
inline Time controller_error(const T* err, const T* y0, const T* y1, int n, int count, const Options& o) {
    if constexpr (std::is_same<Time, double>::value) {
        return error_norm(err, y0, y1, n, count, o, o.tangents_in_norm != 0);
    } else {
        // The same norm carried out in T, operation for operation as error_norm() does it, so that its value is
        // bit-identical and the differentiated solve takes the plain solve's steps (values only in the scale).
        T sum(0.0);
        for (int i = 0; i < count; ++i) {
            const T a0 = abs(y0[i]);
            const T a1 = abs(y1[i]);
            const T scale = T(o.atol) + T(o.rtol) * (value_of(a0) < value_of(a1) ? a1 : a0);
            sum = sum + (err[i] * err[i]) / (scale * scale);
        }
        // sqrt has an infinite derivative at 0: a vanishing error estimate (e.g. y' = 0) gives a constant.
        if (value_of(sum) == 0.0) return Time(0.0);
        Time norm = sqrt(sum / T(double(std::max(count, 1))));
        // Tangents in the norm: the controller sees the same value as in mode 2 (the norm over values and
        // partials); its derivative stays that of the values-only norm (the tangent norm's own derivative would
        // need second derivatives, which no forward-mode tool carries).
        if constexpr (is_dual<Time>::value) {
            if (o.tangents_in_norm) norm.v = error_norm(err, y0, y1, n, count, o, true);
        }
        return norm;
    }
}

template <class Time> inline Time clamp_factor(const Time& f, double lo, double hi) {
    if (value_of(f) < lo) return Time(lo);
    if (value_of(f) > hi) return Time(hi);
    return f;
}

template <class T, class Time, class Problem, class Stepper>
int drive(const Problem& problem, Stepper& stepper, double t0, double t1, T* y, const Options& o,
          Recorder<T, Time>& recorder, Stats& stats) {
    const int n = problem.dimension();
    const int m = problem.error_components();
    const bool tangents = o.tangents_in_norm != 0;
    std::vector<T> f(n), y_new(n), f_new(n), err(n);
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
    // An attempt since the last accepted step (or the initial step selection) gave non-finite values: if the step
    // size then underflows, that is the cause (the step size only shrank because of them), reported as such.
    bool non_finite_attempt = false;
    Time h;
    if (o.n_replay > 0) {
        h = Time(o.replay_steps[0]);
    } else if (o.first_step > 0) {
        h = Time(direction * o.first_step);
    } else {
        h = Time(direction * initial_step(problem, t0, t1, y, f.data(), stepper.error_order(), o, tangents,
                                          &non_finite_attempt));
    }
    double previous_error = 1e-4;
    bool first = true;
    long replay_index = 0;
    const bool adaptive = o.n_replay == 0 && !o.fixed_step;
    auto give_up = [&](double when) {
        return fail(non_finite_attempt ? STATUS_NON_FINITE : STATUS_STEP_SIZE_UNDERFLOW, when);
    };
    while (direction * (t1 - value_of(t)) > 0) {
        if (stats.accepted + stats.rejected >= o.max_steps) return fail(STATUS_TOO_MANY_STEPS, value_of(t));
        if (o.n_replay > 0) {
            if (replay_index >= o.n_replay) break;  // the recorded sequence ends where the original did
            // The last replayed step lands on t1 exactly (the caller checked that the steps sum to t1 - t0 up to
            // rounding); for a recorded sequence this is the very step recorded, t1 - t.
            h = replay_index + 1 == o.n_replay ? Time(t1 - value_of(t)) : Time(o.replay_steps[replay_index]);
        } else {
            // Fixed steps: every step starts from the given size (a step shortened to land on an output time
            // must not shrink the ones after it).
            if (o.fixed_step) h = Time(direction * o.first_step);
            if (o.max_step > 0 && std::fabs(value_of(h)) > o.max_step) h = Time(direction * o.max_step);
            if (o.step_onto_outputs && !recorder.at_steps && recorder.next < recorder.n_eval) {
                const double target = recorder.t_eval[recorder.next];
                if (direction * (target - value_of(t)) > 0 && direction * (value_of(t + h) - target) > 0)
                    h = Time(target) - t;
            }
            // Land exactly on t1 (and do not leave a sliver of a step behind it).
            if (direction * (value_of(t + h) - t1) >= 0 || direction * (value_of(t + Time(1.01) * h) - t1) > 0)
                h = Time(t1) - t;
        }
        const double min_step = std::max(o.min_step, 16 * std::numeric_limits<double>::epsilon() * std::fabs(value_of(t)));
        // A step must advance t: a nan step, or one below the spacing of doubles at t (t + h == t: accepting
        // it would repeat forever), is a step size underflow, in every mode.
        if ((adaptive && !(std::fabs(value_of(h)) >= min_step)) || !(std::fabs(value_of(h)) > 0.0) ||
            value_of(t + h) == value_of(t))
            return give_up(value_of(t));
        int status = stepper.attempt(problem, t, h, y, f.data(), y_new.data(), f_new.data(), err.data());
        bool finite = status == STATUS_SUCCESS;
        if (finite) for (int i = 0; i < n; ++i) if (!is_finite(y_new[i])) { finite = false; break; }
        // f(t + h, y_new) is the next step's first stage: a nan there must not be carried into it.
        if (finite && !values_finite(f_new.data(), n)) finite = false;
        Time error(0.0);
        if (finite) {
            error = controller_error<T, Time>(err.data(), y, y_new.data(), n, m, o);
            // A nan error estimate (a nan stage that only the estimate uses) would make the next step size nan.
            if (adaptive && !std::isfinite(value_of(error))) finite = false;
        }
        if (!finite) {
            if (status != STATUS_NEWTON_FAILURE) non_finite_attempt = true;
            if (!adaptive)
                return fail(status == STATUS_NEWTON_FAILURE ? STATUS_NEWTON_FAILURE : STATUS_NON_FINITE, value_of(t));
            ++stats.rejected;
            stepper.notify_rejected();
            h = h * Time(0.25);
            continue;
        }
        const bool accept = !adaptive || value_of(error) <= 1.0;
        if (accept) {
            non_finite_attempt = false;
            recorder.output(t, h, y, f.data(), y_new.data(), f_new.data(), first);
            recorder.accept(t, h);
            first = false;
            ++stats.accepted;
            t = t + h;
            if (o.n_replay > 0) ++replay_index;
            for (int i = 0; i < n; ++i) { y[i] = y_new[i]; f[i] = f_new[i]; }
            if (!o.fixed_step && o.n_replay == 0) {
                const double e = std::max(value_of(error), 1e-10);
                Time factor = Time(o.safety) * pow(value_of(error) < 1e-10 ? Time(e) : error, Time(-o.beta1))
                              * Time(std::pow(previous_error, o.beta2));
                previous_error = std::max(value_of(error), 1e-4);
                h = h * clamp_factor(factor, o.factor_min, o.factor_max);
            }
            stepper.notify_accepted();
        } else {
            ++stats.rejected;
            stepper.notify_rejected();
            Time factor = Time(o.safety) * pow(error, Time(-1.0 / stepper.error_order()));
            h = h * clamp_factor(factor, o.factor_min, 1.0);
        }
    }
    stats.status = STATUS_SUCCESS;
    return STATUS_SUCCESS;
}

}  // namespace symsens
