"""The compiled discrete adjoint of explicit Runge–Kutta solves: the sweep of
:func:`._discrete_adjoint.discrete_adjoint_erk` in C++ (``cpp/adjoint/symsens_erk_adjoint.hpp``).

The replay, output plan and reverse pass are the NumPy sweep's operation by operation (the module docstring of
:mod:`._discrete_adjoint` states the maths), with ``f``, ``J^T v`` and ``F_p^T v`` from the model's generated
transposed-product library (:func:`symsens.codegen._vjp.loaded_vjp`) passed as function pointers; checkpoints are
uniform or binomial (Griewank's ``revolve``).  What every compiled sweep shares is in
:mod:`._discrete_adjoint_compiled`.

References
----------
A. Sandu, "On the properties of Runge–Kutta discrete adjoints", ICCS 2006, LNCS 3994, 550-557.
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun, ExplicitTableauValues
from ._discrete_adjoint_compiled import DOUBLE_P, INT_P, KERNEL_TABLE, LONG_P, AdjointCore, OutputPlanArrays, \
    SweepBuffers, check_status, checked_arguments, checkpoint_schedule, kernel_table, pointer

__all__ = ["discrete_adjoint_erk_compiled"]

_CORE = AdjointCore("erk_adjoint", ("symsens_erk_adjoint.hpp",), (
    KERNEL_TABLE, ctypes.c_int, ctypes.c_int, DOUBLE_P, DOUBLE_P,
    ctypes.c_int, DOUBLE_P, DOUBLE_P, DOUBLE_P, ctypes.c_int,
    ctypes.c_long, DOUBLE_P, DOUBLE_P,
    ctypes.c_long, LONG_P, LONG_P, INT_P, DOUBLE_P,
    DOUBLE_P, ctypes.c_int, ctypes.c_long,
    DOUBLE_P, DOUBLE_P, DOUBLE_P, LONG_P,
))


def discrete_adjoint_erk_compiled(model: Model, tableau: ExplicitTableauValues, p: Sequence[float] | np.ndarray,
                                  parameters: Sequence[str], step_times: np.ndarray, step_sizes: np.ndarray,
                                  output_times: np.ndarray, cotangents: np.ndarray, checkpoint_every: int | None,
                                  checkpointing: str = "uniform", snapshots: int | None = None
                                  ) -> DiscreteAdjointRun:
    """:func:`symsens.integrate._discrete_adjoint.discrete_adjoint_erk` by the compiled sweep: the same
    arguments (``tableau`` the scheme's), the same :class:`DiscreteAdjointRun`."""
    from ..codegen._vjp import loaded_vjp

    arguments = checked_arguments(model, p, parameters, step_times, step_sizes, output_times, cotangents,
                                  checkpoint_every, tableau.stages)
    M, n, P, s = arguments.steps, model.n_states, len(arguments.parameters), tableau.stages
    schedule, every = checkpoint_schedule(checkpointing, checkpoint_every, snapshots, M, arguments.every)
    kernels = loaded_vjp(model, arguments.parameters)
    plan = OutputPlanArrays.of(arguments.step_times, arguments.output_times)
    y0 = kernels.initial_conditions(arguments.p)
    buffers = SweepBuffers.of(arguments, n, 4)
    A, b, c = (np.ascontiguousarray(a, dtype=float) for a in (tableau.A, tableau.b, tableau.c))
    status = _CORE(
        kernel_table(kernels.pointers), n, P, pointer(arguments.p), pointer(y0),
        s, pointer(A), pointer(b), pointer(c), int(tableau.fsal),
        M, pointer(arguments.step_times), pointer(arguments.step_sizes),
        len(arguments.output_times), *plan.pointers(), pointer(arguments.cotangents), schedule, every,
        *buffers.pointers(), pointer(buffers.counters, LONG_P))
    check_status(status, "explicit Runge–Kutta", arguments)
    return buffers.run(arguments, kernels, y0, every=every if schedule == 0 else 0,
                       schedule="uniform" if schedule == 0 else "binomial")
