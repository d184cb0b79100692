"""What a solve returns: the solution at the output times, its sensitivities, and how it was obtained."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import IntegrationError

__all__ = ["Solution", "SolverStats", "STATUSES"]

#: Status strings a solve can end with; every status but "success" names a failure.
STATUSES: tuple[str, ...] = ("success", "step size underflow", "newton failure", "non-finite values", "too many steps")


@dataclass(frozen=True)
class SolverStats:
    """Work counters and the accepted step sequence of one solve.

    ``step_times`` holds ``t_0 < t_1 < ... < t_N`` (the start and every accepted step's end), ``step_sizes``
    the N accepted step sizes; replaying ``step_sizes`` reproduces the solve exactly (frozen steps).
    """

    accepted_steps: int = 0
    rejected_steps: int = 0
    rhs_evaluations: int = 0
    jacobian_evaluations: int = 0
    lu_decompositions: int = 0
    newton_iterations: int = 0
    step_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    step_sizes: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True)
class Solution:
    """The result of :func:`symsens.solve`.

    Attributes
    ----------
    t : ndarray (K,)
        Output times (``t_eval``, or the accepted step times when no ``t_eval`` was given).
    y : ndarray (K, n)
    sensitivities : ndarray (K, n, P) or None
        ``d y / d p`` for the parameters in ``parameters`` (the gradient order), when asked for.
    parameters : tuple of str
        Names of the parameters ``sensitivities`` is taken with respect to.
    method, sensitivity, backend : str
        What produced it (``sensitivity`` is e.g. ``"forward"``, ``"forward-error-control"``, ``"discrete"``,
        ``"discrete-tangent-norm"``, ``"discrete-differentiated-steps"`` or None).
    status : str
        ``"success"`` or the failure (see :data:`STATUSES`); ``t_failure`` is when it happened.
    message : str
    stats : SolverStats
    options : dict
        The solver settings used (rtol, atol, ...), for reports.
    """

    t: np.ndarray
    y: np.ndarray
    sensitivities: np.ndarray | None
    parameters: tuple[str, ...]
    method: str
    sensitivity: str | None
    backend: str
    status: str
    message: str
    stats: SolverStats
    options: dict[str, Any]
    t_failure: float | None = None
    state_names: tuple[str, ...] = ()

    @property
    def success(self) -> bool:
        return self.status == "success"

    def check(self) -> Solution:
        """Return ``self`` if the solve succeeded, else raise :class:`IntegrationError` naming what and when."""
        if not self.success:
            raise IntegrationError(self.message, status=self.status, t=self.t_failure)
        return self
