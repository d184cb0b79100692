"""Time to build and CSE the forward sensitivity system.

Prints a table: for each built-in model and for a generated mass-action network (100 species, 200 rate
constants), the median over repeats of (a) building the sensitivity system with all parameters, (b) its
structure-aware CSE, and the operation counts before/after.  Run: ``python benchmarks/derive.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sympy as sp  # noqa: E402

import symsens  # noqa: E402
from symsens.derive import _jacobian, sensitivity_system  # noqa: E402
from _networks import mass_action_network  # noqa: E402


def _clear_caches() -> None:
    _jacobian.jacobian.cache_clear()
    _jacobian._parameter_jacobian.cache_clear()
    sp.core.cache.clear_cache()


def measure(model: symsens.Model, repeats: int) -> dict[str, float]:
    build, cse = [], []
    for _ in range(repeats):
        _clear_caches()
        start = time.perf_counter()
        system = sensitivity_system(model)
        build.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = system.cse()
        cse.append(time.perf_counter() - start)
    return {
        "build": statistics.median(build),
        "cse": statistics.median(cse),
        "equations": len(system.augmented_rhs),
        "ops_before": result.operations_before,
        "ops_after": result.operations_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = [symsens.load_model(name) for name in symsens.examples()]
    start = time.perf_counter()
    network = mass_action_network(100, 200)
    network_build = time.perf_counter() - start
    models.append(network)
    print(f"(generating the 100-species network model took {network_build:.2f} s)")
    header = f"{'model':<24} {'n':>4} {'P':>4} {'equations':>9} {'build s':>8} {'cse s':>8} {'total s':>8} {'ops before':>11} {'ops after':>10}"
    print(header)
    print("-" * len(header))
    for model in models:
        row = measure(model, args.repeats)
        print(
            f"{model.name:<24} {model.n_states:>4} {model.n_parameters:>4} {row['equations']:>9} "
            f"{row['build']:>8.3f} {row['cse']:>8.3f} {row['build'] + row['cse']:>8.3f} "
            f"{row['ops_before']:>11} {row['ops_after']:>10}"
        )
    print(f"medians of {args.repeats} runs, SymPy caches cleared before each")


if __name__ == "__main__":
    main()
