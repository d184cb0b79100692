// symsens continuous adjoint, interpolating variant (compiled).
//
// For L = sum_k l(t_k, y(t_k), p; d_k) the adjoint lambda(t) solves, backwards from t1,
//     lambda' = -J(t, y(t))^T lambda,   lambda(t_k-) = lambda(t_k+) + (dl/dy)^T(t_k),
// and dL/dp = (dy0/dp)^T lambda(t0) + mu + sum_k (dl/dp)^T(t_k) with mu = int_{t0}^{t1} F_p(t, y(t))^T lambda dt
// (Cao, Li, Petzold & Serban 2003; CVODES's adjoint module, Hindmarsh et al. 2005, Sect. 5).
//
// Where y(t) comes from: the forward solve's accepted step ends (t_k, y_k), with f_k = f(t_k, y_k) and
// y''_k = f_t + J f, joined by the quintic Hermite interpolant of each step (ForwardTrajectory).  CVODES's
// Hermite option stores y and f only (cubic, O(h^4)); the second derivative costs one forward-differentiated f
// per step and keeps the interpolant from limiting the adjoint of high-order schemes (O(h^6)).
//
// How lambda is integrated: in the reversed time s = -t, lambda_s = +J(-s, y(-s))^T lambda is an ordinary
// forward problem for every stepper the library has (explicit, SDIRK/ESDIRK, Radau IIA, Rosenbrock, BDF), with
// the adjoint's own tolerances, segment by segment between the data times (restarting with the jump at each).
// The problem is linear in lambda; it is as stiff as the forward one and, where the forward problem is
// dissipative, stable in s.
//
// How mu is integrated: not as P more unknowns of the stepper (an implicit stepper would factor an
// (n + P) x (n + P) matrix), but as a quadrature over each accepted backward step: lambda on the step is the
// quintic Hermite interpolant of its end values, slopes lambda_s = J^T lambda and second derivatives
// lambda_ss = (dJ/ds)^T lambda + J^T lambda_s (dJ/ds by one forward-differentiated J), and the three-point
// Gauss-Legendre rule (exact for degree 5) integrates F_p(t, y(t))^T lambda(t) (a generated transposed product,
// TransposedProducts) on every piece between the
// forward step ends inside the step (y, and F_p with it, can have a transient the smooth lambda steps over).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "symsens_solver.hpp"

