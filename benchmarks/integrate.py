"""Work-precision of symsens' compiled integrators against SciPy, measured in one run.

For each problem and tolerance: the median wall time of repeated solves (states only, and states plus forward
sensitivities), the maximum relative error of the final state and sensitivities against a high-accuracy
reference, and the ratio of SciPy's time to symsens' at the same tolerance.  SciPy runs ``solve_ivp`` (through
symsens' NumPy backend: the same augmented system, lambdified, with the exact Jacobian).

Run: ``python benchmarks/integrate.py [--repeats 5] [--quick]``.  Compilation happens once before timing
(cached); what is timed is one ``symsens.solve`` call.  CasADi/CVODES and diffrax are not measured yet.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import symsens  # noqa: E402
from symsens.integrate import solve  # noqa: E402
from symsens.integrate._compiled import method_spec  # noqa: E402


def _problems(quick: bool) -> list[dict]:
    from _networks import mass_action_network

    problems = [
        dict(name="robertson to 1e5", model=symsens.load_model("robertson"), t_span=(0.0, 1e5), parameters=None,
             methods=["radau-iia-3", "rodas4", "rodas5p", "kvaerno5", "bdf"], scipy=["radau", "bdf"], atol_scale=1e-6),
        dict(name="hodgkin-huxley 100 ms", model=symsens.load_model("hodgkin-huxley"), t_span=(0.0, 100.0),
             parameters=["g_Na", "g_K", "g_L"], methods=["tsit5", "verner7", "rodas4", "radau-iia-3"],
             scipy=["radau", "dop853"], atol_scale=1.0),
        dict(name="van der pol mu=1000", model=symsens.load_model("van-der-pol"), t_span=(0.0, 2.0), parameters=None,
             methods=["radau-iia-3", "rodas4", "kvaerno5", "bdf"], scipy=["radau", "bdf"], atol_scale=1.0),
    ]
    if not quick:
        problems.append(
            dict(name="mass-action 50 states", model=mass_action_network(50, 100, seed=3), t_span=(0.0, 10.0),
                 parameters=[f"k{i}" for i in range(5)], methods=["radau-iia-3", "rodas4", "bdf"], scipy=["radau", "bdf"],
                 atol_scale=1e-3)
        )
    return problems


def _available(method: str) -> bool:
    try:
        method_spec(method)
        return True
    except ValueError:
        return False


def _reference(problem: dict) -> tuple[np.ndarray, np.ndarray]:
    model, t1 = problem["model"], problem["t_span"][1]
    sol = solve(model, problem["t_span"], method="radau", backend="numpy", rtol=1e-12, atol=1e-12 * problem["atol_scale"],
                sensitivity="forward", sensitivity_in_norm=True, parameters=problem["parameters"], t_eval=[t1])
    sol.check()
    return sol.y[-1], sol.sensitivities[-1]


def _relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    scale = np.maximum(np.abs(reference), 1e-12 * np.abs(reference).max() + 1e-300)
    return float(np.max(np.abs(value - reference) / scale))


def _time(call, repeats: int) -> tuple[float, object]:
    result = call()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip the 50-state network")
    args = parser.parse_args()
    for problem in _problems(args.quick):
        model, t_span = problem["model"], problem["t_span"]
        y_ref, s_ref = _reference(problem)
        print(f"\n== {problem['name']}: {model.n_states} states, sensitivities w.r.t. "
              f"{', '.join(problem['parameters'] or model.parameter_names)}; medians of {args.repeats}")
        header = f"{'rtol':>7} {'method':<14} {'backend':<8} {'y ms':>9} {'y+S ms':>9} {'steps':>6} {'err y':>9} {'err S':>9} {'scipy/this':>10}"
        print(header)
        print("-" * len(header))
        for rtol in (1e-6, 1e-10):
            atol = rtol * problem["atol_scale"]
            rows = []
            for backend, methods in (("compiled", problem["methods"]), ("numpy", problem["scipy"])):
                for method in methods:
                    if backend == "compiled" and not _available(method):
                        print(f"{rtol:7.0e} {method:<14} {backend:<8} (no compiled integrator yet)")
                        continue
                    common = dict(method=method, backend=backend, rtol=rtol, atol=atol, t_eval=[t_span[1]], max_steps=10**6)
                    if backend == "numpy" and rtol < 1e-8 and model.n_states > 20:
                        continue  # SciPy on 50 x 6 unknowns at 1e-10 takes minutes: not informative
                    t_y, sol_y = _time(lambda: solve(model, t_span, **common), args.repeats)
                    t_s, sol_s = _time(
                        lambda: solve(model, t_span, sensitivity="forward", sensitivity_in_norm=True,
                                      parameters=problem["parameters"], **common),
                        args.repeats,
                    )
                    if not sol_s.success:
                        print(f"{rtol:7.0e} {method:<14} {backend:<8} failed: {sol_s.message}")
                        continue
                    rows.append((method, backend, t_y, t_s, sol_s.stats.accepted_steps,
                                 _relative_error(sol_y.y[-1], y_ref), _relative_error(sol_s.sensitivities[-1], s_ref)))
            best_scipy = min((r[3] for r in rows if r[1] == "numpy"), default=float("nan"))
            for method, backend, t_y, t_s, steps, err_y, err_s in rows:
                ratio = best_scipy / t_s if backend == "compiled" else float("nan")
                print(f"{rtol:7.0e} {method:<14} {backend:<8} {1e3 * t_y:9.3f} {1e3 * t_s:9.3f} {steps:6d} "
                      f"{err_y:9.1e} {err_s:9.1e} {ratio:10.1f}")


if __name__ == "__main__":
    main()
