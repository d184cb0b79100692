"""Evidence for the exact coefficient catalogue of one-step schemes (``symsens.schemes``).

Every check here is independent of the analysis modules (``_analysis``, ``_order``, ``_decay``): order
conditions are re-derived from rooted trees in this file, quadrature sums are evaluated exactly through
companion matrices, and published tables are compared against nodepy's copies.
"""

from __future__ import annotations

import fractions
import functools
import math

import mpmath
import numpy as np
import pytest
import sympy

from symsens._errors import SchemeError
from symsens.schemes._collocation import gauss, lobatto_iiic, node_polynomial, radau_iia
from symsens.schemes._registry import get_scheme, scheme_names
from symsens.schemes._rosenbrock import (
    RODAS4_C,
    RODAS4_D,
    RODAS5P_C,
    RODAS5P_D,
    from_implementation_form,
    implementation_form,
)
from symsens.schemes._tableau import ButcherTableau, RosenbrockTableau, is_exact_zero

R = sympy.Rational
DIGITS = 110  # enough for tsit5's 85-digit data

BUTCHER_NAMES = [
    "euler", "heun", "rk4", "bs3", "dopri5", "tsit5", "verner6", "verner7",
    "backward-euler", "implicit-midpoint", "trapezoid", "gauss-2", "gauss-3", "radau-iia-2", "radau-iia-3",
    "lobatto-iiic-2", "lobatto-iiic-3", "sdirk2", "sdirk3-alexander", "sdirk4", "tr-bdf2",
    "kvaerno3", "kvaerno4", "kvaerno5",
]  # fmt: skip
ROSENBROCK_NAMES = ["ros2", "ros3p", "rodas3", "rodas4", "rodas5p"]


# ----------------------------------------------------------------------------------------------------
# Rooted trees and elementary weights (Butcher 1963; Hairer, Nørsett & Wanner I, Sect. II.2).
# A tree is the sorted tuple of its children; the single vertex is ().
# ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def trees(n: int) -> tuple[tuple, ...]:
    """All rooted trees with ``n`` vertices."""
    if n == 1:
        return ((),)
    found: set[tuple] = set()

    def extend(remaining: int, smallest: tuple, children: list) -> None:
        if remaining == 0:
            found.add(tuple(sorted(children)))
            return
        for k in range(1, remaining + 1):
            for child in trees(k):
                key = (k, child)
                if key >= smallest:
                    extend(remaining - k, key, children + [key])

    extend(n - 1, (0, ()), [])
    return tuple(sorted(found))


def tree_density(tree: tuple) -> int:
    """gamma(t) = |t| * prod gamma(children)."""
    order = 1 + sum(k for k, _ in tree)
    return order * math.prod(tree_density(child) for _, child in tree)


def test_tree_counts():
    assert [len(trees(n)) for n in range(1, 9)] == [1, 1, 2, 4, 9, 20, 48, 115]


def _numbers(values, kind):
    """Fractions for rational data, else mpmath numbers from a DIGITS-digit evaluation."""
    if kind == "exact":
        return [fractions.Fraction(int(sympy.fraction(v)[0]), int(sympy.fraction(v)[1])) for v in values]
    return [mpmath.mpf(str(sympy.N(v, DIGITS + 10))) for v in values]


def _kind(values) -> str:
    return "exact" if all(sympy.sympify(v).is_Rational for v in values) else "float"


def _matvec(M, v):
    return [sum((M[i][j] * v[j] for j in range(len(v))), 0 * v[0]) for i in range(len(M))]


def rk_residuals(A, b, max_order):
    """{tree: sum_i b_i Phi_i(t) - 1/gamma(t)} for all trees of order <= max_order (RK rule)."""
    s = len(b)
    one = b[0] * 0 + 1

    @functools.lru_cache(maxsize=None)
    def phi(tree):
        v = [one] * s
        for _, child in tree:
            w = _matvec(A, list(phi(child)))
            v = [v[i] * w[i] for i in range(s)]
        return tuple(v)

    return {
        (n, t): sum((b[i] * phi(t)[i] for i in range(s)), 0 * one) - one / tree_density(t)
        for n in range(1, max_order + 1)
        for t in trees(n)
    }


