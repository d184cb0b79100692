"""First derivatives of a model: ``df/dy``, ``df/dp``, ``dy0/dp``.

Entries are differentiated only where the expression contains the variable (AMICI's habit): in
conductance-based and mass-action models most of ``df/dy`` and ``df/dp`` is structurally zero, and
``diff`` on an expression without the symbol still walks the whole tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from .._once import cached_once
from .._errors import DerivationError
from ..model import Model

__all__ = ["jacobian", "parameter_jacobian", "initial_sensitivities", "select_parameters", "derivative_matrix"]


class _PowerRule(sp.Function):
    """``b**e`` with a symbolic exponent, differentiated as ``d/db b**e = e b**(e - 1)``.

    SymPy writes that derivative as ``e b**e / b``, which is 0/0 at ``b = 0``: a Hill term ``(x/K)**h`` with
    ``x(0) = 0`` (common in systems-biology models) would give a NaN Jacobian at the start, and every implicit
    solver would fail there, although the derivative is 0 for ``h > 1``.  Only used while differentiating.
    """

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        base, exponent = self.args
        if argindex == 1:
            return exponent * _PowerRule(base, exponent - 1)
        return _PowerRule(base, exponent) * sp.log(base)


def _has_symbolic_power(node: sp.Basic) -> bool:
    return bool(node.is_Pow and not node.exp.is_Number)


def _marked(expr: sp.Expr) -> sp.Expr:
    """``expr`` with its powers of symbolic exponent as :class:`_PowerRule` (``expr`` itself when it has none)."""
    if not any(_has_symbolic_power(node) for node in sp.preorder_traversal(expr)):
        return expr
    return expr.replace(_has_symbolic_power, lambda node: _PowerRule(node.base, node.exp))


def _unmarked(expr: sp.Expr) -> sp.Expr:
    if not expr.has(_PowerRule):
        return expr
    return expr.replace(lambda node: isinstance(node, _PowerRule), lambda node: sp.Pow(*node.args))


def _differentiate(expr: sp.Expr, variable: sp.Symbol) -> sp.Expr:
    """``d expr / d variable``, with powers of symbolic exponent by the power rule (see :class:`_PowerRule`)."""
    return _unmarked(_marked(expr).diff(variable))


def derivative_matrix(expressions: Sequence[sp.Expr], variables: Sequence[sp.Symbol]) -> sp.ImmutableMatrix:
    """``M[i, j] = d expressions[i] / d variables[j]``, skipping entries whose expression lacks the variable.

    Powers ``b**e`` with a symbolic exponent are differentiated as ``e b**(e-1) db`` (equal to SymPy's
    ``e b**e / b db`` wherever that is defined, and defined at ``b = 0`` where SymPy's form is 0/0).

    A sum is differentiated over the terms that hold the variable only (SymPy's ``Add`` derivative is the sum of
    its terms' derivatives, the others being zero): the same expression, at a cost that grows with the
    structural non-zeros instead of (terms x variables) -- a mass-action network with a thousand rate constants
    has sums of a hundred terms in every right-hand side.
    """
    rows = []
    for expr in expressions:
        expr = sp.sympify(expr)
        present = expr.free_symbols
        if not any(v in present for v in variables):
            rows.append([sp.S.Zero] * len(variables))
            continue
        marked = _marked(expr)
        holding: dict[sp.Symbol, list[sp.Expr]] | None = None
        if marked.is_Add:
            holding = {}
            for term in marked.args:
                for symbol in term.free_symbols:
                    holding.setdefault(symbol, []).append(term)
        row = []
        for v in variables:
            if v not in present:
                row.append(sp.S.Zero)
            elif holding is not None:
                row.append(_unmarked(sp.Add(*[term.diff(v) for term in holding.get(v, ())])))
            else:
                row.append(_unmarked(marked.diff(v)))
        rows.append(row)
    return sp.ImmutableMatrix(len(expressions), len(variables), [x for row in rows for x in row])


def select_parameters(model: Model, parameters: Sequence[str] | None) -> tuple[sp.Symbol, ...]:
    """The model's parameter symbols named in ``parameters`` (all when None), in the order given.

    Raises
    ------
    DerivationError
        For an unknown or repeated parameter name.
    """
    if parameters is None:
        return model.parameters
    if isinstance(parameters, str):
        raise DerivationError("`parameters` must be a sequence of parameter names, not a single string")
    chosen: list[sp.Symbol] = []
    seen: set[str] = set()
    known = set(model.parameter_names)
    for name in parameters:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(str(name), model.parameter_names, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise DerivationError(f"unknown parameter {name!r} in `parameters`{hint}")
        if name in seen:
            raise DerivationError(f"parameter {name!r} is listed twice in `parameters`")
        seen.add(name)
        chosen.append(model.symbol(name))
    return tuple(chosen)


@cached_once(maxsize=64)
def jacobian(model: Model) -> sp.ImmutableMatrix:
    """The state Jacobian ``J = df/dy`` (n x n), ``J[i, j] = d f_i / d y_j``, exact."""
    return derivative_matrix(model.rhs, model.states)


@cached_once(maxsize=64)
def _parameter_jacobian(model: Model, parameters: tuple[sp.Symbol, ...]) -> sp.ImmutableMatrix:
    return derivative_matrix(model.rhs, parameters)


def parameter_jacobian(model: Model, parameters: Sequence[str] | None = None) -> sp.ImmutableMatrix:
    """``F_p = df/dp`` (n x P) for the chosen parameters (all by default), exact."""
    return _parameter_jacobian(model, select_parameters(model, parameters))


def initial_sensitivities(model: Model, parameters: Sequence[str] | None = None) -> sp.ImmutableMatrix:
    """``S(t0) = dy0/dp`` (n x P): initial conditions may depend on parameters."""
    return derivative_matrix(model.initial_conditions, select_parameters(model, parameters))
