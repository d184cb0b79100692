"""``symsens.reference``: solutions and forward sensitivities with a verified number of correct digits.

A *run* integrates the model and its forward sensitivities (``S = dy/dp``, ``S' = f_y S + f_p``,
``S(t0) = dy0/dp``) with one scheme at one tolerance and one precision.  Runs form a *ladder* of ever
tighter tolerances (a factor 1000 per rung) and ever higher orders (the collocation stage count grows
with the tolerance and always changes from one rung to the next), so two consecutive rungs are
independent runs in the sense of the verification rule (:mod:`symsens.reference._verify`): different
order, 1000 times tighter tolerance.  The ladder stops as soon as every value is verified to the requested
digits, when the precision is exhausted, or when the time budget is spent -- and then reports how many
digits *were* verified, never more.

Two paths (``path=``):

``method="auto"`` chooses the family from a stiffness measure, ``max(-Re eig f_y) (t1 - t0)`` at the initial
point and along a short exploratory solve: Radau IIA (L-stable) when it exceeds 100, else Gauss (fast path) or
Taylor series (mpmath path); the result's ``method``, ``stiffness`` and ``family_reason`` say which ran and why.

``"fast"``
    The generated C++ model and a fully implicit collocation integrator (Radau IIA for stiff problems,
    Gauss for non-stiff ones; any stage count) over a double-double scalar (106-bit significand, about
    32 digits), with sensitivities solved exactly stage by stage.  Verifies up to about
    :data:`FAST_MAX_DIGITS` digits.
``"mpmath"``
    Arbitrary precision in Python: a Taylor-series integrator built from the expression tree for
    non-stiff problems and Radau IIA collocation for stiff ones (:mod:`symsens.reference._mp`).  Slower;
    for small models, for more digits, and to cross-check the fast path.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import mpmath
import numpy as np

from .._precision import mpmath_precision
from .._checks import output_times, parameter_selection, time_span
import sympy as sp

from ..model import Model
from ._tableau import collocation_tableau
from ._verify import compare_runs, significant_digits

__all__ = ["reference", "Reference", "ReferenceRun", "FAST_MAX_DIGITS", "PATHS", "METHODS"]

#: The most digits the double-double path is asked to verify; more goes to the mpmath path.
FAST_MAX_DIGITS = 26
#: The smallest relative tolerance a double-double run is given (its rounding level is ~1e-31).
_FAST_MIN_TOLERANCE_EXPONENT = 29
#: Below this magnitude a double-double number (or a product of it with a model coefficient) no longer carries
#: its full 106 bits (the low part becomes subnormal near 4e-292): runs control such values absolutely at
#: ``rtol * DD_TINY``, and a value whose verified bound stays below it is reported as below the range.
DD_TINY = 1e-250
#: The absolute tolerance of every run: negligible, so that every value is controlled relative to its own
#: size (significant digits are what is verified); it only keeps the weights of zero values positive.
ABSOLUTE_TOLERANCE = 1e-290

PATHS: tuple[str, ...] = ("auto", "fast", "mpmath")
METHODS: tuple[str, ...] = ("auto", "radau-iia", "gauss", "taylor")


@dataclass(frozen=True)
class ReferenceRun:
    """One integration of a verification ladder.

    Attributes
    ----------
    path : "double-double" or "mpmath"
    scheme : str
        ``"radau-iia-7"``, ``"gauss-6"`` or ``"taylor-30"`` (Taylor series of that degree).
    order : int
    rtol, atol : float
    precision_bits : int
        Significand bits of the arithmetic (106 for double-double; ``dps * log2(10)`` for mpmath).
    status : str
        ``"success"`` or why the run stopped (``"time budget exhausted"``, ``"newton failure"``, ...).
    accepted_steps, rejected_steps : int
    seconds : float
    """

    path: str
    scheme: str
    order: int
    rtol: float
    atol: float
    precision_bits: int
    status: str
    accepted_steps: int
    rejected_steps: int
    seconds: float

    def describe(self) -> str:
        return (f"{self.path} {self.scheme} (order {self.order}), rtol {self.rtol:.0e}, {self.precision_bits}-bit: "
                f"{self.status}, {self.accepted_steps} steps, {self.seconds:.2f} s")


@dataclass(frozen=True)
class Reference:
    """A reference solution and its forward sensitivities with verified digits (:func:`reference`).

    Attributes
    ----------
    t : ndarray (K,)
        Output times.
    y : ndarray (K, n)
        The solution, rounded to float64.
    sensitivities : ndarray (K, n, P) or None
        ``d y_i / d p_j`` for the parameters in ``parameters``, float64.
    y_mp, sensitivities_mp : tuple (nested, same shapes) of mpmath.mpf
        The same values at the full precision of the run that produced them (about 32 digits on the fast
        path); :meth:`decimal` prints them.
    y_digits : ndarray (K, n) of int; sensitivity_digits : ndarray (K, n, P) of int
        Verified significant digits of each value (see :mod:`symsens.reference._verify`).
    y_error, sensitivity_error : ndarray of float
        The error bound behind those digits: ``max(|run A - run B|, estimated error of run B)``.
    requested_digits : int
    verified_digits : int
        The minimum over every value: all values are correct to at least this many digits.
    verified : bool
        ``verified_digits >= requested_digits``.
    runs : tuple of ReferenceRun
        Every run of the ladder, in order.
    verification : tuple of (int, int)
        The pairs of runs (indices into ``runs``) compared; the digits of each value come from the best pair.
    parameters : tuple of str
    p : tuple of mpmath.mpf
        All parameter values used (the model's order).
    model_name, path, method : str
    message : str
        One sentence: what was verified, or why not more.
    seconds : float
    y_below_range, sensitivity_below_range : ndarray of bool (same shapes as the values)
        Values whose magnitude, error bound included, is below ``below_range_threshold`` (the smallest
        magnitude the double-double arithmetic resolves, :data:`DD_TINY`; 0 on the mpmath path): they are
        reported as 0 with 0 digits and error bound ``below_range_threshold``, i.e. ``|value| <= threshold``.
    stiffness : float or None
        The stiffness measure that chose the family with ``method="auto"`` (None otherwise): the largest
        ``max(-Re eig f_y) (t1 - t0)`` seen at the initial point and along a short exploratory solve.
    family_reason : str
        Why ``method`` (the family of every rung) was chosen, in words.
    """

    t: np.ndarray
    y: np.ndarray
    sensitivities: np.ndarray | None
    y_mp: tuple[tuple[mpmath.mpf, ...], ...]
    sensitivities_mp: tuple[tuple[tuple[mpmath.mpf, ...], ...], ...] | None
    y_digits: np.ndarray
    sensitivity_digits: np.ndarray | None
    y_error: np.ndarray
    sensitivity_error: np.ndarray | None
    requested_digits: int
    verified_digits: int
    verified: bool
    runs: tuple[ReferenceRun, ...]
    verification: tuple[tuple[int, int], ...]
    parameters: tuple[str, ...]
    state_names: tuple[str, ...]
    p: tuple[mpmath.mpf, ...]
    model_name: str
    path: str
    method: str
    message: str
    seconds: float = field(default=0.0)
    y_below_range: np.ndarray | None = field(default=None)
    sensitivity_below_range: np.ndarray | None = field(default=None)
    below_range_threshold: float = field(default=0.0)
    stiffness: float | None = field(default=None)
    family_reason: str = field(default="")

    def decimal(self, value: mpmath.mpf, digits: int | None = None) -> str:
        """``value`` as a decimal string with ``digits`` significant digits (default: all the run computed)."""
        with mpmath_precision(prec=128):
            return mpmath.nstr(value, digits or 32, min_fixed=-4, max_fixed=6, strip_zeros=False)

    def _below(self, which: np.ndarray | None, index: tuple[int, ...]) -> bool:
        return which is not None and bool(which[index])

    def y_decimal(self, k: int, i: int) -> str:
        """``y_i(t_k)`` printed with exactly its verified digits (``"below 1e-250"`` for a value under the
        arithmetic's range)."""
        if self._below(self.y_below_range, (k, i)):
            return f"below {self.below_range_threshold:.0e}"
        return self.decimal(self.y_mp[k][i], max(int(self.y_digits[k, i]), 1))

    def sensitivity_decimal(self, k: int, i: int, j: int) -> str:
        """``d y_i / d p_j (t_k)`` printed with exactly its verified digits."""
        if self.sensitivities_mp is None or self.sensitivity_digits is None:
            raise ValueError("this reference has no sensitivities (sensitivity=False)")
        if self._below(self.sensitivity_below_range, (k, i, j)):
            return f"below {self.below_range_threshold:.0e}"
        return self.decimal(self.sensitivities_mp[k][i][j], max(int(self.sensitivity_digits[k, i, j]), 1))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: values as decimal strings with their verified digits, and the runs."""
        out: dict[str, Any] = {
            "model": self.model_name,
            "t": [float(x) for x in self.t],
            "states": list(self.state_names),
            "parameters": list(self.parameters),
            "requested_digits": self.requested_digits,
            "verified_digits": self.verified_digits,
            "verified": self.verified,
            "message": self.message,
            "path": self.path,
            "method": self.method,
            "family_reason": self.family_reason,
            "stiffness": self.stiffness,
            "below_range_threshold": self.below_range_threshold,
            "y": [[{"value": self.decimal(self.y_mp[k][i]), "digits": int(self.y_digits[k, i]),
                    "error_bound": float(self.y_error[k, i]),
                    "below_range": self._below(self.y_below_range, (k, i))} for i in range(len(self.state_names))]
                  for k in range(len(self.t))],
            "runs": [run.__dict__ for run in self.runs],
            "verification": [list(pair) for pair in self.verification],
        }
        if self.sensitivities_mp is not None and self.sensitivity_digits is not None and self.sensitivity_error is not None:
            out["sensitivities"] = [
                [[{"value": self.decimal(self.sensitivities_mp[k][i][j]), "digits": int(self.sensitivity_digits[k, i, j]),
                   "error_bound": float(self.sensitivity_error[k, i, j]),
                   "below_range": self._below(self.sensitivity_below_range, (k, i, j))}
                  for j in range(len(self.parameters))]
                 for i in range(len(self.state_names))]
                for k in range(len(self.t))
            ]
        return out


# ---------------------------------------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------------------------------------


def _as_mpf(value: Any, name: str) -> mpmath.mpf:
    """A number given as float, int, decimal string, SymPy number or mpmath number -> mpf (256 bits)."""
    with mpmath_precision(prec=256):
        try:
            if isinstance(value, (mpmath.mpf, int, float)):
                x = mpmath.mpf(value)
            elif isinstance(value, str):
                x = mpmath.mpf(value.strip())
            elif isinstance(value, sp.Basic) and value.is_number:
                x = mpmath.mpf(sp.N(value, 80))
            elif isinstance(value, np.floating | np.integer):
                x = mpmath.mpf(float(value))
            else:
                raise TypeError
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` must be a real number (float, int, decimal string or mpmath.mpf), got {value!r}") from None
    if not mpmath.isfinite(x):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    return x


def _parameter_values(model: Model, p: Any) -> list[mpmath.mpf]:
    if p is None:
        return [_as_mpf(v, f"p[{name!r}]") for name, v in zip(model.parameter_names, model.parameter_values)]
    if isinstance(p, Mapping):
        values = dict(zip(model.parameter_names, model.parameter_values))
        for name, value in p.items():
            if name not in model.parameter_names:
                import difflib

                close = difflib.get_close_matches(str(name), model.parameter_names, n=3)
                hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                raise ValueError(f"`p`: unknown parameter {name!r}{hint}")
            values[name] = value
        return [_as_mpf(values[name], f"p[{name!r}]") for name in model.parameter_names]
    if isinstance(p, str):
        raise ValueError("`p` must be a sequence of parameter values or a mapping name -> value, not a string")
    values_list = list(p)
    if len(values_list) != model.n_parameters:
        raise ValueError(f"`p` must have length {model.n_parameters} (the model's parameters), got {len(values_list)}")
    return [_as_mpf(v, f"p[{k}]") for k, v in enumerate(values_list)]


def _chosen_parameters(model: Model, parameters: Sequence[str] | None, sensitivity: bool) -> tuple[str, ...]:
    if not sensitivity:
        if parameters is not None and len(tuple(parameters)) > 0:
            raise ValueError("`parameters` given with sensitivity=False")
        return ()
    # The check symsens.solve makes, so that a mistake in `parameters` is worded the same by both.
    return parameter_selection(model, parameters)


def _structural_zeros(model: Model, chosen: tuple[str, ...], explicit_y0: bool) -> np.ndarray:
    """(n, P) booleans: ``d y_i / d p_j`` is identically zero because ``p_j`` cannot reach ``y_i``.

    ``S_i' = sum_k (df_i/dy_k) S_k + df_i/dp_j``: S_i can become nonzero only if f_i contains p_j, or
    y0_i contains p_j, or f_i contains a state y_k whose S_k can.  Free symbols over-approximate the
    nonzero derivatives, so a component marked zero is zero exactly.
    """
    n = model.n_states
    states = list(model.states)
    rhs_symbols = [sp.sympify(f).free_symbols for f in model.rhs]
    ic_symbols = [sp.sympify(e).free_symbols for e in model.initial_conditions]
    zeros = np.ones((n, len(chosen)), dtype=bool)
    for j, name in enumerate(chosen):
        symbol = model.symbol(name)
        reached = {i for i in range(n) if symbol in rhs_symbols[i] or (not explicit_y0 and symbol in ic_symbols[i])}
        frontier = list(reached)
        while frontier:
            k = frontier.pop()
            for i in range(n):
                if i not in reached and states[k] in rhs_symbols[i]:
                    reached.add(i)
                    frontier.append(i)
        for i in reached:
            zeros[i, j] = False
    return zeros


# ---------------------------------------------------------------------------------------------------------
# engines: what runs a rung
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rung:
    """One run to make: scheme family and stage count (or Taylor degree), tolerance, precision."""

    family: str       # "radau-iia", "gauss" or "taylor"
    stages: int       # collocation stages, or the Taylor degree
    rtol: float
    dps: int          # mpmath digits (ignored by the double-double engine)
    atol: float = ABSOLUTE_TOLERANCE  # 0 on the mpmath path (its exponent range is unbounded)


class _Engine(Protocol):
    name: str
    unit_roundoff: float
    cap: int

    def run(self, rung: Rung, t_eval: np.ndarray, seconds: float, on_progress: Callable[[float], None] | None) -> Any: ...

    def precision_bits(self, rung: Rung) -> int: ...


class _FastEngine:
    name = "double-double"
    cap = 30

    def __init__(self, model: Model, chosen: tuple[str, ...], p: list[mpmath.mpf], y0: list[mpmath.mpf] | None,
                 t0: float, t1: float) -> None:
        from ._fast import DD_UNIT_ROUNDOFF, fast_solver

        self.unit_roundoff = DD_UNIT_ROUNDOFF
        self.solver = fast_solver(model, chosen)
        self.p, self.y0, self.t0, self.t1 = p, y0, t0, t1
        self.S0 = [mpmath.mpf(0)] * (model.n_states * len(chosen)) if y0 is not None else None
        index = {name: k for k, name in enumerate(model.parameter_names)}
        self.sensitivity_scale = [_sensitivity_scale(p[index[name]]) for name in chosen]

    def precision_bits(self, rung: Rung) -> int:
        return 106

    def run(self, rung: Rung, t_eval: np.ndarray, seconds: float, on_progress: Callable[[float], None] | None) -> Any:
        tableau = collocation_tableau(rung.family, rung.stages, 60)
        return self.solver.solve(tableau, self.p, self.y0, self.S0, self.t0, self.t1, t_eval, rtol=rung.rtol,
                                 atol=rung.atol, seconds=seconds, on_progress=on_progress,
                                 sensitivity_scale=self.sensitivity_scale, tiny=DD_TINY)

    def explore(self, t_samples: np.ndarray, seconds: float) -> list[np.ndarray]:
        """f_y along a loose (rtol 1e-4) Radau IIA solve, at the samples it reached (same compiled solver)."""
        tableau = collocation_tableau("radau-iia", 3, 60)
        out = self.solver.solve(tableau, self.p, self.y0, self.S0, self.t0, self.t1, t_samples, rtol=1e-4,
                                atol=ABSOLUTE_TOLERANCE, seconds=seconds, sensitivity_scale=self.sensitivity_scale,
                                tiny=DD_TINY)
        n = self.solver.n_states
        width = n + n * self.solver.n_sensitivity_parameters
        jacobians = []
        for k, t in enumerate(t_samples):
            y = out.values[k * width:k * width + n]
            if not all(mpmath.isfinite(v) for v in y):
                break
            _, J = self.solver.rhs(mpmath.mpf(float(t)), y, self.p)
            jacobians.append(np.array([float(v) for v in J]).reshape(n, n))
        return jacobians

    def jacobian_at_start(self) -> np.ndarray:
        y0 = self.y0 if self.y0 is not None else self.solver.initial_values(self.p)[0]
        _, J = self.solver.rhs(mpmath.mpf(self.t0), y0, self.p)
        n = self.solver.n_states
        return np.array([float(v) for v in J]).reshape(n, n)


#: Sensitivities are measured against ``max(|S_ij|, SENSITIVITY_FLOOR |y_i| / |p_j|)``: a sensitivity whose
#: relative size ``|p_j S_ij / y_i|`` is below this is controlled absolutely at that level.
SENSITIVITY_FLOOR = 1e-10


def _sensitivity_scale(p: mpmath.mpf) -> float:
    """``SENSITIVITY_FLOOR / |p|`` (``|p| = 1`` for a parameter whose value is 0)."""
    magnitude = abs(float(p))
    return SENSITIVITY_FLOOR / (magnitude if magnitude > 0 and math.isfinite(magnitude) else 1.0)


def _order(rung: Rung) -> int:
    if rung.family == "gauss":
        return 2 * rung.stages
    if rung.family == "radau-iia":
        return 2 * rung.stages - 1
    return rung.stages  # Taylor degree


def _stages_for(exponent: int, family: str) -> int:
    """Collocation stages for a tolerance 10^-exponent: order about the number of digits asked for / 2."""
    if family == "taylor":
        return max(8, min(60, int(1.15 * exponent) + 4))
    return max(3, min(10, math.ceil(exponent / 4) + 1))


def _ladder(digits: int, family: str, max_exponent: int, dps: int, atol: float, from_start: bool) -> list[Rung]:
    """Tolerances 10^-e for e = max(6, digits - 6) (6 when ``from_start``: a time budget then always leaves the
    cheap rungs' digits), +3, +3, ... up to max_exponent, stage counts increasing."""
    exponents = []
    e = 6 if from_start else max(6, digits - 6)
    while e <= max_exponent:
        exponents.append(e)
        e += 3
    if not exponents or exponents[-1] < min(digits + 3, max_exponent):
        exponents.append(max_exponent)
    rungs: list[Rung] = []
    previous = 0
    for k, e in enumerate(exponents):
        s = _stages_for(e, family)
        if s <= previous:
            s = previous + 1  # consecutive runs always differ in order
        previous = s
        # The working precision rises with every rung (mpmath path; the fast path is double-double throughout),
        # so an error every run would share at one precision (cancellation in the model's own expressions)
        # shows up as a disagreement instead of being verified.
        rungs.append(Rung(family, s, 10.0**-e, dps + 10 * k, atol))
    return rungs


class _Progress:
    """Progress lines on standard error for runs longer than ``after`` seconds."""

    def __init__(self, enabled: bool, after: float = 2.0) -> None:
        self.enabled = enabled
        self.after = after
        self.start = time.perf_counter()
        self.printed = False

    def callback(self, label: str, t0: float, t1: float) -> Callable[[float], None] | None:
        if not self.enabled:
            return None
        run_start = time.perf_counter()

        def report(t: float) -> None:
            elapsed = time.perf_counter() - run_start
            if elapsed < self.after:
                return
            fraction = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
            print(f"\rsymsens reference: {label}: t = {t:.6g} of {t1:.6g} ({100 * fraction:5.1f} %), "
                  f"{elapsed:6.1f} s", end="", file=sys.stderr, flush=True)
            self.printed = True

        return report

    def end_run(self, line: str) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        if self.printed or elapsed >= self.after:
            print(f"\rsymsens reference: {line}" + " " * 20, file=sys.stderr, flush=True)
            self.printed = False


# ---------------------------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------------------------


def reference(
    model: Model,
    t_span: tuple[float, float] | None = None,
    *,
    p: Sequence[Any] | Mapping[str, Any] | None = None,
    t_eval: Sequence[float] | np.ndarray | None = None,
    digits: int = 16,
    sensitivity: bool = True,
    parameters: Sequence[str] | None = None,
    y0: Sequence[Any] | None = None,
    time_budget: float | None = None,
    path: str = "auto",
    method: str = "auto",
    progress: bool = False,
) -> Reference:
    """A reference solution and forward sensitivities of ``model``, correct to ``digits`` *verified* digits.

    Integrates ``y' = f(t, y, p)``, ``y(t0) = y0(p)`` together with ``S = dy/dp``::

        S' = f_y(t, y, p) S + f_p(t, y, p),     S(t0) = dy0/dp

    (the gradient of the exact solution, not of any numerical scheme) on a ladder of runs of increasing
    order and tightening tolerance, and reports each value with the number of significant digits that two
    consecutive, independent runs verify: the runs agree to that many digits *and* the tighter run's own
    error estimate is below half a unit in the last of them (:mod:`symsens.reference._verify`).

    Parameters
    ----------
    model : Model
    t_span : (t0, t1), optional
        Defaults to ``model.t_span``; ``t0 < t1``.
    p : sequence of all parameter values, or {name: value}, optional
        Values may be floats, ints, decimal strings (``"0.04"``, taken exactly to the working precision)
        or mpmath numbers.  Default: the nominal values.
    t_eval : sequence of float, optional
        Output times in ``[t0, t1]`` (sorted); default ``(t1,)``.  Steps land on them exactly.
    digits : int
        Significant digits requested for every value (1..60; the fast path verifies up to about
        :data:`FAST_MAX_DIGITS`, more needs ``path="mpmath"``).
    sensitivity : bool
        Also compute ``dy/dp`` (default True).
    parameters : sequence of str, optional
        The parameters to differentiate with respect to, in gradient order (default: all).
    y0 : sequence of n values, optional
        Initial state; default the model's ``y0(p)``.  An explicit ``y0`` has zero derivative (as in
        :func:`symsens.solve`).
    time_budget : float, optional
        Wall-clock seconds for the integrations (code generation and compilation, done once per model and
        cached, are not counted).  When it runs out, the result reports the digits verified so far.
    path : "auto", "fast" or "mpmath"
        ``"auto"``: double-double when ``digits <= FAST_MAX_DIGITS``, else mpmath.
    method : "auto", "radau-iia", "gauss" or "taylor"
        ``"auto"``: Radau IIA when the problem is stiff (``max(-Re eig f_y) (t1 - t0) > 100``, the
        Jacobian taken at ``(t0, y0)`` and, on the fast path, along a loose exploratory solve of at most two
        seconds), else Gauss on the fast path and Taylor series on the mpmath path.  ``.method`` and
        ``.family_reason`` of the result say which family ran and why.  ``"taylor"`` needs ``path="mpmath"``.
    progress : bool
        Print progress to standard error for runs longer than two seconds.

    Returns
    -------
    Reference
        Check ``.verified`` / ``.verified_digits``; ``.message`` says what was verified or why not more.
        Values below the range the double-double arithmetic resolves (:data:`DD_TINY`, with their error
        bound) are flagged in ``.y_below_range`` / ``.sensitivity_below_range`` and reported as
        ``|value| <= DD_TINY``, not with digits; ``.verified_digits`` is the minimum over the other values.

    Notes
    -----
    Error weights (fast path): every value relative to its own size, except that a sensitivity ``S_ij`` is
    measured against ``max(|S_ij|, SENSITIVITY_FLOOR |y_i| / |p_j|)`` (the state's scale, as CVODES borrows
    it for its sensitivity weights; a sensitivity that starts at 0 and grows like ``t^k`` has a relative
    one-step error independent of the step size) and every value against ``max(|u|, DD_TINY)``.  The stage
    systems are equilibrated by powers of two of each component's size.

    Raises
    ------
    ValueError
        For bad arguments, naming the argument.

    References
    ----------
    E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer 1996, Sect. IV.5
    (collocation methods), IV.8 (implementation); E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary
    Differential Equations I*, Sect. II.4 (step doubling); M. Caracotsios, W. E. Stewart, Comput. Chem.
    Eng. 9 (1985) 359-365 (staggered direct sensitivities); Y. Hida, X. S. Li, D. H. Bailey, ARITH-15
    (2001) (double-double arithmetic).
    """
    start = time.perf_counter()
    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    t0, t1 = time_span(t_span, model.t_span)
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or not 1 <= int(digits) <= 60:
        raise ValueError(f"`digits` must be an integer in 1..60, got {digits!r}")
    digits = int(digits)
    if time_budget is not None:
        if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)) or not (time_budget > 0 and math.isfinite(time_budget)):
            raise ValueError(f"`time_budget` must be a positive number of seconds or None, got {time_budget!r}")
    if path not in PATHS:
        raise ValueError(f"`path` must be one of {', '.join(PATHS)}, got {path!r}")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
    if t_eval is None:
        t_out = np.array([t1])
    else:
        t_out = output_times(t_eval, "t_eval", t0, t1)
    chosen = _chosen_parameters(model, parameters, bool(sensitivity))
    p_values = _parameter_values(model, p)
    y0_values = None
    if y0 is not None:
        if isinstance(y0, str):
            raise ValueError("`y0` must be a sequence of numbers, not a string")
        y0_list = list(y0)
        if len(y0_list) != model.n_states:
            raise ValueError(f"`y0` must have length {model.n_states} (the model's states), got {len(y0_list)}")
        y0_values = [_as_mpf(v, f"y0[{k}]") for k, v in enumerate(y0_list)]
    if path == "auto":
        path = "fast" if digits <= FAST_MAX_DIGITS and method != "taylor" else "mpmath"
    if path == "fast" and method == "taylor":
        raise ValueError("`method`=\"taylor\" is available on the mpmath path only (path=\"mpmath\")")
    if path == "fast" and digits > FAST_MAX_DIGITS:
        raise ValueError(f"`digits`={digits} is beyond the double-double path (at most {FAST_MAX_DIGITS}); use path=\"mpmath\"")

    n, n_p = model.n_states, len(chosen)
    zeros = _structural_zeros(model, chosen, y0_values is not None)
    dps = digits + 12
    engine: Any
    if path == "fast":
        engine = _FastEngine(model, chosen, p_values, y0_values, t0, t1)
        max_exponent = _FAST_MIN_TOLERANCE_EXPONENT
    else:
        from ._mp import MpEngine

        engine = MpEngine(model, chosen, p_values, y0_values, t0, t1)
        max_exponent = digits + 9
    # Taylor series assume the right-hand side is analytic along each step: a switch (abs, sign, Heaviside, min,
    # max, piecewise) would be stepped over and every rung would solve the same wrong equation.
    switches = (sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min, sp.Piecewise)
    non_smooth = any(sp.sympify(e).has(*switches) for e in (*model.rhs, *model.initial_conditions))
    if method == "taylor" and non_smooth:
        raise ValueError("`method`=\"taylor\" needs an analytic right-hand side; this model has abs/sign/Heaviside/"
                         "min/max: use method=\"radau-iia\" or \"gauss\"")
    # The budget counts from here: compilation (above) excluded, the exploratory solve of the stiffness test included.
    deadline = None if time_budget is None else time.perf_counter() + float(time_budget)
    stiffness: float | None = None
    if method == "auto":
        explore_seconds = 2.0 if time_budget is None else min(2.0, 0.05 * float(time_budget))
        stiffness, where = _stiffness(engine, t0, t1, explore_seconds)
        stiff = stiffness > STIFFNESS_THRESHOLD
        family = "radau-iia" if (stiff or (non_smooth and path != "fast")) else ("gauss" if path == "fast" else "taylor")
        family_reason = (f"{family} chosen: {'stiff' if stiff else 'not stiff'}, max(-Re eig f_y) (t1 - t0) = "
                         f"{stiffness:.2g} {'>' if stiff else '<='} {STIFFNESS_THRESHOLD:g} {where}")
        if non_smooth and path != "fast" and not stiff:
            family_reason += "; the right-hand side has switches, so no Taylor series"
    else:
        family = method
        family_reason = f"{family} as requested"
    rungs = _ladder(digits, family, max_exponent, dps, ABSOLUTE_TOLERANCE if path == "fast" else 0.0,
                    from_start=time_budget is not None)

    reporter = _Progress(bool(progress))
    runs: list[ReferenceRun] = []
    outputs: list[Any] = []
    width = n + n * n_p
    m = len(t_out) * width
    best_digits = np.full(m, -1, dtype=int)
    best_bound = np.full(m, math.inf)
    best_values: list[mpmath.mpf] = [mpmath.mpf("nan")] * m
    # Values whose magnitude, error bound included, stays below what the arithmetic resolves (DD_TINY on the
    # fast path): reported as such, never with digits (0 from underflow is not a verified 0).
    tiny = DD_TINY if path == "fast" else 0.0
    below = np.zeros(m, dtype=bool)
    pairs: list[tuple[int, int]] = []
    pair_records: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    structural = np.tile(np.concatenate([np.zeros(n, dtype=bool), zeros.ravel()]), len(t_out))
    last_good: int | None = None
    previous_differences: list[mpmath.mpf] | None = None
    stop_reason = ""
    for index, rung in enumerate(rungs):
        remaining = 0.0
        if deadline is not None:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                stop_reason = "the time budget was spent"
                break
        scheme = f"{rung.family}-{rung.stages}"
        label = f"run {index + 1}/{len(rungs)} {scheme}, rtol {rung.rtol:.0e}"
        out = engine.run(rung, t_out, remaining, reporter.callback(label, t0, t1))
        from .._checks import STATUS_NAMES

        status = STATUS_NAMES.get(out.status, f"status {out.status}")
        if out.status not in (0, 6):
            status += f" at t = {out.t_failure:.6g}"
        record = ReferenceRun(
            path=engine.name, scheme=scheme, order=_order(rung), rtol=rung.rtol, atol=rung.atol,
            precision_bits=engine.precision_bits(rung), status=status, accepted_steps=out.accepted,
            rejected_steps=out.rejected, seconds=out.seconds,
        )
        runs.append(record)
        outputs.append(out)
        reporter.end_run(record.describe())
        if out.status == 6:
            stop_reason = "the time budget was spent"
            break
        if out.status != 0:
            continue
        if last_good is not None:
            previous = outputs[last_good]
            ratio = rung.rtol / rungs[last_good].rtol
            cap = engine.cap if path == "fast" else rung.dps
            got, bound, differences = compare_runs(
                previous.values, out.values, previous_differences, ratio,
                engine.unit_roundoff if path == "fast" else 10.0**-rung.dps, out.accepted + out.rejected, cap,
                structural,
            )
            previous_differences = differences
            pairs.append((last_good, index))
            unresolved = np.zeros(m, dtype=bool)
            if tiny > 0.0:
                unresolved = np.array([not structural[k] and float(abs(out.values[k])) + float(bound[k]) <= tiny
                                       for k in range(m)], dtype=bool)
            pair_records.append((index, np.where(unresolved, -1, got), bound, unresolved))
            best_digits, best_bound, best_values, below = _best_of_pairs(pair_records, outputs, runs, m, cap,
                                                                         structural)
            if np.all((best_digits >= digits) | below):
                break
        last_good = index
    else:
        if not stop_reason:
            stop_reason = (f"the ladder reached its tightest tolerance ({rungs[-1].rtol:.0e}, the limit of the "
                           f"{engine.name} arithmetic)" if rungs else "no run was possible")

    seconds = time.perf_counter() - start
    for k in np.flatnonzero(structural):
        best_values[k] = mpmath.mpf(0)  # exactly zero for every parameter value
    if not pairs:
        # Nothing verified: report the last successful run's values with 0 digits.
        if last_good is not None:
            best_values = list(outputs[last_good].values)
        best_digits = np.where(structural, engine.cap, 0)
        best_bound = np.where(structural, 0.0, math.inf)
        if not stop_reason:
            stop_reason = "no two runs succeeded"
    for k in np.flatnonzero(below):
        best_values[k] = mpmath.mpf(0)
        best_digits[k] = 0
        best_bound[k] = tiny  # |value| <= tiny, verified like a digit: runs agree, error estimate below it
    resolved = ~below
    verified_digits = int(best_digits[resolved].min()) if resolved.any() else (digits if not m else 0)
    verified = verified_digits >= digits and bool(resolved.any())
    below_note = ""
    if below.any():
        names = []
        for k in np.flatnonzero(below):
            slot, index = divmod(int(k), width)
            if index < n:
                names.append(f"{model.state_names[index]}(t = {t_out[slot]:.6g})")
            else:
                i, j = divmod(index - n, n_p)
                names.append(f"d{model.state_names[i]}/d{chosen[j]}(t = {t_out[slot]:.6g})")
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        below_note = (f"; {shown} below {tiny:.0e} in magnitude, under the range the {engine.name} arithmetic "
                      f"resolves: reported as 0 with that bound (path=\"mpmath\" has an unbounded exponent)")
    below_note += f"; {_FAMILY_NAMES.get(family, family)} rungs"
    if verified:
        message = (f"every value verified to at least {verified_digits} significant digits (requested {digits})"
                   + below_note)
    else:
        failures = [r for r in runs if not r.status.startswith("success")]
        why = stop_reason or (failures[-1].status if failures else "the runs did not agree further")
        message = (f"verified to {max(verified_digits, 0)} significant digits only (requested {digits}): {why}"
                   + below_note)
    values = np.array([float(v) for v in best_values]).reshape(len(t_out), width)
    digits_array = best_digits.reshape(len(t_out), width)
    bound_array = best_bound.reshape(len(t_out), width)
    below_array = below.reshape(len(t_out), width)
    y_mp = tuple(tuple(best_values[k * width + i] for i in range(n)) for k in range(len(t_out)))
    if n_p:
        sens_mp = tuple(
            tuple(tuple(best_values[k * width + n + i * n_p + j] for j in range(n_p)) for i in range(n))
            for k in range(len(t_out))
        )
        sens = values[:, n:].reshape(len(t_out), n, n_p)
        sens_digits = digits_array[:, n:].reshape(len(t_out), n, n_p)
        sens_bound = bound_array[:, n:].reshape(len(t_out), n, n_p)
    else:
        sens_mp, sens, sens_digits, sens_bound = None, None, None, None
    return Reference(
        t=t_out, y=values[:, :n].copy(), sensitivities=sens, y_mp=y_mp, sensitivities_mp=sens_mp,
        y_digits=digits_array[:, :n].copy(), sensitivity_digits=sens_digits, y_error=bound_array[:, :n].copy(),
        sensitivity_error=sens_bound, requested_digits=digits, verified_digits=max(verified_digits, 0),
        verified=verified, runs=tuple(runs), verification=tuple(pairs), parameters=chosen,
        state_names=model.state_names, p=tuple(p_values), model_name=model.name,
        path=engine.name, method=family, message=message, seconds=seconds,
        y_below_range=below_array[:, :n].copy(),
        sensitivity_below_range=below_array[:, n:].reshape(len(t_out), n, n_p) if n_p else None,
        below_range_threshold=tiny, stiffness=stiffness, family_reason=family_reason,
    )


def _best_of_pairs(pair_records: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], outputs: list[Any],
                   runs: list[ReferenceRun], m: int, cap: int, structural: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray, list[mpmath.mpf], np.ndarray]:
    """Each value's digits from the best pair, where a pair (A, B) keeps only the digits of B that *every later
    successful run* also agrees with.

    Rounding errors can be correlated between rungs (similar step sequences round alike), so two rungs may agree
    far better than either is right; a value of an ill-conditioned problem (E5's y2 at t = 1e13 amplifies the
    double-double rounding of its early flux by about 1e22) then shows it by moving again in a later rung.  The
    check costs nothing: every later run is at least as accurate in its truncation error.
    Returns digits, bounds, values and the below-range mask (values under the arithmetic's range).
    """
    best_digits = np.full(m, -1, dtype=int)
    best_bound = np.full(m, math.inf)
    best_values: list[mpmath.mpf] = [mpmath.mpf("nan")] * m
    below = np.zeros(m, dtype=bool)
    for b, got, bound, unresolved in pair_records:
        got = got.copy()
        bound = bound.copy()
        later = [c for c in range(b + 1, len(outputs)) if outputs[c].status == 0]
        x_b = outputs[b].values
        for c in later:
            x_c = outputs[c].values
            for k in np.flatnonzero(got > 0):
                if structural[k]:
                    continue
                difference = abs(x_c[k] - x_b[k]) if (mpmath.isfinite(x_c[k]) and mpmath.isfinite(x_b[k])) else mpmath.inf
                if difference == 0:
                    continue
                if not mpmath.isfinite(difference):
                    got[k], bound[k] = 0, math.inf
                    continue
                got[k] = min(got[k], significant_digits(x_b[k], difference, cap))
                bound[k] = max(bound[k], float(difference))
        below = unresolved & (below | (best_digits < 0))  # a value once resolved keeps its digits
        better = got > best_digits
        for k in np.flatnonzero(better):
            best_digits[k] = got[k]
            best_bound[k] = bound[k]
            best_values[k] = x_b[k]
            below[k] = False
    return best_digits, best_bound, best_values, below


