"""Gradient cost against the number of parameters: adjoints against forward sensitivities.

Run: ``python benchmarks/adjoint.py [--sizes 10,100,1000] [--repeats 3]``.

The model is a generated mass-action network of 20 species with P reactions, one rate constant each (the
generator of ``benchmarks/_networks.py`` with rates scaled so that the total flux per species stays the same as P
grows, and non-stiff so that explicit schemes apply), over t in (0, 5); the loss is least squares of every
species against data made at 1.05 times the rates, at 10 times.  The gradient is with respect to every rate
constant (P of them).  Each (P, method) runs in a fresh process: the first call (symbolic derivation, lambdify,
C++ compile or JAX tracing) is reported as ``setup``, then the median of ``--repeats`` calls, the relative error
against the reference (``symsens.true_gradient``, verified digits, for P <= 100; for P = 1000, where verifying takes
longer than a benchmark should, CasADi's CVODES at rtol 1e-12, an independent code), and the process's peak RSS (``ru_maxrss``; it includes
Python, SymPy and NumPy, about the first 200 MB).

Methods (all at rtol 1e-8, atol 1e-11; accuracy is compared, so "equal accuracy" is read off the error column):

- ``adjoint-interpolating``: the continuous adjoint on SciPy's RK45 (``symsens.gradient``), Python kernels;
- ``adjoint-interpolating-compiled``: the same adjoint compiled (``symsens.gradient(scheme="tsit5")``): forward and
  backward Tsit5 in C++, ``J^T v`` and ``F_p^T v`` from the generated transposed products;
- ``adjoint-discrete``: the compiled Tsit5 solve, then reverse mode through its steps in C++ (checkpointed;
  ``symsens_erk_adjoint.hpp`` with the model's generated ``J^T v`` and ``F_p^T v`` kernels);
- ``adjoint-discrete-numpy``: the same reverse mode in NumPy with lambdified kernels (``backend="numpy"``);
- ``adjoint-discrete-direct``: the same compiled reverse sweep called directly (``symsens.solve`` with tsit5, the
  least-squares cotangents ``2 (y - data)``, ``discrete_adjoint_erk(backend="compiled")``), without the
  bookkeeping of ``symsens.gradient`` (loss plan, audit setting); the same number as ``adjoint-discrete``;
- ``forward``: compiled continuous forward sensitivities with Tsit5 (C++; n(P+1) unknowns);
- ``discrete``: compiled forward-mode AD through Tsit5 (C++ dual numbers with P partials);
- ``casadi-cvodes-adjoint``: CasADi's CVODES integrator, gradient by reverse mode (CVODES's adjoint module);
- ``diffrax-recursive-checkpoint``: diffrax Tsit5 with ``RecursiveCheckpointAdjoint`` (reverse mode through the
  solver), jitted ``jax.grad``; ``diffrax-backsolve``: ``BacksolveAdjoint``.

``--methods`` also takes ``METHOD@RTOL`` for the symsens methods (e.g. ``adjoint-discrete-direct@1e-10``): the same
method at another tolerance, for a comparison at equal error.  CasADi and diffrax are run when importable (``pip install ".[bench]"``).  The crossover P is the smallest P at
which the adjoint's median time is below the compiled forward sensitivities'.

``--model neural`` (``python benchmarks/adjoint.py --model neural --sizes 10,100,1000``) runs the same comparison
on a stiff model: a generated neural ODE of the form of the built-in ``stiff-neural-ode`` (Fronk & Petzold 2025),
``y' = -diag(1, 1e2, 1e4) y + W2 tanh(W1 y + b1) + b2`` with 3 states and a hidden layer of H tanh units, so
P = 7H + 3 weights (P = 10, 101, 997 for H = 1, 14, 142), weights from a fixed seed scaled by 1/sqrt(fan-in);
t in (0, 1), least squares of every state at 10 times against data made at 1.05 times the weights, gradient with
respect to every weight.  The reference line of each P gives the accepted steps of tsit5 and rodas4 (explicit
schemes are stability-limited here).  Methods are named ``KIND/SCHEME[@RTOL]`` for ``symsens.gradient`` (e.g.
``adjoint-discrete/bdf@1e-10``), ``casadi-cvodes-adjoint[@RTOL]`` (CVODES BDF, its adjoint module) and
``diffrax-kvaerno5[@RTOL]`` (Kvaerno5, ``RecursiveCheckpointAdjoint``); default rtol 1e-8, atol = rtol/1000.
The reference is ``symsens.true_gradient`` for P <= 100 (where CVODES at rtol 1e-12 is also compared with it) and
CVODES at rtol 1e-12 above.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

N_SPECIES = 20
T_SPAN = (0.0, 5.0)
RTOL, ATOL = 1e-8, 1e-11
TIMES = np.linspace(0.5, 5.0, 10)

METHODS = ("adjoint-interpolating", "adjoint-interpolating-compiled", "adjoint-interpolating-compiled@1e-10",
           "adjoint-discrete", "adjoint-discrete@1e-11", "adjoint-discrete-direct",
           "adjoint-discrete-direct@1e-11", "adjoint-discrete-numpy", "forward", "discrete",
           "casadi-cvodes-adjoint", "diffrax-recursive-checkpoint", "diffrax-backsolve")


def network(P: int, seed: int = 1) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The symsens model and its stoichiometry: (model, reactant index pairs, product index pairs, rates, y0)."""
    import sympy as sp

    import symsens

    rng = np.random.default_rng(seed)
    species = [sp.Symbol(f"x{i}") for i in range(N_SPECIES)]
    rates = [sp.Symbol(f"k{r}") for r in range(P)]
    rhs = [sp.S.Zero] * N_SPECIES
    reactants = np.full((P, 2), -1)
    products = np.full((P, 2), -1)
    for r in range(P):
        a = rng.choice(N_SPECIES, size=rng.integers(1, 3), replace=False)
        b = rng.choice(N_SPECIES, size=rng.integers(1, 3), replace=False)
        reactants[r, : len(a)] = a
        products[r, : len(b)] = b
        flux = rates[r] * sp.Mul(*(species[i] for i in a))
        for i in a:
            rhs[i] -= flux
        for i in b:
            rhs[i] += flux
    values = 10 ** rng.uniform(-1, 0, P) * (20.0 / P)
    y0 = rng.uniform(0.5, 1.5, N_SPECIES)
    model = symsens.Model(states=species, parameters={k.name: float(v) for k, v in zip(rates, values)}, rhs=rhs,
                          initial_conditions=[float(v) for v in y0], name=f"mass-action-{N_SPECIES}x{P}",
                          t_span=T_SPAN)
    return model, reactants, products, values, y0


