// The C entry of the compiled Rosenbrock discrete adjoint (symsens_rosenbrock_adjoint.hpp), called from
// symsens/integrate/_discrete_adjoint_rosenbrock_compiled.py through ctypes.  The model's kernels arrive as
// function pointers from its two small libraries: kernels[0..2] = f, J^T v, F_p^T v (symsens/codegen/_vjp.py)
// and second[0..2] = J on its pattern, f_t, the second-order gradient (symsens/codegen/_second_order.py).
#include "symsens_rosenbrock_adjoint.hpp"

#ifndef SYMSENS_EXPORT
#define SYMSENS_EXPORT __attribute__((visibility("default")))
#endif

extern "C" {

// schedule 0: uniform checkpoints every `checkpoint_every` steps; 1: binomial, with `checkpoint_every` snapshots.
// Returns 0 on success, 5 on inconsistent input (nothing is
// computed then), 6 when W = I/(h gamma) - J of step counters[4] is singular or not finite.
// counters[0..4]: f (and f_t) evaluations, transposed products (and second-order gradients), checkpoints, peak
// stored numbers, the failed step (-1 when none).
SYMSENS_EXPORT int symsens_rosenbrock_adjoint(
    void* const* kernels, void* const* second, long nnz, const long* rows, const long* cols, int autonomous,
    int n, int P, const double* p, const double* y0,
    int s, double gamma, const double* a_t, const double* c_t, const double* m, const double* c,
    const double* gamma_sum, const int* same_argument,
    long M, const double* step_times, const double* step_sizes,
    long K, const long* plan_first, const long* plan_index, const int* plan_kind, const double* plan_theta,
    const double* cotangents, int schedule, long checkpoint_every,
    double* outputs, double* ybar0, double* pbar, long* counters) {
    using namespace symsens_adjoint;
    counters[4] = -1;
    Kernels f;
    SecondOrderKernels so;
    if (!read_kernels(kernels, P, f) || n < 1 || P < 0 || s < 1 || M < 0 || K < 0 || checkpoint_every < 1
        || !(gamma != 0.0) || !std::isfinite(gamma)
        || !read_second_order(second, nnz, rows, cols, autonomous != 0, n, so))
        return BAD_INPUT;
    for (long q = 0; q <= M; ++q)
        if (!std::isfinite(step_times[q]) || (q < M && !std::isfinite(step_sizes[q]))) return BAD_INPUT;
    RosenbrockTableau tableau(s, gamma, a_t, c_t, m, c, gamma_sum, same_argument);
    RosenbrockAdjoint adjoint(f, so, tableau, n, P, p);
    OutputPlan plan{plan_first, plan_index, plan_kind, plan_theta};
    RosenbrockCounters counted;
    const int status = adjoint.run(y0, M, step_times, step_sizes, plan, K, cotangents, schedule, checkpoint_every,
                                   outputs, ybar0, pbar, counted);
    counted.write(counters);
    counters[4] = counted.failed_step;
    return status;
}

}  // extern "C"
