"""The stiff neural ODE experiment: gradients per scheme and stiffness, a short fit, and the remedies.

    python examples/stiff_neural_ode.py [OUT_DIR]

Prints three tables (gradient error per source x stiffness ratio x parameter; the (k1, k3) fit per gradient source:
final errors and verdicts; remedies with their cost) and writes docs/figures/vanishing-neural-gradients.png and vanishing-neural-fit.png (or into OUT_DIR).
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
    print(f"\nfit of (k1, k3) at stiffness ratio {fit.ratio:g}: {fit.settings['iterations']} preconditioned gradient steps "
          f"from k1 = {fit.start['k1']:g}, k3 = {fit.start['k3']:.4g} (truth 1, {fit.truth['k3']:g}); data: "
          f"{fit.reference_message} ({time.perf_counter() - t0:.1f} s)")
    print(f"{'source':40s} {'k1 error':>9s} {'k1':>10s} {'k3 error':>9s} {'k3':>12s} {'k3 end':>8s} "
          f"{'start dL/dlogk3 err':>19s} {'steps':>7s}")
    for row in fit.table():
        print(f"{row['source']:40s} {row['k1 final error']:9.1e} {row['k1 verdict']:>10s} {row['k3 final error']:9.1e} "
              f"{row['k3 verdict']:>12s} {row['k3 final']:8.4g} {row['k3 start gradient error']:19.1e} "
              f"{row['solver steps']:7d}" + ("" if row["status"] == "success" else f"  {row['status']}"))
    reference_run = next(iter(fit.runs.values()))
    if reference_run.reference_digits:
        print(f"reference source: {min(reference_run.reference_digits)}-{max(reference_run.reference_digits)} verified "
              f"digits per iteration, {reference_run.seconds:.1f} s for {len(reference_run.losses)} calls")
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
