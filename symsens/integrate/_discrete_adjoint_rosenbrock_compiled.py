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
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..model import Model
from ._discrete_adjoint import _MAX_SWEEPS, DiscreteAdjointRun, _output_plan, cotangent_of_a_solve_without_steps, \
    outputs_of_a_solve_without_steps, replay_inputs
from ._discrete_adjoint_newton import ReplayError
from ._discrete_adjoint_rosenbrock import rosenbrock_coefficients

__all__ = ["discrete_adjoint_rosenbrock_compiled"]

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_LONG_P = ctypes.POINTER(ctypes.c_long)
_INT_P = ctypes.POINTER(ctypes.c_int)
_LONG_DTYPE = np.dtype(ctypes.c_long)
_KINDS = {"start": 0, "end": 1, "inner": 2}
_SUCCESS, _BAD_INPUT, _SINGULAR_MATRIX = 0, 5, 6
_HEADERS = ("symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_rosenbrock_adjoint.hpp",
            "rosenbrock_adjoint.cpp")


def _core_sources() -> dict[str, str]:
    from importlib import resources

    folder = resources.files("symsens.integrate").joinpath("cpp").joinpath("adjoint")
    return {name: folder.joinpath(name).read_text() for name in _HEADERS}


@lru_cache(maxsize=1)
def _compiled_core() -> Any:
    """The compiled sweep: one library for every model and Rosenbrock scheme.  Floating-point contraction is off
    so that the sweep's sums round as the NumPy sweep's do (no fused multiply-adds)."""
    from ..codegen._build import DEFAULT_FLAGS, build_library, load_library

    path = build_library(_core_sources(), "rosenbrock_adjoint.cpp", flags=(*DEFAULT_FLAGS, "-ffp-contract=off"))
    function = load_library(path).symsens_rosenbrock_adjoint
    function.restype = ctypes.c_int
    function.argtypes = [
        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p), ctypes.c_long, _LONG_P, _LONG_P,
        ctypes.c_int,
        ctypes.c_int, ctypes.c_int, _DOUBLE_P, _DOUBLE_P,
        ctypes.c_int, ctypes.c_double, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _INT_P,
        ctypes.c_long, _DOUBLE_P, _DOUBLE_P,
        ctypes.c_long, _LONG_P, _LONG_P, _INT_P, _DOUBLE_P,
        _DOUBLE_P, ctypes.c_int, ctypes.c_long,
        _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _LONG_P,
    ]
    return function


