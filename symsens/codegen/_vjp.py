"""Generated vector–Jacobian products of a model, compiled into a small library of their own.

The reverse sweep of a discrete adjoint (``symsens/integrate/cpp/symsens_erk_adjoint.hpp``) needs, at each stage,
only the transposed products of the model's derivatives with a vector, never the matrices themselves:

==============================================  ============================================================
``rhs(t, y, p, out)``                           ``out = f(t, y, p)``                                    (n)
``vjp_state(t, y, p, v, out)``                  ``out_i = (J^T v)_i = sum_k (d f_k / d y_i) v_k``       (n)
``vjp_parameters(t, y, p, v, out)``             ``out_j = (F_p^T v)_j = sum_k (d f_k / d p_j) v_k``     (P)
``initial_conditions(p, out)``                  ``out = y0(p)``                                         (n)
``initial_vjp(p, v, out)``                      ``out_j = sum_k (d y0_k / d p_j) v_k``                  (P)
==============================================  ============================================================

``p`` holds all the model's parameters; ``P`` counts the chosen ones (the gradient's).  Each product is written
out over the structural non-zeros of ``J = df/dy`` and ``F_p = df/dp`` only (the derivative of ``f_k`` with
respect to a symbol that does not occur in it is never formed), with common subexpressions hoisted into
temporaries, so the generated text, the SymPy work and the compile time all grow with the number of non-zeros,
not with ``n^2`` or ``n P``: no ``n x n`` or ``n x P`` array appears, symbolically or in C++.  This is the
"reverse mode on the expression level" of Griewank & Walther (2008, Ch. 3): the cost of ``J^T v`` is a small
multiple of the cost of ``f``.

The library is separate from the solver libraries (:mod:`symsens.integrate._compiled`), whose forward-mode
routines are dense in ``n x P`` and at ``P = 1000`` do not compile in useful time; this one compiles in seconds.
It is built by :func:`symsens.codegen._build.build_library` (content-keyed, atomic, lock-safe) and indexed by
:func:`symsens.codegen._kernels.model_fingerprint`, so a later process loads it without running SymPy.

References
----------
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 3, reverse mode; the cost of a
gradient is a small multiple of the cost of the function).
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
from ._printer import CodegenError, ConstantTable, CxxPrinter
from ._text import source_text

__all__ = ["VjpSource", "VjpKernels", "vjp_source", "compile_vjp", "loaded_vjp", "KERNEL_NAMES"]

#: The exported kernels, in the order of the function-pointer table the reverse sweep takes.
KERNEL_NAMES: tuple[str, ...] = ("rhs", "vjp_state", "vjp_parameters")

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_PURPOSE = "vjp-kernels:1"
#: The model-level index's folder (:mod:`symsens.codegen._library_index`) and the dimensions it records.
_INDEX = "index-vjp"
_INDEX_FIELDS = ("n_states", "n_parameters", "n_chosen")


@dataclass(frozen=True)
class VjpSource:
    """The generated C++ of one model's transposed products for one choice of gradient parameters.

    ``nnz_state`` and ``nnz_parameters`` count the structural non-zeros of ``J`` and ``F_p`` that the products
    are written over (the size of the generated code is linear in them).
    """

    model_name: str
    code: str
    n_states: int
    n_parameters: int
    selected: tuple[int, ...]
    nnz_state: int
    nnz_parameters: int


class _Routine:
    """The lines of one ``double`` routine with its own common-subexpression temporaries (named ``x0``, ``x1``,
    ... by this module, never by the model)."""

    def __init__(self, name: str, signature: str, symbols: dict[sp.Symbol, str], constants: ConstantTable) -> None:
        self.name, self.signature, self.symbols, self.constants = name, signature, dict(symbols), constants
        self.lines: list[str] = []

    def assign(self, targets: Sequence[str], expressions: Sequence[sp.Expr]) -> None:
        from ..derive import common_subexpressions

        expressions = [sp.sympify(e) for e in expressions]
        if any(not e.is_Atom for e in expressions):
            result = common_subexpressions(expressions, prefix="cse")
            replacements, reduced = result.replacements, result.reduced
        else:
            replacements, reduced = (), tuple(expressions)
        for k, (symbol, value) in enumerate(replacements):
            text = CxxPrinter(self.symbols, self.constants).doprint(value)
            self.symbols[symbol] = f"x{k}"
            self.lines.append(f"    const T x{k} = {text};")
        printer = CxxPrinter(self.symbols, self.constants)
        for target, value in zip(targets, reduced):
            self.lines.append(f"    {target} = {printer.doprint(value)};")

    def render(self) -> str:
        body = "\n".join(self.lines) if self.lines else "    // (nothing to compute)"
        prologue = "    const T* c = constants();\n" if any("c[" in line for line in self.lines) else ""
        return f"static void {self.name}({self.signature}) {{\n{prologue}{body}\n}}\n"


#: Outputs per generated function: a long routine is split into parts of this many outputs, each with its own
#: common subexpressions.  SymPy's CSE and GCC's optimiser are both superlinear in the length of one function;
#: parts keep the generation and the compile linear in the number of outputs (and so in the non-zeros).
PART_SIZE = 200


def _routines(name: str, signature: str, arguments: str, targets: Sequence[str], expressions: Sequence[sp.Expr],
              symbols: dict[sp.Symbol, str], constants: ConstantTable) -> list[_Routine]:
    """One routine ``name`` computing ``targets = expressions``, as parts of :data:`PART_SIZE` outputs called in
    order by ``name`` when there are more."""
    if len(targets) <= PART_SIZE:
        routine = _Routine(name, signature, symbols, constants)
        routine.assign(targets, expressions)
        return [routine]
    parts = []
    caller = _Routine(name, signature, symbols, constants)
    for number, start in enumerate(range(0, len(targets), PART_SIZE)):
        part = _Routine(f"{name}_part{number}", signature, symbols, constants)
        part.assign(targets[start: start + PART_SIZE], expressions[start: start + PART_SIZE])
        parts.append(part)
        caller.lines.append(f"    {part.name}({arguments});")
    return [*parts, caller]


def _product_derivative(term: sp.Expr, v: sp.Symbol) -> sp.Expr | None:
    """``d term / d v`` when ``term`` is ``v`` or a product in which ``v`` occurs exactly once, as a factor ``v``
    or ``v**m`` (integer ``m``): the other factors times ``m v**(m-1)``.  None otherwise (the caller then
    differentiates with :func:`symsens.derive.derivative_matrix`).  SymPy's general ``diff`` of a product asks
    assumptions of every factor; this shortcut makes the mass-action networks' products cheap."""
    if term == v:
        return sp.S.One
    if not term.is_Mul:
        if term.is_Pow and term.base == v and term.exp.is_Integer:
            return term.exp * v ** (term.exp - 1)
        return None
    factor_index = None
    for i, factor in enumerate(term.args):
        if v in factor.free_symbols:
            if factor_index is not None:
                return None
            factor_index = i
    if factor_index is None:
        return None
    factor = term.args[factor_index]
    others = term.args[:factor_index] + term.args[factor_index + 1:]
    if factor == v:
        return sp.Mul(*others)
    if factor.is_Pow and factor.base == v and factor.exp.is_Integer:
        return sp.Mul(*others, factor.exp, v ** (factor.exp - 1))
    return None