_FAMILY_NAMES = {"radau-iia": "Radau IIA", "gauss": "Gauss", "taylor": "Taylor series"}

#: ``method="auto"`` takes Radau IIA when the stiffness measure of :func:`_stiffness` exceeds this.
STIFFNESS_THRESHOLD = 100.0


def _damping(J: np.ndarray) -> float:
    """The fastest decay rate of ``y' = J y``: ``max(0, max_i -Re eig_i J)`` (inf for a non-finite J)."""
    if not J.size:
        return 0.0
    if not np.all(np.isfinite(J)):
        return math.inf
    return max(0.0, float(np.max(-np.linalg.eigvals(J).real)))


def _stiffness(engine: Any, t0: float, t1: float, seconds: float) -> tuple[float, str]:
    """The stiffness measure ``max_t max(-Re eig f_y(t, y(t))) (t1 - t0)`` and where it was taken.

    A mode decaying at rate ``lambda`` makes the problem stiff over a span ``T`` when ``lambda T`` is large:
    explicit and A-stable-but-not-L-stable schemes (Gauss) then need steps resolving ``1/lambda`` or carry the
    undamped mode, while Radau IIA (L-stable) damps it.  Growing or oscillating modes (positive or imaginary
    eigenvalues) are not stiffness.  The Jacobian is taken at ``(t0, y0)`` and, on the fast path, at 24 times
    (geometric near t0, then uniform) of an exploratory double-double Radau IIA solve at rtol 1e-4 bounded by
    ``seconds``, since stiffness often appears only after a transient (a spike, a reaction front).
    """
    span = t1 - t0
    try:
        rate = _damping(engine.jacobian_at_start())
    except (ArithmeticError, ValueError):  # pragma: no cover - defensive
        return math.inf, "(the Jacobian at t0 could not be evaluated)"
    where = "at t0"
    explore = getattr(engine, "explore", None)
    if explore is not None and math.isfinite(rate):
        samples = np.unique(np.concatenate([t0 + span * np.geomspace(1e-8, 1e-2, 7), np.linspace(t0, t1, 18)[1:]]))
        try:
            jacobians = explore(samples, seconds)
        except (ArithmeticError, ValueError):  # pragma: no cover - defensive
            jacobians = []
        if jacobians:
            rate = max([rate] + [_damping(J) for J in jacobians])
            where = f"at t0 and {len(jacobians)} points of an exploratory solve"
    return rate * span, where
