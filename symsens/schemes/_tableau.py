"""Exact coefficient containers of one-step schemes: Butcher and Rosenbrock tableaux.

A tableau is the single source of truth of a scheme: the exact analysis (stability function, order
conditions, decay laws) and, later, the generated integrator both read the same frozen object.  Its
coefficients are exact SymPy numbers (``Rational``, radicals such as ``sqrt(2)``, algebraic numbers
``CRootOf(p, k)``); floating-point values are only *produced* from them (:meth:`ButcherTableau.as_float`),
never accepted.

Runge–Kutta (Butcher, 1964; Hairer, Nørsett & Wanner I, Sect. II.1)::

    k_i = f(t0 + c_i h, y0 + h sum_j a_ij k_j),    y1 = y0 + h sum_i b_i k_i,
    yhat1 = y0 + h sum_i bhat_i k_i                 (embedded companion, ``b_error``)

Rosenbrock (Hairer & Wanner II, Sect. IV.7, eq. (7.4), exact Jacobian ``J = f'(y0)``)::

    (I - h gamma_ii J) k_i = h f(y0 + sum_{j<i} alpha_ij k_j) + h J sum_{j<i} gamma_ij k_j,
    y1 = y0 + sum_i b_i k_i.

Invariants are checked once, exactly, at construction and violations raise
:class:`symsens._errors.SchemeError` naming the scheme and the identity.  Tableaux transcribed from
published *decimals* carry ``tolerance``: the decimals are stored exactly (``Rational("0.386")``) and only
the identities rounding cannot meet exactly (``sum(b) == 1``, row sums of ``A`` equal ``c``,
``sum(b_error) == 1``) are relaxed to that absolute tolerance; zero patterns and the equal diagonal stay
exact.

Exact zero test
---------------
``is_exact_zero`` decides ``expr == 0`` exactly: rationals directly; a 50-digit evaluation (algebraic
atoms first replaced by 100-digit values) settles values of modulus > 1e-40 as non-zero; the rest is
certified by expansion, by reduction modulo the Cauchy modules of ``p`` for expressions in several
roots ``CRootOf(p, k)`` of one polynomial (a lex Gröbner basis of the universal splitting algebra, so that symmetric identities such as
``sum_k CRootOf(p, k) = -p_{d-1}/p_d`` are proved without forming a field of degree ``d!``), and finally by
``sympy.minimal_polynomial``.  An expression that is numerically tiny but non-zero ends in the exact
branch, never in a float comparison.
"""

from __future__ import annotations

import fractions
import functools
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from .._errors import SchemeError

__all__ = [
    "ButcherTableau",
    "RosenbrockTableau",
    "BUTCHER_FAMILIES",
    "exact",
    "is_exact_zero",
]

#: The structural families a Butcher tableau can belong to (derived from the zero pattern of ``A``).
BUTCHER_FAMILIES = ("explicit", "dirk", "sdirk", "esdirk", "implicit")

_ZERO = sympy.Integer(0)
_ONE = sympy.Integer(1)
_X = sympy.Dummy("x")
# A 50-digit evaluation (roots at 100 digits, coefficients of modest size) whose modulus exceeds this is
# non-zero; below it the answer is certified exactly.
_EVAL_DIGITS = 50
_NONZERO_THRESHOLD = sympy.Float("1e-40", 50)


