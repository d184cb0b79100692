"""The negative log-likelihood of one measurement under PEtab v1's noise models.

PEtab v1 (https://petab.readthedocs.io, "Noise distributions") defines, for a measurement ``m``, a simulated
observable ``y`` and a noise parameter ``sigma`` (the value of the ``noiseFormula``):

=====================  ==================================================================================
normal, lin            ``1/2 log(2 pi sigma^2) + 1/2 ((m - y) / sigma)^2``
laplace, lin           ``log(2 sigma) + abs(m - y) / sigma``
normal, log            ``1/2 log(2 pi sigma^2 m^2) + 1/2 ((log m - log y) / sigma)^2``       (log-normal)
normal, log10          ``1/2 log(2 pi sigma^2 m^2 log(10)^2) + 1/2 ((log10 m - log10 y) / sigma)^2``
laplace, log           ``log(2 sigma m) + |log m - log y| / sigma``
laplace, log10         ``log(2 sigma m log(10)) + |log10 m - log10 y| / sigma``
=====================  ==================================================================================

The ``m`` and ``log(10)`` factors are the Jacobian of the transformation of the measurement, so the density is
one of ``m`` itself; they do not depend on the parameters.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

__all__ = ["NOISE_DISTRIBUTIONS", "TRANSFORMATIONS", "NOISE_CODES", "negative_log_likelihood", "nll_and_partials"]

NOISE_DISTRIBUTIONS: tuple[str, ...] = ("normal", "laplace")
TRANSFORMATIONS: tuple[str, ...] = ("lin", "log", "log10")


def negative_log_likelihood(measurement: float, simulated: sp.Expr, sigma: sp.Expr, distribution: str,
                            transformation: str) -> sp.Expr:
    """``-log p(m | y, sigma)`` of one measurement (table in the module docstring; PEtab v1's definitions).

    ``measurement`` must be positive for the log transformations (checked by the caller, which knows the row).
    """
    m = sp.Float(measurement, 17)
    if transformation == "lin":
        residual, jacobian = m - simulated, sp.S.One
    elif transformation == "log":
        residual, jacobian = sp.log(m) - sp.log(simulated), m
    elif transformation == "log10":
        residual, jacobian = (sp.log(m) - sp.log(simulated)) / sp.log(10), m * sp.log(10)
    else:  # the caller checks the names; this is a programming error
        raise ValueError(f"unknown observableTransformation {transformation!r}")
    if distribution == "normal":
        return sp.log(2 * sp.pi * sigma**2 * jacobian**2) / 2 + (residual / sigma) ** 2 / 2
    if distribution == "laplace":
        return sp.log(2 * sigma * jacobian) + sp.Abs(residual) / sigma
    raise ValueError(f"unknown noiseDistribution {distribution!r}")


#: Codes of the (distribution, transformation) pairs in :func:`nll_and_partials`.
NOISE_CODES: dict[tuple[str, str], int] = {(d, t): 3 * i + j for i, d in enumerate(NOISE_DISTRIBUTIONS)
                                           for j, t in enumerate(TRANSFORMATIONS)}


def nll_and_partials(measurement: np.ndarray, simulated: np.ndarray, sigma: np.ndarray, code: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised over measurements of one noise model: ``-log p(m | y, sigma)`` (the table in the module
    docstring, the same terms as :func:`negative_log_likelihood`) and its partial derivatives ``d/dy`` and
    ``d/dsigma``.

    ``code`` is :data:`NOISE_CODES` of the (distribution, transformation).  With the residual ``r = T(m) - T(y)``
    (``T`` the transformation, ``dT/dy = 1, 1/y, 1/(y log 10)``) and the Jacobian factor ``J``: normal
    ``1/2 log(2 pi sigma^2 J^2) + r^2/(2 sigma^2)``, ``d/dy = -(r/sigma^2) dT/dy``,
    ``d/dsigma = 1/sigma - r^2/sigma^3``; Laplace ``log(2 sigma J) + |r|/sigma``, ``d/dy = -sign(r)/sigma dT/dy``,
    ``d/dsigma = 1/sigma - |r|/sigma^2``.
    """
    m = np.asarray(measurement, dtype=float)
    y = np.asarray(simulated, dtype=float)
    s = np.asarray(sigma, dtype=float)
    normal, transformation = code < 3, code % 3
    with np.errstate(all="ignore"):
        if transformation == 0:
            residual, dT_dy, jacobian = m - y, 1.0, 1.0
        else:
            log_base = 1.0 if transformation == 1 else math.log(10.0)  # log(e) or log(10)
            residual, dT_dy, jacobian = (np.log(m) - np.log(y)) / log_base, 1.0 / (y * log_base), m * log_base
        z = residual / s
        if normal:
            value = np.log(2 * math.pi * s**2 * jacobian**2) / 2 + z**2 / 2
            return value, -(z / s) * dT_dy, (1 - z**2) / s
        scaled = np.abs(residual) / s
        return np.log(2 * s * jacobian) + scaled, -np.sign(residual) / s * dT_dy, (1 - scaled) / s