namespace symsens {

// The transposed products of the model over its structural non-zeros (symsens/codegen/_vjp.py, a library of
// their own, passed in as function pointers): J^T v and F_p^T v for the gradient's P parameters, so that the
// adjoint library itself depends only on the model and the scheme, and P is a run-time number.
struct TransposedProducts {
    using Product = void (*)(double t, const double* y, const double* p, const double* v, double* out);
    Product state;       // out (n) = J(t, y, p)^T v
    Product parameters;  // out (P) = F_p(t, y, p)^T v
    int n_parameters;    // P
};

// The quintic Hermite basis on [0, 1]: p(theta) = w0 p(0) + w1 p'(0) + w2 p''(0) + w3 p(1) + w4 p'(1) + w5 p''(1)
// (derivatives in theta).
inline void quintic_hermite(double theta, double* w) {
    const double t2 = theta * theta, t3 = t2 * theta, t4 = t3 * theta, t5 = t4 * theta;
    w[0] = 1.0 - 10.0 * t3 + 15.0 * t4 - 6.0 * t5;
    w[1] = theta - 6.0 * t3 + 8.0 * t4 - 3.0 * t5;
    w[2] = 0.5 * (t2 - 3.0 * t3 + 3.0 * t4 - t5);
    w[3] = 10.0 * t3 - 15.0 * t4 + 6.0 * t5;
    w[4] = -4.0 * t3 + 7.0 * t4 - 3.0 * t5;
    w[5] = 0.5 * (t3 - 2.0 * t4 + t5);
}

// f(t, y) and y'' = d/dt f(t, y(t)) = f_t + J f along the solution through (t, y): f over duals seeded (1, f).
template <class Model>
void solution_derivatives(double t, const double* y, const double* p, double* f, double* second) {
    using D = Dual<double, 1>;
    constexpr int n = Model::n_states;
    Model::rhs(t, y, p, f);
    std::vector<D> pd(Model::n_parameters), yd(n), fd(n);
    for (int k = 0; k < Model::n_parameters; ++k) pd[k] = D(p[k]);
    for (int i = 0; i < n; ++i) { yd[i] = D(y[i]); yd[i].d[0] = f[i]; }
    Model::rhs(D::variable(t, 0), yd.data(), pd.data(), fd.data());
    for (int i = 0; i < n; ++i) second[i] = fd[i].d[0];
}

// In reversed time s = -t, lambda_s = J(t, y)^T lambda and lambda_ss = (dJ/ds)^T lambda + J^T lambda_s with
// dJ/ds = -dJ/dt along (1, f(t, y)): the total derivative by one evaluation of J over duals.
template <class Model>
void adjoint_derivatives(double t, const double* y, const double* p, const double* lambda, double* slope,
                         double* second) {
    using D = Dual<double, 1>;
    constexpr int n = Model::n_states;
    std::vector<double> f(n);
    Model::rhs(t, y, p, f.data());
    std::vector<D> pd(Model::n_parameters), yd(n), Jd(static_cast<size_t>(n) * n);
    for (int k = 0; k < Model::n_parameters; ++k) pd[k] = D(p[k]);
    for (int i = 0; i < n; ++i) { yd[i] = D(y[i]); yd[i].d[0] = f[i]; }
    Model::jacobian(D::variable(t, 0), yd.data(), pd.data(), Jd.data());
    for (int i = 0; i < n; ++i) {
        double value = 0.0;
        for (int k = 0; k < n; ++k) value += Jd[static_cast<size_t>(k) * n + i].v * lambda[k];
        slope[i] = value;
    }
    for (int i = 0; i < n; ++i) {
        double value = 0.0;
        for (int k = 0; k < n; ++k) {
            const D& entry = Jd[static_cast<size_t>(k) * n + i];
            value += -entry.d[0] * lambda[k] + entry.v * slope[k];
        }
        second[i] = value;
    }
}

// mu += int F_p(t, y)^T lambda dt over the piece [u, u + length] (in s) of a backward step [sa, sa + h]: lambda
// from its quintic Hermite data on the step, y from state_at(t, y), three-point Gauss-Legendre.
template <class Model, class StateAt>
void quadrature_piece(double sa, double h, double u, double length, const double* la, const double* slope_a,
                      const double* second_a, const double* lb, const double* slope_b, const double* second_b,
                      const double* p, const StateAt& state_at, const TransposedProducts& products, double* mu,
                      std::vector<double>& y, std::vector<double>& node, std::vector<double>& product, Stats& stats) {
    constexpr int n = Model::n_states;
    if (products.n_parameters == 0) return;
    // Gauss-Legendre on [0, 1]: nodes 1/2 -+ sqrt(15)/10 and 1/2, weights 5/18, 8/18, 5/18.
    const double offset = std::sqrt(15.0) / 10.0;
    const double nodes[3] = {0.5 - offset, 0.5, 0.5 + offset};
    const double weights[3] = {5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0};
    for (int q = 0; q < 3; ++q) {
        const double at = u + nodes[q] * length;
        double w[6];
        quintic_hermite((at - sa) / h, w);
        const double w1 = w[1] * h, w2 = w[2] * h * h, w4 = w[4] * h, w5 = w[5] * h * h;
        const double weight = weights[q] * length;
        for (int i = 0; i < n; ++i)
            node[i] = weight * (w[0] * la[i] + w1 * slope_a[i] + w2 * second_a[i] + w[3] * lb[i] + w4 * slope_b[i]
                                + w5 * second_b[i]);
        const double t = -at;
        state_at(t, y.data());
        ++stats.nfev;
        products.parameters(t, y.data(), p, node.data(), product.data());
        for (int j = 0; j < products.n_parameters; ++j) mu[j] += product[j];
    }
}

// y(t) of the forward solve from its accepted step ends (times increasing).
template <class Model>
struct ForwardTrajectory {
    static constexpr int n = Model::n_states;
    std::vector<double> t, y, f, g;   // g = y'' = f_t + J f
    mutable long last = 0;