# ----------------------------------------------------------------------------------------------------
# Exact numbers.
# ----------------------------------------------------------------------------------------------------
def exact(value: Any, *, scheme: str = "?", what: str = "coefficient") -> sympy.Expr:
    """Return ``value`` as an exact SymPy number, or raise :class:`SchemeError`.

    Accepted: ``int``, :class:`fractions.Fraction`, SymPy ``Rational``, radicals, ``CRootOf`` and
    arithmetic expressions of them.  Rejected: ``float`` / ``sympy.Float`` (a typed-in float is exactly the
    thing this catalogue exists to avoid), strings (never parsed), ``bool``, and anything with free
    symbols.
    """
    if isinstance(value, bool) or isinstance(value, str):
        raise SchemeError(f"scheme {scheme!r}: {what} {value!r} is not an exact number")
    if isinstance(value, float):
        raise SchemeError(
            f"scheme {scheme!r}: {what} {value!r} is a float; give exact values "
            "(sympy.Rational of the published decimal string, radicals, CRootOf)"
        )
    if isinstance(value, fractions.Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if isinstance(value, numbers.Integral) and not isinstance(value, sympy.Basic):
        return sympy.Integer(int(value))
    if not isinstance(value, sympy.Basic):
        raise SchemeError(f"scheme {scheme!r}: {what} {value!r} of type {type(value).__name__} is not exact")
    if value.has(sympy.Float):
        raise SchemeError(f"scheme {scheme!r}: {what} {value} contains a float")
    if value.free_symbols:
        raise SchemeError(f"scheme {scheme!r}: {what} {value} contains symbols {sorted(map(str, value.free_symbols))}")
    if not value.is_number:
        raise SchemeError(f"scheme {scheme!r}: {what} {value} is not a number")
    return value


@functools.lru_cache(maxsize=64)
def _cauchy_modules(poly: sympy.PurePoly, m: int) -> tuple[tuple[sympy.Dummy, ...], tuple[sympy.Expr, ...]]:
    """Cauchy modules ``C_1, ..., C_m`` of the monic version of ``poly`` (``m <= deg``), with their variables.

    ``C_1 = p(x_1)`` and ``C_{k+1} = (C_k(.., x_{k+1}) - C_k(.., x_k)) / (x_{k+1} - x_k)``.  ``C_k`` is monic of
    degree ``deg p - k + 1`` in ``x_k``; together they are a lex Gröbner basis of the relations satisfied by
    any ``m`` distinct roots of ``p`` (the universal splitting algebra).
    """
    symbols = tuple(sympy.Dummy(f"r{k}") for k in range(m))
    var = poly.gen
    monic = sympy.expand(poly.as_expr() / poly.LC())
    modules = [sympy.expand(monic.subs(var, symbols[0]))]
    for k in range(1, m):
        prev = modules[-1]
        numerator = sympy.expand(prev.subs(symbols[k - 1], symbols[k]) - prev)
        quotient, remainder = sympy.div(numerator, symbols[k] - symbols[k - 1], symbols[k])
        if remainder != 0:  # pragma: no cover - exact division by construction
            raise ArithmeticError("Cauchy module division left a remainder")
        modules.append(sympy.expand(quotient))
    return symbols, tuple(modules)


def _approximate(expr: sympy.Expr) -> sympy.Expr:
    """A 50-digit value of ``expr``; ``CRootOf`` atoms are first replaced by 100-digit values, because SymPy
    re-refines a root for every power it evaluates (slow for long polynomial expressions)."""
    roots = expr.atoms(sympy.CRootOf)
    if roots:
        expr = expr.xreplace({r: r.evalf(100) for r in roots})
    return expr.evalf(_EVAL_DIGITS)


def _zero_in_splitting_algebra(expr: sympy.Expr) -> bool:
    """True if ``expr`` (rational in ``CRootOf`` atoms, nothing else irrational) reduces to zero."""
    roots = sorted(expr.atoms(sympy.CRootOf), key=sympy.default_sort_key)
    if not roots:
        return False
    groups: dict[Any, list[sympy.CRootOf]] = {}
    for root in roots:
        groups.setdefault(root.poly, []).append(root)
    substitution: dict[sympy.Expr, sympy.Symbol] = {}
    basis: list[sympy.Expr] = []
    generators: list[sympy.Symbol] = []
    for poly, members in groups.items():
        symbols, modules = _cauchy_modules(poly, len(members))
        substitution.update(zip(members, symbols))
        basis += modules
        # lex order with the last-introduced root largest: C_k has leading term x_k^(d-k+1).
        generators += list(symbols[::-1])
    numerator, _ = sympy.fraction(sympy.together(expr.xreplace(substitution)))
    numerator = sympy.expand(numerator)
    if numerator.atoms(sympy.Pow) and any(not p.exp.is_Integer for p in numerator.atoms(sympy.Pow)):
        return False  # radicals mixed in: leave it to minimal_polynomial
    if numerator.free_symbols - set(generators):
        return False
    _, remainder = sympy.reduced(numerator, basis, *generators, order="lex")
    return sympy.expand(remainder) == 0


@functools.lru_cache(maxsize=4096)
def is_exact_zero(expr: sympy.Expr) -> bool:
    """Decide exactly whether the algebraic number ``expr`` is zero (see the module docstring)."""
    expr = sympy.sympify(expr)
    if expr.is_Rational:
        return expr == 0
    # Cheap first: most questions asked (zero patterns) have clearly non-zero answers.
    value = _approximate(expr)  # no Abs(expr): SymPy would try to decide its sign symbolically
    if value.is_Number and abs(value) > _NONZERO_THRESHOLD:
        return False
    expanded = sympy.expand(expr)
    if expanded == 0:
        return True
    if expanded.is_Rational:
        return False
    if expanded.has(sympy.CRootOf) and _zero_in_splitting_algebra(expanded):
        return True
    if sympy.radsimp(expanded) == 0:
        return True
    return sympy.minimal_polynomial(expanded, _X) == _X


def _identity_holds(lhs: sympy.Expr, rhs: sympy.Expr, tolerance: sympy.Rational | None) -> bool:
    """``lhs == rhs`` exactly, or within ``tolerance`` (absolute) when one is given."""
    difference = lhs - rhs
    if tolerance is None:
        return is_exact_zero(difference)
    if is_exact_zero(difference):
        return True
    return bool(abs(_approximate(difference)) <= tolerance)


def _fail(scheme: str, identity: str, detail: str = "") -> SchemeError:
    message = f"scheme {scheme!r} violates {identity}"
    if detail:
        message += f": {detail}"
    return SchemeError(message)


def _show(value: sympy.Expr) -> str:
    """Short text of a coefficient for error messages (exact if short, else a 20-digit value)."""
    text = str(value)
    return text if len(text) <= 40 else f"{sympy.N(value, 20)}..."


# ----------------------------------------------------------------------------------------------------
# Normalisation of user input.
# ----------------------------------------------------------------------------------------------------
def _vector(values: Iterable[Any] | None, scheme: str, what: str) -> tuple[sympy.Expr, ...] | None:
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise SchemeError(f"scheme {scheme!r}: `{what}` must be a sequence of exact numbers, got {values!r}")
    return tuple(exact(v, scheme=scheme, what=f"{what}[{i}]") for i, v in enumerate(values))


def _matrix(rows: Iterable[Iterable[Any]], scheme: str, what: str) -> tuple[tuple[sympy.Expr, ...], ...]:
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise SchemeError(f"scheme {scheme!r}: `{what}` must be a sequence of rows, got {rows!r}")
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Iterable):
            raise SchemeError(f"scheme {scheme!r}: row {i} of `{what}` is not a sequence")
        out.append(tuple(exact(v, scheme=scheme, what=f"{what}[{i}][{j}]") for j, v in enumerate(row)))
    return tuple(out)


