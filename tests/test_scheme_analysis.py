"""Exact analysis of one-step schemes, checked against independent facts.

Each check compares with something computed by a different route: the closed Padé formula (Hairer–Wanner II,
IV.3), published stability intervals, nodepy's stability functions and orders, a 40+-digit mpmath solve of the stage
equations with the implicit-function theorem, Cauchy's estimate, and combinatorial identities of rooted trees.
The test tableaux built here (collocation from Legendre/Jacobi nodes, theta-methods, a hand-made Rosenbrock pair)
are constructed independently of the catalogue; when the catalogue exists, every scheme in it is checked too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import mpmath
import numpy as np
import pytest
import sympy as sp

from symsens import SchemeError
from symsens.schemes._analysis import (
    R_infinity,
    e_polynomial,
    has_stiff_decay,
    is_A_stable,
    is_L_stable,
    poles_in_right_half_plane,
    scheme_kind,
    stability_function,
    stability_order,
    stability_polynomials,
    z,
)
from symsens.schemes._decay import (
    cauchy_bound,
    decay_asymptotics,
    exact_sensitivity,
    h,
    lam,
    n_step_decay,
    n_step_sensitivity,
    one_step_sensitivity,
    p,
    sensitivity_ratio,
    sensitivity_ratio_numpy,
    stability_derivative,
    stability_numpy,
    y0,
)
from symsens.schemes._order import order, rooted_trees, stage_order, tree_density, tree_symmetry

Rat = sp.Rational


# ---------------------------------------------------------------------------------------------------------------
# Independent test tableaux.
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RK:
    """A minimal Butcher tableau for the tests (exact entries, hashable)."""

    name: str
    A: tuple[tuple[sp.Expr, ...], ...]
    b: tuple[sp.Expr, ...]
    order: int

    @property
    def c(self) -> tuple[sp.Expr, ...]:
        return tuple(sp.Add(*row) for row in self.A)


@dataclass(frozen=True)
class ROW:
    """A minimal Rosenbrock tableau: (I - h g_ii J) k_i = h f(y0 + sum a_ij k_j) + h J sum_{j<i} g_ij k_j."""

    name: str
    alpha: tuple[tuple[sp.Expr, ...], ...]
    gamma: tuple[tuple[sp.Expr, ...], ...]
    b: tuple[sp.Expr, ...]
    order: int


def _rk(name: str, A: list[list[object]], b: list[object], order_: int) -> RK:
    return RK(name, tuple(tuple(sp.sympify(v) for v in row) for row in A), tuple(sp.sympify(v) for v in b), order_)


_t = sp.Symbol("t")


def _collocation(name: str, nodes: list[sp.Expr], order_: int) -> RK:
    """Collocation method: a_ij = int_0^{c_i} l_j, b_j = int_0^1 l_j (HNW I, II.7)."""
    s = len(nodes)
    A = [[sp.S.Zero] * s for _ in range(s)]
    b = []
    for j in range(s):
        lj = sp.Integer(1)
        for m in range(s):
            if m != j:
                lj *= (_t - nodes[m]) / (nodes[j] - nodes[m])
        F = sp.integrate(sp.expand(lj), _t)
        b.append(sp.expand(F.subs(_t, 1) - F.subs(_t, 0)))
        for i in range(s):
            A[i][j] = sp.expand(F.subs(_t, nodes[i]) - F.subs(_t, 0))
    return _rk(name, A, b, order_)


def _sorted_roots(poly: sp.Expr) -> list[sp.Expr]:
    x = sp.Symbol("x")
    return sorted(sp.roots(sp.Poly(poly, x), multiple=True), key=lambda r: float(sp.re(sp.N(r))))


def gauss(s: int) -> RK:
    x = sp.Symbol("x")
    return _collocation(f"my-gauss-{s}", _sorted_roots(sp.legendre(s, 2 * x - 1)), 2 * s)


def radau_iia(s: int) -> RK:
    x = sp.Symbol("x")
    return _collocation(f"my-radau-iia-{s}", _sorted_roots(sp.legendre(s, 2 * x - 1) - sp.legendre(s - 1, 2 * x - 1)), 2 * s - 1)


def lobatto_iiic(s: int) -> RK:
    """Lobatto IIIC: a_i1 = b_1 for all i and C(s-1) (HW II, IV.5, Table 5.11)."""
    x = sp.Symbol("x")
    inner = _sorted_roots(sp.diff(sp.legendre(s - 1, 2 * x - 1), x)) if s > 2 else []
    c = [sp.S.Zero] + inner + [sp.S.One]
    b = _collocation("tmp", c, 0).b  # Lobatto quadrature weights
    A = []
    a = sp.symbols(f"a0:{s}")
    for i in range(s):
        eqs = [a[0] - b[0]] + [sum(a[j] * c[j] ** (k - 1) for j in range(s)) - c[i] ** k / k for k in range(1, s)]
        sol = sp.solve(eqs, a, dict=True)[0]
        A.append([sp.radsimp(sol[a[j]]) for j in range(s)])
    return _rk(f"my-lobatto-iiic-{s}", A, b, 2 * s - 2)


g2 = 1 - sp.sqrt(2) / 2
gtr = 2 - sp.sqrt(2)
EULER = _rk("my-euler", [[0]], [1], 1)
HEUN = _rk("my-heun", [[0, 0], [1, 0]], [Rat(1, 2), Rat(1, 2)], 2)
RK4 = _rk("my-rk4", [[0, 0, 0, 0], [Rat(1, 2), 0, 0, 0], [0, Rat(1, 2), 0, 0], [0, 0, 1, 0]], [Rat(1, 6), Rat(1, 3), Rat(1, 3), Rat(1, 6)], 4)
BACKWARD_EULER = _rk("my-backward-euler", [[1]], [1], 1)
MIDPOINT = _rk("my-implicit-midpoint", [[Rat(1, 2)]], [1], 2)
TRAPEZOID = _rk("my-trapezoid", [[0, 0], [Rat(1, 2), Rat(1, 2)]], [Rat(1, 2), Rat(1, 2)], 2)
THETA_THIRD = _rk("my-theta-1/3", [[0, 0], [Rat(2, 3), Rat(1, 3)]], [Rat(2, 3), Rat(1, 3)], 1)
SDIRK2 = _rk("my-sdirk2", [[g2, 0], [1 - g2, g2]], [1 - g2, g2], 2)
TR_BDF2 = _rk(
    "my-tr-bdf2",
    [[0, 0, 0], [gtr / 2, gtr / 2, 0], [sp.sqrt(2) / 4, sp.sqrt(2) / 4, gtr / 2]],
    [sp.sqrt(2) / 4, sp.sqrt(2) / 4, gtr / 2],
    2,
)
#: R = 1/(1+z): |R(iy)| <= 1 everywhere but a pole at z = -1 (not A-stable: only the pole test can see it).
LEFT_POLE = _rk("my-left-pole", [[-1]], [-1], 0)
gros = 1 + 1 / sp.sqrt(2)
ROS_EULER = ROW("my-linearly-implicit-euler", ((0,),), ((1,),), (1,), 1)
ROS_PAIR = ROW(
    "my-ros2",
    ((0, 0), (1, 0)),
    ((gros, 0), (-2 * gros, gros)),
    (Rat(1, 2), Rat(1, 2)),
    2,
)

OWN_SCHEMES = [EULER, HEUN, RK4, BACKWARD_EULER, MIDPOINT, TRAPEZOID, THETA_THIRD, SDIRK2, TR_BDF2, ROS_EULER, ROS_PAIR]
COLLOCATION = {
    "gauss": [gauss(s) for s in (1, 2, 3)],
    "radau": [radau_iia(s) for s in (1, 2, 3)],
    "lobatto": [lobatto_iiic(s) for s in (2, 3)],
}


# ---------------------------------------------------------------------------------------------------------------
# The catalogue (other engineers' modules), when present.
# ---------------------------------------------------------------------------------------------------------------
def _catalogue() -> list[object]:
    """Every registry scheme; before the registry exists, the zero-argument constructors of the catalogue modules."""
    try:
        from symsens.schemes._registry import get_scheme, scheme_names
    except ImportError:
        import importlib

        schemes = []
        for module_name in ("_explicit", "_implicit", "_rosenbrock"):
            try:
                module = importlib.import_module(f"symsens.schemes.{module_name}")
            except ImportError:
                continue
            for name in getattr(module, "__all__", ()):
                constructor = getattr(module, name)
                try:
                    schemes.append(constructor())
                except TypeError:
                    continue
        return schemes
    return [get_scheme(name) for name in scheme_names()]


CATALOGUE = _catalogue()
CATALOGUE_ONE_STEP = [s for s in CATALOGUE if scheme_kind(s) in ("butcher", "rosenbrock")]
ONE_STEP = OWN_SCHEMES + [m for ms in COLLOCATION.values() for m in ms] + CATALOGUE_ONE_STEP


def _ids(schemes: list[object]) -> list[str]:
    return [str(getattr(s, "name", "?")) for s in schemes]


def _is_explicit(scheme: object) -> bool:
    if scheme_kind(scheme) != "butcher":
        return False
    A = scheme.A  # type: ignore[attr-defined]
    return all(sp.sympify(A[i][j]) == 0 for i in range(len(A)) for j in range(i, len(A)))


# ---------------------------------------------------------------------------------------------------------------
# Padé approximants (Hairer–Wanner II, IV.3, (3.30)), an independent formula.
# ---------------------------------------------------------------------------------------------------------------
def pade(k: int, j: int) -> sp.Expr:
    """R_kj = P_kj/Q_kj, P_kj(z) = sum_i (k+j-i)! k! / ((k+j)! i! (k-i)!) z^i, Q_kj(z) = P_jk(-z)."""

    def P(k_: int, j_: int, zz: sp.Expr) -> sp.Expr:
        f = sp.factorial
        return sum(f(k_ + j_ - i) * f(k_) / (f(k_ + j_) * f(i) * f(k_ - i)) * zz**i for i in range(k_ + 1))

    return P(k, j, z) / P(j, k, -z)


def _catalogue_family(prefix: str, sizes: range) -> list[object]:
    try:
        from symsens.schemes._registry import get_scheme
    except ImportError:
        return []
    out = []
    for s in sizes:
        try:
            out.append(get_scheme(f"{prefix}-{s}"))
        except SchemeError:
            pass
    return out


@pytest.mark.parametrize(
    "scheme",
    COLLOCATION["gauss"] + _catalogue_family("gauss", range(1, 5)),
    ids=lambda s: s.name,
)
def test_gauss_is_diagonal_pade(scheme: object) -> None:
    s = len(scheme.b)  # type: ignore[attr-defined]
    assert sp.simplify(stability_function(scheme) - pade(s, s)) == 0
    assert stability_order(scheme) == 2 * s
    assert is_A_stable(scheme) and not is_L_stable(scheme)
    assert R_infinity(scheme) == (-1) ** s
    assert e_polynomial(scheme).is_zero  # |R(iy)| = 1 on the whole imaginary axis
    assert stage_order(scheme) == s
    assert not has_stiff_decay(scheme)


@pytest.mark.parametrize("scheme", COLLOCATION["radau"] + _catalogue_family("radau-iia", range(1, 5)), ids=lambda s: s.name)
def test_radau_iia_is_subdiagonal_pade(scheme: object) -> None:
    s = len(scheme.b)  # type: ignore[attr-defined]
    assert sp.simplify(stability_function(scheme) - pade(s - 1, s)) == 0
    assert stability_order(scheme) == 2 * s - 1
    assert is_L_stable(scheme) and has_stiff_decay(scheme)
    assert stage_order(scheme) == s
    coefficient, exponent = decay_asymptotics(scheme)["R"]
    assert exponent == -1


@pytest.mark.parametrize("scheme", COLLOCATION["lobatto"] + _catalogue_family("lobatto-iiic", range(2, 5)), ids=lambda s: s.name)
def test_lobatto_iiic_is_second_subdiagonal_pade(scheme: object) -> None:
    s = len(scheme.b)  # type: ignore[attr-defined]
    assert sp.simplify(stability_function(scheme) - pade(s - 2, s)) == 0
    assert stability_order(scheme) == 2 * s - 2
    assert is_L_stable(scheme) and has_stiff_decay(scheme)
    assert stage_order(scheme) == s - 1
    # R ~ a z^-2, so R' ~ -2a z^-3 and z R' ~ -2a z^-2
    (a, e_R), (d, e_d), (zd, e_zd) = (decay_asymptotics(scheme)[k] for k in ("R", "dR", "zdR"))
    assert (e_R, e_d, e_zd) == (-2, -3, -2) and sp.simplify(d + 2 * a) == 0 and sp.simplify(zd - d) == 0


def test_gauss_4_pade_from_nested_radicals() -> None:
    scheme = gauss(4)
    assert sp.simplify(stability_function(scheme) - pade(4, 4)) == 0
    assert order(scheme) == 8


# ---------------------------------------------------------------------------------------------------------------
# Classical facts.
# ---------------------------------------------------------------------------------------------------------------
def test_rk4_real_stability_interval() -> None:
    P, Q = stability_polynomials(RK4)
    assert Q.as_expr() == 1
    # The interval ends where R(x) = 1 (R(x) > -1 on the real axis); (R - 1)/x is a cubic with one real root.
    cubic = sp.Poly(sp.cancel((P.as_expr() - 1) / z), z)
    (root,) = cubic.real_roots()
    assert f"{float(root):.4f}" == "-2.7853"
    assert abs(float(root) - (-2.785293563)) < 1e-9


def test_rk4_imaginary_stability_interval() -> None:
    E = e_polynomial(RK4)
    y = E.gen
    assert sp.expand(E.as_expr() - (y**6 / 72 - y**8 / 576)) == 0
    positive = [r for r in sp.Poly(sp.cancel(E.as_expr() / y**6), y).real_roots() if r > 0]
    assert positive == [2 * sp.sqrt(2)]


@pytest.mark.parametrize(
    ("scheme", "A", "L"),
    [
        (BACKWARD_EULER, True, True),
        (SDIRK2, True, True),
        (TR_BDF2, True, True),
        (MIDPOINT, True, False),
        (TRAPEZOID, True, False),
        (THETA_THIRD, False, False),
        (LEFT_POLE, False, False),
        (EULER, False, False),
        (HEUN, False, False),
        (RK4, False, False),
        (ROS_EULER, True, True),
        (ROS_PAIR, True, True),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_A_and_L_stability(scheme: object, A: bool, L: bool) -> None:
    assert is_A_stable(scheme) is A
    assert is_L_stable(scheme) is L


def test_pole_test_is_what_rejects_left_pole() -> None:
    assert stability_function(LEFT_POLE) == 1 / (z + 1)
    assert not poles_in_right_half_plane(LEFT_POLE)
    # ... while |R(iy)| <= 1 holds: E(y) = y^2 >= 0
    assert e_polynomial(LEFT_POLE).as_expr() == e_polynomial(LEFT_POLE).gen ** 2


def test_theta_method_below_one_half_has_negative_E() -> None:
    E = e_polynomial(THETA_THIRD)
    assert sp.Poly(E.as_expr(), E.gen).LC() < 0
    assert R_infinity(THETA_THIRD) == -2


def test_explicit_schemes_have_infinite_R_infinity_and_polynomial_growth() -> None:
    assert R_infinity(RK4) is sp.zoo
    assert decay_asymptotics(RK4) == {"R": (Rat(1, 24), 4), "dR": (Rat(1, 6), 3), "zdR": (Rat(1, 6), 4)}


def test_known_decay_terms() -> None:
    assert decay_asymptotics(BACKWARD_EULER) == {"R": (-1, -1), "dR": (1, -2), "zdR": (1, -1)}
    assert decay_asymptotics(COLLOCATION["gauss"][1]) == {"R": (1, 0), "dR": (-12, -2), "zdR": (-12, -1)}
    # trapezoid: R = (1 + z/2)/(1 - z/2) = -1 - 4/z + ..., R' ~ 4/z^2
    assert decay_asymptotics(TRAPEZOID) == {"R": (-1, 0), "dR": (4, -2), "zdR": (4, -1)}
    # Radau IIA-3: R = (1 + 2z/5 + z^2/20)/(1 - 3z/5 + 3z^2/20 - z^3/60) ~ -3/z
    assert decay_asymptotics(COLLOCATION["radau"][2]) == {"R": (-3, -1), "dR": (3, -2), "zdR": (3, -1)}


def test_stiff_decay() -> None:
    assert has_stiff_decay(BACKWARD_EULER) and has_stiff_decay(SDIRK2) and has_stiff_decay(TR_BDF2)
    assert not has_stiff_decay(TRAPEZOID) and not has_stiff_decay(MIDPOINT) and not has_stiff_decay(RK4)
    assert has_stiff_decay(ROS_EULER)


@pytest.mark.parametrize("scheme", OWN_SCHEMES[:-2], ids=_ids(OWN_SCHEMES[:-2]))
def test_order_of_own_schemes(scheme: RK) -> None:
    assert order(scheme) == scheme.order


def test_stage_orders() -> None:
    assert [stage_order(s) for s in (EULER, RK4, BACKWARD_EULER, MIDPOINT, TRAPEZOID, SDIRK2, TR_BDF2)] == [1, 1, 1, 1, 2, 1, 2]
    assert stage_order(ROS_PAIR) is None


def test_rosenbrock_order_and_stability() -> None:
    assert order(ROS_EULER) == 1
    assert order(ROS_PAIR) == 2
    # R = 1 + z b^T (I - z beta)^{-1} e computed here directly, not via the determinant formula
    beta = sp.Matrix(ROS_PAIR.alpha) + sp.Matrix(ROS_PAIR.gamma)
    direct = 1 + z * (sp.Matrix([ROS_PAIR.b]) * (sp.eye(2) - z * beta).inv() * sp.ones(2, 1))[0]
    assert sp.simplify(direct - stability_function(ROS_PAIR)) == 0


# ---------------------------------------------------------------------------------------------------------------
# Rooted trees: identities independent of the generator.
# ---------------------------------------------------------------------------------------------------------------
def test_tree_counts_and_identities() -> None:
    assert [len(rooted_trees(k)) for k in range(1, 11)] == [1, 1, 2, 4, 9, 20, 48, 115, 286, 719]  # OEIS A000081
    for k in range(1, 9):
        trees = rooted_trees(k)
        assert len(set(trees)) == len(trees)
        # labelled rooted trees (Cayley): sum k!/sigma = k^(k-1); heap orderings: sum k!/(sigma gamma) = (k-1)!
        assert sum(sp.factorial(k) / tree_symmetry(t) for t in trees) == k ** (k - 1)
        assert sum(sp.factorial(k) / (tree_symmetry(t) * tree_density(t)) for t in trees) == sp.factorial(k - 1)


# ---------------------------------------------------------------------------------------------------------------
# The catalogue: orders as claimed, nodepy agreement, Cauchy's estimate, decay laws measured.
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", CATALOGUE, ids=_ids(CATALOGUE))
def test_catalogue_order_matches_source(scheme: object) -> None:
    assert order(scheme) == scheme.order  # type: ignore[attr-defined]


def _float_matrix(rows: object) -> np.ndarray:
    return np.array([[float(sp.N(v, 30)) for v in row] for row in rows])  # type: ignore[union-attr]


def _nodepy_method(nodepy_rk: object, scheme: object) -> object:
    """The tableau as a nodepy method with float coefficients (explicit ones as ExplicitRungeKuttaMethod)."""
    A = _float_matrix(scheme.A)  # type: ignore[attr-defined]
    b = np.array([float(sp.N(v, 30)) for v in scheme.b])  # type: ignore[attr-defined]
    cls = nodepy_rk.ExplicitRungeKuttaMethod if _is_explicit(scheme) else nodepy_rk.RungeKuttaMethod  # type: ignore[attr-defined]
    return cls(A, b)


CATALOGUE_RK = [s for s in CATALOGUE if scheme_kind(s) == "butcher"]
NODEPY_SCHEMES = [s for s in ONE_STEP if scheme_kind(s) == "butcher" and s is not LEFT_POLE]


@pytest.mark.parametrize("scheme", NODEPY_SCHEMES, ids=_ids(NODEPY_SCHEMES))
def test_stability_function_agrees_with_nodepy(scheme: object) -> None:
    import nodepy.runge_kutta_method as nodepy_rk  # a declared test dependency: missing is a failure, not a skip
    method = _nodepy_method(nodepy_rk, scheme)
    p_np, q_np = method.stability_function(mode="float")
    R, _ = stability_numpy(scheme)
    points = np.array([-0.5, -3.0, 0.7j, -2 + 1.5j, 0.4 + 0.2j, -10.0, -7 - 4j])
    ours = R(points)
    theirs = np.polyval(np.asarray(p_np.coeffs, dtype=float), points) / np.polyval(np.asarray(q_np.coeffs, dtype=float), points)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scheme", CATALOGUE_RK, ids=_ids(CATALOGUE_RK))
def test_order_agrees_with_nodepy(scheme: object) -> None:
    import nodepy.runge_kutta_method as nodepy_rk  # a declared test dependency: missing is a failure, not a skip
    if scheme.order > 8:  # type: ignore[attr-defined]
        pytest.skip("nodepy's float order test is not reliable beyond order 8")
    method = _nodepy_method(nodepy_rk, scheme)
    # float coefficients up to ~200 in magnitude (Verner): residuals of satisfied conditions reach ~1e-13
    assert method.order(tol=1e-10) == order(scheme)


A_STABLE = [s for s in ONE_STEP if is_A_stable(s)]


@pytest.mark.parametrize("scheme", A_STABLE, ids=_ids(A_STABLE))
def test_cauchy_estimate_holds(scheme: object) -> None:
    """|R'(z)| <= 1/(|z| sin theta) in |arg(-z)| <= pi/2 - theta for every A-stable R."""
    _, dR = stability_numpy(scheme)
    radii = np.logspace(-2, 8, 60)
    for theta in (0.05, 0.3, 0.8, math.pi / 2):
        for angle in np.linspace(-(math.pi / 2 - theta), math.pi / 2 - theta, 9):
            zz = -radii * np.exp(1j * angle)
            bound = np.array([cauchy_bound(complex(v), theta) for v in zz])
            assert np.all(np.abs(dR(zz)) <= bound * (1 + 1e-9))


