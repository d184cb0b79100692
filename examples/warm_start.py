"""A model file solved again in a fresh process: no SymPy, no code generation, milliseconds.

    python examples/warm_start.py [MODEL]

MODEL is a model file or a built-in name (default: examples/models/hodgkin-huxley.toml).  The script runs the same
three lines (load the model, solve it with forward sensitivities to every parameter, read its outputs) in two
fresh Python processes one after the other.  The first builds the model from its text and compiles (or finds) its
solver library, which also caches the model's summary; the second makes the model from that summary and loads
the library.  For each it prints the time of each line, whether SymPy was imported, and the final state, which is
the same to the last bit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import symsens
imported = time.perf_counter()
model = symsens.load_model(sys.argv[1])
loaded = time.perf_counter()
solution = symsens.solve(model, method="tsit5", sensitivity="forward")
solved = time.perf_counter()
outputs = solution.outputs
print(json.dumps({
    "import": imported - start, "load": loaded - imported, "solve": solved - loaded,
    "outputs": time.perf_counter() - solved, "sympy": "sympy" in sys.modules,
    "from summary": "_summary" in model.__dict__, "y": [v.hex() for v in solution.y[-1]],
}))
"""


def main(model: str) -> None:
    runs = []
    for label in ("first process", "second process"):
        done = subprocess.run([sys.executable, "-c", _CHILD, model], capture_output=True, text=True, check=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(f"{label}: import {run['import'] * 1e3:7.1f} ms, load_model {run['load'] * 1e3:7.1f} ms, "
              f"solve {run['solve'] * 1e3:8.1f} ms, outputs {run['outputs'] * 1e3:5.1f} ms; "
              f"from its summary: {run['from summary']}; SymPy imported: {run['sympy']}")
    same = runs[0]["y"] == runs[1]["y"]
    print(f"final state: {[float.fromhex(v) for v in runs[1]['y']]} (the same in both processes: {same})")


if __name__ == "__main__":
    default = Path(__file__).resolve().parent / "models" / "hodgkin-huxley.toml"
    main(sys.argv[1] if len(sys.argv) > 1 else str(default))