def _check_square(matrix: tuple[tuple[sympy.Expr, ...], ...], scheme: str, what: str) -> int:
    s = len(matrix)
    if s == 0:
        raise _fail(scheme, f"shape of `{what}`", "it has no rows")
    for i, row in enumerate(matrix):
        if len(row) != s:
            raise _fail(scheme, f"shape of `{what}`", f"row {i} has {len(row)} entries, expected {s} (square)")
    return s


def _check_length(vector: tuple[sympy.Expr, ...] | None, s: int, scheme: str, what: str) -> None:
    if vector is not None and len(vector) != s:
        raise _fail(scheme, f"shape of `{what}`", f"length {len(vector)}, expected {s} stages")


def _check_tolerance(tolerance: Any, scheme: str) -> sympy.Rational | None:
    if tolerance is None:
        return None
    value = exact(tolerance, scheme=scheme, what="tolerance")
    if not (value.is_Rational and value > 0):
        raise SchemeError(f"scheme {scheme!r}: `tolerance` must be a positive Rational or None, got {value}")
    return value


def _check_orders(scheme: str, order: Any, b_error: Any, embedded_order: Any) -> None:
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 1:
        raise SchemeError(f"scheme {scheme!r}: `order` must be a positive integer, got {order!r}")
    if (b_error is None) != (embedded_order is None):
        raise SchemeError(
            f"scheme {scheme!r}: `b_error` and `embedded_order` must be given together "
            f"(got b_error={'set' if b_error is not None else None}, embedded_order={embedded_order!r})"
        )
    if embedded_order is not None and (
        isinstance(embedded_order, bool) or not isinstance(embedded_order, numbers.Integral) or embedded_order < 1
    ):
        raise SchemeError(f"scheme {scheme!r}: `embedded_order` must be a positive integer, got {embedded_order!r}")


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name or name != name.strip():
        raise SchemeError(f"scheme name must be a non-empty string without surrounding blanks, got {name!r}")


