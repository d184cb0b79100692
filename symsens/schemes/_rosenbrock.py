"""Rosenbrock methods in Hairer–Wanner ``(alpha, gamma, b)`` form, and the implementation form of their codes.

Two equivalent ways to write one step (``J = f'(y0)``, ``Gamma = (gamma_ij)`` lower triangular with diagonal
``gamma``):

* analysis form (Hairer & Wanner II, IV.7, (7.4)) — stored in :class:`RosenbrockTableau`::

      (I - h gamma J) k_i = h f(y0 + sum_{j<i} alpha_ij k_j) + h J sum_{j<i} gamma_ij k_j,  y1 = y0 + sum b_i k_i

* implementation form of RODAS, KPP, OrdinaryDiffEq.jl (HW II, IV.7): with ``u = Gamma k``,

      (1/(h gamma) I - J) u_i = f(y0 + sum_{j<i} a_ij u_j) + sum_{j<i} (c_ij / h) u_j,  y1 = y0 + sum m_i u_i

  where ``(a_ij) = alpha Gamma^-1``, ``(c_ij) = diag(1/gamma) - Gamma^-1`` (strictly lower) and ``m = b Gamma^-1``.

:func:`from_implementation_form` inverts this exactly (``Gamma = (diag(1/gamma) - C)^-1``,
``alpha = a Gamma``, ``b = m Gamma``) and :func:`implementation_form` goes back, so a code's published
``(a, C, m)`` can be stored in analysis form without rounding beyond the published digits.

=============  ======  ========  ==========================================================================
name           stages  order     coefficients
=============  ======  ========  ==========================================================================
``ros2``       2       2 (1)     exact, ``gamma = 1 + 1/sqrt(2)`` (Verwer et al. 1999)
``ros3p``      3       3 (2)     exact, ``gamma = 1/2 + sqrt(3)/6`` (Lang & Verwer 2001)
``rodas3``     4       3 (2)     exact rationals, ``gamma = 1/2`` (Sandu et al. 1997)
``rodas4``     6       4 (3)     16-digit decimals of Hairer's ``rodas.f``, ``tolerance = 1e-13``
``rodas5p``    8       5 (4)     16/17-digit decimals of Steinebach (2023), ``tolerance = 1e-12``
=============  ======  ========  ==========================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import sympy

from .._errors import SchemeError
from ._tableau import RosenbrockTableau, exact

__all__ = [
    "from_implementation_form",
    "implementation_form",
    "ros2",
    "ros3p",
    "rodas3",
    "rodas4",
    "rodas5p",
]

R = sympy.Rational


def _dec(text: str) -> sympy.Rational:
    """The exact rational value of a published decimal string (never a binary float)."""
    return sympy.Rational(text)


def _strictly_lower(rows: Sequence[Sequence[sympy.Expr]]) -> list[list[sympy.Expr]]:
    """Square strictly-lower ``s x s`` matrix from its rows below the diagonal (``rows[i]`` = row ``i+1``)."""
    s = len(rows) + 1
    M = [[sympy.Integer(0)] * s for _ in range(s)]
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            M[i][j] = value
    return M


def from_implementation_form(
    name: str,
    gamma: sympy.Expr,
    a: Sequence[Sequence[sympy.Expr]],
    C: Sequence[Sequence[sympy.Expr]],
    m: Sequence[sympy.Expr],
    m_hat: Sequence[sympy.Expr] | None,
    *,
    order: int,
    embedded_order: int | None = None,
    reference: str = "",
    tolerance: sympy.Rational | None = None,
) -> RosenbrockTableau:
    """Exact ``(alpha, gamma, b, bhat)`` from a code's ``(gamma, a, C, m, mhat)`` (see the module docstring).

    ``a`` and ``C`` are square and strictly lower triangular; ``C`` follows Hairer's sign convention (the
    stage right-hand side is ``+ sum_j (c_ij/h) u_j``).
    """
    g = exact(gamma, scheme=name, what="gamma")
    s = len(m)
    a_mat = sympy.Matrix(s, s, lambda i, j: exact(a[i][j], scheme=name, what=f"a[{i}][{j}]"))
    C_mat = sympy.Matrix(s, s, lambda i, j: exact(C[i][j], scheme=name, what=f"C[{i}][{j}]"))
    for i in range(s):
        for j in range(i, s):
            if a_mat[i, j] != 0 or C_mat[i, j] != 0:
                raise SchemeError(f"scheme {name!r}: implementation form needs strictly lower a and C, entry ({i}, {j})")
    inverse_gamma = sympy.Matrix(s, s, lambda i, j: 1 / g if i == j else (-C_mat[i, j] if j < i else 0))
    Gamma = inverse_gamma.inv()  # lower triangular, diagonal gamma; exact
    alpha = (a_mat * Gamma).applyfunc(sympy.expand)
    b = (sympy.Matrix([list(m)]) * Gamma).applyfunc(sympy.expand)
    b_hat = None if m_hat is None else (sympy.Matrix([list(m_hat)]) * Gamma).applyfunc(sympy.expand)
    Gamma = Gamma.applyfunc(sympy.expand)
    return RosenbrockTableau(
        name=name,
        alpha=alpha.tolist(),
        gamma=Gamma.tolist(),
        b=list(b),
        order=order,
        b_error=None if b_hat is None else list(b_hat),
        embedded_order=embedded_order,
        reference=reference,
        tolerance=tolerance,
    )


def implementation_form(
    tableau: RosenbrockTableau,
) -> tuple[sympy.ImmutableMatrix, sympy.ImmutableMatrix, sympy.ImmutableMatrix, sympy.ImmutableMatrix | None]:
    """``(a, C, m, mhat)`` of the implementation form, exactly (``mhat`` is ``None`` without an embedding).

    ``a = alpha Gamma^-1``, ``C = diag(1/gamma) - Gamma^-1``, ``m = b Gamma^-1``; shapes (s, s), (s, s), (1, s).
    """
    s = tableau.stages
    Gamma_inv = tableau.gamma_matrix.inv().applyfunc(_tidy)
    a = (tableau.alpha_matrix * Gamma_inv).applyfunc(_tidy)
    # c_ij = -(Gamma^-1)_ij below the diagonal; the diagonal of diag(1/gamma) - Gamma^-1 is zero by definition.
    C = sympy.Matrix(s, s, lambda i, j: -Gamma_inv[i, j] if j < i else 0)
    m = (sympy.Matrix([list(tableau.b)]) * Gamma_inv).applyfunc(_tidy)
    m_hat = None
    if tableau.b_error is not None:
        m_hat = sympy.ImmutableMatrix((sympy.Matrix([list(tableau.b_error)]) * Gamma_inv).applyfunc(_tidy))
    return sympy.ImmutableMatrix(a), sympy.ImmutableMatrix(C), sympy.ImmutableMatrix(m), m_hat


def _tidy(value: sympy.Expr) -> sympy.Expr:
    """Canonical form of an entry: rationals stay rational, radicals get rational denominators."""
    value = sympy.expand(value)
    return value if value.is_Rational else sympy.expand(sympy.radsimp(value))


@functools.lru_cache(maxsize=None)
def ros2() -> RosenbrockTableau:
    """ROS2: two stages, order 2, L-stable, ``gamma = 1 + 1/sqrt(2)``; embedded linearly implicit Euler (order 1).

    Verwer et al. write it as ``(I - gamma h J) k1 = f(y0)``, ``(I - gamma h J) k2 = f(y0 + h k1) - 2 k1``,
    ``y1 = y0 + h (3/2 k1 + 1/2 k2)``, error estimate against ``y0 + h k1``.  With ``K1 = h k1``,
    ``K2 = h (k2 + 2 k1)`` this is HW form ``alpha21 = 1``, ``gamma21 = -2 gamma``, ``b = (1/2, 1/2)``,
    ``bhat = (1, 0)``.  (KPP's ``Ros2`` stores the same method as ``a21 = 1/gamma``, ``c21 = -2/gamma``,
    ``m = (3/(2 gamma), 1/(2 gamma))``; the tests check the equivalence.)

    Reference: J. G. Verwer, E. J. Spee, J. G. Blom, W. Hundsdorfer, "A second-order Rosenbrock method
    applied to photochemical dispersion problems", SIAM J. Sci. Comput. 20(4) (1999) 1456-1480.
    """
    g = 1 + 1 / sympy.sqrt(2)
    return RosenbrockTableau(
        name="ros2",
        alpha=[[0, 0], [1, 0]],
        gamma=[[g, 0], [sympy.expand(-2 * g), g]],
        b=[R(1, 2), R(1, 2)],
        order=2,
        b_error=[1, 0],
        embedded_order=1,
        reference=(
            "J. G. Verwer, E. J. Spee, J. G. Blom, W. Hundsdorfer, A second-order Rosenbrock method applied to "
            "photochemical dispersion problems, SIAM J. Sci. Comput. 20(4) (1999) 1456-1480"
        ),
    )


@functools.lru_cache(maxsize=None)
def ros3p() -> RosenbrockTableau:
    """ROS3P: three stages, order 3 (also for parabolic PDEs without order reduction), A-stable; embedded order 2.

    ``gamma = 1/2 + sqrt(3)/6``; ``alpha21 = alpha31 = 1``, ``alpha32 = 0``; ``gamma21 = -1``,
    ``gamma31 = -gamma``, ``gamma32 = 1/2 - 2 gamma``; ``b = (2/3, 0, 1/3)``, ``bhat = (1/3, 1/3, 1/3)``.
    Equals (exactly, checked in the tests) the implementation form of Lang & Verwer's coefficients as coded in
    OrdinaryDiffEq.jl (``ROS3PRodasTableau``): ``a21 = a31 = 1/gamma``, ``c21 = -1/gamma^2``, ... .

    Reference: J. Lang, J. Verwer, "ROS3P - an accurate third-order Rosenbrock solver designed for parabolic
    problems", BIT 41(4) (2001) 731-738.
    """
    g = R(1, 2) + sympy.sqrt(3) / 6
    return RosenbrockTableau(
        name="ros3p",
        alpha=[[0, 0, 0], [1, 0, 0], [1, 0, 0]],
        gamma=[[g, 0, 0], [-1, g, 0], [-g, sympy.expand(R(1, 2) - 2 * g), g]],
        b=[R(2, 3), 0, R(1, 3)],
        order=3,
        b_error=[R(1, 3), R(1, 3), R(1, 3)],
        embedded_order=2,
        reference=(
            "J. Lang, J. Verwer, ROS3P - an accurate third-order Rosenbrock solver designed for parabolic "
            "problems, BIT 41(4) (2001) 731-738"
        ),
    )


@functools.lru_cache(maxsize=None)
def rodas3() -> RosenbrockTableau:
    """RODAS3: four stages, order 3, stiffly accurate, L-stable, ``gamma = 1/2``; embedded order 2.

    Published in implementation form (KPP's ``Rodas3``): ``a31 = a41 = 2``, ``a43 = 1`` (others 0);
    ``c21 = 4``, ``c31 = 1``, ``c32 = -1``, ``c41 = 1``, ``c42 = -1``, ``c43 = -8/3``; ``m = (2, 0, 1, 1)``,
    error ``e = (0, 0, 0, 1)`` so ``mhat = (2, 0, 1, 0)``.  Converted exactly::

        alpha: a31 = 1, a41 = 3/4, a42 = -1/4, a43 = 1/2;   gamma: g21 = 1, g31 = g32 = -1/4,
        g41 = g42 = 1/12, g43 = -2/3;   b = (5/6, -1/6, -1/6, 1/2),   bhat = (3/4, -1/4, 1/2, 0).

    Reference: A. Sandu, J. G. Verwer, J. G. Blom, E. J. Spee, G. R. Carmichael, F. A. Potra,
    "Benchmarking stiff ODE solvers for atmospheric chemistry problems II: Rosenbrock solvers",
    Atmos. Environ. 31(20) (1997) 3459-3472.
    """
    return from_implementation_form(
        "rodas3",
        R(1, 2),
        a=_strictly_lower([[0], [2, 0], [2, 0, 1]]),
        C=_strictly_lower([[4], [1, -1], [1, -1, R(-8, 3)]]),
        m=[2, 0, 1, 1],
        m_hat=[2, 0, 1, 0],
        order=3,
        embedded_order=2,
        reference=(
            "A. Sandu, J. G. Verwer, J. G. Blom, E. J. Spee, G. R. Carmichael, F. A. Potra, Benchmarking stiff "
            "ODE solvers for atmospheric chemistry problems II: Rosenbrock solvers, Atmos. Environ. 31(20) "
            "(1997) 3459-3472"
        ),
    )


# RODAS (Hairer & Wanner), METH = 1 of rodas.f: stage times and gamma_i as published, for the tests.
RODAS4_C = (0, _dec("0.386"), _dec("0.21"), _dec("0.63"), 1, 1)
RODAS4_D = (_dec("0.25"), _dec("-0.1043"), _dec("0.1035"), _dec("-0.3620000000000023e-01"), 0, 0)


@functools.lru_cache(maxsize=None)
def rodas4() -> RosenbrockTableau:
    """RODAS (Hairer–Wanner): six stages, order 4, stiffly accurate, L-stable, ``gamma = 1/4``; embedded order 3.

    Source: the coefficients of ``rodas.f`` (``METH = 1``; also KPP's ``Rodas4`` and OrdinaryDiffEq.jl's
    ``RODAS4A/RODAS4C``), published in implementation form as 16-digit decimals ``a_ij``, ``c_ij``, with
    ``a_6j = a_5j`` (j <= 4), ``a_65 = 1``, ``m = (a_51, a_52, a_53, a_54, 1, 1)`` and error estimate ``u_6``
    (``mhat = m - e_6``).  Each decimal is stored exactly and converted exactly by
    :func:`from_implementation_form`.  The rounding leaves ``sum(b) - 1 ~ 8e-16`` and order-condition
    residuals ~1e-15, hence ``tolerance = 1e-13``; ``R(inf) = 0`` and L-stability hold only to that accuracy
    (stiff accuracy itself is exact: ``b`` is the last row of ``alpha + gamma``).  The tests check that the
    row sums of ``alpha`` and ``gamma`` reproduce the published ``c_i`` and ``gamma_i`` (``RODAS4_C``,
    ``RODAS4_D``).  Hairer's dense-output coefficients are also only 16-digit decimals and are not included.

    Reference: E. Hairer, G. Wanner, Solving Ordinary Differential Equations II, 2nd ed., Springer 1996,
    Sect. VI.4 (RODAS) and the code ``rodas.f`` (http://www.unige.ch/~hairer/software.html).
    """
    row5 = [
        _dec("0.1221224509226641e+01"),
        _dec("0.6019134481288629e+01"),
        _dec("0.1253708332932087e+02"),
        _dec("-0.6878860361058950"),
    ]
    a = _strictly_lower(
        [
            [_dec("0.1544e+01")],
            [_dec("0.9466785280815826"), _dec("0.2557011698983284")],
            [_dec("0.3314825187068521e+01"), _dec("0.2896124015972201e+01"), _dec("0.9986419139977817")],
            row5,
            row5 + [1],
        ]
    )
    C = _strictly_lower(
        [
            [_dec("-0.56688e+01")],
            [_dec("-0.2430093356833875e+01"), _dec("-0.2063599157091915")],
            [_dec("-0.1073529058151375"), _dec("-0.9594562251023355e+01"), _dec("-0.2047028614809616e+02")],
            [
                _dec("0.7496443313967647e+01"),
                _dec("-0.1024680431464352e+02"),
                _dec("-0.3399990352819905e+02"),
                _dec("0.1170890893206160e+02"),
            ],
            [
                _dec("0.8083246795921522e+01"),
                _dec("-0.7981132988064893e+01"),
                _dec("-0.3152159432874371e+02"),
                _dec("0.1631930543123136e+02"),
                _dec("-0.6058818238834054e+01"),
            ],
        ]
    )
    return from_implementation_form(
        "rodas4",
        R(1, 4),
        a=a,
        C=C,
        m=row5 + [1, 1],
        m_hat=row5 + [1, 0],
        order=4,
        embedded_order=3,
        tolerance=R(1, 10**13),
        reference=(
            "E. Hairer, G. Wanner, Solving ODEs II, 2nd ed., Springer 1996, Sect. VI.4; coefficients of the "
            "code rodas.f (METH=1), 16-digit decimals, converted exactly to (alpha, gamma) form"
        ),
    )


# Rodas5P stage times and gamma_i as published (OrdinaryDiffEq.jl RODAS5Pc, RODAS5Pd), for the tests.
RODAS5P_C = (
    0,
    _dec("0.6358126895828704"),
    _dec("0.4095798393397535"),
    _dec("0.9769306725060716"),
    _dec("0.4288403609558664"),
    1,
    1,
    1,
)
RODAS5P_D = (
    _dec("0.21193756319429014"),
    _dec("-0.42387512638858027"),
    _dec("-0.3384627126235924"),
    _dec("1.8046452872882734"),
    _dec("2.325825639765069"),
    0,
    0,
    0,
)


@functools.lru_cache(maxsize=None)
def rodas5p() -> RosenbrockTableau:
    """Rodas5P (Steinebach): eight stages, order 5, stiffly accurate, L-stable; embedded order 4.

    Source: Steinebach (2023) publishes the method in implementation form as double-precision decimals;
    we take them from OrdinaryDiffEq.jl (``RODAS5PA``, ``RODAS5PC``, ``gamma = 0.21193756319429014``,
    ``lib/OrdinaryDiffEqRosenbrock/src/rosenbrock_tableaus.jl``), where rows 7 and 8 of ``a`` repeat row 6 plus
    ``u_6`` (and ``u_7``), ``m = (a_61, ..., a_65, 1, 1, 1)`` and the error estimate is ``u_8``.  Stored exactly
    and converted exactly; residuals of ``sum(b) = 1`` and the order conditions are ~5e-15 (coefficients up
    to ~170 in size), hence ``tolerance = 1e-12``.  The tests check that the row sums of ``alpha`` and
    ``gamma`` reproduce the published ``c_i`` and ``gamma_i`` (``RODAS5P_C``, ``RODAS5P_D``).

    Reference: G. Steinebach, "Construction of Rosenbrock-Wanner method Rodas5P and numerical benchmarks
    within the Julia Differential Equations package", BIT Numer. Math. 63 (2023) 27.
    """
    row6 = [
        _dec("-7.502846399306121"),
        _dec("2.561846144803919"),
        _dec("-11.627539656261098"),
        _dec("-0.18268767659942256"),
        _dec("0.030198172008377946"),
    ]
    a = _strictly_lower(
        [
            [_dec("3.0")],
            [_dec("2.849394379747939"), _dec("0.45842242204463923")],
            [_dec("-6.954028509809101"), _dec("2.489845061869568"), _dec("-10.358996098473584")],
            [_dec("2.8029986275628964"), _dec("0.5072464736228206"), _dec("-0.3988312541770524"), _dec("-0.04721187230404641")],
            row6,
            row6 + [1],
            row6 + [1, 1],
        ]
    )
    C = _strictly_lower(
        [
            [_dec("-14.155112264123755")],
            [_dec("-17.97296035885952"), _dec("-2.859693295451294")],
            [_dec("147.12150275711716"), _dec("-1.41221402718213"), _dec("71.68940251302358")],
            [_dec("165.43517024871676"), _dec("-0.4592823456491126"), _dec("42.90938336958603"), _dec("-5.961986721573306")],
            [
                _dec("24.854864614690072"),
                _dec("-3.0009227002832186"),
                _dec("47.4931110020768"),
                _dec("5.5814197821558125"),
                _dec("-0.6610691825249471"),
            ],
            [
                _dec("30.91273214028599"),
                _dec("-3.1208243349937974"),
                _dec("77.79954646070892"),
                _dec("34.28646028294783"),
                _dec("-19.097331116725623"),
                _dec("-28.087943162872662"),
            ],
            [
                _dec("37.80277123390563"),
                _dec("-3.2571969029072276"),
                _dec("112.26918849496327"),
                _dec("66.9347231244047"),
                _dec("-40.06618937091002"),
                _dec("-54.66780262877968"),
                _dec("-9.48861652309627"),
            ],
        ]
    )
    return from_implementation_form(
        "rodas5p",
        _dec("0.21193756319429014"),
        a=a,
        C=C,
        m=row6 + [1, 1, 1],
        m_hat=row6 + [1, 1, 0],
        order=5,
        embedded_order=4,
        tolerance=R(1, 10**12),
        reference=(
            "G. Steinebach, Construction of Rosenbrock-Wanner method Rodas5P and numerical benchmarks within the "
            "Julia Differential Equations package, BIT Numer. Math. 63 (2023) 27; double-precision decimals as in "
            "OrdinaryDiffEq.jl (RODAS5PA/RODAS5PC), converted exactly to (alpha, gamma) form"
        ),
    )
