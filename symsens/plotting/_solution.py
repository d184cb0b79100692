"""Figures of a solve: the trajectory and, when present, the sensitivities."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..integrate import Solution

__all__ = ["solution_figure"]


def solution_figure(solution: Solution, *, max_states: int = 6, units: Mapping[str, str] | None = None,
                    time_name: str = "t") -> Figure:
    """States against time (top) and |dy/dp| on a log scale (bottom, when sensitivities were computed).

    At most ``max_states`` states are drawn (the first ones) so the legend stays readable.  ``units`` (a model's
    :attr:`~symsens.Model.units`) label the time axis and the states, e.g. ``t (ms)`` and ``V (mV)``.
    """
    from ._audit import axis_label

    units = dict(units or {})
    has_sensitivities = solution.sensitivities is not None and solution.sensitivities.size > 0
    rows = 2 if has_sensitivities else 1
    figure = Figure(figsize=(9, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, 1, squeeze=False)[:, 0]
    names = solution.state_names or tuple(f"y{i}" for i in range(solution.y.shape[1]))
    shown = range(min(max_states, solution.y.shape[1]))
    ranges = [float(np.ptp(solution.y[:, i])) if len(solution.t) else 0.0 for i in shown]
    # States of very different size (a voltage and its gates) get a second axis, so neither is flattened.
    split = len(ranges) > 1 and ranges[0] > 10 * max(ranges[1:]) > 0
    lines = [axes[0].plot(solution.t, solution.y[:, 0], lw=1.2, color="C0", label=axis_label(names[0], units.get(names[0])))[0]]
    other = axes[0].twinx() if split else axes[0]
    for i in list(shown)[1:]:
        lines.append(other.plot(solution.t, solution.y[:, i], lw=1.0, color=f"C{i}",
                                label=axis_label(names[i], units.get(names[i])))[0])
    time_label = axis_label(time_name, units.get(time_name))
    axes[0].set_xlabel(time_label)
    axes[0].set_ylabel(axis_label(names[0], units.get(names[0])) if split else "state")
    if split:
        other.set_ylabel("other states")
    axes[0].set_title(f"{solution.method} ({solution.backend}), {solution.stats.accepted_steps} steps, {solution.status}")
    axes[0].legend(handles=lines, fontsize=8, ncol=min(len(lines), 3), loc="upper right")
    axes[0].grid(alpha=0.3)
    if has_sensitivities:
        sens = solution.sensitivities
        for j, parameter in enumerate(solution.parameters[:4]):
            magnitude = np.abs(sens[:, 0, j])
            axes[1].semilogy(solution.t, np.where(magnitude > 0, magnitude, np.nan), lw=1.0,
                             label=f"|d{names[0]}/d{parameter}|")
        axes[1].set_xlabel(time_label)
        axes[1].set_ylabel("sensitivity magnitude")
        axes[1].set_title(f"sensitivities ({solution.sensitivity}) of {names[0]}")
        axes[1].legend(fontsize=8, ncol=2)
        axes[1].grid(alpha=0.3, which="both")
    return figure
