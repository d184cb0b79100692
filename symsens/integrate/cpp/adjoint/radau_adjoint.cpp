// The C entry of the compiled Radau IIA discrete adjoint (symsens_radau_adjoint.hpp), called from
// symsens/integrate/_discrete_adjoint_radau_compiled.py through ctypes.  The model's kernels arrive as function
// pointers from its own small libraries: kernels[0..2] = f, J^T v, F_p^T v (symsens/codegen/_vjp.py) and
// second[0..2] = J on its pattern, f_t, the second-order gradient (symsens/codegen/_second_order.py).
#include <new>

#include "symsens_radau_adjoint.hpp"

#ifndef SYMSENS_EXPORT
#define SYMSENS_EXPORT __attribute__((visibility("default")))
#endif

extern "C" {

// coefficients: c (3), mu, alpha, beta, T (9), T^-1 (9), gamma0, e (3) (RadauCoefficients).
// controller: safety, factor_min, factor_max, beta1, beta2, error_order; null for replayed steps (no rejected
// attempts to re-enact).  budget: the Newton iteration budget (6 adaptive, 20 replayed).
// Returns 0 on success, 5 on inconsistent input (nothing computed), 6 when a Newton solve of the replay did not
// converge (counters[4] = the step), 7 when memory ran out.
// counters[5..6]: the forward replay's Jacobian evaluations and Newton iterations (the solve's njev and
// newton_iterations when it re-enacted the solve's path).
// counters[0..4]: f evaluations, transposed products (with the second-order gradients), checkpoints, peak stored
// numbers, the failed step.
SYMSENS_EXPORT int symsens_radau_adjoint(
    void* const* kernels, void* const* second, long nnz, const long* rows, const long* cols, int autonomous,
    int n, int P, const double* p, const double* y0, const double* coefficients, const double* controller,
    double rtol, double atol, int budget,
    long M, const double* step_times, const double* step_sizes,
    long K, const long* plan_first, const long* plan_index, const int* plan_kind, const double* plan_theta,
    const double* cotangents, long checkpoint_every,
    double* outputs, double* ybar0, double* pbar, long* counters) {
    using namespace symsens_adjoint;
    Kernels f;
    SecondOrderKernels second_order;
    Controller rules;
    if (!read_kernels(kernels, P, f) || n < 1 || P < 0 || M < 0 || K < 0 || checkpoint_every < 1 || budget < 1
        || !(rtol > 0.0) || !(atol >= 0.0) || coefficients == nullptr
        || !read_second_order(second, nnz, rows, cols, autonomous != 0, n, second_order)
        || (controller != nullptr && !Controller::read(controller, rules)))
        return BAD_INPUT;
    const RadauCoefficients tableau(coefficients);
    OutputPlan plan{plan_first, plan_index, plan_kind, plan_theta};
    Counters counted;
    ReplayDecisions decisions;
    long failed = -1;
    int status;
    try {
        RadauAdjoint adjoint(f, second_order, tableau, controller != nullptr ? &rules : nullptr, n, P, p, rtol, atol,
                             budget);
        status = adjoint.run(y0, M, step_times, step_sizes, plan, K, cotangents, checkpoint_every, outputs, ybar0,
                             pbar, counted, failed);
        decisions = adjoint.first_pass;
    } catch (const std::bad_alloc&) {
        return OUT_OF_MEMORY;
    }
    counted.write(counters);
    counters[4] = failed;
    decisions.write(counters + 5);
    return status;
}

}  // extern "C"
