"""The expression language of model files: a whitelist grammar parsed straight into SymPy.

Nothing here evaluates user text as Python.  The text is cut into tokens by a small scanner that knows only
numbers, names, the operators of the grammar and parentheses; a recursive-descent parser turns the tokens
into SymPy objects by calling SymPy constructors (``sp.Add``, ``sp.Pow``, ``sp.exp``, ...) and nothing else.
Anything outside the grammar -- strings, attributes, subscripts, lambdas, calls of functions that are not on
the list -- is a syntax error of *this* grammar and is reported with its column before any SymPy object is
built from it.

Why a hand-written parser and not ``ast.parse`` with a node whitelist: CPython builds the AST of a flat sum
recursively, so ``x + x + ... + x`` with a few thousand terms raises ``RecursionError`` inside ``ast.parse``
(model files generated from reaction networks do contain long sums); the AST's column offsets are UTF-8
byte offsets; and ``^`` would have to be rewritten to ``**`` first.  Here sums and products are loops, only
genuine nesting recurses (and is bounded), ``^`` is simply a token, and columns are character columns.

Grammar (precedence from low to high, as in Python)::

    expression  = disjunction [ "if" disjunction "else" expression ] ;
    disjunction = conjunction { "or" conjunction } ;
    conjunction = negation { "and" negation } ;
    negation    = "not" negation | comparison ;
    comparison  = sum { ("<" | "<=" | ">" | ">=") sum } ;
    sum         = product { ("+" | "-") product } ;
    product     = unary { ("*" | "/") unary } ;
    unary       = ("+" | "-") unary | power ;
    power       = atom [ ("^" | "**") unary ] ;      (* right-associative; -x^2 = -(x^2) *)
    atom        = number | name | call | "(" expression ")" ;
    call        = function "(" expression { "," expression } ")" ;

Numbers are decimal literals (``3``, ``0.04``, ``8.6174e-5``, ``1_000``) converted *exactly* to SymPy
``Integer``/``Rational`` (``8.6174e-5`` is ``43087/500000000``), so derivations stay exact; the one
exception is a numeric exponent ``p/q`` whose exact root SymPy could not build cheaply, which becomes the
nearest double (see ``MAX_EXACT_ROOT``).  Comparisons
(chains allowed), ``and``, ``or`` and ``not`` are conditions; they may only appear as the condition of
``a if cond else b`` or of ``piecewise(cond1, value1, ..., otherwise)``.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn

import mpmath
import sympy as sp
from sympy.logic.boolalg import Boolean, BooleanFalse, BooleanTrue

from .._precision import mpmath_precision
from .._errors import ModelError
from ._functions import exprel

__all__ = [
    "parse_expression",
    "format_expression",
    "FUNCTIONS",
    "CONSTANTS",
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING",
    "MAX_EXPONENT",
    "MAX_EXACT_ROOT",
    "DOUBLE_MAX",
    "DOUBLE_MIN",
    "check_constants",
]

MAX_EXPRESSION_LENGTH = 100_000
"""Longest expression text accepted, in characters."""

MAX_NESTING = 60
"""Deepest nesting of parentheses, unary signs, powers, calls and conditionals.

Each level costs about ten Python frames in the recursive-descent parser, so 60 levels stay well inside
the default recursion limit even when the caller is itself deep in the stack."""

MAX_EXPONENT = 1000
"""Largest ``|exponent|`` of a numeric (rational) exponent; ``9^9^9^9`` is refused, not computed."""

MAX_EXACT_ROOT = 100
"""Largest denominator ``q`` of a non-integer exponent ``p/q`` that can be kept exact.

