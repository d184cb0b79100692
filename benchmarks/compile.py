"""Compile cost: the first use of a model and scheme with an empty kernel cache.

    python benchmarks/compile.py [--repeats 1] [--only SUBSTRING] [--source DIR] [--sizes 8,32,128] [--chain 2000]
    python benchmarks/compile.py --solve-speed 32 [--source DIR]

``--solve-speed N`` instead times the solves of the Brusselator with 2N states once compiled (BDF, rtol = atol =
1e-6, output at t = 10; plain, forward and discrete; median and minimum of 21 calls each, ms), so that a change to the generated
code can be checked not to slow the solves (run it with ``--source`` for the version before).

Every row runs in a fresh subprocess with a fresh, empty ``SYMSENS_CACHE_DIR``: it loads the model, then calls
``compiled_solver(model, parameters, scheme)`` once, which derives the model's routines with SymPy, generates
the C++ and compiles the solver library of the plain and forward modes (for a small model, and in versions
before the discrete modes had a library of their own, the discrete modes too), then ``discrete_solver`` where it
exists (the first use of the discrete modes).  Columns:

* ``first use``: wall seconds of that call (generation + compilation);
* ``compiler``: wall seconds spent waiting for the compiler (both translation units, run side by side, and the
  link);
* ``compiler CPU``: user + system CPU seconds of the compiler processes (``getrusage(RUSAGE_CHILDREN)``), the
  figure that does not depend on what else the machine is doing (wall times on a loaded 2-core machine do);
* ``generation``: ``first use - compiler``: SymPy derivation, common subexpressions and printing;
* ``Python CPU``: user + system CPU seconds of the Python process itself during the call (mostly that
  generation), again independent of the load.  On an idle 2-core machine the first use takes about
  ``Python CPU + compiler CPU / 2`` (the translation units compile side by side, one per core);
* ``+discrete``, ``its CPU``: wall seconds and compiler CPU of the first use of the discrete modes afterwards (0
  where one library runs every mode).

Rows: Hodgkin–Huxley with sensitivities to three parameters (g_Na, g_K, g_L) for Tsit5, Verner 7, Rodas4,
Radau IIA 5 and BDF; the 13-state calcium neuron with all 13 parameters, Rodas4; the 1-D Brusselator
(``benchmarks/scale.py``, 2N states, sensitivities to A, B, alpha) with BDF for each N of ``--sizes``; and a
quadratic chain ``y_0' = -k y_0^2, y_i' = k (y_{i-1}^2 - y_i^2)`` of ``--chain`` states without sensitivities,
BDF; and with ``--network 3,30`` the 500-species mass-action network of ``scale.py --network`` (``_networks.py``)
with sensitivities to its first 3 and 30 rate constants, sparse BDF (its discrete modes not timed).  Medians
over ``--repeats`` subprocesses.  ``--source DIR`` times another checkout (e.g. an older version exported
with ``git archive``) the same way, so before/after tables come from one machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HH = ["g_Na", "g_K", "g_L"]
CALCIUM = ["eNa", "eh", "eK", "eleak", "tauCa", "gNa", "gCaS", "gCaT", "gKa", "gKCa", "gKdr", "gh", "gleak"]

# The child: build the model, time one cold compiled_solver call, report JSON on the last line.
_CHILD = r"""
import json, resource, sys, time
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["benchmarks"])
import sympy as sp
import symsens
from symsens.codegen import _build
from symsens.integrate._compiled import compiled_solver

if spec["model"] == "brusselator":
    import scale
    model = scale.brusselator(spec["size"])
elif spec["model"] == "network":
    from _networks import mass_action_network
    model = mass_action_network(spec["size"], 2 * spec["size"], seed=1)
    spec["parameters"] = list(model.parameter_names[:spec["n_parameters"]])
elif spec["model"] == "chain":
    n = spec["size"]
    y, k = sp.symbols(f"y0:{n}"), sp.Symbol("k")
    rhs = [-k * y[0] ** 2] + [k * (y[i - 1] ** 2 - y[i] ** 2) for i in range(1, n)]
    model = symsens.Model(states=list(y), parameters={"k": 1.0}, rhs=rhs,
                          initial_conditions=[1.0] + [0.0] * (n - 1), name=f"chain-{n}")
else:
    model = symsens.load_model(spec["model"])
waited = [0.0]
run_compilers = _build._run_compilers
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return run_compilers(*args, **kwargs)
    finally:
        waited[0] += time.perf_counter() - start
_build._run_compilers = timed
before = resource.getrusage(resource.RUSAGE_CHILDREN)
own = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
compiled_solver(model, spec["parameters"], spec["scheme"], spec.get("linear", "auto"))
total = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_CHILDREN)
own_after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
python_cpu = (own_after.ru_utime - own.ru_utime) + (own_after.ru_stime - own.ru_stime)
compiler = waited[0]
# Then the first use of the discrete modes: nothing more where one library runs every mode.
from symsens.integrate import _compiled
start = time.perf_counter()
if hasattr(_compiled, "discrete_solver") and spec["parameters"] and spec.get("discrete", True):
    _compiled.discrete_solver(model, spec["parameters"], spec["scheme"])
discrete = time.perf_counter() - start
final = resource.getrusage(resource.RUSAGE_CHILDREN)
discrete_cpu = (final.ru_utime - after.ru_utime) + (final.ru_stime - after.ru_stime)
print(json.dumps({"total": total, "compiler": compiler, "cpu": cpu, "python_cpu": python_cpu, "n": model.n_states,
                  "discrete": discrete, "discrete_cpu": discrete_cpu}))
