"""Generated second-order kernels of a model, compiled into a small library of their own.

The reverse sweeps of the implicit families (Rosenbrock, SDIRK/ESDIRK, Radau IIA, BDF;
``symsens/integrate/cpp/adjoint/symsens_implicit_adjoint_common.hpp``) solve with matrices built from the
Jacobian ``J = df/dy`` (and, in a non-autonomous Rosenbrock step, ``f_t``), so their reverse needs the Jacobian's
values and the cotangents of its entries taken back to ``(y, p)``:

=====================================================  ====================================================
``jacobian(t, y, p, out)``                              ``out[k] = J[rows[k], cols[k]]`` over J's structural
                                                        non-zeros, row-major order                   (nnz)
``time_derivative(t, y, p, out)``                       ``out = f_t(t, y, p)`` (zeros when t does not occur
                                                        in f)                                           (n)
``second_order(t, y, p, jbar, qbar, out_y, out_p)``     the gradient in ``y`` (n) and in the gradient's
                                                        parameters (P) of
                                                        ``sum_k jbar[k] J_k + sum_i qbar[i] f_t,i``
=====================================================  ====================================================

``p`` holds all the model's parameters.  The pattern is that of :func:`symsens.derive.jacobian`
(``J[k, l] != 0``), the same as the lambdified kernels of the NumPy Rosenbrock adjoint
(``_SecondOrderKernels`` in :mod:`symsens.integrate._discrete_adjoint_rosenbrock`).  The second-order gradient
is written as transposed products of the Jacobian's non-zeros (and of ``f_t``) with the weights ``jbar``
(and ``qbar``), over the non-zero second derivatives only (:func:`symsens.codegen._vjp._transposed_products`):
no ``n x n x n`` tensor is formed, symbolically or in C++ — reverse mode on the expression level (Griewank &
Walther 2008, Ch. 3), applied to the Jacobian's entries.

The library is built by :func:`symsens.codegen._build.build_library` (content-keyed, atomic, lock-safe) and
indexed by :func:`symsens.codegen._kernels.model_fingerprint`, so a later process loads it, and reads its
pattern (``symsens_so_pattern``), without running SymPy.

References
----------
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 3, reverse mode).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy as sp

from .._once import cached_once
from ..model._model import Model
from ._build import build_library, load_library
from ._library_index import PerModel, read_index, write_index
from ._printer import CodegenError, ConstantTable
from ._text import source_text
from ._vjp import _addresses, _chosen_parameters, _prologue, _routines, _transposed_products, _vector

__all__ = ["SecondOrderSource", "SecondOrderLibrary", "second_order_source", "compile_second_order",
           "loaded_second_order", "SECOND_ORDER_KERNEL_NAMES"]

#: The exported kernels, in the order of the function-pointer table the reverse sweeps take.
SECOND_ORDER_KERNEL_NAMES: tuple[str, ...] = ("jacobian", "time_derivative", "second_order")

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_LONG_P = ctypes.POINTER(ctypes.c_long)
_LONG_DTYPE = np.dtype(ctypes.c_long)
_PURPOSE = "second-order-kernels:1"
#: The model-level index's folder (:mod:`symsens.codegen._library_index`).
_INDEX = "index-second-order"


@dataclass(frozen=True)
class SecondOrderSource:
    """The generated C++ of one model's second-order kernels for one choice of gradient parameters, with the
    Jacobian's pattern (``rows``, ``cols``: row-major order) and whether ``t`` occurs in ``f``."""

    model_name: str
    code: str
    n_states: int
    n_parameters: int
    n_chosen: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    autonomous: bool
    nnz_second: int

    @property
    def nnz(self) -> int:
        return len(self.rows)


def _long_array(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values) if values else "0"


