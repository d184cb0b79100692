"""Diagnosis: measured evidence for why a gradient differs from the reference.

Each diagnostic is computed from the audit's own runs and returned as numbers (JSON-ready) plus the arrays its
figure needs:

* **loss floor** — the loss as each run computes it at the audited parameters, the residuals at the output
  times, and the part of the gradient they make, ``sum_k (dl/dy)_k S_k`` (``2 sum_k r_k S_k`` for least
  squares), compared with the reference's.
* **stiffness** — eigenvalues of ``df/dy`` along the trajectory, ``z = h lambda`` per accepted step of each
  setting, and where the steps sit on the scheme's stability function: ``|R(z)|``, ``|R'(z)|`` and
  ``|z R'(z)|`` (exact rational ``R`` from :mod:`symsens.schemes`) beside the exact ``e^z``, ``z e^z``.
* **sensitivity growth** — ``||S(t)||_F`` over time, its finite-time growth rate
  ``log(||S(t1)|| / ||S(t0)||) / (t1 - t0)``, and the output times that carry most of the gradient.
* **step-size control** — how far the gradient moves between the controller variants, and how the step
  sequences of the plain and the differentiated solves differ (count, first differing step).
* **convergence** — the gradient error against tolerance per method and scheme with the fitted rate
  ``d log(error) / d log(rtol)``, or the finding that it does not converge.
* **backward growth** (when ``adjoint-backsolve`` ran) — the growth rate of the backward state solve:
  integrating ``y' = f`` from ``t1`` back to ``t0`` is ``dy/ds = -f`` in ``s = t1 - t``, whose Jacobian is
  ``-J``, so a perturbation grows like ``exp(max Re(-lambda) s)``; the rate is
  ``max_t max_i Re(-lambda_i(J(t, y(t))))`` over the eigenvalues of ``df/dy`` along the trajectory (a
  dissipative forward problem, ``Re lambda < 0``, is unstable backwards with exactly that rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .._once import cached_once
from ._quiet import quiet_floating_point
from ..model import Model
from ._methods import MethodRun, SettingRuns
from ._reference import ReferenceGradient

__all__ = ["stable_norm", "Diagnostics", "diagnose", "stability_evaluator", "gradient_error", "backward_growth"]


@dataclass(frozen=True, eq=False)
class Diagnostics:
    """Numbers (``summary``, JSON-ready) and figure data (``series``) of every diagnostic."""

    summary: dict[str, Any]
    series: dict[str, Any] = field(repr=False)


def stable_norm(values: np.ndarray) -> float:
    """The 2-norm without overflow or underflow of the squares: ``m ||x / m||`` with ``m = max |x_i|``
    (a gradient of 1e200 has a norm of 1e200, not inf)."""
    values = np.asarray(values, dtype=float)
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0 or not np.isfinite(largest):
        return largest
    return largest * float(np.linalg.norm(values / largest))


def gradient_error(gradient: np.ndarray | None, reference: ReferenceGradient) -> tuple[float | None, float | None]:
    """``(relative error, absolute error)`` in the 2-norm; relative is None when the true gradient is 0."""
    if gradient is None:
        return None, None
    absolute = stable_norm(gradient - reference.gradient)
    scale = stable_norm(reference.gradient)
    return (absolute / scale if scale > 0 else None), absolute


@cached_once(maxsize=32)
def stability_evaluator(scheme: str):  # type: ignore[no-untyped-def]
    """NumPy functions ``R(z)``, ``R'(z)`` of a one-step scheme's exact stability function; None for BDF."""
    from ..integrate._compiled import _ALIASES
    from ..schemes import get_scheme, is_A_stable, stability_derivative, stability_function

    name = _ALIASES.get(scheme, scheme)
    from .._errors import SchemeError

    try:
        tableau = get_scheme(name)
    except SchemeError:
        return None
    if getattr(tableau, "family", None) in (None, "multistep", "bdf"):
        return None
    R = stability_function(tableau)
    dR = stability_derivative(tableau)
    z = sorted(R.free_symbols | dR.free_symbols, key=str)
    if len(z) != 1:
        return None
    # Rational functions with big exact coefficients: evaluate in complex floating point after a float
    # conversion of the coefficients (the rational form is well conditioned away from its poles).
    R_f = sp.lambdify(z, sp.N(R, 30), "numpy")
    dR_f = sp.lambdify(z, sp.N(dR, 30), "numpy")
    try:
        a_stable = bool(is_A_stable(tableau))
    except Exception:
        a_stable = False
    explicit = getattr(tableau, "family", "") == "explicit"
    return R_f, dR_f, a_stable, explicit


@cached_once(maxsize=8)
def _jacobian_function(model: Model):  # type: ignore[no-untyped-def]
    """df/dy as a NumPy function of (t, y..., p...), derived and lambdified once per model."""
    from ..derive import jacobian
    from ..derive._numeric import numpy_function

    return numpy_function(list(jacobian(model)), [model.time, *model.states, *model.parameters])


def _eigenvalues_along(model: Model, times: np.ndarray, y: np.ndarray, p: np.ndarray, limit: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalue of ``df/dy`` of largest modulus at (up to ``limit``, evenly chosen among the) given states."""
    if len(times) > limit:
        pick = np.unique(np.linspace(0, len(times) - 1, limit).round().astype(int))
        times, y = times[pick], y[pick]
    n = model.n_states
    function = _jacobian_function(model)
    values = function(times, *(y[:, i] for i in range(n)), *(np.full(len(times), v) for v in p))  # n*n x K
    matrices = np.moveaxis(values.reshape(n, n, len(times)), 2, 0)
    finite = np.all(np.isfinite(matrices), axis=(1, 2))
    eig = np.full((len(times), n), np.nan + 0j)
    if np.any(finite):
        eig[finite] = np.linalg.eigvals(matrices[finite])
    stiffest = np.array([row[np.nanargmax(np.abs(row))] if np.any(np.isfinite(row)) else np.nan for row in eig])
    return times, stiffest


