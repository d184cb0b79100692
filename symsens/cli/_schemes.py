"""``symsens schemes`` and ``symsens stability``: the scheme catalogue and one scheme's exact analysis.

``symsens schemes [--json]``
    One line per catalogue scheme: family, stages (steps for multistep methods), order (from the order
    conditions), stage order, A-/L-stability (decided exactly), the A(α) angle of multistep methods, ``R(∞)``
    and the leading term of ``z R'(z)`` at infinity (``|z ζ'(z)|`` for multistep methods).

``symsens stability SCHEME [--json] [--latex] [--plot FILE]``
    ``R(z)`` and its properties and asymptotics; ``--plot`` writes the stability region and the decay of
    ``|R'(x)|``, ``|x R'(x)|`` against the exact ``e^x``, ``|x e^x|``.

The JSON keys are a contract: ``name``, ``family``, ``stability_function`` (SymPy syntax in ``z``, one-step
only, else ``null``), ``order``, ``A_stable``, ``L_stable``, ``R_infinity``, ``a_alpha_degrees`` (multistep, else
``null``) and ``decay``: ``{"R": [c, e], "dR": [c, e], "zdR": [c, e]}`` (one-step; ``c z**e`` the first non-zero
term at infinity) or ``{"root": [c, e], "zdroot": [c, e]}`` (multistep; ``|ζ(z)| ~ c |z|**e`` as ``z → -∞``), with
``c`` a SymPy-syntax string and ``e`` a number.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from .._errors import SchemeError

__all__ = ["register", "scheme_record", "catalogue_records"]


# ----------------------------------------------------------------------------------------------------
# Library access (imported lazily so that ``symsens --help`` stays fast).
# ----------------------------------------------------------------------------------------------------
def _registry() -> Any:
    from ..schemes import _registry

    return _registry


def scheme_aliases() -> dict[str, str]:
    """Alias -> catalogue name, as every command accepts them (``radau5`` -> ``radau-iia-3``)."""
    from ..integrate._compiled import _ALIASES

    return dict(_ALIASES)


def _aliases_of(name: str) -> list[str]:
    return sorted(alias for alias, target in scheme_aliases().items() if target == name)


def _lookup(name: str) -> Any:
    """``get_scheme(name)`` (aliases such as ``radau5`` accepted), with close matches added to the error if the
    registry's message lacks them."""
    registry = _registry()
    name = scheme_aliases().get(name.strip().lower(), name) if isinstance(name, str) else name
    try:
        return registry.get_scheme(name)
    except SchemeError as error:
        message = str(error)
        if "did you mean" in message.lower() or "close match" in message.lower():
            raise
        matches = difflib.get_close_matches(name, list(registry.scheme_names()), n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(matches)}" if matches else ""
        raise SchemeError(f"{message}{hint}") from error


def _number(value: Any) -> int | float:
    import sympy as sp

    value = sp.sympify(value)
    if value.is_Integer:
        return int(value)
    return float(value)


def _term(term: tuple[Any, Any]) -> list[Any]:
    import sympy as sp

    coefficient, exponent = term
    return [sp.sstr(sp.sympify(coefficient)), _number(exponent)]


def _kind(scheme: Any) -> str:
    from ..schemes._analysis import scheme_kind

    return scheme_kind(scheme)


