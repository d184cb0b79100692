"""The stiff neural ODE experiment of issue 8: gradients per scheme and stiffness, a short fit, and the remedies.

    python examples/stiff_neural_ode.py [OUT_DIR]

Prints three tables (gradient error per source x stiffness ratio x parameter; fit progress per source; remedies with
their cost) and writes docs/figures/vanishing-neural-gradients.png and vanishing-neural-fit.png (or into OUT_DIR).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from symsens.vanishing import fit_study, neural_gradient_study, reference_source, remedy_table
from symsens.vanishing._figures import fit_figure, neural_gradient_figure


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    print(f"reference: {reference_source()}")
    t0 = time.perf_counter()
    study = neural_gradient_study()
    print(f"\ngradient of the loss, relative error per parameter ({time.perf_counter() - t0:.1f} s)")
    print(f"{'source':28s} {'ratio':>7s} " + " ".join(f"{p:>9s}" for p in study.parameters))
    for (source, ratio), err in study.errors.items():
        print(f"{source:28s} {ratio:7.0e} " + " ".join(f"{e:9.2e}" for e in err))
    neural_gradient_figure(study).savefig(out / "vanishing-neural-gradients.png", dpi=110)
    t0 = time.perf_counter()
    fit = fit_study()
    print(f"\nfit (Adam, {len(next(iter(fit.runs.values())).losses)} iterations, ratio {fit.ratio:g}; progress 1 = "
          f"reached the truth, 0 = stalled) ({time.perf_counter() - t0:.1f} s)")
    for row in fit.table():
        print(f"{row['source']:52s} loss {row['final_loss']:9.2e} " +
              " ".join(f"{k.split()[0]}:{v:6.2f}" for k, v in row.items() if k.endswith("progress")))
    fit_figure(fit).savefig(out / "vanishing-neural-fit.png", dpi=110)
    t0 = time.perf_counter()
    rows = remedy_table()
    print(f"\nremedies at stiffness ratio 1e6 ({time.perf_counter() - t0:.1f} s)")
    for row in rows:
        if "remedy" in row:
            print(f"{row['remedy']:58s} max rel. error {row['max_relative_error']:9.2e}  k3 {row['err_k3']:9.2e}  "
                  f"steps {row['steps']:8d}  {row['seconds'] * 1e3:9.1f} ms")
        else:
            print(f"reference: {row['reference_source']} ({row['reference_verified_digits']:.1f} verified digits)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "figures")