    void build(const double* p, long count, const double* times, const double* states, Stats& stats) {
        t.assign(times, times + count);
        y.assign(states, states + count * n);
        f.assign(static_cast<size_t>(count) * n, 0.0);
        g.assign(static_cast<size_t>(count) * n, 0.0);
        for (long k = 0; k < count; ++k) {
            stats.nfev += 2;
            solution_derivatives<Model>(t[k], &y[k * n], p, &f[k * n], &g[k * n]);
        }
        last = 0;
    }

    // The step [t_k, t_k+1] holding s (clamped to the first or the last step).
    long locate(double s) const {
        const long count = static_cast<long>(t.size());
        if (count < 2) return 0;
        long k = std::min(std::max(last, 0L), count - 2);
        if (!(t[k] <= s && s <= t[k + 1])) {
            k = static_cast<long>(std::upper_bound(t.begin(), t.end(), s) - t.begin()) - 1;
            k = std::min(std::max(k, 0L), count - 2);
        }
        last = k;
        return k;
    }

    void at(double s, double* out) const {
        const long count = static_cast<long>(t.size());
        if (count < 2) {
            for (int i = 0; i < n; ++i) out[i] = y[i];
            return;
        }
        const long k = locate(s);
        const size_t a = static_cast<size_t>(k) * n, b = a + n;
        if (s == t[k + 1]) { for (int i = 0; i < n; ++i) out[i] = y[b + i]; return; }
        if (s == t[k]) { for (int i = 0; i < n; ++i) out[i] = y[a + i]; return; }
        const double h = t[k + 1] - t[k];
        double w[6];
        quintic_hermite((s - t[k]) / h, w);
        const double w1 = w[1] * h, w2 = w[2] * h * h, w4 = w[4] * h, w5 = w[5] * h * h;
        for (int i = 0; i < n; ++i)
            out[i] = w[0] * y[a + i] + w1 * f[a + i] + w2 * g[a + i] + w[3] * y[b + i] + w4 * f[b + i] + w5 * g[b + i];
    }
};

// lambda_s = J(t, y(t))^T lambda at t = -s: the adjoint in reversed time, a dense problem of dimension n.
template <class Model>
struct AdjointProblem {
    using model_type = AdjointProblem;  // no generated sparsity: the steppers take their dense paths
    static constexpr int n = Model::n_states;
    const double* p;
    Stats* stats;
    const ForwardTrajectory<Model>* trajectory;
    const TransposedProducts* products;
    mutable std::vector<double> y = std::vector<double>(n), J = std::vector<double>(static_cast<size_t>(n) * n);

    int dimension() const { return n; }
    int error_components() const { return n; }
    void state_jacobian(double s) const {
        trajectory->at(-s, y.data());
        Model::jacobian(-s, y.data(), p, J.data());
    }
    void rhs(double s, const double* lambda, double* out) const {
        ++stats->nfev;
        trajectory->at(-s, y.data());
        products->state(-s, y.data(), p, lambda, out);
    }
    void jacobian(double s, const double*, double* A) const {
        ++stats->njev;
        state_jacobian(s);
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < n; ++k) A[static_cast<size_t>(i) * n + k] = J[static_cast<size_t>(k) * n + i];
    }
    // lambda_s and lambda_ss at s (adjoint_derivatives), y from the forward interpolant.
    void derivatives(double s, const double* lambda, double* slope, double* second) const {
        ++stats->njev;
        trajectory->at(-s, y.data());
        adjoint_derivatives<Model>(-s, y.data(), p, lambda, slope, second);
    }
};

inline void add_stats(Stats& into, const Stats& part) {
    into.accepted += part.accepted;
    into.rejected += part.rejected;
    into.nfev += part.nfev;
    into.njev += part.njev;
    into.nlu += part.nlu;
    into.newton_iterations += part.newton_iterations;
}

