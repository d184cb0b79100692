"""Translating a model's SymPy expressions into another library's operations by walking the expression tree.

A :class:`Backend` names, for one target library, the operations the model language needs: arithmetic, the
whitelisted functions of :mod:`symsens.model._model` (``exp``, ``log``, ``sin`` .. ``cosh``, ``Abs``, ``Min``,
``Max``, ``Piecewise``, ``Heaviside``, ``sign``), relations and logic, and a ``where`` for branches.
:func:`translate` walks a SymPy tree bottom-up and applies them; nothing is printed and nothing is evaluated
from text, so a model's names never reach the target library (only its values do).  Shared subtrees are
translated once per walk (SymPy builds the intermediates of a model into the tree as the same objects), which
gives the target's graph the common subexpressions for free.

The model language's special functions keep their stable evaluation: ``exprel(x) = x/(exp(x) - 1)`` and its
derivatives are evaluated as in :func:`symsens.model._functions.numpy_exprel_derivative` — the Bernoulli series
``sum_k B_k x^(k-n)/(k-n)!`` for ``|x| < 2`` (Abramowitz & Stegun 23.1.1) and the closed form elsewhere — with
each branch fed only arguments inside its own region (``where(small, x, 0)`` for the series,
``where(small, +-3, x)`` for the closed forms).  So a derivative taken *through* the export by the target's own
automatic differentiation is the derivative of the series near 0 (finite, accurate) and of the closed form away
from it, and never picks up the ``0 * inf`` of a branch that was not taken.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from .._errors import DerivationError
from ..model._functions import (
    _SERIES_RADIUS,
    _bernoulli_coefficients,
    _closed_form_derivative,
    exprel,
    exprel_derivative,
)

__all__ = ["Backend", "translate", "translate_all"]


@dataclass(frozen=True)
class Backend:
    """The operations of one target library (each takes and returns the library's values or Python floats).

    ``constant`` makes a library value of a Python float (used where an operation needs one, not for every
    number: ``2 * x`` stays a Python float times a library value).  ``isnan`` may be None (CasADi SX: the
    far-out NaN guard of the closed forms is then left out; it only matters for ``|x| > 1e150``).
    """

    name: str
    constant: Callable[[float], Any]
    functions: Mapping[type, Callable[..., Any]]
    where: Callable[[Any, Any, Any], Any]
    less: Callable[[Any, Any], Any]
    less_equal: Callable[[Any, Any], Any]
    equal: Callable[[Any, Any], Any]
    logical_and: Callable[[Any, Any], Any]
    logical_or: Callable[[Any, Any], Any]
    logical_not: Callable[[Any], Any]
    power: Callable[[Any, Any], Any]
    sqrt: Callable[[Any], Any]
    abs: Callable[[Any], Any]
    isnan: Callable[[Any], Any] | None = None


def _number(node: sp.Basic) -> float | None:
    """The double nearest a SymPy number (``Rational(1, 3)`` as ``1/3`` correctly rounded), else None."""
    if node.is_Number or node in (sp.pi, sp.E, sp.EulerGamma):
        return float(node)
    return None


class _Walk:
    """One translation: a memo of translated subtrees and the backend."""

    def __init__(self, backend: Backend, values: Mapping[sp.Symbol, Any]) -> None:
        self.backend = backend
        self.memo: dict[sp.Basic, Any] = dict(values)

    def __call__(self, node: sp.Basic) -> Any:
        found = self.memo.get(node)
        if found is not None or node in self.memo:
            return found
        result = self._translate(node)
        self.memo[node] = result
        return result

    def _translate(self, node: sp.Basic) -> Any:
        b = self.backend
        number = _number(node)
        if number is not None:
            return number
        if isinstance(node, sp.logic.boolalg.BooleanTrue):
            return True
        if isinstance(node, sp.logic.boolalg.BooleanFalse):
            return False
        if isinstance(node, sp.Symbol):
            raise DerivationError(f"the expression uses {node.name!r}, which is not an argument of the export")
        if node.is_Add:
            terms = [self(a) for a in node.args]
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            return total
        if node.is_Mul:
            # x * y**-1 as x / y: one rounding, as the NumPy printer writes it.
            numerator, denominator = [], []
            for factor in node.args:
                if factor.is_Pow and factor.exp.is_Integer and factor.exp < 0:
                    denominator.append(self(factor.base ** (-factor.exp)))
                elif factor.is_Rational and not factor.is_Integer and factor.p in (1, -1):
                    numerator.append(float(factor.p))
                    denominator.append(float(factor.q))
                else:
                    numerator.append(self(factor))
            value = numerator[0] if numerator else 1.0
            for factor in numerator[1:]:
                value = value * factor
            if denominator:
                below = denominator[0]
                for factor in denominator[1:]:
                    below = below * factor
                value = value / below
            return value
        if node.is_Pow:
            return self._power(node.base, node.exp)
        if isinstance(node, exprel):
            return self._exprel(0, node.args[0])
        if isinstance(node, exprel_derivative):
            return self._exprel(int(node.args[0]), node.args[1])
        if isinstance(node, sp.Piecewise):
            # Piecewise((e1, c1), (e2, c2), ...): the first true condition wins; nested where from the last.
            pieces = list(node.args)
            value = self(pieces[-1].expr)
            last_condition = pieces[-1].cond
            if not isinstance(last_condition, sp.logic.boolalg.BooleanTrue):
                value = b.where(self(last_condition), value, b.constant(float("nan")))
            for piece in reversed(pieces[:-1]):
                value = b.where(self(piece.cond), self(piece.expr), value)
            return value
        if isinstance(node, sp.Heaviside):
            x = self(node.args[0])
            half = float(node.args[1]) if len(node.args) > 1 else 0.5
            return b.where(b.less(0.0, x), 1.0, b.where(b.less(x, 0.0), 0.0, half))
        if isinstance(node, sp.Abs):
            return b.abs(self(node.args[0]))
        if isinstance(node, (sp.Min, sp.Max)):
            chosen = b.functions[sp.Min if isinstance(node, sp.Min) else sp.Max]
            values = [self(a) for a in node.args]
            value = values[0]
            for other in values[1:]:
                value = chosen(value, other)
            return value
        if isinstance(node, sp.core.relational.Relational):
            lhs, rhs = self(node.lhs), self(node.rhs)
            kind = node.rel_op
            if kind == "<":
                return b.less(lhs, rhs)
            if kind == "<=":
                return b.less_equal(lhs, rhs)
            if kind == ">":
                return b.less(rhs, lhs)
            if kind == ">=":
                return b.less_equal(rhs, lhs)
            if kind == "==":
                return b.equal(lhs, rhs)
            if kind == "!=":
                return b.logical_not(b.equal(lhs, rhs))
            raise DerivationError(f"unsupported relation {kind!r} in {node}")
        if isinstance(node, (sp.And, sp.Or)):
            combine = b.logical_and if isinstance(node, sp.And) else b.logical_or
            values = [self(a) for a in node.args]
            value = values[0]
            for other in values[1:]:
                value = combine(value, other)
            return value
        if isinstance(node, sp.Not):
            return b.logical_not(self(node.args[0]))
        function = b.functions.get(type(node))
        if function is not None:
            return function(*(self(a) for a in node.args))
        raise DerivationError(f"{type(node).__name__} in {node} has no counterpart in the {b.name} export")

    def _power(self, base: sp.Expr, exponent: sp.Expr) -> Any:
        b = self.backend
        if exponent.is_Integer:
            k = int(exponent)
            if k < 0:
                return 1.0 / self._power(base, -exponent)
            x = self(base)
            if k == 0:
                return 1.0
            # Repeated multiplication as NumPy's integer powers of floats (exact derivatives, no log of x).
            result = x
            for _ in range(k - 1):
                result = result * x
            return result
        if exponent == sp.S.Half:
            return b.sqrt(self(base))
        if exponent == -sp.S.Half:
            return 1.0 / b.sqrt(self(base))
        x = self(base)
        y = self(exponent)
        if isinstance(x, float) and base == sp.E:
            return b.functions[sp.exp](y)
        return b.power(x if not isinstance(x, float) else b.constant(x), y)

    def _exprel(self, order: int, argument: sp.Expr) -> Any:
        return exprel_derivative_in(self.backend, order, self(argument))


# Outside the series' disk each closed form is evaluated at its own argument; inside, at this stand-in, so
# that the branch not taken is finite together with its derivatives (3 lies outside |x| < 2).
_STAND_IN = 3.0


def exprel_derivative_in(backend: Backend, order: int, x: Any) -> Any:
    """``d^order/dx^order exprel(x)`` in ``backend``: the series for ``|x| < 2``, the closed forms elsewhere.

    As :func:`symsens.model._functions.numpy_exprel_derivative` (same coefficients, same radius, same closed
    forms, the one for ``x > 0`` written in ``exp(-x)``); see the module docstring for the branch arguments.
    """
    b = backend
    if isinstance(x, float):
        x = b.constant(x)
    small = b.less(b.abs(x), _SERIES_RADIUS)
    inner = b.where(small, x, 0.0)
    series: Any = 0.0
    for coefficient in reversed(_bernoulli_coefficients(order)):
        series = series * inner + coefficient
    negative = b.less(x, 0.0)
    x_negative = b.where(b.logical_and(b.logical_not(small), negative), x, -_STAND_IN)
    x_positive = b.where(b.logical_or(small, negative), _STAND_IN, x)
    symbol = sp.Symbol("x")
    closed_negative = translate(b, _closed_form_derivative(order, False), {symbol: x_negative})
    closed_positive = translate(b, _closed_form_derivative(order, True), {symbol: x_positive})
    outside = b.where(negative, closed_negative, closed_positive)
    if b.isnan is not None:
        # Far out the closed forms' terms underflow to 0 * inf = nan; the value is 0 to double precision there.
        far = b.less(30.0, b.abs(x))
        outside = b.where(b.logical_and(far, b.isnan(outside)), 0.0, outside)
    return b.where(small, series, outside)


def translate(backend: Backend, expression: sp.Expr, values: Mapping[sp.Symbol, Any]) -> Any:
    """``expression`` as a value of ``backend``'s library, with each symbol replaced by ``values[symbol]``."""
    return _Walk(backend, values)(sp.sympify(expression))


def translate_all(backend: Backend, expressions: Sequence[sp.Expr], values: Mapping[sp.Symbol, Any]) -> list[Any]:
    """Several expressions in one walk (shared subtrees translated once)."""
    walk = _Walk(backend, values)
    return [walk(sp.sympify(e)) for e in expressions]