def rosenbrock_residuals(alpha, beta, b, max_order):
    """Rosenbrock order conditions (HW II, IV.7, Table 7.1 written with full beta): as for RK, but a vertex with
    exactly one child uses ``beta = alpha + gamma`` (diagonal included) and the right-hand side stays
    ``1/gamma(t)``; vertices with two or more children use ``alpha``."""
    s = len(b)
    one = b[0] * 0 + 1

    @functools.lru_cache(maxsize=None)
    def phi(tree):
        if len(tree) == 1:
            return tuple(_matvec(beta, list(phi(tree[0][1]))))
        v = [one] * s
        for _, child in tree:
            w = _matvec(alpha, list(phi(child)))
            v = [v[i] * w[i] for i in range(s)]
        return tuple(v)

    return {
        (n, t): sum((b[i] * phi(t)[i] for i in range(s)), 0 * one) - one / tree_density(t)
        for n in range(1, max_order + 1)
        for t in trees(n)
    }


def _tolerance(scheme):
    """0 for exact arithmetic; 1e-60 for algebraic numbers at DIGITS digits; 100 x the stated tolerance
    for decimal sources (their residuals are the rounding of the published digits)."""
    if scheme.tolerance is not None:
        return mpmath.mpf(str(scheme.tolerance)) * 100
    return mpmath.mpf("1e-60")


def _check_order(residuals, order, tol, label):
    worst = {}
    for (n, _), r in residuals.items():
        worst[n] = max(worst.get(n, 0), abs(r))
    for n in range(1, order + 1):
        assert worst[n] <= tol, f"{label}: order-{n} conditions violated by {worst[n]}"
    # The claimed order is the exact order: some condition of order + 1 fails clearly.
    assert worst[order + 1] > 1e-6, f"{label}: order {order + 1} conditions also hold"


# ----------------------------------------------------------------------------------------------------
# Order conditions of every transcribed tableau.
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BUTCHER_NAMES)
def test_butcher_order_conditions(name):
    scheme = get_scheme(name)
    flat = [v for row in scheme.A for v in row] + list(scheme.b) + list(scheme.b_error or [])
    kind = _kind(flat)
    # Exact arithmetic proves exact tableaux exactly; decimal sources get their stated tolerance.
    if kind == "exact":
        tol = 0 if scheme.tolerance is None else fractions.Fraction(str(scheme.tolerance)) * 100
    else:
        tol = _tolerance(scheme)
    with mpmath.workdps(DIGITS):
        A = [_numbers(row, kind) for row in scheme.A]
        pairs = [("b", scheme.b, scheme.order)]
        if scheme.b_error is not None:
            pairs.append(("b_error", scheme.b_error, scheme.embedded_order))
        for label, weights, order in pairs:
            residuals = rk_residuals(A, _numbers(weights, kind), order + 1)
            _check_order(residuals, order, tol, f"{name} {label}")


@pytest.mark.parametrize("name", ROSENBROCK_NAMES)
def test_rosenbrock_order_conditions(name):
    scheme = get_scheme(name)
    with mpmath.workdps(DIGITS):
        alpha = [_numbers(row, "float") for row in scheme.alpha]
        beta = [_numbers(row, "float") for row in scheme.beta_matrix.tolist()]
        tol = _tolerance(scheme)
        for label, weights, order in (("b", scheme.b, scheme.order), ("b_error", scheme.b_error, scheme.embedded_order)):
            residuals = rosenbrock_residuals(alpha, beta, _numbers(weights, "float"), order + 1)
            _check_order(residuals, order, tol, f"{name} {label}")


def test_rosenbrock_rule_reproduces_hairer_wanner_table():
    # HW II, Table IV.7.1, tall tree of order 3: sum b_j beta'_jk beta'_kl = 1/6 - gamma + gamma^2 with
    # beta' the strictly lower part: check our "full beta" rule against it on ROS3P (exactly).
    scheme = get_scheme("ros3p")
    g = scheme.gamma_diagonal
    beta_strict = (scheme.beta_matrix - sympy.eye(3) * g).tolist()
    b = scheme.b
    lhs = sum(b[j] * beta_strict[j][k] * beta_strict[k][l] for j in range(3) for k in range(3) for l in range(3))
    assert is_exact_zero(lhs - (R(1, 6) - g + g**2))


