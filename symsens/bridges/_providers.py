"""Gradient providers: a least-squares loss and its parameter gradient computed by another tool.

Each provider computes, with the tool's own solver at the given tolerances,

    L(p) = sum_k sum_i w_i (g_i(t_k, y(t_k; p), p) - d_ki)^2,        dL/dp_j for the plan's parameters,

the loss of :meth:`symsens.audit._losses.LossPlan.value_and_gradient` (the expression is the one
:func:`symsens.derive.least_squares` builds for the plan: outputs ``g_i`` are states or model outputs, weights
``w_i`` those of a :class:`~symsens.audit.DataLoss`, 1 otherwise), walked into the tool's operations.  How the
derivative is taken is the tool's:

==============================  ====================================================================================
``diffrax-forward``             ``jax.jacfwd`` through ``diffrax.diffeqsolve`` (``ForwardMode``): forward-mode AD
                                through the solver's steps; the PID controller's norm sees values only and its step
                                factor is wrapped in ``stop_gradient`` (steps held)
``diffrax-checkpoint``          ``jax.grad`` through the same solve (``RecursiveCheckpointAdjoint``): the discrete
                                adjoint of the solver's steps
``diffrax-backsolve``           ``jax.grad`` with ``BacksolveAdjoint``: the continuous adjoint, the state re-integrated
                                backwards with it (Chen et al. 2018)
``cvodes-forward``              CasADi's CVODES integrator, forward sensitivities (``jtimes`` forward), errors of the
                                sensitivities in the error test (``fsens_err_con`` on)
``cvodes-forward-noerrcon``     the same with ``fsens_err_con`` off; CasADi 3.6+ integrates forward sensitivities as
                                states of an augmented DAE, so they stay in the error test and this equals
                                ``cvodes-forward`` (measured: identical to the last bit)
``cvodes-adjoint``              CVODES's adjoint (reverse mode of the CasADi integrator, ``jtimes`` transposed)
``torchdiffeq``                 autograd through ``torchdiffeq.odeint`` (dopri5): the discrete adjoint of its steps
                                (step factors held; the initial step selection, and so every step size, is
                                differentiated)
``torchdiffeq-adjoint``         ``torchdiffeq.odeint_adjoint`` (dopri5): the continuous adjoint, backsolve
``scipy``                       ``solve_ivp`` (LSODA by default, or Radau) on ``(y, S)`` with ``S' = J S + F_p``,
                                exact symbolic ``J`` and ``F_p``: forward sensitivities with error control on
==============================  ====================================================================================

Every tool runs in float64.  A run that fails (too many steps, step size underflow, non-finite values) raises
:class:`~symsens.IntegrationError` naming the tool and what its solver said.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .._errors import IntegrationError
from ..model import Model

__all__ = ["TOOLS", "ToolGradient", "gradient_provider", "DIFFRAX_SOLVERS", "SCIPY_METHODS", "MAX_STEPS"]

TOOLS: tuple[str, ...] = ("diffrax-forward", "diffrax-checkpoint", "diffrax-backsolve", "cvodes-forward",
                          "cvodes-forward-noerrcon", "cvodes-adjoint", "torchdiffeq", "torchdiffeq-adjoint", "scipy")

#: diffrax solvers a provider may run (``solver=``): name -> (diffrax class name, what ``.solver`` says).
DIFFRAX_SOLVERS: dict[str, str] = {
    "tsit5": "Tsit5", "dopri5": "Dopri5", "dopri8": "Dopri8", "heun": "Heun", "bosh3": "Bosh3",
    "kvaerno3": "Kvaerno3", "kvaerno4": "Kvaerno4", "kvaerno5": "Kvaerno5", "kencarp4": "KenCarp4",
    "kencarp5": "KenCarp5",
}
#: SciPy ``solve_ivp`` methods of the ``scipy`` provider.
SCIPY_METHODS: tuple[str, ...] = ("LSODA", "Radau", "BDF", "RK45", "DOP853")
#: Step limit of every tool (Hodgkin–Huxley over 100 ms at rtol 1e-10 takes about 3e4 explicit steps).
MAX_STEPS = 1_000_000


@dataclass(frozen=True, eq=False)
class ToolGradient:
    """``(L, dL/dp)`` of one loss by one tool: call with every model parameter's value and the tolerances.

    Attributes
    ----------
    tool : str
        One of :data:`TOOLS`.
    solver : str
        What ran, e.g. ``"diffrax Tsit5 + PIDController"`` or ``"CVODES BDF (CasADi), errcon on"``.
    parameters : tuple of str
        The gradient's parameters, in its order (the plan's).
    """

    tool: str
    solver: str
    parameters: tuple[str, ...]
    _run: Callable[[np.ndarray, float, float], tuple[float, np.ndarray]] = field(repr=False)
    _n_parameters: int = field(repr=False, default=0)

    def __call__(self, p: np.ndarray, rtol: float, atol: float) -> tuple[float, np.ndarray]:
        """``(L(p), dL/dp)`` over :attr:`parameters`; ``p`` holds every model parameter in model order."""
        values = np.asarray(p, dtype=float).reshape(-1)
        if values.shape != (self._n_parameters,):
            raise ValueError(f"{self.tool}: `p` must hold all {self._n_parameters} model parameters, got "
                             f"{values.size} values")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{self.tool}: `p` contains NaN or infinite values")
        for name, value in (("rtol", rtol), ("atol", atol)):
            if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{self.tool}: `{name}` must be a positive finite number, got {value!r}")
        value, gradient = self._run(values, float(rtol), float(atol))
        gradient = np.asarray(gradient, dtype=float).reshape(-1)
        if not (math.isfinite(value) and np.all(np.isfinite(gradient))):
            raise IntegrationError(f"{self.tool} ({self.solver}): non-finite loss or gradient (L = {value!r}, "
                                   f"gradient {gradient.tolist()!r}): the solve diverged", status="non-finite values")
        return float(value), gradient


# ---- the loss, made concrete ------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Problem:
    """What every provider needs: model, times, loss expression, parameter indices, targets or how to make them."""

    model: Model
    parameters: tuple[str, ...]
    index: np.ndarray                 # positions of the gradient's parameters among the model's
    t0: float
    t1: float
    times: np.ndarray                 # K output times, increasing, inside [t0, t1]
    output_names: tuple[str, ...]
    loss: sp.Expr                     # l(t, y, p, d), summed over the output times
    data_symbols: tuple[sp.Symbol, ...]
    targets: np.ndarray | None        # K x m, or None: the tool's own solve at p_data
    p_data: np.ndarray | None
    _targets: dict[tuple[float, float], np.ndarray] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def values(self, backend_index: Callable[[Any, int], Any], t: Any, y: Any, p: Any, d: Any) -> dict[sp.Symbol, Any]:
        m = self.model
        values: dict[sp.Symbol, Any] = {m.time: t}
        values.update({s: backend_index(y, i) for i, s in enumerate(m.states)})
        values.update({s: backend_index(p, j) for j, s in enumerate(m.parameters)})
        values.update({s: backend_index(d, i) for i, s in enumerate(self.data_symbols)})
        return values

    def targets_for(self, rtol: float, atol: float, outputs: Callable[[np.ndarray, float, float], np.ndarray]) -> np.ndarray:
        """The given targets, or the tool's own outputs at the data parameters at these tolerances (cached)."""
        if self.targets is not None:
            return self.targets
        key = (rtol, atol)
        with self._lock:
            found = self._targets.get(key)
        if found is None:
            assert self.p_data is not None
            found = np.asarray(outputs(self.p_data, rtol, atol), dtype=float)
            if not np.all(np.isfinite(found)):
                raise IntegrationError("the solve at the data parameters (the loss's targets) gave non-finite values",
                                       status="non-finite values")
            with self._lock:
                self._targets[key] = found
        return found