def scheme_record(scheme: Any, *, details: bool = False) -> dict[str, Any]:
    """Everything ``--json`` prints about one scheme (see the module docstring for the keys).

    ``details`` adds the E-polynomial and the exact numerator/denominator (one-step schemes).
    """
    import sympy as sp

    from ..schemes import _analysis as an
    from ..schemes import _decay as dc
    from ..schemes import _order as od

    an.register_multistep()
    kind = _kind(scheme)
    record: dict[str, Any] = {
        "name": str(getattr(scheme, "name", "")),
        "family": str(getattr(scheme, "family", kind)),
        "kind": kind,
    }
    decay = dc.decay_asymptotics(scheme)
    if kind == "multistep":
        a_alpha = an.multistep_function("lmm_a_alpha_angle")(scheme)
        record.update(
            stages=None,
            steps=int(scheme.steps),
            order=int(od.order(scheme)),
            stage_order=None,
            stability_order=None,
            A_stable=bool(an.is_A_stable(scheme)),
            L_stable=bool(an.is_L_stable(scheme)),
            stiff_decay=bool(an.has_stiff_decay(scheme)),
            zero_stable=bool(an.multistep_function("lmm_is_zero_stable")(scheme)),
            R_infinity=None,
            a_alpha_degrees=float(a_alpha),
            stability_function=None,
            decay={key: _term(value) for key, value in decay.items()},
        )
    else:
        P, Q = an.stability_polynomials(scheme)
        stage_order = od.stage_order(scheme)
        record.update(
            stages=len(scheme.b),
            steps=None,
            order=int(od.order(scheme)),
            stage_order=None if stage_order is None else int(stage_order),
            stability_order=int(an.stability_order(scheme)),
            A_stable=bool(an.is_A_stable(scheme)),
            L_stable=bool(an.is_L_stable(scheme)),
            stiff_decay=bool(an.has_stiff_decay(scheme)),
            zero_stable=None,
            R_infinity=sp.sstr(an.R_infinity(scheme)),
            a_alpha_degrees=None,
            stability_function=sp.sstr(P.as_expr() / Q.as_expr()),
            decay={key: _term(value) for key, value in decay.items()},
        )
        if details:
            record["numerator"] = sp.sstr(P.as_expr())
            record["denominator"] = sp.sstr(Q.as_expr())
            record["E_polynomial"] = sp.sstr(an.e_polynomial(scheme).as_expr())
    claimed = getattr(scheme, "order", None)
    record["claimed_order"] = None if claimed is None else int(claimed)
    record["reference"] = str(getattr(scheme, "reference", ""))
    record["aliases"] = _aliases_of(record["name"])
    return record


def catalogue_records() -> list[dict[str, Any]]:
    """:func:`scheme_record` of every scheme in the registry, in registry order.

    The exact analysis of the whole catalogue takes seconds of SymPy work; its result depends only on the
    scheme and analysis sources, so it is kept in the cache directory under a digest of those sources and the
    symsens version (``catalogue-<digest>.json``) and read back on later calls.  The file is only a speed-up:
    one that cannot be read, parsed or written is ignored and the records are computed.
    """
    path = _catalogue_cache_path()
    if path is not None:
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(records, list) and all(isinstance(r, dict) and "name" in r for r in records):
                return records
        except (OSError, ValueError):
            pass
    registry = _registry()
    records = [scheme_record(registry.get_scheme(name)) for name in registry.scheme_names()]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            partial.write_text(json.dumps(records), encoding="utf-8")
            os.replace(partial, path)  # atomic: a concurrent reader sees the old file or the whole new one
        except OSError:
            pass
    return records


def _catalogue_cache_path() -> Path | None:
    """``<cache dir>/schemes/catalogue-<digest>.json``, the digest covering every source file the records
    depend on (schemes package, this module) and the symsens version; None if there is no usable cache dir."""
    from .. import __version__

    try:
        from ..codegen._build import cache_directory

        root = cache_directory()
    except Exception:  # noqa: BLE001 - no cache is no speed-up, not an error
        return None
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(__version__.encode())
    for source in sorted((package / "schemes").glob("*.py")) + [Path(__file__).resolve()]:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return root / "schemes" / f"catalogue-{digest.hexdigest()[:32]}.json"


# ----------------------------------------------------------------------------------------------------
# Text rendering.
# ----------------------------------------------------------------------------------------------------
def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _law(record: dict[str, Any]) -> str:
    """The leading term of ``z R'(z)`` (one-step) or of ``|z ζ'(z)|`` (multistep), compactly."""
    decay = record["decay"]
    if "zdR" in decay:
        c, e = decay["zdR"]
        return _monomial(c, e, "z")
    key = "zdroot" if "zdroot" in decay else "root"
    c, e = decay[key]
    prefix = "|z zeta'| ~ " if key == "zdroot" else "|zeta| ~ "
    return prefix + _monomial(c, e, "|z|")