# ----------------------------------------------------------------------------------------------------
# Collocation families: nodes, quadrature, simplifying assumptions (s = 1..5).
# ----------------------------------------------------------------------------------------------------
_x = sympy.Symbol("x")


def _legendre_node_poly(family, s):
    """Independent of ``node_polynomial``: built from sympy.legendre with c in [0, 1]."""
    P = lambda k: sympy.legendre(k, 2 * _x - 1)  # noqa: E731
    return sympy.Poly({"gauss": P(s), "radau-iia": P(s) - P(s - 1), "lobatto-iiic": P(s) - P(s - 2)}[family], _x)


def _companion(poly: sympy.Poly) -> sympy.Matrix:
    coefficients = poly.monic().all_coeffs()  # [1, a_{d-1}, ..., a_0]
    d = poly.degree()
    M = sympy.zeros(d, d)
    for i in range(1, d):
        M[i, i - 1] = 1
    for i in range(d):
        M[i, d - 1] = -coefficients[d - i]
    return M


def _exact_node_sum(weights, nodes, power):
    """sum_j w_j c_j^power exactly: radicals by expansion, each full set of CRootOf conjugates by the trace
    of g(M) M^power with M the companion matrix of their minimal polynomial (w_j = g(c_j))."""
    total = sympy.Integer(0)
    groups: dict = {}
    for w, c in zip(weights, nodes):
        if isinstance(c, sympy.CRootOf):
            groups.setdefault(c.poly, []).append((w, c))
        else:
            total += w * c**power
    X = sympy.Symbol("X")
    for poly, members in groups.items():
        assert len(members) == poly.degree(), "a node set must contain all conjugates"
        polys = {sympy.expand(w.xreplace({c: X})) for w, c in members}
        assert len(polys) == 1 and not sympy.sympify(next(iter(polys))).has(sympy.CRootOf)
        g = sympy.Poly(polys.pop(), X)
        M = _companion(sympy.Poly(poly.as_expr(), poly.gen))
        gM = sympy.zeros(*M.shape)
        for coefficient in g.all_coeffs():
            gM = gM * M + coefficient * sympy.eye(M.shape[0])
        total += (gM * M**power).trace()
    return sympy.radsimp(sympy.expand(total))


FAMILIES = [("gauss", gauss, 1, lambda s: 2 * s), ("radau-iia", radau_iia, 1, lambda s: 2 * s - 1),
            ("lobatto-iiic", lobatto_iiic, 2, lambda s: 2 * s - 2)]  # fmt: skip
FAMILY_CASES = [pytest.param(*f, s, id=f"{f[0]}-{s}") for f in FAMILIES for s in range(f[2], 6)]


@pytest.mark.parametrize("family, build, smallest, order, s", FAMILY_CASES)
def test_collocation_nodes_and_quadrature(family, build, smallest, order, s):
    scheme = build(s)
    assert scheme.name == f"{family}-{s}" and scheme.order == order(s) and scheme.stages == s
    assert node_polynomial(family, s) == _legendre_node_poly(family, s).set_domain(sympy.QQ)
    target = _legendre_node_poly(family, s)
    values = [sympy.N(c, 40) for c in scheme.c]
    assert values == sorted(values) and 0 <= values[0] and values[-1] <= 1 and len(set(values)) == s
    for c in scheme.c:  # each node is a zero of the Legendre combination, exactly
        assert sympy.rem(target, sympy.minimal_polynomial(c, _x, polys=True)).is_zero
    if family != "gauss":
        assert scheme.c[-1] == 1
    if family == "lobatto-iiic":
        assert scheme.c[0] == 0
    # B(p): the weights integrate x^(k-1) exactly for k <= p = degree + 1, and not for k = p + 1.
    degree = {"gauss": 2 * s - 1, "radau-iia": 2 * s - 2, "lobatto-iiic": 2 * s - 3}[family]
    for k in range(1, degree + 2):
        assert _exact_node_sum(scheme.b, scheme.c, k - 1) == R(1, k), (family, s, k)
    assert _exact_node_sum(scheme.b, scheme.c, degree + 1) != R(1, degree + 2)