def _transposed_products(expressions: Sequence[sp.Expr], variables: Sequence[sp.Symbol],
                         weights: Sequence[sp.Symbol]) -> tuple[list[sp.Expr], int]:
    """``out_j = sum_k (d expressions[k] / d variables[j]) weights[k]`` over the non-zero derivatives only, and
    their count: each expression is differentiated with respect to the variables that occur in it."""
    from ..derive import derivative_matrix

    index = {v: j for j, v in enumerate(variables)}
    terms: list[list[sp.Expr]] = [[] for _ in variables]
    nnz = 0
    for k, expr in enumerate(expressions):
        expr = sp.sympify(expr)
        # A sum is differentiated term by term, each variable over the terms it occurs in only: a mass-action
        # right-hand side has one term per reaction, and differentiating all of them for every variable would
        # cost (terms x variables) instead of the non-zeros.
        parts: dict[sp.Symbol, list[sp.Expr]] = {}
        for term in (expr.args if expr.is_Add else (expr,)):
            for v in term.free_symbols:
                if v in index:
                    parts.setdefault(v, []).append(term)
        for v in sorted(parts, key=index.__getitem__):
            pieces = [_product_derivative(term, v) for term in parts[v]]
            if all(piece is not None for piece in pieces):
                derivative = sp.Add(*pieces)
            else:
                derivative = derivative_matrix([sp.Add(*parts[v])], [v])[0]
            if derivative != 0:
                terms[index[v]].append(derivative * weights[k])
                nnz += 1
    return [sp.Add(*parts) for parts in terms], nnz


