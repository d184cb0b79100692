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
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun, _output_plan, cotangent_of_a_solve_without_steps, \
    outputs_of_a_solve_without_steps, replay_inputs
from ._discrete_adjoint_newton import ADAPTIVE_BUDGET, REPLAY_BUDGET, Controller, ReplayError
from ._discrete_adjoint_radau import radau_coefficients

__all__ = ["discrete_adjoint_radau_compiled"]

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_LONG_P = ctypes.POINTER(ctypes.c_long)
_INT_P = ctypes.POINTER(ctypes.c_int)
_LONG_DTYPE = np.dtype(ctypes.c_long)
_KINDS = {"start": 0, "end": 1, "inner": 2}
#: The sweep's status codes (``radau_adjoint.cpp``).
_BAD_INPUT, _REPLAY_FAILED, _OUT_OF_MEMORY = 5, 6, 7
#: Stored vectors per step of a block, for the default checkpoint interval (as the NumPy sweep).
_BLOCK_WORK = 12


def _sources() -> dict[str, str]:
    from importlib import resources

    folder = resources.files("symsens.integrate").joinpath("cpp").joinpath("adjoint")
    names = ("symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_newton_replay.hpp",
             "symsens_radau_adjoint.hpp", "radau_adjoint.cpp")
    return {name: folder.joinpath(name).read_text() for name in names}


@lru_cache(maxsize=1)
def _compiled_sweep() -> Any:
    """The compiled Radau IIA sweep: one library for every model, built once.  Floating-point contraction is off
    so that its sums round as the NumPy sweep's do (no fused multiply-adds)."""
    from ..codegen._build import DEFAULT_FLAGS, build_library, load_library

    path = build_library(_sources(), "radau_adjoint.cpp", flags=(*DEFAULT_FLAGS, "-ffp-contract=off"))
    function = load_library(path).symsens_radau_adjoint
    function.restype = ctypes.c_int
    function.argtypes = [
        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p), ctypes.c_long, _LONG_P, _LONG_P,
        ctypes.c_int, ctypes.c_int, ctypes.c_int, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P,
        ctypes.c_double, ctypes.c_double, ctypes.c_int,
        ctypes.c_long, _DOUBLE_P, _DOUBLE_P,
        ctypes.c_long, _LONG_P, _LONG_P, _INT_P, _DOUBLE_P,
        _DOUBLE_P, ctypes.c_long,
        _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _LONG_P,
    ]
    return function


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
    parameters = tuple(parameters)
    known = set(model.parameter_names)
    unknown = [name for name in parameters if name not in known]
    if unknown:
        raise ValueError(f"`parameters`: unknown parameter {unknown[0]!r}; the model's parameters are "
                         f"{', '.join(model.parameter_names)}")
    if len(set(parameters)) != len(parameters):
        raise ValueError("`parameters`: a parameter is listed twice")
    p_values = np.ascontiguousarray(p, dtype=float)
    if p_values.shape != (model.n_parameters,):
        raise ValueError(f"`p` must hold all {model.n_parameters} parameter values in the model's order, "
                         f"got shape {p_values.shape}")
    rtol, atol = float(rtol), float(atol)
    if not (math.isfinite(rtol) and rtol > 0.0):
        raise ValueError(f"`rtol` must be positive and finite (the solve's), got {rtol!r}")
    if not (math.isfinite(atol) and atol >= 0.0):
        raise ValueError(f"`atol` must be non-negative and finite (the solve's), got {atol!r}")
    n, P = model.n_states, len(parameters)
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, _BLOCK_WORK)
    if not (np.all(np.isfinite(step_times)) and np.all(np.isfinite(h_all))):
        raise ValueError("`step_times`/`step_sizes` must be finite (the accepted steps of a successful solve)")
    M, K = len(h_all), len(output_times)
    kernels = loaded_vjp(model, parameters)
    second = loaded_second_order(model, parameters)
    plan = _output_plan(step_times, output_times)
    first = np.zeros(M + 1, dtype=_LONG_DTYPE)
    first[1:] = np.cumsum([len(entries) for entries in plan]) if M else []
    entries = [entry for step_entries in plan for entry in step_entries]
    index = np.ascontiguousarray([k for k, _, _ in entries], dtype=_LONG_DTYPE)
    kind = np.ascontiguousarray([_KINDS[name] for _, name, _ in entries], dtype=np.intc)
    theta = np.ascontiguousarray([value for _, _, value in entries], dtype=float)
    y0 = np.ascontiguousarray(kernels.initial_conditions(p_values), dtype=float)
    outputs = np.full((K, n), np.nan)
    ybar0 = np.zeros(n)
    pbar = np.zeros(P)
    # counters[5], [6]: the forward replay's Jacobian evaluations and Newton iterations.
    counters = np.zeros(7, dtype=_LONG_DTYPE)
    times = np.ascontiguousarray(step_times)
    sizes = np.ascontiguousarray(h_all)
    W = np.ascontiguousarray(cotangents)
    rows = np.ascontiguousarray(second.rows, dtype=_LONG_DTYPE)
    cols = np.ascontiguousarray(second.cols, dtype=_LONG_DTYPE)
    coefficients = _coefficients()
    controller = None if replayed else _controller()
    budget = REPLAY_BUDGET if replayed else ADAPTIVE_BUDGET["radau"]

    def pointer(array: np.ndarray | None, kind_of: Any = _DOUBLE_P) -> Any:
        return None if array is None else array.ctypes.data_as(kind_of)

    status = _compiled_sweep()(
        (ctypes.c_void_p * 3)(*kernels.pointers), (ctypes.c_void_p * 3)(*second.pointers), int(second.nnz),
        pointer(rows, _LONG_P), pointer(cols, _LONG_P), int(bool(second.autonomous)), n, P, pointer(p_values),
        pointer(y0), pointer(coefficients), pointer(controller), rtol, atol, budget,
        M, pointer(times), pointer(sizes), K, pointer(first, _LONG_P), pointer(index, _LONG_P),
        pointer(kind, _INT_P), pointer(theta), pointer(W), kb, pointer(outputs), pointer(ybar0), pointer(pbar),
        pointer(counters, _LONG_P))
    if status == _REPLAY_FAILED:
        m = int(counters[4])
        t, h = float(step_times[m]), float(h_all[m])
        raise ReplayError(f"Newton did not converge in step {m + 1} at t = {t:g} (h = {h:g}) of the replayed "
                          f"radau-iia-3 solve")
    if status == _OUT_OF_MEMORY:
        raise MemoryError(f"the compiled Radau IIA discrete adjoint ran out of memory ({M} steps, a checkpoint every "
                          f"{kb}); pass a smaller `checkpoint_every`")
    if status != 0:
        raise ValueError(f"the compiled Radau IIA discrete adjoint refused its input (status {status}): the steps, "
                         "output plan, tolerances or checkpoint interval are inconsistent")
    if M == 0:
        outputs_of_a_solve_without_steps(outputs, output_times, float(step_times[0]), y0)
        ybar0 = ybar0 + cotangent_of_a_solve_without_steps(output_times, float(step_times[0]), cotangents)
    gradient = pbar + (kernels.initial_vjp(p_values, ybar0) if P else 0.0)
    return DiscreteAdjointRun(np.asarray(gradient, dtype=float), outputs, M, kb, int(counters[2]), int(counters[3]),
                              int(counters[0]), int(counters[1]),
                              jacobian_evaluations=int(counters[5]), newton_iterations=int(counters[6]))
