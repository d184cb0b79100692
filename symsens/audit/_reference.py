"""The reference gradient of an audit's loss, with the number of digits it is good for.

The reference solution comes from :func:`symsens.reference` (verified digits).  For a pointwise loss the
reference gradient is ``sum_k (dl/dy)_k S*_k + (dl/dp)_k`` with the reference ``y*`` and ``S*`` at the output
times; its digits are the verified digits of the inputs reduced by the cancellation in the sum
(``log10(sum |terms| / |sum|)``).  A trajectory loss evaluated at its data parameters needs no run: its
residuals vanish identically, so the true loss and gradient are exactly 0.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..model import Model
from ._losses import LossPlan, TrajectoryLoss
from ._parameter_map import ParameterMap

__all__ = ["ReferenceGradient", "reference_gradients", "composed_reference"]


@dataclass(frozen=True, eq=False)
class ReferenceGradient:
    """The true gradient for one output grid."""

    gradient: np.ndarray          # P
    loss: float                   # the true loss
    digits: np.ndarray            # P: correct digits of each component (inf: exact)
    exact: bool                   # known exactly (a trajectory loss at its data parameters)
    how: str                      # how it was obtained and verified
    error_bound: np.ndarray | None = None  # P: bound on |g* - true gradient| propagated from the reference
    verified: bool = True         # the reference runs verified the digits they were asked for
    y: np.ndarray | None = None   # reference states at the output times (None when exact)
    targets: np.ndarray | None = None  # the true targets there (trajectory losses: the exact nominal outputs)
    sensitivity_norms: np.ndarray | None = None
    sensitivities: np.ndarray | None = None  # K x n x P: the reference S* at the output times (None when exact)


def _error_bounds(result, name: str, shape: tuple[int, ...]) -> np.ndarray:  # type: ignore[no-untyped-def]
    bounds = getattr(result, name, None)
    if bounds is None:
        return np.full(shape, np.inf)
    bounds = np.asarray(bounds, dtype=float)
    return np.where(np.isnan(bounds), np.inf, np.broadcast_to(bounds, shape))


def _gradient_error_bound(plan: LossPlan, t: np.ndarray, y: np.ndarray, S: np.ndarray, p: np.ndarray,
                          data: np.ndarray | None, y_err: np.ndarray, s_err: np.ndarray,
                          data_source: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> np.ndarray:
    """A bound on |g* - g| per component from the reference's error bounds.

    Integral losses: the bound of S_q(t1).  Pointwise: sum_k |dl/dy|_k |dS_k| (the sensitivities' error) plus
    the change of the gradient when the states (and, for a trajectory loss, the targets' states) move by their
    error bounds, evaluated both ways (this carries the cancellation in r = g(y) - d near a fit).
    """
    if plan.kind == "integral":
        return np.asarray(s_err[-1, -1, :], dtype=float)
    n = plan.model.n_states
    if not (np.all(np.isfinite(y_err)) and np.all(np.isfinite(s_err))):
        return np.full(len(plan.parameters), np.inf)
    base = plan.value_and_gradient(t, y, S, p, data)[1]
    sensitivity_part = np.einsum("ki,kij->j", np.abs(plan.dl_dy(t, y, p, data)), s_err[:, :n, :])
    state_part = np.zeros_like(base)
    for sign in (1.0, -1.0):
        moved = plan.value_and_gradient(t, y + sign * y_err, S, p, data)[1]
        state_part = np.maximum(state_part, np.abs(moved - base))
    if data_source is not None:
        data_y, data_err, p_data = data_source
        for sign in (1.0, -1.0):
            moved_data = plan.outputs_of(t, data_y + sign * data_err, p_data)
            moved = plan.value_and_gradient(t, y, S, p, moved_data)[1]
            state_part = state_part + np.abs(moved - base) / 2
    return sensitivity_part + state_part


def _run_reference(model: Model, t_span: tuple[float, float], p: np.ndarray, times: np.ndarray,
                   parameters: Sequence[str], digits: int, sensitivity: bool, time_budget: float | None,
                   exact_values: Sequence[tuple[str, str]] = ()):  # type: ignore[no-untyped-def]
    from ..reference import reference

    point: Any = p
    if exact_values:  # values known beyond double precision, as decimal strings (symsens.reference reads them)
        point = list(p)
        for name, text in exact_values:
            point[model.parameter_names.index(name)] = text
    return reference(model, t_span, p=point, t_eval=times, digits=digits, sensitivity=sensitivity,
                     parameters=list(parameters) if sensitivity else None, time_budget=time_budget)


def _cached_reference(model: Model, t_span: tuple[float, float], p: np.ndarray, times: np.ndarray,
                      parameters: Sequence[str], digits: int, sensitivity: bool, time_budget: float | None,
                      use_cache: bool, exact_values: Sequence[tuple[str, str]] = ()):  # type: ignore[no-untyped-def]
    """:func:`_run_reference`, read from the on-disk reference cache when it holds this run (keyed by content,
    :mod:`symsens.audit._reference_cache`); a verified fresh run is stored there."""
    if not use_cache:
        return _run_reference(model, t_span, p, times, parameters, digits, sensitivity, time_budget, exact_values)
    from ._reference_cache import read_reference, reference_key, write_reference

    key = reference_key(model, t_span, p, times, parameters, digits, sensitivity, exact_values)
    cached = read_reference(key, times)
    if cached is not None:
        return cached
    result = _run_reference(model, t_span, p, times, parameters, digits, sensitivity, time_budget, exact_values)
    write_reference(key, times, result)
    return result


def _digits(gradient: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Correct digits of each component from its error bound: ``-log10(bound / |g|)`` in [0, 17]; 0 unbounded."""
    with np.errstate(divide="ignore", invalid="ignore"):
        digits = np.where(bound == 0, 17.0, np.clip(-np.log10(bound / np.abs(gradient)), 0.0, 17.0))
    return np.where(np.isfinite(bound), digits, 0.0)


def composed_reference(reference: ReferenceGradient, parameter_map: ParameterMap, n_states: int) -> ReferenceGradient:
    """``reference`` (over the map's model parameters) as the reference over the map's parameters: the gradient
    composed with the extended-precision Jacobian and its error bound carried through
    (:meth:`ParameterMap.compose_reference`), the sensitivities ``S J`` (their norms recomputed)."""
    P = len(parameter_map.parameters)
    if reference.exact:
        return replace(reference, gradient=np.zeros(P), digits=np.full(P, np.inf))
    gradient, bound = parameter_map.compose_reference(reference.gradient, reference.error_bound)
    sensitivities = norms = None
    if reference.sensitivities is not None:
        sensitivities = np.asarray(reference.sensitivities, dtype=float) @ parameter_map.reference_jacobian
        norms = np.sqrt(np.sum(sensitivities[:, :n_states, :] ** 2, axis=(1, 2)))
    return replace(reference, gradient=gradient, digits=_digits(gradient, bound), error_bound=bound,
                   sensitivities=sensitivities, sensitivity_norms=norms,
                   how=f"{reference.how}; composed with the parameter map's extended-precision Jacobian, whose "
                       "error bound is carried into the digits")


def reference_gradients(
    plan: LossPlan,
    t_span: tuple[float, float],
    p: np.ndarray,
    p_data: np.ndarray | None,
    grids: Sequence[np.ndarray],
    targets: Sequence[np.ndarray | None],
    digits: int,
    time_budget: float | None = None,
    use_cache: bool = False,
    exact_values: Sequence[tuple[str, str]] = (),
) -> list[ReferenceGradient]:
    """One :class:`ReferenceGradient` per output grid (``grids[i]``, with least-squares ``targets[i]``).

    Trajectory losses compare with the *exact* trajectory at ``p_data`` (not the solver's): the true loss.
    With ``use_cache``, verified reference runs are read from and stored in the per-user reference cache
    (:mod:`symsens.audit._reference_cache`); the gradient is recomputed from the cached states and
    sensitivities, so a cached result equals a fresh one.  ``exact_values``: ``(name, decimal string)`` of model
    parameters whose values are known beyond double precision; the reference run uses them (the loss's own
    terms, evaluated in double, use ``p``).
    """
    P = len(plan.parameters)
    if isinstance(plan.loss, TrajectoryLoss) and p_data is not None and np.array_equal(p, p_data):
        how = "exact: at the data parameters the residuals vanish identically, so the true loss and gradient are 0"
        return [ReferenceGradient(np.zeros(P), 0.0, np.full(P, np.inf), True, how) for _ in grids]

    start = time.perf_counter()
    union = np.unique(np.concatenate([np.asarray(g, dtype=float) for g in grids]))
    result = _cached_reference(plan.solve_model, t_span, p, union, plan.parameters, digits, True, time_budget,
                               use_cache, exact_values)
    y_ref = np.asarray(result.y, dtype=float)
    s_ref = np.asarray(result.sensitivities, dtype=float)
    # Absolute error bounds of every reference value (symsens.reference's y_error / sensitivity_error);
    # a value without a verified digit has no bound: infinite error.
    y_err = _error_bounds(result, "y_error", y_ref.shape)
    s_err = _error_bounds(result, "sensitivity_error", s_ref.shape)
    verified = bool(getattr(result, "verified", False))
    messages = [getattr(result, "message", "symsens.reference")]
    data_ref = data_err = None
    if isinstance(plan.loss, TrajectoryLoss):
        data_result = _cached_reference(plan.solve_model, t_span, p_data, union, plan.parameters, digits, False,
                                        time_budget, use_cache)
        data_y = np.asarray(data_result.y, dtype=float)
        data_ref = plan.outputs_of(union, data_y, p_data)
        data_err = _error_bounds(data_result, "y_error", data_y.shape)
        verified = verified and bool(getattr(data_result, "verified", False))
        messages.append(f"data at the data parameters: {getattr(data_result, 'message', '')}")
    seconds = time.perf_counter() - start
    how = "; ".join(messages)

    references = []
    for grid, target in zip(grids, targets):
        grid = np.asarray(grid, dtype=float)
        index = np.searchsorted(union, grid)
        y, S = y_ref[index], s_ref[index]
        data = data_ref[index] if data_ref is not None else target
        loss, gradient = plan.value_and_gradient(grid, y, S, p, data)
        assert gradient is not None
        bound = _gradient_error_bound(plan, grid, y, S, p, data, y_err[index], s_err[index],
                                      None if data_err is None else (data_y[index], data_err[index], p_data))
        norms = np.sqrt(np.sum(S[:, : plan.model.n_states, :] ** 2, axis=(1, 2)))
        references.append(ReferenceGradient(
            gradient, loss, _digits(gradient, bound), False,
            f"{how}; {len(union)} output times, {seconds:.1f} s", y=y, sensitivity_norms=norms, targets=data,
            error_bound=bound, verified=verified, sensitivities=S,
        ))
    return references

