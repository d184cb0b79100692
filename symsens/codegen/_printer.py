"""SymPy expression -> C++ expression over a generic scalar type ``T``.

The generated code is a template over the scalar type, so the same model source serves ``double``, dual
numbers (discrete forward mode) and extended precision.  Hence every function call goes through the
``symsens::`` namespace (``symsens::exp``, ``symsens::exprel``, …), where the runtime header overloads it for
each scalar type, and every number is written so that it is exact in the widest type:

* integers below 2^53 in magnitude: ``T(3)``;
* other numbers (rationals, floats, large integers): a named constant ``c[k]`` hoisted out of the
  expression, initialised once from a double literal (exact for ``double``) and a 40-digit decimal string
  (for wider types) — see :class:`ConstantTable`.

With ``scalar="S"`` the numbers are of the routine's real type instead, ``S = symsens::scalar_of_t<T>``
(``S(3)``, and ``c`` points to ``S``): ``double`` for dual numbers over ``double``, ``T`` itself for real
types, so extended-precision constants stay exact.  Over dual numbers ``S(2)*x`` then scales ``x``
(the runtime's mixed operators) instead of multiplying by a dual number with zero partials, which costs
twice the arithmetic and, at hundreds of states, most of the compiler's time.  Every subexpression free of
symbols is then ``S``-valued and every other one ``T``-valued; where the runtime wants ``T`` on both sides
(``min``, ``max``, ``heaviside``, the branches of a conditional, the statement's result) a constant is
converted, ``T(...)``.

One ``_print_<Node>`` method per SymPy node type and a table of known functions, as SymPy's own code
printers are organised; unsupported nodes raise :class:`CodegenError` naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from .._precision import mpmath_precision
from .._errors import CodegenError as CodegenError
from ..model._functions import exprel

__all__ = ["CodegenError", "CxxPrinter", "ConstantTable"]


# SymPy function -> name in the runtime header's ``symsens`` namespace.
KNOWN_FUNCTIONS: dict[type, str] = {
    sp.exp: "exp",
    sp.log: "log",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.tanh: "tanh",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.Abs: "abs",
    sp.sign: "sign",
    exprel: "exprel",
}

_EXACT_INTEGER_LIMIT = 2**53


@dataclass
class ConstantTable:
    """Numbers hoisted out of expressions: ``c[k]`` is initialised from ``(double literal, decimal string)``."""

    values: list[sp.Expr] = field(default_factory=list)
    _index: dict[sp.Expr, int] = field(default_factory=dict)

    def index(self, number: sp.Expr) -> int:
        if number not in self._index:
            self._index[number] = len(self.values)
            self.values.append(number)
        return self._index[number]

    def initialisers(self, digits: int = 40) -> list[tuple[str, str]]:
        """``(double literal, decimal string)`` per constant; the decimal string has ``digits`` significant digits."""
        out = []
        for value in self.values:
            if not math.isfinite(float(value)):
                raise CodegenError(f"the constant {value} is not a finite double; a model's numbers must be finite")
            with mpmath_precision(dps=digits + 10):
                decimal = mpmath.nstr(mpmath.mpf(sp.N(value, digits + 10)), digits, min_fixed=1, max_fixed=0)
            out.append((repr(float(value)), decimal))
        return out


class CxxPrinter:
    """Print SymPy expressions as C++ over scalar type ``T``.

    Parameters
    ----------
    symbols : mapping Symbol -> C++ lvalue text
        How each free symbol is spelled (``y[0]``, ``p[3]``, ``t``, a CSE temporary ``x12``).
    constants : ConstantTable
        Shared across the routines of one translation unit.
    scalar : str
        The C++ type numbers are written in: ``"T"`` (every number a ``T``), or ``"S"`` for routines that
        define ``using S = symsens::scalar_of_t<T>;`` and ``const S* c`` (see the module docstring).
    """

    def __init__(self, symbols: Mapping[sp.Symbol, str], constants: ConstantTable, scalar: str = "T") -> None:
        if scalar not in ("T", "S"):
            raise ValueError(f"scalar must be 'T' or 'S', not {scalar!r}")
        self.symbols = dict(symbols)
        self.constants = constants
        self.scalar = scalar

    def doprint(self, expr: sp.Basic) -> str:
        """``expr`` as a ``T``-valued C++ expression."""
        return self._print_as_T(sp.sympify(expr))

    @staticmethod
    def _is_scalar(expr: sp.Basic) -> bool:
        """Whether ``expr`` prints as an ``S``: no symbol in it, except in the conditions of a ``Piecewise``."""
        if not expr.free_symbols:
            return True
        if expr.is_Symbol or not expr.has(sp.Piecewise):
            return False
        if isinstance(expr, sp.Piecewise):
            return all(CxxPrinter._is_scalar(piece.expr) for piece in expr.args)
        return all(CxxPrinter._is_scalar(a) for a in expr.args)

    def _print_as_T(self, expr: sp.Basic) -> str:
        """``expr`` as C++ of type ``T``: an ``S``-valued one (see ``_is_scalar``) converted."""
        if self.scalar == "T" or not self._is_scalar(expr):
            return self._print(expr)
        if expr.is_Integer and abs(int(expr)) < _EXACT_INTEGER_LIMIT:
            return f"T({int(expr)})"
        return f"T({self._print(expr)})"

    # -- dispatch ---------------------------------------------------------------------------------------
    def _print(self, expr: sp.Basic) -> str:
        for cls in type(expr).__mro__:
            method = getattr(self, f"_print_{cls.__name__}", None)
            if method is not None:
                return method(expr)
        raise CodegenError(f"cannot generate code for {type(expr).__name__}: {expr}")

    # -- atoms ------------------------------------------------------------------------------------------
    def _print_Symbol(self, expr: sp.Symbol) -> str:
        try:
            return self.symbols[expr]
        except KeyError:
            raise CodegenError(f"symbol {expr.name!r} has no storage in the generated routine") from None

    def _number(self, value: sp.Expr) -> str:
        return f"c[{self.constants.index(value)}]"

    def _print_Integer(self, expr: sp.Integer) -> str:
        if abs(int(expr)) < _EXACT_INTEGER_LIMIT:
            return f"{self.scalar}({int(expr)})"
        return self._number(expr)

    def _print_Rational(self, expr: sp.Rational) -> str:
        return self._number(expr)

    def _print_Float(self, expr: sp.Float) -> str:
        return self._number(expr)

    def _print_NumberSymbol(self, expr: sp.Expr) -> str:  # pi, E
        return self._number(expr)

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return self._number(expr)

    def _print_BooleanTrue(self, expr: sp.Basic) -> str:
        return "true"

    def _print_BooleanFalse(self, expr: sp.Basic) -> str:
        return "false"

    # -- arithmetic -------------------------------------------------------------------------------------
    def _print_Add(self, expr: sp.Add) -> str:
        terms = list(expr.as_ordered_terms())
        out = self._print(terms[0])
        for term in terms[1:]:
            coefficient, rest = term.as_coeff_Mul()
            if coefficient.is_Number and coefficient < 0:
                out += " - " + self._parenthesize_product(-term)
            else:
                out += " + " + self._print(term)
        return f"({out})"

    def _parenthesize_product(self, expr: sp.Expr) -> str:
        text = self._print(expr)
        return text if not expr.is_Add else f"({text})"

    def _print_Mul(self, expr: sp.Mul) -> str:
        coefficient, _ = expr.as_coeff_Mul()
        if coefficient.is_Number and coefficient < 0:
            return f"(-{self._print_Mul_positive(-expr)})"
        return self._print_Mul_positive(expr)

    def _print_Mul_positive(self, expr: sp.Expr) -> str:
        if not expr.is_Mul:
            return self._print(expr)
        numerator, denominator = [], []
        for factor in expr.args:
            if factor.is_Pow and factor.exp.is_Number and factor.exp < 0:
                denominator.append(sp.Pow(factor.base, -factor.exp))
            elif factor.is_Rational and not factor.is_Integer and factor.p == 1:
                denominator.append(sp.Integer(factor.q))
            else:
                numerator.append(factor)
        num = "*".join(self._print(f) for f in numerator) if numerator else f"{self.scalar}(1)"
        if not denominator:
            return f"({num})" if len(numerator) > 1 else num
        den = "*".join(self._print(f) for f in denominator)
        if len(denominator) > 1:
            den = f"({den})"
        return f"({num}/{den})"

    def _print_Pow(self, expr: sp.Pow) -> str:
        base, exponent = expr.base, expr.exp
        if exponent == sp.S.Half:
            return f"symsens::sqrt({self._print(base)})"
        if exponent == -sp.S.Half:
            return f"({self.scalar}(1)/symsens::sqrt({self._print(base)}))"
        if exponent.is_Integer:
            n = int(exponent)
            if n == -1:
                return f"({self.scalar}(1)/{self._print(base)})"
            if n < 0:
                return f"({self.scalar}(1)/symsens::ipow<{-n}>({self._print(base)}))"
            return f"symsens::ipow<{n}>({self._print(base)})"
        if base == sp.E:
            return f"symsens::exp({self._print(exponent)})"
        return f"symsens::pow({self._print(base)}, {self._print(exponent)})"

    # -- functions --------------------------------------------------------------------------------------
    def _print_Function(self, expr: sp.Function) -> str:
        name = KNOWN_FUNCTIONS.get(type(expr))
        if name is None:
            raise CodegenError(f"function {type(expr).__name__!r} has no C++ implementation in symsens' runtime")
        return f"symsens::{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_exprel_derivative(self, expr: sp.Expr) -> str:
        order, argument = expr.args
        return f"symsens::exprel_derivative<{int(order)}>({self._print(argument)})"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        # SymPy's Heaviside(0) is 1/2 unless given; d/dx of Max/Min produces it.
        h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
        argument = expr.args[0]
        if not self._is_scalar(argument):  # the runtime's heaviside takes two T (or two S)
            return f"symsens::heaviside({self._print(argument)}, {self._print_as_T(h0)})"
        return f"symsens::heaviside({self._print(argument)}, {self._print(h0)})"

    def _print_MinMaxBase(self, expr: sp.Expr) -> str:
        name = "min" if isinstance(expr, sp.Min) else "max"
        print_argument = self._print_as_T if not self._is_scalar(expr) else self._print
        args = [print_argument(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"symsens::{name}({out}, {a})"
        return out

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        pieces = list(expr.args)
        if pieces[-1].cond != sp.true:
            raise CodegenError(f"Piecewise without an otherwise branch cannot be generated: {expr}")
        # Both branches of ?: must have one type: T unless every branch is a number.
        print_branch = self._print_as_T if not self._is_scalar(expr) else self._print
        out = print_branch(pieces[-1].expr)
        for piece in reversed(pieces[:-1]):
            out = f"(({self._print(piece.cond)}) ? {print_branch(piece.expr)} : {out})"
        return out

    _RELATIONS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!="}

    def _print_Relational(self, expr: sp.Expr) -> str:
        op = self._RELATIONS.get(expr.rel_op)
        if op is None:
            raise CodegenError(f"relation {expr.rel_op!r} is not supported")
        return f"symsens::value({self._print(expr.lhs)}) {op} symsens::value({self._print(expr.rhs)})"

    def _print_And(self, expr: sp.Expr) -> str:
        return "(" + " && ".join(f"({self._print(a)})" for a in expr.args) + ")"

    def _print_Or(self, expr: sp.Expr) -> str:
        return "(" + " || ".join(f"({self._print(a)})" for a in expr.args) + ")"

    def _print_Not(self, expr: sp.Expr) -> str:
        return f"(!({self._print(expr.args[0])}))"
