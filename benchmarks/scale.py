"""Performance at scale: dense vs sparse linear algebra of the implicit schemes, against CVODES.

    python benchmarks/scale.py [--sizes 8,32,128,512] [--repeats 5] [--network [--network-sensitivities 3,30]]
    python benchmarks/scale.py --bound-only [--cpu-time] --sizes 8,32,128,512 --repeats 31

Problem: the 1-D Brusselator (Hairer & Wanner II, Sect. IV.1, "the Brusselator with diffusion"; 2N states
u_i, v_i interleaved):

    u_i' = A + u_i^2 v_i - (B + 1) u_i + alpha (N + 1)^2 (u_{i-1} - 2 u_i + u_{i+1}),
    v_i' = B u_i - u_i^2 v_i + alpha (N + 1)^2 (v_{i-1} - 2 v_i + v_{i+1}),

u = 1, v = 3 on the boundary, u_i(0) = 1 + sin(2 pi x_i), v_i(0) = 3, x_i = i / (N + 1), A = 1, B = 3,
alpha = 1/50, t in [0, 10]; forward sensitivities to (A, B, alpha).  Every solve is timed as one
``symsens.solve`` call with output at t = 10 only (median of repeats; without ``t_eval`` the outputs at every
step cost more than the sparse solve itself at n = 256: 4096-row buffers for y and S), errors are the maximum relative error (scaled by the largest entry)
of y(10) and S(10) against symsens Radau IIA at rtol = atol = 1e-12.  CVODES (CasADi 3.8, BDF, Newton with
CasADi's sparse direct solver ``csparse``, exact sparse Jacobian, ``fsens_err_con = true``) runs at several
tolerances, and the cheapest run at least as accurate in S as symsens' BDF (sparse) is reported beside it
(equal accuracy).

Also printed: compile time cold (fresh cache directory: SymPy derivation, code generation and C++ build) and
warm (a new process loading the cached library); fitted cost exponents t ~ n^k over the sizes; and a lower
bound of each sparse run: the work the run needs at least, counted from its statistics and priced by unit
costs: (rhs evaluations) x (one augmented rhs, timed through ctypes with the call overhead subtracted) +
(Jacobian evaluations) x (the augmented rhs over colour duals, priced as colours + 1 augmented rhs) + the
exact multiply-add counts of the LU factorisations and of the solves of the block-triangular (y, S) Newton
systems (the diagonal blocks' substitutions and the off-diagonal blocks' products D_j x_0) over the fixed patterns, priced at
0.5 ns each (``lower_bound``); ``--bound-only`` prints only the sparse runs beside their bounds, and with
``--cpu-time`` times the solves and the unit costs by this process's CPU time (steadier on a loaded machine).
The network (``--network``): a random mass-action network of 500 species and 1000 reactions
(``_networks.py``), BDF dense and sparse without sensitivities; then BDF (sparse, rtol 1e-6, atol 1e-9) with
forward sensitivities to its first 3 and first 30 rate constants beside CVODES with the same sensitivities
(atol = 1e-3 rtol), errors against symsens Radau IIA (sparse) at rtol = atol = 1e-12 (or, with
``--network-reference cvodes``, CVODES at rtol 1e-10, atol 1e-13: cheaper with many parameters), CVODES at
equal accuracy chosen as for the Brusselator (``--network-sensitivities``; ``--no-brusselator`` runs the
network alone).  CVODES's first call, which sets up its sensitivity integrator, is not timed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy as sp

PARAMETERS = ["A", "B", "alpha"]


def brusselator(N: int, alpha: float = 0.02):
    """The 1-D Brusselator with 2N states (see the module docstring), states interleaved u_0, v_0, u_1, ..."""
    import symsens

    u = sp.symbols(f"u0:{N}")
    v = sp.symbols(f"v0:{N}")
    A, B, a = sp.symbols("A B alpha")
    c = a * (N + 1) ** 2
    rhs = []
    for i in range(N):
        ul = u[i - 1] if i > 0 else sp.Integer(1)
        ur = u[i + 1] if i < N - 1 else sp.Integer(1)
        vl = v[i - 1] if i > 0 else sp.Integer(3)
        vr = v[i + 1] if i < N - 1 else sp.Integer(3)
        rhs.append(A + u[i] ** 2 * v[i] - (B + 1) * u[i] + c * (ul - 2 * u[i] + ur))
        rhs.append(B * u[i] - u[i] ** 2 * v[i] + c * (vl - 2 * v[i] + vr))
    states = [s for pair in zip(u, v) for s in pair]
    y0 = []
    for i in range(N):
        y0 += [1.0 + math.sin(2 * math.pi * (i + 1) / (N + 1)), 3.0]
    return symsens.Model(states=states, parameters={"A": 1.0, "B": 3.0, "alpha": alpha}, rhs=rhs,
                         initial_conditions=y0, name=f"brusselator-{N}", t_span=(0.0, 10.0))


def _median_time(call, repeats: int, budget: float, clock=time.perf_counter):
    """Median time of ``call`` by ``clock`` (wall time by default; ``time.process_time`` for the CPU time of this
    process, which a loaded machine disturbs less) over up to ``repeats`` runs (fewer once ``budget`` wall seconds
    are spent)."""
    times, result = [], None
    start = time.perf_counter()
    for _ in range(repeats):
        t = clock()
        result = call()
        times.append(clock() - t)
        if time.perf_counter() - start > budget:
            break
    return statistics.median(times), len(times), result


def _rel(a, ref) -> float:
    a, ref = np.asarray(a, dtype=float), np.asarray(ref, dtype=float)
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-300))


def _warm_load_seconds(N: int, method: str, linear: str) -> float:
    """Time to load a cached solver library in a fresh process (SymPy is never run on this path)."""
    code = (
        "import sys, time; sys.path.insert(0, %r); import scale; m = scale.brusselator(%d);"
        "from symsens.integrate._compiled import compiled_solver; t = time.perf_counter();"
        "compiled_solver(m, scale.PARAMETERS, %r, %r); print(time.perf_counter() - t)"
    ) % (str(Path(__file__).parent), N, method, linear)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _unit_costs(model, solver_sparse: bool, reference_y: np.ndarray, clock=time.perf_counter,
                parameters=PARAMETERS):
    """Unit costs (seconds) of one augmented rhs (measured), one Jacobian (values + coupling colours, priced as
    the augmented rhs times (colours + 1)), one LU and one triangular-solve pair of the iteration matrix, and one
    coupling product D_j x_0 (their exact multiply-add counts over the fixed patterns at SECONDS_PER_FLOP)."""
    from symsens.codegen import compile_model
    from symsens.derive import jacobian, parameter_jacobian
    from symsens.codegen._sparsity import plan_sparsity

    import ctypes

    kernels = compile_model(model, list(parameters))
    n = model.n_states
    p = np.asarray(model.parameter_values, dtype=float)
    u = np.concatenate([reference_y, np.zeros(n * len(parameters))])
    out = np.empty_like(u)
    pointer = ctypes.POINTER(ctypes.c_double)
    args = (ctypes.c_double(0.0), u.ctypes.data_as(pointer), p.ctypes.data_as(pointer), out.ctypes.data_as(pointer))
    routine, empty = kernels._library.symsens_augmented_rhs, kernels._library.symsens_n_states
    reps = 5000 if n < 300 else 1000
    # The C call alone: the cost of a ctypes call (measured on an empty routine) is subtracted.
    t = clock()
    for _ in range(reps):
        empty()
    overhead = (clock() - t) / reps
    t = clock()
    for _ in range(reps):
        routine(*args)
    t_rhs = max((clock() - t) / reps - overhead, 0.0)
    plan = plan_sparsity(jacobian(model), parameter_jacobian(model, list(parameters)), model.states)
    t_jac = t_rhs * (plan.n_colors + 1)
    # LU and triangular solves over the fixed pattern, counted exactly from the symbolic factorisation and priced
    # at SECONDS_PER_FLOP (a multiply-add or a division each): the work, not an implementation's speed.
    row_ptr, columns = plan.lu_row_ptr, plan.lu_columns
    lu = [[columns[q] for q in range(row_ptr[i], row_ptr[i + 1])] for i in range(n)]
    upper = [[j for j in row if j > i] for i, row in enumerate(lu)]
    lu_flops = sum(1 + len(upper[k]) for i, row in enumerate(lu) for k in row if k < i)
    solve_flops = plan.lu_nnz
    coupling_flops = len(plan.coupling_columns)
    return (t_rhs, t_jac, lu_flops * SECONDS_PER_FLOP, solve_flops * SECONDS_PER_FLOP,
            coupling_flops * SECONDS_PER_FLOP)


#: Price of one multiply-add in the LU and solve counts of the lower bound: 0.5 ns (2 Gflop/s), above what
#: scalar indexed code reaches on the 2-core development machine, so the bound stays below the achievable time.
SECONDS_PER_FLOP = 0.5e-9


def lower_bound(stats, method: str, units, coupling: bool = True, n_sensitivities: int = len(PARAMETERS)) -> float:
    """Seconds the run needs at least: its evaluations at their measured unit costs plus its LU and solve work
    at SECONDS_PER_FLOP.  Radau IIA's complex LU and solves count 4 real ones each (a complex multiply-add is 4
    real ones); its LU counter counts the real and the complex factorisation as one each.  Per Newton
    iteration the augmented (y, S) system, block lower triangular, is solved once (Radau IIA: once real and
    once complex): the P + 1 diagonal blocks' substitutions and the P off-diagonal blocks' products D_j x_0
    (complex x_0: 2 real multiply-adds per entry of D).  ``coupling=False`` leaves the products out (the
    bound as it was first defined)."""
    t_rhs, t_jac, t_lu, t_solve, t_coupling = units
    blocks = n_sensitivities + 1
    if not coupling:
        t_coupling = 0.0
    if method == "radau5":
        lu = stats.lu_decompositions / 2 * (1 + 4) * t_lu
        solves = stats.newton_iterations * (blocks * (1 + 4) * t_solve + (blocks - 1) * (1 + 2) * t_coupling)
    else:
        lu = stats.lu_decompositions * t_lu
        solves = stats.newton_iterations * (blocks * t_solve + (blocks - 1) * t_coupling)
    return stats.rhs_evaluations * t_rhs + stats.jacobian_evaluations * t_jac + lu + solves


def _cvodes(model, rtol: float, repeats: int, budget: float, parameters=PARAMETERS, atol: float | None = None,
            t_end: float = 10.0, warm_up: bool = True):
    """CVODES through CasADi with forward sensitivities (jacobian of xf with respect to ``parameters``); the
    model's other parameters are fixed at their values.  ``atol`` defaults to ``rtol``."""
    import casadi as ca

    values = dict(zip(model.parameter_names, model.parameter_values))
    states, all_params = list(model.states), [sp.Symbol(name) for name in model.parameter_names]
    x = ca.SX.sym("x", len(states))
    p = ca.SX.sym("p", len(parameters))
    symbol_of = {name: p[j] for j, name in enumerate(parameters)}
    function = sp.lambdify([states, all_params], list(model.rhs), modules="math")
    ode = ca.vertcat(*function([x[i] for i in range(len(states))],
                               [symbol_of.get(name, values[name]) for name in model.parameter_names]))
    options = dict(abstol=rtol if atol is None else atol, reltol=rtol, max_num_steps=10**6, fsens_err_con=True,
                   linear_solver="csparse", newton_scheme="direct")
    integrator = ca.integrator("F", "cvodes", {"x": x, "p": p, "ode": ode}, 0.0, t_end, options)
    P = ca.MX.sym("P", len(parameters))
    xf = integrator(x0=ca.DM(np.array(model.initial_conditions, dtype=float)), p=P)["xf"]
    with_sens = ca.Function("G", [P], [xf, ca.jacobian(xf, P)])
    p_values = ca.DM([values[name] for name in parameters])
    if warm_up:
        with_sens(p_values)  # untimed: CasADi sets up the sensitivity integrator on the first call
    t_s, runs, (y, S) = _median_time(lambda: with_sens(p_values), repeats, budget)
    return t_s, runs, np.array(y).ravel(), np.array(S)


