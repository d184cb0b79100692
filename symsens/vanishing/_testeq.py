"""The Fronk–Petzold experiment on the test equation ``y' = λ y``: measured, closed-form and exact sensitivities.

Two sweeps over ``z = h λ`` (``y0 = 1``, ``n`` equal steps, the parameter is ``λ`` itself, ``λ' = 1``):

``vary="rate"``  (``h = 1``, ``λ = z``)
    measured ``∂y_n/∂λ``; closed form ``n h R(z)^(n-1) R'(z) y0``; exact ``t e^{λ t} y0``, ``t = n h``.
    For ``n = 1`` this is ``R'(z)`` itself: its slope in ``|z|`` is the decay exponent of ``R'``.
``vary="step"``  (``λ = -1``, ``h = -z``)
    measured ``λ ∂y_n/∂λ`` (the relative sensitivity to a rate, ``∂y_n/∂ log|λ|``); closed form
    ``n z R(z)^(n-1) R'(z) y0``; exact ``λ t e^{λ t} y0``.  For ``n = 1`` this is ``z R'(z)``.

Measurement engines (``SweepResult.engine``):

* ``"compiled"`` — ``symsens.solve(stiff-linear, method=..., sensitivity="discrete", fixed_step=h)``, the real
  compiled integrators in double precision (explicit RK, Radau IIA-3, SDIRK/ESDIRK, Rosenbrock, exponential);
* ``"stage-solve"`` — catalogue schemes without a compiled integrator: :func:`~._generic.irk_fixed_step`, Newton on
  the stage equations in 50-digit arithmetic with dual numbers;
* ``"lmm-recurrence"`` — BDF``k``: :func:`~._generic.lmm_fixed_step` from the exact starting values
  ``y_j = e^{jz}`` (with their exact derivatives), 50 digits.

Closed forms for one-step schemes come from the exact ``P, Q`` of :func:`symsens.schemes.stability_polynomials`
evaluated at 40 digits; for BDF``k`` from the root decomposition ``y_n = sum_i c_i ζ_i(z)^n`` of the recurrence
(roots of ``ρ(ζ) - z σ(ζ)``, ``ζ_i' = σ(ζ_i)/(ρ'(ζ_i) - z σ'(ζ_i))``, weights ``c`` from the starting values), and
for exponential schemes from ``R = e^z``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp

from .._precision import mpmath_precision
from .._errors import SchemeError
from ._generic import Dual, irk_fixed_step, lmm_fixed_step

__all__ = [
    "SweepResult",
    "sweep",
    "measure",
    "closed_form",
    "exact",
    "engine_of",
    "FAMILIES",
    "family_of",
    "compiled_method_names",
    "DEFAULT_Z",
]

#: ``|z|`` grid of the experiment: 10^-1 .. 10^8, four points per decade.
DEFAULT_Z: np.ndarray = -np.logspace(-1, 8, 37)

#: Families as the figures group them: name -> schemes.
FAMILIES: dict[str, tuple[str, ...]] = {
    "collocation": ("gauss-2", "gauss-3", "radau-iia-2", "radau-iia-3", "lobatto-iiic-2", "lobatto-iiic-3"),
    "dirk": ("backward-euler", "implicit-midpoint", "trapezoid", "sdirk2", "sdirk3-alexander", "sdirk4", "tr-bdf2",
             "kvaerno3", "kvaerno4", "kvaerno5"),
    "rosenbrock": ("ros2", "ros3p", "rodas3", "rodas4", "rodas5p"),
    "bdf": ("bdf1", "bdf2", "bdf3", "bdf4", "bdf5", "bdf6"),
    "exponential": ("exprb-euler", "exprb32"),
}


def family_of(name: str) -> str:
    for family, names in FAMILIES.items():
        if name in names:
            return family
    from ..schemes import get_scheme

    scheme = get_scheme(name)
    return str(getattr(scheme, "family", "other"))


def compiled_method_names() -> tuple[str, ...]:
    from ..integrate._compiled import EXPLICIT_METHODS, IMPLICIT_METHODS

    try:
        from ..integrate._compiled import EXPONENTIAL_METHODS
    except ImportError:  # pragma: no cover - the exponential integrators are part of this package's work
        EXPONENTIAL_METHODS = ()
    return tuple(EXPLICIT_METHODS) + tuple(IMPLICIT_METHODS) + tuple(EXPONENTIAL_METHODS)


def _scheme(name: str):  # type: ignore[no-untyped-def]
    from ..schemes import get_scheme

    return get_scheme(name)


def _is_multistep(scheme: object) -> bool:
    from ..schemes._analysis import is_multistep

    return is_multistep(scheme)


def _is_exponential(scheme: object) -> bool:
    return getattr(scheme, "family", None) == "exponential"


def engine_of(name: str) -> str:
    """How :func:`measure` measures scheme ``name``: ``"compiled"``, ``"stage-solve"`` or ``"lmm-recurrence"``."""
    scheme = _scheme(name)
    if _is_multistep(scheme):
        if not str(name).startswith("bdf"):
            raise SchemeError(f"{name!r}: only BDF methods are measured among multistep methods")
        return "lmm-recurrence"
    if name in compiled_method_names():
        return "compiled"
    if hasattr(scheme, "A"):
        return "stage-solve"
    raise SchemeError(f"{name!r} has no compiled integrator and is not a Butcher tableau")


@dataclass(frozen=True)
class SweepResult:
    """One scheme's sensitivities over a ``z`` grid (see the module docstring for ``vary``)."""

    scheme: str
    family: str
    engine: str
    vary: str
    steps: int
    z: np.ndarray
    measured: np.ndarray
    closed_form: np.ndarray
    exact: np.ndarray

    @property
    def relative_difference(self) -> np.ndarray:
        """``|measured - closed| / |closed|`` (NaN where the closed form is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(self.measured - self.closed_form) / np.abs(self.closed_form)


# ----------------------------------------------------------------------------------------------------
# Closed forms.
# ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _one_step_mp(name: str, dps: int = 40) -> tuple[list[mpmath.mpf], list[mpmath.mpf]]:
    from ..schemes import stability_polynomials

    P, Q = stability_polynomials(_scheme(name))
    with mpmath_precision(dps=dps):
        return ([mpmath.mpf(str(sp.N(c, dps))) for c in P.all_coeffs()],
                [mpmath.mpf(str(sp.N(c, dps))) for c in Q.all_coeffs()])


def _one_step_closed(name: str, z: mpmath.mpf, steps: int) -> mpmath.mpf:
    """``n R(z)^(n-1) R'(z)`` from the exact ``P, Q`` (``R' = (P'Q - PQ')/Q²``)."""
    p, q = _one_step_mp(name)
    P = mpmath.polyval(p, z)
    Q = mpmath.polyval(q, z)
    dp = mpmath.polyval([c * (len(p) - 1 - i) for i, c in enumerate(p[:-1])], z) if len(p) > 1 else mpmath.mpf(0)
    dq = mpmath.polyval([c * (len(q) - 1 - i) for i, c in enumerate(q[:-1])], z) if len(q) > 1 else mpmath.mpf(0)
    R = P / Q
    dR = (dp * Q - P * dq) / (Q * Q)
    return steps * R ** (steps - 1) * dR


def _lmm_closed(name: str, z: mpmath.mpf, steps: int) -> mpmath.mpf:
    """``d y_n / d z`` of the multistep recurrence from exact starts ``y_j = e^{jz}``, by its root decomposition."""
    method = _scheme(name)
    k = method.steps
    alpha = [mpmath.mpf(int(sp.Rational(a).p)) / int(sp.Rational(a).q) for a in method.alpha]
    beta = [mpmath.mpf(int(sp.Rational(b).p)) / int(sp.Rational(b).q) for b in method.beta]
    coefficients = [alpha[j] - z * beta[j] for j in range(k + 1)][::-1]
    roots = mpmath.polyroots(coefficients, maxsteps=200, extraprec=2 * mpmath.mp.dps)
    if k == 1:
        roots = [roots] if not isinstance(roots, list) else roots

    def rho_d(x):  # type: ignore[no-untyped-def]
        return sum(j * alpha[j] * x ** (j - 1) for j in range(1, k + 1))

    def sigma(x):  # type: ignore[no-untyped-def]
        return sum(beta[j] * x**j for j in range(k + 1))

    def sigma_d(x):  # type: ignore[no-untyped-def]
        return sum(j * beta[j] * x ** (j - 1) for j in range(1, k + 1))

    droots = [sigma(r) / (rho_d(r) - z * sigma_d(r)) for r in roots]
    V = mpmath.matrix(k, k)
    dV = mpmath.matrix(k, k)
    s = mpmath.matrix(k, 1)
    ds = mpmath.matrix(k, 1)
    for j in range(k):
        s[j] = mpmath.exp(j * z)
        ds[j] = j * mpmath.exp(j * z)
        for i in range(k):
            V[j, i] = roots[i] ** j
            dV[j, i] = j * roots[i] ** (j - 1) * droots[i] if j > 0 else 0
    c = mpmath.lu_solve(V, s)
    dc = mpmath.lu_solve(V, ds - dV * c)
    total = sum(dc[i] * roots[i] ** steps + c[i] * steps * roots[i] ** (steps - 1) * droots[i] for i in range(k))
    return mpmath.re(total)


def closed_form(name: str, z: Sequence[float] | np.ndarray, steps: int = 1, vary: str = "rate") -> np.ndarray:
    """The closed-form sensitivity of the sweep (see module docstring), as floats (computed at 40 digits)."""
    scheme = _scheme(name)
    out = np.empty(len(z))
    with mpmath_precision(dps=40):
        for i, zz in enumerate(z):
            zm = mpmath.mpf(float(zz))
            if _is_exponential(scheme):
                value = steps * mpmath.exp(steps * zm)
            elif _is_multistep(scheme):
                value = _lmm_closed(name, zm, steps)
            else:
                value = _one_step_closed(name, zm, steps)
            # rate: h = 1, dz/dλ = 1;  step: λ = -1, λ ∂/∂λ = z ∂/∂z.
            out[i] = float(value if vary == "rate" else zm * value)
    return out


def exact(z: Sequence[float] | np.ndarray, steps: int = 1, vary: str = "rate") -> np.ndarray:
    """``t e^{λ t}`` (``vary="rate"``, ``h = 1``) or ``λ t e^{λ t}`` (``vary="step"``, ``λ = -1``), ``t = n h``."""
    z = np.asarray(z, dtype=float)
    with np.errstate(under="ignore"):
        value = steps * np.exp(steps * z)
    return value if vary == "rate" else z * value


# ----------------------------------------------------------------------------------------------------
# Measurements.
# ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _test_model():  # type: ignore[no-untyped-def]
    from ..model import load_model

    return load_model("stiff-linear")


def _rate_and_step(z: float, vary: str) -> tuple[float, float]:
    if vary == "rate":
        return float(z), 1.0
    if vary == "step":
        return -1.0, -float(z)
    raise ValueError(f"`vary` must be \"rate\" or \"step\", got {vary!r}")


def _measure_compiled(name: str, z: np.ndarray, steps: int, vary: str) -> np.ndarray:
    from ..integrate import solve

    model = _test_model()
    out = np.empty(len(z))
    for i, zz in enumerate(z):
        lam, h = _rate_and_step(zz, vary)
        # Tolerances enter fixed-step solves only through Newton's stopping test (implicit methods); a vanishing atol
        # makes it relative, so that values far below 1e-8 are still solved to full precision.
        solution = solve(model, (0.0, steps * h), p={"lam": lam, "y0": 1.0}, method=name, sensitivity="discrete",
                         parameters=["lam"], fixed_step=h, t_eval=[steps * h], rtol=1e-10, atol=1e-300)
        if not solution.success or solution.stats.accepted_steps != steps:
            out[i] = np.nan
            continue
        derivative = float(solution.sensitivities[-1, 0, 0])
        out[i] = derivative if vary == "rate" else lam * derivative
    return out


def _linear_rhs(lam: Dual):  # type: ignore[no-untyped-def]
    def f(t: object, y: Sequence[Dual]) -> list[Dual]:
        return [lam * y[0]]

    def jac(t: object, y: Sequence[Dual]) -> list[list[Dual]]:
        return [[lam]]

    return f, jac


def _measure_stage_solve(name: str, z: np.ndarray, steps: int, vary: str, dps: int) -> np.ndarray:
    scheme = _scheme(name)
    out = np.empty(len(z))
    with mpmath_precision(dps=dps + 10):
        for i, zz in enumerate(z):
            lam_value, h = _rate_and_step(zz, vary)
            lam = Dual(mpmath.mpf(lam_value), 1)
            f, jac = _linear_rhs(lam)
            y = irk_fixed_step(scheme.A, scheme.b, scheme.c, f, jac, [Dual(1)], mpmath.mpf(h), steps, dps=dps)
            out[i] = float(y[0].d if vary == "rate" else lam.v * y[0].d)
    return out


def _measure_lmm(name: str, z: np.ndarray, steps: int, vary: str, dps: int) -> np.ndarray:
    method = _scheme(name)
    k = method.steps
    if steps < k:
        raise ValueError(f"{name}: needs at least k = {k} steps (k - 1 exact starting values), got {steps}")
    out = np.empty(len(z))
    with mpmath_precision(dps=dps + 10):
        for i, zz in enumerate(z):
            lam_value, h = _rate_and_step(zz, vary)
            lam = Dual(mpmath.mpf(lam_value), 1)
            hm = mpmath.mpf(h)
            f, jac = _linear_rhs(lam)
            # exact starting values y_j = e^{λ j h} with their derivative j h e^{λ j h}
            start = [[Dual(mpmath.exp(lam.v * j * hm), j * hm * mpmath.exp(lam.v * j * hm))] for j in range(k)]
            ys = lmm_fixed_step(method.alpha, method.beta, f, jac, start, hm, steps, dps=dps)
            derivative = ys[steps][0].d
            out[i] = float(derivative if vary == "rate" else lam.v * derivative)
    return out


def measure(name: str, z: Sequence[float] | np.ndarray, steps: int = 1, vary: str = "rate", *, dps: int = 50) -> np.ndarray:
    """The measured sensitivity of the sweep (``∂y_n/∂λ`` or ``λ ∂y_n/∂λ``) with the engine :func:`engine_of`."""
    z = np.asarray(z, dtype=float)
    if np.any(z >= 0):
        raise ValueError("`z` must be negative (the decaying test equation)")
    engine = engine_of(name)
    if engine == "compiled":
        return _measure_compiled(name, z, steps, vary)
    if engine == "stage-solve":
        return _measure_stage_solve(name, z, steps, vary, dps)
    return _measure_lmm(name, z, steps, vary, dps)


def sweep(name: str, z: Sequence[float] | np.ndarray | None = None, steps: int = 1, vary: str = "rate") -> SweepResult:
    """Measured, closed-form and exact sensitivities of scheme ``name`` over ``z`` (default :data:`DEFAULT_Z`)."""
    z = DEFAULT_Z if z is None else np.asarray(z, dtype=float)
    scheme = _scheme(name)
    if _is_multistep(scheme):
        steps = max(steps, scheme.steps)
    return SweepResult(
        scheme=name, family=family_of(name), engine=engine_of(name), vary=vary, steps=steps, z=z,
        measured=measure(name, z, steps, vary), closed_form=closed_form(name, z, steps, vary), exact=exact(z, steps, vary),
    )