def _is_implicit(scheme: object) -> bool:
    return not _is_explicit(scheme) and scheme is not LEFT_POLE


IMPLICIT = [s for s in ONE_STEP if _is_implicit(s)]
Z_VALUES = [-1, -100, -10**4, -10**6, -10**8]


def _mp_matrix(rows: object) -> mpmath.matrix:
    return mpmath.matrix([[mpmath.mpf(sp.N(v, mpmath.mp.dps + 10)) for v in row] for row in rows])  # type: ignore[union-attr]


def _measured_dy1_dlambda(scheme: object, zz: int) -> mpmath.mpf:
    """dy1/dlambda at h = 1, y0 = 1 from the stage equations, independently of the symbolic R.

    Runge–Kutta: stages Y = y0 e + lambda A Y (h = 1); the implicit-function theorem on this system gives
    (I - lambda A) Y' = A Y and y1' = b^T Y + lambda b^T Y'.  Rosenbrock: the stage recursion is differentiated
    numerically by mpmath at the working precision.
    """
    lam_ = mpmath.mpf(zz)
    if scheme_kind(scheme) == "butcher":
        A = _mp_matrix(scheme.A)  # type: ignore[attr-defined]
        b = mpmath.matrix([[mpmath.mpf(sp.N(v, mpmath.mp.dps + 10)) for v in scheme.b]])  # type: ignore[attr-defined]
        s = A.rows
        M = mpmath.eye(s) - lam_ * A
        Y = mpmath.lu_solve(M, mpmath.matrix([1] * s))
        dY = mpmath.lu_solve(M, A * Y)
        return (b * Y)[0] + lam_ * (b * dY)[0]
    alpha = _mp_matrix(scheme.alpha)  # type: ignore[attr-defined]
    gamma = _mp_matrix(scheme.gamma)  # type: ignore[attr-defined]
    bw = [mpmath.mpf(sp.N(v, mpmath.mp.dps + 10)) for v in scheme.b]  # type: ignore[attr-defined]
    s = len(bw)

    def step(lv: mpmath.mpf) -> mpmath.mpf:
        k: list[mpmath.mpf] = []
        for i in range(s):
            arg = 1 + sum(alpha[i, j] * k[j] for j in range(i))
            rhs = lv * arg + lv * sum(gamma[i, j] * k[j] for j in range(i))
            k.append(rhs / (1 - gamma[i, i] * lv))
        return 1 + sum(bw[i] * k[i] for i in range(s))

    return mpmath.diff(step, lam_)