@pytest.mark.parametrize("family, build, smallest, order", FAMILIES, ids=[f[0] for f in FAMILIES])
@pytest.mark.parametrize("s", [2, 3, 4, 5])
def test_collocation_simplifying_assumptions(family, build, smallest, order, s):
    """C(q): sum_j a_ij c_j^(k-1) = c_i^k/k (k <= q); D(r): sum_i b_i c_i^(k-1) a_ij = b_j (1 - c_j^k)/k.
    Gauss: C(s), D(s); Radau IIA: C(s), D(s-1); Lobatto IIIC: C(s-1), D(s-1), a_i1 = b_1 (HW II, IV.5)."""
    scheme = build(s)
    q, r = {"gauss": (s, s), "radau-iia": (s, s - 1), "lobatto-iiic": (s - 1, s - 1)}[family]
    with mpmath.workdps(60):
        A = [_numbers(row, "float") for row in scheme.A]
        b, c = _numbers(scheme.b, "float"), _numbers(scheme.c, "float")
        for k in range(1, q + 1):
            for i in range(s):
                assert abs(sum(A[i][j] * c[j] ** (k - 1) for j in range(s)) - c[i] ** k / k) < mpmath.mpf("1e-50")
        for k in range(1, r + 1):
            for j in range(s):
                lhs = sum(b[i] * c[i] ** (k - 1) * A[i][j] for i in range(s))
                assert abs(lhs - b[j] * (1 - c[j] ** k) / k) < mpmath.mpf("1e-50")
        # and C(q + 1) fails: the stage order is exactly q
        worst = max(abs(sum(A[i][j] * c[j] ** q for j in range(s)) - c[i] ** (q + 1) / (q + 1)) for i in range(s))
        assert worst > 1e-6
    if family == "lobatto-iiic":
        assert all(row[0] == scheme.b[0] for row in scheme.A)
    if family != "gauss":
        assert scheme.is_stiffly_accurate


def test_small_collocation_methods_are_radicals():
    g2 = get_scheme("gauss-2")
    assert g2.c == (R(1, 2) - sympy.sqrt(3) / 6, R(1, 2) + sympy.sqrt(3) / 6)
    assert g2.A[0][1] == R(1, 4) - sympy.sqrt(3) / 6
    r3 = get_scheme("radau-iia-3")
    assert r3.c == ((4 - sympy.sqrt(6)) / 10, (4 + sympy.sqrt(6)) / 10, 1)
    assert r3.b == (R(4, 9) - sympy.sqrt(6) / 36, R(4, 9) + sympy.sqrt(6) / 36, R(1, 9))
    assert not any(v.has(sympy.CRootOf) for row in r3.A for v in row)
    assert gauss(1).A == ((R(1, 2),),) and radau_iia(1).A == ((1,),)
    assert get_scheme("lobatto-iiic-6").stages == 6  # generated family, any s


# ----------------------------------------------------------------------------------------------------
# Comparison with nodepy's tableaux, coefficient by coefficient.
# ----------------------------------------------------------------------------------------------------
NODEPY_PAIRS = [
    ("euler", "FE"), ("heun", "Heun22"), ("rk4", "RK44"), ("bs3", "BS3"), ("dopri5", "DP5"), ("tsit5", "Tsit5"),
    ("backward-euler", "BE"), ("trapezoid", "LobattoIIIA2"), ("gauss-2", "GL2"), ("gauss-3", "GL3"),
    ("radau-iia-2", "RadauIIA2"), ("radau-iia-3", "RadauIIA3"), ("lobatto-iiic-2", "LobattoIIIC2"),
    ("lobatto-iiic-3", "LobattoIIIC3"), ("lobatto-iiic-4", "LobattoIIIC4"), ("sdirk4", "SDIRK54"),
]  # fmt: skip


@pytest.fixture(scope="module")
def nodepy_methods():
    import nodepy.runge_kutta_method as rkm  # a declared test dependency: missing is a failure, not a skip
    return rkm.loadRKM()


