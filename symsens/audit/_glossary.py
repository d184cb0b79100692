"""A glossary of the gradient methods an audit compares: what each computes, and which tools compute the same.

Used by the report (its "Gradient methods" section) and by ``symsens audit --explain [METHOD]``.
"""

from __future__ import annotations

import difflib
import textwrap

__all__ = ["GLOSSARY", "explain", "explain_all"]

#: method name -> (one-line summary, what it computes, which tools compute the same)
GLOSSARY: dict[str, tuple[str, str, str]] = {
    "forward": (
        "continuous forward sensitivities, sensitivities not in the error norm",
        "integrates the states y together with S = dy/dp from S' = J S + F_p; the step-size controller "
        "measures the error of y only, so S is as accurate as the steps chosen for y make it",
        "CVODES with errconS off; DiffEqSensitivity's ForwardSensitivity by default; SciPy on the augmented "
        "system (symsens solve --sensitivity forward)",
    ),
    "forward-error-control": (
        "continuous forward sensitivities, sensitivities in the error norm",
        "the same system as `forward`, but the controller also measures the error of S, so the steps shrink "
        "where the sensitivities need them",
        "CVODES with errconS on (its default); symsens solve --sensitivity forward --sensitivity-in-norm",
    ),
    "discrete": (
        "forward-mode AD through the solver, values-only error norm",
        "the exact derivative of the numerical solution the solver produced: every stage, Newton iteration "
        "and interpolation is differentiated, the step sizes are constants and the controller sees values only, "
        "so the differentiated solve takes exactly the steps of the plain one",
        "AD tools whose controller ignores the tangents: JAX/diffrax jacfwd, ForwardDiff through "
        "OrdinaryDiffEq before mid-2020 (symsens solve --sensitivity discrete)",
    ),
    "discrete-tangent-norm": (
        "forward-mode AD through the solver, tangents in the error norm",
        "as `discrete`, but the controller's error norm also sees the tangents (the dual numbers' partials), "
        "so the differentiated solve can take other steps than the plain solve whose gradient it claims to be",
        "ForwardDiff through OrdinaryDiffEq (its default norm on dual numbers, since mid-2020); "
        "symsens solve --sensitivity discrete --sensitivity-in-norm",
    ),
    "discrete-differentiated-steps": (
        "forward-mode AD through the solver and its step-size controller",
        "as `discrete`, but the step sizes are differentiated too: the tangents flow through the error "
        "estimate into h",
        "JAX or PyTorch through a hand-written adaptive loop; symsens solve --sensitivity discrete "
        "--differentiate-steps",
    ),
    "discrete-tangent-norm-differentiated-steps": (
        "forward-mode AD through the solver, tangents in the norm and step sizes differentiated",
        "both switches of `discrete-tangent-norm` and `discrete-differentiated-steps`",
        "AD through a hand-written adaptive loop whose norm is taken of dual numbers",
    ),
    "finite-differences": (
        "central finite differences of the loss",
        "(L(p + h_j e_j) - L(p - h_j e_j)) / (2 h_j) with h_j = rtol^(1/3) |p_j| (1 where p_j = 0), each side "
        "a plain solve with the same scheme and tolerance",
        "the usual cheap check; FiniteDiff.jl, scipy.optimize.approx_fprime (one-sided)",
    ),
    "adjoint-interpolating": (
        "continuous adjoint, state from the forward solve's interpolant",
        "integrates lambda' = -J^T lambda - (dg/dy)^T backwards from t1 with a jump (dl/dy)^T at each data time "
        "and the quadrature of F_p^T lambda, with y(t) from the forward solve's dense output; runs SciPy's "
        "integrator for the scheme (Radau for implicit schemes, BDF for bdf, RK45/DOP853/RK23 for explicit ones) "
        "with adjoint_rtol = rtol and adjoint_atol = atol",
        "CVODES's adjoint module (checkpoints and interpolation); DiffEqSensitivity's InterpolatingAdjoint; "
        "symsens.gradient(method=\"adjoint-interpolating\")",
    ),
    "adjoint-backsolve": (
        "continuous adjoint, state re-integrated backwards",
        "the same adjoint equations, but y is recovered by integrating y' = f backwards from y(t1) together with "
        "lambda (reset to the forward value at each data time); where the forward problem is dissipative the "
        "backward state solve grows like exp(max Re(-lambda) (t1 - t)), and the audit reports how far the "
        "reconstructed y(t0) lands from y0",
        "torchdiffeq's odeint_adjoint, diffrax's BacksolveAdjoint, DiffEqSensitivity's BacksolveAdjoint "
        "(Chen et al. 2018)",
    ),
    "adjoint-discrete": (
        "reverse mode through the solver's accepted steps (discrete adjoint)",
        "the exact reverse-mode derivative of the compiled solve with its accepted step sizes held (the same "
        "number as `discrete`, computed backwards): explicit Runge–Kutta stage by stage with J^T and F_p^T "
        "products; Rosenbrock with the derivative of its re-evaluated Jacobian; SDIRK/ESDIRK, Radau IIA and BDF "
        "through the simplified-Newton iterations the solver actually took; the outputs included, with a "
        "checkpoint every k steps and the steps in between recomputed",
        "reverse-mode AD through the solver: diffrax's RecursiveCheckpointAdjoint, JAX grad through a fixed "
        "step sequence, FATODE's ERK, SDIRK, FIRK and Rosenbrock adjoints (Zhang & Sandu 2014)",
    ),
}


def _known(name: str) -> tuple[str, str, str]:
    if name not in GLOSSARY:
        close = difflib.get_close_matches(name, GLOSSARY, n=2)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"--explain: unknown gradient method {name!r}{hint}; known: {', '.join(GLOSSARY)}")
    return GLOSSARY[name]


def explain(name: str, width: int = 100) -> str:
    """A paragraph on gradient method ``name``: what it computes and which tools compute the same."""
    summary, what, who = _known(name)
    wrap = lambda text: textwrap.fill(text, width=width, initial_indent="  ", subsequent_indent="  ",  # noqa: E731
                                      break_long_words=False, break_on_hyphens=False)
    return "\n".join([f"{name}: {summary}", wrap("computes: " + what), wrap("the same as: " + who)])


def explain_all(width: int = 120) -> str:
    """One entry per gradient method (its summary), wrapped at word boundaries to ``width`` columns."""
    column = max(len(name) for name in GLOSSARY) + 2
    lines = []
    for name, (summary, _, _) in GLOSSARY.items():
        lines.extend(textwrap.wrap(summary, width=max(width, column + 30), initial_indent=name.ljust(column),
                                   subsequent_indent=" " * column, break_long_words=False, break_on_hyphens=False))
    lines.append("")
    lines.append("symsens audit --explain METHOD tells what one computes and which tools compute the same.")
    return "\n".join(lines)
