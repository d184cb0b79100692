"""Figures of a scheme's linear stability and of the decay of its sensitivities.

Every function is pure: it builds a new :class:`matplotlib.figure.Figure` (never through ``pyplot``, so no
global figure state and no GUI backend is touched), draws on it and returns it.  Save it with
``fig.savefig(path)``; matplotlib then renders with the Agg canvas.

Numbers plotted are floats made once from the exact polynomials of :mod:`symsens.schemes`; the derivative
``R'`` is evaluated from the exact numerator ``P'Q - PQ'`` so that large ``|z|`` does not cancel digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp
from matplotlib.figure import Figure

from ..schemes._analysis import is_multistep, register_multistep, stability_polynomials
from ..schemes._decay import decay_asymptotics, stability_numpy

__all__ = [
    "stability_figure",
    "stability_region_figure",
    "sensitivity_decay_figure",
    "sensitivity_ratio_figure",
    "n_step_sensitivity_figure",
    "multistep_root_numpy",
]

#: The negative real axis sampled for the decay plots: x = -10^-2 ... -10^8.
_X_DECADES = (-2.0, 8.0)
_TINY = 1e-300  # below this a curve is not drawn (the exact e^x underflows past x ≈ -690)


def _name(scheme: Any) -> str:
    return str(getattr(scheme, "name", type(scheme).__name__))


def _lmm_coefficients(scheme: Any) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.array([float(v) for v in scheme.alpha])
    beta = np.array([float(v) for v in scheme.beta])
    return alpha, beta


def _lmm_roots(alpha: np.ndarray, beta: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Roots of ``ρ(ζ) - z σ(ζ)`` for every ``z`` in ``zz`` (shape ``(..., k)``), vectorised via companion matrices."""
    zz = np.asarray(zz, dtype=complex)
    k = len(alpha) - 1
    coeffs = alpha[None, :] - zz.reshape(-1, 1) * beta[None, :]  # ascending powers
    lead = coeffs[:, -1]
    lead = np.where(lead == 0, np.finfo(float).tiny, lead)
    monic = coeffs[:, :-1] / lead[:, None]
    companion = np.zeros((monic.shape[0], k, k), dtype=complex)
    if k > 1:
        companion[:, 1:, :-1] = np.eye(k - 1)
    companion[:, :, -1] = -monic
    roots = np.linalg.eigvals(companion)
    return roots.reshape(zz.shape + (k,))


def multistep_root_numpy(scheme: Any, zz: Any) -> tuple[np.ndarray, np.ndarray]:
    """Dominant root ``ζ(z)`` of ``ρ - zσ`` and ``z ζ'(z)`` at the points ``zz`` (floats).

    ``ζ' = σ(ζ) / (ρ'(ζ) - z σ'(ζ))`` by implicit differentiation of ``ρ(ζ) - z σ(ζ) = 0``.
    """
    alpha, beta = _lmm_coefficients(scheme)
    zz = np.asarray(zz, dtype=complex)
    roots = _lmm_roots(alpha, beta, zz)
    index = np.argmax(np.abs(roots), axis=-1)
    zeta = np.take_along_axis(roots, index[..., None], axis=-1)[..., 0]
    rho_d = np.polynomial.polynomial.polyder(alpha)
    sig_d = np.polynomial.polynomial.polyder(beta)
    pv = np.polynomial.polynomial.polyval
    with np.errstate(divide="ignore", invalid="ignore"):
        dzeta = pv(zeta, beta) / (pv(zeta, rho_d) - zz * pv(zeta, sig_d))
    return zeta, zz * dzeta