@pytest.mark.parametrize("ours, theirs", NODEPY_PAIRS)
def test_matches_nodepy(nodepy_methods, ours, theirs):
    scheme = get_scheme(ours)
    method = nodepy_methods[theirs]
    blocks = [(scheme.A, method.A), ([scheme.b], [method.b]), ([scheme.c], [method.c])]
    if scheme.b_error is not None and getattr(method, "bhat", None) is not None:
        blocks.append(([scheme.b_error], [method.bhat]))
    for mine, published in blocks:
        published = np.asarray(published)
        assert published.shape == (len(mine), len(mine[0]))
        for i, row in enumerate(mine):
            for j, value in enumerate(row):
                other = published[i, j]
                if isinstance(other, (float, np.floating)):  # nodepy stores Tsit5 in double precision
                    assert abs(float(sympy.N(value, 30)) - float(other)) <= 4e-15 * max(1.0, abs(float(other)))
                else:
                    assert is_exact_zero(sympy.sympify(value) - sympy.sympify(other)), (ours, i, j, value, other)


# ----------------------------------------------------------------------------------------------------
# Source-specific checks.
# ----------------------------------------------------------------------------------------------------
def _R_at(scheme, z):
    """R(z) = 1 + z b^T (I - z M)^-1 e with M = A (RK) or alpha + gamma (Rosenbrock), by mpmath."""
    M = scheme.beta_matrix if isinstance(scheme, RosenbrockTableau) else scheme.A_matrix
    s = scheme.stages
    with mpmath.workdps(60):
        Mm = mpmath.matrix([[mpmath.mpf(str(sympy.N(M[i, j], 70))) for j in range(s)] for i in range(s)])
        b = mpmath.matrix([mpmath.mpf(str(sympy.N(v, 70))) for v in scheme.b])
        k = mpmath.lu_solve(mpmath.eye(s) - z * Mm, mpmath.matrix([1] * s))
        return 1 + z * (b.T * k)[0]


@pytest.mark.parametrize(
    "name, bound",
    [("backward-euler", 1e-25), ("sdirk2", 1e-25), ("sdirk3-alexander", 1e-25), ("sdirk4", 1e-25),
     ("tr-bdf2", 1e-25), ("kvaerno3", 1e-25), ("kvaerno4", 1e-25), ("kvaerno5", 1e-25), ("radau-iia-3", 1e-25),
     ("lobatto-iiic-3", 1e-25), ("ros2", 1e-25), ("rodas3", 1e-25), ("rodas4", 1e-12), ("rodas5p", 1e-12)],
)  # fmt: skip
def test_l_stable_schemes_vanish_at_infinity(name, bound):
    """A sanity check of the exact gamma choices (not the exact L-stability decision): |R(-1e30)| ~ 0."""
    assert abs(_R_at(get_scheme(name), mpmath.mpf("-1e30"))) < bound


def test_kvaerno4_uses_the_l_stable_gamma():
    scheme = get_scheme("kvaerno4")
    gamma = scheme.A[1][1]
    assert is_exact_zero(24 * gamma**4 - 96 * gamma**3 + 72 * gamma**2 - 16 * gamma + 1)
    assert abs(sympy.N(gamma, 20) - sympy.Float("0.5728160625", 20)) < 1e-10  # the paper's printed value
    gamma3 = get_scheme("kvaerno3").A[1][1]
    assert abs(sympy.N(gamma3, 20) - sympy.Float("0.4358665215", 20)) < 1e-10


def test_sdirk3_alexander_gamma_is_exact_root():
    scheme = get_scheme("sdirk3-alexander")
    gamma = scheme.A[0][0]
    assert isinstance(gamma, sympy.CRootOf)
    assert is_exact_zero(gamma**3 - 3 * gamma**2 + 3 * gamma / 2 - R(1, 6))
    assert abs(float(gamma) - 0.4358665215084590) < 1e-15
    assert scheme.family == "sdirk" and scheme.is_stiffly_accurate


def test_tsit5_row_sums_and_sources():
    scheme = get_scheme("tsit5")
    assert scheme.c[1:4] == (R(161, 1000), R(327, 1000), R(9, 10)) and scheme.b[1] == R(1, 100)
    assert scheme.b_error[-1] == R(1, 66) and scheme.b[-1] == 0 and scheme.fsal
    for row, c in zip(scheme.A, scheme.c):
        assert abs(sympy.N(sum(row) - c, 100)) < 1e-83