def _problem(model: Model, plan: Any, times: Any, targets: Any, t_span: Any) -> _Problem:
    from ..audit._losses import DataLoss, TrajectoryLoss
    from ..derive import least_squares

    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    if plan.kind != "pointwise" or not isinstance(plan.loss, (TrajectoryLoss, DataLoss)):
        raise ValueError(f"tool gradients cover pointwise least-squares losses (TrajectoryLoss, DataLoss); "
                         f"this loss is {type(plan.loss).__name__} ({plan.kind})")
    if plan.model is not model and plan.model.name != model.name:
        raise ValueError(f"the loss plan is for model {plan.model.name!r}, not {model.name!r}")
    t0, t1 = (float(v) for v in t_span)
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise ValueError(f"`t_span` must be finite with t1 > t0, got {t_span!r}")
    if times is None:
        times = plan.times
    if times is None:
        raise ValueError("a TrajectoryLoss on grid=\"steps\" has no fixed output times: pass `times`")
    grid = np.asarray(times, dtype=float).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError("`times` must be a non-empty array of finite times")
    if np.any(np.diff(grid) <= 0):
        raise ValueError("`times` must be strictly increasing")
    if grid[0] < t0 or grid[-1] > t1:
        raise ValueError(f"`times` must lie inside t_span [{t0}, {t1}], got [{grid[0]}, {grid[-1]}]")
    names = tuple(plan.output_names)
    m = len(names)
    given: np.ndarray | None = None
    if targets is not None:
        given = np.asarray(targets, dtype=float)
        if given.ndim == 1 and m == 1:
            given = given[:, None]
        if given.shape != (grid.size, m):
            raise ValueError(f"`targets` must have shape ({grid.size}, {m}) (times x {', '.join(names)}), "
                             f"got {given.shape}")
        if not np.all(np.isfinite(given)):
            raise ValueError("`targets` contains NaN or infinite values")
    elif isinstance(plan.loss, DataLoss):
        given = np.asarray(plan.data, dtype=float).reshape(grid.size, m) if plan.data is not None else None
        if given is None or given.shape[0] != grid.size:
            raise ValueError("a DataLoss's observations must be at `times`")
    p_data = None
    if given is None:
        p_data = np.asarray(model.parameter_values, dtype=float).copy()
        for name, value in plan.loss.data_parameters or ():
            p_data[model.parameter_names.index(name)] = float(value)
    weights = plan.loss.weights if isinstance(plan.loss, DataLoss) else None
    derived = least_squares(model, list(names), weights=weights)
    index = np.array([model.parameter_names.index(name) for name in plan.parameters], dtype=int)
    return _Problem(model, tuple(plan.parameters), index, t0, t1, grid, names, derived.expression,
                    tuple(derived.data_symbols), given, p_data)


