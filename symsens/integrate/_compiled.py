"""The compiled backend: one generated C++ driver per (model, sensitivity parameters, method).

generate (model routines from ``symsens.codegen`` + the scheme's exact coefficients printed into a driver)
-> build (``symsens.codegen._build``, cached by content hash) -> load (ctypes) -> call ``symsens_solve``
once per solve.  The whole integration runs in C++; Python only prepares buffers and reads results.

The driver instantiates the integrator four ways, selected by ``mode`` at call time:

====  ===================================  ================================================================
mode  scalar / time types                  what it computes
====  ===================================  ================================================================
0     double / double                      the solution only
1     double / double, augmented (y, S)    continuous forward sensitivities ``S' = J S + F_p``
2     Dual<double, P> / double             discrete forward mode: the exact derivative of the numerical
                                           solution with the step sizes held constant (forward-mode AD
                                           through the solver, as ForwardDiff through OrdinaryDiffEq)
3     Dual<double, P> / Dual<double, P>    discrete forward mode with the step sizes differentiated too
                                           (AD through the step-size controller)
====  ===================================  ================================================================
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import sympy as sp

from ..codegen._build import load_library
from ..codegen._kernels import cached_build
from ..codegen._printer import CodegenError, ConstantTable
from ..codegen._runtime import runtime_header
from ..model import Model

__all__ = ["CompiledSolver", "compiled_solver", "OptionsStruct", "StatsStruct", "MODE_PLAIN", "MODE_FORWARD", "MODE_DISCRETE", "MODE_DISCRETE_STEPS"]

MODE_PLAIN, MODE_FORWARD, MODE_DISCRETE, MODE_DISCRETE_STEPS = 0, 1, 2, 3


class OptionsStruct(ctypes.Structure):
    """Mirror of ``symsens::Options`` (symsens_solver.hpp); field order and types must match."""

    _fields_ = [
        ("rtol", ctypes.c_double),
        ("atol", ctypes.c_double),
        ("first_step", ctypes.c_double),
        ("max_step", ctypes.c_double),
        ("min_step", ctypes.c_double),
        ("max_steps", ctypes.c_long),
        ("tangents_in_norm", ctypes.c_int),
        ("differentiate_steps", ctypes.c_int),
        ("fixed_step", ctypes.c_int),
        ("step_onto_outputs", ctypes.c_int),
        ("n_replay", ctypes.c_long),
        ("replay_steps", ctypes.POINTER(ctypes.c_double)),
        ("safety", ctypes.c_double),
        ("factor_min", ctypes.c_double),
        ("factor_max", ctypes.c_double),
        ("beta1", ctypes.c_double),
        ("beta2", ctypes.c_double),
        ("record_steps", ctypes.c_int),
    ]


class StatsStruct(ctypes.Structure):
    """Mirror of ``symsens::Stats``."""

    _fields_ = [
        ("accepted", ctypes.c_long),
        ("rejected", ctypes.c_long),
        ("nfev", ctypes.c_long),
        ("njev", ctypes.c_long),
        ("nlu", ctypes.c_long),
        ("newton_iterations", ctypes.c_long),
        ("status", ctypes.c_int),
        ("t_failure", ctypes.c_double),
    ]


@dataclass(frozen=True)
class MethodSpec:
    """How a method name maps to a C++ stepper: its family, header and the tableau initialiser."""

    name: str
    family: str           # "explicit" (more families join as their steppers land)
    header: str
    stepper: str          # C++ expression constructing the stepper for scalar T and dimension `dimension`
    tableau_code: str     # C++ defining `template <class T> ... make_tableau()`
    order: int
    error_order: int | None  # None: no embedded estimate (fixed steps only)


def _coefficient_table(values: Sequence[sp.Expr], constants: ConstantTable) -> str:
    return ", ".join(f"c[{constants.index(sp.nsimplify(v) if isinstance(v, float) else v)}]" for v in values)


def _explicit_spec(name: str) -> MethodSpec:
    from ..schemes._registry import get_scheme

    scheme = get_scheme(name)
    if scheme.family != "explicit":
        raise CodegenError(f"{name!r} is not an explicit Runge–Kutta scheme")
    s = scheme.stages
    constants = ConstantTable()
    zero = sp.S.Zero
    a = [scheme.A[i][j] for i in range(s) for j in range(s)]
    b = list(scheme.b)
    if scheme.b_error is not None:
        e = [bi - bh for bi, bh in zip(scheme.b, scheme.b_error)]
        # The estimate is the difference of orders p and p_hat: it behaves like h^(min(p, p_hat) + 1).
        error_order = min(scheme.order, scheme.embedded_order if scheme.embedded_order is not None else scheme.order - 1) + 1
    else:
        e = [zero] * s
        error_order = None
    lines = [
        "template <class T>",
        "symsens::ExplicitTableau<T> make_tableau() {",
        "    const T* c = tableau_constants<T>();",
        "    symsens::ExplicitTableau<T> tab;",
        f"    tab.stages = {s};",
        f"    tab.error_order = {error_order or scheme.order};",
        f"    tab.fsal = {'true' if scheme.fsal else 'false'};",
        f"    tab.a = {{{_coefficient_table(a, constants)}}};",
        f"    tab.b = {{{_coefficient_table(b, constants)}}};",
        f"    tab.e = {{{_coefficient_table(e, constants)}}};",
        f"    tab.c = {{{_coefficient_table(list(scheme.c), constants)}}};",
        "    return tab;",
        "}",
    ]
    table = constants.initialisers()
    init = ",\n".join(f"        symsens::constant<T>({d}, \"{dec}\")" for d, dec in table)
    preamble = (
        "template <class T>\ninline const T* tableau_constants() {\n"
        f"    static const T table[{len(table)}] = {{\n{init}\n    }};\n    return table;\n}}\n\n"
    )
    return MethodSpec(
        name=name,
        family="explicit",
        header="symsens_erk.hpp",
        stepper="symsens::ExplicitRungeKutta<T>(make_tableau<T>(), dimension)",
        tableau_code=preamble + "\n".join(lines) + "\n",
        order=scheme.order,
        error_order=error_order,
    )


EXPLICIT_METHODS: tuple[str, ...] = ("euler", "heun", "rk4", "bs3", "dopri5", "tsit5", "verner6", "verner7")


def method_spec(name: str) -> MethodSpec:
    """The compiled implementation of method ``name``; ValueError naming the methods available."""
    if name in EXPLICIT_METHODS:
        return _explicit_spec(name)
    raise ValueError(
        f"method {name!r} has no compiled integrator yet; available: {', '.join(EXPLICIT_METHODS)}"
    )


_DRIVER = r"""
#include "model.hpp"
#include "symsens_solver.hpp"
#include "@HEADER@"