// One backward segment from s0 to s1 with outputs at every accepted step end, starting from `start`: the
// buffers grow until they hold every step (the solver is deterministic, so a rerun takes the same steps).
// Returns the Status; `state` holds the end value, out/times the outputs, `count` their number, `segment`
// the segment's counters.
template <class Problem, class Run>
int backward_segment(const Run& run_segment, Problem& problem, const std::vector<double>& start, double s0, double s1,
                     Options& o, long& capacity, std::vector<double>& state, std::vector<double>& out,
                     std::vector<double>& times, std::vector<double>& sizes, long& count, Stats& segment) {
    const int dimension = problem.dimension();
    for (;;) {
        out.assign(static_cast<size_t>(capacity) * dimension, 0.0);
        times.assign(capacity, 0.0);
        sizes.assign(capacity, 0.0);
        o.step_capacity = capacity;
        segment = Stats{};
        problem.stats = &segment;
        state = start;
        const int status = run_segment(problem, state.data(), s0, s1, o, out.data(), capacity, times.data(),
                                       sizes.data(), &count, segment);
        if (status != STATUS_SUCCESS || count <= capacity) return status;
        capacity = count;
    }
}

// The options of a backward pass: outputs at every accepted step end, no replay, values-only norm.
inline Options backward_options(const Options& options) {
    Options o = options;
    o.outputs_at_steps = 1;
    o.record_steps = 1;
    o.n_replay = 0;
    o.replay_steps = nullptr;
    o.step_onto_outputs = 0;
    o.tangents_in_norm = 0;
    o.differentiate_steps = 0;
    return o;
}

// The backward pass.  run_segment(problem, lambda, s0, s1, options, out, capacity, step_times, step_sizes,
// &count, stats) integrates lambda in place from s0 to s1 with outputs at every accepted step end (the generated
// driver's run()).  stops: the restart times in decreasing order (the data times inside (t0, t1), then t0);
// jumps: n values per stop, added to lambda on reaching it.  Returns a Status; stats.t_failure is a time t.
template <class Model, class Run>
int continuous_adjoint(const Run& run_segment, const TransposedProducts& products, const double* p, long n_steps,
                       const double* step_times, const double* step_states, const double* lambda_t1, long n_stops,
                       const double* stops, const double* jumps, const Options& options, double* lambda_out,
                       double* mu_out, Stats& stats) {
    constexpr int n = Model::n_states;
    const int np = products.n_parameters;
    ForwardTrajectory<Model> trajectory;
    trajectory.build(p, n_steps, step_times, step_states, stats);
    AdjointProblem<Model> problem{p, &stats, &trajectory, &products};
    std::vector<double> lambda(lambda_t1, lambda_t1 + n), mu(np > 0 ? np : 1, 0.0), product(np > 0 ? np : 1);
    std::vector<double> y(n), node(n);
    std::vector<double> slope_a(n), slope_b(n), second_a(n), second_b(n), cuts;
    double t_current = step_times[n_steps - 1];
    long capacity = 256;
    std::vector<double> out, times, sizes;
    Options o = backward_options(options);
    for (long stop = 0; stop < n_stops; ++stop) {
        const double t_next = stops[stop];
        if (t_next < t_current) {
            long count = 0;
            Stats segment{};
            const std::vector<double> start(lambda);
            const int status = backward_segment(run_segment, problem, start, -t_current, -t_next, o, capacity, lambda,
                                                out, times, sizes, count, segment);
            if (status != STATUS_SUCCESS) {
                add_stats(stats, segment);
                stats.status = status;
                stats.t_failure = -segment.t_failure;
                return status;
            }
            // mu over the segment's steps (the quintic Hermite interpolant of lambda on each, Gauss-Legendre).
            problem.derivatives(times[0], &out[0], slope_a.data(), second_a.data());
            for (long k = 0; k + 1 < count; ++k) {
                const double sa = times[k], sb = times[k + 1], h = sb - sa;
                const double* la = &out[static_cast<size_t>(k) * n];
                const double* lb = &out[static_cast<size_t>(k + 1) * n];
                problem.derivatives(sb, lb, slope_b.data(), second_b.data());
                // The forward step ends inside the step cut it into pieces, each integrated by its own Gauss rule:
                // F_p(t, y(t)) follows y, which may change on a scale far shorter than lambda's step (a fast
                // transient that the backward pass, smooth there, steps over).
                cuts.clear();
                cuts.push_back(sa);
                {
                    const auto& forward_times = trajectory.t;
                    auto first = std::upper_bound(forward_times.begin(), forward_times.end(), -sb);
                    auto last = std::lower_bound(forward_times.begin(), forward_times.end(), -sa);
                    for (auto it = last; it != first;) {
                        --it;
                        cuts.push_back(-*it);
                    }
                }
                cuts.push_back(sb);
                const auto state_at = [&](double t, double* into) { trajectory.at(t, into); };
                for (size_t piece = 0; piece + 1 < cuts.size(); ++piece) {
                    const double u = cuts[piece], length = cuts[piece + 1] - u;
                    if (!(length > 0.0)) continue;
                    quadrature_piece<Model>(sa, h, u, length, la, slope_a.data(), second_a.data(), lb, slope_b.data(),
                                            second_b.data(), p, state_at, products, mu.data(), y, node, product,
                                            segment);
                }
                slope_a.swap(slope_b);
                second_a.swap(second_b);
            }
            add_stats(stats, segment);
            problem.stats = &stats;
            t_current = t_next;
        }
        for (int i = 0; i < n; ++i) lambda[i] += jumps[static_cast<size_t>(stop) * n + i];
    }
    for (int i = 0; i < n; ++i) lambda_out[i] = lambda[i];
    for (int j = 0; j < np; ++j) mu_out[j] = mu[j];
    stats.status = STATUS_SUCCESS;
    return STATUS_SUCCESS;
}

