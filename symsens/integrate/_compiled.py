"""The compiled backend: one generated C++ driver per (model, sensitivity parameters, method).

For a small model one library runs every mode below (the mode is an argument of ``symsens_solve``), so the
forward and discrete gradients of a (model, parameters, method) compile once between them.  For a large one
(``_SEPARATE_DUAL_SIZE``) the discrete modes (2, 3: dual numbers) are a library of their own, built on their first
call (:func:`discrete_solver`, ``CompiledSolver.companion``), so that a forward-sensitivity or plain first use
compiles no dual numbers.  A plain solve runs in a library already built or loaded for any parameter selection
(:func:`plain_solver`); only a plain solve with nothing built yet compiles the small library without sensitivity
parameters.  A library compiles as several translation units, one per core at a time (``_UNITS``).

generate (model routines from ``symsens.codegen`` + the scheme's exact coefficients printed into a driver)
-> build (``symsens.codegen._build``, cached by content hash) -> load (ctypes) -> call ``symsens_solve``
once per solve.  The whole integration runs in C++; Python only prepares buffers and reads results.

Methods (``method_spec``): explicit Runge–Kutta pairs (``EXPLICIT_METHODS``, symsens_erk.hpp) and the implicit
families (``IMPLICIT_METHODS``): Radau IIA(3) in Hairer's transformed form (symsens_radau.hpp), SDIRK/ESDIRK
(symsens_dirk.hpp), Rosenbrock (symsens_rosenbrock.hpp) and variable-order NDF/BDF (symsens_bdf.hpp).  Every
coefficient is printed exactly (a double literal and a 40-digit decimal per constant) from the catalogue, or,
for Radau's eigen-transformation, from a 60-digit computation checked against its defining identities.

The driver instantiates the integrator four ways, selected by ``mode`` at call time:

====  ===================================  ================================================================
mode  scalar / time types                  what it computes
====  ===================================  ================================================================
0     double / double                      the solution only
1     double / double, augmented (y, S)    continuous forward sensitivities ``S' = J S + F_p``
2     Dual<double, P> / double             discrete forward mode: the exact derivative of the numerical
                                           solution with the step sizes held constant (forward-mode AD
                                           through the solver, as ForwardDiff through OrdinaryDiffEq)
3     Dual<double, P> / Dual<double, P>    discrete forward mode with the step sizes differentiated too
                                           (AD through the step-size controller)
====  ===================================  ================================================================
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from .._errors import CodegenError
from .._once import cached_once
from ..codegen._build import compiler_jobs, load_library
from ..codegen._kernels import cached_build, cached_library, model_facts, runtime_header
from ..model._model import Model

if TYPE_CHECKING:
    import sympy as sp

    from ..codegen._printer import ConstantTable

# SymPy, mpmath and the printer are imported by the functions that print tableaux, which only a build runs: a
# process that loads its solvers from the cache imports none of them.

__all__ = ["CompiledSolver", "compiled_solver", "method_spec", "EXPLICIT_METHODS", "IMPLICIT_METHODS", "OptionsStruct", "StatsStruct", "plain_solver", "discrete_solver", "MODE_PLAIN", "MODE_FORWARD", "MODE_DISCRETE", "MODE_DISCRETE_STEPS"]

MODE_PLAIN, MODE_FORWARD, MODE_DISCRETE, MODE_DISCRETE_STEPS = 0, 1, 2, 3

#: Step times the first call's buffer holds (8 MiB each for times and sizes; untouched pages cost nothing).  A
#: longer run is repeated once with room for all its steps, so ``max_steps`` never sizes an allocation.
STEP_BUFFER = 1 << 20


class OptionsStruct(ctypes.Structure):
    """Mirror of ``symsens::Options`` (symsens_solver.hpp); field order and types must match."""

    _fields_ = [
        ("rtol", ctypes.c_double),
        ("atol", ctypes.c_double),
        ("first_step", ctypes.c_double),
        ("max_step", ctypes.c_double),
        ("min_step", ctypes.c_double),
        ("max_steps", ctypes.c_long),
        ("tangents_in_norm", ctypes.c_int),
        ("differentiate_steps", ctypes.c_int),
        ("fixed_step", ctypes.c_int),
        ("step_onto_outputs", ctypes.c_int),
        ("n_replay", ctypes.c_long),
        ("replay_steps", ctypes.POINTER(ctypes.c_double)),
        ("safety", ctypes.c_double),
        ("factor_min", ctypes.c_double),
        ("factor_max", ctypes.c_double),
        ("beta1", ctypes.c_double),
        ("beta2", ctypes.c_double),
        ("record_steps", ctypes.c_int),
        ("outputs_at_steps", ctypes.c_int),
        ("step_capacity", ctypes.c_long),
    ]


class StatsStruct(ctypes.Structure):
    """Mirror of ``symsens::Stats``."""

    _fields_ = [
        ("accepted", ctypes.c_long),
        ("rejected", ctypes.c_long),
        ("nfev", ctypes.c_long),
        ("njev", ctypes.c_long),
        ("nlu", ctypes.c_long),
        ("newton_iterations", ctypes.c_long),
        ("status", ctypes.c_int),
        ("t_failure", ctypes.c_double),
        ("n_outputs", ctypes.c_long),
    ]


@dataclass(frozen=True)
class MethodSpec:
    """How a method name maps to a C++ stepper: its family, header, stepper and the tableau initialiser.

    Everything but ``tableau_code`` is a constant of the method (``_METHOD_FACTS``), so asking for a spec is
    free; ``tableau_code`` is printed from the scheme catalogue (exact SymPy coefficients) on first access,
    which only a build does, and that printing checks the constants against the catalogue.
    """

    name: str
    family: str           # "explicit", "dirk" (SDIRK/ESDIRK), "radau", "rosenbrock", "bdf" or "exponential"
    header: str
    stepper: str          # C++ expression constructing the stepper for scalar T and dimension `dimension`
    order: int
    error_order: int | None  # None: no embedded estimate (fixed steps only)
    # Recommended PI-controller settings of the family (what the stepper tests were tuned with); the keys are
    # those of ``symsens.solve(controller=...)``.  For every family today this equals the defaults of
    # ``_solve.py`` with q = error_order (0.9, 0.2, 10, 0.7/q, 0.4/q); BDF ignores beta1/beta2 (its own
    # order and step selection, scipy's), and its ``error_order`` (2, order 1 at the start) only seeds them.
    controller: Mapping[str, float] = field(default_factory=dict, hash=False, compare=False)

    @property
    def tableau_code(self) -> str:
        """C++ defining ``template <class T> ... make_tableau()`` (and its constants)."""
        return _tableau_code(self.name)


@dataclass(frozen=True)
class _BuiltTableau:
    """A method as printed from the scheme catalogue: the tableau code and what the catalogue says of it."""

    name: str
    family: str
    header: str
    stepper: str
    tableau_code: str
    order: int
    error_order: int | None
    controller: Mapping[str, float] = field(default_factory=dict, hash=False, compare=False)


def _coefficient_table(values: Sequence[sp.Expr], constants: ConstantTable) -> str:
    import sympy as sp

    return ", ".join(f"c[{constants.index(sp.nsimplify(v) if isinstance(v, float) else v)}]" for v in values)


def _constants_preamble(constants: ConstantTable) -> str:
    """``tableau_constants<T>()``: every coefficient as T, from a double literal and a 40-digit decimal."""
    table = constants.initialisers()
    if not table:
        return "template <class T>\ninline const T* tableau_constants() { return nullptr; }\n\n"
    init = ",\n".join(f"        symsens::constant<T>({d}, \"{dec}\")" for d, dec in table)
    return (
        "template <class T>\ninline const T* tableau_constants() {\n"
        f"    static const T table[{len(table)}] = {{\n{init}\n    }};\n    return table;\n}}\n\n"
    )


def _pi_controller(error_order: int | None, order: int) -> dict[str, float]:
    q = error_order or order
    return {"safety": 0.9, "factor_min": 0.2, "factor_max": 10.0, "beta1": 0.7 / q, "beta2": 0.4 / q}


def _embedded_error_order(scheme) -> int | None:  # type: ignore[no-untyped-def]
    """q + 1, q = min(order, embedded order): the local error estimate behaves like h^(q+1)."""
    if scheme.b_error is None:
        return None
    embedded = scheme.embedded_order if scheme.embedded_order is not None else scheme.order - 1
    return min(scheme.order, embedded) + 1


@cached_once()  # printing the tableau costs ~1 ms per call (verner7); the result is immutable
def _explicit_spec(name: str) -> _BuiltTableau:
    import sympy as sp

    from ..codegen._printer import ConstantTable
    from ..schemes._registry import get_scheme

    scheme = get_scheme(name)
    if scheme.family != "explicit":
        raise CodegenError(f"{name!r} is not an explicit Runge–Kutta scheme")
    s = scheme.stages
    constants = ConstantTable()
    zero = sp.S.Zero
    a = [scheme.A[i][j] for i in range(s) for j in range(s)]
    b = list(scheme.b)
    if scheme.b_error is not None:
        e = [bi - bh for bi, bh in zip(scheme.b, scheme.b_error)]
        # The estimate is the difference of orders p and p_hat: it behaves like h^(min(p, p_hat) + 1).
        error_order = min(scheme.order, scheme.embedded_order if scheme.embedded_order is not None else scheme.order - 1) + 1
    else:
        e = [zero] * s
        error_order = None
    lines = [
        "template <class T>",
        "symsens::ExplicitTableau<T> make_tableau() {",
        "    const T* c = tableau_constants<T>();",
        "    symsens::ExplicitTableau<T> tab;",
        f"    tab.stages = {s};",
        f"    tab.error_order = {error_order or scheme.order};",
        f"    tab.fsal = {'true' if scheme.fsal else 'false'};",
        f"    tab.a = {{{_coefficient_table(a, constants)}}};",
        f"    tab.b = {{{_coefficient_table(b, constants)}}};",
        f"    tab.e = {{{_coefficient_table(e, constants)}}};",
        f"    tab.c = {{{_coefficient_table(list(scheme.c), constants)}}};",
        "    return tab;",
        "}",
    ]
    preamble = _constants_preamble(constants)
    return _BuiltTableau(
        name=name,
        family="explicit",
        header="symsens_erk.hpp",
        stepper="symsens::ExplicitRungeKutta<T>(make_tableau<T>(), dimension)",
        tableau_code=preamble + "\n".join(lines) + "\n",
        order=scheme.order,
        error_order=error_order,
        controller=_pi_controller(error_order, scheme.order),
    )


EXPLICIT_METHODS: tuple[str, ...] = ("euler", "heun", "rk4", "bs3", "dopri5", "tsit5", "verner6", "verner7")

#: Implicit integrators: Radau IIA (3 stages, order 5; alias "radau5"), SDIRK/ESDIRK, Rosenbrock, and the
#: variable-order (1-5) BDF/NDF.  sdirk2 has no embedded pair: fixed or replayed steps only.
IMPLICIT_METHODS: tuple[str, ...] = (
    "radau-iia-3", "radau5", "tr-bdf2", "kvaerno3", "kvaerno4", "kvaerno5", "sdirk4", "sdirk2",
    "ros2", "ros3p", "rodas3", "rodas4", "rodas5p", "bdf",
)
_ALIASES = {"radau5": "radau-iia-3"}
_DIRK_METHODS = ("tr-bdf2", "kvaerno3", "kvaerno4", "kvaerno5", "sdirk4", "sdirk2")
_ROSENBROCK_METHODS = ("ros2", "ros3p", "rodas3", "rodas4", "rodas5p")


def _tableau_function(struct: str, fields: list[str], constants: ConstantTable) -> str:
    lines = ["template <class T>", f"{struct} make_tableau() {{", "    const T* c = tableau_constants<T>();",
             "    (void)c;", f"    {struct} tab;"]
    lines += [f"    {line}" for line in fields]
    lines += ["    return tab;", "}"]
    return _constants_preamble(constants) + "\n".join(lines) + "\n"


def _dirk_spec(name: str) -> _BuiltTableau:
    """SDIRK / ESDIRK: ``symsens::DiagonallyImplicitRungeKutta<T>`` (symsens_dirk.hpp)."""
    import sympy as sp

    from ..codegen._printer import ConstantTable
    from ..schemes._registry import get_scheme

    scheme = get_scheme(name)
    if scheme.family not in ("sdirk", "esdirk"):
        raise CodegenError(f"{name!r} is not a diagonally implicit scheme (family {scheme.family!r})")
    s = scheme.stages
    constants = ConstantTable()
    error_order = _embedded_error_order(scheme)
    if error_order is not None:
        e = [bi - bh for bi, bh in zip(scheme.b, scheme.b_error)]
    else:
        e = [sp.S.Zero] * s  # all zero: the stepper computes no estimate (fixed or replayed steps only)
    explicit_first = scheme.family == "esdirk"
    if explicit_first and (scheme.A[0][0] != 0 or scheme.c[0] != 0):
        raise CodegenError(f"{name!r}: an ESDIRK needs a_11 = c_1 = 0")
    gamma = scheme.A[s - 1][s - 1]
    for i in range(1 if explicit_first else 0, s):
        if sp.simplify(scheme.A[i][i] - gamma) != 0:
            raise CodegenError(f"{name!r}: the diagonal is not constant (a_{i + 1}{i + 1} != gamma)")
    a = [scheme.A[i][j] for i in range(s) for j in range(s)]
    fields = [
        f"tab.stages = {s};",
        f"tab.error_order = {error_order or scheme.order + 1};",
        f"tab.explicit_first_stage = {'true' if explicit_first else 'false'};",
        f"tab.gamma = c[{constants.index(gamma)}];",
        f"tab.a = {{{_coefficient_table(a, constants)}}};",
        f"tab.b = {{{_coefficient_table(list(scheme.b), constants)}}};",
        f"tab.e = {{{_coefficient_table(e, constants)}}};",
        f"tab.c = {{{_coefficient_table(list(scheme.c), constants)}}};",
    ]
    return _BuiltTableau(
        name=name, family="dirk", header="symsens_dirk.hpp",
        stepper="symsens::DiagonallyImplicitRungeKutta<T>(make_tableau<T>(), dimension, o)",
        tableau_code=_tableau_function("symsens::DiagonallyImplicitTableau<T>", fields, constants),
        order=scheme.order, error_order=error_order, controller=_pi_controller(error_order, scheme.order),
    )


def _rosenbrock_spec(name: str) -> _BuiltTableau:
    """Rosenbrock (Hairer–Wanner form): ``symsens::Rosenbrock<T>`` (symsens_rosenbrock.hpp)."""
    import sympy as sp

    from ..codegen._printer import ConstantTable
    from ..schemes._registry import get_scheme

    scheme = get_scheme(name)
    if scheme.family != "rosenbrock":
        raise CodegenError(f"{name!r} is not a Rosenbrock scheme")
    s = scheme.stages
    constants = ConstantTable()
    error_order = _embedded_error_order(scheme)
    e = [bi - bh for bi, bh in zip(scheme.b, scheme.b_error)] if error_order is not None else [sp.S.Zero] * s
    fields = [
        f"tab.stages = {s};",
        f"tab.error_order = {error_order or scheme.order + 1};",
        f"tab.alpha = {{{_coefficient_table([scheme.alpha[i][j] for i in range(s) for j in range(s)], constants)}}};",
        f"tab.gamma = {{{_coefficient_table([scheme.gamma[i][j] for i in range(s) for j in range(s)], constants)}}};",
        f"tab.b = {{{_coefficient_table(list(scheme.b), constants)}}};",
        f"tab.e = {{{_coefficient_table(e, constants)}}};",
        f"tab.c = {{{_coefficient_table(list(scheme.alpha_sum), constants)}}};",
        f"tab.gamma_sum = {{{_coefficient_table(list(scheme.gamma_sum), constants)}}};",
    ]
    return _BuiltTableau(
        name=name, family="rosenbrock", header="symsens_rosenbrock.hpp",
        # model_autonomous: the driver's constant, true when t does not occur in f (then f_t = 0 is not evaluated).
        stepper="symsens::Rosenbrock<T>(make_tableau<T>(), dimension, o, model_autonomous)",
        tableau_code=_tableau_function("symsens::RosenbrockTableauT<T>", fields, constants),
        order=scheme.order, error_order=error_order, controller=_pi_controller(error_order, scheme.order),
    )


def _radau_constants(digits: int = 60) -> dict[str, list[sp.Float]]:
    """Hairer's transformation and the RADAU5 error weights from the exact Radau IIA(3) tableau, to ``digits``.

    ``ti A^-1 t = [[mu, 0, 0], [0, alpha, -beta], [0, beta, alpha]]`` with ``t = [v, u, -w]`` (``v`` the real
    eigenvector of A^-1, ``u + i w`` the eigenvector of ``alpha + i beta``, ``beta > 0``); ``gamma0 = 1/mu``;
    ``e^T = (bhat - b)^T A^-1`` with ``bhat`` the order-3 weights of ``yhat = y + h (gamma0 f(t, y) + sum
    bhat_i f(Y_i))`` (HW II, IV.8), i.e. ``e = gamma0 (-13 - 7 sqrt 6, -13 + 7 sqrt 6, -1) / 3`` (checked).
    """
    import mpmath
    import sympy as sp

    from .._precision import mpmath_precision
    from ..schemes._registry import get_scheme

    scheme = get_scheme("radau-iia-3")
    with mpmath_precision(dps=digits + 20):
        def mp(value: sp.Expr) -> mpmath.mpf:
            return mpmath.mpf(str(sp.N(value, digits + 30)))

        A = mpmath.matrix([[mp(v) for v in row] for row in scheme.A])
        b = [mp(v) for v in scheme.b]
        c = [mp(v) for v in scheme.c]
        Ai = A**-1
        eigenvalues, vectors = mpmath.eig(Ai)
        real = min(range(3), key=lambda i: abs(mpmath.im(eigenvalues[i])))
        pair = next(i for i in range(3) if i != real and mpmath.im(eigenvalues[i]) > 0)
        T = mpmath.matrix(3, 3)
        for k in range(3):
            T[k, 0] = mpmath.re(vectors[k, real])
            T[k, 1] = mpmath.re(vectors[k, pair])
            T[k, 2] = -mpmath.im(vectors[k, pair])
        TI = T**-1
        mu, alpha, beta = mpmath.re(eigenvalues[real]), mpmath.re(eigenvalues[pair]), mpmath.im(eigenvalues[pair])
        expected = mpmath.matrix([[mu, 0, 0], [0, alpha, -beta], [0, beta, alpha]])
        if mpmath.mnorm(TI * Ai * T - expected, 1) > mpmath.mpf(10) ** (-digits):
            raise CodegenError("Radau IIA(3): the transformation does not block-diagonalise A^-1")
        gamma0 = 1 / mu
        V = mpmath.matrix([[c[j] ** k for j in range(3)] for k in range(3)])
        bhat = mpmath.lu_solve(V, mpmath.matrix([1 - gamma0, mpmath.mpf(1) / 2, mpmath.mpf(1) / 3]))
        e = mpmath.matrix([[bhat[j] - b[j] for j in range(3)]]) * Ai
        s6 = mpmath.sqrt(6)
        closed = [gamma0 * (-13 - 7 * s6) / 3, gamma0 * (-13 + 7 * s6) / 3, -gamma0 / 3]
        if max(abs(e[0, j] - closed[j]) for j in range(3)) > mpmath.mpf(10) ** (-digits):
            raise CodegenError("Radau IIA(3): the error weights differ from RADAU5's")

        def fl(x: mpmath.mpf) -> sp.Float:
            return sp.Float(mpmath.nstr(x, digits + 5, min_fixed=1, max_fixed=0), digits)

        return {
            "mu": [fl(mu)], "alpha": [fl(alpha)], "beta": [fl(beta)], "gamma0": [fl(gamma0)],
            "t": [fl(T[i, j]) for i in range(3) for j in range(3)],
            "ti": [fl(TI[i, j]) for i in range(3) for j in range(3)],
            "e": [fl(e[0, j]) for j in range(3)],
        }


def _radau_spec(name: str) -> _BuiltTableau:
    """Radau IIA, 3 stages, order 5 (RADAU5): ``symsens::RadauIIA3<T>`` (symsens_radau.hpp)."""
    from ..codegen._printer import ConstantTable
    from ..schemes._registry import get_scheme

    scheme = get_scheme("radau-iia-3")
    constants = ConstantTable()
    k = _radau_constants()
    fields = [
        f"tab.a = {{{_coefficient_table([scheme.A[i][j] for i in range(3) for j in range(3)], constants)}}};",
        f"tab.b = {{{_coefficient_table(list(scheme.b), constants)}}};",
        f"tab.c = {{{_coefficient_table(list(scheme.c), constants)}}};",
        f"tab.mu = c[{constants.index(k['mu'][0])}];",
        f"tab.alpha = c[{constants.index(k['alpha'][0])}];",
        f"tab.beta = c[{constants.index(k['beta'][0])}];",
        f"tab.t = {{{_coefficient_table(k['t'], constants)}}};",
        f"tab.ti = {{{_coefficient_table(k['ti'], constants)}}};",
        f"tab.gamma0 = c[{constants.index(k['gamma0'][0])}];",
        f"tab.e = {{{_coefficient_table(k['e'], constants)}}};",
        "tab.error_order = 4;",
    ]
    return _BuiltTableau(
        name=name, family="radau", header="symsens_radau.hpp",
        stepper="symsens::RadauIIA3<T>(make_tableau<T>(), dimension, o)",
        tableau_code=_tableau_function("symsens::RadauTableau<T>", fields, constants),
        order=scheme.order, error_order=4, controller=_pi_controller(4, scheme.order),
    )


def _bdf_spec(name: str) -> _BuiltTableau:
    """Variable-step, variable-order (1-5) NDF/BDF as scipy's BDF: ``symsens::Bdf<T>`` (symsens_bdf.hpp)."""
    return _BuiltTableau(
        name=name, family="bdf", header="symsens_bdf.hpp",
        stepper="symsens::Bdf<T>(dimension, symsens::BdfSettings{}, symsens::bdf_coefficients<T>(true))",
        tableau_code="",  # the coefficients are rational and formed in T by the header
        order=5, error_order=2, controller=_pi_controller(2, 1),
    )