def _network_sensitivities(model, n_parameters: int, repeats: int, budget: float, cvodes: bool,
                           reference: str = "radau", rtols=(1e-5, 1e-6, 1e-7, 1e-8, 1e-9),
                           bound: bool = False) -> None:
    """The network with forward sensitivities to its first ``n_parameters`` rate constants: symsens BDF (sparse,
    rtol 1e-6, atol 1e-9) against CVODES at ``rtols`` (atol = 1e-3 rtol, the same ratio), errors of y(10) and
    S(10) against symsens Radau IIA (sparse) at rtol = atol = 1e-12 (``reference="radau"``) or, cheaper, CVODES
    at rtol 1e-10, atol 1e-13 (``"cvodes"``); CVODES is reported at the cheapest tolerance at least as accurate
    in S as symsens (equal accuracy).  With ``bound``, the BDF run's lower bound as for the Brusselator (its unit
    costs need the model's kernel library: one more compile)."""
    import symsens
    from symsens.integrate._compiled import compiled_solver

    names = list(model.parameter_names[:n_parameters])
    cold = {}
    for method in ("bdf", "radau5") if reference == "radau" else ("bdf",):
        t = time.perf_counter()
        compiled_solver(model, names, method, "sparse")
        cold[method] = time.perf_counter() - t

    def run():
        return symsens.solve(model, (0.0, 10.0), method="bdf", rtol=1e-6, atol=1e-9, sensitivity="forward",
                             parameters=names, linear_solver="sparse", t_eval=[10.0])

    seconds, runs, sol = _median_time(run, repeats, budget)
    t = time.perf_counter()
    if reference == "radau":
        ref = symsens.solve(model, (0.0, 10.0), method="radau5", rtol=1e-12, atol=1e-12, sensitivity="forward",
                            parameters=names, linear_solver="sparse", t_eval=[10.0])
        if ref.status != "success":
            print(f"network P={n_parameters}: reference status {ref.status}; no comparison")
            return
        y_ref, s_ref, ref_info = ref.y[-1], ref.sensitivities[-1], f"Radau IIA, {ref.stats.accepted_steps} steps"
    else:
        _, _, y_ref, s_ref = _cvodes(model, 1e-10, 1, 0.0, parameters=names, atol=1e-13, warm_up=False)
        ref_info = "CVODES rtol 1e-10, atol 1e-13"
    t_ref = time.perf_counter() - t
    if sol.status != "success":
        print(f"network P={n_parameters}: bdf status {sol.status}; no comparison")
        return
    err_y, err_s = _rel(sol.y[-1], y_ref), _rel(sol.sensitivities[-1], s_ref)
    st = sol.stats
    print(f"network P={n_parameters} bdf sparse: {seconds * 1e3:.1f} ms ({runs}x), status {sol.status}, "
          f"steps {st.accepted_steps}, nlu {st.lu_decompositions}, newton {st.newton_iterations}, "
          f"err y={err_y:.1e} S={err_s:.1e}, cold " + ", ".join(f"{m} {c:.1f} s" for m, c in cold.items()) +
          f"; reference ({ref_info}) {t_ref:.1f} s", flush=True)
    if bound:
        units = _unit_costs(model, True, sol.y[-1], parameters=names)
        value = lower_bound(st, "bdf", units, n_sensitivities=len(names))
        without = lower_bound(st, "bdf", units, coupling=False, n_sensitivities=len(names))
        print(f"network P={n_parameters} bdf sparse: lower bound {value * 1e3:.1f} ms (time / bound "
              f"{seconds / value:.2f}; without the coupling products {without * 1e3:.1f} ms, {seconds / without:.2f}); "
              f"nfev {st.rhs_evaluations}, njev {st.jacobian_evaluations}; unit costs rhs {units[0] * 1e6:.1f} us, "
              f"jac {units[1] * 1e6:.1f} us, lu {units[2] * 1e6:.1f} us, solve {units[3] * 1e6:.1f} us, "
              f"coupling {units[4] * 1e6:.1f} us", flush=True)
    if not cvodes:
        return
    for rtol in rtols:
        try:
            t_s, runs, y, S = _cvodes(model, rtol, repeats, budget, parameters=names, atol=rtol * 1e-3)
        except RuntimeError as error:
            print(f"network P={n_parameters} cvodes rtol {rtol:g}: failed: {str(error).splitlines()[0][:80]}")
            continue
        cv_y, cv_s = _rel(y, y_ref), _rel(S, s_ref)
        print(f"network P={n_parameters} cvodes rtol={rtol:g} atol={rtol * 1e-3:g}: {t_s * 1e3:.1f} ms ({runs}x) "
              f"err y={cv_y:.1e} S={cv_s:.1e}" + " (equal accuracy)" * (cv_s <= err_s), flush=True)
        if cv_s <= err_s:
            break