// ---- backsolve -----------------------------------------------------------------------------------------------
// (y, lambda) integrated backwards together from (y(t1), lambda(t1)) (Chen et al. 2018, Algorithm 1; torchdiffeq's
// odeint_adjoint, diffrax's BacksolveAdjoint): in s = -t,
//     y_s = -f(t, y),   lambda_s = J(t, y)^T lambda,
// with the Jacobian [[-J, 0], [H, J^T]], H_il = sum_k dJ_ki/dy_l lambda_k (J over duals seeded in y).  At each
// data time y is reset to the forward value there (as torchdiffeq does) and the distance of the reconstruction
// from it is recorded: running y' = f backwards turns the decaying modes of the forward problem into growing
// ones, so on stiff problems the reconstruction, and the gradient with it, go wrong.
template <class Model>
struct BacksolveProblem {
    using model_type = BacksolveProblem;
    static constexpr int n = Model::n_states;
    const double* p;
    Stats* stats;
    const TransposedProducts* products;

    int dimension() const { return 2 * n; }
    int error_components() const { return 2 * n; }
    void rhs(double s, const double* z, double* out) const {
        ++stats->nfev;
        Model::rhs(-s, z, p, out);
        for (int i = 0; i < n; ++i) out[i] = -out[i];
        products->state(-s, z, p, z + n, out + n);
    }
    void jacobian(double s, const double* z, double* A) const {
        using D = Dual<double, n>;
        ++stats->njev;
        const int N = 2 * n;
        std::vector<D> pd(Model::n_parameters), yd(n), Jd(static_cast<size_t>(n) * n);
        for (int k = 0; k < Model::n_parameters; ++k) pd[k] = D(p[k]);
        for (int l = 0; l < n; ++l) yd[l] = D::variable(z[l], l);
        Model::jacobian(D(-s), yd.data(), pd.data(), Jd.data());
        const double* lambda = z + n;
        std::fill(A, A + static_cast<size_t>(N) * N, 0.0);
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < n; ++k) {
                A[static_cast<size_t>(i) * N + k] = -Jd[static_cast<size_t>(i) * n + k].v;
                A[static_cast<size_t>(n + i) * N + n + k] = Jd[static_cast<size_t>(k) * n + i].v;
            }
        for (int k = 0; k < n; ++k) {
            const double l = lambda[k];
            if (l == 0.0) continue;
            for (int i = 0; i < n; ++i) {
                const D& entry = Jd[static_cast<size_t>(k) * n + i];
                for (int m = 0; m < n; ++m) A[static_cast<size_t>(n + i) * N + m] += entry.d[m] * l;
            }
        }
    }
};