def _monomial(coefficient: str, exponent: float | int, var: str) -> str:
    import sympy as sp

    c = _short(coefficient, 12)
    e = sp.nsimplify(exponent, rational=True, tolerance=1e-12) if isinstance(exponent, float) else sp.Integer(exponent)
    if e == 0 or c == "0":
        return c
    if any(ch in c[1:] for ch in "/+-* "):  # keep "(28/3)/z" from reading as 28/(3 z)
        c = f"({c})"
    magnitude = -e if e < 0 else e
    power = var if magnitude == 1 else f"{var}**{magnitude}" if magnitude.q == 1 else f"{var}**({magnitude})"
    if e < 0:
        return f"{c}/{power}"
    return power if c == "1" else f"{c}*{power}"


def _short(text: str, width: int = 22) -> str:
    """A coefficient string as is when short, else as a 6-digit float (exact values are in --json)."""
    import sympy as sp

    if len(text) <= width:
        return text
    value = sp.sympify(text)
    return f"{float(sp.N(value, 20)):.6g}" if value.is_number else text[: width - 1] + "…"


def _fraction(exponent: float | int) -> str:
    import sympy as sp

    return str(sp.nsimplify(exponent, rational=True, tolerance=1e-12)) if isinstance(exponent, float) else str(exponent)


def _readable_infinity(value: str) -> str:
    """SymPy's ``zoo`` (complex infinity: ``|R(z)| -> oo`` in every direction, as for explicit schemes) as ``∞``
    for people; the JSON keeps SymPy's spelling."""
    return "∞" if value == "zoo" else value


