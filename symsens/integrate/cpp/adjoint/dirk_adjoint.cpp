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
    if (kernels == nullptr || kernels[0] == nullptr || kernels[1] == nullptr || (P > 0 && kernels[2] == nullptr)
        || second == nullptr || n < 1 || P < 0 || s < 1 || M < 0 || K < 0 || checkpoint_every < 1 || budget < 1
        || !(rtol > 0.0) || !(atol >= 0.0) || !(gamma != 0.0) || !std::isfinite(gamma))
        return BAD_INPUT;
    Kernels f{reinterpret_cast<RhsFunction>(kernels[0]), reinterpret_cast<ProductFunction>(kernels[1]),
              reinterpret_cast<ProductFunction>(kernels[2])};
    SecondOrderKernels so;
    so.jacobian = reinterpret_cast<JacobianFunction>(second[0]);
    so.time_derivative = reinterpret_cast<TimeDerivativeFunction>(second[1]);
    so.second_order = reinterpret_cast<SecondOrderFunction>(second[2]);
    so.nnz = nnz;
    so.rows = rows;
    so.cols = cols;
    if (!so.valid(n)) return BAD_INPUT;
    DirkTableau tableau(s, A, b, c, e, gamma, flags[0] != 0, flags[1] != 0);
    Controller rules;
    if (controller != nullptr) {
        rules.safety = controller[0];
        rules.factor_min = controller[1];
        rules.factor_max = controller[2];
        rules.beta1 = controller[3];
        rules.beta2 = controller[4];
        rules.error_order = static_cast<int>(controller[5]);
        if (rules.error_order < 1) return BAD_INPUT;
    }
    DirkAdjoint adjoint(f, so, tableau, n, P, p, rtol, atol, budget, controller != nullptr ? &rules : nullptr);
    OutputPlan plan{plan_first, plan_index, plan_kind, plan_theta};
    Counters counted;
    long failed = -1;
    const int status = adjoint.run(y0, M, step_times, step_sizes, plan, K, cotangents, checkpoint_every, outputs,
                                   ybar0, pbar, counted, failed);
    counters[0] = counted.rhs_evaluations;
    counters[1] = counted.product_evaluations;
    counters[2] = counted.checkpoints;
    counters[3] = counted.stored_numbers;
    counters[4] = failed;
    counters[5] = adjoint.first_pass.jacobian_evaluations;
    counters[6] = adjoint.first_pass.newton_iterations;
    return status;
}

}  // extern "C"
