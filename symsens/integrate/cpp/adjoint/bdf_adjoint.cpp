// The C entry of the compiled BDF discrete adjoint (symsens_bdf_adjoint.hpp), called from
// symsens/integrate/_discrete_adjoint_bdf_compiled.py through ctypes.  The model's kernels arrive as function
// pointers from its own small libraries: kernels[0..2] = rhs, J^T v, F_p^T v (symsens/codegen/_vjp.py) and
// second[0..2] = jacobian, time_derivative, second_order (symsens/codegen/_second_order.py).
#include "symsens_bdf_adjoint.hpp"

#ifndef SYMSENS_EXPORT
#define SYMSENS_EXPORT __attribute__((visibility("default")))
#endif

extern "C" {

// Returns 0 on success, 5 on inconsistent input (nothing computed), 6 when a Newton solve of the replay fails
// (failure[0..3] = step index, t, h, order).
// counters[0..3]: rhs evaluations, transposed-product evaluations (J^T v with F_p^T v, and second-order
// gradients), checkpoints, peak stored numbers; counters[4..5]: the forward replay's Jacobian evaluations and
// Newton iterations (the solve's njev and newton_iterations when it re-enacted the solve's path).
SYMSENS_EXPORT int symsens_bdf_adjoint(
    void* const* kernels, void* const* second, long nnz, const long* rows, const long* cols, int autonomous,
    int n, int P, const double* p, double rtol, double atol, int replayed, double t0, const double* y0,
    long M, const double* step_times, const double* step_sizes,
    long K, const double* output_times, const long* plan_first, const long* plan_index,
    long n_start, const long* start_index, const double* cotangents, long checkpoint_every,
    double* outputs, double* ybar0, double* pbar, double* failure, long* counters) {
    using namespace symsens_adjoint;
    Kernels f;
    SecondOrderKernels s;
    if (!read_kernels(kernels, P, f) || n < 1 || P < 0 || M < 0 || K < 0 || checkpoint_every < 1
        || !(rtol > 0.0) || !(atol >= 0.0) || !read_second_order(second, nnz, rows, cols, autonomous != 0, n, s))
        return BAD_INPUT;
    BdfAdjoint adjoint(f, s, n, P, p, rtol, atol, replayed != 0);
    Counters counted;
    const int status = adjoint.run(t0, y0, M, step_times, step_sizes, K, output_times, plan_first, plan_index,
                                   n_start, start_index, cotangents, checkpoint_every, outputs, ybar0, pbar, failure,
                                   counted);
    counted.write(counters);
    adjoint.first_pass.write(counters + 4);
    return status;
}

}  // extern "C"
