"""Sparsity of a model's Jacobian, decided symbolically, and the fixed-pattern LU of its iteration matrices.

The pattern of ``J = df/dy`` is known before any number is computed: ``J[i, k]`` is structurally non-zero
exactly when the exact derivative ``d f_i / d y_k`` is not identically zero (a subset of the states among the
free symbols of ``f_i``).  Everything here is computed once per model, in Python, and printed into the
generated C++ as constant arrays:

* the Jacobian in compressed sparse row form (``row_ptr``, ``columns``), the order in which the generated
  ``jacobian_values`` routine writes its non-zeros;
* a fill-reducing symmetric ordering of the pattern of ``I + J``: of the natural order, reverse Cuthill–McKee
  and minimum degree (both on ``I + J + J^T``), the one whose LU has the fewest entries (ties to the earlier),
  and the symbolic LU of the permuted matrix without pivoting: the pattern of ``L + U`` (row-wise, columns ascending), the diagonal positions and where each
  Jacobian non-zero lands in it.  Every iteration matrix of the implicit schemes,
  ``shift I - scale J`` (BDF, SDIRK: ``I - h gamma J``; Radau IIA, Rosenbrock: ``(1/(h gamma)) I - J``, and
  Radau's complex ``((alpha + i beta)/h) I - J``), has this pattern, so one symbolic factorisation serves
  them all.  Numerical factorisation over the fixed pattern is what KPP does for chemical kinetics
  (Damian, Sandu, Potra & Carmichael 2002, "The kinetic preprocessor KPP — a software environment for
  solving chemical kinetics", Comput. Chem. Eng. 26); without pivoting it needs a pivot check, done at run
  time on values (symsens_sparse.hpp);
* for continuous forward sensitivities, the pattern of the coupling blocks ``D_j = d(J S_j + F_p[:, j])/dy``
  (shared by all j) and a column colouring of it (Curtis, Powell & Reid 1974): columns of one colour share
  no row, so one dual direction per colour recovers all of ``D`` from a single evaluation of the augmented
  right-hand side over ``Dual<double, colours>``.

The rule deciding when the sparse path pays (``recommend_sparse``) was measured on the 1-D Brusselator and
mass-action networks (docs/solvers.md, "Large models").
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

__all__ = ["SparsityPlan", "plan_sparsity", "symbolic_lu", "recommend_sparse"]

#: Above this many multiply-adds the symbolic factorisation stops: the pattern is too dense for a sparse LU to
#: pay, and the model keeps the dense path only.
_MAX_SYMBOLIC_FLOPS = 20_000_000


@dataclass(frozen=True)
class SparsityPlan:
    """Everything about a model's sparsity that the generated code needs (see the module docstring).

    ``lu_*`` are empty when the symbolic factorisation was abandoned (pattern too dense); ``available`` says so.
    """

    n: int
    rows: tuple[int, ...]              # Jacobian non-zeros, row-major order (CSR)
    columns: tuple[int, ...]
    permutation: tuple[int, ...]       # new index -> original state index
    lu_row_ptr: tuple[int, ...]
    lu_columns: tuple[int, ...]        # in the permuted numbering, ascending within each row
    lu_diagonal: tuple[int, ...]       # position of (i, i) in lu_columns, per permuted row
    jacobian_to_lu: tuple[int, ...]    # position in the LU pattern of each Jacobian non-zero
    coupling_rows: tuple[int, ...]     # pattern of D_j (CSR in the original numbering), shared by all j
    coupling_columns: tuple[int, ...]
    colors: tuple[int, ...]            # colour of each state (column of D)
    n_colors: int
    available: bool

    @property
    def nnz(self) -> int:
        return len(self.columns)

    @property
    def lu_nnz(self) -> int:
        return len(self.lu_columns)

    def row_ptr(self) -> list[int]:
        return _row_pointers(self.rows, self.n)


def _row_pointers(rows: Sequence[int], n: int) -> list[int]:
    counts = np.bincount(np.asarray(rows, dtype=np.int64), minlength=n) if len(rows) else np.zeros(n, dtype=np.int64)
    return [0, *np.cumsum(counts).tolist()]


def jacobian_pattern(jacobian: sp.MatrixBase) -> list[tuple[int, int]]:
    """The structurally non-zero entries of an exact Jacobian, row-major."""
    # The non-zeros only (indexing a SymPy matrix entry by entry costs microseconds per entry: n^2 of them).
    return sorted(key for key, entry in _nonzeros(jacobian).items() if entry != 0)


def _nonzeros(matrix: sp.MatrixBase) -> dict[tuple[int, int], sp.Expr]:
    return matrix.todok()


def symbolic_lu(pattern: Sequence[set[int]], n: int, max_flops: int = _MAX_SYMBOLIC_FLOPS) -> list[list[int]] | None:
    """Row patterns of ``L + U`` for the LU without pivoting of a matrix with row patterns ``pattern``
    (diagonal included), or None if the elimination would take more than ``max_flops`` multiply-adds.

    Row-wise (Doolittle, IKJ) elimination: row i gains, for each k < i in its pattern (in increasing order,
    including entries filled in on the way), the columns j > k of row k of U.
    """
    upper: list[list[int]] = []  # columns j > i of row i of U, ascending
    result: list[list[int]] = []
    flops = 0
    for i in range(n):
        row = set(pattern[i])
        row.add(i)
        heap = [k for k in row if k < i]
        heapq.heapify(heap)
        seen: set[int] = set()
        while heap:
            k = heapq.heappop(heap)
            if k in seen:
                continue
            seen.add(k)
            for j in upper[k]:
                flops += 1
                if j not in row:
                    row.add(j)
                    if j < i:
                        heapq.heappush(heap, j)
            if flops > max_flops:
                return None
        columns = sorted(row)
        result.append(columns)
        upper.append([j for j in columns if j > i])
    return result


def _ordering(n: int, entries: Sequence[tuple[int, int]]) -> list[int]:
    """Reverse Cuthill–McKee of the symmetrised pattern of I + J (scipy.sparse.csgraph), new -> old."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    rows = [i for i, _ in entries] + [k for _, k in entries] + list(range(n))
    cols = [k for _, k in entries] + [i for i, _ in entries] + list(range(n))
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return [int(i) for i in reverse_cuthill_mckee(graph, symmetric_mode=True)]


