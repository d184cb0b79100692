"""Floating-point warnings inside the audit: its runs overflow and divide by zero on purpose.

An audit runs solvers at loose tolerances on stiff models, where sensitivities can overflow (an explicit scheme
whose tangents explode) and errors are taken against a true gradient of 0.  Those outcomes are measured and
reported in the verdicts (non-finite values, infinite errors); NumPy's RuntimeWarnings about them would only
print source lines at the user.  The state is set per call (NumPy's error state is thread- and context-local), so
worker threads and the caller's own code keep theirs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

__all__ = ["quiet_floating_point"]

F = TypeVar("F", bound=Callable[..., Any])


def quiet_floating_point(function: F) -> F:
    """``function`` run under ``np.errstate(all="ignore")``: overflow, underflow, division by zero and invalid
    operations give inf/nan silently (the audit checks for them itself)."""

    @functools.wraps(function)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)

    return quiet  # type: ignore[return-value]
