"""The gradient methods an audit compares, and one solver setting's runs.

A *setting* is a scheme and a tolerance.  For each setting the audit makes the loss's targets (for a
trajectory loss: the nominal solve at the data parameters, on its own step grid or a given grid) and then
computes the gradient with every requested method:

==========================================  ==================================================================
method                                      what it computes
==========================================  ==================================================================
``forward``                                 continuous forward sensitivities ``S' = J S + F_p``; the error
                                            norm sees the states only (CVODES with ``errconS`` off)
``forward-error-control``                   the same with ``S`` in the error norm (CVODES ``errconS`` on)
``discrete``                                forward-mode AD through the solver: the exact derivative of the
                                            numerical solution; the controller's norm sees values only and the
                                            step sizes are constants
``discrete-tangent-norm``                   the same, but the controller's norm sees the tangents (dual
                                            partials) too, as ForwardDiff through OrdinaryDiffEq does
``discrete-differentiated-steps``           the step sizes are differentiated too (AD through the controller)
``discrete-tangent-norm-differentiated-steps``  both switches
``finite-differences``                      central differences of the loss, step ``h_j = rtol^(1/3) |p_j|``
                                            (``|p_j| = 0``: 1), each side a plain solve of the same setting
==========================================  ==================================================================
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._once import cached_once
from ._quiet import quiet_floating_point
from ..integrate import solve
from ..model import Model
from ._losses import AuditLoss, LossPlan, TrajectoryLoss, loss_plan

__all__ = ["GRADIENT_METHODS", "DEFAULT_METHODS", "MethodRun", "SettingRuns", "NominalSetting", "nominal_setting", "run_setting",
           "method_options", "UnitCosts", "unit_costs", "work_estimate"]

GRADIENT_METHODS: dict[str, dict[str, Any]] = {
    "forward": {"sensitivity": "forward"},
    "forward-error-control": {"sensitivity": "forward", "sensitivity_in_norm": True},
    "discrete": {"sensitivity": "discrete"},
    "discrete-tangent-norm": {"sensitivity": "discrete", "sensitivity_in_norm": True},
    "discrete-differentiated-steps": {"sensitivity": "discrete", "differentiate_steps": True},
    "discrete-tangent-norm-differentiated-steps": {
        "sensitivity": "discrete", "sensitivity_in_norm": True, "differentiate_steps": True,
    },
    "finite-differences": {},
}
"""Method name -> ``symsens.solve`` options (finite differences use plain solves)."""

DEFAULT_METHODS: tuple[str, ...] = tuple(GRADIENT_METHODS)


def method_options(name: str) -> dict[str, Any]:
    """The ``solve`` options of gradient method ``name`` (a ValueError names the known ones)."""
    if name not in GRADIENT_METHODS:
        import difflib

        close = difflib.get_close_matches(name, GRADIENT_METHODS, n=2)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"unknown gradient method {name!r}{hint}; known: {', '.join(GRADIENT_METHODS)}")
    return dict(GRADIENT_METHODS[name])


@dataclass(frozen=True, eq=False)
class MethodRun:
    """One gradient method's result in one setting."""

    method: str
    scheme: str
    rtol: float
    atol: float
    gradient: np.ndarray | None         # P, None when the run failed
    loss: float | None                  # the loss as this run computes it
    status: str
    message: str
    seconds: float                      # wall time of the solves (finite differences: all 2P of them)
    accepted_steps: int
    rejected_steps: int
    step_times: np.ndarray | None       # accepted step ends (None for finite differences)
    # For least-squares losses: per output time k, the gradient term (dl/dy)_k S_k (K x P), and the times.
    contributions: np.ndarray | None = field(default=None, repr=False)
    sensitivity_norms: np.ndarray | None = field(default=None, repr=False)  # ||S(t_k)||_F at the output times
    # The part of the gradient made by the run's residual error: sum_k [(dl/dy)(y_k) - (dl/dy)(y*_k)] S_k, with
    # y* the reference states and targets (least squares; None otherwise).
    floor_bias: np.ndarray | None = field(default=None, repr=False)
    # Least squares: the largest residual |g(t_k, y_k) - d_k| and where it is (the residuals that make the loss).
    max_residual: float | None = None
    time_of_max_residual: float | None = None
    # Solver work counters summed over the run's solves (finite differences: all 2P + 1 of them), and the number
    # of tangent directions each solve carried: the inputs of a machine-independent cost (see ``work_estimate``).
    counts: dict[str, int] | None = None
    tangents: int = 0


