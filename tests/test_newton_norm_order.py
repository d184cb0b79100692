"""The Newton norm is summed in eight partial sums, and the replays sum it in exactly that order.

``NewtonWeights::norm`` (symsens_implicit.hpp) sums the squares ``(x_i w_(i mod n))^2`` in eight partial sums (entry
``i`` of each block of ``n`` into sum ``i mod 8``, each in increasing order), added pairwise at the end: one running
sum would make the norm of a long vector one chain of dependent additions.  The replays of the discrete adjoints
(C++ ``weighted_norm`` and the NumPy ``weighted_norm``) must take the solve's Newton decisions, so they sum in the
same order.  Checked here: the NumPy norm against a plain-Python loop written from that definition (bit for bit)
and against the exact RMS (``math.fsum``); and on a 13-state model (blocks that are not a multiple of 8, stage
vectors of 3 blocks for Radau IIA), that the compiled and the NumPy replays take as many Jacobians and Newton
iterations as the compiled solve counted, and give the same gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import symsens
from symsens.integrate._discrete_adjoint import discrete_adjoint
from symsens.integrate._discrete_adjoint_newton import weighted_norm


def _eight_lane_norm(x: list[float], weights: list[float]) -> float:
    """The definition, written out: squares into partial sums by (index within the block) mod 8."""
    n = len(weights)
    partial = [0.0] * 8
    for i, value in enumerate(x):
        q = value * weights[i % n]
        partial[(i % n) % 8] += q * q
    total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
    return math.sqrt(total / max(len(x), 1))


@pytest.mark.parametrize("n, blocks", [(1, 1), (5, 1), (8, 1), (13, 1), (13, 3), (40, 4), (1027, 1)])
def test_numpy_norm_is_the_eight_lane_sum(n: int, blocks: int) -> None:
    rng = np.random.default_rng(n * 10 + blocks)
    x = rng.standard_normal(n * blocks) * 10.0 ** rng.uniform(-8, 3, n * blocks)
    weights = 1.0 / (1e-9 + 1e-6 * np.abs(rng.standard_normal(n)))
    value = weighted_norm(x, weights)
    assert value == _eight_lane_norm(x.tolist(), weights.tolist())
    squares = [(xi * weights[i % n]) ** 2 for i, xi in enumerate(x.tolist())]
    exact = math.sqrt(math.fsum(squares) / len(squares))
    assert value == pytest.approx(exact, rel=4 * np.finfo(float).eps * (1 + math.log2(n * blocks)))


@pytest.mark.parametrize("scheme", ["bdf", "radau5"])
def test_replays_take_the_solve_path_on_thirteen_states(scheme: str) -> None:
    model = symsens.load_model("calcium-neuron")
    assert model.n_states == 13
    parameters = list(model.parameter_names[:2])
    span, t_eval = (0.0, 50.0), np.linspace(0.0, 50.0, 11)
    solution = symsens.solve(model, span, method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval,
                             sensitivity="discrete", parameters=parameters)
    assert solution.status == "success"
    stats = solution.stats
    W = np.cos(np.arange(solution.y.size, dtype=float)).reshape(solution.y.shape)
    arguments = (model, scheme, np.asarray(model.parameter_values, dtype=float), parameters, stats.step_times,
                 stats.step_sizes, t_eval, W)
    gradients = {}
    for backend in ("compiled", "numpy"):
        run = discrete_adjoint(*arguments, rtol=1e-6, atol=1e-9, backend=backend)
        assert (run.jacobian_evaluations, run.newton_iterations) == (stats.jacobian_evaluations,
                                                                     stats.newton_iterations), backend
        gradients[backend] = run.gradient
    # Forward mode through the same solve is the independent value of the gradient: sum over outputs of W . S.
    forward = np.einsum("ti,tij->j", W, solution.sensitivities)
    scale = np.max(np.abs(forward))
    for backend, gradient in gradients.items():
        assert np.max(np.abs(gradient - forward)) <= 1e-12 * scale, backend
