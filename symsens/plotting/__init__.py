"""Matplotlib figures of symsens results; each function is pure and returns a :class:`matplotlib.figure.Figure`.

No function here touches ``pyplot`` or shows a window: save a figure with ``fig.savefig(path)``.
"""

from ._solution import solution_figure as solution_figure
from ._stability import multistep_root_numpy as multistep_root_numpy
from ._stability import n_step_sensitivity_figure as n_step_sensitivity_figure
from ._stability import sensitivity_decay_figure as sensitivity_decay_figure
from ._stability import sensitivity_ratio_figure as sensitivity_ratio_figure
from ._stability import stability_figure as stability_figure
from ._stability import stability_region_figure as stability_region_figure

__all__ = [
    "stability_figure",
    "stability_region_figure",
    "sensitivity_decay_figure",
    "sensitivity_ratio_figure",
    "n_step_sensitivity_figure",
    "multistep_root_numpy",
    "solution_figure",
]
