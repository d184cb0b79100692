"""Start-up cost of symsens in a fresh process whose compiled libraries are already in the disk cache.

What a user pays before the first number comes back when nothing has to be compiled: ``import symsens``,
``load_model`` and the first ``solve``, which must find the cached library without SymPy derivation or code
generation, and (once the model has been solved before) without importing SymPy at all.  Every figure is the
median over ``--repeats`` fresh subprocesses (at least 5); each subprocess times its own stages with
``time.perf_counter``.  Columns (milliseconds):

* ``import``: ``import symsens`` (NumPy's import included: the package imports it);
* ``load``: ``symsens.load_model(...)``: from the model's cached summary when there is one (no SymPy), else
  built from its text (SymPy's import and the expressions);
* ``solve``: the first solve of the process, including the imports of the solve path;
* ``beyond``: ``load + solve``, what the process spends beyond ``import symsens``;
* ``again``: the same solve after clearing every in-memory cache of symsens (memoised solvers, method tables,
  the runtime header, the model and generator digests, the compiler identity, verified library hashes) with the
  modules still imported: the cold in-process state with a warm disk cache;
* ``warm``: the same solve with everything in memory, i.e. the integration itself; ``solve - warm`` is what
  start-up adds to the first solve;
* ``process``: the whole subprocess measured from outside, interpreter start-up included;
* ``SymPy``: whether loading and the first solve imported SymPy.

Rows: ``import symsens``; ``import + load_model`` (Robertson, which is never solved here and so has no summary: the
first-load path; Hodgkin–Huxley and the calcium neuron, from their summaries); ``import + load +
solve``: Hodgkin–Huxley with forward sensitivities to three parameters with Tsit5 and with Radau IIA 5, and the
calcium neuron with forward sensitivities to all 13 parameters with Tsit5.  Each library is compiled (or
found) once before timing, which also caches the models' summaries.

The subprocesses get a byte-code cache (a private ``PYTHONPYCACHEPREFIX``) even where the environment disables
writing byte code, as installed packages have theirs; ``--source DIR`` times another checkout (e.g. an older
version) in the same way.  ``--profile`` adds where the remaining time goes: the largest imports of the whole
run (``python -X importtime``) and the top functions of the first solve (cProfile, cumulative time).

Where the time goes: ``import symsens`` is NumPy's import (50-100 ms on a loaded machine) and under a
millisecond of its own; ``load_model`` from a summary is the imports of the model class and the cache modules
(dataclasses, hashlib, ctypes), hashing the generator's sources once per process to key the summary, and
reading it (about 20 ms in all); the first solve imports the solve path and checks the library's SHA-256 (about
8 ms before the integration).  Without a summary (the first process that loads a model) ``load_model`` imports
SymPy (~240 ms) and builds the expressions (50-150 ms for Hodgkin–Huxley and the calcium neuron).

Run: ``python benchmarks/warm.py [--repeats 7] [--profile] [--source DIR]``.  Compare medians of one run with
each other rather than across machines.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The checkout whose ``symsens`` the subprocesses import (they run in it: ``python -c`` puts it first on the
#: path); ``--source`` compares another checkout, e.g. an older version, in the same run.
SOURCE = ROOT

HH_PARAMETERS = ["g_Na", "g_K", "g_L"]

#: (label, model, method, sensitivity parameters or None for all)
SOLVES: tuple[tuple[str, str, str, list[str] | None], ...] = (
    ("HH, 3 sensitivities, tsit5", "hodgkin-huxley", "tsit5", HH_PARAMETERS),
    ("HH, 3 sensitivities, radau5", "hodgkin-huxley", "radau5", HH_PARAMETERS),
    ("calcium neuron, forward, tsit5", "calcium-neuron", "tsit5", None),
)

# Runs in each fresh subprocess; prints one JSON line of stage times in seconds.
_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import symsens
t_import = time.perf_counter() - start
result = {"import": t_import}
model_name, method, parameters, stage = json.loads(sys.argv[1])
if stage >= 1:
    start = time.perf_counter()
    model = symsens.load_model(model_name)
    result["load"] = time.perf_counter() - start
if stage >= 2:
    start = time.perf_counter()
    solution = symsens.solve(model, method=method, sensitivity="forward", parameters=parameters)
    result["solve"] = time.perf_counter() - start
    assert solution.status == "success", solution.status
    result["sympy"] = float("sympy" in sys.modules)  # whether loading and the first solve imported SymPy
    # The same solve again with everything in memory: the integration itself, the floor of the rows above.
    start = time.perf_counter()
    symsens.solve(model, method=method, sensitivity="forward", parameters=parameters)
    result["solve_warm"] = time.perf_counter() - start
    # The same solve with every in-memory cache cleared (modules stay imported): the cache-hit path alone.
    # Only modules already imported: importing another one here (the runtime header's imports SymPy) would
    # inflate the process time of the row.
    for module_name, name in (("symsens.integrate._compiled", "_compiled_solver"),
                              ("symsens.integrate._compiled", "_method_spec"),
                              ("symsens.integrate._compiled", "_tableau_code"),
                              ("symsens.integrate._compiled", "_explicit_spec"),
                              ("symsens.integrate._compiled", "_implicit_spec"),
                              ("symsens.codegen._runtime", "runtime_header"),
                              ("symsens.codegen._build", "_compiler_identity"),
                              ("symsens.codegen._kernels", "_generator_digest")):
        function = getattr(sys.modules.get(module_name), name, None)
        if function is not None:
            function.cache_clear()
    getattr(sys.modules["symsens.codegen._kernels"], "_model_digests", {}).clear()
    sys.modules["symsens.codegen._build"]._verified.clear()
    start = time.perf_counter()
    symsens.solve(model, method=method, sensitivity="forward", parameters=parameters)
    result["solve_again"] = time.perf_counter() - start
    result["beyond"] = result["load"] + result["solve"]
print(json.dumps(result))
"""


