"""PEtab benchmark problems, work against precision: symsens beside AMICI at equal accuracy.

For each problem in tests/data/petab/ (Boehm_JProteomeRes2014, Crauste_CellSystems2017; Hass et al. 2019):

* ``import+compile cold``: :func:`symsens.petab.load`, one objective and one gradient (default scheme ``auto``,
  its stiffness probe included; rtol 1e-8),
  in a fresh process with an empty ``SYMSENS_CACHE_DIR`` (so every kernel is generated and compiled);
  ``import cached``: the same with the kernels already in that cache (medians of ``--cold-repeats`` runs).
  AMICI: its PEtab import and compile (once).
* **reference**: the negative log-likelihood (NLL) and its gradient at the nominal point, converged: symsens
  ``rodas5p`` with the sensitivities in the error norm, rtol 1e-13, atol 1e-16.  Printed beside it: its distance
  from the same at rtol 1e-14 and from AMICI at rtol 1e-12 (the reference's own error is below those).
* **work–precision**: for each tool and setting (symsens: ``auto``, the default, which runs the scheme its
  stiffness probe chose for the problem (printed), and each scheme, with forward sensitivities outside or
  inside the error norm (``:forward-error-control``); AMICI: CVODES BDF with forward
  sensitivities) and each rtol in 1e-4 ... 1e-10 (atol = rtol / 1000 for both): the NLL's error
  ``|L - L_ref|``, the gradient's relative error ``max_j |g_j - g_ref_j| / max_j |g_ref_j|``, and the medians
  of the CPU times of ``--repeats`` calls of the objective (plain solve + NLL) and of the gradient (forward
  sensitivities + chain rule), each after a first call.  AMICI's calls are ``run_simulations`` on ExpData
  objects made once (PEtab's parameter mapping is outside the timings), its gradient error from
  ``simulate_petab``'s gradient on the estimation scale at the same settings.
* **time to accuracy**: per tool, the fastest of its runs whose errors meet a target (objective: its NLL error,
  from the plain solve, whose steps differ from the sensitivity solve's; gradient: its NLL error alone at
  1e-3, 1e-6, 1e-8, then NLL and gradient errors together), for the default (``auto``), the previous default
  (``rodas4``) and the fastest symsens setting, and the ratios AMICI / symsens (above 1: symsens is faster).
  A setting that fails with "too many steps" (an explicit scheme on a stiff problem) is not run at tighter
  rtols.

    python benchmarks/petab.py [--repeats 7] [--cold-repeats 3] [--no-amici] [--no-import]
                               [--settings auto,rodas4,bdf:forward-error-control,...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This script is named petab.py: its own folder must not shadow the `petab` package on the import path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = {
    "Boehm_JProteomeRes2014": ROOT / "tests/data/petab/Boehm_JProteomeRes2014/Boehm_JProteomeRes2014.yaml",
    "Crauste_CellSystems2017": ROOT / "tests/data/petab/Crauste_CellSystems2017/Crauste_CellSystems2017.yaml",
}
RTOLS = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12)
#: The converged reference: rodas5p with the sensitivities in the error norm (CVODES' errconS); without that the
#: gradient of Crauste converges 100x slower than its NLL (its sensitivities grow 1e4-fold above the states and the
#: gradient's terms cancel 1e4-fold).
REFERENCE = ("rodas5p", "forward-error-control", 1e-13, 1e-16)
DEFAULT_SCHEME = "auto"
PREVIOUS_DEFAULT = "rodas4"
#: Accuracy targets: the objective's NLL error; the gradient's (NLL error, gradient relative error).
OBJECTIVE_TARGETS = (1e-3, 1e-6, 1e-8)
GRADIENT_TARGETS = ((1e-3, math.inf), (1e-6, math.inf), (1e-8, math.inf), (1e-3, 1.0), (1e-6, 1e-2), (1e-6, 1e-4))

_IMPORT = """
import json, sys, time
start = time.perf_counter()
import symsens.petab
problem = symsens.petab.load(sys.argv[1])
problem.objective(rtol=1e-8, atol=1e-11)
problem.gradient(rtol=1e-8, atol=1e-11).check()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _import_seconds(path: Path, cache: str) -> float:
    environment = dict(os.environ, SYMSENS_CACHE_DIR=cache)
    run = subprocess.run([sys.executable, "-c", _IMPORT, str(path)], env=environment, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"the import run of {path.name} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])["seconds"]


def _median(function, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Median CPU time of the process (``time.process_time``, all its threads) per call: on a machine shared with
    other work it is far less disturbed than wall time; both tools run single-threaded here."""
    function()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return statistics.median(times)


def _errors(loss: float, gradient: np.ndarray, reference: tuple[float, np.ndarray]) -> tuple[float, float]:
    nll, g = reference
    return abs(loss - nll), float(np.max(np.abs(np.asarray(gradient) - g)) / np.max(np.abs(g)))


def symsens_runs(path: Path, settings: list[str], repeats: int) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    """``settings``: ``scheme`` (forward sensitivities) or ``scheme:method`` (e.g. ``rodas4:forward-error-control``)."""
    import symsens.petab
    from symsens import IntegrationError

    problem = symsens.petab.load(path)
    scheme, method, rtol, atol = REFERENCE
    reference = problem.gradient(scheme=scheme, method=method, rtol=rtol, atol=atol).check()
    ref = (float(reference.loss), np.asarray(reference.gradient))
    tighter = problem.gradient(scheme=scheme, method=method, rtol=rtol / 10, atol=atol / 10).check()
    info = {"reference": ref, "ids": problem.parameter_ids, "tighter": _errors(tighter.loss, tighter.gradient, ref),
            "choice": problem.scheme_choice}
    runs = []
    objective_times: dict[tuple[str, float], tuple[float, float] | str] = {}
    for setting in settings:
        scheme, _, method = setting.partition(":")
        method = method or "forward"
        for rtol in RTOLS:
            atol = rtol / 1000
            row = {"tool": "symsens", "setting": setting, "scheme": scheme, "rtol": rtol}
            try:
                result = problem.gradient(scheme=scheme, method=method, rtol=rtol, atol=atol).check()
            except IntegrationError as error:
                row["failed"] = str(error)
                runs.append(row)
                if error.status == "too many steps":  # a stiff problem for this scheme: tighter is no better
                    break
                continue
            row["nll error"], row["gradient error"] = _errors(result.loss, result.gradient, ref)
            if scheme == "auto":
                row["label"] = f"auto: {result.scheme}"   # the scheme it ran (GradientResult.scheme)
            row["gradient"] = _median(
                lambda: problem.gradient(scheme=scheme, method=method, rtol=rtol, atol=atol), repeats)
            # The objective (a plain solve) does not depend on the gradient method: timed once per scheme.
            if (scheme, rtol) not in objective_times:
                try:
                    nll = problem.objective(scheme=scheme, rtol=rtol, atol=atol)
                    objective_times[(scheme, rtol)] = (abs(nll - ref[0]), _median(
                        lambda: problem.objective(scheme=scheme, rtol=rtol, atol=atol), repeats))
                except IntegrationError as error:
                    objective_times[(scheme, rtol)] = str(error)
            objective = objective_times[(scheme, rtol)]
            if isinstance(objective, tuple):
                row["objective nll error"], row["objective"] = objective
            runs.append(row)
    return info, runs


def amici_runs(name: str, path: Path, ids: tuple[str, ...], reference: tuple[float, np.ndarray], repeats: int
               ) -> tuple[dict, list[dict]] | None:  # type: ignore[type-arg]
    """AMICI (CVODES BDF, forward sensitivities) on the same problem, at the same rtols."""
    import logging

    try:
        import petab.v1 as petab
        from amici.importers.petab.v1 import import_petab_problem
        from amici.sim.sundials import run_simulations
        from amici.sim.sundials.petab.v1 import create_edatas, fill_in_parameters, simulate_petab
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
        solver.set_max_steps(10**6)
        solver.set_sensitivity_method(1)  # forward sensitivities
        edatas = create_edatas(model, problem)
        mapping = create_parameter_mapping(problem, None, scaled_parameters=True, amici_model=model)
        nominal = dict(zip(problem.x_free_ids, problem.x_nominal_free_scaled))
        fill_in_parameters(edatas, nominal, True, mapping, model)

        def run(order: int) -> float:
            solver.set_sensitivity_order(order)
            rdatas = run_simulations(model, solver, edatas)
            if any(r.status != 0 for r in rdatas):
                raise RuntimeError(f"AMICI status {[r.status for r in rdatas]}")
            return -sum(r.llh for r in rdatas)

        def value_and_gradient() -> tuple[float, np.ndarray]:
            solver.set_sensitivity_order(1)
            result = simulate_petab(problem, amici_model=model, solver=solver, problem_parameters=nominal,
                                    edatas=edatas, parameter_mapping=mapping, scaled_parameters=True,
                                    scaled_gradients=True, log_level=logging.ERROR)
            if any(r.status != 0 for r in result["rdatas"]):
                raise RuntimeError(f"AMICI status {[r.status for r in result['rdatas']]}")
            return -float(result["llh"]), -np.array([result["sllh"][i] for i in ids])

        def at(rtol: float) -> None:
            solver.set_relative_tolerance(rtol)
            solver.set_absolute_tolerance(rtol / 1000)

        at(1e-12)
        converged = value_and_gradient()
        info = {"import+compile cold": compile_seconds, "at 1e-12": _errors(*converged, reference)}
        runs = []
        for rtol in RTOLS:
            at(rtol)
            row = {"tool": "AMICI", "setting": "CVODES BDF", "rtol": rtol}
            try:
                loss, gradient = value_and_gradient()
                nll = run(0)
            except RuntimeError as error:
                row["failed"] = str(error)
                runs.append(row)
                continue
            row["nll error"], row["gradient error"] = _errors(loss, gradient, reference)
            row["objective nll error"] = abs(nll - reference[0])
            row["objective"] = _median(lambda: run(0), repeats)
            row["gradient"] = _median(lambda: run(1), repeats)
            runs.append(row)
    return info, runs


def _fastest(runs: list[dict], what: str, nll_bound: float,  # type: ignore[type-arg]
             gradient_bound: float) -> dict | None:  # type: ignore[type-arg]
    if what == "objective":
        meeting = [r for r in runs if "objective" in r and r["objective nll error"] <= nll_bound]
    else:
        meeting = [r for r in runs if "failed" not in r and r["nll error"] <= nll_bound
                   and r["gradient error"] <= gradient_bound]
    return min(meeting, key=lambda r: r[what]) if meeting else None


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-amici", action="store_true")
    parser.add_argument("--no-import", action="store_true", help="skip the cold/cached import+compile runs")
    parser.add_argument("--cold-repeats", type=int, default=3, help="cold/cached import+compile runs (median)")
    parser.add_argument("--settings", default="auto,rodas4,rodas4:forward-error-control,rodas5p,"
                        "rodas5p:forward-error-control,bdf,tsit5:forward-error-control,"
                        "verner7:forward-error-control")
    args = parser.parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    print(f"per-call times: medians of the CPU time of {args.repeats} calls, milliseconds; atol = rtol / 1000\n")
    for name, path in PROBLEMS.items():
        print(f"## {name}\n")
        if not args.no_import:
            colds, cacheds = [], []
            for _ in range(args.cold_repeats):  # each in a fresh process with an empty kernel cache
                with tempfile.TemporaryDirectory() as cache:
                    colds.append(_import_seconds(path, cache))
                    cacheds.append(_import_seconds(path, cache))
            cold, cached = statistics.median(colds), statistics.median(cacheds)
        info, runs = symsens_runs(path, settings, args.repeats)
        amici = None
        if not args.no_amici:
            try:
                amici = amici_runs(name, path, info["ids"], info["reference"], args.repeats)
            except Exception as error:  # report, do not hide: the table says it failed
                print(f"AMICI failed: {type(error).__name__}: {error}\n")
        if amici is not None:
            runs += amici[1]
        nll, g = info["reference"]
        scheme, method, rtol, atol = REFERENCE
        print(f"reference (symsens {scheme} {method}, rtol {rtol:g}, atol {atol:g}): NLL {nll:.12g}; its distance "
              f"from the same at rtol {rtol / 10:g}: NLL {info['tighter'][0]:.1e}, gradient {info['tighter'][1]:.1e}"
              + (f"; from AMICI at rtol 1e-12: NLL {amici[0]['at 1e-12'][0]:.1e}, "
                 f"gradient {amici[0]['at 1e-12'][1]:.1e}" if amici else "") + "\n")
        choice = info["choice"]
        print(f"auto (the default): {choice.scheme}; {choice.reason} (trial: {choice.trial_steps} steps, "
              f"largest h rho(J) {choice.largest_step_stiffness:.3g})\n")
        if not args.no_import:
            print(f"import+compile cold: symsens {cold:.1f} s (median of {args.cold_repeats}; "
                  f"{min(colds):.1f}–{max(colds):.1f})" +
                  (f", AMICI {amici[0]['import+compile cold']:.1f} s" if amici else "") +
                  f"; symsens import cached {cached:.2f} s\n")
        print("| tool | setting | rtol | NLL error | gradient error | gradient ms | objective's NLL error | "
              "objective ms |")
        print("|---|---|---|---|---|---|---|---|")
        for r in runs:
            if "failed" in r:
                print(f"| {r['tool']} | {r['setting']} | {r['rtol']:.0e} | failed: {r['failed'][:60]} | | | | |")
                continue
            objective = (f"{r['objective nll error']:.1e} | {_ms(r['objective'])}" if "objective" in r
                         else "failed | ")
            print(f"| {r['tool']} | {r['setting']} | {r['rtol']:.0e} | {r['nll error']:.1e} | "
                  f"{r['gradient error']:.1e} | {_ms(r['gradient'])} | {objective} |")
        print("\nTime to accuracy (the fastest run meeting the target; ms, with its setting and rtol):\n")
        print("| call | target | symsens auto (default) | symsens rodas4 (previous default) | symsens, fastest setting "
              "| AMICI | AMICI / auto | AMICI / rodas4 | AMICI / fastest |")
        print("|---|---|---|---|---|---|---|---|---|")
        targets = [("objective", bound, math.inf) for bound in OBJECTIVE_TARGETS]
        targets += [("gradient", nll_bound, gradient_bound) for nll_bound, gradient_bound in GRADIENT_TARGETS]
        for what, nll_bound, gradient_bound in targets:
            bound = f"NLL ≤ {nll_bound:g}" + (f", gradient ≤ {gradient_bound:g}" if math.isfinite(gradient_bound)
                                              else "")
            default = _fastest([r for r in runs if r["setting"] == DEFAULT_SCHEME], what, nll_bound, gradient_bound)
            previous = _fastest([r for r in runs if r["setting"] == PREVIOUS_DEFAULT], what, nll_bound,
                                gradient_bound)
            best = _fastest([r for r in runs if r["tool"] == "symsens"], what, nll_bound, gradient_bound)
            peer = _fastest([r for r in runs if r["tool"] == "AMICI"], what, nll_bound, gradient_bound)

            def cell(r: dict | None) -> str:  # type: ignore[type-arg]
                if r is None:
                    return "not reached"
                setting = r.get("label", r["setting"] if what == "gradient" else r["setting"].partition(":")[0])
                return f"{_ms(r[what])} ({setting}, {r['rtol']:.0e})"

            def ratio(r: dict | None) -> str:  # type: ignore[type-arg]
                return "—" if r is None or peer is None else f"{peer[what] / r[what]:.2f}"

            peer_cell = cell(peer) if any(r["tool"] == "AMICI" for r in runs) else "not run"
            print(f"| {what} | {bound} | {cell(default)} | {cell(previous)} | {cell(best)} | {peer_cell} | "
                  f"{ratio(default)} | {ratio(previous)} | {ratio(best)} |")
        print()


if __name__ == "__main__":
    main()