@dataclass(frozen=True, eq=False)
class SettingRuns:
    """Everything computed for one (scheme, rtol): the targets and every method's run."""

    scheme: str
    rtol: float
    atol: float
    output_times: np.ndarray | None     # the loss's output times (the nominal solve's steps for grid="steps")
    targets: np.ndarray | None          # K x m targets of a least-squares loss
    nominal_step_times: np.ndarray | None
    nominal_y: np.ndarray | None        # the nominal solve at the output times (trajectory losses)
    nominal_seconds: float
    runs: tuple[MethodRun, ...]
    failure: str | None = None          # the nominal solve failed: no gradients in this setting


@cached_once(maxsize=32)
def _plan(model: Model, loss: AuditLoss, parameters: tuple[str, ...], t_span: tuple[float, float]) -> LossPlan:
    return loss_plan(model, loss, parameters, t_span)


def _parameter_vector(model: Model, values: tuple[tuple[str, float], ...] | None, base: np.ndarray) -> np.ndarray:
    p = base.copy()
    for name, value in values or ():
        p[model.parameter_names.index(name)] = value
    return p


def _finite_difference_step(value: float, rtol: float) -> float:
    # Central differences: truncation ~ h^2, noise ~ tol/h, balanced at h ~ tol^(1/3) (relative to |p|).
    return max(rtol, 1e-15) ** (1.0 / 3.0) * (abs(value) if value != 0 else 1.0)


@dataclass(frozen=True, eq=False)
class NominalSetting:
    """A setting's loss grid and targets: for a trajectory loss, the nominal solve at the data parameters."""

    scheme: str
    rtol: float
    atol: float
    output_times: np.ndarray | None
    targets: np.ndarray | None
    step_times: np.ndarray | None
    y: np.ndarray | None
    seconds: float
    failure: str | None = None


@quiet_floating_point
def nominal_setting(
    model: Model, loss: AuditLoss, parameters: tuple[str, ...], t_span: tuple[float, float], scheme: str, rtol: float,
    atol: float, max_steps: int = 200_000,
) -> NominalSetting:
    """The output grid and targets of one setting (the nominal solve, for a trajectory loss)."""
    plan = _plan(model, loss, parameters, t_span)
    output_times = None if plan.times is None else np.asarray(plan.times)
    start = time.perf_counter()
    if isinstance(loss, TrajectoryLoss):
        p_data = _parameter_vector(model, loss.data_parameters, np.asarray(model.parameter_values, dtype=float))
        nominal = solve(plan.solve_model, t_span, p=p_data, t_eval=output_times, method=scheme, rtol=rtol, atol=atol,
                        max_steps=max_steps)
        if nominal.status != "success":
            return NominalSetting(scheme, rtol, atol, None, None, None, None, time.perf_counter() - start,
                                  failure=f"nominal solve: {nominal.message}")
        return NominalSetting(scheme, rtol, atol, nominal.t, plan.outputs_of(nominal.t, nominal.y, p_data),
                              nominal.stats.step_times, nominal.y, time.perf_counter() - start)
    if plan.kind == "integral":
        output_times = np.array([t_span[1]])
    return NominalSetting(scheme, rtol, atol, output_times, plan.data, None, None, 0.0)


