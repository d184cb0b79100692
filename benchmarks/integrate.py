"""Work-precision of symsens' compiled integrators against SciPy, CVODES (through CasADi) and diffrax, in one run.

For each problem and relative tolerance: the median wall time of repeated solves, states only (``y ms``) and
states plus forward sensitivities (``y+S ms``), the number of accepted steps of the ``y+S`` solve, and the
maximum relative error of the final states (of the ``y`` solve) and of the final sensitivities (of the ``y+S``
solve) against a high-accuracy reference.  Then, per problem, the comparison *at equal accuracy*: for every peer
run, the fastest symsens run whose sensitivity error is no larger, and the ratio of their times.

Tools (each solves the same model, the same parameters and initial values, to ``t1``, with the same rtol/atol):

* symsens: ``symsens.solve(..., sensitivity="forward", sensitivity_in_norm=True)`` (continuous forward
  sensitivities with the sensitivities in the error norm, as CVODES with ``errconS = true``); one call is timed,
  compilation happens before timing (cached).
* scipy: ``solve_ivp`` Radau and BDF on the augmented system with the exact (symbolic) Jacobian, through
  symsens' NumPy backend.
* CasADi + SUNDIALS CVODES (optional extra ``bench``): ``casadi.integrator("cvodes")``, BDF with Newton, exact
  Jacobian by CasADi's AD; the sensitivities are ``jacobian(xf, p)``, which CasADi computes with CVODES's forward
  sensitivity equations (``fsens_err_con = true``).  Timed: one call of the constructed CasADi Function.
* diffrax (optional extra ``bench``): ``Kvaerno5`` with a PID controller (pcoeff = icoeff = 0.3, diffrax's
  suggestion for stiff problems), ``jax.jacfwd`` through the solve (``ForwardMode`` adjoint), float64,
  ``jax.jit``-compiled; compilation is excluded from the timing.

Reference: symsens' compiled Radau IIA(3) (Verner 7 for the non-stiff Hodgkin–Huxley) at rtol 1e-13 (atol
scaled as the runs), sensitivities in the norm, checked against a second run with a different scheme (Rodas5P;
Radau IIA(3) for Hodgkin–Huxley) at the same tolerance; the disagreement of the two is printed as the
reference's own error, and errors below it count as equal in the equal-accuracy comparison.  Errors are ``max_i |x_i - ref_i| / max(|ref_i|, 1e-12 max_j |ref_j|)``.

Run: ``python benchmarks/integrate.py [--repeats 5] [--quick]``.  ``--quick``: rtol 1e-6 and 1e-8, no 50-state
network, no diffrax (its compilation takes ~10 s per configuration), SciPy at rtol 1e-6 only.  Slow runs
(over ``--budget`` seconds for all repeats) are repeated fewer times; the table says how often (``n=``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# Every tool single-threaded (2-core machines: idle BLAS/XLA worker threads spinning after a call would steal
# the next timed run's core).  Set before numpy/jax are imported; an explicit setting in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import symsens  # noqa: E402
from symsens.integrate import solve  # noqa: E402
from symsens.integrate._compiled import method_spec  # noqa: E402

REFERENCE_RTOL = 1e-13


@dataclass
class Problem:
    name: str
    model: Any
    t_span: tuple[float, float]
    parameters: list[str]
    atol_scale: float
    methods: list[str]
    scipy: list[str]
    references: tuple[str, str]
    scipy_min_rtol: float = 1e-10   # SciPy below this rtol takes minutes: not run


def _problems(quick: bool) -> list[Problem]:
    from _networks import mass_action_network

    robertson = symsens.load_model("robertson")
    vdp = symsens.load_model("van-der-pol")
    problems = [
        Problem("robertson, t to 1e5", robertson, (0.0, 1e5), list(robertson.parameter_names), 1e-6,
                ["radau-iia-3", "rodas5p", "rodas4", "kvaerno5", "bdf"], ["radau", "bdf"], ("radau-iia-3", "rodas5p")),
        Problem("hodgkin-huxley, 100 ms", symsens.load_model("hodgkin-huxley"), (0.0, 100.0), ["g_Na", "g_K", "g_L"],
                1.0, ["verner7", "verner6", "tsit5", "radau-iia-3", "rodas5p", "bdf"], ["radau", "bdf"],
                ("verner7", "radau-iia-3"), scipy_min_rtol=1e-8),
        Problem("van der pol, mu = 1000, t to 2", vdp, (0.0, 2.0), list(vdp.parameter_names), 1.0,
                ["radau-iia-3", "rodas5p", "rodas4", "kvaerno5", "bdf"], ["radau", "bdf"], ("radau-iia-3", "rodas5p")),
    ]
    if not quick:
        network = mass_action_network(50, 100, seed=3)
        problems.append(
            Problem("mass-action network, 50 states, t to 10", network, (0.0, 10.0), [f"k{i}" for i in range(5)],
                    1e-3, ["radau-iia-3", "rodas5p", "kvaerno5", "bdf"], ["radau", "bdf"], ("radau-iia-3", "rodas5p"),
                    scipy_min_rtol=1e-8)
        )
    return problems


# ---- timing and errors ----------------------------------------------------------------------------------------

def _time(call: Callable[[], Any], repeats: int, budget: float) -> tuple[float, int, Any]:
    """Median of ``repeats`` timed calls after one untimed warm-up; fewer repeats if they would exceed ``budget``."""
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    count = max(1, min(repeats, int(budget / max(first, 1e-9))))
    times = []
    for _ in range(count):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count, result


def _relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    value, reference = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    scale = np.maximum(np.abs(reference), 1e-12 * np.abs(reference).max() + 1e-300)
    return float(np.max(np.abs(value - reference) / scale))


def _reference(problem: Problem) -> tuple[np.ndarray, np.ndarray, float, float]:
    runs = []
    for method in problem.references:
        sol = solve(problem.model, problem.t_span, method=method, rtol=REFERENCE_RTOL,
                    atol=REFERENCE_RTOL * problem.atol_scale, sensitivity="forward", sensitivity_in_norm=True,
                    parameters=problem.parameters, t_eval=[problem.t_span[1]], max_steps=10**7)
        sol.check()
        runs.append((sol.y[-1], sol.sensitivities[-1]))
    (y0, s0), (y1, s1) = runs
    return y0, s0, _relative_error(y1, y0), _relative_error(s1, s0)


@dataclass
class Row:
    rtol: float
    tool: str           # "symsens", "scipy", "cvodes", "diffrax"
    method: str
    t_y: float
    t_s: float
    repeats: int
    steps: int | None
    err_y: float
    err_s: float
    note: str = ""
    extra: dict = field(default_factory=dict)


# ---- symsens and scipy -----------------------------------------------------------------------------------------

def _symsens_row(problem: Problem, method: str, rtol: float, backend: str, y_ref, s_ref, args) -> Row | str:
    atol = rtol * problem.atol_scale
    common = dict(method=method, backend=backend, rtol=rtol, atol=atol, t_eval=[problem.t_span[1]], max_steps=10**6)
    t_y, n_y, sol_y = _time(lambda: solve(problem.model, problem.t_span, **common), args.repeats, args.budget)
    t_s, n_s, sol_s = _time(
        lambda: solve(problem.model, problem.t_span, sensitivity="forward", sensitivity_in_norm=True,
                      parameters=problem.parameters, **common),
        args.repeats, args.budget,
    )
    if not (sol_y.success and sol_s.success):
        return f"failed: {sol_s.message if not sol_s.success else sol_y.message}"
    return Row(rtol, "symsens" if backend == "compiled" else "scipy", method, t_y, t_s, min(n_y, n_s),
               sol_s.stats.accepted_steps, _relative_error(sol_y.y[-1], y_ref),
               _relative_error(sol_s.sensitivities[-1], s_ref))


# ---- the model as CasADi / JAX expressions -----------------------------------------------------------------------

def _numeric_model(problem: Problem) -> tuple[list[sp.Symbol], list[sp.Symbol], list[sp.Expr], np.ndarray, np.ndarray]:
    """States, sensitivity parameters, rhs with the other parameters substituted, y0 and p0 (floats)."""
    model = problem.model
    values = dict(zip(model.parameters, model.parameter_values))
    sens = [model.symbol(name) for name in problem.parameters]
    fixed = {s: v for s, v in values.items() if s not in sens}
    rhs = [sp.sympify(expr).subs(fixed) for expr in model.rhs]
    if any(s in sp.sympify(ic).free_symbols for ic in model.initial_conditions for s in sens):
        raise NotImplementedError("initial values that depend on the sensitivity parameters")
    from symsens.model._functions import NUMPY_FUNCTIONS

    y0 = np.array([float(sp.lambdify([], sp.sympify(ic).subs(values), modules=[NUMPY_FUNCTIONS, "numpy"])())
                   for ic in model.initial_conditions])
    p0 = np.array([values[s] for s in sens])
    if any(model.time in sp.sympify(e).free_symbols for e in rhs):
        raise NotImplementedError("non-autonomous models")
    return list(model.states), sens, rhs, y0, p0


def _casadi_row(problem: Problem, rtol: float, y_ref, s_ref, args) -> Row | str:
    import casadi as ca

    states, sens, rhs, y0, p0 = _numeric_model(problem)

    def exprel(x):  # x / (exp(x) - 1), 1 at 0
        return ca.if_else(ca.fabs(x) < 1e-8, 1 - x / 2, x / ca.expm1(x))

    x = ca.SX.sym("x", len(states))
    p = ca.SX.sym("p", len(sens))
    function = sp.lambdify([states, sens], rhs, modules=[{"exprel": exprel, "exp": ca.exp, "log": ca.log,
                                                          "sqrt": ca.sqrt, "tanh": ca.tanh}, "math"])
    ode = ca.vertcat(*function([x[i] for i in range(len(states))], [p[j] for j in range(len(sens))]))
    options = dict(abstol=rtol * problem.atol_scale, reltol=rtol, max_num_steps=10**6, fsens_err_con=True)
    integrator = ca.integrator("F", "cvodes", {"x": x, "p": p, "ode": ode}, problem.t_span[0], problem.t_span[1], options)
    P = ca.MX.sym("P", len(sens))
    xf = integrator(x0=ca.DM(y0), p=P)["xf"]
    with_sens = ca.Function("G", [P], [xf, ca.jacobian(xf, P)])
    plain = ca.Function("Y", [P], [xf])
    p_dm = ca.DM(p0)
    try:
        t_y, n_y, y = _time(lambda: plain(p_dm), args.repeats, args.budget)
        t_s, n_s, (ys, S) = _time(lambda: with_sens(p_dm), args.repeats, args.budget)
    except RuntimeError as error:  # CVODES failure surfaces as a RuntimeError
        return f"failed: {str(error).splitlines()[0][:80]}"
    return Row(rtol, "cvodes", "casadi cvodes", t_y, t_s, min(n_y, n_s), None,
               _relative_error(np.array(y).ravel(), y_ref), _relative_error(np.array(S), s_ref))


_JAX_READY = False


def _diffrax_row(problem: Problem, rtol: float, y_ref, s_ref, args) -> Row | str:
    global _JAX_READY
    import jax

    if not _JAX_READY:
        jax.config.update("jax_enable_x64", True)
        _JAX_READY = True
    import diffrax
    import jax.numpy as jnp

    states, sens, rhs, y0, p0 = _numeric_model(problem)

    def exprel(x):
        small = jnp.abs(x) < 1e-8
        safe = jnp.where(small, 1.0, x)
        return jnp.where(small, 1 - x / 2, safe / jnp.expm1(safe))

    function = sp.lambdify([states, sens], rhs, modules=[{"exprel": exprel}, "jax"])

    def vector_field(t, y, q):
        return jnp.stack([jnp.asarray(v, dtype=jnp.float64) * jnp.ones(()) for v in
                          function([y[i] for i in range(len(states))], [q[j] for j in range(len(sens))])])

    controller = diffrax.PIDController(rtol=rtol, atol=rtol * problem.atol_scale, pcoeff=0.3, icoeff=0.3)
    y0_j = jnp.asarray(y0)

    def final(q):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(vector_field), diffrax.Kvaerno5(), problem.t_span[0],
                                  problem.t_span[1], None, y0_j, args=q, stepsize_controller=controller,
                                  saveat=diffrax.SaveAt(t1=True), max_steps=200_000, adjoint=diffrax.ForwardMode(),
                                  throw=False)
        return sol.ys[-1], sol.stats["num_accepted_steps"], sol.result == diffrax.RESULTS.successful

    plain = jax.jit(final)
    with_sens = jax.jit(lambda q: (final(q), jax.jacfwd(lambda r: final(r)[0])(q)))
    q0 = jnp.asarray(p0)
    t_y, n_y, (y, _, ok_y) = _time(lambda: jax.block_until_ready(plain(q0)), args.repeats, args.budget)
    t_s, n_s, ((_, steps, ok_s), S) = _time(lambda: jax.block_until_ready(with_sens(q0)), args.repeats, args.budget)
    if not (bool(ok_y) and bool(ok_s)):
        return "failed (diffrax result not successful, e.g. max_steps)"
    return Row(rtol, "diffrax", "diffrax kvaerno5", t_y, t_s, min(n_y, n_s), int(steps),
               _relative_error(np.asarray(y), y_ref), _relative_error(np.asarray(S), s_ref))


# ---- the report --------------------------------------------------------------------------------------------------

def _available(method: str) -> bool:
    try:
        method_spec(method)
        return True
    except ValueError:
        return False


def _print_rows(rows: list[Row]) -> None:
    header = (f"{'rtol':>7} {'tool':<8} {'method':<16} {'y ms':>9} {'y+S ms':>9} {'n':>2} {'steps':>7} {'err y':>8} "
              f"{'err S':>8} {'scipy/':>7} {'cvodes/':>7}")
    print(header)
    print("-" * len(header))
    for rtol in sorted({r.rtol for r in rows}, reverse=True):
        same = [r for r in rows if r.rtol == rtol]
        best_scipy = min((r.t_s for r in same if r.tool == "scipy"), default=float("nan"))
        cvodes = min((r.t_s for r in same if r.tool == "cvodes"), default=float("nan"))
        for r in same:
            steps = "" if r.steps is None or r.steps < 0 else str(r.steps)
            ratio_s = f"{best_scipy / r.t_s:7.1f}" if r.tool != "scipy" and np.isfinite(best_scipy) else f"{'':>7}"
            ratio_c = f"{cvodes / r.t_s:7.1f}" if r.tool != "cvodes" and np.isfinite(cvodes) else f"{'':>7}"
            print(f"{rtol:7.0e} {r.tool:<8} {r.method:<16} {1e3 * r.t_y:9.3f} {1e3 * r.t_s:9.3f} {r.repeats:2d} "
                  f"{steps:>7} {r.err_y:8.1e} {r.err_s:8.1e} {ratio_s} {ratio_c}")


def _print_equal_accuracy(rows: list[Row], floor: float) -> None:
    """For every peer run, the fastest symsens run at least as accurate in S (errors below the reference's own
    error are all treated as equal to it)."""
    mine = [r for r in rows if r.tool == "symsens"]
    peers = [r for r in rows if r.tool != "symsens"]
    if not peers:
        return
    print("at equal accuracy (y+S): each peer run against the fastest symsens run with err S <= the peer's")
    for peer in sorted(peers, key=lambda r: (r.tool, -r.rtol)):
        target = max(peer.err_s, floor)
        candidates = [r for r in mine if max(r.err_s, floor) <= target]
        if not candidates:
            print(f"  {peer.tool:<8} {peer.method:<16} rtol {peer.rtol:6.0e}: {1e3 * peer.t_s:9.3f} ms, err S "
                  f"{peer.err_s:7.1e} | no symsens run as accurate")
            continue
        best = min(candidates, key=lambda r: r.t_s)
        print(f"  {peer.tool:<8} {peer.method:<16} rtol {peer.rtol:6.0e}: {1e3 * peer.t_s:9.3f} ms, err S "
              f"{peer.err_s:7.1e} | symsens {best.method} rtol {best.rtol:6.0e}: {1e3 * best.t_s:8.3f} ms, err S "
              f"{best.err_s:7.1e} | {peer.t_s / best.t_s:6.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed repeats per run at most")
    parser.add_argument("--quick", action="store_true", help="rtol 1e-6 and 1e-8 only, no network, no diffrax")
    parser.add_argument("--only", default="", help="run only problems whose name contains this")
    args = parser.parse_args()
    rtols = (1e-6, 1e-8) if args.quick else (1e-6, 1e-8, 1e-10)
    have_casadi = importlib.util.find_spec("casadi") is not None
    have_diffrax = importlib.util.find_spec("diffrax") is not None and importlib.util.find_spec("jax") is not None
    if not have_casadi:
        print("note: casadi is not installed (pip install '.[bench]'): CVODES is not measured")
    if not have_diffrax:
        print("note: diffrax/jax are not installed (pip install '.[bench]'): diffrax is not measured")
    elif args.quick:
        print("note: --quick skips diffrax (about 10 s of compilation per configuration)")
    for problem in _problems(args.quick):
        if args.only and args.only not in problem.name:
            continue
        y_ref, s_ref, ref_err_y, ref_err_s = _reference(problem)
        print(f"\n== {problem.name}: {problem.model.n_states} states, sensitivities w.r.t. "
              f"{', '.join(problem.parameters)}; atol = {problem.atol_scale:g} rtol; medians of n runs")
        print(f"reference: {problem.references[0]} at rtol {REFERENCE_RTOL:g}; {problem.references[1]} at the same "
              f"tolerance differs by {ref_err_y:.1e} (y), {ref_err_s:.1e} (S)")
        rows: list[Row] = []
        for rtol in rtols:
            jobs: list[tuple[str, str, Callable[[], Row | str]]] = []
            for method in problem.methods:
                if _available(method):
                    jobs.append(("symsens", method, lambda m=method: _symsens_row(problem, m, rtol, "compiled", y_ref, s_ref, args)))
            if rtol >= problem.scipy_min_rtol and not (args.quick and rtol < 1e-6):
                for method in problem.scipy:
                    jobs.append(("scipy", method, lambda m=method: _symsens_row(problem, m, rtol, "numpy", y_ref, s_ref, args)))
            if have_casadi:
                jobs.append(("cvodes", "casadi cvodes", lambda: _casadi_row(problem, rtol, y_ref, s_ref, args)))
            if have_diffrax and not args.quick:
                jobs.append(("diffrax", "diffrax kvaerno5", lambda: _diffrax_row(problem, rtol, y_ref, s_ref, args)))
            for tool, method, job in jobs:
                try:
                    result = job()
                except Exception as error:  # a peer that cannot run this problem is reported, not fatal
                    result = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:100] if str(error) else ''}"
                if isinstance(result, str):
                    print(f"{rtol:7.0e} {tool:<8} {method:<16} {result}")
                else:
                    rows.append(result)
        _print_rows(rows)
        _print_equal_accuracy(rows, max(ref_err_s, 1e-300))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
