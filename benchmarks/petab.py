"""PEtab benchmark problems: load + derive + compile time, objective and gradient times, beside AMICI.

For each problem in tests/data/petab/ (Boehm_JProteomeRes2014, Crauste_CellSystems2017; Hass et al. 2019):

* ``import+compile cold``: :func:`symsens.petab.load`, the loss's chain rule and the compiled forward-sensitivity
  solver (and the plain solver of the objective), in a fresh process with an empty ``SYMSENS_CACHE_DIR``;
* ``import cached``: the same in a fresh process with the kernels already in that cache;
* ``objective``, ``gradient forward``, ``gradient adjoint-interpolating``: medians of repeated calls in one
  process (after a first call), at rtol 1e-8, atol 1e-11;
* AMICI (if installed; never a symsens dependency): import+compile of the PEtab problem (cold, in a temporary
  folder), then the medians of the objective (the simulations without sensitivities) and of the gradient
  (CVODES forward sensitivities) at the same tolerances, and its negative log-likelihood;
* ``its error``: the NLL's distance from the converged value (symsens at rtol 1e-12, atol 1e-14; AMICI at
  rtol 1e-12 agrees with it to 1e-10).

    python benchmarks/petab.py [--repeats 7]
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

# This script is named petab.py: its own folder must not shadow the `petab` package on the import path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = {
    "Boehm_JProteomeRes2014": ROOT / "tests/data/petab/Boehm_JProteomeRes2014/Boehm_JProteomeRes2014.yaml",
    "Crauste_CellSystems2017": ROOT / "tests/data/petab/Crauste_CellSystems2017/Crauste_CellSystems2017.yaml",
}
RTOL, ATOL = 1e-8, 1e-11

_IMPORT = """
import json, sys, time
start = time.perf_counter()
import symsens.petab
problem = symsens.petab.load(sys.argv[1])
problem.objective(rtol={rtol}, atol={atol})
problem.gradient(rtol={rtol}, atol={atol}).check()
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""


def _import_seconds(path: Path, cache: str) -> float:
    environment = dict(os.environ, SYMSENS_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", _IMPORT.format(rtol=RTOL, atol=ATOL), str(path)], env=environment,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def _median(function, repeats: int) -> float:  # type: ignore[no-untyped-def]
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def symsens_row(name: str, path: Path, repeats: int) -> dict:  # type: ignore[type-arg]
    import symsens.petab

    with tempfile.TemporaryDirectory() as cache:
        cold = _import_seconds(path, cache)
        cached = _import_seconds(path, cache)
    problem = symsens.petab.load(path)
    row = {"problem": name, "import+compile cold": cold, "import cached": cached,
           "nll": problem.objective(rtol=RTOL, atol=ATOL), "converged": problem.objective(rtol=1e-12, atol=1e-14)}
    row["objective"] = _median(lambda: problem.objective(rtol=RTOL, atol=ATOL), repeats)
    row["gradient forward"] = _median(lambda: problem.gradient(rtol=RTOL, atol=ATOL).check(), repeats)
    try:
        row["gradient adjoint-interpolating"] = _median(
            lambda: problem.gradient(method="adjoint-interpolating", rtol=RTOL, atol=ATOL).check(),
            max(1, repeats // 3))
    except Exception as error:  # report, do not hide: the table says it failed
        row["gradient adjoint-interpolating"] = f"failed: {error}"
    return row


def amici_row(name: str, path: Path, repeats: int) -> dict | None:  # type: ignore[type-arg]
    """AMICI (CVODES) on the same problem: the objective and forward-sensitivity gradient of the simulations
    alone (PEtab's parameter mapping and the ExpData objects are built once, outside the timings)."""
    import logging

    try:
        import petab.v1 as petab
        from amici.importers.petab.v1 import import_petab_problem
        from amici.sim.sundials import run_simulations
        from amici.sim.sundials.petab.v1 import create_edatas, fill_in_parameters
        from amici.sim.sundials.petab.v1._parameter_mapping import create_parameter_mapping
    except ImportError:
        return None
    problem = petab.Problem.from_yaml(str(path))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        model = import_petab_problem(problem, output_dir=folder, model_name=f"{name}_bench", compile_=True,
                                     verbose=logging.ERROR)
        compile_seconds = time.perf_counter() - start
        solver = model.create_solver()
        solver.set_relative_tolerance(RTOL)
        solver.set_absolute_tolerance(ATOL)
        edatas = create_edatas(model, problem)
        mapping = create_parameter_mapping(problem, None, scaled_parameters=True, amici_model=model)
        nominal = dict(zip(problem.x_free_ids, problem.x_nominal_free_scaled))
        fill_in_parameters(edatas, nominal, True, mapping, model)

        def run(order: int) -> float:
            solver.set_sensitivity_order(order)
            solver.set_sensitivity_method(1)  # forward sensitivities
            rdatas = run_simulations(model, solver, edatas)
            return -sum(r.llh for r in rdatas)

        nll = run(0)
        objective = _median(lambda: run(0), repeats)
        gradient = _median(lambda: run(1), repeats)
    return {"problem": name, "import+compile cold": compile_seconds, "nll": nll, "objective": objective,
            "gradient forward": gradient}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-amici", action="store_true")
    args = parser.parse_args()
    rows = []
    converged = {}
    for name, path in PROBLEMS.items():
        rows.append(("symsens", symsens_row(name, path, args.repeats)))
        converged[name] = rows[-1][1]["converged"]
        if not args.no_amici:
            try:
                row = amici_row(name, path, args.repeats)
            except Exception as error:
                row = {"problem": name, "error": f"{type(error).__name__}: {error}"}
            if row is not None:
                rows.append(("AMICI", row))
    columns = ["import+compile cold", "import cached", "objective", "gradient forward",
               "gradient adjoint-interpolating"]
    print(f"rtol {RTOL:g}, atol {ATOL:g}; seconds (medians of {args.repeats} runs for objective and gradients)\n")
    print("| tool | problem | NLL at nominal | its error | " + " | ".join(columns) + " |")
    print("|---|---|---|---|" + "---|" * len(columns))
    for tool, row in rows:
        if "error" in row:
            print(f"| {tool} | {row['problem']} | {row['error']} | |" + " |" * len(columns))
            continue
        cells = []
        for column in columns:
            value = row.get(column)
            cells.append("—" if value is None else value if isinstance(value, str) else f"{value:.3g}")
        error = abs(row["nll"] - converged[row["problem"]])
        print(f"| {tool} | {row['problem']} | {row['nll']:.10g} | {error:.1e} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