def _loss(model: Any) -> Any:
    """Least squares of every species at TIMES against data made at 1.05 times the rates."""
    import symsens
    from symsens.audit import DataLoss

    p_data = np.asarray(model.parameter_values) * 1.05
    data = symsens.solve(model, T_SPAN, p=p_data, method="verner7", rtol=1e-12, atol=1e-14,
                         t_eval=TIMES).y
    return DataLoss(TIMES, data, tuple(model.state_names))


def _symsens_call(model: Any, loss: Any, method: str) -> tuple[Any, np.ndarray]:
    import symsens

    scheme = {"adjoint-interpolating": "dopri5"}.get(method, "tsit5")
    options = {}
    if method == "adjoint-interpolating":
        options["backend"] = "scipy"
    elif method == "adjoint-interpolating-compiled":
        method = "adjoint-interpolating"
    elif method.startswith("adjoint-discrete"):
        options["backend"] = "numpy" if method == "adjoint-discrete-numpy" else "compiled"
        method = "adjoint-discrete"
    result = symsens.gradient(model, loss, method=method, scheme=scheme, rtol=RTOL, atol=ATOL, **options).check()
    return result, np.asarray(result.gradient)


def _direct(model: Any, loss: Any):
    """The compiled Tsit5 solve, the least-squares cotangents and the compiled reverse sweep, called directly."""
    import symsens
    from symsens.integrate._discrete_adjoint import discrete_adjoint_erk

    names = tuple(model.parameter_names)
    observed = np.asarray(loss.observed, dtype=float)

    def call(p: np.ndarray) -> np.ndarray:
        solution = symsens.solve(model, T_SPAN, p=p, method="tsit5", rtol=RTOL, atol=ATOL, t_eval=TIMES)
        if solution.status != "success":
            raise RuntimeError(solution.message)
        W = 2.0 * (solution.y - observed)                  # dL/dy of sum_k |y_k - d_k|^2
        return discrete_adjoint_erk(model, "tsit5", p, names, solution.stats.step_times, solution.stats.step_sizes,
                                    TIMES, W, backend="compiled").gradient

    return call


