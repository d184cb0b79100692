"""Time of the default audits (``symsens audit --example NAME``) and where it goes.

Run: ``python benchmarks/audit.py [--repeats N]``.  Prints, for Hodgkin–Huxley and the calcium neuron, the
median wall time over N audits with a warm kernel cache (first use adds one compile per scheme, printed from
the first run), and its split into compile/load, solves, reference and diagnosis (seconds and shares).  Targets: under 60 s each.
"""

from __future__ import annotations

import argparse
import statistics
import time

import symsens
from symsens.audit import audit
from symsens.audit._presets import preset_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", default="hodgkin-huxley,calcium-neuron")
    args = parser.parse_args()
    print(f"{'example':<16} {'first run':>10} {'median':>8} {'compile':>14} {'solves':>14} {'reference':>14} "
          f"{'diagnosis':>14} {'results':>7}")
    for name in args.examples.split(","):
        model = symsens.load_model(name)
        options = preset_for(name)
        loss = options.pop("loss", None)
        times, splits = [], []
        first = None
        for k in range(args.repeats + 1):
            start = time.perf_counter()
            report = audit(model, loss, **options)
            elapsed = time.perf_counter() - start
            if k == 0:
                first = elapsed  # may include compiling (a cold cache)
                continue
            times.append(elapsed)
            splits.append(report.timings)
        median = statistics.median(times)
        share = {key: statistics.median(s[key] for s in splits) for key in ("compile", "solves", "reference", "diagnosis")}
        total = sum(share.values()) or 1.0
        cells = " ".join(f"{share[k]:>7.2f}s ({100 * share[k] / total:>3.0f}%)" for k in
                         ("compile", "solves", "reference", "diagnosis"))
        print(f"{name:<16} {first:>9.1f}s {median:>7.1f}s {cells} {len(report.results):>7}")


if __name__ == "__main__":
    main()
