"""Routine assembler: a model's derivatives -> one C++ translation unit of scalar-generic routines.

Every routine is ``template <class T> void name(...)`` inside ``namespace symsens_model``, with
common subexpressions as ``const T`` temporaries.  Arrays are flat and row-major unless noted:

=================================  ====================================================================
``rhs(t, y, p, f)``                 ``f[i] = f_i(t, y, p)``                                  (n)
``jacobian(t, y, p, J)``            ``J[i*n + k] = d f_i / d y_k``                          (n x n)
``jacobian_values(t, y, p, v)``     the structural non-zeros of ``J``, CSR order (``sparsity::``)  (nnz)
``parameter_jacobian(t, y, p, F)``  ``F[i*P + j] = d f_i / d p_j``                          (n x P)
``augmented_rhs(t, u, p, g)``       ``u = (y, S[:,0], ..., S[:,P-1])``; ``g`` = ``(f, J S + F_p)``   (n (P+1))
``initial_conditions(p, y0)``       ``y0(p)``                                               (n)
``initial_sensitivities(p, S0)``    ``S0[j*n + i] = d y0_i / d p_j`` (column-major like ``u``)  (n P)
=================================  ====================================================================

``p`` always holds *all* model parameters (nominal order); the sensitivity routines differentiate with respect
to the selected ones, whose indices are ``sensitivity_parameters``.

A routine longer than ``CHUNK_OPERATIONS`` operations is printed as chunks: never-inlined functions of a local
``struct chunk``, called in order, passing the temporaries they share through a small array (see
``_Routine._render_chunks``); the compiler's time then grows linearly with the model instead of faster.

Second derivatives (``d(J S + F_p)/dy``, which the implicit methods on the augmented system need) are not
generated: evaluating ``jacobian_values`` and ``parameter_jacobian`` over dual numbers seeded in ``y`` (one
direction per colour of the coupling pattern) gives them exactly at run time (symsens_solver.hpp,
``AugmentedProblem::coupling_blocks``), and generating them symbolically costs O(n^2 P) expressions (18 s of
SymPy for the 13-state calcium neuron).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from ..model._model import Model
from ._printer import CodegenError, ConstantTable, CxxPrinter
from ._runtime import warm_sympy_tables
from ._source import ModelSource
from ._sparsity import plan_sparsity, recommend_sparse, sparsity_source
from ._text import source_text

__all__ = ["ModelSource", "generate_model_source"]

# The dense Jacobian from the non-zeros, in place: jacobian_values writes the nnz values to out[0..nnz), then they
# move to their row-major places from the last to the first.  The k-th non-zero's dense index d_k is >= k and
# increasing in k, so every slot written (d_k, and the zeros between d_k and d_{k+1}) has already been read.
_DENSE_JACOBIAN = """
template <class T>
inline void jacobian(const T& t, const T* y, const T* p, T* out) {
    jacobian_values<T>(t, y, p, out);
    const int* row_ptr = sparsity::row_ptr();
    const int* columns = sparsity::columns();
    int next = n_states * n_states;  // first slot already final
    for (int i = n_states - 1; i >= 0; --i)
        for (int k = row_ptr[i + 1] - 1; k >= row_ptr[i]; --k) {
            const int d = i * n_states + columns[k];
            const T value = out[k];
            for (int z = d + 1; z < next; ++z) out[z] = T(0);
            out[d] = value;
            next = d;
        }
    for (int z = 0; z < next; ++z) out[z] = T(0);
}
"""


# Routines costing more than this many operations (see _cost) are split into chunks of at most about this many,
# each a separate function that GCC does not inline.  GCC's register allocation, dead-store elimination and alias
# walks grow faster than linearly in a straight-line function's length, so one 2500-statement routine (the
# augmented rhs of a 256-state model: 3.95 s of compiler CPU) costs far more than its chunks (1.15 s in all; the
# measurements are in docs/solvers.md, "Compile cost").  Beyond about 400 operations per chunk the size barely
# matters.  Chunking reorders and splits the statements only: every temporary and output
# is computed by the same expression from the same operands, so the results are bit-identical.
CHUNK_OPERATIONS = 400

# The C++ type the routines write their numbers in (CxxPrinter's ``scalar``): "S", the real type under T, so that
# constants over dual numbers are doubles (measurements in docs/solvers.md, "Compile cost").  "T" prints every
# number as a T, as symsens did before; the values computed are the same (tests/test_codegen_constants.py).
_NUMBER_TYPE = "S"

# More temporaries shared between chunks than this live in a thread-local array instead of on the stack.
_STACK_SHARED = 1024


def _cost(text: str) -> int:
    """The operations of a printed statement, roughly: its operators and function calls, plus the assignment."""
    return 1 + sum(text.count(op) for op in ("*", "/", " + ", " - ", "(-", "symsens::"))


@dataclass(frozen=True)
class _Statement:
    """One line of a routine: a CSE temporary ``const T name = text;`` or an output ``target = text;``."""

    target: str                    # the temporary's C++ name, or the output lvalue (``out[3]``)
    text: str                      # the printed expression
    defines: sp.Symbol | None      # the temporary's symbol; None for an output
    uses: frozenset[sp.Symbol]     # the temporaries the expression reads


class _Routine:
    """Collects the statements of one templated routine, with its own CSE temporaries."""

    def __init__(self, name: str, signature: str, arguments: str, symbols: dict[sp.Symbol, str],
                 constants: ConstantTable) -> None:
        self.name = name
        self.signature = signature
        self.arguments = arguments  # the signature's parameter names, to call a chunk with
        self.symbols = dict(symbols)
        self.constants = constants
        self.statements: list[_Statement] = []
        self._temporaries: set[sp.Symbol] = set()
        #: ``out[0 .. zero_fill)`` is set to zero before the statements run (see :meth:`assign_nonzeros`).
        self.zero_fill = 0

    def assign(self, targets: Sequence[str], expressions: Sequence[sp.Expr], *, cse: bool = True) -> None:
        """``targets[k] = expressions[k]`` with shared temporaries (structural zeros written as ``T(0)``)."""
        from ..derive import common_subexpressions

        expressions = [sp.sympify(e) for e in expressions]
        if cse and any(not e.is_Atom for e in expressions):
            result = common_subexpressions(expressions, prefix="x")
            replacements, reduced = result.replacements, result.reduced
        else:
            replacements, reduced = (), tuple(expressions)
        self.extend(replacements, targets, reduced)

    def assign_nonzeros(self, size: int, targets: Sequence[str], expressions: Sequence[sp.Expr]) -> None:
        """``out[0 .. size)`` zeroed by one loop, then :meth:`assign` of the pairs whose expression is not
        structurally zero.  For mostly-zero outputs (``F_p`` of a model whose parameters each appear in few
        equations): a zero written by a loop costs the compiler nothing, one statement per zero costs it as much
        as any other statement (15 000 of them over 18-partial dual numbers for a 500-species network with 30
        parameters).  The values are the same."""
        pairs = [(target, sp.sympify(expr)) for target, expr in zip(targets, expressions)]
        self.zero_fill = size
        kept = [(target, expr) for target, expr in pairs if expr != 0]
        self.assign([target for target, _ in kept], [expr for _, expr in kept])

    def extend(self, replacements: Sequence[tuple[sp.Symbol, sp.Expr]], targets: Sequence[str],
               reduced: Sequence[sp.Expr]) -> None:
        """Append the temporaries ``replacements`` (in order), then ``targets[k] = reduced[k]``."""
        # One printer, told each temporary's name as it is defined (a printer per temporary would copy the
        # symbol table each time: quadratic in the model's size).
        printer = CxxPrinter(self.symbols, self.constants, scalar=_NUMBER_TYPE)
        for symbol, value in replacements:
            self.symbols[symbol] = printer.symbols[symbol] = _temporary_name(symbol)
            text = printer.doprint(value)
            self.statements.append(_Statement(self.symbols[symbol], text, symbol, self._uses(value)))
            self._temporaries.add(symbol)
        for target, value in zip(targets, reduced):
            self.statements.append(_Statement(target, printer.doprint(value), None, self._uses(value)))

    def _uses(self, value: sp.Basic) -> frozenset[sp.Symbol]:
        value = sp.sympify(value)
        if value.is_Atom:
            return frozenset({value} & self._temporaries) if value.is_Symbol else frozenset()
        return frozenset(value.free_symbols & self._temporaries)

    @staticmethod
    def _line(statement: _Statement, indent: str) -> str:
        if statement.defines is not None:
            return f"{indent}const T {statement.target} = {statement.text};"
        return f"{indent}{statement.target} = {statement.text};"

    def render(self, chunk_operations: int | None = None) -> str:
        """The routine's C++: one function, or (costing more than ``chunk_operations``) chunks called in order."""
        chunk = CHUNK_OPERATIONS if chunk_operations is None else chunk_operations
        head = f"template <class T>\ninline void {self.name}({self.signature}) {{\n"
        if self.zero_fill:
            head += f"    for (int k = 0; k < {self.zero_fill}; ++k) out[k] = T(0);\n"
        if sum(_cost(s.text) for s in self.statements) <= chunk:
            lines = [self._line(s, "    ") for s in self.statements]
            body = "\n".join(lines) if lines else "    // (nothing to compute)"
            return f"{head}{_prologue(lines, '    ')}{body}\n}}\n"
        return head + self._render_chunks(chunk) + "}\n"

    def _schedule(self) -> list[_Statement]:
        """The statements in the order the outputs need them: each output after the temporaries it reads that
        were not computed yet (depth first), so a temporary sits next to its first use and few cross a chunk."""
        defining = {s.defines: s for s in self.statements if s.defines is not None}
        position = {s.defines: k for k, s in enumerate(self.statements) if s.defines is not None}
        done: set[sp.Symbol] = set()
        order: list[_Statement] = []
        for output in (s for s in self.statements if s.defines is None):
            stack: list[tuple[_Statement, bool]] = [(output, False)]
            while stack:
                statement, expanded = stack.pop()
                if expanded:
                    if statement.defines is None or statement.defines not in done:
                        if statement.defines is not None:
                            done.add(statement.defines)
                        order.append(statement)
                    continue
                if statement.defines is not None and statement.defines in done:
                    continue
                stack.append((statement, True))
                # Pushed last-defined first, so that they are computed in the order of the flat routine.
                for symbol in sorted(statement.uses, key=position.__getitem__, reverse=True):
                    if symbol not in done:
                        stack.append((defining[symbol], False))
        # Temporaries no output reads (none from CSE, but kept for safety) come last, as in the flat routine.
        order += [s for s in self.statements if s.defines is not None and s.defines not in done]
        return order

    def _render_chunks(self, size: int) -> str:
        """Chunks as static member functions of a local struct (one function each, never inlined: the
        ``noinline`` attribute) sharing the temporaries one chunk computes and a later one reads through ``w``."""
        chunks: list[list[_Statement]] = [[]]
        cost = 0
        for statement in self._schedule():
            if chunks[-1] and cost + _cost(statement.text) > size:
                chunks.append([])
                cost = 0
            chunks[-1].append(statement)
            cost += _cost(statement.text)
        chunk_of: dict[sp.Symbol, int] = {}
        for number, statements in enumerate(chunks):
            for statement in statements:
                if statement.defines is not None:
                    chunk_of[statement.defines] = number
        shared: dict[sp.Symbol, int] = {}  # temporary -> its slot in w
        imports: list[list[sp.Symbol]] = []
        for number, statements in enumerate(chunks):
            wanted: list[sp.Symbol] = []
            for statement in statements:
                for symbol in sorted(statement.uses, key=lambda s: self.symbols[s]):
                    if chunk_of[symbol] < number and symbol not in wanted:
                        wanted.append(symbol)
            imports.append(wanted)
        for wanted in imports:
            for symbol in wanted:
                shared.setdefault(symbol, len(shared))
        signature = f"{self.signature}, T* w"
        lines = ["    struct chunk {"]
        for number, statements in enumerate(chunks):
            body = [f"        const T {self.symbols[s]} = w[{shared[s]}];" for s in imports[number]]
            for statement in statements:
                body.append(self._line(statement, "        "))
                if statement.defines is not None and statement.defines in shared:
                    body.append(f"        w[{shared[statement.defines]}] = {statement.target};")
            body[:0] = _prologue(body, "        ").splitlines()
            lines.append(f"        [[gnu::noinline]] static void part{number}({signature}) {{")
            lines += ["    " + line for line in body]
            lines.append("        }")
        lines.append("    };")
        if len(shared) > _STACK_SHARED:
            # Too many for the stack of a thread with a small one: one array per thread, reused by every call
            # (the routines never call themselves, so no call overwrites the array of one in progress).
            lines.append(f"    static thread_local T w[{len(shared)}];  // the temporaries shared between chunks")
        elif shared:
            lines.append(f"    T w[{len(shared)}];  // the temporaries shared between chunks")
        pointer = "w" if shared else "nullptr"
        lines += [f"    chunk::part{number}({self.arguments}, {pointer});" for number in range(len(chunks))]
        return "\n".join(lines) + "\n"