def _minimum_degree_ordering(n: int, entries: Sequence[tuple[int, int]],
                            max_work: int = _MAX_SYMBOLIC_FLOPS) -> list[int] | None:
    """Minimum degree on the symmetrised pattern of J, new -> old (Tinney & Walker 1967, scheme 2; Rose 1972;
    George & Liu 1989, "The evolution of the minimum degree ordering algorithm", SIAM Review 31): eliminate a
    vertex of least degree in the elimination graph, join its neighbours into a clique (the fill its
    elimination creates), repeat; ties go to the lowest index, so the order is deterministic.  Exact degrees on
    the explicit elimination graph, which suits the few hundred to few thousand states of a model; None if the
    cliques grow past ``max_work`` neighbour updates (then the pattern is too dense for a sparse LU to pay)."""
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for i, k in entries:
        if i != k:
            neighbours[i].add(k)
            neighbours[k].add(i)
    heap = [(len(adjacent), v) for v, adjacent in enumerate(neighbours)]
    heapq.heapify(heap)
    eliminated = [False] * n
    order: list[int] = []
    work = 0
    while heap:
        degree, v = heapq.heappop(heap)
        if eliminated[v] or degree != len(neighbours[v]):
            continue  # an entry left behind by a degree that has changed since
        eliminated[v] = True
        order.append(v)
        clique = neighbours[v]
        for u in clique:
            adjacent = neighbours[u]
            adjacent.discard(v)
            adjacent |= clique
            adjacent.discard(u)
            work += len(clique)
            heapq.heappush(heap, (len(adjacent), u))
        if work > max_work:
            return None
        neighbours[v] = set()
    return order


def _permuted_lu(n: int, entries: Sequence[tuple[int, int]], order: list[int]) -> list[list[int]] | None:
    position = {old: new for new, old in enumerate(order)}
    pattern: list[set[int]] = [set() for _ in range(n)]
    for i, k in entries:
        pattern[position[i]].add(position[k])
    return symbolic_lu(pattern, n)


def _colour_columns(n: int, entries: Sequence[tuple[int, int]]) -> tuple[list[int], int]:
    """Greedy column colouring: columns sharing a row get different colours (largest columns first)."""
    by_column: list[list[int]] = [[] for _ in range(n)]
    by_row: dict[int, list[int]] = {}
    for i, k in entries:
        by_column[k].append(i)
        by_row.setdefault(i, []).append(k)
    colour = [-1] * n
    for k in sorted(range(n), key=lambda c: -len(by_column[c])):
        if not by_column[k]:
            colour[k] = 0
            continue
        taken = {colour[other] for i in by_column[k] for other in by_row[i] if colour[other] >= 0}
        c = 0
        while c in taken:
            c += 1
        colour[k] = c
    return colour, (max(colour) + 1 if n else 1)


