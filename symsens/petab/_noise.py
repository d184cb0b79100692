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

import sympy as sp

__all__ = ["NOISE_DISTRIBUTIONS", "TRANSFORMATIONS", "negative_log_likelihood"]

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