def _chosen_parameters(model: Model, names: Sequence[str]) -> list[sp.Symbol]:
    """The symbols of the parameters ``names`` (known and distinct, else a CodegenError naming the problem)."""
    by_name = dict(zip(model.parameter_names, model.parameters))
    names = tuple(names)
    unknown = [name for name in names if name not in by_name]
    if unknown or len(set(names)) != len(names):
        raise CodegenError(f"`parameters`: {'unknown ' + repr(unknown[0]) if unknown else 'a name is repeated'}; "
                           f"the model's parameters are {', '.join(model.parameter_names)}")
    return [by_name[name] for name in names]


def _prologue(namespace: str, constants: ConstantTable) -> list[str]:
    """The lines of a generated kernel library after its comment: the runtime header, the export macro and the
    opening of ``namespace`` with its table of constants (read once the routines have registered theirs)."""
    table = constants.initialisers()
    constant_lines = ",\n".join(f"        symsens::constant<T>({d}, \"{s}\")" for d, s in table) or "        T(0)"
    return [
        '#include "symsens_runtime.hpp"',
        "",
        "#ifndef SYMSENS_EXPORT",
        '#define SYMSENS_EXPORT __attribute__((visibility("default")))',
        "#endif",
        "",
        f"namespace {namespace} {{",
        "using T = double;",
        "",
        "static const T* constants() {",
        f"    static const T table[{max(len(table), 1)}] = {{",
        constant_lines,
        "    };",
        "    return table;",
        "}",
        "",
    ]


def _vector(values: Sequence[float] | np.ndarray, length: int, name: str) -> np.ndarray:
    """``values`` as a contiguous float vector of ``length`` (a ValueError naming ``name`` otherwise)."""
    array = np.ascontiguousarray(values, dtype=float)
    if array.shape != (length,):
        raise ValueError(f"`{name}` must have shape ({length},), got {array.shape}")
    return array


def _addresses(library: ctypes.CDLL, prefix: str, names: Sequence[str]) -> tuple[int, ...]:
    """The addresses of ``<prefix><name>`` in ``library``, in the order of ``names`` (a sweep's pointer table)."""
    return tuple(ctypes.cast(getattr(library, f"{prefix}{name}"), ctypes.c_void_p).value or 0 for name in names)


