"""Gauss, Radau IIA and Lobatto IIIC Runge–Kutta methods for any number of stages, exactly.

Nodes (Hairer & Wanner II, Sect. IV.5; ``P_k`` the Legendre polynomial, shifted to [0, 1] by ``2c - 1``):

===============  ==================================================  =======  ==========================
family           nodes ``c_1 < ... < c_s`` are the zeros of            order    ``A``
===============  ==================================================  =======  ==========================
Gauss            ``P_s(2c-1)``                                          2s       collocation, ``C(s)``
Radau IIA        ``P_s(2c-1) - P_{s-1}(2c-1)`` (``c_s = 1``)              2s-1     collocation, ``C(s)``
Lobatto IIIC     ``P_s(2c-1) - P_{s-2}(2c-1)`` (``c_1 = 0, c_s = 1``)     2s-2     ``a_i1 = b_1`` and ``C(s-1)``
===============  ==================================================  =======  ==========================

with ``b_j = int_0^1 l_j`` (the interpolatory quadrature on the nodes) and, for the collocation methods,
``a_ij = int_0^{c_i} l_j(t) dt`` where ``l_j`` is the Lagrange polynomial of node ``j``.  Lobatto IIIC
(Chipman 1971; HW II, IV.5) fixes the first column to ``b_1`` and the rest by the simplifying
assumption ``C(s-1)``: ``sum_j a_ij c_j^(k-1) = c_i^k / k`` for ``k < s``, i.e. with ``m_j`` the Lagrange
polynomials of the nodes ``c_2, ..., c_s``::

    a_i1 = b_1,    a_ij = int_0^{c_i} m_j(t) dt - b_1 m_j(0)    (j >= 2).

Exact arithmetic
----------------
The node polynomial ``p`` is factored over QQ.  Nodes of factors of degree <= 2 are rationals or square
roots (``gauss(2)``: ``1/2 -+ sqrt(3)/6``; ``radau_iia(3)``: ``(4 -+ sqrt(6))/10, 1``); those of higher-degree
factors are ``CRootOf(q, k)``.  Every coefficient is computed as a polynomial in the nodes with rational
coefficients, never by symbolic integration of radicals:

    l_j(t) = D(t, c_j) / p'(c_j),   D(t, y) = (p(t) - p(y)) / (t - y)  (a polynomial in t and y),

so ``a_ij = E(c_i, c_j) / p'(c_j)`` with ``E(x, y) = int_0^x D(t, y) dt``.  ``1/p'(y)`` is replaced by its
inverse modulo the minimal polynomial of ``c_j`` and each entry is reduced modulo the minimal polynomials
of its nodes, so an entry is a polynomial of degree < deg in each ``CRootOf``.  ``s <= 5`` builds in about
a second.

References
----------
J. C. Butcher, "Implicit Runge-Kutta processes", Math. Comp. 18 (1964) 50-64 (Gauss).
B. L. Ehle, "On Padé approximations to the exponential function and A-stable methods for the numerical
solution of initial value problems", Research Rep. CSRR 2010, Univ. Waterloo, 1969 (Radau IIA).
F. H. Chipman, "A-stable Runge-Kutta processes", BIT 11 (1971) 384-388 (Lobatto IIIC).
E. Hairer, G. Wanner, Solving Ordinary Differential Equations II, 2nd ed., Springer 1996, Sect. IV.5.
"""

from __future__ import annotations

import functools
import numbers

import sympy

from .._errors import SchemeError
from ._tableau import ButcherTableau

__all__ = ["gauss", "radau_iia", "lobatto_iiic", "node_polynomial"]

_x, _y, _t = sympy.symbols("x y t")


def _shifted_legendre(k: int) -> sympy.Poly:
    """``P_k(2x - 1)`` as a polynomial over QQ (``P_0 = 1``)."""
    return sympy.Poly(sympy.legendre(k, 2 * _x - 1), _x, domain="QQ")


def node_polynomial(family: str, s: int) -> sympy.Poly:
    """The polynomial in ``x`` whose zeros are the ``s`` nodes of ``family`` (``"gauss"``, ``"radau-iia"``,
    ``"lobatto-iiic"``), over QQ."""
    if family == "gauss":
        return _shifted_legendre(s)
    if family == "radau-iia":
        return _shifted_legendre(s) - _shifted_legendre(s - 1)
    if family == "lobatto-iiic":
        return _shifted_legendre(s) - _shifted_legendre(s - 2)
    raise SchemeError(f"unknown collocation family {family!r}")


