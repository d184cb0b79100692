"""``symsens.audit``: is this gradient right, why not, and what is the true one.

Flow: check the inputs -> build the loss plan (exact chain rule) -> compile every scheme's solver (in
parallel; cached on disk) -> run every (scheme, tolerance) setting with every gradient method (through an
executor) -> the reference gradient -> diagnostics -> a verdict per run and a recommendation.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._quiet import quiet_floating_point
from .._checks import parameter_selection, parameter_values, positive_number, step_count, time_span
from ..model import Model
from ._diagnose import backward_growth, diagnose, gradient_error
from ._losses import AuditLoss, TrajectoryLoss, data_fit_series
from ._methods import (
    DEFAULT_METHODS, SettingRuns, _plan, default_atol, has_discrete_adjoint, method_options, nominal_setting,
    run_setting, unit_costs, work_estimate,
)
from ._parameter_map import ParameterMap
from ._reference import ReferenceGradient, composed_reference, reference_gradients
from ._external import external_results, prepare_externals, report_loss_data
from ._verdict import answer, recommendation, verdict

__all__ = ["audit", "audit_sweep", "default_loss", "AuditReport", "DEFAULT_SCHEMES", "DEFAULT_TOLERANCES"]

DEFAULT_SCHEMES: tuple[str, ...] = ("tsit5", "rodas4", "radau-iia-3", "bdf")
DEFAULT_TOLERANCES: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)

Progress = Callable[[int, int, str], None]


def _json_number(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_ready(value: Any) -> Any:
    """Arrays to lists, non-finite floats to None (strict JSON has no inf or NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _json_number(value)
    if isinstance(value, complex):
        return {"re": _json_number(value.real), "im": _json_number(value.imag)}
    return value


@dataclass(frozen=True, eq=False)
class AuditReport:
    """The outcome of :func:`audit`.

    ``results`` has one row per method x scheme x tolerance: ``method``, ``scheme``, ``rtol``, ``atol``,
    ``gradient``, ``relative_error`` (None when the true gradient is 0), ``absolute_error``, ``digits``,
    ``verdict``, ``category``, ``loss``, ``seconds``, ``steps``; and for the adjoint methods (None otherwise)
    ``integrator`` (what ran: SciPy's for the continuous adjoints), ``adjoint_rtol``, ``adjoint_atol``,
    ``y0_reconstruction_error``, ``max_reconstruction_error``, ``backward_growth_rate``, ``backward_span``
    (backsolve) and ``checkpoints`` (adjoint-discrete).  ``diagnostics`` holds the numbers of every
    diagnostic (:mod:`symsens.audit._diagnose`); :meth:`write` renders the report with its figures.

    ``user_setting`` is the gradient the user computes (method, scheme, rtol) and ``answer`` the one-sentence
    answer about it (:func:`symsens.audit._verdict.answer`): ``answer["text"]``, ``answer["trustworthy"]``
    (True, False, or None when the audit cannot tell), ``answer["digits"]``, ``answer["cause"]``,
    ``answer["cheapest"]``.

    ``parameter_map``: with a :class:`ParameterMap`, its one-line description (every gradient of the report is
    composed with its Jacobian); None without.
    """

    model_name: str
    loss_description: str
    parameters: tuple[str, ...]
    parameter_values: np.ndarray
    t_span: tuple[float, float]
    reference_gradient: np.ndarray
    reference_digits: np.ndarray
    reference_exact: bool
    reference_verified: bool
    reference_how: str
    loss_at_nominal: float
    results: tuple[dict[str, Any], ...]
    diagnostics: dict[str, Any]
    recommendation: dict[str, Any]
    target_digits: float
    timings: dict[str, float]
    user_setting: dict[str, Any] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=dict)
    loss_data: dict[str, Any] | None = None
    parameter_map: str | None = None
    _settings: tuple[SettingRuns, ...] = field(repr=False, default=())
    _references: tuple[ReferenceGradient, ...] = field(repr=False, default=())
    _series: dict[str, Any] = field(repr=False, default_factory=dict)

    def result(self, method: str, scheme: str, rtol: float) -> dict[str, Any]:
        """The row of one method, scheme and tolerance (KeyError if it was not run)."""
        for row in self.results:
            if row["method"] == method and row["scheme"] == scheme and (
                    row["rtol"] is None and rtol is None
                    or row["rtol"] is not None and rtol is not None and math.isclose(row["rtol"], rtol)):
                return row  # an external gradient given without its rtol: rtol None
        raise KeyError(f"no result for {method!r}, {scheme!r}, rtol {rtol}")

    def to_json_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (arrays as lists, inf/NaN as null)."""
        return _json_ready({
            "answer": self.answer.get("text"),
            "answer_details": self.answer,
            "user_setting": self.user_setting,
            "model": self.model_name,
            "loss": self.loss_description,
            "parameters": list(self.parameters),
            "parameter_values": self.parameter_values,
            "t_span": list(self.t_span),
            "reference_gradient": self.reference_gradient,
            "reference": {"digits": self.reference_digits, "exact": self.reference_exact,
                          "verified": self.reference_verified, "how": self.reference_how,
                          "error_bound": None if self._references[0].error_bound is None else self._references[0].error_bound},
            "loss_at_nominal": self.loss_at_nominal,
            "results": [dict(row) for row in self.results],
            "diagnostics": self.diagnostics,
            "recommendation": self.recommendation,
            "target_digits": self.target_digits,
            "timings": self.timings,
            "loss_data": self.loss_data,
            "parameter_map": self.parameter_map,
        })

    def summary_table(self) -> str:
        """A terminal table: one line per result, grouped by verdict (worst first), the verdict last."""
        from ._report import summary_table

        return summary_table(self)

    def summary(self, verbose: bool = False, width: int = 110) -> str:
        """What ``symsens audit`` prints: the answer, the recommendation and a line per verdict; with ``verbose``
        the full table too.  Lines are wrapped at word boundaries to ``width`` columns."""
        from ._report import terminal_summary

        return terminal_summary(self, verbose=verbose, width=width)

    def write(self, directory: str | os.PathLike[str]) -> dict[str, str]:
        """Write ``report.md``, ``report.html``, ``report.json`` and the PNG figures; returns their paths."""
        from ._report import write_report

        return write_report(self, directory)


def _check_inputs(model: Model, methods: Sequence[str], schemes: Sequence[str], tolerances: Sequence[float],
                  target_digits: float, reference_digits: int) -> tuple[tuple[str, ...], tuple[str, ...], tuple[float, ...]]:
    from ..integrate._compiled import method_spec

    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    if isinstance(methods, str) or isinstance(schemes, str):
        raise ValueError("`methods` and `schemes` must be sequences of names, not strings")
    methods = tuple(methods)
    schemes = tuple(schemes)
    if not methods:
        raise ValueError("`methods` is empty")
    if not schemes:
        raise ValueError("`schemes` is empty")
    for name in methods:
        method_options(name)
    schemes = tuple(canonical_scheme(name) for name in schemes)
    if "adjoint-discrete" in methods and not any(has_discrete_adjoint(name) for name in schemes):
        raise ValueError("`methods`: adjoint-discrete covers the Runge–Kutta, Rosenbrock, SDIRK/ESDIRK, Radau IIA "
                         f"and BDF schemes, and none of `schemes` ({', '.join(schemes)}) is one")
    for name in schemes:
        try:
            spec = method_spec(name)
        except Exception as error:
            raise ValueError(f"`schemes`: {error}") from None
        if spec.error_order is None:
            raise ValueError(f"`schemes`: {name!r} has no error estimate, so it cannot run adaptively")
    tols = tuple(float(t) for t in tolerances)
    if not tols or not all(math.isfinite(t) and 0 < t < 1 for t in tols):
        raise ValueError(f"`tolerances` must be numbers in (0, 1), got {tolerances!r}")
    if not (math.isfinite(target_digits) and target_digits > 0):
        raise ValueError(f"`target_digits` must be positive, got {target_digits!r}")
    if not (isinstance(reference_digits, numbers.Integral) and 1 <= int(reference_digits) <= 40):
        raise ValueError(f"`reference_digits` must be an integer in 1..40, got {reference_digits!r}")
    for what, values in (("methods", methods), ("schemes", schemes), ("tolerances", tols)):
        if len(set(values)) != len(values):
            raise ValueError(f"`{what}` lists an entry twice")
    return methods, schemes, tols


def canonical_scheme(name: Any) -> Any:
    """The catalogue name of a scheme alias (``radau5`` -> ``radau-iia-3``); other names unchanged."""
    from ..integrate._compiled import _ALIASES

    return _ALIASES.get(name, name) if isinstance(name, str) else name


def _user_setting(user_setting: Any, methods: tuple[str, ...], schemes: tuple[str, ...],
                  tolerances: tuple[float, ...]) -> tuple[str, str, float]:
    """``(method, scheme, rtol)`` of the gradient the user computes; each part defaults to the first method, the
    first scheme and the loosest tolerance.  A ValueError names `user_setting` when a part was not audited."""
    if user_setting is None:
        user_setting = {}
    if isinstance(user_setting, Mapping):
        unknown = set(user_setting) - {"method", "scheme", "rtol"}
        if unknown:
            raise ValueError(f"`user_setting` takes method, scheme and rtol, got {sorted(unknown)}")
        method, scheme, rtol = user_setting.get("method"), user_setting.get("scheme"), user_setting.get("rtol")
    elif isinstance(user_setting, (tuple, list)) and len(user_setting) == 3:
        method, scheme, rtol = user_setting
    else:
        raise ValueError(f"`user_setting` must be (method, scheme, rtol) or a mapping of them, got {user_setting!r}")
    method = methods[0] if method is None else method
    scheme = schemes[0] if scheme is None else canonical_scheme(scheme)
    if method not in methods:
        raise ValueError(f"`user_setting`: method {method!r} is not among the audited `methods` ({', '.join(methods)})")
    if scheme not in schemes:
        raise ValueError(f"`user_setting`: scheme {scheme!r} is not among the audited `schemes` ({', '.join(schemes)})")
    if method == "adjoint-discrete" and not has_discrete_adjoint(scheme):
        raise ValueError(f"`user_setting`: adjoint-discrete has no discrete adjoint for the scheme {scheme!r}")
    if rtol is None:
        rtol = max(tolerances)
    else:
        try:
            rtol = float(rtol)
        except (TypeError, ValueError):
            raise ValueError(f"`user_setting`: rtol must be a number, got {rtol!r}") from None
        match = [t for t in tolerances if math.isclose(t, rtol, rel_tol=1e-9)]
        if not match:
            raise ValueError(f"`user_setting`: rtol {rtol:g} is not among the audited `tolerances` "
                             f"({', '.join(f'{t:g}' for t in tolerances)})")
        rtol = match[0]
    return str(method), str(scheme), float(rtol)


def default_loss(model: Model, parameters: Sequence[str] | None = None, p: Any = None,
                 t_span: tuple[float, float] | None = None) -> AuditLoss:
    """The loss :func:`audit` and ``symsens audit`` use when none is given.

    A built-in example with an audit preset (:mod:`symsens.audit._presets`; the model must have the built-in's
    equations, not merely its name) brings its preset loss.  Any other model gets :func:`fit_loss`: least
    squares against data the model makes at ``p`` with each differentiated parameter x 1.05, so that the true
    gradient is not 0.  When every differentiated parameter is 0 (no shift moves the data), the trajectory loss
    against the nominal solution remains, and its description says why.
    """
    from ._losses import fit_loss
    from ._presets import builtin_preset_loss

    preset = builtin_preset_loss(model)
    if preset is not None:
        return preset
    chosen = parameter_selection(model, parameters)
    point = parameter_values(model, p)
    if not any(point[model.parameter_names.index(name)] for name in chosen):
        return TrajectoryLoss(note="the default fit to data made at parameters x 1.05 is impossible here: every "
                                   "differentiated parameter is 0, so the true gradient is exactly 0")
    return fit_loss(model, chosen, point, t_span=t_span)


def _parameter_values(model: Model, p: Any) -> np.ndarray:
    # The check symsens.solve makes, so that a mistake in `p` is worded the same by both.
    return parameter_values(model, p)


@quiet_floating_point
def audit(
    model: Model,
    loss: AuditLoss | None = None,
    *,
    p: Sequence[float] | Mapping[str, float] | None = None,
    t_span: tuple[float, float] | None = None,
    parameters: Sequence[str] | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    schemes: Sequence[str] = DEFAULT_SCHEMES,
    tolerances: Sequence[float] = DEFAULT_TOLERANCES,
    atol: float | Callable[[float], float] | None = None,
    reference_digits: int = 8,
    target_digits: float = 6,
    executor: Executor | None = None,
    progress: Progress | None = None,
    max_steps: int = 200_000,
    reference_time_budget: float | None = None,
    user_setting: tuple[str | None, str | None, float | None] | Mapping[str, Any] | None = None,
    use_cache: bool = True,
    external: Mapping[str, Any] | None = None,
    tools: Sequence[str] | None = None,
    parameter_map: ParameterMap | None = None,
) -> AuditReport:
    """Compare the gradients of ``loss`` from every method x scheme x tolerance with the reference.

    Parameters
    ----------
    model : Model
    loss : TrajectoryLoss, DataLoss, IntegralLoss or ExpressionLoss, optional
        Default: the loss ``symsens audit`` uses (:func:`default_loss`): a built-in example's preset loss
        (Hodgkin–Huxley: its voltage fitted to data made at g_Na = 115; the calcium neuron: the zero-gradient
        trajectory loss of the bursting-neuron experiment), else :func:`symsens.audit.fit_loss`, a fit to data
        the model makes with each differentiated parameter x 1.05, so that the true gradient is not 0.  The
        report's loss description says which.  ``TrajectoryLoss()`` (true gradient exactly 0) is passed by name.
    p : parameter values (all, in model order, or a mapping over the nominal values).
    t_span : (t0, t1), optional; default the model's.
    parameters : names to differentiate with respect to (default all), in gradient order.
    methods : gradient methods (:data:`symsens.audit.GRADIENT_METHODS`); default every method but the adjoints
        (``adjoint-interpolating``, ``adjoint-backsolve``, ``adjoint-discrete``), which run in Python and are
        added by name.
    schemes : compiled integrators (default Tsit5, Rodas4, Radau IIA 5, BDF).
    tolerances : rtol values; ``atol`` is ``rtol / 1000`` unless given (a number or a function of rtol).
    reference_digits : digits the reference must verify.
    target_digits : the gradient accuracy the recommendation asks for.
    executor : runs the (scheme, tolerance) settings; default a thread pool over the CPUs (the solves run in
        compiled code without the GIL).  A process pool, Dask's ``client.get_executor()`` or a Ray pool work too.
    progress : ``progress(done, total, label)`` after each step of the work.
    user_setting : (method, scheme, rtol), or a mapping with any of those keys: the gradient the user computes,
        which the report's one-sentence answer is about.  Each part must be among the audited ``methods``,
        ``schemes`` and ``tolerances``; missing parts default to the first method, the first scheme and the
        loosest tolerance.  Scheme aliases (``radau5``) are accepted here and in ``schemes``.

    external : ``{name: gradient}``: gradients computed by other tools, each judged beside symsens' methods
        and identified with the symsens method it equals (:mod:`symsens.audit._external`,
        docs/audit-your-gradient.md).  A value is a gradient (a sequence in ``parameters`` order, or a mapping
        name -> value), ``(loss, gradient)``, a mapping ``{"gradient", "loss", "rtol", "atol", "scheme"}``, or a
        callable ``gradient(p, rtol)`` (optionally with an ``atol=`` keyword) called at each of ``tolerances``
        with ``p`` a NumPy array of every model parameter in the order of ``model.parameter_names``, returning
        a gradient or ``(loss, gradient)``.  The loss needs fixed times (:func:`symsens.audit.loss_data`); a
        trajectory loss on a fixed grid then fits fixed targets (the model's outputs at its data parameters).
        Without ``user_setting`` the answer is about the first external gradient.
    tools : names of :data:`symsens.bridges.TOOLS` (e.g. ``"diffrax-forward"``): each tool's gradient is an
        external callable (:func:`symsens.bridges.gradient_provider`).
    use_cache : read the verified reference from, and store it in, the per-user reference cache (keyed by
        the content of everything it depends on; :mod:`symsens.audit._reference_cache`).  ``False``
        recomputes it.
    parameter_map : :class:`symsens.audit.ParameterMap`, optional
        When model parameters are functions of the user's parameters (a PEtab problem's pre-equilibrated
        initial values, ``problem.audit_arguments()``): every method and the reference differentiate over
        ``parameter_map.model_parameters`` and each gradient is composed with ``dq/dtheta``, the compared
        methods' with its double-precision value, the reference's with the extended-precision one and its error
        bound (:mod:`symsens.audit._parameter_map`).  ``parameters`` then selects among
        ``parameter_map.parameters`` (default all); ``p`` must agree with the map's values.  ``external``
        gradients are then over the map's parameters (the total derivative); not combined with ``tools``.

    Returns
    -------
    AuditReport
    """
    from ..integrate._compiled import compiled_solver

    start_total = time.perf_counter()
    methods, schemes, tols = _check_inputs(model, methods, schemes, tolerances, target_digits, reference_digits)
    user = _user_setting(user_setting, methods, schemes, tols)
    t_span = time_span(t_span, model.t_span)
    p_values = _parameter_values(model, p)
    if parameter_map is not None:
        parameter_map = _checked_map(parameter_map, model, p_values, parameters, tools)
        chosen = parameter_selection(model, parameter_map.model_parameters)
        reported, reported_values = parameter_map.parameters, parameter_map.values
    else:
        chosen = parameter_selection(model, parameters)
        reported, reported_values = chosen, p_values[[model.parameter_names.index(n) for n in chosen]]
    loss = default_loss(model, chosen, p_values, t_span) if loss is None else loss
    max_steps = step_count(max_steps, "max_steps")
    if isinstance(loss, TrajectoryLoss):
        for name, value in loss.data_parameters or ():
            if not math.isfinite(value):
                raise ValueError(f"loss: data parameter {name!r} is not finite")
    plan = _plan(model, loss, chosen, t_span)
    # External gradients need the loss made concrete (fixed times and targets); see _external.
    loss, plan, externals, loss_record = prepare_externals(model, loss, plan, external, tools, p_values, chosen,
                                                           t_span, reference_digits, reference_time_budget, use_cache,
                                                           gradient_parameters=tuple(reported))

    def atol_of(rtol: float) -> float:
        if atol is not None and not callable(atol):
            return positive_number(atol, "atol")  # worded as symsens.solve words it
        value = float(atol(rtol)) if callable(atol) else default_atol(rtol)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"`atol` must be a positive finite number (for rtol {rtol:g}), got {value!r}")
        return value

    for rtol in tols:
        atol_of(rtol)

    total_steps = len(schemes) + len(schemes) * len(tols) + 2 + len(externals)
    done = 0

    def report(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total_steps, label)

    # Compile (or load) each scheme's solver; compiling is a subprocess, so threads overlap them.
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, min(len(schemes), os.cpu_count() or 1))) as pool:
        futures = {scheme: pool.submit(compiled_solver, plan.solve_model, chosen, scheme) for scheme in schemes}
        for scheme, future in futures.items():
            future.result()
            report(f"compiled {scheme}")
    compile_seconds = time.perf_counter() - start

    # Each setting's loss grid and targets (for a trajectory loss: its nominal solve), then the reference on
    # every grid, then every gradient method per setting; settings go through the executor.
    tasks = [(scheme, rtol) for scheme in schemes for rtol in tols]
    own_pool = executor is None
    pool = executor or ThreadPoolExecutor(max_workers=max(1, min(len(tasks), os.cpu_count() or 1)))
    try:
        start = time.perf_counter()
        nominals = [f.result() for f in [
            pool.submit(nominal_setting, model, loss, chosen, t_span, scheme, rtol, atol_of(rtol), max_steps)
            for scheme, rtol in tasks]]
        nominal_seconds = time.perf_counter() - start
        usable_nominals = [n for n in nominals if n.output_times is not None]
        if not usable_nominals:
            raise RuntimeError("every nominal solve failed: " + "; ".join(
                f"{n.scheme} rtol {n.rtol:g}: {n.failure}" for n in nominals))

        start = time.perf_counter()
        p_data = None
        if isinstance(loss, TrajectoryLoss):
            p_data = np.asarray(model.parameter_values, dtype=float).copy()
            for name, value in loss.data_parameters or ():
                p_data[model.parameter_names.index(name)] = value
        refs = reference_gradients(plan, t_span, p_values, p_data, [n.output_times for n in usable_nominals],
                                   [n.targets for n in usable_nominals], reference_digits, reference_time_budget,
                                   use_cache=use_cache,
                                   exact_values=parameter_map.reference_values if parameter_map is not None else ())
        reference_of = {id(n): r for n, r in zip(usable_nominals, refs)}
        report("reference")
        reference_seconds = time.perf_counter() - start

        start = time.perf_counter()
        futures_list = []
        for nominal in nominals:
            ref = reference_of.get(id(nominal))
            futures_list.append(pool.submit(
                run_setting, model, loss, chosen, t_span, tuple(p_values), nominal, methods,
                None if ref is None else ref.y, None if ref is None else ref.targets, max_steps,
                None if ref is None else ref.sensitivities))
        settings = []
        for (scheme, rtol), future in zip(tasks, futures_list):
            settings.append(future.result())
            report(f"{scheme} rtol {rtol:g}")
        solve_seconds = time.perf_counter() - start + nominal_seconds
    finally:
        if own_pool:
            pool.shutdown()
    if parameter_map is not None:
        # dL/dtheta = dL/dq dq/dtheta, for every method and the reference (module _parameter_map).
        settings = [_composed_setting(setting, parameter_map) for setting in settings]
        reference_of = {key: composed_reference(ref, parameter_map, plan.model.n_states)
                        for key, ref in reference_of.items()}
    usable = [s for s in settings if s.output_times is not None]
    by_setting = {id(s): reference_of[id(n)] for s, n in zip(settings, nominals) if id(n) in reference_of}

    # Diagnostics: a plain solve along the span for the Jacobian's eigenvalues (the tightest tolerance run).
    start = time.perf_counter()
    trajectory = _trajectory(plan.solve_model, t_span, p_values, schemes, tols, atol_of, max_steps)
    references = [by_setting[id(s)] for s in usable]
    diagnostics = diagnose(plan.model, p_values, usable, references, trajectory, reported)

    units = unit_costs(plan.solve_model)
    rows = []
    for setting in settings:
        reference = by_setting.get(id(setting))
        if reference is None:
            for method in methods:
                rows.append({"method": method, "scheme": setting.scheme, "rtol": setting.rtol, "atol": setting.atol,
                             "gradient": None, "reference_gradient": None, "relative_error": None,
                             "absolute_error": None, "digits": None, "exact": False,
                             "verdict": f"failed: {setting.failure}", "category": "failed", "loss": None,
                             "seconds": setting.nominal_seconds, "work": None, "steps": None,
                             "rejected_steps": None, **_adjoint_fields(None, diagnostics)})
            continue
        for run in setting.runs:
            category, sentence, digits = verdict(run, setting, reference, diagnostics, target_digits,
                                                 reported_values)
            relative, absolute = gradient_error(run.gradient, reference)
            rows.append({
                "method": run.method, "scheme": run.scheme, "rtol": run.rtol, "atol": run.atol,
                "gradient": run.gradient, "reference_gradient": reference.gradient,
                "relative_error": relative, "absolute_error": absolute, "digits": digits,
                "exact": digits is not None and math.isinf(digits),
                "verdict": sentence, "category": category, "loss": run.loss, "seconds": run.seconds,
                "work": work_estimate(run.counts, run.tangents, units),
                "steps": run.accepted_steps, "rejected_steps": run.rejected_steps,
                **_adjoint_fields(run, diagnostics),
            })
    advice = recommendation(rows, target_digits)
    the_answer = answer(rows, user, advice, target_digits)
    user_record: dict[str, Any] = {"method": user[0], "scheme": user[1], "rtol": user[2]}
    external_seconds = 0.0
    if externals:
        external_start = time.perf_counter()
        backward = None
        if any(external.backsolve for _, external in externals):
            if "backward_growth" not in diagnostics.summary and trajectory is not None:
                diagnostics.summary["backward_growth"] = backward_growth(plan.model, trajectory[0], trajectory[1],
                                                                         p_values)
            growth = diagnostics.summary.get("backward_growth")
            if growth:
                backward = {**growth, "span": float(t_span[1] - t_span[0])}
        rows, the_answer, user_record = external_results(
            externals, rows, p_values, reported, tols, atol_of, references[0], plan, target_digits, advice,
            the_answer if user_setting is not None else None, user_record, report, backward)
        external_seconds = time.perf_counter() - external_start
    diagnosis_seconds = time.perf_counter() - start - external_seconds
    report("diagnosis")

    first = references[0]
    return AuditReport(
        model_name=model.name,
        loss_description=loss.description,
        parameters=tuple(reported),
        parameter_values=np.asarray(reported_values, dtype=float),
        t_span=t_span,
        reference_gradient=first.gradient,
        reference_digits=first.digits,
        reference_exact=first.exact,
        reference_verified=first.exact or all(r.verified for r in references),
        reference_how=first.how,
        loss_at_nominal=first.loss,
        results=tuple(rows),
        diagnostics=diagnostics.summary,
        recommendation=advice,
        target_digits=float(target_digits),
        user_setting=user_record,
        loss_data=loss_record if loss_record is not None else report_loss_data(model, loss, plan, p_values, t_span,
                                                                               references[0]),
        answer=the_answer,
        parameter_map=None if parameter_map is None else parameter_map.description,
        timings={"compile": compile_seconds, "solves": solve_seconds, "reference": reference_seconds,
                 "diagnosis": diagnosis_seconds, **({"external": external_seconds} if externals else {}),
                 "total": time.perf_counter() - start_total},
        _settings=tuple(usable),
        _references=tuple(references),
        _series={**diagnostics.series, "units": dict(model.units), "time_name": model.time.name,
                 "data_fit": data_fit_series(plan, usable[0].output_times, first.targets, trajectory, p_values)},
    )


def _checked_map(parameter_map: Any, model: Model, p: np.ndarray, parameters: Sequence[str] | None,
                 tools: Any) -> ParameterMap:
    """The map over the selected ``parameters``, checked against the model and the point ``p``."""
    if not isinstance(parameter_map, ParameterMap):
        raise TypeError(f"`parameter_map` must be a symsens.audit.ParameterMap, got {type(parameter_map).__name__}")
    if tools:
        raise ValueError("`parameter_map` cannot be combined with `tools`: a tool differentiates over the model's "
                         "parameters, the audited gradient is over the map's parameters")
    for name in (*parameter_map.model_parameters, *(n for n, _ in parameter_map.reference_values)):
        if name not in model.parameter_names:
            raise ValueError(f"`parameter_map`: {name!r} is not a parameter of the model")
    selected = parameter_map.select(parameters)
    # A map is linearised at one point: a p elsewhere would compose gradients at one point with a Jacobian at
    # another.  Its parameters that are model parameters, and its exact values, must be those of p.
    for name, value in zip(parameter_map.parameters, parameter_map.values):
        if name in model.parameter_names:
            given = float(p[model.parameter_names.index(name)])
            if not math.isclose(given, float(value), rel_tol=1e-12, abs_tol=1e-300):
                raise ValueError(f"`p`: {name} = {given:.15g}, but `parameter_map` was made at {name} = "
                                 f"{float(value):.15g}; make the map at this point")
    for name, text in parameter_map.reference_values:
        given = float(p[model.parameter_names.index(name)])
        if not math.isclose(given, float(text), rel_tol=1e-12, abs_tol=1e-300):
            raise ValueError(f"`p`: {name} = {given:.15g}, but `parameter_map` gives it the value {text}; make the "
                             "map at this point")
    return selected


def _composed_setting(setting: SettingRuns, parameter_map: ParameterMap) -> SettingRuns:
    """Every run's gradient (and its per-time and loss-floor parts) over the map's parameters: ``g J``.  The
    sensitivity norms stay those of the solve (over the model parameters): they describe the solve's growth."""
    from dataclasses import replace

    def composed(value: np.ndarray | None) -> np.ndarray | None:
        return None if value is None else parameter_map.compose(value)

    runs = tuple(replace(run, gradient=composed(run.gradient), contributions=composed(run.contributions),
                         floor_bias=composed(run.floor_bias)) for run in setting.runs)
    return replace(setting, runs=runs)


