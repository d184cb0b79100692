"""Text, LaTeX and JSON renderings of a model's derivatives."""

from __future__ import annotations

from typing import Any

import sympy as sp

from ..model import Model
from ._jacobian import initial_sensitivities, jacobian, parameter_jacobian
from ._sensitivity import SensitivitySystem

__all__ = ["to_text", "to_latex", "to_json_dict", "expression_string"]


def expression_string(expr: sp.Expr) -> str:
    """``expr`` in SymPy syntax (``sympy.sympify`` of it, with ``exprel`` defined, gives ``expr`` back)."""
    return sp.sstr(expr, full_prec=False)


def _display(expr: sp.Expr) -> sp.Expr:
    """Exact rationals with long denominators shown as decimals (15 significant digits) for reading."""
    replacements = {
        r: sp.Float(r, 15)
        for r in expr.atoms(sp.Rational)
        if not r.is_Integer and r.q > 1000
    }
    return expr.xreplace(replacements) if replacements else expr


def _latex_symbols(system: SensitivitySystem) -> dict[sp.Symbol, sp.Symbol]:
    mapping: dict[sp.Symbol, sp.Symbol] = {}
    for i, y in enumerate(system.model.states):
        for j, p in enumerate(system.parameters):
            mapping[system.sensitivities[i, j]] = sp.Symbol(
                r"S_{%s,%s}" % (sp.latex(y), sp.latex(p))
            )
    return mapping


def to_text(system: SensitivitySystem, *, cse: bool = False) -> str:
    """Plain-text listing: equations, Jacobian entries, sensitivity equations (and CSE temporaries)."""
    model = system.model
    t = model.time
    lines = [f"# model {model.name}: {model.n_states} states, {model.n_parameters} parameters"]
    lines.append("## equations")
    for y, f, y0 in zip(model.states, model.rhs, model.initial_conditions):
        lines.append(f"d{y}/d{t} = {_display(f)}        {y}(0) = {_display(y0)}")
    lines.append("## jacobian df/dy (non-zero entries)")
    for i, yi in enumerate(model.states):
        for k, yk in enumerate(model.states):
            if system.jacobian[i, k] != 0:
                lines.append(f"df[{yi}]/d{yk} = {_display(system.jacobian[i, k])}")
    lines.append(f"## parameter jacobian df/dp (non-zero entries, p = {', '.join(p.name for p in system.parameters)})")
    for i, yi in enumerate(model.states):
        for j, pj in enumerate(system.parameters):
            if system.parameter_jacobian[i, j] != 0:
                lines.append(f"df[{yi}]/d{pj} = {_display(system.parameter_jacobian[i, j])}")
    lines.append("## sensitivity equations S' = J S + F_p")
    if cse:
        result = system.cse()
        lines.append(
            f"# common subexpressions: {result.operations_before} operations before, {result.operations_after} after"
        )
        for symbol, value in result.replacements:
            lines.append(f"{symbol} = {_display(value)}")
        n = model.n_states
        rows = result.reduced[n:]
        for (symbol, row) in zip(system.augmented_states[n:], rows):
            lines.append(f"{symbol}' = {_display(row)}")
    else:
        for j in range(system.n_parameters):
            for i in range(model.n_states):
                lines.append(f"{system.sensitivities[i, j]}' = {_display(system.sensitivity_rhs[i, j])}")
    lines.append("## initial sensitivities dy0/dp (non-zero entries)")
    for i in range(model.n_states):
        for j in range(system.n_parameters):
            if system.initial_sensitivities[i, j] != 0:
                lines.append(f"{system.sensitivities[i, j]}(0) = {_display(system.initial_sensitivities[i, j])}")
    return "\n".join(lines) + "\n"


def to_latex(system: SensitivitySystem, *, cse: bool = False) -> str:
    """A LaTeX ``align*`` block of the model and its sensitivity equations ``\\dot S_{y,p} = ...``."""
    model = system.model
    rename = _latex_symbols(system)
    t = sp.latex(model.time)
    out = [r"\begin{align*}"]
    for y, f in zip(model.states, model.rhs):
        out.append(r"\frac{d %s}{d %s} &= %s \\" % (sp.latex(y), t, sp.latex(_display(f))))
    if cse:
        result = system.cse()
        for symbol, value in result.replacements:
            out.append(r"%s &= %s \\" % (sp.latex(symbol), sp.latex(_display(value).xreplace(rename))))
        rows = result.reduced[model.n_states:]
        for symbol, row in zip(system.augmented_states[model.n_states:], rows):
            out.append(r"\dot %s &= %s \\" % (sp.latex(rename[symbol]), sp.latex(_display(row).xreplace(rename))))
    else:
        for j in range(system.n_parameters):
            for i in range(model.n_states):
                lhs = sp.latex(rename[system.sensitivities[i, j]])
                rhs = sp.latex(_display(system.sensitivity_rhs[i, j]).xreplace(rename))
                out.append(r"\dot %s &= %s \\" % (lhs, rhs))
    if out[-1].endswith(r" \\"):
        out[-1] = out[-1][:-3]
    out.append(r"\end{align*}")
    return "\n".join(out) + "\n"


def to_json_dict(model: Model, system: SensitivitySystem | None = None, *, cse: bool = False) -> dict[str, Any]:
    """Machine-readable derivation: every expression a string in SymPy syntax.

    Keys: ``name``, ``time``, ``states`` (ordered names), ``parameters`` (name -> nominal value, ordered),
    ``rhs``, ``initial_conditions``, ``jacobian`` (row-major, ``df_i/dy_j``), ``parameter_jacobian``
    (row-major, ``df_i/dp_j``), ``initial_sensitivities``, ``intermediates``, ``outputs``, and, when a
    sensitivity system is given, ``sensitivity_parameters`` and ``sensitivity_rhs`` (``[i][j]`` is
    ``d/dt dy_i/dp_j``); with ``cse`` also ``cse`` (temporaries, reduced rows of the augmented system, op counts).
    """
    names = system and [p.name for p in system.parameters]
    J = jacobian(model)
    Fp = parameter_jacobian(model, names)
    out: dict[str, Any] = {
        "name": model.name,
        "time": model.time.name,
        "states": list(model.state_names),
        "parameters": model.nominal_parameters,
        "rhs": [expression_string(e) for e in model.rhs],
        "initial_conditions": [expression_string(e) for e in model.initial_conditions],
        "jacobian": [[expression_string(J[i, j]) for j in range(J.cols)] for i in range(J.rows)],
        "parameter_jacobian": [[expression_string(Fp[i, j]) for j in range(Fp.cols)] for i in range(Fp.rows)],
        "initial_sensitivities": [
            [expression_string(e) for e in row] for row in initial_sensitivities(model, names).tolist()
        ],
        "intermediates": {s.name: expression_string(e) for s, e in model.intermediates},
        "outputs": {name: expression_string(e) for name, e in model.outputs},
    }
    if system is not None:
        out["sensitivity_parameters"] = [p.name for p in system.parameters]
        out["sensitivity_rhs"] = [
            [expression_string(system.sensitivity_rhs[i, j]) for j in range(system.n_parameters)]
            for i in range(model.n_states)
        ]
        if cse:
            result = system.cse()
            out["cse"] = {
                "replacements": [[s.name, expression_string(e)] for s, e in result.replacements],
                "augmented_states": [s.name for s in system.augmented_states],
                "reduced": [expression_string(e) for e in result.reduced],
                "operations_before": result.operations_before,
                "operations_after": result.operations_after,
            }
    return out