def _evaluate(expr: sp.Expr, zz: int) -> mpmath.mpf:
    """The closed form at an integer z, substituted exactly and evaluated to the working precision (this also
    handles coefficients that are ``CRootOf`` algebraic numbers)."""
    value = sp.N(expr.xreplace({z: sp.Integer(zz)}), mpmath.mp.dps + 10)
    return mpmath.mpf(sp.re(value)._to_mpmath(mpmath.mp.prec + 40))


@pytest.mark.parametrize("scheme", IMPLICIT, ids=_ids(IMPLICIT))
def test_decay_law_measured_one_step(scheme: object) -> None:
    """Measured dy1/dlambda equals the closed form h R'(z) y0 to 12 digits for z = -1 ... -1e8."""
    dR_expr = stability_derivative(scheme)
    for zz in Z_VALUES:
        # cond(I - zA) ~ |z| and the cancellation in b^T Y + z b^T Y' costs up to ~3 log10|z| digits
        with mpmath.workdps(40 + 4 * int(math.log10(abs(zz)))):
            measured = _measured_dy1_dlambda(scheme, zz)
            closed = _evaluate(dR_expr, zz)
            assert abs(measured - closed) <= mpmath.mpf(10) ** -12 * abs(closed), (zz, measured, closed)


@pytest.mark.parametrize("scheme", IMPLICIT, ids=_ids(IMPLICIT))
def test_decay_asymptotics_are_the_actual_leading_terms(scheme: object) -> None:
    """c z^e from decay_asymptotics matches R, R', z R' at z = -1e12 (relative error O(1/|z|))."""
    laws = decay_asymptotics(scheme)
    R_expr = stability_function(scheme)
    dR_expr = stability_derivative(scheme)
    with mpmath.workdps(60):
        zz = mpmath.mpf(-(10**12))
        values = {"R": _evaluate(R_expr, -(10**12)), "dR": _evaluate(dR_expr, -(10**12))}
        values["zdR"] = zz * values["dR"]
        for key, value in values.items():
            c, e = laws[key]
            predicted = mpmath.mpf(sp.N(c, 60)) * zz ** int(e)
            assert abs(value / predicted - 1) < 1e-9, (key, value, predicted)


