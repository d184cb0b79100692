"""Linear multistep methods checked against published tables and independent numerical computations.

Independent of the code under test: coefficients, error constants and A(alpha) angles typed in from the literature
(Hairer, Nørsett & Wanner I, III.1-III.2; Hairer & Wanner II, V.2; Lambert, Numerical Methods for Ordinary
Differential Systems, 1991; the 30-digit angles
of BIT Numer. Math. (2020) doi:10.1007/s10543-019-00796-x); roots computed by numpy/mpmath directly from the
typed coefficients; derivatives by finite differences.
"""

from __future__ import annotations

import cmath
import math
from fractions import Fraction as F

import mpmath
import numpy as np
import pytest
import sympy as sp

from symsens._errors import SchemeError
from symsens.schemes._multistep import (
    ZETA,
    LinearMultistepMethod,
    adams_bashforth,
    adams_moulton,
    bdf,
    lmm_error_constant,
    lmm_order,
    lmm_order_constants,
    rho,
    sigma,
)
from symsens.schemes._multistep_analysis import (
    THETA,
    _census,
    lmm_a_alpha,
    lmm_a_alpha_angle,
    lmm_boundary_locus,
    lmm_boundary_locus_parts,
    lmm_dominant_root,
    lmm_dominant_root_derivative,
    lmm_has_stiff_decay,
    lmm_is_A_stable,
    lmm_is_L_stable,
    lmm_is_zero_stable,
    lmm_root_asymptotics,
    lmm_root_census,
    lmm_root_decay,
    lmm_root_sensitivity_decay,
)

CATALOGUE = {
    **{f"bdf{k}": (lambda k=k: bdf(k)) for k in range(1, 7)},
    **{f"ab{k}": (lambda k=k: adams_bashforth(k)) for k in range(1, 5)},
    **{f"am{k}": (lambda k=k: adams_moulton(k)) for k in range(1, 5)},
}
NAMES = sorted(CATALOGUE)


@pytest.fixture(scope="module")
def methods() -> dict[str, LinearMultistepMethod]:
    return {name: make() for name, make in CATALOGUE.items()} | {"bdf7": bdf(7)}


# ---------------------------------------------------------------------------------------------------------------
# Published coefficients, typed in:  sum_j alpha_j y_{n+j} = h sum_j beta_j f_{n+j}, lowest index first, alpha_k = 1
# ---------------------------------------------------------------------------------------------------------------

PUBLISHED = {
    # BDF (HNW I, III.1; Lambert 1991, Ch. 6), normalised alpha_k = 1
    "bdf1": ([-1, 1], [0, 1]),
    "bdf2": ([F(1, 3), F(-4, 3), 1], [0, 0, F(2, 3)]),
    "bdf3": ([F(-2, 11), F(9, 11), F(-18, 11), 1], [0, 0, 0, F(6, 11)]),
    "bdf4": ([F(3, 25), F(-16, 25), F(36, 25), F(-48, 25), 1], [0, 0, 0, 0, F(12, 25)]),
    "bdf5": ([F(-12, 137), F(75, 137), F(-200, 137), F(300, 137), F(-300, 137), 1], [0] * 5 + [F(60, 137)]),
    "bdf6": (
        [F(10, 147), F(-72, 147), F(225, 147), F(-400, 147), F(450, 147), F(-360, 147), 1],
        [0] * 6 + [F(60, 147)],
    ),
    # Adams-Bashforth (HNW I, III.1): y_{n+1} = y_n + h sum beta f
    "ab1": ([-1, 1], [1, 0]),
    "ab2": ([0, -1, 1], [F(-1, 2), F(3, 2), 0]),
    "ab3": ([0, 0, -1, 1], [F(5, 12), F(-16, 12), F(23, 12), 0]),
    "ab4": ([0, 0, 0, -1, 1], [F(-9, 24), F(37, 24), F(-59, 24), F(55, 24), 0]),
    # Adams-Moulton of order p (HNW I, III.1, their k = p - 1)
    "am1": ([-1, 1], [0, 1]),
    "am2": ([-1, 1], [F(1, 2), F(1, 2)]),
    "am3": ([0, -1, 1], [F(-1, 12), F(8, 12), F(5, 12)]),
    "am4": ([0, 0, -1, 1], [F(1, 24), F(-5, 24), F(19, 24), F(9, 24)]),
}

