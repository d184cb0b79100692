// The compiled implicit steppers' decisions, replayed on values for their discrete adjoints (SDIRK/ESDIRK,
// Radau IIA, BDF): the simplified-Newton monitor, its weights, the error norm and the step-size controller.
//
// The discrete adjoint of an implicit solve must reverse the Newton iterations the compiled solve carried out
// (their number, and which kept Jacobian each used), not the derivative of the converged stage equations: the two
// differ by terms of the size of the Newton error, and only the former equals forward-mode AD through the solver
// (symsens/integrate/_discrete_adjoint_newton.py says why).  The compiled solve records only its accepted steps, so
// the sweep re-takes the decisions with the rules below, which are those of symsens_implicit.hpp (NewtonControl,
// NewtonWeights) and symsens_solver.hpp (error_norm, drive()'s PI controller), and the same as the NumPy replay's
// (NewtonMonitor, weighted_norm, error_norm, Controller, same_step), so the compiled and NumPy sweeps take the
// same path.
//
// References: E. Hairer and G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.8 (simplified Newton and
// its stopping rule); E. Hairer, S. P. Norsett and G. Wanner, Solving ODEs I, 2nd ed., Sect. II.4 (step-size
// control); G. Söderlind, ACM TOMS 29 (2003) 1-26 (PI control).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace symsens_adjoint {

// max(10 eps / rtol, min(0.03, sqrt(rtol))): the Newton tolerance of symsens_implicit.hpp (SciPy's Radau and BDF).
inline double newton_tolerance(double rtol) {
    const double eps = std::numeric_limits<double>::epsilon();
    return std::max(10.0 * eps / rtol, std::min(0.03, std::sqrt(rtol)));
}

// The RMS of x_i w_(i mod n) over `count` entries (count a multiple of n): NewtonWeights::norm, summed in its order
// (entry i of each block of n into partial sum (i mod 8), the eight sums added pairwise).
inline double weighted_norm(const double* x, long count, const double* weights, int n) {
    double partial[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (long i = 0; i < count; ++i) {
        const long within = i % n;
        const double q = x[i] * weights[within];
        partial[within % 8] += q * q;
    }
    const double total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                         ((partial[4] + partial[5]) + (partial[6] + partial[7]));
    return std::sqrt(total / static_cast<double>(std::max(count, 1L)));
}

// w_i = 1 / (atol + rtol |y_i|): the weights of the Newton norm (NewtonWeights::set).
inline void newton_weights(const double* y, int n, double rtol, double atol, double* weights) {
    for (int i = 0; i < n; ++i) weights[i] = 1.0 / (atol + rtol * std::fabs(y[i]));
}

// The controller's norm, sqrt(mean((err_i / (atol + rtol max(|y0_i|, |y1_i|)))^2)), summed in index order.
inline double error_norm(const double* err, const double* y0, const double* y1, int n, double rtol, double atol) {
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
        const double scale = atol + rtol * std::max(std::fabs(y0[i]), std::fabs(y1[i]));
        total += err[i] * err[i] / (scale * scale);
    }
    return std::sqrt(total / static_cast<double>(std::max(n, 1)));
}

// NewtonControl: converged at the rounding floor 4 eps / rtol; from the second iteration on the rate
// theta = |dZ_k| / |dZ_(k-1)|, diverged when theta >= 1 or theta^(kmax - k) / (1 - theta) |dZ_k| > tol, converged
// when theta / (1 - theta) |dZ_k| <= tol; diverged after kmax iterations.
struct NewtonMonitor {
    enum Verdict : int { DIVERGED = -1, CONTINUE = 0, CONVERGED = 1 };

    double tol = 0.0, floor = 0.0, previous = 0.0, rate = 0.0;
    int max_iterations = 0, iterations = 0;

    NewtonMonitor(double rtol, int budget)
        : tol(newton_tolerance(rtol)), floor(4.0 * std::numeric_limits<double>::epsilon() / rtol),
          max_iterations(budget) {}

    void start() {
        previous = 0.0;
        rate = 0.0;
        iterations = 0;
    }

    // CONVERGED: apply the correction and stop; CONTINUE: apply it; DIVERGED: do not apply it.
    int check(double norm) {
        ++iterations;
        if (!std::isfinite(norm)) return DIVERGED;
        if (norm <= floor) return CONVERGED;
        if (iterations > 1) {
            rate = norm / previous;
            if (!(rate < 1.0)) return DIVERGED;
            if (std::pow(rate, max_iterations - iterations) / (1.0 - rate) * norm > tol) return DIVERGED;
            if (rate / (1.0 - rate) * norm <= tol) return CONVERGED;
        }
        previous = norm;
        if (iterations >= max_iterations) return DIVERGED;
        return CONTINUE;
    }
};

// drive()'s step-size rules for a one-step method (symsens_solver.hpp): after an accepted step
// h *= clamp(safety err^-beta1 err_prev^beta2, factor_min, factor_max) (PI control, err_prev >= 1e-4), after a
// rejection h *= clamp(safety err^(-1/q), factor_min, 1); a step ending within 1% of t1 (or beyond) lands on it.
struct Controller {
    double safety = 0.9, factor_min = 0.2, factor_max = 10.0, beta1 = 0.0, beta2 = 0.0;
    int error_order = 1;

