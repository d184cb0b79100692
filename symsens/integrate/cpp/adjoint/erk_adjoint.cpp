// The C entry of the compiled explicit Runge–Kutta discrete adjoint (symsens_erk_adjoint.hpp), called from
// symsens/integrate/_discrete_adjoint.py through ctypes.  The model's kernels arrive as function pointers
// (kernels[0] = rhs, kernels[1] = J^T v, kernels[2] = F_p^T v), from the model's own small library.
#include "symsens_erk_adjoint.hpp"

#ifndef SYMSENS_EXPORT
#define SYMSENS_EXPORT __attribute__((visibility("default")))
#endif

extern "C" {

// schedule 0: uniform checkpoints every `checkpoint_every` steps; 1: binomial, with `checkpoint_every` snapshots.
// Returns 0 on success, 5 on inconsistent input (nothing is computed then).
// counters[0..3]: rhs evaluations, transposed-product evaluations, checkpoints, peak stored numbers.
SYMSENS_EXPORT int symsens_erk_adjoint(
    void* const* kernels, int n, int P, const double* p, const double* y0,
    int s, const double* A, const double* b, const double* c, int fsal,
    long M, const double* step_times, const double* step_sizes,
    long K, const long* plan_first, const long* plan_index, const int* plan_kind, const double* plan_theta,
    const double* cotangents, int schedule, long checkpoint_every,
    double* outputs, double* ybar0, double* pbar, long* counters) {
    using namespace symsens_adjoint;
    Kernels f;
    if (!read_kernels(kernels, P, f) || n < 1 || P < 0 || s < 1 || M < 0 || K < 0 || checkpoint_every < 1)
        return BAD_INPUT;
    Tableau tableau(s, A, b, c, fsal != 0);
    ErkAdjoint adjoint(f, tableau, n, P, p);
    OutputPlan plan{plan_first, plan_index, plan_kind, plan_theta};
    Counters counted;
    const int status = adjoint.run(y0, M, step_times, step_sizes, plan, K, cotangents, schedule, checkpoint_every,
                                   outputs, ybar0, pbar, counted);
    counted.write(counters);
    return status;
}

}  // extern "C"