def _prologue(lines: Sequence[str], indent: str) -> str:
    """The declarations a routine's body needs: the real type ``S`` of its numbers (see the printer) and the
    constants table ``c`` (of ``S``: doubles for dual numbers over double, exact values for wider types)."""
    text = f"{indent}using S = symsens::scalar_of_t<T>;\n"
    if any("c[" in line for line in lines):
        text += f"{indent}const {_NUMBER_TYPE}* c = constants<{_NUMBER_TYPE}>();\n"
    return text


# A CSE temporary keeps the name derive gave it (x12, J_0_3, ...) when that name is a plain identifier with a
# digit (so no C++ keyword), without leading or doubled underscores (reserved in C++) and not one of the
# routine's own names; anything else is refused rather than written into source.
_TEMPORARY = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")
_ROUTINE_NAMES = frozenset({"t", "y", "u", "p", "c", "w", "out", "T", "chunk"})


def _temporary_name(symbol: sp.Symbol) -> str:
    """The C++ name of a common-subexpression temporary, checked against a whitelist (see above)."""
    name = symbol.name
    if not (_TEMPORARY.fullmatch(name) and any(ch.isdigit() for ch in name) and name not in _ROUTINE_NAMES):
        raise CodegenError(
            f"common subexpression temporary {source_text(name)!r} is not a plain identifier with a digit; "
            "the code generator writes only such names into source"
        )
    return name