def _nodes(p: sympy.Poly) -> list[tuple[sympy.Expr, sympy.Poly]]:
    """Zeros of ``p`` in increasing order, each with its minimal polynomial (monic, over QQ, in ``x``)."""
    nodes: list[tuple[sympy.Expr, sympy.Poly]] = []
    for factor, multiplicity in p.factor_list()[1]:
        if multiplicity != 1:  # pragma: no cover - Legendre combinations have simple zeros
            raise SchemeError(f"node polynomial {p.as_expr()} has a repeated factor")
        monic = factor.to_field().monic()
        if factor.degree() <= 2:
            # Rational or quadratic: sympy.roots gives canonical a + b*sqrt(d).
            zeros = [sympy.radsimp(r) for r in sympy.roots(factor, multiple=True)]
        else:
            zeros = [sympy.CRootOf(factor.as_expr(), k) for k in range(factor.degree())]
        nodes += [(zero, monic) for zero in zeros]
    nodes.sort(key=lambda pair: sympy.N(pair[0], 30))
    return nodes


def _reduce(expr: sympy.Expr, modulus: sympy.Poly, var: sympy.Symbol) -> sympy.Expr:
    """``expr`` modulo the minimal polynomial ``modulus`` (written in ``x``) of the value of ``var``."""
    if modulus.degree() == 1:
        return sympy.expand(expr.subs(var, -modulus.TC() / modulus.LC()))
    return sympy.rem(sympy.expand(expr), modulus.as_expr().subs(_x, var), var)


class _LagrangeIntegrals:
    """Exact ``int_0^x l_j(t) dt`` and ``l_j(0)`` for the Lagrange basis on the zeros of ``p``."""

    def __init__(self, p: sympy.Poly) -> None:
        self.nodes = _nodes(p)
        p_x = p.as_expr()
        difference = sympy.expand(p_x - p_x.subs(_x, _y))
        quotient, remainder = sympy.div(difference, _x - _y, _x, _y)
        if remainder != 0:  # pragma: no cover - p(x) - p(y) is divisible by x - y
            raise ArithmeticError("divided difference left a remainder")
        self._D = sympy.expand(quotient)  # D(x, y) = (p(x) - p(y)) / (x - y)
        self._E = sympy.expand(sympy.integrate(self._D.subs(_x, _t), (_t, 0, _x)))  # int_0^x D(t, y) dt
        self._dp = sympy.expand(sympy.diff(p_x, _x).subs(_x, _y))

    @functools.cached_property
    def _inverse_derivative(self) -> list[sympy.Expr]:
        """``1/p'(c_j)`` as a polynomial in ``y`` modulo the minimal polynomial of ``c_j``."""
        out = []
        for _, minimal in self.nodes:
            if minimal.degree() == 1:
                out.append(1 / self._dp.subs(_y, -minimal.TC() / minimal.LC()))
            else:
                out.append(sympy.invert(self._dp, minimal.as_expr().subs(_x, _y), _y))
        return out

    def _column(self, kernel: sympy.Expr, j: int) -> sympy.Expr:
        """``kernel(x, c_j) / p'(c_j)`` reduced in ``y``; still a polynomial in ``x``."""
        _, minimal = self.nodes[j]
        return _reduce(sympy.expand(kernel * self._inverse_derivative[j]), minimal, _y)

    def _evaluate(self, column: sympy.Expr, point: tuple[sympy.Expr, sympy.Poly], j: int) -> sympy.Expr:
        """Substitute ``x = point`` and ``y = c_j`` into a reduced column, reducing modulo both."""
        (ci, min_i), (cj, _) = point, self.nodes[j]
        if ci == cj:  # the same algebraic number: one variable, one modulus
            value = _reduce(column.subs(_y, _x), min_i, _x)
            return sympy.expand(value.subs(_x, ci))
        value = _reduce(column, min_i, _x)
        return sympy.expand(value.subs({_x: ci, _y: cj}))

    def integrals(self, points: list[tuple[sympy.Expr, sympy.Poly]] | None = None) -> list[list[sympy.Expr]]:
        """``[[int_0^{x_i} l_j]]`` for the points ``x_i`` (default: the nodes), shape (len(points), s)."""
        points = self.nodes if points is None else points
        columns = [self._column(self._E, j) for j in range(len(self.nodes))]
        return [[self._evaluate(columns[j], point, j) for j in range(len(self.nodes))] for point in points]

    def weights(self) -> list[sympy.Expr]:
        """``[int_0^1 l_j]``: the interpolatory quadrature weights."""
        out = []
        for j, (cj, minimal) in enumerate(self.nodes):
            column = _reduce(self._column(self._E, j).subs(_x, 1), minimal, _y)
            out.append(sympy.expand(column.subs(_y, cj)))
        return out

    def at_zero(self) -> list[sympy.Expr]:
        """``[l_j(0)]``."""
        out = []
        for j, (cj, minimal) in enumerate(self.nodes):
            column = _reduce(self._column(self._D, j).subs(_x, 0), minimal, _y)
            out.append(sympy.expand(column.subs(_y, cj)))
        return out