def _failure(tool: str, solver: str, message: str, status: str = "failed") -> IntegrationError:
    return IntegrationError(f"{tool} ({solver}): {message}", status=status)


# ---- diffrax ------------------------------------------------------------------------------------------------------

def _diffrax(tool: str, problem: _Problem, solver: str | None) -> ToolGradient:
    from ._exports import jax_backend, to_jax
    from ._imports import require
    from ._walk import translate

    export = to_jax(problem.model)  # turns on float64
    jax = require("jax", f"tool {tool!r}")
    jnp = require("jax.numpy", f"tool {tool!r}")
    diffrax = require("diffrax", f"tool {tool!r}")
    key = (solver or "tsit5").lower()
    if key not in DIFFRAX_SOLVERS:
        raise ValueError(f"{tool}: unknown diffrax solver {solver!r}; known: {', '.join(DIFFRAX_SOLVERS)}")
    solver_object = getattr(diffrax, DIFFRAX_SOLVERS[key])()
    adjoint = {"diffrax-forward": diffrax.ForwardMode(), "diffrax-checkpoint": diffrax.RecursiveCheckpointAdjoint(),
               "diffrax-backsolve": diffrax.BacksolveAdjoint()}[tool]
    backend = jax_backend()
    term = diffrax.ODETerm(lambda t, y, p: export.rhs(t, y, p))
    ts = jnp.asarray(problem.times)
    index = jnp.asarray(problem.index)

    def solve(p: Any, rtol: Any, atol: Any) -> Any:
        return diffrax.diffeqsolve(
            term, solver_object, problem.t0, problem.t1, None, export.initial_conditions(p), args=p,
            saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=MAX_STEPS, adjoint=adjoint, throw=False,
        )

    def take(array: Any, i: int) -> Any:
        return array[..., i]

    def loss(q: Any, p_base: Any, targets: Any, rtol: Any, atol: Any) -> Any:
        p = p_base.at[index].set(q)
        sol = solve(p, rtol, atol)
        terms = translate(backend, problem.loss, problem.values(take, ts, sol.ys, p, targets))
        value = jnp.sum(jnp.broadcast_to(terms, ts.shape))
        return value, (value, sol.result, sol.stats["num_accepted_steps"])

    if tool == "diffrax-forward":
        differentiate = jax.jacfwd(loss, has_aux=True)
    else:
        differentiate = jax.grad(loss, has_aux=True)
    compiled = jax.jit(differentiate)

    def outputs_at(p: Any, rtol: float, atol: float) -> Any:
        sol = solve(p, rtol, atol)
        return export_outputs(ts, sol.ys, p), sol.result

    def export_outputs(t: Any, ys: Any, p: Any) -> Any:
        values = {problem.model.time: t, **{s: ys[..., i] for i, s in enumerate(problem.model.states)},
                  **{s: p[j] for j, s in enumerate(problem.model.parameters)}}
        columns = [translate(backend, _output_expression(problem.model, name), values) for name in problem.output_names]
        return jnp.stack([jnp.broadcast_to(jnp.asarray(c, dtype=jnp.float64), t.shape) for c in columns], axis=-1)

    outputs_compiled = jax.jit(outputs_at)
    described = f"diffrax {DIFFRAX_SOLVERS[key]} + PIDController"

    def targets_outputs(p: np.ndarray, rtol: float, atol: float) -> np.ndarray:
        values, result = outputs_compiled(jnp.asarray(p), rtol, atol)
        if not bool(result == diffrax.RESULTS.successful):
            raise _failure(tool, described, f"the solve at the data parameters failed: {diffrax.RESULTS[result]}")
        return np.asarray(values)

    def run(p: np.ndarray, rtol: float, atol: float) -> tuple[float, np.ndarray]:
        targets = problem.targets_for(rtol, atol, targets_outputs)
        p_all = jnp.asarray(p)
        gradient, (value, result, steps) = compiled(p_all[index], p_all, jnp.asarray(targets), rtol, atol)
        if not bool(result == diffrax.RESULTS.successful):
            raise _failure(tool, described, f"{diffrax.RESULTS[result]} (after {int(steps)} accepted steps)")
        return float(value), np.asarray(gradient)

    return ToolGradient(tool, described, problem.parameters, run, problem.model.n_parameters)


