"""Model parameters as functions of the user's parameters: the audit's gradient composed with their Jacobian.

Some model parameters are not the user's parameters but functions of them, ``q = q(theta)``: a PEtab problem
with pre-equilibration starts a copy of its states from the steady state ``x*(theta)``, so the copy's initial
values are model parameters equal to ``x*(theta)`` (:mod:`symsens.petab._steady`).  The gradient the user
wants is the total derivative

    dL/dtheta_j = sum_i dL/dq_i dq_i/dtheta_j        (the chain rule; J = dq/dtheta, m x P),

so the audit differentiates the loss over the model parameters ``q`` (every method and the reference) and
composes each gradient with ``J``.  A :class:`ParameterMap` carries ``J`` twice: in double precision (what a
user's code composes with: every compared method's gradient), and computed in extended precision with a bound
on its error, for the verified reference.  For the reference, with the model-parameter gradient ``g`` known to
``|g - g_true| <= b`` and ``|J_ref - J| <= e`` (componentwise),

    |g J_ref - g_true J|_j <= sum_i (b_i |J_ref,ij| + |g_i| e_ij + b_i e_ij),

to which the rounding of the sum (evaluated in extended precision, then rounded to double) is added.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import numpy as np

from .._precision import mpmath_precision

__all__ = ["ParameterMap"]


def _names(value: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"ParameterMap: `{what}` must be a sequence of names, not a string")
    names = tuple(str(v) for v in value)
    if len(set(names)) != len(names):
        raise ValueError(f"ParameterMap: `{what}` lists a name twice")
    return names


@dataclass(frozen=True, eq=False)
class ParameterMap:
    """The model parameters ``q`` the audit differentiates as functions of the user's parameters ``theta``,
    linearised at the audited point (module docstring).

    ``parameters``: the names of ``theta`` (the order of the composed gradient) and ``values`` their values;
    ``model_parameters``: the names of ``q`` (model parameters); ``jacobian``: ``dq/dtheta`` (m x P) in double
    precision, which composes every compared method's gradient; ``reference_jacobian`` with
    ``reference_jacobian_error`` (componentwise bound on its distance from the exact ``dq/dtheta``): what
    composes the verified reference.  ``reference_values``: model parameters whose exact values are known
    beyond double precision, as ``(name, decimal string)``; the reference runs at those values, the compared
    methods at the double point the audit is given.  ``description``: one sentence for the report.
    """

    parameters: tuple[str, ...]
    values: np.ndarray
    model_parameters: tuple[str, ...]
    jacobian: np.ndarray
    reference_jacobian: np.ndarray
    reference_jacobian_error: np.ndarray
    reference_values: tuple[tuple[str, str], ...] = ()
    description: str = "the gradient is composed with the Jacobian of the model parameters over the parameters"

    def __post_init__(self) -> None:
        parameters = _names(self.parameters, "parameters")
        model_parameters = _names(self.model_parameters, "model_parameters")
        P, m = len(parameters), len(model_parameters)
        if not P or not m:
            raise ValueError("ParameterMap: `parameters` and `model_parameters` must not be empty")
        values = np.array(self.values, dtype=float).reshape(-1)
        if values.shape != (P,) or not np.all(np.isfinite(values)):
            raise ValueError(f"ParameterMap: `values` must be {P} finite numbers (one per parameter)")
        arrays = {}
        for what in ("jacobian", "reference_jacobian", "reference_jacobian_error"):
            array = np.array(getattr(self, what), dtype=float)
            if array.shape != (m, P):
                raise ValueError(f"ParameterMap: `{what}` must have shape {(m, P)} (model parameters x parameters), "
                                 f"got {array.shape}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"ParameterMap: `{what}` contains NaN or infinite values")
            array.setflags(write=False)
            arrays[what] = array
        if np.any(arrays["reference_jacobian_error"] < 0):
            raise ValueError("ParameterMap: `reference_jacobian_error` must be non-negative")
        exact = []
        for pair in self.reference_values:
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, str) for v in pair)):
                raise ValueError(f"ParameterMap: `reference_values` must be (name, decimal string) pairs, got {pair!r}")
            name, text = pair
            try:
                number = mpmath.mpf(text.strip())
            except (TypeError, ValueError):
                number = None
            if number is None or not mpmath.isfinite(number):
                raise ValueError(f"ParameterMap: the reference value of {name!r} is not a finite decimal number: "
                                 f"{text!r}")
            exact.append((name, text.strip()))
        values.setflags(write=False)
        object.__setattr__(self, "parameters", parameters)
        object.__setattr__(self, "model_parameters", model_parameters)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "reference_values", tuple(exact))
        for what, array in arrays.items():
            object.__setattr__(self, what, array)

    def select(self, parameters: Sequence[str] | None) -> ParameterMap:
        """The map over a subset (or reordering) of :attr:`parameters` (None: this map)."""
        if parameters is None:
            return self
        names = _names(parameters, "parameters")
        unknown = [n for n in names if n not in self.parameters]
        if unknown:
            raise ValueError(f"`parameters`: {unknown[0]!r} is not a parameter of the parameter map; they are "
                             f"{', '.join(self.parameters)}")
        index = [self.parameters.index(n) for n in names]
        return ParameterMap(names, self.values[index], self.model_parameters, self.jacobian[:, index],
                            self.reference_jacobian[:, index], self.reference_jacobian_error[:, index],
                            self.reference_values, self.description)

    def compose(self, gradient: np.ndarray) -> np.ndarray:
        """``g J``: a gradient over :attr:`model_parameters` (last axis) as one over :attr:`parameters`, with the
        double-precision Jacobian."""
        return np.asarray(gradient, dtype=float) @ self.jacobian

    def compose_reference(self, gradient: np.ndarray, bound: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(g J_ref, bound)``: the reference gradient over :attr:`parameters` and a componentwise bound on its
        error (module docstring), from the model-parameter gradient ``g`` and its bound ``b`` (None: unknown,
        infinite).  The sum is formed in 40-digit arithmetic and rounded once."""
        g = np.asarray(gradient, dtype=float).reshape(-1)
        m, P = self.jacobian.shape
        b = np.full(m, np.inf) if bound is None else np.asarray(bound, dtype=float).reshape(-1)
        if g.shape != (m,) or b.shape != (m,):
            raise ValueError(f"ParameterMap: a reference gradient over {m} model parameters was expected")
        J, E = self.reference_jacobian, self.reference_jacobian_error
        composed = np.empty(P)
        error = np.empty(P)
        with mpmath_precision(dps=40):
            for j in range(P):
                total = mpmath.fsum(mpmath.mpf(float(g[i])) * mpmath.mpf(float(J[i, j])) for i in range(m))
                composed[j] = float(total)
                terms = [abs(total - mpmath.mpf(composed[j]))]  # the rounding to double
                for i in range(m):
                    if J[i, j] == 0 and E[i, j] == 0:
                        continue  # q_i does not depend on theta_j: its gradient's error does not enter
                    if not math.isfinite(b[i]):
                        terms = [mpmath.inf]
                        break
                    bi, Ji, Ei = mpmath.mpf(float(b[i])), mpmath.mpf(float(J[i, j])), mpmath.mpf(float(E[i, j]))
                    terms.append(bi * abs(Ji) + abs(mpmath.mpf(float(g[i]))) * Ei + bi * Ei)
                total_bound = mpmath.fsum(terms)
                # Rounded up: the bound must not shrink in the conversion to double.
                error[j] = math.inf if mpmath.isinf(total_bound) else float(total_bound * (1 + mpmath.mpf(2) ** -50))
        return composed, error