def _casadi(model: Any, loss: Any, reactants: np.ndarray, products: np.ndarray, rates: np.ndarray, y0: np.ndarray):
    import casadi as ca

    P = len(rates)
    x = ca.SX.sym("x", N_SPECIES)
    k = ca.SX.sym("k", P)
    f = [0] * N_SPECIES
    for r in range(P):
        flux = k[r]
        for i in reactants[r]:
            if i >= 0:
                flux = flux * x[int(i)]
        for i in reactants[r]:
            if i >= 0:
                f[int(i)] = f[int(i)] - flux
        for i in products[r]:
            if i >= 0:
                f[int(i)] = f[int(i)] + flux
    dae = {"x": x, "p": k, "ode": ca.vertcat(*f)}
    F = ca.integrator("F", "cvodes", dae, T_SPAN[0], TIMES.tolist(),
                      {"abstol": ATOL, "reltol": RTOL, "fsens_err_con": True})
    kk = ca.MX.sym("k", P)
    xs = F(x0=ca.DM(y0), p=kk)["xf"]          # N_SPECIES x len(TIMES)
    data = ca.DM(np.asarray(loss.observed).T)
    L = ca.sumsqr(xs - data)
    G = ca.Function("G", [kk], [L, ca.gradient(L, kk)])

    def call(p: np.ndarray) -> np.ndarray:
        value, g = G(ca.DM(p))
        return np.asarray(g).ravel()

    return call


def _diffrax(loss: Any, reactants: np.ndarray, products: np.ndarray, y0: np.ndarray, adjoint: str):
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    R = jnp.asarray(reactants)
    Q = jnp.asarray(products)
    data = jnp.asarray(np.asarray(loss.observed))

    def rhs(t, y, k):
        ypad = jnp.concatenate([y, jnp.ones(1)])          # index -1 -> 1 (absent reactant)
        flux = k * ypad[R[:, 0]] * ypad[R[:, 1]]
        dy = jnp.zeros(N_SPECIES + 1)
        dy = dy.at[jnp.where(R[:, 0] >= 0, R[:, 0], N_SPECIES)].add(-flux)
        dy = dy.at[jnp.where(R[:, 1] >= 0, R[:, 1], N_SPECIES)].add(-flux)
        dy = dy.at[jnp.where(Q[:, 0] >= 0, Q[:, 0], N_SPECIES)].add(flux)
        dy = dy.at[jnp.where(Q[:, 1] >= 0, Q[:, 1], N_SPECIES)].add(flux)
        return dy[:N_SPECIES]

    term = diffrax.ODETerm(rhs)
    chosen = {"recursive-checkpoint": diffrax.RecursiveCheckpointAdjoint(),
              "backsolve": diffrax.BacksolveAdjoint()}[adjoint]

    def L(k):
        sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), T_SPAN[0], T_SPAN[1], None, jnp.asarray(y0), args=k,
                                  saveat=diffrax.SaveAt(ts=jnp.asarray(TIMES)),
                                  stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
                                  adjoint=chosen, max_steps=200_000)
        return jnp.sum((sol.ys - data) ** 2)

    grad = jax.jit(jax.grad(L))
    return lambda p: np.asarray(grad(jnp.asarray(p)))