def _output_expression(model: Model, name: str) -> sp.Expr:
    return model.symbol(name) if name in model.state_names else model.output(name)


# ---- CasADi CVODES -----------------------------------------------------------------------------------------------

def _cvodes(tool: str, problem: _Problem) -> ToolGradient:
    from ._exports import casadi_backend, to_casadi
    from ._imports import require
    from ._walk import translate

    ca = require("casadi", f"tool {tool!r}")
    export = to_casadi(problem.model)
    model = problem.model
    backend = casadi_backend()
    m = len(problem.output_names)
    d = ca.SX.sym("d", m)
    values = problem.values(lambda array, i: array[i], export.t, export.y, export.p, d)
    pointwise = ca.Function("l", [export.t, export.y, export.p, d], [ca.SX(translate(backend, problem.loss, values))])
    outputs = ca.Function("g", [export.t, export.y, export.p], [ca.vertcat(*(
        ca.SX(translate(backend, _output_expression(model, name), problem.values(
            lambda array, i: array[i], export.t, export.y, export.p, d))) for name in problem.output_names))])
    K = problem.times.size
    errcon = tool != "cvodes-forward-noerrcon"
    if tool == "cvodes-adjoint":
        described = "CVODES BDF (CasADi), adjoint (reverse mode, CVODES backward integration)"
    else:
        # CasADi (3.6 and later) computes forward derivatives by integrating the DAE augmented with the sensitivity
        # equations, so the sensitivities are states in CVODES's error test whatever fsens_err_con says; the
        # option is passed as asked, and the description says what runs.
        described = ("CVODES BDF (CasADi), forward sensitivities, errcon on" if errcon else
                     "CVODES BDF (CasADi), forward sensitivities, errcon off asked (fsens_err_con = false), but "
                     "CasADi integrates the sensitivities as augmented states, in the error test")
    dae = {"t": export.t, "x": export.y, "p": export.p, "ode": export.f}
    cache: dict[tuple[float, float], Any] = {}
    lock = threading.Lock()

    def functions(rtol: float, atol: float) -> Any:
        with lock:
            found = cache.get((rtol, atol))
        if found is not None:
            return found
        options = {"reltol": rtol, "abstol": atol, "max_num_steps": MAX_STEPS, "fsens_err_con": errcon,
                   "print_stats": False}  # the backward (adjoint) integration uses the same tolerances
        integrator = ca.integrator("cvodes", "cvodes", dae, problem.t0, problem.times.tolist(), options)
        q = ca.MX.sym("q", len(problem.index))
        p_base = ca.MX.sym("p", model.n_parameters)
        targets = ca.MX.sym("targets", m, K)
        chosen = {int(j): k for k, j in enumerate(problem.index)}
        p = ca.vertcat(*(q[chosen[j]] if j in chosen else p_base[j] for j in range(model.n_parameters)))
        y0 = export.initial_conditions(p)
        ys = integrator(x0=y0, p=p)["xf"]                                 # n x K
        t_row = ca.DM(problem.times).T
        loss = ca.sum2(pointwise.map(K)(t_row, ys, ca.repmat(p, 1, K), targets))
        if tool == "cvodes-adjoint":
            gradient = ca.jtimes(loss, q, ca.MX.ones(1, 1), True)        # reverse mode: CVODES adjoint
        else:
            gradient = ca.jtimes(loss, q, ca.MX.eye(q.numel()), False)   # forward mode: sensitivities
        value_gradient = ca.Function("value_gradient", [q, p_base, targets], [loss, gradient])
        plain = ca.Function("outputs", [p_base], [outputs.map(K)(t_row, integrator(x0=export.initial_conditions(p_base), p=p_base)["xf"], ca.repmat(p_base, 1, K))])
        with lock:
            cache[(rtol, atol)] = (value_gradient, plain)
        return value_gradient, plain

    def call(function: Any, *arguments: Any) -> Any:
        try:
            return function(*arguments)
        except RuntimeError as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            said = next((line for line in lines if "CV_" in line or "failed" in line.lower()), lines[-1] if lines else "")
            raise _failure(tool, described, f"CVODES failed: {said[:300]}") from None

    def targets_outputs(p: np.ndarray, rtol: float, atol: float) -> np.ndarray:
        _, plain = functions(rtol, atol)
        return np.asarray(call(plain, ca.DM(p))).T

    def run(p: np.ndarray, rtol: float, atol: float) -> tuple[float, np.ndarray]:
        targets = problem.targets_for(rtol, atol, targets_outputs)
        value_gradient, _ = functions(rtol, atol)
        value, gradient = call(value_gradient, ca.DM(p[problem.index]), ca.DM(p), ca.DM(np.asarray(targets).T))
        return float(value), np.asarray(gradient).ravel()

    return ToolGradient(tool, described, problem.parameters, run, model.n_parameters)


