"""The lean objective and forward-sensitivity gradient of a PEtab problem: one compiled solve, the NLL in NumPy.

:meth:`PetabProblem.objective <symsens.petab.PetabProblem.objective>` and
:meth:`PetabProblem.gradient <symsens.petab.PetabProblem.gradient>` (its compiled sensitivity methods: ``forward``,
``forward-error-control`` and the ``discrete`` modes) run here instead of through the model's intermediate
``nll`` and the audit's generic chain rule.  Per problem, once:

* the **solve model**: the problem's states, parameters, equations and initial values without the intermediate
  ``nll`` (a piecewise function of ``t`` that the solver never needs; without it a model whose equations do not
  use ``t`` is autonomous, so the Rosenbrock schemes skip ``df/dt``);
* the **channels**: the distinct simulated observables ``h_c(t, x, p)`` and noise formulas ``sigma_c(t, x, p)`` of
  the measurement rows, with their exact SymPy derivatives ``dh_c/dx``, ``dh_c/dp`` (the nonzero ones only).

Per evaluation: one compiled solve at the measurement times (plain, or with forward sensitivities ``S = dx/dp``),
the channels at those times, each row's ``-log p(m_r | h_r, sigma_r)`` and its partials in closed form
(:func:`symsens.petab._noise.nll_and_partials`), and the chain rule

    dL/dp = sum_k (dl/dx)_k S_k + (dl/dp)_k,
    (dl/dx)_k = sum_{rows r at t_k} (dl_r/dh) dh_r/dx + (dl_r/dsigma) dsigma_r/dx   (likewise dl/dp),

which is the chain rule of the NLL's intermediate (the same sum, differentiated by rows instead of as one
expression), so the results equal those of :func:`symsens.gradient` on :attr:`PetabProblem.loss` to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..model import Model
from ._noise import NOISE_CODES, nll_and_partials

__all__ = ["LeanLoss", "lean_loss"]


@dataclass(frozen=True, eq=False)
class LeanLoss:
    """What :func:`lean_loss` builds for one problem and one selection of gradient parameters.

    ``rows_*``: per measurement row, its time index (into ``times``), channel indices of its observable and noise
    formula and measured value; ``groups``: the rows of each noise model (its :data:`NOISE_CODES` code).
    ``values(t, *x, *p)`` gives the channels (C x K); ``derivatives(t, *x, *p)`` the nonzero entries of their
    Jacobian (D x K), at ``(channel, column)`` of ``d_channel``/``d_column`` (columns: the states, then the
    gradient parameters).
    """

    solve_model: Model
    times: np.ndarray
    parameters: tuple[str, ...]
    rows_time: np.ndarray
    rows_simulated: np.ndarray
    rows_sigma: np.ndarray
    rows_measurement: np.ndarray
    groups: tuple[tuple[int, np.ndarray], ...]
    n_channels: int
    values: Any
    derivatives: Any
    d_channel: np.ndarray
    d_column: np.ndarray

    def _arguments(self, y: np.ndarray, p: np.ndarray) -> list[Any]:
        # Parameters as 0-d values: the NumPy functions broadcast them against the K times.
        return [self.times, *y.T, *(np.float64(v) for v in p)]

    def _rows(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h = channels[self.rows_simulated, self.rows_time]
        sigma = channels[self.rows_sigma, self.rows_time]
        if len(self.groups) == 1:
            return nll_and_partials(self.rows_measurement, h, sigma, self.groups[0][0])
        result = np.empty((3, len(h)))
        for code, rows in self.groups:
            for k, part in enumerate(nll_and_partials(self.rows_measurement[rows], h[rows], sigma[rows], code)):
                result[k, rows] = part
        return result[0], result[1], result[2]

    def simulated(self, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Each measurement row's simulated observable, from the states ``y`` (K x n) at :attr:`times`."""
        return self.values(*self._arguments(y, p))[self.rows_simulated, self.rows_time]

    def value(self, y: np.ndarray, p: np.ndarray) -> float:
        """``L`` from the states ``y`` (K x n) at :attr:`times` and all model parameters ``p``."""
        nll, _, _ = self._rows(self.values(*self._arguments(y, p)))
        return float(np.sum(nll))

    def value_and_gradient(self, y: np.ndarray, sensitivities: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
        """``(L, dL/dp)`` from the states (K x n) and their sensitivities (K x n x P) to :attr:`parameters`."""
        arguments = self._arguments(y, p)
        nll, d_h, d_sigma = self._rows(self.values(*arguments))
        K, n = y.shape
        P = len(self.parameters)
        # weights[k, c]: dL/d(channel c at t_k), summed over the rows that use channel c at t_k.
        weights = np.zeros((K, self.n_channels))
        np.add.at(weights, (self.rows_time, self.rows_simulated), d_h)
        np.add.at(weights, (self.rows_time, self.rows_sigma), d_sigma)
        # The channels' Jacobian (K x C x (n + P)) from its nonzero entries.
        jacobian = np.zeros((K, self.n_channels, n + P))
        jacobian[:, self.d_channel, self.d_column] = self.derivatives(*arguments).T
        total = np.einsum("kc,kcj->kj", weights, jacobian)          # (dl/dx, dl/dp) per time
        gradient = np.einsum("ki,kij->j", total[:, :n], sensitivities[:, :n, :]) + total[:, n:].sum(axis=0)
        return float(np.sum(nll)), gradient


class _Rows:
    """``F(t, *x, *p) -> (len(expressions), K)``: SymPy expressions as one NumPy function (common subexpressions
    shared, :func:`symsens.derive._numeric.lambdify_safely`), ``t`` and ``x`` arrays of K values, ``p`` scalars.
    What :func:`symsens.derive._numeric.numpy_function` does, with the constant rows broadcast by assignment
    into one preallocated array (the per-row ``broadcast_to`` and ``stack`` cost more than these small
    expressions themselves)."""

    def __init__(self, expressions: Sequence[sp.Expr], arguments: Sequence[sp.Symbol]) -> None:
        from ..derive._numeric import _MODULES, lambdify_safely

        self.count = len(expressions)
        self.function = lambdify_safely(list(arguments), list(expressions), _MODULES, cse=True) if expressions else None

    def __call__(self, *arguments: Any) -> np.ndarray:
        out = np.empty((self.count, len(arguments[0])))
        if self.function is not None:
            with np.errstate(all="ignore"):
                for row, value in enumerate(self.function(*arguments)):
                    out[row] = value
        return out


def lean_loss(model: Model, measurements: Sequence[Any], times: Sequence[float], parameters: Sequence[str]
              ) -> LeanLoss:
    """The :class:`LeanLoss` of a problem's stacked ``model`` (its intermediate ``nll`` is dropped),
    ``measurements`` (:class:`symsens.petab.Measurement`), the sorted measurement ``times`` and the gradient's
    ``parameters`` (model parameter names)."""
    solve_model = Model(
        list(model.states), dict(zip(model.parameters, model.parameter_values)), list(model.rhs),
        list(model.initial_conditions), time=model.time, name=model.name, description=model.description,
        t_span=model.t_span,
    )
    channels: dict[sp.Expr, int] = {}

    def channel(expr: sp.Expr) -> int:
        return channels.setdefault(expr, len(channels))

    index_of_time = {float(t): k for k, t in enumerate(times)}
    rows_time = np.array([index_of_time[float(m.time)] for m in measurements], dtype=np.intp)
    rows_simulated = np.array([channel(m.simulated) for m in measurements], dtype=np.intp)
    rows_sigma = np.array([channel(m.sigma) for m in measurements], dtype=np.intp)
    rows_measurement = np.array([m.value for m in measurements], dtype=float)
    codes = np.array([NOISE_CODES[(m.distribution, m.transformation)] for m in measurements], dtype=np.intp)
    groups = tuple((int(code), np.flatnonzero(codes == code)) for code in np.unique(codes))
    expressions = list(channels)
    arguments = [model.time, *model.states, *model.parameters]
    variables = [*model.states, *(model.symbol(name) for name in parameters)]
    d_channel, d_column, d_expressions = [], [], []
    for c, expr in enumerate(expressions):
        present = expr.free_symbols
        for j, variable in enumerate(variables):
            if variable in present:
                derivative = sp.diff(expr, variable)
                if derivative != 0:
                    d_channel.append(c)
                    d_column.append(j)
                    d_expressions.append(derivative)
    values = _Rows(expressions, arguments)
    derivatives = _Rows(d_expressions, arguments)
    return LeanLoss(solve_model, np.asarray(times, dtype=float), tuple(parameters), rows_time, rows_simulated,
                    rows_sigma, rows_measurement, groups, len(expressions), values, derivatives,
                    np.array(d_channel, dtype=np.intp), np.array(d_column, dtype=np.intp))