#: Exponential Rosenbrock methods (symsens_exponential.hpp; catalogue: symsens.schemes._exponential): R(z) = e^z.
EXPONENTIAL_METHODS: tuple[str, ...] = ("exprb-euler", "exprb32")


def _exponential_spec(name: str) -> _BuiltTableau:
    """exprb-euler (order 2) / exprb32 (order 3), both with the exprb32 embedded estimate (error ~ h^3)."""
    from ..schemes._registry import get_scheme

    scheme = get_scheme(name)
    third = "true" if scheme.propagates_higher else "false"
    return _BuiltTableau(
        name=name, family="exponential", header="symsens_exponential.hpp",
        stepper="symsens::ExponentialRosenbrock<T>(make_tableau<T>(), dimension, model_autonomous)",
        tableau_code=(
            "template <class T>\nsymsens::ExponentialTableau make_tableau() {\n    symsens::ExponentialTableau tab;\n"
            f"    tab.third_order = {third};\n    tab.error_order = 3;\n    return tab;\n}}\n"
        ),
        order=scheme.order, error_order=3, controller=_pi_controller(3, scheme.order),
    )


# The constants of every compiled method, so that a solve whose library is cached never prints a tableau (SymPy)
# or imports the scheme catalogue: family -> (header, stepper); method -> (family, order, error order).
# ``_tableau_code`` checks them against the catalogue whenever it prints a tableau, i.e. at every build.
_FAMILY_CODE: dict[str, tuple[str, str]] = {
    "explicit": ("symsens_erk.hpp", "symsens::ExplicitRungeKutta<T>(make_tableau<T>(), dimension)"),
    "dirk": ("symsens_dirk.hpp", "symsens::DiagonallyImplicitRungeKutta<T>(make_tableau<T>(), dimension, o)"),
    # model_autonomous: the driver's constant, true when t does not occur in f (then f_t = 0 is not evaluated).
    "rosenbrock": ("symsens_rosenbrock.hpp",
                   "symsens::Rosenbrock<T>(make_tableau<T>(), dimension, o, model_autonomous)"),
    "radau": ("symsens_radau.hpp", "symsens::RadauIIA3<T>(make_tableau<T>(), dimension, o)"),
    "bdf": ("symsens_bdf.hpp",
            "symsens::Bdf<T>(dimension, symsens::BdfSettings{}, symsens::bdf_coefficients<T>(true))"),
    "exponential": ("symsens_exponential.hpp",
                    "symsens::ExponentialRosenbrock<T>(make_tableau<T>(), dimension, model_autonomous)"),
}
_METHOD_FACTS: dict[str, tuple[str, int, int | None]] = {
    "euler": ("explicit", 1, None), "heun": ("explicit", 2, 2), "rk4": ("explicit", 4, None),
    "bs3": ("explicit", 3, 3), "dopri5": ("explicit", 5, 5), "tsit5": ("explicit", 5, 5),
    "verner6": ("explicit", 6, 6), "verner7": ("explicit", 7, 7),
    "radau-iia-3": ("radau", 5, 4), "radau5": ("radau", 5, 4),
    "tr-bdf2": ("dirk", 2, 3), "kvaerno3": ("dirk", 3, 3), "kvaerno4": ("dirk", 4, 4), "kvaerno5": ("dirk", 5, 5),
    "sdirk4": ("dirk", 4, 4), "sdirk2": ("dirk", 2, None),
    "ros2": ("rosenbrock", 2, 2), "ros3p": ("rosenbrock", 3, 3), "rodas3": ("rosenbrock", 3, 3),
    "rodas4": ("rosenbrock", 4, 4), "rodas5p": ("rosenbrock", 5, 5),
    "bdf": ("bdf", 5, 2),
    "exprb-euler": ("exponential", 2, 3), "exprb32": ("exponential", 3, 3),
}


