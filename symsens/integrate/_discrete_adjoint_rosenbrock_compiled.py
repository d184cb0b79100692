"""The compiled discrete adjoint of Rosenbrock solves: the sweep of :mod:`._discrete_adjoint_rosenbrock` in C++.

The replay and the reverse pass (FATODE's Rosenbrock adjoint, Zhang & Sandu 2014, Sect. 3.4; the step and its
reverse are written out in :mod:`._discrete_adjoint_rosenbrock` and ``cpp/adjoint/symsens_rosenbrock_adjoint.hpp``)
run in one model-independent C++ library, built once (content-keyed cache of
:func:`symsens.codegen._build.build_library`).  The model enters through six function pointers from two small
generated libraries: ``f``, ``J^T v`` and ``F_p^T v`` (:func:`symsens.codegen._vjp.loaded_vjp`) and ``J`` on its
pattern, ``f_t`` and the second-order gradient of ``<Jbar, J> + <qbar, f_t>``
(:func:`symsens.codegen._second_order.loaded_second_order`), both written over structural non-zeros only.

The output plan, checkpoints, counters and the order of every sum are the NumPy sweep's; the LU of
``W = I/(h gamma) - J`` is a plain partial-pivoting Doolittle factorisation instead of LAPACK's blocked one, so
the two sweeps agree to the rounding of the linear solves.

References
----------
H. Zhang and A. Sandu, "FATODE: a library for forward, adjoint, and tangent linear integration of ODEs",
SIAM J. Sci. Comput. 36(5) (2014) C504-C523.
A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006, LNCS 3994, 550-557.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun
from ._discrete_adjoint_compiled import DOUBLE_P, INT_P, KERNEL_TABLE, LONG_P, AdjointCore, OutputPlanArrays, \
    SweepBuffers, check_status, checked_arguments, checkpoint_schedule, kernel_table, pointer
from ._discrete_adjoint_newton import ReplayError
from ._discrete_adjoint_rosenbrock import rosenbrock_coefficients

__all__ = ["discrete_adjoint_rosenbrock_compiled"]

_CORE = AdjointCore("rosenbrock_adjoint", (
    "symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_rosenbrock_adjoint.hpp"), (
    KERNEL_TABLE, KERNEL_TABLE, ctypes.c_long, LONG_P, LONG_P, ctypes.c_int,
    ctypes.c_int, ctypes.c_int, DOUBLE_P, DOUBLE_P,
    ctypes.c_int, ctypes.c_double, DOUBLE_P, DOUBLE_P, DOUBLE_P, DOUBLE_P, DOUBLE_P, INT_P,
    ctypes.c_long, DOUBLE_P, DOUBLE_P,
    ctypes.c_long, LONG_P, LONG_P, INT_P, DOUBLE_P,
    DOUBLE_P, ctypes.c_int, ctypes.c_long,
    DOUBLE_P, DOUBLE_P, DOUBLE_P, LONG_P,
))


def discrete_adjoint_rosenbrock_compiled(
    model: Model,
    scheme: str,
    p: Sequence[float] | np.ndarray,
    parameters: Sequence[str],
    step_times: np.ndarray,
    step_sizes: np.ndarray,
    output_times: np.ndarray,
    cotangents: np.ndarray,
    *,
    checkpoint_every: int | None = None,
    checkpointing: str = "uniform",
    snapshots: int | None = None,
) -> DiscreteAdjointRun:
    """:func:`symsens.integrate._discrete_adjoint_rosenbrock.discrete_adjoint_rosenbrock` by the compiled sweep
    (module docstring): the same arguments, the same :class:`DiscreteAdjointRun` (``gradient =
    (dy0/dp)^T ybar_0 + pbar``, the replayed outputs, the schedule and the counted work).

    ``checkpointing="binomial"`` replaces the uniform checkpoints by ``snapshots`` (default
    ``ceil(log2(M + 1))``) snapshots of ``(y_n, f(t_n, y_n))`` placed by the binomial rule of Griewank's
    ``revolve`` (as :func:`symsens.integrate._discrete_adjoint.discrete_adjoint_erk` does): memory
    ``2 c n + (s + 2) n`` numbers at up to ``r`` forward sweeps for ``binom(c + r, c) >= M``, and the uniform
    schedule's gradient bit for bit.

    Raises
    ------
    ValueError
        A scheme that is not a Rosenbrock scheme of the catalogue, an unknown or repeated parameter, ``p`` of the
        wrong length, inconsistent or non-finite steps, outputs or cotangents, or a bad ``checkpoint_every``,
        ``checkpointing`` or ``snapshots``.
    ReplayError
        ``W = I/(h gamma) - J`` of a step is singular or not finite: the steps are not those of a successful
        compiled solve of this model.
    symsens.codegen.CodegenError
        No C++ compiler (the NumPy sweep needs none).
    """
    from ..codegen._second_order import loaded_second_order
    from ..codegen._vjp import loaded_vjp

    coef = rosenbrock_coefficients(scheme)
    n, s = model.n_states, coef.stages
    arguments = checked_arguments(model, p, parameters, step_times, step_sizes, output_times, cotangents,
                                  checkpoint_every, s + 1)
    M, P = arguments.steps, len(arguments.parameters)
    schedule, every = checkpoint_schedule(checkpointing, checkpoint_every, snapshots, M, arguments.every)
    kernels = loaded_vjp(model, arguments.parameters)
    second = loaded_second_order(model, arguments.parameters)
    plan = OutputPlanArrays.of(arguments.step_times, arguments.output_times)
    y0 = kernels.initial_conditions(arguments.p)
    buffers = SweepBuffers.of(arguments, n, 5)
    arrays = [np.ascontiguousarray(a, dtype=float) for a in (coef.a_t, coef.c_t, coef.m, coef.c, coef.gamma_sum)]
    same = np.ascontiguousarray(coef.same_argument, dtype=np.intc)
    times, sizes = arguments.step_times, arguments.step_sizes
    status = _CORE(
        kernel_table(kernels.pointers), kernel_table(second.pointers), second.nnz, pointer(second.rows, LONG_P),
        pointer(second.cols, LONG_P), int(second.autonomous), n, P, pointer(arguments.p), pointer(y0),
        s, coef.gamma, *(pointer(a) for a in arrays), pointer(same, INT_P),
        M, pointer(times), pointer(sizes), len(arguments.output_times), *plan.pointers(),
        pointer(arguments.cotangents), schedule, every, *buffers.pointers(), pointer(buffers.counters, LONG_P))

    def singular() -> ReplayError:
        step = int(buffers.counters[4])
        return ReplayError(f"the Rosenbrock matrix W = I/(h gamma) - J of step {step + 1} (t = {times[step]:g}, "
                           f"h = {sizes[step]:g}) is singular or not finite: these are not the steps of a "
                           f"successful {scheme} solve of model {model.name!r} at these parameter values")

    check_status(status, "Rosenbrock", arguments, singular)
    return buffers.run(arguments, kernels, y0, every=every if schedule == 0 else 0,
                       schedule="uniform" if schedule == 0 else "binomial")
