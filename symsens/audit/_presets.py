"""Audit settings of the built-in examples (what ``symsens audit --example NAME`` runs by default).

``calcium-neuron`` is the experiment of a bursting-neuron gradient question on the Julia Discourse forum
(ForwardDiff through OrdinaryDiffEq's Tsit5,
https://discourse.julialang.org/t/when-forwarddiff-ing-through-an-ode-is-unstable/49484): Tsitouras 5(4) (with
the default implicit schemes beside it) from rtol 1e-3 (atol 1e-6, as there) down to 1e-6, the loss re-solving
with output at the nominal solve's own step times and summing squared differences to the nominal solution,
gradient over all 13 parameters.  It deliberately keeps this zero-gradient loss: the true gradient is exactly 0.

Hodgkin–Huxley fits its voltage trace to data made at g_Na = 115 (see below), so that the true gradient is not 0
and every method is ranked against the reference.  The other examples have no preset loss: ``symsens audit``
fits them to data made at shifted parameters (:func:`symsens.audit.fit_loss`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model import Model
from ._losses import AuditLoss, TrajectoryLoss

__all__ = ["AUDIT_PRESETS", "preset_for", "builtin_preset_loss"]

AUDIT_PRESETS: dict[str, dict[str, Any]] = {
    "calcium-neuron": {
        "loss": TrajectoryLoss(note="the built-in example's preset, the bursting-neuron experiment: the data are "
                                    "the nominal trajectory, so the true gradient is exactly 0"),
        "t_span": (0.0, 500.0),
        "tolerances": (1e-3, 1e-4, 1e-5, 1e-6),
    },
    # A fit of the voltage trace: the data are the exact trajectory at g_Na = 115 (nominal 120), sampled every
    # 0.5 ms; the gradient w.r.t. the three conductances is not 0, so every method is ranked against the
    # verified reference.
    "hodgkin-huxley": {
        "loss": TrajectoryLoss(outputs=("V",), grid=tuple(float(t) for t in np.linspace(0.0, 100.0, 201)),
                               data_parameters={"g_Na": 115.0}, note="the built-in example's preset"),
        "parameters": ("g_Na", "g_K", "g_L"),
        "tolerances": (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
    },
}


def preset_for(name: str) -> dict[str, Any]:
    """The preset of a built-in example (empty for others: the audit's own defaults apply)."""
    return dict(AUDIT_PRESETS.get(name, {}))


def builtin_preset_loss(model: Model) -> AuditLoss | None:
    """The preset loss of ``model`` if it is a built-in example that has one, else None.

    A model counts as the built-in example when it has the example's equations, symbols and outputs (its
    nominal values may differ); a user's model that merely shares the name does not.
    """
    preset = AUDIT_PRESETS.get(model.name)
    if preset is None or "loss" not in preset:
        return None
    from ..codegen._kernels import _model_digest
    from ..model._library import BUILTIN_MODELS, builtin_model

    if model.name not in BUILTIN_MODELS:
        return None
    builtin = builtin_model(model.name)
    if _model_digest(model) != _model_digest(builtin) or model.outputs != builtin.outputs:
        return None
    return preset["loss"]