def _adjoint_fields(run: Any, diagnostics: Any) -> dict[str, Any]:
    """The adjoint columns of a result row (None for the other methods): the integrator that ran, the backward
    pass's tolerances, backsolve's reconstruction errors, growth rate and longest backward span, and the
    discrete adjoint's checkpoint schedule."""
    fields: dict[str, Any] = dict.fromkeys(("integrator", "adjoint_rtol", "adjoint_atol", "y0_reconstruction_error",
                                            "max_reconstruction_error", "backward_growth_rate", "backward_span",
                                            "checkpoints"))
    if run is None or not run.method.startswith("adjoint-"):
        return fields
    fields.update(integrator=run.integrator, adjoint_rtol=run.adjoint_rtol, adjoint_atol=run.adjoint_atol,
                  y0_reconstruction_error=run.y0_reconstruction_error,
                  max_reconstruction_error=run.max_reconstruction_error, backward_span=run.backward_span)
    if run.method == "adjoint-backsolve":
        growth = diagnostics.summary.get("backward_growth") or {}
        fields["backward_growth_rate"] = growth.get("max_rate")
    if run.method == "adjoint-discrete" and run.details:
        fields["checkpoints"] = {k: run.details[k] for k in ("checkpoint_every", "checkpoints", "stored_numbers")}
    return fields