def test_rosenbrock_row_sums_reproduce_published_c_and_gamma_i():
    for name, c, d, tol in (("rodas4", RODAS4_C, RODAS4_D, 1e-15), ("rodas5p", RODAS5P_C, RODAS5P_D, 1e-14)):
        scheme = get_scheme(name)
        for computed, published in zip(scheme.alpha_sum, c):
            assert abs(sympy.N(computed - published, 30)) < tol, name
        for computed, published in zip(scheme.gamma_sum, d):
            assert abs(sympy.N(computed - published, 30)) < tol, name
        assert scheme.is_stiffly_accurate


def test_rosenbrock_exact_sums():
    assert get_scheme("rodas3").alpha_sum == (0, 0, 1, 1) and get_scheme("rodas3").gamma_sum == (R(1, 2), R(3, 2), 0, 0)
    ros2 = get_scheme("ros2")
    g = 1 + 1 / sympy.sqrt(2)
    assert is_exact_zero(ros2.gamma_sum[1] + g)  # KPP: Gamma_2 = -g


def test_ros3p_matches_lang_verwer_implementation_form():
    # Lang & Verwer (2001), Table 1, as written in OrdinaryDiffEq.jl's ROS3PRodasTableau (exact formulas).
    g = R(1, 2) + sympy.sqrt(3) / 6
    ig = 1 / g
    tmp = -ig * (2 - ig / 2)
    tmp2 = ig * (R(2, 3) - ig / 6)
    a, C, m, m_hat = implementation_form(get_scheme("ros3p"))
    expected_a = {(1, 0): ig, (2, 0): ig}
    expected_C = {(1, 0): -(ig**2), (2, 0): -ig * (1 - tmp), (2, 1): tmp}
    for i in range(3):
        for j in range(3):
            assert is_exact_zero(a[i, j] - expected_a.get((i, j), 0))
            assert is_exact_zero(C[i, j] - expected_C.get((i, j), 0))
    for mine, theirs in zip(m, [ig * (1 + tmp2), tmp2, ig / 3]):
        assert is_exact_zero(mine - theirs)
    for mine, theirs in zip(m_hat, ["2.113248654051871", "1.0", "0.4226497308103742"]):
        assert abs(float(mine) - float(theirs)) < 1e-15


def test_ros2_matches_kpp_implementation_form():
    g = 1 + 1 / sympy.sqrt(2)
    a, C, m, m_hat = implementation_form(get_scheme("ros2"))
    assert is_exact_zero(a[1, 0] - 1 / g) and is_exact_zero(C[1, 0] + 2 / g)
    assert is_exact_zero(m[0] - 3 / (2 * g)) and is_exact_zero(m[1] - 1 / (2 * g))
    # KPP error weights e = m - mhat = (1/(2g), 1/(2g))
    assert is_exact_zero(m[0] - m_hat[0] - 1 / (2 * g)) and is_exact_zero(m[1] - m_hat[1] - 1 / (2 * g))


@pytest.mark.parametrize("name", ROSENBROCK_NAMES)
def test_implementation_form_round_trip(name):
    scheme = get_scheme(name)
    a, C, m, m_hat = implementation_form(scheme)
    back = from_implementation_form(
        name, scheme.gamma_diagonal, a.tolist(), C.tolist(), list(m), list(m_hat),
        order=scheme.order, embedded_order=scheme.embedded_order, tolerance=scheme.tolerance,
    )  # fmt: skip
    for mine, theirs in ((scheme.alpha, back.alpha), (scheme.gamma, back.gamma), ((scheme.b,), (back.b,))):
        for row_a, row_b in zip(mine, theirs):
            assert all(is_exact_zero(u - v) for u, v in zip(row_a, row_b))


def test_verner_pairs_are_exact_rationals():
    for name in ("verner6", "verner7"):
        scheme = get_scheme(name)
        assert scheme.tolerance is None
        assert all(v.is_Rational for row in scheme.A for v in row)
        assert sum(scheme.b) == 1 and sum(scheme.b_error) == 1
    assert get_scheme("verner6").fsal and not get_scheme("verner7").fsal