#define SYMSENS_EXPORT __attribute__((visibility("default")))

namespace {

struct M {
    static constexpr int n_states = symsens_model::n_states;
    static constexpr int n_parameters = symsens_model::n_parameters;
    static constexpr int n_sensitivity_parameters = symsens_model::n_sensitivity_parameters;
    template <class T> static void rhs(const T& t, const T* y, const T* p, T* f) { symsens_model::rhs<T>(t, y, p, f); }
    template <class T> static void jacobian(const T& t, const T* y, const T* p, T* J) { symsens_model::jacobian<T>(t, y, p, J); }
    template <class T> static void augmented_rhs(const T& t, const T* u, const T* p, T* g) { symsens_model::augmented_rhs<T>(t, u, p, g); }
};

@TABLEAU@

constexpr int P = M::n_sensitivity_parameters > 0 ? M::n_sensitivity_parameters : 1;
using D = symsens::Dual<double, P>;

template <class T, class Time, class Problem>
int run(const Problem& problem, T* y, double t0, double t1, const double* t_eval, long n_eval,
        const symsens::Options& o, T* out, double* step_times, double* step_sizes, long* n_steps, symsens::Stats& stats) {
    const int dimension = problem.dimension();
    auto stepper = @STEPPER@;
    symsens::Recorder<T, Time> recorder{t_eval, n_eval, 0, dimension, out, {}, {}, o.record_steps != 0};
    const int status = symsens::drive<T, Time>(problem, stepper, t0, t1, y, o, recorder, stats);
    const long capacity = o.max_steps + 1;
    long count = static_cast<long>(recorder.step_times.size());
    if (count > capacity) count = capacity;
    for (long k = 0; k < count; ++k) step_times[k] = recorder.step_times[k];
    for (long k = 0; k + 1 < count; ++k) step_sizes[k] = recorder.step_sizes[k];
    *n_steps = count;
    return status;
}

}  // namespace