@cached_once()
def _method_spec(name: str) -> MethodSpec:
    family, order, error_order = _METHOD_FACTS[name]
    header, stepper = _FAMILY_CODE[family]
    return MethodSpec(name=name, family=family, header=header, stepper=stepper, order=order,
                      error_order=error_order, controller=_pi_controller(error_order, order))


def method_spec(name: str) -> MethodSpec:
    """The compiled implementation of method ``name``; ValueError naming the methods available."""
    if name not in _METHOD_FACTS:
        raise ValueError(
            f"method {name!r} has no compiled integrator; available: "
            f"{', '.join(EXPLICIT_METHODS + IMPLICIT_METHODS + EXPONENTIAL_METHODS)}"
        )
    return _method_spec(name)


def adaptive_method_spec(scheme: object, argument: str = "scheme") -> MethodSpec:
    """:func:`method_spec` for a scheme that must run adaptively (an embedded error estimate); a ValueError
    names ``argument`` and the problem."""
    try:
        spec = method_spec(scheme)  # type: ignore[arg-type]
    except Exception as error:
        raise ValueError(f"`{argument}`: {error}") from None
    if spec.error_order is None:
        raise ValueError(f"`{argument}`: {scheme!r} has no error estimate, so it cannot run adaptively")
    return spec


