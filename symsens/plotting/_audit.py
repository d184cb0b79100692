"""Figures of a gradient audit (``symsens.audit``): convergence, loss floor, stiffness, sensitivity, steps."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["audit_figures", "convergence_figure", "loss_floor_figure", "stiffness_figure", "sensitivity_figure",
           "steps_figure", "data_fit_figure", "axis_label"]

_METHOD_STYLE = {
    "forward": ("C0", "-", "o"),
    "forward-error-control": ("C0", "--", "s"),
    "discrete": ("C1", "-", "o"),
    "discrete-tangent-norm": ("C3", "-", "^"),
    "discrete-differentiated-steps": ("C1", ":", "v"),
    "discrete-tangent-norm-differentiated-steps": ("C3", ":", "D"),
    "finite-differences": ("C2", "-.", "x"),
}


def _style(method: str) -> tuple[str, str, str]:
    return _METHOD_STYLE.get(method, ("C7", "-", "."))


def _text(text: str) -> str:
    """User text shown literally by Matplotlib: a ``$`` would start mathematical text."""
    return str(text).replace("$", r"\$")


def axis_label(name: str, unit: str | None) -> str:
    """``"V (mV)"``, or ``"V"`` when the unit is not known."""
    return _text(name if not unit else f"{name} ({unit})")


def _units(report: Any) -> dict[str, str]:
    return dict(getattr(report, "_series", {}).get("units") or {})


def _time_label(report: Any) -> str:
    """The time axis label with the model's time unit: ``"t (ms)"``."""
    name = getattr(report, "_series", {}).get("time_name") or "t"
    return axis_label(name, _units(report).get(name))


def _time_unit(report: Any) -> str | None:
    name = getattr(report, "_series", {}).get("time_name") or "t"
    return _units(report).get(name)