// stops and jumps as for continuous_adjoint; stop_states: the forward solution at each stop (n per stop), where
// y is reset; errors_out: max_i |y_i reconstructed - y_i forward| / scale at each stop reached.
template <class Model, class Run>
int backsolve_adjoint(const Run& run_segment, const TransposedProducts& products, const double* p, double t1,
                      const double* y_t1, const double* lambda_t1, long n_stops, const double* stops,
                      const double* stop_states, const double* jumps, double scale, const Options& options,
                      double* lambda_out, double* mu_out, double* errors_out, long* n_errors, Stats& stats) {
    constexpr int n = Model::n_states;
    const int np = products.n_parameters;
    BacksolveProblem<Model> problem{p, &stats, &products};
    std::vector<double> z(2 * n), mu(np > 0 ? np : 1, 0.0), product(np > 0 ? np : 1);
    for (int i = 0; i < n; ++i) { z[i] = y_t1[i]; z[n + i] = lambda_t1[i]; }
    std::vector<double> y(n), node(n);
    std::vector<double> slope_a(n), slope_b(n), second_a(n), second_b(n);
    std::vector<double> yf_a(n), yg_a(n), yf_b(n), yg_b(n);
    double t_current = t1;
    long capacity = 256;
    std::vector<double> out, times, sizes;
    Options o = backward_options(options);
    *n_errors = 0;
    for (long stop = 0; stop < n_stops; ++stop) {
        const double t_next = stops[stop];
        const double* target = stop_states + static_cast<size_t>(stop) * n;
        if (t_next < t_current) {
            long count = 0;
            Stats segment{};
            const std::vector<double> start(z);
            const int status = backward_segment(run_segment, problem, start, -t_current, -t_next, o, capacity, z, out,
                                                times, sizes, count, segment);
            if (status != STATUS_SUCCESS) {
                add_stats(stats, segment);
                stats.status = status;
                stats.t_failure = -segment.t_failure;
                return status;
            }
            // mu over the steps: y and lambda both from their quintic Hermite data on each step (y_s = -f,
            // y_ss = f_t + J f; lambda_s, lambda_ss as in the interpolating adjoint), at the reconstructed y.
            auto ends = [&](long k, double* yf, double* yg, double* slope, double* second) {
                const double* zk = &out[static_cast<size_t>(k) * 2 * n];
                segment.nfev += 2;
                ++segment.njev;
                solution_derivatives<Model>(-times[k], zk, p, yf, yg);
                adjoint_derivatives<Model>(-times[k], zk, p, zk + n, slope, second);
            };
            ends(0, yf_a.data(), yg_a.data(), slope_a.data(), second_a.data());
            for (long k = 0; k + 1 < count; ++k) {
                const double sa = times[k], sb = times[k + 1], h = sb - sa;
                const double* za = &out[static_cast<size_t>(k) * 2 * n];
                const double* zb = &out[static_cast<size_t>(k + 1) * 2 * n];
                ends(k + 1, yf_b.data(), yg_b.data(), slope_b.data(), second_b.data());
                const auto state_at = [&](double t, double* into) {
                    double w[6];
                    quintic_hermite((-t - sa) / h, w);
                    const double w1 = w[1] * h, w2 = w[2] * h * h, w4 = w[4] * h, w5 = w[5] * h * h;
                    // dy/ds = -f, d2y/ds2 = y'' (even in the direction of time).
                    for (int i = 0; i < n; ++i)
                        into[i] = w[0] * za[i] - w1 * yf_a[i] + w2 * yg_a[i] + w[3] * zb[i] - w4 * yf_b[i] + w5 * yg_b[i];
                };
                quadrature_piece<Model>(sa, h, sa, h, za + n, slope_a.data(), second_a.data(), zb + n, slope_b.data(),
                                        second_b.data(), p, state_at, products, mu.data(), y, node, product, segment);
                yf_a.swap(yf_b);
                yg_a.swap(yg_b);
                slope_a.swap(slope_b);
                second_a.swap(second_b);
            }
            add_stats(stats, segment);
            problem.stats = &stats;
            double distance = 0.0;
            for (int i = 0; i < n; ++i) distance = std::max(distance, std::fabs(z[i] - target[i]));
            errors_out[(*n_errors)++] = n > 0 ? distance / scale : 0.0;
            t_current = t_next;
        }
        for (int i = 0; i < n; ++i) {
            z[i] = target[i];  // torchdiffeq: continue from the forward value at the data time
            z[n + i] += jumps[static_cast<size_t>(stop) * n + i];
        }
    }
    for (int i = 0; i < n; ++i) lambda_out[i] = z[n + i];
    for (int j = 0; j < np; ++j) mu_out[j] = mu[j];
    stats.status = STATUS_SUCCESS;
    return STATUS_SUCCESS;
}

}  // namespace symsens