@cached_once()
def _tableau_code(name: str) -> str:
    """The tableau of method ``name`` printed from the catalogue, after checking the catalogue agrees with the
    method's constants (a scheme edited in the catalogue must be edited in ``_METHOD_FACTS`` too)."""
    canonical = _ALIASES.get(name, name)
    if canonical in EXPLICIT_METHODS:
        built = _explicit_spec(canonical)
    elif canonical in EXPONENTIAL_METHODS:
        built = _exponential_spec(canonical)
    else:
        built = _implicit_spec(canonical)
    spec = method_spec(name)
    stated = (spec.family, spec.header, spec.stepper, spec.order, spec.error_order, dict(spec.controller))
    derived = (built.family, built.header, built.stepper, built.order, built.error_order, dict(built.controller))
    if stated != derived:
        raise CodegenError(
            f"method {name!r}: the compiled-method table says (family, header, stepper, order, error order, "
            f"controller) = {stated}, the scheme catalogue {derived}; update _METHOD_FACTS"
        )
    return built.tableau_code


@cached_once()
def _implicit_spec(name: str) -> _BuiltTableau:
    if name in _DIRK_METHODS:
        return _dirk_spec(name)
    if name in _ROSENBROCK_METHODS:
        return _rosenbrock_spec(name)
    if name == "radau-iia-3":
        return _radau_spec(name)
    if name == "bdf":
        return _bdf_spec(name)
    raise ValueError(f"method {name!r} has no compiled integrator")  # pragma: no cover - tables kept in step


_DRIVER_COMMON = r"""
#pragma once
#include "model.hpp"
// The routine instantiations compiled in translation units of their own (generated: _units in _compiled.py); a
// library built without that header (e.g. the compiled adjoints) instantiates every routine where it is used.
#if __has_include("model_units.hpp")
#include "model_units.hpp"
#else
#include <type_traits>
@UNITS_BASE@
#endif
// The sensitivity modes this library runs besides the plain one: 1 continuous forward, 2 the discrete (dual) ones.
#define SYMSENS_MODES @MODES@
// Linear algebra of the implicit steppers: requested @LINEAR@ (0 automatic, 1 dense, 2 sparse); automatic follows
// the generator's measured rule (sparsity::recommended); sparse needs the symbolic LU (sparsity::available).
#define SYMSENS_LINEAR_REQUEST @LINEAR@
#if SYMSENS_LINEAR_REQUEST == 2
#define SYMSENS_SPARSE_LINEAR_ALGEBRA SYMSENS_MODEL_SPARSE_AVAILABLE
#elif SYMSENS_LINEAR_REQUEST == 0
#define SYMSENS_SPARSE_LINEAR_ALGEBRA SYMSENS_MODEL_SPARSE_RECOMMENDED
#else
#define SYMSENS_SPARSE_LINEAR_ALGEBRA 0
#endif
#include "symsens_solver.hpp"
#include "@HEADER@"

#define SYMSENS_EXPORT __attribute__((visibility("default")))

namespace {

struct M {
    static constexpr int n_states = symsens_model::n_states;
    static constexpr int n_parameters = symsens_model::n_parameters;
    static constexpr int n_sensitivity_parameters = symsens_model::n_sensitivity_parameters;
    // t does not occur in f: f_t = 0, and the dual-in-t routines are never instantiated (symsens_implicit.hpp).
    static constexpr bool autonomous = @AUTONOMOUS@;
    // A routine instantiation compiled apart (symsens_units::apart) is called there; any other is instantiated here.
    template <class T> static void rhs(const T& t, const T* y, const T* p, T* f) {
        if constexpr (symsens_units::apart<symsens_units::RHS, T>::value) symsens_units::rhs<T>(t, y, p, f);
        else symsens_model::rhs<T>(t, y, p, f);
    }
    template <class T> static void jacobian(const T& t, const T* y, const T* p, T* J) {
        if constexpr (symsens_units::apart<symsens_units::JACOBIAN_VALUES, T>::value) symsens_units::jacobian<T>(t, y, p, J);
        else symsens_model::jacobian<T>(t, y, p, J);
    }
    template <class T> static void augmented_rhs(const T& t, const T* u, const T* p, T* g) {
        if constexpr (symsens_units::apart<symsens_units::AUGMENTED_RHS, T>::value) symsens_units::augmented_rhs<T>(t, u, p, g);
        else symsens_model::augmented_rhs<T>(t, u, p, g);
    }
    template <class T> static void jacobian_values(const T& t, const T* y, const T* p, T* v) {
        if constexpr (symsens_units::apart<symsens_units::JACOBIAN_VALUES, T>::value) symsens_units::jacobian_values<T>(t, y, p, v);
        else symsens_model::jacobian_values<T>(t, y, p, v);
    }
    template <class T> static void parameter_jacobian(const T& t, const T* y, const T* p, T* F) {
        if constexpr (symsens_units::apart<symsens_units::PARAMETER_JACOBIAN, T>::value) symsens_units::parameter_jacobian<T>(t, y, p, F);
        else symsens_model::parameter_jacobian<T>(t, y, p, F);
    }
    // The pattern constants of the generated model (symsens/codegen/_sparsity.py), for symsens_sparse.hpp.
    struct sparsity {
        static constexpr int nnz = symsens_model::sparsity::nnz;
        static constexpr int lu_nnz = symsens_model::sparsity::lu_nnz;
        static constexpr int coupling_nnz = symsens_model::sparsity::coupling_nnz;
        static constexpr int coupling_colors = symsens_model::sparsity::coupling_colors;
        static const int* row_ptr() { return symsens_model::sparsity::row_ptr(); }
        static const int* columns() { return symsens_model::sparsity::columns(); }
        static const int* permutation() { return symsens_model::sparsity::permutation(); }
        static const int* lu_row_ptr() { return symsens_model::sparsity::lu_row_ptr(); }
        static const int* lu_columns() { return symsens_model::sparsity::lu_columns(); }
        static const int* lu_diagonal() { return symsens_model::sparsity::lu_diagonal(); }
        static const int* jacobian_to_lu() { return symsens_model::sparsity::jacobian_to_lu(); }
        static const int* coupling_row_ptr() { return symsens_model::sparsity::coupling_row_ptr(); }
        static const int* coupling_columns() { return symsens_model::sparsity::coupling_columns(); }
        static const int* colors() { return symsens_model::sparsity::colors(); }
    };
};

@TABLEAU@

// t does not occur in the model's f (Rosenbrock methods then skip f_t).
constexpr bool model_autonomous = @AUTONOMOUS@;

constexpr int P = M::n_sensitivity_parameters > 0 ? M::n_sensitivity_parameters : 1;
using D = symsens::Dual<double, P>;

template <class T, class Time, class Problem>
int run(const Problem& problem, T* y, double t0, double t1, const double* t_eval, long n_eval,
        const symsens::Options& o, T* out, double* step_times, double* step_sizes, long* n_steps, symsens::Stats& stats) {
    const int dimension = problem.dimension();
    auto stepper = @STEPPER@;
    symsens::Recorder<T, Time> recorder{t_eval, n_eval, 0, dimension, out, {}, {}, o.record_steps != 0};
    recorder.at_steps = o.outputs_at_steps != 0;
    const int status = symsens::drive<T, Time>(problem, stepper, t0, t1, y, o, recorder, stats);
    // The caller's buffers hold step_capacity times; the count reported is the full one (the caller retries
    // with room for all when it is larger).
    const long count = static_cast<long>(recorder.step_times.size());
    const long copied = count < o.step_capacity ? count : o.step_capacity;
    for (long k = 0; k < copied; ++k) step_times[k] = recorder.step_times[k];
    for (long k = 0; k + 1 < copied; ++k) step_sizes[k] = recorder.step_sizes[k];
    *n_steps = count;
    stats.n_outputs = recorder.next;
    return status;
}

}  // namespace

// The continuous forward mode (1) and the discrete forward modes (2, 3: dual numbers) are defined apart from the
// plain mode, so that they compile in separate translation units side by side (see _UNITS in _compiled.py).
int forward_mode(const double* p, const double* y_init, const std::vector<double>& s_init, double t0, double t1,
                 const double* t_eval, long n_eval, const symsens::Options& o, double* y_out, double* sens_out,
                 double* step_times, double* step_sizes, long* n_steps, symsens::Stats* stats);
int discrete_modes(int mode, const double* p, const double* y_init, const std::vector<double>& s_init, double t0,
                   double t1, const double* t_eval, long n_eval, const symsens::Options& o, double* y_out,
                   double* sens_out, double* step_times, double* step_sizes, long* n_steps, symsens::Stats* stats);
"""

