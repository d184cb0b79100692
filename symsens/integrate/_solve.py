"""``symsens.solve``: one API over the compiled integrators and the pure NumPy/SciPy path."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import STATUS_NAMES, output_times, time_span
from .._errors import ModelError
from ..model import Model
from ._solution import Solution, SolverStats

__all__ = ["solve", "SENSITIVITY_MODES"]

#: ``sensitivity=`` values: None (solution only), continuous forward sensitivities, discrete forward mode.
SENSITIVITY_MODES: tuple[str | None, ...] = (None, "forward", "discrete")


def _finite_vector(values: Any, length: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.shape != (length,):
        raise ValueError(f"`{name}` must have length {length}, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"`{name}` contains a non-finite value ({array[bad]}) at index {bad}")
    return array


def _positive(value: Any, name: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"`{name}` must be a positive finite number, got {value!r}")
    return number


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
) -> Solution:
    """Integrate ``model`` over ``t_span`` and, optionally, its parameter sensitivities.

    Parameters
    ----------
    model : Model
    t_span : (t0, t1), optional
        Defaults to ``model.t_span``.
    p : sequence of P floats or {name: value}, optional
        Parameter values (all of them, in the model's order, or a partial mapping over the nominal values).
    y0 : sequence of n floats, optional
        Initial state; by default the model's initial conditions at ``p`` (whose derivative ``dy0/dp`` then
        starts the sensitivities; an explicit ``y0`` has zero derivative).
    method : str
        A catalogue scheme with a compiled integrator (e.g. ``"tsit5"``, ``"dopri5"``, ``"verner7"``) or, with
        ``backend="numpy"``, one of SciPy's (``"radau"``, ``"bdf"``, ``"dopri5"``, ``"lsoda"``).
    rtol, atol : float
        Tolerances of the weighted RMS error norm ``sqrt(mean((err_i / (atol + rtol max(|y_i|, |y_new_i|)))^2)) <= 1``.
    t_eval : sequence of floats, optional
        Output times inside ``t_span``, increasing; by default the accepted step times.
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
        step sequence finite differences of a discrete derivative must use.
    step_onto_outputs : bool
        Steps end exactly on every ``t_eval`` time (no interpolation for outputs).
    max_steps : int
    backend : "compiled" or "numpy"
    controller : dict, optional
        Overrides of the PI controller: ``safety``, ``factor_min``, ``factor_max``, ``beta1``, ``beta2``.

    Returns
    -------
    Solution
        Check ``solution.status`` (or call ``solution.check()``): a failed integration is reported with
        its cause and time, never silently.

    Raises
    ------
    ValueError
        For bad arguments, naming the argument.
    """
    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    t0, t1 = time_span(t_span, model.t_span)

    if p is None:
        p_values = np.array(model.parameter_values, dtype=float)
    elif isinstance(p, dict):
        try:
            p_values = np.array(model.with_parameter_values(p).parameter_values, dtype=float)
        except ModelError as error:
            raise ValueError(f"`p`: {error}") from None
    else:
        p_values = _finite_vector(p, model.n_parameters, "p")
    y0_values = None if y0 is None else _finite_vector(y0, model.n_states, "y0")
    rtol = _positive(rtol, "rtol")
    atol = _positive(atol, "atol")
    if sensitivity not in SENSITIVITY_MODES:
        raise ValueError(f"`sensitivity` must be one of {SENSITIVITY_MODES}, got {sensitivity!r}")
    if differentiate_steps and sensitivity != "discrete":
        raise ValueError("`differentiate_steps` applies to sensitivity=\"discrete\" only")
    if parameters is None:
        chosen = tuple(model.parameter_names)
    else:
        if isinstance(parameters, str):
            raise ValueError("`parameters` must be a sequence of parameter names, not a string")
        chosen = tuple(parameters)
        for name in chosen:
            if name not in model.parameter_names:
                import difflib

                close = difflib.get_close_matches(name, model.parameter_names, n=3)
                hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                raise ValueError(f"`parameters`: unknown parameter {name!r}{hint}")
        if len(set(chosen)) != len(chosen):
            raise ValueError("`parameters` lists a parameter twice")
    t_eval_values = None if t_eval is None else output_times(t_eval, "t_eval", t0, t1)
    if max_steps < 1:
        raise ValueError(f"`max_steps` must be at least 1, got {max_steps}")
    for name, value in (("first_step", first_step), ("max_step", max_step), ("fixed_step", fixed_step)):
        if value is not None:
            _positive(value, name)
    if fixed_step is not None and replay_steps is not None:
        raise ValueError("give `fixed_step` or `replay_steps`, not both")

    if backend == "numpy":
        from ._numpy_backend import solve_numpy

        if fixed_step is not None or replay_steps is not None or differentiate_steps:
            raise ValueError("fixed_step, replay_steps and differentiate_steps need backend=\"compiled\"")
        return solve_numpy(
            model, (t0, t1), p=p_values, y0=y0_values, method=method, rtol=rtol, atol=atol, t_eval=t_eval_values,
            sensitivity=sensitivity, parameters=chosen, sensitivity_in_norm=sensitivity_in_norm,
            first_step=first_step, max_step=max_step, max_steps=max_steps,
        )
    if backend != "compiled":
        raise ValueError(f"`backend` must be \"compiled\" or \"numpy\", got {backend!r}")
    return _solve_compiled(
        model, t0, t1, p_values, y0_values, method, rtol, atol, t_eval_values, sensitivity, chosen,
        sensitivity_in_norm, differentiate_steps, first_step, max_step, fixed_step, replay_steps,
        step_onto_outputs, max_steps, controller or {},
    )


def _solve_compiled(
    model: Model, t0: float, t1: float, p: np.ndarray, y0: np.ndarray | None, method: str, rtol: float, atol: float,
    t_eval: np.ndarray | None, sensitivity: str | None, parameters: tuple[str, ...], in_norm: bool,
    differentiate_steps: bool, first_step: float | None, max_step: float | None, fixed_step: float | None,
    replay_steps: Any, step_onto_outputs: bool, max_steps: int, controller: dict[str, float],
) -> Solution:
    import ctypes

    from ._compiled import (
        MODE_DISCRETE, MODE_DISCRETE_STEPS, MODE_FORWARD, MODE_PLAIN, OptionsStruct, compiled_solver, method_spec,
    )

    sens_params = parameters if sensitivity is not None else ()
    # Refuse impossible requests before paying for code generation and compilation.
    spec = method_spec(method)
    if spec.error_order is None and fixed_step is None and replay_steps is None:
        raise ValueError(f"method {method!r} has no embedded error estimate: give `fixed_step` (or `replay_steps`)")
    solver = compiled_solver(model, sens_params, method)
    q = spec.error_order or spec.order
    # PI controller defaults for explicit pairs as in OrdinaryDiffEq (beta1 = 7/(10 q), beta2 = 2/(5 q)).
    settings = {"safety": 0.9, "factor_min": 0.2, "factor_max": 10.0, "beta1": 0.7 / q, "beta2": 0.4 / q}
    unknown = set(controller) - set(settings)
    if unknown:
        raise ValueError(f"`controller`: unknown setting {sorted(unknown)[0]!r}; known: {', '.join(settings)}")
    settings.update({k: float(v) for k, v in controller.items()})
    replay = None
    if replay_steps is not None:
        replay = np.ascontiguousarray(replay_steps, dtype=float).ravel()
        if replay.size == 0 or not np.all(np.isfinite(replay)) or np.any(replay <= 0):
            raise ValueError("`replay_steps` must be a non-empty sequence of positive finite step sizes")
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
        y = y[: len(outputs)]
        sens = sens[: len(outputs)] if sens is not None else None
    status_name = STATUS_NAMES.get(status, f"status {status}")
    message = "integration successful" if status == 0 else f"{status_name} at t = {stats.t_failure:.17g}"
    reached = np.isfinite(y[:, 0]) if len(outputs) else np.array([], dtype=bool)
    return Solution(
        t=outputs if status == 0 else outputs[reached],
        y=y if status == 0 else y[reached],
        sensitivities=(sens if status == 0 else sens[reached]) if sens is not None else None,
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
    )
