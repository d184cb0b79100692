"""Figures of the vanishing-gradient experiments; each function is pure and returns a matplotlib Figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["family_figure", "explicit_boundary_figure", "diagnosis_figure", "neural_gradient_figure", "fit_figure"]

_TINY = 1e-300


def _positive(values: np.ndarray) -> np.ndarray:
    v = np.abs(np.asarray(values, dtype=float))
    return np.where(v > _TINY, v, np.nan)


def family_figure(results: Sequence[Any], family: str) -> Figure:
    """One panel per scheme: ``|∂y_n/∂λ|`` against ``|z|`` — measured (markers), closed form (line), exact (dashed)
    — for every step count in ``results`` (SweepResults with ``vary="rate"``)."""
    schemes = list(dict.fromkeys(r.scheme for r in results))
    cols = min(3, len(schemes))
    rows = math.ceil(len(schemes) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.3 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    colors = ["C0", "C1", "C2", "C3"]
    for k, name in enumerate(schemes):
        ax = axes[k // cols][k % cols]
        mine = [r for r in results if r.scheme == name]
        for j, r in enumerate(sorted(mine, key=lambda r: r.steps)):
            z = np.abs(r.z)
            color = colors[j % len(colors)]
            ax.loglog(z, _positive(r.closed_form), "-", color=color, lw=1.4, label=f"closed form, n={r.steps}")
            ax.loglog(z, _positive(r.measured), "o", color=color, ms=3.2, mfc="none", label=f"measured, n={r.steps}")
            ax.loglog(z, _positive(r.exact), "--", color="k" if j == 0 else "0.5", lw=1.0, label=f"exact t e^(λt), n={r.steps}")
        ax.set_title(f"{name}  (measured: {mine[0].engine})", fontsize=9.5)
        ax.set_ylim(1e-60, 10)
        ax.grid(True, which="major", alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("|∂y_n/∂λ|  (h = 1, λ = z)")
        if k // cols == rows - 1:
            ax.set_xlabel("|z| = |hλ|")
        if k == 0:
            ax.legend(fontsize=6.5, loc="lower left")
    for k in range(len(schemes), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.suptitle(f"Sensitivity to a fast rate on y' = λy — {family} schemes", fontsize=11)
    return fig


def explicit_boundary_figure(results: Sequence[Any]) -> Figure:
    """Left: ``|R'(x)|`` measured/closed against ``e^x`` up to beyond ``x_b``; right: the n-step amplification."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for j, r in enumerate(results):
        color = f"C{j % 10}"
        ax1.plot(np.abs(r.x), np.abs(r.closed), "-", color=color, lw=1.2, label=r.scheme)
        ax1.plot(np.abs(r.x), np.abs(r.measured), "o", color=color, ms=3, mfc="none")
        ax1.axvline(abs(r.boundary), color=color, lw=0.6, ls=":")
        ax2.semilogy(r.steps, np.abs(r.amplification), "o-", color=color, ms=3, label=f"{r.scheme} (x = {r.at:.2f})")
    x = np.abs(results[0].x)
    ax1.plot(x, np.exp(-x), "k--", lw=1.2, label="exact e^x")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("|x| = |hλ|  (dotted: stability boundary |x_b|)")
    ax1.set_ylabel("|∂y_1/∂λ| = |R'(x)|  (h = 1)")
    ax1.set_title("one step: explicit R' does not decay; exact e^x does", fontsize=10)
    ax1.legend(fontsize=7, ncol=2)
    ax1.grid(True, alpha=0.3)
    ax2.set_xlabel("steps n at x = 0.98 x_b")
    ax2.set_ylabel("|measured / exact|  of ∂y_n/∂λ")
    ax2.set_title("n steps at the boundary: amplification grows like n·e^(-n·x)", fontsize=10)
    ax2.legend(fontsize=7)
    ax2.grid(True, alpha=0.3)
    return fig