# What every library's driver declares of the routines compiled apart (model_units.hpp adds the specialisations).
_UNITS_BASE = "\n".join([
    "namespace symsens_units {",
    "enum routine_id { RHS, JACOBIAN_VALUES, PARAMETER_JACOBIAN, AUGMENTED_RHS };",
    "template <int R, class T> struct apart : std::false_type {};",
    *(f"template <class T> void {function}(const T& t, const T* y, const T* p, T* out);"
      for function in ("rhs", "jacobian", "jacobian_values", "parameter_jacobian", "augmented_rhs")),
    "}  // namespace symsens_units",
])
_DRIVER_COMMON = _DRIVER_COMMON.replace("@UNITS_BASE@", _UNITS_BASE)

_DRIVER = r"""#include "driver_common.hpp"

namespace {

// Modes 1-3 (sensitivities), a template so that a library without sensitivity parameters never instantiates them
// (the augmented problem and the dual-number solvers are most of the compile time).
template <class MM, class DD>
int solve_sensitivities(int mode, const double* p, const double* y_init, const std::vector<double>& s_init, double t0,
                        double t1, const double* t_eval, long n_eval, const symsens::Options& o, double* y_out,
                        double* sens_out, double* step_times, double* step_sizes, long* n_steps, symsens::Stats* stats) {
    if (mode == 1)
        return forward_mode(p, y_init, s_init, t0, t1, t_eval, n_eval, o, y_out, sens_out, step_times, step_sizes,
                            n_steps, stats);
    return discrete_modes(mode, p, y_init, s_init, t0, t1, t_eval, n_eval, o, y_out, sens_out, step_times, step_sizes,
                          n_steps, stats);
}

}  // namespace

// The modes this library does not run (Python sends them to a library that does: CompiledSolver.modes).
#if !(SYMSENS_MODES & 1)
int forward_mode(const double*, const double*, const std::vector<double>&, double, double, const double*, long,
                 const symsens::Options&, double*, double*, double*, double*, long*, symsens::Stats*) {
    return symsens::STATUS_BAD_INPUT;
}
#endif
#if !(SYMSENS_MODES & 2)
int discrete_modes(int, const double*, const double*, const std::vector<double>&, double, double, const double*,
                   long, const symsens::Options&, double*, double*, double*, double*, long*, symsens::Stats*) {
    return symsens::STATUS_BAD_INPUT;
}
#endif

extern "C" {

SYMSENS_EXPORT int symsens_solver_dimensions(int* dims) {
    dims[0] = M::n_states;
    dims[1] = M::n_parameters;
    dims[2] = M::n_sensitivity_parameters;
    dims[3] = SYMSENS_SPARSE_LINEAR_ALGEBRA;  // 1: the implicit steppers use the sparse LU
    dims[4] = SYMSENS_MODES;
    return 0;
}

SYMSENS_EXPORT int symsens_n_outputs(void) { return symsens_model::n_outputs; }

// The model's outputs g(t_k, y_k, p) at n_times rows: y row-major (n_times x n), out row-major (n_times x n_outputs).
SYMSENS_EXPORT void symsens_outputs(long n_times, const double* t, const double* y, const double* p, double* out) {
    for (long k = 0; k < n_times; ++k)
        symsens_model::outputs<double>(t[k], y + k * symsens_model::n_states, p, out + k * symsens_model::n_outputs);
}

// y0, S0: initial values (n) and sensitivities (n x Ps, column-major per parameter); NULL: the model's.
SYMSENS_EXPORT int symsens_solve(int mode, const double* p, const double* y0, const double* S0, double t0, double t1,
                                 const double* t_eval, long n_eval, const symsens::Options* options,
                                 double* y_out, double* sens_out, double* step_times, double* step_sizes,
                                 long* n_steps, symsens::Stats* stats) {
    constexpr int n = M::n_states;
    constexpr int np = M::n_sensitivity_parameters;
    const symsens::Options& o = *options;
    double y_init[n];
    if (y0) { for (int i = 0; i < n; ++i) y_init[i] = y0[i]; } else { symsens_model::initial_conditions<double>(p, y_init); }
    std::vector<double> s_init(n * (np > 0 ? np : 1), 0.0);
    if (S0) { for (int k = 0; k < n * np; ++k) s_init[k] = S0[k]; }
    else if (!y0) { symsens_model::initial_sensitivities<double>(p, s_init.data()); }
    // Without sensitivity parameters every mode is the plain solve (there are no partials to carry), and only
    // that one is compiled: the sensitivity modes are a template that is then never instantiated.
    if (mode == 0 || np == 0) {
        symsens::ModelProblem<M, double> problem{p, stats};
        std::vector<double> y(y_init, y_init + n);
        return run<double, double>(problem, y.data(), t0, t1, t_eval, n_eval, o, y_out, step_times, step_sizes, n_steps, *stats);
    }
    if constexpr (np == 0) {
        return symsens::STATUS_BAD_INPUT;  // not reached
    } else {
        return solve_sensitivities<M, D>(mode, p, y_init, s_init, t0, t1, t_eval, n_eval, o, y_out, sens_out,
                                         step_times, step_sizes, n_steps, stats);
    }
}

}  // extern "C"
"""

_DRIVER_FORWARD = r"""#include "driver_common.hpp"

int forward_mode(const double* p, const double* y_init, const std::vector<double>& s_init, double t0, double t1,
                 const double* t_eval, long n_eval, const symsens::Options& o, double* y_out, double* sens_out,
                 double* step_times, double* step_sizes, long* n_steps, symsens::Stats* stats) {
    using MM = M;
    constexpr int n = MM::n_states;
    constexpr int np = MM::n_sensitivity_parameters;
    if constexpr (np == 0) {
        return symsens::STATUS_BAD_INPUT;  // a library without sensitivity parameters has no forward mode
    } else {
        symsens::AugmentedProblem<MM> problem{p, stats, o.tangents_in_norm != 0};
        const int N = n * (np + 1);
        std::vector<double> u(N), out(static_cast<size_t>(n_eval) * N);
        for (int i = 0; i < n; ++i) u[i] = y_init[i];
        for (int k = 0; k < n * np; ++k) u[n + k] = s_init[k];
        const int status = run<double, double>(problem, u.data(), t0, t1, t_eval, n_eval, o, out.data(), step_times, step_sizes, n_steps, *stats);
        for (long e = 0; e < n_eval; ++e)
            for (int i = 0; i < n; ++i) {
                y_out[e * n + i] = out[e * N + i];
                for (int j = 0; j < np; ++j) sens_out[(e * n + i) * np + j] = out[e * N + n + j * n + i];
            }
        return status;
    }
}
"""

_DRIVER_DUAL = r"""#include "driver_common.hpp"

int discrete_modes(int mode, const double* p, const double* y_init, const std::vector<double>& s_init, double t0,
                   double t1, const double* t_eval, long n_eval, const symsens::Options& o, double* y_out,
                   double* sens_out, double* step_times, double* step_sizes, long* n_steps, symsens::Stats* stats) {
    using MM = M;
    constexpr int n = MM::n_states;
    constexpr int np = MM::n_sensitivity_parameters;
    if constexpr (np == 0) {
        return symsens::STATUS_BAD_INPUT;  // a library without sensitivity parameters has no discrete modes
    } else {
        // Discrete forward mode: parameters and initial values as duals seeded with d/dp_j.
        std::vector<D> pd(MM::n_parameters), y(n), out(static_cast<size_t>(n_eval) * n);
        for (int k = 0; k < MM::n_parameters; ++k) pd[k] = D(p[k]);
        for (int j = 0; j < np; ++j) pd[symsens_model::sensitivity_parameters[j]].d[j] = 1.0;
        for (int i = 0; i < n; ++i) {
            y[i] = D(y_init[i]);
            for (int j = 0; j < np; ++j) y[i].d[j] = s_init[j * n + i];
        }
        symsens::ModelProblem<MM, D> problem{pd.data(), stats};
        int status;
        if (mode == 2) {
            status = run<D, double>(problem, y.data(), t0, t1, t_eval, n_eval, o, out.data(), step_times, step_sizes, n_steps, *stats);
        } else {
            status = run<D, D>(problem, y.data(), t0, t1, t_eval, n_eval, o, out.data(), step_times, step_sizes, n_steps, *stats);
        }
        for (long e = 0; e < n_eval; ++e)
            for (int i = 0; i < n; ++i) {
                y_out[e * n + i] = out[e * n + i].v;
                for (int j = 0; j < np; ++j) sens_out[(e * n + i) * np + j] = out[e * n + i].d[j];
            }
        return status;
    }
}
"""


