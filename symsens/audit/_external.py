"""Gradients from other tools in the audit ("bring your own gradient"), and what they computed.

A user's gradient comes from their own tool (JAX/diffrax, PyTorch, CasADi/CVODES, SciPy, Julia).  The audit
judges it as it judges its own methods: against the verified reference gradient, with a verdict, and beside
symsens' own runs in the report and the figures.  Three things are needed for that:

* **the same loss.**  The external gradient must be the gradient of a loss with fixed times and targets, so that
  the user can compute exactly the loss the audit differentiates.  :func:`loss_data` gives them (times, compared
  outputs, targets) *before* the user computes the gradient.  A :class:`TrajectoryLoss` on a fixed grid is made
  concrete by fixing its targets to the model's outputs at its data parameters, computed by the verified
  reference (every run of such an audit, symsens' own included, fits those targets).  A TrajectoryLoss on
  ``grid="steps"`` has times only per solver (each solver's own nominal steps): it is accepted for external
  gradients only at its data parameters, where the true loss and gradient are exactly 0 whatever the grid and
  whichever solver made the targets (the bursting-neuron experiment); elsewhere it is refused with a pointer
  to ``grid=``.
* **the external's evidence.**  A fixed gradient (perhaps with its loss value and the rtol it was computed at)
  is one point; a callable ``gradient(p, rtol[, atol=...])`` is called at every tolerance of the audit, so its
  convergence is judged as for symsens' methods.
* **identification.**  Each external gradient is compared with every symsens gradient of the audit at the same
  tolerance (and scheme, when known): the one it agrees with best, to how many digits, and whether the audit
  can tell that method apart from the others it agrees with.  Agreement to d digits is
  ``-log10(||g_ext - g_m|| / ||g_m||)`` in the 2-norm.  A match needs at least :data:`MATCH_MIN_DIGITS` digits
  and one digit more than the external's agreement with the true gradient (nearer to the method than to the
  truth): two gradients that are both accurate to d digits agree to about d digits whatever computed them.
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model import Model
from ._diagnose import gradient_error, stable_norm
from ._losses import AuditLoss, DataLoss, ExpressionLoss, IntegralLoss, LossPlan, TrajectoryLoss
from ._reference import ReferenceGradient

__all__ = ["ExternalGradient", "LossData", "FixedTargetsLoss", "loss_data", "read_gradient_file", "parse_externals",
           "MATCH_MIN_DIGITS", "agreement_digits", "identify", "external_verdict", "prepare_externals",
           "external_results", "report_loss_data"]

#: The fewest digits of agreement with a symsens method that count as a match.
MATCH_MIN_DIGITS = 3.0

#: Methods agreeing with an exactly matched one to this many digits are named beside it (rounding apart).
EXACT_TWIN_DIGITS = 10.0

_SPEC_KEYS = {"gradient", "loss", "rtol", "atol", "scheme", "solver"}


# -- the external gradient -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ExternalGradient:
    """A gradient computed outside symsens, for :func:`symsens.audit` (``external={name: ...}``).

    Either ``gradient`` (fixed: one point, optionally with the ``loss`` value and the ``rtol``/``atol`` and
    ``scheme`` it was computed with) or ``function``: ``function(p, rtol)`` or ``function(p, rtol, atol=...)``
    returning a gradient or ``(loss, gradient)``, where ``p`` is a NumPy array of every model parameter in the
    order of ``model.parameter_names`` (the audited point) and the gradient is over the audit's ``parameters``
    (a sequence in that order, or a mapping name -> value).  ``solver`` says what ran (free text).
    ``backsolve=True`` says the tool re-solves the state backwards with the adjoint (torchdiffeq's
    ``odeint_adjoint``, diffrax's ``BacksolveAdjoint``): an inaccurate result is then weighed against the growth
    rate of that backward state solve.
    """

    gradient: np.ndarray | None = None
    function: Callable[..., Any] | None = field(default=None, repr=False)
    loss: float | None = None
    rtol: float | None = None
    atol: float | None = None
    scheme: str | None = None
    solver: str | None = None
    source: str | None = None        # where it came from (a file), for messages
    backsolve: bool = False          # a backsolve adjoint (state re-solved backwards): diagnosed by the backward growth


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def gradient_vector(value: Any, what: str, parameters: Sequence[str]) -> np.ndarray:
    """``value`` (a sequence in ``parameters`` order, or a mapping name -> value) as a finite float vector; a
    ValueError names ``what`` and the problem (wrong type or length, unknown or missing name, NaN/inf)."""
    P = len(parameters)
    if isinstance(value, Mapping):
        unknown = [str(k) for k in value if k not in parameters]
        if unknown:
            raise ValueError(f"{what}: unknown parameter {unknown[0]!r}; the audited parameters: {', '.join(parameters)}")
        missing = [name for name in parameters if name not in value]
        if missing:
            raise ValueError(f"{what}: no value for parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        for name in parameters:
            item = value[name]
            if isinstance(item, np.generic):
                item = item.item()
            if not _is_number(item):
                raise ValueError(f"{what}: the value of {name!r} is not a number ({type(item).__name__})")
        vector = np.array([float(value[name]) for name in parameters])
    else:
        if isinstance(value, (str, bytes)) or value is None or _is_number(value) and P != 1:
            raise ValueError(f"{what}: expected {P} numbers (a sequence in the order {', '.join(parameters)}, or a "
                             f"mapping parameter -> value), got {type(value).__name__}")
        try:
            array = np.asarray(value, dtype=float) if not _is_number(value) else np.array([float(value)])
        except (TypeError, ValueError):
            raise ValueError(f"{what}: not a sequence of numbers ({type(value).__name__})") from None
        if array.ndim != 1:
            raise ValueError(f"{what}: expected a flat sequence of {P} numbers, got an array of shape {array.shape}")
        if len(array) != P:
            raise ValueError(f"{what}: {len(array)} value{'s' if len(array) != 1 else ''}, but the audit differentiates "
                             f"with respect to {P} parameter{'s' if P != 1 else ''} ({', '.join(parameters)})")
        vector = array.copy()
    bad = [name for name, v in zip(parameters, vector) if not math.isfinite(v)]
    if bad:
        kind = "NaN" if math.isnan(vector[list(parameters).index(bad[0])]) else "infinite"
        raise ValueError(f"{what}: the value of {bad[0]!r} is {kind}")
    return vector


def _scalar(value: Any) -> Any:
    """A 0-d array of any array library (NumPy, JAX, PyTorch) as a Python number; anything else unchanged."""
    if isinstance(value, (str, bytes, Mapping)) or _is_number(value):
        return value
    try:
        if np.ndim(value) == 0:
            return float(value)
    except Exception:  # not an array-like: left for the caller's check to name
        pass
    return value


def _finite(value: Any, what: str, positive: bool = False, below_one: bool = False) -> float:
    value = _scalar(value)
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    value = float(value)
    if positive and not value > 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    if below_one and not value < 1:
        raise ValueError(f"{what} must be below 1, got {value!r}")
    return value


def _loss_and_gradient(value: Any) -> tuple[Any, Any] | None:
    """``(loss, gradient)`` when ``value`` is such a pair (a number, then a non-scalar), else None."""
    if isinstance(value, tuple) and len(value) == 2:
        first, second = _scalar(value[0]), value[1]
        if _is_number(first) and not isinstance(second, (str, bytes)):
            if isinstance(second, Mapping):
                return first, second
            try:
                vector = np.ndim(second) == 1
            except Exception:  # not an array-like: not a (loss, gradient) pair
                vector = False
            if vector:
                return first, second
    return None


def as_external(value: Any, name: str, parameters: Sequence[str], what: str | None = None) -> ExternalGradient:
    """One entry of ``external=``: a gradient, ``(loss, gradient)``, a mapping with a ``gradient`` key (and
    ``loss``, ``rtol``, ``atol``, ``scheme``, ``solver``), a callable, or an :class:`ExternalGradient`."""
    what = what or f"external gradient {name!r}"
    if isinstance(value, ExternalGradient):
        spec: dict[str, Any] = {"gradient": value.gradient, "loss": value.loss, "rtol": value.rtol,
                                "atol": value.atol, "scheme": value.scheme, "solver": value.solver}
        if value.function is not None:
            if value.gradient is not None:
                raise ValueError(f"{what}: give a gradient or a function, not both")
            if not callable(value.function):
                raise ValueError(f"{what}: `function` is not callable")
            return ExternalGradient(function=value.function, solver=value.solver, scheme=value.scheme,
                                    source=value.source, backsolve=bool(value.backsolve))
        source = value.source
        backsolve = bool(value.backsolve)
    elif callable(value) and not isinstance(value, (Mapping, Sequence, np.ndarray)):
        return ExternalGradient(function=value, solver=getattr(value, "solver", None))
    elif isinstance(value, Mapping) and "gradient" in value and "gradient" not in parameters:
        unknown = sorted(str(k) for k in set(value) - _SPEC_KEYS)
        if unknown:
            raise ValueError(f"{what}: unknown key {unknown[0]!r}; the keys are gradient, loss, rtol, atol, scheme, "
                             "solver")
        spec, source = dict(value), None
        backsolve = False
    else:
        pair = _loss_and_gradient(value)
        spec = {"gradient": value} if pair is None else {"loss": pair[0], "gradient": pair[1]}
        source = None
        backsolve = False
    gradient = gradient_vector(spec.get("gradient"), what, parameters)
    loss = None if spec.get("loss") is None else _finite(spec["loss"], f"{what}: the loss")
    rtol = None if spec.get("rtol") is None else _finite(spec["rtol"], f"{what}: rtol", positive=True, below_one=True)
    atol = None if spec.get("atol") is None else _finite(spec["atol"], f"{what}: atol", positive=True)
    scheme = spec.get("scheme")
    solver = spec.get("solver")
    for key, text in (("scheme", scheme), ("solver", solver)):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"{what}: {key} must be a string, got {type(text).__name__}")
    if scheme is not None:
        from ._audit import canonical_scheme

        scheme = canonical_scheme(scheme)
    return ExternalGradient(gradient=gradient, loss=loss, rtol=rtol, atol=atol, scheme=scheme, solver=solver,
                            source=source, backsolve=backsolve)


def parse_externals(external: Any, parameters: Sequence[str],
                    taken: Sequence[str] = ()) -> tuple[tuple[str, ExternalGradient], ...]:
    """``external`` (a mapping name -> value, see :func:`as_external`) checked against the audit's parameters;
    names must be new (not a symsens gradient method, not in ``taken``)."""
    from ._methods import GRADIENT_METHODS

    if external is None:
        return ()
    if not isinstance(external, Mapping):
        raise ValueError(f"`external` must be a mapping name -> gradient (or callable), got {type(external).__name__}")
    out = []
    for name, value in external.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"`external`: each name must be a non-empty string, got {name!r}")
        if name in GRADIENT_METHODS:
            raise ValueError(f"`external`: the name {name!r} is a symsens gradient method; choose another name")
        if name in taken:
            raise ValueError(f"`external`: the name {name!r} is used twice")
        out.append((name, as_external(value, name, parameters)))
    return tuple(out)


# -- files ---------------------------------------------------------------------------------------------------
def read_gradient_file(path: str | os.PathLike[str], name: str, parameters: Sequence[str]) -> ExternalGradient:
    """A gradient from a file (``symsens audit --gradient NAME=FILE``).

    * ``.json``: a list (parameter order), an object parameter -> value, or an object with ``gradient`` (either
      form) and optionally ``loss``, ``rtol``, ``atol``, ``scheme``, ``solver``;
    * ``.npy``: a one-dimensional array in parameter order;
    * ``.csv`` (any other suffix): rows ``parameter,value`` (an optional header row ``parameter,value``).

    Every error names the file and the problem.
    """
    source = os.fspath(path)
    what = f"--gradient {name}={source}"
    suffix = Path(source).suffix.lower()
    if not Path(source).is_file():
        raise ValueError(f"{what}: no such file")
    if suffix == ".npy":
        try:
            array = np.load(source, allow_pickle=False)
        except Exception as error:  # a corrupt or pickled file: say it does not parse
            raise ValueError(f"{what}: does not parse as a NumPy .npy array ({error})") from None
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{what}: the array holds {array.dtype}, not numbers")
        external = as_external(array, name, parameters, what)
    elif suffix == ".json":
        try:
            value = json.loads(Path(source).read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{what}: does not parse as JSON ({error})") from None
        if not isinstance(value, (list, dict)):
            raise ValueError(f"{what}: expected a JSON list, an object parameter -> value, or an object with "
                             f"\"gradient\"; got {type(value).__name__}")
        external = as_external(value, name, parameters, what)
    else:
        external = as_external(_read_csv(source, what, parameters), name, parameters, what)
    return ExternalGradient(gradient=external.gradient, loss=external.loss, rtol=external.rtol, atol=external.atol,
                            scheme=external.scheme, solver=external.solver, source=source)


def _read_csv(source: str, what: str, parameters: Sequence[str]) -> dict[str, float]:
    try:
        with open(source, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and "".join(row).strip()
                    and not row[0].lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{what}: cannot read it ({error})") from None
    values: dict[str, float] = {}
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if number == 1 and len(cells) == 2 and cells[0].lower() in ("parameter", "name") and \
                cells[1].lower() in ("value", "gradient", "dl/dp"):
            continue
        if len(cells) != 2:
            raise ValueError(f"{what}: row {number} has {len(cells)} columns; expected `parameter,value`")
        key, text = cells
        if key in values:
            raise ValueError(f"{what}: row {number}: parameter {key!r} appears twice")
        try:
            values[key] = float(text)
        except ValueError:
            raise ValueError(f"{what}: row {number}: the value {text!r} of {key!r} is not a number") from None
    if not values:
        raise ValueError(f"{what}: no `parameter,value` rows")
    return values


# -- the loss data ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LossData:
    """What an external gradient must differentiate: the loss with its times and targets made concrete.

    ``kind`` is ``"least squares"`` (``L = sum_k sum_i w_i (g_i(t_k, y(t_k; p), p) - targets[k, i])^2``, with
    ``g`` the compared states or outputs ``output_names``), ``"expression"`` (``L = sum_k l(t_k, y(t_k), p)``)
    or ``"integral"`` (``L = int_{t0}^{t1} l dt``).  ``times`` is None for a trajectory loss on its solver's own
    steps (only allowed where the true gradient is exactly 0: then ``targets`` is None too, and the tool uses its
    own solve at the data parameters).  ``parameter_names`` and ``parameter_values`` are every model parameter
    in model order (the ``p`` a callable receives); ``parameters`` is the gradient's order.
    """

    model_name: str
    kind: str
    description: str
    parameter_names: tuple[str, ...]
    parameter_values: np.ndarray
    parameters: tuple[str, ...]
    t_span: tuple[float, float]
    times: np.ndarray | None
    output_names: tuple[str, ...]
    output_expressions: dict[str, str]
    targets: np.ndarray | None
    weights: tuple[float, ...] | None
    expression: str | None
    true_gradient_is_zero: bool
    note: str

    @property
    def formula(self) -> str:
        if self.kind == "least squares":
            weight = "w_i " if self.weights is not None else ""
            return (f"L(p) = sum_k sum_i {weight}(g_i(t_k, y(t_k; p), p) - targets[k][i])^2, g = ("
                    f"{', '.join(self.output_names)}), k over the {'times' if self.times is not None else 'step times'}")
        if self.kind == "expression":
            return f"L(p) = sum_k [{self.expression}] at t = times[k]"
        return f"L(p) = integral of {self.expression} from t0 to t1"

    def as_loss(self) -> AuditLoss | None:
        """The loss as a symsens loss object with these times and targets (for :func:`symsens.gradient`), or
        None where the targets are per solver (a steps grid)."""
        if self.kind != "least squares" or self.times is None or self.targets is None:
            return None
        return FixedTargetsLoss(tuple(self.times), tuple(map(tuple, self.targets)), self.output_names, self.weights,
                                origin=self.description)

    def to_json_dict(self) -> dict[str, Any]:
        from ._audit import _json_ready

        return _json_ready({
            "model": self.model_name, "kind": self.kind, "loss": self.formula, "description": self.description,
            "parameter_names": list(self.parameter_names), "parameter_values": self.parameter_values,
            "parameters": list(self.parameters), "t_span": list(self.t_span),
            "times": None if self.times is None else self.times, "outputs": list(self.output_names),
            "output_expressions": self.output_expressions,
            "targets": None if self.targets is None else self.targets, "weights": self.weights,
            "expression": self.expression, "true_gradient_is_zero": self.true_gradient_is_zero, "note": self.note,
        })

    def write_json(self, path: str | os.PathLike[str]) -> str:
        """Write :meth:`to_json_dict` to ``path``; returns the path."""
        Path(path).write_text(json.dumps(self.to_json_dict(), indent=1, allow_nan=False), encoding="utf-8")
        return os.fspath(path)


@dataclass(frozen=True)
class FixedTargetsLoss(DataLoss):
    """A least-squares loss whose targets were fixed by the audit (a trajectory loss made concrete): a
    :class:`DataLoss` that says where its targets came from."""

    origin: str = ""

    @property
    def description(self) -> str:
        return (f"{self.origin}; the targets fixed to the model's outputs at the data parameters by the verified "
                "reference (loss_data), so that every gradient differentiates the same loss")


_STEPS_GRID_MESSAGE = (
    "external gradients need a loss with fixed times: a TrajectoryLoss on grid=\"steps\" takes its times from "
    "each solver's own nominal steps, so no other tool can compute the same loss (except at the data parameters, "
    "where the true gradient is 0 whatever the grid). Give the grid as times, e.g. TrajectoryLoss(grid="
    "numpy.linspace(t0, t1, 101)), fit_loss(model) or DataLoss(...); on the command line --loss "
    "trajectory@T0:T1:N or --loss fit")


def _p_data(model: Model, loss: TrajectoryLoss) -> np.ndarray:
    p_data = np.asarray(model.parameter_values, dtype=float).copy()
    for name, value in loss.data_parameters or ():
        p_data[model.parameter_names.index(name)] = value
    return p_data


def concrete_loss(model: Model, loss: AuditLoss, plan: LossPlan, p: np.ndarray, t_span: tuple[float, float],
                  digits: int, time_budget: float | None = None, fix_targets: bool = True,
                  use_cache: bool = True) -> tuple[AuditLoss, LossData]:
    """The loss an external gradient differentiates and its :class:`LossData`.

    A trajectory loss on a fixed grid away from its data parameters gets fixed targets (the model's outputs at
    the data parameters from :func:`symsens.reference` verified to ``digits``): returned as a
    :class:`FixedTargetsLoss` (when ``fix_targets``).  At its data parameters it is kept (the true gradient is
    exactly 0, so the targets may be any solver's); its data are the exact outputs when the grid is fixed.  A
    steps grid elsewhere raises a ValueError that suggests ``grid=``.
    """
    names = tuple(model.parameter_names)
    expressions = {name: str(model.output(name)) for name in plan.output_names if name in model.output_names}
    base = dict(model_name=model.name, parameter_names=names, parameter_values=np.asarray(p, dtype=float).copy(),
                parameters=tuple(plan.parameters), t_span=(float(t_span[0]), float(t_span[1])),
                output_expressions=expressions)
    if isinstance(loss, TrajectoryLoss):
        p_data = _p_data(model, loss)
        zero = bool(np.array_equal(p_data, np.asarray(p, dtype=float)))
        if plan.steps_grid:
            if not zero:
                raise ValueError(_STEPS_GRID_MESSAGE)
            return loss, LossData(kind="least squares", description=loss.description, times=None,
                                  output_names=tuple(plan.output_names), targets=None, weights=None, expression=None,
                                  true_gradient_is_zero=True,
                                  note="at the data parameters the true loss and gradient are exactly 0: compute the "
                                       "targets with your own solve at these parameters on its own step times (the "
                                       "bursting-neuron experiment), as symsens' methods do", **base)
        times = np.asarray(plan.times, dtype=float)
        result = _reference_run(plan.solve_model, t_span, p_data, times, plan.parameters, digits, time_budget,
                                use_cache)
        targets = plan.outputs_of(times, np.asarray(result.y, dtype=float), p_data)
        verified = bool(getattr(result, "verified", False))
        how = ("the model's outputs at the data parameters from the reference solve"
               + (f", verified to {digits} digits" if verified else " (NOT fully verified)"))
        data = LossData(kind="least squares", description=loss.description, times=times,
                        output_names=tuple(plan.output_names), targets=targets, weights=None, expression=None,
                        true_gradient_is_zero=zero,
                        note=(f"targets: {how}; at the data parameters the true gradient is exactly 0, so targets "
                              "from your own solve at these parameters are as good" if zero else
                              f"targets: {how}; every run of the audit fits these targets"), **base)
        if zero or not fix_targets:
            return loss, data
        fixed = data.as_loss()
        assert fixed is not None
        return fixed, data
    if isinstance(loss, DataLoss):
        return loss, LossData(kind="least squares", description=loss.description,
                              times=np.asarray(loss.times, dtype=float), output_names=tuple(loss.outputs),
                              targets=np.asarray(loss.observed, dtype=float), weights=loss.weights, expression=None,
                              true_gradient_is_zero=False, note="targets: the given data", **base)
    if isinstance(loss, ExpressionLoss):
        return loss, LossData(kind="expression", description=loss.description, times=np.asarray(loss.times, dtype=float),
                              output_names=(), targets=None, weights=None, expression=loss.expression,
                              true_gradient_is_zero=False, note="the expression in the model language", **base)
    assert isinstance(loss, IntegralLoss)
    return loss, LossData(kind="integral", description=loss.description, times=None, output_names=(), targets=None,
                          weights=None, expression=loss.expression, true_gradient_is_zero=False,
                          note="the integrand in the model language, integrated over t_span", **base)


def _reference_run(model: Model, t_span: tuple[float, float], p: np.ndarray, times: np.ndarray,
                   parameters: Sequence[str], digits: int, time_budget: float | None, use_cache: bool) -> Any:
    """The verified reference states at ``times`` (no sensitivities), through the reference cache when there is one."""
    from . import _reference

    cached = getattr(_reference, "_cached_reference", None)
    if cached is not None:
        return cached(model, t_span, p, times, parameters, digits, False, time_budget, use_cache)
    return _reference._run_reference(model, t_span, p, times, parameters, digits, False, time_budget)


def loss_data(model: Model, loss: AuditLoss | None = None, *, p: Any = None, t_span: tuple[float, float] | None = None,
              parameters: Sequence[str] | None = None, digits: int = 8) -> LossData:
    """The times, compared outputs and targets of ``loss`` that an external gradient must use, before it is computed.

    Takes the arguments of :func:`symsens.audit` that define the loss (``p``: the audited point, every parameter
    or a mapping over the nominal values; ``parameters``: the gradient's order).  A trajectory loss on a fixed
    grid gets its targets from the verified reference at its data parameters (:func:`symsens.reference`,
    ``digits``), exactly as the audit fixes them when given external gradients.  ``symsens audit MODEL
    --write-loss-data FILE.json`` writes the same as JSON (:meth:`LossData.to_json_dict`).
    """
    from .._checks import parameter_selection, parameter_values, time_span
    from ._methods import _plan

    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a symsens.Model, got {type(model).__name__}")
    loss = TrajectoryLoss() if loss is None else loss
    span = time_span(t_span, model.t_span)
    p_values = parameter_values(model, p)
    chosen = parameter_selection(model, parameters)
    plan = _plan(model, loss, chosen, span)
    return concrete_loss(model, loss, plan, p_values, span, digits)[1]


# -- evaluation ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """One external gradient at one tolerance (``rtol`` None: unknown)."""

    rtol: float | None
    atol: float | None
    gradient: np.ndarray | None
    loss: float | None
    message: str
    seconds: float


def _accepts_atol(function: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    return any(p.name == "atol" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.kind == p.VAR_KEYWORD
               for p in signature.parameters.values())


def evaluate(name: str, external: ExternalGradient, p: np.ndarray, tolerances: Sequence[float],
             atol_of: Callable[[float], float], parameters: Sequence[str]) -> list[Evaluation]:
    """The external's gradient(s): the fixed one, or the callable at each tolerance.  A callable that raises or
    returns something that is not a gradient gives a failed evaluation with the message, never an exception."""
    if external.function is None:
        return [Evaluation(external.rtol, external.atol, external.gradient, external.loss, "given", 0.0)]
    function = external.function
    with_atol = _accepts_atol(function)
    out = []
    for rtol in tolerances:
        atol = atol_of(rtol)
        start = time.perf_counter()
        what = f"external gradient {name!r} at rtol {rtol:g}"
        try:
            value = function(np.array(p, dtype=float), rtol, atol=atol) if with_atol else function(np.array(p, dtype=float), rtol)
        except Exception as error:  # the user's code: its failure is a failed row, not a failed audit
            out.append(Evaluation(rtol, atol, None, None, f"raised {type(error).__name__}: {error}",
                                  time.perf_counter() - start))
            continue
        seconds = time.perf_counter() - start
        try:
            pair = _loss_and_gradient(value)
            loss = None
            if pair is not None:
                loss = _finite(pair[0], f"{what}: the loss")
                value = pair[1]
            gradient = gradient_vector(value, what, parameters)
        except ValueError as error:
            out.append(Evaluation(rtol, atol, None, None, f"returned no usable gradient: {error}", seconds))
            continue
        out.append(Evaluation(rtol, atol, gradient, loss, "success", seconds))
    return out


# -- identification ----------------------------------------------------------------------------------------------
def agreement_digits(a: np.ndarray, b: np.ndarray) -> float:
    """Digits to which ``a`` agrees with ``b``: ``-log10(||a - b|| / ||b||)`` (2-norm; inf when equal, 0 when
    ``b`` is 0 and ``a`` is not), capped below at 0."""
    difference = stable_norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    if difference == 0:
        return math.inf
    scale = stable_norm(np.asarray(b, dtype=float))
    if scale == 0 or not math.isfinite(difference):
        return 0.0
    return max(0.0, -math.log10(difference / scale))


def _digits_words(digits: float) -> str:
    return "exactly" if math.isinf(digits) else f"to {int(math.floor(digits + 1e-9))} digits"


def _setting_words(row: dict[str, Any]) -> str:
    from ._glossary import GLOSSARY

    summary = GLOSSARY.get(row["method"], ("",))[0]
    return (f"{row['method']}" + (f" ({summary})" if summary else "") + f" with {row['scheme']} at rtol {row['rtol']:g}")


def identify(gradient: np.ndarray | None, rtol: float | None, scheme: str | None, rows: Sequence[dict[str, Any]],
             reference: ReferenceGradient) -> dict[str, Any]:
    """Which symsens gradient of the audit ``gradient`` equals: ``identified_as`` (method, scheme, rtol) or None,
    ``match_digits`` (the agreement with the nearest), ``nearest``, ``indistinguishable_from`` and the sentence
    ``identification``.  Candidates: the rows at the same rtol and scheme when those were audited, else all."""
    empty = {"identified_as": None, "match_digits": None, "match_exact": False, "nearest": None,
             "indistinguishable_from": [], "identification": None}
    candidates = [r for r in rows if r["gradient"] is not None and not r.get("external")]
    if gradient is None or not candidates:
        return empty
    scope = []
    if rtol is not None and any(math.isclose(r["rtol"], rtol, rel_tol=1e-9) for r in candidates):
        candidates = [r for r in candidates if math.isclose(r["rtol"], rtol, rel_tol=1e-9)]
        scope.append(f"at rtol {rtol:g}")
    elif rtol is not None:
        scope.append(f"(rtol {rtol:g} was not audited, so every run is compared)")
    if scheme is not None and any(r["scheme"] == scheme for r in candidates):
        candidates = [r for r in candidates if r["scheme"] == scheme]
        scope.append(f"with {scheme}")
    scored = [(agreement_digits(gradient, r["gradient"]), k, r) for k, r in enumerate(candidates)]
    best_digits, _, best = max(scored, key=lambda item: (item[0], -item[1]))
    from ._verdict import accurate_digits

    # How near the truth it is, as far as the reference can tell: at the reference's own digits the external
    # cannot be told from the true gradient, and only exact equality identifies a method.
    relative, absolute = gradient_error(gradient, reference)
    truth = shown_truth = accurate_digits(relative, absolute, reference)
    cap = accurate_digits(0.0, 0.0, reference)
    if not math.isinf(truth) and truth >= cap:
        truth = 17.0
    nearest = {"method": best["method"], "scheme": best["scheme"], "rtol": best["rtol"], "digits": best_digits}
    matched = math.isinf(best_digits) or (best_digits >= MATCH_MIN_DIGITS and best_digits >= min(truth, 17.0) + 1.0)
    where = " ".join(scope)
    if not matched:
        distance = stable_norm(gradient - best["gradient"]) / max(stable_norm(best["gradient"]), 1e-300)
        text = (f"matches none of symsens' methods{(' ' + where) if where else ''}: the nearest is "
                f"{_setting_words(best)}, relative distance {distance:.2g} ({best_digits:.1f} digits)")
        if truth >= best_digits:
            near = ("exactly" if math.isinf(shown_truth) else f"{shown_truth:.1f} digits"
                    + (", as far as the reference can tell" if shown_truth >= cap else ""))
            text += f"; it is nearer to the true gradient ({near}) than to any of them"
        return {**empty, "match_digits": best_digits, "nearest": nearest, "identification": text}
    # Methods the audit cannot tell apart from the best one: as near to the external, and as near to the best.
    # An exact match is told apart from methods that agree with it to rounding only by its bits; say so.
    twins = []
    for digits, _, row in scored:
        if row is best:
            continue
        mutual = agreement_digits(row["gradient"], best["gradient"])
        if math.isinf(best_digits):
            if mutual >= EXACT_TWIN_DIGITS:
                twins.append((row, mutual))
        elif digits >= best_digits - 1.0 and mutual >= min(best_digits, 17.0) - 1.0:
            twins.append((row, mutual))
    text = f"equals {_setting_words(best)}, {_digits_words(best_digits)}"
    if twins:
        names = ", ".join(f"{r['method']} with {r['scheme']}" for r, _ in twins)
        mutual = min(m for _, m in twins)
        verb = "agree" if len(twins) > 1 else "agrees"
        text += (f"; {names} {verb} with it {_digits_words(mutual)} at this setting, so only the exact equality "
                 "tells them apart (another computation of the same number would match both)"
                 if math.isinf(best_digits) else
                 f"; but {names} {verb} with it {_digits_words(mutual)} at this setting, so the match cannot tell "
                 "them apart")
    return {"identified_as": {"method": best["method"], "scheme": best["scheme"], "rtol": best["rtol"]},
            "match_digits": best_digits, "match_exact": math.isinf(best_digits), "nearest": nearest,
            "indistinguishable_from": [{"method": r["method"], "scheme": r["scheme"], "rtol": r["rtol"],
                                        "agreement_digits": m} for r, m in twins],
            "identification": text}


# -- verdicts ----------------------------------------------------------------------------------------------------
def _rate(tolerances: Sequence[float], errors: Sequence[float]) -> float | None:
    """The fitted d log(error) / d log(rtol) over the positive finite errors (two points suffice)."""
    pairs = [(t, e) for t, e in zip(tolerances, errors) if e is not None and math.isfinite(e) and e > 0]
    if len(pairs) < 2 or len({t for t, _ in pairs}) < 2:
        return None
    slope, _ = np.polyfit(np.log10([t for t, _ in pairs]), np.log10([e for _, e in pairs]), 1)
    return float(slope)


def external_verdict(evaluation: Evaluation, reference: ReferenceGradient, target_digits: float,
                     identification: dict[str, Any], rows: Sequence[dict[str, Any]], series: Sequence[Evaluation],
                     least_squares: bool, backward: dict[str, Any] | None = None) -> tuple[str, str, float | None]:
    """``(category, sentence, digits)`` of one external gradient, by the rules of
    :func:`symsens.audit._verdict.verdict` with the evidence an external gradient brings: its gradient, its loss
    (when given), its tolerances (a callable: several) and what it was identified as.

    1. failed; 2. the true gradient is exactly 0 and this one is exactly 0: uninformative; 3. accurate to d
    digits; 4. identified as a symsens run that is not accurate: that run's cause (the mechanism is the same:
    the two agree to more digits than either agrees with the truth); 5. against an exact 0 with a positive loss
    (least squares): biased by the loss floor (its whole gradient ``sum_k 2 r_k S_k`` is made by its residuals);
    6. inaccurate, with the convergence over its tolerances, or what one point cannot tell.

    ``backward`` (for a backsolve external): ``{"max_rate", "time_of_max", "span"}``, the largest growth rate
    ``max Re(-lambda)`` of the backward state solve along the forward solution and the span it runs over.  An
    failed backsolve gradient whose backward solve can amplify errors more than a hundredfold
    (``exp(rate * span) > 100``) has those numbers in its message; an inaccurate one is "biased by the unstable
    backward solve" when its relative error is also above ``BACKSOLVE_FACTOR`` (100) times its rtol (an error near
    the tolerance is truncation, whatever the backward growth).
    """
    from ._verdict import BACKSOLVE_FACTOR, accurate_digits

    unstable = _backward_text(backward)
    if evaluation.gradient is None:
        if unstable is not None:
            return "failed", f"failed: {evaluation.message}; {unstable}", None
        return "failed", f"failed: {evaluation.message}", None
    relative, absolute = gradient_error(evaluation.gradient, reference)
    digits = accurate_digits(relative, absolute, reference)
    error_text = (f"relative error {relative:.2g}" if relative is not None else
                  f"|gradient| {absolute:.3g} where the true gradient is 0")
    loss_text = ""
    if evaluation.loss is not None and math.isfinite(reference.loss):
        difference = evaluation.loss - reference.loss
        scale = abs(reference.loss)
        loss_text = (f"; its loss {evaluation.loss:.6g} against the true {reference.loss:.6g}"
                     + (f" (relative difference {abs(difference) / scale:.2g})" if scale > 0 else ""))
        if scale > 0 and abs(difference) > 0.1 * scale:
            loss_text += (" — more than 10% off: check that it computes the same loss (the times, outputs and "
                          "targets of loss_data)")
    if reference.exact and absolute == 0.0:
        return "uninformative", ("exact 0, as the true gradient, but uninformative: a solve that reproduces its own "
                                 "targets has a zero gradient whatever its sensitivities; audit at shifted parameters "
                                 "to judge them" + loss_text), digits
    if digits >= target_digits:
        head = "exact: equal to the true gradient" if math.isinf(digits) else f"accurate to {int(digits)} digits"
        if len(series) == 1 and evaluation.rtol is not None:
            head += f" (at rtol {evaluation.rtol:g}, the one tolerance given)"
        return "accurate", head + loss_text, digits
    # Unstable only where the error is beyond what its tolerance explains (an error near rtol is truncation).
    if unstable is not None and (evaluation.rtol is None or relative is None
                                 or relative > BACKSOLVE_FACTOR * evaluation.rtol):
        return "backsolve-instability", f"biased by the unstable backward solve: {unstable}; {error_text}{loss_text}", digits
    match = identification.get("identified_as")
    if match is not None:
        row = next((r for r in rows if not r.get("external") and r["method"] == match["method"]
                    and r["scheme"] == match["scheme"] and r["rtol"] == match["rtol"]), None)
        if row is not None and row["category"] not in ("accurate", "uninformative", "zero-to-rounding", "failed"):
            # The same cause: the two agree to more digits than either agrees with the truth.
            head, _, rest = str(row["verdict"]).partition(": ")
            # Its own error replaces the matched run's (wherever that run's sentence put it).
            detail = "; ".join(part for part in rest.split("; ") if not part.startswith(("relative error", "|gradient|")))
            return row["category"], (f"{head} (the cause found for {row['method']} with {row['scheme']} at rtol "
                                     f"{row['rtol']:g}, which this gradient equals "
                                     f"{_digits_words(identification['match_digits'])})"
                                     + (f": {detail}" if detail else "") + f"; {error_text}{loss_text}"), digits
    if reference.exact and least_squares and evaluation.loss is not None and evaluation.loss > 0:
        return "loss-floor", (f"biased by the loss floor: its loss {evaluation.loss:.3g} where the true loss is 0, so "
                              "its whole gradient sum_k 2 r_k S_k is made by its residuals r_k; "
                              f"{error_text}"), digits
    tolerances = [e.rtol for e in series if e.gradient is not None and e.rtol is not None]
    if len(tolerances) >= 2:
        errors = []
        for e in series:
            if e.gradient is None or e.rtol is None:
                continue
            rel, ab = gradient_error(e.gradient, reference)
            errors.append(rel if rel is not None else ab)
        rate = _rate(tolerances, errors)
        ordered = sorted(zip(tolerances, errors), reverse=True)
        if rate is not None and rate > 0.3 and ordered[-1][1] < ordered[0][1]:
            return "inaccurate", (f"inaccurate: {error_text} (truncation error: it converges as the tolerance shrinks, "
                                  f"fitted rate {rate:.2g} over rtol {ordered[0][0]:g} to {ordered[-1][0]:g})"
                                  + loss_text), digits
        rate_text = f" (fitted rate {rate:.2g})" if rate is not None else ""
        return "inaccurate", (f"inaccurate: {error_text}, and it does not converge as the tolerance shrinks"
                              f"{rate_text} from rtol {ordered[0][0]:g} to {ordered[-1][0]:g}: a bias that no "
                              "tolerance removes (another loss, or a method that converges to something else)"
                              + loss_text), digits
    at = f"at rtol {evaluation.rtol:g}" if evaluation.rtol is not None else "at an unknown tolerance"
    return "inaccurate", (f"inaccurate: {error_text} {at}; from one tolerance the audit cannot tell truncation error "
                          "(which shrinks with the tolerance) from a bias (which does not): give a callable, or "
                          "gradients at two or more tolerances" + loss_text), digits


#: A backward solve that can amplify errors by more than this factor is called unstable.
BACKWARD_AMPLIFICATION = 100.0


def _backward_text(backward: dict[str, Any] | None) -> str | None:
    """What the backward state solve does to errors, when it amplifies them more than
    :data:`BACKWARD_AMPLIFICATION`-fold (None otherwise, or without the numbers)."""
    if not backward or backward.get("max_rate") is None or backward.get("span") is None:
        return None
    rate, span = float(backward["max_rate"]), float(backward["span"])
    if not (rate > 0 and rate * span > math.log(BACKWARD_AMPLIFICATION)):
        return None
    where = f" (at t = {backward['time_of_max']:.6g})" if backward.get("time_of_max") is not None else ""
    return (f"it re-solves the state backwards, where the decaying modes of the forward problem grow: growth rate up "
            f"to {rate:.3g} per unit time{where} over a span of {span:.3g} (amplification up to about "
            f"exp({rate * span:.3g}))")


def external_rows(externals: Sequence[tuple[str, ExternalGradient]], evaluations: Sequence[Sequence[Evaluation]],
                  own_rows: Sequence[dict[str, Any]], reference: ReferenceGradient, target_digits: float,
                  least_squares: bool, backward: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One result row per external evaluation, with the keys of symsens' rows, the verdict and the identification
    (``backward``: the backward state solve's growth, for backsolve externals)."""
    from ._audit import _adjoint_fields

    rows = []
    for (name, external), series in zip(externals, evaluations):
        for evaluation in series:
            identification = identify(evaluation.gradient, evaluation.rtol, external.scheme, own_rows, reference)
            category, sentence, digits = external_verdict(evaluation, reference, target_digits, identification,
                                                          own_rows, series, least_squares,
                                                          backward if external.backsolve else None)
            relative, absolute = gradient_error(evaluation.gradient, reference)
            loss_error = None
            if evaluation.loss is not None and math.isfinite(reference.loss):
                loss_error = abs(evaluation.loss - reference.loss) / abs(reference.loss) if reference.loss != 0 else \
                    abs(evaluation.loss)
            rows.append({
                "method": name, "scheme": external.scheme or "external", "rtol": evaluation.rtol,
                "atol": evaluation.atol, "gradient": evaluation.gradient, "reference_gradient": reference.gradient,
                "relative_error": relative, "absolute_error": absolute, "digits": digits,
                "exact": digits is not None and math.isinf(digits), "verdict": sentence, "category": category,
                "loss": evaluation.loss, "seconds": evaluation.seconds, "work": None, "steps": None,
                "rejected_steps": None, **_adjoint_fields(None, None),
                "external": True, "solver": external.solver, "source": external.source,
                "loss_error": loss_error, "tolerances_given": len(series), **identification,
            })
    return rows


# -- the answer ------------------------------------------------------------------------------------------------
def external_label(row: dict[str, Any]) -> str:
    """``jax (diffrax Tsit5) at rtol 1e-06``: an external gradient's name, what ran, its tolerance."""
    what = row.get("solver") or (row["scheme"] if row["scheme"] != "external" else None)
    return (f"{row['method']}" + (f" ({what})" if what else "")
            + (f" at rtol {row['rtol']:g}" if row["rtol"] is not None else " (rtol unknown)"))


def true_gradient_text(parameters: Sequence[str], gradient: np.ndarray, exact: bool, verified: bool,
                       shown: int = 8) -> str:
    """``the true gradient is (k: -0.1234568, c: 0.5) (verified)`` with at most ``shown`` components."""
    if exact and not np.any(gradient):
        return "the true gradient is exactly 0"
    parts = [f"{name}: {value:.7g}" for name, value in list(zip(parameters, np.asarray(gradient, dtype=float)))[:shown]]
    if len(parameters) > shown:
        parts.append(f"... {len(parameters) - shown} more in report.json")
    state = "exact" if exact else ("verified" if verified else "not fully verified")
    return f"the true gradient is ({', '.join(parts)}) ({state})"


def external_answer(row: dict[str, Any], parameters: Sequence[str], reference_gradient: np.ndarray, exact: bool,
                    verified: bool, target_digits: float, advice: dict[str, Any],
                    cheapest_text: str) -> dict[str, Any]:
    """The one-sentence answer about an external gradient: trustworthy or not, to how many digits, why not, what it
    was identified as, and the true gradient."""
    from ._verdict import CAUSES

    yours = f"your gradient {external_label(row)}"
    category, digits = row["category"], row["digits"]
    truth = true_gradient_text(parameters, reference_gradient, exact, verified)
    identification = row.get("identification")
    cause = None
    if category == "accurate":
        trustworthy: bool | None = True
        text = f"Yes: {yours} is trustworthy {_digits_words(digits) if math.isinf(digits) else f'to {int(digits)} digits'}"
    elif category == "uninformative":
        trustworthy = None
        text = (f"Cannot tell at these parameters: {yours} is 0 as the true gradient, but a solve that reproduces its "
                "own targets gives 0 whatever its sensitivities; audit at shifted parameters to judge it")
    elif category == "failed":
        trustworthy = False
        text = f"No: {yours} {row['verdict']}"
    else:
        trustworthy = False
        one_point = "from one tolerance the audit cannot tell" in row["verdict"]
        cause = ("cannot be told from one tolerance (truncation error or a bias: give a callable or gradients at "
                 "two or more tolerances)" if one_point else
                 "a bias that no tolerance removes" if "does not converge" in row["verdict"] else
                 CAUSES.get(category, category))
        size = (f"has {digits:.1f} correct digits (relative error {row['relative_error']:.2g})"
                if row["relative_error"] is not None and digits > 0 else
                f"has no correct digit (relative error {row['relative_error']:.2g})" if row["relative_error"] is not None
                else None)
        if size is None:
            text = f"No: {yours} is {row['absolute_error']:.3g} in norm where the true gradient is 0; main cause: {cause}"
        else:
            text = f"No: {yours} {size}, fewer than the {target_digits:g} asked for; main cause: {cause}"
    if identification:
        text += f"; it {identification}"
    text += f"; {truth}"
    if trustworthy is not True and advice.get("found"):
        text += f"; {cheapest_text}"
    return {"text": text + ".", "trustworthy": trustworthy, "digits": digits, "category": category, "cause": cause,
            "setting": {"external": row["method"], "scheme": row["scheme"], "rtol": row["rtol"]},
            "cheapest": advice.get("choice") if advice.get("found") else None,
            "identified_as": row.get("identified_as")}


def first_external_row(rows: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """The row the answer is about: the external's loosest tolerance (its only one when fixed)."""
    mine = [r for r in rows if r.get("external") and r["method"] == name]
    with_rtol = [r for r in mine if r["rtol"] is not None]
    return max(with_rtol, key=lambda r: r["rtol"]) if with_rtol else mine[0]


#: The tools whose adjoint re-solves the state backwards (torchdiffeq's odeint_adjoint, diffrax's BacksolveAdjoint).
BACKSOLVE_TOOLS: frozenset[str] = frozenset({"diffrax-backsolve", "torchdiffeq-adjoint"})


def tool_externals(tools: Sequence[str] | None, model: Model, plan: LossPlan, data: LossData,
                   t_span: tuple[float, float], taken: Sequence[str]) -> tuple[tuple[str, ExternalGradient], ...]:
    """Each tool of :mod:`symsens.bridges` as an external callable (``gradient_provider``), named by the tool."""
    if not tools:
        return ()
    if isinstance(tools, str):
        raise ValueError("`tools` must be a sequence of tool names, not a string")
    from .. import bridges

    known = tuple(getattr(bridges, "TOOLS", ()))
    out = []
    for tool in tools:
        if not isinstance(tool, str) or tool not in known:
            raise ValueError(f"`tools`: unknown tool {tool!r}; known: {', '.join(known) or 'none'}")
        if tool in taken or any(name == tool for name, _ in out):
            raise ValueError(f"`tools`: the name {tool!r} is used twice")
        if data.times is None:
            raise ValueError(f"`tools`: the tool {tool!r} needs a loss with fixed times; {_STEPS_GRID_MESSAGE}")
        try:
            provider = bridges.gradient_provider(tool, model, plan, times=np.asarray(data.times, dtype=float),
                                                 targets=None if data.targets is None else np.asarray(data.targets),
                                                 t_span=t_span)
        except ValueError as error:
            raise ValueError(f"`tools`: {tool}: {error}") from None
        solver = getattr(provider, "solver", None)
        out.append((tool, ExternalGradient(function=_ToolCall(provider), solver=solver if isinstance(solver, str) else None,
                                           backsolve=tool in BACKSOLVE_TOOLS)))
    return tuple(out)


class _ToolCall:
    """A tool's gradient provider as an external callable: ``(p, rtol, atol=...) -> (loss, gradient)``."""

    def __init__(self, provider: Callable[..., Any]) -> None:
        self.provider = provider

    def __call__(self, p: np.ndarray, rtol: float, atol: float) -> Any:
        loss, gradient = self.provider(p, rtol, atol)
        return float(loss), np.asarray(gradient, dtype=float)


# -- the audit's hooks -----------------------------------------------------------------------------------------
def prepare_externals(model: Model, loss: AuditLoss, plan: LossPlan, external: Any, tools: Sequence[str] | None,
                      p: np.ndarray, parameters: tuple[str, ...], t_span: tuple[float, float], digits: int,
                      time_budget: float | None, use_cache: bool = True,
                      gradient_parameters: tuple[str, ...] | None = None,
                      ) -> tuple[AuditLoss, LossPlan, tuple[tuple[str, ExternalGradient], ...], dict[str, Any] | None]:
    """Check the externals, make the loss concrete for them and add the tools: ``(loss, plan, externals,
    loss data as JSON)``; without externals or tools everything is returned unchanged.  ``parameters``: the
    model parameters differentiated; ``gradient_parameters``: the externals' gradient order, when it differs
    (an audit with a :class:`~symsens.audit.ParameterMap`: its parameters)."""
    from ._methods import _plan

    externals = parse_externals(external, parameters if gradient_parameters is None else gradient_parameters)
    if tools is not None and isinstance(tools, str):
        raise ValueError("`tools` must be a sequence of tool names, not a string")
    if not externals and not tools:
        return loss, plan, (), None
    loss, data = concrete_loss(model, loss, plan, p, t_span, digits, time_budget, use_cache=use_cache)
    plan = _plan(model, loss, parameters, t_span)
    externals += tool_externals(tools, model, plan, data, t_span, [name for name, _ in externals])
    return loss, plan, externals, data.to_json_dict()


def report_loss_data(model: Model, loss: AuditLoss, plan: LossPlan, p: np.ndarray, t_span: tuple[float, float],
                     reference: ReferenceGradient) -> dict[str, Any] | None:
    """The loss data of an audit without externals, where they are fixed and known without another run (given
    data, expressions, or a fixed grid whose exact targets the reference made); None for a steps grid."""
    if isinstance(loss, TrajectoryLoss):
        if plan.steps_grid or reference.targets is None and not reference.exact:
            return None
        names = tuple(model.parameter_names)
        zero = reference.exact
        data = LossData(model.name, "least squares", loss.description, names, np.asarray(p, dtype=float), tuple(plan.parameters),
                        (float(t_span[0]), float(t_span[1])), np.asarray(plan.times, dtype=float), tuple(plan.output_names),
                        {n: str(model.output(n)) for n in plan.output_names if n in model.output_names},
                        None if zero else np.asarray(reference.targets, dtype=float), None, None, zero,
                        "at the data parameters the true gradient is exactly 0: targets from your own solve at these "
                        "parameters" if zero else "targets: the model's outputs at the data parameters from the "
                        "reference solve (symsens' own runs fit their own solve's outputs there; with external "
                        "gradients every run fits these)")
        return data.to_json_dict()
    return concrete_loss(model, loss, plan, p, t_span, 8)[1].to_json_dict()


def external_results(externals: Sequence[tuple[str, ExternalGradient]], rows: list[dict[str, Any]], p: np.ndarray,
                     parameters: Sequence[str], tolerances: Sequence[float], atol_of: Callable[[float], float],
                     reference: ReferenceGradient, plan: LossPlan, target_digits: float, advice: dict[str, Any],
                     answer: dict[str, Any] | None, user_record: dict[str, Any],
                     progress: Callable[[str], None] | None = None, backward: dict[str, Any] | None = None
                     ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Evaluate every external gradient, add its rows (verdict, identification) after symsens' own, and answer
    about the first external unless ``answer`` (the user's own setting's) is given (``backward``: the backward
    state solve's growth, ``{"max_rate", "time_of_max", "span"}``, for backsolve externals)."""
    from ._verdict import _cheapest_text

    own = [dict(row, external=False) for row in rows]
    evaluations = []
    for name, external in externals:
        evaluations.append(evaluate(name, external, p, tolerances, atol_of, parameters))
        if progress is not None:
            progress(f"external {name}")
    least_squares = plan.kind == "pointwise" and bool(plan.output_names)
    added = external_rows(externals, evaluations, own, reference, target_digits, least_squares, backward)
    if answer is None:
        row = first_external_row(added, externals[0][0])
        answer = external_answer(row, parameters, reference.gradient, reference.exact, reference.verified,
                                 target_digits, advice, _cheapest_text(advice, own, target_digits))
        user_record = {"method": row["method"], "scheme": row["scheme"], "rtol": row["rtol"], "external": True}
    return own + added, answer, user_record
