"""The discrete adjoint of BDF/NDF solves, compiled: the sweep of :mod:`._discrete_adjoint_bdf` in C++.

The NumPy sweep (:func:`symsens.integrate._discrete_adjoint_bdf.discrete_adjoint_bdf`, whose docstring states the
step, its Newton iterations, their reverse and how the replay recovers the solver's decisions) runs here as one
model-independent C++ library (``cpp/adjoint/symsens_bdf_adjoint.hpp``, built once, content-keyed cache of
:func:`symsens.codegen._build.build_library`), with the model's ``f``, ``J^T v``, ``F_p^T v``
(:func:`symsens.codegen._vjp.loaded_vjp`) and its Jacobian and second-order gradient
(:func:`symsens.codegen._second_order.loaded_second_order`) passed as function pointers.  The replay takes the same
decisions (re-enacted rejected attempts, Newton iteration counts, Jacobian refreshes, orders) with the rules of
``symsens_newton_replay.hpp``, and the reverse pass is the NumPy one operation by operation; floating-point
contraction is off, so the two agree to the rounding of the kernels' and the LU's evaluation order.

References
----------
L. F. Shampine and M. W. Reichelt, "The MATLAB ODE suite", SIAM J. Sci. Comput. 18 (1997) 1-22.
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun
from ._discrete_adjoint_compiled import DOUBLE_P, KERNEL_TABLE, LONG_DTYPE, LONG_P, AdjointCore, SweepBuffers, \
    check_status, checked_arguments, kernel_table, newton_failure, pointer

__all__ = ["discrete_adjoint_bdf_compiled"]

#: Vectors of ``n`` stored per step of a block, for the default checkpoint interval (as the NumPy sweep).
_BLOCK_WORK = 8
_CORE = AdjointCore("bdf_adjoint", (
    "symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_newton_replay.hpp",
    "symsens_bdf_adjoint.hpp"), (
    KERNEL_TABLE, KERNEL_TABLE, ctypes.c_long, LONG_P, LONG_P, ctypes.c_int,
    ctypes.c_int, ctypes.c_int, DOUBLE_P, ctypes.c_double, ctypes.c_double, ctypes.c_int, ctypes.c_double,
    DOUBLE_P,
    ctypes.c_long, DOUBLE_P, DOUBLE_P,
    ctypes.c_long, DOUBLE_P, LONG_P, LONG_P,
    ctypes.c_long, LONG_P, DOUBLE_P, ctypes.c_long,
    DOUBLE_P, DOUBLE_P, DOUBLE_P, DOUBLE_P, LONG_P,
))


def _output_plan(step_times: np.ndarray, output_times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, index, start)``: outputs at ``t0`` (``start``, they are ``y0``) and, per step ``m``, entries
    ``first[m]..first[m+1]`` of ``index``: the outputs in ``(t_m, t_(m+1)]`` (``bdf_outputs``: an output at a step
    end belongs to the step ending there); outputs outside ``[t0, t_M]`` are written by no step."""
    M = len(step_times) - 1
    t0 = float(step_times[0])
    start = np.ascontiguousarray([k for k, te in enumerate(output_times) if te == t0], dtype=LONG_DTYPE)
    per_step: list[list[int]] = [[] for _ in range(M)]
    if M:
        position = np.searchsorted(step_times, output_times, side="left")
        for k, (te, pos) in enumerate(zip(output_times, position)):
            if t0 < te <= step_times[-1]:
                per_step[int(pos) - 1].append(k)
    first = np.zeros(M + 1, dtype=LONG_DTYPE)
    if M:
        first[1:] = np.cumsum([len(entries) for entries in per_step])
    index = np.ascontiguousarray([k for entries in per_step for k in entries], dtype=LONG_DTYPE)
    return first, index, start


def discrete_adjoint_bdf_compiled(
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
    """Reverse mode through a BDF solve with the given accepted steps, by the compiled sweep; arguments and result
    as :func:`symsens.integrate._discrete_adjoint_bdf.discrete_adjoint_bdf` (``scheme`` is ``bdf``; ``rtol``,
    ``atol`` the solve's; ``replayed``: the steps were replayed, Newton budget 20).

    Raises
    ------
    ValueError
        A scheme other than ``bdf``, unknown parameters, ``p`` of the wrong length, inconsistent steps, outputs or
        cotangents, a tolerance that is not positive.
    ReplayError
        When a Newton solve the compiled solver completed does not converge in the replay.
    symsens.codegen.CodegenError
        No C++ compiler, or a failed compile.
    """
    from ..codegen._second_order import loaded_second_order
    from ..codegen._vjp import loaded_vjp

    if scheme != "bdf":
        raise ValueError(f"`scheme`: the BDF adjoint covers bdf, not {scheme!r}")
    rtol, atol = float(rtol), float(atol)
    n = model.n_states
    arguments = checked_arguments(model, p, parameters, step_times, step_sizes, output_times, cotangents,
                                  checkpoint_every, _BLOCK_WORK, tolerances=(rtol, atol))
    M, P = arguments.steps, len(arguments.parameters)
    kernels = loaded_vjp(model, arguments.parameters)
    second = loaded_second_order(model, arguments.parameters)
    first, index, start = _output_plan(arguments.step_times, arguments.output_times)
    y0 = kernels.initial_conditions(arguments.p)
    # counters[4], [5]: the forward replay's Jacobian evaluations and Newton iterations.
    buffers = SweepBuffers.of(arguments, n, 6)
    failure = np.zeros(4)
    status = _CORE(
        kernel_table(kernels.pointers), kernel_table(second.pointers), second.nnz, pointer(second.rows, LONG_P),
        pointer(second.cols, LONG_P), int(second.autonomous),
        n, P, pointer(arguments.p), rtol, atol, int(bool(replayed)), arguments.t0, pointer(y0),
        M, pointer(arguments.step_times), pointer(arguments.step_sizes),
        len(arguments.output_times), pointer(arguments.output_times), pointer(first, LONG_P), pointer(index, LONG_P),
        len(start), pointer(start, LONG_P), pointer(arguments.cotangents), arguments.every,
        *buffers.pointers(), pointer(failure), pointer(buffers.counters, LONG_P))
    check_status(status, "BDF", arguments,
                 lambda: newton_failure(int(failure[0]), float(failure[1]), float(failure[2]), "bdf", int(failure[3])))
    # The sweep writes the outputs at t0 and sends their cotangents to ybar_0 itself (also without steps).
    return buffers.run(arguments, kernels, y0, every=arguments.every, replay_counters=4, no_steps_in_sweep=True)