def _solver_header_sources() -> dict[str, str]:
    package = resources.files("symsens.integrate").joinpath("cpp")
    return {entry.name: entry.read_text() for entry in package.iterdir() if entry.name.endswith(".hpp")}


_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


#: ``solve(linear_solver=...)``: the linear algebra of the implicit steppers, and its code in the driver.
LINEAR_SOLVERS: dict[str, int] = {"auto": 0, "dense": 1, "sparse": 2}
_LINEAR_FAMILIES = frozenset({"radau", "dirk", "rosenbrock", "bdf"})


#: The sensitivity modes a solver library runs besides the plain one (the driver's ``SYMSENS_MODES``): none (a
#: library without sensitivity parameters), the continuous forward mode, the discrete (dual-number) modes, or both.
_PLAIN_ONLY, _FORWARD_MODES, _DUAL_MODES, _ALL_MODES = 0, 1, 2, 3


def _solver_purpose(method: str, autonomous: bool, linear_solver: str = "auto", modes: int = _ALL_MODES) -> str:
    """What a solver library is, for the model-level cache key (:func:`symsens.codegen._kernels.model_fingerprint`).

    The key's generator digest already covers this module (the drivers, the method table, the tableau
    printers, the rules splitting a library into translation units), the solver headers in ``cpp/`` and the
    scheme catalogue; this names the method, whether the model is autonomous (a constant of the driver), the
    modes the library runs, and digests the driver text, stepper and units as substituted, so it changes with
    anything the driver's C++ is made from.
    """
    spec = method_spec(method)
    text = "\0".join((_DRIVER_COMMON, _DRIVER, _DRIVER_FORWARD, _DRIVER_DUAL, spec.header, spec.stepper,
                      *_UNITS, str(_APART_OPERATIONS), str(_SEPARATE_DUAL_SIZE), str(_UNIT_STARTUP),
                      str(_MODEL_STARTUP), repr(sorted(_DRIVER_COST.items()))))
    return (f"solver:{method}:autonomous={autonomous}:linear={linear_solver}:modes={modes}:"
            + hashlib.sha256(text.encode()).hexdigest())


# A library is compiled from several translation units (_UNITS), at most one compiler per core at a time
# (symsens.codegen._build.compiler_jobs), the units listed first starting first.  The pieces:
#
# * each generated routine instantiation the library calls whose estimate (operations, _cost of its statements,
#   times _type_weight of its scalar type) reaches _APART_OPERATIONS: the augmented rhs over double, J and F_p
#   over the colour duals of the coupling blocks, rhs and J over the duals of the discrete modes, rhs and J over
#   double.  model_units.hpp declares it (an explicit specialisation of symsens_units::<routine>), the driver's
#   M calls it instead of instantiating the routine, and its definition is compiled in whichever unit it lands;
# * the plain mode with the C entry points (_DRIVER), the continuous forward mode (_DRIVER_FORWARD) and the
#   discrete modes (_DRIVER_DUAL) when the library runs them, estimated by _DRIVER_COST plus the routine
#   instantiations they still compile themselves.
#
# Each driver part is a unit (the plain and forward parts possibly one: they share the steppers over double), and
# the routine pieces are spread over one to four units of their own, in the layout whose units, taken in order by
# one compiler per core, end soonest by the estimates (_plan_units).  The units are listed largest first; an
# empty one is left out.  The routines are the same template code wherever they are instantiated, so the results
# do not depend on the split (tests compare them bit for bit).  Compiler CPU at 512 states (Brusselator, BDF, three parameters) before this split, in two units:
# plain 2.7 s, forward 18.4 s (of which J and F_p over four colour duals 8 s, the augmented rhs 2 s), dual 13.6 s
# (rhs and J over Dual<3>: 9 s).
_MODEL_UNITS = 4
_UNITS = tuple(f"unit{k}.cpp" for k in range(_MODEL_UNITS + 3))
#: The driver parts' own compile work in operations (about 0.07 ms of compiler CPU each), measured at 512 states
#: with the model routines compiled apart: plain 2.2 s, forward 2.0 s, discrete 1.6 s.
_DRIVER_COST = {"plain": 30_000, "forward": 28_000, "dual": 22_000}
#: A driver unit's start-up in operations (parsing the solver headers, instantiating the steppers), saved when the
#: plain and forward parts share a unit: Hodgkin-Huxley's library in three driver units took 0.5-0.9 s more
#: compiler CPU than in two; and a routines-only unit's (the runtime header and model.hpp: 0.05-0.3 s).
_UNIT_STARTUP = 12_000
_MODEL_STARTUP = 3_000
#: Estimated operations from which a routine instantiation is a piece of its own (about 0.7 s of compiler CPU);
#: below it, it stays inline where it is used (the 64-state Brusselator's J and F_p over Dual<4> and rhs over
#: Dual<3>, about 7000 each, compiled apart cost 0.4-1 s more compiler CPU in all than inline).
_APART_OPERATIONS = 10_000
#: Model size (SymPy nodes of f times sensitivity parameters) from which the discrete modes are a library of their
#: own, built on their first use: a forward-sensitivity or plain first use then compiles no dual numbers.  Below
#: it one library runs every mode, one compile between the forward and discrete gradients: measured compiler CPU
#: (docs/solvers.md, "Compiling what the first use needs"), the dual part of a small model costs less than a
#: second library's own start-up and link.  Hodgkin-Huxley with three parameters: 109 nodes x 3; the 13-state
#: calcium neuron with 13: 506 x 13; the 64-state Brusselator with three: 1312 x 3; 256 states: 5248 x 3.
_SEPARATE_DUAL_SIZE = 10_000


def _separate_dual(model: Model, parameters: Sequence[str]) -> bool:
    """Whether the discrete modes of ``model`` with ``parameters`` are a library of their own (see
    _SEPARATE_DUAL_SIZE); cheap (no derivation; from the model's summary, no SymPy), as it decides the cache
    key."""
    return model_facts(model).rhs_nodes * len(parameters) >= _SEPARATE_DUAL_SIZE


def _type_weight(partials: int) -> int:
    """Compiler work per generated operation over ``Dual<double, partials>`` relative to double (0: double).
    Measured on the 512-state Brusselator: J over Dual<4> 12x, F_p over Dual<4> 13x, rhs over Dual<3> 19x and J 9x."""
    return 1 if partials == 0 else 4 + 2 * partials


_ROUTINE_IDS = {"rhs": "RHS", "jacobian_values": "JACOBIAN_VALUES", "parameter_jacobian": "PARAMETER_JACOBIAN",
                "augmented_rhs": "AUGMENTED_RHS"}


def _instantiations(source, family: str, modes: int) -> list[tuple[str, str, int, int]]:  # type: ignore[no-untyped-def]
    """(driver part, routine, dual partials (0: double), estimated cost) of each routine instantiation the
    steppers of ``family`` call in ``modes`` (the plain mode: f, and J for the families with an iteration
    matrix; forward: the augmented rhs, and J and F_p over the colour duals of the coupling blocks; discrete:
    f and J over Dual<P>).  One missing here is compiled where it is used, as before the split."""
    costs = dict(source.routine_costs)
    jacobian = family != "explicit"
    wanted = [("plain", "rhs", 0)] + ([("plain", "jacobian_values", 0)] if jacobian else [])
    if modes & _FORWARD_MODES:
        wanted.append(("forward", "augmented_rhs", 0))
        if jacobian:
            wanted += [("forward", "jacobian_values", source.coupling_colors),
                       ("forward", "parameter_jacobian", source.coupling_colors)]
    if modes & _DUAL_MODES:
        partials = max(source.n_sensitivity_parameters, 1)
        wanted += [("dual", "rhs", partials)] + ([("dual", "jacobian_values", partials)] if jacobian else [])
    chosen: dict[tuple[str, int], tuple[str, str, int, int]] = {}
    for part, routine, partials in wanted:  # the same instantiation for two parts (colours = P) counts once
        chosen.setdefault((routine, partials), (part, routine, partials, costs.get(routine, 0) * _type_weight(partials)))
    return sorted(chosen.values(), key=lambda item: -item[3])


def _scalar(partials: int) -> str:
    return "double" if partials == 0 else f"dual{partials}"


_Piece = tuple[int, "str | None", list[str]]  # (estimate, driver part text or None, routine definitions)


def _unit_cost(assigned: list[_Piece]) -> int:
    """A unit's estimate: its pieces, less the start-up the driver parts in it share (_UNIT_STARTUP), plus a
    routines-only unit's own (parsing the runtime header and model.hpp)."""
    parts = sum(1 for _, text, _ in assigned if text is not None)
    return sum(c for c, _, _ in assigned) - _UNIT_STARTUP * max(parts - 1, 0) + (_MODEL_STARTUP if not parts else 0)


