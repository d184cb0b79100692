"""Collocation tableaux (Gauss, Radau IIA) for any stage count, to any precision, in mpmath.

The exact SymPy tableaux of :mod:`symsens.schemes` (``get_scheme("radau-iia-7")``) are the single source of
truth for the analysis, but building them with algebraic numbers takes seconds per scheme beyond five stages.
A reference run only needs the coefficients *numerically*, to a few digits beyond its working precision, so
they are computed here from the same definition (Hairer & Wanner II, Sect. IV.5):

* nodes ``c_1 < ... < c_s``: the zeros of ``P_s(2x - 1)`` (Gauss, order 2s) or of
  ``P_s(2x - 1) - P_{s-1}(2x - 1)`` (Radau IIA, order 2s - 1, ``c_s = 1``), ``P_k`` the Legendre polynomial
  (the node polynomial of :func:`symsens.schemes._collocation.node_polynomial`, exact over QQ);
* ``a_ij = int_0^{c_i} l_j``, ``b_j = int_0^1 l_j`` with ``l_j`` the Lagrange polynomial of node ``j``;
* ``d^T = b^T A^-1``, the weights that give ``y1 = y0 + sum_i d_i Z_i`` from the stage increments
  ``Z_i = Y_i - y0`` (``d = e_s`` for the stiffly accurate Radau IIA).

``tests/test_reference_tableau.py`` checks them against the exact catalogue tableaux for small ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy as sp

from .._errors import SchemeError
from .._once import cached_once
from .._precision import mpmath_precision

__all__ = ["CollocationTableau", "collocation_tableau", "FAMILIES"]

#: Families a reference run can use: name -> (order as a function of s).
FAMILIES: dict[str, str] = {"gauss": "2s", "radau-iia": "2s-1"}


@dataclass(frozen=True)
class CollocationTableau:
    """A collocation method's coefficients as mpmath numbers at ``dps`` decimal digits.

    Attributes
    ----------
    family : "gauss" or "radau-iia"
    stages : int
    order : int
        ``2s`` (Gauss) or ``2s - 1`` (Radau IIA).
    A : tuple of tuples of mpf (s x s); b, c, d : tuple of mpf (s)
    """

    family: str
    stages: int
    order: int
    A: tuple[tuple[mpmath.mpf, ...], ...]
    b: tuple[mpmath.mpf, ...]
    c: tuple[mpmath.mpf, ...]
    d: tuple[mpmath.mpf, ...]
    dps: int

    @property
    def name(self) -> str:
        return f"{self.family}-{self.stages}"


def _poly_integral(coefficients: list[mpmath.mpf], x: mpmath.mpf) -> mpmath.mpf:
    """int_0^x of sum_k coefficients[k] t^k."""
    total = mpmath.mpf(0)
    power = x
    for k, a in enumerate(coefficients):
        total += a * power / (k + 1)
        power *= x
    return total


@cached_once(maxsize=64)
def collocation_tableau(family: str, stages: int, dps: int = 60) -> CollocationTableau:
    """The ``stages``-stage Gauss or Radau IIA tableau to ``dps`` digits (cached).

    Raises
    ------
    ValueError
        Unknown family or a stage count outside 1..20.
    """
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {', '.join(FAMILIES)}, got {family!r}")
    if not isinstance(stages, int) or not 1 <= stages <= 20:
        raise ValueError(f"`stages` must be an integer in 1..20, got {stages!r}")
    from ..schemes._collocation import node_polynomial

    poly = node_polynomial(family, stages)
    coefficients = [sp.Rational(a) for a in poly.all_coeffs()]
    with mpmath_precision(dps=2 * dps + 20):
        mp_coefficients = [mpmath.mpf(a.p) / a.q for a in coefficients]
        roots = mpmath.polyroots(mp_coefficients, maxsteps=500, extraprec=4 * dps + 100)
        nodes = sorted(mpmath.re(r) for r in roots)
        if family == "radau-iia":
            nodes[-1] = mpmath.mpf(1)  # exactly (the root is 1 to working precision)
        if len(nodes) != stages or any(abs(mpmath.im(r)) > mpmath.mpf(10) ** (-dps) for r in roots):
            raise SchemeError(f"{family}-{stages}: the node polynomial did not yield {stages} real nodes")
        # Lagrange basis polynomials in the monomial basis.
        basis: list[list[mpmath.mpf]] = []
        for j in range(stages):
            poly_j = [mpmath.mpf(1)]
            denominator = mpmath.mpf(1)
            for m in range(stages):
                if m == j:
                    continue
                shifted = [mpmath.mpf(0)] * (len(poly_j) + 1)
                for k, a in enumerate(poly_j):
                    shifted[k + 1] += a
                    shifted[k] -= a * nodes[m]
                poly_j = shifted
                denominator *= nodes[j] - nodes[m]
            basis.append([a / denominator for a in poly_j])
        A = [[_poly_integral(basis[j], nodes[i]) for j in range(stages)] for i in range(stages)]
        b = [_poly_integral(basis[j], mpmath.mpf(1)) for j in range(stages)]
        d = mpmath.lu_solve(mpmath.matrix(A).T, mpmath.matrix(b))
        d_list = [d[i] for i in range(stages)]
        if family == "radau-iia":
            d_list = [mpmath.mpf(0)] * (stages - 1) + [mpmath.mpf(1)]
    with mpmath_precision(dps=dps):
        order = 2 * stages if family == "gauss" else 2 * stages - 1
        return CollocationTableau(
            family=family,
            stages=stages,
            order=order,
            A=tuple(tuple(+a for a in row) for row in A),
            b=tuple(+x for x in b),
            c=tuple(+x for x in nodes),
            d=tuple(+x for x in d_list),
            dps=dps,
        )
