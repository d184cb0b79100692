"""A symsens :class:`~symsens.model.Model` as JAX, CasADi and PyTorch functions.

Each export walks the model's exact SymPy expressions (:mod:`symsens.bridges._walk`) into the target's
operations: the right-hand side ``f(t, y, p)``, its exact Jacobian ``df/dy`` (:func:`symsens.derive.jacobian`,
whose entries contain ``exprel_derivative`` rather than 0/0 forms), the initial conditions ``y0(p)`` and the
model's outputs ``g(t, y, p)``.  ``y`` holds every state in model order and ``p`` every parameter in model
order; the JAX and PyTorch functions take them on the last axis (``y[..., i]``) and return the components on the
last axis (``(..., n)``; Jacobian ``(..., n, n)``), so a batch of states (``K x n``) gives ``K x n``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ..derive import jacobian as symbolic_jacobian
from ..model import Model
from ._imports import require
from ._walk import Backend, translate_all

__all__ = ["JaxExport", "TorchExport", "CasadiExport", "to_jax", "to_casadi", "to_torch", "enable_jax_float64"]

_FUNCTIONS = (sp.exp, sp.log, sp.sin, sp.cos, sp.tan, sp.tanh, sp.sinh, sp.cosh, sp.sign)


def _python_bool_aware(where: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """A ``where`` that picks directly when the condition is a Python bool (a relation between two numbers)."""
    def chosen(condition: Any, a: Any, b: Any) -> Any:
        if isinstance(condition, bool):
            return a if condition else b
        return where(condition, a, b)
    return chosen


def _logic(operation: Callable[..., Any], python: Callable[..., bool]) -> Callable[..., Any]:
    def combined(*values: Any) -> Any:
        if all(isinstance(v, bool) for v in values):
            return python(*values)
        return operation(*values)
    return combined


@dataclass(frozen=True)
class _Expressions:
    model: Model
    rhs: tuple[sp.Expr, ...]
    jacobian: tuple[sp.Expr, ...]     # row-major n x n
    initial_conditions: tuple[sp.Expr, ...]
    outputs: tuple[sp.Expr, ...]

    @classmethod
    def of(cls, model: Model) -> "_Expressions":
        if not isinstance(model, Model):
            raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
        return cls(model, tuple(model.rhs), tuple(symbolic_jacobian(model)), tuple(model.initial_conditions),
                   tuple(e for _, e in model.outputs))

    def values(self, t: Any, y: Any, p: Any, index: Callable[[Any, int], Any]) -> dict[sp.Symbol, Any]:
        m = self.model
        values: dict[sp.Symbol, Any] = {m.time: t} if t is not None else {}
        if y is not None:
            values.update({s: index(y, i) for i, s in enumerate(m.states)})
        values.update({s: index(p, j) for j, s in enumerate(m.parameters)})
        return values


# ---- JAX ---------------------------------------------------------------------------------------------------------

def enable_jax_float64() -> None:
    """Turn on JAX's 64-bit mode (``jax_enable_x64``): without it ``float64`` arrays are silently ``float32``."""
    jax = require("jax", "the JAX export")
    jax.config.update("jax_enable_x64", True)


def jax_backend() -> Backend:
    """The operations of :mod:`jax.numpy` (float64)."""
    jnp = require("jax.numpy", "the JAX export")
    functions: dict[type, Any] = {f: getattr(jnp, f.__name__) for f in _FUNCTIONS}
    functions.update({sp.Min: jnp.minimum, sp.Max: jnp.maximum})
    return Backend(
        "JAX", constant=lambda v: jnp.asarray(v, dtype=jnp.float64), functions=functions,
        where=_python_bool_aware(jnp.where), less=jnp.less, less_equal=jnp.less_equal, equal=jnp.equal,
        logical_and=_logic(jnp.logical_and, lambda a, b: a and b), logical_or=_logic(jnp.logical_or, lambda a, b: a or b),
        logical_not=_logic(jnp.logical_not, lambda a: not a), power=jnp.power, sqrt=jnp.sqrt, abs=jnp.abs,
        isnan=jnp.isnan,
    )


@dataclass(frozen=True, eq=False)
class ArrayExport:
    """A model as functions of one array library's arrays.

    ``rhs(t, y, p) -> (..., n)``, ``jacobian(t, y, p) -> (..., n, n)``, ``initial_conditions(p) -> (n,)``,
    ``outputs(t, y, p) -> (..., len(output_names))``.
    """

    model: Model
    rhs: Callable[[Any, Any, Any], Any]
    jacobian: Callable[[Any, Any, Any], Any]
    initial_conditions: Callable[[Any], Any]
    outputs: Callable[[Any, Any, Any], Any]
    output_names: tuple[str, ...] = field(default=())