# Error constants C = C_{p+1}/sigma(1) (HNW I, III.2): BDFk: -1/(k+1); Adams: the gamma / gamma* numbers.
PUBLISHED_ERROR_CONSTANT = {
    **{f"bdf{k}": F(-1, k + 1) for k in range(1, 7)},
    "ab1": F(1, 2), "ab2": F(5, 12), "ab3": F(3, 8), "ab4": F(251, 720),
    "am1": F(-1, 2), "am2": F(-1, 12), "am3": F(-1, 24), "am4": F(-19, 720),
}
# Lambert's C_{p+1} with alpha_k = 1 for BDF1-6 (Lambert 1991, Ch. 3 and 6).
PUBLISHED_BDF_C_NEXT = [F(-1, 2), F(-2, 9), F(-3, 22), F(-12, 125), F(-10, 137), F(-20, 343)]


def _mp(c: object) -> mpmath.mpf:
    c = F(c) if not isinstance(c, sp.Rational) else F(int(c.p), int(c.q))
    return mpmath.mpf(c.numerator) / c.denominator


@pytest.mark.parametrize("name", NAMES)
def test_coefficients_equal_published_tables(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    method = methods[name]
    alpha, beta = PUBLISHED[name]
    assert method.alpha == tuple(sp.Rational(F(a).numerator, F(a).denominator) for a in alpha)
    assert method.beta == tuple(sp.Rational(F(b).numerator, F(b).denominator) for b in beta)
    assert all(isinstance(c, sp.Rational) for c in method.alpha + method.beta)
    assert method.name == name
    assert method.steps == len(alpha) - 1
    assert method.is_explicit == name.startswith("ab")
    assert method.reference


@pytest.mark.parametrize("name", NAMES + ["bdf7"])
def test_order_conditions_give_the_claimed_order(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    method = methods[name]
    assert lmm_order(method) == method.order == int(name[-1])
    if name in PUBLISHED_ERROR_CONSTANT:
        c = PUBLISHED_ERROR_CONSTANT[name]
        assert lmm_error_constant(method) == sp.Rational(c.numerator, c.denominator)


def test_order_checked_on_an_independent_exact_solution(methods: dict[str, LinearMultistepMethod]) -> None:
    # The residual of the method on y = t**q (exact rational arithmetic, h = 1) vanishes iff q <= order.
    for method in methods.values():
        p = method.order
        for q in range(p + 2):
            residual = sum(
                F(a.p, a.q) * F(j) ** q - F(b.p, b.q) * (q * F(j) ** (q - 1) if q else 0)
                for j, (a, b) in enumerate(zip(method.alpha, method.beta))
            )
            assert (residual == 0) == (q <= p), (method.name, q)


def test_bdf_c_next_equals_lamberts_table(methods: dict[str, LinearMultistepMethod]) -> None:
    for k in range(1, 7):
        c = PUBLISHED_BDF_C_NEXT[k - 1]
        assert lmm_order_constants(methods[f"bdf{k}"], k + 1)[k + 1] == sp.Rational(c.numerator, c.denominator)


def test_generating_polynomials(methods: dict[str, LinearMultistepMethod]) -> None:
    z = ZETA
    assert rho(methods["bdf2"]).as_expr() == z**2 - sp.Rational(4, 3) * z + sp.Rational(1, 3)
    assert sigma(methods["bdf2"]).as_expr() == sp.Rational(2, 3) * z**2
    assert sigma(methods["am2"]).as_expr() == (z + 1) / 2
    assert rho(methods["ab3"]).as_expr() == z**3 - z**2


# ---------------------------------------------------------------------------------------------------------------
# Zero-stability, root census
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_catalogue_is_zero_stable(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    assert lmm_is_zero_stable(methods[name])


def test_bdf7_and_beyond_are_not_zero_stable() -> None:
    # Cryer (1972): BDFk is zero-stable exactly for k <= 6.
    for k in (7, 8):
        method = bdf(k)
        assert not lmm_is_zero_stable(method)
        assert max(abs(r) for r in np.roots([float(a) for a in reversed(method.alpha)])) > 1


def _method(alpha: list, beta: list, order: int = 1, name: str = "custom") -> LinearMultistepMethod:
    return LinearMultistepMethod(name=name, alpha=tuple(alpha), beta=tuple(beta), order=order, family="custom")


def test_zero_stability_edge_cases() -> None:
    # Milne-Simpson: rho = zeta^2 - 1, simple roots +-1 on the circle: (weakly) zero-stable, order 4.
    milne = _method([-1, 0, 1], [F(1, 3), F(4, 3), F(1, 3)], order=4, name="milne-simpson")
    assert lmm_order(milne) == 4 and lmm_is_zero_stable(milne)
    assert lmm_root_census(milne) == (0, 2, 0, 0)
    # The explicit 2-step method of order 3 (HNW I, III.3, Dahlquist's first barrier example): rho root -5.
    unstable = _method([-5, 4, 1], [2, 4, 0], order=3)
    assert lmm_order(unstable) == 3 and not lmm_is_zero_stable(unstable)
    # rho = (zeta - 1)(zeta + 1)^2: a double root on the circle.
    double = _method([-1, -1, 1, 1], [0, 0, 0, 4])
    assert not lmm_is_zero_stable(double)
    assert lmm_root_census(double) == (0, 3, 0, 2)
    # rho = (zeta - 1)(zeta^2 + 1): a simple complex pair on the circle (self-reciprocal factor).
    pair = _method([-1, 1, -1, 1], [0, 0, 0, 2])
    assert lmm_is_zero_stable(pair) and lmm_root_census(pair) == (0, 3, 0, 0)
    # rho = (zeta - 1)(zeta^2 + 1)^2: the pair doubled.
    pair2 = _method([-1, 1, -2, 2, -1, 1], [0, 0, 0, 0, 0, 4])
    assert not lmm_is_zero_stable(pair2)
    # rho = (zeta - 1)(zeta^2 - 3 zeta + 1): palindromic factor with roots (3 +- sqrt 5)/2 off the circle.
    off = _method([-1, 4, -4, 1], [0, 0, 0, -1])
    assert not lmm_is_zero_stable(off) and lmm_root_census(off) == (1, 1, 1, 0)


def test_root_census_matches_numpy_on_random_polynomials() -> None:
    rng = np.random.default_rng(4)
    checked = 0
    while checked < 300:
        degree = int(rng.integers(1, 8))
        coeffs = [int(c) for c in rng.integers(-6, 7, size=degree + 1)]
        if coeffs[0] == 0:
            continue
        if checked % 5 == 0:  # every fifth one squared: repeated roots off the circle
            coeffs = [int(c) for c in np.polymul(coeffs, coeffs)]
        moduli = np.abs(np.roots(coeffs))
        if np.any(np.abs(moduli - 1) < 1e-5):
            continue  # numpy cannot classify these; the exact census can, but there is nothing to compare with
        census = _census(sp.Poly(coeffs, ZETA, domain=sp.QQ))
        assert census.on == 0
        assert (census.inside, census.outside) == (int(np.sum(moduli < 1)), int(np.sum(moduli > 1))), coeffs
        checked += 1


def test_root_census_on_cyclotomic_products() -> None:
    # Roots of unity and their products, with multiplicities: numpy would be ambiguous, the census is exact.
    z = ZETA
    p = sp.Poly((z**2 + z + 1) * (z**4 + 1) ** 2 * (2 * z - 1) * (z - 3) * (z**2 - z + 1), z, domain=sp.QQ)
    assert _census(p) == (1, 2 + 8 + 2, 1, 8)


# ---------------------------------------------------------------------------------------------------------------
# Boundary locus and A-stability
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_boundary_locus_closed_form_equals_rho_over_sigma(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    method = methods[name]
    locus = sp.lambdify(THETA, lmm_boundary_locus(method), "numpy")
    re_part, im_part = (sp.lambdify(THETA, part, "numpy") for part in lmm_boundary_locus_parts(method))
    alpha, beta = PUBLISHED[name]
    for theta in np.random.default_rng(1).uniform(0.05, 2 * np.pi - 0.05, 25):
        if abs(theta - np.pi) < 1e-3:
            continue
        w = cmath.exp(1j * theta)
        direct = sum(float(a) * w**j for j, a in enumerate(alpha)) / sum(float(b) * w**j for j, b in enumerate(beta))
        assert complex(locus(theta)) == pytest.approx(direct, rel=1e-12, abs=1e-12)
        assert complex(re_part(theta), im_part(theta)) == pytest.approx(direct, rel=1e-12, abs=1e-12)


def test_bdf_locus_equals_the_backward_difference_form() -> None:
    # HW II, V.1 eq. (1.17): for BDFk, z(theta) = sum_{j=1}^k (1/j) (1 - e^{-i theta})^j.
    for k in range(1, 7):
        locus = sp.lambdify(THETA, lmm_boundary_locus(bdf(k)), "numpy")
        for theta in (0.3, 1.1, 2.0, 2.9, 4.4):
            expected = sum((1 - cmath.exp(-1j * theta)) ** j / j for j in range(1, k + 1))
            assert complex(locus(theta)) == pytest.approx(expected, rel=1e-12, abs=1e-13)


def _max_root_modulus(alpha: list, beta: list, z: complex) -> float:
    coeffs = [float(a) - z * float(b) for a, b in zip(alpha, beta)][::-1]
    return float(np.max(np.abs(np.roots(coeffs))))


A_STABLE = {"bdf1", "bdf2", "am1", "am2"}


@pytest.mark.parametrize("name", NAMES + ["bdf7"])
def test_A_stability_decided_exactly_and_confirmed_numerically(
    name: str, methods: dict[str, LinearMultistepMethod]
) -> None:
    method = methods[name]
    a_stable = lmm_is_A_stable(method)
    assert a_stable == (name in A_STABLE)
    alpha, beta = (list(method.alpha), list(method.beta))
    if a_stable:
        rng = np.random.default_rng(7)
        radii = 10.0 ** rng.uniform(-4, 6, 400)
        angles = rng.uniform(np.pi / 2 + 1e-9, 3 * np.pi / 2 - 1e-9, 400)
        for r, t in zip(radii, angles):
            assert _max_root_modulus(alpha, beta, r * np.exp(1j * t)) <= 1 + 1e-9
    else:
        # Find an unstable point of C^- next to a locus point with Re z < 0, or on the negative real axis.
        unstable = False
        for theta in np.linspace(1e-3, np.pi, 4000):
            w = np.exp(1j * theta)
            zt = np.polyval([float(a) for a in reversed(alpha)], w) / np.polyval([float(b) for b in reversed(beta)], w)
            if zt.real < -1e-6:
                for shift in (1e-7, -1e-7, 1e-7j, -1e-7j):
                    zs = zt + shift * max(1.0, abs(zt))
                    if zs.real < 0 and _max_root_modulus(alpha, beta, zs) > 1 + 1e-12:
                        unstable = True
                        break
            if unstable:
                break
        unstable = unstable or any(_max_root_modulus(alpha, beta, -x) > 1 for x in (1e-3, 1.0, 10.0, 1e4))
        assert unstable


def test_dahlquist_second_barrier_holds_for_the_catalogue(methods: dict[str, LinearMultistepMethod]) -> None:
    # Dahlquist (1963): an A-stable LMM has order <= 2, and among order-2 ones the trapezoid rule has the
    # smallest |error constant|, 1/12.
    for method in methods.values():
        if lmm_is_A_stable(method):
            assert lmm_order(method) <= 2
            if lmm_order(method) == 2:
                assert abs(lmm_error_constant(method)) >= sp.Rational(1, 12)
    assert not any(lmm_is_A_stable(adams_bashforth(k)) for k in range(1, 5))
    assert lmm_is_A_stable(adams_moulton(2))  # trapezoid


def test_stiff_decay_and_L_stability(methods: dict[str, LinearMultistepMethod]) -> None:
    assert {name for name, m in methods.items() if lmm_has_stiff_decay(m)} == {f"bdf{k}" for k in range(1, 8)} | {"am1"}
    assert {name for name, m in methods.items() if lmm_is_L_stable(m)} == {"bdf1", "bdf2", "am1"}
    # Independent: at z = -1e12 every root of the BDF stability polynomials is below 0.1 in modulus.
    for k in range(1, 7):
        assert max(abs(r) for r in _roots_direct(f"bdf{k}", mpmath.mpf(-1e12))) < 0.1


def test_A_stability_edge_cases() -> None:
    # Milne-Simpson: its locus is a segment of the imaginary axis but the left half-plane is unstable.
    milne = _method([-1, 0, 1], [F(1, 3), F(4, 3), F(1, 3)], order=4)
    assert not lmm_is_A_stable(milne)
    assert lmm_a_alpha(milne).degrees == 0.0
    # sigma = (zeta^2 + 1)/2 has the roots +-i on the circle; for z -> infinity they move to
    # zeta_0 + K/z with K/zeta_0 = 1 + i, so only the sector |arg(-z)| < 45 degrees is stable far out.
    corner = _method([0, -1, 1], [F(1, 2), 0, F(1, 2)])
    result = lmm_a_alpha(corner)
    assert not lmm_is_A_stable(corner)
    assert result.exact == sp.pi / 4 and result.limited_by == "infinity"
    for psi, expect_stable in ((44.0, True), (46.0, False)):
        radii = np.logspace(-4, 6, 2000)
        moduli = [_max_root_modulus([0, -1, 1], [0.5, 0, 0.5], -r * np.exp(1j * np.radians(psi))) for r in radii]
        assert (max(moduli) <= 1 + 1e-12) == expect_stable
    # rho = (zeta - 1)(zeta^2 + 1), sigma = 2 zeta^3: the unimodular roots +-i of rho move, for small z, to
    # zeta_0 (1 + w z) with w = (1 - i)/2, so only |arg(-z)| < 45 degrees is stable next to z = 0.
    near_zero = _method([-1, 1, -1, 1], [0, 0, 0, 2])
    result = lmm_a_alpha(near_zero)
    assert result.exact == sp.pi / 4 and result.limited_by == "zero"
    for psi, expect_stable in ((44.0, True), (46.0, False)):
        radii = np.logspace(-6, 6, 2000)
        moduli = [_max_root_modulus([-1, 1, -1, 1], [0, 0, 0, 2], -r * np.exp(1j * np.radians(psi))) for r in radii]
        assert (max(moduli) <= 1 + 1e-12) == expect_stable
    # The leapfrog rule (weakly stable, explicit): no sector at all.
    assert lmm_a_alpha(_method([-1, 0, 1], [0, 2, 0], order=2)).degrees == 0.0


# ---------------------------------------------------------------------------------------------------------------
# A(alpha)
# ---------------------------------------------------------------------------------------------------------------

# HW II, V.2, the table of BDF angles (two decimals), and the 30-digit values of
# BIT Numer. Math. (2020), doi:10.1007/s10543-019-00796-x
PUBLISHED_ALPHA_2 = {3: "86.03", 4: "73.35", 5: "51.84", 6: "17.84"}
PUBLISHED_ALPHA_30 = {
    3: "86.032366860211647332387423479",
    4: "73.351670474578482110409536864",
    5: "51.839755836049910391602721533",
    6: "17.839777792245700101632480553",
}
# ... and the exact tan(alpha) published there for k = 3, 4, 6.
PUBLISHED_TAN_ALPHA = {
    3: sp.Rational(329, 135) * sp.sqrt(35),
    4: sp.Rational(699, 512) * sp.sqrt(6),
    6: sp.Rational(45503, 1974375) * sp.sqrt(195),
}


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_bdf_a_alpha_matches_published_values(k: int) -> None:
    method = bdf(k)
    assert f"{lmm_a_alpha_angle(method):.2f}" == PUBLISHED_ALPHA_2[k]
    low, high = lmm_a_alpha(method, dps=30), lmm_a_alpha(method, dps=60)
    with mpmath.workdps(60):
        # stable under doubling the working precision ...
        assert abs(low.degrees_mp - high.degrees_mp) < mpmath.mpf("1e-26")
        # ... and equal to the 30-digit published value
        assert abs(high.degrees_mp - mpmath.mpf(PUBLISHED_ALPHA_30[k])) < mpmath.mpf("1e-26")
        # the exact form evaluates to the same number
        assert abs(mpmath.mpf(str(sp.N(high.exact * 180 / sp.pi, 50))) - high.degrees_mp) < mpmath.mpf("1e-40")
    assert low.limited_by == "locus"
    if k in PUBLISHED_TAN_ALPHA:
        assert sp.simplify(sp.tan(high.exact) - PUBLISHED_TAN_ALPHA[k]) == 0


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_bdf_a_alpha_brute_force(k: int) -> None:
    # Independent: sample the locus rho/sigma densely with numpy and take min |arg(-z)| over Re z < 0.
    alpha, beta = PUBLISHED[f"bdf{k}"]
    theta = np.linspace(1e-4, np.pi, 400_001)
    w = np.exp(1j * theta)
    z = np.polyval([float(a) for a in reversed(alpha)], w) / np.polyval([float(b) for b in reversed(beta)], w)
    left = z.real < 0
    brute = np.degrees(np.min(np.abs(np.angle(-z[left]))))
    result = lmm_a_alpha(bdf(k))
    assert result.degrees == pytest.approx(brute, abs=1e-6)
    i = np.argmin(np.where(left, np.abs(np.angle(-z)), np.inf))
    assert float(result.theta) == pytest.approx(theta[i], abs=1e-4)


def test_a_alpha_of_the_rest_of_the_catalogue(methods: dict[str, LinearMultistepMethod]) -> None:
    for name in ("bdf1", "bdf2", "am1", "am2"):
        result = lmm_a_alpha(methods[name])
        assert result.degrees == 90.0 and result.exact == sp.pi / 2 and result.limited_by == "A-stable"
    for name in ("ab1", "ab2", "ab3", "ab4", "am3", "am4", "bdf7"):
        assert lmm_a_alpha(methods[name]).degrees == 0.0
    assert lmm_a_alpha(methods["bdf7"]).limited_by == "zero"  # not zero-stable: unstable next to z = 0
    assert {lmm_a_alpha(methods[name]).limited_by for name in ("ab1", "am3", "am4")} == {"infinity"}


# ---------------------------------------------------------------------------------------------------------------
# Dominant root: asymptotic law as z -> -infinity, checked with mpmath polyroots on the typed-in coefficients
# ---------------------------------------------------------------------------------------------------------------


def _roots_direct(name: str, z: mpmath.mpf) -> list:
    alpha, beta = PUBLISHED.get(name) or (bdf(7).alpha, bdf(7).beta)
    coeffs = [_mp(a) - z * _mp(b) for a, b in zip(alpha, beta)][::-1]
    return mpmath.polyroots(coeffs, maxsteps=500, extraprec=3 * mpmath.mp.dps)


def _dominant_direct(name: str, z: mpmath.mpf) -> mpmath.mpc:
    return max(_roots_direct(name, z), key=abs)


def test_root_decay_exact_laws(methods: dict[str, LinearMultistepMethod]) -> None:
    for k in range(1, 7):  # |alpha_0/beta_k|^(1/k) |z|^(-1/k) from the published coefficients
        alpha, beta = PUBLISHED[f"bdf{k}"]
        expected = sp.Rational(abs(F(alpha[0]) / F(beta[-1]))) ** sp.Rational(1, k)
        coefficient, exponent = lmm_root_decay(methods[f"bdf{k}"])
        assert sp.simplify(coefficient - expected) == 0 and exponent == sp.Rational(-1, k)
    for k in range(1, 5):  # explicit: |zeta| ~ |beta_{k-1}| |z|
        coefficient, exponent = lmm_root_decay(methods[f"ab{k}"])
        assert exponent == 1 and coefficient == abs(sp.Rational(F(PUBLISHED[f"ab{k}"][1][k - 1])))
    assert lmm_root_decay(methods["am2"]) == (1, 0)  # trapezoid: zeta -> -1
    coefficient, exponent = lmm_root_decay(methods["am3"])  # sigma = (5 z^2 + 8 z - 1)/12: root -(4 + sqrt 21)/5
    assert exponent == 0 and sp.simplify(coefficient - (4 + sp.sqrt(21)) / 5) == 0


@pytest.mark.parametrize("name", NAMES + ["bdf7"])
def test_root_decay_law_fitted_far_out(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    # Fit exponent and coefficient of |zeta(z)| from z = -1e30 and -1e60 (the relative corrections are
    # O(|z|**(-1/k)), so this is where a pure power fit is accurate to 1e-5 even for BDF6/7).
    coefficient, exponent = lmm_root_decay(methods[name])
    with mpmath.workdps(90):
        x1, x2 = mpmath.mpf(10) ** 30, mpmath.mpf(10) ** 60
        v1, v2 = abs(_dominant_direct(name, -x1)), abs(_dominant_direct(name, -x2))
        fitted_exponent = mpmath.log(v2 / v1) / mpmath.log(x2 / x1)
        fitted_coefficient = v2 / x2**fitted_exponent
        assert abs(fitted_exponent - float(exponent)) < 1e-6
        assert abs(fitted_coefficient / mpmath.mpf(str(sp.N(coefficient, 40))) - 1) < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_root_decay_at_moderate_z(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    # At z = -1e4, -1e6, -1e8: the fitted exponent is within 0.01 of the law's for every method whose
    # relative correction is O(1/|z|) or O(|z|**-1/2); for BDF3-6 the two-term law (next Puiseux term) is
    # checked instead: its error must be small and fall at least 30-fold from 1e4 to 1e8.
    law = lmm_root_asymptotics(methods[name])
    c, e = float(law.coefficient), float(law.exponent)
    xs = [1e4, 1e6, 1e8]
    with mpmath.workdps(40):
        values = [float(abs(_dominant_direct(name, -mpmath.mpf(x)))) for x in xs]
        # Independent numbers, same answer as the library's own dominant root
        assert values[2] == pytest.approx(float(abs(lmm_dominant_root(methods[name], -1e8, dps=40))), rel=1e-14)
    fitted_exponent, log_c = np.polyfit(np.log(xs), np.log(values), 1)
    if name in {"bdf3", "bdf4", "bdf5", "bdf6"}:
        c2, e2 = float(law.correction[0]), float(law.correction[1])
        errors = [abs(v / (c * x**e + c2 * x**e2) - 1) for v, x in zip(values, xs)]
        k = int(name[-1])
        # the neglected term is O(|z|**(-2/k)) relative, so the error must fall ~10**(8/k)-fold from 1e4 to 1e8
        assert errors[2] < 2e-3 and errors[2] < errors[0] / (0.7 * 10 ** (8 / k))
    else:
        assert abs(fitted_exponent - e) < 0.01
        assert abs(math.exp(log_c) / c - 1) < 1e-3
        assert abs(values[2] / (c * xs[2] ** e) - 1) < 1e-3


def test_root_asymptotics_details(methods: dict[str, LinearMultistepMethod]) -> None:
    bdf1 = lmm_root_asymptotics(methods["bdf1"])  # zeta = 1/(1 - z) = 1/|z| - 1/|z|^2 + ...
    assert (bdf1.coefficient, bdf1.exponent, bdf1.correction) == (1, -1, (-1, -2))
    trapezoid = lmm_root_asymptotics(methods["am2"])  # zeta = (1 + z/2)/(1 - z/2): |zeta| = 1 - 4/|z| + ...
    assert trapezoid.limit == 1 and trapezoid.correction == (-4, -1) and trapezoid.limit_root == -1
    assert trapezoid.sensitivity == (4, -1)  # z zeta' = z/(1 - z/2)^2 ~ 4/z
    ab1 = lmm_root_asymptotics(methods["ab1"])  # zeta = 1 + z: |zeta| = |z| - 1
    assert (ab1.coefficient, ab1.exponent, ab1.correction, ab1.limit) == (1, 1, (-1, 0), sp.oo)
    bdf2 = lmm_root_asymptotics(methods["bdf2"])  # |zeta|^2 = 1/(3 + 2|z|) exactly: no |z|^-1 term
    assert bdf2.correction is None and sp.simplify(bdf2.coefficient - 1 / sp.sqrt(2)) == 0


# ---------------------------------------------------------------------------------------------------------------
# d zeta / dz: implicit differentiation vs finite differences, and its law
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bdf1", "bdf3", "bdf6", "ab2", "am2", "am4"])
def test_root_derivative_matches_finite_differences(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    method = methods[name]
    with mpmath.workdps(50):
        for z in (mpmath.mpf(-7.5), mpmath.mpf(-1e3), mpmath.mpc(-30, 4)):
            root, derivative = lmm_dominant_root_derivative(method, z, dps=50)
            step = mpmath.mpf(10) ** -20 * max(1, abs(z))
            plus = min(_roots_direct(name, z + step), key=lambda r: abs(r - root))
            minus = min(_roots_direct(name, z - step), key=lambda r: abs(r - root))
            assert abs((plus - minus) / (2 * step) - derivative) <= mpmath.mpf(10) ** -15 * abs(derivative)


@pytest.mark.parametrize("name", NAMES)
def test_sensitivity_law_far_out(name: str, methods: dict[str, LinearMultistepMethod]) -> None:
    coefficient, exponent = lmm_root_sensitivity_decay(methods[name])
    with mpmath.workdps(90):
        x = mpmath.mpf(10) ** 60
        _, derivative = lmm_dominant_root_derivative(methods[name], -x, dps=90)
        measured = abs(x * derivative)
        predicted = mpmath.mpf(str(sp.N(coefficient, 40))) * x ** (mpmath.mpf(exponent.p) / exponent.q)
        assert abs(measured / predicted - 1) < 1e-4


def test_bdf_sensitivity_decays_slower_than_one_step() -> None:
    # |z zeta'| ~ (c/k) |z|^(-1/k) for BDFk versus |z R'| = |z|/(1 - z)^2 ~ |z|^-1 for backward Euler.
    for k in range(2, 7):
        coefficient, exponent = lmm_root_sensitivity_decay(bdf(k))
        assert exponent == sp.Rational(-1, k)
        _, derivative = lmm_dominant_root_derivative(bdf(k), -1e6)
        assert abs(1e6 * derivative) > 100 * 1e6 / (1 + 1e6) ** 2


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "argument"),
    [(bdf, 0), (adams_bashforth, -1), (adams_moulton, 0), (bdf, 2.0), (adams_moulton, "3"), (bdf, True)],
)
def test_family_arguments_are_checked(factory, argument) -> None:
    with pytest.raises(SchemeError, match="`k`"):
        factory(argument)
    with pytest.raises(ValueError):
        factory(argument)


@pytest.mark.parametrize(
    ("alpha", "beta", "match"),
    [
        ((-1, 1), (0.5, 0.5), "exact rational"),
        ((-1, 1), (0, 0, 1), "same length"),
        ((-2, 2), (0, 2), "normalised"),
        ((0, -1, 1), (0, 1, 0), "fewer than 2 steps"),
        ((-1, 1), (0, 2), "not consistent"),
        ((-1, 0, 1), (1, 1, 0), "common factor"),
        ((1,), (1,), "at least one step"),
    ],
)
def test_invariants_raise_scheme_error(alpha, beta, match) -> None:
    with pytest.raises(SchemeError, match=match):
        LinearMultistepMethod(name="bad", alpha=alpha, beta=beta, order=1, family="custom")


def test_method_is_frozen_and_dominant_root_at_infinity_is_an_error() -> None:
    method = bdf(2)
    with pytest.raises(AttributeError):
        method.order = 3  # type: ignore[misc]
    with pytest.raises(SchemeError, match="`z`"):
        lmm_dominant_root(bdf(1), 1)  # 1 - z beta_1 = 0: the root is at infinity
    with pytest.raises(SchemeError, match="`dps`"):
        lmm_a_alpha(bdf(3), dps=5)
