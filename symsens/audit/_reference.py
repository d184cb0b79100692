"""The reference gradient of an audit's loss, with the number of digits it is good for.

The reference solution comes from :func:`symsens.reference` (verified digits).  For a pointwise loss the
reference gradient is ``sum_k (dl/dy)_k S*_k + (dl/dp)_k`` with the reference ``y*`` and ``S*`` at the output
times; its digits are the verified digits of the inputs reduced by the cancellation in the sum
(``log10(sum |terms| / |sum|)``).  A trajectory loss evaluated at its data parameters needs no run: its
residuals vanish identically, so the true loss and gradient are exactly 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model import Model
from ._losses import LossPlan, TrajectoryLoss

__all__ = ["ReferenceGradient", "reference_gradients"]


@dataclass(frozen=True, eq=False)
class ReferenceGradient:
    """The true gradient for one output grid."""

    gradient: np.ndarray          # P
    loss: float                   # the true loss
    digits: np.ndarray            # P: correct digits of each component (inf: exact)
    exact: bool                   # known exactly (a trajectory loss at its data parameters)
    how: str                      # how it was obtained and verified
    y: np.ndarray | None = None   # reference states at the output times (None when exact)
    targets: np.ndarray | None = None  # the true targets there (trajectory losses: the exact nominal outputs)
    sensitivity_norms: np.ndarray | None = None


def _verified_digits(result, shape: tuple[int, ...], name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    # symsens.reference: per-component arrays y_digits / sensitivity_digits.
    digits = getattr(result, "y_digits" if name == "y" else "sensitivity_digits", None)
    if digits is None:
        digits = getattr(result, "verified_digits", None)
        if isinstance(digits, dict):
            digits = digits.get(name)
    if digits is None:
        return np.full(shape, np.nan)
    return np.broadcast_to(np.asarray(digits, dtype=float), shape)


def _run_reference(model: Model, t_span: tuple[float, float], p: np.ndarray, times: np.ndarray,
                   parameters: Sequence[str], digits: int, sensitivity: bool, time_budget: float | None):  # type: ignore[no-untyped-def]
    try:
        from ..reference import reference
    except ImportError:  # TEMPORARY stand-in until symsens.reference lands (two tight forward runs)
        return _stand_in(model, t_span, p, times, parameters, digits, sensitivity)
    return reference(model, t_span, p=p, t_eval=times, digits=digits, sensitivity=sensitivity,
                     parameters=list(parameters) if sensitivity else None, time_budget=time_budget)


def reference_gradients(
    plan: LossPlan,
    t_span: tuple[float, float],
    p: np.ndarray,
    p_data: np.ndarray | None,
    grids: Sequence[np.ndarray],
    targets: Sequence[np.ndarray | None],
    digits: int,
    time_budget: float | None = None,
) -> list[ReferenceGradient]:
    """One :class:`ReferenceGradient` per output grid (``grids[i]``, with least-squares ``targets[i]``).

    Trajectory losses compare with the *exact* trajectory at ``p_data`` (not the solver's): the true loss.
    """
    P = len(plan.parameters)
    if isinstance(plan.loss, TrajectoryLoss) and p_data is not None and np.array_equal(p, p_data):
        how = "exact: at the data parameters the residuals vanish identically, so the true loss and gradient are 0"
        return [ReferenceGradient(np.zeros(P), 0.0, np.full(P, np.inf), True, how) for _ in grids]

    start = time.perf_counter()
    union = np.unique(np.concatenate([np.asarray(g, dtype=float) for g in grids]))
    result = _run_reference(plan.solve_model, t_span, p, union, plan.parameters, digits, True, time_budget)
    y_ref = np.asarray(result.y, dtype=float)
    s_ref = np.asarray(result.sensitivities, dtype=float)
    y_digits = _verified_digits(result, y_ref.shape, "y")
    s_digits = _verified_digits(result, s_ref.shape, "sensitivities")
    data_ref = None
    if isinstance(plan.loss, TrajectoryLoss):
        data_result = _run_reference(plan.solve_model, t_span, p_data, union, plan.parameters, digits, False, time_budget)
        data_ref = plan.outputs_of(union, np.asarray(data_result.y, dtype=float), p_data)
    how = getattr(result, "message", None) or getattr(result, "how", None) or "symsens.reference"
    seconds = time.perf_counter() - start

    references = []
    for grid, target in zip(grids, targets):
        index = np.searchsorted(union, np.asarray(grid, dtype=float))
        y, S = y_ref[index], s_ref[index]
        data = data_ref[index] if data_ref is not None else target
        loss, gradient = plan.value_and_gradient(np.asarray(grid), y, S, p, data)
        assert gradient is not None
        input_digits = float(np.nanmin(np.concatenate([y_digits[index].ravel(), s_digits[index].ravel()]))) \
            if plan.kind == "pointwise" else float(np.nanmin(s_digits[-1:, -1:, :]))
        if plan.kind == "pointwise":
            terms = plan.residual_contributions(np.asarray(grid), y, S, p, data)  # K x P
            magnitude = np.sum(np.abs(terms), axis=0)
        else:
            magnitude = np.abs(gradient)
        with np.errstate(divide="ignore", invalid="ignore"):
            cancellation = np.where(np.abs(gradient) > 0, np.log10(np.maximum(magnitude / np.abs(gradient), 1.0)), 0.0)
        component_digits = np.maximum(input_digits - cancellation, 0.0) if math.isfinite(input_digits) else np.full(P, np.nan)
        norms = np.sqrt(np.sum(S[:, : plan.model.n_states, :] ** 2, axis=(1, 2)))
        references.append(ReferenceGradient(
            gradient, loss, component_digits, False,
            f"{how}; {len(union)} output times, {seconds:.1f} s", y=y, sensitivity_norms=norms, targets=data,
        ))
    return references


@dataclass(frozen=True)
class _StandIn:
    y: np.ndarray
    sensitivities: np.ndarray | None
    verified_digits: dict
    how: str


def _stand_in(model, t_span, p, times, parameters, digits, sensitivity):  # type: ignore[no-untyped-def]
    from ..integrate import solve

    kwargs = dict(p=p, t_eval=times, method="radau-iia-3", sensitivity="forward" if sensitivity else None,
                  parameters=list(parameters), sensitivity_in_norm=True, max_steps=10**6)
    a = solve(model, t_span, rtol=1e-10, atol=1e-14, **kwargs).check()
    b = solve(model, t_span, rtol=1e-12, atol=1e-16, **kwargs).check()
    def agree(x, y):  # type: ignore[no-untyped-def]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = -np.log10(np.abs(x - y) / np.maximum(np.abs(y), 1e-300))
        return np.clip(np.where(np.isfinite(d), d, 15.0), 0, 15)
    vd = {"y": agree(a.y, b.y)}
    if sensitivity:
        vd["sensitivities"] = agree(a.sensitivities, b.sensitivities)
    return _StandIn(b.y, b.sensitivities, vd, "stand-in: radau-iia-3 at rtol 1e-10 and 1e-12")
