"""What a solve returns: the solution at the output times, its sensitivities, and how it was obtained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import IntegrationError

__all__ = ["Solution", "SolverStats", "STATUSES"]

#: Status strings a solve can end with, the same for both backends (a subset of
#: ``symsens._checks.STATUS_NAMES``); every status but "success" names a failure:
#:
#: - ``"non-finite values"``: the state, ``f`` or the error estimate became inf or nan (at ``t0`` when ``y0``
#:   or ``f(t0, y0)`` is not finite), including when the step size underflowed while such attempts were
#:   being rejected — the step size only shrank because of them;
#: - ``"step size underflow"``: the step size fell below the spacing of floating-point times at ``t`` (a step
#:   that does not advance ``t`` is never taken);
#: - ``"newton failure"``: the implicit stage equations could not be solved with a fixed or replayed step;
#: - ``"too many steps"``: ``max_steps`` was reached.
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
        Output times (``t_eval``, or the accepted step times when no ``t_eval`` was given).  After a failure,
        only the times the integration reached: ``t0`` and the accepted step times, or the leading entries of
        ``t_eval`` up to the last accepted step (``t_eval`` entries at ``t0`` always, nothing after).  Every row
        returned is a computed value; a time not reached is left out, never filled in.
    y : ndarray (K, n)
        The solution at ``t`` (row for row).
    sensitivities : ndarray (K, n, P) or None
        ``d y / d p`` for the parameters in ``parameters`` (the gradient order), when asked for; after a
        failure, at the same reached times as ``y``.
    parameters : tuple of str
        Names of the parameters ``sensitivities`` is taken with respect to.
    method, sensitivity, backend : str
        What produced it (``sensitivity`` is e.g. ``"forward"``, ``"forward-error-control"``, ``"discrete"``,
        ``"discrete-tangent-norm"``, ``"discrete-differentiated-steps"`` or None).
    status : str
        ``"success"`` or the failure (see :data:`STATUSES`); ``t_failure`` is when it happened: the last time
        reached, from which no step could be completed.
    message : str
    stats : SolverStats
    options : dict
        The solver settings used (rtol, atol, ...), for reports.
    outputs : dict name -> ndarray (K,)
        The model's ``[outputs]`` evaluated at ``t`` (from ``y`` and the parameters of the solve), in the model's
        order; empty when the model declares none.  Computed on first access: by the routine compiled into the
        solver's library for the compiled backend (no SymPy), from the expressions for the NumPy backend and for
        an unpickled solution.  ``output_names`` lists them.
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
    output_function: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, repr=False,
                                                                                  compare=False)
    output_names: tuple[str, ...] = ()

    @property
    def outputs(self) -> dict[str, np.ndarray]:
        """The model's outputs at the output times: ``{name: array of len(t)}`` (see the class docstring)."""
        cached = self.__dict__.get("_outputs")
        if cached is None:
            if self.output_function is None or not self.output_names:
                cached = {}
            else:
                values = np.asarray(self.output_function(self.t, self.y), dtype=float).reshape(len(self.output_names), len(self.t))
                cached = {name: values[i] for i, name in enumerate(self.output_names)}
            object.__setattr__(self, "_outputs", cached)
        return dict(cached)

    @property
    def success(self) -> bool:
        return self.status == "success"

    def check(self) -> Solution:
        """Return ``self`` if the solve succeeded, else raise :class:`IntegrationError` naming what and when."""
        if not self.success:
            raise IntegrationError(self.message, status=self.status, t=self.t_failure)
        return self
