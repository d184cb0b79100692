// The test suite every one-step implicit method runs (SDIRK/ESDIRK, Radau IIA, Rosenbrock), over a factory
//
//   struct F { static constexpr const char* name; static constexpr int error_order;
//              template <class T> static auto make(int n, const symsens::Options& o, bool autonomous); };
//
// Output: JSON lines (see tests/test_implicit_steppers.py for what is asserted).
#pragma once

#include "implicit_common.hpp"

namespace test {

inline const std::vector<int>& order_step_counts() {
    static const std::vector<int> counts{3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 90, 128, 181, 256};
    return counts;
}

// Fixed steps on y' = lambda y and on the nonlinear closed-form problem: global error at t1.
template <class F>
void order_suite() {
    for (int N : order_step_counts()) {
        const double lambda = -2.0, t1 = 1.0, h = t1 / N;
        const auto o = fixed_options(h, F::error_order);
        auto stepper = F::template make<double>(1, o, true);
        auto r = run_one_step<double, double, Linear>(stepper, {lambda}, {1.0}, 0.0, t1, o);
        const double e = std::fabs(r.y[0] - Linear::exact(t1, lambda)[0]);
        Json().add("kind", "order").add("method", F::name).add("problem", "linear").add("n", N).add("h", h)
            .add("error", e).add("status", r.status).print();
    }
    for (int N : order_step_counts()) {
        const double a = 1.0, t1 = 1.0, h = t1 / N;
        const auto o = fixed_options(h, F::error_order);
        auto stepper = F::template make<double>(2, o, false);
        auto r = run_one_step<double, double, Nonlinear>(stepper, {a}, {1.0, 1.0}, 0.0, t1, o);
        const auto ex = Nonlinear::exact(t1, a);
        const double e = std::max(std::fabs(r.y[0] - ex[0]), std::fabs(r.y[1] - ex[1]));
        Json().add("kind", "order").add("method", F::name).add("problem", "nonlinear").add("n", N).add("h", h)
            .add("error", e).add("status", r.status).print();
    }
}

inline const std::vector<double>& robertson_times() {
    static const std::vector<double> t{1.0, 10.0, 100.0, 1e3, 1e4, 1e5};
    return t;
}
inline const std::vector<double>& vdp_times() {
    static const std::vector<double> t{250.0, 500.0, 1000.0, 1500.0, 2000.0};
    return t;
}

// Adaptive solves of Robertson (t to 1e5) and van der Pol (mu = 1000, t to 2000) at rtol 1e-6, with the outputs
// interpolated (cubic Hermite in drive(), the BDF polynomial in drive_bdf()) and with steps ending on them.
template <class F>
void adaptive_suite() {
    for (int onto = 0; onto < 2; ++onto) {
        {
            // atol below rtol * min |y_i| (y2 ~ 7e-8 at t = 1e5): every component is under relative control.
            auto o = options(1e-6, 1e-14, F::error_order);
            o.step_onto_outputs = onto;
            auto stepper = F::template make<double>(3, o, true);
            auto r = run_one_step<double, double, Robertson>(stepper, {0.04, 1e4, 3e7}, {1.0, 0.0, 0.0}, 0.0, 1e5, o,
                                                              robertson_times());
            Json().add("kind", "adaptive").add("method", F::name).add("problem", "robertson").add("onto", onto)
                .add("t", robertson_times()).add("y", r.out).stats(r.stats).print();
        }
        {
            auto o = options(1e-6, 1e-10, F::error_order);
            o.step_onto_outputs = onto;
            auto stepper = F::template make<double>(2, o, true);
            auto r = run_one_step<double, double, VanDerPol>(stepper, {1000.0}, {2.0, 0.0}, 0.0, 2000.0, o,
                                                              vdp_times());
            Json().add("kind", "adaptive").add("method", F::name).add("problem", "vdp").add("onto", onto)
                .add("t", vdp_times()).add("y", r.out).stats(r.stats).print();
        }
    }
}

// Discrete forward mode on one model: the dual derivative (replayed and adaptive) against central
// differences of the replayed double solver; and, with step sizes differentiated (Time = Dual), against
// central differences of the adaptive double solver started with the same first step.
template <class F, class Model>
void discrete_case(const char* problem, std::vector<double> p, std::vector<double> y0, double t1, int k,
                   double rtol, double atol) {
    const int n = Model::n_states;
    const bool autonomous = std::string(problem) != "nonlinear";
    auto o = options(rtol, atol, F::error_order);
    // 1. the double run whose steps are recorded
    auto st0 = F::template make<double>(n, o, autonomous);
    auto base = run_one_step<double, double, Model>(st0, p, y0, 0.0, t1, o);
    // 2. dual, replaying those steps; 3. dual, adaptive (must take the same steps: values are bit-identical)
    std::vector<D1> pd(p.begin(), p.end()), yd(y0.begin(), y0.end());
    pd[k].d[0] = 1.0;
    auto replay = o;
    replay.n_replay = static_cast<long>(base.step_sizes.size());
    replay.replay_steps = base.step_sizes.data();
    auto st1 = F::template make<D1>(n, replay, autonomous);
    auto dual = run_one_step<D1, double, Model>(st1, pd, yd, 0.0, t1, replay);
    auto st2 = F::template make<D1>(n, o, autonomous);
    auto dual_adaptive = run_one_step<D1, double, Model>(st2, pd, yd, 0.0, t1, o);
    // 4. central differences of the replayed double solver
    const double delta = 1e-5 * std::fabs(p[k]);
    auto pp = p, pm = p;
    pp[k] += delta;
    pm[k] -= delta;
    auto stp = F::template make<double>(n, replay, autonomous);
    auto stm = F::template make<double>(n, replay, autonomous);
    auto rp = run_one_step<double, double, Model>(stp, pp, y0, 0.0, t1, replay);
    auto rm = run_one_step<double, double, Model>(stm, pm, y0, 0.0, t1, replay);
    std::vector<double> fd(n);
    for (int i = 0; i < n; ++i) fd[i] = (rp.y[i] - rm.y[i]) / (2 * delta);
    // 5. differentiated step sizes against differences of the adaptive solver (same first step)
    auto od = o;
    od.first_step = base.step_sizes.empty() ? 1e-3 : base.step_sizes[0];
    od.differentiate_steps = 1;
    auto st3 = F::template make<D1>(n, od, autonomous);
    auto dsteps = run_one_step<D1, D1, Model>(st3, pd, yd, 0.0, t1, od);
    auto oa = o;
    oa.first_step = od.first_step;
    auto sap = F::template make<double>(n, oa, autonomous);
    auto sam = F::template make<double>(n, oa, autonomous);
    auto ap = run_one_step<double, double, Model>(sap, pp, y0, 0.0, t1, oa);
    auto am = run_one_step<double, double, Model>(sam, pm, y0, 0.0, t1, oa);
    std::vector<double> fd_adaptive(n);
    for (int i = 0; i < n; ++i) fd_adaptive[i] = (ap.y[i] - am.y[i]) / (2 * delta);
    Json().add("kind", "discrete").add("method", F::name).add("problem", problem)
        .add("steps", static_cast<long>(base.step_sizes.size()))
        .add("y", base.y).add("y_dual", values(dual.y)).add("y_dual_adaptive", values(dual_adaptive.y))
        .add("steps_dual_adaptive", static_cast<long>(dual_adaptive.step_sizes.size()))
        .add("dual", partials(dual.y)).add("dual_adaptive", partials(dual_adaptive.y)).add("fd", fd)
        .add("status", dual.status + dual_adaptive.status + rp.status + rm.status)
        .add("newton", base.stats.newton_iterations).add("newton_dual_adaptive", dual_adaptive.stats.newton_iterations)
        .add("newton_replay", dual.stats.newton_iterations)
        .add("newton_plus", rp.stats.newton_iterations).add("newton_minus", rm.stats.newton_iterations)
        .add("steps_differentiated", static_cast<long>(dsteps.step_sizes.size()))
        .add("steps_fd_adaptive", static_cast<long>(ap.step_sizes.size() + am.step_sizes.size()))
        .add("dual_steps", partials(dsteps.y)).add("fd_adaptive", fd_adaptive)
        .add("status_steps", dsteps.status + ap.status + am.status).print();
}

template <class F>
void discrete_suite() {
    discrete_case<F, Robertson>("robertson", {0.04, 1e4, 3e7}, {1.0, 0.0, 0.0}, 40.0, 0, 1e-6, 1e-10);
    discrete_case<F, Nonlinear>("nonlinear", {1.0}, {1.0, 1.0}, 2.0, 0, 1e-6, 1e-8);
    // mu = 10 up to t = 5, before the first relaxation jump: across a jump dy/dmu is large enough that a
    // perturbation of 1e-5 mu flips Newton iteration counts (a different program), which spoils the differences.
    discrete_case<F, VanDerPol>("vdp", {10.0}, {2.0, 0.0}, 5.0, 0, 1e-6, 1e-8);
}

// Continuous forward sensitivities (AugmentedProblem) run through the stepper: S at t1 against the discrete
// derivative (both approximate dy/dk1 to about the tolerance).
template <class F>
void forward_suite() {
    symsens::Stats stats{};
    const double p[3] = {0.04, 1e4, 3e7};
    symsens::AugmentedProblem<Robertson> problem{p, &stats, false};
    auto o = options(1e-8, 1e-12, F::error_order);
    auto stepper = F::template make<double>(6, o, true);
    std::vector<double> u{1.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    symsens::Recorder<double, double> rec{nullptr, 0, 0, 6, nullptr, {}, {}, false};
    const int status = drive_any<double, double>(problem, stepper, 0.0, 40.0, u.data(), o, rec, stats);
    Json().add("kind", "forward").add("method", F::name).add("problem", "robertson").add("u", u).add("status", status)
        .stats(stats).print();
}

template <class F>
void one_step_all() {
    order_suite<F>();
    adaptive_suite<F>();
    discrete_suite<F>();
    forward_suite<F>();
}

}  // namespace test
