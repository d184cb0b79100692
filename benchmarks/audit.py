"""Time of the default audits (``symsens audit --example NAME --out DIR``) from an empty cache and warm, and
where it goes.

Run: ``python benchmarks/audit.py [--repeats N] [--examples hodgkin-huxley,calcium-neuron]``.

Each run is a fresh interpreter doing what ``symsens audit --example NAME --out DIR`` does (the default audit and
its report with figures), timed phase by phase: import (``import symsens`` and the model), compile (compiling
or loading the solvers), solves, reference (the verified reference gradient), diagnosis, figures (the report's
PNGs, Markdown, HTML and JSON) and the wall time of the whole process.  *Cold* runs use a fresh
``SYMSENS_CACHE_DIR`` (no compiled kernels, no cached reference); *warm* runs reuse the cache the cold run
filled.  Also printed: the same warm run without the reference cache (``--no-cache``).  Medians over
``--repeats`` runs.  Targets for Hodgkin–Huxley: under 60 s cold, under 10 s warm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PHASES = ("import", "compile", "solves", "reference", "diagnosis", "figures")

# One audit as the CLI runs it, timed by phase; prints a JSON line.
_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import symsens
from symsens.audit import audit
from symsens.audit._presets import preset_for
name, out, use_cache = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
model = symsens.load_model(name)
options = preset_for(name)
loss = options.pop("loss", None)
imported = time.perf_counter()
report = audit(model, loss, use_cache=use_cache, **options)
audited = time.perf_counter()
report.write(out)
written = time.perf_counter()
phases = {key: report.timings[key] for key in ("compile", "solves", "reference", "diagnosis")}
phases.update(imported=imported - start, figures=written - audited)
print(json.dumps(phases))
"""


def run_once(name: str, cache: str, use_cache: bool = True) -> dict[str, float]:
    environment = dict(os.environ, SYMSENS_CACHE_DIR=cache)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CHILD, name, out, "1" if use_cache else "0"],
                              env=environment, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    phases["import"] = phases.pop("imported")
    phases["wall"] = wall
    return phases


def row(label: str, runs: list[dict[str, float]]) -> str:
    median = {key: statistics.median(r[key] for r in runs) for key in (*PHASES, "wall")}
    cells = " ".join(f"{median[key]:>9.2f}" for key in PHASES)
    return f"{label:<34} {median['wall']:>8.1f}s {cells}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", default="hodgkin-huxley,calcium-neuron")
    args = parser.parse_args()
    print(f"{'run (median of ' + str(args.repeats) + ')':<34} {'wall':>9} " + " ".join(f"{p:>9}" for p in PHASES))
    for name in args.examples.split(","):
        cold, warm, no_cache = [], [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(run_once(name, cache))
                warm.append(run_once(name, cache))
                no_cache.append(run_once(name, cache, use_cache=False))
        print(row(f"{name}: cold (empty cache)", cold))
        print(row(f"{name}: warm", warm))
        print(row(f"{name}: warm, --no-cache", no_cache))


if __name__ == "__main__":
    main()
