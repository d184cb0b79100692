"""Audit settings of the built-in examples (what ``symsens audit --example NAME`` runs by default).

``calcium-neuron`` is the seed's experiment: Tsitouras 5(4) (with the default implicit schemes beside it) from
rtol 1e-3 (atol 1e-6, the seed's) down to 1e-6, the loss re-solving with output at the nominal solve's own step
times and summing squared differences to the nominal solution, gradient over all 13 parameters.  The other
examples run the same experiment with the audit's defaults, on fewer tolerances where a solve is long.
"""

from __future__ import annotations

from typing import Any

from ._losses import TrajectoryLoss

__all__ = ["AUDIT_PRESETS", "preset_for"]

AUDIT_PRESETS: dict[str, dict[str, Any]] = {
    "calcium-neuron": {
        "loss": TrajectoryLoss(),
        "t_span": (0.0, 500.0),
        "tolerances": (1e-3, 1e-4, 1e-5, 1e-6),
    },
    "hodgkin-huxley": {
        "loss": TrajectoryLoss(outputs=("V",)),
        "parameters": ("g_Na", "g_K", "g_L"),
        "tolerances": (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
    },
}


def preset_for(name: str) -> dict[str, Any]:
    """The preset of a built-in example (empty for others: the audit's own defaults apply)."""
    return dict(AUDIT_PRESETS.get(name, {}))
