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
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun, replay_inputs
from ._discrete_adjoint_newton import ReplayError

__all__ = ["discrete_adjoint_bdf_compiled"]

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_LONG_P = ctypes.POINTER(ctypes.c_long)
_LONG_DTYPE = np.dtype(ctypes.c_long)
_SUCCESS, _REPLAY_FAILED = 0, 6
_SOURCES = ("symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_newton_replay.hpp",
            "symsens_bdf_adjoint.hpp", "bdf_adjoint.cpp")
#: Vectors of ``n`` stored per step of a block, for the default checkpoint interval (as the NumPy sweep).
_BLOCK_WORK = 8


def _core_sources() -> dict[str, str]:
    from importlib import resources

    folder = resources.files("symsens.integrate").joinpath("cpp").joinpath("adjoint")
    return {name: folder.joinpath(name).read_text() for name in _SOURCES}


@lru_cache(maxsize=1)
def _compiled_core() -> Any:
    """The compiled BDF sweep: one library for every model, built once.  Floating-point contraction is off so
    that its sums round as the NumPy sweep's do (no fused multiply-adds)."""
    from ..codegen._build import DEFAULT_FLAGS, build_library, load_library

    path = build_library(_core_sources(), "bdf_adjoint.cpp", flags=(*DEFAULT_FLAGS, "-ffp-contract=off"))
    function = load_library(path).symsens_bdf_adjoint
    function.restype = ctypes.c_int
    function.argtypes = [
        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p), ctypes.c_long, _LONG_P, _LONG_P,
        ctypes.c_int,
        ctypes.c_int, ctypes.c_int, _DOUBLE_P, ctypes.c_double, ctypes.c_double, ctypes.c_int, ctypes.c_double,
        _DOUBLE_P,
        ctypes.c_long, _DOUBLE_P, _DOUBLE_P,
        ctypes.c_long, _DOUBLE_P, _LONG_P, _LONG_P,
        ctypes.c_long, _LONG_P, _DOUBLE_P, ctypes.c_long,
        _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _LONG_P,
    ]
    return function


def _checked_parameters(model: Model, parameters: Sequence[str]) -> tuple[str, ...]:
    parameters = tuple(parameters)
    known = set(model.parameter_names)
    unknown = [name for name in parameters if name not in known]
    if unknown:
        raise ValueError(f"`parameters`: unknown parameter {unknown[0]!r}; the model's parameters are "
                         f"{', '.join(model.parameter_names)}")
    if len(set(parameters)) != len(parameters):
        raise ValueError("`parameters`: a parameter is listed twice")
    return parameters


def _output_plan(step_times: np.ndarray, output_times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, index, start)``: outputs at ``t0`` (``start``, they are ``y0``) and, per step ``m``, entries
    ``first[m]..first[m+1]`` of ``index``: the outputs in ``(t_m, t_(m+1)]`` (``bdf_outputs``: an output at a step
    end belongs to the step ending there); outputs outside ``[t0, t_M]`` are written by no step."""
    M = len(step_times) - 1
    t0 = float(step_times[0])
    start = np.ascontiguousarray([k for k, te in enumerate(output_times) if te == t0], dtype=_LONG_DTYPE)
    per_step: list[list[int]] = [[] for _ in range(M)]
    if M:
        position = np.searchsorted(step_times, output_times, side="left")
        for k, (te, pos) in enumerate(zip(output_times, position)):
            if t0 < te <= step_times[-1]:
                per_step[int(pos) - 1].append(k)
    first = np.zeros(M + 1, dtype=_LONG_DTYPE)
    if M:
        first[1:] = np.cumsum([len(entries) for entries in per_step])
    index = np.ascontiguousarray([k for entries in per_step for k in entries], dtype=_LONG_DTYPE)
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
    parameters = _checked_parameters(model, parameters)
    p_values = np.ascontiguousarray(p, dtype=float)
    if p_values.shape != (model.n_parameters,):
        raise ValueError(f"`p` must hold all {model.n_parameters} parameter values in the model's order, "
                         f"got shape {p_values.shape}")
    rtol, atol = float(rtol), float(atol)
    if not (math.isfinite(rtol) and rtol > 0.0):
        raise ValueError(f"`rtol` must be a positive number (the solve's), got {rtol!r}")
    if not (math.isfinite(atol) and atol >= 0.0):
        raise ValueError(f"`atol` must be a non-negative number (the solve's), got {atol!r}")
    n, P = model.n_states, len(parameters)
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, _BLOCK_WORK)
    if not (np.all(np.isfinite(step_times)) and np.all(np.isfinite(h_all))):
        raise ValueError("`step_times`/`step_sizes` must be finite (the accepted steps of a successful solve)")
    M, K = len(h_all), len(output_times)
    kernels = loaded_vjp(model, parameters)
    second = loaded_second_order(model, parameters)
    first, index, start = _output_plan(step_times, output_times)
    t0 = float(step_times[0])
    y0 = kernels.initial_conditions(p_values)
    outputs = np.full((K, n), np.nan)
    ybar0 = np.zeros(n)
    pbar = np.zeros(max(P, 1))
    failure = np.zeros(4)
    # counters[4], [5]: the forward replay's Jacobian evaluations and Newton iterations.
    counters = np.zeros(6, dtype=_LONG_DTYPE)
    times = np.ascontiguousarray(step_times)
    sizes = np.ascontiguousarray(h_all)
    out_times = np.ascontiguousarray(output_times)
    W = np.ascontiguousarray(cotangents)
    rows, cols = second.rows, second.cols

    def pointer(array: np.ndarray, kind: Any = _DOUBLE_P) -> Any:
        return array.ctypes.data_as(kind)

    status = _compiled_core()(
        (ctypes.c_void_p * 3)(*kernels.pointers), (ctypes.c_void_p * 3)(*second.pointers), second.nnz,
        pointer(rows, _LONG_P), pointer(cols, _LONG_P), int(second.autonomous),
        n, P, pointer(p_values), rtol, atol, int(bool(replayed)), t0, pointer(y0),
        M, pointer(times), pointer(sizes),
        K, pointer(out_times), pointer(first, _LONG_P), pointer(index, _LONG_P),
        len(start), pointer(start, _LONG_P), pointer(W), kb,
        pointer(outputs), pointer(ybar0), pointer(pbar), pointer(failure), pointer(counters, _LONG_P))
    if status == _REPLAY_FAILED:
        step, t, h, order = int(failure[0]), float(failure[1]), float(failure[2]), int(failure[3])
        raise ReplayError(f"Newton did not converge in step {step + 1} at t = {t:g} (h = {h:g}, order {order}) "
                          f"of the replayed bdf solve")
    if status != _SUCCESS:
        raise ValueError(f"the compiled BDF discrete adjoint refused its input (status {status}): the steps, "
                         "output plan or checkpoint interval are inconsistent")
    pbar = pbar[:P]
    gradient = pbar + (kernels.initial_vjp(p_values, ybar0) if P else 0.0)
    return DiscreteAdjointRun(np.asarray(gradient, dtype=float), outputs, M, kb, int(counters[2]),
                              int(counters[3]), int(counters[0]), int(counters[1]),
                              jacobian_evaluations=int(counters[4]), newton_iterations=int(counters[5]))
