"""The fast extended-precision path: the model's generated C++ routines and the collocation integrator
(``cpp/symsens_collocation.hpp``) instantiated with the double-double scalar (``cpp/symsens_doubledouble.hpp``).

One shared library per (model, sensitivity parameters), built and cached like every other symsens kernel
(:func:`symsens.codegen._kernels.cached_build`); the tableau, tolerances, parameters and initial values are
run-time arguments, so every stage count and tolerance of a verification ladder uses the same library.

Numbers cross the C ABI as pairs of doubles ``(hi, lo)``; :func:`to_pair` / :func:`from_pair` convert
to and from mpmath exactly.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import mpmath
import numpy as np

from .._once import cached_once
from .._precision import mpmath_precision
from ..codegen._build import load_library
from ..codegen._kernels import cached_build
from ..codegen._printer import CodegenError
from ..codegen._runtime import runtime_header
from ..model import Model
from ._tableau import CollocationTableau

__all__ = ["FastSolver", "fast_solver", "to_pairs", "from_pairs", "DD_UNIT_ROUNDOFF", "RunOutput"]

#: Unit roundoff of the double-double arithmetic (2^-104: the operations are accurate to a few units of 2^-106).
DD_UNIT_ROUNDOFF = 2.0**-104

PRECISION_DOUBLE, PRECISION_DD = 0, 1


_DRIVER = r"""
#include "symsens_doubledouble.hpp"
#include "model.hpp"
#include "symsens_collocation.hpp"

#include <vector>

#define SYMSENS_EXPORT __attribute__((visibility("default")))

namespace {

using DD = symsens::DoubleDouble;

struct M {
    static constexpr int n_states = symsens_model::n_states;
    static constexpr int n_parameters = symsens_model::n_parameters;
    static constexpr int n_sensitivity_parameters = symsens_model::n_sensitivity_parameters;
    template <class T> static void rhs(const T& t, const T* y, const T* p, T* f) { symsens_model::rhs<T>(t, y, p, f); }
    template <class T> static void jacobian(const T& t, const T* y, const T* p, T* J) { symsens_model::jacobian<T>(t, y, p, J); }
    template <class T> static void parameter_jacobian(const T& t, const T* y, const T* p, T* F) {
        symsens_model::parameter_jacobian<T>(t, y, p, F);
    }
};

constexpr int n = M::n_states;
constexpr int NP = M::n_sensitivity_parameters;

template <class T> T from_pair(const double* x);
template <> double from_pair<double>(const double* x) { return x[0] + x[1]; }
template <> DD from_pair<DD>(const double* x) { return DD::from_parts(x[0], x[1]); }
inline void to_pair(double v, double* out) { out[0] = v; out[1] = 0.0; }
inline void to_pair(const DD& v, double* out) { out[0] = v.hi; out[1] = v.lo; }

template <class T>
void initial_values(const double* p2, T* y, T* S) {
    std::vector<T> p(M::n_parameters);
    for (int k = 0; k < M::n_parameters; ++k) p[k] = from_pair<T>(p2 + 2 * k);
    symsens_model::initial_conditions<T>(p.data(), y);
    if constexpr (NP > 0) {
        std::vector<T> s0(n * NP);
        symsens_model::initial_sensitivities<T>(p.data(), s0.data());
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < NP; ++j) S[i * NP + j] = s0[j * n + i];
    }
}

