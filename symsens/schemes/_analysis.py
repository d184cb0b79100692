"""Exact linear-stability analysis of one-step schemes (Runge–Kutta and Rosenbrock).

For the Dahlquist test equation ``y' = λ y`` every Runge–Kutta and Rosenbrock method gives
``y1 = R(z) y0`` with ``z = h λ`` and a rational *stability function* ``R = P/Q``.  Everything in this
module is computed exactly, over the smallest number field that holds the tableau's coefficients
(``QQ``, ``QQ<sqrt(2)>``, ``QQ<CRootOf(...)>``, ...), with SymPy's polynomial domains; nothing is
sampled and no floating-point value decides a yes/no answer.

Formulas (Hairer & Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996):

* Butcher tableau ``(A, b, c)`` (HW II, IV.3, Prop. 3.2)::

      R(z) = det(I - z A + z e b^T) / det(I - z A)

* Rosenbrock tableau ``(alpha, gamma, b)`` with ``beta = alpha + gamma`` (HW II, IV.7, (7.8))::

      R(z) = 1 + z b^T (I - z beta)^{-1} e = det(I - z beta + z e b^T) / det(I - z beta)

  (the second form is the matrix-determinant lemma), so both families share one code path:
  ``det(I - z M) = 1 + c_1 z + ... + c_s z^s`` where ``c_k`` are the coefficients of the
  characteristic polynomial of ``M``.

* A-stability (HW II, IV.3, Prop. 3.8): ``R`` is A-stable iff it has no pole in ``Re z <= 0``
  and the E-polynomial ``E(y) = |Q(iy)|^2 - |P(iy)|^2 = Q(iy)Q(-iy) - P(iy)P(-iy)`` is ``>= 0`` for
  every real ``y``.  Poles are located with the Routh–Hurwitz criterion (all Hurwitz minors of
  ``Q(-z)`` positive ⇔ every zero of ``Q`` in the open right half-plane); ``E(y) >= 0`` is decided by
  exact real-root counting (``Poly.count_roots`` over ``QQ``, a Sturm sequence over number fields) of the
  odd-multiplicity factors of ``E`` written as a polynomial in ``w = y^2 >= 0``.

* L-stability: A-stable and ``R(∞) = 0`` (HW II, IV.3, Def. 3.7).

* Stiff decay (Ascher & Petzold, *Computer Methods for ODEs and DAEs*, SIAM 1998, §3.5): for
  ``y' = λ (y - g(t))`` the step satisfies ``y1 - g(t1) -> 0`` as ``h λ -> -∞`` for every ``y0`` and
  smooth ``g``.

The multistep family dispatches to :mod:`symsens.schemes._multistep` (imported lazily, so this module
works before that one exists): the public predicates here are :func:`functools.singledispatch`
functions whose default implementation handles one-step tableaux by their fields (duck typing:
``A, b`` → Butcher, ``alpha, gamma, b`` → Rosenbrock).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import mpmath
import sympy as sp
from sympy.polys.constructor import construct_domain
from sympy.polys.matrices import DomainMatrix

from .._precision import mpmath_precision
from .._once import cached_once
from .._errors import SchemeError

__all__ = [
    "z",
    "y",
    "stability_function",
    "stability_polynomials",
    "e_polynomial",
    "is_A_stable",
    "is_L_stable",
    "R_infinity",
    "has_stiff_decay",
    "stability_order",
    "poles_in_right_half_plane",
]

#: The complex variable ``z = h λ`` of every stability function.
z = sp.Symbol("z")
#: The real variable of the E-polynomial ``E(y) = |Q(iy)|^2 - |P(iy)|^2``.
y = sp.Symbol("y", real=True)

_F = TypeVar("_F", bound=Callable[..., Any])

#: For tableaux given as rounded decimals (``tolerance`` set), derived quantities below
#: ``SNAP_FACTOR * tolerance`` in magnitude are treated as exact zeros (see :class:`OneStepData`).
SNAP_FACTOR = sp.Integer(1000)


# ----------------------------------------------------------------------------------------------------
# Caching that tolerates unhashable schemes.
# ----------------------------------------------------------------------------------------------------
def _scheme_cache(func: _F) -> _F:
    """Memoise ``func(scheme)`` on the scheme's value.

    Frozen dataclasses of SymPy numbers hash by value, so two equal tableaux share one analysis; an
    unhashable object is simply analysed again (correct, only slower).  The cache is bounded because
    generated families (``gauss-S`` for any S) make the key space open.
    """
    cached = cached_once(maxsize=512)(func)

    @functools.wraps(func)
    def wrapper(scheme: Any) -> Any:
        try:
            hash(scheme)
        except TypeError:
            return func(scheme)
        return cached(scheme)

    wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


_CACHED_FUNCTIONS: list[Any] = []


def clear_caches() -> None:
    """Forget every memoised analysis (used by the benchmark to time cold runs)."""
    for func in _CACHED_FUNCTIONS:
        func.cache_clear()


def _register_cache(func: Any) -> Any:
    _CACHED_FUNCTIONS.append(func)
    return func


# ----------------------------------------------------------------------------------------------------
# Lazy dispatch to the multistep module.
# ----------------------------------------------------------------------------------------------------
_MULTISTEP_REGISTRARS: list[Callable[[type], None]] = []
_multistep_state: dict[str, Any] = {"tried": False, "module": None}


def _multistep_module() -> Any | None:
    """``symsens.schemes._multistep`` if it can be imported, else ``None`` (tried once)."""
    if not _multistep_state["tried"]:
        _multistep_state["tried"] = True
        try:
            _multistep_state["module"] = importlib.import_module(f"{__package__}._multistep")
        except ImportError:
            _multistep_state["module"] = None
    return _multistep_state["module"]


def on_multistep_class(registrar: Callable[[type], None]) -> Callable[[type], None]:
    """Record ``registrar(LinearMultistepMethod)``, run once the multistep module is importable.

    Used by ``_analysis``, ``_order`` and ``_decay`` to register the multistep implementations of
    their :func:`functools.singledispatch` functions without importing ``_multistep`` at import time
    (so that neither module's import order nor its existence constrains the other).
    """
    _MULTISTEP_REGISTRARS.append(registrar)
    _multistep_state["registered"] = False
    return registrar


def register_multistep() -> bool:
    """Run the pending multistep registrations; ``True`` if anything new was registered."""
    if _multistep_state.get("registered", True):
        return False
    _multistep_state["registered"] = True
    module = _multistep_module()
    cls = getattr(module, "LinearMultistepMethod", None) if module is not None else None
    if cls is None:
        return False
    for registrar in _MULTISTEP_REGISTRARS:
        registrar(cls)
    return True


def multistep_function(name: str) -> Callable[..., Any]:
    """A function of the multistep modules (``_multistep``, then ``_multistep_analysis``) by name, or a
    :class:`SchemeError` naming what is missing."""
    for module_name in ("_multistep", "_multistep_analysis"):
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ImportError:
            continue
        func = getattr(module, name, None)
        if func is not None:
            return func  # type: ignore[no-any-return]
    raise SchemeError(f"the multistep analysis function `{name}` is not available")


def is_multistep(scheme: Any) -> bool:
    """Whether ``scheme`` is a :class:`LinearMultistepMethod` (``False`` if that class does not exist)."""
    module = _multistep_module()
    cls = getattr(module, "LinearMultistepMethod", None) if module is not None else None
    return cls is not None and isinstance(scheme, cls)


# ----------------------------------------------------------------------------------------------------
# The exact data of a one-step scheme.
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OneStepData:
    """A one-step tableau in exact domain arithmetic.

    Attributes
    ----------
    kind : {"butcher", "rosenbrock"}
    domain : sympy.polys.domains.Domain
        The smallest field SymPy constructs that holds every coefficient (``QQ`` or an algebraic field).
    M : DomainMatrix, shape (s, s)
        ``A`` for a Butcher tableau, ``beta = alpha + gamma`` for a Rosenbrock tableau: the matrix whose
        resolvent appears in ``R(z) = 1 + z b^T (I - z M)^{-1} e``.
    alpha : DomainMatrix, shape (s, s)
        ``A`` again (Butcher) or the Rosenbrock ``alpha`` (the argument matrix of ``f``); used by the
        order conditions.
    b, c : tuple of domain elements, length s
        Weights and nodes (``c = A e``, or the Rosenbrock ``alpha_i = sum_j alpha_ij``).
    snap : sympy.Rational or None
        ``None`` for exact tableaux.  For tableaux transcribed from published decimals (``tolerance`` set),
        ``SNAP_FACTOR * tolerance``: a derived quantity (order-condition residual, polynomial coefficient,
        E-polynomial coefficient) smaller than this is the rounding of an exact zero and is treated as zero.
        Exact arithmetic on rounded coefficients would otherwise report, e.g., ``R(∞) = 1e-17`` (not
        L-stable) or ``E(y) = -1e-18 y^2 + ...`` (not A-stable) for a method that is both.
    """

    kind: str
    domain: Any
    M: DomainMatrix
    alpha: DomainMatrix
    b: tuple[Any, ...]
    c: tuple[Any, ...]
    snap: sp.Rational | None = None

    @property
    def stages(self) -> int:
        return len(self.b)

    def negligible(self, value: Any) -> bool:
        """Whether a domain element is zero — exactly, or within :attr:`snap` for decimal tableaux."""
        if not value:
            return True
        if self.snap is None:
            return False
        return _magnitude(value, self.domain) <= self.snap

    def equal(self, u: Any, v: Any) -> bool:
        return self.negligible(u - v)

    def present(self, value: sp.Expr) -> sp.Expr:
        """A derived number as reported: exact, or for a decimal tableau a ``Float`` carrying only the digits the
        published decimals determine (the exact rational of the rounded coefficients is noise beyond them)."""
        if self.snap is None or value.is_zero or not value.is_number or value.has(sp.zoo, sp.oo):
            return value
        digits = max(6, min(30, int(-sp.log(self.snap, 10).evalf()) ))
        return sp.Float(value, digits)


def _matrix_rows(value: Any, name: str, scheme: Any) -> list[list[sp.Expr]]:
    try:
        rows = [[sp.sympify(entry) for entry in row] for row in value]
    except TypeError as error:
        raise SchemeError(f"`{name}` of scheme {_scheme_name(scheme)!r} is not a square matrix") from error
    if any(len(row) != len(rows) for row in rows):
        raise SchemeError(f"`{name}` of scheme {_scheme_name(scheme)!r} is not a square matrix")
    return rows


def _scheme_name(scheme: Any) -> str:
    return str(getattr(scheme, "name", type(scheme).__name__))


def scheme_kind(scheme: Any) -> str:
    """``"butcher"``, ``"rosenbrock"`` or ``"multistep"``; :class:`SchemeError` for anything else."""
    if is_multistep(scheme):
        return "multistep"
    if hasattr(scheme, "gamma") and hasattr(scheme, "alpha") and hasattr(scheme, "b"):
        return "rosenbrock"
    if hasattr(scheme, "A") and hasattr(scheme, "b"):
        return "butcher"
    raise SchemeError(f"{scheme!r} is not a scheme (expected a Butcher, Rosenbrock or multistep tableau)")


@_register_cache
@_scheme_cache
def one_step_data(scheme: Any) -> OneStepData:
    """Convert a Butcher or Rosenbrock tableau to exact domain arithmetic (see :class:`OneStepData`)."""
    kind = scheme_kind(scheme)
    if kind == "multistep":
        raise SchemeError(f"{_scheme_name(scheme)!r} is a multistep method, not a one-step tableau")
    if kind == "butcher":
        A = _matrix_rows(scheme.A, "A", scheme)
        alpha = A
        M = A
    else:
        alpha = _matrix_rows(scheme.alpha, "alpha", scheme)
        gamma = _matrix_rows(scheme.gamma, "gamma", scheme)
        if len(gamma) != len(alpha):
            raise SchemeError(f"`alpha` and `gamma` of scheme {_scheme_name(scheme)!r} differ in size")
        M = [[a + g for a, g in zip(ra, rg)] for ra, rg in zip(alpha, gamma)]
    s = len(M)
    b = [sp.sympify(v) for v in scheme.b]
    if len(b) != s:
        raise SchemeError(f"`b` of scheme {_scheme_name(scheme)!r} has {len(b)} entries, expected {s}")
    c_expr = [sp.Add(*row) for row in alpha]
    flat = [v for row in M for v in row] + [v for row in alpha for v in row] + b + c_expr
    # One domain for everything, so that P, Q and the order conditions live in the same field.
    domain, elements = construct_domain(flat, extension=True)
    if not domain.is_Field:
        domain = domain.get_field()
        elements = [domain.convert(e) for e in elements]
    it = iter(elements)
    m_rows = [[next(it) for _ in range(s)] for _ in range(s)]
    a_rows = [[next(it) for _ in range(s)] for _ in range(s)]
    b_el = tuple(next(it) for _ in range(s))
    c_el = tuple(next(it) for _ in range(s))
    tolerance = getattr(scheme, "tolerance", None)
    snap = None if tolerance is None else SNAP_FACTOR * sp.Rational(tolerance)
    return OneStepData(
        kind=kind,
        domain=domain,
        M=DomainMatrix(m_rows, (s, s), domain),
        alpha=DomainMatrix(a_rows, (s, s), domain),
        b=b_el,
        c=c_el,
        snap=snap,
    )


# ----------------------------------------------------------------------------------------------------
# Exact signs of algebraic numbers, and polynomials as lists of domain elements.
# ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _generator_value(domain: Any, digits: int) -> mpmath.mpf:
    """The primitive element ``θ`` of an algebraic field, numerically (real: the catalogue's fields are real)."""
    value = sp.N(domain.ext.as_expr(), digits + 10)
    return mpmath.mpf(sp.re(value)._to_mpmath(mpmath.mp.prec + 4 * digits))


def _numeric(value: Any, domain: Any, digits: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    """``(v, scale)``: a ``digits``-digit value of a domain element and the size of the terms it sums.

    An element of ``QQ<θ>`` is a polynomial in ``θ`` with rational coefficients; evaluating it by Horner
    at a ``θ`` known to ``digits + 10`` digits gives an error below ``10^-digits * scale``.
    """
    with mpmath_precision(dps=digits + 10):
        if domain.is_QQ or domain.is_ZZ:
            v = mpmath.mpf(int(value.numerator)) / int(value.denominator) if domain.is_QQ else mpmath.mpf(int(value))
            return v, abs(v)
        theta = _generator_value(domain, digits)
        coefficients = [mpmath.mpf(int(c.numerator)) / int(c.denominator) for c in value.to_list()]
        v = mpmath.mpf(0)
        scale = mpmath.mpf(0)
        for c in coefficients:
            v = v * theta + c
            scale = scale * abs(theta) + abs(c)
        return v, scale


def exact_sign(value: Any, domain: Any = None) -> int:
    """The sign (-1, 0, 1) of an exact real algebraic number.

    Zero is decided exactly: an element of ``QQ`` or of an algebraic field ``QQ<θ>`` is stored reduced
    modulo the minimal polynomial of ``θ``, so it is zero iff its representation is empty.  A non-zero
    number's sign is then read off a numerical value whose error bound (``10^-digits`` times the size of
    the summed terms) is below its modulus, raising the precision until that is so.

    ``value`` is a domain element of ``domain``, or (``domain=None``) any exact SymPy number.
    """
    if domain is None:
        expr = sp.sympify(value)
        if expr.is_Rational:
            return int(sp.sign(expr))
        domain, (value,) = construct_domain([expr], extension=True)
    if not value:
        return 0
    if domain.is_QQ or domain.is_ZZ:
        return 1 if value > 0 else -1
    for digits in (30, 60, 120, 240, 480, 960):
        v, scale = _numeric(value, domain, digits)
        if abs(v) > scale * mpmath.mpf(10) ** (-digits + 2):
            return 1 if v > 0 else -1
    raise SchemeError(f"could not decide the sign of {domain.to_sympy(value)} (not recognised as a non-zero real)")


def _magnitude(value: Any, domain: Any) -> float:
    """``|value|`` as a float (for tolerance tests on decimal tableaux only)."""
    if not value:
        return 0.0
    return float(abs(_numeric(value, domain, 30)[0]))


def _coeffs(poly: sp.Poly) -> list[Any]:
    """Coefficients of ``poly`` as domain elements, highest degree first (no SymPy round trip)."""
    return list(poly.rep.to_list())


def _poly(coefficients: Sequence[Any], gen: sp.Symbol, domain: Any) -> sp.Poly:
    """A :class:`sympy.Poly` from domain elements, highest degree first."""
    return sp.Poly.from_list(list(coefficients), gen, domain=domain)


def _reflect(poly: sp.Poly) -> sp.Poly:
    """``poly(-x)`` by flipping the signs of the odd coefficients (exact, in the same domain)."""
    coefficients = _coeffs(poly)
    n = len(coefficients) - 1
    return _poly([c if (n - i) % 2 == 0 else -c for i, c in enumerate(coefficients)], poly.gen, poly.domain)


# ----------------------------------------------------------------------------------------------------
# Stability function.
# ----------------------------------------------------------------------------------------------------
def _det_I_minus_zM(M: DomainMatrix) -> list[Any]:
    """Coefficients ``[1, c_1, ..., c_s]`` (ascending in z) of ``det(I - z M)``.

    ``det(I - zM) = z^s det(I/z - M) = z^s charpoly_M(1/z)``, so the ascending coefficients of
    ``det(I - zM)`` are the descending coefficients of the characteristic polynomial of ``M``.
    """
    return list(M.charpoly())


def _shrink_domain(polys: Sequence[sp.Poly]) -> tuple[sp.Poly, ...]:
    """Move polynomials to ``QQ`` when all their coefficients are rational (Gauss, Radau, ...)."""
    dom = polys[0].domain
    if dom.is_QQ or dom.is_ZZ:
        return tuple(polys)
    if all(len(c.to_list()) <= 1 for p in polys for c in _coeffs(p)):
        return tuple(
            _poly([c.to_list()[0] if c.to_list() else sp.QQ.zero for c in _coeffs(p)], p.gen, sp.QQ) for p in polys
        )
    return tuple(polys)


@_register_cache
@_scheme_cache
def _stability_polynomials(scheme: Any) -> tuple[sp.Poly, sp.Poly]:
    data = one_step_data(scheme)
    dom = data.domain
    s = data.stages
    e_bT = DomainMatrix([[bj for bj in data.b] for _ in range(s)], (s, s), dom)
    q_coeffs = [dom.zero if data.negligible(c) else c for c in _det_I_minus_zM(data.M)]
    p_coeffs = [dom.zero if data.negligible(c) else c for c in _det_I_minus_zM(data.M - e_bT)]
    P = _poly(list(reversed(p_coeffs)), z, dom)
    Q = _poly(list(reversed(q_coeffs)), z, dom)
    # Lowest terms: a common factor appears e.g. when a stage does not influence y1.
    G = P.gcd(Q)
    if G.degree() > 0:
        P = P.quo(G)
        Q = Q.quo(G)
    q0 = _coeffs(Q)[-1]
    if q0 != dom.one:  # normalise Q(0) = 1 (it is det(I) = 1 before cancellation)
        P = _poly([c / q0 for c in _coeffs(P)], z, dom)
        Q = _poly([c / q0 for c in _coeffs(Q)], z, dom)
    P, Q = _shrink_domain((P, Q))
    return P, Q


def _one_step_only(name: str) -> Callable[[Any], Any]:
    def fail(scheme: Any) -> Any:
        raise SchemeError(
            f"{name} is defined for one-step (Runge–Kutta, Rosenbrock) schemes; {_scheme_name(scheme)!r} is a "
            "linear multistep method: use its characteristic polynomials rho, sigma and the dominant root instead"
        )

    return fail


@functools.singledispatch
def stability_polynomials(scheme: Any) -> tuple[sp.Poly, sp.Poly]:
    """Numerator and denominator ``(P, Q)`` of the stability function, in lowest terms, ``Q(0) = 1``.

    Parameters
    ----------
    scheme : ButcherTableau or RosenbrockTableau
        Any object with fields ``A, b`` (Butcher) or ``alpha, gamma, b`` (Rosenbrock), exact entries.

    Returns
    -------
    (P, Q) : tuple of sympy.Poly in :data:`z`
        Over ``QQ`` when every coefficient is rational, else over the algebraic field of the tableau.

    References
    ----------
    Hairer & Wanner, Solving ODEs II, IV.3 Prop. 3.2 (Runge–Kutta) and IV.7 (Rosenbrock).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> backward_euler = SimpleNamespace(name="be", A=((1,),), b=(1,), c=(1,))
    >>> stability_polynomials(backward_euler)
    (Poly(1, z, domain='QQ'), Poly(1 - z, z, domain='QQ'))
    """
    if register_multistep():
        return stability_polynomials(scheme)
    if is_multistep(scheme):
        return _one_step_only("stability_polynomials")(scheme)  # type: ignore[no-any-return]
    return _stability_polynomials(scheme)  # type: ignore[no-any-return]


def stability_function(scheme: Any) -> sp.Expr:
    """The stability function ``R(z) = P(z)/Q(z)`` in lowest terms, exact, in :data:`z`.

    ``y1 = R(h λ) y0`` for ``y' = λ y``.  See :func:`stability_polynomials` for the formulas and sources.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> trapezoid = SimpleNamespace(name="trapezoid", A=((0, 0), (sp.Rational(1, 2), sp.Rational(1, 2))),
    ...                             b=(sp.Rational(1, 2), sp.Rational(1, 2)))
    >>> stability_function(trapezoid)
    (z/2 + 1)/(1 - z/2)
    """
    P, Q = stability_polynomials(scheme)
    return P.as_expr() / Q.as_expr()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------------
# Poles, E-polynomial, A- and L-stability.
# ----------------------------------------------------------------------------------------------------
def _hurwitz_stable(poly: sp.Poly) -> bool:
    """Whether every zero of the real polynomial ``poly`` lies in the open left half-plane.

    Routh–Hurwitz criterion (Gantmacher, *The Theory of Matrices* II, XV.6): with
    ``poly = a_0 s^n + a_1 s^{n-1} + ... + a_n`` and ``a_0 > 0``, all zeros have negative real part iff
    every leading principal minor ``Δ_1, ..., Δ_n`` of the Hurwitz matrix ``H_{ij} = a_{2j-i}`` is positive.
    Only signs of exact numbers are needed, so the test is exact (degenerate cases, zeros on the axis,
    give some ``Δ_k = 0`` and are correctly reported as not stable).
    """
    n = poly.degree()
    if n <= 0:
        return True
    dom = poly.domain
    coeffs = _coeffs(poly)  # a_0 .. a_n (descending)
    if exact_sign(coeffs[0], dom) < 0:
        coeffs = [-c for c in coeffs]

    def a(k: int) -> Any:
        return coeffs[k] if 0 <= k <= n else dom.zero

    H = [[a(2 * (j + 1) - (i + 1)) for j in range(n)] for i in range(n)]
    for k in range(1, n + 1):
        minor = DomainMatrix([row[:k] for row in H[:k]], (k, k), dom).det()
        if exact_sign(minor, dom) <= 0:
            return False
    return True


def poles_in_right_half_plane(scheme: Any) -> bool:
    """Whether every pole of ``R`` lies in the open right half-plane ``Re z > 0`` (so ``R`` is analytic on
    the closed left half-plane), decided by the Routh–Hurwitz criterion applied to ``Q(-z)``."""
    _, Q = stability_polynomials(scheme)
    return _hurwitz_stable(_reflect(Q))


@functools.singledispatch
def e_polynomial(scheme: Any) -> sp.Poly:
    """The E-polynomial ``E(y) = |Q(iy)|^2 - |P(iy)|^2``, an even real polynomial in :data:`y`.

    Computed as ``(Q(z) Q(-z) - P(z) P(-z))`` at ``z = i y`` (real arithmetic only, since ``P, Q`` have
    real coefficients).  ``|R(iy)| <= 1`` for all real ``y`` iff ``E(y) >= 0`` for all real ``y``
    (Hairer & Wanner II, IV.3, (3.8)); ``E ≡ 0`` means ``|R(iy)| = 1`` on the whole axis (Gauss, trapezoid).

    Returns
    -------
    sympy.Poly in :data:`y` over the field of the tableau.
    """
    if register_multistep():
        return e_polynomial(scheme)
    if is_multistep(scheme):
        return _one_step_only("e_polynomial")(scheme)  # type: ignore[no-any-return]
    return _e_polynomial(scheme)  # type: ignore[no-any-return]


@_register_cache
@_scheme_cache
def _e_polynomial(scheme: Any) -> sp.Poly:
    P, Q = stability_polynomials(scheme)
    dom = P.domain
    even = Q * _reflect(Q) - P * _reflect(P)
    data = one_step_data(scheme)
    coefficients = _coeffs(even)
    degree = len(coefficients) - 1
    out = []
    for i, c in enumerate(coefficients):
        k = degree - i
        if data.snap is not None and _magnitude(c, dom) <= data.snap:
            c = dom.zero  # rounding of an exact zero (decimal tableau)
        # z^(2m) at z = i y is (-1)^m y^(2m); odd powers cancel exactly.
        out.append(-c if k % 4 == 2 else c)
    return _poly(out, y, dom)


def _sturm_positive_root_count(f: sp.Poly) -> int:
    """Number of distinct zeros of ``f`` in ``(0, ∞)``, ``f(0) != 0``, by a Sturm sequence.

    Sturm's theorem: the number of distinct real zeros in ``(a, b]`` is ``V(a) - V(b)``, ``V`` the number of
    sign changes of the Sturm chain; at ``0`` the signs are those of the constant terms, at ``+∞`` those
    of the leading coefficients, both decided exactly by :func:`exact_sign`.  Over ``QQ`` SymPy's exact
    real-root isolation (``Poly.count_roots``) is used instead.
    """
    if f.domain.is_QQ or f.domain.is_ZZ:
        return int(f.count_roots(0, None)) - (1 if _coeffs(f)[-1] == 0 else 0)
    chain = sp.sturm(f)
    dom = f.domain

    def changes(signs: list[int]) -> int:
        signs = [s for s in signs if s != 0]
        return sum(1 for u, v in zip(signs, signs[1:]) if u != v)

    at_zero = [exact_sign(_coeffs(p)[-1], dom) if not p.is_zero else 0 for p in chain]
    at_inf = [exact_sign(_coeffs(p)[0], dom) if not p.is_zero else 0 for p in chain]
    return changes(at_zero) - changes(at_inf)


def _nonnegative_on_positive_halfline(e: sp.Poly) -> bool:
    """Whether the polynomial ``e(w)`` satisfies ``e(w) >= 0`` for every ``w > 0``.

    ``e`` changes sign only at zeros of odd multiplicity, so: take the odd-multiplicity part of the
    square-free factorisation, remove the factor ``w`` (``e(0)`` is checked by the caller), count its zeros
    in ``(0, ∞)`` exactly; if there are none, the sign on ``(0, ∞)`` is the sign of the leading coefficient.
    """
    if e.is_zero:
        return True
    w = e.gen
    _, factors = e.sqf_list()
    odd = sp.Poly(1, w, domain=e.domain)
    for factor, multiplicity in factors:
        if multiplicity % 2 == 1:
            odd = odd * factor
    while odd.degree() > 0 and not _coeffs(odd)[-1]:
        odd = _poly(_coeffs(odd)[:-1], w, e.domain)
    if odd.degree() > 0 and _sturm_positive_root_count(odd) > 0:
        return False
    return exact_sign(_coeffs(e)[0], e.domain) > 0


@_register_cache
@_scheme_cache
def _is_A_stable_one_step(scheme: Any) -> bool:
    P, Q = stability_polynomials(scheme)
    if P.degree() > Q.degree():  # unbounded on every ray, in particular the negative axis
        return False
    if not poles_in_right_half_plane(scheme):
        return False
    E = e_polynomial(scheme)
    if E.is_zero:
        return True
    # E is even: write it in w = y^2 so that "for all real y" becomes "for all w >= 0".
    half = _poly(_coeffs(E)[::2], sp.Symbol("w"), E.domain)
    if exact_sign(_coeffs(half)[-1], half.domain) < 0:
        return False
    return _nonnegative_on_positive_halfline(half)


@functools.singledispatch
def is_A_stable(scheme: Any) -> bool:
    """Whether the scheme is A-stable, decided exactly.

    One-step schemes: ``R`` has no pole in ``Re z <= 0`` (Routh–Hurwitz on ``Q(-z)``) and
    ``E(y) >= 0`` for all real ``y`` (exact real-root counting), Hairer & Wanner II, IV.3, Prop. 3.8.
    Multistep methods: delegated to the multistep module (stability region contains ``Re z <= 0``).
    """
    if register_multistep():
        return is_A_stable(scheme)
    return _is_A_stable_one_step(scheme)  # type: ignore[no-any-return]


@functools.singledispatch
def R_infinity(scheme: Any) -> sp.Expr:
    """``R(∞) = lim_{|z|→∞} R(z)``: ``0`` if ``deg P < deg Q``, the ratio of leading coefficients if the
    degrees are equal, and ``sympy.zoo`` (complex infinity) if ``deg P > deg Q`` (explicit schemes)."""
    if register_multistep():
        return R_infinity(scheme)
    if is_multistep(scheme):
        return _one_step_only("R_infinity")(scheme)  # type: ignore[no-any-return]
    P, Q = stability_polynomials(scheme)
    if P.degree() < Q.degree():
        return sp.S.Zero
    if P.degree() > Q.degree():
        return sp.zoo
    return one_step_data(scheme).present(P.domain.to_sympy(_coeffs(P)[0] / _coeffs(Q)[0]))


@functools.singledispatch
def is_L_stable(scheme: Any) -> bool:
    """A-stable and ``R(∞) = 0`` (Hairer & Wanner II, IV.3, Def. 3.7); multistep: delegated."""
    if register_multistep():
        return is_L_stable(scheme)
    return bool(is_A_stable(scheme) and R_infinity(scheme) == 0)


# ----------------------------------------------------------------------------------------------------
# Stiff decay.
# ----------------------------------------------------------------------------------------------------
def _stiff_limit_weights(data: OneStepData) -> list[Any] | None:
    """``w = lim_{z→∞} (-z b^T (I - z A)^{-1}) = lim_{ε→0} b^T (A - ε I)^{-1}``, or ``None`` if infinite.

    For ``y' = λ (y - g(t))`` the Runge–Kutta step is ``y1 = R(z) y0 - z b^T (I - zA)^{-1} G`` with
    ``G_k = g(t0 + c_k h)``; ``w`` is the weight of each stage's ``g`` value in the limit ``z → -∞``.
    """
    dom = data.domain
    s = data.stages
    A_T = data.M.transpose()
    b_col = DomainMatrix([[bj] for bj in data.b], (s, 1), dom)
    if A_T.det():
        return [row[0] for row in A_T.lu_solve(b_col).to_list()]
    # Singular A (explicit first stage, ESDIRK/Lobatto IIIA): b^T (A - εI)^{-1} = b^T adj(A - εI) / det(A - εI)
    # over the polynomial ring K[ε], exactly; the lowest powers of ε decide the limit ε → 0.
    ring = dom[sp.Symbol("epsilon")]
    eps = ring.gens[0]
    shifted = DomainMatrix(
        [[ring.convert_from(v, dom) - (eps if i == j else ring.zero) for j, v in enumerate(row)] for i, row in enumerate(data.M.to_list())],
        (s, s),
        ring,
    )
    adjugate, det = shifted.adj_det()
    b_ring = DomainMatrix([[ring.convert_from(v, dom) for v in data.b]], (1, s), ring)
    numerators = (b_ring * adjugate).to_list()[0]

    def lowest(poly: Any) -> tuple[int, Any] | None:
        terms = [(k[0], c) for k, c in poly.terms() if c]
        return min(terms, key=lambda t: t[0]) if terms else None

    d_low = lowest(det)
    if d_low is None:  # pragma: no cover - det(A - εI) is a non-zero polynomial in ε
        return None
    weights = []
    for numerator in numerators:
        n_low = lowest(numerator)
        if n_low is None or n_low[0] > d_low[0]:
            weights.append(dom.zero)
        elif n_low[0] < d_low[0]:
            return None
        else:
            weights.append(n_low[1] / d_low[1])
    return weights


@_register_cache
@_scheme_cache
def _has_stiff_decay_one_step(scheme: Any) -> bool:
    if R_infinity(scheme) != 0:
        return False
    data = one_step_data(scheme)
    dom = data.domain
    if data.kind == "rosenbrock":
        # Sufficient condition used for Rosenbrock methods (HW II, VI.4, "stiffly accurate" Rodas-type
        # methods): the last row of beta equals b, so y1 = y0 + sum_j beta_sj k_j is the last stage's
        # implicit value; together with R(∞) = 0 this gives y1 - g(t1) -> 0.
        last = data.M.to_list()[-1]
        return all(data.equal(u, v) for u, v in zip(last, data.b))
    weights = _stiff_limit_weights(data)
    if weights is None:
        return False
    # y1 - g(t1) -> sum_k w_k g(t0 + c_k h) - g(t0 + h): zero for every g iff the weights of the stages
    # at each distinct time vanish, except at c = 1 where they sum to one.
    # Nodes equal up to the snap of a decimal tableau are the same time (exact tableaux: exactly equal).
    groups: list[list[Any]] = []  # [node, total weight]
    for ck, wk in zip(data.c, weights):
        for group in groups:
            if data.equal(group[0], ck):
                group[1] = group[1] + wk
                break
        else:
            groups.append([ck, wk])
    for node, total in groups:
        if not data.equal(total, dom.one if data.equal(node, dom.one) else dom.zero):
            return False
    return any(data.equal(node, dom.one) for node, _ in groups)


@functools.singledispatch
def has_stiff_decay(scheme: Any) -> bool:
    """Stiff decay (Ascher & Petzold 1998, §3.5): ``y1 - g(t1) -> 0`` as ``h λ -> -∞`` on
    ``y' = λ (y - g(t))``, for every ``y0`` and ``g``.

    Runge–Kutta: ``y1 = R(z) y0 + S(z)·G`` with ``S(z)^T = -z b^T (I - zA)^{-1}``; decided exactly from
    ``R(∞) = 0`` and the limit weights ``S(∞)`` (which must put unit mass on the stages at ``c = 1``).
    For invertible ``A`` this is the classical "stiffly accurate and ``R(∞) = 0``".  Rosenbrock: ``R(∞) = 0``
    and the last row of ``beta`` equals ``b``.  Multistep: delegated (BDF methods have it).
    """
    if register_multistep():
        return has_stiff_decay(scheme)
    return _has_stiff_decay_one_step(scheme)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------------
# Order of R as an approximation of exp.
# ----------------------------------------------------------------------------------------------------
@_register_cache
@_scheme_cache
def _stability_order(scheme: Any) -> int:
    P, Q = stability_polynomials(scheme)
    dom = P.domain
    p = _coeffs(P)[::-1]
    q = _coeffs(Q)[::-1]
    # R - exp = (P - Q exp)/Q with Q(0) = 1, so both have the same first non-zero Taylor coefficient.
    # A rational function of type (m, n) approximates exp to order at most m + n (Padé), so a non-zero
    # coefficient appears by degree m + n + 1.
    top = len(p) + len(q)
    snap = one_step_data(scheme).snap
    for k in range(top + 1):
        coefficient = p[k] if k < len(p) else dom.zero
        for j in range(min(k, len(q) - 1) + 1):
            coefficient -= q[j] * dom.convert(sp.Rational(1, sp.factorial(k - j)))
        if coefficient and not (snap is not None and _magnitude(coefficient, dom) <= snap):
            return k - 1
    raise SchemeError(f"R(z) of {_scheme_name(scheme)!r} agrees with exp(z) beyond its Padé bound")  # pragma: no cover


@functools.singledispatch
def stability_order(scheme: Any) -> int:
    """Order ``p`` of ``R(z)`` as an approximation of ``exp(z)``: ``R(z) - e^z = C z^{p+1} + O(z^{p+2})``,
    ``C != 0``.  It is at least the classical order (Hairer & Wanner II, IV.3) and can exceed it (e.g.
    a method whose order is limited by non-linear order conditions)."""
    if register_multistep():
        return stability_order(scheme)
    if is_multistep(scheme):
        return _one_step_only("stability_order")(scheme)  # type: ignore[no-any-return]
    return _stability_order(scheme)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------------
# Multistep versions, registered once ``_multistep`` is importable.
# ----------------------------------------------------------------------------------------------------
def _lmm_first(names: Sequence[str]) -> Callable[..., Any]:
    for name in names:
        try:
            return multistep_function(name)
        except SchemeError:
            continue
    raise SchemeError(f"none of the multistep analysis functions {', '.join(names)} is available")


@on_multistep_class
def _register_lmm_analysis(cls: type) -> None:
    is_A_stable.register(cls)(lambda m: bool(_lmm_first(("lmm_is_A_stable", "is_A_stable"))(m)))

    def _lmm_stiff_decay(m: Any) -> bool:
        try:
            return bool(_lmm_first(("lmm_has_stiff_decay",))(m))
        except SchemeError:
            # rho - z sigma with sigma = beta_k zeta^k (BDF): every root -> 0 as z -> ∞ (Ascher & Petzold §5.2)
            beta = [sp.sympify(v) for v in m.beta]
            return all(v == 0 for v in beta[:-1]) and beta[-1] != 0

    def _lmm_L_stable(m: Any) -> bool:
        try:
            return bool(_lmm_first(("lmm_is_L_stable",))(m))
        except SchemeError:
            # L-stability of a multistep method (HW II, V.1): A-stable and every root of rho - z sigma -> 0
            # as |z| -> ∞, i.e. sigma = beta_k zeta^k (BDF1, BDF2; am1 = backward Euler).
            return bool(is_A_stable(m)) and _lmm_stiff_decay(m)

    is_L_stable.register(cls)(_lmm_L_stable)
    has_stiff_decay.register(cls)(_lmm_stiff_decay)
    for func, name in ((stability_polynomials, "stability_polynomials"), (e_polynomial, "e_polynomial"),
                       (R_infinity, "R_infinity"), (stability_order, "stability_order")):
        func.register(cls)(_one_step_only(name))