@quiet_floating_point
def run_setting(
    model: Model,
    loss: AuditLoss,
    parameters: tuple[str, ...],
    t_span: tuple[float, float],
    p: tuple[float, ...],
    nominal: NominalSetting,
    methods: tuple[str, ...],
    reference_y: np.ndarray | None = None,
    reference_targets: np.ndarray | None = None,
    max_steps: int = 200_000,
) -> SettingRuns:
    """Run every gradient method in one setting (a pure function of picklable arguments, so an executor can run
    settings in other processes).

    ``reference_y`` / ``reference_targets``: the reference states and targets at the output times, to split
    each run's gradient error into its loss-floor part; both None when the true residuals are identically 0.
    """
    plan = _plan(model, loss, parameters, t_span)
    p_values = np.asarray(p, dtype=float)
    scheme, rtol, atol = nominal.scheme, nominal.rtol, nominal.atol
    if nominal.failure is not None:
        return SettingRuns(scheme, rtol, atol, None, None, None, None, nominal.seconds, (), failure=nominal.failure)
    solve_model = plan.solve_model
    common = dict(method=scheme, rtol=rtol, atol=atol, max_steps=max_steps)
    index = [model.parameter_names.index(name) for name in parameters]
    output_times, targets = nominal.output_times, nominal.targets

    runs = []
    for method in methods:
        if method == "finite-differences":
            runs.append(_finite_differences(plan, solve_model, t_span, p_values, index, output_times, targets,
                                            scheme, rtol, atol, common))
            continue
        options = method_options(method)
        start = time.perf_counter()
        solution = solve(solve_model, t_span, p=p_values, t_eval=output_times, parameters=parameters,
                         **options, **common)
        seconds = time.perf_counter() - start
        if solution.status != "success":
            runs.append(MethodRun(method, scheme, rtol, atol, None, None, solution.status, solution.message, seconds,
                                  solution.stats.accepted_steps, solution.stats.rejected_steps,
                                  solution.stats.step_times, counts=_counts(solution.stats),
                                  tangents=len(parameters)))
            continue
        value, gradient = plan.value_and_gradient(solution.t, solution.y, solution.sensitivities, p_values, targets)
        contributions = floor_bias = None
        if plan.kind == "pointwise":
            contributions = plan.residual_contributions(solution.t, solution.y, solution.sensitivities, p_values, targets)
            floor_bias = contributions.sum(axis=0)
            if reference_y is not None:
                true_data = reference_targets if reference_targets is not None else targets
                floor_bias = floor_bias - plan.residual_contributions(
                    solution.t, reference_y, solution.sensitivities, p_values, true_data).sum(axis=0)
        norms = np.sqrt(np.sum(solution.sensitivities[:, : model.n_states, :] ** 2, axis=(1, 2)))
        max_residual = time_of_max = None
        if plan.output_names and targets is not None:
            residual = np.abs(plan.outputs_of(solution.t, solution.y[:, : model.n_states], p_values) - targets)
            k = int(np.argmax(residual.max(axis=1)))
            max_residual, time_of_max = float(residual[k].max()), float(solution.t[k])
        runs.append(MethodRun(method, scheme, rtol, atol, gradient, value, "success", solution.message, seconds,
                              solution.stats.accepted_steps, solution.stats.rejected_steps,
                              solution.stats.step_times, contributions, norms, floor_bias, max_residual, time_of_max,
                              counts=_counts(solution.stats), tangents=len(parameters)))
    return SettingRuns(scheme, rtol, atol, output_times, targets, nominal.step_times, nominal.y, nominal.seconds,
                       tuple(runs))