def _storage(model: Model, state_array: str = "y") -> dict[sp.Symbol, str]:
    symbols: dict[sp.Symbol, str] = {model.time: "t"}
    symbols.update({s: f"{state_array}[{i}]" for i, s in enumerate(model.states)})
    symbols.update({p: f"p[{j}]" for j, p in enumerate(model.parameters)})
    return symbols


# The last few sources generated in this process: the solver libraries of one model and parameters (the
# forward and the discrete modes of a large model are two libraries) share one generation.  Keyed by the model
# (its content), the parameters and the settings above, which tests change.
_RECENT_SOURCES = 4
_recent: dict[tuple[object, ...], ModelSource] = {}
_recent_lock = threading.Lock()


def generate_model_source(model: Model, parameters: Sequence[str] | None = None) -> ModelSource:
    """Generate the C++ routines of ``model`` (see the module docstring) for the chosen sensitivity parameters.

    Model text (the name, parameter names) appears only in comments, through
    :func:`symsens.codegen._text.source_text`; symbols become array elements (``y[i]``, ``p[j]``) and the
    printer knows a fixed set of functions, so nothing a model says is ever compiled as code.
    """
    key = (model, None if parameters is None else tuple(parameters), CHUNK_OPERATIONS, _NUMBER_TYPE, _STACK_SHARED)
    with _recent_lock:
        source = _recent.get(key)
    if source is None:
        source = _generate_model_source(model, parameters)
        with _recent_lock:
            _recent[key] = source
            while len(_recent) > _RECENT_SOURCES:
                del _recent[next(iter(_recent))]
    return source