def _region_extent(scheme: Any) -> float:
    """Half-width of the plotted box: enough to show the bounded stability region of an explicit scheme, or the
    bounded instability region (around the poles) of an implicit one."""
    if is_multistep(scheme):
        alpha, beta = _lmm_coefficients(scheme)
        theta = np.linspace(0, 2 * np.pi, 721)
        w = np.exp(1j * theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            locus = np.polynomial.polynomial.polyval(w, alpha) / np.polynomial.polynomial.polyval(w, beta)
        finite = np.abs(locus[np.isfinite(locus)])
        reach = float(np.max(finite)) if finite.size else 5.0
        return float(np.clip(1.15 * reach, 2.5, 40.0))
    P, Q = stability_polynomials(scheme)
    R, _ = stability_numpy(scheme)
    if Q.degree() == 0:  # explicit: find the farthest point of the bounded region along rays
        radii = np.linspace(0.0, 30.0, 3001)
        reach = 0.0
        for angle in np.linspace(0, 2 * np.pi, 180, endpoint=False):
            values = np.abs(R(radii * np.exp(1j * angle)))
            inside = np.nonzero(values <= 1.0)[0]
            if inside.size:
                reach = max(reach, radii[inside[-1]])
        return float(np.clip(1.2 * reach, 2.0, 30.0))
    # implicit: the farthest point of the bounded instability region {|R| > 1} along rays into Re z > 0
    radii = np.linspace(0.0, 60.0, 3001)
    reach = 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for angle in np.linspace(-np.pi / 2, np.pi / 2, 91):
            outside = np.nonzero(np.abs(R(radii * np.exp(1j * angle))) > 1.0)[0]
            if outside.size and outside[-1] < radii.size - 1:  # bounded along this ray
                reach = max(reach, radii[outside[-1]])
    if reach == 0.0:  # |R(∞)| = 1 (Gauss, trapezoid) or no instability: size the box by poles and zeros
        roots = [complex(r) for r in np.roots([float(sp.N(c)) for c in Q.all_coeffs()])]
        reach = max((abs(r) for r in roots), default=2.5)
    return float(np.clip(1.2 * reach, 4.0, 30.0))


def _draw_region(ax: Any, scheme: Any, extent: float | None, resolution: int) -> None:
    extent = _region_extent(scheme) if extent is None else extent
    xs = np.linspace(-extent, extent, resolution)
    X, Y = np.meshgrid(xs, xs)
    Z = X + 1j * Y
    if is_multistep(scheme):
        if resolution > 301:  # one k×k eigenvalue problem per grid point: keep the grid moderate
            xs = np.linspace(-extent, extent, 301)
            X, Y = np.meshgrid(xs, xs)
            Z = X + 1j * Y
        alpha, beta = _lmm_coefficients(scheme)
        modulus = np.max(np.abs(_lmm_roots(alpha, beta, Z)), axis=-1)
        label = r"$\max|\zeta| \leq 1$"
    else:
        R, _ = stability_numpy(scheme)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            modulus = np.abs(R(Z))
        label = r"$|R(z)| \leq 1$"
    modulus = np.where(np.isfinite(modulus), modulus, 1e300)
    ax.contourf(X, Y, modulus, levels=[0.0, 1.0], colors=["#9ecae1"])
    ax.contour(X, Y, modulus, levels=[1.0], colors=["#08519c"], linewidths=1.4)
    if is_multistep(scheme):  # the boundary locus, on which the boundary lies
        alpha, beta = _lmm_coefficients(scheme)
        w = np.exp(1j * np.linspace(0, 2 * np.pi, 2001))
        with np.errstate(divide="ignore", invalid="ignore"):
            locus = np.polynomial.polynomial.polyval(w, alpha) / np.polynomial.polynomial.polyval(w, beta)
        ax.plot(locus.real, locus.imag, color="#de2d26", lw=0.9, ls="--", label="boundary locus")
        ax.legend(loc="lower left", fontsize=8)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.axvline(0, color="0.3", lw=0.6)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel(r"Re $z$")
    ax.set_ylabel(r"Im $z$")
    ax.set_title(f"{_name(scheme)}: stability region ({label}, shaded)", fontsize=10)


def _exponent_tex(exponent: Any) -> str:
    value = sp.Rational(exponent)
    return str(value.p) if value.q == 1 else f"{value.p}/{value.q}"


def _positive(values: np.ndarray) -> np.ndarray:
    values = np.abs(np.asarray(values, dtype=complex)).astype(float)
    return np.where(values > _TINY, values, np.nan)


def _draw_decay(ax: Any, scheme: Any) -> None:
    x = -np.logspace(*_X_DECADES, 600)
    ax_x = -x
    exact_d = np.exp(x)  # d/dz e^z
    if is_multistep(scheme):
        zeta, zdzeta = multistep_root_numpy(scheme, x)
        ax.loglog(ax_x, _positive(zeta), color="#08519c", lw=1.8, label=r"$|\zeta(x)|$ (dominant root)")
        ax.loglog(ax_x, _positive(zdzeta), color="#e6550d", lw=1.8, label=r"$|x\,\zeta'(x)|$")
        law = decay_asymptotics(scheme).get("zdroot")
        law_label = r"$|x\,\zeta'|$ law"
    else:
        R, dR = stability_numpy(scheme)
        ax.loglog(ax_x, _positive(dR(x)), color="#08519c", lw=1.8, label=r"$|R'(x)|$")
        ax.loglog(ax_x, _positive(x * dR(x)), color="#e6550d", lw=1.8, label=r"$|x\,R'(x)|$")
        law = decay_asymptotics(scheme)["zdR"]
        law_label = r"$|x\,R'|$ law"
    ax.loglog(ax_x, _positive(exact_d), color="0.35", ls=":", lw=1.4, label=r"exact $e^{x}$")
    ax.loglog(ax_x, _positive(x * exact_d), color="0.1", ls="--", lw=1.2, label=r"exact $|x\,e^{x}|$")
    if law is not None and law[0] != 0:
        c, e = complex(law[0]), float(law[1])
        far = ax_x >= 3.0  # the law is an asymptote: draw it where it applies, under the curves
        ax.loglog(ax_x[far], abs(c) * ax_x[far] ** e, color="#31a354", lw=6, alpha=0.35, zorder=1,
                  label=f"{law_label}: ${abs(c):.3g}\\,|x|^{{{_exponent_tex(law[1])}}}$")
    finite = [line.get_ydata() for line in ax.get_lines()]
    values = np.concatenate([np.asarray(v, dtype=float)[np.isfinite(v)] for v in finite])
    low = max(float(np.nanmin(values)) / 10 if values.size else 1e-30, 1e-40)
    high = min(float(np.nanmax(values)) * 10 if values.size else 1e3, 1e80)
    ax.set_ylim(low, high)
    ax.set_xlim(ax_x[0], ax_x[-1])
    ax.set_xlabel(r"$|x|$,  $x = h\lambda < 0$ on the negative real axis")
    ax.set_ylabel("magnitude")
    ax.set_title(f"{_name(scheme)}: sensitivity factors vs exact", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)


def stability_region_figure(scheme: Any, *, extent: float | None = None, resolution: int = 401) -> Figure:
    """The stability region ``{z : |R(z)| <= 1}`` (one-step) or ``{z : roots of ρ - zσ in the unit disc}``
    (multistep), shaded, with its boundary; ``extent`` is the half-width of the square shown."""
    register_multistep()
    fig = Figure(figsize=(5.2, 5.0), layout="constrained")
    _draw_region(fig.add_subplot(1, 1, 1), scheme, extent, resolution)
    return fig


def stability_figure(scheme: Any, *, extent: float | None = None, resolution: int = 401) -> Figure:
    """Two panels: the stability region with its boundary, and on the negative real axis the magnitudes
    ``|R'(x)|``, ``|x R'(x)|`` (multistep: ``|ζ(x)|``, ``|x ζ'(x)|``) against the exact ``e^x`` and ``|x e^x|``,
    log-log, with the exact leading law from :func:`~symsens.schemes.decay_asymptotics`."""
    register_multistep()
    fig = Figure(figsize=(11.5, 5.0), layout="constrained")
    _draw_region(fig.add_subplot(1, 2, 1), scheme, extent, resolution)
    _draw_decay(fig.add_subplot(1, 2, 2), scheme)
    return fig


def sensitivity_decay_figure(schemes: Sequence[Any], *, title: str | None = None) -> Figure:
    """``|x R'(x)|`` of one-step schemes and ``|x ζ'(x)|`` of multistep ones on the negative real axis, log-log,
    against the exact ``|x e^x|`` and the Cauchy bound ``|x R'(x)| <= 1`` valid for every A-stable ``R`` on the
    negative axis (``θ = π/2``)."""
    register_multistep()
    fig = Figure(figsize=(8.0, 5.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    x = -np.logspace(*_X_DECADES, 600)
    colors = [f"C{i % 10}" for i in range(len(schemes))]
    for scheme, color in zip(schemes, colors):
        if is_multistep(scheme):
            _, zdzeta = multistep_root_numpy(scheme, x)
            ax.loglog(-x, _positive(zdzeta), color=color, ls="--", lw=1.6, label=f"{_name(scheme)}: $|x\\,\\zeta'(x)|$")
        else:
            _, dR = stability_numpy(scheme)
            ax.loglog(-x, _positive(x * dR(x)), color=color, lw=1.6, label=f"{_name(scheme)}: $|x\\,R'(x)|$")
    ax.loglog(-x, _positive(x * np.exp(x)), color="k", ls=":", lw=1.6, label=r"exact $|x\,e^{x}|$")
    ax.axhline(1.0, color="0.4", lw=1.0, ls="-.", label=r"Cauchy bound $|x R'(x)| \leq 1$ (A-stable)")
    ax.set_ylim(1e-18, 1e2)
    ax.set_xlim(-x[0], -x[-1])
    ax.set_xlabel(r"$|x|$,  $x = h\lambda$ on the negative real axis")
    ax.set_ylabel(r"relative sensitivity $|x\,R'(x)|$  (one step, $\partial y_1/\partial \log\lambda$)")
    ax.set_title(title or "Decay of the one-step sensitivity to a fast rate", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    return fig


def sensitivity_ratio_figure(schemes: Sequence[Any], steps: Sequence[int] = (1, 10), *, t_total: float | None = None) -> Figure:
    """Ratio numerical / exact sensitivity ``R(x)^(n-1) R'(x) / e^{n x}`` on the negative axis, one panel per
    ``n`` in ``steps``; ``> 1`` means the scheme's gradient is *larger* than the (exponentially small) truth."""
    from ..schemes._decay import sensitivity_ratio_numpy

    register_multistep()
    fig = Figure(figsize=(5.0 * len(steps), 4.6), layout="constrained")
    x = -np.logspace(-2, 3, 500)
    for k, n_steps in enumerate(steps):
        ax = fig.add_subplot(1, len(steps), k + 1)
        for i, scheme in enumerate(schemes):
            if is_multistep(scheme):
                continue
            ratio = sensitivity_ratio_numpy(scheme)(x, n_steps)
            ax.loglog(-x, _positive(ratio), color=f"C{i % 10}", lw=1.5, label=_name(scheme))
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_ylim(1e-6, 1e12)
        ax.set_xlabel(r"$|x|$, $x = h\lambda$")
        ax.set_ylabel(r"$|\partial y_n/\partial p|$ numerical / exact")
        ax.set_title(f"n = {n_steps} step{'s' if n_steps > 1 else ''}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    return fig


def n_step_sensitivity_figure(schemes: Sequence[Any], steps: Sequence[int] = (1, 2, 5)) -> Figure:
    """``|n R(x)^(n-1) R'(x)|`` (the n-step sensitivity over ``h λ' y0``) against the exact ``n e^{n x}`` on the
    negative axis, one panel per scheme: L-stable schemes lose a further factor ``|x|^-m`` per step, schemes
    with ``|R(∞)| = 1`` keep a ``|x|^-2`` sensitivity however many steps are taken."""
    register_multistep()
    one_step = [s for s in schemes if not is_multistep(s)]
    fig = Figure(figsize=(4.6 * len(one_step), 4.4), layout="constrained")
    x = -np.logspace(-2, 8, 600)
    for k, scheme in enumerate(one_step):
        ax = fig.add_subplot(1, len(one_step), k + 1)
        R, dR = stability_numpy(scheme)
        r, d = R(x), dR(x)
        for i, n_steps in enumerate(steps):
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                numerical = n_steps * np.abs(r) ** (n_steps - 1) * np.abs(d)
                exact = n_steps * np.exp(n_steps * x)
            ax.loglog(-x, _positive(numerical), color=f"C{i}", lw=1.7, label=f"n = {n_steps}: scheme")
            ax.loglog(-x, _positive(exact), color=f"C{i}", lw=1.0, ls=":", label=f"n = {n_steps}: exact $n e^{{nx}}$")
        ax.set_ylim(1e-40, 1e2)
        ax.set_xlim(-x[0], -x[-1])
        ax.set_xlabel(r"$|x|$, $x = h\lambda$")
        if k == 0:
            ax.set_ylabel(r"$|\partial y_n / \partial p| \;/\; |h \lambda'(p) y_0|$")
        ax.set_title(_name(scheme), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="lower left", fontsize=7)
    return fig