# ---------------------------------------------------------------------------------------------------------------
# Sensitivity laws.
# ---------------------------------------------------------------------------------------------------------------
def test_sensitivity_laws_follow_from_the_chain_rule() -> None:
    scheme = SDIRK2
    R = stability_function(scheme)
    rate = -p**2  # any lambda(p)
    steps = 3
    yn = R.subs(z, h * rate) ** steps * y0
    direct = sp.diff(yn, p)
    closed = n_step_sensitivity(scheme, steps).subs(sp.Derivative(lam(p), p), sp.diff(rate, p)).subs(z, h * rate)
    assert sp.simplify(direct - closed) == 0
    one = one_step_sensitivity(scheme).subs(sp.Derivative(lam(p), p), sp.diff(rate, p)).subs(z, h * rate)
    assert sp.simplify(sp.diff(R.subs(z, h * rate) * y0, p) - one) == 0
    assert exact_sensitivity(steps) == steps * h * sp.exp(steps * z) * sp.Derivative(lam(p), p) * y0


@pytest.mark.parametrize("scheme", [BACKWARD_EULER, SDIRK2, COLLOCATION["gauss"][1], RK4], ids=lambda s: s.name)
def test_sensitivity_ratio_numpy_matches_exact(scheme: object) -> None:
    ratio = sensitivity_ratio_numpy(scheme)
    for zz, steps in ((-0.5, 1), (-2.0, 4), (-30.0, 7), (0.3, 2)):
        exact = complex(sp.N(sensitivity_ratio(scheme, sp.Float(zz, 30), steps), 20))
        assert ratio(zz, steps) == pytest.approx(exact.real, rel=1e-10)
    # small z: the scheme's sensitivity is the exact one (ratio -> 1)
    assert ratio(-1e-6, 3) == pytest.approx(1.0, abs=1e-5)
    assert n_step_sensitivity(scheme, 1) == one_step_sensitivity(scheme)


