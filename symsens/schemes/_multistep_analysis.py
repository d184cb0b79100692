"""Exact stability analysis of linear multistep methods, and the stiff asymptotics of their dominant root.

Applied to ``y' = lambda y`` with ``z = h lambda``, a linear multistep method becomes the linear recurrence
``sum_j (alpha_j - z beta_j) y_{n+j} = 0`` whose solutions are combinations of ``zeta_i(z)**n``, the roots of the
*stability polynomial*

.. math:: \\pi(\\zeta; z) = \\rho(\\zeta) - z\\,\\sigma(\\zeta)

(HW II, V.1).  Everything here is a statement about these roots:

* **zero-stability** (Dahlquist 1956; HNW I, III.3): the roots of ``rho`` (``z = 0``) lie in the closed unit disk
  and those on the unit circle are simple;
* the **stability domain** ``S = {z : pi(.; z) satisfies the root condition}``; its boundary lies on the
  **boundary locus** ``z(theta) = rho(e^{i theta}) / sigma(e^{i theta})``;
* **A-stability** ``S ⊃ C^-`` and the **A(alpha) angle** ``sup{alpha : S ⊃ {|arg(-z)| < alpha}}`` (Widlund 1967;
  HW II, V.2);
* the **dominant root** ``zeta(z)`` (largest modulus) and its law as ``z -> -infinity``, which for BDF``k`` is
  ``|zeta(z)| ~ |alpha_0/beta_k|^(1/k) |z|^(-1/k)``, and the derivative ``dzeta/dz``, the multistep counterpart of
  ``R'(z)`` in the gradient question of symsens.

All decisions (zero-stability, A-stability, which candidate minimises the A(alpha) angle) are made in exact rational
arithmetic: factorisation over QQ, self-reciprocal factors reduced to Sturm counts on ``[-2, 2]``, the Routh–Hurwitz
criterion (Cauchy indices by Sturm sequences) after a Cayley map for the other factors, and real root isolation with
rational intervals (SymPy's ``count_roots``/``intervals``/``refine_root``).  Floating point (mpmath) is used only to
give the value of an exactly identified algebraic number to the requested number of digits, and to compute roots at a
given numerical ``z``.

References
----------
.. [HNW1] E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., Springer 1993,
   III.3 (zero-stability, the first Dahlquist barrier).
.. [HW2] E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, V.1 (stability
   domain, boundary locus, Dahlquist's second barrier), V.2 (A(alpha)-stability, the BDF angles).
.. [D63] G. Dahlquist, "A special stability problem for linear multistep methods", BIT 3 (1963) 27-43.
.. [W67] O. B. Widlund, "A note on unconditionally stable linear multistep methods", BIT 7 (1967) 65-70.
.. [G59] F. R. Gantmacher, *The Theory of Matrices*, Vol. II, Chelsea 1959, Ch. XV (Cauchy index, Routh–Hurwitz).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import NamedTuple

import mpmath
import sympy
from sympy import QQ, Poly, Rational, Symbol

from .._precision import mpmath_precision
from .._errors import SchemeError
from ._multistep import ZETA, LinearMultistepMethod, rho, sigma

__all__ = [
    "THETA",
    "lmm_characteristic_polynomial",
    "lmm_is_zero_stable",
    "lmm_root_census",
    "RootCensus",
    "lmm_boundary_locus",
    "lmm_boundary_locus_parts",
    "lmm_is_A_stable",
    "lmm_has_stiff_decay",
    "lmm_is_L_stable",
    "AAlpha",
    "lmm_a_alpha",
    "lmm_a_alpha_angle",
    "lmm_dominant_root",
    "lmm_dominant_root_derivative",
    "RootAsymptotics",
    "lmm_root_asymptotics",
    "lmm_root_decay",
    "lmm_root_sensitivity_decay",
]

#: The angle variable of the boundary locus (a real symbol).
THETA = Symbol("theta", real=True)
_X = Symbol("x")  # x = cos(theta): trigonometric polynomials in theta become polynomials in x
_Z = Symbol("z")


# ---------------------------------------------------------------------------------------------------------------
# Where are the roots of a rational polynomial relative to the unit circle?  (exact)
# ---------------------------------------------------------------------------------------------------------------


class RootCensus(NamedTuple):
    """Roots of a polynomial (with multiplicity) strictly inside, on, and strictly outside the unit circle.

    ``on_multiple`` counts the roots on the circle that are multiple (each counted with its multiplicity).
    """

    inside: int
    on: int
    outside: int
    on_multiple: int


def _reversed(f: Poly) -> Poly:
    """``f*(zeta) = zeta**deg f(1/zeta)``: its roots are the reciprocals of those of ``f``."""
    return Poly(list(reversed(f.all_coeffs())), f.gen, domain=QQ)


def _trace_polynomial(f: Poly) -> Poly:
    """For palindromic ``f`` of degree ``2m``, the ``h`` of degree ``m`` with ``f(zeta) = zeta**m h(zeta + 1/zeta)``.

    ``zeta**(-m) f(zeta) = a_m + sum_{j>=1} a_{m+j} (zeta**j + zeta**-j)`` and ``zeta**j + zeta**-j = 2 T_j(x/2)``
    with ``x = zeta + 1/zeta``.  A root ``zeta`` lies on the unit circle iff ``x = 2 cos(phi)`` is real in
    ``[-2, 2]``.
    """
    coeffs = list(reversed(f.all_coeffs()))  # a_0 ... a_{2m}
    m = len(coeffs) // 2
    h = Poly(coeffs[m], _X, domain=QQ)
    for j in range(1, m + 1):
        chebyshev = Poly(sympy.chebyshevt_poly(j, _X / 2), _X, domain=QQ)
        h += Poly(2 * coeffs[m + j], _X, domain=QQ) * chebyshev
    return h


def _cauchy_index(num: Poly, den: Poly) -> int:
    """Cauchy index ``Ind_{-oo}^{+oo} num/den`` by the Sturm–Cauchy theorem (exact, rational remainders).

    With the sequence ``f_0 = den``, ``f_1 = num mod den``, ``f_{i+1} = -rem(f_{i-1}, f_i)``, the index (number of
    jumps of ``num/den`` from ``-oo`` to ``+oo`` minus those from ``+oo`` to ``-oo``) is ``V(-oo) - V(+oo)``, ``V``
    the number of sign changes (Gantmacher, *The Theory of Matrices* II, Ch. XV).
    """
    if num.is_zero:
        return 0
    num = num.rem(den)
    sequence = [den, num]
    while not sequence[-1].is_zero:
        sequence.append(-sequence[-2].rem(sequence[-1]))
    sequence.pop()

    def variations(at_plus_infinity: bool) -> int:
        signs = []
        for f in sequence:
            sign = 1 if f.LC() > 0 else -1
            if not at_plus_infinity and f.degree() % 2 == 1:
                sign = -sign
            signs.append(sign)
        return sum(1 for a, b in zip(signs, signs[1:]) if a != b)

    return variations(False) - variations(True)


def _count_off_circle(f: Poly) -> tuple[int, int]:
    """(inside, outside) the unit circle for a real ``f`` known to have no root on it (exact Routh–Hurwitz).

    The Cayley map ``zeta = (1 + w)/(1 - w)`` sends the open unit disk to ``Re w < 0``:
    ``q(w) = (1 - w)**n f((1 + w)/(1 - w))`` has degree ``n`` (``f(-1) != 0``) and no root on the imaginary axis.
    With ``q(i y) = R(y) + i I(y)`` the argument principle gives ``n_left - n_right = Delta arg q(iy) / pi``, which is
    ``-Ind(I/R)`` for even ``n`` and ``Ind(R/I)`` for odd ``n`` (the ratio that tends to 0 at both ends).
    """
    n = f.degree()
    w, y = Symbol("w"), Symbol("y")
    coeffs = list(reversed(f.all_coeffs()))  # a_0 ... a_n
    q = Poly(sum((a * (1 + w) ** j * (1 - w) ** (n - j) for j, a in enumerate(coeffs)), sympy.Integer(0)), w, domain=QQ)
    if q.degree() != n:  # pragma: no cover - f(-1) = 0 would be a root on the circle
        raise SchemeError(f"internal: {f.as_expr()} has the root -1 on the unit circle")
    real = Poly(0, y, domain=QQ)
    imag = Poly(0, y, domain=QQ)
    for (m,), c in q.terms():
        term = Poly(c * (-1) ** (m // 2) * y**m, y, domain=QQ)  # i**m = (-1)**(m//2) * (1 or i)
        if m % 2 == 0:
            real += term
        else:
            imag += term
    winding = -_cauchy_index(imag, real) if n % 2 == 0 else _cauchy_index(real, imag)
    outside = (n - winding) // 2
    return n - outside, outside


def _census(p: Poly) -> RootCensus:
    """Exact census of the roots of the rational polynomial ``p`` with respect to the unit circle.

    ``p`` is factored over QQ.  A root on the circle is a common root of ``f`` and its reversal ``f*`` (real
    coefficients: ``conj(zeta) = 1/zeta`` is a root too), so an irreducible factor not associated with its reversal
    has no root on the circle; its roots are counted by the Routh–Hurwitz criterion after a Cayley map
    (``_count_off_circle``).  An irreducible self-reciprocal factor of degree ``2m`` is written as
    ``zeta**m h(zeta + 1/zeta)``: its roots on the circle correspond to the real roots of ``h`` in ``(-2, 2)``
    (counted by Sturm), the others come in pairs ``(r, 1/r)``, one inside and one outside.
    """
    inside = on = outside = on_multiple = 0
    _, factors = p.factor_list()
    for f, mult in factors:
        f = Poly(f, p.gen, domain=QQ)
        n = f.degree()
        if n == 1:
            root = -f.nth(0) / f.nth(1)
            size = abs(root)
            if size < 1:
                inside += mult
            elif size > 1:
                outside += mult
            else:
                on += mult
                on_multiple += mult if mult > 1 else 0
            continue
        if _reversed(f).monic() == f.monic():  # irreducible and self-reciprocal: palindromic, even degree
            n_on = 2 * _trace_polynomial(f).count_roots(-2, 2)
            n_in = (n - n_on) // 2
            inside += mult * n_in
            outside += mult * n_in
            on += mult * n_on
            on_multiple += mult * n_on if mult > 1 else 0
            continue
        n_in, n_out = _count_off_circle(f)
        inside += mult * n_in
        outside += mult * n_out
    return RootCensus(inside, on, outside, on_multiple)


# ---------------------------------------------------------------------------------------------------------------
# Zero-stability and the stability polynomial
# ---------------------------------------------------------------------------------------------------------------


def lmm_characteristic_polynomial(method: LinearMultistepMethod, z: sympy.Expr = _Z) -> Poly:
    """The stability polynomial ``rho(zeta) - z sigma(zeta)`` as a ``Poly`` in ``zeta`` (coefficients in ``z``)."""
    r, s = rho(method).as_expr(), sigma(method).as_expr()
    return Poly(r - z * s, ZETA)


def lmm_root_census(method: LinearMultistepMethod, z: object = 0) -> RootCensus:
    """Exact census of the roots of ``rho(zeta) - z sigma(zeta)`` for a *rational* ``z`` (default 0: ``rho``)."""
    if isinstance(z, bool) or not isinstance(z, (numbers.Rational, sympy.Rational)):
        raise SchemeError(f"`z` must be an exact rational number for an exact root census, got {z!r}")
    zq = sympy.Rational(z)
    p = Poly(list(reversed([a - zq * b for a, b in zip(method.alpha, method.beta)])), ZETA, domain=QQ)
    if p.is_zero:
        raise SchemeError(f"{method.name}: rho - z sigma vanishes identically at z = {zq}")
    return _census(p)


def lmm_is_zero_stable(method: LinearMultistepMethod) -> bool:
    """Root condition for ``rho`` (Dahlquist 1956; HNW I, III.3), decided exactly.

    True iff every root of ``rho`` satisfies ``|zeta| <= 1`` and the roots with ``|zeta| = 1`` are simple.
    """
    census = lmm_root_census(method, 0)
    return census.outside == 0 and census.on_multiple == 0


# ---------------------------------------------------------------------------------------------------------------
# Boundary locus
# ---------------------------------------------------------------------------------------------------------------


def _correlations(u: tuple[Rational, ...], v: tuple[Rational, ...]) -> dict[int, Rational]:
    """``c_d = sum_j u_j v_{j-d}``: the coefficient of ``e^{i d theta}`` in ``u(e^{i theta}) conj(v(e^{i theta}))``."""
    out: dict[int, Rational] = {}
    for j, a in enumerate(u):
        for m, b in enumerate(v):
            out[j - m] = out.get(j - m, sympy.Integer(0)) + a * b
    return out


def _locus_trig(method: LinearMultistepMethod) -> tuple[dict[int, Rational], dict[int, Rational], dict[int, Rational]]:
    """Cosine/sine coefficients of ``Re N``, ``Im N`` and ``D`` where ``z(theta) = N / D``.

    ``N = rho(e^{i theta}) conj(sigma(e^{i theta})) = sum_d c_d e^{i d theta}`` and ``D = |sigma(e^{i theta})|**2``,
    so ``Re N = c_0 + sum_{d>0} (c_d + c_{-d}) cos(d theta)``, ``Im N = sum_{d>0} (c_d - c_{-d}) sin(d theta)``.
    """
    c = _correlations(method.alpha, method.beta)
    e = _correlations(method.beta, method.beta)
    k = method.steps
    re_n = {d: c.get(d, 0) + (c.get(-d, 0) if d else 0) for d in range(k + 1)}
    im_n = {d: c.get(d, 0) - c.get(-d, 0) for d in range(1, k + 1)}
    den = {d: e.get(d, 0) * (2 if d else 1) for d in range(k + 1)}
    return re_n, im_n, den


def lmm_boundary_locus_parts(method: LinearMultistepMethod, theta: Symbol = THETA) -> tuple[sympy.Expr, sympy.Expr]:
    """``(Re z(theta), Im z(theta))`` of the boundary locus as ratios of trigonometric polynomials.

    ``Re z = (sum_d a_d cos(d theta)) / D(theta)``, ``Im z = (sum_d b_d sin(d theta)) / D(theta)`` with
    ``D = |sigma(e^{i theta})|**2 = sum_d e_d cos(d theta)``; see ``lmm_boundary_locus``.
    """
    re_n, im_n, den = _locus_trig(method)
    num_re = sum((a * sympy.cos(d * theta) for d, a in re_n.items() if a != 0), sympy.Integer(0))
    num_im = sum((b * sympy.sin(d * theta) for d, b in im_n.items() if b != 0), sympy.Integer(0))
    denom = sum((e * sympy.cos(d * theta) for d, e in den.items() if e != 0), sympy.Integer(0))
    return num_re / denom, num_im / denom


def lmm_boundary_locus(method: LinearMultistepMethod, theta: Symbol = THETA) -> sympy.Expr:
    """The boundary locus ``z(theta) = rho(e^{i theta}) / sigma(e^{i theta})`` in closed form (HW II, V.1).

    Returned as ``(Re N(theta) + I Im N(theta)) / D(theta)``, all three real trigonometric polynomials with rational
    coefficients, obtained by multiplying numerator and denominator by ``conj(sigma(e^{i theta}))``.  The boundary of
    the stability domain is contained in the curve ``{z(theta) : 0 <= theta < 2 pi}``.
    """
    re_part, im_part = lmm_boundary_locus_parts(method, theta)
    return re_part + sympy.I * im_part


def _locus_polynomials(method: LinearMultistepMethod) -> tuple[Poly, Poly]:
    """``P, Q`` with ``Re N(theta) = P(cos theta)`` and ``Im N(theta) = sin(theta) Q(cos theta)``.

    ``cos(d theta) = T_d(x)`` and ``sin(d theta) = sin(theta) U_{d-1}(x)`` (Chebyshev polynomials), ``x = cos theta``.
    Since ``D > 0`` wherever ``sigma(e^{i theta}) != 0``, ``sign Re z(theta) = sign P(x)`` and
    ``arg z = arg(P + i sin(theta) Q)``.
    """
    re_n, im_n, _ = _locus_trig(method)
    p = Poly(0, _X, domain=QQ)
    for d, a in re_n.items():
        p += Poly(a, _X, domain=QQ) * Poly(sympy.chebyshevt_poly(d, _X), _X, domain=QQ)
    q = Poly(0, _X, domain=QQ)
    for d, b in im_n.items():
        q += Poly(b, _X, domain=QQ) * Poly(sympy.chebyshevu_poly(d - 1, _X), _X, domain=QQ)
    return p, q


# ---------------------------------------------------------------------------------------------------------------
# A-stability
# ---------------------------------------------------------------------------------------------------------------


def _nonnegative_on_unit_interval(p: Poly) -> bool:
    """Exactly decide ``p(x) >= 0`` for all ``x`` in ``[-1, 1]``.

    Write ``p = c * prod g_i**m_i`` (squarefree factorisation).  Factors of even multiplicity are ``>= 0``; the product
    ``q`` of the odd ones is squarefree, so ``p`` changes sign inside ``(-1, 1)`` iff ``q`` has a root there (Sturm
    count on the closed interval minus exact roots at the ends).  Without such a root the sign of ``p`` is that of
    ``c q(0)``.
    """
    if p.is_zero:
        return True
    c, factors = p.sqf_list()
    q = Poly(1, p.gen, domain=QQ)
    for g, m in factors:
        if m % 2 == 1:
            q *= Poly(g, p.gen, domain=QQ)
    interior_roots = q.count_roots(-1, 1) - (q.eval(-1) == 0) - (q.eval(1) == 0)
    if interior_roots > 0:
        return False
    return c * q.eval(0) > 0


def lmm_is_A_stable(method: LinearMultistepMethod) -> bool:
    """Decide exactly whether the stability domain contains the open left half-plane (Dahlquist 1963; HW II, V.1).

    The number of roots of ``rho - z sigma`` outside the unit disk can change only where a root crosses the circle,
    i.e. on the boundary locus, or where a root passes through infinity (``z = 1/beta_k``).  Hence the method is
    A-stable iff

    1. ``beta_k >= 0`` (otherwise ``z = 1/beta_k < 0`` has a root at infinity: unstable near it),
    2. the locus avoids ``C^-``: ``Re z(theta) >= 0``, i.e. ``P(x) >= 0`` on ``[-1, 1]`` (exact, see
       ``_nonnegative_on_unit_interval``), and
    3. one point of the then locus-free, connected ``C^-`` is stable: ``z = -1``, all roots strictly inside the unit
       disk (exact root census).
    """
    if method.beta[-1] < 0:
        return False
    p, _ = _locus_polynomials(method)
    if not _nonnegative_on_unit_interval(p):
        return False
    census = lmm_root_census(method, -1)
    return census.on == 0 and census.outside == 0


def lmm_has_stiff_decay(method: LinearMultistepMethod) -> bool:
    """Every root of ``rho - z sigma`` tends to 0 as ``|z| -> infinity``: ``sigma = beta_k zeta**k``, ``beta_k != 0``.

    The roots tend to the roots of ``sigma`` (and to infinity where ``deg sigma < k``), so they all vanish iff sigma is
    a non-zero multiple of ``zeta**k`` — the BDF family (Ascher & Petzold 1998, 5.2; HW II, V.1).
    """
    return method.beta[-1] != 0 and all(b == 0 for b in method.beta[:-1])


def lmm_is_L_stable(method: LinearMultistepMethod) -> bool:
    """A-stable with stiff decay (the multistep analogue of ``R(infinity) = 0``): BDF1 and BDF2 in the catalogue."""
    return lmm_has_stiff_decay(method) and lmm_is_A_stable(method)


# ---------------------------------------------------------------------------------------------------------------
# A(alpha)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AAlpha:
    """The A(alpha) angle of a multistep method.

    Attributes
    ----------
    degrees : float
        ``alpha`` in degrees (from ``degrees_mp``).
    degrees_mp : mpmath.mpf
        ``alpha`` in degrees at the requested working precision.
    exact : sympy.Expr
        ``alpha`` in radians as an exact expression: ``pi/2``, ``0``, or
        ``atan(sqrt(1 - x**2) * |Q(x)| / (-P(x)))`` at an algebraic ``x = CRootOf(...)`` (``x = cos theta*``).
    theta : mpmath.mpf or None
        The minimising ``theta*`` in ``(0, pi)`` when the angle is attained at an interior point of the locus.
    cos_theta : sympy.Expr or None
        ``cos theta*`` exactly (a ``CRootOf``).
    limited_by : str
            ``"A-stable"``, ``"locus"`` (the boundary locus enters the sector), ``"real-axis"`` (the locus crosses the
        negative real axis), ``"infinity"`` (roots unstable as ``|z| -> infinity`` in some direction of the sector)
        or ``"zero"`` (unstable arbitrarily close to ``z = 0``, e.g. a method that is not zero-stable).
    """

    degrees: float
    degrees_mp: mpmath.mpf
    exact: sympy.Expr
    theta: mpmath.mpf | None
    cos_theta: sympy.Expr | None
    limited_by: str


def _real_roots_in_open_unit_interval(p: Poly) -> list[tuple[Poly, int, Rational, Rational]]:
    """Real roots of ``p`` in ``(-1, 1)``: ``(irreducible factor g, CRootOf index, isolating interval a, b)``."""
    out = []
    if p.is_zero or p.degree() <= 0:
        return out
    _, factors = p.factor_list()
    for g, _mult in factors:
        g = Poly(g, _X, domain=QQ)
        if g.degree() == 1:  # a rational root, exactly
            root = -g.nth(0) / g.nth(1)
            if -1 < root < 1:
                out.append((g, 0, root, root))
            continue
        for index, ((a, b), _m) in enumerate(g.intervals()):
            # Irreducible g of degree > 1 has only irrational roots, so none is +-1 and the refinement terminates.
            a, b = g.refine_root(a, b, eps=Rational(1, 2**20))
            if b <= -1 or a >= 1:
                continue
            # Refine until the isolating interval is inside (-1, 1) or proves the root is outside.
            while a < -1 < b or a < 1 < b:
                a, b = g.refine_root(a, b, eps=(b - a) / 16)
            if -1 < a and b < 1:
                out.append((g, index, a, b))
    return out


def _exact_real_root(g: Poly, index: int) -> sympy.Expr:
    """The ``index``-th real root (ascending) of the irreducible ``g``: radicals if ``deg g <= 2``, else ``CRootOf``."""
    if g.degree() <= 2:
        return sorted(sympy.roots(g, multiple=True), key=lambda r: float(r))[index]
    return sympy.CRootOf(g, index)


def _sign_at_root(f: Poly, g: Poly, a: Rational, b: Rational) -> int:
    """Exact sign of ``f`` at the root of the irreducible ``g`` isolated in ``[a, b]``.

    If ``g`` divides ``f`` the value is 0.  Otherwise ``f`` and ``g`` have no common root, and the interval is refined
    until ``f`` has no root in it; then ``f`` has one sign on the interval, read off at a rational end point.
    """
    if f.is_zero or f.rem(g).is_zero:
        return 0
    if a == b:
        return int(sympy.sign(f.eval(a)))
    while f.count_roots(a, b) > 0:
        a, b = g.refine_root(a, b, eps=(b - a) / 16)
    return int(sympy.sign(f.eval(a)))


def _exact_roots(p: Poly) -> list[tuple[sympy.Expr, int, Poly]]:
    """Roots of ``p`` with multiplicity and irreducible factor: radicals for degree <= 2, ``CRootOf`` otherwise."""
    out = []
    _, factors = p.factor_list()
    for f, mult in factors:
        f = Poly(f, p.gen, domain=QQ)
        roots = sympy.roots(f, multiple=True) if f.degree() <= 2 else f.all_roots()
        out.extend((r, mult, f) for r in roots)
    return out


def _value_at_root(num: Poly, den: Poly, f: Poly, root: sympy.Expr) -> sympy.Expr:
    """``num(root) / den(root)`` for a root of the irreducible ``f`` with ``den(root) != 0``, exactly.

    The quotient is reduced to a polynomial of degree ``< deg f`` in the root (``den`` is invertible modulo ``f``), so
    no simplification of nested ``CRootOf`` expressions is needed.
    """
    reduced = (num * den.invert(f)).rem(f)
    value = reduced.as_expr().subs(reduced.gen, root)
    return sympy.radsimp(sympy.expand(value)) if f.degree() <= 2 else value


def _limit_angle(roots_of: Poly, other: Poly) -> sympy.Expr:
    """Half-angle of the sector of directions in which the roots of ``roots_of`` (perturbed by ``other``) are stable.

    Near a limit point of ``z`` (``z -> 0`` with ``roots_of = rho``, ``other = sigma``; ``|z| -> infinity`` with
    ``roots_of = sigma``, ``other = rho``) the roots of ``rho - z sigma`` tend to the roots of ``roots_of``.  Roots
    strictly inside the disk are harmless; a root outside or a multiple root on the circle makes every direction
    unstable (0).  A simple root ``zeta_0`` on the circle moves to ``zeta_0 (1 + c w)`` with
    ``w = other(zeta_0) / (zeta_0 roots_of'(zeta_0))`` and ``c = z`` resp. ``1/z``; for ``z = -r e^{i psi}`` it stays
    inside iff ``|psi -+ arg w| < pi/2``, so the admissible half-angle is ``pi/2 - |arg w|`` (conjugate roots give
    ``-arg w``, hence the absolute value).  For ``rho`` and ``zeta_0 = 1``, ``w = sigma(1)/rho'(1) = 1`` (consistency).
    """
    census = _census(roots_of)
    if census.outside > 0 or census.on_multiple > 0:
        return sympy.Integer(0)
    if census.on == 0:
        return sympy.pi / 2
    derivative = roots_of.diff(roots_of.gen)
    angle: sympy.Expr = sympy.pi / 2
    for root, _mult, factor in _exact_roots(roots_of):
        if factor.degree() == 1:
            if abs(root) != 1:
                continue
        elif _reversed(factor).monic() != factor.monic():
            continue  # not self-reciprocal: no root on the circle
        elif abs(abs(complex(root.evalf(30))) - 1) > 1e-20:
            continue  # a self-reciprocal factor's off-circle roots are paired r, 1/r, far from |zeta| = 1
        w = _value_at_root(other, derivative * Poly(factor.gen, factor.gen, domain=QQ), factor, root)
        candidate = sympy.pi / 2 - sympy.Abs(sympy.arg(w))
        if float((candidate - angle).evalf(30)) < 0:
            angle = candidate
    return sympy.Max(angle, sympy.Integer(0))


def _mp(value: sympy.Expr, dps: int) -> mpmath.mpf:
    """A real SymPy number at ``dps`` digits as an mpmath number (SymPy's evalf guarantees the digits)."""
    return mpmath.mpf(sympy.Float(sympy.N(value, dps + 10), dps + 10))


def lmm_a_alpha(method: LinearMultistepMethod, *, dps: int = 30) -> AAlpha:
    """The A(alpha) angle (Widlund 1967; HW II, V.2) with its exact form.

    ``alpha = sup{a : S ⊃ {z != 0 : |arg(-z)| < a}}``.  If the method is A-stable, ``alpha = pi/2`` (a consistent
    method's locus is tangent to the imaginary axis at 0, so never more).  Otherwise ``alpha`` is the smallest of the
    far-field and near-zero half-angles (``_limit_angle``: roots stable for large resp. small ``|z|`` in the sector)
    and

    .. math:: \\min_{\\theta:\\ \\operatorname{Re} z(\\theta) < 0} |\\arg(-z(\\theta))|
        = \\min_{x = \\cos\\theta,\\ P(x) < 0} \\arctan \\frac{\\sqrt{1-x^2}\\,|Q(x)|}{-P(x)},

    because a sector free of the locus and stable far out is stable throughout (root count constant on a connected
    set without root crossings).  The minimum is 0 if the locus meets the negative real axis (``Q(x) = 0`` or
    ``x = -1`` with ``P < 0``); otherwise it is attained where ``d/dtheta [Im N / Re N] = 0``, i.e. at a real root in
    ``(-1, 1)`` of the exact polynomial

    .. math:: E(x) = x\\,Q\\,P - (1 - x^2)\\,(Q' P - Q P').

    The candidates are isolated and their signs decided exactly; mpmath evaluates the winner at ``dps`` digits.

    Parameters
    ----------
    method : LinearMultistepMethod
    dps : int
        Decimal digits of the mpmath evaluation (the exact candidate is chosen independently of ``dps``).
    """
    if isinstance(dps, bool) or not isinstance(dps, numbers.Integral) or dps < 15:
        raise SchemeError(f"`dps` must be an integer >= 15, got {dps!r}")
    with mpmath_precision(dps=dps):
        deg = lambda rad: rad * 180 / mpmath.pi  # noqa: E731 - tiny unit conversion
        if lmm_is_A_stable(method):
            return AAlpha(float(deg(mpmath.pi / 2)), +deg(mpmath.pi / 2), sympy.pi / 2, None, None, "A-stable")
        # Far out the roots approach those of sigma (explicit methods: one goes to infinity); near z = 0 those of rho.
        far = sympy.Integer(0) if method.is_explicit else _limit_angle(sigma(method), rho(method))
        if far == 0:
            return AAlpha(0.0, mpmath.mpf(0), sympy.Integer(0), None, None, "infinity")
        near = _limit_angle(rho(method), sigma(method))
        if near == 0:
            return AAlpha(0.0, mpmath.mpf(0), sympy.Integer(0), None, None, "zero")
        p, q = _locus_polynomials(method)
        if q.is_zero and _nonnegative_on_unit_interval(p):  # pragma: no cover - then the method is A-stable
            return AAlpha(float(deg(mpmath.pi / 2)), +deg(mpmath.pi / 2), sympy.pi / 2, None, None, "A-stable")
        if q.is_zero:  # a real locus with Re z < 0 somewhere lies on the negative real axis
            return AAlpha(0.0, mpmath.mpf(0), sympy.Integer(0), None, None, "real-axis")
        if p.eval(-1) < 0:  # z(pi) < 0
            return AAlpha(0.0, mpmath.mpf(0), sympy.Integer(0), +mpmath.pi, sympy.Integer(-1), "real-axis")
        for g, index, a, b in _real_roots_in_open_unit_interval(q):
            if _sign_at_root(p, g, a, b) < 0:  # Im z = 0 with Re z < 0: the locus crosses the negative axis
                x0 = _exact_real_root(g, index)
                return AAlpha(0.0, mpmath.mpf(0), sympy.Integer(0), mpmath.acos(_mp(x0, dps)), x0, "real-axis")
        e = _X * q * p - (1 - _X**2) * (q.diff(_X) * p - q * p.diff(_X))
        e = Poly(e, _X, domain=QQ)
        best: tuple[mpmath.mpf, sympy.Expr, sympy.Expr, mpmath.mpf] | None = None
        for g, index, a, b in _real_roots_in_open_unit_interval(e):
            if _sign_at_root(p, g, a, b) >= 0:
                continue  # the locus point is in the closed right half-plane: angle >= pi/2
            x0 = _exact_real_root(g, index)
            sign_q = _sign_at_root(q, g, a, b)  # nonzero: zeros of Q with P < 0 were handled above
            tan_alpha = sympy.sqrt(1 - x0**2) * sign_q * q.as_expr().subs(_X, x0) / (-p.as_expr().subs(_X, x0))
            if g.degree() <= 2:  # radicals: bring tan(alpha) to a canonical form (BDF3/4/6: q*sqrt(n), q rational)
                tan_alpha = sympy.radsimp(sympy.simplify(tan_alpha))
            exact = sympy.atan(tan_alpha)
            # Newton polish of the root at working precision (the exact root fixes which root; mpmath the digits).
            g_mp = [mpmath.mpf(sympy.Rational(c).p) / sympy.Rational(c).q for c in g.all_coeffs()]
            x_mp = mpmath.findroot(lambda t: mpmath.polyval(g_mp, t), _mp(x0, dps))
            p_mp = [mpmath.mpf(sympy.Rational(c).p) / sympy.Rational(c).q for c in p.all_coeffs()]
            q_mp = [mpmath.mpf(sympy.Rational(c).p) / sympy.Rational(c).q for c in q.all_coeffs()]
            q_at, p_at = mpmath.polyval(q_mp, x_mp), mpmath.polyval(p_mp, x_mp)
            value = mpmath.atan(mpmath.sqrt(1 - x_mp**2) * abs(q_at) / -p_at)
            if best is None or value < best[0]:
                best = (value, exact, x0, x_mp)
        # The sector must also be stable near 0 and near infinity; usually both half-angles are pi/2.
        limit = far if float((far - near).evalf(30)) <= 0 else near
        limit_mp = _mp(limit, dps)
        if best is None or limit_mp <= best[0]:
            label = "infinity" if limit is far else "zero"
            return AAlpha(float(deg(limit_mp)), deg(limit_mp), limit, None, None, label)
        value, exact, x0, x_mp = best
        return AAlpha(float(deg(value)), deg(value), exact, mpmath.acos(x_mp), x0, "locus")


def lmm_a_alpha_angle(method: LinearMultistepMethod, *, dps: int = 30) -> float:
    """The A(alpha) angle in degrees (``lmm_a_alpha(method, dps=dps).degrees``); 90 for A-stable methods."""
    return lmm_a_alpha(method, dps=dps).degrees


# ---------------------------------------------------------------------------------------------------------------
# The dominant root and its derivative
# ---------------------------------------------------------------------------------------------------------------


def _rational_mp(c: Rational) -> mpmath.mpf:
    c = sympy.Rational(c)
    return mpmath.mpf(int(c.p)) / int(c.q)


def _stability_roots(method: LinearMultistepMethod, z: mpmath.mpc) -> list[mpmath.mpc]:
    coeffs = [_rational_mp(a) - z * _rational_mp(b) for a, b in zip(method.alpha, method.beta)]
    coeffs.reverse()  # highest power first for mpmath
    if coeffs[0] == 0:
        raise SchemeError(
            f"{method.name}: at `z` = {z} the leading coefficient alpha_k - z beta_k vanishes; a root is at infinity"
        )
    if len(coeffs) == 2:
        return [-coeffs[1] / coeffs[0]]
    dps = mpmath.mp.dps
    return list(mpmath.polyroots(coeffs, maxsteps=50 + 10 * dps, extraprec=2 * dps + 20))


def lmm_dominant_root(method: LinearMultistepMethod, z: object, *, dps: int = 30) -> mpmath.mpc:
    """The root of largest modulus of ``rho(zeta) - z sigma(zeta)`` (mpmath ``polyroots`` at ``dps`` digits).

    Parameters
    ----------
    method : LinearMultistepMethod
    z : number
        ``h lambda``; any real or complex number mpmath accepts (``int``, ``float``, ``complex``, ``mpf``, ``str``).
    dps : int
        Working precision in decimal digits.

    Raises
    ------
    SchemeError
        If ``z = 1/beta_k`` (the degree drops: one root is at infinity).
    """
    with mpmath_precision(dps=dps):
        zz = mpmath.mpmathify(z)
        return max(_stability_roots(method, zz), key=abs)


def lmm_dominant_root_derivative(
    method: LinearMultistepMethod, z: object, *, dps: int = 30
) -> tuple[mpmath.mpc, mpmath.mpc]:
    """``(zeta, dzeta/dz)`` for the dominant root: the multistep counterpart of ``(R(z), R'(z))``.

    Implicit differentiation of ``rho(zeta(z)) - z sigma(zeta(z)) = 0`` gives

    .. math:: \\zeta'(z) = \\frac{\\sigma(\\zeta)}{\\rho'(\\zeta) - z\\,\\sigma'(\\zeta)},

    valid where the dominant root is simple.  For ``y' = lambda(p) y`` the mode ``zeta(h lambda)**n`` of the
    numerical solution has ``d/dp zeta**n = n zeta**(n-1) zeta'(z) h lambda'(p)``.
    """
    with mpmath_precision(dps=dps):
        zz = mpmath.mpmathify(z)
        root = max(_stability_roots(method, zz), key=abs)
        a = [_rational_mp(c) for c in reversed(method.alpha)]
        b = [_rational_mp(c) for c in reversed(method.beta)]
        k = method.steps
        da = [c * (k - i) for i, c in enumerate(a[:-1])]
        db = [c * (k - i) for i, c in enumerate(b[:-1])]
        denominator = mpmath.polyval(da, root) - zz * mpmath.polyval(db, root)
        if denominator == 0:
            raise SchemeError(f"{method.name}: the dominant root is multiple at `z` = {zz}; dzeta/dz is infinite")
        return root, mpmath.polyval(b, root) / denominator


# ---------------------------------------------------------------------------------------------------------------
# Asymptotics as z -> -infinity
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RootAsymptotics:
    """Law of the dominant root ``zeta(z)`` of ``rho - z sigma`` as ``z -> -infinity`` along the real axis.

    Attributes
    ----------
    limit : sympy.Expr
        ``lim |zeta(z)|``: ``0``, a positive algebraic number (the largest modulus of a root of ``sigma``), or
        ``oo`` (explicit methods).
    coefficient, exponent : sympy.Expr, sympy.Rational
        The leading term: ``|zeta(z)| ~ coefficient * |z|**exponent``.
    correction : tuple[sympy.Expr, sympy.Rational] or None
        The next term ``(c2, e2)``: ``|zeta| = coefficient |z|**exponent + c2 |z|**e2 + o(|z|**e2)``, where derived
        (None otherwise).
    sensitivity : tuple[sympy.Expr, sympy.Rational]
        Leading term of ``|z dzeta/dz|`` (the analogue of ``|z R'(z)|`` of a one-step method).
    limit_root : sympy.Expr
        The root ``zeta_0`` of ``sigma`` approached (``zoo`` for explicit methods), and its multiplicity
        ``multiplicity`` as a root of ``sigma`` (for explicit methods ``k - deg sigma``, the number of roots that go
        to infinity).
    """

    limit: sympy.Expr
    coefficient: sympy.Expr
    exponent: Rational
    correction: tuple[sympy.Expr, Rational] | None
    sensitivity: tuple[sympy.Expr, Rational]
    limit_root: sympy.Expr
    multiplicity: int


def lmm_root_asymptotics(method: LinearMultistepMethod) -> RootAsymptotics:
    """Derive the law of ``|zeta(z)|`` and ``|z zeta'(z)|`` as ``z -> -infinity`` (Newton–Puiseux, exact).

    With ``epsilon = -1/z -> 0+`` the stability equation reads ``sigma(zeta) + epsilon rho(zeta) = 0``, so the roots
    tend to the roots of ``sigma`` (and to infinity if ``d = deg sigma < k``):

    * **explicit** (``d < k``): ``alpha_k zeta**k ~ z beta_d zeta**d``, so
      ``|zeta| ~ |beta_d/alpha_k|**(1/(k-d)) |z|**(1/(k-d))``; for ``k - d = 1`` also the constant term
      ``zeta = beta_{k-1} z - alpha_{k-1} + beta_{k-2}/beta_{k-1} + O(1/z)``;
    * **sigma = beta_k zeta**k** (BDF): ``zeta**k = alpha_0/(beta_k z) (1 + O(zeta))``, so
      ``|zeta| ~ |alpha_0/beta_k|**(1/k) |z|**(-1/k)``; with ``zeta = zeta_1 (1 + delta)``,
      ``delta = alpha_1 zeta_1 / (k alpha_0)``, the dominant branch maximises ``Re delta``;
    * **otherwise**: ``|zeta| -> M``, the largest modulus of a root ``zeta_0`` of ``sigma``.  For a root of
      multiplicity ``m``, ``(zeta - zeta_0)**m ~ K / z`` with ``K = m! rho(zeta_0)/sigma^{(m)}(zeta_0)``; for
      ``m = 1`` this gives ``|zeta| = M - Re(conj(zeta_0) K) / (M |z|) + O(|z|**-2)``.

    In every case ``z zeta'(z) = -epsilon dzeta/depsilon`` so ``|z zeta'| ~ (1/m) |K|**(1/m) |z|**(-1/m)`` near a
    finite limit root of multiplicity ``m`` (``K = alpha_0/beta_k``, ``m = k`` for BDF) and
    ``|z zeta'| ~ |zeta|/(k-d)`` for the roots that go to infinity.
    """
    k = method.steps
    alpha, beta = method.alpha, method.beta
    if method.is_explicit:
        d = max(j for j, b in enumerate(beta) if b != 0)
        n = k - d
        coefficient = sympy.Abs(beta[d] / alpha[k]) ** Rational(1, n)
        correction = None
        if n == 1:
            b_next = beta[k - 2] if k >= 2 else sympy.Integer(0)
            constant = -alpha[k - 1] + b_next / beta[k - 1]
            # zeta is real for real z; |zeta| = |beta_{k-1}| |z| - sign(beta_{k-1}) * constant + O(1/z) for z -> -oo.
            if constant != 0:
                correction = (-sympy.sign(beta[k - 1]) * constant, Rational(0))
        return RootAsymptotics(
            limit=sympy.oo,
            coefficient=coefficient,
            exponent=Rational(1, n),
            correction=correction,
            sensitivity=(coefficient / n, Rational(1, n)),
            limit_root=sympy.zoo,
            multiplicity=n,
        )
    if all(b == 0 for b in beta[:-1]):  # sigma = beta_k zeta**k: all roots tend to 0 (BDF)
        c = sympy.Abs(alpha[0] / beta[k]) ** Rational(1, k)
        t = alpha[1] / (k * alpha[0])
        correction = None
        if t != 0:
            # zeta_1 = c |z|**(-1/k) omega, omega**k = sign(alpha_0 / (beta_k z)) = -sign(alpha_0 / beta_k).
            s = -sympy.sign(alpha[0] / beta[k])
            max_re = sympy.Integer(1) if s == 1 else sympy.cos(sympy.pi / k)  # max Re omega over the branches
            # min Re omega: -1 when -1 is a branch (s = (-1)**k), else -cos(pi/k)
            min_re = sympy.Integer(-1) if s == (-1) ** k else -sympy.cos(sympy.pi / k)
            re_omega = max_re if t > 0 else min_re
            if re_omega != 0:  # BDF2: the branches are +-i, the |z|**(-2/k) term vanishes and is not reported
                correction = (sympy.radsimp(t * c**2 * re_omega), Rational(-2, k))
        return RootAsymptotics(
            limit=sympy.Integer(0),
            coefficient=c,
            exponent=Rational(-1, k),
            correction=correction,
            sensitivity=(c / k, Rational(-1, k)),
            limit_root=sympy.Integer(0),
            multiplicity=k,
        )
    s = sigma(method)
    roots = _exact_roots(s)
    # Which root of sigma has the largest modulus is read from floating-point values (mpmath for the maximum, SymPy
    # evalf for real roots, and for complex CRootOf roots only when a complex root attains it: SymPy's complex
    # refinement is slow); the law is then written exactly for that root.
    with mpmath_precision(dps=30):
        top = max(abs(v) for v in mpmath.polyroots([_rational_mp(b) for b in s.all_coeffs()], maxsteps=200))
    top = float(top)

    def near_top(value: complex) -> bool:
        return abs(abs(value) - top) <= 1e-12 * max(top, 1.0)

    candidates = [((r, m, f), complex(r.evalf(20))) for r, m, f in roots if r.is_real]
    candidates = [item for item in candidates if near_top(item[1])]
    if not candidates:
        candidates = [((r, m, f), complex(r.evalf(20))) for r, m, f in roots if not r.is_real]
        candidates = [item for item in candidates if near_top(item[1])]
    ranked = []
    for (root, m, f), value in candidates:
        big_k = sympy.factorial(m) * _value_at_root(rho(method), s.diff((ZETA, m)), f, root)
        correction = None
        if m == 1:
            if root.is_real:
                radial = -sympy.sign(root.evalf(30)) * big_k  # -Re(conj(zeta_0) K)/|zeta_0| for real zeta_0
            else:
                radial = -sympy.re(sympy.conjugate(root) * big_k) / sympy.Abs(root)
            if f.degree() <= 2:
                radial = sympy.radsimp(sympy.expand(radial))
            correction = (radial, Rational(-1))
        # Among limits of equal modulus a multiple root (deviation |z|**(-1/m)) outranks the simple ones, then the
        # largest outward correction.
        if correction is None or len(candidates) == 1:
            outward = 0.0
        else:  # -Re(conj(zeta_0) K)/|zeta_0| in floating point, only to rank equal-modulus candidates
            k_value = complex(sympy.N(big_k.subs(root, value) if not root.is_number else big_k, 25))
            outward = -(value.conjugate() * k_value).real / abs(value)
        score = (m, outward)
        ranked.append((score, root, m, big_k, correction))
    ranked.sort(key=lambda item: item[0], reverse=True)
    _, root, m, big_k, correction = ranked[0]
    limit = sympy.Abs(root)
    if root.is_real and not isinstance(root, sympy.CRootOf):
        limit = sympy.radsimp(limit)
    return RootAsymptotics(
        limit=limit,
        coefficient=limit,
        exponent=Rational(0),
        correction=correction,
        sensitivity=(sympy.Abs(big_k) ** Rational(1, m) / m, Rational(-1, m)),
        limit_root=root,
        multiplicity=m,
    )


def lmm_root_decay(method: LinearMultistepMethod) -> tuple[sympy.Expr, Rational]:
    """``(coefficient, exponent)`` with ``|zeta(z)| ~ coefficient * |z|**exponent`` as ``z -> -infinity``.

    BDF``k``: ``(|alpha_0/beta_k|**(1/k), -1/k)``; Adams–Moulton: ``(M, 0)`` with ``M`` the largest modulus of a root
    of ``sigma``; explicit methods: ``(|beta_{k-1}|, 1)``.  See ``lmm_root_asymptotics`` for the derivation.
    """
    law = lmm_root_asymptotics(method)
    return law.coefficient, law.exponent


def lmm_root_sensitivity_decay(method: LinearMultistepMethod) -> tuple[sympy.Expr, Rational]:
    """``(coefficient, exponent)`` with ``|z zeta'(z)| ~ coefficient * |z|**exponent`` as ``z -> -infinity``.

    For BDF``k``: ``(|alpha_0/beta_k|**(1/k) / k, -1/k)`` — compare ``|z R'(z)| ~ |a| |z|**(-1)`` for any rational
    one-step ``R`` bounded at infinity.
    """
    return lmm_root_asymptotics(method).sensitivity