def convergence_figure(report: Any) -> Figure:
    """Gradient error against rtol: one panel per scheme, one line per method.

    Zero errors (a gradient equal to an exact reference) are drawn at the bottom edge as open markers.
    """
    own = [r for r in report.results if not r.get("external")]
    schemes = list(dict.fromkeys(r["scheme"] for r in own))
    columns = min(2, len(schemes))
    rows = math.ceil(len(schemes) / columns)
    figure = Figure(figsize=(max(9.0, 5.2 * columns), 3.6 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    zero_reference = not np.any(report.reference_gradient)
    values = [r["relative_error"] if r["relative_error"] is not None else r["absolute_error"] for r in report.results]
    positive = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    floor = min(positive) / 10 if positive else 1e-16
    for ax, scheme in zip(axes, schemes):
        methods = list(dict.fromkeys(r["method"] for r in own if r["scheme"] == scheme))
        for method in methods:
            rows_m = [r for r in own if r["scheme"] == scheme and r["method"] == method]
            tol = np.array([r["rtol"] for r in rows_m])
            err = np.array([np.nan if v is None else v for v in
                            (r["relative_error"] if r["relative_error"] is not None else r["absolute_error"] for r in rows_m)],
                           dtype=float)
            color, line, marker = _style(method)
            shown = np.where(err == 0, floor, err)
            ax.loglog(tol, shown, color=color, ls=line, marker=marker, ms=4, lw=1.2, label=method)
            zeros = err == 0
            if zeros.any():
                ax.loglog(tol[zeros], np.full(zeros.sum(), floor), ls="none", marker=marker, ms=7, mfc="white",
                          mec=color)
        _draw_externals(ax, report, scheme, schemes, floor)
        user = getattr(report, "user_setting", None) or {}
        if user.get("scheme") == scheme and not user.get("external"):
            # Ring the gradient the user computes: the one the answer at the top of the report is about.
            mine = next((r for r in report.results if r["scheme"] == scheme and r["method"] == user.get("method")
                         and r["rtol"] == user.get("rtol")), None)
            value = None if mine is None else (mine["relative_error"] if mine["relative_error"] is not None
                                               else mine["absolute_error"])
            if value is not None and math.isfinite(value):
                ax.loglog([mine["rtol"]], [floor if value == 0 else value], ls="none", marker="o", ms=15, mfc="none",
                          mec="k", mew=1.6, label="your setting")
        ax.invert_xaxis()
        ax.set_title(scheme)
        ax.set_xlabel("rtol")
        ax.set_ylabel("|g − g*|  (true gradient 0)" if zero_reference else "relative error ‖g − g*‖/‖g*‖")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[len(schemes):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:len(schemes)]:  # "your setting" is drawn in its scheme's panel only
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8, frameon=False)
    figure.suptitle(f"{report.model_name}: gradient error against tolerance" +
                    ("\n(true gradient 0; open markers at the bottom: exactly 0)" if zero_reference else ""), fontsize=11)
    return figure


_EXTERNAL_COLORS = ("C4", "C5", "C6", "C8", "C9", "k")


def _draw_externals(ax: Any, report: Any, scheme: str, schemes: list[str], floor: float) -> None:
    """External gradients in a panel (their scheme's, or every panel when it was not audited): a line over
    their tolerances (a callable), a star at their rtol (one gradient), or a horizontal line (rtol unknown)."""
    names = list(dict.fromkeys(r["method"] for r in report.results if r.get("external")))
    user = getattr(report, "user_setting", None) or {}
    for k, name in enumerate(names):
        rows = [r for r in report.results if r.get("external") and r["method"] == name]
        if rows[0]["scheme"] in schemes and rows[0]["scheme"] != scheme:
            continue
        color = _EXTERNAL_COLORS[k % len(_EXTERNAL_COLORS)]
        label = _text(f"{name} (external" + (f": {rows[0]['solver']}" if rows[0].get("solver") else "") + ")")
        points = []
        for row in rows:
            value = row["relative_error"] if row["relative_error"] is not None else row["absolute_error"]
            if value is None or not math.isfinite(value):
                continue
            shown = floor if value == 0 else value
            if row["rtol"] is None:
                ax.axhline(shown, color=color, ls="--", lw=1.4, label=label + ", rtol unknown")
            else:
                points.append((row["rtol"], shown))
            if user.get("external") and user.get("method") == name and user.get("rtol") == row["rtol"]:
                if row["rtol"] is not None:
                    ax.loglog([row["rtol"]], [shown], ls="none", marker="o", ms=15, mfc="none", mec="k", mew=1.6,
                              label="your gradient")
        if points:
            points.sort()
            ax.loglog([t for t, _ in points], [e for _, e in points], color=color, ls="-", lw=1.6, marker="*",
                      ms=11 if len(points) == 1 else 8, label=label)


def loss_floor_figure(report: Any) -> Figure | None:
    """The worst run's gradient terms |(dl/dy)_k S_k| per output time, with ||S(t_k)|| beside them."""
    data = report._series.get("loss_floor")
    if not data or data["t"] is None:
        return None
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    ax = figure.subplots()
    t, contribution = data["t"], data["contribution"]
    positive = contribution > 0
    ax.semilogy(t[positive], contribution[positive], ".", ms=3, color="C3",
                label=f"|(dl/dy)_k S_k|: {data['method']}, {data['scheme']}, rtol {data['rtol']:g}")
    ax.set_xlabel(_time_label(report))
    ax.set_ylabel("gradient term at the output time", color="C3")
    if data.get("sensitivity_norm") is not None:
        other = ax.twinx()
        norms = np.asarray(data["sensitivity_norm"], dtype=float)
        shown = norms > 0  # S(t0) is often exactly 0: leave it out of a log axis
        other.semilogy(t[shown], norms[shown], lw=0.8, color="C0", alpha=0.7, label="||S(t_k)||")
        other.set_ylabel("||S(t_k)||_F", color="C0")
    if not positive.any():
        ax.text(0.5, 0.5, "all terms are exactly 0", transform=ax.transAxes, ha="center")
    ax.set_title("Loss floor: where the biased gradient comes from")
    ax.legend(loc="upper left", fontsize=8)
    return figure


def stiffness_figure(report: Any) -> Figure | None:
    """|h λ| per accepted step over time (one line per scheme, loosest tolerance), and the steps on |R'(z)|."""
    entries = report._series.get("stiffness") or []
    if not entries:
        return None
    loosest: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry["scheme"] not in loosest or entry["rtol"] > loosest[entry["scheme"]]["rtol"]:
            loosest[entry["scheme"]] = entry
    figure = Figure(figsize=(11, 3.9), layout="constrained")
    left, right = figure.subplots(1, 2)
    for k, (scheme, entry) in enumerate(loosest.items()):
        z = np.abs(entry["z"])
        # Zeros (a step where the Jacobian vanishes) have no place on a log axis: they are left out, not clamped.
        z_shown = np.where(z > 0, z, np.nan)
        left.semilogy(entry["t"], z_shown, lw=0.8, color=f"C{k}", label=f"{scheme}, rtol {entry['rtol']:g}")
        if "dR" in entry:
            dR = np.asarray(entry["dR"], dtype=float)
            right.loglog(z_shown, np.where(dR > 0, dR, np.nan), ".", ms=2.5, color=f"C{k}", label=scheme)
    left.axhline(1.0, color="k", lw=0.6, ls=":")
    left.set_xlabel(_time_label(report))
    left.set_ylabel("|h λ| (stiffest eigenvalue)")
    left.set_title("Stiffness seen by each step")
    left.legend(fontsize=8)
    all_z = np.concatenate([np.abs(e["z"]) for e in loosest.values()])
    all_z = all_z[np.isfinite(all_z) & (all_z > 0)]
    all_dR = np.concatenate([e["dR"] for e in loosest.values() if "dR" in e] or [np.array([1.0])])
    all_dR = all_dR[np.isfinite(all_dR) & (all_dR > 0)]
    z_low = min(1e-2, float(all_z.min()) / 2) if all_z.size else 1e-2
    z_high = max(1e2, float(all_z.max()) * 2) if all_z.size else 1e2
    grid = np.logspace(np.log10(z_low), np.log10(z_high), 300)
    right.loglog(grid, np.exp(-grid) + 1e-300, "k--", lw=0.8, label="exact |e^z| (z real < 0)")
    right.set_xlabel("|z| = |h λ|")
    right.set_ylabel("|R'(z)| at the steps")
    right.set_xlim(z_low, z_high)
    right.set_ylim(max(1e-12, float(all_dR.min()) / 10 if all_dR.size else 1e-12),
                   max(10.0, float(all_dR.max()) * 5 if all_dR.size else 10.0))
    right.set_title("Where the steps sit on R'(z)")
    right.legend(fontsize=8)
    return figure


def sensitivity_figure(report: Any) -> Figure | None:
    """||S(t)||_F over time, with the output times that carry most of the gradient marked."""
    data = report._series.get("sensitivity_growth")
    if not data:
        return None
    t, norm = np.asarray(data["t"], dtype=float), np.asarray(data["norm"], dtype=float)
    # S(t0) = dy0/dp is often exactly 0: a log axis cannot show zeros (clamping them to a tiny number would
    # stretch the axis over hundreds of decades), so only the positive values are drawn.
    shown = np.isfinite(norm) & (norm > 0)
    if not np.any(shown):
        return None
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    ax = figure.subplots()
    ax.semilogy(t[shown], norm[shown], lw=1.0, color="C0")
    dominant = report.diagnostics.get("dominant_times")
    if dominant:
        for t in dominant["times"]:
            ax.axvline(t, color="C3", lw=0.8, alpha=0.6)
        ax.plot([], [], color="C3", lw=0.8, label="times carrying most of the gradient")
        ax.legend(fontsize=8)
    ax.set_xlabel(_time_label(report))
    ax.set_ylabel("||S(t)||_F")
    ax.set_title(f"Sensitivity growth ({data['source']})")
    return figure


def steps_figure(report: Any) -> Figure | None:
    """Step size against time: the nominal solve and the tangent-norm solve of the setting they differ most."""
    # The first scheme's loosest setting whose tangent-norm steps differ from the nominal ones (the user's own
    # scheme is listed first; loose tolerances show the difference best).
    candidates = []
    entries = report._series.get("steps") or []
    order = {scheme: k for k, scheme in enumerate(dict.fromkeys(e["scheme"] for e in entries))}
    for entry in entries:
        nominal = entry.get("nominal")
        other = entry.get("discrete-tangent-norm")
        if nominal is None or other is None or (len(nominal) == len(other) and np.array_equal(nominal, other)):
            continue
        candidates.append((order[entry["scheme"]], -entry["rtol"], entry))
    if not candidates:
        return None
    _, _, entry = min(candidates, key=lambda c: (c[0], c[1]))
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    ax = figure.subplots()
    for name, color, label in (("nominal", "C0", "nominal solve (values-only norm)"),
                               ("discrete-tangent-norm", "C3", "differentiated solve, tangents in the norm")):
        steps = entry[name]
        ax.semilogy(steps[1:], np.diff(steps), lw=0.9, color=color, label=f"{label}: {len(steps) - 1} steps")
    ax.set_xlabel(_time_label(report))
    ax.set_ylabel(axis_label("step size h", _time_unit(report)))
    ax.set_title(f"Step sequences, {entry['scheme']} at rtol {entry['rtol']:g}")
    ax.legend(fontsize=8)
    return figure


#: At most this many compared quantities get a panel of the data-vs-fit figure (the first ones, in loss order).
MAX_FIT_PANELS = 6


def data_fit_figure(report: Any) -> Figure | None:
    """The data of a least-squares loss (markers) and the model's trajectory at the audited parameters (line),
    one panel per compared quantity, axes labelled with the model's units.

    A panel uses a log value axis only when every value drawn is positive and they span more than three
    decades; otherwise linear (no zero is ever put on a log axis).
    """
    data = getattr(report, "_series", {}).get("data_fit")
    if not data:
        return None
    names = list(data["names"])
    shown = names[:MAX_FIT_PANELS]
    columns = 1 if len(shown) == 1 else 2
    rows = math.ceil(len(shown) / columns)
    figure = Figure(figsize=(9.0 if columns == 1 else 11.0, 2.9 * rows + 1.1), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    units = _units(report)
    t, t_data = np.asarray(data["t"], dtype=float), np.asarray(data["t_data"], dtype=float)
    for k, (ax, name) in enumerate(zip(axes, shown)):
        model = np.asarray(data["model"], dtype=float)[:, names.index(name)]
        observed = np.asarray(data["data"], dtype=float)[:, names.index(name)]
        values = np.concatenate([model[np.isfinite(model)], observed[np.isfinite(observed)]])
        logarithmic = values.size > 0 and bool(np.all(values > 0)) and values.max() > 1e3 * values.min()
        ax.plot(t, model, color="C0", lw=1.1, label="model at the audited parameters" if k == 0 else None)
        ax.plot(t_data, observed, ls="none", marker="o", ms=3.2, mfc="none", mec="C3", mew=0.9,
                label=f"data ({_text(data.get('source', 'observed'))})" if k == 0 else None)
        if logarithmic:
            ax.set_yscale("log")
        ax.set_xlabel(_time_label(report))
        ax.set_ylabel(axis_label(name, units.get(name)))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    more = f" (the first {len(shown)} of {len(names)} compared quantities)" if len(names) > len(shown) else ""
    figure.suptitle(f"{_text(report.model_name)}: the data and the model at the audited parameters{more}", fontsize=11)
    return figure


def audit_figures(report: Any) -> dict[str, Figure]:
    """Every figure of the report that has data, by file stem."""
    figures = {"convergence": convergence_figure(report)}
    for name, make in (("data_fit", data_fit_figure), ("loss_floor", loss_floor_figure), ("stiffness", stiffness_figure),
                       ("sensitivity", sensitivity_figure), ("steps", steps_figure)):
        figure = make(report)
        if figure is not None:
            figures[name] = figure
    return figures
