"""Linear multistep methods: exact coefficients and their linear order theory.

A linear ``k``-step method for ``y' = f(t, y)`` is

.. math::

    \\sum_{j=0}^{k} \\alpha_j\\, y_{n+j} = h \\sum_{j=0}^{k} \\beta_j\\, f_{n+j},

described by its generating polynomials ``rho(zeta) = sum_j alpha_j zeta**j`` and
``sigma(zeta) = sum_j beta_j zeta**j`` (Dahlquist 1956; Hairer, Nørsett & Wanner I, III.2).  The method is stored
with the normalisation ``alpha_k = 1`` and exact rational coefficients; the families below are *derived* here from
their defining formulas (not typed in), and the tests compare them with published tables.

Families
--------
``bdf(k)``
    Backward differentiation formulas, ``sum_{j=1}^{k} (1/j) nabla^j y_{n+1} = h f_{n+1}`` (HNW I, III.1).
``adams_bashforth(k)``
    Explicit Adams, ``k`` steps, order ``k``: ``f`` interpolated at ``t_n, ..., t_{n-k+1}`` and integrated over
    ``[t_n, t_{n+1}]`` (HNW I, III.1).
``adams_moulton(p)``
    Implicit Adams **of order p** (the convention of the names ``am1`` ... ``am4``): ``f`` interpolated at the ``p``
    points ``t_{n+1}, t_n, ..., t_{n-p+2}`` and integrated over ``[t_n, t_{n+1}]``.  Hence ``am1`` is backward Euler,
    ``am2`` the trapezoidal rule (one step), and ``amP`` for ``P >= 2`` has ``P - 1`` steps.  HNW I number the same
    methods by steps (their ``k``-step implicit Adams method has order ``k + 1``); ``amP`` here is their
    ``k = P - 1`` method, with ``am1`` their ``k = 0`` formula written as a one-step method.

Order theory (HNW I, III.2): with ``C_0 = sum_j alpha_j`` and, for ``q >= 1``,

.. math::

    C_q = \\sum_{j=0}^{k} \\Big(\\frac{j^q}{q!}\\,\\alpha_j - \\frac{j^{q-1}}{(q-1)!}\\,\\beta_j\\Big),

the method has order ``p`` iff ``C_0 = ... = C_p = 0 != C_{p+1}``; the local error is
``C_{p+1} h^{p+1} y^{(p+1)} + O(h^{p+2})`` and the *error constant* is ``C = C_{p+1} / sigma(1)`` (HNW I, III.2),
which does not depend on how the method is normalised.

References
----------
.. [HNW1] E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., Springer 1993,
   Chapter III.1 (Adams and BDF methods) and III.2 (order).
.. [HW2] E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, Chapter V.
.. [D63] G. Dahlquist, "A special stability problem for linear multistep methods", BIT 3 (1963) 27-43.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import sympy
from sympy import QQ, Poly, Rational, Symbol

from .._errors import SchemeError

__all__ = [
    "LinearMultistepMethod",
    "bdf",
    "adams_bashforth",
    "adams_moulton",
    "rho",
    "sigma",
    "lmm_order_constants",
    "lmm_order",
    "lmm_error_constant",
    "ZETA",
]

#: The variable of the generating polynomials ``rho`` and ``sigma``.
ZETA = Symbol("zeta")

_FAMILY_NAMES = {"bdf": "bdf", "adams-bashforth": "ab", "adams-moulton": "am"}


def _exact(value: object, what: str) -> Rational:
    """``value`` as a SymPy Rational; floats are refused because a typed-in float is not the exact coefficient."""
    if isinstance(value, bool):
        raise SchemeError(f"{what} must be an exact rational number, got the bool {value!r}")
    if isinstance(value, sympy.Rational):
        return value
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if isinstance(value, sympy.Expr) and value.is_Rational:
        return sympy.Rational(value)
    raise SchemeError(
        f"{what} must be an exact rational number (int, fractions.Fraction or sympy.Rational), "
        f"got {value!r} of type {type(value).__name__}"
    )


@dataclass(frozen=True)
class LinearMultistepMethod:
    """A linear ``k``-step method ``sum_j alpha_j y_{n+j} = h sum_j beta_j f_{n+j}`` with exact coefficients.

    Parameters
    ----------
    name : str
        Catalogue name, e.g. ``"bdf3"``, ``"ab2"``, ``"am4"``.
    alpha, beta : sequence of rationals, length ``k + 1``
        Coefficients of ``rho(zeta) = sum_j alpha_j zeta**j`` and ``sigma(zeta) = sum_j beta_j zeta**j``, lowest
        power first, normalised so that ``alpha_k = 1``.  Converted to tuples of ``sympy.Rational``.
    order : int
        The order claimed by the source (checked against the order conditions by the tests, not here).
    family : str
        ``"bdf"``, ``"adams-bashforth"``, ``"adams-moulton"`` or any other non-empty family name.
    reference : str
        The citation of the coefficients.

    Derived attributes
    ------------------
    steps : int
        ``k = len(alpha) - 1``.
    is_explicit : bool
        ``beta_k == 0``.

    Raises
    ------
    SchemeError
        If the coefficients are not exact rationals, the lengths differ, ``alpha_k != 1``, ``alpha_0 = beta_0 = 0``
        (the method would really have fewer steps), the method is not consistent (``rho(1) = 0``,
        ``rho'(1) = sigma(1)``, required for convergence, HNW I, III.4), or ``rho`` and ``sigma`` have a common
        factor (HNW I, III.2 assume irreducibility; a common root would cancel from ``rho/sigma``).
    """

    name: str
    alpha: tuple[Rational, ...]
    beta: tuple[Rational, ...]
    order: int
    family: str
    reference: str = ""
    steps: int = field(init=False)
    is_explicit: bool = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemeError(f"`name` must be a non-empty string, got {self.name!r}")
        if not isinstance(self.family, str) or not self.family:
            raise SchemeError(f"{self.name}: `family` must be a non-empty string, got {self.family!r}")
        if isinstance(self.order, bool) or not isinstance(self.order, numbers.Integral) or self.order < 1:
            raise SchemeError(f"{self.name}: `order` must be a positive integer, got {self.order!r}")
        for label in ("alpha", "beta"):
            value = getattr(self, label)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise SchemeError(f"{self.name}: `{label}` must be a sequence of rationals, got {value!r}")
        alpha = tuple(_exact(a, f"{self.name}: alpha[{j}]") for j, a in enumerate(self.alpha))
        beta = tuple(_exact(b, f"{self.name}: beta[{j}]") for j, b in enumerate(self.beta))
        # Frozen dataclass: the normalised values are stored through object.__setattr__ (as diffrax does).
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "order", int(self.order))
        if len(alpha) != len(beta):
            raise SchemeError(
                f"{self.name}: `alpha` and `beta` must have the same length k + 1, got {len(alpha)} and {len(beta)}"
            )
        if len(alpha) < 2:
            raise SchemeError(f"{self.name}: a multistep method needs at least one step (len(alpha) >= 2)")
        k = len(alpha) - 1
        if alpha[k] != 1:
            raise SchemeError(f"{self.name}: `alpha` must be normalised with alpha[{k}] = 1, got {alpha[k]}")
        if alpha[0] == 0 and beta[0] == 0:
            raise SchemeError(
                f"{self.name}: alpha[0] = beta[0] = 0, so this is a method with fewer than {k} steps; drop the zeros"
            )
        rho_1 = sum(alpha, sympy.Integer(0))
        drho_1 = sum((j * a for j, a in enumerate(alpha)), sympy.Integer(0))
        sigma_1 = sum(beta, sympy.Integer(0))
        if rho_1 != 0 or drho_1 != sigma_1:
            raise SchemeError(
                f"{self.name}: the method is not consistent: rho(1) = {rho_1} (must be 0), "
                f"rho'(1) = {drho_1} must equal sigma(1) = {sigma_1}"
            )
        common = Poly(list(reversed(alpha)), ZETA, domain=QQ).gcd(Poly(list(reversed(beta)), ZETA, domain=QQ))
        if common.degree() > 0:
            raise SchemeError(
                f"{self.name}: rho and sigma have the common factor {common.as_expr()}; cancel it (fewer steps)"
            )
        object.__setattr__(self, "steps", k)
        object.__setattr__(self, "is_explicit", beta[k] == 0)


# ---------------------------------------------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------------------------------------------


def _check_k(k: object, name: str, minimum: int = 1) -> int:
    """Validate an integer family parameter at the boundary, naming it in the message."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise SchemeError(f"`{name}` must be an integer >= {minimum}, got {k!r} of type {type(k).__name__}")
    if k < minimum:
        raise SchemeError(f"`{name}` must be an integer >= {minimum}, got {k}")
    return int(k)


def _from_polynomials(rho_poly: Poly, sigma_poly: Poly, k: int) -> tuple[tuple[Rational, ...], tuple[Rational, ...]]:
    """Coefficient tuples (lowest power first, length ``k+1``), divided by the ``zeta**k`` coefficient of rho."""
    lead = rho_poly.coeff_monomial(ZETA**k)
    alpha = tuple(sympy.Rational(rho_poly.coeff_monomial(ZETA**j) / lead) for j in range(k + 1))
    beta = tuple(sympy.Rational(sigma_poly.coeff_monomial(ZETA**j) / lead) for j in range(k + 1))
    return alpha, beta


def bdf(k: int) -> LinearMultistepMethod:
    """The ``k``-step backward differentiation formula (BDF``k``), order ``k``, derived exactly.

    Defining formula (HNW I, III.1): differentiate the polynomial interpolating
    ``y_{n+1}, y_n, ..., y_{n+1-k}`` at ``t_{n+1}``,

    .. math:: \\sum_{j=1}^{k} \\frac{1}{j} \\nabla^j y_{n+1} = h f_{n+1},
        \\qquad \\nabla^j y_{n+1} = \\sum_{i=0}^{j} (-1)^i \\binom{j}{i} y_{n+1-i}.

    With ``y_{n+1-i} -> zeta**(k-i)`` this is ``rho(zeta) = sum_j (1/j) (zeta - 1)**j zeta**(k-j)`` and
    ``sigma(zeta) = zeta**k``, then divided by ``alpha_k = sum_{j<=k} 1/j`` so that ``alpha_k = 1``.
    BDF1-BDF6 are zero-stable; BDF``k`` for ``k >= 7`` is constructed but is not (Cryer 1972; HNW I, III.3).

    Parameters
    ----------
    k : int
        Number of steps, ``k >= 1``.

    Raises
    ------
    SchemeError
        If ``k`` is not an integer ``>= 1``.
    """
    k = _check_k(k, "k")
    z = ZETA
    rho_expr = sum((sympy.Rational(1, j) * (z - 1) ** j * z ** (k - j) for j in range(1, k + 1)), sympy.Integer(0))
    alpha, beta = _from_polynomials(Poly(rho_expr, z, domain=QQ), Poly(z**k, z, domain=QQ), k)
    return LinearMultistepMethod(
        name=f"bdf{k}",
        alpha=alpha,
        beta=beta,
        order=k,
        family="bdf",
        reference="Hairer, Nørsett & Wanner, Solving ODEs I, 2nd ed. (1993), III.1; "
        "Curtiss & Hirschfelder (1952); Gear (1971)",
    )


def _integrated_lagrange_weights(nodes: Sequence[int]) -> list[Rational]:
    """``w_i = int_0^1 l_i(s) ds`` for the Lagrange basis ``l_i`` on the integer ``nodes`` (step units).

    This is "integrate the interpolation polynomial" of the Adams methods (HNW I, III.1):
    ``y_{n+1} - y_n = int_{t_n}^{t_{n+1}} p(t) dt`` with ``t = t_n + s h``.
    """
    s = Symbol("s")
    weights = []
    for i, node in enumerate(nodes):
        basis = sympy.Integer(1)
        for m, other in enumerate(nodes):
            if m != i:
                basis *= (s - other) / sympy.Integer(node - other)
        weights.append(sympy.Rational(sympy.integrate(sympy.expand(basis), (s, 0, 1))))
    return weights


def adams_bashforth(k: int) -> LinearMultistepMethod:
    """The explicit ``k``-step Adams–Bashforth method (AB``k``), order ``k``, derived exactly.

    ``y_{n+1} = y_n + h sum_{i=0}^{k-1} w_i f_{n-i}``, ``w_i = int_0^1 l_i(s) ds`` with ``l_i`` the Lagrange basis
    on the nodes ``s = 0, -1, ..., -(k-1)`` (HNW I, III.1).  As generating polynomials:
    ``rho = zeta**k - zeta**(k-1)``, ``sigma = sum_i w_i zeta**(k-1-i)``.

    Parameters
    ----------
    k : int
        Number of steps (= order), ``k >= 1``; ``adams_bashforth(1)`` is the explicit Euler method.

    Raises
    ------
    SchemeError
        If ``k`` is not an integer ``>= 1``.
    """
    k = _check_k(k, "k")
    weights = _integrated_lagrange_weights([-i for i in range(k)])
    alpha = [sympy.Integer(0)] * (k + 1)
    alpha[k], alpha[k - 1] = sympy.Integer(1), sympy.Integer(-1)
    beta = [sympy.Integer(0)] * (k + 1)
    for i, w in enumerate(weights):
        beta[k - 1 - i] = w
    return LinearMultistepMethod(
        name=f"ab{k}",
        alpha=tuple(alpha),
        beta=tuple(beta),
        order=k,
        family="adams-bashforth",
        reference="Hairer, Nørsett & Wanner, Solving ODEs I, 2nd ed. (1993), III.1 (explicit Adams methods); "
        "Bashforth & Adams (1883)",
    )


def adams_moulton(k: int) -> LinearMultistepMethod:
    """The implicit Adams–Moulton method **of order k** (AM``k``), derived exactly.

    Convention: the number in ``amK`` is the order, as for ``bdfK`` and ``abK``.  ``f`` is interpolated at the ``k``
    nodes ``s = 1, 0, -1, ..., -(k-2)`` (``t_{n+1}, t_n, ...``) and integrated over ``[0, 1]`` (HNW I, III.1):
    ``y_{n+1} = y_n + h sum_i w_i f_{n+1-i}``.

    ======  ======  =====================  =====================================
    name    order   steps                  HNW I numbering (steps, order k + 1)
    ======  ======  =====================  =====================================
    am1     1       1 (backward Euler)     k = 0
    am2     2       1 (trapezoidal rule)   k = 1
    am3     3       2                      k = 2
    am4     4       3                      k = 3
    ======  ======  =====================  =====================================

    Parameters
    ----------
    k : int
        The order, ``k >= 1``; the method has ``max(k - 1, 1)`` steps.

    Raises
    ------
    SchemeError
        If ``k`` is not an integer ``>= 1``.
    """
    k = _check_k(k, "k")
    weights = _integrated_lagrange_weights([1 - i for i in range(k)])  # nodes 1, 0, -1, ..., -(k-2)
    steps = max(k - 1, 1)
    alpha = [sympy.Integer(0)] * (steps + 1)
    alpha[steps], alpha[steps - 1] = sympy.Integer(1), sympy.Integer(-1)
    beta = [sympy.Integer(0)] * (steps + 1)
    for i, w in enumerate(weights):  # f_{n+1-i} multiplies zeta**(steps - i)
        beta[steps - i] = w
    return LinearMultistepMethod(
        name=f"am{k}",
        alpha=tuple(alpha),
        beta=tuple(beta),
        order=k,
        family="adams-moulton",
        reference="Hairer, Nørsett & Wanner, Solving ODEs I, 2nd ed. (1993), III.1 (implicit Adams methods, "
        f"their k = {k - 1}); Moulton (1926)",
    )


# ---------------------------------------------------------------------------------------------------------------
# Generating polynomials and linear order theory
# ---------------------------------------------------------------------------------------------------------------


def rho(method: LinearMultistepMethod, zeta: Symbol = ZETA) -> Poly:
    """``rho(zeta) = sum_j alpha_j zeta**j`` as an exact ``sympy.Poly`` over QQ (``.as_expr()`` for an Expr)."""
    return Poly(list(reversed(method.alpha)), zeta, domain=QQ)


def sigma(method: LinearMultistepMethod, zeta: Symbol = ZETA) -> Poly:
    """``sigma(zeta) = sum_j beta_j zeta**j`` as an exact ``sympy.Poly`` over QQ (``.as_expr()`` for an Expr)."""
    return Poly(list(reversed(method.beta)), zeta, domain=QQ)


def lmm_order_constants(method: LinearMultistepMethod, q_max: int) -> list[Rational]:
    """The constants ``C_0, ..., C_{q_max}`` of the linear difference operator (HNW I, III.2).

    ``L(y, t, h) = sum_j (alpha_j y(t + j h) - h beta_j y'(t + j h)) = sum_q C_q h^q y^{(q)}(t)``, so
    ``C_0 = sum_j alpha_j`` and ``C_q = sum_j (j^q alpha_j / q! - j^(q-1) beta_j / (q-1)!)`` for ``q >= 1``
    (with ``0**0 = 1``).
    """
    q_max = _check_k(q_max, "q_max", minimum=0)
    out = [sum(method.alpha, sympy.Integer(0))]
    for q in range(1, q_max + 1):
        c = sympy.Integer(0)
        for j, (a, b) in enumerate(zip(method.alpha, method.beta)):
            jj = sympy.Integer(j)
            c += jj**q * a / sympy.factorial(q) - jj ** (q - 1) * b / sympy.factorial(q - 1)
        out.append(sympy.Rational(c))
    return out


def lmm_order(method: LinearMultistepMethod) -> int:
    """The order ``p``: ``C_0 = ... = C_p = 0 != C_{p+1}`` (exact rational arithmetic).

    A ``k``-step method has at most order ``2k`` (``2k + 1`` linear conditions on ``2k + 1`` free coefficients,
    HNW I, III.3), so ``C_q`` is examined up to ``q = 2k + 1``.
    """
    constants = lmm_order_constants(method, 2 * method.steps + 1)
    for q, c in enumerate(constants):
        if c != 0:
            return q - 1  # -1 would mean not even C_0 = 0; construction already guarantees consistency
    raise SchemeError(f"{method.name}: all C_q vanish up to q = {2 * method.steps + 1}, impossible for rho != 0")


def lmm_error_constant(method: LinearMultistepMethod) -> Rational:
    """The error constant ``C = C_{p+1} / sigma(1)`` (HNW I, III.2).

    It is independent of the normalisation of the method (``C_{p+1}`` and ``sigma(1)`` scale together), which is
    why this and not the raw ``C_{p+1}`` is returned; ``lmm_order_constants`` gives ``C_{p+1}`` with the
    normalisation ``alpha_k = 1`` (Lambert's convention) when that is wanted.  For BDF``k`` it equals
    ``-1/(k+1)``; for Adams methods ``sigma(1) = 1``.
    """
    p = lmm_order(method)
    c_next = lmm_order_constants(method, p + 1)[p + 1]
    return sympy.Rational(c_next / sum(method.beta, sympy.Integer(0)))
