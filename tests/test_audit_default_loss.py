"""``symsens.audit(model)`` without a loss uses the loss ``symsens audit`` uses: a built-in example's preset,
else a fit to data the model makes with each differentiated parameter x 1.05 (true gradient not 0).

The fit's gradient is checked against the closed form of ``y' = -k y``, ``y(0) = y0``:
``L = sum_i (y(t_i) - d_i)^2`` with ``y = y0 e^{-k t}`` and ``d = 1.05 y0 e^{-1.05 k t}``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import symsens
from symsens import Model
from symsens.audit import TrajectoryLoss, audit, audit_sweep, fit_loss
from symsens.audit._audit import default_loss
from symsens.audit._presets import AUDIT_PRESETS

K, Y0 = 0.7, 2.0
OPTIONS = dict(schemes=["tsit5"], tolerances=[1e-9], methods=["forward"])


def decay(**values: float) -> Model:
    return Model(["y"], {"k": values.get("k", K), "y0": values.get("y0", Y0)}, ["-k*y"], ["y0"],
                 t_span=(0.0, 3.0), name="decay")


def closed_form(k: float, y0: float) -> tuple[float, np.ndarray]:
    t = np.linspace(0.0, 3.0, 101)[1:]  # fit_loss's grid: 100 equally spaced times after t0
    y, d = y0 * np.exp(-k * t), 1.05 * y0 * np.exp(-1.05 * k * t)
    r = y - d
    return float(np.sum(r**2)), np.array([np.sum(2 * r * (-t * y)), np.sum(2 * r * np.exp(-k * t))])


def test_python_default_is_the_fit_with_a_nonzero_true_gradient() -> None:
    model = decay()
    report = audit(model, **OPTIONS)
    assert report.loss_description == fit_loss(model).description
    assert "x 1.05" in report.loss_description and "k = 0.735, y0 = 2.1" in report.loss_description
    loss, gradient = closed_form(K, Y0)
    assert not report.reference_exact
    np.testing.assert_allclose(report.reference_gradient, gradient, rtol=1e-7)
    assert report.loss_at_nominal == pytest.approx(loss, rel=1e-7)


def test_zero_gradient_loss_stays_available_by_name() -> None:
    report = audit(decay(), TrajectoryLoss(), **OPTIONS)
    assert report.reference_exact and not np.any(report.reference_gradient)
    assert "against the nominal trajectory" in report.loss_description


def test_builtin_examples_bring_their_preset() -> None:
    hh = symsens.load_model("hodgkin-huxley")
    assert default_loss(hh) is AUDIT_PRESETS["hodgkin-huxley"]["loss"]
    assert "g_Na = 115" in default_loss(hh).description and "preset" in default_loss(hh).description
    # Other nominal values, same equations: still the example.
    assert default_loss(hh.with_parameter_values({"I_ext": 12.0})) is AUDIT_PRESETS["hodgkin-huxley"]["loss"]
    calcium = default_loss(symsens.load_model("calcium-neuron"))
    assert isinstance(calcium, TrajectoryLoss) and calcium.data_parameters is None
    assert "exactly 0" in calcium.description
    # A model that only borrows the name is not the example: it gets the fit.
    impostor = Model(["V"], {"g_Na": 1.0}, ["-g_Na*V"], [1], t_span=(0.0, 1.0), name="hodgkin-huxley")
    loss = default_loss(impostor)
    assert isinstance(loss, TrajectoryLoss) and dict(loss.data_parameters or ()) == {"g_Na": 1.05}
    # A built-in without a preset gets the fit, restricted to the differentiated parameters and at the point.
    robertson = default_loss(symsens.load_model("robertson"), ["k1"], {"k1": 0.05})
    assert dict(robertson.data_parameters or ()) == {"k1": pytest.approx(0.0525)}


def test_all_differentiated_parameters_zero_falls_back_to_the_trajectory_loss() -> None:
    model = Model(["y"], {"a": 0.0, "b": 1.0}, ["a - b*y"], [1], t_span=(0.0, 1.0), name="zero")
    loss = default_loss(model, ["a"])
    assert isinstance(loss, TrajectoryLoss) and loss.data_parameters is None
    assert "every differentiated parameter is 0" in loss.description


def test_sweep_points_take_the_default_at_their_own_point() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        (report,) = audit_sweep(decay(), [{"p": {"k": 0.5}}], executor=pool, **OPTIONS)
    assert "k = 0.525" in report.loss_description
    np.testing.assert_allclose(report.reference_gradient, closed_form(0.5, Y0)[1], rtol=1e-7)