def one(P: int, method: str, repeats: int) -> dict[str, Any]:
    """One (P, method) in this process: setup time, median time, gradient, peak RSS.  ``METHOD@RTOL`` runs a
    symsens method at another rtol (atol = rtol / 1000), to compare times at equal accuracy."""
    global RTOL, ATOL
    name = method
    if "@" in method:
        method, tolerance = method.split("@")
        RTOL, ATOL = float(tolerance), float(tolerance) / 1000
    model, reactants, products, rates, y0 = network(P)
    loss = _loss(model)
    start = time.perf_counter()
    if method.startswith("casadi"):
        call = _casadi(model, loss, reactants, products, rates, y0)
        run = lambda: call(rates)  # noqa: E731
    elif method == "adjoint-discrete-direct":
        call = _direct(model, loss)
        run = lambda: call(rates)  # noqa: E731
    elif method.startswith("diffrax"):
        call = _diffrax(loss, reactants, products, y0, method[len("diffrax-"):])
        run = lambda: call(rates)  # noqa: E731
    else:
        run = lambda: _symsens_call(model, loss, method)[1]  # noqa: E731
    gradient = run()
    setup = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient = run()
        times.append(time.perf_counter() - start)
    return {"P": P, "method": name, "rtol": RTOL, "setup": setup, "median": statistics.median(times),
            "gradient": np.asarray(gradient, dtype=float).tolist(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def reference(P: int, budget: float) -> dict[str, Any]:
    """The verified reference gradient for P <= 100; above, where verifying (or compiling forward sensitivities
    for a tight run) takes longer than a benchmark should, CasADi's CVODES at rtol 1e-12 (an independent code),
    else the interpolating adjoint with DOP853 at rtol 1e-12."""
    import symsens

    model, reactants, products, rates, y0 = network(P)
    loss = _loss(model)
    start = time.perf_counter()
    if P <= 100:
        truth = symsens.true_gradient(model, loss, digits=9)
        return {"gradient": truth.gradient.tolist(), "how": "verified reference",
                "seconds": time.perf_counter() - start}
    global RTOL, ATOL
    RTOL, ATOL = 1e-12, 1e-15
    try:
        gradient = _casadi(model, loss, reactants, products, rates, y0)(rates)
        how = "CasADi CVODES adjoint, rtol 1e-12"
    except ImportError:
        gradient = symsens.gradient(model, loss, method="adjoint-interpolating", scheme="dop853", rtol=1e-12,
                                    atol=1e-15).check().gradient
        how = "adjoint-interpolating, DOP853, rtol 1e-12"
    return {"gradient": np.asarray(gradient).tolist(), "how": how, "seconds": time.perf_counter() - start}


# ---------------------------------------------------------------------------------------------------------------
# --model neural: a stiff neural ODE y' = -diag(k) y + W2 tanh(W1 y + b1) + b2 with P weights
# ---------------------------------------------------------------------------------------------------------------

NEURAL_STATES = 3
NEURAL_K = (1.0, 100.0, 1e4)          # the stiff linear part: eigenvalues down to -1e4 on t in (0, 1)
NEURAL_T_SPAN = (0.0, 1.0)
NEURAL_TIMES = np.linspace(0.1, 1.0, 10)
NEURAL_Y0 = (1.0, 0.5, -0.5)
NEURAL_RTOL = 1e-8

NEURAL_METHODS = ("adjoint-interpolating/rodas4@1e-6", "adjoint-interpolating/rodas4",
                  "adjoint-interpolating/rodas4@1e-10", "adjoint-interpolating/kvaerno5",
                  "adjoint-interpolating/kvaerno5@1e-10",
                  "adjoint-discrete/rodas4@1e-6", "adjoint-discrete/rodas4", "adjoint-discrete/rodas4@1e-10",
                  "adjoint-discrete/bdf", "adjoint-discrete/bdf@1e-10", "adjoint-discrete/bdf@1e-12",
                  "forward/rodas4@1e-6", "forward/rodas4", "forward/rodas4@1e-10",
                  "casadi-cvodes-adjoint", "casadi-cvodes-adjoint@1e-10", "casadi-cvodes-adjoint@1e-12",
                  "diffrax-kvaerno5@1e-6", "diffrax-kvaerno5", "diffrax-kvaerno5@1e-10")


def neural_hidden(P: int) -> int:
    """The hidden width H whose weight count P(H) = 2 n H + H + n is nearest the requested P (H >= 1)."""
    n = NEURAL_STATES
    return max(1, round((P - n) / (2 * n + 1)))


def neural_weights(P: int, seed: int = 20251207) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(W1 (H x n), b1 (H), W2 (n x H), b2 (n)) from a fixed seed: W1 = N(0,1)/sqrt(n), b1 = 0.1 N(0,1),
    W2 = N(0,1)/sqrt(H), b2 = 0.1 N(0,1).  The 1/sqrt(fan-in) scalings keep W2 tanh(W1 y + b1) + b2 of order one
    whatever H, so the slow state stays O(1) and the fast ones relax to O(1/k) (as in the built-in
    ``stiff-neural-ode``, Fronk & Petzold 2025)."""
    n, H = NEURAL_STATES, neural_hidden(P)
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((H, n)) / np.sqrt(n), 0.1 * rng.standard_normal(H),
            rng.standard_normal((n, H)) / np.sqrt(H), 0.1 * rng.standard_normal(n))


def neural(P: int) -> tuple[Any, np.ndarray]:
    """The symsens model (built from expression strings in the model language) and its weight vector, in the
    order W1 (row-major), b1, W2 (row-major), b2.  Each hidden unit's argument is written once, as an
    intermediate, so the text grows like P and not like n P."""
    import symsens

    W1, b1, W2, b2 = neural_weights(P)
    H, n = W1.shape
    ys = [f"y{j + 1}" for j in range(n)]
    names = ([f"W1_{i}_{j}" for i in range(H) for j in range(n)] + [f"b1_{i}" for i in range(H)]
             + [f"W2_{i}_{j}" for i in range(n) for j in range(H)] + [f"b2_{i}" for i in range(n)])
    values = np.concatenate([W1.ravel(), b1, W2.ravel(), b2])
    intermediates = {f"h{i}": "tanh(" + " + ".join(f"W1_{i}_{j}*{ys[j]}" for j in range(n)) + f" + b1_{i})"
                     for i in range(H)}
    rhs = [f"-{NEURAL_K[j]!r}*{ys[j]} + " + " + ".join(f"W2_{j}_{i}*h{i}" for i in range(H)) + f" + b2_{j}"
           for j in range(n)]
    model = symsens.Model(states=ys, parameters=dict(zip(names, values.tolist())), rhs=rhs,
                          initial_conditions=list(NEURAL_Y0), intermediates=intermediates,
                          name=f"stiff-neural-ode-{n}x{H}", t_span=NEURAL_T_SPAN)
    return model, values


def _neural_loss(model: Any) -> Any:
    """Least squares of every state at NEURAL_TIMES against data made at 1.05 times the weights."""
    import symsens
    from symsens.audit import DataLoss

    p_data = np.asarray(model.parameter_values) * 1.05
    data = symsens.solve(model, NEURAL_T_SPAN, p=p_data, method="rodas4", rtol=1e-12, atol=1e-15,
                         t_eval=NEURAL_TIMES).y
    return DataLoss(NEURAL_TIMES, data, tuple(model.state_names))


def _neural_unpack(p: Any, H: int, n: int, reshape: Any) -> tuple[Any, Any, Any, Any]:
    a, b, c = H * n, H * n + H, 2 * H * n + H
    return reshape(p[:a], (H, n)), p[a:b], reshape(p[b:c], (n, H)), p[c:]


def _neural_casadi(P: int, loss: Any, rtol: float, atol: float, checkpoint_every: int = 20):
    """CasADi's CVODES (BDF, Newton, dense LU) on the same ODE; the gradient by reverse mode, i.e. CVODES's
    adjoint module.  ``checkpoint_every`` = CVODES's steps per checkpoint (default 20); the rtol 1e-12 reference
    needs 1 (with 20 the backward problem stops with CV_TOO_MUCH_WORK at t = 0.91 on this model)."""
    import casadi as ca

    W1v, _, _, _ = neural_weights(P)
    H, n = W1v.shape
    Np = 2 * H * n + H + n
    x = ca.SX.sym("y", n)
    p = ca.SX.sym("p", Np)
    W1, b1, W2, b2 = _neural_unpack(p, H, n, lambda v, s: ca.reshape(v, s[1], s[0]).T)
    f = -ca.DM(NEURAL_K) * x + ca.mtimes(W2, ca.tanh(ca.mtimes(W1, x) + b1)) + b2
    F = ca.integrator("F", "cvodes", {"x": x, "p": p, "ode": f}, NEURAL_T_SPAN[0], NEURAL_TIMES.tolist(),
                      {"abstol": atol, "reltol": rtol, "fsens_err_con": True, "max_num_steps": 1_000_000,
                       "steps_per_checkpoint": checkpoint_every})
    pp = ca.MX.sym("p", Np)
    L = ca.sumsqr(F(x0=ca.DM(NEURAL_Y0), p=pp)["xf"] - ca.DM(np.asarray(loss.observed).T))
    G = ca.Function("G", [pp], [L, ca.gradient(L, pp)])
    return lambda values: np.asarray(G(ca.DM(values))[1]).ravel()


def _neural_diffrax(P: int, loss: Any, rtol: float, atol: float):
    """diffrax Kvaerno5 (ESDIRK, its default chord Newton with the controller's tolerances) with
    RecursiveCheckpointAdjoint (reverse mode through the solver's steps), jitted ``jax.grad``."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    W1v, _, _, _ = neural_weights(P)
    H, n = W1v.shape
    k = jnp.asarray(NEURAL_K)
    data = jnp.asarray(np.asarray(loss.observed))

    def rhs(t, y, p):
        W1, b1, W2, b2 = _neural_unpack(p, H, n, jnp.reshape)
        return -k * y + W2 @ jnp.tanh(W1 @ y + b1) + b2

    def L(p):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(rhs), diffrax.Kvaerno5(), NEURAL_T_SPAN[0], NEURAL_T_SPAN[1],
                                  None, jnp.asarray(NEURAL_Y0), args=p,
                                  saveat=diffrax.SaveAt(ts=jnp.asarray(NEURAL_TIMES)),
                                  stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                                  adjoint=diffrax.RecursiveCheckpointAdjoint(), max_steps=100_000)
        return jnp.sum((sol.ys - data) ** 2)

    grad = jax.jit(jax.grad(L))
    return lambda values: np.asarray(grad(jnp.asarray(values)))


def one_neural(P: int, method: str, repeats: int) -> dict[str, Any]:
    """One (P, method) on the neural ODE in this process.  ``METHOD@RTOL`` sets rtol (atol = rtol / 1000)."""
    import symsens

    name, rtol = method, NEURAL_RTOL
    if "@" in method:
        method, tolerance = method.split("@")
        rtol = float(tolerance)
    atol = rtol / 1000
    model, values = neural(P)
    loss = _neural_loss(model)
    start = time.perf_counter()
    if method == "casadi-cvodes-adjoint":
        # below rtol 1e-11 the backward problem needs a checkpoint at every step (see _neural_casadi)
        call = _neural_casadi(P, loss, rtol, atol, checkpoint_every=1 if rtol < 1e-11 else 20)
        run = lambda: call(values)  # noqa: E731
    elif method == "diffrax-kvaerno5":
        call = _neural_diffrax(P, loss, rtol, atol)
        run = lambda: call(values)  # noqa: E731
    else:
        kind, scheme = method.split("/")

        def run() -> np.ndarray:
            return np.asarray(symsens.gradient(model, loss, method=kind, scheme=scheme, rtol=rtol,
                                               atol=atol).check().gradient)
    gradient = run()
    setup = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient = run()
        times.append(time.perf_counter() - start)
    return {"P": len(values), "method": name, "rtol": rtol, "setup": setup, "median": statistics.median(times),
            "gradient": np.asarray(gradient, dtype=float).tolist(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def reference_neural(P: int) -> dict[str, Any]:
    """The reference gradient: ``symsens.true_gradient`` (verified digits) for P <= 100, else CasADi's CVODES at
    rtol 1e-12; at P <= 100 CVODES at rtol 1e-12 is compared with the verified one (so the P = 1000 reference is
    checked where it can be).  Also the stiffness check: accepted steps of tsit5 and rodas4 at rtol 1e-8."""
    import symsens

    model, values = neural(P)
    loss = _neural_loss(model)
    steps, solve_seconds = {}, {}
    for scheme in ("tsit5", "rodas4", "bdf"):
        times = []
        for _ in range(6):                               # the first call loads (or compiles) the solver
            start = time.perf_counter()
            solution = symsens.solve(model, NEURAL_T_SPAN, method=scheme, rtol=NEURAL_RTOL,
                                     atol=NEURAL_RTOL / 1000, t_eval=NEURAL_TIMES)
            times.append(time.perf_counter() - start)
        steps[scheme] = int(solution.stats.accepted_steps)
        solve_seconds[scheme] = statistics.median(times[1:])
    start = time.perf_counter()
    cvodes = _neural_casadi(P, loss, 1e-12, 1e-15, checkpoint_every=1)(values)
    cvodes_seconds = time.perf_counter() - start
    out: dict[str, Any] = {"P": len(values), "steps": steps, "solve_seconds": solve_seconds}
    if P <= 100:
        start = time.perf_counter()
        truth = np.asarray(symsens.true_gradient(model, loss, digits=9).gradient, dtype=float)
        out.update(gradient=truth.tolist(), how="verified reference", seconds=time.perf_counter() - start,
                   cvodes_vs_verified=float(np.linalg.norm(cvodes - truth) / np.linalg.norm(truth)))
    else:
        out.update(gradient=cvodes.tolist(), how="CasADi CVODES adjoint, rtol 1e-12", seconds=cvodes_seconds)
    return out


MODEL = "network"


def _child(arguments: list[str], timeout: float) -> dict[str, Any] | None:
    try:
        done = subprocess.run([sys.executable, __file__, "--model", MODEL, *arguments], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default=None,
                        help="comma-separated; default all, without forward and discrete above P = 100 (their "
                             "drivers, dense in n x P, did not compile within 15 minutes at P = 1000)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--one", nargs=2, metavar=("P", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="FILE", help="also write every result as JSON")
    parser.add_argument("--model", choices=("network", "neural"), default="network",
                        help="network: the non-stiff mass-action network (default); neural: the stiff neural ODE")
    args = parser.parse_args()
    global MODEL
    MODEL = args.model
    if MODEL == "neural":
        main_neural(args)
        return
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args.repeats)))
        return
    if args.reference is not None:
        print(json.dumps(reference(args.reference, args.timeout)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",") if args.methods else list(METHODS)
    results: list[dict[str, Any]] = []
    print(f"mass-action network, {N_SPECIES} species, P rate constants, rtol {RTOL:g}, atol {ATOL:g}; "
          f"medians of {args.repeats}")
    print(f"{'P':>5} {'method':<30} {'setup s':>9} {'median s':>9} {'rel. error':>11} {'peak RSS MB':>12}")
    for P in sizes:
        ref = _child(["--reference", str(P), "--timeout", str(args.timeout)], args.timeout)
        g_ref = None if ref is None or "error" in ref else np.asarray(ref["gradient"])
        print(f"{P:>5} {'(reference: ' + (ref.get('how', '') if ref else '') + ')':<30} "
              f"{(ref or {}).get('seconds', float('nan')):>9.2f}" + (f"  {ref['error']}" if ref and "error" in ref else ""))
        for method in methods:
            if args.methods is None and P > 100 and method in ("forward", "discrete"):
                print(f"{P:>5} {method:<30} {'':>9} {'':>9} {'':>11} {'':>12}  not run (see --methods)")
                continue
            row = _child(["--one", str(P), method, "--repeats", str(args.repeats)], args.timeout)
            row = {"P": P, "method": method, **(row or {})}
            if "error" in row:
                print(f"{P:>5} {method:<30} {'':>9} {'':>9} {'':>11} {'':>12}  not run: {row['error']}")
                results.append(row)
                continue
            error = None
            if g_ref is not None:
                error = float(np.linalg.norm(np.asarray(row["gradient"]) - g_ref) / np.linalg.norm(g_ref))
            row["relative_error"] = error
            print(f"{P:>5} {method:<30} {row['setup']:>9.2f} {row['median']:>9.4f} "
                  f"{(f'{error:.1e}' if error is not None else '–'):>11} {row['peak_rss_mb']:>12.0f}")
            results.append(row)
    for adjoint in ("adjoint-interpolating", "adjoint-interpolating-compiled", "adjoint-discrete",
                    "adjoint-discrete-direct", "adjoint-discrete-numpy", "casadi-cvodes-adjoint"):
        crossing = next((P for P in sizes if _faster(results, P, adjoint, "forward")), None)
        print(f"crossover ({adjoint} faster than compiled forward sensitivities): "
              + (f"P = {crossing}" if crossing is not None else "not within the sizes run"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def main_neural(args: argparse.Namespace) -> None:
    """The table for ``--model neural``: per P the reference (and the tsit5 / rodas4 step counts), then each
    method in a fresh process; forward sensitivities only for P <= 100 unless named in ``--methods``."""
    if args.one:
        print(json.dumps(one_neural(int(args.one[0]), args.one[1], args.repeats)))
        return
    if args.reference is not None:
        print(json.dumps(reference_neural(args.reference)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",") if args.methods else list(NEURAL_METHODS)
    results: list[dict[str, Any]] = []
    print(f"stiff neural ODE y' = -diag{NEURAL_K} y + W2 tanh(W1 y + b1) + b2, {NEURAL_STATES} states, t in "
          f"{NEURAL_T_SPAN}, least squares at {len(NEURAL_TIMES)} times; rtol {NEURAL_RTOL:g} unless @rtol, "
          f"atol = rtol/1000; medians of {args.repeats}")
    print(f"{'P':>5} {'method':<38} {'setup s':>9} {'median s':>9} {'rel. error':>11} {'peak RSS MB':>12}")
    for P in sizes:
        ref = _child(["--reference", str(P)], args.timeout) or {}
        g_ref = None if "error" in ref else np.asarray(ref["gradient"])
        Pw = ref.get("P", P)
        if "error" in ref:
            print(f"{Pw:>5} (reference not run: {ref['error']})")
        else:
            check = (f"; CVODES rtol 1e-12 against it {ref['cvodes_vs_verified']:.1e}"
                     if "cvodes_vs_verified" in ref else "")
            print(f"{Pw:>5} (reference: {ref['how']}, {ref['seconds']:.1f} s{check})")
            print(f"{Pw:>5} (the solve alone at rtol {NEURAL_RTOL:g}, compiled: "
                  + ", ".join(f"{scheme} {ref['steps'][scheme]} steps {1e3 * ref['solve_seconds'][scheme]:.2f} ms"
                              for scheme in ref["steps"]) + ")", flush=True)
        for method in methods:
            if args.methods is None and P > 100 and method.startswith("forward"):
                print(f"{Pw:>5} {method:<38} {'':>9} {'':>9} {'':>11} {'':>12}  not run (see --methods)")
                continue
            row = _child(["--one", str(P), method, "--repeats", str(args.repeats)], args.timeout)
            row = {"P": Pw, "method": method, **(row or {})}
            if "error" in row:
                print(f"{Pw:>5} {method:<38} {'':>9} {'':>9} {'':>11} {'':>12}  not run: {row['error']}",
                      flush=True)
                results.append(row)
                continue
            error = None
            if g_ref is not None:
                error = float(np.linalg.norm(np.asarray(row["gradient"]) - g_ref) / np.linalg.norm(g_ref))
            row["relative_error"] = error
            print(f"{Pw:>5} {method:<38} {row['setup']:>9.2f} {row['median']:>9.4f} "
                  f"{(f'{error:.1e}' if error is not None else '–'):>11} {row['peak_rss_mb']:>12.0f}", flush=True)
            results.append(row)
    for adjoint in methods:
        if adjoint.startswith("forward"):
            continue
        other = "forward/rodas4" + (adjoint[adjoint.index("@"):] if "@" in adjoint else "")
        crossing = next((r["P"] for r in results if r["method"] == adjoint
                         and _faster(results, r["P"], adjoint, other)), None)
        if any(r["method"] == other for r in results):
            print(f"crossover ({adjoint} faster than {other}): "
                  + (f"P = {crossing}" if crossing is not None else "not within the sizes run"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def _faster(results: list[dict[str, Any]], P: int, method: str, other: str) -> bool:
    a = next((r for r in results if r["P"] == P and r["method"] == method and "median" in r), None)
    b = next((r for r in results if r["P"] == P and r["method"] == other and "median" in r), None)
    return a is not None and b is not None and a["median"] < b["median"]


if __name__ == "__main__":
    main()
