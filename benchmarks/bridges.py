"""Other tools' gradients (symsens.bridges) beside symsens' own methods: accuracy, closest symsens method, time.

For each problem and tolerance: every tool of :data:`symsens.bridges.TOOLS` that can run the problem computes
``dL/dp`` of the same least-squares loss (a :class:`~symsens.audit.DataLoss` whose data are the model's
trajectory at shifted parameters, computed once by symsens at rtol 1e-13, so that every method fits the same
numbers), and so does ``symsens.gradient`` with each of its methods on a few schemes.  Printed per run:

* ``err``: ``max_j |g_j - g*_j| / max_j |g*_j|`` against ``symsens.true_gradient`` (verified digits);
* ``closest``: the symsens method (and scheme) whose gradient at the same rtol is nearest the tool's, and the
  distance ``max_j |g_j - g^method_j| / max_j |g*_j|``; a distance far below ``err`` means the tool computes
  what that method computes (the same approximation), not only something equally accurate;
* ``ms``: the median wall time of repeated calls after one warm-up (JAX compilation and CasADi construction
  excluded), and the ratio to symsens ``forward`` on the problem's main scheme at the same rtol;
* then, at equal accuracy: for every tool run, the fastest symsens run (forward, discrete or
  adjoint-interpolating, any tolerance and scheme measured) whose error is no larger, and the time ratio.

Problems: Hodgkin–Huxley (the audit's preset fit of V, 201 times over 100 ms, data at g_Na = 115; gradient over
g_Na, g_K, g_L; symsens schemes tsit5, dopri5, bdf) and Robertson (stiff; all three species at 50 times over
40 s, data at every rate x 1.05; gradient over k1, k2, k3; symsens schemes kvaerno5, rodas4, bdf; diffrax runs
Kvaerno5; torchdiffeq has no adaptive implicit solver and is not run; diffrax-backsolve is not run either: its
backward pass re-integrates the stiff state backwards in time, and one call at rtol 1e-4 had not returned after 7
minutes).  atol = rtol / 1000, the audit's default.

Run: ``python benchmarks/bridges.py [--repeats 5] [--budget 20] [--only hodgkin]``.  Needs the ``jax``, ``casadi``
and ``torch`` extras (a missing tool's rows say so).  About 25 minutes on 2 cores, most of it torchdiffeq on
Hodgkin–Huxley (minutes per gradient at rtol 1e-8: eager PyTorch on scalars) and JAX compilation; Robertson
alone (``--only robertson``) about 6 minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

import symsens  # noqa: E402
from symsens.audit._losses import DataLoss, loss_plan  # noqa: E402
from symsens.bridges import TOOLS, gradient_provider  # noqa: E402


@dataclass
class Problem:
    name: str
    model: Any
    t_span: tuple[float, float]
    loss: DataLoss
    parameters: tuple[str, ...]
    schemes: tuple[str, ...]          # symsens schemes compared
    main_scheme: str                  # symsens forward on this scheme is the time ratio's denominator
    adjoint_scheme: str               # SciPy scheme of adjoint-interpolating
    tools: tuple[str, ...]
    diffrax_solver: str
    rtols: tuple[float, ...]


def _problems() -> list[Problem]:
    hh = symsens.load_model("hodgkin-huxley")
    grid = np.linspace(0.0, 100.0, 201)
    p_data = np.asarray(hh.parameter_values)
    p_data[hh.parameter_names.index("g_Na")] = 115.0
    data = symsens.solve(hh, (0.0, 100.0), p=p_data, method="verner7", rtol=1e-13, atol=1e-13, t_eval=grid)
    rob = symsens.load_model("robertson")
    rgrid = np.linspace(0.8, 40.0, 50)
    r_data = np.asarray(rob.parameter_values) * 1.05
    rsol = symsens.solve(rob, (0.0, 40.0), p=r_data, method="radau-iia-3", rtol=1e-13, atol=1e-17, t_eval=rgrid)
    return [
        Problem("hodgkin-huxley", hh, (0.0, 100.0), DataLoss(grid, data.y[:, :1], ("V",)), ("g_Na", "g_K", "g_L"),
                ("tsit5", "dopri5", "bdf"), "tsit5", "dopri5", TOOLS, "tsit5", (1e-4, 1e-6, 1e-8)),
        Problem("robertson", rob, (0.0, 40.0), DataLoss(rgrid, rsol.y, ("y1", "y2", "y3")), ("k1", "k2", "k3"),
                ("kvaerno5", "rodas4", "bdf"), "rodas4", "radau",
                tuple(t for t in TOOLS if not t.startswith("torchdiffeq") and t != "diffrax-backsolve"), "kvaerno5",
                (1e-4, 1e-6, 1e-8)),
    ]


SYMSENS_METHODS = ("forward", "forward-error-control", "discrete", "discrete-tangent-norm",
                   "discrete-differentiated-steps", "adjoint-discrete", "adjoint-interpolating")
TIMED_METHODS = ("forward", "discrete", "adjoint-interpolating")


def _time(call: Callable[[], Any], repeats: int, budget: float) -> tuple[float, int, Any]:
    """Median of up to ``repeats`` timed calls after one untimed warm-up (fewer if they would exceed ``budget``)."""
    result = call()
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    times = [first]
    for _ in range(max(0, min(repeats, int(budget / max(first, 1e-9))) - 1)):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times), result


def _error(g: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(g) - reference)) / np.max(np.abs(reference)))


def run(problem: Problem, args: argparse.Namespace) -> None:
    model = problem.model
    p = np.asarray(model.parameter_values, dtype=float)
    true = symsens.true_gradient(model, problem.loss, t_span=problem.t_span, parameters=problem.parameters)
    reference = true.gradient
    print(f"\n== {problem.name}: gradient over {', '.join(problem.parameters)}; reference {reference} "
          f"({np.min(true.digits):.1f} verified digits)")
    symsens_runs: dict[tuple[str, str, float], tuple[np.ndarray, float, int]] = {}
    for rtol in problem.rtols:
        for method in SYMSENS_METHODS:
            schemes = ([problem.adjoint_scheme] if method == "adjoint-interpolating" else
                       ["tsit5"] if method == "adjoint-discrete" else problem.schemes)
            if method == "adjoint-discrete" and "tsit5" not in problem.schemes:
                continue
            for scheme in schemes:
                def call(method: str = method, scheme: str = scheme) -> Any:
                    return symsens.gradient(model, problem.loss, parameters=problem.parameters, method=method,
                                            scheme=scheme, rtol=rtol)
                seconds, count, result = _time(call, args.repeats, args.budget)
                if result.success:
                    symsens_runs[(method, scheme, rtol)] = (result.gradient, seconds, count)
                else:
                    print(f"  symsens {method} {scheme} rtol {rtol:g}: {result.message}")
    plan = loss_plan(model, problem.loss, problem.parameters, problem.t_span)
    header = f"{'rtol':>6} {'tool or method':<44} {'err':>8} {'ms':>9} {'n':>2} {'/fwd':>6}  closest symsens (distance)"
    print(header)
    print("-" * len(header))
    tool_runs: list[tuple[str, float, float, float]] = []
    providers: dict[str, Any] = {}   # one per tool: compiled once (JAX), reused at every tolerance
    for rtol in problem.rtols:
        base = symsens_runs.get(("forward", problem.main_scheme, rtol))
        for (method, scheme, r), (g, seconds, count) in symsens_runs.items():
            if r == rtol:
                ratio = f"{seconds / base[1]:6.2f}" if base else f"{'':>6}"
                print(f"{rtol:6.0e} {'symsens ' + method + ' ' + scheme:<44} {_error(g, reference):8.1e} "
                      f"{1e3 * seconds:9.2f} {count:2d} {ratio}")
        for tool in problem.tools:
            solver = problem.diffrax_solver if tool.startswith("diffrax") else None
            try:
                provider = providers.get(tool)
                if provider is None:
                    provider = providers[tool] = gradient_provider(
                        tool, model, plan, times=np.asarray(problem.loss.times), targets=None, t_span=problem.t_span,
                        solver=solver)
                seconds, count, (_, g) = _time(lambda: provider(p, rtol, rtol / 1000), args.repeats, args.budget)
            except Exception as error:  # a tool that cannot run this problem is reported, not fatal
                print(f"{rtol:6.0e} {tool:<44} failed: {type(error).__name__}: {str(error).splitlines()[0][:150]}")
                continue
            distances = {(m, s): _error(g, gm) * np.max(np.abs(gm)) / np.max(np.abs(reference))
                         for (m, s, r), (gm, _, _) in symsens_runs.items() if r == rtol}
            (m, s), distance = min(distances.items(), key=lambda item: item[1])
            ratio = f"{seconds / base[1]:6.2f}" if base else f"{'':>6}"
            err = _error(g, reference)
            tool_runs.append((tool, rtol, err, seconds))
            print(f"{rtol:6.0e} {tool:<44} {err:8.1e} {1e3 * seconds:9.2f} {count:2d} {ratio}  {m} {s} ({distance:.1e})")
        sys.stdout.flush()
    print("at equal accuracy: each tool run against the fastest symsens forward/discrete/adjoint-interpolating run "
          "with an error no larger")
    for name, rtol, err, seconds in tool_runs:
        candidates = [(m, s, r, sec, _error(g, reference)) for (m, s, r), (g, sec, _) in symsens_runs.items()
                      if m in TIMED_METHODS and _error(g, reference) <= err]
        if not candidates:
            print(f"  {name:<44} rtol {rtol:6.0e}: err {err:7.1e}, {1e3 * seconds:9.2f} ms | no symsens run as accurate")
            continue
        m, s, r, sec, e = min(candidates, key=lambda c: c[3])
        print(f"  {name:<44} rtol {rtol:6.0e}: err {err:7.1e}, {1e3 * seconds:9.2f} ms | symsens {m} {s} rtol {r:6.0e}: "
              f"err {e:7.1e}, {1e3 * sec:8.2f} ms | tool/symsens {seconds / sec:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of timed repeats per run at most")
    parser.add_argument("--only", default="", help="run only problems whose name contains this")
    args = parser.parse_args()
    for problem in _problems():
        if args.only in problem.name:
            run(problem, args)


if __name__ == "__main__":
    main()
