"""The stiff neural ODE experiments: gradient accuracy per scheme and stiffness, a short fit, and the remedies.

Model: the built-in ``stiff-neural-ode``, ``y' = -diag(k1, k2, k3) y + W2 tanh(W1 y + b1) + b2``.  The stiffness ratio
``r`` sets ``(k1, k2, k3) = (1, sqrt(r), r)``.  Loss: ``L(p) = sum_i ||y(t_i; p) - d_i||^2 / (K n)`` over ``K = 20``
output times, data ``d_i`` from the model at the nominal weights and ``(1, sqrt(r), r)``, evaluated at a perturbed
point (rates times 1.5, ``b2`` + 0.05), so the true gradient is not zero.  ``∇L = 2/(K n) sum_i (y_i - d_i)^T S_i``
with ``S = ∂y/∂p`` from each gradient source; the reference is :func:`._reference.reference_sensitivities`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._reference import reference_sensitivities

__all__ = ["GradientSource", "neural_gradient_study", "NeuralStudy", "remedy_table", "DEFAULT_SOURCES",
           "FIT_PARAMETERS"]

#: The parameters of the gradient study and the remedy table (the fit itself is in :mod:`._neuralfit`).
FIT_PARAMETERS: tuple[str, ...] = ("k1", "k2", "k3", "b2_0", "b2_1", "b2_2")


@dataclass(frozen=True)
class GradientSource:
    """A named way to get ``∂y/∂p``: ``symsens.solve`` keyword arguments."""

    label: str
    options: dict[str, Any]


DEFAULT_SOURCES: tuple[GradientSource, ...] = (
    GradientSource("radau-iia-3 h=0.02", {"method": "radau-iia-3", "sensitivity": "discrete", "fixed_step": 0.02}),
    GradientSource("kvaerno5 (ESDIRK) h=0.02", {"method": "kvaerno5", "sensitivity": "discrete", "fixed_step": 0.02}),
    GradientSource("rodas4 h=0.02", {"method": "rodas4", "sensitivity": "discrete", "fixed_step": 0.02}),
    GradientSource("bdf (NDF 1-5) h=0.02", {"method": "bdf", "sensitivity": "discrete", "fixed_step": 0.02}),
    GradientSource("exprb32 h=0.02", {"method": "exprb32", "sensitivity": "discrete", "fixed_step": 0.02}),
    GradientSource("tsit5 adaptive rtol 1e-6", {"method": "tsit5", "sensitivity": "discrete", "rtol": 1e-6,
                                                "atol": 1e-8}),
)


def _model():  # type: ignore[no-untyped-def]
    from ..model import load_model

    return load_model("stiff-neural-ode")


def _point(ratio: float, perturbed: bool) -> dict[str, float]:
    k = {"k1": 1.0, "k2": float(np.sqrt(ratio)), "k3": float(ratio)}
    if perturbed:
        k = {name: 1.5 * v for name, v in k.items()}
        model = _model()
        for name in ("b2_0", "b2_1", "b2_2"):
            k[name] = model.nominal_parameters[name] + 0.05
    return k


def _t_eval() -> np.ndarray:
    return np.linspace(0.05, 1.0, 20)


def _data(ratio: float) -> np.ndarray:
    ref = reference_sensitivities(_model(), (0.0, 1.0), p=_point(ratio, False), t_eval=_t_eval(), parameters=["k1"])
    return ref.y


def _loss_gradient(y: np.ndarray, S: np.ndarray, data: np.ndarray) -> tuple[float, np.ndarray]:
    r = y - data
    scale = 1.0 / r.size
    return float(scale * np.sum(r * r)), 2 * scale * np.einsum("kn,knp->p", r, S)


def _source_gradient(source: GradientSource, p: dict[str, float], data: np.ndarray,
                     parameters: Sequence[str]) -> tuple[float, np.ndarray, dict[str, Any]]:
    import symsens

    start = time.perf_counter()
    s = symsens.solve(_model(), (0.0, 1.0), p=p, t_eval=_t_eval(), parameters=list(parameters), max_steps=2_000_000,
                      **source.options)
    elapsed = time.perf_counter() - start
    if not s.success:
        return float("nan"), np.full(len(parameters), np.nan), {"status": s.status, "steps": s.stats.accepted_steps,
                                                                "seconds": elapsed}
    loss, grad = _loss_gradient(s.y, s.sensitivities, data)
    return loss, grad, {"status": "success", "steps": s.stats.accepted_steps + s.stats.rejected_steps,
                        "seconds": elapsed}


@dataclass(frozen=True)
class NeuralStudy:
    parameters: tuple[str, ...]
    ratios: tuple[float, ...]
    sources: tuple[str, ...]
    errors: dict[tuple[str, float], np.ndarray]        # relative error per parameter
    gradients: dict[tuple[str, float], np.ndarray]
    reference: dict[float, np.ndarray]
    reference_digits: dict[float, float]
    setting: str = "fixed step h = 0.02 (implicit/exponential) or adaptive (explicit)"

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for (source, ratio), err in self.errors.items():
            rows.append({"source": source, "ratio": ratio, **{p: float(e) for p, e in zip(self.parameters, err)}})
        return rows


def neural_gradient_study(ratios: Sequence[float] = (1e2, 1e4, 1e6), sources: Sequence[GradientSource] = DEFAULT_SOURCES,
                          parameters: Sequence[str] = FIT_PARAMETERS) -> NeuralStudy:
    """Relative error ``|g_p - g_p^ref| / |g_p^ref|`` of each source's loss gradient, per parameter and ratio."""
    errors, gradients, reference, digits = {}, {}, {}, {}
    for ratio in ratios:
        data = _data(ratio)
        p = _point(ratio, True)
        ref = reference_sensitivities(_model(), (0.0, 1.0), p=p, t_eval=_t_eval(), parameters=list(parameters))
        _, g_ref = _loss_gradient(ref.y, ref.sensitivities, data)
        reference[ratio] = g_ref
        digits[ratio] = ref.verified_digits
        for source in sources:
            _, g, _ = _source_gradient(source, p, data, parameters)
            gradients[(source.label, ratio)] = g
            errors[(source.label, ratio)] = np.abs(g - g_ref) / np.abs(g_ref)
    return NeuralStudy(tuple(parameters), tuple(ratios), tuple(s.label for s in sources), errors, gradients,
                       reference, digits)


