"""A short gradient-descent fit of the stiff neural ODE: which parameters converge, which stall, per gradient source.

Set-up (identifiable by construction):

* model ``stiff-neural-ode`` with ``(k1, k2, k3) = (1, sqrt(r), r)`` and the nominal weights; data ``d`` = the
  verified reference solution at these true parameters;
* fitted: ``θ = (log k1, log k3)`` — one slow rate and the rate of the stiffest mode; everything else fixed (fitting
  ``b2_2`` as well makes only ``b2_2/k3`` identifiable, the quasi-steady state ``y3 ≈ g3/k3``);
* observed: all three states at 8 times inside the fast transient, ``t = (0.2 .. 5)/k3*`` (geometric), and 20 times
  ``0.05 .. 1`` on the slow scale; ``L(θ) = mean((y(t_i; θ) - d_i)^2)``;
* start ``k1 = 2``, ``k3 = k3* e^-1.5`` (both away from the truth), the same for every source;
* step: plain preconditioned gradient descent ``θ ← θ - η D ∇L`` with ``η = 0.5`` and a *fixed* diagonal
  ``D = 1 / diag(2/N J^T J)`` (Gauss–Newton diagonal of the reference Jacobian at the start, the same matrix for every
  source), each component's move capped at ``0.5`` (a factor ``e^0.5`` per iteration).  So the only thing that differs
  between the runs is the gradient source.

A *gradient source* is what a training loop gets from one solver configuration: its solution ``y(t_i)`` (for the
residual) and its ``∂y/∂θ`` (``symsens.solve`` with ``sensitivity="discrete"`` = forward-mode AD through the solver,
or ``"forward"``); the reference source is ``symsens.reference`` itself (verified digits recorded per iteration).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._neural import GradientSource
from ._reference import reference_sensitivities

__all__ = ["verdict", "FIT_NAMES", "FIT_STEP", "FIT_RATIO", "fit_sources", "fit_times", "fit_study", "FitStudy", "FitRun",
           "REFERENCE_SOURCE"]

FIT_NAMES: tuple[str, str] = ("k1", "k3")
FIT_RATIO: float = 1e4
FIT_STEP: float = 0.02
REFERENCE_SOURCE = GradientSource("reference (symsens.reference, 8 digits)", {"reference": True, "digits": 8})


def fit_sources(step: float = FIT_STEP, rtol: float = 1e-6) -> tuple[GradientSource, ...]:
    """The reference; Radau IIA-3, ESDIRK (kvaerno5), Rodas4, BDF at the fixed step and adaptive (discrete = AD
    through the solver); forward sensitivities under error control; the exponential integrators."""
    adaptive = {"sensitivity": "discrete", "rtol": rtol, "atol": rtol * 1e-2}
    fixed = {"sensitivity": "discrete", "fixed_step": step}
    out = [REFERENCE_SOURCE]
    for method, label in (("radau-iia-3", "radau-iia-3"), ("kvaerno5", "kvaerno5 (ESDIRK)"), ("rodas4", "rodas4"),
                          ("bdf", "bdf (NDF 1-5)")):
        out.append(GradientSource(f"{label} h={step:g}", {"method": method, **fixed}))
        out.append(GradientSource(f"{label} adaptive {rtol:.0e}", {"method": method, **adaptive}))
    out.append(GradientSource(f"forward sens. + error control {rtol:.0e}",
                              {"method": "radau-iia-3", "sensitivity": "forward", "sensitivity_in_norm": True,
                               "rtol": rtol, "atol": rtol * 1e-2}))
    out.append(GradientSource(f"exprb32 h={step:g}", {"method": "exprb32", **fixed}))
    out.append(GradientSource(f"exprb-euler h={step:g}", {"method": "exprb-euler", **fixed}))
    out.append(GradientSource(f"exprb32 adaptive {rtol:.0e}", {"method": "exprb32", **adaptive}))
    return tuple(out)


def fit_times(k3: float) -> np.ndarray:
    """8 observation times inside the fast transient of the true ``k3`` and 20 on the slow scale."""
    return np.concatenate([np.geomspace(0.2, 5.0, 8) / k3, np.linspace(0.05, 1.0, 20)])


def _model():  # type: ignore[no-untyped-def]
    from ..model import load_model

    return load_model("stiff-neural-ode")


def _truth(ratio: float) -> dict[str, float]:
    return {"k1": 1.0, "k2": float(np.sqrt(ratio)), "k3": float(ratio)}


@dataclass
class FitRun:
    """One gradient source's descent: per iteration the loss, ``|log(p/p*)|`` per fitted parameter, the values."""

    source: str
    losses: list[float] = field(default_factory=list)
    errors: list[list[float]] = field(default_factory=list)       # (iterations, 2)
    values: list[list[float]] = field(default_factory=list)       # (iterations, 2)
    gradients: list[list[float]] = field(default_factory=list)    # ∂L/∂log p as used
    steps: int = 0
    seconds: float = 0.0
    status: str = "success"
    reference_digits: list[int] = field(default_factory=list)     # reference source only: verified digits per call
    final: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FitStudy:
    ratio: float
    step: float
    truth: dict[str, float]
    start: dict[str, float]
    t_eval: np.ndarray
    preconditioner: np.ndarray
    runs: dict[str, FitRun]
    start_gradient_error: dict[str, np.ndarray]   # |g - g_ref| / |g_ref| at the start, per fitted parameter
    reference_message: str
    settings: dict[str, Any]

    def table(self, converged: float = 1e-3) -> list[dict[str, Any]]:
        """Per source: final ``|log(p/p*)|`` of k1 and k3 (after the last step), the smallest k3 error reached,
        the relative error of its start gradient, steps and time; ``verdict`` per parameter (see :func:`verdict`)."""
        rows = []
        for label, run in self.runs.items():
            row: dict[str, Any] = {"source": label, "status": run.status, "iterations": len(run.losses)}
            for j, name in enumerate(FIT_NAMES):
                final = abs(math.log(run.final[name] / self.truth[name])) if name in run.final else float("nan")
                row[f"{name} final error"] = final
                row[f"{name} verdict"] = verdict(np.asarray(run.errors, dtype=float)[:, j],
                                                 np.log(np.asarray(run.values, dtype=float)[:, j]), converged)
                row[f"{name} start gradient error"] = float(self.start_gradient_error[label][j])
            row["k3 final"] = run.final.get("k3", float("nan"))
            row["final loss"] = run.losses[-1] if run.losses else float("nan")
            row["solver steps"] = run.steps
            row["seconds"] = run.seconds
            rows.append(row)
        return rows


