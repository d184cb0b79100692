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
``adjoint-interpolating``                   continuous adjoint, state from the forward solve's interpolant
                                            (:mod:`symsens.integrate._compiled_adjoint`; integral losses:
                                            :mod:`symsens.integrate._adjoint`, SciPy integrators)
``adjoint-backsolve``                       continuous adjoint, state re-integrated backwards with the adjoint
``adjoint-discrete``                        reverse mode through the compiled solve's accepted steps (steps
                                            held), with checkpointing: explicit Runge–Kutta (stages),
                                            Rosenbrock (stages, with the Jacobian's own derivative), SDIRK/
                                            ESDIRK, Radau IIA and BDF (through the Newton iterations carried
                                            out, with the kept Jacobian's derivative)
                                            (:mod:`symsens.integrate._discrete_adjoint` and its siblings)
==========================================  ==================================================================

How a setting's scheme maps to the adjoints.  For a pointwise loss (trajectory, data, expression at times)
the continuous adjoints run compiled, forward and backward with the setting's own scheme (every family but the
exponential integrators; the row's ``integrator`` is the scheme).  For an integral loss, or an exponential
scheme, they run SciPy's ``solve_ivp``: :func:`adjoint_integrator` picks ``BDF`` for ``bdf``, ``Radau`` for
every other implicit family (Radau IIA, SDIRK/ESDIRK, Rosenbrock, exponential), and for explicit schemes
``RK23`` (order <= 3), ``RK45`` (order 4-5) or ``DOP853`` (order >= 6); the row's ``integrator`` names what
ran.  Their backward pass uses the setting's tolerances (``adjoint_rtol = rtol``, ``adjoint_atol = atol``, recorded per row).  The targets
and output times are the setting's own (the compiled nominal solve's), so every method of a setting fits the
same data.  ``adjoint-discrete`` runs on the explicit Runge–Kutta, Rosenbrock, SDIRK/ESDIRK, Radau IIA and BDF
schemes (the compiled solve's recorded steps, replayed in NumPy); with an exponential scheme it is skipped (no
row).

The adjoints are not in :data:`DEFAULT_METHODS` (the default audit keeps its rows and its run time); ask for
them with ``methods=`` or ``symsens audit --methods``/``--method``.
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

__all__ = ["GRADIENT_METHODS", "DEFAULT_METHODS", "ADJOINT_METHODS", "adjoint_integrator", "has_discrete_adjoint", "is_explicit_scheme", "MethodRun", "SettingRuns", "NominalSetting", "nominal_setting", "run_setting",
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
    "adjoint-interpolating": {"adjoint": "interpolating"},
    "adjoint-backsolve": {"adjoint": "backsolve"},
    "adjoint-discrete": {"adjoint": "discrete"},
}
"""Method name -> ``symsens.solve`` options (finite differences use plain solves; the adjoints: their variant)."""

ADJOINT_METHODS: tuple[str, ...] = ("adjoint-interpolating", "adjoint-backsolve", "adjoint-discrete")

#: The audit's default methods: every method but the adjoints (which run in Python; see the module docstring).
DEFAULT_METHODS: tuple[str, ...] = tuple(name for name in GRADIENT_METHODS if name not in ADJOINT_METHODS)


def adjoint_integrator(scheme: str) -> str:
    """The SciPy ``solve_ivp`` method the continuous adjoints run for the compiled scheme ``scheme``: ``BDF`` for
    ``bdf``, ``Radau`` for the other implicit families, ``RK23``/``RK45``/``DOP853`` for explicit schemes of order
    <= 3, 4-5, >= 6.  A ValueError names ``scheme`` when it has no compiled integrator."""
    from ..integrate._compiled import _ALIASES, method_spec

    name = _ALIASES.get(scheme, scheme)
    try:
        spec = method_spec(name)
    except Exception as error:
        raise ValueError(f"`scheme`: {error}") from None
    if spec.family == "explicit":
        return "RK23" if spec.order <= 3 else ("RK45" if spec.order <= 5 else "DOP853")
    return "BDF" if spec.family == "bdf" else "Radau"


def has_discrete_adjoint(scheme: str) -> bool:
    """True when ``scheme``'s compiled family has a discrete adjoint (explicit RK, Rosenbrock, SDIRK/ESDIRK,
    Radau IIA, BDF)."""
    from ..integrate._discrete_adjoint import discrete_adjoint_family

    return discrete_adjoint_family(scheme) is not None


def is_explicit_scheme(scheme: str) -> bool:
    """True when ``scheme`` has a compiled explicit Runge–Kutta integrator (:func:`has_discrete_adjoint` says which
    schemes ``adjoint-discrete`` covers)."""
    from ..integrate._compiled import _ALIASES, method_spec

    try:
        return method_spec(_ALIASES.get(scheme, scheme)).family == "explicit"
    except Exception:
        return False


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
    # Adjoint methods: the integrator that ran (SciPy's for the continuous adjoints, the compiled scheme for the
    # discrete one), the backward pass's tolerances, and for backsolve how far the backward-reconstructed state
    # lands from the forward one (relative, at t0 and the largest over the restarts) and the longest backward
    # span without a reset of the state.  ``details``: the discrete adjoint's checkpoint schedule and work.
    integrator: str | None = None
    adjoint_rtol: float | None = None
    adjoint_atol: float | None = None
    y0_reconstruction_error: float | None = None
    max_reconstruction_error: float | None = None
    backward_span: float | None = None
    details: dict[str, Any] | None = field(default=None, repr=False)


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
    reference_sensitivities: np.ndarray | None = None,
) -> SettingRuns:
    """Run every gradient method in one setting (a pure function of picklable arguments, so an executor can run
    settings in other processes).

    ``reference_y`` / ``reference_targets``: the reference states and targets at the output times, to split
    each run's gradient error into its loss-floor part; both None when the true residuals are identically 0.
    ``reference_sensitivities``: the reference ``S*`` there (K x n x P).  With them the loss-floor part is
    ``sum_k [(dl/dy)(y_k) - (dl/dy)(y*_k)] S*_k``: what the run's state error does to the gradient when the
    sensitivities are right.  (With the run's own ``S_k`` an exploding tangent would make that part as large
    as the whole error and be mistaken for a state error.)
    """
    plan = _plan(model, loss, parameters, t_span)
    p_values = np.asarray(p, dtype=float)
    scheme, rtol, atol = nominal.scheme, nominal.rtol, nominal.atol
    if nominal.failure is not None:
        return SettingRuns(scheme, rtol, atol, None, None, None, None, nominal.seconds, (), failure=nominal.failure)
    solve_model = plan.solve_model
    common = dict(method=scheme, rtol=rtol, atol=atol, max_steps=max_steps)
    position = {name: k for k, name in enumerate(model.parameter_names)}
    index = [position[name] for name in parameters]
    output_times, targets = nominal.output_times, nominal.targets

    runs = []
    for method in methods:
        if method == "finite-differences":
            runs.append(_finite_differences(plan, solve_model, t_span, p_values, index, output_times, targets,
                                            scheme, rtol, atol, common))
            continue
        options = method_options(method)
        if "adjoint" in options:
            if options["adjoint"] == "discrete":
                if has_discrete_adjoint(scheme):
                    runs.append(_discrete_adjoint(plan, solve_model, t_span, p_values, parameters, output_times,
                                                  targets, scheme, rtol, atol, common))
                continue   # no row for a family without a discrete adjoint (exponential)
            runs.append(_continuous_adjoint(plan, t_span, p_values, parameters, output_times, targets, scheme,
                                            rtol, atol, options["adjoint"]))
            continue
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
                weights = solution.sensitivities
                if reference_sensitivities is not None and np.shape(reference_sensitivities) == np.shape(weights):
                    weights = np.asarray(reference_sensitivities, dtype=float)
                    floor_bias = plan.residual_contributions(
                        solution.t, solution.y, weights, p_values, targets).sum(axis=0)
                floor_bias = floor_bias - plan.residual_contributions(
                    solution.t, reference_y, weights, p_values, true_data).sum(axis=0)
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
    runs = _share_discrete_evidence(runs)
    return SettingRuns(scheme, rtol, atol, output_times, targets, nominal.step_times, nominal.y, nominal.seconds,
                       tuple(runs))