def _plan_units(pieces: list[_Piece], drivers: list[_Piece], merge: bool, jobs: int) -> list[list[_Piece]]:
    """The units, largest first: the driver parts each in a unit of their own, or (``merge``) the plain and
    forward parts in one (they share the steppers over double; other driver parts together measured more
    compiler CPU than apart), and the routine pieces spread longest first onto the least loaded of one to
    _MODEL_UNITS units of routines alone.  Of these layouts, the one whose units end soonest by the estimates
    when ``jobs`` compilers take them in order (then the least work, then the fewest units)."""
    options = [drivers]
    if merge and len(drivers) >= 2:
        merged = drivers[0][0] + drivers[1][0] - _UNIT_STARTUP  # one start-up between them
        options.append([(merged, drivers[0][1] + drivers[1][1], [])] + drivers[2:])
    routines = sorted(pieces, key=lambda piece: -piece[0])
    best: tuple[tuple[int, int, int], list[list[_Piece]]] | None = None
    for parts in options:
        for count in range(1 if routines else 0, min(len(routines), _MODEL_UNITS) + 1):
            bins: list[list[_Piece]] = [[] for _ in range(count)]
            for piece in routines:
                min(bins, key=lambda b: sum(c for c, _, _ in b)).append(piece)
            units = sorted([[part] for part in parts] + bins, key=_unit_cost, reverse=True)
            ends = [0] * jobs
            for unit in units:  # each unit goes to the compiler that is free first
                ends[ends.index(min(ends))] += _unit_cost(unit)
            score = (max(ends), sum(map(_unit_cost, units)), len(units))
            if best is None or score < best[0]:
                best = (score, units)
    assert best is not None
    return best[1]


