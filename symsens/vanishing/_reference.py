"""The one place this package gets a verified reference gradient from.

:func:`reference_sensitivities` calls ``symsens.reference(model, t_span, p=..., t_eval=..., digits=...,
sensitivity=True, parameters=...)`` when that function exists (the verified high-precision reference).  Until it
does, it uses a stand-in: continuous forward sensitivities with Radau IIA-3 with the sensitivities under error
control at ``rtol = 1e-12`` (``atol = 1e-12 rtol``-scaled), verified against the same solve at ``rtol = 1e-11``; the
number of verified digits is ``-log10`` of the largest difference relative to the size of each sensitivity column.
``ReferenceResult.source`` says which one was used and ``.message`` carries the verdict.  ``symsens.reference`` is in
the package now, so the stand-in only runs on an installation without it; it is never used silently (every table of
this package prints ``source``).  Default 8 digits: the stiff neural ODE to 8 verified digits (a double-double
Radau IIA ladder, rtol 1e-6/1e-9/1e-12) takes 0.3-0.9 s per call on 2 shared cores, fast enough for the fit's
reference source (one call per iteration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ReferenceResult", "reference_sensitivities", "reference_source"]


@dataclass(frozen=True)
class ReferenceResult:
    t: np.ndarray
    y: np.ndarray
    sensitivities: np.ndarray   # (len(t), n, P)
    verified_digits: float
    parameters: tuple[str, ...]
    source: str                  # "symsens.reference" or "stand-in: radau-iia-3 forward, rtol 1e-12 vs 1e-11"
    requested_digits: int = 8
    verified: bool = True        # verified_digits >= requested_digits
    message: str = ""            # symsens.reference's one-sentence verdict (or the stand-in's)
    seconds: float = 0.0


def reference_source() -> str:
    import symsens

    return "symsens.reference" if callable(getattr(symsens, "reference", None)) else (
        "stand-in: radau-iia-3 continuous forward sensitivities with error control, rtol 1e-12 verified against 1e-11"
    )


def _column_digits(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest over parameters of ``-log10(max|a - b| / max|b|)`` (the column's own scale)."""
    digits = []
    for j in range(b.shape[-1]):
        scale = np.max(np.abs(b[..., j]))
        if scale == 0:
            continue
        diff = np.max(np.abs(a[..., j] - b[..., j])) / scale
        digits.append(16.0 if diff == 0 else -np.log10(diff))
    return float(min(digits)) if digits else 16.0


def reference_sensitivities(
    model: Any, t_span: tuple[float, float], *, p: Any = None, t_eval: Sequence[float], parameters: Sequence[str],
    digits: int = 8,
) -> ReferenceResult:
    """Reference ``y`` and ``∂y/∂p`` at ``t_eval`` (see the module docstring for where they come from)."""
    import time

    import symsens

    parameters = tuple(parameters)
    real = getattr(symsens, "reference", None)
    start = time.perf_counter()
    if callable(real):
        result = real(model, t_span, p=p, t_eval=t_eval, digits=digits, sensitivity=True, parameters=parameters)
        return ReferenceResult(
            t=np.asarray(result.t, dtype=float), y=np.asarray(result.y, dtype=float),
            sensitivities=np.asarray(result.sensitivities, dtype=float),
            verified_digits=float(np.min(result.verified_digits)), parameters=parameters, source="symsens.reference",
            requested_digits=int(digits), verified=bool(result.verified), message=str(result.message),
            seconds=time.perf_counter() - start,
        )
    runs = []
    for rtol in (1e-12, 1e-11):
        solution = symsens.solve(model, t_span, p=p, method="radau-iia-3", rtol=rtol, atol=rtol * 1e-2,
                                 t_eval=t_eval, sensitivity="forward", sensitivity_in_norm=True,
                                 parameters=list(parameters), max_steps=2_000_000).check()
        runs.append(solution)
    fine, coarse = runs
    verified = _column_digits(coarse.sensitivities, fine.sensitivities)
    return ReferenceResult(t=fine.t, y=fine.y, sensitivities=fine.sensitivities, verified_digits=verified,
                           parameters=parameters, source=reference_source(), requested_digits=int(digits),
                           verified=verified >= digits,
                           message=f"stand-in (symsens.reference unavailable): {verified:.1f} digits by rtol 1e-12 vs 1e-11",
                           seconds=time.perf_counter() - start)