# ---- torchdiffeq -------------------------------------------------------------------------------------------------

def _torchdiffeq(tool: str, problem: _Problem) -> ToolGradient:
    from ._exports import to_torch, torch_backend
    from ._imports import require
    from ._walk import translate

    torch = require("torch", f"tool {tool!r}")
    torchdiffeq = require("torchdiffeq", f"tool {tool!r}")
    export = to_torch(problem.model)
    backend = torch_backend()
    model = problem.model
    adjoint = tool == "torchdiffeq-adjoint"
    described = ("torchdiffeq dopri5, odeint_adjoint (continuous adjoint, backsolve)" if adjoint
                 else "torchdiffeq dopri5, autograd through odeint")
    starts_at_t0 = problem.times[0] == problem.t0
    grid = problem.times if starts_at_t0 else np.concatenate([[problem.t0], problem.times])
    t = torch.as_tensor(grid, dtype=torch.float64)
    ts = torch.as_tensor(problem.times, dtype=torch.float64)
    index = torch.as_tensor(problem.index, dtype=torch.long)

    def take(array: Any, i: int) -> Any:
        return array[..., i]

    def solve(p: Any, rtol: float, atol: float) -> Any:
        options = {"max_num_steps": MAX_STEPS}
        y0 = export.initial_conditions(p)
        try:
            if adjoint:
                ys = torchdiffeq.odeint_adjoint(lambda s, y: export.rhs(s, y, p), y0, t, rtol=rtol, atol=atol,
                                                method="dopri5", options=options, adjoint_params=(p,),
                                                adjoint_rtol=rtol, adjoint_atol=atol, adjoint_options=options)
            else:
                ys = torchdiffeq.odeint(lambda s, y: export.rhs(s, y, p), y0, t, rtol=rtol, atol=atol,
                                        method="dopri5", options=options)
        except (AssertionError, RuntimeError) as error:
            raise _failure(tool, described, str(error) or type(error).__name__) from None
        return ys if starts_at_t0 else ys[1:]

    def targets_outputs(p: np.ndarray, rtol: float, atol: float) -> np.ndarray:
        with torch.no_grad():
            p_t = torch.as_tensor(p, dtype=torch.float64)
            ys = solve(p_t, rtol, atol)
            values = {model.time: ts, **{s: ys[..., i] for i, s in enumerate(model.states)},
                      **{s: p_t[j] for j, s in enumerate(model.parameters)}}
            columns = [translate(backend, _output_expression(model, name), values) for name in problem.output_names]
            return np.stack([np.broadcast_to(np.asarray(torch.as_tensor(c).detach().numpy(), dtype=float),
                                             problem.times.shape) for c in columns], axis=-1)

    def run(p: np.ndarray, rtol: float, atol: float) -> tuple[float, np.ndarray]:
        targets = torch.as_tensor(problem.targets_for(rtol, atol, targets_outputs), dtype=torch.float64)
        p_base = torch.as_tensor(p, dtype=torch.float64)
        q = p_base[index].clone().requires_grad_(True)
        p_t = p_base.scatter(0, index, q)
        ys = solve(p_t, rtol, atol)
        terms = translate(backend, problem.loss, problem.values(take, ts, ys, p_t, targets))
        value = torch.sum(torch.broadcast_to(torch.as_tensor(terms, dtype=torch.float64), ts.shape))
        try:
            (gradient,) = torch.autograd.grad(value, q)
        except (AssertionError, RuntimeError) as error:
            raise _failure(tool, described, f"backward pass: {error or type(error).__name__}") from None
        return float(value.detach()), gradient.detach().numpy()

    return ToolGradient(tool, described, problem.parameters, run, model.n_parameters)


