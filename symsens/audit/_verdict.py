"""Verdicts: one sentence per gradient, tied to the measured evidence, and a recommendation.

Rules, in order (the first that applies names the cause):

1. the run failed -> ``failed: <status> at t = ...``;
2. the true gradient is exactly 0 (a trajectory loss at its data parameters) and the run reproduces its own
   targets (zero loss, zero gradient) -> ``uninformative``: right, whatever its sensitivities, so no evidence;
   then a gradient within the rounding level of the loss's gradient (``2 c u sum_k max|d_k| ||S_k||``) plus the
   reference's error bound, where the true gradient is within it too -> ``zero to rounding``: rounding noise is
   not a bias (and not evidence about the sensitivities either);
   then, against an exact 0, a run that *nearly* reproduces its targets (largest residual below a thousandth
   of the tolerance level ``rtol max|d| + atol`` of the solve that made the targets ``d``) with a gradient of
   natural size -> ``uninformative``: its gradient ``sum_k 2 r_k S_k`` is bounded by its residuals ``r_k``
   whatever its sensitivities ``S_k``;
3. the relative error is below ``10^-target_digits`` (against a true gradient of 0: only exactly 0) ->
   ``accurate to d digits`` (d = -log10 of the relative error, capped by the reference's own digits);
3a. ``adjoint-backsolve`` whose backward-reconstructed state misses the forward one (at ``t0`` or at a
   restart) by more than ``BACKSOLVE_FACTOR`` (100) times its backward tolerance ``adjoint_rtol`` (relative to
   ``max(max|y0|, atol)``) -> ``biased by the unstable backward solve: y(t0) reconstructed with relative error
   X; backward growth rate up to Y per unit time over a span of Z``, with ``Y = max_t max_i Re(-lambda_i)`` of
   ``df/dy`` along the trajectory (the backward state solve ``dy/ds = -f`` has Jacobian ``-J``) and ``Z`` the
   longest backward stretch without a reset of the state (the state is reset to the forward value at every
   data time); ``exp(Y Z)`` estimates how far an error of the tolerance's size in ``y(t1)`` is amplified (an
   estimate from the eigenvalues, not a bound: a non-normal ``J`` can amplify more for a while).  It
   comes before the residual rules because it names the mechanism: the adjoint's ``lambda`` and the
   quadrature are evaluated along a wrong state.  A backsolve that failed (overflowed) stays ``failed``, its
   sentence naming the same growth rate;
4. the gradient its residual error makes, ``sum_k [(dl/dy)(y_k) - (dl/dy)(y*_k)] S_k``, is at least half the
   error -> ``biased by the loss floor`` when that residual error is most of the loss the run computes (always
   when the true loss is 0; for a step-grid trajectory loss the differing steps are named as the cause), else
   ``biased by the state error at the loss times`` (truncation in y rather than in S);
5. a controller variant (tangents in the norm, differentiated step sizes) is ten times less accurate than the
   same method without it -> ``biased by the step-size controller``;
6. an A-stable scheme with at least a quarter of its steps at |h lambda| > 1 (some above 10) and a gradient
   smaller than the reference -> ``attenuated by stiffness``; an explicit scheme with a quarter of its steps on
   the stability boundary (|R(z)| > 1/2 with |z| > 1) -> ``amplified at the stability boundary``;
7. otherwise ``inaccurate`` with the relative error, and whether the method converges as rtol shrinks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._diagnose import Diagnostics, gradient_error, stable_norm
from ._methods import MethodRun, SettingRuns
from ._reference import ReferenceGradient

#: ``adjoint-backsolve``: a reconstruction error above this many times ``adjoint_rtol`` biases the gradient.
BACKSOLVE_FACTOR = 100.0

__all__ = ["BACKSOLVE_FACTOR", "verdict", "recommendation", "accurate_digits", "answer", "rtol_text", "SEVERITY", "CAUSES"]


def accurate_digits(relative: float | None, absolute: float | None, reference: ReferenceGradient) -> float:
    """Correct digits of a gradient: ``-log10`` of its relative error (2-norm), capped by the digits of the
    reference itself, ``-log10(||bound|| / ||g*||)`` with ``bound`` the propagated error of the reference."""
    cap = math.inf
    if not reference.exact:
        scale = float(np.linalg.norm(reference.gradient))
        bound = float(np.linalg.norm(reference.error_bound)) if reference.error_bound is not None else math.inf
        cap = 0.0 if scale == 0 or not math.isfinite(bound) else (17.0 if bound == 0 else max(0.0, -math.log10(bound / scale)))
    if relative is None:  # the true gradient is 0: only an exactly-zero gradient is right
        return cap if absolute == 0 else 0.0
    if relative == 0:
        return cap
    return max(0.0, min(-math.log10(relative), cap))


#: A run whose residuals are below this fraction of its setting's tolerance level reproduces its targets.
NEAR_REPRODUCTION = 1e-3


def _nearly_reproduces_targets(run: MethodRun, setting: SettingRuns) -> tuple[float, float] | None:
    """``(largest residual, tolerance level)`` when ``run`` nearly reproduces the targets of a least-squares loss,
    else None.

    The tolerance level ``rtol max_k |d_k| + atol`` is the size of the error the solve that made the targets
    ``d_k`` commits; residuals far below it mean the run retraced that solve (the nominal steps, or nearly),
    not that it approximates the true trajectory.  Finite differences are judged by their own rule.
    """
    if run.method == "finite-differences" or run.max_residual is None or setting.targets is None:
        return None
    targets = np.asarray(setting.targets, dtype=float)
    if targets.size == 0 or not np.all(np.isfinite(targets)):
        return None
    level = setting.rtol * float(np.max(np.abs(targets))) + setting.atol
    if run.max_residual <= NEAR_REPRODUCTION * level:
        return float(run.max_residual), level
    return None


#: Roundings per residual term ``r_k = g(y_k) - d_k`` allowed for in the rounding level of the gradient.
ROUNDINGS_PER_TERM = 8


def _rounding_level(run: MethodRun, setting: SettingRuns, reference: ReferenceGradient,
                    parameter_values: np.ndarray | None) -> float | None:
    """The size of a least-squares gradient ``sum_k 2 r_k S_k`` made by rounding alone:
    ``2 c u sum_k max|d_k| ||S*_k||_F`` with ``u = 2^-53`` and ``c`` roundings per residual (residuals of a
    solve that matches its targets to the last bits are ``|r_k| <= c u max|d_k|``).

    ``S*`` are the true sensitivities: the reference's where it has them; against an exact 0 (no reference
    run), their natural size ``max|d| / |p_j|``.  Not the run's own: exploding tangents would make any
    gradient look like rounding.  None where the loss is not least squares or the run has no gradient."""
    if setting.targets is None or run.gradient is None:
        return None
    targets = np.abs(np.asarray(setting.targets, dtype=float))
    if targets.ndim != 2 or targets.size == 0 or not np.all(np.isfinite(targets)):
        return None
    if reference.sensitivity_norms is not None and len(reference.sensitivity_norms) == len(targets):
        norms = np.asarray(reference.sensitivity_norms, dtype=float)
    else:
        scale = np.ones(len(run.gradient)) if parameter_values is None else np.abs(np.asarray(parameter_values, dtype=float))
        scale = np.where(scale > 0, scale, 1.0)
        norms = np.full(len(targets), float(np.max(targets)) * float(np.sqrt(np.sum(scale ** -2.0))))
    if not np.all(np.isfinite(norms)):
        return None
    unit = float(np.finfo(float).eps) / 2
    return float(2 * ROUNDINGS_PER_TERM * unit * np.sum(targets.max(axis=1) * norms))


def _within_natural_scale(run: MethodRun, setting: SettingRuns, parameter_values: np.ndarray | None) -> bool:
    """True when every ``|g_j|`` is below ``2 N level max|d| / |p_j|``: the gradient that residuals of the
    tolerance's size would make with sensitivities of the natural size ``max|d| / |p_j|`` (N residuals).

    A nearly reproducing run with a gradient above it has sensitivities far beyond their natural size (an
    exploding tangent), which *is* evidence, of inaccuracy: it gets the ordinary verdicts."""
    assert run.gradient is not None and setting.targets is not None
    targets = np.asarray(setting.targets, dtype=float)
    level = setting.rtol * float(np.max(np.abs(targets))) + setting.atol
    scale = np.ones(len(run.gradient)) if parameter_values is None else np.abs(np.asarray(parameter_values, dtype=float))
    scale = np.where(scale > 0, scale, 1.0)
    natural = 2.0 * targets.size * level * float(np.max(np.abs(targets))) / scale
    return bool(np.all(np.abs(run.gradient) <= natural))


def _stiffness_row(diagnostics: Diagnostics, scheme: str, rtol: float) -> dict[str, Any] | None:
    return next((r for r in diagnostics.summary.get("stiffness", []) if r["scheme"] == scheme and r["rtol"] == rtol), None)


def _control_row(diagnostics: Diagnostics, scheme: str, rtol: float, method: str) -> dict[str, Any] | None:
    return next((r for r in diagnostics.summary.get("step_size_control", [])
                 if r["scheme"] == scheme and r["rtol"] == rtol and r["method"] == method), None)


def verdict(run: MethodRun, setting: SettingRuns, reference: ReferenceGradient, diagnostics: Diagnostics,
            target_digits: float, parameter_values: np.ndarray | None = None) -> tuple[str, str, float | None]:
    """:func:`_verdict`, and for a discrete adjoint whose replay left the compiled solve's path (its Jacobian
    evaluations or Newton iterations differ from the solve's: ``details["path_matches"]`` False) the sentence says
    so, whatever the category: its gradient is the derivative of a nearby numerical solution, not of the solve
    whose loss it reports (a different count proves a different path; see docs/adjoints.md)."""
    category, sentence, digits = _verdict(run, setting, reference, diagnostics, target_digits, parameter_values)
    details = run.details or {}
    if details.get("path_matches") is False:
        sentence += (f"; the replay left the compiled solve's path ({details['replay_jacobian_evaluations']} Jacobian "
                     f"evaluations / {details['replay_newton_iterations']} Newton iterations against the solve's "
                     f"{details['solve_jacobian_evaluations']} / {details['solve_newton_iterations']}), so this is "
                     "the derivative of a nearby numerical solution")
    return category, sentence, digits


def _verdict(run: MethodRun, setting: SettingRuns, reference: ReferenceGradient, diagnostics: Diagnostics,
             target_digits: float, parameter_values: np.ndarray | None = None) -> tuple[str, str, float | None]:
    """``(category, sentence, digits)`` for one run (category: accurate, failed, uninformative, backsolve-instability, loss-floor,
    state-error, step-size-control, stiffness, stability-boundary, inaccurate).

    ``parameter_values`` (the differentiated parameters' values, gradient order) set the natural size of the
    gradient used by the near-reproduction rule; without them every parameter counts as of size 1.
    """
    growth = diagnostics.summary.get("backward_growth") or {}
    if run.gradient is None:
        extra = ""
        if run.method == "adjoint-backsolve" and growth.get("max_rate") is not None:
            extra = (f"; the backward state solve grows at up to {growth['max_rate']:.3g} per unit time"
                     + (f" over a span of {run.backward_span:.3g}" if run.backward_span is not None else ""))
        return "failed", f"failed: {run.message}{extra}", None
    relative, absolute = gradient_error(run.gradient, reference)
    digits = accurate_digits(relative, absolute, reference)
    error_text = f"relative error {relative:.2g}" if relative is not None else \
        f"|gradient| {absolute:.3g} where the true gradient is 0"
    if reference.exact and run.loss == 0.0 and absolute == 0.0:
        # At the data parameters a run that reproduces its own targets (the nominal steps, zero residuals) has a
        # zero gradient whatever its sensitivities are: right, but no evidence of accuracy.
        return "uninformative", ("exact 0, but uninformative: this solve reproduces its targets (the nominal steps, "
                                 "zero residuals), so its gradient is 0 whatever its sensitivities; audit at shifted "
                                 "parameters to judge them"), digits
    nearly = _nearly_reproduces_targets(run, setting)
    rounding = _rounding_level(run, setting, reference, parameter_values)
    bound = 0.0 if reference.exact or reference.error_bound is None else stable_norm(reference.error_bound)
    if rounding is not None and absolute is not None and absolute <= bound + rounding \
            and stable_norm(reference.gradient) <= bound + rounding:
        why = (f"the solve nearly reproduces its targets (largest residual {nearly[0]:.2g}), so this says nothing "
               "about its sensitivities" if nearly is not None else "the gradient is zero to the accuracy it can "
               "be computed with")
        return "zero-to-rounding", (f"zero to rounding: |gradient| {stable_norm(run.gradient):.2g} is within the "
                                    f"rounding level {rounding:.2g} of this loss's gradient"
                                    + (f" plus the reference's error bound {bound:.2g}" if bound else "")
                                    + f", and so is the true gradient; {why}"), digits
    if reference.exact and nearly is not None and _within_natural_scale(run, setting, parameter_values):
        residual, level = nearly
        return "uninformative", (f"uninformative: this solve nearly reproduces its targets (largest residual "
                                 f"{residual:.2g}, below a thousandth of the tolerance level {level:.2g}), so its "
                                 f"gradient ({error_text}) is bounded by its residuals whatever its sensitivities; "
                                 "audit at shifted parameters to judge them"), digits
    if digits >= target_digits:
        if math.isinf(digits):
            return "accurate", "exact: equal to the true gradient", digits
        return "accurate", f"accurate to {int(digits)} digits", digits
    if run.method == "adjoint-backsolve" and run.adjoint_rtol is not None:
        worst = max((e for e in (run.y0_reconstruction_error, run.max_reconstruction_error) if e is not None),
                    default=None)
        if worst is not None and worst > BACKSOLVE_FACTOR * run.adjoint_rtol:
            at_t0 = run.y0_reconstruction_error
            text = (f"biased by the unstable backward solve: y(t0) reconstructed with relative error {at_t0:.2g}"
                    if at_t0 is not None else "biased by the unstable backward solve")
            if run.max_reconstruction_error is not None and at_t0 is not None \
                    and run.max_reconstruction_error > 1.5 * at_t0:
                text += f" (up to {run.max_reconstruction_error:.2g} at the data times)"
            rate = growth.get("max_rate")
            if rate is not None:
                text += f"; backward growth rate up to {rate:.3g} per unit time"
                if run.backward_span is not None:
                    text += f" over a span of {run.backward_span:.3g}"
                    if rate > 0:
                        text += f" (amplification about exp({rate * run.backward_span:.3g}))"
            return "backsolve-instability", f"{text}; {error_text}", digits
    # Loss floor: the run's residual error (its outputs minus the true ones at the loss times) makes at least
    # half of the gradient error.
    if run.floor_bias is not None and absolute is not None and absolute > 0:
        bias = float(np.linalg.norm(run.floor_bias))
        floor = (run.loss - reference.loss) if run.loss is not None else 0.0
        # A loss floor: the solver's own residual error is most of the loss it computes (always so when the true
        # loss is 0); otherwise the same mechanism is the state error at the loss times (truncation in y).
        real_floor = run.loss is not None and floor > 0 and (reference.exact or floor > 0.5 * run.loss)
        if bias >= 0.5 * absolute and not real_floor and run.loss is not None:
            return "state-error", (f"biased by the state error at the loss times: the residuals' error puts {bias:.3g} "
                                   f"into the gradient (loss {run.loss:.3g}, true {reference.loss:.3g}); {error_text}"), digits
        if bias >= 0.5 * absolute and real_floor:
            control = _control_row(diagnostics, setting.scheme, setting.rtol, run.method)
            cause = ""
            steps_grid = setting.nominal_step_times is not None and setting.output_times is not None and \
                len(setting.nominal_step_times) == len(setting.output_times)
            if control is not None and not control["identical_steps"] and steps_grid:
                where = control["first_different_step_at"]
                count = (f"took {control['steps']} steps instead of the nominal {control['nominal_steps']}"
                         if control["steps"] != control["nominal_steps"] else f"took other steps (as many, {control['steps']})")
                first = setting.nominal_step_times[0] if setting.nominal_step_times is not None else None
                start = "" if where is None else (" from the first step on" if where == first else f" from t = {where:.6g} on")
                who = "the controller saw the tangents and" if "tangent-norm" in run.method else "this solve"
                cause = f"; {who} {count}{start}, so the outputs are interpolated where the targets are step values"
            return "loss-floor", (f"biased by the loss floor: loss {run.loss:.3g} against the true {reference.loss:.3g} "
                                  f"(floor {floor:+.2g}); the residual error puts {bias:.3g} into the gradient; "
                                  f"{error_text}{cause}"), digits
    if run.method == "finite-differences" and reference.exact and run.loss is not None:
        return "loss-floor", (f"biased by the loss floor: the true loss is 0 here to second order in h, but the solves "
                              f"at p ± h leave residuals against the step-value targets whose loss, of the "
                              f"tolerance's size, is differenced and divided by 2h; {error_text}"), digits
    # Step-size control: the same solve with a simpler controller treatment is ten times more accurate.
    for switch, sibling_name, what in (
        ("differentiated-steps", run.method.replace("-differentiated-steps", ""), "differentiating the step sizes"),
        ("tangent-norm", run.method.replace("-tangent-norm", ""), "the tangents in the controller's norm"),
    ):
        if switch not in run.method:
            continue
        sibling = next((r for r in setting.runs if r.method == sibling_name and r.gradient is not None), None)
        if sibling is None:
            continue
        _, sibling_absolute = gradient_error(sibling.gradient, reference)
        if absolute is not None and sibling_absolute is not None and absolute > 10 * sibling_absolute:
            ratio = absolute / sibling_absolute if sibling_absolute > 0 else math.inf
            return "step-size-control", (f"biased by the step-size controller: {what} makes the error "
                                         f"{format(ratio, '.3g') + ' times' if math.isfinite(ratio) else 'infinitely'} "
                                         f"larger than {sibling_name}'s; {error_text}"), digits
    stiffness = _stiffness_row(diagnostics, setting.scheme, setting.rtol)
    if stiffness is not None and relative is not None:
        if run.method != "finite-differences" and stiffness.get("A_stable") and stiffness["max_abs_h_lambda"] > 10 \
                and stiffness.get("share_of_steps_with_abs_z_over_1", 0) >= 0.25 \
                and np.linalg.norm(run.gradient) < np.linalg.norm(reference.gradient):
            zdr = stiffness.get("median_abs_z_dR_where_abs_z_over_1")
            extra = f", median |z R'(z)| {zdr:.2g} there" if zdr is not None else ""
            return "stiffness", (f"attenuated by stiffness: steps at |h lambda| up to {stiffness['max_abs_h_lambda']:.3g}"
                                 f"{extra}; {error_text}"), digits
        if stiffness.get("explicit") and stiffness.get("share_at_stability_boundary", 0) >= 0.25:
            return "stability-boundary", (f"amplified at the stability boundary: {100 * stiffness['share_at_stability_boundary']:.0f}% "
                                          f"of the steps at |R(z)| > 1/2 with |z| > 1, max |R'(z)| "
                                          f"{stiffness['max_abs_dR']:.3g}; {error_text}"), digits
    convergence = next((r for r in diagnostics.summary.get("convergence", [])
                        if r["scheme"] == setting.scheme and r["method"] == run.method), None)
    if convergence is not None and convergence["status"] == "no":
        return "inaccurate", (f"inaccurate: {error_text}, and it does not converge as the tolerance shrinks "
                              f"(fitted rate {convergence['rate']:.2g})" if convergence["rate"] is not None else
                              f"inaccurate: {error_text}, and it does not converge as the tolerance shrinks"), digits
    return "inaccurate", f"inaccurate: {error_text} (truncation error; see the convergence table)", digits


def recommendation(rows: Sequence[dict[str, Any]], target_digits: float) -> dict[str, Any]:
    """The cheapest method x scheme x tolerance whose gradient has ``target_digits`` digits and is evidence of
    accuracy (runs that reproduce their own targets are not).  Cheapest by the machine-independent work estimate
    (:func:`symsens.audit._methods.work_estimate`), so the choice does not change with the machine's load."""
    good = [r for r in rows if r["digits"] is not None and r["digits"] >= target_digits and r["category"] == "accurate"]
    if not good:
        informative = [r for r in rows if r["digits"] is not None
                       and r["category"] not in ("uninformative", "zero-to-rounding")]
        best = max(informative, key=lambda r: (r["digits"], -(r["absolute_error"] if r["absolute_error"] is not None
                                                              else math.inf)), default=None)
        text = f"no method reached {target_digits:g} digits"
        ruled_out = sum(r["category"] in ("uninformative", "zero-to-rounding") for r in rows)
        if ruled_out:
            text += (f" where the gradient is informative ({ruled_out} run{'s' if ruled_out != 1 else ''} ruled out: "
                     "runs that reproduce or nearly reproduce their own targets, or whose gradient is zero to "
                     "rounding, have a gradient bounded by their residuals whatever their sensitivities; audit at shifted parameters, e.g. p = 1.001 p_data, "
                     "to rank them)")
        if best is not None:
            text += (f"; the most accurate was {best['method']} with {best['scheme']} at rtol {best['rtol']:g} "
                     + (f"({best['digits']:.1f} digits)" if best["digits"] > 0 else
                        f"(error {best['absolute_error']:.3g})"))
        return {"found": False, "text": text, "choice": None}
    choice = min(good, key=_cost_key)
    digits_text = "exact" if math.isinf(choice["digits"]) else f"{choice['digits']:.1f} digits"
    work = choice.get("work")
    cost_text = (f"about {work:.2g} floating-point operations ({1e3 * choice['seconds']:.3g} ms here)"
                 if work is not None else f"{1e3 * choice['seconds']:.3g} ms")
    text = f"{choice['method']} with {choice['scheme']} at rtol {choice['rtol']:g}: {digits_text} in {cost_text}"
    return {"found": True, "text": text, "choice": {k: choice[k] for k in ("method", "scheme", "rtol", "atol")}}


def _cost_key(row: dict[str, Any]) -> tuple[float, str, str, float]:
    """Rank by the machine-independent work estimate, then by name: the same inputs give the same choice on
    every run (wall time on a shared machine does not); rows without counts rank last."""
    work = row.get("work")
    return (math.inf if work is None else float(work), row["method"], row["scheme"], -float(row["rtol"]))


# -- the one-sentence answer -------------------------------------------------------------------------------
#: Verdict categories from the worst to the best: the order of the report's groups.
SEVERITY: tuple[str, ...] = ("failed", "backsolve-instability", "loss-floor", "step-size-control", "stability-boundary", "stiffness",
                             "state-error", "inaccurate", "uninformative", "zero-to-rounding", "accurate")

#: The main cause named by the answer, per verdict category.
CAUSES: dict[str, str] = {
    "backsolve-instability": "the unstable backward solve (backsolve re-integrates the state backwards, where the "
                             "decaying modes of the forward problem grow)",
    "loss-floor": "the loss floor (the solver's residuals at the loss times, multiplied by the sensitivities, "
                  "make the gradient)",
    "state-error": "the state error at the loss times (the solution, not its sensitivities, is off)",
    "step-size-control": "the step-size controller (its treatment of the tangents changes the gradient)",
    "stiffness": "stiffness (the scheme damps the sensitivity to fast rates at large |h lambda|)",
    "stability-boundary": "the stability boundary (the explicit scheme's steps sit where it amplifies the "
                          "sensitivities)",
    "inaccurate": "truncation error (the tolerance is too loose for the gradient)",
}


def rtol_text(rtol: float | None) -> str:
    """A tolerance as every audit text writes it (``0.001``, ``1e-05``: Python's ``g`` format, as the
    recommendation does); ``unknown`` for an external gradient given without its rtol."""
    return "unknown" if rtol is None else f"{float(rtol):g}"


def _setting_text(method: str, scheme: str, rtol: float) -> str:
    return f"{method} with {scheme} at rtol {rtol_text(rtol)}"


def _digits_phrase(digits: float) -> str:
    if math.isinf(digits):
        return "exactly"
    whole = int(math.floor(digits + 1e-9))
    return f"to {whole} digit{'s' if whole != 1 else ''}"


def _cheapest_text(advice: dict[str, Any], rows: Sequence[dict[str, Any]], target_digits: float) -> str:
    """``the cheapest setting with 6 digits is ...`` (or why there is none)."""
    choice = advice.get("choice") if advice.get("found") else None
    if choice is None:
        informative = [r for r in rows if r["digits"] is not None and r["category"] not in ("uninformative", "zero-to-rounding")]
        best = max(informative, key=lambda r: r["digits"], default=None)
        text = f"no setting audited reached {target_digits:g} digits"
        if best is not None and best["digits"] > 0:
            text += (f" (the most accurate: {_setting_text(best['method'], best['scheme'], best['rtol'])}, "
                     f"{best['digits']:.1f} digits); try tighter tolerances")
        return text
    row = next((r for r in rows if r["method"] == choice["method"] and r["scheme"] == choice["scheme"]
                and r["rtol"] == choice["rtol"]), None)
    digits = "" if row is None or row["digits"] is None else (
        ", exact" if math.isinf(row["digits"]) else f", {row['digits']:.1f} digits")
    work = "" if row is None or row.get("work") is None else f", about {_flops(row['work'])} flops"
    return (f"the cheapest setting with {target_digits:g} digits is "
            f"{_setting_text(choice['method'], choice['scheme'], choice['rtol'])}{digits}{work}")


def _flops(work: float) -> str:
    """A work estimate to two digits: ``7.4e4``."""
    mantissa, exponent = f"{float(work):.1e}".split("e")
    return f"{mantissa}e{int(exponent)}" if abs(int(exponent)) > 3 else f"{float(work):.2g}"


def _cause(row: dict[str, Any]) -> str:
    cause = CAUSES.get(row["category"], row["category"])
    if row["category"] == "loss-floor":
        # The verdict names the differing steps when they are the mechanism: say so in the answer too.
        for clause in str(row["verdict"]).split("; "):
            if "steps instead of" in clause or "took other steps" in clause:
                cause += ": " + clause.split(", so ")[0]
                break
    return cause


def answer(rows: Sequence[dict[str, Any]], setting: tuple[str, str, float], advice: dict[str, Any],
           target_digits: float) -> dict[str, Any]:
    """The one-sentence answer about the gradient the user computes (``setting`` = method, scheme, rtol).

    Is it trustworthy (category ``accurate``), to how many digits, and if not, the main cause (the verdict's
    category) and the cheapest setting that is (the recommendation).  Returns ``{"text", "trustworthy"
    (True, False, or None when the audit cannot tell), "digits", "category", "cause", "setting", "cheapest"}``.
    """
    method, scheme, rtol = setting
    row = next((r for r in rows if r["method"] == method and r["scheme"] == scheme
                and math.isclose(r["rtol"], rtol)), None)
    if row is None:
        raise ValueError(f"`user_setting`: {_setting_text(method, scheme, rtol)} was not audited")
    yours = f"your gradient ({_setting_text(method, scheme, rtol)})"
    cheapest = _cheapest_text(advice, rows, target_digits)
    category, digits = row["category"], row["digits"]
    trustworthy: bool | None
    cause = None
    if category == "accurate":
        trustworthy = True
        text = f"Yes: {yours} is trustworthy {_digits_phrase(digits)}"
        choice = advice.get("choice")
        if choice is not None and (choice["method"], choice["scheme"], choice["rtol"]) != (method, scheme, row["rtol"]):
            text += f"; {cheapest}"
    elif category in ("uninformative", "zero-to-rounding"):
        trustworthy = None
        what = "0" if category == "uninformative" and row["absolute_error"] == 0 else (
            "zero to rounding" if category == "zero-to-rounding" else "bounded by its residuals")
        text = (f"Cannot tell at these parameters: {yours} is {what} because the true gradient is 0 and the solve "
                "reproduces its own targets, which says nothing about its sensitivities; audit at shifted "
                "parameters (data made elsewhere than the audited point) to judge it")
        if advice.get("found"):
            text += f"; {cheapest}"
    elif category == "failed":
        trustworthy = False
        text = f"No: {yours} failed ({_failure(row)}); {cheapest}"
    else:
        trustworthy = False
        cause = _cause(row)
        if row["relative_error"] is not None:
            size = (f"has {digits:.1f} correct digits (relative error {row['relative_error']:.2g})"
                    if digits is not None and digits > 0 else
                    f"has no correct digit (relative error {row['relative_error']:.2g})")
        else:
            size = f"is {row['absolute_error']:.3g} in norm where the true gradient is 0"
        text = f"No: {yours} {size}, fewer than the {target_digits:g} asked for; main cause: {cause}; {cheapest}"
    return {"text": text + ".", "trustworthy": trustworthy, "digits": digits, "category": category, "cause": cause,
            "setting": {"method": method, "scheme": scheme, "rtol": row["rtol"]},
            "cheapest": advice.get("choice") if advice.get("found") else None}


def _failure(row: dict[str, Any]) -> str:
    text = str(row["verdict"])
    return text[len("failed: "):] if text.startswith("failed: ") else text