def _trajectory(model: Model, t_span: tuple[float, float], p: np.ndarray, schemes: Sequence[str],
                tolerances: Sequence[float], atol_of: Callable[[float], float], max_steps: int) -> tuple[np.ndarray, np.ndarray] | None:
    from ..integrate import solve

    rtol = min(tolerances)
    for scheme in schemes:
        solution = solve(model, t_span, p=p, method=scheme, rtol=rtol, atol=atol_of(rtol), max_steps=max_steps)
        if solution.status == "success":
            return solution.t, solution.y[:, : model.n_states]
    return None


def _audit_point(model: Model, loss: AuditLoss | None, options: dict[str, Any]) -> AuditReport:
    # One audit per worker: its settings run one after another (the sweep is the parallel level).
    with ThreadPoolExecutor(max_workers=1) as inner:
        return audit(model, loss, executor=inner, **options)


def audit_sweep(
    model: Model,
    points: Iterable[Mapping[str, Any]],
    loss: AuditLoss | None = None,
    *,
    executor: Executor | None = None,
    **options: Any,
) -> list[AuditReport]:
    """Run :func:`audit` at many points through ``executor`` (default: a local process pool).

    Each point is a mapping of :func:`audit` keyword arguments that vary (e.g. ``{"p": {...}}``,
    ``{"loss": ...}``, ``{"tolerances": [...]}``); ``options`` are shared by all.  Any
    :class:`concurrent.futures.Executor` works: ``ProcessPoolExecutor``, Dask's
    ``distributed.Client(...).get_executor()``, a Ray pool — the audits are independent, and each worker
    compiles or loads the model's solvers from its own per-user cache.  Returns the reports in point order.
    """
    from concurrent.futures import ProcessPoolExecutor

    jobs = []
    for point in points:
        merged = dict(options)
        merged.update(point)
        point_loss = merged.pop("loss", loss)
        if "executor" in merged:
            raise ValueError("a sweep point cannot set `executor`")
        merged.setdefault("progress", None)
        try:
            pickle.dumps((model, point_loss, merged))
        except Exception as error:  # lambdas, open files, ...: name what cannot travel to a worker
            raise ValueError(f"a sweep point's arguments cannot be sent to another process ({error}); use "
                             "module-level functions and plain values") from None
        jobs.append((point_loss, merged))
    if not jobs:
        raise ValueError("`points` is empty")
    own = executor is None
    pool = executor or ProcessPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1)))
    try:
        futures = [pool.submit(_audit_point, model, point_loss, merged) for point_loss, merged in jobs]
        return [future.result() for future in futures]
    finally:
        if own:
            pool.shutdown()
