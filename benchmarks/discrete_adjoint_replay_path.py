"""Stress scan of the implicit discrete adjoints: did the replay take the compiled solve's path?

Run: ``python benchmarks/discrete_adjoint_replay_path.py`` (about three minutes; ``model:scheme:rtol`` arguments,
e.g. ``robertson:tr-bdf2:0.0001``, run only those rows).

For the Newton families (``kvaerno5``, ``tr-bdf2``, ``radau5``, ``bdf``) on Hodgkin–Huxley (0, 50 ms), Robertson
(0, 1e4) and the stiff neural ODE (0, 2) at rtol 1e-3, 1e-4, 1e-8 (atol = rtol / 1000, the audit's default), a
trajectory loss on 11 output times and two parameters, it prints per reverse sweep (compiled and NumPy):

- the relative difference max |adjoint-discrete - discrete| / max |discrete| (``symsens.gradient``: reverse mode
  through the replayed solve against forward-mode AD through the compiled solve);
- ``replay``: the replay's states against the compiled solve's outputs (relative);
- the replay's Jacobian evaluations / Newton iterations against the solve's (``solution.stats``): equal when the
  replay re-enacted the solve's path (``same``), a proof of another path when not (``DIFFERENT``);
- ``FAIL`` when a Newton solve of the replay did not converge where the compiled solve's did.
"""

from __future__ import annotations

import sys

import numpy as np

import symsens
from symsens.audit import TrajectoryLoss

CASES = [
    ("hodgkin-huxley", (0.0, 50.0), ("g_Na", "E_K"), ("g_Na", 115.0)),
    ("robertson", (0.0, 1e4), ("k1", "k3"), ("k1", 0.05)),
    ("stiff-neural-ode", (0.0, 2.0), ("k1", "b2_0"), ("k1", 1.05)),
]
SCHEMES = ["kvaerno5", "tr-bdf2", "radau5", "bdf"]
RTOLS = [1e-3, 1e-4, 1e-8]


def _sweep_cell(forward: symsens.GradientResult, reverse: symsens.GradientResult) -> str:
    if not (forward.success and reverse.success):
        return f"FAIL: {reverse.message}"
    relative = float(np.max(np.abs(reverse.gradient - forward.gradient)) / np.max(np.abs(forward.gradient)))
    details = reverse.statistics["discrete_adjoint"]
    return (f"{relative:.1e} (replay {details['replay_difference']:.1e}; "
            f"{details['replay_jacobian_evaluations']}/{details['replay_newton_iterations']} against "
            f"{details['solve_jacobian_evaluations']}/{details['solve_newton_iterations']}: "
            f"{'same' if details['path_matches'] else 'DIFFERENT'})")


def main() -> None:
    only = set(sys.argv[1:])
    print("| model | scheme | rtol | compiled sweep | NumPy sweep |")
    print("|---|---|---|---|---|")
    for name, span, parameters, data in CASES:
        model = symsens.load_model(name)
        loss = TrajectoryLoss(grid=tuple(np.linspace(span[0], span[1], 11)), data_parameters=(data,))
        for scheme in SCHEMES:
            for rtol in RTOLS:
                if only and f"{name}:{scheme}:{rtol:g}" not in only:
                    continue
                options = dict(scheme=scheme, rtol=rtol, t_span=span, parameters=list(parameters))
                forward = symsens.gradient(model, loss, method="discrete", **options)
                cells = [_sweep_cell(forward, symsens.gradient(model, loss, method="adjoint-discrete",
                                                                backend=backend, **options))
                         for backend in ("compiled", "numpy")]
                print(f"| {name} | {scheme} | {rtol:g} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
