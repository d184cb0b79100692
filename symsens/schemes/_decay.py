"""Asymptotics of ``R``, ``R'`` and ``z R'`` at infinity, and the closed-form sensitivity laws.

Why these three functions.  For ``y' = λ(p) y`` with ``z = h λ``, one step of a one-step method gives
``y1 = R(z) y0``, hence (chain rule, ``dz/dp = h λ'(p)``)::

    dy1/dp = h λ'(p) R'(z) y0                                   (one step)
    dy_n/dp = n h λ'(p) R(z)^(n-1) R'(z) y0                      (n steps, y_n = R(z)^n y0)
    exact:   d/dp [e^{λ t} y0] = t e^{λ t} λ'(p) y0,  t = n h    (so R^n ↔ e^{nz}, n R^{n-1} R' ↔ n e^{nz})

and the *relative* sensitivity to a rate, ``dy1/d(log λ) = z R'(z) y0``, is the quantity that decides whether a
gradient with respect to a parameter driving a fast mode survives (Fronk & Petzold 2025).

Laurent expansion at infinity.  For a rational ``R = P/Q`` with ``deg P = m``, ``deg Q = n``:

* ``m < n`` (L-stable type): ``R ~ (p_m/q_n) z^{m-n}``, ``R' ~ (m-n)(p_m/q_n) z^{m-n-1}``,
  ``z R' ~ (m-n)(p_m/q_n) z^{m-n}``;  e.g. Radau IIA (``m - n = -1``): ``z R' ~ -a/z``;
  Lobatto IIIC (``m - n = -2``): ``z R' ~ -2a/z^2``;
* ``m = n`` (``R(∞) = p_m/q_n ≠ 0``): ``R = R(∞) + a/z + O(z^{-2})``, ``R' ~ -a/z^2``, ``z R' ~ -a/z``
  (if ``a = 0`` the next non-zero term decides, which :func:`decay_asymptotics` finds exactly);
* ``m > n`` (explicit): polynomial growth ``R ~ p_m z^m``, ``R' ~ m p_m z^{m-1}``.

Cauchy's estimate (the bound of Fronk & Petzold): if ``|R| <= 1`` on ``Re z <= 0`` (A-stability) then for
``|arg(-z)| <= π/2 - θ`` the disc of radius ``|z| sin θ`` about ``z`` lies in the left half-plane, so
``|R'(z)| <= 1/(|z| sin θ)`` — see :func:`cauchy_bound`.  For rational ``R`` the true decay is faster
(``|z|^-2`` or better); the ``|z|^-1`` bound is what bounded analytic functions in general can achieve.

References
----------
E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, IV.3.
C. Fronk, L. Petzold, "The Vanishing Gradient Problem for Stiff Neural Differential Equations", arXiv:2508.01519 (2025).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from .._errors import SchemeError
from ._analysis import (
    _register_cache,
    _scheme_cache,
    is_multistep,
    multistep_function,
    on_multistep_class,
    one_step_data,
    register_multistep,
    stability_polynomials,
    z,
)

__all__ = [
    "h",
    "n",
    "p",
    "y0",
    "lam",
    "decay_asymptotics",
    "stability_derivative",
    "one_step_sensitivity",
    "n_step_sensitivity",
    "n_step_decay",
    "exact_sensitivity",
    "sensitivity_ratio",
    "sensitivity_ratio_numpy",
    "stability_numpy",
    "cauchy_bound",
]

#: Step size, number of steps, parameter, initial value and the rate function ``λ(p)``.
h = sp.Symbol("h", positive=True)
n = sp.Symbol("n", positive=True, integer=True)
p = sp.Symbol("p", real=True)
y0 = sp.Symbol("y0")
lam = sp.Function("lambda")

DecayTerm = tuple[sp.Expr, sp.Expr]


def _leading_term(num: sp.Poly, den: sp.Poly) -> DecayTerm:
    """First non-zero term ``c z^e`` of the Laurent expansion of ``num/den`` at ``z = ∞`` (exact).

    It is ``(LC(num)/LC(den)) z^(deg num - deg den)``; ``(0, 0)`` stands for the zero function.
    """
    if num.is_zero:
        return sp.S.Zero, sp.S.Zero
    dom = num.domain
    # divide in the number field: the result is canonical (a polynomial in the field's generator)
    coefficient = dom.to_sympy(num.rep.to_list()[0] / den.rep.to_list()[0])
    return coefficient, sp.Integer(num.degree() - den.degree())


@_register_cache
@_scheme_cache
def _derivative_polynomials(scheme: Any) -> tuple[sp.Poly, sp.Poly]:
    """``(N, Q^2)`` with ``R' = N/Q^2``, ``N = P'Q - PQ'`` computed exactly (no cancellation at large z)."""
    P, Q = stability_polynomials(scheme)
    dom = P.domain.unify(Q.domain)
    P = P.set_domain(dom)
    Q = Q.set_domain(dom)
    return P.diff(z) * Q - P * Q.diff(z), Q * Q