def _fit_exponent(ns, ts) -> float:
    ok = [(n, t) for n, t in zip(ns, ts) if np.isfinite(t)]
    if len(ok) < 2:
        return float("nan")
    x, y = np.log([n for n, _ in ok]), np.log([t for _, t in ok])
    return float(np.polyfit(x, y, 1)[0])


def _print_tables(sizes, rows) -> None:
    """The Brusselator tables: times and errors, compile times, fitted exponents."""
    print("\n## Table (y+S times in ms; err = max relative error at t = 10)\n")
    print("| N | n | BDF dense | BDF sparse | Radau dense | Radau sparse | CVODES (equal accuracy) | "
          "err S BDF sparse / CVODES | lower bound BDF / Radau sparse |")
    print("|---|---|---|---|---|---|---|---|---|")
    for N in sizes:
        def get(method, linear):
            return next((r for r in rows if r["N"] == N and r["method"] == method and r["linear"] == linear), None)

        cells = []
        for method in ("bdf", "radau5"):
            for linear in ("dense", "sparse"):
                r = get(method, linear)
                cells.append("–" if r is None or not np.isfinite(r["t"]) else f"{r['t'] * 1e3:.1f}")
        cv = next((r for r in rows if r["N"] == N and r["method"] == "cvodes" and r.get("equal_accuracy")), None)
        bs, rs = get("bdf", "sparse"), get("radau5", "sparse")
        n = 2 * N
        print(f"| {N} | {n} | " + " | ".join(cells) +
              f" | {cv['t'] * 1e3:.1f} ({cv['linear']})" * (cv is not None) + " | –" * (cv is None) +
              f" | {bs['err_s']:.1e} / {cv['err_s']:.1e}" * (cv is not None) + " | –" * (cv is None) +
              f" | {bs['bound'] * 1e3:.1f} / {rs['bound'] * 1e3:.1f} |")
    print("\n## Compile times (cold: derivation + generation + build; warm: load in a new process)\n")
    print("| N | n | " + " | ".join(f"{m} {l}" for m in ("bdf", "radau5") for l in ("dense", "sparse")) + " |")
    print("|---|---|---|---|---|---|")
    for N in sizes:
        cells = []
        for m in ("bdf", "radau5"):
            for l in ("dense", "sparse"):
                r = next((r for r in rows if r["N"] == N and r["method"] == m and r["linear"] == l and "cold" in r), None)
                cells.append("–" if r is None else f"{r['cold']:.1f} s / {r['warm'] * 1e3:.0f} ms")
        print(f"| {N} | {2 * N} | " + " | ".join(cells) + " |")
    print("\n## Fitted exponents t ~ n^k over the sizes\n")
    ns = [2 * N for N in sizes]
    for m in ("bdf", "radau5"):
        for l in ("dense", "sparse"):
            ts = [next((r["t"] for r in rows if r["N"] == N and r["method"] == m and r["linear"] == l), float("nan"))
                  for N in sizes]
            print(f"{m} {l}: k = {_fit_exponent(ns, ts):.2f}")
    cv_ts = [next((r["t"] for r in rows if r["N"] == N and r["method"] == "cvodes" and r.get("equal_accuracy")),
                  float("nan")) for N in sizes]
    print(f"cvodes (equal accuracy): k = {_fit_exponent(ns, cv_ts):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="8,32,128,512")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per timed configuration")
    parser.add_argument("--dense-limit", type=float, default=120.0,
                        help="skip a dense run whose predicted time (from the previous size, ~n^3) exceeds this")
    parser.add_argument("--network", action="store_true")
    parser.add_argument("--network-species", type=int, default=500, help="species (reactions: twice as many)")
    parser.add_argument("--network-sensitivities", default="3,30",
                        help="numbers of rate constants for the network's forward sensitivities ('' for none)")
    parser.add_argument("--no-brusselator", action="store_true", help="only the network (with --network)")
    parser.add_argument("--network-reference", choices=("radau", "cvodes"), default="radau",
                        help="the network's reference: symsens Radau IIA rtol 1e-12, or CVODES rtol 1e-10 (cheaper)")
    parser.add_argument("--network-bound", action="store_true",
                        help="also the network's lower bound (compiles the model's kernel library as well)")
    parser.add_argument("--network-plain", action=argparse.BooleanOptionalAction, default=True,
                        help="also the network without sensitivities (dense and sparse)")
    parser.add_argument("--no-cvodes", action="store_true")
    parser.add_argument("--cvodes-rtols", default="",
                        help="run CVODES at all these tolerances (default: 1e-5 ... 1e-9 up to equal accuracy)")
    parser.add_argument("--bound-only", action="store_true",
                        help="only the sparse runs' times beside their lower bounds (cache kept)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="with --bound-only: time the solves by this process's CPU time instead of wall time")
    args = parser.parse_args()
    sizes = [] if args.no_brusselator else [int(s) for s in args.sizes.split(",")]
    args.cvodes_rtols = [float(s) for s in args.cvodes_rtols.split(",") if s]
    args.network_sensitivities = [int(s) for s in args.network_sensitivities.split(",") if s]
    if args.bound_only:
        import symsens

        for N in sizes:
            model = brusselator(N)
            units = None
            for method in ("bdf", "radau5"):
                def run():
                    return symsens.solve(model, (0.0, 10.0), method=method, rtol=1e-6, atol=1e-6,
                                         sensitivity="forward", parameters=PARAMETERS, linear_solver="sparse",
                                         t_eval=[10.0])

                run()
                clock = time.process_time if args.cpu_time else time.perf_counter
                seconds, runs, sol = _median_time(run, args.repeats, args.budget, clock)
                units = units or _unit_costs(model, True, sol.y[-1], clock)
                st = sol.stats
                bound = lower_bound(st, method, units)
                without = lower_bound(st, method, units, coupling=False)
                print(f"N={N} n={2 * N} {method} sparse: {seconds * 1e3:.2f} ms, bound {bound * 1e3:.2f} ms "
                      f"(time / bound {seconds / bound:.2f}; without the coupling products {without * 1e3:.2f} ms, "
                      f"{seconds / without:.2f}); nfev {st.rhs_evaluations}, njev {st.jacobian_evaluations}, "
                      f"nlu {st.lu_decompositions}, newton {st.newton_iterations}; unit costs rhs "
                      f"{units[0] * 1e6:.2f} us, jac {units[1] * 1e6:.2f} us, lu {units[2] * 1e6:.2f} us, "
                      f"solve {units[3] * 1e6:.2f} us, coupling {units[4] * 1e6:.2f} us", flush=True)
        return

    # A fresh cache: the first compiled_solver call of each configuration is a cold compile.
    # (Unless SYMSENS_CACHE_DIR is set: then "cold" is whatever that cache holds.)
    if "SYMSENS_CACHE_DIR" not in os.environ:
        os.environ["SYMSENS_CACHE_DIR"] = tempfile.mkdtemp(prefix="symsens-scale-")
    import symsens
    from symsens.integrate._compiled import compiled_solver

    rows = []
    last_dense: dict[str, tuple[int, float]] = {}
    for N in sizes:
        model = brusselator(N)
        n = model.n_states
        print(f"# N = {N} (n = {n})", flush=True)
        units = None
        pending = []  # rows whose errors need the reference (computed after the cold compiles)
        for method in ("bdf", "radau5"):
            for linear in ("dense", "sparse"):
                key = f"{method}/{linear}"
                if linear == "dense" and key in last_dense:
                    n_prev, t_prev = last_dense[key]
                    predicted = t_prev * (n / n_prev) ** 3
                    if predicted > args.dense_limit:
                        print(f"{key:14s} n={n:5d} skipped (predicted {predicted:.0f} s)", flush=True)
                        rows.append(dict(N=N, n=n, method=method, linear=linear, t=float("nan")))
                        continue
                t = time.perf_counter()
                solver = compiled_solver(model, PARAMETERS, method, linear)
                cold = time.perf_counter() - t
                warm = _warm_load_seconds(N, method, linear)

                def run():
                    return symsens.solve(model, (0.0, 10.0), method=method, rtol=1e-6, atol=1e-6,
                                         sensitivity="forward", parameters=PARAMETERS, linear_solver=linear,
                                         t_eval=[10.0])

                seconds, runs, sol = _median_time(run, args.repeats, args.budget)
                if linear == "dense":
                    last_dense[key] = (n, seconds)
                st = sol.stats
                bound = float("nan")
                if linear == "sparse":
                    if units is None:
                        units = _unit_costs(model, True, sol.y[-1])
                    bound = lower_bound(st, method, units)
                row = dict(N=N, n=n, method=method, linear=linear, t=seconds, runs=runs,
                           steps=st.accepted_steps, nlu=st.lu_decompositions, nfev=st.rhs_evaluations,
                           newton=st.newton_iterations, cold=cold, warm=warm, bound=bound, sparse=solver.sparse)
                rows.append(row)
                pending.append((row, sol))
                print(f"{key:14s} n={n:5d} t={seconds * 1e3:9.2f} ms ({runs}x) steps={st.accepted_steps:4d} "
                      f"nlu={st.lu_decompositions:4d} newton={st.newton_iterations:5d} cold={cold:6.1f} s "
                      f"warm={warm * 1e3:6.1f} ms bound={bound * 1e3:8.2f} ms sparse={solver.sparse}", flush=True)
        t0 = time.perf_counter()
        ref = symsens.solve(model, (0.0, 10.0), method="radau5", rtol=1e-12, atol=1e-12, sensitivity="forward",
                            parameters=PARAMETERS, linear_solver="sparse")
        y_ref, s_ref = ref.y[-1], ref.sensitivities[-1]
        print(f"reference Radau IIA rtol 1e-12: {time.perf_counter() - t0:.1f} s, {ref.stats.accepted_steps} steps",
              flush=True)
        for row, sol in pending:
            row["err_y"], row["err_s"] = _rel(sol.y[-1], y_ref), _rel(sol.sensitivities[-1], s_ref)
            print(f"{row['method']}/{row['linear']}: err y={row['err_y']:.1e} S={row['err_s']:.1e}", flush=True)
        if not args.no_cvodes:
            target = next(r["err_s"] for r in rows if r["N"] == N and r["method"] == "bdf" and r["linear"] == "sparse")
            chosen = None
            for rtol in args.cvodes_rtols or (1e-5, 1e-6, 1e-7, 1e-8, 1e-9):
                try:
                    t_s, runs, y, S = _cvodes(model, rtol, args.repeats, args.budget)
                except RuntimeError as error:
                    print(f"cvodes rtol {rtol:g}: failed: {str(error).splitlines()[0][:80]}")
                    continue
                err_y, err_s = _rel(y, y_ref), _rel(S, s_ref)
                print(f"cvodes rtol={rtol:g} n={n:5d} t={t_s * 1e3:9.2f} ms ({runs}x) err y={err_y:.1e} S={err_s:.1e}",
                      flush=True)
                rows.append(dict(N=N, n=n, method="cvodes", linear=f"rtol {rtol:g}", t=t_s, err_y=err_y, err_s=err_s))
                if err_s <= target and chosen is None:
                    chosen = rows[-1]
                    if not args.cvodes_rtols:
                        break
            if chosen is not None:
                chosen["equal_accuracy"] = True

    if sizes:
        _print_tables(sizes, rows)
    if args.network:
        sys.path.insert(0, str(Path(__file__).parent))
        from _networks import mass_action_network

        model = mass_action_network(args.network_species, 2 * args.network_species, seed=1)
        print(f"\n## mass-action network, {model.n_states} species, BDF rtol 1e-6, atol 1e-9, no sensitivities")
        for linear in ("dense", "sparse") if args.network_plain else ():
            t = time.perf_counter()
            solver = compiled_solver(model, [], "bdf", linear)
            cold = time.perf_counter() - t

            def run():
                return symsens.solve(model, (0.0, 10.0), method="bdf", rtol=1e-6, atol=1e-9, linear_solver=linear)

            seconds, runs, sol = _median_time(run, args.repeats, args.budget)
            print(f"network bdf {linear}: {seconds * 1e3:.1f} ms ({runs}x), status {sol.status}, "
                  f"steps {sol.stats.accepted_steps}, nlu {sol.stats.lu_decompositions}, cold {cold:.1f} s, "
                  f"sparse={solver.sparse}", flush=True)
        for n_parameters in args.network_sensitivities:
            _network_sensitivities(model, n_parameters, args.repeats, args.budget, not args.no_cvodes,
                                   args.network_reference, args.cvodes_rtols or (1e-5, 1e-6, 1e-7, 1e-8, 1e-9),
                                   bound=args.network_bound)


if __name__ == "__main__":
    main()