A numeric exponent ``p/q`` that is not an integer stays an exact rational when ``q <= MAX_EXACT_ROOT`` and
``(q - 1)`` times the size in bits of the exact numbers in the base is at most 1100 (``x^1.5``,
``x^(1/3)``, ``x^0.01``, ``(y/3e7)^0.05``); otherwise it is replaced by the nearest double, a SymPy
``Float`` (``x^0.001``, ``x^1e-20``, ``(y/3e7)^0.01``).  SymPy writes ``c^(p/q)`` for an exact number ``c``
with integers as large as ``rad(c)^(q - 1)`` (``(y/3e7)^(1e-20)`` would need more memory than any machine
has); with these bounds they stay within the double range.  A Float exponent is evaluated numerically."""

DOUBLE_MAX = 1.7976931348623157e308
"""Largest finite double; every number of a model must have ``|c| <= DOUBLE_MAX``."""

DOUBLE_MIN = 2.2250738585072014e-308
"""Smallest positive normal double; every non-zero number of a model must have ``|c| >= DOUBLE_MIN``."""

# Exact integers and rationals are computed eagerly by SymPy (``2^1000`` *is* a 302-digit integer), so the
# parser bounds their size before asking SymPy for them; that is what keeps power towers from hanging.
# 12 000 bits (about 3600 digits) also keeps each integer below Python's 4300-digit limit of int -> str,
# which SymPy's printers and sort keys rely on.
_MAX_NUMBER_BITS = 12_000
_MAX_ROOT_BITS = 1100  # (q - 1) * bits of the base's numbers, for an exact root p/q (see MAX_EXACT_ROOT)
_MAX_ROOT_BASE_BITS = 1024  # non-integer powers of exact numbers factor the base; beyond the double range it gets slow
_MAX_LITERAL_DIGITS = 1000
_MAX_LITERAL_EXPONENT = 1000


# name -> (minimum number of arguments, maximum or None, SymPy constructor)
FUNCTIONS: Mapping[str, tuple[int, int | None, Callable[..., sp.Expr]]] = {
    "exp": (1, 1, sp.exp),
    "log": (1, 1, sp.log),  # one argument: log(x, b) would silently mean log(x)/log(b)
    "sqrt": (1, 1, sp.sqrt),
    "sin": (1, 1, sp.sin),
    "cos": (1, 1, sp.cos),
    "tan": (1, 1, sp.tan),
    "tanh": (1, 1, sp.tanh),
    "sinh": (1, 1, sp.sinh),
    "cosh": (1, 1, sp.cosh),
    "abs": (1, 1, sp.Abs),
    "min": (2, None, sp.Min),
    "max": (2, None, sp.Max),
    "exprel": (1, 1, exprel),
    "piecewise": (3, None, sp.Piecewise),  # arguments checked separately (conditions and values alternate)
}
"""The functions the model language can call, with their arity."""

CONSTANTS: Mapping[str, sp.Expr] = {"pi": sp.pi}
"""Named constants of the model language (``e`` is *not* one: write ``exp(1)``; ``e`` may be a parameter)."""

_FUNCTION_LIST = ", ".join(FUNCTIONS)

# ---------------------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?")
_NUMBER_PARTS = re.compile(r"([0-9_]*)(?:\.([0-9_]*))?(?:[eE]([+-]?[0-9_]+))?")
_NAME = re.compile(r"[^\W\d]\w*")
_OPERATORS = ("**", "<=", ">=", "==", "!=", "+", "-", "*", "/", "^", "(", ")", ",", "<", ">")
_KEYWORDS = frozenset({"if", "else", "and", "or", "not"})

# Characters that are not part of the grammar, with the reason that is most useful to the user.
_BAD_CHARACTERS = {
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "#": "comments are not allowed inside an expression (put them on their own TOML line)",
    ".": "attribute access is not allowed",
    "[": "subscripts and lists are not allowed",
    "]": "subscripts and lists are not allowed",
    "{": "sets and dictionaries are not allowed",
    "}": "sets and dictionaries are not allowed",
    "=": "'=' is not allowed in an expression (no assignments, no keyword arguments)",
    "%": "'%' is not an operator of the model language",
    "@": "'@' is not an operator of the model language",
    "&": "'&' is not an operator of the model language (use 'and' between conditions)",
    "|": "'|' is not an operator of the model language (use 'or' between conditions)",
    "~": "'~' is not an operator of the model language (use 'not' before a condition)",
    ":": "':' is not allowed (lambdas, slices and annotations are not part of the model language)",
    ";": "';' is not allowed: one expression per entry",
    "\\": "backslashes are not allowed",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "keyword", "op", "end"
    text: str
    start: int  # character offset in the expression text
    end: int


@dataclass(frozen=True)
class _Parsed:
    """A parsed piece: a SymPy value or condition, and where it came from in the text."""

    expr: sp.Basic
    is_condition: bool
    start: int
    end: int


# ---------------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------------


class _Parser:
    def __init__(
        self,
        text: str,
        symbols: Mapping[str, sp.Basic],
        where: str,
        source: str | None,
        line: int | None,
    ) -> None:
        self.text = text
        self.symbols = symbols
        self.where = where
        self.source = source
        self.line = line
        self.depth = 0
        # Tokens are produced on demand, so the first error reported is the first one in reading order
        # (``__import__('os')`` fails on the unknown function at column 1, not on the string after it).
        self.tokens = self._tokenize()
        self.current = next(self.tokens)

    # -- errors -------------------------------------------------------------------------------------------
    def _position(self, offset: int) -> str:
        """'column C' (1-based) of a character offset, or 'line L, column C' in a multi-line expression."""
        offset = max(0, min(offset, len(self.text)))
        line_start = self.text.rfind("\n", 0, offset) + 1
        column = offset - line_start + 1
        if "\n" in self.text.strip("\n"):
            return f"line {self.text.count(chr(10), 0, offset) + 1}, column {column} of the expression"
        return f"column {column}"

    def fail(self, offset: int, problem: str, token: str | None = None, hint: str = "") -> NoReturn:
        raise ModelError(
            f"{problem} in {self.where} at {self._position(offset)}{hint}",
            source=self.source,
            line=self.line,
            name=token,
        )

    # -- scanner ------------------------------------------------------------------------------------------
    def _tokenize(self) -> Iterator[_Token]:
        text = self.text
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
                continue
            if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
                match = _NUMBER.match(text, i)
                end = match.end() if match else i + 1
                # "2x", "0x1F", "1.2.3" or "1e": a number glued to letters or dots is not a number.
                while end < n and (text[end].isalnum() or text[end] in "_."):
                    end += 1
                if match is None or end != match.end():
                    literal = text[i:end]
                    hint = " (implicit multiplication is not supported: write 2*x)" if re.fullmatch(
                        r"[0-9.]+[^\W\d_eE]\w*", literal
                    ) else " (numbers are decimal literals such as 3, 0.04 or 8.6174e-5)"
                    self.fail(i, f"invalid number {literal!r}", literal, hint)
                yield _Token("number", text[i:end], i, end)
                i = end
                continue
            match = _NAME.match(text, i)
            if match:
                word = match.group()
                if word in ("True", "False", "None"):
                    self.fail(i, f"{word!r} is not a value", word, " (conditions are comparisons such as x < 1)")
                if keyword.iskeyword(word) and word not in _KEYWORDS:
                    self.fail(i, f"the Python keyword {word!r} is not part of the model language", word)
                yield _Token("keyword" if word in _KEYWORDS else "name", word, i, match.end())
                i = match.end()
                continue
            for op in _OPERATORS:
                if text.startswith(op, i):
                    if op in ("==", "!="):
                        self.fail(i, f"{op!r} is not supported (conditions use <, <=, >, >=)", op)
                    yield _Token("op", op, i, i + len(op))
                    i += len(op)
                    break
            else:
                if c == "." and i + 1 < n and _NAME.match(text, i + 1):
                    attribute = _NAME.match(text, i + 1).group()  # type: ignore[union-attr]
                    self.fail(i, f"attribute access ('.{attribute}') is not allowed", f".{attribute}")
                reason = _BAD_CHARACTERS.get(c)
                if reason is None:
                    reason = f"unexpected character {c!r}" if c.isprintable() else f"unexpected character {ascii(c)}"
                self.fail(i, reason, c)
        while True:
            yield _Token("end", "", n, n)

    # -- token helpers ------------------------------------------------------------------------------------
    def advance(self) -> _Token:
        token = self.current
        self.current = next(self.tokens)
        return token

    def at(self, kind: str, *texts: str) -> bool:
        token = self.current
        return token.kind == kind and (not texts or token.text in texts)

    def expect_op(self, text: str, opened_at: int | None = None) -> _Token:
        if self.at("op", text):
            return self.advance()
        token = self.current
        if token.kind == "end" and opened_at is not None:
            self.fail(opened_at, f"'(' is never closed (expected {text!r} before the end)", "(")
        self.unexpected(f"expected {text!r}")

    def unexpected(self, expectation: str) -> NoReturn:
        token = self.current
        if token.kind == "end":
            self.fail(token.start, f"unexpected end of expression ({expectation})")
        self.fail(token.start, f"unexpected {token.text!r} ({expectation})", token.text)

    def nest(self, offset: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.fail(offset, f"expression is nested too deeply (more than {MAX_NESTING} levels)")

    # -- type checks --------------------------------------------------------------------------------------
    def value(self, piece: _Parsed, context: str) -> sp.Expr:
        if piece.is_condition:
            snippet = self.text[piece.start : piece.end]
            self.fail(
                piece.start,
                f"a condition ({snippet!r}) cannot be a value" + (f" {context}" if context else ""),
                snippet,
                " (conditions may only appear in 'a if cond else b' or piecewise(cond, value, ..., otherwise))",
            )
        return piece.expr  # type: ignore[return-value]

    def condition(self, piece: _Parsed, context: str) -> Boolean:
        if not piece.is_condition:
            snippet = self.text[piece.start : piece.end]
            self.fail(
                piece.start,
                f"expected a condition {context}, got the value {snippet!r}",
                snippet,
                " (a condition is a comparison such as V < -40, possibly combined with and/or/not)",
            )
        return piece.expr  # type: ignore[return-value]

    def build(self, offset: int, what: str, make: Callable[[], sp.Basic]) -> sp.Basic:
        """Call a SymPy constructor; turn SymPy's own refusals (e.g. comparing complex numbers) into ModelError."""
        try:
            return make()
        except ModelError:
            raise
        except RecursionError:
            self.fail(offset, "expression is nested too deeply")
        except (TypeError, ValueError, ArithmeticError, AttributeError, NotImplementedError) as error:
            self.fail(offset, f"cannot evaluate {what}: {error}")

    def check_number(self, expr: sp.Basic, offset: int) -> None:
        """Refuse exact numbers beyond ~6000 digits (they only arise from runaway powers or products)."""
        coefficient = expr.as_coeff_Mul()[0] if isinstance(expr, sp.Mul) else expr
        if isinstance(coefficient, sp.Rational) and _bits(coefficient) > _MAX_NUMBER_BITS:
            self.fail(offset, f"a number in this expression is too large (more than {_MAX_NUMBER_BITS} bits)")

    def check_numeric_result(self, expr: sp.Basic, offset: int, what: str) -> None:
        """A function or power of numbers must stay a finite real number (log(0), sqrt(-1) and 0^-1 do not)."""
        if not isinstance(expr, sp.Expr) or not expr.is_number:
            return
        if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            self.fail(offset, f"{what} is infinite or undefined", what)
        if expr.is_extended_real is False:
            self.fail(offset, f"{what} is not a real number (it is {expr})", what)

    def check_branches(self, expr: sp.Basic, offset: int, what: str) -> None:
        """SymPy pushes powers and functions into the branches of a piecewise value: sqrt(x if c else -1)
        becomes Piecewise((sqrt(x), c), (I, True)).  Each constant branch must stay finite and real."""
        for piecewise in expr.atoms(sp.Piecewise):
            for branch in piecewise.args:
                if branch.expr.has(sp.I, sp.zoo, sp.nan, sp.oo, -sp.oo):
                    self.fail(offset, f"{what} has a branch that is complex or infinite ({branch.expr})", what)
                for power in branch.expr.atoms(sp.Pow):
                    if power.base.is_number and power.base.is_negative and not power.exp.is_integer:
                        self.fail(offset, f"{what} has a branch that is not real ({branch.expr})", what)

    # -- grammar ------------------------------------------------------------------------------------------
    def parse(self) -> sp.Expr:
        piece = self.expression()
        if not self.at("end"):
            token = self.current
            if token.text == ")":
                self.fail(token.start, "unmatched ')'", ")")
            if token.kind in ("name", "number") or token.text == "(":
                self.fail(
                    token.start,
                    f"unexpected {token.text!r} after a complete expression",
                    token.text,
                    " (is an operator missing? implicit multiplication is not supported)",
                )
            self.unexpected("expected an operator or the end of the expression")
        return self.value(piece, "")  # type: ignore[return-value]

    def expression(self) -> _Parsed:
        body = self.disjunction()
        if not self.at("keyword", "if"):
            return body
        if_token = self.advance()
        self.nest(if_token.start)
        condition = self.disjunction()
        if not self.at("keyword", "else"):
            self.unexpected("expected 'else' to complete 'a if cond else b'")
        self.advance()
        otherwise = self.expression()
        self.depth -= 1
        value = self.value(body, "before 'if'")
        cond = self.condition(condition, "after 'if'")
        other = self.value(otherwise, "after 'else'")
        expr = self.build(if_token.start, "a if cond else b", lambda: sp.Piecewise((value, cond), (other, True)))
        return _Parsed(expr, False, body.start, otherwise.end)

    def disjunction(self) -> _Parsed:
        return self._logical("or", self.conjunction, sp.Or)

    def conjunction(self) -> _Parsed:
        return self._logical("and", self.negation, sp.And)

    def _logical(self, word: str, operand: Callable[[], _Parsed], combine: Callable[..., Boolean]) -> _Parsed:
        first = operand()
        if not self.at("keyword", word):
            return first
        parts = [first]
        while self.at("keyword", word):
            self.advance()
            parts.append(operand())
        conditions = [self.condition(p, f"on each side of '{word}'") for p in parts]
        expr = self.build(first.start, f"'{word}'", lambda: combine(*conditions))
        return _Parsed(expr, True, first.start, parts[-1].end)

    def negation(self) -> _Parsed:
        if not self.at("keyword", "not"):
            return self.comparison()
        token = self.advance()
        self.nest(token.start)
        operand = self.negation()
        self.depth -= 1
        cond = self.condition(operand, "after 'not'")
        return _Parsed(self.build(token.start, "'not'", lambda: sp.Not(cond)), True, token.start, operand.end)

    _COMPARISONS: Mapping[str, Callable[[sp.Expr, sp.Expr], Boolean]] = {
        "<": sp.StrictLessThan,
        "<=": sp.LessThan,
        ">": sp.StrictGreaterThan,
        ">=": sp.GreaterThan,
    }

    def comparison(self) -> _Parsed:
        first = self.sum()
        if not self.at("op", *self._COMPARISONS):
            return first
        # a < b < c means a < b and b < c, as in Python.
        operands = [first]
        operators: list[_Token] = []
        while self.at("op", *self._COMPARISONS):
            operators.append(self.advance())
            operands.append(self.sum())
        values = [self.value(p, "in a comparison") for p in operands]
        for piece, value in zip(operands, values):
            if value.has(sp.Piecewise):
                # SymPy folds such a condition into an ITE(...) Boolean that the language cannot write back.
                snippet = self.text[piece.start : piece.end]
                self.fail(
                    piece.start,
                    f"a piecewise value ({snippet!r}) cannot be compared",
                    snippet,
                    " (write the condition on the underlying quantities instead)",
                )
        relations = [
            self.build(op.start, f"the comparison {op.text!r}", lambda op=op, a=a, b=b: self._COMPARISONS[op.text](a, b))
            for op, a, b in zip(operators, values, values[1:])
        ]
        expr = relations[0] if len(relations) == 1 else self.build(first.start, "a chained comparison", lambda: sp.And(*relations))
        return _Parsed(expr, True, first.start, operands[-1].end)

    def sum(self) -> _Parsed:
        first = self.product()
        if not self.at("op", "+", "-"):
            return first
        # A flat loop, not recursion: sums with thousands of terms are common in generated models.
        terms = [self.value(first, "in a sum")]
        last = first
        while self.at("op", "+", "-"):
            operator = self.advance()
            last = self.product()
            term = self.value(last, f"after {operator.text!r}")
            terms.append(term if operator.text == "+" else self.build(operator.start, "'-'", lambda t=term: -t))
        self.check_sum(terms, first.start)
        expr = self.build(first.start, "a sum", lambda: sp.Add(*terms))
        return _Parsed(expr, False, first.start, last.end)

    def check_sum(self, terms: list[sp.Expr], offset: int) -> None:
        """Add up the rational coefficients of like terms with a size check before SymPy does it unchecked.

        ``sp.Add`` of n terms equals the left-to-right sum (SymPy's Add is canonical), but collects
        coefficients of like terms internally; fractions with many coprime denominators could grow without
        bound there, so their sums are bounded here first.
        """
        coefficients: dict[sp.Expr, sp.Rational] = {}
        for term in terms:
            for summand in sp.Add.make_args(term):
                coefficient, rest = summand.as_coeff_Mul()
                if isinstance(coefficient, sp.Rational) and not coefficient.is_Integer:
                    total = coefficients.get(rest, sp.S.Zero) + coefficient
                    if _bits(total) > _MAX_NUMBER_BITS:
                        self.fail(offset, f"a number in this sum is too large (more than {_MAX_NUMBER_BITS} bits)")
                    coefficients[rest] = total

    def product(self) -> _Parsed:
        first = self.unary()
        if not self.at("op", "*", "/"):
            return first
        # One n-ary Mul of all factors (divisors as Pow(d, -1)), like the sum: a left-to-right chain of
        # binary products costs O(n^2) in SymPy (3000 factors took over a minute).  The value is the same
        # as Python's left-to-right evaluation; the form can differ only where SymPy would distribute a
        # number over a sum at an intermediate step (Python: 2*(x + 1)*y -> y*(2*x + 2); here 2*y*(x + 1)).
        factors = [self.value(first, "in a product")]
        last = first
        numeric_bits = _coefficient_bits(factors[0])
        while self.at("op", "*", "/"):
            operator = self.advance()
            last = self.unary()
            operand = self.value(last, f"after {operator.text!r}")
            if operator.text == "/":
                if operand.is_number and operand.is_zero:
                    snippet = self.text[last.start : last.end]
                    self.fail(operator.start, f"division by zero (the denominator {snippet!r} is 0)", snippet)
                divisor = operand
                operand = self.build(operator.start, "'/'", lambda b=operand: sp.Pow(b, sp.S.NegativeOne))
                if divisor.has(sp.Piecewise):
                    self.check_branches(operand, operator.start, repr(self.text[first.start : last.end]))
            # The product of the chain's numbers is computed inside sp.Mul: bound it before, not after.
            numeric_bits += _coefficient_bits(operand)
            if numeric_bits > _MAX_NUMBER_BITS:
                self.fail(operator.start, f"the numbers in this product are too large (more than {_MAX_NUMBER_BITS} bits)")
            factors.append(operand)
        result = self.build(first.start, "a product", lambda: sp.Mul(*factors))
        self.check_number(result, first.start)
        return _Parsed(result, False, first.start, last.end)

    def unary(self) -> _Parsed:
        if not self.at("op", "+", "-"):
            return self.power()
        token = self.advance()
        self.nest(token.start)
        operand = self.unary()
        self.depth -= 1
        value = self.value(operand, f"after unary {token.text!r}")
        expr = value if token.text == "+" else self.build(token.start, "'-'", lambda: -value)
        return _Parsed(expr, False, token.start, operand.end)

    def power(self) -> _Parsed:
        base = self.atom()
        if not self.at("op", "^", "**"):
            return base
        operator = self.advance()
        self.nest(operator.start)
        exponent = self.unary()  # right-associative, and 2^-1 is allowed, as in Python
        self.depth -= 1
        b = self.value(base, f"before {operator.text!r}")
        e = self.value(exponent, f"after {operator.text!r}")
        expr = self.make_power(b, e, operator.start, self.text[base.start : exponent.end])
        return _Parsed(expr, False, base.start, exponent.end)

    def make_power(self, base: sp.Expr, exponent: sp.Expr, offset: int, snippet: str) -> sp.Expr:
        """``base^exponent`` with the guards that keep exact arithmetic from running away.

        Exponents beyond ``MAX_EXPONENT`` and exact numbers beyond ``_MAX_NUMBER_BITS`` are refused (for
        ``p/q`` the integer part ``c^ceil(|p/q|)`` is bounded); a non-integer exponent that cannot stay exact
        under the rule of ``MAX_EXACT_ROOT`` becomes the nearest double (a Float).
        """
        if isinstance(exponent, sp.Rational):
            if abs(exponent.p) > MAX_EXPONENT * exponent.q:
                self.fail(offset, f"the exponent {_short(exponent)} is too large (at most {MAX_EXPONENT} in absolute value)", snippet)
            numeric_bits = _numeric_bits(base)
            # c^(p/q) contains c^(p//q) exactly: bound its size for every rational exponent.
            if numeric_bits * -(-abs(exponent.p) // exponent.q) > _MAX_NUMBER_BITS:
                self.fail(offset, f"{snippet!r} is a number too large to compute exactly", snippet)
            if not exponent.is_Integer:
                if base.is_number and numeric_bits > _MAX_ROOT_BASE_BITS:
                    self.fail(offset, f"{snippet!r}: the base is too large for an exact root", snippet)
                if exponent.q > MAX_EXACT_ROOT or (exponent.q - 1) * numeric_bits > _MAX_ROOT_BITS:
                    # SymPy writes c^(p/q) with integers up to rad(c)^(q-1): keep the root inexact instead.
                    exponent = _nearest_double(exponent)
            if base.is_number and base.is_zero and exponent.is_negative:
                self.fail(offset, f"division by zero (0 raised to the negative power {exponent})", snippet)
        expr = self.build(offset, repr(snippet), lambda: sp.Pow(base, exponent))
        if base.is_number and exponent.is_number:
            self.check_numeric_result(expr, offset, repr(snippet))
        elif base.has(sp.Piecewise):
            self.check_branches(expr, offset, repr(snippet))
        self.check_number(expr, offset)
        return expr  # type: ignore[return-value]

    def atom(self) -> _Parsed:
        token = self.current
        if token.kind == "number":
            self.advance()
            return _Parsed(self.number(token), False, token.start, token.end)
        if token.kind == "name":
            self.advance()
            if self.at("op", "("):
                return self.call(token)
            return _Parsed(self.name(token), False, token.start, token.end)
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.nest(token.start)
            if self.at("op", ")"):
                self.fail(token.start, "empty parentheses '()'", "()")
            inner = self.expression()
            if self.at("op", ","):
                self.fail(self.current.start, "tuples are not allowed (',' outside a function call)", ",")
            closing = self.expect_op(")", token.start)
            self.depth -= 1
            return _Parsed(inner.expr, inner.is_condition, token.start, closing.end)
        if token.kind == "keyword":
            self.fail(token.start, f"unexpected keyword {token.text!r}", token.text, " (a value was expected)")
        self.unexpected("expected a number, a name, a function call or '('")

    def number(self, token: _Token) -> sp.Rational:
        """A decimal literal as an exact Integer/Rational: '8.6174e-5' -> 43087/500000000, never a float."""
        match = _NUMBER_PARTS.fullmatch(token.text)
        assert match is not None  # the scanner only produces literals of this form
        whole, fraction, exponent = (part.replace("_", "") if part else "" for part in match.groups())
        digits = (whole + fraction).lstrip("0") or "0"
        if len(digits) > _MAX_LITERAL_DIGITS:
            self.fail(token.start, f"the number literal has more than {_MAX_LITERAL_DIGITS} digits", token.text)
        power = int(exponent or "0") - len(fraction)
        if abs(power) > _MAX_LITERAL_EXPONENT + _MAX_LITERAL_DIGITS:
            self.fail(token.start, f"the number {token.text} is out of range", token.text)
        mantissa = int(digits)
        if mantissa == 0:
            return sp.S.Zero
        if abs(power + len(digits) - 1) > _MAX_LITERAL_EXPONENT:
            self.fail(token.start, f"the number {token.text} is out of range (|exponent| > {_MAX_LITERAL_EXPONENT})", token.text)
        if power >= 0:
            return sp.Integer(mantissa * 10**power)
        return sp.Rational(mantissa, 10**-power)

    def name(self, token: _Token) -> sp.Basic:
        name = token.text
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            self.fail(token.start, f"the function {name!r} is used as a value", name, f" (call it: {name}(...))")
        if name in self.symbols:
            return self.symbols[name]
        if name in ("True", "False", "true", "false"):
            self.fail(token.start, f"the boolean {name!r} is not a value", name, " (conditions are comparisons such as x < 1)")
        if name in ("inf", "nan", "oo", "zoo", "infinity", "Infinity"):
            self.fail(token.start, f"{name!r} is not allowed: every value of a model must be finite", name)
        if keyword.iskeyword(name) or name in ("print", "exec", "eval"):
            self.fail(token.start, f"the Python keyword {name!r} is not part of the model language", name)
        self.fail(token.start, f"unknown symbol {name!r}", name, _did_you_mean(name, self.symbols))

    def call(self, token: _Token) -> _Parsed:
        name = token.text
        if name not in FUNCTIONS:
            if name in CONSTANTS:
                self.fail(token.start, f"{name!r} is a constant, not a function", name)
            if name in self.symbols:
                self.fail(
                    token.start,
                    f"{name!r} is not a function",
                    name,
                    f" (only {_FUNCTION_LIST} can be called; implicit multiplication is not supported: write {name}*(...))",
                )
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (the functions are {_FUNCTION_LIST})"
            self.fail(token.start, f"unknown function {name!r}", name, hint)
        opening = self.advance()
        self.nest(opening.start)
        arguments: list[_Parsed] = []
        if not self.at("op", ")"):
            while True:
                arguments.append(self.expression())
                if self.at("op", ","):
                    self.advance()
                    if self.at("op", ")"):
                        break  # a trailing comma, as Python allows
                    continue
                break
        closing = self.expect_op(")", opening.start)
        self.depth -= 1
        low, high, constructor = FUNCTIONS[name]
        count = len(arguments)
        if count < low or (high is not None and count > high):
            expected = f"{low}" if low == high else f"at least {low}"
            plural = "" if low == 1 and low == high else "s"
            self.fail(token.start, f"{name}() takes {expected} argument{plural}, got {count}", name)
        if name == "piecewise":
            expr = self.piecewise(token, arguments)
        elif name == "sqrt":
            # sqrt(b) is b^(1/2): the same guards as a power (exact roots of huge numbers are slow).
            base = self.value(arguments[0], "as the argument of sqrt()")
            expr = self.make_power(base, sp.S.Half, token.start, self.text[token.start : closing.end])
        else:
            values = [self.value(a, f"as an argument of {name}()") for a in arguments]
            expr = self.build(token.start, f"{name}()", lambda: constructor(*values))
            if _foreign_functions(expr):
                # SymPy treats plain symbols as complex, so abs(exp(x)) evaluates to exp(re(x)); re() is not
                # part of the language (nor of code generation).  Keep the call as written instead.
                expr = self.build(token.start, f"{name}()", lambda: constructor(*values, evaluate=False))
                foreign = _foreign_functions(expr)
                if foreign:  # pragma: no cover - arguments come from this parser and contain none
                    self.fail(token.start, f"{name}() evaluates to an unsupported function {foreign!r}", name)
            if all(v.is_number for v in values):
                self.check_numeric_result(expr, token.start, repr(self.text[token.start : closing.end]))
            elif any(v.has(sp.Piecewise) for v in values):
                self.check_branches(expr, token.start, repr(self.text[token.start : closing.end]))
        return _Parsed(expr, False, token.start, closing.end)

    def piecewise(self, token: _Token, arguments: list[_Parsed]) -> sp.Expr:
        if len(arguments) % 2 == 0:
            self.fail(
                token.start,
                f"piecewise() takes an odd number of arguments (cond1, value1, cond2, value2, ..., otherwise), got {len(arguments)}",
                "piecewise",
            )
        pairs = []
        for k in range(0, len(arguments) - 1, 2):
            cond = self.condition(arguments[k], f"as argument {k + 1} of piecewise()")
            value = self.value(arguments[k + 1], f"as argument {k + 2} of piecewise()")
            pairs.append((value, cond))
        pairs.append((self.value(arguments[-1], "as the last (otherwise) argument of piecewise()"), sp.true))
        return self.build(token.start, "piecewise()", lambda: sp.Piecewise(*pairs))  # type: ignore[return-value]


def _foreign_functions(expr: sp.Basic) -> str | None:
    """Name of a function in ``expr`` that the language cannot write (SymPy's evaluation may introduce re, sign, ...)."""
    for function in expr.atoms(sp.Function):
        if not isinstance(function, (*_FUNCTION_NAMES, sp.Piecewise)):
            return type(function).__name__
    return None


def _coefficient_bits(expr: sp.Expr) -> int:
    coefficient = expr.as_coeff_Mul()[0]
    return _bits(coefficient) if isinstance(coefficient, sp.Rational) else 0


def _bits(number: sp.Rational) -> int:
    return int(number.p).bit_length() + int(number.q).bit_length()


def _numeric_bits(base: sp.Expr) -> int:
    """An upper bound on the size of the exact numbers SymPy computes when raising ``base`` to an integer power.

    SymPy evaluates powers of numbers and distributes integer powers over products, so the rational
    numbers in the numeric factors of ``base`` are what grow; a symbolic sum is never expanded.
    """
    total = 0
    for factor in sp.Mul.make_args(base):
        if factor.is_number:
            total += sum(_bits(r) for r in factor.atoms(sp.Rational))
    return total


def _short(number: sp.Rational) -> str:
    """A number for a message: exact when short, else about three significant digits (``about 1.0e+400``)."""
    if isinstance(number, sp.Rational) and _bits(number) <= 200:
        return str(number)
    with mpmath_precision(prec=53):
        value = mpmath.mpf(number.p) / number.q if isinstance(number, sp.Rational) else mpmath.mpf(number._mpf_)
        return f"about {mpmath.nstr(value, 3)}"


def _nearest_double(number: sp.Rational) -> sp.Float:
    """The double nearest to an exact rational, as a SymPy Float (53 bits; the exponent range is unbounded)."""
    return sp.Float(number, precision=53)


def _describe(node: sp.Expr) -> str:
    if isinstance(node, (sp.Rational, sp.Float)):
        text = _short(node)
        return f"a number of {text}" if text.startswith("about") else f"the number {text}"
    try:
        text = format_expression(node)
    except (ModelError, ValueError):
        text = type(node).__name__
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _double_range_problem(node: sp.Expr) -> str | None:
    """Why the numeric ``node`` is not a normal double (None if it is 0 or has DOUBLE_MIN <= |node| <= DOUBLE_MAX)."""
    if isinstance(node, sp.Rational):
        if node.p == 0:
            return None
        magnitude = sp.Abs(node)
        if magnitude > _DOUBLE_MAX_EXACT:
            return "overflows"
        if magnitude < _DOUBLE_MIN_EXACT:
            return "underflows"
        return None
    value = node if isinstance(node, sp.Float) else node.evalf(17, maxn=60)
    if not isinstance(value, sp.Float) or value.is_zero:
        return None  # not a real number SymPy can evaluate (checked elsewhere), or exactly 0
    number = float(value)
    if math.isinf(number):
        return "overflows"
    if abs(number) < DOUBLE_MIN:
        return "underflows"
    return None


_DOUBLE_MAX_EXACT = sp.Integer(int(DOUBLE_MAX))
_DOUBLE_MIN_EXACT = sp.Rational(1, 2**1022)


def check_constants(
    expr: sp.Basic, where: str, *, source: str | None = None, line: int | None = None
) -> None:
    """Refuse numbers that double precision cannot hold.

    Rule: every number of an expression -- each constant and each subexpression without symbols, as SymPy
    keeps them after exact arithmetic (so ``1e400/1e399`` is the number 10) -- is either exactly 0 or has
    ``DOUBLE_MIN <= |c| <= DOUBLE_MAX`` (2.2250738585072014e-308 .. 1.7976931348623157e308).  Beyond the
    top, compiled code would read ``inf``; below the bottom a constant would silently become 0 or lose
    digits as a subnormal.  Subexpressions are checked innermost first, so no huge value is ever computed.

    Raises
    ------
    ModelError
        Naming the number, the expression (``where``), and the file and line when given.
    """
    seen: set[sp.Basic] = set()
    for node in sp.postorder_traversal(expr):
        if node in seen or not isinstance(node, sp.Expr) or not node.is_number:
            continue
        seen.add(node)
        problem = _double_range_problem(node)
        if problem is None:
            continue
        limit = (
            f"its magnitude is above the largest double {DOUBLE_MAX!r}"
            if problem == "overflows"
            else f"it is not 0 and its magnitude is below the smallest normal double {DOUBLE_MIN!r}"
        )
        raise ModelError(
            f"{_describe(node)} in {where} is outside the range of double precision: {limit}",
            source=source,
            line=line,
        )


def _did_you_mean(name: str, candidates: Mapping[str, object] | list[str]) -> str:
    normal = unicodedata.normalize("NFKC", name)
    twins = [c for c in candidates if c != name and unicodedata.normalize("NFKC", c) == normal]
    if twins:
        return f" (did you mean {twins[0]!r}? names are matched exactly, not after Unicode normalisation)"
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def parse_expression(
    text: str,
    symbols: Mapping[str, sp.Symbol],
    *,
    where: str = "expression",
    source: str | None = None,
    line: int | None = None,
) -> sp.Expr:
    """Parse an expression of the model language into a SymPy expression, exactly and without evaluating Python.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"0.1*exprel(-(V + 40)/10)"``.  ``^`` and ``**`` both mean power.
    symbols : mapping name -> Symbol
        The names the expression may use (states, parameters, time, intermediates).
    where : str
        What the expression is, for messages (``"equation for state 'V'"``).
    source, line : optional
        File and line the expression comes from; carried by the :class:`ModelError`.

    Returns
    -------
    sympy.Expr
        Built by SymPy's constructors, every number an exact ``Integer``/``Rational`` (except exponents
        beyond the rule of ``MAX_EXACT_ROOT``, which are Floats).  A sum or product is
        one ``Add``/``Mul`` of its terms or factors: the value Python's left-to-right evaluation would give,
        possibly in a different form (``2*(x + 1)*y`` is ``2*y*(x + 1)``, not ``y*(2*x + 2)``).  The result
        is a fixed point of :func:`format_expression` followed by parsing (see ``_settle``).

    Raises
    ------
    ModelError
        For anything outside the grammar (naming the token and its column), unknown symbols (with
        suggestions), wrong arity, conditions used as values and values used as conditions, division by a
        zero constant, infinite or complex constants (``log(0)``, ``sqrt(-1)``), numeric exponents beyond
        ``MAX_EXPONENT``, texts longer than ``MAX_EXPRESSION_LENGTH`` and nesting deeper than ``MAX_NESTING``.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> parse_expression("-x^2 + 8.6174e-5", {"x": x})
    43087/500000000 - x**2
    """
    if not isinstance(text, str):
        raise ModelError(f"{where} must be an expression string, got {type(text).__name__}", source=source, line=line)
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ModelError(
            f"{where} is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}",
            source=source,
            line=line,
        )
    if not text.strip():
        raise ModelError(f"{where} is empty", source=source, line=line)
    parser = _Parser(text, symbols, where, source, line)
    try:
        return _settle(parser.parse())
    except RecursionError:
        # MAX_NESTING normally stops this first; a caller already deep in its own stack may still get here.
        raise ModelError(f"{where} is nested too deeply", source=source, line=line) from None


def _settle(expr: sp.Expr) -> sp.Expr:
    """Return the fixed point of print-then-parse that ``expr`` leads to (normally ``expr`` itself).

    SymPy's automatic simplification is not always idempotent: ``abs(-abs(z))`` evaluates to
    ``Abs(Abs(z))``, which evaluates to ``Abs(z)`` when built again, and ``21^(-3/2)^(-3/2)`` leaves powers
    of 21 that a second construction merges.  Settling here makes the documented round trip
    ``parse_expression(format_expression(e)) == e`` hold for every expression this parser returns; the
    value is mathematically unchanged.  Usually one extra print and parse confirms ``expr`` is already fixed.
    """
    table = {s.name: s for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    for _ in range(4):
        try:
            again = _Parser(format_expression(expr), table, "expression", None, None).parse()
        except ModelError:
            return expr  # not expressible again (cannot happen for parser output); keep what was parsed
        if again == expr:
            return expr
        expr = again
    return expr


# ---------------------------------------------------------------------------------------------------------
# Printer: SymPy -> model language, such that parse_expression(format_expression(e)) == e structurally
# ---------------------------------------------------------------------------------------------------------

# Binding strength of the printed form; an operand is parenthesized when it binds less tightly than its
# position requires.
_OR, _AND, _NOT, _COMPARE, _ADD, _MUL, _NEG, _POW, _ATOM = range(1, 10)

_FUNCTION_NAMES: Mapping[type, str] = {
    sp.exp: "exp",
    sp.log: "log",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.tanh: "tanh",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.Abs: "abs",
    sp.Min: "min",
    sp.Max: "max",
    exprel: "exprel",
}

_RELATIONS: Mapping[type, str] = {
    sp.StrictLessThan: "<",
    sp.LessThan: "<=",
    sp.StrictGreaterThan: ">",
    sp.GreaterThan: ">=",
}


def format_expression(expr: sp.Basic) -> str:
    """Write a SymPy expression in the model language.

    The output parses back to the same tree: ``parse_expression(format_expression(e), symbols) == e`` for
    every expression the parser produces (and for SymPy expressions built from the same functions with
    exact numbers).  Rationals are exact: a decimal literal when the denominator is a product of 2s and 5s
    (``1.32``, ``8.6174e-5``), otherwise ``p/q``.  Piecewise is written ``piecewise(c1, v1, ..., otherwise)``.
    A binary ``sympy.Float`` is written as its shortest round-trip decimal (it parses back as that exact
    rational, not as a Float).

    Raises
    ------
    ModelError
        For objects the language cannot express (``Eq``, ``Heaviside``, a Piecewise without an otherwise
        branch, complex numbers, symbols whose names are not names of the language, ...).
    """
    if isinstance(expr, Boolean) and not isinstance(expr, sp.Expr):
        raise ModelError(f"a condition is not a value and cannot be written as an expression: {expr}")
    return _Printer().text(expr)


class _Printer:
    def text(self, expr: sp.Basic) -> str:
        return self.print(expr)[0]

    def operand(self, expr: sp.Basic, minimum: int) -> str:
        """Print ``expr``, parenthesized if it binds less tightly than ``minimum``."""
        text, strength = self.print(expr)
        return text if strength >= minimum else f"({text})"

    def print(self, expr: sp.Basic) -> tuple[str, int]:
        if isinstance(expr, sp.Rational):
            return _format_rational(expr)
        if isinstance(expr, sp.Float):
            return self.float(expr)
        if isinstance(expr, sp.Symbol):
            name = expr.name
            if not name.isidentifier() or keyword.iskeyword(name) or name in FUNCTIONS or name in CONSTANTS or name in _KEYWORDS:
                raise ModelError(f"the symbol name {name!r} cannot be written in the model language", name=name)
            return name, _ATOM
        if expr is sp.pi:
            return "pi", _ATOM
        if expr is sp.E:
            return "exp(1)", _ATOM
        if isinstance(expr, sp.Add):
            return self.add(expr)
        if isinstance(expr, sp.Mul):
            return self.mul(expr)
        if isinstance(expr, sp.Pow):
            if isinstance(expr.exp, sp.Rational) and expr.exp.is_negative:
                return self.mul(expr)  # 1/x^2, 1/sqrt(x): the product printer handles denominators
            return self.power(expr.base, expr.exp)
        if isinstance(expr, sp.Piecewise):
            return self.piecewise(expr)
        if isinstance(expr, tuple(_FUNCTION_NAMES)):
            return f"{_function_name(expr)}({', '.join(self.text(a) for a in expr.args)})", _ATOM
        if isinstance(expr, tuple(_RELATIONS)):
            operator = _RELATIONS[type(expr)]
            return f"{self.operand(expr.lhs, _ADD)} {operator} {self.operand(expr.rhs, _ADD)}", _COMPARE
        if isinstance(expr, sp.And):
            return " and ".join(self.operand(a, _NOT) for a in expr.args), _AND
        if isinstance(expr, sp.Or):
            return " or ".join(self.operand(a, _AND) for a in expr.args), _OR
        if isinstance(expr, sp.Not):
            return f"not {self.operand(expr.args[0], _NOT)}", _NOT
        raise ModelError(f"{type(expr).__name__} cannot be written in the model language: {expr}")

    @staticmethod
    def float(expr: sp.Float) -> tuple[str, int]:
        double = float(expr)
        if expr._prec == 53 and math.isfinite(double) and sp.Float(double, precision=53) == expr:
            text = repr(double)
        else:
            # Wider precision, or beyond the double range (1e-400 is not the double 0.0).
            text = sp.sstr(expr, full_prec=False)
        if not _NUMBER.fullmatch(text.lstrip("-")):
            raise ModelError(f"the number {expr} cannot be written in the model language")
        return text, (_NEG if text.startswith("-") else _ATOM)

    def add(self, expr: sp.Add) -> tuple[str, int]:
        # Order is cosmetic (SymPy's Add is canonical whatever the order): keep SymPy's argument order, which
        # is cheap (as_ordered_terms() is quadratic-ish on long sums), but put the constant last and start
        # with a positive term where there is one: "r1 - k2*y2^2 + 1" rather than "1 - k2*y2^2 + r1".
        terms = [t for t in expr.args if not t.is_Number] + [t for t in expr.args if t.is_Number]
        positive = next((k for k, t in enumerate(terms) if not _is_negative_term(t)), 0)
        terms.insert(0, terms.pop(positive))
        parts: list[str] = []
        for term in terms:
            negative = _is_negative_term(term)
            if not parts:
                parts.append(self.text(term))
            elif negative:
                parts.append(f" - {self.operand(-term, _MUL)}")
            else:
                parts.append(f" + {self.operand(term, _MUL)}")
        return "".join(parts), _ADD

    def mul(self, expr: sp.Expr) -> tuple[str, int]:
        """Print a product ``c*n1*n2*.../(d1*d2)``.

        SymPy distributes a rational over a sum when a product has exactly those two factors
        (``2*(x + 1)`` is ``2*x + 2``).  A canonical product that *contains* a coefficient and sums
        (``-(x + 1)*(y + 1)`` as one Mul) must be printed so that the two never meet alone -- in a unary
        minus, in ``q*(y + 1)`` below a fraction bar, or in a parenthesized group: non-sum factors first,
        and the factors grouped in parentheses behind a coefficient when the first one is a sum
        (``-((x + 1)*(y + 1))``, ``2*((x + 1)/y)``).
        """
        coefficient, factors = expr.as_coeff_mul()
        negative = bool(coefficient.is_negative)
        coefficient = -coefficient if negative else coefficient
        numerator: list[sp.Expr] = []
        denominator: list[tuple[sp.Expr, sp.Rational]] = []
        for factor in factors:
            if isinstance(factor, sp.Pow) and isinstance(factor.exp, sp.Rational) and factor.exp.is_negative:
                denominator.append((factor.base, -factor.exp))
            else:
                numerator.append(factor)
        numerator.sort(key=lambda f: isinstance(f, sp.Add))  # stable: sums last
        leading_sum = bool(numerator) and isinstance(numerator[0], sp.Add)
        numerator_text = "*".join(self.operand(f, _POW) for f in numerator)
        denominator_texts = [self.operand_power(base, exponent) for base, exponent in denominator]
        bare_sum_below = any(isinstance(base, sp.Add) and exponent == 1 for base, exponent in denominator)

        lead = ""  # the coefficient's text in front, or its numerator p when q goes below
        q_text = ""
        if coefficient != 1:
            text, _ = _format_rational(coefficient)  # type: ignore[arg-type]
            p_text = "" if coefficient.p == 1 else f"{coefficient.p}*"
            as_fraction = len(p_text) + len(str(coefficient.q)) + 1
            if "/" not in text and (coefficient.q == 1 or not numerator or len(text) + 1 < as_fraction):
                lead = text  # an integer or a decimal literal shorter than p*.../q: 1.32*x, 8.6174e-5*x
            elif not numerator and bare_sum_below:
                lead = text  # "2/3/(x + 1)": the rational is complete before the division by the sum
            else:
                lead = str(coefficient.p) if coefficient.p != 1 else ""
                q_text = str(coefficient.q)
        # 1/(3*y) is split by SymPy into (1/3)*(1/y), but in 1/(3*(y + 1)) the 3 would first be distributed
        # into the sum; so q joins the group of denominators only when no bare sum is among them.
        group = ([q_text] if q_text and not bare_sum_below else []) + denominator_texts
        below = ""
        if group:
            below = "/" + (group[0] if len(group) == 1 else "(" + "*".join(group) + ")")
        if q_text and bare_sum_below:
            below += "/" + q_text

        if numerator:
            core = numerator_text + below
            if leading_sum and (lead or negative):
                core = f"({core})"
            text = f"{lead}*{core}" if lead else core
        else:
            text = (lead or "1") + below
        if negative:
            text = "-" + text
        # "-x^2" binds like a unary minus; anything with '*' or '/' at the top binds like a product.
        lone_negated_factor = negative and len(numerator) == 1 and not denominator and not lead and not q_text
        return text, (_NEG if lone_negated_factor else _MUL)

    def operand_power(self, base: sp.Expr, exponent: sp.Rational) -> str:
        """A positive power as a denominator factor (it must bind tighter than '/')."""
        text, strength = self.power(base, exponent)
        return text if strength > _MUL else f"({text})"

    def power(self, base: sp.Expr, exponent: sp.Expr) -> tuple[str, int]:
        if exponent == 1:
            return self.print(base)
        if exponent == sp.S.Half:
            return f"sqrt({self.text(base)})", _ATOM
        base_text = self.operand(base, _ATOM)
        exponent_text, strength = self.print(exponent)
        if strength < _ATOM or exponent_text.startswith("-"):
            exponent_text = f"({exponent_text})"
        return f"{base_text}^{exponent_text}", _POW

    def piecewise(self, expr: sp.Piecewise) -> tuple[str, int]:
        pieces = list(expr.args)
        if not pieces or pieces[-1].cond != sp.true:
            raise ModelError(f"a Piecewise without an otherwise branch cannot be written in the model language: {expr}")
        parts: list[str] = []
        for piece in pieces[:-1]:
            if isinstance(piece.cond, (BooleanTrue, BooleanFalse)):
                raise ModelError(f"a Piecewise with a constant condition cannot be written: {expr}")
            parts.append(self.text(piece.cond))
            parts.append(self.text(piece.expr))
        parts.append(self.text(pieces[-1].expr))
        return f"piecewise({', '.join(parts)})", _ATOM


def _function_name(expr: sp.Basic) -> str:
    """The language's name of a function object (also for SymPy subclasses of the listed classes)."""
    for cls, name in _FUNCTION_NAMES.items():
        if isinstance(expr, cls):
            return name
    raise ModelError(f"{type(expr).__name__} cannot be written in the model language")  # pragma: no cover


def _is_negative_term(term: sp.Expr) -> bool:
    coefficient = term.as_coeff_Mul()[0]
    return bool(coefficient.is_negative)


def _format_rational(number: sp.Rational) -> tuple[str, int]:
    """Exact text of a rational and its binding strength.

    Integers print plainly (``30000000`` becomes ``3e7`` when that is much shorter); a denominator of only
    2s and 5s gives a finite decimal (``33/25`` -> ``1.32``, ``43087/500000000`` -> ``8.6174e-5``),
    preferred unless it is much longer than ``p/q``; anything else is ``p/q`` (binding like a quotient).
    """
    if number.is_negative:
        text, strength = _format_rational(-number)
        return "-" + text, (_MUL if "/" in text else _NEG)
    p, q = int(number.p), int(number.q)
    if q == 1:
        plain = str(p)
        stripped = plain.rstrip("0")
        if stripped and len(plain) - len(stripped) >= 5:
            return _scientific(stripped, len(plain) - 1), _ATOM
        return plain, _ATOM
    twos = fives = 0
    rest = q
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    fraction = f"{p}/{q}"
    if rest == 1:
        scale = max(twos, fives)
        digits = str(p * 10**scale // q)  # exact: q divides 10**scale
        if len(digits) > scale:
            plain = f"{digits[:-scale]}.{digits[-scale:]}"
        else:
            plain = "0." + "0" * (scale - len(digits)) + digits
        # Python's own convention (repr of floats): plain from 1e-4 up, scientific below.
        exponent = len(digits) - 1 - scale
        decimal = _scientific(digits, exponent) if exponent < -4 else plain
        if len(decimal) <= len(fraction) + 8:
            return decimal, _ATOM
    return fraction, _MUL


def _scientific(digits: str, exponent: int) -> str:
    """``digits`` (no trailing zeros needed) times 10**(exponent - len(digits) + 1) as d.ddde<exponent>."""
    digits = digits.rstrip("0") or "0"
    mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{exponent}"