@dataclass(frozen=True, eq=False)
class JaxExport(ArrayExport):
    """A model as JAX functions (jit-able, differentiable with ``jax.jacfwd``/``jax.grad``); fields as
    :class:`ArrayExport`."""


def _stack_jax(jnp: Any, values: Sequence[Any]) -> Any:
    arrays = jnp.broadcast_arrays(*(jnp.asarray(v, dtype=jnp.float64) for v in values))
    return jnp.stack(arrays, axis=-1)


def to_jax(model: Model) -> JaxExport:
    """The model's right-hand side, Jacobian, initial conditions and outputs as :mod:`jax.numpy` functions.

    Turns on JAX's float64 mode (:func:`enable_jax_float64`).  Raises :class:`ToolUnavailableError` without JAX.
    """
    enable_jax_float64()
    jnp = require("jax.numpy", "the JAX export")
    backend = jax_backend()
    e = _Expressions.of(model)
    n = model.n_states

    def take(array: Any, i: int) -> Any:
        return jnp.asarray(array, dtype=jnp.float64)[..., i]

    def rhs(t: Any, y: Any, p: Any) -> Any:
        return _stack_jax(jnp, translate_all(backend, e.rhs, e.values(jnp.asarray(t, dtype=jnp.float64), y, p, take)))

    def jacobian(t: Any, y: Any, p: Any) -> Any:
        flat = _stack_jax(jnp, translate_all(backend, e.jacobian, e.values(jnp.asarray(t, dtype=jnp.float64), y, p, take)))
        return flat.reshape(*flat.shape[:-1], n, n)

    def initial_conditions(p: Any) -> Any:
        return _stack_jax(jnp, translate_all(backend, e.initial_conditions, e.values(None, None, p, take)))

    def outputs(t: Any, y: Any, p: Any) -> Any:
        if not e.outputs:
            return jnp.zeros((*jnp.shape(y)[:-1], 0))
        return _stack_jax(jnp, translate_all(backend, e.outputs, e.values(jnp.asarray(t, dtype=jnp.float64), y, p, take)))

    return JaxExport(model, rhs, jacobian, initial_conditions, outputs, model.output_names)


# ---- PyTorch -----------------------------------------------------------------------------------------------------