def verdict(errors: np.ndarray, log_values: np.ndarray, converged: float = 1e-3, window: int = 10) -> str:
    """``"converged"``: final ``|log(p/p*)|`` below ``converged``; otherwise over the last ``window`` moves:
    ``"oscillates"`` when the moves alternate in sign and go back and forth by more than 0.1, ``"stalled"`` when the
    parameter moved less than 0.1 in total, else ``"still moving"``."""
    if errors[-1] < converged:
        return "converged"
    moves = np.diff(log_values[-(window + 1):])
    if len(moves) >= 2 and np.all(moves[1:] * moves[:-1] < 0) and np.min(np.abs(moves)) > 0.1:
        return "oscillates"
    if abs(log_values[-1] - log_values[-(window + 1)]) < 0.1 and np.sum(np.abs(moves)) < 0.1 * window:
        return "stalled"
    return "still moving"


def _evaluate(source: GradientSource, model: Any, p: dict[str, float], t_eval: np.ndarray
              ) -> tuple[np.ndarray | None, np.ndarray | None, int, str, int | None]:
    """``(y, ∂y/∂(k1, k3), steps, status, verified digits)`` of one source at ``p``."""
    import symsens

    if source.options.get("reference"):
        digits = int(source.options.get("digits", 8))
        ref = reference_sensitivities(model, (0.0, 1.0), p=p, t_eval=t_eval, parameters=list(FIT_NAMES), digits=digits)
        status = "success" if ref.verified else f"reference: {ref.message}"
        return ref.y, ref.sensitivities, 0, status, int(ref.verified_digits)
    s = symsens.solve(model, (0.0, 1.0), p=p, t_eval=t_eval, parameters=list(FIT_NAMES), max_steps=1_000_000,
                      **source.options)
    steps = int(s.stats.accepted_steps + s.stats.rejected_steps)
    if not s.success:
        return None, None, steps, str(s.status), None
    return s.y, s.sensitivities, steps, "success", None


