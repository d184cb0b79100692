"""Diagnosis on a user's model: the stiffness the solver saw, what the scheme's R' predicts, what was measured.

For a chosen parameter ``p`` and a solve with ``method``:

1. **local stiffness** — at the start ``(t_k, y_k)`` of every accepted step the eigenvalues ``λ_i`` of the exact
   Jacobian ``J = ∂f/∂y`` (:func:`symsens.derive.jacobian`), and ``z_i = h_k λ_i``;
2. **the mode the parameter drives** — the eigenvalue that moves most with ``p``:
   ``∂λ_i/∂p = (V^{-1} (∂J/∂p) V)_ii`` (first-order eigenvalue perturbation, ``J = V Λ V^{-1}``);
3. **prediction per step** — for that mode the scheme's relative sensitivity ``|z R'(z)|`` (for BDF: ``|z ζ'(z)|`` of
   BDF5's dominant root, the solver's highest order; exponential schemes: ``|z e^z|``) beside the exact ``|z e^z|``;
   their ratio is the attenuation (``< 1``) or amplification (``> 1``) the scheme applies to the sensitivity that
   mode carries in one step;
4. **measurement** — the solver's gradient ``∂y/∂p`` at output times against the reference
   (:func:`._reference.reference_sensitivities`): ratio of norms and relative error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._reference import reference_sensitivities

__all__ = ["Diagnosis", "diagnose", "scheme_sensitivity_factor"]


def scheme_sensitivity_factor(method: str, z: np.ndarray) -> np.ndarray:
    """``|z R'(z)|`` of ``method`` at (complex) ``z``; see the module docstring for BDF and exponential methods."""
    import mpmath

    from ..schemes import get_scheme
    from ..schemes._decay import stability_numpy

    z = np.asarray(z, dtype=complex)
    canonical = {"radau5": "radau-iia-3"}.get(method, method)
    if canonical == "bdf":
        from ..schemes._multistep_analysis import lmm_dominant_root_derivative

        m = get_scheme("bdf5")
        out = np.empty(z.shape)
        for i, zz in np.ndenumerate(z):
            if abs(zz) == 0:
                out[i] = 0.0
                continue
            _, d = lmm_dominant_root_derivative(m, mpmath.mpc(zz.real, zz.imag), dps=20)
            out[i] = abs(complex(d) * zz)
        return out
    scheme = get_scheme(canonical)
    if getattr(scheme, "family", None) == "exponential":
        with np.errstate(under="ignore", over="ignore"):
            return np.abs(z * np.exp(z))
    _, dR = stability_numpy(scheme)
    with np.errstate(all="ignore"):
        return np.abs(z * dR(z))


@dataclass(frozen=True)
class Diagnosis:
    model: str
    parameter: str
    method: str
    sensitivity: str
    step_times: np.ndarray          # (N,) start of each accepted step
    step_sizes: np.ndarray          # (N,)
    eigenvalues: np.ndarray         # (N, n) complex
    driven_mode: np.ndarray         # (N,) index of the eigenvalue p drives
    driven_z: np.ndarray            # (N,) complex h λ of that mode
    predicted_scheme: np.ndarray    # (N,) |z R'(z)|
    predicted_exact: np.ndarray     # (N,) |z e^z|
    t_eval: np.ndarray
    solver_gradient: np.ndarray     # (K, n)
    reference_gradient: np.ndarray  # (K, n)
    verified_digits: float
    reference_source: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def stiffness(self) -> np.ndarray:
        """``max_i |h λ_i|`` per accepted step."""
        return np.max(np.abs(self.eigenvalues * self.step_sizes[:, None]), axis=1)

    @property
    def driven_z_abs(self) -> np.ndarray:
        return np.abs(self.driven_z)

    @property
    def predicted_log10_ratio(self) -> np.ndarray:
        """``log10(|z R'| / |z e^z|)`` per step (computed from logs, so e^z may underflow)."""
        z = self.driven_z
        with np.errstate(divide="ignore"):
            return (np.log10(self.predicted_scheme) - np.log10(np.abs(z)) - z.real / np.log(10.0))

    @property
    def measured_ratio(self) -> float:
        """``||solver gradient|| / ||reference gradient||`` over output times and states."""
        return float(np.linalg.norm(self.solver_gradient) / np.linalg.norm(self.reference_gradient))

    @property
    def relative_error(self) -> float:
        return float(np.linalg.norm(self.solver_gradient - self.reference_gradient) / np.linalg.norm(self.reference_gradient))

    def summary(self) -> dict[str, Any]:
        stiff = self.stiffness
        ratio = self.predicted_log10_ratio
        finite = ratio[np.isfinite(ratio)]
        return {
            "model": self.model, "parameter": self.parameter, "method": self.method, "sensitivity": self.sensitivity,
            "accepted_steps": int(len(self.step_sizes)),
            "max_stiffness": float(stiff.max()) if len(stiff) else 0.0,
            "median_stiffness": float(np.median(stiff)) if len(stiff) else 0.0,
            "max_driven_z": float(self.driven_z_abs.max()) if len(stiff) else 0.0,
            "predicted_scheme_factor_median": float(np.median(self.predicted_scheme)) if len(stiff) else 0.0,
            "predicted_exact_factor_median": float(np.median(self.predicted_exact)) if len(stiff) else 0.0,
            "predicted_log10_ratio_min": float(finite.min()) if len(finite) else None,
            "predicted_log10_ratio_max": float(finite.max()) if len(finite) else None,
            "measured_ratio": self.measured_ratio,
            "relative_error": self.relative_error,
            "reference_verified_digits": self.verified_digits,
            "reference_source": self.reference_source,
        }


