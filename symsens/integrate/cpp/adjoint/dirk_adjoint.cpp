// The C entry of the compiled SDIRK/ESDIRK discrete adjoint (symsens_dirk_adjoint.hpp), called from
// symsens/integrate/_discrete_adjoint_dirk_compiled.py through ctypes.  The model's kernels arrive as function
// pointers from its own small libraries: kernels[0..2] = f, J^T v, F_p^T v (symsens/codegen/_vjp.py) and
// second[0..2] = J on its pattern, f_t, the second-order gradient (symsens/codegen/_second_order.py).
#include "symsens_dirk_adjoint.hpp"

#ifndef SYMSENS_EXPORT
#define SYMSENS_EXPORT __attribute__((visibility("default")))
#endif

extern "C" {

// tableau: A (s x s, lower triangular with the diagonal), b, c, e = b - bhat, gamma; flags[0] explicit first stage,
// flags[1] stiffly accurate.  newton: rtol, atol; budget: the Newton iteration budget (7 adaptive, 20 replayed).
// controller: null (replayed steps, or no error estimate) or safety, factor_min, factor_max, beta1, beta2,
// error_order.  Returns 0 on success, 5 on inconsistent input, 6 when a recorded step's Newton solve fails in the
// replay (counters[4] = that step).  counters[0..3]: rhs evaluations, transposed and second-order products,
// checkpoints, peak stored numbers; counters[5..6]: the Jacobian evaluations and Newton iterations of the forward
// replay (Stats::njev and Stats::newton_iterations of the solve it re-enacts).
SYMSENS_EXPORT int symsens_dirk_adjoint(
    void* const* kernels, void* const* second, long nnz, const long* rows, const long* cols,
    int n, int P, const double* p, const double* y0,
    int s, const double* A, const double* b, const double* c, const double* e, double gamma, const int* flags,
    double rtol, double atol, int budget, const double* controller,
    long M, const double* step_times, const double* step_sizes,
    long K, const long* plan_first, const long* plan_index, const int* plan_kind, const double* plan_theta,
    const double* cotangents, long checkpoint_every,
    double* outputs, double* ybar0, double* pbar, long* counters) {
    using namespace symsens_adjoint;
    counters[4] = -1;
    Kernels f;
    SecondOrderKernels so;
    Controller rules;
    if (!read_kernels(kernels, P, f) || n < 1 || P < 0 || s < 1 || M < 0 || K < 0 || checkpoint_every < 1
        || budget < 1 || !(rtol > 0.0) || !(atol >= 0.0) || !(gamma != 0.0) || !std::isfinite(gamma)
        || !read_second_order(second, nnz, rows, cols, true, n, so)
        || (controller != nullptr && !Controller::read(controller, rules)))
        return BAD_INPUT;
    DirkTableau tableau(s, A, b, c, e, gamma, flags[0] != 0, flags[1] != 0);
    DirkAdjoint adjoint(f, so, tableau, n, P, p, rtol, atol, budget, controller != nullptr ? &rules : nullptr);
    OutputPlan plan{plan_first, plan_index, plan_kind, plan_theta};
    Counters counted;
    long failed = -1;
    const int status = adjoint.run(y0, M, step_times, step_sizes, plan, K, cotangents, checkpoint_every, outputs,
                                   ybar0, pbar, counted, failed);
    counted.write(counters);
    counters[4] = failed;
    adjoint.first_pass.write(counters + 5);
    return status;
}

}  // extern "C"
