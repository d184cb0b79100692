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

from .._checks import output_times, time_span
import sympy as sp

from ..model import Model
from ._tableau import collocation_tableau
from ._verify import compare_runs

__all__ = ["reference", "Reference", "ReferenceRun", "FAST_MAX_DIGITS", "PATHS", "METHODS"]

#: The most digits the double-double path is asked to verify; more goes to the mpmath path.
FAST_MAX_DIGITS = 26
#: The smallest relative tolerance a double-double run is given (its rounding level is ~1e-31).
_FAST_MIN_TOLERANCE_EXPONENT = 29
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

    def decimal(self, value: mpmath.mpf, digits: int | None = None) -> str:
        """``value`` as a decimal string with ``digits`` significant digits (default: all the run computed)."""
        with mpmath.workprec(128):
            return mpmath.nstr(value, digits or 32, min_fixed=-4, max_fixed=6, strip_zeros=False)

    def y_decimal(self, k: int, i: int) -> str:
        """``y_i(t_k)`` printed with exactly its verified digits."""
        return self.decimal(self.y_mp[k][i], max(int(self.y_digits[k, i]), 1))

    def sensitivity_decimal(self, k: int, i: int, j: int) -> str:
        """``d y_i / d p_j (t_k)`` printed with exactly its verified digits."""
        if self.sensitivities_mp is None or self.sensitivity_digits is None:
            raise ValueError("this reference has no sensitivities (sensitivity=False)")
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
            "y": [[{"value": self.decimal(self.y_mp[k][i]), "digits": int(self.y_digits[k, i]),
                    "error_bound": float(self.y_error[k, i])} for i in range(len(self.state_names))]
                  for k in range(len(self.t))],
            "runs": [run.__dict__ for run in self.runs],
            "verification": [list(pair) for pair in self.verification],
        }
        if self.sensitivities_mp is not None and self.sensitivity_digits is not None and self.sensitivity_error is not None:
            out["sensitivities"] = [
                [[{"value": self.decimal(self.sensitivities_mp[k][i][j]), "digits": int(self.sensitivity_digits[k, i, j]),
                   "error_bound": float(self.sensitivity_error[k, i, j])} for j in range(len(self.parameters))]
                 for i in range(len(self.state_names))]
                for k in range(len(self.t))
            ]
        return out


# ---------------------------------------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------------------------------------


def _as_mpf(value: Any, name: str) -> mpmath.mpf:
    """A number given as float, int, decimal string, SymPy number or mpmath number -> mpf (256 bits)."""
    with mpmath.workprec(256):
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
    if parameters is None:
        return tuple(model.parameter_names)
    if isinstance(parameters, str):
        raise ValueError("`parameters` must be a sequence of parameter names, not a string")
    chosen = tuple(parameters)
    for name in chosen:
        if name not in model.parameter_names:
            import difflib

            close = difflib.get_close_matches(str(name), model.parameter_names, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise ValueError(f"`parameters`: unknown parameter {name!r}{hint}")
    if len(set(chosen)) != len(chosen):
        raise ValueError("`parameters` lists a parameter twice")
    return chosen


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

    def precision_bits(self, rung: Rung) -> int:
        return 106

    def run(self, rung: Rung, t_eval: np.ndarray, seconds: float, on_progress: Callable[[float], None] | None) -> Any:
        tableau = collocation_tableau(rung.family, rung.stages, 60)
        return self.solver.solve(tableau, self.p, self.y0, self.S0, self.t0, self.t1, t_eval, rtol=rung.rtol,
                                 atol=rung.atol, seconds=seconds, on_progress=on_progress)

    def jacobian_at_start(self) -> np.ndarray:
        y0 = self.y0 if self.y0 is not None else self.solver.initial_values(self.p)[0]
        _, J = self.solver.rhs(mpmath.mpf(self.t0), y0, self.p)
        n = self.solver.n_states
        return np.array([float(v) for v in J]).reshape(n, n)


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
        ``"auto"``: Radau IIA when the problem is stiff (``max |eig f_y(t0, y0)| (t1 - t0) > 100``), else
        Gauss on the fast path and Taylor series on the mpmath path.  ``"taylor"`` needs ``path="mpmath"``.
    progress : bool
        Print progress to standard error for runs longer than two seconds.

    Returns
    -------
    Reference
        Check ``.verified`` / ``.verified_digits``; ``.message`` says what was verified or why not more.

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
    if method == "auto":
        stiff = _is_stiff(engine, t1 - t0)
        family = "radau-iia" if (stiff or (non_smooth and path != "fast")) else ("gauss" if path == "fast" else "taylor")
    else:
        family = method
    rungs = _ladder(digits, family, max_exponent, dps, ABSOLUTE_TOLERANCE if path == "fast" else 0.0,
                    from_start=time_budget is not None)

    deadline = None if time_budget is None else time.perf_counter() + float(time_budget)
    reporter = _Progress(bool(progress))
    runs: list[ReferenceRun] = []
    outputs: list[Any] = []
    width = n + n * n_p
    m = len(t_out) * width
    best_digits = np.full(m, -1, dtype=int)
    best_bound = np.full(m, math.inf)
    best_values: list[mpmath.mpf] = [mpmath.mpf("nan")] * m
    pairs: list[tuple[int, int]] = []
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
            better = got > best_digits
            for k in np.flatnonzero(better):
                best_digits[k] = got[k]
                best_bound[k] = bound[k]
                best_values[k] = out.values[k]
            if best_digits.min() >= digits:
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
    verified_digits = int(best_digits.min()) if m else digits
    verified = verified_digits >= digits
    if verified:
        message = f"every value verified to at least {verified_digits} significant digits (requested {digits})"
    else:
        failures = [r for r in runs if not r.status.startswith("success")]
        why = stop_reason or (failures[-1].status if failures else "the runs did not agree further")
        message = (f"verified to {max(verified_digits, 0)} significant digits only (requested {digits}): {why}")
    values = np.array([float(v) for v in best_values]).reshape(len(t_out), width)
    digits_array = best_digits.reshape(len(t_out), width)
    bound_array = best_bound.reshape(len(t_out), width)
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
    )


def _is_stiff(engine: Any, span: float) -> bool:
    """``max |eig f_y(t0, y0)| * (t1 - t0) > 100`` (non-finite Jacobians count as stiff)."""
    try:
        J = engine.jacobian_at_start()
    except (ArithmeticError, ValueError):  # pragma: no cover - defensive
        return True
    if not np.all(np.isfinite(J)):
        return True
    radius = float(np.max(np.abs(np.linalg.eigvals(J)))) if J.size else 0.0
    return radius * span > 100.0