def _sum_is_one(vector: tuple[sympy.Expr, ...], scheme: str, what: str, tolerance: sympy.Rational | None) -> None:
    total = sympy.Add(*vector)
    if not _identity_holds(total, _ONE, tolerance):
        bound = "" if tolerance is None else f" within {tolerance}"
        raise _fail(scheme, f"sum({what}) == 1{bound}", f"sum({what}) = {_show(total)}")


def _float_array(values: Any) -> np.ndarray:
    """Float64 array from exact values: each entry rounded once from a 30-digit evaluation."""
    array = np.array(values, dtype=object)
    flat = [float(sympy.N(v, 30)) for v in array.ravel()]
    return np.array(flat, dtype=float).reshape(array.shape)


# ----------------------------------------------------------------------------------------------------
# Butcher tableau.
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ButcherTableau:
    """A Runge–Kutta method ``(A, b, c)`` with an optional embedded companion ``b_error``, all exact.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"radau-iia-3"``.
    A : tuple of tuples, shape (s, s)
        Stage coefficients ``a_ij``.
    b : tuple, shape (s,)
        Weights of the propagated solution.
    c : tuple, shape (s,)
        Nodes; must equal the row sums of ``A``.
    order : int
        Classical order claimed by the source.
    b_error : tuple, shape (s,), optional
        Weights ``bhat`` of the embedded companion solution (not the difference ``b - bhat``); the error
        estimate of a step is ``h sum_i (b_i - bhat_i) k_i``.
    embedded_order : int, optional
        Order of the companion solution; given iff ``b_error`` is.
    reference : str
        Citation of the coefficients.
    tolerance : sympy.Rational, optional
        ``None`` when every coefficient is exact.  For tableaux transcribed from published decimals, the
        absolute tolerance to which ``sum(b) == 1``, ``A e == c`` and ``sum(b_error) == 1`` are required.
    family : str, optional
        Declared structural family; checked against the zero pattern of ``A`` and, after construction,
        always the derived value (one of :data:`BUTCHER_FAMILIES`).

    Derived attributes
    ------------------
    stages, family, is_explicit, is_diagonally_implicit, is_stiffly_accurate (last row of ``A`` equals
    ``b``), fsal (first row of ``A`` zero and stiffly accurate: the last stage is the next step's first),
    and the SymPy matrices :attr:`A_matrix`, :attr:`b_vector`, :attr:`c_vector`, :attr:`b_error_vector`.
    """

    name: str
    A: tuple[tuple[sympy.Expr, ...], ...]
    b: tuple[sympy.Expr, ...]
    c: tuple[sympy.Expr, ...]
    order: int
    b_error: tuple[sympy.Expr, ...] | None = None
    embedded_order: int | None = None
    reference: str = ""
    tolerance: sympy.Rational | None = None
    family: str = ""
    stages: int = field(init=False, repr=False, compare=False)
    is_explicit: bool = field(init=False, repr=False, compare=False)
    is_diagonally_implicit: bool = field(init=False, repr=False, compare=False)
    is_stiffly_accurate: bool = field(init=False, repr=False, compare=False)
    fsal: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = self.name
        _check_name(name)
        set_ = object.__setattr__  # frozen dataclass: normalise fields once, here
        A = _matrix(self.A, name, "A")
        s = _check_square(A, name, "A")
        b = _vector(self.b, name, "b")
        c = _vector(self.c, name, "c")
        b_error = _vector(self.b_error, name, "b_error")
        _check_length(b, s, name, "b")
        _check_length(c, s, name, "c")
        _check_length(b_error, s, name, "b_error")
        _check_orders(name, self.order, b_error, self.embedded_order)
        tolerance = _check_tolerance(self.tolerance, name)
        if not isinstance(self.reference, str):
            raise SchemeError(f"scheme {name!r}: `reference` must be a string")
        for field_name, value in (("A", A), ("b", b), ("c", c), ("b_error", b_error), ("tolerance", tolerance)):
            set_(self, field_name, value)

        # Consistency identities (exact, or within the stated tolerance for decimal sources).
        _sum_is_one(b, name, "b", tolerance)
        for i in range(s):
            row_sum = sympy.Add(*A[i])
            if not _identity_holds(row_sum, c[i], tolerance):
                bound = "" if tolerance is None else f" within {tolerance}"
                detail = f"row sum {_show(row_sum)} != c[{i}] = {_show(c[i])}"
                raise _fail(name, f"sum_j A[{i}][j] == c[{i}]{bound}", detail)
        if b_error is not None:
            _sum_is_one(b_error, name, "b_error", tolerance)
            if all(is_exact_zero(u - v) for u, v in zip(b, b_error)):
                raise _fail(name, "b_error != b", "the embedded weights equal b, so the error estimate vanishes")

        # Structure, derived from the exact zero pattern of A.
        zero = [[is_exact_zero(A[i][j]) for j in range(s)] for i in range(s)]
        lower = all(zero[i][j] for i in range(s) for j in range(i + 1, s))
        diagonal = [A[i][i] for i in range(s)]
        if lower and all(zero[i][i] for i in range(s)):
            derived = "explicit"
        elif lower and s >= 1 and not zero[0][0] and all(is_exact_zero(d - diagonal[0]) for d in diagonal):
            derived = "sdirk"
        elif (
            lower
            and s >= 2
            and zero[0][0]
            and not zero[1][1]
            and all(is_exact_zero(d - diagonal[1]) for d in diagonal[1:])
        ):
            derived = "esdirk"
        elif lower:
            derived = "dirk"
        else:
            derived = "implicit"
        declared = self.family
        if declared:
            if declared not in BUTCHER_FAMILIES:
                raise SchemeError(f"scheme {name!r}: unknown family {declared!r}; expected one of {BUTCHER_FAMILIES}")
            if declared != derived:
                raise _fail(name, f"declared family {declared!r}", f"the zero pattern of A makes it {derived!r}")
        set_(self, "family", derived)
        set_(self, "stages", s)
        set_(self, "is_explicit", derived == "explicit")
        set_(self, "is_diagonally_implicit", derived in ("dirk", "sdirk", "esdirk"))
        stiffly = all(is_exact_zero(A[s - 1][j] - b[j]) for j in range(s))
        set_(self, "is_stiffly_accurate", stiffly)
        set_(self, "fsal", stiffly and all(zero[0]))

    # -- views -----------------------------------------------------------------------------------
    @property
    def A_matrix(self) -> sympy.ImmutableMatrix:
        """``A`` as an immutable SymPy matrix, shape (s, s)."""
        return sympy.ImmutableMatrix(self.A)

    @property
    def b_vector(self) -> sympy.ImmutableMatrix:
        """``b`` as an immutable SymPy column, shape (s, 1)."""
        return sympy.ImmutableMatrix(self.b)

    @property
    def c_vector(self) -> sympy.ImmutableMatrix:
        """``c`` as an immutable SymPy column, shape (s, 1)."""
        return sympy.ImmutableMatrix(self.c)

    @property
    def b_error_vector(self) -> sympy.ImmutableMatrix | None:
        """``b_error`` as an immutable SymPy column, or ``None``."""
        return None if self.b_error is None else sympy.ImmutableMatrix(self.b_error)

    @property
    def is_exact(self) -> bool:
        """True unless the coefficients are rounded published decimals (``tolerance`` set)."""
        return self.tolerance is None

    def as_float(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(A, b, c, b_error)`` as float64 arrays, each entry rounded once from its exact value."""
        return (
            _float_array(self.A),
            _float_array(self.b),
            _float_array(self.c),
            None if self.b_error is None else _float_array(self.b_error),
        )


# ----------------------------------------------------------------------------------------------------
# Rosenbrock tableau.
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RosenbrockTableau:
    """A Rosenbrock method in Hairer–Wanner ``(alpha, gamma, b)`` form, all coefficients exact.

    One step (HW II, IV.7, (7.4)), ``J = f'(y0)``::

        (I - h gamma_ii J) k_i = h f(y0 + sum_{j<i} alpha_ij k_j) + h J sum_{j<i} gamma_ij k_j
        y1 = y0 + sum_i b_i k_i,      yhat1 = y0 + sum_i bhat_i k_i   (``b_error``)

    Non-autonomous problems add ``h^2 gamma_i f_t(t0, y0)`` to stage ``i`` with ``gamma_i = sum_j gamma_ij``
    (:attr:`gamma_sum`) and evaluate ``f`` at ``t0 + alpha_i h`` (``alpha_i`` = :attr:`alpha_sum`).

    Parameters
    ----------
    name : str
    alpha : tuple of tuples, shape (s, s)
        Strictly lower triangular.
    gamma : tuple of tuples, shape (s, s)
        Lower triangular with all diagonal entries equal to ``gamma`` (non-zero).
    b : tuple, shape (s,)
    order : int
    b_error : tuple, shape (s,), optional
        Weights of the embedded companion solution.
    embedded_order : int, optional
    reference : str
    tolerance : sympy.Rational, optional
        As for :class:`ButcherTableau`; relaxes ``sum(b) == 1`` and ``sum(b_error) == 1`` only.

    Derived attributes
    ------------------
    stages, family (``"rosenbrock"``), gamma_diagonal, alpha_sum, gamma_sum, is_stiffly_accurate
    (``alpha_sj + gamma_sj == b_j`` for all ``j``, HW II, VI.4), and the SymPy matrices
    :attr:`alpha_matrix`, :attr:`gamma_matrix`, :attr:`beta_matrix` (``alpha + gamma``), :attr:`b_vector`.
    """

    name: str
    alpha: tuple[tuple[sympy.Expr, ...], ...]
    gamma: tuple[tuple[sympy.Expr, ...], ...]
    b: tuple[sympy.Expr, ...]
    order: int
    b_error: tuple[sympy.Expr, ...] | None = None
    embedded_order: int | None = None
    reference: str = ""
    tolerance: sympy.Rational | None = None
    stages: int = field(init=False, repr=False, compare=False)
    family: str = field(init=False, repr=False, compare=False)
    gamma_diagonal: sympy.Expr = field(init=False, repr=False, compare=False)
    alpha_sum: tuple[sympy.Expr, ...] = field(init=False, repr=False, compare=False)
    gamma_sum: tuple[sympy.Expr, ...] = field(init=False, repr=False, compare=False)
    is_stiffly_accurate: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = self.name
        _check_name(name)
        set_ = object.__setattr__
        alpha = _matrix(self.alpha, name, "alpha")
        gamma = _matrix(self.gamma, name, "gamma")
        s = _check_square(alpha, name, "alpha")
        if _check_square(gamma, name, "gamma") != s:
            raise _fail(name, "shape of `gamma`", f"{len(gamma)} stages but `alpha` has {s}")
        b = _vector(self.b, name, "b")
        b_error = _vector(self.b_error, name, "b_error")
        _check_length(b, s, name, "b")
        _check_length(b_error, s, name, "b_error")
        _check_orders(name, self.order, b_error, self.embedded_order)
        tolerance = _check_tolerance(self.tolerance, name)
        if not isinstance(self.reference, str):
            raise SchemeError(f"scheme {name!r}: `reference` must be a string")
        normalised = (("alpha", alpha), ("gamma", gamma), ("b", b), ("b_error", b_error), ("tolerance", tolerance))
        for field_name, value in normalised:
            set_(self, field_name, value)

        for i in range(s):
            for j in range(i, s):
                if not is_exact_zero(alpha[i][j]):
                    raise _fail(name, "alpha strictly lower triangular", f"alpha[{i}][{j}] = {_show(alpha[i][j])}")
            for j in range(i + 1, s):
                if not is_exact_zero(gamma[i][j]):
                    raise _fail(name, "gamma lower triangular", f"gamma[{i}][{j}] = {_show(gamma[i][j])}")
        g = gamma[0][0]
        if is_exact_zero(g):
            raise _fail(name, "gamma_ii != 0", "the diagonal of gamma is zero (that is an explicit method)")
        for i in range(1, s):
            if not is_exact_zero(gamma[i][i] - g):
                detail = f"gamma[{i}][{i}] = {_show(gamma[i][i])} != gamma[0][0] = {_show(g)}"
                raise _fail(name, "gamma_ii == gamma for all i", detail)
        _sum_is_one(b, name, "b", tolerance)
        if b_error is not None:
            _sum_is_one(b_error, name, "b_error", tolerance)
            if all(is_exact_zero(u - v) for u, v in zip(b, b_error)):
                raise _fail(name, "b_error != b", "the embedded weights equal b, so the error estimate vanishes")

        set_(self, "stages", s)
        set_(self, "family", "rosenbrock")
        set_(self, "gamma_diagonal", g)
        set_(self, "alpha_sum", tuple(sympy.Add(*row) for row in alpha))
        set_(self, "gamma_sum", tuple(sympy.Add(*row) for row in gamma))
        stiffly = all(is_exact_zero(alpha[s - 1][j] + gamma[s - 1][j] - b[j]) for j in range(s))
        set_(self, "is_stiffly_accurate", stiffly)

    @property
    def c(self) -> tuple[sympy.Expr, ...]:
        """Stage times ``alpha_i = sum_j alpha_ij`` (alias of :attr:`alpha_sum`)."""
        return self.alpha_sum

    @property
    def alpha_matrix(self) -> sympy.ImmutableMatrix:
        return sympy.ImmutableMatrix(self.alpha)

    @property
    def gamma_matrix(self) -> sympy.ImmutableMatrix:
        return sympy.ImmutableMatrix(self.gamma)

    @property
    def beta_matrix(self) -> sympy.ImmutableMatrix:
        """``beta = alpha + gamma`` (HW II, IV.7), the matrix of the linear test problem."""
        return sympy.ImmutableMatrix(self.alpha) + sympy.ImmutableMatrix(self.gamma)

    @property
    def b_vector(self) -> sympy.ImmutableMatrix:
        return sympy.ImmutableMatrix(self.b)

    @property
    def b_error_vector(self) -> sympy.ImmutableMatrix | None:
        return None if self.b_error is None else sympy.ImmutableMatrix(self.b_error)

    @property
    def is_exact(self) -> bool:
        """True unless the coefficients are rounded published decimals (``tolerance`` set)."""
        return self.tolerance is None

    def as_float(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(alpha, gamma, b, b_error)`` as float64 arrays, each entry rounded once from its exact value."""
        return (
            _float_array(self.alpha),
            _float_array(self.gamma),
            _float_array(self.b),
            None if self.b_error is None else _float_array(self.b_error),
        )