template <class T>
int solve(int s, int order, const double* tableau, const double* p2, const double* y02, const double* S02, double t0,
          double t1, const double* t_eval, long n_eval, const double* settings, const double* sensitivity_scale,
          double* out2, double* error_out, double* stats, volatile double* progress) {
    std::vector<T> A(s * s), c(s), d(s), p(M::n_parameters);
    for (int k = 0; k < s * s; ++k) A[k] = from_pair<T>(tableau + 2 * k);
    for (int k = 0; k < s; ++k) c[k] = from_pair<T>(tableau + 2 * (s * s + k));
    for (int k = 0; k < s; ++k) d[k] = from_pair<T>(tableau + 2 * (s * s + s + k));
    for (int k = 0; k < M::n_parameters; ++k) p[k] = from_pair<T>(p2 + 2 * k);
    symsens::reference::Settings o{settings[0], settings[1], settings[2], settings[3], settings[4], settings[5], settings[6],
                                     sensitivity_scale, settings[7]};
    symsens::reference::Report report{0, 0, 0, 0, 0, 0, 0, 0};
    std::vector<T> y(n), S(n * (NP > 0 ? NP : 1), T(0.0));
    if (y02) {
        for (int i = 0; i < n; ++i) y[i] = from_pair<T>(y02 + 2 * i);
        if (S02) for (int k = 0; k < n * NP; ++k) S[k] = from_pair<T>(S02 + 2 * k);
    } else {
        initial_values<T>(p2, y.data(), S.data());
    }
    symsens::reference::Collocation<M, T> method(s, order, A, c, d, p.data(), o, &report);
    constexpr int N = n + n * NP;
    std::vector<T> out(static_cast<size_t>(n_eval) * N);
    const int status = symsens::reference::integrate<M, T>(method, y.data(), S.data(), t0, t1, t_eval, n_eval,
                                                           out.data(), error_out, progress);
    for (long k = 0; k < n_eval * N; ++k) to_pair(out[k], out2 + 2 * k);
    const double values[8] = {report.accepted, report.rejected, report.nfev, report.njev, report.newton_iterations,
                              report.lu, static_cast<double>(status), report.t_failure};
    for (int k = 0; k < 8; ++k) stats[k] = values[k];
    return status;
}

}  // namespace

