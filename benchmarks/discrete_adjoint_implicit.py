"""Discrete adjoints of the implicit families against discrete forward mode: the agreement table.

Run: ``python benchmarks/discrete_adjoint_implicit.py [--repeats 5]``.

For every compiled implicit family (Rosenbrock ``rodas4``, ESDIRK ``kvaerno5`` and ``tr-bdf2``, Radau IIA
``radau5``, BDF ``bdf``) on Robertson (0, 40), Hodgkin–Huxley (0, 5 ms) and the stiff neural ODE (0, 0.5), rtol
1e-6 (atol 1e-9), a trajectory loss on a fixed grid and two parameters, it prints

- ``rel. diff``: max |adjoint-discrete - discrete| / max |discrete| (``symsens.gradient``: the compiled reverse
  sweep against forward-mode AD through the compiled solver on the same steps: two computations of one number);
- ``C vs NumPy``: the compiled reverse sweep against the NumPy one (the same arithmetic; rounding only);
- ``replay``: the replay's states against the compiled solve's outputs (relative): 1e-16 when the replay
  took the compiled solve's path; larger when a Jacobian was re-evaluated in a rejected attempt, which the
  compiled solve does not record (then the adjoint is the derivative of the replayed program);
- ``vs replay_steps``: the same adjoint with the replayed Newton budget against
  ``solve(replay_steps=..., sensitivity="discrete")`` (no rejections: exact by construction);
- steps (accepted/rejected), stored numbers of the checkpointed reverse pass, and the median seconds (after a
  warm-up call that compiles) of the reverse gradient (the compiled plain solve, then the compiled reverse sweep;
  and with the NumPy reverse sweep) and of the compiled forward mode (``solve(sensitivity="discrete")`` with two partials), for the cotangents at 9
  outputs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import symsens
from symsens.audit import TrajectoryLoss
from symsens.integrate._discrete_adjoint import discrete_adjoint

CASES = [
    ("robertson", (0.0, 40.0), ("k1", "k3"), tuple(np.geomspace(1e-3, 40.0, 15)), ("k1", 0.05)),
    ("hodgkin-huxley", (0.0, 5.0), ("g_Na", "E_K"), tuple(np.linspace(0.0, 5.0, 26)), ("g_Na", 115.0)),
    ("stiff-neural-ode", (0.0, 0.5), ("k1", "b2_0"), tuple(np.linspace(0.0, 0.5, 21)), ("k1", 1.05)),
]
SCHEMES = ["rodas4", "kvaerno5", "tr-bdf2", "radau5", "bdf"]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _median_seconds(call, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| model | scheme | steps (rejected) | rel. diff | C vs NumPy | replay | vs replay_steps | stored numbers | "
          "adjoint s (compiled) | adjoint s (NumPy) | discrete s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, span, parameters, grid, data in CASES:
        model = symsens.load_model(name)
        p = np.asarray(model.parameter_values, dtype=float)
        loss = TrajectoryLoss(grid=grid, data_parameters=(data,))
        for scheme in SCHEMES:
            options = dict(scheme=scheme, rtol=1e-6, t_span=span, parameters=list(parameters))
            forward = symsens.gradient(model, loss, method="discrete", **options)
            reverse = symsens.gradient(model, loss, method="adjoint-discrete", **options)
            if not (forward.success and reverse.success):
                print(f"| {name} | {scheme} | failed: {forward.message} / {reverse.message} |")
                continue
            stats = reverse.statistics
            # Against the replayed forward mode, a cotangent at 9 outputs.
            t_eval = np.linspace(span[0], span[1], 9)
            plain = symsens.solve(model, span, method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval)
            replayed = symsens.solve(model, span, method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval,
                                     sensitivity="discrete", parameters=list(parameters),
                                     replay_steps=plain.stats.step_sizes)
            W = np.cos(np.arange(plain.y.size, dtype=float)).reshape(plain.y.shape)
            run = discrete_adjoint(model, scheme, p, parameters, plain.stats.step_times, plain.stats.step_sizes,
                                   t_eval, W, rtol=1e-6, atol=1e-9, replayed=True)
            versus_replay = _relative(run.gradient, np.einsum("ki,kij->j", W, replayed.sensitivities))
            numpy_run = discrete_adjoint(model, scheme, p, parameters, plain.stats.step_times,
                                         plain.stats.step_sizes, t_eval, W, rtol=1e-6, atol=1e-9, replayed=True,
                                         backend="numpy")
            compiled_vs_numpy = _relative(run.gradient, numpy_run.gradient)

            def reverse_gradient(backend: str) -> None:
                solved = symsens.solve(model, span, method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval)
                discrete_adjoint(model, scheme, p, parameters, solved.stats.step_times, solved.stats.step_sizes,
                                 t_eval, W, rtol=1e-6, atol=1e-9, backend=backend)

            t_adjoint = _median_seconds(lambda: reverse_gradient("compiled"), args.repeats)
            t_numpy = _median_seconds(lambda: reverse_gradient("numpy"), args.repeats)
            t_forward = _median_seconds(lambda: symsens.solve(model, span, method=scheme, rtol=1e-6, atol=1e-9,
                                                              t_eval=t_eval, sensitivity="discrete",
                                                              parameters=list(parameters)), args.repeats)
            print(f"| {name} | {scheme} | {stats['forward']['accepted_steps']} ({stats['forward']['rejected_steps']}) "
                  f"| {_relative(reverse.gradient, forward.gradient):.1e} | {compiled_vs_numpy:.1e} "
                  f"| {stats['discrete_adjoint']['replay_difference']:.1e} | {versus_replay:.1e} "
                  f"| {stats['discrete_adjoint']['stored_numbers']} | {t_adjoint:.4f} | {t_numpy:.3f} "
                  f"| {t_forward:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
