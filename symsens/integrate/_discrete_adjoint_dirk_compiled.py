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
from functools import lru_cache
from typing import Any

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun, _output_plan, cotangent_of_a_solve_without_steps, \
    outputs_of_a_solve_without_steps, replay_inputs
from ._discrete_adjoint_dirk import dirk_coefficients
from ._discrete_adjoint_newton import ADAPTIVE_BUDGET, REPLAY_BUDGET, Controller, ReplayError

__all__ = ["discrete_adjoint_dirk_compiled"]

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_LONG_P = ctypes.POINTER(ctypes.c_long)
_INT_P = ctypes.POINTER(ctypes.c_int)
_LONG_DTYPE = np.dtype(ctypes.c_long)
_KINDS = {"start": 0, "end": 1, "inner": 2}
_SUCCESS, _REPLAY_FAILED = 0, 6
_HEADERS = ("symsens_erk_adjoint.hpp", "symsens_implicit_adjoint_common.hpp", "symsens_newton_replay.hpp",
            "symsens_dirk_adjoint.hpp", "dirk_adjoint.cpp")


def _core_sources() -> dict[str, str]:
    from importlib import resources

    folder = resources.files("symsens.integrate").joinpath("cpp").joinpath("adjoint")
    return {name: folder.joinpath(name).read_text() for name in _HEADERS}


@lru_cache(maxsize=1)
def _compiled_core() -> Any:
    """The compiled sweep: one library for every model and scheme (content-keyed cache of
    :func:`symsens.codegen._build.build_library`), without floating-point contraction so that its sums round as
    the NumPy sweep's do."""
    from ..codegen._build import DEFAULT_FLAGS, build_library, load_library

    path = build_library(_core_sources(), "dirk_adjoint.cpp", flags=(*DEFAULT_FLAGS, "-ffp-contract=off"))
    function = load_library(path).symsens_dirk_adjoint
    function.restype = ctypes.c_int
    function.argtypes = [
        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p), ctypes.c_long, _LONG_P, _LONG_P,
        ctypes.c_int, ctypes.c_int, _DOUBLE_P, _DOUBLE_P,
        ctypes.c_int, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, ctypes.c_double, _INT_P,
        ctypes.c_double, ctypes.c_double, ctypes.c_int, _DOUBLE_P,
        ctypes.c_long, _DOUBLE_P, _DOUBLE_P,
        ctypes.c_long, _LONG_P, _LONG_P, _INT_P, _DOUBLE_P,
        _DOUBLE_P, ctypes.c_long,
        _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _LONG_P,
    ]
    return function


def _checked_parameters(model: Model, p: Sequence[float] | np.ndarray, parameters: Sequence[str]
                        ) -> tuple[np.ndarray, tuple[str, ...]]:
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
    return p_values, parameters


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
    p_values, parameters = _checked_parameters(model, p, parameters)
    rtol, atol = float(rtol), float(atol)
    if not (np.isfinite(rtol) and rtol > 0.0):
        raise ValueError(f"`rtol` must be positive and finite, got {rtol!r}")
    if not (np.isfinite(atol) and atol >= 0.0):
        raise ValueError(f"`atol` must be non-negative and finite, got {atol!r}")
    n, P, s = model.n_states, len(parameters), coef.stages
    step_times, h_all, output_times, cotangents, kb = replay_inputs(
        step_times, step_sizes, output_times, cotangents, n, checkpoint_every, 4 * s)
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
    A = np.ascontiguousarray(coef.A, dtype=float)
    b = np.ascontiguousarray(coef.b, dtype=float)
    c = np.ascontiguousarray(coef.c, dtype=float)
    e = np.ascontiguousarray(coef.e, dtype=float)
    flags = np.array([int(coef.explicit_first_stage), int(coef.stiffly_accurate)], dtype=np.intc)
    # The controller's rules re-enact the rejected attempts of an adaptive solve (none with replayed steps).
    if replayed or not np.any(e):
        controller = None
    else:
        rules = Controller.of(scheme)
        controller = np.array([rules.safety, rules.factor_min, rules.factor_max, rules.beta1, rules.beta2,
                               float(rules.error_order)])
    budget = REPLAY_BUDGET if replayed else ADAPTIVE_BUDGET["dirk"]
    times = np.ascontiguousarray(step_times)
    sizes = np.ascontiguousarray(h_all)
    W = np.ascontiguousarray(cotangents)
    rows = np.ascontiguousarray(second.rows, dtype=_LONG_DTYPE)
    cols = np.ascontiguousarray(second.cols, dtype=_LONG_DTYPE)
    first_pointers = (ctypes.c_void_p * 3)(*kernels.pointers)
    second_pointers = (ctypes.c_void_p * 3)(*second.pointers)

    def pointer(array: np.ndarray | None, kind_of: Any = _DOUBLE_P) -> Any:
        return None if array is None else array.ctypes.data_as(kind_of)

    status = _compiled_core()(
        first_pointers, second_pointers, int(second.nnz), pointer(rows, _LONG_P), pointer(cols, _LONG_P),
        n, P, pointer(p_values), pointer(y0),
        s, pointer(A), pointer(b), pointer(c), pointer(e), float(coef.gamma), pointer(flags, _INT_P),
        rtol, atol, int(budget), pointer(controller),
        M, pointer(times), pointer(sizes), K, pointer(first, _LONG_P), pointer(index, _LONG_P),
        pointer(kind, _INT_P), pointer(theta), pointer(W), kb,
        pointer(outputs), pointer(ybar0), pointer(pbar), pointer(counters, _LONG_P))
    if status == _REPLAY_FAILED:
        n_ = int(counters[4])
        raise ReplayError(f"Newton did not converge in step {n_ + 1} at t = {float(step_times[n_]):g} "
                          f"(h = {float(h_all[n_]):g}) of the replayed {scheme} solve")
    if status != _SUCCESS:
        raise ValueError(f"the compiled discrete adjoint refused its input (status {status}): the steps, output "
                         "plan or checkpoint interval are inconsistent")
    if M == 0:
        outputs_of_a_solve_without_steps(outputs, output_times, float(step_times[0]), y0)
        ybar0 = ybar0 + cotangent_of_a_solve_without_steps(output_times, float(step_times[0]), cotangents)
    gradient = pbar + (kernels.initial_vjp(p_values, ybar0) if P else 0.0)
    return DiscreteAdjointRun(np.asarray(gradient, dtype=float), outputs, M, kb, int(counters[2]),
                              int(counters[3]), int(counters[0]), int(counters[1]),
                              jacobian_evaluations=int(counters[5]), newton_iterations=int(counters[6]))