def torch_backend() -> Backend:
    """The operations of :mod:`torch` (float64 tensors; Python floats are made tensors where an operation needs one)."""
    torch = require("torch", "the PyTorch export")

    def tensor(v: Any) -> Any:
        return v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)

    def unary(operation: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda x: operation(tensor(x))

    def binary(operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        return lambda a, b: operation(tensor(a), tensor(b))

    functions: dict[type, Any] = {f: unary(getattr(torch, f.__name__)) for f in _FUNCTIONS}
    functions.update({sp.Min: binary(torch.minimum), sp.Max: binary(torch.maximum)})
    return Backend(
        "PyTorch", constant=tensor, functions=functions,
        where=_python_bool_aware(lambda c, a, b: torch.where(tensor(c).bool(), tensor(a), tensor(b))),
        less=binary(torch.lt), less_equal=binary(torch.le), equal=binary(torch.eq),
        logical_and=_logic(binary(torch.logical_and), lambda a, b: a and b),
        logical_or=_logic(binary(torch.logical_or), lambda a, b: a or b),
        logical_not=_logic(unary(torch.logical_not), lambda a: not a),
        power=binary(torch.pow), sqrt=unary(torch.sqrt), abs=unary(torch.abs), isnan=unary(torch.isnan),
    )


@dataclass(frozen=True, eq=False)
class TorchExport(ArrayExport):
    """A model as PyTorch functions of float64 tensors (differentiable by autograd); fields as
    :class:`ArrayExport`."""


def to_torch(model: Model) -> TorchExport:
    """The model's right-hand side, Jacobian, initial conditions and outputs as PyTorch functions.

    Raises :class:`ToolUnavailableError` without PyTorch.
    """
    torch = require("torch", "the PyTorch export")
    backend = torch_backend()
    e = _Expressions.of(model)
    n = model.n_states

    def as_tensor(v: Any) -> Any:
        return v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)

    def take(array: Any, i: int) -> Any:
        return as_tensor(array)[..., i]

    def stack(values: Sequence[Any]) -> Any:
        tensors = torch.broadcast_tensors(*(as_tensor(v).to(torch.float64) for v in values))
        return torch.stack(tensors, dim=-1)

    def rhs(t: Any, y: Any, p: Any) -> Any:
        return stack(translate_all(backend, e.rhs, e.values(as_tensor(t), y, p, take)))

    def jacobian(t: Any, y: Any, p: Any) -> Any:
        flat = stack(translate_all(backend, e.jacobian, e.values(as_tensor(t), y, p, take)))
        return flat.reshape(*flat.shape[:-1], n, n)

    def initial_conditions(p: Any) -> Any:
        return stack(translate_all(backend, e.initial_conditions, e.values(None, None, p, take)))

    def outputs(t: Any, y: Any, p: Any) -> Any:
        if not e.outputs:
            return torch.zeros((*as_tensor(y).shape[:-1], 0), dtype=torch.float64)
        return stack(translate_all(backend, e.outputs, e.values(as_tensor(t), y, p, take)))

    return TorchExport(model, rhs, jacobian, initial_conditions, outputs, model.output_names)


# ---- CasADi ------------------------------------------------------------------------------------------------------

def casadi_backend() -> Backend:
    """The operations of CasADi's symbolic types (``SX``/``MX``; branches as ``if_else``)."""
    ca = require("casadi", "the CasADi export")
    functions: dict[type, Any] = {f: getattr(ca, f.__name__) for f in _FUNCTIONS}
    functions.update({sp.Min: ca.fmin, sp.Max: ca.fmax})
    return Backend(
        "CasADi", constant=lambda v: ca.SX(v), functions=functions,
        where=_python_bool_aware(ca.if_else), less=lambda a, b: a < b, less_equal=lambda a, b: a <= b,
        equal=lambda a, b: ca.eq(a, b) if not (isinstance(a, float) and isinstance(b, float)) else a == b,
        logical_and=_logic(ca.logic_and, lambda a, b: a and b), logical_or=_logic(ca.logic_or, lambda a, b: a or b),
        logical_not=_logic(ca.logic_not, lambda a: not a), power=ca.power, sqrt=ca.sqrt, abs=ca.fabs, isnan=None,
    )


@dataclass(frozen=True, eq=False)
class CasadiExport:
    """A model as CasADi ``SX`` expressions and Functions.

    Symbols ``t`` (scalar), ``y`` (n) and ``p`` (every parameter, P); expressions ``f`` (n), ``J`` (n x n),
    ``y0`` (n, of ``p``) and ``g`` (the outputs); Functions ``rhs(t, y, p) -> f``, ``jacobian(t, y, p) -> J``,
    ``initial_conditions(p) -> y0`` and ``outputs(t, y, p) -> g``.
    """

    model: Model
    t: Any
    y: Any
    p: Any
    f: Any
    J: Any
    y0: Any
    g: Any
    rhs: Any
    jacobian: Any
    initial_conditions: Any
    outputs: Any
    output_names: tuple[str, ...] = field(default=())


def to_casadi(model: Model) -> CasadiExport:
    """The model as CasADi ``SX`` Functions (right-hand side, Jacobian, initial conditions, outputs).

    Raises :class:`ToolUnavailableError` without CasADi.
    """
    ca = require("casadi", "the CasADi export")
    backend = casadi_backend()
    e = _Expressions.of(model)
    n, P = model.n_states, model.n_parameters
    t = ca.SX.sym("t")
    y = ca.SX.sym("y", n)
    p = ca.SX.sym("p", P)

    def column(values: Sequence[Any]) -> Any:
        return ca.vertcat(*(ca.SX(v) if not isinstance(v, ca.SX) else v for v in values)) if values else ca.SX(0, 1)

    values = e.values(t, y, p, lambda array, i: array[i])
    f = column(translate_all(backend, e.rhs, values))
    J = ca.reshape(column(translate_all(backend, e.jacobian, values)), n, n).T  # row-major entries
    y0 = column(translate_all(backend, e.initial_conditions, e.values(None, None, p, lambda array, i: array[i])))
    g = column(translate_all(backend, e.outputs, values))
    return CasadiExport(
        model, t, y, p, f, J, y0, g,
        ca.Function("rhs", [t, y, p], [f], ["t", "y", "p"], ["f"]),
        ca.Function("jacobian", [t, y, p], [J], ["t", "y", "p"], ["J"]),
        ca.Function("initial_conditions", [p], [y0], ["p"], ["y0"]),
        ca.Function("outputs", [t, y, p], [g], ["t", "y", "p"], ["g"]),
        model.output_names,
    )