def _share_discrete_evidence(runs: list[MethodRun]) -> list[MethodRun]:
    """``adjoint-discrete`` differentiates the same numerical solution as ``discrete`` (the same steps): where both
    ran on identical steps, the adjoint's row carries the forward run's per-time residual terms
    (``contributions``, ``floor_bias``, residuals), so both get the same verdict.  The adjoint alone has no
    sensitivities at the output times to form them."""
    from dataclasses import replace

    forward = next((r for r in runs if r.method == "discrete" and r.gradient is not None), None)
    if forward is None:
        return runs
    out = []
    for run in runs:
        if run.method == "adjoint-discrete" and run.gradient is not None and run.step_times is not None \
                and forward.step_times is not None and np.array_equal(run.step_times, forward.step_times):
            run = replace(run, contributions=forward.contributions, sensitivity_norms=forward.sensitivity_norms,
                          floor_bias=forward.floor_bias, max_residual=forward.max_residual,
                          time_of_max_residual=forward.time_of_max_residual)
        out.append(run)
    return out


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


def _cotangents(plan: LossPlan, t: np.ndarray, y: np.ndarray, p: np.ndarray, targets: np.ndarray | None,
                size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dL/dy(t_k))_k`` (K x size, the solve model's states) and the loss's direct ``sum_k (dl/dp)_k``."""
    K = len(t)
    W = np.zeros((K, size))
    if plan.kind == "integral":
        W[-1, -1] = 1.0
        return W, np.zeros(len(plan.parameters))
    n = plan.model.n_states
    W[:, :n] = plan.dl_dy(t, y[:, :n], p, targets)
    _, direct = plan.value_and_gradient(t, y, np.zeros((K, size, len(plan.parameters))), p, targets)
    return W, np.asarray(direct, dtype=float)


@quiet_floating_point
def _discrete_adjoint(
    plan: LossPlan, solve_model: Model, t_span: tuple[float, float], p: np.ndarray, parameters: tuple[str, ...],
    output_times: np.ndarray | None, targets: np.ndarray | None, scheme: str, rtol: float, atol: float,
    common: dict[str, Any],
) -> MethodRun:
    """``adjoint-discrete``: the plain compiled solve (values-only norm: the steps of ``discrete``), then
    reverse mode through its accepted steps (:func:`symsens.integrate._discrete_adjoint.discrete_adjoint`)."""
    from ..integrate._discrete_adjoint import discrete_adjoint
    from ..integrate._discrete_adjoint_newton import ReplayError

    method = "adjoint-discrete"
    start = time.perf_counter()
    solution = solve(solve_model, t_span, p=p, t_eval=output_times, **common)
    if solution.status != "success":
        return MethodRun(method, scheme, rtol, atol, None, None, solution.status, solution.message,
                         time.perf_counter() - start, solution.stats.accepted_steps, solution.stats.rejected_steps,
                         solution.stats.step_times, counts=_counts(solution.stats), integrator=scheme)
    value, _ = plan.value_and_gradient(solution.t, solution.y, None, p, targets)
    W, direct = _cotangents(plan, solution.t, solution.y, p, targets, solve_model.n_states)
    try:
        run = discrete_adjoint(solve_model, scheme, p, parameters, solution.stats.step_times,
                               solution.stats.step_sizes, solution.t, W, rtol=rtol, atol=atol)
    except ReplayError as error:
        return MethodRun(method, scheme, rtol, atol, None, value, "newton failure", str(error),
                         time.perf_counter() - start, solution.stats.accepted_steps, solution.stats.rejected_steps,
                         solution.stats.step_times, counts=_counts(solution.stats), integrator=scheme)
    gradient = run.gradient + direct
    counts = _counts(solution.stats)
    # Work: the replay and the recomputation (rhs), each transposed product counted as a Jacobian evaluation.
    counts["rhs_evaluations"] += run.rhs_evaluations
    counts["jacobian_evaluations"] += run.vjp_evaluations
    seconds = time.perf_counter() - start
    status, message = "success", (f"reverse mode through {run.steps} accepted {scheme} steps (held), a checkpoint "
                                  f"every {run.checkpoint_every} steps ({run.checkpoints} checkpoints)")
    if not np.all(np.isfinite(gradient)):
        status, message, gradient = "non-finite values", "the discrete adjoint is not finite", None
    # The replay's states against the compiled solve's: rounding unless the replay took another path (an implicit
    # solve whose rejected attempts refreshed the Jacobian; see symsens.integrate._discrete_adjoint_dirk).
    scale = float(np.max(np.abs(solution.y))) if solution.y.size else 0.0
    replay_difference = float(np.max(np.abs(run.outputs - solution.y))) / scale if scale > 0 else 0.0
    if status == "success" and not replay_difference <= 1e-8:
        message += (f"; the replay's states differ from the compiled solve's by {replay_difference:.1e} "
                    f"(relative), so this is the derivative of a nearby numerical solution")
    details = {"checkpoint_every": run.checkpoint_every, "checkpoints": run.checkpoints,
               "stored_numbers": run.stored_numbers, "rhs_evaluations": run.rhs_evaluations,
               "transposed_products": run.vjp_evaluations, "replay_difference": replay_difference}
    # The exact check of the path (SDIRK/ESDIRK, Radau IIA, BDF): a replay that re-enacted every attempt of the solve
    # evaluated as many Jacobians and took as many Newton iterations as the solve did; any other count proves
    # another path, however close its states (a replay can leave the path and come back within rounding).
    if run.jacobian_evaluations is not None and run.newton_iterations is not None:
        replayed = (run.jacobian_evaluations, run.newton_iterations)
        solved = (solution.stats.jacobian_evaluations, solution.stats.newton_iterations)
        details.update(path_matches=replayed == solved, replay_jacobian_evaluations=replayed[0],
                       replay_newton_iterations=replayed[1], solve_jacobian_evaluations=solved[0],
                       solve_newton_iterations=solved[1])
        if status == "success" and replayed != solved:
            message += (f"; the replay left the compiled solve's path: {replayed[0]} Jacobian evaluations / "
                        f"{replayed[1]} Newton iterations against the solve's {solved[0]} / {solved[1]}; this is "
                        "the derivative of a nearby numerical solution")
    return MethodRun(method, scheme, rtol, atol, gradient, value, status, message, seconds,
                     solution.stats.accepted_steps, solution.stats.rejected_steps, solution.stats.step_times,
                     counts=counts, integrator=scheme, details=details)


@quiet_floating_point
def _continuous_adjoint(
    plan: LossPlan, t_span: tuple[float, float], p: np.ndarray, parameters: tuple[str, ...],
    output_times: np.ndarray | None, targets: np.ndarray | None, scheme: str, rtol: float, atol: float, variant: str,
) -> MethodRun:
    """``adjoint-interpolating`` / ``adjoint-backsolve`` in one setting, with the setting's output times and
    targets, ``adjoint_rtol = rtol``, ``adjoint_atol = atol``: compiled with the setting's scheme for a pointwise
    loss, else SciPy's integrator for the scheme (:func:`adjoint_integrator`)."""
    from .._gradient import _adjoint_system_of
    from ..integrate._adjoint import adjoint_gradient
    from ..integrate._compiled_adjoint import compiled_adjoint_gradient, runs_compiled

    method = f"adjoint-{variant}"
    start = time.perf_counter()
    system = _adjoint_system_of(plan.model, plan.loss, plan, parameters)
    times = None if plan.kind == "integral" or output_times is None else np.asarray(output_times, dtype=float)
    if times is not None and not system.has_integral and runs_compiled(scheme):
        integrator = scheme
        run = compiled_adjoint_gradient(system, t_span, p, times=times, data=targets, method=scheme, rtol=rtol,
                                        atol=atol, adjoint_rtol=rtol, adjoint_atol=atol, variant=variant)
    else:
        integrator = adjoint_integrator(scheme)
        run = adjoint_gradient(system, t_span, p, times=times, data=targets if times is not None else None,
                               variant=variant, method=integrator, rtol=rtol, atol=atol, adjoint_rtol=rtol,
                               adjoint_atol=atol)
    seconds = time.perf_counter() - start
    counts = dict.fromkeys(_COUNT_NAMES, 0)
    for part in (run.forward, run.backward):
        counts["rhs_evaluations"] += int(part.get("rhs_evaluations", 0))
        counts["jacobian_evaluations"] += int(part.get("jacobian_evaluations", 0))
        counts["lu_decompositions"] += int(part.get("lu_decompositions", 0))
    # A backward right-hand side holds J^T lambda and F_p^T lambda: count it as a Jacobian evaluation as well.
    counts["jacobian_evaluations"] += int(run.backward.get("rhs_evaluations", 0))
    steps = int(run.forward.get("steps", 0))
    span = None
    errors = run.reconstruction_errors
    if variant == "backsolve":
        t0, t1 = float(t_span[0]), float(t_span[1])
        stops = sorted({t0, t1, *(float(t) for t in (times if times is not None else ()) if t0 < t < t1)})
        span = float(np.max(np.diff(stops))) if len(stops) > 1 else 0.0
    return MethodRun(method, scheme, rtol, atol, run.gradient, run.loss, run.status, run.message, seconds, steps, 0,
                     None, counts=counts, integrator=integrator, adjoint_rtol=rtol, adjoint_atol=atol,
                     y0_reconstruction_error=run.y0_reconstruction_error,
                     max_reconstruction_error=(float(np.max(errors)) if errors is not None and len(errors) else None),
                     backward_span=span,
                     details={"forward": dict(run.forward), "backward": dict(run.backward),
                              "t_failure": run.t_failure})


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