def vjp_source(model: Model, parameters: Sequence[str] | None = None) -> VjpSource:
    """Generate the C++ of the transposed products of ``model`` (module docstring) for ``parameters`` (all when
    None).  Model text appears only in comments, through :func:`symsens.codegen._text.source_text`."""
    from ._runtime import warm_sympy_tables

    warm_sympy_tables()
    chosen = _chosen_parameters(model, model.parameter_names if parameters is None else parameters)
    n, P = model.n_states, len(chosen)
    v = [sp.Dummy(f"v{k}") for k in range(n)]
    constants = ConstantTable()
    storage: dict[sp.Symbol, str] = {model.time: "t"}
    storage.update({s: f"y[{i}]" for i, s in enumerate(model.states)})
    storage.update({q: f"p[{j}]" for j, q in enumerate(model.parameters)})
    storage.update({w: f"v[{k}]" for k, w in enumerate(v)})
    state_signature = "const T t, const T* y, const T* p, const T* v, T* out"
    rhs_list = [sp.sympify(e) for e in model.rhs]

    state_arguments = "t, y, p, v, out"
    JT, nnz_state = _transposed_products(rhs_list, list(model.states), v)
    FpT, nnz_parameters = _transposed_products(rhs_list, list(chosen), v)
    initial = [sp.sympify(e) for e in model.initial_conditions]
    Y0T, _ = _transposed_products(initial, list(chosen), v)
    states_out = [f"out[{i}]" for i in range(n)]
    parameters_out = [f"out[{j}]" for j in range(P)]
    routines = [
        *_routines("rhs", "const T t, const T* y, const T* p, T* out", "t, y, p, out", states_out, rhs_list,
                   storage, constants),
        *_routines("vjp_state", state_signature, state_arguments, states_out, JT, storage, constants),
        *_routines("vjp_parameters", state_signature, state_arguments, parameters_out, FpT, storage, constants),
        *_routines("initial_conditions", "const T* p, T* out", "p, out", states_out, initial, storage, constants),
        *_routines("initial_vjp", "const T* p, const T* v, T* out", "p, v, out", parameters_out, Y0T, storage,
                   constants),
    ]

    selected = tuple(model.parameter_names.index(q.name) for q in chosen)
    lines = [
        f"// Transposed products of model '{source_text(model.name)}' generated by symsens: {n} states, "
        f"{model.n_parameters} parameters,",
        f"// gradient with respect to {P} of them; {nnz_state} non-zeros of J, {nnz_parameters} of F_p.",
        *_prologue("symsens_vjp", constants),
        *(r.render() for r in routines),
        "}  // namespace symsens_vjp",
        "",
        'extern "C" {',
        "SYMSENS_EXPORT void symsens_vjp_dimensions(long* out) {",
        f"    out[0] = {n}; out[1] = {model.n_parameters}; out[2] = {P}; out[3] = {nnz_state}; "
        f"out[4] = {nnz_parameters};",
        "}",
        "SYMSENS_EXPORT void symsens_vjp_rhs(double t, const double* y, const double* p, double* out) "
        "{ symsens_vjp::rhs(t, y, p, out); }",
        "SYMSENS_EXPORT void symsens_vjp_vjp_state(double t, const double* y, const double* p, const double* v, "
        "double* out) { symsens_vjp::vjp_state(t, y, p, v, out); }",
        "SYMSENS_EXPORT void symsens_vjp_vjp_parameters(double t, const double* y, const double* p, const double* v, "
        "double* out) { symsens_vjp::vjp_parameters(t, y, p, v, out); }",
        "SYMSENS_EXPORT void symsens_vjp_initial_conditions(const double* p, double* out) "
        "{ symsens_vjp::initial_conditions(p, out); }",
        "SYMSENS_EXPORT void symsens_vjp_initial_vjp(const double* p, const double* v, double* out) "
        "{ symsens_vjp::initial_vjp(p, v, out); }",
        '}  // extern "C"',
        "",
    ]
    return VjpSource(model.name, "\n".join(lines), n, model.n_parameters, selected, nnz_state, nnz_parameters)


