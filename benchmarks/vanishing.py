"""Timings of the vanishing-gradient study: the full ``symsens vanishing`` run (target < 60 s) and the stiff neural ODE experiment.

    python benchmarks/vanishing.py

Compilation is timed separately (first run, private cache) from the warm run (kernels loaded from the cache).
"""

from __future__ import annotations

import os
import tempfile
import time


def main() -> None:
    from symsens.cli import main as cli

    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        os.environ["SYMSENS_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        cli(["vanishing", "--out", out])
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        cli(["vanishing", "--out", out])
        warm = time.perf_counter() - t0
        from symsens.vanishing import fit_study, neural_gradient_study, remedy_table

        t0 = time.perf_counter()
        neural_gradient_study()
        neural_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        neural_gradient_study()
        neural_warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        remedy_table()
        remedies = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit = fit_study()
        fit_seconds = time.perf_counter() - t0
        reference_seconds = next(iter(fit.runs.values())).seconds
    print(f"symsens vanishing (all figures): cold cache {cold:.1f} s, warm cache {warm:.1f} s (target < 60 s)")
    print(f"neural ODE gradient study (6 sources x 3 ratios): cold {neural_cold:.1f} s, warm {neural_warm:.1f} s")
    print(f"neural ODE remedy table (incl. 1.5e6-step step-limit run): {remedies:.1f} s")
    print(f"neural ODE (k1, k3) fit, 13 gradient sources x 30 iterations: {fit_seconds:.1f} s "
          f"(of which the reference source, 30 calls of symsens.reference at 8 digits: {reference_seconds:.1f} s)")


if __name__ == "__main__":
    main()