def second_order_source(model: Model, parameters: Sequence[str]) -> SecondOrderSource:
    """Generate the C++ of the second-order kernels of ``model`` (module docstring) for ``parameters``.  Model
    text appears only in comments, through :func:`symsens.codegen._text.source_text`."""
    from ..derive import jacobian
    from ._runtime import warm_sympy_tables

    warm_sympy_tables()
    chosen = _chosen_parameters(model, parameters)
    n, P = model.n_states, len(chosen)
    rhs = [sp.sympify(e) for e in model.rhs]
    J = jacobian(model)   # cached per model: the solver's code generator derives the same matrix
    pattern = [(k, l_) for k in range(n) for l_ in range(n) if J[k, l_] != 0]
    entries = [J[k, l_] for k, l_ in pattern]
    ft = [sp.diff(e, model.time) for e in rhs]
    autonomous = all(e == 0 for e in ft)
    jbar = [sp.Dummy(f"jbar{k}") for k in range(len(entries))]
    qbar = [sp.Dummy(f"qbar{i}") for i in range(n)]
    # The weighted sum's terms: the Jacobian's non-zeros, and f_t's entries when t occurs in f (qbar is ignored
    # otherwise, as in the NumPy sweep).
    terms = list(entries) + ([] if autonomous else ft)
    weights = list(jbar) + ([] if autonomous else qbar)
    grad_y, nnz_y = _transposed_products(terms, list(model.states), weights)
    grad_p, nnz_p = _transposed_products(terms, chosen, weights)

    constants = ConstantTable()
    storage: dict[sp.Symbol, str] = {model.time: "t"}
    storage.update({s: f"y[{i}]" for i, s in enumerate(model.states)})
    storage.update({q: f"p[{j}]" for j, q in enumerate(model.parameters)})
    storage.update({w: f"jbar[{k}]" for k, w in enumerate(jbar)})
    storage.update({w: f"qbar[{i}]" for i, w in enumerate(qbar)})
    signature = "const T t, const T* y, const T* p, T* out"
    second_signature = "const T t, const T* y, const T* p, const T* jbar, const T* qbar, T* out_y, T* out_p"
    routines = [
        *_routines("jacobian", signature, "t, y, p, out", [f"out[{k}]" for k in range(len(entries))], entries,
                   storage, constants),
        *_routines("time_derivative", signature, "t, y, p, out", [f"out[{i}]" for i in range(n)],
                   [sp.S.Zero] * n if autonomous else ft, storage, constants),
        *_routines("second_order", second_signature, "t, y, p, jbar, qbar, out_y, out_p",
                   [*(f"out_y[{i}]" for i in range(n)), *(f"out_p[{j}]" for j in range(P))], [*grad_y, *grad_p],
                   storage, constants),
    ]
    rows = tuple(k for k, _ in pattern)
    cols = tuple(l_ for _, l_ in pattern)
    nnz = len(pattern)
    lines = [
        f"// Second-order kernels of model '{source_text(model.name)}' generated by symsens: {n} states, "
        f"{model.n_parameters} parameters,",
        f"// gradient with respect to {P} of them; {nnz} non-zeros of J, {nnz_y + nnz_p} non-zero second "
        f"derivatives{'' if autonomous else ' (f_t included)'}.",
        *_prologue("symsens_so", constants),
        f"static const long pattern_rows[{max(nnz, 1)}] = {{{_long_array(rows)}}};",
        f"static const long pattern_cols[{max(nnz, 1)}] = {{{_long_array(cols)}}};",
        "",
        *(r.render() for r in routines),
        "}  // namespace symsens_so",
        "",
        'extern "C" {',
        "SYMSENS_EXPORT void symsens_so_dimensions(long* out) {",
        f"    out[0] = {n}; out[1] = {model.n_parameters}; out[2] = {P}; out[3] = {nnz}; "
        f"out[4] = {int(autonomous)};",
        "}",
        "SYMSENS_EXPORT void symsens_so_pattern(long* rows, long* cols) {",
        f"    for (long k = 0; k < {nnz}; ++k) {{ rows[k] = symsens_so::pattern_rows[k]; "
        "cols[k] = symsens_so::pattern_cols[k]; }",
        "}",
        "SYMSENS_EXPORT void symsens_so_jacobian(double t, const double* y, const double* p, double* out) "
        "{ symsens_so::jacobian(t, y, p, out); }",
        "SYMSENS_EXPORT void symsens_so_time_derivative(double t, const double* y, const double* p, double* out) "
        "{ symsens_so::time_derivative(t, y, p, out); }",
        "SYMSENS_EXPORT void symsens_so_second_order(double t, const double* y, const double* p, "
        "const double* jbar, const double* qbar, double* out_y, double* out_p) "
        "{ symsens_so::second_order(t, y, p, jbar, qbar, out_y, out_p); }",
        '}  // extern "C"',
        "",
    ]
    return SecondOrderSource(model.name, "\n".join(lines), n, model.n_parameters, P, rows, cols, autonomous,
                             nnz_y + nnz_p)