def _environment() -> dict[str, str]:
    """The subprocesses' environment: this one, with a byte-code cache even where writing it is disabled.

    Installed packages come with their byte code; without it every fresh process compiles each module from
    source, which is not what users pay.  The cache goes to a private directory, never into the source tree.
    """
    environment = dict(os.environ)
    if environment.pop("PYTHONDONTWRITEBYTECODE", None) is not None or sys.flags.dont_write_bytecode:
        environment.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "symsens-bench-pycache"))
    return environment


def _run(arguments: list[object], extra: list[str] | None = None) -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *(extra or []), "-c", _CHILD, json.dumps(arguments)], capture_output=True, text=True,
        cwd=SOURCE, check=False, env=_environment(),
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def _median_runs(arguments: list[object], repeats: int) -> tuple[dict[str, float], float]:
    runs = [_run(arguments) for _ in range(repeats)]
    keys = runs[0][0].keys()
    return {k: statistics.median(r[0][k] for r in runs) for k in keys}, statistics.median(r[1] for r in runs)


def _ms(seconds: float | None) -> str:
    return f"{'':>8}" if seconds is None else f"{seconds * 1e3:8.1f}"


def _importtime(arguments: list[object], top: int = 12) -> list[tuple[float, str]]:
    """The largest cumulative import times (ms) of top-level and symsens imports, from ``-X importtime``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", _CHILD, json.dumps(arguments)],
                          capture_output=True, text=True, cwd=SOURCE, check=False, env=_environment())
    rows: list[tuple[float, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 2 or name.strip().startswith("symsens"):
            rows.append((int(cumulative) / 1e3, name.rstrip()))
    return sorted(rows, reverse=True)[:top]


_PROFILE = r"""
import cProfile, io, json, pstats, sys
import symsens
model_name, method, parameters, _ = json.loads(sys.argv[1])
model = symsens.load_model(model_name)
profile = cProfile.Profile()
profile.enable()
symsens.solve(model, method=method, sensitivity="forward", parameters=parameters)
profile.disable()
out = io.StringIO()
pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(18)
print(out.getvalue())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh subprocesses per row (at least 5)")
    parser.add_argument("--profile", action="store_true", help="also show -X importtime and cProfile summaries")
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to import symsens from")
    args = parser.parse_args()
    global SOURCE
    SOURCE = args.source.resolve()
    repeats = max(args.repeats, 5)

    # Compile (or find) every library once, untimed.
    for _, model_name, method, parameters in SOLVES:
        _run([model_name, method, parameters, 2])

    print(f"symsens from {SOURCE}")
    print(f"medians of {repeats} fresh subprocesses, milliseconds (a loaded machine inflates every figure)\n")
    header = (f"{'what':<54} {'import':>8} {'load':>8} {'solve':>8} {'beyond':>8} {'again':>8} {'warm':>8} "
              f"{'process':>8} {'SymPy':>6}")
    print(header)
    print("-" * len(header))
    rows: list[tuple[str, list[object]]] = [
        ("import symsens", ["hodgkin-huxley", "tsit5", None, 0]),
        # Never solved in the benchmark, so it has no cached summary: built from its text (the miss path).
        ("import + load_model (robertson, never solved: built)", ["robertson", "tsit5", None, 1]),
        ("import + load_model (HH)", ["hodgkin-huxley", "tsit5", None, 1]),
        ("import + load_model (calcium neuron)", ["calcium-neuron", "tsit5", None, 1]),
    ]
    rows += [(f"import + load + solve: {label}", [m, meth, par, 2]) for label, m, meth, par in SOLVES]
    for label, arguments in rows:
        stages, wall = _median_runs(arguments, repeats)
        sympy = stages.get("sympy")
        print(f"{label:<54} {_ms(stages.get('import'))} {_ms(stages.get('load'))} {_ms(stages.get('solve'))} "
              f"{_ms(stages.get('beyond'))} {_ms(stages.get('solve_again'))} {_ms(stages.get('solve_warm'))} "
              f"{_ms(wall)} {'' if sympy is None else ('yes' if sympy else 'no'):>6}")
    print("\nsolve: the first solve of the process (imports of the solve path included); again: the same solve "
          "after clearing every in-memory cache; warm: the same solve with everything in memory (the integration "
          "itself: solve - warm is the start-up cost of the solve); process: the whole subprocess, interpreter "
          "start-up included")

    if args.profile:
        for label, model_name, method, parameters in SOLVES[:2]:
            print(f"\n-X importtime, import + load + solve ({label}): largest cumulative imports, ms")
            for ms, name in _importtime([model_name, method, parameters, 2]):
                print(f"  {ms:8.1f}  {name}")
            print(f"\ncProfile of the first solve ({label}), cumulative:")
            done = subprocess.run([sys.executable, "-c", _PROFILE, json.dumps([model_name, method, parameters, 2])],
                                  capture_output=True, text=True, cwd=SOURCE, check=False, env=_environment())
            print("\n".join(line for line in done.stdout.splitlines() if line.strip())[:6000])


if __name__ == "__main__":
    main()
