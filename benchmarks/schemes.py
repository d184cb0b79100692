"""Time to analyse the scheme catalogue exactly, per scheme, and to draw each scheme's stability figure.

Prints three tables:

1. the whole catalogue (every record ``symsens schemes --json`` prints: stability function, order from the
   rooted-tree conditions, stage order, A-/L-stability decided exactly, stiff decay, decay asymptotics, A(alpha)),
   each run in a **fresh Python process** so nothing is cached, median over ``--repeats`` runs, with the import
   time of symsens reported apart;
2. each scheme analysed alone with all caches cleared (rooted trees stay generated: they are shared by all);
3. the time of ``stability_figure(scheme)`` plus ``savefig`` (PNG, 100 dpi) per scheme.

Run: ``python benchmarks/schemes.py [--repeats N] [--no-figures]``.  Target: whole catalogue < 20 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_CHILD = """
import json, time
t0 = time.perf_counter()
from symsens.cli._schemes import catalogue_records
t1 = time.perf_counter()
records = catalogue_records()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "analysis": t2 - t1, "schemes": len(records)}))
"""


def whole_catalogue(repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "import": statistics.median(r["import"] for r in runs),
        "analysis": statistics.median(r["analysis"] for r in runs),
        "min": min(r["analysis"] for r in runs),
        "max": max(r["analysis"] for r in runs),
        "schemes": runs[0]["schemes"],
    }


def per_scheme(names: list[str]) -> list[tuple[str, float]]:
    import sympy as sp

    from symsens.cli._schemes import scheme_record
    from symsens.schemes import _analysis
    from symsens.schemes._registry import get_scheme

    rows = []
    for name in names:
        _analysis.clear_caches()
        sp.core.cache.clear_cache()
        start = time.perf_counter()
        scheme_record(get_scheme(name))
        rows.append((name, time.perf_counter() - start))
    return rows


def figures(names: list[str]) -> list[tuple[str, float]]:
    from symsens.plotting import stability_figure
    from symsens.schemes._registry import get_scheme

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            scheme = get_scheme(name)
            start = time.perf_counter()
            fig = stability_figure(scheme)
            fig.savefig(Path(tmp) / f"{name}.png", dpi=100)
            rows.append((name, time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process runs of the whole catalogue")
    parser.add_argument("--no-figures", action="store_true", help="skip the figure timings")
    args = parser.parse_args()

    from symsens.schemes._registry import scheme_names

    names = list(scheme_names())
    whole = whole_catalogue(args.repeats)
    print(f"whole catalogue: {whole['schemes']} schemes, exact analysis in a fresh process")
    print(f"  median {whole['analysis']:.2f} s  (min {whole['min']:.2f}, max {whole['max']:.2f}, {args.repeats} runs; "
          f"target < 20 s)   import of symsens: {whole['import']:.2f} s")
    print()
    rows = per_scheme(names)
    fig_rows = dict(figures(names)) if not args.no_figures else {}
    header = f"{'scheme':<18} {'analysis s':>10}" + (f" {'figure s':>9}" if fig_rows else "")
    print(header)
    print("-" * len(header))
    for name, seconds in rows:
        line = f"{name:<18} {seconds:>10.3f}"
        if fig_rows:
            line += f" {fig_rows[name]:>9.3f}"
        print(line)
    print("-" * len(header))
    total = sum(s for _, s in rows)
    line = f"{'sum':<18} {total:>10.2f}"
    if fig_rows:
        line += f" {sum(fig_rows.values()):>9.2f}"
    print(line)
    slowest = sorted(rows, key=lambda r: -r[1])[:3]
    print("slowest analyses: " + ", ".join(f"{n} {s:.2f} s" for n, s in slowest))


if __name__ == "__main__":
    main()