def diagnosis_figure(diagnosis: Any) -> Figure:
    """Local stiffness along the accepted steps, and the predicted per-step factor ``|z R'(z)|`` against ``|z e^z|``."""
    fig = Figure(figsize=(11, 4.0), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    t = diagnosis.step_times
    ax1.semilogy(t, diagnosis.stiffness, "-", lw=1.2, label="max |hλ| over eigenvalues")
    ax1.semilogy(t, diagnosis.driven_z_abs, "-", lw=1.2, label=f"|hλ| of the mode {diagnosis.parameter} drives")
    ax1.set_xlabel("t (start of accepted step)")
    ax1.set_ylabel("|h λ|")
    ax1.set_title(f"{diagnosis.model}: local stiffness seen by {diagnosis.method}", fontsize=10)
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.semilogy(t, _positive(diagnosis.predicted_scheme), "-", lw=1.2, label="scheme |z R'(z)|")
    ax2.semilogy(t, _positive(diagnosis.predicted_exact), "--", lw=1.2, label="exact |z e^z|")
    ax2.set_xlabel("t")
    ax2.set_ylabel("per-step relative sensitivity of the driven mode")
    ax2.set_title(f"measured gradient ratio solver/reference = {diagnosis.measured_ratio:.3g}", fontsize=10)
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    return fig


def neural_gradient_figure(study: Any) -> Figure:
    """Relative gradient error per scheme against the stiffness ratio, one panel per parameter."""
    params = list(study.parameters)
    cols = min(3, len(params))
    rows = math.ceil(len(params) / cols)
    fig = Figure(figsize=(4.3 * cols, 3.2 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for k, p in enumerate(params):
        ax = axes[k // cols][k % cols]
        for j, source in enumerate(study.sources):
            err = np.array([study.errors[(source, ratio)][k] for ratio in study.ratios])
            ax.loglog(study.ratios, np.maximum(err, 1e-17), "o-", color=f"C{j}", ms=3, lw=1, label=source)
        ax.set_title(p, fontsize=10)
        ax.grid(True, alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("relative gradient error")
        if k // cols == rows - 1:
            ax.set_xlabel("stiffness ratio k3/k1")
        if k == 0:
            ax.legend(fontsize=6.5)
    for k in range(len(params), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.suptitle(f"stiff neural ODE: gradient of the loss, {study.setting}", fontsize=11)
    return fig


def fit_figure(fit: Any) -> Figure:
    """``|log(p/p*)|`` of the slow rate k1 and the fast rate k3 along the descent, one curve per gradient source
    (fixed-step sources dashed, adaptive / error-controlled solid, the reference black)."""
    from ._neuralfit import FIT_NAMES

    fig = Figure(figsize=(15, 6.4), layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[3.2, 1.1])
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    value_ax = fig.add_subplot(grid[0, 2])
    legend_ax = fig.add_subplot(grid[1, :])
    legend_ax.axis("off")
    handles = []
    colors = {"radau": "C0", "kvaerno": "C1", "rodas": "C2", "bdf": "C3", "forward": "C4", "exprb32": "C5",
              "exprb-euler": "C6"}
    for label, run in fit.runs.items():
        errors = np.asarray(run.errors, dtype=float)
        if label.startswith("reference"):
            style = {"color": "k", "ls": "-", "lw": 2.4, "alpha": 0.55}
        else:
            color = next((c for key, c in colors.items() if label.startswith(key)), "C7")
            fixed = " h=" in label
            style = {"color": color, "ls": "--" if fixed else "-", "lw": 1.4, "marker": "o" if fixed else None,
                     "ms": 3}
        if not run.status.startswith("success"):
            label = f"{label}  [{run.status}]"
        for j, ax in enumerate(axes):
            line, = ax.semilogy(np.arange(len(errors)), np.maximum(errors[:, j], 1e-13), label=label, **style)
        value_ax.semilogy(np.arange(len(errors)), np.asarray(run.values, dtype=float)[:, 1], **style)
        handles.append(line)
    value_ax.axhline(fit.truth["k3"], color="k", lw=0.8, ls=":")
    value_ax.set_title("k3 itself (dotted: the truth)", fontsize=10)
    value_ax.set_xlabel("gradient-descent iteration")
    value_ax.set_ylabel("k3")
    value_ax.grid(True, which="both", alpha=0.3)
    for j, ax in enumerate(axes):
        name = FIT_NAMES[j]
        kind = "slow rate" if name == "k1" else "fast rate (stiffest mode)"
        ax.set_title(f"{name}: {kind}, true {fit.truth[name]:g}, start {fit.start[name]:.4g}", fontsize=10)
        ax.set_xlabel("gradient-descent iteration")
        ax.set_ylabel(f"|log({name} / {name}*)|")
        ax.set_ylim(1e-13, 10)
        ax.grid(True, which="major", alpha=0.3)
    legend_ax.legend(handles=handles, loc="center", ncol=4, fontsize=8, frameon=False,
                     title="gradient source (dashed: fixed step h, |h k3*| = "
                           f"{fit.step * fit.truth['k3']:.0f}; solid: adaptive / error-controlled)",
                     title_fontsize=8.5)
    fig.suptitle(f"stiff neural ODE, stiffness ratio {fit.ratio:g}: fitting (k1, k3) to data from known parameters; "
                 f"the same start and preconditioned gradient step for every source, only the gradient differs",
                 fontsize=11)
    return fig