def remedy_table(ratio: float = 1e6, parameters: Sequence[str] = FIT_PARAMETERS) -> list[dict[str, Any]]:
    """The baseline (Radau IIA-3, h = 0.02, discrete) against (a) continuous forward sensitivities under error
    control, (b) the exponential integrator, (c) a step limit ``|h k3| <= 1`` where ``R'`` tracks ``e^z``: max relative
    gradient error over the parameters, steps and time."""
    data = _data(ratio)
    p = _point(ratio, True)
    ref = reference_sensitivities(_model(), (0.0, 1.0), p=p, t_eval=_t_eval(), parameters=list(parameters))
    _, g_ref = _loss_gradient(ref.y, ref.sensitivities, data)
    k3 = p["k3"]
    candidates = [
        ("baseline: radau-iia-3 discrete, h = 0.02",
         GradientSource("b", {"method": "radau-iia-3", "sensitivity": "discrete", "fixed_step": 0.02})),
        ("baseline: radau-iia-3 discrete, adaptive rtol 1e-6",
         GradientSource("b2", {"method": "radau-iia-3", "sensitivity": "discrete", "rtol": 1e-6, "atol": 1e-8})),
        ("(a) forward sensitivities under error control, rtol 1e-6",
         GradientSource("a", {"method": "radau-iia-3", "sensitivity": "forward", "sensitivity_in_norm": True,
                              "rtol": 1e-6, "atol": 1e-8})),
        ("(b) exprb32 discrete, h = 0.02",
         GradientSource("e", {"method": "exprb32", "sensitivity": "discrete", "fixed_step": 0.02})),
        ("(b) exprb32 discrete, adaptive rtol 1e-6",
         GradientSource("e2", {"method": "exprb32", "sensitivity": "discrete", "rtol": 1e-6, "atol": 1e-8})),
        (f"(c) radau-iia-3 discrete, h = 1/k3 = {1 / k3:.2g} (|hλ| <= 1)",
         GradientSource("c", {"method": "radau-iia-3", "sensitivity": "discrete", "fixed_step": 1.0 / k3})),
    ]
    rows = []
    for label, source in candidates:
        if source.options.get("fixed_step", 1.0) >= 1e-3:
            _source_gradient(source, p, data, parameters)  # compile / warm up outside the timing (not the long run)
        _, g, info = _source_gradient(source, p, data, parameters)
        err = np.abs(g - g_ref) / np.abs(g_ref)
        rows.append({"remedy": label, "max_relative_error": float(np.max(err)),
                     **{f"err_{name}": float(e) for name, e in zip(parameters, err)},
                     "steps": info["steps"], "seconds": info["seconds"]})
    rows.append({"reference_source": ref.source, "reference_verified_digits": ref.verified_digits})
    return rows


