"""The compiled discrete adjoint of SDIRK/ESDIRK solves: :func:`._discrete_adjoint_dirk.discrete_adjoint_dirk`
in C++.

The sweep (``cpp/adjoint/symsens_dirk_adjoint.hpp``) is the NumPy module's, operation by operation: the forward
replay of the accepted steps with the compiled stepper's Newton monitor, weights, Jacobian reuse, refresh and
retry rules (``cpp/adjoint/symsens_newton_replay.hpp``), the re-enacted rejected attempts of an adaptive solve
(which may re-evaluate the Jacobian the accepted step then uses), uniform checkpoints, and the reverse of every
Newton iteration actually taken,

    rbar = M^-T Zbar,   Jbar_m += h gamma rbar (x^q)^T,   Zbar <- Zbar - rbar + J(Z^q)^T (h gamma rbar),

with the kept Jacobian's cotangent ``Jbar_m`` applied at the step ``m`` where ``J`` was evaluated through the
model's second-order kernels.  It is sized at run time and built once for every model and scheme; the model
enters through function pointers: ``f``, ``J^T v``, ``F_p^T v`` (:func:`symsens.codegen._vjp.loaded_vjp`) and
``J`` on its pattern and the second-order gradient (:func:`symsens.codegen._second_order.loaded_second_order`).
Both sweeps take the same decisions on values, so they agree to the rounding of the kernels' evaluation order and
of the LU (LAPACK's in NumPy, ``DenseLu`` here); both equal forward-mode AD through the compiled solver.

References
----------
H. Zhang and A. Sandu, "FATODE: a library for forward, adjoint, and tangent linear integration of ODEs",
SIAM J. Sci. Comput. 36(5) (2014) C504-C523.
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing; Ch. 15,
derivatives of iterative solvers).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun
from ._discrete_adjoint_compiled import DOUBLE_P, INT_P, KERNEL_TABLE, LONG_P, AdjointCore, OutputPlanArrays, \
    SweepBuffers, check_status, checked_arguments, kernel_table, newton_failure, pointer
from ._discrete_adjoint_dirk import dirk_coefficients
from ._discrete_adjoint_newton import ADAPTIVE_BUDGET, REPLAY_BUDGET, Controller

__all__ = ["discrete_adjoint_dirk_compiled"]

_CORE = AdjointCore("dirk_adjoint", (
    "symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_newton_replay.hpp",
    "symsens_dirk_adjoint.hpp"), (
    KERNEL_TABLE, KERNEL_TABLE, ctypes.c_long, LONG_P, LONG_P,
    ctypes.c_int, ctypes.c_int, DOUBLE_P, DOUBLE_P,
    ctypes.c_int, DOUBLE_P, DOUBLE_P, DOUBLE_P, DOUBLE_P, ctypes.c_double, INT_P,
    ctypes.c_double, ctypes.c_double, ctypes.c_int, DOUBLE_P,
    ctypes.c_long, DOUBLE_P, DOUBLE_P,
    ctypes.c_long, LONG_P, LONG_P, INT_P, DOUBLE_P,
    DOUBLE_P, ctypes.c_long,
    DOUBLE_P, DOUBLE_P, DOUBLE_P, LONG_P,
))


def discrete_adjoint_dirk_compiled(
    model: Model,
    scheme: str,
    p: Sequence[float] | np.ndarray,
    parameters: Sequence[str],
    step_times: np.ndarray,
    step_sizes: np.ndarray,
    output_times: np.ndarray,
    cotangents: np.ndarray,
    *,
    rtol: float,
    atol: float,
    replayed: bool = False,
    checkpoint_every: int | None = None,
) -> DiscreteAdjointRun:
    """Reverse mode through an SDIRK/ESDIRK solve with the given accepted steps, by the compiled sweep.

    Arguments and result as :func:`symsens.integrate._discrete_adjoint_dirk.discrete_adjoint_dirk`: the model the
    compiled solver integrated, a diagonally implicit ``scheme`` of the catalogue, all parameter values ``p``, the
    gradient's ``parameters``, the solve's ``stats.step_times``/``stats.step_sizes``, its output times,
    ``dL/dy(t_k)`` (K x n), its ``rtol``/``atol`` (Newton weights and tolerance), ``replayed`` (the steps were
    replayed, ``solve(replay_steps=...)``: Newton budget 20 and no rejected attempts) and ``checkpoint_every``.

    Returns
    -------
    DiscreteAdjointRun
        ``gradient = (dy0/dp)^T ybar_0 + pbar``; ``outputs`` the replayed states at the output times (to compare
        with the compiled solve's); ``vjp_evaluations`` counts the transposed and second-order products.

    Raises
    ------
    ValueError
        A scheme that is not diagonally implicit, unknown or repeated parameters, ``p`` of the wrong length,
        inconsistent steps, outputs or cotangents, a non-positive ``checkpoint_every``, or tolerances that are not
        positive and finite.
    ReplayError
        When a Newton solve the compiled solver completed does not converge in the replay.
    """
    from ..codegen._second_order import loaded_second_order
    from ..codegen._vjp import loaded_vjp

    coef = dirk_coefficients(scheme)
    rtol, atol = float(rtol), float(atol)
    n, s = model.n_states, coef.stages
    arguments = checked_arguments(model, p, parameters, step_times, step_sizes, output_times, cotangents,
                                  checkpoint_every, 4 * s, tolerances=(rtol, atol))
    M, P = arguments.steps, len(arguments.parameters)
    kernels = loaded_vjp(model, arguments.parameters)
    second = loaded_second_order(model, arguments.parameters)
    plan = OutputPlanArrays.of(arguments.step_times, arguments.output_times)
    y0 = np.ascontiguousarray(kernels.initial_conditions(arguments.p), dtype=float)
    # counters[5], [6]: the forward replay's Jacobian evaluations and Newton iterations.
    buffers = SweepBuffers.of(arguments, n, 7)
    A, b, c, e = (np.ascontiguousarray(a, dtype=float) for a in (coef.A, coef.b, coef.c, coef.e))
    flags = np.array([int(coef.explicit_first_stage), int(coef.stiffly_accurate)], dtype=np.intc)
    # The controller's rules re-enact the rejected attempts of an adaptive solve (none with replayed steps).
    if replayed or not np.any(e):
        controller = None
    else:
        rules = Controller.of(scheme)
        controller = np.array([rules.safety, rules.factor_min, rules.factor_max, rules.beta1, rules.beta2,
                               float(rules.error_order)])
    budget = REPLAY_BUDGET if replayed else ADAPTIVE_BUDGET["dirk"]
    times, sizes = arguments.step_times, arguments.step_sizes
    status = _CORE(
        kernel_table(kernels.pointers), kernel_table(second.pointers), int(second.nnz), pointer(second.rows, LONG_P),
        pointer(second.cols, LONG_P), n, P, pointer(arguments.p), pointer(y0),
        s, pointer(A), pointer(b), pointer(c), pointer(e), float(coef.gamma), pointer(flags, INT_P),
        rtol, atol, int(budget), pointer(controller),
        M, pointer(times), pointer(sizes), len(arguments.output_times), *plan.pointers(),
        pointer(arguments.cotangents), arguments.every, *buffers.pointers(), pointer(buffers.counters, LONG_P))
    failed = int(buffers.counters[4])
    check_status(status, "SDIRK/ESDIRK", arguments,
                 lambda: newton_failure(failed, float(times[failed]), float(sizes[failed]), scheme))
    return buffers.run(arguments, kernels, y0, every=arguments.every, replay_counters=5)