def _table(records: list[dict[str, Any]]) -> str:
    header = ["name", "family", "stages", "order", "stage", "A-stable", "L-stable", "A(alpha)", "R(∞)",
              "leading z R'(z) at infinity", "aliases"]
    rows = [header]
    for r in records:
        stages = str(r["stages"]) if r["stages"] is not None else f"k={r['steps']}"
        a_alpha = f"{r['a_alpha_degrees']:.2f}" if r["a_alpha_degrees"] is not None else "-"
        rows.append([
            r["name"],
            r["family"],
            stages,
            str(r["order"]),
            "-" if r["stage_order"] is None else str(r["stage_order"]),
            _yes(r["A_stable"]),
            _yes(r["L_stable"]),
            a_alpha,
            "-" if r["R_infinity"] is None else _short(_readable_infinity(r["R_infinity"]), 14),
            _law(r),
            ", ".join(r.get("aliases") or []) or "-",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _stability_text(scheme: Any, record: dict[str, Any], latex: bool) -> str:
    import sympy as sp

    from ..schemes import _analysis as an
    from ..schemes import _decay as dc

    lines = [f"{record['name']}  ({record['family']}, {record['kind']})"]
    if record["reference"]:
        lines.append(f"  source: {record['reference']}")
    if record["kind"] == "multistep":
        lines.append(f"  steps k = {record['steps']}, order {record['order']}, zero-stable: {_yes(record['zero_stable'])}")
        lines.append(f"  A-stable: {_yes(record['A_stable'])}   A(alpha) = {record['a_alpha_degrees']:.10g} degrees")
        lines.append(f"  stiff decay: {_yes(record['stiff_decay'])}")
        lines.append("  dominant root of rho(zeta) - z sigma(zeta) as z -> -oo:")
        for key, label in (("root", "|zeta(z)|"), ("zdroot", "|z zeta'(z)|")):
            if key in record["decay"]:
                c, e = record["decay"][key]
                lines.append(f"    {label:14s} ~ {c} * |z|**({_fraction(e)})")
        return "\n".join(lines)
    lines.append(f"  stages s = {record['stages']}, order {record['order']} (order conditions), "
                 f"stage order {record['stage_order'] if record['stage_order'] is not None else '-'}, "
                 f"order of R(z) vs exp(z): {record['stability_order']}")
    if getattr(scheme, "tolerance", None) is not None:
        # a decimal tableau: its exact R has rationals with ~40-digit denominators; show what the decimals determine
        approx = sp.N(an.stability_function(scheme), 16)
        lines.append(f"  R(z) ~= {approx}   (published decimals, tolerance {scheme.tolerance}; exact value in --json)")
    else:
        lines.append(f"  R(z) = {record['stability_function']}")
    if latex:
        R = an.stability_function(scheme)
        lines.append(f"  LaTeX: R(z) = {sp.latex(R)}")
        lines.append(f"  LaTeX: R'(z) = {sp.latex(dc.stability_derivative(scheme))}")
    lines.append(f"  A-stable: {_yes(record['A_stable'])}   L-stable: {_yes(record['L_stable'])}   "
                 f"stiff decay: {_yes(record['stiff_decay'])}   R(∞) = {_readable_infinity(record['R_infinity'])}")
    lines.append(f"  E(y) = |Q(iy)|^2 - |P(iy)|^2 = {record.get('E_polynomial', '')}")
    lines.append("  leading terms at z -> oo (first non-zero Laurent term):")
    for key, label in (("R", "R(z)"), ("dR", "R'(z)"), ("zdR", "z R'(z)")):
        c, e = record["decay"][key]
        tex = f"    [{sp.latex(sp.sympify(c) * sp.Symbol('z') ** e)}]" if latex else ""
        lines.append(f"    {label:8s} ~ {c} * z**({e}){tex}")
    lines.append("  one step on y' = lambda(p) y:  dy1/dp = h lambda'(p) R'(z) y0;  "
                 "n steps: n h lambda'(p) R(z)**(n-1) R'(z) y0  (exact: t e^(lambda t) lambda'(p) y0)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Handlers.
# ----------------------------------------------------------------------------------------------------
def _schemes_handler(args: argparse.Namespace) -> int:
    records = catalogue_records()
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(_table(records))
    return 0


def _stability_handler(args: argparse.Namespace) -> int:
    import sympy as sp

    scheme = _lookup(args.scheme)
    record = scheme_record(scheme, details=True)
    if args.plot:
        from ..plotting import stability_figure

        fig = stability_figure(scheme)
        fig.savefig(args.plot, dpi=120)
        record["plot"] = str(args.plot)
    if args.latex and record["kind"] != "multistep":
        from ..schemes import _analysis as an
        from ..schemes import _decay as dc

        record["latex"] = {
            "stability_function": sp.latex(an.stability_function(scheme)),
            "derivative": sp.latex(dc.stability_derivative(scheme)),
        }
    if args.json:
        json.dump(record, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(_stability_text(scheme, record, args.latex))
        if args.plot:
            print(f"  figure written to {args.plot}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``schemes`` and ``stability`` subcommands."""
    schemes = subparsers.add_parser(
        "schemes",
        help="the scheme catalogue with its exact stability analysis",
        description="List every scheme with order, stage order, A-/L-stability, A(alpha), R(inf) and the "
        "leading term of z R'(z) at infinity, all derived exactly from the coefficients, and its aliases.  Aliases "
        "are accepted wherever a scheme is named (symsens solve --scheme, stability, audit --scheme/--schemes).  "
        "The compiled solvers also include bdf: variable-step, variable-order BDF 1-5 (symsens stability bdf1 ... "
        "bdf5 analyse its fixed-order members).",
    )
    schemes.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    schemes.set_defaults(handler=_schemes_handler)

    stability = subparsers.add_parser(
        "stability",
        help="exact stability function, properties and asymptotics of one scheme",
        description="R(z) in closed form, order, A-/L-stability, stiff decay and the leading terms of R, R' and "
        "z R' at infinity (multistep: the dominant root's law), optionally with a figure.",
    )
    stability.add_argument("scheme", metavar="SCHEME", help="scheme name or alias, e.g. radau-iia-3 (radau5), gauss-2, bdf3")
    stability.add_argument("--json", action="store_true", help="print JSON")
    stability.add_argument("--latex", action="store_true", help="also print R(z) and R'(z) in LaTeX")
    stability.add_argument("--plot", metavar="FILE", help="write the stability region and decay figure to FILE")
    stability.set_defaults(handler=_stability_handler)