def _units(source, family: str, modes: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """``model_units.hpp`` (the routine instantiations compiled apart, for the driver's M) and the translation
    units (_UNITS), longest first (see the comment above _MODEL_UNITS)."""
    items = _instantiations(source, family, modes)
    apart = [item for item in items if item[3] >= _APART_OPERATIONS]
    partials = sorted({k for _, _, k, _ in apart if k})
    header = [
        "#pragma once", "#include <type_traits>", "// After model.hpp (which has no include guard).", "",
        "// Routine instantiations compiled in units of their own: the driver's M calls these.",
        _UNITS_BASE, "namespace symsens_units {",
        *(f"using dual{k} = symsens::Dual<double, {k}>;" for k in partials),
    ]
    # (estimate, driver part or None, routine definitions) of every piece, then their units (_plan_units).
    pieces: list[tuple[int, str | None, list[str]]] = []
    for _, routine, k, cost in apart:
        T = _scalar(k)
        header.append(f"template <> struct apart<{_ROUTINE_IDS[routine]}, {T}> : std::true_type {{}};")
        definitions = []
        for function in [routine] + (["jacobian"] if routine == "jacobian_values" else []):
            signature = f"const {T}& t, const {T}* y, const {T}* p, {T}* out"
            header.append(f"template <> void {function}<{T}>({signature});")
            definitions.append(f"template <> void {function}<{T}>({signature}) {{ "
                               f"symsens_model::{function}<{T}>(t, y, p, out); }}")
        pieces.append((cost, None, definitions))
    header.append("}  // namespace symsens_units")
    # The driver parts, with the instantiations they still compile themselves.
    inside = {part: sum(c for p, *_, c in items if p == part and c < _APART_OPERATIONS) for part in _DRIVER_COST}
    parts = [("plain", _DRIVER)] + ([("forward", _DRIVER_FORWARD)] if modes & _FORWARD_MODES else [])
    parts += [("dual", _DRIVER_DUAL)] if modes & _DUAL_MODES else []
    drivers = [(_DRIVER_COST[part] + inside[part], text, []) for part, text in parts]
    bins = _plan_units(pieces, drivers, bool(modes & _FORWARD_MODES), compiler_jobs())
    texts = []
    for assigned in bins:
        driver_texts = [text for _, text, _ in assigned if text is not None]
        definitions = [line for *_, lines in assigned for line in lines]
        # A driver part includes driver_common.hpp (the model and model_units.hpp with it); a unit of routines
        # alone only what they need.
        text = "".join(driver_texts) if driver_texts else '#include "model.hpp"\n#include "model_units.hpp"\n'
        if definitions:
            text += "\nnamespace symsens_units {\n" + "\n".join(definitions) + "\n}  // namespace symsens_units\n"
        texts.append(text)
    texts += [""] * (len(_UNITS) - len(texts))
    return {"model_units.hpp": "\n".join(header) + "\n", **dict(zip(_UNITS, texts))}


@dataclass
class CompiledSolver:
    """A loaded ``symsens_solve`` for one model, sensitivity-parameter selection and method."""

    method: MethodSpec
    n_states: int
    n_parameters: int
    n_sensitivity_parameters: int
    library_path: Path
    _function: ctypes._CFuncPtr
    #: Whether the implicit steppers of this library factor with the fixed-pattern sparse LU.
    sparse: bool = False
    #: The sensitivity modes the library runs besides the plain one (_FORWARD_MODES | _DUAL_MODES).
    modes: int = _ALL_MODES
    #: The library of the same model, parameters and method that runs a mode this one does not (built on first use).
    companion: Callable[[int], CompiledSolver] | None = field(default=None, repr=False, compare=False)
    #: ``symsens_outputs`` of the library: the model's outputs, compiled with it.
    _outputs: ctypes._CFuncPtr | None = field(default=None, repr=False, compare=False)
    n_outputs: int = 0

    def outputs(self, t: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The model's outputs ``g(t_k, y_k, p)``, shape ``(n_outputs, len(t))``, by the compiled routine."""
        t = np.ascontiguousarray(t, dtype=float).ravel()
        y = np.ascontiguousarray(y, dtype=float).reshape(len(t), self.n_states)
        p = np.ascontiguousarray(p, dtype=float)
        if self._outputs is None or p.shape != (self.n_parameters,):
            raise CodegenError(f"the compiled solver {self.library_path} cannot evaluate these outputs")
        out = np.empty((len(t), self.n_outputs))
        self._outputs(len(t), t.ctypes.data_as(_DOUBLE_P), y.ctypes.data_as(_DOUBLE_P), p.ctypes.data_as(_DOUBLE_P),
                      out.ctypes.data_as(_DOUBLE_P))
        return out.T

    def runs(self, mode: int) -> bool:
        """Whether this library runs ``mode`` itself (without sensitivity parameters every mode is the plain solve)."""
        if mode == MODE_PLAIN or self.n_sensitivity_parameters == 0:
            return True
        return bool(self.modes & (_FORWARD_MODES if mode == MODE_FORWARD else _DUAL_MODES))

    def __call__(
        self,
        mode: int,
        p: np.ndarray,
        y0: np.ndarray | None,
        S0: np.ndarray | None,
        t0: float,
        t1: float,
        t_eval: np.ndarray,
        options: OptionsStruct,
    ) -> tuple[int, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, StatsStruct]:
        if not self.runs(mode):
            if self.companion is None:
                raise CodegenError(f"the compiled solver {self.library_path} does not run mode {mode}")
            return self.companion(mode)(mode, p, y0, S0, t0, t1, t_eval, options)
        n, n_s = self.n_states, self.n_sensitivity_parameters
        p = np.ascontiguousarray(p, dtype=float)
        t_eval = np.ascontiguousarray(t_eval, dtype=float)
        y_out = np.full((len(t_eval), n), np.nan)
        sens_out = np.full((len(t_eval), n, max(n_s, 1)), np.nan) if mode != MODE_PLAIN else np.empty((1, 1, 1))
        if options.step_capacity <= 0:
            options.step_capacity = min(options.max_steps + 1, STEP_BUFFER)
        capacity = options.step_capacity
        step_times = np.empty(capacity)
        step_sizes = np.empty(capacity)
        n_steps = ctypes.c_long(0)
        stats = StatsStruct()
        # Named arrays: they must stay alive while C++ reads them.
        y0_arr = np.ascontiguousarray(y0, dtype=float) if y0 is not None else None
        S0_arr = np.ascontiguousarray(S0.T.ravel(), dtype=float) if S0 is not None else None
        y0_ptr = y0_arr.ctypes.data_as(_DOUBLE_P) if y0_arr is not None else None
        S0_ptr = S0_arr.ctypes.data_as(_DOUBLE_P) if S0_arr is not None else None
        status = self._function(
            mode, p.ctypes.data_as(_DOUBLE_P), y0_ptr, S0_ptr, float(t0), float(t1),
            t_eval.ctypes.data_as(_DOUBLE_P), len(t_eval), ctypes.byref(options),
            y_out.ctypes.data_as(_DOUBLE_P), sens_out.ctypes.data_as(_DOUBLE_P),
            step_times.ctypes.data_as(_DOUBLE_P), step_sizes.ctypes.data_as(_DOUBLE_P), ctypes.byref(n_steps),
            ctypes.byref(stats),
        )
        count = n_steps.value
        if count > capacity:
            # More steps than the buffer holds (only past STEP_BUFFER steps): run again with room for all; the
            # solver is deterministic, so it takes the same steps.
            options.step_capacity = count
            return self(mode, p, y0, S0, t0, t1, t_eval, options)
        sens = sens_out[:, :, :n_s] if mode != MODE_PLAIN else None
        return status, y_out, sens, step_times[:count].copy(), step_sizes[: max(count - 1, 0)].copy(), stats


def _solver_purpose_of(model: Model, method: str, linear_solver: str,
                       modes: int = _ALL_MODES) -> tuple[MethodSpec, str, bool, str]:
    """(spec, linear solver as built, autonomous, purpose) of the solver library of ``model`` and ``method``
    running ``modes``."""
    spec = method_spec(method)
    # Only the implicit families have an iteration matrix: the others share one library whatever was asked.
    if spec.family not in _LINEAR_FAMILIES:
        linear_solver = "auto"
    # Conservative: t anywhere in f or in an intermediate makes the model non-autonomous.
    autonomous = model_facts(model).autonomous
    return spec, linear_solver, autonomous, _solver_purpose(method, autonomous, linear_solver, modes)


def _load_solver(model: Model, parameters: tuple[str, ...], spec: MethodSpec, path: Path) -> CompiledSolver:
    library = load_library(path)
    function = library.symsens_solve
    function.restype = ctypes.c_int
    function.argtypes = [
        ctypes.c_int, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, ctypes.c_double, ctypes.c_double, _DOUBLE_P, ctypes.c_long,
        ctypes.POINTER(OptionsStruct), _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, ctypes.POINTER(ctypes.c_long),
        ctypes.POINTER(StatsStruct),
    ]
    dims = (ctypes.c_int * 5)()
    library.symsens_solver_dimensions(dims)
    n_outputs = library.symsens_n_outputs()
    if dims[0] != model.n_states or dims[2] != len(parameters) or n_outputs != len(model.output_names):
        raise CodegenError(f"compiled solver {path} does not match model {model.name!r}")
    outputs = library.symsens_outputs
    outputs.restype = None
    outputs.argtypes = [ctypes.c_long, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _DOUBLE_P]
    return CompiledSolver(spec, dims[0], dims[1], dims[2], path, function, bool(dims[3]), dims[4],
                          _outputs=outputs, n_outputs=n_outputs)


def _library_modes(model: Model, parameters: tuple[str, ...], wanted: int) -> int:
    """The modes of the library that runs ``wanted`` (see _SEPARATE_DUAL_SIZE)."""
    if not parameters:
        return _PLAIN_ONLY
    return wanted if _separate_dual(model, parameters) else _ALL_MODES


@cached_once(maxsize=128)
def _solver_library(model: Model, parameters: tuple[str, ...], method: str, linear_solver: str,
                    modes: int) -> CompiledSolver:
    """Build (or load) the library of ``model``, ``parameters`` and ``method`` running ``modes``."""
    spec, linear_solver, autonomous, purpose = _solver_purpose_of(model, method, linear_solver, modes)

    def sources(source):  # type: ignore[no-untyped-def]
        # Only on a cache miss: printing the tableau and the runtime header is SymPy work.
        common = _DRIVER_COMMON.replace("@HEADER@", spec.header).replace("@TABLEAU@", spec.tableau_code)
        common = common.replace("@STEPPER@", spec.stepper).replace("@AUTONOMOUS@", "true" if autonomous else "false")
        common = common.replace("@LINEAR@", str(LINEAR_SOLVERS[linear_solver])).replace("@MODES@", str(modes))
        return {"symsens_runtime.hpp": runtime_header(), "model.hpp": source.code, "driver_common.hpp": common,
                **_units(source, spec.family, modes), **_solver_header_sources()}

    _, path, _ = cached_build(model, list(parameters), purpose, sources, _UNITS)
    solver = _load_solver(model, parameters, spec, path)
    if modes != _ALL_MODES and parameters:
        other = _ALL_MODES & ~modes
        solver.companion = lambda mode: _solver_library(model, parameters, method, linear_solver, other)
    if parameters:
        with _with_sensitivities_lock:
            _with_sensitivities[(model, method, linear_solver)] = solver
    return solver


# Solvers with sensitivity parameters loaded in this process, by (model, method, linear solver): every one of
# them also runs the plain solve (mode 0), so a plain solve after a sensitivity solve compiles nothing.
_with_sensitivities: dict[tuple[Model, str, str], CompiledSolver] = {}
_with_sensitivities_lock = threading.Lock()


@cached_once(maxsize=64)
def _compiled_solver(model: Model, parameters: tuple[str, ...], method: str, linear_solver: str = "auto") -> CompiledSolver:
    """The library running the plain and forward modes of ``model`` (see _SEPARATE_DUAL_SIZE: for a small model
    the discrete modes too); a large model's discrete modes are built on their first call (``companion``)."""
    modes = _library_modes(model, parameters, _FORWARD_MODES)
    return _solver_library(model, parameters, method, linear_solver, modes)


def discrete_solver(model: Model, parameters: Sequence[str], method: str, linear_solver: str = "auto") -> CompiledSolver:
    """The compiled solver of the discrete (dual-number) modes of ``model`` with ``parameters`` and ``method``:
    the library of :func:`compiled_solver` for a small model, a library of its own for a large one (built now
    unless cached).  ``compiled_solver(...)`` runs these modes too, building this library on their first call."""
    parameters = tuple(parameters)
    modes = _library_modes(model, parameters, _DUAL_MODES)
    return _solver_library(model, parameters, method, check_linear_solver(linear_solver), modes)


def plain_solver(model: Model, parameters: Sequence[str], method: str, linear_solver: str = "auto") -> CompiledSolver:
    """A compiled solver to run the plain solve (mode 0) of ``model`` with ``method``, compiling as little as possible.

    Every solver library runs every mode, and the plain solve is the same program in all of them (the model's
    ``rhs`` and Jacobian are generated from the model alone, whatever the sensitivity parameters), so its
    results do not depend on which library runs it.  In order: a solver with sensitivity parameters already
    loaded in this process (any selection); the library of ``parameters`` if it is already built (disk
    cache); otherwise the library without sensitivity parameters, which compiles the plain mode only.
    """
    linear_solver = check_linear_solver(linear_solver)
    spec = method_spec(method)
    built_linear = linear_solver if spec.family in _LINEAR_FAMILIES else "auto"
    with _with_sensitivities_lock:
        loaded = _with_sensitivities.get((model, method, built_linear))
    if loaded is not None:
        return loaded
    return _plain_choice(model, tuple(parameters), method, linear_solver)


@cached_once(maxsize=64)
def _plain_choice(model: Model, parameters: tuple[str, ...], method: str, linear_solver: str) -> CompiledSolver:
    """The library of ``parameters`` if it is already built (disk cache), else the plain-only one; looked up
    once per process (the index read is not repeated on every plain solve)."""
    if parameters:
        for wanted in (_FORWARD_MODES, _DUAL_MODES):
            modes = _library_modes(model, parameters, wanted)
            purpose = _solver_purpose_of(model, method, linear_solver, modes)[3]
            if cached_library(model, list(parameters), purpose) is not None:
                return _solver_library(model, parameters, method, linear_solver, modes)  # loads the built library
    return _compiled_solver(model, (), method, linear_solver)


_forget_compiled_solvers = _compiled_solver.cache_clear


def _forget_loaded_solvers() -> None:
    """``_compiled_solver.cache_clear()``: forget the loaded solvers, and with them what the plain solve reads
    (:func:`plain_solver`), as a fresh process would."""
    _forget_compiled_solvers()
    _solver_library.cache_clear()
    _plain_choice.cache_clear()
    with _with_sensitivities_lock:
        _with_sensitivities.clear()


_compiled_solver.cache_clear = _forget_loaded_solvers  # type: ignore[attr-defined]


def check_linear_solver(linear_solver: object) -> str:
    """``linear_solver`` checked: one of ``LINEAR_SOLVERS`` (the error names the argument)."""
    if not isinstance(linear_solver, str) or linear_solver not in LINEAR_SOLVERS:
        raise ValueError(f"`linear_solver` must be one of {', '.join(map(repr, LINEAR_SOLVERS))}, got {linear_solver!r}")
    return linear_solver


def compiled_solver(model: Model, parameters: Sequence[str], method: str, linear_solver: str = "auto") -> CompiledSolver:
    """Generate, build (or load from the cache) and load the compiled solver of ``method`` for ``model``.

    ``linear_solver``: ``"dense"`` (LU with partial pivoting), ``"sparse"`` (fixed-pattern LU over the symbolic
    pattern of ``I + J``, symsens_sparse.hpp; dense when the pattern is too full for it) or ``"auto"`` (sparse
    for models the measured rule of ``symsens.codegen._sparsity.recommend_sparse`` selects).
    """
    return _compiled_solver(model, tuple(parameters), method, check_linear_solver(linear_solver))
