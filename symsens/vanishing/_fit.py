"""Decay exponents fitted from measurements, beside the exact exponents of :func:`symsens.schemes.decay_asymptotics`.

A least-squares line through ``(log10 |z|, log10 |value|)`` over the asymptotic range gives the exponent ``e`` of
``|value| ~ c |z|^e``.  The range is where the leading Laurent (or Puiseux) term dominates:

* one-step schemes: ``10^4 <= |z| <= 10^8`` (the next term is ``|z|^-1`` smaller: at most 1e-4 relative);
* BDF``k``: ``10^6 <= |z| <= 10^12`` for the dominant root, whose correction is only ``|z|^(-1/k)`` smaller
  (BDF6: 0.1 at 10^6), evaluated with :func:`symsens.schemes.dominant_root` and the implicit derivative
  ``ζ' = σ(ζ)/(ρ'(ζ) - z σ'(ζ))`` at 40 digits.

One-step exponents are fitted from *measured* sensitivities (the two sweeps of :mod:`._testeq`): ``dR`` from
``∂y1/∂λ`` at ``h = 1`` (equal to ``R'(z)``), ``zdR`` from ``λ ∂y1/∂λ`` at ``λ = -1`` (equal to ``z R'(z)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import numpy as np

__all__ = ["fit_exponent", "ExponentFit", "one_step_exponents", "multistep_exponent", "exponent_table",
           "ONE_STEP_RANGE", "MULTISTEP_RANGE"]

ONE_STEP_RANGE: tuple[float, float] = (1e4, 1e8)
MULTISTEP_RANGE: tuple[float, float] = (1e6, 1e12)


def fit_exponent(z: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                 z_range: tuple[float, float] | None = None) -> float:
    """Slope of ``log|values|`` against ``log|z|`` by least squares, over ``z_range`` (``|z|`` bounds) if given."""
    z = np.abs(np.asarray(z, dtype=float))
    v = np.abs(np.asarray(values, dtype=float))
    keep = np.isfinite(v) & (v > 0)
    if z_range is not None:
        keep &= (z >= z_range[0] * (1 - 1e-12)) & (z <= z_range[1] * (1 + 1e-12))
    if keep.sum() < 2:
        raise ValueError("fewer than two usable points in the fit range")
    slope, _ = np.polyfit(np.log10(z[keep]), np.log10(v[keep]), 1)
    return float(slope)


@dataclass(frozen=True)
class ExponentFit:
    """Fitted and exact exponents of one scheme: keys ``dR``, ``zdR`` (one-step) or ``root`` (multistep)."""

    scheme: str
    fitted: dict[str, float]
    exact: dict[str, float]
    z_range: tuple[float, float]
    engine: str

    @property
    def max_deviation(self) -> float:
        return max(abs(self.fitted[k] - self.exact[k]) for k in self.fitted)


def _grid(z_range: tuple[float, float], per_decade: int = 4) -> np.ndarray:
    lo, hi = np.log10(z_range[0]), np.log10(z_range[1])
    return -np.logspace(lo, hi, int(round((hi - lo) * per_decade)) + 1)


def one_step_exponents(name: str, z_range: tuple[float, float] = ONE_STEP_RANGE) -> ExponentFit:
    """Fit ``R'`` and ``z R'`` exponents of a one-step scheme from measured one-step sensitivities."""
    from ..schemes import decay_asymptotics, get_scheme
    from ._testeq import engine_of, measure

    z = _grid(z_range)
    laws = decay_asymptotics(get_scheme(name))
    fitted = {
        "dR": fit_exponent(z, measure(name, z, 1, "rate")),
        "zdR": fit_exponent(z, measure(name, z, 1, "step")),
    }
    exact = {"dR": float(laws["dR"][1]), "zdR": float(laws["zdR"][1])}
    return ExponentFit(name, fitted, exact, z_range, engine_of(name))


def dominant_root_sensitivity(name: str, z: Sequence[float] | np.ndarray, dps: int = 40) -> np.ndarray:
    """``|z ζ'(z)|`` for the dominant root of ``ρ - z σ`` (multistep counterpart of ``|z R'(z)|``)."""
    from ..schemes import get_scheme
    from ..schemes._multistep_analysis import lmm_dominant_root_derivative

    method = get_scheme(name)
    out = np.empty(len(z))
    for i, zz in enumerate(z):
        _, derivative = lmm_dominant_root_derivative(method, mpmath.mpf(float(zz)), dps=dps)
        out[i] = float(abs(mpmath.mpf(float(zz)) * derivative))
    return out


def multistep_exponent(name: str, z_range: tuple[float, float] = MULTISTEP_RANGE) -> ExponentFit:
    """Fit the exponent of ``|z ζ'(z)|`` (dominant root) against the exact Newton–Puiseux exponent."""
    from ..schemes import decay_asymptotics, get_scheme

    z = _grid(z_range)
    laws = decay_asymptotics(get_scheme(name))
    exact_exponent = float(laws["zdroot"][1]) if "zdroot" in laws else float(laws["root"][1])
    fitted = {"root": fit_exponent(z, dominant_root_sensitivity(name, z))}
    return ExponentFit(name, fitted, {"root": exact_exponent}, z_range, "dominant-root (40 digits)")


def exponent_table(names: Sequence[str]) -> list[ExponentFit]:
    """:func:`one_step_exponents` or :func:`multistep_exponent` for each scheme (exponential schemes skipped:
    ``e^z`` has no power law)."""
    from ..schemes import get_scheme
    from ..schemes._analysis import is_multistep

    table = []
    for name in names:
        scheme = get_scheme(name)
        if getattr(scheme, "family", None) == "exponential":
            continue
        table.append(multistep_exponent(name) if is_multistep(scheme) else one_step_exponents(name))
    return table
