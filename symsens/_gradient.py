"""``symsens.gradient`` and ``symsens.true_gradient``: one entry point for every gradient method of a loss.

``gradient`` computes ``L(p)`` and ``dL/dp`` with one method:

==========================================  ==================================================================
``adjoint-interpolating``                   continuous adjoint, state from the forward solve's interpolant
                                            (:mod:`symsens.integrate._adjoint`, SciPy integrators)
``adjoint-backsolve``                       continuous adjoint, state re-integrated backwards with the adjoint
                                            (Chen et al. 2018); unstable on stiff problems
``adjoint-discrete``                        reverse mode through a compiled solve's accepted steps: explicit
                                            Runge–Kutta, Rosenbrock, SDIRK/ESDIRK, Radau IIA, BDF
                                            (:mod:`symsens.integrate._discrete_adjoint`; default ``tsit5``)
``forward`` ... ``finite-differences``      the methods of the audit (:data:`symsens.audit.GRADIENT_METHODS`),
                                            run by the audit's own machinery (compiled integrators)
==========================================  ==================================================================

``true_gradient`` is the audit's reference gradient: verified digits and an error bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._checks import parameter_selection, parameter_values, positive_number, time_span
from ._errors import IntegrationError
from .audit._losses import AuditLoss, DataLoss, ExpressionLoss, IntegralLoss, LossPlan, TrajectoryLoss
from .audit._methods import GRADIENT_METHODS, _plan, default_atol, nominal_setting, run_setting
from .derive import Loss, integral_loss, least_squares, pointwise_loss
from .model import Model

__all__ = ["gradient", "true_gradient", "objective", "GradientResult", "TrueGradient", "GRADIENT_METHOD_NAMES",
           "derived_loss"]

_ADJOINT_METHODS: dict[str, str] = {"adjoint-interpolating": "interpolating", "adjoint-backsolve": "backsolve"}

#: Every method :func:`gradient` knows: the two continuous adjoints, then the audit's methods.
GRADIENT_METHOD_NAMES: tuple[str, ...] = tuple(dict.fromkeys((*_ADJOINT_METHODS, *GRADIENT_METHODS)))

_DEFAULT_ADJOINT_SCHEME = "radau"
_DEFAULT_AUDIT_SCHEME = "rodas4"
_DEFAULT_DISCRETE_ADJOINT_SCHEME = "tsit5"


@dataclass(frozen=True, eq=False)
class GradientResult:
    """``L(p)`` and ``dL/dp`` from one method, with how it went.

    Attributes
    ----------
    loss : float or None
        The loss as this method computes it (None when the run failed before it).
    gradient : ndarray (P) or None
        ``dL/dp`` in the order of :attr:`parameters`; None unless ``status == "success"``.
    parameters : tuple of str
    method, scheme : str
        The gradient method and the integrator it ran (SciPy's for the adjoints, compiled for the others).
    status, message : str
        ``"success"`` or the failure (``"step size underflow"``, ``"newton failure"``, ``"non-finite values"``, ...).
    t_failure : float or None
    rtol, atol, adjoint_rtol, adjoint_atol : float (adjoint tolerances None for non-adjoint methods)
    statistics : dict
        ``{"forward": {...}, "backward": {...}}`` for the adjoints (``steps``, ``rhs_evaluations``,
        ``jacobian_evaluations``, ``lu_decompositions``); ``{"forward": {...}}`` with the audit's work counters
        (and ``accepted_steps``, ``rejected_steps``) otherwise.
    seconds : float
    y0_reconstruction_error : float or None
        ``adjoint-backsolve``: ``max |y(t0) reconstructed backwards - y0| / max(max |y0|, atol)``.
    """

    loss: float | None
    gradient: np.ndarray | None
    parameters: tuple[str, ...]
    method: str
    scheme: str
    status: str
    message: str
    rtol: float
    atol: float
    adjoint_rtol: float | None = None
    adjoint_atol: float | None = None
    t_failure: float | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    y0_reconstruction_error: float | None = None
    reconstruction_errors: np.ndarray | None = field(default=None, repr=False)

    @property
    def success(self) -> bool:
        return self.status == "success"

    def check(self) -> "GradientResult":
        """``self`` if the run succeeded, else :class:`~symsens.IntegrationError` with the status and time."""
        if not self.success:
            raise IntegrationError(f"{self.method}: {self.message}", status=self.status, t=self.t_failure)
        return self


@dataclass(frozen=True, eq=False)
class TrueGradient:
    """The true ``dL/dp`` with verified digits (the audit's reference gradient).

    Attributes
    ----------
    gradient : ndarray (P)
    loss : float
    parameters : tuple of str
    digits : ndarray (P)
        Correct significant digits of each component (inf: exact).
    error_bound : ndarray (P) or None
        A bound on ``|gradient - true|`` per component, propagated from the reference's verified error bounds.
    exact, verified : bool
    how : str
    """

    gradient: np.ndarray
    loss: float
    parameters: tuple[str, ...]
    digits: np.ndarray
    error_bound: np.ndarray | None
    exact: bool
    verified: bool
    how: str


def derived_loss(model: Model, loss: AuditLoss, output_names: Sequence[str] | None = None) -> Loss:
    """The :class:`symsens.derive.Loss` (exact ``l`` or ``g``) of an audit loss, as the audit's chain rule builds it.

    Least squares (:class:`TrajectoryLoss`, :class:`DataLoss`) give ``sum_i w_i (g_i - data_i)^2`` with the data
    symbols ``data_<output>`` in output order; :class:`ExpressionLoss` its expression; :class:`IntegralLoss` ``g``.
    """
    if isinstance(loss, IntegralLoss):
        return integral_loss(model, loss.expression)
    if isinstance(loss, ExpressionLoss):
        return pointwise_loss(model, loss.expression, name=loss.name)
    if isinstance(loss, (TrajectoryLoss, DataLoss)):
        names = output_names if output_names is not None else (loss.outputs or model.state_names)
        weights = loss.weights if isinstance(loss, DataLoss) else None
        return least_squares(model, list(names), weights=weights)
    raise TypeError(f"`loss` must be a TrajectoryLoss, DataLoss, IntegralLoss or ExpressionLoss, got {type(loss).__name__}")


def _check_method(method: Any) -> str:
    if not isinstance(method, str) or method not in GRADIENT_METHOD_NAMES:
        import difflib

        close = difflib.get_close_matches(str(method), GRADIENT_METHOD_NAMES, n=2)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"`method`: unknown gradient method {method!r}{hint}; known: {', '.join(GRADIENT_METHOD_NAMES)}")
    return method


def _common(model: Model, loss: AuditLoss | None, p: Any, t_span: Any, parameters: Any
            ) -> tuple[AuditLoss, np.ndarray, tuple[float, float], tuple[str, ...], LossPlan, np.ndarray | None]:
    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    loss = TrajectoryLoss() if loss is None else loss
    if not isinstance(loss, (TrajectoryLoss, DataLoss, IntegralLoss, ExpressionLoss)):
        raise TypeError(f"`loss` must be a TrajectoryLoss, DataLoss, IntegralLoss or ExpressionLoss, "
                        f"got {type(loss).__name__}")
    span = time_span(t_span, model.t_span)
    p_values = parameter_values(model, p)
    chosen = parameter_selection(model, parameters)
    p_data = None
    if isinstance(loss, TrajectoryLoss):
        p_data = np.asarray(model.parameter_values, dtype=float).copy()
        for name, value in loss.data_parameters or ():
            if not math.isfinite(value):
                raise ValueError(f"loss: data parameter {name!r} is not finite")
        plan = _plan(model, loss, chosen, span)  # checks the data parameters' names
        for name, value in loss.data_parameters or ():
            p_data[model.parameter_names.index(name)] = value
    else:
        plan = _plan(model, loss, chosen, span)
    return loss, p_values, span, chosen, plan, p_data


def _tolerance(value: Any, name: str, default: float) -> float:
    if value is None:
        return default
    result = positive_number(value, name)
    return result


def gradient(
    model: Model,
    loss: AuditLoss | None = None,
    *,
    p: Sequence[float] | Mapping[str, float] | None = None,
    t_span: tuple[float, float] | None = None,
    parameters: Sequence[str] | None = None,
    method: str = "adjoint-interpolating",
    scheme: str | None = None,
    rtol: float = 1e-6,
    atol: float | None = None,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    backend: str | None = None,
) -> GradientResult:
    """The loss ``L(p)`` and its gradient ``dL/dp`` by one gradient method.

    Continuous adjoint (``method="adjoint-interpolating"`` or ``"adjoint-backsolve"``): for
    ``L = int g dt + sum_k l(t_k, y(t_k), p)``,

        lambda' = -J^T lambda - (dg/dy)^T,  lambda(t1) = 0,  lambda(t_k-) = lambda(t_k+) + (dl/dy)^T,
        dL/dp = lambda(t0)^T dy0/dp + int (lambda^T F_p + dg/dp) dt + sum_k dl/dp

    (Cao, Li, Petzold & Serban 2003; Hindmarsh et al. 2005), integrated with SciPy's ``solve_ivp``
    (:mod:`symsens.integrate._adjoint`) or, for a pointwise loss with a compiled scheme, forward and backward in
    compiled code (:mod:`symsens.integrate._compiled_adjoint`).  The other
    methods are the audit's (:mod:`symsens.audit._methods`).

    Parameters
    ----------
    model : Model
    loss : TrajectoryLoss, DataLoss, IntegralLoss or ExpressionLoss, optional
        Default ``TrajectoryLoss()``, as in :func:`symsens.audit` (least squares of every state against the
        nominal trajectory on the nominal solve's steps).
    p : parameter values (all, in model order, or ``{name: value}`` over the nominal values).
    t_span : (t0, t1), optional; default the model's.
    parameters : names of the gradient's parameters, in its order (default all).
    method : one of :data:`GRADIENT_METHOD_NAMES`.
    scheme : the integrator: for the continuous adjoints a SciPy method (``"radau"`` default, ``"bdf"``,
        ``"lsoda"``, ``"dopri5"``, ``"dop853"``, ``"bs3"`` or SciPy's own names) or any compiled adaptive scheme (``"tsit5"``, ``"rodas4"``, ``"radau-iia-3"``,
        ``"kvaerno5"``, ...: see ``backend``); otherwise a compiled scheme (default ``"rodas4"``).
    rtol, atol : tolerances (``atol`` default ``rtol / 1000``, as in the audit).
    adjoint_rtol, adjoint_atol : tolerances of the adjoint's backward pass (default ``rtol``, ``atol``).
    backend : where the continuous adjoints run: ``"scipy"`` or ``"compiled"`` (pointwise losses).  Default: SciPy for SciPy's names above, compiled for the other compiled schemes;
        ``backend="compiled"`` with ``"bdf"`` or ``"dopri5"`` runs symsens' compiled BDF or Dormand–Prince.
        For ``adjoint-discrete``: ``"compiled"`` (the C++ reverse sweep of the scheme's family, the default when
        a C++ compiler is found) or ``"numpy"`` (the NumPy sweep: the same arithmetic, the independent check).

    Returns
    -------
    GradientResult
        A failed run has ``status``/``t_failure`` and ``gradient`` None; :meth:`GradientResult.check` raises.

    Raises
    ------
    ValueError, TypeError
        For an unknown method or scheme, a ``p`` of the wrong length or with NaN, an unknown parameter name,
        a bad loss or tolerance; each names the argument.

    Examples
    --------
    With :func:`scipy.optimize.minimize` (``jac=True`` takes ``(value, gradient)``); see also :func:`objective`::

        fun = symsens.objective(model, loss, parameters=["a", "b"])
        scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B")
    """
    method = _check_method(method)
    rtol = positive_number(rtol, "rtol")
    if not rtol < 1:
        raise ValueError(f"`rtol` must be below 1, got {rtol!r}")
    atol = _tolerance(atol, "atol", default_atol(rtol))
    loss, p_values, span, chosen, plan, p_data = _common(model, loss, p, t_span, parameters)
    if method in _ADJOINT_METHODS:
        scheme = _DEFAULT_ADJOINT_SCHEME if scheme is None else scheme
        backend = _adjoint_backend(method, scheme, backend, loss)
        a_rtol = _tolerance(adjoint_rtol, "adjoint_rtol", rtol)
        a_atol = _tolerance(adjoint_atol, "adjoint_atol", atol)
        if backend == "compiled":
            return _compiled_adjoint(model, loss, plan, p_values, p_data, span, chosen, method, scheme, rtol, atol,
                                     a_rtol, a_atol)
        return _adjoint(model, loss, plan, p_values, p_data, span, chosen, method, scheme, rtol, atol, a_rtol, a_atol)
    if adjoint_rtol is not None or adjoint_atol is not None:
        raise ValueError(f"`adjoint_rtol`/`adjoint_atol` apply to the adjoint methods only, not to {method!r}")
    if backend is not None and method != "adjoint-discrete":
        raise ValueError(f"`backend` applies to the adjoint methods only, not to {method!r}")
    if scheme is None:
        scheme = _DEFAULT_DISCRETE_ADJOINT_SCHEME if method == "adjoint-discrete" else _DEFAULT_AUDIT_SCHEME
    from .integrate._compiled import adaptive_method_spec

    spec = adaptive_method_spec(scheme)
    if method == "adjoint-discrete":
        from .integrate._discrete_adjoint import discrete_adjoint_family

        if discrete_adjoint_family(scheme) is None:
            raise ValueError(f"`scheme`: the discrete adjoint covers the explicit Runge–Kutta, Rosenbrock, "
                             f"SDIRK/ESDIRK, Radau IIA and BDF schemes (tsit5, rodas4, kvaerno5, radau5, bdf, ...); "
                             f"{scheme!r} is {spec.family!r}")
        if backend is not None:
            from .integrate._discrete_adjoint import discrete_adjoint_backend

            if backend not in ("compiled", "numpy"):
                raise ValueError(f"`backend` of adjoint-discrete must be 'compiled' or 'numpy', got {backend!r}")
            with discrete_adjoint_backend(backend):
                return _audit_method(model, loss, p_values, span, chosen, method, scheme, rtol, atol)
    return _audit_method(model, loss, p_values, span, chosen, method, scheme, rtol, atol)


def _audit_method(model: Model, loss: AuditLoss, p: np.ndarray, span: tuple[float, float], chosen: tuple[str, ...],
                  method: str, scheme: str, rtol: float, atol: float) -> GradientResult:
    """One audit method in one setting, by the audit's own functions (nominal grid and targets, then the run)."""
    start = time.perf_counter()
    nominal = nominal_setting(model, loss, chosen, span, scheme, rtol, atol)
    if nominal.failure is not None:
        return GradientResult(None, None, chosen, method, scheme, "failed", nominal.failure, rtol, atol,
                              seconds=time.perf_counter() - start)
    setting = run_setting(model, loss, chosen, span, tuple(p), nominal, (method,))
    run = setting.runs[0]
    statistics = {"forward": {**(run.counts or {}), "accepted_steps": run.accepted_steps,
                              "rejected_steps": run.rejected_steps}}
    if run.details:
        statistics["discrete_adjoint"] = dict(run.details)
    gradient_value = None if run.gradient is None else np.asarray(run.gradient, dtype=float)
    return GradientResult(run.loss, gradient_value, chosen, method, scheme, run.status, run.message, rtol, atol,
                          statistics=statistics, seconds=time.perf_counter() - start)


def _adjoint(model: Model, loss: AuditLoss, plan: LossPlan, p: np.ndarray, p_data: np.ndarray | None,
             span: tuple[float, float], chosen: tuple[str, ...], method: str, scheme: str, rtol: float, atol: float,
             a_rtol: float, a_atol: float) -> GradientResult:
    from .integrate._adjoint import adjoint_gradient

    start = time.perf_counter()
    system = _adjoint_system_of(model, loss, plan, chosen)
    times: np.ndarray | None = None if plan.times is None else np.asarray(plan.times, dtype=float)
    data = plan.data
    if isinstance(loss, TrajectoryLoss):
        # The targets: the same integrator at the data parameters (on its own steps for grid="steps").
        targets = _nominal_targets(model, plan, system, span, p_data, times, scheme, rtol, atol)
        if isinstance(targets, GradientResult):  # the nominal solve failed
            return targets
        times, data = targets
    run = adjoint_gradient(system, span, p, times=times, data=data, variant=_ADJOINT_METHODS[method],
                           method=scheme, rtol=rtol, atol=atol, adjoint_rtol=a_rtol, adjoint_atol=a_atol)
    return GradientResult(
        run.loss, run.gradient, chosen, method, scheme, run.status, run.message, rtol, atol, a_rtol, a_atol,
        run.t_failure, {"forward": dict(run.forward), "backward": dict(run.backward)}, time.perf_counter() - start,
        run.y0_reconstruction_error, run.reconstruction_errors,
    )


_ADJOINT_BACKENDS = ("scipy", "compiled")


def _adjoint_backend(method: str, scheme: Any, backend: Any, loss: AuditLoss) -> str:
    """Where a continuous adjoint runs (see :func:`gradient`), with errors naming the argument."""
    from .integrate._adjoint import SCIPY_METHODS, scipy_method

    if backend is not None and backend not in _ADJOINT_BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(map(repr, _ADJOINT_BACKENDS))}, got {backend!r}")
    if backend is None:
        backend = "scipy" if scheme in SCIPY_METHODS else "compiled"
    if backend == "scipy":
        scipy_method(scheme)
        return backend
    from .integrate._compiled import adaptive_method_spec
    from .integrate._compiled_adjoint import COMPILED_ADJOINT_FAMILIES

    spec = adaptive_method_spec(scheme)
    if spec.family not in COMPILED_ADJOINT_FAMILIES:
        raise ValueError(f"`scheme`: the compiled adjoint runs adaptive explicit, SDIRK/ESDIRK, Radau IIA, Rosenbrock "
                         f"and BDF schemes; {scheme!r} is {spec.family!r}")
    if isinstance(loss, IntegralLoss):
        raise ValueError("the compiled adjoint takes pointwise losses (trajectory, data, expression at times); "
                         "an IntegralLoss runs with backend='scipy'")
    return backend


def _compiled_adjoint(model: Model, loss: AuditLoss, plan: LossPlan, p: np.ndarray, p_data: np.ndarray | None,
                      span: tuple[float, float], chosen: tuple[str, ...], method: str, scheme: str, rtol: float,
                      atol: float, a_rtol: float, a_atol: float) -> GradientResult:
    from .integrate._compiled_adjoint import compiled_adjoint_gradient
    from .integrate._solve import solve

    start = time.perf_counter()
    system = _adjoint_system_of(model, loss, plan, chosen)
    times: np.ndarray | None = None if plan.times is None else np.asarray(plan.times, dtype=float)
    data = plan.data
    if isinstance(loss, TrajectoryLoss):
        # The targets: the same compiled integrator at the data parameters (on its own steps for grid="steps").
        nominal = solve(model, span, p=p_data, method=scheme, rtol=rtol, atol=atol,
                        t_eval=None if times is None else times)
        if nominal.status != "success":
            return GradientResult(None, None, chosen, method, scheme, "failed",
                                  f"nominal solve at the data parameters: {nominal.message}", rtol, atol)
        times = np.asarray(nominal.t, dtype=float)
        data = plan.outputs_of(times, nominal.y, p_data)
    run = compiled_adjoint_gradient(system, span, p, times=times, data=data, method=scheme, rtol=rtol, atol=atol,
                                    adjoint_rtol=a_rtol, adjoint_atol=a_atol, variant=_ADJOINT_METHODS[method])
    return GradientResult(
        run.loss, run.gradient, chosen, method, scheme, run.status, run.message, rtol, atol, a_rtol, a_atol,
        run.t_failure, {"forward": dict(run.forward), "backward": dict(run.backward)}, time.perf_counter() - start,
        run.y0_reconstruction_error, run.reconstruction_errors,
    )


_SYSTEMS: dict[tuple[int, Any, tuple[str, ...]], Any] = {}


def _adjoint_system_of(model: Model, loss: AuditLoss, plan: LossPlan, chosen: tuple[str, ...]) -> Any:
    """The (cached) exact adjoint system of the plan's loss (derived once per model, loss and parameters)."""
    from .derive import adjoint_system

    key = (id(model), loss, chosen)
    system = _SYSTEMS.get(key)
    if system is None or system.model is not model:
        system = adjoint_system(model, derived_loss(model, loss, plan.output_names or None), list(chosen))
        if len(_SYSTEMS) > 32:
            _SYSTEMS.clear()
        _SYSTEMS[key] = system
    return system


def _nominal_targets(model: Model, plan: LossPlan, system: Any, span: tuple[float, float], p_data: np.ndarray,
                     times: np.ndarray | None, scheme: str, rtol: float, atol: float) -> Any:
    """Output times and least-squares targets of a trajectory loss: a forward solve at the data parameters."""
    from scipy.integrate import solve_ivp

    from .integrate._adjoint import _kernels, scipy_method

    k = _kernels(system)
    y0 = k.initial_conditions(*k.pack(span[0], None, None, p_data, None))
    method = scipy_method(scheme)
    options: dict[str, Any] = {} if times is None else {"t_eval": times}
    if method in ("Radau", "BDF", "LSODA"):
        options["jac"] = lambda t, y: k.forward_jacobian(k.pack(t, y, None, p_data, None))[: k.n, : k.n]
    with np.errstate(all="ignore"):
        result = solve_ivp(lambda t, y: k.forward_rhs(*k.pack(t, y, None, p_data, None))[: k.n], span, y0,
                           method=method, rtol=rtol, atol=atol, **options)
    if result.status != 0 or not np.all(np.isfinite(result.y)):
        return GradientResult(None, None, tuple(p.name for p in system.parameters), "", scheme, "failed",
                              f"nominal solve at the data parameters: {result.message}", rtol, atol)
    grid = np.asarray(result.t, dtype=float)
    return grid, plan.outputs_of(grid, result.y.T, p_data)


def true_gradient(
    model: Model,
    loss: AuditLoss | None = None,
    *,
    p: Sequence[float] | Mapping[str, float] | None = None,
    t_span: tuple[float, float] | None = None,
    parameters: Sequence[str] | None = None,
    digits: int = 8,
) -> TrueGradient:
    """The true ``dL/dp`` with verified digits, from the audit's reference (:func:`symsens.reference`).

    For a pointwise loss ``sum_k (dl/dy)_k S*_k + (dl/dp)_k`` with the reference states ``y*`` and sensitivities
    ``S*`` (verified to ``digits``) at the data times; for an integral loss the sensitivity of the quadrature
    state.  ``error_bound`` propagates the reference's error bounds through the chain rule
    (:func:`symsens.audit._reference.reference_gradients`).

    A :class:`TrajectoryLoss` needs a fixed grid here (``grid="steps"`` belongs to a solver).

    Raises
    ------
    ValueError, TypeError
        As :func:`gradient`, and for ``digits`` outside 1..40.
    """
    import numbers

    from .audit._reference import reference_gradients

    if not (isinstance(digits, numbers.Integral) and not isinstance(digits, bool) and 1 <= int(digits) <= 40):
        raise ValueError(f"`digits` must be an integer in 1..40, got {digits!r}")
    loss, p_values, span, chosen, plan, p_data = _common(model, loss, p, t_span, parameters)
    if plan.steps_grid:
        raise ValueError("`loss`: a TrajectoryLoss on grid=\"steps\" has no solver-independent grid; give its grid "
                         "as times, e.g. TrajectoryLoss(grid=numpy.linspace(t0, t1, 101))")
    grid = np.array([span[1]]) if plan.kind == "integral" else np.asarray(plan.times, dtype=float)
    targets = plan.data if isinstance(loss, DataLoss) else None
    ref = reference_gradients(plan, span, p_values, p_data, [grid], [targets], int(digits))[0]
    return TrueGradient(np.asarray(ref.gradient, dtype=float), float(ref.loss), chosen,
                        np.asarray(ref.digits, dtype=float), None if ref.error_bound is None else
                        np.asarray(ref.error_bound, dtype=float), bool(ref.exact), bool(ref.verified), ref.how)


def objective(
    model: Model,
    loss: AuditLoss | None = None,
    *,
    parameters: Sequence[str] | None = None,
    p: Sequence[float] | Mapping[str, float] | None = None,
    **options: Any,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``fun(x) -> (L, dL/dp)`` for ``scipy.optimize.minimize(fun, x0, jac=True)``.

    ``x`` holds the values of ``parameters`` (in that order; all by default); the other parameters keep their
    values from ``p`` (default nominal).  ``options`` go to :func:`gradient` (``method``, ``rtol``, ...).  A failed
    run raises :class:`~symsens.IntegrationError` (an optimiser must not see a made-up number).
    """
    chosen = parameter_selection(model, parameters)
    base = parameter_values(model, p)
    index = [model.parameter_names.index(name) for name in chosen]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        values = base.copy()
        values[index] = np.asarray(x, dtype=float)
        result = gradient(model, loss, p=values, parameters=chosen, **options).check()
        assert result.loss is not None and result.gradient is not None
        return result.loss, result.gradient

    return fun