@dataclass(eq=False)
class VjpKernels:
    """The loaded transposed-product library of one model and parameter selection.

    The ``double`` routines are callable with NumPy arrays (for tests and small uses); :attr:`pointers` are the
    addresses of ``rhs``, ``vjp_state`` and ``vjp_parameters`` (:data:`KERNEL_NAMES`) for the compiled sweep.
    """

    n_states: int
    n_parameters: int
    n_chosen: int
    nnz_state: int
    nnz_parameters: int
    library_path: Path
    build_seconds: float
    _library: ctypes.CDLL = field(repr=False)

    def __post_init__(self) -> None:
        state = [ctypes.c_double, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P]
        for name, arguments in (("rhs", state), ("vjp_state", [*state, _DOUBLE_P]),
                                ("vjp_parameters", [*state, _DOUBLE_P]),
                                ("initial_conditions", [_DOUBLE_P, _DOUBLE_P]),
                                ("initial_vjp", [_DOUBLE_P, _DOUBLE_P, _DOUBLE_P])):
            function = getattr(self._library, f"symsens_vjp_{name}")
            function.restype = None
            function.argtypes = arguments

    @property
    def pointers(self) -> tuple[int, ...]:
        return _addresses(self._library, "symsens_vjp_", KERNEL_NAMES)

    def _state_call(self, name: str, t: float, y: np.ndarray, p: np.ndarray, v: np.ndarray | None,
                    size: int) -> np.ndarray:
        y = _vector(y, self.n_states, "y")
        p = _vector(p, self.n_parameters, "p")
        out = np.empty(size)
        arguments = [ctypes.c_double(float(t)), y.ctypes.data_as(_DOUBLE_P), p.ctypes.data_as(_DOUBLE_P)]
        if v is not None:
            v = _vector(v, self.n_states, "v")
            arguments.append(v.ctypes.data_as(_DOUBLE_P))
        getattr(self._library, f"symsens_vjp_{name}")(*arguments, out.ctypes.data_as(_DOUBLE_P))
        return out

    def rhs(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``f(t, y, p)``."""
        return self._state_call("rhs", t, y, p, None, self.n_states)

    def vjp_state(self, t: float, y: np.ndarray, p: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``J(t, y, p)^T v``."""
        return self._state_call("vjp_state", t, y, p, v, self.n_states)

    def vjp_parameters(self, t: float, y: np.ndarray, p: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``F_p(t, y, p)^T v`` for the chosen parameters."""
        return self._state_call("vjp_parameters", t, y, p, v, self.n_chosen)

    def initial_conditions(self, p: np.ndarray) -> np.ndarray:
        """``y0(p)``."""
        p = _vector(p, self.n_parameters, "p")
        out = np.empty(self.n_states)
        self._library.symsens_vjp_initial_conditions(p.ctypes.data_as(_DOUBLE_P), out.ctypes.data_as(_DOUBLE_P))
        return out

    def initial_vjp(self, p: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``(dy0/dp)^T v`` for the chosen parameters."""
        p = _vector(p, self.n_parameters, "p")
        v = _vector(v, self.n_states, "v")
        out = np.empty(self.n_chosen)
        self._library.symsens_vjp_initial_vjp(p.ctypes.data_as(_DOUBLE_P), v.ctypes.data_as(_DOUBLE_P),
                                              out.ctypes.data_as(_DOUBLE_P))
        return out


def _sources(source: VjpSource) -> dict[str, str]:
    from ._runtime import runtime_header

    return {"symsens_runtime.hpp": runtime_header(), "vjp.cpp": source.code}


_build_lock = threading.Lock()


@cached_once(maxsize=32)
def compile_vjp(model: Model, parameters: tuple[str, ...]) -> VjpKernels:
    """Generate (:func:`vjp_source`), build (or find in the cache) and load the transposed products of ``model``
    for ``parameters``.  A model-level index in front of the library cache lets a later process load the
    library without running SymPy.

    Raises
    ------
    CodegenError
        No C++ compiler, a failed compile, or a library that does not match the model.
    """
    import time

    from ._kernels import model_fingerprint

    start = time.perf_counter()
    fingerprint = model_fingerprint(model, list(parameters), _PURPOSE)
    hit = read_index(_INDEX, fingerprint, _INDEX_FIELDS)
    if hit is None:
        with _build_lock:
            hit = read_index(_INDEX, fingerprint, _INDEX_FIELDS)
            if hit is None:
                source = vjp_source(model, parameters)
                path = build_library(_sources(source), "vjp.cpp")
                dimensions = {"n_states": source.n_states, "n_parameters": source.n_parameters,
                              "n_chosen": len(source.selected)}
                write_index(_INDEX, fingerprint, path, dimensions)
                hit = path, dimensions
    path, _ = hit
    library = load_library(path)
    dims = (ctypes.c_long * 5)()
    library.symsens_vjp_dimensions.restype = None
    library.symsens_vjp_dimensions(dims)
    if (dims[0], dims[1], dims[2]) != (model.n_states, model.n_parameters, len(parameters)):
        raise CodegenError(f"the transposed-product library {path} does not match model {model.name!r}")
    return VjpKernels(dims[0], dims[1], dims[2], dims[3], dims[4], path, time.perf_counter() - start, library)


_loaded_vjp: PerModel[VjpKernels] = PerModel(compile_vjp)


def loaded_vjp(model: Model, parameters: tuple[str, ...]) -> VjpKernels:
    """:func:`compile_vjp` remembered per model object (:class:`symsens.codegen._library_index.PerModel`): a
    repeated call with the same model costs a dictionary lookup."""
    return _loaded_vjp(model, parameters)
