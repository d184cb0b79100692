"""Argument checks shared by the public entry points (solve, reference, audit): one wording for one mistake."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["time_span", "output_times", "STATUS_NAMES"]

#: Status codes of the compiled integrators (symsens_solver.hpp's Status) and their names.
STATUS_NAMES: dict[int, str] = {
    0: "success",
    1: "step size underflow",
    2: "newton failure",
    3: "non-finite values",
    4: "too many steps",
    5: "bad input",
    6: "time budget exhausted",
}


def time_span(t_span: Any, default: tuple[float, float] | None) -> tuple[float, float]:
    """``t_span`` (or ``default``, a model's own span, when it is None) as two finite floats with t0 < t1."""
    if t_span is None:
        if default is None:
            raise ValueError("`t_span` is required: the model has no default time span")
        t_span = default
    try:
        if len(t_span) != 2:
            raise TypeError
        t0, t1 = float(t_span[0]), float(t_span[1])
    except (TypeError, ValueError):
        raise ValueError(f"`t_span` must be a pair (t0, t1), got {t_span!r}") from None
    if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
        raise ValueError(f"`t_span` must be two finite times with t0 < t1, got {t_span!r}")
    return t0, t1


def output_times(values: Any, name: str, t0: float | None = None, t1: float | None = None) -> np.ndarray:
    """``values`` as a 1-D float array of non-decreasing finite times, inside [t0, t1] when those are given.

    Raises ValueError naming the argument ``name`` and the problem.
    """
    times = np.asarray(values, dtype=float).ravel()
    if times.size == 0:
        raise ValueError(f"`{name}` is empty")
    if not np.all(np.isfinite(times)):
        raise ValueError(f"`{name}` contains non-finite times")
    if np.any(np.diff(times) < 0):
        raise ValueError(f"`{name}` must be non-decreasing")
    if t0 is not None and t1 is not None and (times[0] < t0 or times[-1] > t1):
        raise ValueError(f"`{name}` must lie inside t_span [{t0}, {t1}], got [{times[0]}, {times[-1]}]")
    return times
