"""The discrete adjoint of Radau IIA (RADAU5) solves, compiled: the sweep of :mod:`._discrete_adjoint_radau` in C++.

The replay (starting values, Newton monitor and weights, kept and refreshed Jacobians, the retry with a fresh
Jacobian, and for an adaptive solve the rejected attempts re-enacted with RADAU5's error estimate and the
step-size controller) and the reverse pass through the Newton iterations, with the real and the complex LU
(transposed and conjugate-transposed solves), run in ``cpp/adjoint/symsens_radau_adjoint.hpp``, operation by
operation as the NumPy sweep, which stays the fallback and the independent check.  The sweep is sized at run
time and built once for every model (content-keyed cache of :func:`symsens.codegen._build.build_library`); the
model enters through function pointers: ``f``, ``J^T v``, ``F_p^T v`` (:func:`symsens.codegen._vjp.loaded_vjp`)
and ``J`` on its pattern with the second-order gradient of ``<Jbar, J>`` (the cotangent of a kept Jacobian taken
back to the step where it was evaluated; :func:`symsens.codegen._second_order.loaded_second_order`).

References
----------
E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, Sect. IV.8.
H. Zhang and A. Sandu, "FATODE: a library for forward, adjoint, and tangent linear integration of ODEs",
SIAM J. Sci. Comput. 36(5) (2014) C504-C523.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun
from ._discrete_adjoint_compiled import DOUBLE_P, INT_P, KERNEL_TABLE, LONG_P, AdjointCore, OutputPlanArrays, \
    SweepBuffers, check_status, checked_arguments, kernel_table, newton_failure, pointer
from ._discrete_adjoint_newton import ADAPTIVE_BUDGET, REPLAY_BUDGET, Controller
from ._discrete_adjoint_radau import radau_coefficients

__all__ = ["discrete_adjoint_radau_compiled"]

#: Stored vectors per step of a block, for the default checkpoint interval (as the NumPy sweep).
_BLOCK_WORK = 12
_CORE = AdjointCore("radau_adjoint", (
    "symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_newton_replay.hpp",
    "symsens_radau_adjoint.hpp"), (
    KERNEL_TABLE, KERNEL_TABLE, ctypes.c_long, LONG_P, LONG_P,
    ctypes.c_int, ctypes.c_int, ctypes.c_int, DOUBLE_P, DOUBLE_P, DOUBLE_P, DOUBLE_P,
    ctypes.c_double, ctypes.c_double, ctypes.c_int,
    ctypes.c_long, DOUBLE_P, DOUBLE_P,
    ctypes.c_long, LONG_P, LONG_P, INT_P, DOUBLE_P,
    DOUBLE_P, ctypes.c_long,
    DOUBLE_P, DOUBLE_P, DOUBLE_P, LONG_P,
))


@lru_cache(maxsize=1)
def _coefficients() -> np.ndarray:
    """``c, mu, alpha, beta, T, T^-1, gamma0, e`` (27 numbers): :func:`radau_coefficients` in the sweep's order."""
    k = radau_coefficients()
    values = np.concatenate([k.c, [k.mu, k.alpha, k.beta], k.T.reshape(-1), k.TI.reshape(-1), [k.gamma0], k.e])
    values.setflags(write=False)
    return values


@lru_cache(maxsize=1)
def _controller() -> np.ndarray:
    """The step-size controller's constants of an adaptive Radau IIA solve (:meth:`Controller.of`)."""
    c = Controller.of("radau-iia-3")
    values = np.array([c.safety, c.factor_min, c.factor_max, c.beta1, c.beta2, float(c.error_order)])
    values.setflags(write=False)
    return values


def discrete_adjoint_radau_compiled(
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
    """:func:`symsens.integrate._discrete_adjoint_radau.discrete_adjoint_radau` by the compiled sweep: the same
    arguments, replay, checkpoints and reverse pass (its docstring states the maths), the same
    :class:`DiscreteAdjointRun` (``outputs`` are the replayed states at ``output_times``, to compare with the
    compiled solve's).

    Raises
    ------
    ValueError
        An argument is inconsistent (named in the message).
    ReplayError
        When a Newton solve the compiled solver completed does not converge in the replay.
    """
    from ..codegen._second_order import loaded_second_order
    from ..codegen._vjp import loaded_vjp

    if scheme not in ("radau-iia-3", "radau5"):
        raise ValueError(f"`scheme`: the Radau IIA adjoint covers radau-iia-3 (radau5), not {scheme!r}")
    rtol, atol = float(rtol), float(atol)
    n = model.n_states
    arguments = checked_arguments(model, p, parameters, step_times, step_sizes, output_times, cotangents,
                                  checkpoint_every, _BLOCK_WORK, tolerances=(rtol, atol))
    M, P = arguments.steps, len(arguments.parameters)
    kernels = loaded_vjp(model, arguments.parameters)
    second = loaded_second_order(model, arguments.parameters)
    plan = OutputPlanArrays.of(arguments.step_times, arguments.output_times)
    y0 = np.ascontiguousarray(kernels.initial_conditions(arguments.p), dtype=float)
    # counters[5], [6]: the forward replay's Jacobian evaluations and Newton iterations.
    buffers = SweepBuffers.of(arguments, n, 7)
    controller = None if replayed else _controller()
    budget = REPLAY_BUDGET if replayed else ADAPTIVE_BUDGET["radau"]
    times, sizes = arguments.step_times, arguments.step_sizes
    status = _CORE(
        kernel_table(kernels.pointers), kernel_table(second.pointers), int(second.nnz),
        pointer(second.rows, LONG_P), pointer(second.cols, LONG_P), int(bool(second.autonomous)), n, P,
        pointer(arguments.p), pointer(y0), pointer(_coefficients()), pointer(controller), rtol, atol, budget,
        M, pointer(times), pointer(sizes), len(arguments.output_times), *plan.pointers(),
        pointer(arguments.cotangents), arguments.every, *buffers.pointers(), pointer(buffers.counters, LONG_P))
    failed = int(buffers.counters[4])
    check_status(status, "Radau IIA", arguments,
                 lambda: newton_failure(failed, float(times[failed]), float(sizes[failed]), "radau-iia-3"))
    return buffers.run(arguments, kernels, y0, every=arguments.every, replay_counters=5)
