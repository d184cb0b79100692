"""Counting verified digits: two independent runs, their agreement and the tighter run's error estimate.

A value ``x`` (the tighter run's) is *correct to d significant digits* when its error is at most half a unit
in the d-th significant digit::

    |error| <= 0.5 * 10^(E - d + 1),    E = floor(log10 |x|),

i.e. ``d = floor(E + 1 - log10(2 |error|))``.  A value counts as verified to ``d`` digits only when both

1. the two runs agree to ``d`` digits (``error = |x_A - x_B|``), and
2. the estimated error of the tighter run B is below half a unit in the d-th digit.

The error estimate of B (``estimated_error``) is the larger of two indications:

* the convergence of the ladder: ``q |x_A - x_B|`` with ``q = min(1, max(10 tol_B / tol_A, r))``, where
  ``r = |x_A - x_B| / |x_Z - x_A|`` is the contraction observed between the previous pair of runs (Z, A)
  when there is one.  If global errors scaled with the tolerance, B's error would be ``tol_B / tol_A``
  (1/1000) of A's; the factor 10 is a safety margin, and ``r`` replaces it when the runs converge more
  slowly than the tolerances shrink (the geometric tail ``r / (1 - r)`` is bounded by ``q`` for
  ``r <= 1/2``; ``q = 1`` once the differences stop shrinking).
* the rounding floor of B's arithmetic: ``10 u sqrt(steps) |x|`` with ``u`` its unit roundoff, so two runs
  that agree beyond their precision (sharing rounding errors) are not believed.

The ladder (:func:`symsens.reference.reference`) then keeps, for each value, the digits of the best pair whose
tighter run also agrees to those digits with every later successful run: rounding errors can be shared by two
rungs with similar step sequences, and a later rung that moves the value shows it.

Each run also reports the sum of its local error estimates (step doubling) per output value; that sum
ignores the propagation of errors (damping in stiff problems, growth in unstable ones), so it is kept as a
diagnostic (``accumulated_error``) rather than used as a bound.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

__all__ = ["significant_digits", "estimated_error", "compare_runs"]


def significant_digits(value: mpmath.mpf, error: float | mpmath.mpf, cap: int) -> int:
    """The number ``d`` of significant digits of ``value`` that an error of size ``error`` leaves correct.

    ``error = 0`` gives ``cap``; ``value = 0`` with a nonzero error gives 0.  The result is in ``[0, cap]``.
    """
    error = abs(mpmath.mpf(error))
    if error == 0:
        return cap
    value = abs(mpmath.mpf(value))
    if value == 0:
        return 0
    exponent = int(mpmath.floor(mpmath.log10(value)))
    d = int(mpmath.floor(exponent + 1 - mpmath.log10(2 * error)))
    return max(0, min(cap, d))


def estimated_error(value: mpmath.mpf, difference: mpmath.mpf, previous_difference: mpmath.mpf | None,
                    tolerance_ratio: float, unit_roundoff: float, steps: int) -> float:
    """The error estimate of the tighter run's ``value`` (see the module docstring)."""
    factor = 10.0 * tolerance_ratio
    if previous_difference is not None and previous_difference != 0 and mpmath.isfinite(previous_difference):
        factor = max(factor, float(abs(difference) / abs(previous_difference)))
    factor = min(1.0, factor)
    convergence = factor * float(abs(difference))
    rounding = 10.0 * unit_roundoff * math.sqrt(max(steps, 1)) * float(abs(value))
    return max(convergence, rounding)


def compare_runs(
    values_a: list[mpmath.mpf], values_b: list[mpmath.mpf], previous_differences: list[mpmath.mpf] | None,
    tolerance_ratio: float, unit_roundoff: float, steps_b: int, cap: int, structural_zero: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[mpmath.mpf]]:
    """Per component: verified digits of B's values, the error bound ``max(|A - B|, estimate of B)``, and the
    differences ``|A - B|`` (the next comparison's ``previous_differences``).

    ``structural_zero`` marks components that are exactly zero for every parameter value (a sensitivity
    of a state its parameter cannot reach): they are exact, with ``cap`` digits and error 0.
    """
    m = len(values_b)
    digits = np.zeros(m, dtype=int)
    bound = np.zeros(m)
    differences: list[mpmath.mpf] = []
    zero = np.asarray(structural_zero, dtype=bool).ravel()
    for k in range(m):
        a, b = values_a[k], values_b[k]
        difference = abs(a - b) if (mpmath.isfinite(a) and mpmath.isfinite(b)) else mpmath.mpf("inf")
        differences.append(difference)
        if zero[k]:
            digits[k], bound[k] = cap, 0.0
            continue
        if not mpmath.isfinite(difference):
            digits[k], bound[k] = 0, math.inf
            continue
        previous = previous_differences[k] if previous_differences is not None else None
        estimate = estimated_error(b, difference, previous, tolerance_ratio, unit_roundoff, steps_b)
        agreement = significant_digits(b, difference, cap)
        own = significant_digits(b, estimate, cap)
        digits[k] = min(agreement, own)
        bound[k] = max(float(difference), estimate)
    return digits, bound, differences
