"""Common-subexpression elimination with an honest operation count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

__all__ = ["CSEResult", "common_subexpressions", "operation_count", "total_operation_count"]


def operation_count(expr: sp.Basic, _memo: dict[sp.Basic, int] | None = None) -> int:
    """Operations to evaluate ``expr`` as a tree, without sharing.

    An n-ary sum or product counts n - 1 operations, every other node (power, function call, Piecewise,
    relational) counts 1; atoms count 0.  Unlike SymPy's ``count_ops`` (which also rewrites the tree to
    find subtractions and divisions) this is a single linear walk, so it is usable on the 10^4–10^5
    expressions of a large sensitivity system.
    """
    memo: dict[sp.Basic, int] = {} if _memo is None else _memo

    def count(node: sp.Basic) -> int:
        if node.is_Atom:
            return 0
        cached = memo.get(node)
        if cached is not None:
            return cached
        args = node.args
        total = sum(count(a) for a in args) + (len(args) - 1 if (node.is_Add or node.is_Mul) else 1)
        memo[node] = total
        return total

    return count(expr)


def total_operation_count(expressions: Sequence[sp.Basic]) -> int:
    """Sum of :func:`operation_count` over ``expressions`` (subtree counts memoised across them)."""
    memo: dict[sp.Basic, int] = {}
    return sum(operation_count(e, memo) for e in expressions)


@dataclass(frozen=True)
class CSEResult:
    """``replacements`` (temporaries ``x_k = expr``, in evaluation order) and the ``reduced`` expressions.

    ``operations_before`` counts the expressions as given, ``operations_after`` the temporaries plus the
    reduced expressions, so ``operations_after / operations_before`` is the saving code generation gets.
    """

    replacements: tuple[tuple[sp.Symbol, sp.Expr], ...]
    reduced: tuple[sp.Expr, ...]
    operations_before: int
    operations_after: int

    def substitute_back(self) -> tuple[sp.Expr, ...]:
        """The reduced expressions with every temporary expanded again (for checking)."""
        exprs = list(self.reduced)
        for symbol, value in reversed(self.replacements):
            exprs = [e.xreplace({symbol: value}) for e in exprs]
        return tuple(exprs)


def common_subexpressions(
    expressions: Sequence[sp.Expr], *, operations_before: int | None = None, prefix: str = "x"
) -> CSEResult:
    """Run SymPy's CSE (no pre-optimisations: they cost seconds and save little) over ``expressions`` and count operations.

    Temporaries are named ``{prefix}0, {prefix}1, ...``.
    """
    expressions = list(expressions)
    before = operations_before if operations_before is not None else total_operation_count(expressions)
    # Temporaries must not capture a name the expressions already use (a model may have a state "x0").
    used = set().union(*(e.free_symbols for e in expressions)) if expressions else set()
    symbols = sp.numbered_symbols(prefix, exclude=used)
    replacements, reduced = sp.cse(expressions, symbols=symbols, optimizations=None, order="none")
    after = total_operation_count([e for _, e in replacements] + list(reduced))
    return CSEResult(tuple(replacements), tuple(reduced), before, after)