"""


def _rows(sizes: list[int], chain: int, network: list[int] = ()) -> list[tuple[str, dict]]:
    rows = [(f"HH, 3 sensitivities, {scheme}", {"model": "hodgkin-huxley", "parameters": HH, "scheme": scheme})
            for scheme in ("tsit5", "verner7", "rodas4", "radau-iia-3", "bdf")]
    rows.append(("calcium neuron, 13 sensitivities, rodas4",
                 {"model": "calcium-neuron", "parameters": CALCIUM, "scheme": "rodas4"}))
    rows += [(f"Brusselator {2 * N} states, 3 sensitivities, bdf",
              {"model": "brusselator", "size": N, "parameters": ["A", "B", "alpha"], "scheme": "bdf"}) for N in sizes]
    # The 500-species mass-action network of scale.py --network, sparse BDF, its first P rate constants; the
    # first use of its discrete modes is not timed (minutes of compiling that scale.py's comparison does not use).
    rows += [(f"network 500 species, {p} sensitivities, bdf sparse",
              {"model": "network", "size": 500, "n_parameters": p, "parameters": [], "scheme": "bdf",
               "linear": "sparse", "discrete": False}) for p in network]
    if chain:
        rows.append((f"chain {chain} states, no sensitivities, bdf",
                     {"model": "chain", "size": chain, "parameters": [], "scheme": "bdf"}))
    return rows


def _run(spec: dict, source: Path, timeout: float) -> dict | None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(source) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="symsens-compile-") as cache:
        env["SYMSENS_CACHE_DIR"] = cache
        spec = dict(spec, benchmarks=str(ROOT / "benchmarks"))
        try:
            out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True, text=True,
                                 env=env, cwd=str(source), timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            return None
        except subprocess.CalledProcessError as error:
            print(f"  failed: {error.stderr.strip().splitlines()[-1] if error.stderr else error}", flush=True)
            return None
        return json.loads(out.stdout.strip().splitlines()[-1])


# The child of --solve-speed: compile (or load) once, then time repeated solves.
_SOLVE_CHILD = r"""
import json, statistics, sys, time
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["benchmarks"])
import symsens, scale
model = scale.brusselator(spec["size"])
common = dict(method="bdf", rtol=1e-6, atol=1e-6, t_eval=[10.0], parameters=["A", "B", "alpha"])
out = {}
for label, options in (("plain", {}), ("forward", {"sensitivity": "forward"}), ("discrete", {"sensitivity": "discrete"})):
    symsens.solve(model, **common, **options).check()
    times = []
    for _ in range(21):
        start = time.perf_counter()
        symsens.solve(model, **common, **options)
        times.append(time.perf_counter() - start)
    out[label] = (1e3 * statistics.median(times), 1e3 * min(times))
print(json.dumps(out))
"""


def _solve_speed(size: int, source: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(source) + os.pathsep + env.get("PYTHONPATH", "")
    spec = {"size": size, "benchmarks": str(ROOT / "benchmarks")}
    out = subprocess.run([sys.executable, "-c", _SOLVE_CHILD, json.dumps(spec)], capture_output=True, text=True,
                         env=env, cwd=str(source), check=True)
    times = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"symsens from {source.resolve()}; Brusselator {2 * size} states, BDF, 21 solves: median (min), ms")
    print("  ".join(f"{label} {median:.2f} ({least:.2f})" for label, (median, least) in times.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", default="", help="rows whose label contains this text")
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout whose symsens is timed")
    parser.add_argument("--sizes", default="8,32,128", help="Brusselator N (2N states)")
    parser.add_argument("--chain", type=int, default=2000, help="states of the chain row (0: none)")
    parser.add_argument("--network", default="", help="sensitivity counts of network rows, e.g. 3,30 (none)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    parser.add_argument("--solve-speed", type=int, default=0, help="time the solves of Brusselator N instead")
    args = parser.parse_args()
    if args.solve_speed:
        _solve_speed(args.solve_speed, args.source)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"symsens from {args.source.resolve()}; medians of {args.repeats} cold run(s) per row, seconds")
    print(f"{'row':<48} {'states':>6} {'first use':>10} {'compiler':>9} {'compiler CPU':>13} {'generation':>11} "
          f"{'Python CPU':>11} {'+discrete':>10} {'its CPU':>8}")
    for label, spec in _rows(sizes, args.chain, [int(p) for p in args.network.split(",") if p]):
        if args.only and args.only not in label:
            continue
        results = [r for r in (_run(spec, args.source, args.timeout) for _ in range(args.repeats)) if r]
        if not results:
            print(f"{label:<48} {'':>6} {'timeout/failed':>10}", flush=True)
            continue
        total = statistics.median(r["total"] for r in results)
        compiler = statistics.median(r["compiler"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        python_cpu = statistics.median(r["python_cpu"] for r in results)
        discrete = statistics.median(r.get("discrete", 0.0) for r in results)
        discrete_cpu = statistics.median(r.get("discrete_cpu", 0.0) for r in results)
        print(f"{label:<48} {results[0]['n']:>6} {total:>10.2f} {compiler:>9.2f} {cpu:>13.2f} "
              f"{total - compiler:>11.2f} {python_cpu:>11.2f} {discrete:>10.2f} {discrete_cpu:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