def _generate_model_source(model: Model, parameters: Sequence[str] | None) -> ModelSource:
    # Imported here: a process that only loads cached libraries never needs the derivation package.
    from ..derive import sensitivity_system

    warm_sympy_tables()
    system = sensitivity_system(model, parameters)
    n, n_p = model.n_states, system.n_parameters
    constants = ConstantTable()
    sig_state = "const T& t, const T* y, const T* p, T* out"
    routines: list[_Routine] = []

    rhs = _Routine("rhs", sig_state, "t, y, p, out", _storage(model), constants)
    rhs.assign([f"out[{i}]" for i in range(n)], model.rhs)
    routines.append(rhs)

    # The Jacobian's structural non-zeros only (row-major, the order of sparsity::columns): code and compile time
    # grow with the non-zeros, not with n^2.  The dense routine scatters them in place (see _DENSE_JACOBIAN).
    plan = plan_sparsity(system.jacobian, system.parameter_jacobian, model.states)
    jac = _Routine("jacobian_values", sig_state, "t, y, p, out", _storage(model), constants)
    nonzeros = system.jacobian.todok()
    jac.assign([f"out[{k}]" for k in range(plan.nnz)], [nonzeros[(i, k)] for i, k in zip(plan.rows, plan.columns)])
    routines.append(jac)

    pjac = _Routine("parameter_jacobian", sig_state, "t, y, p, out", _storage(model), constants)
    pjac.assign_nonzeros(n * n_p, [f"out[{i * n_p + j}]" for i in range(n) for j in range(n_p)],
                         list(system.parameter_jacobian))
    routines.append(pjac)

    # The augmented system from the structure-aware CSE of the sensitivity system.
    aug_symbols = _storage(model, "u")
    for j in range(n_p):
        for i in range(n):
            aug_symbols[system.sensitivities[i, j]] = f"u[{n + j * n + i}]"
    aug = _Routine("augmented_rhs", "const T& t, const T* u, const T* p, T* out", "t, u, p, out", aug_symbols,
                   constants)
    reduced = system.cse()
    # Outputs state by state (f_i, then row i of every sensitivity column): row i's coefficients J_i_k are
    # computed next to all their uses, so a chunked routine passes few temporaries between chunks.
    by_row = [j * n + i for i in range(n) for j in range(n_p + 1)]
    aug.extend(reduced.replacements, [f"out[{k}]" for k in by_row], [reduced.reduced[k] for k in by_row])
    routines.append(aug)

    # The observables g(t, y, p), so that a compiled solve evaluates its outputs without SymPy.
    outputs = _Routine("outputs", sig_state, "t, y, p, out", _storage(model), constants)
    outputs.assign([f"out[{k}]" for k in range(len(model.outputs))], [expr for _, expr in model.outputs])
    routines.append(outputs)

    param_symbols = {p: f"p[{j}]" for j, p in enumerate(model.parameters)}
    ic = _Routine("initial_conditions", "const T* p, T* out", "p, out", param_symbols, constants)
    ic.assign([f"out[{i}]" for i in range(n)], model.initial_conditions)
    routines.append(ic)
    ics = _Routine("initial_sensitivities", "const T* p, T* out", "p, out", param_symbols, constants)
    ics.assign_nonzeros(
        n * n_p, [f"out[{j * n + i}]" for j in range(n_p) for i in range(n)],
        [system.initial_sensitivities[i, j] for j in range(n_p) for i in range(n)],
    )
    routines.append(ics)

    selected = tuple(model.parameter_names.index(p.name) for p in system.parameters)
    table = constants.initialisers()
    constant_lines = ",\n".join(f"        symsens::constant<T>({d}, \"{s}\")" for d, s in table) or "        T(0)"
    header = [
        f"// Generated by symsens from model '{source_text(model.name)}': {n} states, {model.n_parameters} parameters,",
        f"// sensitivities with respect to {', '.join(source_text(p.name) for p in system.parameters) or 'none'}.",
        "// Routines are templates over the scalar type T (double, dual numbers, extended precision).",
        '#include "symsens_runtime.hpp"',
        "",
        "// Whether the fixed-pattern sparse LU is possible for this model, and whether it pays (sparsity:: below).",
        f"#define SYMSENS_MODEL_SPARSE_AVAILABLE {int(plan.available)}",
        f"#define SYMSENS_MODEL_SPARSE_RECOMMENDED {int(recommend_sparse(plan))}",
        "",
        "namespace symsens_model {",
        "",
        f"constexpr int n_states = {n};",
        f"constexpr int n_parameters = {model.n_parameters};",
        f"constexpr int n_sensitivity_parameters = {n_p};",
        f"constexpr int n_outputs = {len(model.outputs)};",
        f"constexpr int sensitivity_parameters[{max(n_p, 1)}] = {{{', '.join(map(str, selected)) or '0'}}};",
        "",
        "// Exact constants of the model: a double literal and a 40-digit decimal for wider scalar types.  Routines",
        "// read them as S = symsens::scalar_of_t<T>: double for dual numbers over double (see the runtime).",
        "template <class T>",
        "inline const T* constants() {",
        f"    static const T table[{max(len(table), 1)}] = {{",
        constant_lines,
        "    };",
        "    return table;",
        "}",
        "",
    ]
    header += sparsity_source(plan) + [""]
    code = (
        "\n".join(header) + "\n" + "\n".join(r.render() for r in routines) + _DENSE_JACOBIAN
        + "\n}  // namespace symsens_model\n"
    )
    digest = hashlib.sha256(code.encode()).hexdigest()
    costs = tuple((r.name, sum(_cost(s.text) for s in r.statements)) for r in routines)
    return ModelSource(model.name, code, n, model.n_parameters, selected, digest, costs, plan.n_colors)