extern "C" {

SYMSENS_EXPORT int symsens_reference_dimensions(int* dims) {
    dims[0] = M::n_states;
    dims[1] = M::n_parameters;
    dims[2] = M::n_sensitivity_parameters;
    return 0;
}

// precision 1: double-double (the only one compiled).  tableau: A (s x s), c (s), d (s) as (hi, lo) pairs; p2: all parameters
// as pairs; y02/S02: initial state (n pairs) and sensitivities (n x NP row-major pairs) or NULL for the model's.
// settings: rtol, atol, first_step, max_step, max_steps, seconds, unit_roundoff, tiny; sensitivity_scale: NP
// weights w_j (S_ij is measured against max(|S_ij|, w_j |y_i|)) or NULL.  out2: n_eval x (n + n NP) pairs.
SYMSENS_EXPORT int symsens_reference_solve(int precision, int s, int order, const double* tableau, const double* p2,
                                           const double* y02, const double* S02, double t0, double t1,
                                           const double* t_eval, long n_eval, const double* settings,
                                           const double* sensitivity_scale, double* out2,
                                           double* error_out, double* stats, volatile double* progress) {
    // Only double-double is instantiated (half the compile time); precision is kept in the ABI for a
    // future __float128 instantiation.
    if (precision != 1) return symsens::reference::BAD_INPUT;
    return solve<DD>(s, order, tableau, p2, y02, S02, t0, t1, t_eval, n_eval, settings, sensitivity_scale, out2, error_out,
                     stats, progress);
}

// The model's initial values y0(p) (n pairs) and dy0/dp (n x NP row-major pairs) in double-double.
SYMSENS_EXPORT int symsens_reference_initial(const double* p2, double* y2, double* S2) {
    std::vector<DD> y(n), S(n * (NP > 0 ? NP : 1), DD(0.0));
    initial_values<DD>(p2, y.data(), S.data());
    for (int i = 0; i < n; ++i) to_pair(y[i], y2 + 2 * i);
    for (int k = 0; k < n * NP; ++k) to_pair(S[k], S2 + 2 * k);
    return 0;
}

// f(t, y, p) and J = f_y in double-double (n and n x n pairs).
SYMSENS_EXPORT int symsens_reference_rhs(const double* t2, const double* y2, const double* p2, double* f2, double* J2) {
    std::vector<DD> y(n), p(M::n_parameters), f(n), J(n * n);
    for (int i = 0; i < n; ++i) y[i] = from_pair<DD>(y2 + 2 * i);
    for (int k = 0; k < M::n_parameters; ++k) p[k] = from_pair<DD>(p2 + 2 * k);
    const DD t = from_pair<DD>(t2);
    M::rhs<DD>(t, y.data(), p.data(), f.data());
    M::jacobian<DD>(t, y.data(), p.data(), J.data());
    for (int i = 0; i < n; ++i) to_pair(f[i], f2 + 2 * i);
    for (int k = 0; k < n * n; ++k) to_pair(J[k], J2 + 2 * k);
    return 0;
}

// The double-double maths library itself, for its tests: op 0 exp, 1 log, 2 sqrt, 3 sin, 4 cos, 5 tan, 6 sinh,
// 7 cosh, 8 tanh, 9 exprel, 10 exprel', 11 x*y, 12 x/y, 13 x+y, 14 pow(x, y), 15 parse(text), 16 expm1.
SYMSENS_EXPORT int symsens_reference_math(int op, const double* x2, const double* y2, const char* text, double* out2) {
    const DD x = x2 ? from_pair<DD>(x2) : DD(0.0);
    const DD y = y2 ? from_pair<DD>(y2) : DD(0.0);
    DD r;
    switch (op) {
        case 0: r = symsens::exp(x); break;
        case 1: r = symsens::log(x); break;
        case 2: r = symsens::sqrt(x); break;
        case 3: r = symsens::sin(x); break;
        case 4: r = symsens::cos(x); break;
        case 5: r = symsens::tan(x); break;
        case 6: r = symsens::sinh(x); break;
        case 7: r = symsens::cosh(x); break;
        case 8: r = symsens::tanh(x); break;
        case 9: r = symsens::exprel(x); break;
        case 10: r = symsens::exprel_derivative<1>(x); break;
        case 11: r = x * y; break;
        case 12: r = x / y; break;
        case 13: r = x + y; break;
        case 14: r = symsens::pow(x, y); break;
        case 15: r = symsens::constant<DD>(0.0, text); break;
        case 16: r = symsens::expm1(x); break;
        default: return 1;
    }
    to_pair(r, out2);
    return 0;
}

}  // extern "C"
"""


def _headers() -> dict[str, str]:
    package = resources.files("symsens.reference").joinpath("cpp")
    return {entry.name: entry.read_text() for entry in package.iterdir() if entry.name.endswith(".hpp")}


def to_pairs(values: Sequence[mpmath.mpf | float]) -> np.ndarray:
    """Numbers -> a flat float64 array of (hi, lo) pairs with hi + lo the nearest double-double."""
    out = np.empty(2 * len(values))
    with mpmath_precision(prec=256):
        for k, value in enumerate(values):
            x = mpmath.mpf(value)
            hi = float(x)
            out[2 * k] = hi
            out[2 * k + 1] = float(x - hi) if mpmath.isfinite(x) else 0.0
    return out


def from_pairs(array: np.ndarray) -> list[mpmath.mpf]:
    """A flat array of (hi, lo) pairs -> exact mpmath numbers (hi + lo, 128-bit precision)."""
    flat = np.asarray(array, dtype=float).ravel()
    with mpmath_precision(prec=128):
        return [mpmath.mpf(float(flat[2 * k])) + mpmath.mpf(float(flat[2 * k + 1])) for k in range(len(flat) // 2)]


_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


@dataclass(frozen=True)
class RunOutput:
    """One run of the compiled integrator: values (exact mpf of the double-double result) and its record."""

    status: int
    values: list[mpmath.mpf]          # n_eval x (n + n P), row-major
    accumulated_error: np.ndarray     # n_eval x (n + n P): sum of |local error estimates| up to each output
    accepted: int
    rejected: int
    nfev: int
    njev: int
    newton_iterations: int
    lu: int
    t_failure: float
    seconds: float


@dataclass
class FastSolver:
    """The loaded library of one (model, sensitivity parameters)."""

    model_name: str
    n_states: int
    n_parameters: int
    n_sensitivity_parameters: int
    library_path: Path
    _library: ctypes.CDLL

    def solve(
        self,
        tableau: CollocationTableau,
        p: Sequence[mpmath.mpf],
        y0: Sequence[mpmath.mpf] | None,
        S0: Sequence[mpmath.mpf] | None,
        t0: float,
        t1: float,
        t_eval: np.ndarray,
        *,
        rtol: float,
        atol: float,
        max_steps: int = 10**7,
        seconds: float = 0.0,
        precision: int = PRECISION_DD,
        on_progress: Callable[[float], None] | None = None,
        sensitivity_scale: Sequence[float] | None = None,
        tiny: float = 0.0,
    ) -> RunOutput:
        """Integrate with the collocation method ``tableau`` (see ``cpp/symsens_collocation.hpp``).

        ``sensitivity_scale`` (one weight ``w_j`` per sensitivity parameter, or None): ``S_ij`` is measured
        against ``max(|S_ij|, w_j |y_i|)`` in the error norm.  ``tiny``: every component is measured against
        ``max(|u|, tiny)`` (the magnitude below which double-double loses precision; 0 for none).
        """
        n, n_s = self.n_states, self.n_sensitivity_parameters
        width = n + n * n_s
        s = tableau.stages
        coefficients = [a for row in tableau.A for a in row] + list(tableau.c) + list(tableau.d)
        tab = to_pairs(coefficients)
        p2 = to_pairs(list(p))
        y02 = to_pairs(list(y0)) if y0 is not None else None
        S02 = to_pairs(list(S0)) if (y0 is not None and S0 is not None) else None
        t_eval = np.ascontiguousarray(t_eval, dtype=float)
        unit = DD_UNIT_ROUNDOFF if precision == PRECISION_DD else 2.0**-52
        settings = np.array([rtol, atol, 0.0, 0.0, float(max_steps), float(seconds), unit, float(tiny)])
        weights = None
        if sensitivity_scale is not None and n_s > 0:
            weights = np.ascontiguousarray(sensitivity_scale, dtype=float)
            if weights.shape != (n_s,):
                raise ValueError(f"sensitivity_scale must have {n_s} entries")
        out2 = np.full(2 * len(t_eval) * width, np.nan)
        error_out = np.full(len(t_eval) * width, np.nan)
        stats = np.zeros(8)
        progress = (ctypes.c_double * 1)(t0)

        def pointer(array: np.ndarray | None):  # type: ignore[no-untyped-def]
            return array.ctypes.data_as(_DOUBLE_P) if array is not None else None

        function = self._library.symsens_reference_solve
        arguments = (
            precision, s, tableau.order, pointer(tab), pointer(p2), pointer(y02), pointer(S02), float(t0), float(t1),
            pointer(t_eval), len(t_eval), pointer(settings), pointer(weights), pointer(out2), pointer(error_out), pointer(stats),
            ctypes.cast(progress, _DOUBLE_P),
        )
        start = time.perf_counter()
        if on_progress is None:
            status = function(*arguments)
        else:
            # The C++ call releases the GIL (ctypes); a watcher thread reports the time reached.
            done = threading.Event()

            def watch() -> None:
                while not done.wait(0.5):
                    on_progress(progress[0])

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                status = function(*arguments)
            finally:
                done.set()
                watcher.join()
        seconds_taken = time.perf_counter() - start
        return RunOutput(
            status=int(status),
            values=from_pairs(out2),
            accumulated_error=error_out.reshape(len(t_eval), width),
            accepted=int(stats[0]), rejected=int(stats[1]), nfev=int(stats[2]), njev=int(stats[3]),
            newton_iterations=int(stats[4]), lu=int(stats[5]), t_failure=float(stats[7]), seconds=seconds_taken,
        )

    def initial_values(self, p: Sequence[mpmath.mpf]) -> tuple[list[mpmath.mpf], list[mpmath.mpf]]:
        """The model's ``y0(p)`` and ``dy0/dp`` (row-major n x P) in double-double."""
        n, n_s = self.n_states, self.n_sensitivity_parameters
        y2 = np.zeros(2 * n)
        S2 = np.zeros(2 * max(n * n_s, 1))
        p2 = to_pairs(list(p))
        self._library.symsens_reference_initial(p2.ctypes.data_as(_DOUBLE_P), y2.ctypes.data_as(_DOUBLE_P),
                                                S2.ctypes.data_as(_DOUBLE_P))
        return from_pairs(y2), from_pairs(S2)[: n * n_s]

    def rhs(self, t: mpmath.mpf, y: Sequence[mpmath.mpf], p: Sequence[mpmath.mpf]) -> tuple[list[mpmath.mpf], list[mpmath.mpf]]:
        """``f(t, y)`` (n) and ``f_y`` (n x n row-major) in double-double."""
        n = self.n_states
        t2, y2, p2 = to_pairs([t]), to_pairs(list(y)), to_pairs(list(p))
        f2, J2 = np.zeros(2 * n), np.zeros(2 * n * n)
        self._library.symsens_reference_rhs(*(a.ctypes.data_as(_DOUBLE_P) for a in (t2, y2, p2, f2, J2)))
        return from_pairs(f2), from_pairs(J2)

    def math(self, op: int, x: mpmath.mpf | None = None, y: mpmath.mpf | None = None, text: str | None = None) -> mpmath.mpf:
        """One double-double maths operation (for the tests of the arithmetic); ``op`` as in the driver."""
        x2 = to_pairs([x]) if x is not None else None
        y2 = to_pairs([y]) if y is not None else None
        out = np.zeros(2)
        status = self._library.symsens_reference_math(
            op, x2.ctypes.data_as(_DOUBLE_P) if x2 is not None else None,
            y2.ctypes.data_as(_DOUBLE_P) if y2 is not None else None,
            text.encode() if text is not None else None, out.ctypes.data_as(_DOUBLE_P),
        )
        if status != 0:
            raise ValueError(f"unknown double-double operation {op}")
        return from_pairs(out)[0]


