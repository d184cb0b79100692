"""The continuous adjoints, compiled: forward and backward passes in C++ (interpolating and backsolve).

The equations are those of :func:`symsens.derive.adjoint_system` for a pointwise loss
``L = sum_k l(t_k, y(t_k), p; d_k)``:

    lambda' = -J^T lambda,   lambda(t1) = 0,   lambda(t_k-) = lambda(t_k+) + (dl/dy)^T(t_k),
    dL/dp   = (dy0/dp)^T lambda(t0) + int_{t0}^{t1} F_p^T lambda dt + sum_k (dl/dp)^T(t_k)

(Cao, Li, Petzold & Serban 2003; CVODES's adjoint module, Hindmarsh et al. 2005, Sect. 5).  The forward pass is
the compiled plain solve with the scheme asked for.  Between its accepted step ends, ``y(t)`` is the quintic
Hermite interpolant of ``y``, ``f`` and ``y'' = f_t + J f`` (exact, by forward differentiation), so the
interpolant does not limit high-order schemes; the loss and the jumps at the data times use it too.  The
backward pass (``cpp/adjoint/symsens_continuous_adjoint.hpp``) integrates ``lambda`` with the same compiled
stepper in reversed time, with its own tolerances, segment by segment between the data times, and
``int F_p^T lambda dt`` as a three-point Gauss–Legendre quadrature over the pieces of each accepted backward step
between forward step ends (so an implicit stepper factors an n x n matrix whatever the number of parameters,
and a fast transient of ``y`` that the smooth ``lambda`` steps over is still integrated).  ``backsolve``
integrates ``(y, lambda)`` backwards together instead (Chen et al. 2018), resetting ``y`` to the forward value at
each data time and recording the distance.  The jumps ``dl/dy`` and ``dl/dp``, the loss and
``(dy0/dp)^T lambda(t0)`` are the exact expressions of the adjoint system, evaluated in Python at the K data
times only.

Compared with the SciPy implementation (:func:`symsens.integrate.adjoint_gradient`), which integrates
``(lambda, mu)`` with ``solve_ivp`` over NumPy kernels and takes ``y(t)`` from SciPy's dense output, this one
runs every right-hand side, Jacobian and quadrature node in compiled code, takes ``y(t)`` from the symsens
forward solve itself, and accepts every compiled scheme but the exponential integrators.  Integral loss terms
are not compiled; they stay with the SciPy implementation.

Two libraries, cached like the solver libraries: one per (model, scheme) with the model's routines, the
stepper and the two passes, and the model's transposed products ``J^T v`` and ``F_p^T v`` over their structural
non-zeros for the gradient's parameters (:mod:`symsens.codegen._vjp`), passed to the first as function pointers;
so the number of parameters is a run-time quantity and compile time does not grow with it.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import STATUS_NAMES
from ..codegen._build import load_library
from ..codegen._kernels import cached_build
from ..codegen._printer import CodegenError
from ..codegen._runtime import runtime_header
from ..codegen._vjp import KERNEL_NAMES, loaded_vjp
from ..derive import AdjointSystem
from ..model._model import Model
from ._adjoint import ADJOINT_VARIANTS, AdjointRun, _kernels, _restart_times
from ._compiled import (
    _DRIVER_COMMON, OptionsStruct, StatsStruct, _solver_header_sources, method_spec,
)

__all__ = ["compiled_adjoint_gradient", "COMPILED_ADJOINT_FAMILIES", "runs_compiled"]

#: Scheme families whose compiled stepper also integrates the adjoint.
COMPILED_ADJOINT_FAMILIES = frozenset({"explicit", "dirk", "radau", "rosenbrock", "bdf"})

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def runs_compiled(method: str) -> bool:
    """Whether the compiled adjoint runs ``method``: an adaptive scheme of a family in
    :data:`COMPILED_ADJOINT_FAMILIES` (False for an unknown name)."""
    from ._compiled import _ALIASES

    try:
        spec = method_spec(_ALIASES.get(method, method))
    except Exception:
        return False
    return spec.family in COMPILED_ADJOINT_FAMILIES and spec.error_order is not None

_UNIT = r"""#include "driver_common.hpp"
#include "symsens_continuous_adjoint.hpp"