def diagnose(
    model: Any, parameter: str, *, method: str = "radau-iia-3", t_span: tuple[float, float] | None = None,
    p: Any = None, rtol: float = 1e-6, atol: float = 1e-8, sensitivity: str = "discrete",
    fixed_step: float | None = None, n_outputs: int = 20, t_eval: Sequence[float] | None = None,
) -> Diagnosis:
    """Run ``method`` on ``model`` with ``sensitivity`` for ``parameter`` and diagnose its gradient (see module)."""

    import symsens
    from ..derive import jacobian
    from ..derive._numeric import numpy_function

    if parameter not in model.parameter_names:
        raise ValueError(f"`parameter`: {parameter!r} is not a parameter of {model.name!r}")
    t_span = t_span or model.t_span
    if t_span is None:
        raise ValueError("`t_span` is required: the model has no default time span")
    if t_eval is None:
        t_eval = np.linspace(t_span[0], t_span[1], n_outputs + 1)[1:]
    t_eval = np.asarray(t_eval, dtype=float)
    solution = symsens.solve(model, t_span, p=p, method=method, rtol=rtol, atol=atol, sensitivity=sensitivity,
                             parameters=[parameter], fixed_step=fixed_step, max_steps=1_000_000).check()
    steps = solution.stats.step_times
    sizes = solution.stats.step_sizes
    # states at the start of each accepted step: the solve's own outputs at the step times
    at_steps = symsens.solve(model, t_span, p=p, method=method, rtol=rtol, atol=atol, t_eval=steps,
                             fixed_step=fixed_step, max_steps=1_000_000).check()
    p_values = np.array(model.parameter_values if p is None else (
        model.with_parameter_values(p).parameter_values if isinstance(p, dict) else p), dtype=float)
    J = jacobian(model)
    symbol = model.symbol(parameter)
    dJ = J.diff(symbol)
    args = [model.time, *model.states, *model.parameters]
    J_fun = numpy_function(list(J), args)
    dJ_fun = numpy_function(list(dJ), args)
    n = model.n_states
    N = len(sizes)
    eig = np.empty((N, n), dtype=complex)
    driven = np.empty(N, dtype=int)
    for k in range(N):
        values = [steps[k], *at_steps.y[k], *p_values]
        Jk = J_fun(*values).reshape(n, n)
        dJk = dJ_fun(*values).reshape(n, n)
        lam, V = np.linalg.eig(Jk)
        try:
            dlam = np.diag(np.linalg.solve(V, dJk @ V))
        except np.linalg.LinAlgError:
            dlam = np.zeros(n)
        eig[k] = lam
        driven[k] = int(np.argmax(np.abs(dlam))) if np.any(dlam != 0) else int(np.argmax(np.abs(lam)))
    driven_z = eig[np.arange(N), driven] * sizes
    ref = reference_sensitivities(model, t_span, p=p, t_eval=t_eval, parameters=[parameter])
    solver = symsens.solve(model, t_span, p=p, method=method, rtol=rtol, atol=atol, sensitivity=sensitivity,
                           parameters=[parameter], fixed_step=fixed_step, t_eval=t_eval, max_steps=1_000_000).check()
    with np.errstate(under="ignore", over="ignore"):
        exact_factor = np.abs(driven_z * np.exp(driven_z))
    return Diagnosis(
        model=model.name, parameter=parameter, method=method, sensitivity=sensitivity, step_times=steps[:-1],
        step_sizes=sizes, eigenvalues=eig, driven_mode=driven, driven_z=driven_z,
        predicted_scheme=scheme_sensitivity_factor(method, driven_z), predicted_exact=exact_factor, t_eval=t_eval,
        solver_gradient=solver.sensitivities[:, :, 0], reference_gradient=ref.sensitivities[:, :, 0],
        verified_digits=ref.verified_digits, reference_source=ref.source,
        stats={"accepted_steps": solution.stats.accepted_steps, "rhs_evaluations": solution.stats.rhs_evaluations},
    )