# ----------------------------------------------------------------------------------------------------
# Structure and derived attributes.
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, family, fsal, stiffly",
    [("dopri5", "explicit", True, True), ("rk4", "explicit", False, False), ("backward-euler", "sdirk", False, True),
     ("trapezoid", "esdirk", True, True), ("sdirk4", "sdirk", False, True), ("tr-bdf2", "esdirk", True, True),
     ("kvaerno5", "esdirk", True, True), ("radau-iia-3", "implicit", False, True),
     ("gauss-2", "implicit", False, False), ("lobatto-iiic-3", "implicit", False, True)],
)  # fmt: skip
def test_derived_structure(name, family, fsal, stiffly):
    scheme = get_scheme(name)
    assert scheme.family == family and scheme.fsal is fsal and scheme.is_stiffly_accurate is stiffly
    assert scheme.is_explicit is (family == "explicit")
    assert scheme.is_diagonally_implicit is (family in ("dirk", "sdirk", "esdirk"))


def test_as_float_and_views():
    A, b, c, b_hat = get_scheme("dopri5").as_float()
    assert A.shape == (7, 7) and b.dtype == np.float64 and b_hat.shape == (7,)
    assert A[4, 0] == 19372 / 6561 and c[2] == 0.3
    assert get_scheme("rk4").as_float()[3] is None
    alpha, gamma, b, b_hat = get_scheme("rodas5p").as_float()
    assert gamma[3, 3] == 0.21193756319429014 and alpha.shape == (8, 8)
    assert get_scheme("gauss-2").A_matrix.shape == (2, 2) and get_scheme("gauss-2").c_vector.shape == (2, 1)
    assert get_scheme("ros3p").beta_matrix[1, 0] == 0  # alpha21 + gamma21 = 1 - 1


def test_schemes_are_frozen_and_hashable():
    scheme = get_scheme("bs3")
    with pytest.raises(AttributeError):
        scheme.order = 4  # type: ignore[misc]
    assert hash(scheme) == hash(get_scheme("bs3"))


# ----------------------------------------------------------------------------------------------------
# Invariants raise SchemeError naming the scheme and the identity.
# ----------------------------------------------------------------------------------------------------
def _rk(**changes):
    fields = dict(name="broken", A=[[0, 0], [1, 0]], b=[R(1, 2), R(1, 2)], c=[0, 1], order=2)
    fields.update(changes)
    return ButcherTableau(**fields)


def _ros(**changes):
    g = R(1, 2)
    fields = dict(name="broken-ros", alpha=[[0, 0], [1, 0]], gamma=[[g, 0], [-1, g]], b=[R(1, 2), R(1, 2)], order=2)
    fields.update(changes)
    return RosenbrockTableau(**fields)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(b=[R(1, 2), R(1, 3)]), r"'broken' violates sum\(b\) == 1"),
        (dict(c=[0, R(1, 2)]), r"'broken' violates sum_j A\[1\]\[j\] == c\[1\]"),
        (dict(A=[[0, 0], [1, 0], [0, 0]]), r"'broken' violates shape of `A`"),
        (dict(b=[1]), r"'broken' violates shape of `b`"),
        (dict(b=[0.5, 0.5]), r"'broken'.*float"),
        (dict(b=["1/2", "1/2"]), r"'broken'.*not an exact number"),
        (dict(b=[sympy.Symbol("p"), 1 - sympy.Symbol("p")]), r"'broken'.*symbols"),
        (dict(b_error=[1, 0]), r"given together"),
        (dict(b_error=[R(1, 2), R(1, 4)], embedded_order=1), r"sum\(b_error\) == 1"),
        (dict(b_error=[R(1, 2), R(1, 2)], embedded_order=1), r"b_error != b"),
        (dict(family="sdirk"), r"declared family 'sdirk'.*'explicit'"),
        (dict(family="rosenbrock"), r"unknown family"),
        (dict(order=0), r"positive integer"),
        (dict(b=[R(1, 2) + R(1, 10**30), R(1, 2)], tolerance=R(1, 10**40)), r"sum\(b\) == 1 within"),
        (dict(name=""), r"non-empty"),
    ],
)
def test_butcher_invariants_raise(changes, message):
    with pytest.raises(SchemeError, match=message):
        _rk(**changes)


def test_tolerance_admits_rounded_decimals_only_within_bound():
    scheme = _rk(b=[R(1, 2) + R(1, 10**30), R(1, 2)], tolerance=R(1, 10**20))
    assert scheme.tolerance == R(1, 10**20) and not scheme.is_exact