@cached_once(maxsize=32)
def _fast_solver(model: Model, parameters: tuple[str, ...]) -> FastSolver:
    headers = _headers()

    def sources(source):  # type: ignore[no-untyped-def]
        return {"symsens_runtime.hpp": runtime_header(), "model.hpp": source.code, "reference.cpp": _DRIVER, **headers}

    purpose = "reference:" + hashlib.sha256(
        ("".join(headers[k] for k in sorted(headers)) + _DRIVER).encode()
    ).hexdigest()
    source, path, _ = cached_build(model, list(parameters), purpose, sources, "reference.cpp")
    library = load_library(path)
    library.symsens_reference_solve.restype = ctypes.c_int
    library.symsens_reference_solve.argtypes = [
        ctypes.c_int, ctypes.c_int, ctypes.c_int, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, ctypes.c_double,
        ctypes.c_double, _DOUBLE_P, ctypes.c_long, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P,
    ]
    library.symsens_reference_initial.argtypes = [_DOUBLE_P, _DOUBLE_P, _DOUBLE_P]
    library.symsens_reference_rhs.argtypes = [_DOUBLE_P] * 5
    library.symsens_reference_math.argtypes = [ctypes.c_int, _DOUBLE_P, _DOUBLE_P, ctypes.c_char_p, _DOUBLE_P]
    dims = (ctypes.c_int * 3)()
    library.symsens_reference_dimensions(dims)
    if dims[0] != model.n_states or dims[2] != len(parameters):
        raise CodegenError(f"compiled reference solver {path} does not match model {model.name!r}")
    return FastSolver(model.name, dims[0], dims[1], dims[2], path, library)


def fast_solver(model: Model, parameters: Sequence[str]) -> FastSolver:
    """Generate, build (or load from the cache) and load the double-double reference solver of ``model``."""
    return _fast_solver(model, tuple(parameters))