@functools.singledispatch
def decay_asymptotics(scheme: Any) -> dict[str, DecayTerm]:
    """Leading terms at infinity, exact.

    One-step schemes: ``{"R": (c, e), "dR": (c, e), "zdR": (c, e)}``, each the first non-zero term
    ``c z^e`` of the Laurent expansion of ``R(z)``, ``R'(z)``, ``z R'(z)`` at ``z = ∞`` (valid along every
    ray, in particular ``z → -∞``).  Examples: backward Euler ``R = 1/(1-z)``: ``R ~ -z^-1``,
    ``R' ~ z^-2``, ``zR' ~ z^-1``; Gauss-2: ``R ~ 1``, ``R' ~ -12 z^-2``, ``zR' ~ -12 z^-1``.

    Multistep methods: ``{"root": (c, e), "zdroot": (c, e)}`` with ``|ζ(z)| ~ c |z|^e`` for the dominant
    root of ``ρ(ζ) - z σ(ζ)`` as ``z → -∞`` and ``|z ζ'(z)| ~ c |z|^e`` (from the multistep module).
    """
    if register_multistep():
        return decay_asymptotics(scheme)
    if is_multistep(scheme):  # pragma: no cover - reached only when the class exists but did not register
        return _lmm_decay(scheme)
    return _one_step_decay(scheme)  # type: ignore[no-any-return]


@_register_cache
@_scheme_cache
def _one_step_decay(scheme: Any) -> dict[str, DecayTerm]:
    P, Q = stability_polynomials(scheme)
    N, Q2 = _derivative_polynomials(scheme)
    data = one_step_data(scheme)
    R_term = _leading_term(P, Q)
    dR_term = _leading_term(N, Q2)
    zdR_term = (dR_term[0], dR_term[1] + 1) if dR_term[0] != 0 else dR_term
    return {key: (data.present(c), e) for key, (c, e) in (("R", R_term), ("dR", dR_term), ("zdR", zdR_term))}


def _lmm_decay(method: Any) -> dict[str, DecayTerm]:
    root = multistep_function("lmm_root_decay")(method)
    out = {"root": (sp.sympify(root[0]), sp.sympify(root[1]))}
    try:
        sens = multistep_function("lmm_root_sensitivity_decay")(method)
        out["zdroot"] = (sp.sympify(sens[0]), sp.sympify(sens[1]))
    except SchemeError:
        pass
    return out


@on_multistep_class
def _register_lmm_decay(cls: type) -> None:
    decay_asymptotics.register(cls)(_lmm_decay)


def _require_one_step(scheme: Any, what: str) -> None:
    register_multistep()
    if is_multistep(scheme):
        raise SchemeError(
            f"{what} is the one-step law y_n = R(z)^n y0; for the multistep method {getattr(scheme, 'name', scheme)!r} "
            "use the dominant root zeta(z) of rho - z sigma (decay_asymptotics gives its law)"
        )


def stability_derivative(scheme: Any) -> sp.Expr:
    """``R'(z) = (P'Q - PQ')/Q^2`` as an exact expression in :data:`z`."""
    _require_one_step(scheme, "stability_derivative")
    N, Q2 = _derivative_polynomials(scheme)
    return N.as_expr() / Q2.as_expr()  # type: ignore[no-any-return]


def one_step_sensitivity(scheme: Any) -> sp.Expr:
    """``dy1/dp = h λ'(p) R'(z) y0`` for ``y' = λ(p) y``, ``z = h λ(p)`` (symbols :data:`h`, :data:`y0`,
    :data:`p`, function :data:`lam`; ``z`` kept as the symbol :data:`~symsens.schemes._analysis.z`)."""
    return h * sp.Derivative(lam(p), p) * stability_derivative(scheme) * y0  # type: ignore[no-any-return]


def n_step_sensitivity(scheme: Any, steps: int | sp.Expr = n) -> sp.Expr:
    """``dy_n/dp = n h λ'(p) R(z)^(n-1) R'(z) y0`` after ``steps`` equal steps (``steps`` an int or symbol)."""
    _require_one_step(scheme, "n_step_sensitivity")
    P, Q = stability_polynomials(scheme)
    R = P.as_expr() / Q.as_expr()
    steps = sp.sympify(steps)
    return steps * h * sp.Derivative(lam(p), p) * R ** (steps - 1) * stability_derivative(scheme) * y0  # type: ignore[no-any-return]