# ---- SciPy -------------------------------------------------------------------------------------------------------

def _scipy(tool: str, problem: _Problem, plan: Any, solver: str | None) -> ToolGradient:
    from ..derive import initial_sensitivities, jacobian, numpy_function, parameter_jacobian

    model = problem.model
    method = solver or "LSODA"
    if method not in SCIPY_METHODS:
        raise ValueError(f"{tool}: unknown SciPy method {solver!r}; known: {', '.join(SCIPY_METHODS)}")
    described = (f"SciPy solve_ivp {method} on (y, S), S' = J S + F_p (forward sensitivities, errcon on; "
                 "Jacobian of the augmented system by SciPy's finite differences)"
                 if method in ("LSODA", "Radau", "BDF") else
                 f"SciPy solve_ivp {method} on (y, S), S' = J S + F_p (forward sensitivities, errcon on)")
    n, P = model.n_states, len(problem.parameters)
    arguments = [model.time, *model.states, *model.parameters]
    f = numpy_function(list(model.rhs), arguments)
    J = numpy_function(list(jacobian(model)), arguments)
    Fp = numpy_function(list(parameter_jacobian(model, problem.parameters)), arguments)
    y0 = numpy_function(list(model.initial_conditions), list(model.parameters))
    S0 = numpy_function(list(initial_sensitivities(model, problem.parameters)), list(model.parameters))

    def solve(p: np.ndarray, rtol: float, atol: float, sensitivities: bool) -> tuple[np.ndarray, np.ndarray | None]:
        def rhs(t: float, state: np.ndarray) -> np.ndarray:
            y = state[:n]
            dy = f(t, *y, *p)
            if not sensitivities:
                return dy
            S = state[n:].reshape(n, P)
            dS = J(t, *y, *p).reshape(n, n) @ S + Fp(t, *y, *p).reshape(n, P)
            return np.concatenate([dy, dS.ravel()])

        start = y0(*p)
        if sensitivities:
            start = np.concatenate([start, S0(*p).reshape(n, P).ravel()])
        states = _scipy_solve(rhs, problem, start, method, rtol, atol, lambda message: _failure(tool, described, message))
        ys = states[:, :n]
        return ys, (states[:, n:].reshape(-1, n, P) if sensitivities else None)

    def targets_outputs(p: np.ndarray, rtol: float, atol: float) -> np.ndarray:
        ys, _ = solve(p, rtol, atol, False)
        return plan.outputs_of(problem.times, ys, p)

    def run(p: np.ndarray, rtol: float, atol: float) -> tuple[float, np.ndarray]:
        targets = problem.targets_for(rtol, atol, targets_outputs)
        ys, S = solve(p, rtol, atol, True)
        value, gradient = plan.value_and_gradient(problem.times, ys, S, p, targets)
        return value, gradient

    return ToolGradient(tool, described, problem.parameters, run, model.n_parameters)


