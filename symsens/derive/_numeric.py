"""Turning exact expressions into NumPy callables (the pure-Python evaluation path).

SymPy's ``lambdify`` writes Python source from the *expression tree* (never from user text), with the
model language's special functions (``exprel`` and its derivatives) mapped to their stable NumPy
implementations.

Every such function is made by :func:`lambdify_safely`, which binds each symbol of the expressions to a
generated identifier before ``lambdify`` prints anything.  ``lambdify`` would otherwise print the symbols'
own names as Python identifiers, and a model's names are not safe there: a parameter ``e`` or ``exp``
shadows the printed ``e``/``exp`` of the numerical module, a name SymPy prints as a function (``DiracDelta``)
becomes a number, and Python normalises identifiers to NFKC, so ``ℯ`` *is* ``e``, ``ｅｘｐ`` *is* ``exp``
and ``k`` and ``ｋ`` are the same argument twice.  With generated identifiers the printed program contains
no name the user chose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

from .._errors import DerivationError
from ..model._functions import NUMPY_FUNCTIONS

__all__ = ["numpy_function", "lambdify_safely"]

_MODULES: list[Any] = [NUMPY_FUNCTIONS, {"Heaviside": lambda x, h0=0.5: np.heaviside(x, h0)}, "numpy"]

# Generated identifiers: arguments are _a0, _a1, ... (in the flattened order of the arguments) and
# common subexpressions _c0, _c1, ...  No symbol with another name is left in what lambdify prints, so these
# cannot collide with a user's name, and none of them is a name of Python, math, NumPy or SymPy's printers.
_ARGUMENT_PREFIX = "_a"
_TEMPORARY_PREFIX = "_c"


def _flatten(arguments: Any) -> list[Any]:
    if isinstance(arguments, (list, tuple)):
        return [leaf for item in arguments for leaf in _flatten(item)]
    return [arguments]


def _rebuild(arguments: Any, mapping: dict[sp.Symbol, sp.Symbol]) -> Any:
    if isinstance(arguments, (list, tuple)):
        return [_rebuild(item, mapping) for item in arguments]
    return mapping[arguments]


def _renamed(symbol: sp.Symbol, name: str) -> sp.Symbol:
    """A symbol called ``name`` with the assumptions of ``symbol`` (so SymPy evaluates the tree alike)."""
    return sp.Symbol(name, **symbol.assumptions0)


def lambdify_safely(
    arguments: Sequence[Any],
    expressions: Sequence[sp.Expr],
    modules: Any,
    *,
    replacements: Sequence[tuple[sp.Symbol, sp.Expr]] | None = None,
    cse: bool = False,
) -> Callable[..., Any]:
    """``sympy.lambdify(arguments, expressions, modules)`` with every symbol bound to a generated identifier.

    Rules:

    * ``arguments`` is what ``lambdify`` takes: symbols, possibly in nested lists (``[t, [y1, y2], [p1]]``);
      the returned function has the same signature.  The k-th symbol in reading order is printed ``_a{k}``.
    * ``replacements`` is a common-subexpression elimination of ``expressions`` already made (pairs
      ``(temporary, value)``, each value in the arguments and earlier temporaries); with ``cse=True`` one is
      computed here.  Temporaries are printed ``_c{k}``.
    * Every free symbol of the expressions must be an argument or a temporary: a symbol that is neither
      would be printed under its own name and pick up whatever Python finds under that name.
    * The same symbol may not be given twice as an argument.

    Renaming is a bijective substitution of symbols by symbols with the same assumptions, so the value of
    every expression is unchanged.

    Raises
    ------
    DerivationError
        For an argument that is not a symbol, a repeated argument, or an unbound free symbol (each named).
    """
    flat = _flatten(list(arguments))
    mapping: dict[sp.Symbol, sp.Symbol] = {}
    for index, symbol in enumerate(flat):
        if not isinstance(symbol, sp.Symbol):
            raise DerivationError(f"argument {index} of a numerical function must be a symbol, got {symbol!r}")
        if symbol in mapping:
            raise DerivationError(
                f"the symbol {symbol.name!r} is given twice among the arguments of a numerical function "
                "(two quantities of the model have the same name)"
            )
        mapping[symbol] = _renamed(symbol, f"{_ARGUMENT_PREFIX}{index}")
    renamed_arguments = _rebuild(list(arguments), mapping)

    exprs = [sp.sympify(e) for e in expressions]
    pairs = list(replacements or ())
    temporaries: dict[sp.Symbol, sp.Symbol] = {}
    for index, (symbol, _) in enumerate(pairs):
        temporaries[symbol] = _renamed(symbol, f"{_TEMPORARY_PREFIX}{index}")
    substitution = {**mapping, **temporaries}

    bound = set(mapping) | set(temporaries)
    unbound = {s for e in (*exprs, *(value for _, value in pairs)) for s in e.free_symbols} - bound
    if unbound:
        names = ", ".join(sorted(repr(getattr(s, "name", str(s))) for s in unbound))
        raise DerivationError(f"a numerical function uses {names}, which is not among its arguments")

    new_exprs = [e.xreplace(substitution) for e in exprs]
    new_pairs = [(temporaries[s], value.xreplace(substitution)) for s, value in pairs]
    if cse and not pairs:
        taken = {s.name for s in substitution.values()}
        new_pairs, new_exprs = sp.cse(
            new_exprs, symbols=sp.numbered_symbols(_TEMPORARY_PREFIX, exclude=[sp.Symbol(n) for n in taken]), order="canonical"
        )
        # numbered_symbols only skips equal symbols; make sure no temporary takes an argument's name.
        clash = {s.name for s, _ in new_pairs} & taken
        if clash:  # pragma: no cover - argument names start with _a, temporaries with _c
            raise DerivationError(f"generated names clash: {sorted(clash)}")
    if new_pairs:
        final_pairs, final_exprs = list(new_pairs), list(new_exprs)
        return sp.lambdify(
            renamed_arguments, final_exprs, modules=modules, cse=lambda _exprs: (final_pairs, final_exprs), docstring_limit=0
        )
    return sp.lambdify(renamed_arguments, new_exprs, modules=modules, cse=False, docstring_limit=0)


def numpy_function(expressions: Sequence[sp.Expr], arguments: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A function ``F(*arrays) -> ndarray`` of shape ``(len(expressions), *broadcast shape)``.

    Arguments broadcast against each other; constant expressions are broadcast to the common shape so the
    result is always a dense float array.  Symbols are bound to generated identifiers (see
    :func:`lambdify_safely`), so no model name can shadow a function or constant of NumPy.
    """
    expressions = [sp.sympify(e) for e in expressions]
    compiled = lambdify_safely(list(arguments), expressions, _MODULES, cse=True)

    def evaluate(*values: Any) -> np.ndarray:
        arrays = [np.asarray(v, dtype=float) for v in values]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        with np.errstate(all="ignore"):
            results = compiled(*arrays)
        return np.stack([np.broadcast_to(np.asarray(r, dtype=float), shape) for r in results]) if results else np.empty((0, *shape))

    return evaluate