extern "C" {

SYMSENS_EXPORT int symsens_solver_dimensions(int* dims) {
    dims[0] = M::n_states;
    dims[1] = M::n_parameters;
    dims[2] = M::n_sensitivity_parameters;
    return 0;
}

// y0, S0: initial values (n) and sensitivities (n x Ps, column-major per parameter); NULL: the model's.
SYMSENS_EXPORT int symsens_solve(int mode, const double* p, const double* y0, const double* S0, double t0, double t1,
                                 const double* t_eval, long n_eval, const symsens::Options* options,
                                 double* y_out, double* sens_out, double* step_times, double* step_sizes,
                                 long* n_steps, symsens::Stats* stats) {
    constexpr int n = M::n_states;
    constexpr int np = M::n_sensitivity_parameters;
    const symsens::Options& o = *options;
    double y_init[n];
    if (y0) { for (int i = 0; i < n; ++i) y_init[i] = y0[i]; } else { symsens_model::initial_conditions<double>(p, y_init); }
    std::vector<double> s_init(n * (np > 0 ? np : 1), 0.0);
    if (S0) { for (int k = 0; k < n * np; ++k) s_init[k] = S0[k]; }
    else if (!y0) { symsens_model::initial_sensitivities<double>(p, s_init.data()); }
    if (mode == 0) {
        symsens::ModelProblem<M, double> problem{p, stats};
        std::vector<double> y(y_init, y_init + n);
        return run<double, double>(problem, y.data(), t0, t1, t_eval, n_eval, o, y_out, step_times, step_sizes, n_steps, *stats);
    }
    if (mode == 1) {
        symsens::AugmentedProblem<M> problem{p, stats, o.tangents_in_norm != 0};
        const int N = n * (np + 1);
        std::vector<double> u(N), out(static_cast<size_t>(n_eval) * N);
        for (int i = 0; i < n; ++i) u[i] = y_init[i];
        for (int k = 0; k < n * np; ++k) u[n + k] = s_init[k];
        const int status = run<double, double>(problem, u.data(), t0, t1, t_eval, n_eval, o, out.data(), step_times, step_sizes, n_steps, *stats);
        for (long e = 0; e < n_eval; ++e)
            for (int i = 0; i < n; ++i) {
                y_out[e * n + i] = out[e * N + i];
                for (int j = 0; j < np; ++j) sens_out[(e * n + i) * np + j] = out[e * N + n + j * n + i];
            }
        return status;
    }
    // Discrete forward mode: parameters and initial values as duals seeded with d/dp_j.
    std::vector<D> pd(M::n_parameters), y(n), out(static_cast<size_t>(n_eval) * n);
    for (int k = 0; k < M::n_parameters; ++k) pd[k] = D(p[k]);
    for (int j = 0; j < np; ++j) pd[symsens_model::sensitivity_parameters[j]].d[j] = 1.0;
    for (int i = 0; i < n; ++i) {
        y[i] = D(y_init[i]);
        for (int j = 0; j < np; ++j) y[i].d[j] = s_init[j * n + i];
    }
    symsens::ModelProblem<M, D> problem{pd.data(), stats};
    int status;
    if (mode == 2) {
        status = run<D, double>(problem, y.data(), t0, t1, t_eval, n_eval, o, out.data(), step_times, step_sizes, n_steps, *stats);
    } else {
        status = run<D, D>(problem, y.data(), t0, t1, t_eval, n_eval, o, out.data(), step_times, step_sizes, n_steps, *stats);
    }
    for (long e = 0; e < n_eval; ++e)
        for (int i = 0; i < n; ++i) {
            y_out[e * n + i] = out[e * n + i].v;
            for (int j = 0; j < np; ++j) sens_out[(e * n + i) * np + j] = out[e * n + i].d[j];
        }
    return status;
}

}  // extern "C"
"""


def _solver_header_sources() -> dict[str, str]:
    package = resources.files("symsens.integrate").joinpath("cpp")
    return {entry.name: entry.read_text() for entry in package.iterdir() if entry.name.endswith(".hpp")}


_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


@dataclass
class CompiledSolver:
    """A loaded ``symsens_solve`` for one model, sensitivity-parameter selection and method."""

    method: MethodSpec
    n_states: int
    n_parameters: int
    n_sensitivity_parameters: int
    library_path: Path
    _function: ctypes._CFuncPtr

    def __call__(
        self,
        mode: int,
        p: np.ndarray,
        y0: np.ndarray | None,
        S0: np.ndarray | None,
        t0: float,
        t1: float,
        t_eval: np.ndarray,
        options: OptionsStruct,
    ) -> tuple[int, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, StatsStruct]:
        n, n_s = self.n_states, self.n_sensitivity_parameters
        p = np.ascontiguousarray(p, dtype=float)
        t_eval = np.ascontiguousarray(t_eval, dtype=float)
        y_out = np.full((len(t_eval), n), np.nan)
        sens_out = np.full((len(t_eval), n, max(n_s, 1)), np.nan) if mode != MODE_PLAIN else np.empty((1, 1, 1))
        capacity = options.max_steps + 1
        step_times = np.empty(capacity)
        step_sizes = np.empty(capacity)
        n_steps = ctypes.c_long(0)
        stats = StatsStruct()
        y0_ptr = np.ascontiguousarray(y0, dtype=float).ctypes.data_as(_DOUBLE_P) if y0 is not None else None
        S0_arr = np.ascontiguousarray(S0.T.ravel(), dtype=float) if S0 is not None else None
        S0_ptr = S0_arr.ctypes.data_as(_DOUBLE_P) if S0_arr is not None else None
        y0_keep = y0  # noqa: F841 - keep the buffers alive during the call
        status = self._function(
            mode, p.ctypes.data_as(_DOUBLE_P), y0_ptr, S0_ptr, float(t0), float(t1),
            t_eval.ctypes.data_as(_DOUBLE_P), len(t_eval), ctypes.byref(options),
            y_out.ctypes.data_as(_DOUBLE_P), sens_out.ctypes.data_as(_DOUBLE_P),
            step_times.ctypes.data_as(_DOUBLE_P), step_sizes.ctypes.data_as(_DOUBLE_P), ctypes.byref(n_steps),
            ctypes.byref(stats),
        )
        count = n_steps.value
        sens = sens_out[:, :, :n_s] if mode != MODE_PLAIN else None
        return status, y_out, sens, step_times[:count].copy(), step_sizes[: max(count - 1, 0)].copy(), stats


@lru_cache(maxsize=64)
def _compiled_solver(model: Model, parameters: tuple[str, ...], method: str) -> CompiledSolver:
    spec = method_spec(method)
    headers = _solver_header_sources()

    def sources(source):  # type: ignore[no-untyped-def]
        driver = _DRIVER.replace("@HEADER@", spec.header).replace("@TABLEAU@", spec.tableau_code).replace("@STEPPER@", spec.stepper)
        return {"symsens_runtime.hpp": runtime_header(), "model.hpp": source.code, "driver.cpp": driver, **headers}

    # The purpose enters the model-level cache index: it must change whenever the solver's C++ changes.
    purpose = f"solver:{method}:" + hashlib.sha256(
        ("".join(headers[k] for k in sorted(headers)) + spec.tableau_code + _DRIVER).encode()
    ).hexdigest()
    source, path, _ = cached_build(model, list(parameters), purpose, sources, "driver.cpp")
    library = load_library(path)
    function = library.symsens_solve
    function.restype = ctypes.c_int
    function.argtypes = [
        ctypes.c_int, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, ctypes.c_double, ctypes.c_double, _DOUBLE_P, ctypes.c_long,
        ctypes.POINTER(OptionsStruct), _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, ctypes.POINTER(ctypes.c_long),
        ctypes.POINTER(StatsStruct),
    ]
    dims = (ctypes.c_int * 3)()
    library.symsens_solver_dimensions(dims)
    if dims[0] != model.n_states or dims[2] != len(parameters):
        raise CodegenError(f"compiled solver {path} does not match model {model.name!r}")
    return CompiledSolver(spec, dims[0], dims[1], dims[2], path, function)


def compiled_solver(model: Model, parameters: Sequence[str], method: str) -> CompiledSolver:
    """Generate, build (or load from the cache) and load the compiled solver of ``method`` for ``model``."""
    return _compiled_solver(model, tuple(parameters), method)