def _check_stages(s: object, minimum: int, family: str) -> int:
    if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < minimum:
        raise SchemeError(f"{family} needs an integer number of stages s >= {minimum}, got {s!r}")
    return int(s)


def _collocation(family: str, s: int, order: int, reference: str) -> ButcherTableau:
    basis = _LagrangeIntegrals(node_polynomial(family, s))
    c = [node for node, _ in basis.nodes]
    return ButcherTableau(
        name=f"{family}-{s}",
        A=basis.integrals(),
        b=basis.weights(),
        c=c,
        order=order,
        reference=reference,
    )


@functools.lru_cache(maxsize=None)
def gauss(s: int) -> ButcherTableau:
    """Gauss–Legendre collocation method with ``s`` stages, order ``2s``, A-stable, ``R = (s,s)``-Padé.

    Nodes: the zeros of ``P_s(2c - 1)``; ``A`` by collocation (``C(s)``), ``b`` the Gauss quadrature.
    ``gauss(1)`` is the implicit midpoint rule.

    Reference: Butcher, Math. Comp. 18 (1964) 50-64; Hairer & Wanner II, Sect. IV.5.
    """
    s = _check_stages(s, 1, "gauss")
    return _collocation(
        "gauss",
        s,
        2 * s,
        "J. C. Butcher, Implicit Runge-Kutta processes, Math. Comp. 18 (1964) 50-64; "
        "E. Hairer, G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.5",
    )


@functools.lru_cache(maxsize=None)
def radau_iia(s: int) -> ButcherTableau:
    """Radau IIA collocation method with ``s`` stages, order ``2s - 1``, L-stable, stiffly accurate.

    Nodes: the zeros of ``P_s(2c-1) - P_{s-1}(2c-1)`` (Radau right points, ``c_s = 1``); ``A`` by collocation.
    ``radau_iia(1)`` is backward Euler; ``radau_iia(3)`` is the method of RADAU5.

    Reference: Ehle (1969); Hairer & Wanner II, Sect. IV.5.
    """
    s = _check_stages(s, 1, "radau-iia")
    return _collocation(
        "radau-iia",
        s,
        2 * s - 1,
        "B. L. Ehle, On Pade approximations to the exponential function and A-stable methods, "
        "Res. Rep. CSRR 2010, Univ. Waterloo 1969; E. Hairer, G. Wanner, Solving ODEs II, 2nd ed., "
        "Springer 1996, Sect. IV.5",
    )


@functools.lru_cache(maxsize=None)
def lobatto_iiic(s: int) -> ButcherTableau:
    """Lobatto IIIC method with ``s >= 2`` stages, order ``2s - 2``, L-stable, stiffly accurate.

    Nodes: the zeros of ``P_s(2c-1) - P_{s-2}(2c-1)`` (Lobatto points, ``c_1 = 0``, ``c_s = 1``), ``b`` the
    Lobatto quadrature, ``a_i1 = b_1`` and ``C(s-1)`` (see the module docstring).

    Reference: Chipman, BIT 11 (1971) 384-388; Hairer & Wanner II, Sect. IV.5.
    """
    s = _check_stages(s, 2, "lobatto-iiic")
    p = node_polynomial("lobatto-iiic", s)
    full = _LagrangeIntegrals(p)
    b = full.weights()
    # Lagrange basis of the nodes without c_1 = 0: p(x) / x.
    inner_poly, remainder = sympy.div(p, sympy.Poly(_x, _x, domain="QQ"))
    if not remainder.is_zero:  # pragma: no cover - c = 0 is a Lobatto node
        raise ArithmeticError("0 is not a zero of the Lobatto node polynomial")
    inner = _LagrangeIntegrals(inner_poly)
    integrals = inner.integrals(full.nodes)  # int_0^{c_i} m_j, shape (s, s-1)
    at_zero = inner.at_zero()  # m_j(0)
    A = [[b[0]] + [sympy.expand(row[j] - b[0] * at_zero[j]) for j in range(s - 1)] for row in integrals]
    return ButcherTableau(
        name=f"lobatto-iiic-{s}",
        A=A,
        b=b,
        c=[node for node, _ in full.nodes],
        order=2 * s - 2,
        reference=(
            "F. H. Chipman, A-stable Runge-Kutta processes, BIT 11 (1971) 384-388; E. Hairer, G. Wanner, "
            "Solving ODEs II, 2nd ed., Springer 1996, Sect. IV.5"
        ),
    )
