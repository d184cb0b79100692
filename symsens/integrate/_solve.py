"""``symsens.solve``: one API over the compiled integrators and the pure NumPy/SciPy path."""

from __future__ import annotations

import math
from dataclasses import replace
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import (
    STATUS_NAMES, finite_vector, flag, optional_positive_number, output_times, parameter_selection, parameter_values,
    positive_number, step_count, time_span,
)
from ..model import Model
from ._solution import Solution, SolverStats

__all__ = ["solve", "SENSITIVITY_MODES"]

#: ``sensitivity=`` values: None (solution only), continuous forward sensitivities, discrete forward mode.
SENSITIVITY_MODES: tuple[str | None, ...] = (None, "forward", "discrete")


#: ``linear_solver=`` values (the compiled backend's implicit schemes).
LINEAR_SOLVERS: tuple[str, ...] = ("auto", "dense", "sparse")


#: Settings of the compiled backend's PI step-size controller (``solve(controller=...)``).
CONTROLLER_SETTINGS: tuple[str, ...] = ("safety", "factor_min", "factor_max", "beta1", "beta2")


def _controller_settings(controller: Any, defaults: dict[str, float]) -> dict[str, float]:
    """``defaults`` updated by ``controller``, checked: every value a finite number in its range.

    The step-size update is ``h_new = h * clamp(safety * err^-beta1 * err_prev^beta2, factor_min, factor_max)``
    after an accepted step and ``h * clamp(safety * err^(-1/q), factor_min, 1)`` after a rejected one, so
    ``0 < safety <= 1``, ``0 < factor_min < 1 < factor_max`` (a rejected step must shrink, an accepted one may
    grow), ``beta1 > 0`` (a larger error must give a smaller step) and ``beta2 >= 0``.
    """
    if controller is None:
        return dict(defaults)
    if not isinstance(controller, dict):
        raise TypeError(f"`controller` must be a dict of settings ({', '.join(CONTROLLER_SETTINGS)}), "
                        f"got {type(controller).__name__}")
    settings = dict(defaults)
    for key, value in controller.items():
        if key not in CONTROLLER_SETTINGS:
            raise ValueError(f"`controller`: unknown setting {key!r}; known: {', '.join(CONTROLLER_SETTINGS)}")
        if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
            raise TypeError(f"`controller`: {key!r} must be a number, got {type(value).__name__} {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"`controller`: {key!r} must be a number, got {type(value).__name__} {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"`controller`: {key!r} must be finite, got {value!r}")
        settings[key] = number
    ranges = {
        "safety": (0 < settings["safety"] <= 1, "in (0, 1]"),
        "factor_min": (0 < settings["factor_min"] < 1, "in (0, 1)"),
        "factor_max": (settings["factor_max"] > 1, "greater than 1"),
        "beta1": (settings["beta1"] > 0, "positive"),
        "beta2": (settings["beta2"] >= 0, "non-negative"),
    }
    for key in CONTROLLER_SETTINGS:
        ok, expected = ranges[key]
        if not ok and key in controller:
            raise ValueError(f"`controller`: {key!r} must be {expected}, got {controller[key]!r}")
    return settings


def _replayed_steps(replay_steps: Any, t0: float, t1: float) -> np.ndarray:
    """``replay_steps`` as a float array of positive finite step sizes that take t0 exactly to t1.

    The steps are summed as the integrator sums them (``t <- t + h``, in order, in double precision); every
    step but the last must end before t1, and the last must end on t1 up to the rounding of that sum (the
    integrator then lands it on t1 exactly).  Raises ValueError naming ``replay_steps``.
    """
    if isinstance(replay_steps, (str, bytes)) or isinstance(replay_steps, dict):
        raise TypeError(f"`replay_steps` must be a sequence of step sizes, got {type(replay_steps).__name__}")
    try:
        steps = np.array(replay_steps, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`replay_steps` must be a sequence of step sizes (numbers), got {replay_steps!r}") from None
    if steps.ndim != 1:
        raise ValueError(f"`replay_steps` must be a 1-D sequence of step sizes, got an array of shape {steps.shape}")
    if steps.size == 0:
        raise ValueError("`replay_steps` is empty: give at least one step size")
    if not np.all(np.isfinite(steps)):
        bad = int(np.flatnonzero(~np.isfinite(steps))[0])
        raise ValueError(f"`replay_steps` contains a non-finite step size ({steps[bad]}) at index {bad}")
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(f"`replay_steps` must be positive step sizes (t0 < t1), got {steps[bad]} at index {bad}")
    # Sequential double-precision sums from t0, exactly the integrator's t after each step (ufunc accumulate
    # adds in order; it does not use pairwise summation).
    ends = np.add.accumulate(np.concatenate(([t0], steps)))[1:]
    early = np.flatnonzero(ends[:-1] >= t1)
    if early.size:
        k = int(early[0])
        raise ValueError(f"`replay_steps` reach t1 = {t1:.17g} after {k + 1} of {steps.size} steps (they sum to "
                         f"{float(ends[-1]) - t0:.17g}, but t_span needs t1 - t0 = {t1 - t0:.17g})")
    # Rounding of n sequential additions: at most about n half-ulps of the largest |t| on the way.
    slack = 4 * np.finfo(float).eps * steps.size * max(abs(t0), abs(t1))
    if abs(ends[-1] - t1) > slack:
        raise ValueError(f"`replay_steps` must cover t_span exactly: they sum to {float(ends[-1]) - t0:.17g}, but "
                         f"t_span needs t1 - t0 = {t1 - t0:.17g}")
    return steps


def _sensitivity_label(sensitivity: str | None, in_norm: bool, differentiate_steps: bool) -> str | None:
    if sensitivity == "forward":
        return "forward-error-control" if in_norm else "forward"
    if sensitivity == "discrete":
        label = "discrete"
        if in_norm:
            label += "-tangent-norm"
        if differentiate_steps:
            label += "-differentiated-steps"
        return label
    return None


def solve(
    model: Model,
    t_span: tuple[float, float] | None = None,
    *,
    p: Sequence[float] | np.ndarray | dict[str, float] | None = None,
    y0: Sequence[float] | np.ndarray | None = None,
    method: str = "tsit5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    t_eval: Sequence[float] | np.ndarray | None = None,
    sensitivity: str | None = None,
    parameters: Sequence[str] | None = None,
    sensitivity_in_norm: bool = False,
    differentiate_steps: bool = False,
    first_step: float | None = None,
    max_step: float | None = None,
    fixed_step: float | None = None,
    replay_steps: Sequence[float] | np.ndarray | None = None,
    step_onto_outputs: bool = False,
    max_steps: int = 100_000,
    backend: str = "compiled",
    controller: dict[str, float] | None = None,
    linear_solver: str = "auto",
) -> Solution:
    """Integrate ``model`` over ``t_span`` and, optionally, its parameter sensitivities.

    Parameters
    ----------
    model : Model
    t_span : (t0, t1), optional
        Defaults to ``model.t_span``.
    p : sequence of P floats or {name: value}, optional
        Parameter values (all of them, in the model's order, or a partial mapping over the nominal values),
        finite numbers.
    y0 : sequence of n floats, optional
        Initial state; by default the model's initial conditions at ``p`` (whose derivative ``dy0/dp`` then
        starts the sensitivities; an explicit ``y0`` has zero derivative).
    method : str
        A catalogue scheme with a compiled integrator (e.g. ``"tsit5"``, ``"dopri5"``, ``"verner7"``) or, with
        ``backend="numpy"``, one of SciPy's (``"radau"``, ``"bdf"``, ``"dopri5"``, ``"lsoda"``).
    rtol, atol : float
        Tolerances of the weighted RMS error norm ``sqrt(mean((err_i / (atol + rtol max(|y_i|, |y_new_i|)))^2)) <= 1``:
        positive finite numbers, one each for all states (a per-state ``atol`` sequence is refused, TypeError).
    t_eval : sequence of floats, optional
        Output times inside ``t_span``, non-decreasing, 1-D (a 2-D array is refused, not flattened); by default
        the accepted step times.
    sensitivity : None, "forward" or "discrete"
        ``"forward"``: continuous forward sensitivities (integrate ``(y, S)`` with ``S' = J S + F_p``).
        ``"discrete"``: the exact derivative of the numerical solution the solver produced — what
        forward-mode automatic differentiation through the solver returns.
    parameters : sequence of str, optional
        The parameters to differentiate with respect to (all by default), in gradient order.
    sensitivity_in_norm : bool
        Forward mode: the sensitivities enter the error norm (CVODES' ``errconS``).  Discrete mode: the
        controller's norm sees the tangents (dual partials), as ForwardDiff through OrdinaryDiffEq does.
    differentiate_steps : bool
        Discrete mode only: the step sizes are differentiated too (AD through the controller) instead of
        held constant.
    first_step, max_step : float, optional
    fixed_step : float, optional
        Take constant steps of this size with no error control (the last step lands on ``t1``).
    replay_steps : sequence of floats, optional
        Take exactly these step sizes (e.g. ``solution.stats.step_sizes`` of an earlier solve): the frozen
        step sequence finite differences of a discrete derivative must use.  They must be positive and finite
        and take ``t0`` to ``t1``: every step but the last ends before ``t1``, and their sum equals ``t1 - t0``
        up to the rounding of the sum (the last step then lands on ``t1`` exactly); otherwise ValueError.
    step_onto_outputs : bool
        Steps end exactly on every ``t_eval`` time (no interpolation for outputs).
    max_steps : int
        A whole number in 1 .. 2**62: the attempted steps (accepted and rejected) the compiled backend may take,
        the accepted steps of the NumPy backend; then the solve fails with status ``"too many steps"``.
    backend : "compiled" or "numpy"
        ``fixed_step``, ``replay_steps``, ``differentiate_steps``, ``step_onto_outputs`` and ``controller``
        need the compiled backend (ValueError naming the option with ``"numpy"``).
    controller : dict, optional
        Overrides of the PI controller: ``safety`` in (0, 1], ``factor_min`` in (0, 1), ``factor_max`` > 1,
        ``beta1`` > 0, ``beta2`` >= 0 (finite numbers; ValueError naming the setting otherwise).
    linear_solver : "auto", "dense" or "sparse"
        Linear algebra of the implicit schemes' Newton and Rosenbrock systems: dense LU with partial pivoting, or
        an LU over the symbolic sparsity pattern of ``I + J`` (fill-reducing order and fill computed once per
        model; no pivoting, a tiny pivot fails the Newton iteration rather than giving a wrong answer).
        ``"auto"`` takes the sparse one for models with at least 16 states whose LU, fill included, has at most
        30% of the dense entries (the measured break-even, docs/solvers.md "Large models").  Explicit schemes have
        no linear systems and ignore it; the NumPy backend accepts ``"auto"`` only.

    Returns
    -------
    Solution
        Check ``solution.status`` (or call ``solution.check()``): a failed integration is reported with
        its cause and time, never silently, and with the values it reached up to then (see
        :class:`Solution`).  Any numerical failure inside either backend (inf or nan, a step size underflow,
        a failed linear solve) is such a failed Solution, never an exception.

    Raises
    ------
    ValueError, TypeError
        For bad arguments (TypeError: not of the expected kind, e.g. a string for a number), naming the
        argument and what was expected.
    """
    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    if not isinstance(backend, str) or backend not in ("compiled", "numpy"):
        raise ValueError(f"`backend` must be \"compiled\" or \"numpy\", got {backend!r}")
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a method name (str), got {type(method).__name__} {method!r}")
    t0, t1 = time_span(t_span, model.t_span)

    p_values = parameter_values(model, p)
    y0_values = None if y0 is None else finite_vector(y0, model.n_states, "y0")
    rtol = positive_number(rtol, "rtol")
    atol = positive_number(atol, "atol")
    if not (sensitivity is None or isinstance(sensitivity, str)) or sensitivity not in SENSITIVITY_MODES:
        raise ValueError(f"`sensitivity` must be one of {SENSITIVITY_MODES}, got {sensitivity!r}")
    sensitivity_in_norm = flag(sensitivity_in_norm, "sensitivity_in_norm")
    differentiate_steps = flag(differentiate_steps, "differentiate_steps")
    step_onto_outputs = flag(step_onto_outputs, "step_onto_outputs")
    if differentiate_steps and sensitivity != "discrete":
        raise ValueError("`differentiate_steps` applies to sensitivity=\"discrete\" only")
    chosen = parameter_selection(model, parameters)
    t_eval_values = None if t_eval is None else output_times(t_eval, "t_eval", t0, t1)
    max_steps = step_count(max_steps, "max_steps")
    first_step = optional_positive_number(first_step, "first_step")
    max_step = optional_positive_number(max_step, "max_step")
    fixed_step = optional_positive_number(fixed_step, "fixed_step")
    if fixed_step is not None and replay_steps is not None:
        raise ValueError("give `fixed_step` or `replay_steps`, not both")
    replay = None if replay_steps is None else _replayed_steps(replay_steps, t0, t1)
    if not isinstance(linear_solver, str) or linear_solver not in LINEAR_SOLVERS:
        raise ValueError(f"`linear_solver` must be one of {', '.join(map(repr, LINEAR_SOLVERS))}, got {linear_solver!r}")
    if controller is not None and not isinstance(controller, dict):
        raise TypeError(f"`controller` must be a dict of settings ({', '.join(CONTROLLER_SETTINGS)}), "
                        f"got {type(controller).__name__}")

    if backend == "numpy":
        from ._numpy_backend import solve_numpy

        # Options of the compiled integrators only: refused by name rather than ignored.
        compiled_only = {
            "fixed_step": fixed_step is not None, "replay_steps": replay is not None,
            "differentiate_steps": differentiate_steps, "step_onto_outputs": step_onto_outputs,
            "controller": bool(controller), "linear_solver": linear_solver != "auto",
        }
        for name, given in compiled_only.items():
            if given:
                raise ValueError(f"`{name}` needs backend=\"compiled\" (SciPy's integrators have no such option)")
        return _with_outputs(solve_numpy(
            model, (t0, t1), p=p_values, y0=y0_values, method=method, rtol=rtol, atol=atol, t_eval=t_eval_values,
            sensitivity=sensitivity, parameters=chosen, sensitivity_in_norm=sensitivity_in_norm,
            first_step=first_step, max_step=max_step, max_steps=max_steps,
        ), model, p_values)
    return _solve_compiled(
        model, t0, t1, p_values, y0_values, method, rtol, atol, t_eval_values, sensitivity, chosen,
        sensitivity_in_norm, differentiate_steps, first_step, max_step, fixed_step, replay,
        step_onto_outputs, max_steps, controller, linear_solver,
    )


class _OutputFunction:
    """``g(t, y, p)`` of a model's ``[outputs]`` at fixed parameters, built on first use (picklable)."""

    def __init__(self, model: Model, p: np.ndarray) -> None:
        self.model = model
        self.p = np.asarray(p, dtype=float).copy()
        self._function: Any = None

    def __call__(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        from ..derive._numeric import numpy_function

        m = self.model
        if self._function is None:
            self._function = numpy_function([expr for _, expr in m.outputs], [m.time, *m.states, *m.parameters])
        t = np.asarray(t, dtype=float)
        y = np.asarray(y, dtype=float).reshape(len(t), -1)
        args = [t, *(y[:, i] for i in range(m.n_states)), *(np.full(len(t), v) for v in self.p)]
        return self._function(*args)

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "p": self.p, "_function": None}


class _CompiledOutputs:
    """``g(t, y, p)`` of a model's outputs at fixed parameters by the routine compiled into the solver library
    (no SymPy); pickled, it becomes an :class:`_OutputFunction` (a loaded library does not travel)."""

    def __init__(self, model: Model, p: np.ndarray, solver: Any) -> None:
        self.model = model
        self.p = np.asarray(p, dtype=float).copy()
        self.solver = solver

    def __call__(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.solver.outputs(t, y, self.p)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_OutputFunction, (self.model, self.p))


def _with_outputs(solution: Solution, model: Model, p: np.ndarray, solver: Any = None) -> Solution:
    """``solution`` able to evaluate the model's outputs (lazily: most solves never ask for them), by the
    compiled ``solver``'s routine when there is one, else from the expressions."""
    if not model.output_names:  # the names, not the expressions: no SymPy for a model made from its summary
        return solution
    function = _OutputFunction(model, p) if solver is None else _CompiledOutputs(model, p, solver)
    return replace(solution, output_function=function, output_names=tuple(model.output_names))


def _solve_compiled(
    model: Model, t0: float, t1: float, p: np.ndarray, y0: np.ndarray | None, method: str, rtol: float, atol: float,
    t_eval: np.ndarray | None, sensitivity: str | None, parameters: tuple[str, ...], in_norm: bool,
    differentiate_steps: bool, first_step: float | None, max_step: float | None, fixed_step: float | None,
    replay_steps: np.ndarray | None, step_onto_outputs: bool, max_steps: int, controller: dict[str, Any] | None,
    linear_solver: str = "auto",
) -> Solution:
    import ctypes

    from ._compiled import (
        MODE_DISCRETE, MODE_DISCRETE_STEPS, MODE_FORWARD, MODE_PLAIN, OptionsStruct, compiled_solver, method_spec,
        plain_solver,
    )

    sens_params = parameters if sensitivity is not None else ()
    # Refuse impossible requests before paying for code generation and compilation.
    spec = method_spec(method)
    if spec.error_order is None and fixed_step is None and replay_steps is None:
        raise ValueError(f"method {method!r} has no embedded error estimate: give `fixed_step` (or `replay_steps`)")
    q = spec.error_order or spec.order
    # PI controller defaults for explicit pairs as in OrdinaryDiffEq (beta1 = 7/(10 q), beta2 = 2/(5 q)).
    settings = _controller_settings(
        controller, {"safety": 0.9, "factor_min": 0.2, "factor_max": 10.0, "beta1": 0.7 / q, "beta2": 0.4 / q}
    )
    # One library per (model, parameters, scheme) runs every mode; a plain solve uses one already built or
    # loaded when there is one (the plain program is the same in all of them), else the plain-only library.
    if sensitivity is None:
        solver = plain_solver(model, parameters, method, linear_solver)
    else:
        solver = compiled_solver(model, sens_params, method, linear_solver)
    replay = None if replay_steps is None else np.ascontiguousarray(replay_steps, dtype=float)
    options = OptionsStruct(
        rtol=rtol, atol=atol,
        first_step=float(fixed_step if fixed_step is not None else (first_step or 0.0)),
        max_step=float(max_step or 0.0), min_step=0.0, max_steps=int(max_steps),
        tangents_in_norm=int(bool(in_norm)), differentiate_steps=int(bool(differentiate_steps)),
        fixed_step=int(fixed_step is not None), step_onto_outputs=int(bool(step_onto_outputs)),
        n_replay=0 if replay is None else int(replay.size),
        replay_steps=None if replay is None else replay.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        record_steps=1, **settings,
    )
    mode = {None: MODE_PLAIN, "forward": MODE_FORWARD}.get(sensitivity)
    if sensitivity == "discrete":
        mode = MODE_DISCRETE_STEPS if differentiate_steps else MODE_DISCRETE
    if t_eval is not None:
        outputs = t_eval
        status, y, sens, step_times, step_sizes, stats = solver(mode, p, y0, None, t0, t1, outputs, options)
    else:
        # The outputs are t0 and the accepted step ends, recorded as they are taken.  The buffer starts small;
        # a longer run reports its step count and is repeated once with room for all (the same steps:
        # the solver is deterministic).
        options.outputs_at_steps = 1
        options.step_onto_outputs = 0
        capacity = min(int(max_steps) + 1, 4096)
        while True:
            status, y, sens, step_times, step_sizes, stats = solver(mode, p, y0, None, t0, t1, np.zeros(capacity), options)
            if len(step_times) <= capacity:
                break
            capacity = len(step_times)
        outputs = step_times
    # The integrator writes the outputs it reaches in order and counts them: a failed run returns those rows
    # (y(t0) always, as t0 is reached before any step), never a row it did not reach.
    reached = min(int(stats.n_outputs), len(outputs))
    outputs, y = outputs[:reached], y[:reached]
    sens = sens[:reached] if sens is not None else None
    status_name = STATUS_NAMES.get(status, f"status {status}")
    message = "integration successful" if status == 0 else f"{status_name} at t = {stats.t_failure:.17g}"
    return _with_outputs(Solution(
        t=outputs,
        y=y,
        sensitivities=sens,
        parameters=sens_params,
        method=method,
        sensitivity=_sensitivity_label(sensitivity, in_norm, differentiate_steps),
        backend="compiled",
        status=status_name,
        message=message,
        stats=SolverStats(
            accepted_steps=int(stats.accepted), rejected_steps=int(stats.rejected), rhs_evaluations=int(stats.nfev),
            jacobian_evaluations=int(stats.njev), lu_decompositions=int(stats.nlu),
            newton_iterations=int(stats.newton_iterations), step_times=step_times, step_sizes=step_sizes,
        ),
        options={"rtol": rtol, "atol": atol, "max_steps": max_steps, "fixed_step": fixed_step, **settings},
        t_failure=None if status == 0 else float(stats.t_failure),
        state_names=model.state_names,
    ), model, p, solver)