extern "C" {

SYMSENS_EXPORT int symsens_adjoint_dimensions(int* dims) {
    dims[0] = M::n_states;
    dims[1] = M::n_parameters;
    dims[2] = M::n_sensitivity_parameters;
    return 0;
}

// y at the query times from the forward steps' cubic Hermite interpolant (the one the backward pass uses).
SYMSENS_EXPORT int symsens_adjoint_states(const double* p, long n_steps, const double* step_times,
                                         const double* step_states, long n_query, const double* query, double* out) {
    symsens::Stats stats{};
    symsens::ForwardTrajectory<M> trajectory;
    trajectory.build(p, n_steps, step_times, step_states, stats);
    for (long q = 0; q < n_query; ++q) trajectory.at(query[q], out + q * M::n_states);
    return 0;
}

static symsens::TransposedProducts products_of(const void* state, const void* parameters, int n_parameters) {
    return symsens::TransposedProducts{reinterpret_cast<symsens::TransposedProducts::Product>(const_cast<void*>(state)),
                                       reinterpret_cast<symsens::TransposedProducts::Product>(const_cast<void*>(parameters)),
                                       n_parameters};
}

SYMSENS_EXPORT int symsens_continuous_adjoint(const void* state_product, const void* parameter_product,
                                             int n_gradient, const double* p, long n_steps, const double* step_times,
                                             const double* step_states, const double* lambda_t1, long n_stops,
                                             const double* stops, const double* jumps,
                                             const symsens::Options* options, double* lambda_out, double* mu_out,
                                             symsens::Stats* stats) {
    auto segment = [](const symsens::AdjointProblem<M>& problem, double* lambda, double s0, double s1,
                      const symsens::Options& o, double* out, long capacity, double* times, double* sizes,
                      long* count, symsens::Stats& segment_stats) {
        return run<double, double>(problem, lambda, s0, s1, nullptr, capacity, o, out, times, sizes, count,
                                   segment_stats);
    };
    const symsens::TransposedProducts products = products_of(state_product, parameter_product, n_gradient);
    return symsens::continuous_adjoint<M>(segment, products, p, n_steps, step_times, step_states, lambda_t1, n_stops,
                                          stops, jumps, *options, lambda_out, mu_out, *stats);
}

SYMSENS_EXPORT int symsens_backsolve_adjoint(const void* state_product, const void* parameter_product,
                                            int n_gradient, const double* p, double t1, const double* y_t1, const double* lambda_t1,
                                            long n_stops, const double* stops, const double* stop_states,
                                            const double* jumps, double scale, const symsens::Options* options,
                                            double* lambda_out, double* mu_out, double* errors_out, long* n_errors,
                                            symsens::Stats* stats) {
    auto segment = [](const symsens::BacksolveProblem<M>& problem, double* z, double s0, double s1,
                      const symsens::Options& o, double* out, long capacity, double* times, double* sizes,
                      long* count, symsens::Stats& segment_stats) {
        return run<double, double>(problem, z, s0, s1, nullptr, capacity, o, out, times, sizes, count, segment_stats);
    };
    const symsens::TransposedProducts products = products_of(state_product, parameter_product, n_gradient);
    return symsens::backsolve_adjoint<M>(segment, products, p, t1, y_t1, lambda_t1, n_stops, stops, stop_states,
                                         jumps, scale, *options, lambda_out, mu_out, errors_out, n_errors, *stats);
}

}  // extern "C"
"""

_UNITS = ("adjoint.cpp",)


@dataclass(frozen=True)
class _Library:
    path: Path
    n_states: int
    n_parameters: int
    n_sensitivity_parameters: int
    states: ctypes._CFuncPtr
    adjoint: ctypes._CFuncPtr
    backsolve: ctypes._CFuncPtr


_HEADER = "symsens_continuous_adjoint.hpp"


def _adjoint_header() -> str:
    """The pass's own header, kept apart from the solver headers (``cpp/adjoint/``) so that the solver libraries,
    which take every header of ``cpp/``, do not depend on it."""
    from importlib import resources

    return resources.files("symsens.integrate").joinpath("cpp").joinpath("adjoint").joinpath(_HEADER).read_text()


def _purpose(method: str) -> str:
    spec = method_spec(method)
    header = _adjoint_header()
    text = "\0".join((_DRIVER_COMMON, _UNIT, header, spec.header, spec.stepper))
    return f"continuous-adjoint:{method}:" + hashlib.sha256(text.encode()).hexdigest()


# Loaded libraries by (id(model), parameters, method), with the model kept to check the id is still its own:
# hashing a Model hashes its expressions, which costs more than a whole small backward pass.
_loaded: dict[tuple[int, str], tuple[Model, _Library]] = {}


def _library(model: Model, method: str) -> _Library:
    """The adjoint library of ``model`` and ``method``: the model's own routines (no sensitivity parameters; the
    gradient's parameters enter through the transposed products), the scheme's stepper, the two passes."""
    key = (id(model), method)
    hit = _loaded.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    spec = method_spec(method)
    if spec.family not in COMPILED_ADJOINT_FAMILIES:
        raise ValueError(f"the compiled adjoint does not run the {spec.family} scheme {method!r}; use an explicit, "
                         "SDIRK/ESDIRK, Radau IIA, Rosenbrock or BDF scheme")

    def sources(source):  # type: ignore[no-untyped-def]
        # The adjoint problem depends on t through y(t) even when f does not: never the autonomous shortcut; and
        # its Jacobian is J^T, whose pattern the generated sparsity does not describe: dense linear algebra.
        common = _DRIVER_COMMON.replace("@HEADER@", spec.header).replace("@TABLEAU@", spec.tableau_code)
        common = common.replace("@STEPPER@", spec.stepper).replace("@AUTONOMOUS@", "false").replace("@LINEAR@", "1")
        return {"symsens_runtime.hpp": runtime_header(), "model.hpp": source.code, "driver_common.hpp": common,
                "adjoint.cpp": _UNIT, _HEADER: _adjoint_header(), **_solver_header_sources()}

    _, path, _ = cached_build(model, [], _purpose(method), sources, _UNITS)
    handle = load_library(path)
    dims = (ctypes.c_int * 3)()
    handle.symsens_adjoint_dimensions(dims)
    if dims[0] != model.n_states or dims[1] != model.n_parameters:
        raise CodegenError(f"compiled adjoint {path} does not match model {model.name!r}")
    states = handle.symsens_adjoint_states
    states.restype = ctypes.c_int
    states.argtypes = [_DOUBLE_P, ctypes.c_long, _DOUBLE_P, _DOUBLE_P, ctypes.c_long, _DOUBLE_P, _DOUBLE_P]
    adjoint = handle.symsens_continuous_adjoint
    adjoint.restype = ctypes.c_int
    adjoint.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, _DOUBLE_P, ctypes.c_long, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, ctypes.c_long, _DOUBLE_P,
                        _DOUBLE_P, ctypes.POINTER(OptionsStruct), _DOUBLE_P, _DOUBLE_P, ctypes.POINTER(StatsStruct)]
    backsolve = handle.symsens_backsolve_adjoint
    backsolve.restype = ctypes.c_int
    backsolve.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, _DOUBLE_P, ctypes.c_double, _DOUBLE_P, _DOUBLE_P, ctypes.c_long, _DOUBLE_P, _DOUBLE_P,
                          _DOUBLE_P, ctypes.c_double, ctypes.POINTER(OptionsStruct), _DOUBLE_P, _DOUBLE_P, _DOUBLE_P,
                          ctypes.POINTER(ctypes.c_long), ctypes.POINTER(StatsStruct)]
    library = _Library(path, dims[0], dims[1], dims[2], states, adjoint, backsolve)
    if len(_loaded) > 64:
        _loaded.clear()
    _loaded[key] = (model, library)
    return library


def _pointer(array: np.ndarray) -> ctypes._Pointer:  # type: ignore[type-arg]
    return array.ctypes.data_as(_DOUBLE_P)


def _counters(stats: StatsStruct) -> dict[str, int]:
    return {"steps": int(stats.accepted), "rhs_evaluations": int(stats.nfev),
            "jacobian_evaluations": int(stats.njev), "lu_decompositions": int(stats.nlu)}


def compiled_adjoint_gradient(
    system: AdjointSystem,
    t_span: tuple[float, float],
    p: np.ndarray,
    *,
    times: np.ndarray | None = None,
    data: np.ndarray | None = None,
    method: str = "rodas4",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    max_steps: int = 100_000,
    variant: str = "interpolating",
) -> AdjointRun:
    """``L`` and ``dL/dp`` by a continuous adjoint, forward and backward passes compiled.

    The maths is in the module docstring; ``variant`` is ``"interpolating"`` or ``"backsolve"``.  ``system`` must have no integral term (those run with
    :func:`symsens.integrate.adjoint_gradient`); ``method`` is a compiled scheme (explicit Runge–Kutta,
    SDIRK/ESDIRK, Radau IIA, Rosenbrock or BDF); ``p`` holds all the model's parameters in the model's order;
    ``times``/``data`` are the data times (inside ``t_span``) and the values of the system's data symbols there.

    Returns an :class:`AdjointRun`; a failed forward or backward pass gives its status, the time and no gradient.
    """
    from ._solve import solve

    if variant not in ADJOINT_VARIANTS:
        raise ValueError(f"`variant` must be one of {', '.join(ADJOINT_VARIANTS)}, got {variant!r}")
    if system.has_integral:
        raise ValueError("the compiled adjoint handles pointwise losses only; a loss with an integral term runs "
                         "with symsens.integrate.adjoint_gradient (SciPy)")
    model = system.model
    parameters = tuple(symbol.name for symbol in system.parameters)
    spec = method_spec(method)
    if spec.error_order is None:
        raise ValueError(f"method {method!r} has no embedded error estimate: the adjoint needs an adaptive scheme")
    library = _library(model, method)
    products = loaded_vjp(model, parameters)
    pointers = dict(zip(KERNEL_NAMES, products.pointers))
    state_product, parameter_product = pointers["vjp_state"], pointers["vjp_parameters"]
    k = _kernels(system)
    n, P = k.n, k.P
    t0, t1 = float(t_span[0]), float(t_span[1])
    p = np.ascontiguousarray(p, dtype=float)
    times = np.zeros(0) if times is None or not system.has_pointwise else np.asarray(times, dtype=float)
    d_rows = (np.zeros((len(times), k.n_data)) if data is None
              else np.asarray(data, dtype=float).reshape(len(times), k.n_data))
    a_rtol = rtol if adjoint_rtol is None else float(adjoint_rtol)
    a_atol = atol if adjoint_atol is None else float(adjoint_atol)

    forward = solve(model, (t0, t1), p=p, method=method, rtol=rtol, atol=atol, max_steps=max_steps)
    forward_counts = {"steps": forward.stats.accepted_steps, "rhs_evaluations": forward.stats.rhs_evaluations,
                      "jacobian_evaluations": forward.stats.jacobian_evaluations,
                      "lu_decompositions": forward.stats.lu_decompositions}
    if forward.status != "success":
        return AdjointRun(None, None, forward.status, f"forward pass: {forward.message}", forward.t_failure,
                          forward_counts, {})
    step_times = np.ascontiguousarray(forward.t, dtype=float)
    step_states = np.ascontiguousarray(forward.y, dtype=float)

    # The loss and the jumps, from the forward interpolant at the data times.
    loss = 0.0
    parameter_jumps = np.zeros(P)
    jumps_at: dict[float, np.ndarray] = {}
    if len(times):
        query = np.ascontiguousarray(times, dtype=float)
        states = np.empty((len(query), n))
        library.states(_pointer(p), len(step_times), _pointer(step_times), _pointer(step_states), len(query),
                       _pointer(query), _pointer(states))
        for tk, yk, dk in zip(times, states, d_rows):
            args = k.pack(float(tk), yk, None, p, dk)
            loss += float(k.pointwise(*args)[0])
            jump = k.jumps(*args)
            jumps_at[float(tk)] = jumps_at.get(float(tk), np.zeros(n)) + jump[:n]
            parameter_jumps += jump[n:]
    if not math.isfinite(loss):
        return AdjointRun(None, None, "non-finite values", "the loss is not finite on the forward solution", None,
                          forward_counts, {})

    stops = np.ascontiguousarray(_restart_times(times, t0, t1), dtype=float)
    jumps = np.ascontiguousarray([jumps_at.get(float(s), np.zeros(n)) for s in stops], dtype=float).reshape(-1)
    lambda_t1 = np.ascontiguousarray(jumps_at.get(t1, np.zeros(n)), dtype=float)
    q = spec.error_order or spec.order
    settings = {"safety": 0.9, "factor_min": 0.2, "factor_max": 10.0, "beta1": 0.7 / q, "beta2": 0.4 / q}
    settings.update(spec.controller)
    options = OptionsStruct(rtol=a_rtol, atol=a_atol, first_step=0.0, max_step=0.0, min_step=0.0,
                            max_steps=int(max_steps), record_steps=1, outputs_at_steps=1, **settings)
    lambda_t0 = np.zeros(n)
    mu = np.zeros(max(P, 1))
    stats = StatsStruct()
    extra: dict[str, object] = {}
    if variant == "interpolating":
        status = library.adjoint(state_product, parameter_product, P, _pointer(p), len(step_times), _pointer(step_times), _pointer(step_states),
                                 _pointer(lambda_t1), len(stops), _pointer(stops), _pointer(jumps),
                                 ctypes.byref(options), _pointer(lambda_t0), _pointer(mu), ctypes.byref(stats))
    else:
        # The forward values where the state is reset: the data times below t1 (from the same interpolant as
        # the loss), then y0.
        stop_states = np.empty((len(stops), n))
        library.states(_pointer(p), len(step_times), _pointer(step_times), _pointer(step_states), len(stops),
                       _pointer(stops), _pointer(stop_states))
        stop_states[-1] = step_states[0]
        y0 = step_states[0]
        scale = max(float(np.max(np.abs(y0))) if n else 0.0, float(np.min(np.atleast_1d(atol))))
        errors = np.zeros(len(stops))
        reached = ctypes.c_long(0)
        status = library.backsolve(state_product, parameter_product, P, _pointer(p), t1, _pointer(np.ascontiguousarray(step_states[-1])),
                                   _pointer(lambda_t1), len(stops), _pointer(stops),
                                   _pointer(np.ascontiguousarray(stop_states)), _pointer(jumps), scale,
                                   ctypes.byref(options), _pointer(lambda_t0), _pointer(mu), _pointer(errors),
                                   ctypes.byref(reached), ctypes.byref(stats))
        errors = errors[: reached.value].copy()
        extra = {"reconstruction_errors": errors}
        if status == 0:
            extra["y0_reconstruction_error"] = float(errors[-1]) if len(errors) else 0.0
    backward_counts = _counters(stats)
    if status != 0:
        name = STATUS_NAMES.get(status, f"status {status}")
        return AdjointRun(loss, None, name, f"backward pass: {name} at t = {stats.t_failure:.17g}",
                          float(stats.t_failure), forward_counts, backward_counts, **extra)  # type: ignore[arg-type]
    gradient = k.initial_gradient(*k.pack(t0, None, lambda_t0, p, None)) + mu[:P] + parameter_jumps
    if not np.all(np.isfinite(gradient)):
        return AdjointRun(loss, None, "non-finite values", "the adjoint gradient is not finite", t0, forward_counts,
                          backward_counts, **extra)  # type: ignore[arg-type]
    message = (f"{variant} adjoint, compiled {method}: {forward_counts['steps']} forward and "
               f"{backward_counts['steps']} backward steps")
    if variant == "backsolve":
        worst = float(np.max(extra["reconstruction_errors"])) if len(extra["reconstruction_errors"]) else 0.0  # type: ignore[arg-type]
        if worst > math.sqrt(max(rtol, a_rtol)):
            message += (f"; the backward state solve missed the forward states by up to {worst:.3g} (relative): "
                        "the gradient is unreliable (use the interpolating adjoint)")
    return AdjointRun(loss, np.asarray(gradient, dtype=float), "success", message, None, forward_counts,
                      backward_counts, **extra)  # type: ignore[arg-type]