def _fit_rate(tolerances: np.ndarray, errors: np.ndarray) -> float | None:
    good = np.isfinite(errors) & (errors > 0)
    if good.sum() < 3:
        return None
    slope, _ = np.polyfit(np.log10(tolerances[good]), np.log10(errors[good]), 1)
    return float(slope)


def _first_difference(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    m = min(len(a), len(b))
    differ = np.flatnonzero(a[:m] != b[:m])
    if differ.size:
        return float(a[differ[0] - 1]) if differ[0] > 0 else float(a[0])
    return None if len(a) == len(b) else float(a[m - 1])


@quiet_floating_point
def backward_growth(model: Model, times: np.ndarray, y: np.ndarray, p: np.ndarray,
                    limit: int = 5000) -> dict[str, Any] | None:
    """``{"max_rate", "time_of_max", "median_rate"}``: ``max_i Re(-lambda_i)`` of ``df/dy`` along the states
    (every eigenvalue, not only the stiffest), its maximum over time, where, and its median over time."""
    if len(times) > limit:
        pick = np.unique(np.linspace(0, len(times) - 1, limit).round().astype(int))
        times, y = times[pick], y[pick]
    n = model.n_states
    function = _jacobian_function(model)
    values = function(times, *(y[:, i] for i in range(n)), *(np.full(len(times), v) for v in p))
    matrices = np.moveaxis(np.asarray(values, dtype=float).reshape(n, n, len(times)), 2, 0)
    finite = np.all(np.isfinite(matrices), axis=(1, 2))
    if not np.any(finite):
        return None
    rates = np.max((-np.linalg.eigvals(matrices[finite])).real, axis=1)
    k = int(np.argmax(rates))
    return {"max_rate": float(rates[k]), "time_of_max": float(np.asarray(times)[finite][k]),
            "median_rate": float(np.median(rates))}


def diagnose(
    model: Model,
    p: np.ndarray,
    settings: Sequence[SettingRuns],
    references: Sequence[ReferenceGradient],
    trajectory: tuple[np.ndarray, np.ndarray] | None,
    parameter_names: Sequence[str],
) -> Diagnostics:
    """Compute every diagnostic from the runs (``references[i]`` belongs to ``settings[i]``).

    ``trajectory``: times and states of a plain solve along the whole span (for the Jacobian's eigenvalues).
    """
    summary: dict[str, Any] = {}
    series: dict[str, Any] = {}

    # -- loss floor -----------------------------------------------------------------------------------------
    floor_rows = []
    # The run the loss-floor figure shows: in the first scheme's loosest setting (the user's own choice comes
    # first; loose tolerances show the floor best), the run whose residual error biases the gradient most.
    showcase: tuple[tuple[bool, bool, float], SettingRuns, MethodRun, ReferenceGradient] | None = None
    first_scheme = settings[0].scheme if settings else None
    loosest = max((s.rtol for s in settings if s.scheme == first_scheme), default=None)
    for setting, reference in zip(settings, references):
        for run in setting.runs:
            if run.gradient is None or run.loss is None:
                continue
            residual_gradient = None if run.contributions is None else run.contributions.sum(axis=0)
            row = {
                "scheme": setting.scheme, "rtol": setting.rtol, "method": run.method,
                "loss": run.loss, "true_loss": reference.loss,
                "loss_floor": run.loss - reference.loss,
                "residual_gradient_norm": None if residual_gradient is None else float(np.linalg.norm(residual_gradient)),
                "loss_floor_bias_norm": None if run.floor_bias is None else float(np.linalg.norm(run.floor_bias)),
                "max_residual": run.max_residual, "time_of_max_residual": run.time_of_max_residual,
            }
            floor_rows.append(row)
            if run.contributions is None or run.floor_bias is None:
                continue
            if setting.scheme == first_scheme and setting.rtol == loosest:
                # Forward-mode AD as ForwardDiff through OrdinaryDiffEq does it (tangents in the norm, constant
                # step sizes) comes first when it is biased, then any run with constant step sizes.
                bias = float(np.linalg.norm(run.floor_bias))
                key = (bias > 0 and run.method == "discrete-tangent-norm",
                       bias > 0 and "differentiated-steps" not in run.method, bias)
                if showcase is None or key > showcase[0]:
                    showcase = (key, setting, run, reference)
    worst = None if showcase is None else (showcase[0][2], *showcase[1:])
    summary["loss_floor"] = floor_rows
    if worst is not None:
        _, setting, run, reference = worst
        per_time = np.linalg.norm(run.contributions, axis=1)
        total = float(per_time.sum())
        order = np.argsort(per_time)[::-1]
        top = order[: min(5, len(order))]
        series["loss_floor"] = {
            "scheme": setting.scheme, "rtol": setting.rtol, "method": run.method,
            "t": setting.output_times, "contribution": per_time,
            "sensitivity_norm": run.sensitivity_norms,
        }
        summary["dominant_times"] = {
            "scheme": setting.scheme, "rtol": setting.rtol, "method": run.method,
            "times": [float(setting.output_times[k]) for k in top],
            "share_of_gradient_terms": float(per_time[top].sum() / total) if total > 0 else None,
            "sensitivity_norm_there": [float(run.sensitivity_norms[k]) for k in top] if run.sensitivity_norms is not None else None,
            "median_sensitivity_norm": float(np.median(run.sensitivity_norms)) if run.sensitivity_norms is not None else None,
        }

    # -- stiffness --------------------------------------------------------------------------------------------
    stiffness_rows = []
    series["stiffness"] = []
    if trajectory is not None:
        times, stiffest = _eigenvalues_along(model, trajectory[0], trajectory[1], p)
        summary["eigenvalue_range"] = {
            "max_modulus": float(np.nanmax(np.abs(stiffest))) if np.any(np.isfinite(stiffest)) else None,
            "most_negative_real_part": float(np.nanmin(stiffest.real)) if np.any(np.isfinite(stiffest)) else None,
        }
        series["eigenvalues"] = {"t": times, "stiffest": stiffest}
        for setting in settings:
            steps = setting.nominal_step_times
            if steps is None:
                steps = next((r.step_times for r in setting.runs if r.step_times is not None), None)
            if steps is None or len(steps) < 2:
                continue
            h = np.diff(steps)
            own = setting.nominal_y is not None and setting.output_times is not None and \
                len(setting.output_times) == len(steps) and np.array_equal(setting.output_times, steps)
            if own:
                # The setting's own states at the start of each of its steps (a step-grid trajectory loss).
                _, at_steps = _eigenvalues_along(model, steps[:-1], setting.nominal_y[:-1, : model.n_states], p,
                                                 limit=len(steps))
                z = h * at_steps
            else:
                # The nearest state of the fine trajectory to each step's start.
                right = np.clip(np.searchsorted(times, steps[:-1]), 0, len(times) - 1)
                left = np.clip(right - 1, 0, len(times) - 1)
                nearer = np.where(np.abs(times[left] - steps[:-1]) <= np.abs(times[right] - steps[:-1]), left, right)
                z = h * stiffest[nearer]
            row: dict[str, Any] = {
                "scheme": setting.scheme, "rtol": setting.rtol, "steps": int(len(h)),
                "max_abs_h_lambda": float(np.nanmax(np.abs(z))), "median_abs_h_lambda": float(np.nanmedian(np.abs(z))),
            }
            evaluator = stability_evaluator(setting.scheme)
            entry = {"scheme": setting.scheme, "rtol": setting.rtol, "t": steps[:-1], "z": z}
            if evaluator is not None:
                R_f, dR_f, a_stable, explicit = evaluator
                with np.errstate(all="ignore"):
                    R = np.abs(np.asarray(R_f(z.astype(complex)), dtype=complex))
                    dR = np.abs(np.asarray(dR_f(z.astype(complex)), dtype=complex))
                entry.update(R=R, dR=dR)
                big = np.abs(z) > 1
                row.update({
                    "A_stable": a_stable, "explicit": explicit,
                    "share_of_steps_with_abs_z_over_1": float(np.mean(big)),
                    "share_at_stability_boundary": float(np.mean((R > 0.5) & big)) if explicit else 0.0,
                    "max_abs_dR": float(np.nanmax(dR)),
                    "median_abs_z_dR_where_abs_z_over_1": float(np.nanmedian((np.abs(z) * dR)[big])) if big.any() else None,
                })
            stiffness_rows.append(row)
            series["stiffness"].append(entry)
    summary["stiffness"] = stiffness_rows
    if trajectory is None:
        summary["stiffness_unavailable"] = "no scheme completed the plain solve along the span at the tightest tolerance"

    # -- sensitivity growth ---------------------------------------------------------------------------------
    growth_source = None
    for setting in sorted(settings, key=lambda s: s.rtol):
        run = next((r for r in setting.runs if r.method == "forward-error-control" and r.sensitivity_norms is not None), None) \
            or next((r for r in setting.runs if r.sensitivity_norms is not None), None)
        if run is not None:
            growth_source = (setting, run)
            break
    if growth_source is not None:
        setting, run = growth_source
        t, norms = setting.output_times, run.sensitivity_norms
        positive = (norms > 0) & np.isfinite(norms)
        rate = None
        if positive.sum() >= 3 and t[positive][-1] > t[positive][0]:
            # Least-squares slope of log ||S|| against t over the times where S is non-zero (S(t0) is often 0,
            # and an end-to-end ratio would be dominated by its first non-zero value).
            rate = float(np.polyfit(t[positive], np.log(norms[positive]), 1)[0])
        summary["sensitivity_growth"] = {
            "source": f"{run.method}, {setting.scheme}, rtol {setting.rtol:g}",
            "max_norm": float(norms.max()), "time_of_max": float(t[int(np.argmax(norms))]),
            "initial_norm": float(norms[0]), "final_norm": float(norms[-1]), "growth_rate": rate,
            "growth_rate_definition": "least-squares slope of ln||S(t)||_F against t where S != 0",
        }
        series["sensitivity_growth"] = {"t": t, "norm": norms, "source": summary["sensitivity_growth"]["source"]}

    # -- step-size control ----------------------------------------------------------------------------------
    control_rows = []
    for setting, reference in zip(settings, references):
        by_method = {r.method: r for r in setting.runs}
        base = by_method.get("discrete")
        for name in ("discrete-tangent-norm", "discrete-differentiated-steps", "discrete-tangent-norm-differentiated-steps",
                     "forward", "forward-error-control"):
            other = by_method.get(name)
            if other is None or other.step_times is None:
                continue
            # The steps to compare with: the nominal solve's when its grid is the loss's (the audited point is the
            # data point), else the values-only discrete solve at the audited parameters.
            same_point = reference.exact
            nominal = setting.nominal_step_times if (same_point and setting.nominal_step_times is not None) else \
                (base.step_times if base is not None else setting.nominal_step_times)
            identical = nominal is not None and len(nominal) == len(other.step_times) and np.array_equal(nominal, other.step_times)
            moved = None
            if base is not None and base.gradient is not None and other.gradient is not None:
                scale = max(float(np.linalg.norm(base.gradient)), float(np.linalg.norm(reference.gradient)))
                moved = float(np.linalg.norm(other.gradient - base.gradient) / scale) if scale > 0 else float(np.linalg.norm(other.gradient))
            control_rows.append({
                "scheme": setting.scheme, "rtol": setting.rtol, "method": name,
                "steps": other.accepted_steps, "nominal_steps": None if nominal is None else int(len(nominal) - 1),
                "identical_steps": bool(identical),
                "first_different_step_at": None if identical else _first_difference(nominal, other.step_times),
                "gradient_change_vs_discrete": moved,
            })
    summary["step_size_control"] = control_rows
    series["steps"] = [
        {"scheme": s.scheme, "rtol": s.rtol, "nominal": s.nominal_step_times,
         **{r.method: r.step_times for r in s.runs if r.step_times is not None}}
        for s in settings
    ]

    # -- convergence ----------------------------------------------------------------------------------------
    convergence = []
    schemes = list(dict.fromkeys(s.scheme for s in settings))
    methods = list(dict.fromkeys(r.method for s in settings for r in s.runs))
    series["convergence"] = []
    for scheme in schemes:
        for method in methods:
            tolerances, errors, floors = [], [], []
            for setting, reference in zip(settings, references):
                if setting.scheme != scheme:
                    continue
                run = next((r for r in setting.runs if r.method == method), None)
                if run is None:
                    continue
                relative, absolute = gradient_error(run.gradient, reference)
                tolerances.append(setting.rtol)
                value = relative if relative is not None else absolute
                errors.append(np.nan if value is None else value)
                # Errors below the reference's own error say nothing about the rate.
                scale = float(np.linalg.norm(reference.gradient))
                bound = 0.0 if reference.exact or reference.error_bound is None else float(np.linalg.norm(reference.error_bound))
                floors.append(bound / scale if relative is not None and scale > 0 else 0.0)
            if not tolerances:
                continue
            tol = np.asarray(tolerances)
            err = np.asarray(errors, dtype=float)
            floor = np.asarray(floors, dtype=float)
            order = np.argsort(tol)[::-1]
            tol, err, floor = tol[order], err[order], floor[order]
            usable = np.isfinite(err) & (err > 2 * floor)
            rate = _fit_rate(tol[usable], err[usable])
            finite = err[np.isfinite(err)]
            if finite.size and np.all(finite == 0) and finite.size == err.size:
                status = "exact"
            elif rate is None:
                status = "undetermined"
            else:
                last = err[usable][-1] if usable.any() else np.nan
                status = "yes" if rate > 0.3 and last < err[usable][0] else "no"
            convergence.append({"scheme": scheme, "method": method, "rate": rate, "status": status,
                                "converges": status in ("yes", "exact"),
                                "tolerances": tol.tolist(), "errors": [None if not np.isfinite(e) else float(e) for e in err]})
            series["convergence"].append({"scheme": scheme, "method": method, "rtol": tol, "error": err})
    summary["convergence"] = convergence
    if trajectory is not None and any(r.method == "adjoint-backsolve" for s in settings for r in s.runs):
        summary["backward_growth"] = backward_growth(model, trajectory[0], trajectory[1], p)
    summary["parameters"] = list(parameter_names)
    return Diagnostics(summary, series)
