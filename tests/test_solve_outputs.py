"""Outputs at the accepted steps (``t_eval=None``) are recorded during the one solve.

Independent check: a second solve with ``t_eval`` set to the first solve's step times must land exactly on the
same values (every output time is then a step end, where no interpolation happens), including runs longer than
the first output buffer (4096 steps), which are repeated once with room for every step.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.integrate import solve


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


@pytest.mark.parametrize(
    ("method", "sensitivity"),
    [("tsit5", None), ("tsit5", "discrete"), ("radau-iia-3", "forward"), ("bdf", None), ("bdf", "forward")],
)
def test_step_outputs_equal_a_solve_onto_those_times(method: str, sensitivity: str | None) -> None:
    model = symsens.load_model("van-der-pol")
    kwargs = dict(p={"mu": 10.0}, method=method, rtol=1e-6, atol=1e-8, sensitivity=sensitivity)
    at_steps = solve(model, (0.0, 3.0), **kwargs)
    at_steps.check()
    np.testing.assert_array_equal(at_steps.t, at_steps.stats.step_times)
    assert at_steps.y.shape == (len(at_steps.t), model.n_states)
    again = solve(model, (0.0, 3.0), t_eval=at_steps.t, **kwargs)
    np.testing.assert_array_equal(again.stats.step_times, at_steps.stats.step_times)
    np.testing.assert_array_equal(again.y, at_steps.y)
    if sensitivity is not None:
        np.testing.assert_array_equal(again.sensitivities, at_steps.sensitivities)


def test_long_runs_outgrow_the_first_buffer() -> None:
    model = symsens.load_model("stiff-linear")
    # Explicit Euler at a fixed step: exactly 5000 steps, more than the 4096 rows of the first buffer.
    solution = solve(model, (0.0, 1.0), p={"lam": -2.0}, method="euler", fixed_step=1.0 / 5000, sensitivity="discrete")
    solution.check()
    assert len(solution.t) == 5001
    lam = -2.0
    y0 = solution.y[0, 0]
    k = np.arange(5001)
    # Explicit Euler on y' = lam y: y_k = (1 + h lam)^k y0, exactly up to rounding.
    np.testing.assert_allclose(solution.y[:, 0], (1 + lam / 5000) ** k * y0, rtol=1e-12)
    # and its exact derivative in lam: d/dlam (1 + h lam)^k y0 = k h (1 + h lam)^(k-1) y0.
    index = model.parameter_names.index("lam")
    h = 1.0 / 5000
    np.testing.assert_allclose(solution.sensitivities[:, 0, index], k * h * (1 + h * lam) ** (k - 1) * y0,
                               rtol=1e-11, atol=1e-300)


def test_fixed_steps_onto_output_times_keep_their_size() -> None:
    """A fixed step shortened to land on an output time does not shrink the steps after it."""
    model = symsens.load_model("stiff-linear")
    solution = solve(model, (0.0, 1.0), p={"lam": -2.0}, method="rk4", fixed_step=0.1, t_eval=[0.05, 0.55],
                     step_onto_outputs=True)
    solution.check()
    # 0.05 (to the first output), 0.1 x 5 to 0.55 (one of them shortened onto it), then 0.1 steps to 1.0.
    steps = solution.stats.step_sizes
    assert len(steps) <= 13
    assert np.count_nonzero(np.isclose(steps, 0.1)) >= 9
    # RK4 at its nodes: y(0.55) against exp(-2 * 0.55) to the method's accuracy at h = 0.1.
    assert solution.y[1, 0] == pytest.approx(np.exp(-1.1), rel=1e-4)