def plan_sparsity(jacobian: sp.MatrixBase, parameter_jacobian: sp.MatrixBase, states: Sequence[sp.Symbol]) -> SparsityPlan:
    """The :class:`SparsityPlan` of a model from its exact ``J`` (n x n) and ``F_p`` (n x P)."""
    n = jacobian.shape[0]
    entries = jacobian_pattern(jacobian)
    # Fill-reducing order: the natural order (a model written in a banded order can be as good), reverse
    # Cuthill–McKee (bands: the Brusselator, chains) and minimum degree (irregular patterns: reaction networks,
    # where RCM's band is wide), whichever LU has the fewest entries; ties keep the earlier.
    natural = list(range(n))
    best_order, best_lu = natural, _permuted_lu(n, entries, natural)
    if n > 2:
        for candidate in (_ordering(n, entries), _minimum_degree_ordering(n, entries)):
            if candidate is None:
                continue
            candidate_lu = _permuted_lu(n, entries, candidate)
            if candidate_lu is not None and (best_lu is None or sum(map(len, candidate_lu)) < sum(map(len, best_lu))):
                best_order, best_lu = candidate, candidate_lu
    if best_lu is None:
        lu_row_ptr: list[int] = [0] * (n + 1)
        lu_columns: list[int] = []
        diagonal: list[int] = []
        to_lu: list[int] = []
        available = False
    else:
        lu_row_ptr, lu_columns, diagonal = [0], [], []
        where: dict[tuple[int, int], int] = {}
        for i, columns in enumerate(best_lu):
            for j in columns:
                where[(i, j)] = len(lu_columns)
                lu_columns.append(j)
            diagonal.append(where[(i, i)])
            lu_row_ptr.append(len(lu_columns))
        position = {old: new for new, old in enumerate(best_order)}
        to_lu = [where[(position[i], position[k])] for i, k in entries]
        available = True
    # Coupling blocks of the forward-sensitivity Jacobian: d/dy_l (sum_k J_ik S_kj + Fp_ij) is non-zero where some
    # J_ik or Fp_ij depends on y_l.
    state_index = {s: k for k, s in enumerate(states)}

    def states_in(expr: sp.Expr) -> set[int]:
        return {state_index[s] for s in expr.free_symbols if s in state_index}

    coupling: list[tuple[int, int]] = []
    by_row: list[set[int]] = [set() for _ in range(n)]
    values = _nonzeros(jacobian)
    for i, k in entries:
        by_row[i] |= states_in(values[(i, k)])
    for (i, _), entry in _nonzeros(parameter_jacobian).items():
        if entry != 0:
            by_row[i] |= states_in(entry)
    for i in range(n):
        coupling += [(i, l) for l in sorted(by_row[i])]
    colors, n_colors = _colour_columns(n, coupling)
    return SparsityPlan(
        n, tuple(i for i, _ in entries), tuple(k for _, k in entries), tuple(best_order), tuple(lu_row_ptr),
        tuple(lu_columns), tuple(diagonal), tuple(to_lu), tuple(i for i, _ in coupling),
        tuple(l for _, l in coupling), tuple(colors), max(n_colors, 1), available,
    )


def recommend_sparse(plan: SparsityPlan) -> bool:
    """Whether ``linear_solver="auto"`` takes the sparse path for this model: at least 16 states and an LU (with
    its fill) of at most 30% of the dense entries.

    Measured on the 1-D Brusselator with 3 forward sensitivities, BDF and Radau IIA at rtol 1e-6
    (docs/solvers.md, "Large models"): the sparse path is already as fast at 8 states (fill 53%) and faster
    from 16 states (fill 29%) on; below 16 states the two are within the timing noise, and the pivoted dense
    LU, which cannot meet a tiny pivot, is kept.
    """
    return plan.available and plan.n >= 16 and plan.lu_nnz <= 0.3 * plan.n * plan.n


def _int_array(name: str, values: Sequence[int]) -> list[str]:
    body = ", ".join(map(str, values)) if len(values) else "0"
    # Wrapped every 24 numbers so the generated file stays readable and diffable.
    if len(values) > 24:
        chunks = [", ".join(map(str, values[k:k + 24])) for k in range(0, len(values), 24)]
        body = ",\n        ".join(chunks)
    return [f"inline const int* {name}() {{", f"    static const int table[{max(len(values), 1)}] = {{", f"        {body}",
            "    };", "    return table;", "}"]


def sparsity_source(plan: SparsityPlan) -> list[str]:
    """C++ lines: ``namespace sparsity`` with the plan's constants (inside ``namespace symsens_model``)."""
    lines = [
        "// Sparsity of df/dy, decided symbolically, and the fixed-pattern LU of shift I - scale J (symsens_sparse.hpp).",
        "namespace sparsity {",
        f"constexpr int nnz = {plan.nnz};",
        f"constexpr bool available = {'true' if plan.available else 'false'};",
        f"constexpr bool recommended = {'true' if recommend_sparse(plan) else 'false'};",
        f"constexpr int lu_nnz = {plan.lu_nnz};",
        f"constexpr int coupling_nnz = {len(plan.coupling_columns)};",
        f"constexpr int coupling_colors = {plan.n_colors};",
    ]
    lines += _int_array("row_ptr", plan.row_ptr())
    lines += _int_array("columns", plan.columns)
    lines += _int_array("permutation", plan.permutation)
    lines += _int_array("lu_row_ptr", plan.lu_row_ptr)
    lines += _int_array("lu_columns", plan.lu_columns)
    lines += _int_array("lu_diagonal", plan.lu_diagonal)
    lines += _int_array("jacobian_to_lu", plan.jacobian_to_lu)
    lines += _int_array("coupling_row_ptr", _row_pointers(plan.coupling_rows, plan.n))
    lines += _int_array("coupling_columns", plan.coupling_columns)
    lines += _int_array("colors", plan.colors)
    lines.append("}  // namespace sparsity")
    return lines
