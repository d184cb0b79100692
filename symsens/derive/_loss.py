"""Losses of a model's solution and their exact parameter gradients by the chain rule.

Two kinds of loss are supported:

* pointwise, ``L(p) = sum_k l(t_k, y(t_k; p), p; d_k)`` with data ``d_k`` at the output times — least
  squares against data is the common case; then

      dL/dp = sum_k [ (dl/dy)(t_k) S(t_k) + (dl/dp)(t_k) ]                      (1 x P)

* integral, ``L(p) = int_{t0}^{t1} l(t, y(t; p), p) dt``; it is turned into a quadrature state
  ``q' = l``, ``q(t0) = 0`` appended to the model, so ``L = q(t1)`` and ``dL/dp = dq/dp (t1)`` comes out of
  the sensitivity system of the augmented model (with ``dq/dp' = (dl/dy) S + dl/dp``).

The pieces ``dl/dy`` and ``dl/dp`` are exact SymPy expressions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sympy as sp

from .._errors import DerivationError
from ..model import Model
from ._jacobian import derivative_matrix, select_parameters
from ._numeric import numpy_function

__all__ = ["Loss", "LossGradient", "least_squares", "pointwise_loss", "integral_loss", "loss_gradient", "quadrature_model"]


@dataclass(frozen=True)
class Loss:
    """A loss functional of the solution.

    Attributes
    ----------
    kind : "pointwise" or "integral"
    expression : sympy.Expr
        ``l`` in the model's time, states, parameters and (pointwise only) the data symbols.
    data_symbols : tuple of Symbol
        Placeholders for the observed values at each output time (``data_<output>``).
    name : str
    """

    kind: Literal["pointwise", "integral"]
    expression: sp.Expr
    data_symbols: tuple[sp.Symbol, ...] = ()
    name: str = "loss"


def _expression(model: Model, expression: sp.Expr | str, extra: Mapping[str, sp.Symbol], what: str) -> sp.Expr:
    table = dict(model._symbol_table)
    table.update(extra)
    if isinstance(expression, str):
        from ..model._parser import parse_expression

        expr = parse_expression(expression, table, where=what)
    else:
        expr = sp.sympify(expression)
        expr = expr.xreplace({s: table[s.name] for s in expr.free_symbols if s.name in table})
    intermediates = {symbol: value for symbol, value in model.intermediates}
    # Intermediates may be nested; substitute until none is left (their number bounds the passes).
    for _ in range(len(intermediates)):
        if not (expr.free_symbols & intermediates.keys()):
            break
        expr = expr.xreplace(intermediates)
    output_symbols = {sp.Symbol(name, real=True): value for name, value in model.outputs}
    expr = expr.xreplace({k: v for k, v in output_symbols.items() if k.name not in model._symbol_table})
    allowed = set(model.states) | set(model.parameters) | {model.time} | set(extra.values())
    unknown = sorted(s.name for s in expr.free_symbols if s not in allowed)
    if unknown:
        raise DerivationError(f"unknown symbol {unknown[0]!r} in {what}")
    return expr


def least_squares(
    model: Model,
    outputs: Sequence[str] | None = None,
    *,
    weights: Sequence[float] | None = None,
) -> Loss:
    """``l = sum_i w_i (g_i(t, y, p) - d_i)^2`` summed over output times.

    ``outputs`` names model outputs or states (default: every state, as in a fit to full-state data or the
    comparison with a nominal trajectory of the bursting-neuron forum question).  The data symbols are ``data_<name>``.
    """
    names = list(outputs) if outputs is not None else list(model.state_names)
    if not names:
        raise DerivationError("least_squares needs at least one output")
    if weights is not None and len(weights) != len(names):
        raise DerivationError(f"`weights` has {len(weights)} entries for {len(names)} outputs")
    w = [sp.S.One] * len(names) if weights is None else [sp.nsimplify(float(x)) for x in weights]
    terms, data = [], []
    for name, weight in zip(names, w):
        if name in model.state_names:
            g = model.symbol(name)
        elif name in model.output_names:
            g = model.output(name)
        else:
            raise DerivationError(f"{name!r} is neither a state nor an output of model {model.name!r}")
        d = sp.Symbol(f"data_{name}", real=True)
        data.append(d)
        terms.append(weight * (g - d) ** 2)
    return Loss("pointwise", sp.Add(*terms), tuple(data), name="least squares")


def pointwise_loss(model: Model, expression: sp.Expr | str, data: Sequence[str] = (), name: str = "loss") -> Loss:
    """A pointwise loss ``l(t, y, p; d)`` from an expression (model language string or SymPy).

    ``data`` names the data placeholders the expression may use (besides states, parameters, time,
    intermediates and outputs).
    """
    data_symbols = {d: sp.Symbol(d, real=True) for d in data}
    clash = [d for d in data if d in model._symbol_table]
    if clash:
        raise DerivationError(f"data name {clash[0]!r} clashes with a name of the model")
    expr = _expression(model, expression, data_symbols, f"loss {name!r}")
    return Loss("pointwise", expr, tuple(data_symbols.values()), name=name)


def integral_loss(model: Model, expression: sp.Expr | str, name: str = "integral loss") -> Loss:
    """``L = int_{t0}^{t1} l(t, y, p) dt`` for an expression ``l`` (e.g. ``"V^2"``)."""
    return Loss("integral", _expression(model, expression, {}, f"loss {name!r}"), (), name=name)


def quadrature_model(model: Model, loss: Loss, state_name: str = "q") -> Model:
    """The model with the quadrature state ``q' = l``, ``q(t0) = 0`` appended (integral losses)."""
    if loss.kind != "integral":
        raise DerivationError("quadrature_model needs an integral loss")
    name = state_name
    while name in model._symbol_table:
        name = "_" + name
    return Model(
        states=[*model.state_names, name],
        parameters=model.nominal_parameters,
        rhs=[*model.rhs, loss.expression],
        initial_conditions=[*model.initial_conditions, sp.S.Zero],
        outputs=dict(model.outputs),
        time=model.time.name,
        name=f"{model.name}+quadrature",
        description=model.description,
        t_span=model.t_span,
    )