@quiet_floating_point
def _finite_differences(
    plan: LossPlan, solve_model: Model, t_span: tuple[float, float], p: np.ndarray, index: Sequence[int],
    output_times: np.ndarray | None, targets: np.ndarray | None, scheme: str, rtol: float, atol: float,
    common: dict[str, Any],
) -> MethodRun:
    start = time.perf_counter()
    gradient = np.empty(len(index))
    accepted = rejected = 0
    counts = _counts(None)
    centre_loss = None
    for j, k in enumerate(index):
        h = _finite_difference_step(p[k], rtol)
        values = []
        for sign in (1.0, -1.0):
            shifted = p.copy()
            shifted[k] += sign * h
            solution = solve(solve_model, t_span, p=shifted, t_eval=output_times, **common)
            if solution.status != "success":
                return MethodRun("finite-differences", scheme, rtol, atol, None, None, solution.status,
                                 f"at {plan.model.parameter_names[k]} {'+' if sign > 0 else '-'} h: {solution.message}",
                                 time.perf_counter() - start, accepted, rejected, None, counts=_counts(solution.stats, counts))
            accepted += solution.stats.accepted_steps
            rejected += solution.stats.rejected_steps
            _counts(solution.stats, counts)
            values.append(plan.value_and_gradient(solution.t, solution.y, None, shifted, targets)[0])
        # The actual step (p + h) - p, not h: it is what the two solves were given.
        gradient[j] = (values[0] - values[1]) / ((p[k] + h) - (p[k] - h))
    centre = solve(solve_model, t_span, p=p, t_eval=output_times, **common)
    if centre.status == "success":
        centre_loss = plan.value_and_gradient(centre.t, centre.y, None, p, targets)[0]
    _counts(centre.stats, counts)
    return MethodRun("finite-differences", scheme, rtol, atol, gradient, centre_loss, "success",
                     f"central differences, h_j = rtol^(1/3)|p_j| with rtol {rtol:g}", time.perf_counter() - start,
                     accepted, rejected, None, counts=counts)


_COUNT_NAMES = ("rhs_evaluations", "jacobian_evaluations", "lu_decompositions", "newton_iterations")


def _counts(stats: Any, into: dict[str, int] | None = None) -> dict[str, int]:
    """The work counters of ``stats`` (a :class:`~symsens.integrate.SolverStats`), added to ``into``."""
    total = dict.fromkeys(_COUNT_NAMES, 0) if into is None else into
    for name in _COUNT_NAMES:
        total[name] += int(getattr(stats, name, 0))
    return total


@dataclass(frozen=True)
class UnitCosts:
    """Operation counts of one model's kernels: the weights of :func:`work_estimate`.

    ``rhs`` and ``jacobian`` are the operation counts of ``f`` and ``df/dy`` (:func:`symsens.derive.total_operation_count`,
    shared subexpressions counted once), ``states`` is n.
    """

    rhs: int
    jacobian: int
    states: int


def unit_costs(model: Model) -> UnitCosts:
    """:class:`UnitCosts` of ``model`` from its exact expressions (machine-independent)."""
    from ..derive import jacobian
    from ..derive._cse import total_operation_count

    return UnitCosts(max(1, total_operation_count(list(model.rhs))),
                     max(1, total_operation_count(list(jacobian(model)))), model.n_states)


def work_estimate(counts: dict[str, int] | None, tangents: int, units: UnitCosts) -> float | None:
    """A machine-independent cost of a run, in floating-point operations (an estimate, for ranking).

    ``(1 + T) (nfev c_f + njev c_J + nlu 2n^3/3 + n_newton 2n^2)`` with ``c_f``, ``c_J`` the operation counts of
    the right-hand side and the Jacobian, ``n`` the number of states and ``T`` the tangent directions carried
    (sensitivities or dual partials propagate T copies of the same linear work).  The same inputs give the same
    number on every machine and every run, unlike wall time, so rankings built on it are reproducible.
    """
    if counts is None:
        return None
    n = units.states
    base = (counts["rhs_evaluations"] * units.rhs + counts["jacobian_evaluations"] * units.jacobian
            + counts["lu_decompositions"] * (2.0 * n**3 / 3.0) + counts["newton_iterations"] * 2.0 * n**2)
    return float((1 + tangents) * base)


def default_atol(rtol: float) -> float:
    """``atol = rtol / 1000`` (rtol 1e-3 gives atol 1e-6, the bursting-neuron forum question's settings)."""
    return rtol * 1e-3