def _scipy_solve(rhs: Callable[[float, np.ndarray], np.ndarray], problem: _Problem, start: np.ndarray, method: str,
                 rtol: float, atol: float, failure: Callable[[str], Exception]) -> np.ndarray:
    """The states at ``problem.times`` (K x N) by SciPy's ``OdeSolver`` loop (the loop ``solve_ivp`` runs), with
    :data:`MAX_STEPS` and a stop at the first non-finite state (``solve_ivp`` has neither)."""
    from scipy import integrate

    solver = getattr(integrate, method)(rhs, problem.t0, start, problem.t1, rtol=rtol, atol=atol)
    out = np.empty((problem.times.size, start.size))
    k = 0
    while k < problem.times.size and problem.times[k] <= problem.t0:
        out[k] = start
        k += 1
    steps = 0
    with np.errstate(all="ignore"):
        while k < problem.times.size:
            if solver.status != "running":
                raise failure(f"SciPy {method} stopped at t = {solver.t:.6g} before t1")
            t_before = solver.t
            message = solver.step()
            steps += 1
            if solver.status == "running" and not solver.t > t_before:
                # LSODA at a blow-up returns with step size 0 and t unchanged, and would do so forever.
                raise failure(f"SciPy {method}: step size underflow at t = {solver.t:.6g} (the solution diverges)")
            if solver.status == "failed":
                raise failure(f"SciPy {method} failed at t = {solver.t:.6g}: {message}")
            if not np.all(np.isfinite(solver.y)):
                raise failure(f"non-finite state at t = {solver.t:.6g} (the solution diverges)")
            if steps > MAX_STEPS:
                raise failure(f"more than {MAX_STEPS} steps, stopped at t = {solver.t:.6g}")
            if k < problem.times.size and problem.times[k] <= solver.t:
                dense = solver.dense_output()
                while k < problem.times.size and problem.times[k] <= solver.t:
                    out[k] = dense(problem.times[k])
                    k += 1
    return out


# ---- the entry point ---------------------------------------------------------------------------------------------

def gradient_provider(tool: str, model: Model, plan: Any, *, times: np.ndarray | None,
                      targets: np.ndarray | None, t_span: tuple[float, float],
                      solver: str | None = None) -> ToolGradient:
    """A callable ``(p, rtol, atol) -> (L, dL/dp)`` computing a least-squares loss's gradient with ``tool``.

    The loss is ``L = sum_k sum_i w_i (g_i(t_k, y(t_k; p), p) - targets[k, i])^2`` over ``times`` (default: the
    plan's grid) and ``plan.output_names``, as :meth:`LossPlan.value_and_gradient` computes it; the gradient is
    over ``plan.parameters``.  ``targets`` (K x m): the data; None takes a DataLoss's observations, or for a
    TrajectoryLoss the tool's own solve at the data parameters at the call's tolerances (as each symsens
    solver setting makes its own targets).  ``solver``: for the diffrax tools a diffrax solver
    (:data:`DIFFRAX_SOLVERS`, default ``"tsit5"``; ``"kvaerno5"`` for stiff models), for ``scipy`` a
    ``solve_ivp`` method (:data:`SCIPY_METHODS`, default ``"LSODA"``); the other tools take none.

    Raises
    ------
    ValueError
        For an unknown tool (the message lists :data:`TOOLS`), a loss that is not pointwise least squares, a
        ``solver`` the tool does not know, or bad ``times``/``targets``/``t_span``.
    ToolUnavailableError
        When the tool's package is not installed (the message names the extra: ``pip install 'symsens[jax]'``).
    """
    if tool not in TOOLS:
        import difflib

        close = difflib.get_close_matches(str(tool), TOOLS, n=2)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"unknown tool {tool!r}{hint}; known: {', '.join(TOOLS)}")
    if solver is not None and not (tool.startswith("diffrax") or tool == "scipy"):
        raise ValueError(f"tool {tool!r} runs a fixed solver; `solver` applies to the diffrax tools and scipy")
    problem = _problem(model, plan, times, targets, t_span)
    if tool.startswith("diffrax"):
        return _diffrax(tool, problem, solver)
    if tool.startswith("cvodes"):
        return _cvodes(tool, problem)
    if tool.startswith("torchdiffeq"):
        return _torchdiffeq(tool, problem)
    return _scipy(tool, problem, plan, solver)
