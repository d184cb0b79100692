"""The forward sensitivity system of a model.

For ``y' = f(t, y, p)``, ``y(t0) = y0(p)`` the sensitivities ``S = dy/dp`` (n x P) satisfy

    S' = J S + F_p,   S(t0) = dy0/dp,   J = df/dy,  F_p = df/dp

(differentiate the ODE with respect to ``p`` and swap the derivatives; Hairer, Nørsett & Wanner I,
Sect. I.14, "variational equation").  This module writes the system out as explicit equations in the
states and sensitivities, so that code generation emits ``J S + F_p`` entry by entry instead of a run-time
matrix product, and the structural zeros of ``J`` cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from ..model import Model
from ._cse import CSEResult, common_subexpressions, operation_count, total_operation_count
from ._jacobian import derivative_matrix, initial_sensitivities, jacobian, parameter_jacobian, select_parameters

__all__ = ["SensitivitySystem", "sensitivity_system", "sensitivity_symbol"]


def sensitivity_symbol(state: sp.Symbol, parameter: sp.Symbol) -> sp.Symbol:
    """The symbol of ``d state / d parameter``, named ``d{state}_d{parameter}`` (e.g. ``dV_dg_Na``)."""
    return sp.Symbol(f"d{state.name}_d{parameter.name}", real=True)


@dataclass(frozen=True, eq=False)
class SensitivitySystem:
    """States and forward sensitivities of a model as one explicit ODE system.

    The augmented state is ``(y, S[:, 0], S[:, 1], ..., S[:, P-1])``: states first, then the
    sensitivities parameter by parameter (column-major, as CVODES stores its ``Ns`` vectors).

    Attributes
    ----------
    model : Model
    parameters : tuple of Symbol, length P
        The parameters differentiated with respect to, in gradient order.
    sensitivities : ImmutableMatrix (n x P) of Symbol
        ``sensitivities[i, j]`` is the symbol of ``d y_i / d p_j``.
    jacobian, parameter_jacobian : ImmutableMatrix
        ``J`` (n x n) and ``F_p`` (n x P), exact.
    sensitivity_rhs : ImmutableMatrix (n x P)
        ``(J S + F_p)[i, j] = sum_k J[i, k] S[k, j] + F_p[i, j]``, summing only structurally non-zero ``J[i, k]``.
    initial_sensitivities : ImmutableMatrix (n x P)
        ``dy0/dp``.
    """

    model: Model
    parameters: tuple[sp.Symbol, ...]
    sensitivities: sp.ImmutableMatrix
    jacobian: sp.ImmutableMatrix
    parameter_jacobian: sp.ImmutableMatrix
    initial_sensitivities: sp.ImmutableMatrix
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def _nonzero_jacobian_columns(self) -> tuple[tuple[int, ...], ...]:
        # From the stored non-zeros (todok keeps exactly the entries != 0), not a scan of all n^2 entries, which
        # costs seconds for a few thousand states.
        rows: list[list[int]] = [[] for _ in range(self.n_states)]
        for i, k in sorted(self.jacobian.todok()):
            rows[i].append(k)
        return tuple(tuple(row) for row in rows)

    @cached_property
    def sensitivity_rhs(self) -> sp.ImmutableMatrix:
        """``(J S + F_p)[i, j] = sum_k J[i, k] S[k, j] + F_p[i, j]`` over structurally non-zero ``J[i, k]``.

        Built on first use: code generation works from :meth:`cse`, which never needs these ``n P``
        expanded rows.
        """
        n, n_p = self.n_states, self.n_parameters
        J, Fp, S = self.jacobian, self.parameter_jacobian, self.sensitivities
        entries = [
            sp.Add(*(J[i, k] * S[k, j] for k in self._nonzero_jacobian_columns[i]), Fp[i, j])
            for i in range(n)
            for j in range(n_p)
        ]
        return sp.ImmutableMatrix(n, n_p, entries)

    @property
    def n_states(self) -> int:
        return self.model.n_states

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    @property
    def augmented_states(self) -> tuple[sp.Symbol, ...]:
        """``(y, S[:, 0], ..., S[:, P-1])`` as symbols, length ``n (P + 1)``."""
        columns = [self.sensitivities[i, j] for j in range(self.n_parameters) for i in range(self.n_states)]
        return (*self.model.states, *columns)

    @property
    def augmented_rhs(self) -> tuple[sp.Expr, ...]:
        """Right-hand side of the augmented system, in the order of :attr:`augmented_states`."""
        columns = [self.sensitivity_rhs[i, j] for j in range(self.n_parameters) for i in range(self.n_states)]
        return (*self.model.rhs, *columns)

    @property
    def augmented_initial_conditions(self) -> tuple[sp.Expr, ...]:
        columns = [self.initial_sensitivities[i, j] for j in range(self.n_parameters) for i in range(self.n_states)]
        return (*self.model.initial_conditions, *columns)

    @cached_property
    def augmented_jacobian(self) -> sp.ImmutableMatrix:
        """Jacobian of the augmented system with respect to the augmented state (second derivatives of f).

        Block structure: ``[[J, 0], [d(J S + F_p)/dy, I_P (x) J]]``; the lower-left blocks hold
        ``sum_k (d J[i,k]/d y_l) S[k, j] + d F_p[i, j]/d y_l``, which Rosenbrock methods and the exact
        derivative of implicit steps (discrete forward mode) need.
        """
        return derivative_matrix(self.augmented_rhs, self.augmented_states)

    def operation_count(self) -> int:
        """Operations to evaluate the augmented right-hand side as written, without sharing.

        Row ``(i, j)`` of ``J S + F_p`` costs, for each non-zero ``J[i, k]``, its own operations plus one
        product, plus ``F_p[i, j]``'s, plus the additions joining the terms; counted from ``J`` and ``F_p``
        so the ``n P`` rows need not be expanded.
        """
        memo: dict[sp.Basic, int] = {}
        total = sum(operation_count(e, memo) for e in self.model.rhs)
        jac_ops = [[operation_count(self.jacobian[i, k], memo) for k in cols] for i, cols in enumerate(self._nonzero_jacobian_columns)]
        for i in range(self.n_states):
            for j in range(self.n_parameters):
                fp = self.parameter_jacobian[i, j]
                terms = len(jac_ops[i]) + (fp != 0)
                total += sum(jac_ops[i]) + len(jac_ops[i]) + operation_count(fp, memo) + max(terms - 1, 0)
        return total

    def cse(self) -> CSEResult:
        """Common subexpressions of the augmented right-hand side, exploiting its structure.

        The sensitivity equations are linear in ``S`` with coefficients ``J[i, k]`` and ``F_p[i, j]``, so
        SymPy's CSE runs once over ``f``, the non-zero ``J`` entries and the non-zero ``F_p`` entries; each
        non-trivial entry becomes a named temporary ``J_i_k`` / ``Fp_i_j`` and the sensitivity rows are
        ``sum_k J_i_k * S[k, j] + Fp_i_j``.  This is exact and avoids running CSE over ``n P`` rows that
        repeat the same coefficients ``P`` times.
        """
        if "cse" in self._cache:
            return self._cache["cse"]
        n, n_p = self.n_states, self.n_parameters
        jac_entries = [(i, k) for i, columns in enumerate(self._nonzero_jacobian_columns) for k in columns]
        fp_entries = [(i, j) for i in range(n) for j in range(n_p) if self.parameter_jacobian[i, j] != 0]
        pieces = [*self.model.rhs, *(self.jacobian[i, k] for i, k in jac_entries),
                  *(self.parameter_jacobian[i, j] for i, j in fp_entries)]
        base = common_subexpressions(pieces, operations_before=self.operation_count())
        reduced_rhs = list(base.reduced[:n])
        reduced_jac = base.reduced[n : n + len(jac_entries)]
        reduced_fp = base.reduced[n + len(jac_entries) :]
        replacements = list(base.replacements)
        taken = set(self.model._symbol_table) | {s.name for s, _ in replacements}
        jac_prefix, fp_prefix = _free_prefix("J", taken), _free_prefix("Fp", taken)
        coefficient: dict[tuple[str, int, int], sp.Expr] = {}
        for (i, k), expr in zip(jac_entries, reduced_jac):
            if expr.is_Atom:
                coefficient[("J", i, k)] = expr
            else:
                symbol = sp.Symbol(f"{jac_prefix}_{i}_{k}")
                replacements.append((symbol, expr))
                coefficient[("J", i, k)] = symbol
        for (i, j), expr in zip(fp_entries, reduced_fp):
            if expr.is_Atom:
                coefficient[("Fp", i, j)] = expr
            else:
                symbol = sp.Symbol(f"{fp_prefix}_{i}_{j}")
                replacements.append((symbol, expr))
                coefficient[("Fp", i, j)] = symbol
        rows_by_i = self._nonzero_jacobian_columns
        sens_rows = []
        for j in range(n_p):
            for i in range(n):
                terms = [coefficient[("J", i, k)] * self.sensitivities[k, j] for k in rows_by_i[i]]
                if ("Fp", i, j) in coefficient:
                    terms.append(coefficient[("Fp", i, j)])
                sens_rows.append(sp.Add(*terms))
        reduced = (*reduced_rhs, *sens_rows)
        after = total_operation_count([e for _, e in replacements] + list(reduced))
        result = CSEResult(tuple(replacements), tuple(reduced), base.operations_before, after)
        self._cache["cse"] = result
        return result


def _free_prefix(prefix: str, taken: set[str]) -> str:
    """``prefix`` with leading underscores added until no taken name starts with ``prefix_``."""
    while any(name.startswith(prefix + "_") for name in taken):
        prefix = "_" + prefix
    return prefix


def sensitivity_system(model: Model, parameters: Sequence[str] | None = None) -> SensitivitySystem:
    """The forward sensitivity system ``S' = (df/dy) S + df/dp``, ``S(t0) = dy0/dp`` of ``model``.

    Parameters
    ----------
    model : Model
    parameters : sequence of str, optional
        Parameter names to differentiate with respect to, in the order of the gradient; all by default.

    Returns
    -------
    SensitivitySystem
        Exact SymPy expressions; ``augmented_rhs`` is the (n (P + 1))-dimensional ODE right-hand side.

    References
    ----------
    Hairer, Nørsett & Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., Sect. I.14.
    """
    chosen = select_parameters(model, parameters)
    names = [p.name for p in chosen]
    J = jacobian(model)
    Fp = parameter_jacobian(model, names)
    S = sp.ImmutableMatrix(
        model.n_states, len(chosen), [sensitivity_symbol(y, p) for y in model.states for p in chosen]
    )
    clash = {s.name for s in S} & set(model._symbol_table)
    if clash:
        from .._errors import DerivationError

        raise DerivationError(
            f"sensitivity symbol name {sorted(clash)[0]!r} clashes with a name of the model; rename that name"
        )
    return SensitivitySystem(
        model=model,
        parameters=chosen,
        sensitivities=S,
        jacobian=J,
        parameter_jacobian=Fp,
        initial_sensitivities=initial_sensitivities(model, names),
    )