def test_algebraic_identities_are_decided_exactly():
    # sqrt(2) - a 50-digit approximation is not zero even though it is tiny in double precision.
    near = sympy.Rational(str(sympy.N(sympy.sqrt(2), 45)))
    with pytest.raises(SchemeError, match="sum\\(b\\) == 1"):
        _rk(b=[sympy.sqrt(2) / 2, 1 - near / 2])
    root = sympy.CRootOf(_x**3 - 3 * _x**2 + 3 * _x / 2 - R(1, 6), 1)
    assert is_exact_zero(sum(sympy.CRootOf(_x**3 - 3 * _x**2 + 3 * _x / 2 - R(1, 6), k) for k in range(3)) - 3)
    assert not is_exact_zero(root - R(4358665215084590, 10**16))


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(alpha=[[0, 1], [1, 0]]), r"'broken-ros' violates alpha strictly lower triangular"),
        (dict(alpha=[[R(1, 2), 0], [1, 0]]), r"alpha strictly lower triangular"),
        (dict(gamma=[[R(1, 2), 1], [-1, R(1, 2)]]), r"gamma lower triangular"),
        (dict(gamma=[[R(1, 2), 0], [-1, R(1, 3)]]), r"gamma_ii == gamma for all i"),
        (dict(gamma=[[0, 0], [-1, 0]]), r"gamma_ii != 0"),
        (dict(b=[R(1, 2), R(1, 3)]), r"sum\(b\) == 1"),
        (dict(gamma=[[R(1, 2), 0]]), r"shape of `gamma`"),
        (dict(b_error=[1, 1], embedded_order=1), r"sum\(b_error\) == 1"),
    ],
)
def test_rosenbrock_invariants_raise(changes, message):
    with pytest.raises(SchemeError, match=message):
        _ros(**changes)


# ----------------------------------------------------------------------------------------------------
# Registry.
# ----------------------------------------------------------------------------------------------------
def test_scheme_names_order_and_content():
    names = scheme_names()
    expected_prefix = BUTCHER_NAMES[:8] + [
        "backward-euler", "implicit-midpoint", "trapezoid", "gauss-2", "gauss-3", "radau-iia-2", "radau-iia-3",
        "lobatto-iiic-2", "lobatto-iiic-3", "sdirk2", "sdirk3-alexander", "sdirk4", "tr-bdf2", "kvaerno3",
        "kvaerno4", "kvaerno5", "ros2", "ros3p", "rodas3", "rodas4", "rodas5p",
    ]  # fmt: skip
    assert list(names[: len(expected_prefix)]) == expected_prefix
    multistep = [f"bdf{k}" for k in range(1, 7)] + [f"ab{k}" for k in range(1, 5)] + [f"am{k}" for k in range(1, 5)]
    assert list(names[len(expected_prefix) :]) == multistep
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", BUTCHER_NAMES + ROSENBROCK_NAMES)
def test_every_one_step_scheme_is_cited(name):
    scheme = get_scheme(name)
    assert scheme.name == name and len(scheme.reference) > 20
    assert get_scheme(name) is scheme  # cached
    assert get_scheme(f"  {name.upper()} ") is scheme


def test_multistep_names_delegate():
    import symsens.schemes._multistep  # noqa: F401
    for name in ("bdf1", "bdf6", "ab4", "am1"):
        assert get_scheme(name) is get_scheme(name)


@pytest.mark.parametrize(
    "name, suggestion",
    [("dopri", "dopri5"), ("radau-iia", "radau-iia-S"), ("kvearno4", "kvaerno4"), ("rodas", "rodas4"),
     ("sdirk3", "sdirk3-alexander"), ("gaus-2", "gauss-2")],
)  # fmt: skip
def test_unknown_names_list_close_matches(name, suggestion):
    with pytest.raises(SchemeError, match=rf"unknown scheme '{name}'.*did you mean.*'{suggestion}'"):
        get_scheme(name)


def test_family_bounds():
    with pytest.raises(SchemeError, match="at least 2 stage"):
        get_scheme("lobatto-iiic-1")
    with pytest.raises(SchemeError, match="at least 1 stage"):
        get_scheme("gauss-0")
    with pytest.raises(SchemeError, match="must be a string"):
        get_scheme(3)  # type: ignore[arg-type]