def test_n_step_decay_laws() -> None:
    # backward Euler: n R^(n-1) R' = n (1 - z)^-(n+1) ~ n (-1)^(n+1) z^-(n+1)
    assert [n_step_decay(BACKWARD_EULER, k) for k in (1, 2, 5)] == [(1, -2), (-2, -3), (5, -6)]
    # |R(inf)| = 1: the n-step sensitivity keeps the one-step rate z^-2 and grows like n
    assert n_step_decay(COLLOCATION["gauss"][1], 7) == (-84, -2)
    # Lobatto IIIC-3: R ~ -6 z^-2, R' ~ 12 z^-3  =>  n (-6)^(n-1) 12 z^(-2(n-1)-3)
    assert n_step_decay(COLLOCATION["lobatto"][1], 3) == (3 * 36 * 12, -7)
    with pytest.raises(SchemeError, match="steps"):
        n_step_decay(BACKWARD_EULER, 0)


def test_multistep_methods_are_refused_by_one_step_laws() -> None:
    from symsens.schemes._multistep import bdf
    with pytest.raises(SchemeError, match="multistep"):
        stability_function(bdf(2))
    with pytest.raises(SchemeError, match="multistep"):
        one_step_sensitivity(bdf(2))


def test_multistep_dispatch() -> None:
    import symsens.schemes._multistep as ms
    assert is_A_stable(ms.bdf(1)) and is_A_stable(ms.bdf(2)) and not is_A_stable(ms.bdf(3))
    assert has_stiff_decay(ms.bdf(4)) and not has_stiff_decay(ms.adams_moulton(3))
    assert [order(ms.bdf(k)) for k in range(1, 7)] == [1, 2, 3, 4, 5, 6]
    for k in range(1, 7):
        method = ms.bdf(k)
        coefficient, exponent = decay_asymptotics(method)["root"]
        # independent: zeta^k ~ alpha_0/(beta_k z) as z -> -oo
        expected = abs(method.alpha[0] / method.beta[-1]) ** Rat(1, k)
        assert exponent == Rat(-1, k)
        assert sp.simplify(coefficient - expected) == 0
        assert stage_order(method) is None


def test_bad_input_is_named() -> None:
    with pytest.raises(SchemeError, match="not a scheme"):
        stability_function(SimpleNamespace(name="nothing"))
    with pytest.raises(SchemeError, match="square"):
        stability_function(SimpleNamespace(name="bad", A=((1, 2),), b=(1,)))
    with pytest.raises(SchemeError, match="sector"):
        cauchy_bound(1.0 + 0j, 0.1)
