"""Exponential Rosenbrock methods: the linear part integrated exactly, so ``R(z) = e^z``.

With ``J = f_y(t_n, y_n)`` and ``v = f_t(t_n, y_n)`` (Hochbruck, Ostermann & Schweitzer 2009)::

    exprb-euler:  y_{n+1} = y_n + h φ1(hJ) f(t_n, y_n) + h² φ2(hJ) v                       (order 2)
    exprb32:      U = (the exprb-euler value),  D = f(t_n + h, U) - f(t_n, y_n) - J (U - y_n) - h v,
                  y_{n+1} = U + 2 h φ3(hJ) D                                               (order 3)

with ``φ1(x) = (e^x - 1)/x``, ``φ2(x) = (e^x - 1 - x)/x²``, ``φ3(x) = (e^x - 1 - x - x²/2)/x³``.  The difference
``2 h φ3(hJ) D`` is the embedded error estimate of the pair (order 3 against 2), which both compiled methods use.

On ``y' = λ y`` the Jacobian is ``λ`` and ``D = 0``, so ``y1 = (1 + z φ1(z)) y0 = e^z y0``: the *stability function
is the exponential itself*, not a rational function.  Consequences for the analysis functions of
:mod:`symsens.schemes` (registered here for :class:`ExponentialScheme`):

* ``is_A_stable`` is ``True`` (``|e^z| <= 1`` on ``Re z <= 0``, no poles);
* ``stability_polynomials``, ``stability_function``, ``e_polynomial``, ``R_infinity``, ``is_L_stable``,
  ``stability_order`` and ``decay_asymptotics`` raise :class:`~symsens._errors.SchemeError` saying why: ``e^z`` is
  not rational, has no limit at ``z = ∞`` (``|e^{iy}| = 1``, so L-stability in the sense of Hairer–Wanner, which
  asks for ``lim R(z) = 0`` as ``|z| → ∞``, does not apply), and ``R, R', z R'`` decay like ``e^z``, faster than any
  power along the negative axis: there is no power law to report.  :func:`exponential_stability_function` returns
  ``exp(z)``;
* the one-step sensitivity is the exact one: ``dy1/dp = h λ'(p) e^z y0`` and after ``n`` steps
  ``n h λ' e^{nz} y0 = t e^{λ t} λ' y0``.

The schemes are reachable with ``get_scheme("exprb-euler")`` / ``get_scheme("exprb32")`` but are not listed by
``scheme_names()``, which enumerates the rational (Runge–Kutta, Rosenbrock, multistep) catalogue that the exact
stability analysis covers.

References
----------
M. Hochbruck, A. Ostermann, J. Schweitzer, "Exponential Rosenbrock-type methods", SIAM J. Numer. Anal. 47 (2009)
786-803 (exponential Rosenbrock–Euler; exprb32, Sect. 5.1).
M. Hochbruck, A. Ostermann, "Exponential integrators", Acta Numerica 19 (2010) 209-286 (φ-functions, Sect. 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .._errors import SchemeError
from . import _analysis, _decay

__all__ = [
    "ExponentialScheme",
    "exprb_euler",
    "exprb32",
    "exponential_stability_function",
    "phi",
    "EXPONENTIAL_SCHEMES",
]

#: Names of the exponential schemes, in catalogue order (not part of ``scheme_names()``).
EXPONENTIAL_SCHEMES: tuple[str, ...] = ("exprb-euler", "exprb32")


@dataclass(frozen=True)
class ExponentialScheme:
    """An exponential Rosenbrock method: coefficients are φ-functions of ``hJ``, not numbers.

    Attributes
    ----------
    name : str
    order : int
        Classical order on smooth problems (Hochbruck, Ostermann & Schweitzer 2009).
    embedded_order : int
        Order of the embedded solution the error estimate compares against.
    stages : int
    propagates_higher : bool
        ``True`` for exprb32 (step with the order-3 value), ``False`` for exprb-euler (order 2).
    reference : str
    """

    name: str
    order: int
    embedded_order: int
    stages: int
    propagates_higher: bool
    reference: str
    family: str = "exponential"

    def __post_init__(self) -> None:
        if self.order < 1 or self.stages < 1:
            raise SchemeError(f"exponential scheme {self.name!r}: order and stages must be positive")

    @property
    def stability_expression(self) -> sp.Expr:
        """``R(z) = exp(z)``: the linear part is integrated exactly."""
        return sp.exp(_analysis.z)


_HOS2009 = (
    "M. Hochbruck, A. Ostermann, J. Schweitzer, Exponential Rosenbrock-type methods, SIAM J. Numer. Anal. 47 "
    "(2009) 786-803"
)


def exprb_euler() -> ExponentialScheme:
    """Exponential Rosenbrock–Euler, order 2 (Hochbruck, Ostermann & Schweitzer 2009, (2.6))."""
    return ExponentialScheme("exprb-euler", order=2, embedded_order=3, stages=1, propagates_higher=False,
                             reference=_HOS2009 + ", exponential Rosenbrock-Euler")


def exprb32() -> ExponentialScheme:
    """exprb32: order 3 with the exponential Rosenbrock–Euler value embedded (Hochbruck et al. 2009, Sect. 5.1)."""
    return ExponentialScheme("exprb32", order=3, embedded_order=2, stages=2, propagates_higher=True,
                             reference=_HOS2009 + ", Sect. 5.1 (exprb32)")


def exponential_stability_function(scheme: ExponentialScheme) -> sp.Expr:
    """``exp(z)`` for an exponential scheme (its ``R`` on ``y' = λ y``); SchemeError for anything else."""
    if not isinstance(scheme, ExponentialScheme):
        raise SchemeError(f"{scheme!r} is not an exponential scheme")
    return scheme.stability_expression


def phi(k: int, x: sp.Expr | None = None) -> sp.Expr:
    """``φ_k(x) = (e^x - sum_{j<k} x^j/j!) / x^k`` (``φ_0 = exp``), exact, in ``x`` (default the symbol ``z``)."""
    if int(k) != k or k < 0:
        raise SchemeError(f"`k` must be a non-negative integer, got {k!r}")
    x = _analysis.z if x is None else x
    return (sp.exp(x) - sum((x**j / sp.factorial(j) for j in range(k)), sp.S.Zero)) / x**k


# ----------------------------------------------------------------------------------------------------
# The analysis functions: what holds for R(z) = e^z, and clear errors for what does not apply.
# ----------------------------------------------------------------------------------------------------
def _not_rational(what: str):  # type: ignore[no-untyped-def]
    def fail(scheme: ExponentialScheme) -> object:
        raise SchemeError(
            f"{what} does not apply to {scheme.name!r}: an exponential integrator has R(z) = exp(z) on the linear "
            "part, which is not a rational function (use symsens.schemes._exponential.exponential_stability_function)"
        )

    return fail


def _no_limit(what: str):  # type: ignore[no-untyped-def]
    def fail(scheme: ExponentialScheme) -> object:
        raise SchemeError(
            f"{what} is not defined for {scheme.name!r}: R(z) = exp(z) has no limit as |z| -> infinity "
            "(|exp(iy)| = 1 on the imaginary axis; along the negative axis it decays faster than any power)"
        )

    return fail


def _no_power_law(scheme: ExponentialScheme) -> object:
    raise SchemeError(
        f"decay_asymptotics: {scheme.name!r} has R(z) = exp(z), so R, R' and z R' all decay like exp(z) as "
        "z -> -infinity, faster than any power: there is no power law, and the discrete sensitivity equals the exact "
        "t exp(lambda t)"
    )


def _stability_order(scheme: ExponentialScheme) -> object:
    raise SchemeError(
        f"stability_order: {scheme.name!r} has R(z) = exp(z) exactly (the linear part is integrated exactly); "
        "its order is that of the nonlinear terms, scheme.order"
    )


_analysis.stability_polynomials.register(ExponentialScheme)(_not_rational("stability_polynomials"))
_analysis.e_polynomial.register(ExponentialScheme)(_not_rational("e_polynomial"))
_analysis.R_infinity.register(ExponentialScheme)(_no_limit("R_infinity"))
_analysis.is_L_stable.register(ExponentialScheme)(_no_limit("is_L_stable (R(infinity) = 0)"))
_analysis.has_stiff_decay.register(ExponentialScheme)(_no_limit("has_stiff_decay (R(infinity) = 0)"))
_analysis.is_A_stable.register(ExponentialScheme)(lambda scheme: True)
_analysis.stability_order.register(ExponentialScheme)(_stability_order)
_decay.decay_asymptotics.register(ExponentialScheme)(_no_power_law)