def _loss_and_log_gradient(y: np.ndarray, S: np.ndarray, data: np.ndarray, values: np.ndarray
                           ) -> tuple[float, np.ndarray]:
    r = y - data
    n = r.size
    return float(np.sum(r * r) / n), (2.0 / n) * np.einsum("kn,knp->p", r, S) * values


def fit_study(ratio: float = FIT_RATIO, *, step: float = FIT_STEP, iterations: int = 30, learning_rate: float = 0.5,
              max_move: float = 0.5, start_k1: float = 2.0, start_log_offset: float = -1.5,
              sources: Sequence[GradientSource] | None = None) -> FitStudy:
    """Run the descent of the module docstring once per gradient source; see :meth:`FitStudy.table`."""
    model = _model()
    sources = list(sources) if sources is not None else list(fit_sources(step))
    truth = _truth(ratio)
    t_eval = fit_times(truth["k3"])
    data_ref = reference_sensitivities(model, (0.0, 1.0), p=truth, t_eval=t_eval, parameters=list(FIT_NAMES))
    if not data_ref.verified:
        raise RuntimeError(f"the reference for the data was not verified: {data_ref.message}")
    data = data_ref.y
    start = {"k1": float(start_k1), "k3": float(truth["k3"] * math.exp(start_log_offset))}
    p0 = {**truth, **start}
    ref0 = reference_sensitivities(model, (0.0, 1.0), p=p0, t_eval=t_eval, parameters=list(FIT_NAMES))
    if not ref0.verified:
        raise RuntimeError(f"the reference at the start was not verified: {ref0.message}")
    start_values = np.array([start[n] for n in FIT_NAMES])
    J = ref0.sensitivities * start_values            # ∂y/∂log p
    hessian_diagonal = (2.0 / ref0.y.size) * np.einsum("knp,knp->p", J, J)
    D = 1.0 / hessian_diagonal
    _, g_ref0 = _loss_and_log_gradient(ref0.y, ref0.sensitivities, data, start_values)
    log_truth = np.log([truth[n] for n in FIT_NAMES])

    runs: dict[str, FitRun] = {}
    start_error: dict[str, np.ndarray] = {}
    for source in sources:
        run = FitRun(source.label)
        theta = np.log(start_values)
        t0 = time.perf_counter()
        for it in range(iterations + 1):
            values = np.exp(theta)
            p = {**truth, **dict(zip(FIT_NAMES, map(float, values)))}
            run.values.append(values.tolist())
            run.errors.append(np.abs(theta - log_truth).tolist())
            if it == iterations:
                break
            y, S, steps, status, digits = _evaluate(source, model, p, t_eval)
            run.steps += steps
            if digits is not None:
                run.reference_digits.append(digits)
            if y is None or status != "success":
                run.status = f"{status} at iteration {it}"
                break
            loss, g = _loss_and_log_gradient(y, S, data, values)
            if it == 0:
                start_error[source.label] = np.abs(g - g_ref0) / np.abs(g_ref0)
            run.losses.append(loss)
            run.gradients.append(g.tolist())
            theta = theta + np.clip(-learning_rate * D * g, -max_move, max_move)
        run.seconds = time.perf_counter() - t0
        run.final = dict(zip(FIT_NAMES, map(float, np.exp(theta))))
        start_error.setdefault(source.label, np.full(len(FIT_NAMES), np.nan))
        runs[source.label] = run
    settings = {"iterations": iterations, "learning_rate": learning_rate, "max_move": max_move,
                "reference_source": data_ref.source}
    return FitStudy(ratio=ratio, step=step, truth={n: truth[n] for n in FIT_NAMES}, start=start, t_eval=t_eval,
                    preconditioner=D, runs=runs, start_gradient_error=start_error,
                    reference_message=data_ref.message, settings=settings)