    // From safety, factor_min, factor_max, beta1, beta2, error_order (the C entries' array); false when the error
    // order is not positive.
    static bool read(const double* values, Controller& rules) {
        rules.safety = values[0];
        rules.factor_min = values[1];
        rules.factor_max = values[2];
        rules.beta1 = values[3];
        rules.beta2 = values[4];
        rules.error_order = static_cast<int>(values[5]);
        return rules.error_order >= 1;
    }

    // The next wish after an accepted step with `error`; `previous` (the last accepted error) is updated.
    double accepted(double h, double error, double& previous) const {
        const double e = error < 1e-10 ? 1e-10 : error;
        double factor = safety * std::pow(e, -beta1) * std::pow(previous, beta2);
        factor = std::min(std::max(factor, factor_min), factor_max);
        previous = std::max(error, 1e-4);
        return h * factor;
    }

    double rejected(double h, double error) const {
        const double factor = safety * std::pow(error, -1.0 / error_order);
        return h * std::min(std::max(factor, factor_min), 1.0);
    }

    // The attempted size for the wish h at t.
    static double landed(double t, double h, double t1) {
        if (t + h - t1 >= 0 || t + 1.01 * h - t1 > 0) return t1 - t;
        return h;
    }
};

// Whether a re-enacted attempt is the recorded step: the replay's step sizes agree with the compiled solve's to
// ~1e-5 at worst (error estimates from components far below the largest), a different attempt differs by 10% or
// more (same_step of _discrete_adjoint_newton.py).
inline bool same_step(double h_try, double h_recorded) {
    return std::fabs(h_try - h_recorded) <= 1e-4 * std::fabs(h_recorded);
}

// Re-enacts the attempts an adaptive solve's controller rejected before the recorded step of size h at t, from the
// wish h_wish (drive() of symsens_solver.hpp): each attempt lands by Controller::landed on t_end, and
// attempt_error(h_try) takes it and returns its error norm (NaN when its Newton solve failed or its result is not
// finite: the wish is then quartered).  True when an attempt lands on the recorded step; false when one would
// have been accepted, or after 50 attempts: the solve's controller had other settings (max_step,
// step_onto_outputs), and no rejections are assumed.
template <class AttemptError>
bool reenact_rejections(const Controller& controller, double t, double h, double h_wish, double t_end,
                        AttemptError&& attempt_error) {
    for (int tries = 0; tries < 50; ++tries) {
        const double h_try = Controller::landed(t, h_wish, t_end);
        if (same_step(h_try, h)) return true;
        const double error = attempt_error(h_try);
        if (!std::isfinite(error)) {
            h_wish = h_try * 0.25;
            continue;
        }
        if (error <= 1.0) return false;   // the controller would have accepted it: not the recorded path
        h_wish = controller.rejected(h_try, error);
    }
    return false;
}

// The decisions of a forward replay counted as the compiled solve counts them in its Stats: njev (every Jacobian
// evaluation) and newton_iterations (one per right-hand side evaluated in a Newton loop, a diverged one included).
// A replay on the solve's path re-enacts every attempt, so over its first pass the counts equal the solve's.
struct ReplayDecisions {
    long jacobian_evaluations = 0;
    long newton_iterations = 0;

    // out[0..1], the order of the C entries' counters after the failed step.
    void write(long* out) const {
        out[0] = jacobian_evaluations;
        out[1] = newton_iterations;
    }
};

// The compiled solve's first attempted step size (initial_step of symsens_solver.hpp; Hairer, Norsett & Wanner I,
// Sect. II.4) in the same arithmetic, without max_step/first_step (which the replay does not receive): the replay
// re-enacts the attempts rejected before the first accepted step from it, since their Newton iterations are part of
// the solve's count (_discrete_adjoint_newton.initial_step).  rhs(t, y, out) evaluates f once (the probe).
template <class Rhs>
double initial_step(Rhs&& rhs, double t0, double t1, const double* y0, const double* f0, int n, int order,
                    double rtol, double atol) {
    double d0 = 0.0, d1 = 0.0;
    for (int i = 0; i < n; ++i) {
        const double sc = atol + rtol * std::fabs(y0[i]);
        d0 += y0[i] * y0[i] / (sc * sc);
        d1 += f0[i] * f0[i] / (sc * sc);
    }
    d0 = std::sqrt(d0 / n);
    d1 = std::sqrt(d1 / n);
    const double span = std::fabs(t1 - t0);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, span);
    std::vector<double> y1(n), f1(n);
    for (int i = 0; i < n; ++i) y1[i] = y0[i] + h0 * f0[i];
    rhs(t0 + h0, y1.data(), f1.data());
    double d2 = 0.0;
    for (int i = 0; i < n; ++i) {
        const double sc = atol + rtol * std::fabs(y0[i]);
        const double diff = f1[i] - f0[i];
        d2 += diff * diff / (sc * sc);
    }
    d2 = std::sqrt(d2 / n) / h0;
    const double dmax = std::max(d1, d2);
    const double h1 = dmax <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / dmax, 1.0 / (order + 1));
    return std::min(std::min(100 * h0, h1), span);
}

}  // namespace symsens_adjoint