@dataclass(eq=False)
class SecondOrderLibrary:
    """The loaded second-order library of one model and parameter selection.

    :attr:`pointers` are the addresses of ``jacobian``, ``time_derivative`` and ``second_order``
    (:data:`SECOND_ORDER_KERNEL_NAMES`, the C typedefs of ``symsens_implicit_adjoint_common.hpp``) for the
    compiled sweeps; :attr:`rows`/:attr:`cols` the Jacobian's pattern (``ctypes.c_long``, contiguous, row-major
    order).  The NumPy-callable methods are for tests and small uses.
    """

    n_states: int
    n_parameters: int
    n_chosen: int
    nnz: int
    autonomous: bool
    rows: np.ndarray
    cols: np.ndarray
    library_path: Path
    build_seconds: float
    _library: ctypes.CDLL = field(repr=False)

    def __post_init__(self) -> None:
        state = [ctypes.c_double, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P]
        for name, arguments in (("jacobian", state), ("time_derivative", state),
                                ("second_order", [*state, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P])):
            function = getattr(self._library, f"symsens_so_{name}")
            function.restype = None
            function.argtypes = arguments

    @property
    def pointers(self) -> tuple[int, ...]:
        return _addresses(self._library, "symsens_so_", SECOND_ORDER_KERNEL_NAMES)

    def _point(self, t: float, y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[object]]:
        y = _vector(y, self.n_states, "y")
        p = _vector(p, self.n_parameters, "p")
        return y, p, [ctypes.c_double(float(t)), y.ctypes.data_as(_DOUBLE_P), p.ctypes.data_as(_DOUBLE_P)]

    def jacobian_nonzeros(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``J(t, y, p)[rows[k], cols[k]]``, k = 0..nnz-1."""
        _y, _p, arguments = self._point(t, y, p)
        out = np.empty(max(self.nnz, 1))
        self._library.symsens_so_jacobian(*arguments, out.ctypes.data_as(_DOUBLE_P))
        return out[: self.nnz]

    def jacobian(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``J(t, y, p)`` as a dense ``(n, n)`` array."""
        J = np.zeros((self.n_states, self.n_states))
        J[self.rows, self.cols] = self.jacobian_nonzeros(t, y, p)
        return J

    def time_derivative(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``f_t(t, y, p)`` (zeros for an autonomous model)."""
        _y, _p, arguments = self._point(t, y, p)
        out = np.empty(self.n_states)
        self._library.symsens_so_time_derivative(*arguments, out.ctypes.data_as(_DOUBLE_P))
        return out

    def second_order(self, t: float, y: np.ndarray, p: np.ndarray, jbar_nonzeros: np.ndarray,
                     qbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(d/dy, d/dp_chosen)`` of ``sum_k jbar[k] J_k(t, y, p) + qbar . f_t(t, y, p)`` (``qbar`` is ignored
        for an autonomous model)."""
        _y, _p, arguments = self._point(t, y, p)
        jbar = np.ascontiguousarray(jbar_nonzeros, dtype=float)
        if jbar.shape != (self.nnz,):
            raise ValueError(f"`jbar_nonzeros` must have shape ({self.nnz},), got {jbar.shape}")
        jbar = np.concatenate([jbar, [0.0]])   # never a null pointer, also at nnz = 0
        qbar = _vector(qbar, self.n_states, "qbar")
        out_y = np.empty(self.n_states)
        out_p = np.empty(max(self.n_chosen, 1))
        self._library.symsens_so_second_order(*arguments, jbar.ctypes.data_as(_DOUBLE_P),
                                              qbar.ctypes.data_as(_DOUBLE_P), out_y.ctypes.data_as(_DOUBLE_P),
                                              out_p.ctypes.data_as(_DOUBLE_P))
        return out_y, out_p[: self.n_chosen]


def _sources(source: SecondOrderSource) -> dict[str, str]:
    from ._runtime import runtime_header

    return {"symsens_runtime.hpp": runtime_header(), "second_order.cpp": source.code}


_build_lock = threading.Lock()


@cached_once(maxsize=32)
def compile_second_order(model: Model, parameters: tuple[str, ...]) -> SecondOrderLibrary:
    """Generate (:func:`second_order_source`), build (or find in the cache) and load the second-order kernels of
    ``model`` for ``parameters``.  A model-level index in front of the library cache lets a later process load
    the library, pattern included, without running SymPy.

    Raises
    ------
    CodegenError
        An unknown or repeated parameter, no C++ compiler, a failed compile, or a library that does not match
        the model.
    """
    import time

    from ._kernels import model_fingerprint

    start = time.perf_counter()
    _chosen_parameters(model, parameters)
    fingerprint = model_fingerprint(model, list(parameters), _PURPOSE)
    hit = read_index(_INDEX, fingerprint)
    if hit is None:
        with _build_lock:
            hit = read_index(_INDEX, fingerprint)
            if hit is None:
                path = build_library(_sources(second_order_source(model, parameters)), "second_order.cpp")
                write_index(_INDEX, fingerprint, path)
                hit = path, {}
    path, _ = hit
    library = load_library(path)
    dims = (ctypes.c_long * 5)()
    library.symsens_so_dimensions.restype = None
    library.symsens_so_dimensions(dims)
    if (dims[0], dims[1], dims[2]) != (model.n_states, model.n_parameters, len(parameters)) or dims[3] < 0:
        raise CodegenError(f"the second-order library {path} does not match model {model.name!r}")
    nnz = int(dims[3])
    rows = np.zeros(max(nnz, 1), dtype=_LONG_DTYPE)
    cols = np.zeros(max(nnz, 1), dtype=_LONG_DTYPE)
    library.symsens_so_pattern.restype = None
    library.symsens_so_pattern(rows.ctypes.data_as(_LONG_P), cols.ctypes.data_as(_LONG_P))
    rows, cols = np.ascontiguousarray(rows[:nnz]), np.ascontiguousarray(cols[:nnz])
    rows.flags.writeable = False
    cols.flags.writeable = False
    return SecondOrderLibrary(dims[0], dims[1], dims[2], nnz, bool(dims[4]), rows, cols, path,
                              time.perf_counter() - start, library)


_loaded_second_order: PerModel[SecondOrderLibrary] = PerModel(compile_second_order)


def loaded_second_order(model: Model, parameters: tuple[str, ...]) -> SecondOrderLibrary:
    """:func:`compile_second_order` remembered per model object (:class:`symsens.codegen._library_index.PerModel`):
    a repeated call with the same model costs a dictionary lookup."""
    return _loaded_second_order(model, parameters)