def n_step_decay(scheme: Any, steps: int) -> DecayTerm:
    """Leading term ``c z^e`` at infinity of ``n R(z)^(n-1) R'(z)``, the n-step sensitivity over ``h λ' y0``.

    Leading terms multiply, so with ``R ~ r z^a`` and ``R' ~ d z^b``: ``c = n r^(n-1) d``, ``e = a (n-1) + b``.
    Two regimes (Hairer & Wanner II, IV.3 for the Laurent terms):

    * ``R(∞) ≠ 0`` (A- but not L-stable): ``e = -2`` for every ``n`` — the sensitivity does not decay further
      with the number of steps, and with ``|R(∞)| = 1`` (Gauss, trapezoid) it even grows like ``n``;
    * ``R ~ r z^-m`` (L-stable): ``e = -(m n + 1)`` — each extra step multiplies by another ``r/z``.
    """
    _require_one_step(scheme, "n_step_decay")
    if int(steps) < 1:
        raise SchemeError(f"`steps` must be a positive integer, got {steps!r}")
    laws = _one_step_decay(scheme)
    (r, a), (d, b) = laws["R"], laws["dR"]
    steps = int(steps)
    if d == 0:
        return sp.S.Zero, sp.S.Zero
    return sp.radsimp(steps * r ** (steps - 1) * d), a * (steps - 1) + b


def exact_sensitivity(steps: int | sp.Expr = n) -> sp.Expr:
    """The exact ``d/dp [e^{λ t} y0] = t e^{λ t} λ'(p) y0`` at ``t = n h``, written with ``λ t = n z``."""
    steps = sp.sympify(steps)
    return steps * h * sp.exp(steps * z) * sp.Derivative(lam(p), p) * y0  # type: ignore[no-any-return]


def sensitivity_ratio(scheme: Any, at: sp.Expr | complex | float = z, steps: int | sp.Expr = n) -> sp.Expr:
    """Numerical over exact sensitivity, ``R(z)^(n-1) R'(z) / e^{n z}`` (``h``, ``λ'``, ``y0`` cancel).

    ``1`` means the scheme's gradient is exact; ``→ 0`` the gradient vanishes faster than the truth; ``→ ∞`` it
    decays more slowly than the (exponentially small) truth.  ``at`` and ``steps`` may be symbols or numbers.
    """
    _require_one_step(scheme, "sensitivity_ratio")
    P, Q = stability_polynomials(scheme)
    R = P.as_expr() / Q.as_expr()
    steps = sp.sympify(steps)
    ratio = R ** (steps - 1) * stability_derivative(scheme) * sp.exp(-steps * z)
    return ratio.subs(z, sp.sympify(at)) if sp.sympify(at) != z else ratio  # type: ignore[no-any-return]


def _float_coefficients(poly: sp.Poly) -> np.ndarray:
    return np.array([complex(sp.N(c, 20)) for c in poly.all_coeffs()]).real.astype(float)


def stability_numpy(scheme: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(R, dR)`` as NumPy functions of (real or complex) ``z``; floats made once from the exact coefficients.

    ``dR`` evaluates the exact numerator ``N = P'Q - PQ'`` so there is no cancellation at large ``|z|``.
    """
    _require_one_step(scheme, "stability_numpy")
    P, Q = stability_polynomials(scheme)
    N, Q2 = _derivative_polynomials(scheme)
    p_c, q_c, n_c, q2_c = (_float_coefficients(poly) for poly in (P, Q, N, Q2))

    def R(zz: Any) -> Any:
        zz = np.asarray(zz)
        return np.polyval(p_c, zz) / np.polyval(q_c, zz)

    def dR(zz: Any) -> Any:
        zz = np.asarray(zz)
        return np.polyval(n_c, zz) / np.polyval(q2_c, zz)

    return R, dR


def sensitivity_ratio_numpy(scheme: Any) -> Callable[[Any, Any], Any]:
    """``ratio(z, n) = R(z)^(n-1) R'(z) e^{-n z}`` as a vectorised NumPy function.

    Evaluated as ``exp((n-1) log R + log R' - n z)`` with complex logarithms so that neither the exponentially
    small exact sensitivity nor ``R^(n-1)`` underflows before the division; the result overflows to ``inf``
    only when the ratio itself exceeds the double range.  Real input gives real output.
    """
    R, dR = stability_numpy(scheme)

    def ratio(zz: Any, steps: Any) -> Any:
        zz = np.asarray(zz)
        steps = np.asarray(steps)
        zc = zz.astype(complex)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            log_value = (steps - 1) * np.log(R(zc)) + np.log(dR(zc)) - steps * zc
            value = np.exp(log_value)
        if np.isrealobj(zz):
            return value.real
        return value

    return ratio


def cauchy_bound(at: complex | float, theta: float) -> float:
    """Cauchy's estimate ``1/(|z| sin θ)`` on ``|R'(z)|`` for an A-stable ``R``, valid for
    ``|arg(-z)| <= π/2 - θ`` (a disc of radius ``|z| sin θ`` about ``z`` stays in ``Re z <= 0``)."""
    zz = complex(at)
    if not 0 < theta <= np.pi / 2:
        raise SchemeError(f"`theta` must be in (0, pi/2], got {theta!r}")
    if abs(np.angle(-zz)) > np.pi / 2 - theta + 1e-15:
        raise SchemeError(f"`at` = {at!r} is outside the sector |arg(-z)| <= pi/2 - theta")
    return 1.0 / (abs(zz) * np.sin(theta))