def _schedule(checkpointing: str, checkpoint_every: int | None, snapshots: int | None, M: int,
              every: int) -> tuple[int, int]:
    """``(0, checkpoint interval)`` for the uniform schedule, ``(1, snapshots)`` for the binomial one, checked as
    the explicit-RK adjoint checks them."""
    if checkpointing not in ("uniform", "binomial"):
        raise ValueError(f"`checkpointing` must be 'uniform' or 'binomial', got {checkpointing!r}")
    if checkpointing == "uniform":
        if snapshots is not None:
            raise ValueError("`snapshots` applies to checkpointing='binomial' only")
        return 0, every
    if checkpoint_every is not None:
        raise ValueError("`checkpoint_every` applies to checkpointing='uniform'; the binomial schedule takes "
                         "`snapshots`")
    if snapshots is None:
        snapshots = max(1, math.ceil(math.log2(M + 1)))
    if not (isinstance(snapshots, (int, np.integer)) and not isinstance(snapshots, bool) and snapshots >= 1):
        raise ValueError(f"`snapshots` must be a positive integer, got {snapshots!r}")
    sweeps = 0
    while math.comb(int(snapshots) + sweeps, int(snapshots)) < M:
        sweeps += 1
    if sweeps > _MAX_SWEEPS:
        # The schedule recurses about r + c deep and costs r sweeps: refuse rather than run for hours.
        raise ValueError(f"`snapshots`: {snapshots} snapshots for {M} steps would advance each step up to "
                         f"{sweeps} times; give at least "
                         f"{next(c for c in range(1, M + 1) if math.comb(c + _MAX_SWEEPS, c) >= M)}")
    return 1, int(snapshots)


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
    n, P, s = model.n_states, len(parameters), coef.stages
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, s + 1)
    if not (np.all(np.isfinite(step_times)) and np.all(np.isfinite(h_all))):
        raise ValueError("`step_times`/`step_sizes` must be finite (the accepted steps of a successful solve)")
    M, K = len(h_all), len(output_times)
    schedule, every = _schedule(checkpointing, checkpoint_every, snapshots, M, kb)
    kernels = loaded_vjp(model, parameters)
    second = loaded_second_order(model, parameters)
    plan = _output_plan(step_times, output_times)
    first = np.zeros(M + 1, dtype=_LONG_DTYPE)
    first[1:] = np.cumsum([len(entries) for entries in plan]) if M else []
    entries = [entry for step_entries in plan for entry in step_entries]
    index = np.ascontiguousarray([k for k, _, _ in entries], dtype=_LONG_DTYPE)
    kind = np.ascontiguousarray([_KINDS[name] for _, name, _ in entries], dtype=np.intc)
    theta = np.ascontiguousarray([value for _, _, value in entries], dtype=float)
    y0 = kernels.initial_conditions(p_values)
    outputs = np.full((K, n), np.nan)
    ybar0 = np.zeros(n)
    pbar = np.zeros(max(P, 1))
    counters = np.zeros(5, dtype=_LONG_DTYPE)
    arrays = [np.ascontiguousarray(a, dtype=float) for a in (coef.a_t, coef.c_t, coef.m, coef.c, coef.gamma_sum)]
    same = np.ascontiguousarray(coef.same_argument, dtype=np.intc)
    times, sizes, W = (np.ascontiguousarray(a) for a in (step_times, h_all, cotangents))
    vjp_pointers = (ctypes.c_void_p * 3)(*kernels.pointers)
    second_pointers = (ctypes.c_void_p * 3)(*second.pointers)

    def pointer(array: np.ndarray, kind_of: Any = _DOUBLE_P) -> Any:
        return array.ctypes.data_as(kind_of)

    status = _compiled_core()(
        vjp_pointers, second_pointers, second.nnz, pointer(second.rows, _LONG_P), pointer(second.cols, _LONG_P),
        int(second.autonomous), n, P, pointer(p_values), pointer(y0),
        s, coef.gamma, *(pointer(a) for a in arrays), pointer(same, _INT_P),
        M, pointer(times), pointer(sizes), K, pointer(first, _LONG_P), pointer(index, _LONG_P),
        pointer(kind, _INT_P), pointer(theta), pointer(W), schedule, every,
        pointer(outputs), pointer(ybar0), pointer(pbar), pointer(counters, _LONG_P))
    if status == _SINGULAR_MATRIX:
        step = int(counters[4])
        raise ReplayError(f"the Rosenbrock matrix W = I/(h gamma) - J of step {step + 1} (t = {times[step]:g}, "
                          f"h = {sizes[step]:g}) is singular or not finite: these are not the steps of a successful "
                          f"{scheme} solve of model {model.name!r} at these parameter values")
    if status != _SUCCESS:
        raise ValueError(f"the compiled Rosenbrock discrete adjoint refused its input (status {status}): the steps, "
                         "output plan or checkpoint interval are inconsistent")
    if M == 0:
        # A solve of no steps outputs y0 at t0: those outputs' cotangents go straight to ybar_0.
        outputs_of_a_solve_without_steps(outputs, output_times, float(step_times[0]), y0)
        ybar0 = ybar0 + cotangent_of_a_solve_without_steps(output_times, float(step_times[0]), cotangents)
    pbar = pbar[:P]
    gradient = pbar + (kernels.initial_vjp(p_values, ybar0) if P else 0.0)
    return DiscreteAdjointRun(np.asarray(gradient, dtype=float), outputs, M, kb if schedule == 0 else 0,
                              int(counters[2]), int(counters[3]), int(counters[0]), int(counters[1]),
                              "uniform" if schedule == 0 else "binomial")
