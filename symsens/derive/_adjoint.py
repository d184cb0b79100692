"""The continuous adjoint system of a model and a loss (reverse-mode sensitivities).

For ``y' = f(t, y, p)``, ``y(t0) = y0(p)`` on ``[t0, t1]`` and a loss made of an integral term and a pointwise
term at the data times ``t0 <= t_1 <= ... <= t_K <= t1``,

    L(p) = int_{t0}^{t1} g(t, y, p) dt  +  sum_k l(t_k, y(t_k), p; d_k),

the adjoint ``lambda(t)`` (n) solves, backwards from ``t1``,

    lambda' = -J^T lambda - (dg/dy)^T,               J = df/dy,
    lambda(t1) = 0,
    lambda(t_k-) = lambda(t_k+) + (dl/dy)^T(t_k)     at each data time (a data time at t1 jumps at once),

and the gradient is

    dL/dp = lambda(t0)^T dy0/dp + int_{t0}^{t1} (lambda^T F_p + dg/dp) dt + sum_k (dl/dp)(t_k),   F_p = df/dp.

Proof in one line: ``d/dt (lambda^T S) = -(dg/dy) S + lambda^T F_p`` for the forward sensitivities
``S' = J S + F_p``; integrating between the data times and summing the jumps gives the formula above
(Cao, Li, Petzold & Serban 2003, Sect. 2; Hindmarsh et al. 2005, Sect. 5 for the CVODES form with the
quadrature ``mu' = -(lambda^T F_p + dg/dp)``, ``mu(t1) = 0``, ``mu(t0) = int_{t0}^{t1} ...``).

The products ``J^T lambda`` and ``F_p^T lambda`` are written out entry by entry over the structurally non-zero
entries of ``J`` and ``F_p`` (no transpose at run time), as named expressions a code generator can emit.

References
----------
Y. Cao, S. Li, L. Petzold and R. Serban, "Adjoint sensitivity analysis for differential-algebraic equations:
the adjoint DAE system and its numerical solution", SIAM J. Sci. Comput. 24(3) (2003) 1076-1089.
A. C. Hindmarsh, P. N. Brown, K. E. Grant, S. L. Lee, R. Serban, D. E. Shumaker and C. S. Woodward,
"SUNDIALS: Suite of nonlinear and differential/algebraic equation solvers", ACM TOMS 31(3) (2005) 363-396.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from .._errors import DerivationError
from ..model import Model
from ._jacobian import derivative_matrix, initial_sensitivities, jacobian, parameter_jacobian, select_parameters
from ._loss import Loss

__all__ = ["AdjointSystem", "adjoint_system", "adjoint_symbol", "adjoint_to_text", "adjoint_to_latex",
           "adjoint_to_json_dict"]


def adjoint_symbol(state: sp.Symbol) -> sp.Symbol:
    """The symbol of the adjoint of ``state``, named ``lambda_{state}`` (e.g. ``lambda_V``)."""
    return sp.Symbol(f"lambda_{state.name}", real=True)


def _quadrature_symbol(parameter: sp.Symbol) -> sp.Symbol:
    return sp.Symbol(f"mu_{parameter.name}", real=True)


@dataclass(frozen=True, eq=False)
class AdjointSystem:
    """The adjoint equations of a model and a loss, exactly (see the module docstring for the maths).

    Attributes
    ----------
    model : Model
    parameters : tuple of Symbol, length P
        The parameters of the gradient, in gradient order.
    adjoints : tuple of Symbol, length n
        ``lambda_i``, the adjoint of state ``y_i`` (named ``lambda_<state>``).
    quadratures : tuple of Symbol, length P
        ``mu_j`` (named ``mu_<parameter>``), ``mu_j(t) = int_t^{t1} (lambda^T F_p + dg/dp)_j ds``.
    data_symbols : tuple of Symbol
        The data placeholders of the pointwise term (``data_<output>`` for least squares).
    jacobian, parameter_jacobian, initial_sensitivities : ImmutableMatrix
        ``J`` (n x n), ``F_p`` (n x P), ``dy0/dp`` (n x P).
    jacobian_transpose_product : tuple of Expr, length n
        ``(J^T lambda)_i = sum_k J[k, i] lambda_k`` over the non-zero ``J[k, i]``: named ``JT_lambda_<state>``.
    parameter_transpose_product : tuple of Expr, length P
        ``(F_p^T lambda)_j = sum_k F_p[k, j] lambda_k``: named ``FpT_lambda_<parameter>``.
    integrand : Expr
        ``g(t, y, p)`` of the integral term (0 without one).
    integrand_state_gradient, integrand_parameter_gradient : tuple of Expr (n and P)
        ``dg/dy`` and ``dg/dp``.
    pointwise : Expr
        ``l(t, y, p; d)`` of the pointwise term (0 without one).
    jumps : tuple of Expr, length n
        ``(dl/dy)_i``: ``lambda_i(t_k-) = lambda_i(t_k+) + jumps[i]`` evaluated at ``(t_k, y(t_k), p, d_k)``.
    parameter_jumps : tuple of Expr, length P
        ``(dl/dp)_j``, added to the gradient at each data time.
    adjoint_rhs : tuple of Expr, length n
        ``lambda_i' = -(J^T lambda)_i - (dg/dy)_i``, expressions in ``t, y, lambda, p``.
    quadrature_integrand : tuple of Expr, length P
        ``(lambda^T F_p)_j + (dg/dp)_j``; ``dL/dp`` contains its integral over ``[t0, t1]``.
    quadrature_rhs : tuple of Expr, length P
        ``mu_j' = -quadrature_integrand[j]`` (integrated backwards from ``mu(t1) = 0``).
    terminal_condition : tuple of Expr, length n
        ``lambda(t1)`` before any jump at ``t1``: zeros (the losses have no terminal term beyond their data).
    initial_gradient : tuple of Expr, length P
        ``(lambda(t0)^T dy0/dp)_j``, expressions in ``lambda`` and ``p``.
    """

    model: Model
    parameters: tuple[sp.Symbol, ...]
    adjoints: tuple[sp.Symbol, ...]
    quadratures: tuple[sp.Symbol, ...]
    data_symbols: tuple[sp.Symbol, ...]
    jacobian: sp.ImmutableMatrix
    parameter_jacobian: sp.ImmutableMatrix
    initial_sensitivities: sp.ImmutableMatrix
    jacobian_transpose_product: tuple[sp.Expr, ...]
    parameter_transpose_product: tuple[sp.Expr, ...]
    integrand: sp.Expr
    integrand_state_gradient: tuple[sp.Expr, ...]
    integrand_parameter_gradient: tuple[sp.Expr, ...]
    pointwise: sp.Expr
    jumps: tuple[sp.Expr, ...]
    parameter_jumps: tuple[sp.Expr, ...]
    adjoint_rhs: tuple[sp.Expr, ...]
    quadrature_integrand: tuple[sp.Expr, ...]
    quadrature_rhs: tuple[sp.Expr, ...]
    terminal_condition: tuple[sp.Expr, ...]
    initial_gradient: tuple[sp.Expr, ...]

    @property
    def n_states(self) -> int:
        return self.model.n_states

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    @property
    def has_integral(self) -> bool:
        return self.integrand != 0

    @property
    def has_pointwise(self) -> bool:
        return self.pointwise != 0

    def named_products(self) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
        """``(JT_lambda_<state>, (J^T lambda)_i)`` and ``(FpT_lambda_<parameter>, (F_p^T lambda)_j)`` pairs."""
        pairs = [(sp.Symbol(f"JT_lambda_{y.name}", real=True), e)
                 for y, e in zip(self.model.states, self.jacobian_transpose_product)]
        pairs += [(sp.Symbol(f"FpT_lambda_{p.name}", real=True), e)
                  for p, e in zip(self.parameters, self.parameter_transpose_product)]
        return tuple(pairs)

    @property
    def backward_states(self) -> tuple[sp.Symbol, ...]:
        """``(lambda, mu)``: what the interpolating adjoint integrates backwards (length n + P)."""
        return (*self.adjoints, *self.quadratures)

    @property
    def backward_rhs(self) -> tuple[sp.Expr, ...]:
        """``(lambda', mu')`` in the order of :attr:`backward_states`."""
        return (*self.adjoint_rhs, *self.quadrature_rhs)


def _as_losses(loss: Loss | Sequence[Loss] | None) -> tuple[Loss, ...]:
    if loss is None:
        return ()
    if isinstance(loss, Loss):
        return (loss,)
    if isinstance(loss, (str, bytes)):
        raise DerivationError("`loss` must be a symsens.derive.Loss (or a sequence of them), not a string")
    try:
        losses = tuple(loss)
    except TypeError:
        raise DerivationError(f"`loss` must be a symsens.derive.Loss, got {type(loss).__name__}") from None
    for item in losses:
        if not isinstance(item, Loss):
            raise DerivationError(f"`loss` must contain symsens.derive.Loss objects, got {type(item).__name__}")
    return losses


def _transpose_product(matrix: sp.ImmutableMatrix, vector: Sequence[sp.Symbol]) -> tuple[sp.Expr, ...]:
    """``(M^T v)_i = sum_k M[k, i] v_k`` over the structurally non-zero ``M[k, i]``."""
    return tuple(
        sp.Add(*(matrix[k, i] * vector[k] for k in range(matrix.rows) if matrix[k, i] != 0))
        for i in range(matrix.cols)
    )


def adjoint_system(
    model: Model,
    loss: Loss | Sequence[Loss] | None = None,
    parameters: Sequence[str] | None = None,
) -> AdjointSystem:
    """The exact adjoint system ``lambda' = -J^T lambda - (dg/dy)^T`` of ``model`` for ``loss``.

    Parameters
    ----------
    model : Model
    loss : Loss or sequence of Loss, optional
        From :func:`least_squares`, :func:`pointwise_loss` or :func:`integral_loss`; integral terms add to ``g``,
        pointwise terms to ``l``.  None: no loss terms (the homogeneous adjoint ``lambda' = -J^T lambda``).
    parameters : sequence of str, optional
        Parameters of the gradient, in its order; all by default.

    Returns
    -------
    AdjointSystem
        Exact SymPy expressions (module docstring: the equations, their jumps and the gradient quadrature).

    Raises
    ------
    DerivationError
        For an unknown parameter, a loss in symbols that are not the model's, or an adjoint or quadrature name
        (``lambda_<state>``, ``mu_<parameter>``) that clashes with a name of the model.

    References
    ----------
    Cao, Li, Petzold & Serban, SIAM J. Sci. Comput. 24 (2003) 1076-1089, Sect. 2;
    Hindmarsh et al., ACM TOMS 31 (2005) 363-396, Sect. 5 (CVODES adjoint module).
    """
    if not isinstance(model, Model):
        raise DerivationError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    chosen = select_parameters(model, parameters)
    names = [p.name for p in chosen]
    losses = _as_losses(loss)
    adjoints = tuple(adjoint_symbol(y) for y in model.states)
    quadratures = tuple(_quadrature_symbol(p) for p in chosen)
    clash = {s.name for s in (*adjoints, *quadratures)} & set(model._symbol_table)
    if clash:
        raise DerivationError(
            f"adjoint symbol name {sorted(clash)[0]!r} clashes with a name of the model; rename that name"
        )
    data_symbols: list[sp.Symbol] = []
    integral_terms, pointwise_terms = [], []
    allowed = set(model.states) | set(model.parameters) | {model.time}
    for item in losses:
        unknown = sorted(s.name for s in item.expression.free_symbols if s not in allowed and s not in item.data_symbols)
        if unknown:
            raise DerivationError(f"loss {item.name!r} uses {unknown[0]!r}, which is not a name of the model or its data")
        if item.kind == "integral":
            integral_terms.append(item.expression)
        else:
            pointwise_terms.append(item.expression)
            data_symbols.extend(d for d in item.data_symbols if d not in data_symbols)
    clash = {d.name for d in data_symbols} & {s.name for s in (*adjoints, *quadratures)}
    if clash:
        raise DerivationError(f"data name {sorted(clash)[0]!r} clashes with an adjoint symbol")
    g = sp.Add(*integral_terms)
    l = sp.Add(*pointwise_terms)

    J = jacobian(model)
    Fp = parameter_jacobian(model, names)
    dy0dp = initial_sensitivities(model, names)
    jt_lambda = _transpose_product(J, adjoints)
    fpt_lambda = _transpose_product(Fp, adjoints)
    dg_dy = tuple(derivative_matrix([g], model.states))
    dg_dp = tuple(derivative_matrix([g], chosen))
    dl_dy = tuple(derivative_matrix([l], model.states))
    dl_dp = tuple(derivative_matrix([l], chosen))
    adjoint_rhs = tuple(-a - b for a, b in zip(jt_lambda, dg_dy))
    quadrature_integrand = tuple(a + b for a, b in zip(fpt_lambda, dg_dp))
    initial_gradient = _transpose_product(dy0dp, adjoints)
    return AdjointSystem(
        model=model,
        parameters=chosen,
        adjoints=adjoints,
        quadratures=quadratures,
        data_symbols=tuple(data_symbols),
        jacobian=J,
        parameter_jacobian=Fp,
        initial_sensitivities=dy0dp,
        jacobian_transpose_product=jt_lambda,
        parameter_transpose_product=fpt_lambda,
        integrand=g,
        integrand_state_gradient=dg_dy,
        integrand_parameter_gradient=dg_dp,
        pointwise=l,
        jumps=dl_dy,
        parameter_jumps=dl_dp,
        adjoint_rhs=adjoint_rhs,
        quadrature_integrand=quadrature_integrand,
        quadrature_rhs=tuple(-e for e in quadrature_integrand),
        terminal_condition=tuple(sp.S.Zero for _ in model.states),
        initial_gradient=initial_gradient,
    )


# ----------------------------------------------------------------------------------------------------
# Printing (the conventions of symsens.derive._printing: text listing, LaTeX align*, JSON of SymPy strings)
# ----------------------------------------------------------------------------------------------------


def adjoint_to_text(system: AdjointSystem) -> str:
    """Plain-text listing: the loss terms, the named products, the adjoint equations, jumps and quadrature."""
    from ._printing import _display

    model = system.model
    t = model.time
    lines = [f"# adjoint of model {model.name}: {model.n_states} states, "
             f"gradient w.r.t. {', '.join(p.name for p in system.parameters) or 'no parameters'}"]
    lines.append("## loss L = int g dt + sum_k l(t_k)")
    lines.append(f"g = {_display(system.integrand)}")
    lines.append(f"l = {_display(system.pointwise)}")
    lines.append("## products J^T lambda and F_p^T lambda")
    for symbol, expr in system.named_products():
        lines.append(f"{symbol} = {_display(expr)}")
    lines.append(f"## adjoint equations lambda' = -J^T lambda - (dg/dy)^T, backwards from {t}1")
    for a, rhs, end in zip(system.adjoints, system.adjoint_rhs, system.terminal_condition):
        lines.append(f"{a}' = {_display(rhs)}        {a}({t}1) = {_display(end)}")
    lines.append("## jumps at the data times: lambda(t_k-) = lambda(t_k+) + (dl/dy)^T")
    for a, jump in zip(system.adjoints, system.jumps):
        if jump != 0:
            lines.append(f"[{a}] = {_display(jump)}")
    lines.append("## gradient dL/dp = lambda(t0)^T dy0/dp + int (lambda^T F_p + dg/dp) dt + sum_k dl/dp")
    for p, q, e0, lp in zip(system.parameters, system.quadrature_integrand, system.initial_gradient,
                            system.parameter_jumps):
        lines.append(f"dL/d{p}: integrand {_display(q)}; at t0 {_display(e0)}; per data time {_display(lp)}")
    return "\n".join(lines) + "\n"


def adjoint_to_latex(system: AdjointSystem) -> str:
    """A LaTeX ``align*`` block: ``\\dot\\lambda_{y} = ...``, the jumps and the gradient integrands."""
    from ._printing import _display

    model = system.model
    rename = {a: sp.Symbol(r"\lambda_{%s}" % sp.latex(y)) for a, y in zip(system.adjoints, model.states)}

    def tex(expr: sp.Expr) -> str:
        return sp.latex(_display(sp.sympify(expr)).xreplace(rename))

    out = [r"\begin{align*}"]
    for y, a, rhs in zip(model.states, system.adjoints, system.adjoint_rhs):
        out.append(r"\dot %s &= %s \\" % (sp.latex(rename[a]), tex(rhs)))
    for a, jump in zip(system.adjoints, system.jumps):
        if jump != 0:
            out.append(r"%s(t_k^-) &= %s(t_k^+) + \left(%s\right) \\" % (sp.latex(rename[a]), sp.latex(rename[a]), tex(jump)))
    for p, q, e0, lp in zip(system.parameters, system.quadrature_integrand, system.initial_gradient,
                            system.parameter_jumps):
        lhs = r"\frac{\partial L}{\partial %s}" % sp.latex(p)
        terms = [r"\left(%s\right)\big|_{t_0}" % tex(e0)] if e0 != 0 else []
        if q != 0:
            terms.append(r"\int_{t_0}^{t_1} \left(%s\right) dt" % tex(q))
        if lp != 0:
            terms.append(r"\sum_k \left(%s\right)\big|_{t_k}" % tex(lp))
        out.append(r"%s &= %s \\" % (lhs, " + ".join(terms) if terms else "0"))
    if out[-1].endswith(r" \\"):
        out[-1] = out[-1][:-3]
    out.append(r"\end{align*}")
    return "\n".join(out) + "\n"


def adjoint_to_json_dict(system: AdjointSystem) -> dict[str, Any]:
    """Machine-readable adjoint system: every expression a string in SymPy syntax.

    Keys: ``name``, ``time``, ``states``, ``parameters`` (the gradient's, in order), ``adjoints``,
    ``quadratures``, ``data``, ``integrand``, ``pointwise``, ``products`` (name -> ``J^T lambda`` / ``F_p^T lambda``
    entry), ``adjoint_rhs``, ``terminal_condition``, ``jumps``, ``parameter_jumps``, ``quadrature_integrand``,
    ``quadrature_rhs``, ``initial_gradient``.
    """
    from ._printing import expression_string as s

    model = system.model
    return {
        "name": model.name,
        "time": model.time.name,
        "states": list(model.state_names),
        "parameters": [p.name for p in system.parameters],
        "adjoints": [a.name for a in system.adjoints],
        "quadratures": [q.name for q in system.quadratures],
        "data": [d.name for d in system.data_symbols],
        "integrand": s(system.integrand),
        "pointwise": s(system.pointwise),
        "products": {symbol.name: s(expr) for symbol, expr in system.named_products()},
        "adjoint_rhs": [s(e) for e in system.adjoint_rhs],
        "terminal_condition": [s(e) for e in system.terminal_condition],
        "jumps": [s(e) for e in system.jumps],
        "parameter_jumps": [s(e) for e in system.parameter_jumps],
        "quadrature_integrand": [s(e) for e in system.quadrature_integrand],
        "quadrature_rhs": [s(e) for e in system.quadrature_rhs],
        "initial_gradient": [s(e) for e in system.initial_gradient],
    }
