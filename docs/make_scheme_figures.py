"""Generate the figures and the number tables of ``docs/schemes*.md`` and ``docs/vanishing-gradients-theory.md``.

Every number and curve comes from the exact analysis in :mod:`symsens.schemes` (floats are made from the exact
polynomials only for plotting).  Run from the repository root::

    python docs/make_scheme_figures.py            # figures into docs/figures/
    python docs/make_scheme_figures.py --tables   # also print the Markdown tables pasted into the docs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mpmath  # noqa: E402
import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402

from symsens.plotting import (  # noqa: E402
    n_step_sensitivity_figure,
    sensitivity_decay_figure,
    sensitivity_ratio_figure,
    stability_figure,
)
from symsens.schemes._analysis import R_infinity, is_A_stable, is_L_stable, register_multistep, scheme_kind  # noqa: E402
from symsens.schemes._decay import decay_asymptotics, n_step_decay, stability_numpy  # noqa: E402
from symsens.schemes._registry import get_scheme, scheme_names  # noqa: E402

FIGURES = ROOT / "docs" / "figures"

#: One representative per family for the per-scheme figures.
REPRESENTATIVES = ("rk4", "dopri5", "gauss-2", "radau-iia-3", "lobatto-iiic-3", "sdirk2", "tr-bdf2", "kvaerno4", "rodas4", "bdf3", "am3")
DECAY_SCHEMES = ("backward-euler", "trapezoid", "gauss-2", "radau-iia-3", "lobatto-iiic-3", "sdirk2", "bdf2", "bdf4", "bdf6")


def _available(names: tuple[str, ...]) -> list[object]:
    known = set(scheme_names())
    return [get_scheme(n) for n in names if n in known]


def figures() -> list[Path]:
    FIGURES.mkdir(parents=True, exist_ok=True)
    written = []
    for scheme in _available(REPRESENTATIVES):
        path = FIGURES / f"stability-{scheme.name}.png"  # type: ignore[attr-defined]
        stability_figure(scheme).savefig(path, dpi=100)
        written.append(path)
    path = FIGURES / "sensitivity-decay.png"
    sensitivity_decay_figure(_available(DECAY_SCHEMES)).savefig(path, dpi=110)
    written.append(path)
    path = FIGURES / "n-step-sensitivity.png"
    n_step_sensitivity_figure(_available(("gauss-2", "radau-iia-3", "lobatto-iiic-3"))).savefig(path, dpi=100)
    written.append(path)
    path = FIGURES / "sensitivity-ratio.png"
    sensitivity_ratio_figure(_available(("backward-euler", "gauss-2", "radau-iia-3", "lobatto-iiic-3")), (1, 10)).savefig(path, dpi=100)
    written.append(path)
    return written


def _fmt(value: sp.Expr, digits: int = 6) -> str:
    value = sp.sympify(value)
    if value.is_Rational and len(str(value)) <= 12:
        return str(value)
    return f"{float(sp.N(value, 20)):.{digits}g}"


def _term(c: sp.Expr, e: sp.Expr, var: str = "z") -> str:
    e = sp.Rational(e)
    power = "" if e == 0 else f" {var}^{e}" if e.q == 1 else f" |{var}|^({e})"
    return f"{_fmt(c)}{power}"


def one_step_table() -> str:
    rows = ["| scheme | family | L | R(∞) | R ~ | R' ~ | z R' ~ | sign R'(x→-∞) | sup \\|x R'(x)\\| | \\|z R'(z)\\| at z = -10^2, -10^4, -10^6 | 5 steps: n R^{n-1} R' ~ |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in scheme_names():
        scheme = get_scheme(name)
        if scheme_kind(scheme) == "multistep" or not is_A_stable(scheme):
            continue
        laws = decay_asymptotics(scheme)
        _, dR = stability_numpy(scheme)
        values = ", ".join(f"{abs(x * dR(x)):.2e}" for x in (-1e2, -1e4, -1e6))
        c5, e5 = n_step_decay(scheme, 5)
        d, e = laws["dR"]
        sign = "+" if float(sp.N(d)) * (-1.0) ** int(e) > 0 else "− (wrong)"
        x = -np.logspace(-3, 9, 4001)
        sup = float(np.max(np.abs(x * dR(x))))
        rows.append(
            f"| {name} | {scheme.family} | {'yes' if is_L_stable(scheme) else 'no'} "  # type: ignore[attr-defined]
            f"| {_fmt(R_infinity(scheme))} | {_term(*laws['R'])} | {_term(*laws['dR'])} | {_term(*laws['zdR'])} | {sign} "
            f"| {sup:.3f} | {values} | {_term(c5, e5)} |"
        )
    return "\n".join(rows)


def multistep_table() -> str:
    from symsens.plotting import multistep_root_numpy

    rows = ["| method | A(α) ° | \\|ζ\\| ~ | \\|z ζ'\\| ~ | \\|z ζ'(z)\\| at z = -10^2, -10^4, -10^6 | \\|ζ(z)\\| at z = -10^6 |",
            "|---|---|---|---|---|---|"]
    from symsens.schemes._analysis import multistep_function

    for name in scheme_names():
        scheme = get_scheme(name)
        if scheme_kind(scheme) != "multistep" or not name.startswith("bdf"):
            continue
        laws = decay_asymptotics(scheme)
        zeta, zd = multistep_root_numpy(scheme, [-1e2, -1e4, -1e6])
        angle = multistep_function("lmm_a_alpha_angle")(scheme)
        rows.append(
            f"| {name} | {angle:.2f} | {_term(*laws['root'])} | {_term(*laws['zdroot'])} | "
            + ", ".join(f"{abs(v):.2e}" for v in zd) + f" | {abs(zeta[-1]):.2e} |"
        )
    return "\n".join(rows)


def exact_row() -> str:
    with mpmath.workdps(30):
        vals = ", ".join(mpmath.nstr(abs(x * mpmath.exp(x)), 3) for x in (-100, -10**4, -10**6))
    return f"exact |z e^z| at the same z: {vals}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", action="store_true", help="print the Markdown tables used in the docs")
    args = parser.parse_args()
    register_multistep()
    for path in figures():
        print(f"wrote {path.relative_to(ROOT)}")
    if args.tables:
        print()
        print(one_step_table())
        print()
        print(multistep_table())
        print()
        print(exact_row())


if __name__ == "__main__":
    main()