@dataclass(frozen=True, eq=False)
class LossGradient:
    """Exact pieces of ``dL/dp`` and their numerical evaluation.

    Attributes
    ----------
    loss : Loss
    parameters : tuple of Symbol (P)
    dl_dy : ImmutableMatrix (1 x n)
        ``dl/dy``; for integral losses the derivative of the integrand.
    dl_dp : ImmutableMatrix (1 x P)
        Explicit parameter dependence of ``l``.
    model : Model
        The model whose sensitivities the gradient needs: the user's model for pointwise losses, the
        quadrature-augmented model for integral losses.
    """

    loss: Loss
    parameters: tuple[sp.Symbol, ...]
    dl_dy: sp.ImmutableMatrix
    dl_dp: sp.ImmutableMatrix
    model: Model
    base_model: Model

    def _arguments(self) -> list[sp.Symbol]:
        m = self.base_model
        return [m.time, *m.states, *m.parameters, *self.loss.data_symbols]

    def _stack(self, t: np.ndarray, y: np.ndarray, p: np.ndarray, data: np.ndarray | None) -> list[np.ndarray]:
        m = self.base_model
        n_data = len(self.loss.data_symbols)
        if data is None:
            if n_data:
                raise DerivationError(f"loss {self.loss.name!r} needs data for {[d.name for d in self.loss.data_symbols]}")
            data = np.zeros((len(t), 0))
        data = np.asarray(data, dtype=float).reshape(len(t), n_data)
        return [t, *(y[:, i] for i in range(m.n_states)), *(np.full(len(t), v) for v in p), *(data[:, i] for i in range(n_data))]

    def value(self, t: np.ndarray, y: np.ndarray, *, p: Sequence[float] | None = None, data: np.ndarray | None = None) -> float:
        """``L = sum_k l(t_k, y_k, p; d_k)`` for a pointwise loss (``y`` has shape (K, n))."""
        if self.loss.kind != "pointwise":
            raise DerivationError("value() evaluates pointwise losses; integral losses are the last quadrature state")
        t, y, p_arr = self._check(t, y, p)
        f = numpy_function([self.loss.expression], self._arguments())
        return float(np.sum(f(*self._stack(t, y, p_arr, data))[0]))

    def evaluate(
        self,
        t: np.ndarray,
        y: np.ndarray,
        sensitivities: np.ndarray,
        *,
        p: Sequence[float] | None = None,
        data: np.ndarray | None = None,
    ) -> np.ndarray:
        """``dL/dp`` (length P) from a solution and its sensitivities.

        Pointwise: ``sum_k dl/dy(t_k) S_k + dl/dp(t_k)`` with ``y`` (K x n) and ``sensitivities`` (K x n x P)
        at the output times.  Integral: ``S_q(t1)`` — pass the augmented model's solution; the last row
        is used.
        """
        t, y, p_arr = self._check(t, y, p, augmented=self.loss.kind == "integral")
        sens = np.asarray(sensitivities, dtype=float)
        n_p = len(self.parameters)
        if sens.shape != (len(t), y.shape[1], n_p):
            raise DerivationError(f"`sensitivities` must have shape {(len(t), y.shape[1], n_p)}, got {sens.shape}")
        if self.loss.kind == "integral":
            return sens[-1, -1, :].copy()
        n = self.base_model.n_states
        args = self._stack(t, y[:, :n], p_arr, data)
        dl_dy = numpy_function(list(self.dl_dy), self._arguments())(*args)  # (n, K)
        dl_dp = numpy_function(list(self.dl_dp), self._arguments())(*args)  # (P, K)
        return np.einsum("ik,kij->j", dl_dy, sens[:, :n, :]) + dl_dp.sum(axis=1)

    def _check(self, t, y, p, augmented: bool = False):  # type: ignore[no-untyped-def]
        t = np.atleast_1d(np.asarray(t, dtype=float))
        y = np.asarray(y, dtype=float)
        n = self.model.n_states if augmented else self.base_model.n_states
        if y.ndim != 2 or y.shape[0] != len(t) or y.shape[1] < n:
            raise DerivationError(f"`y` must have shape ({len(t)}, {n}), got {y.shape}")
        p_arr = np.asarray(self.base_model.parameter_values if p is None else p, dtype=float)
        if p_arr.shape != (self.base_model.n_parameters,):
            raise DerivationError(f"`p` must have length {self.base_model.n_parameters}, got shape {p_arr.shape}")
        if not np.all(np.isfinite(p_arr)):
            raise DerivationError("`p` contains NaN or infinite values")
        return t, y, p_arr


def loss_gradient(model: Model, loss: Loss, parameters: Sequence[str] | None = None) -> LossGradient:
    """Exact chain-rule pieces of ``dL/dp`` for ``loss`` (see the module docstring for the formulas)."""
    chosen = select_parameters(model, parameters)
    dl_dy = derivative_matrix([loss.expression], model.states)
    dl_dp = derivative_matrix([loss.expression], chosen)
    target = quadrature_model(model, loss) if loss.kind == "integral" else model
    return LossGradient(loss, chosen, dl_dy, dl_dp, target, model)
