"""The losses an audit differentiates, and how each is evaluated on a solver's output.

Four kinds, each a frozen dataclass (picklable, so sweeps can ship them to other processes):

* :class:`TrajectoryLoss` — least squares against the model's own nominal trajectory, on a fixed grid or on
  the grid of the nominal solve's own accepted steps (``grid="steps"``), re-solved with output at those
  times: the bursting-neuron experiment of docs/audit.md.  At the data parameters the true loss and gradient are exactly 0.
* :class:`DataLoss` — least squares against observed outputs (arrays, or a CSV file of time + outputs).
* :class:`IntegralLoss` — ``int_{t0}^{t1} l(t, y, p) dt`` for an expression ``l`` (e.g. ``"V^2"``),
  integrated as a quadrature state.
* :class:`ExpressionLoss` — a custom pointwise expression of states and outputs summed over given times,
  e.g. the ``[loss]`` table of a model file.

Each kind is turned into a :class:`LossPlan` for one model: the exact chain-rule pieces from
:func:`symsens.derive.loss_gradient` (``dl/dy``, ``dl/dp`` as SymPy, evaluated with NumPy) and the data.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from .._checks import output_times
from .._errors import ModelError
from ..derive import integral_loss, least_squares, loss_gradient, pointwise_loss
from ..derive._numeric import numpy_function
from ..model import Model

__all__ = [
    "TrajectoryLoss", "DataLoss", "IntegralLoss", "ExpressionLoss", "AuditLoss", "LossPlan", "loss_plan",
    "parse_loss", "loss_from_model_file", "fit_loss", "DATA_SHIFT", "data_parameters_at", "data_fit_series",
]


def _names(values: Sequence[str] | str | None, what: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise ValueError(f"`{what}` must be a sequence of names, not a string")
    return tuple(values)


def _time_grid(values: Any, what: str) -> tuple[float, ...]:
    return tuple(float(v) for v in output_times(values, what))


@dataclass(frozen=True)
class TrajectoryLoss:
    """``L(p) = sum_k sum_i (g_i(t_k, y(t_k; p)) - g_i(t_k, y(t_k; p_data)))^2``: a fit to the model's own trajectory.

    Attributes
    ----------
    outputs : names of states or outputs compared (default: every state).
    grid : ``"steps"`` (the accepted step times of each solver setting's own nominal solve) or
        a sequence of times.
    data_parameters : the parameter values that make the nominal trajectory (default: the model's nominal
        values).  At ``p = data_parameters`` the true loss and its gradient are exactly 0.
    note : how the data parameters were chosen, appended to :attr:`description` (e.g. by :func:`fit_loss`).
    """

    outputs: tuple[str, ...] | None = None
    grid: Union[Literal["steps"], tuple[float, ...]] = "steps"
    data_parameters: tuple[tuple[str, float], ...] | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", _names(self.outputs, "outputs"))
        if isinstance(self.grid, str):
            if self.grid != "steps":
                raise ValueError(f"`grid` must be \"steps\" or a sequence of times, got {self.grid!r}")
        else:
            object.__setattr__(self, "grid", _time_grid(self.grid, "grid"))
        if isinstance(self.data_parameters, Mapping):
            object.__setattr__(self, "data_parameters", tuple((str(k), float(v)) for k, v in self.data_parameters.items()))

    @property
    def description(self) -> str:
        where = "the nominal solve's own step times" if self.grid == "steps" else f"{len(self.grid)} given times"
        what = "every state" if self.outputs is None else ", ".join(self.outputs)
        if not self.data_parameters:
            text = f"least squares of {what} against the nominal trajectory at {where}"
        else:
            shown = [f"{name} = {value:.6g}" for name, value in self.data_parameters]
            if len(shown) > 6:
                shown = shown[:5] + [f"and {len(shown) - 5} more"]
            text = (f"least squares of {what} against data made by the model at {', '.join(shown)} (other parameters "
                    f"nominal), at {where}")
        return text if not self.note else f"{text}; {self.note}"


#: The default data shift of :func:`fit_loss`: the data are made with each differentiated parameter times this.
DATA_SHIFT = 1.05


def data_parameters_at(model: Model, p_data: np.ndarray) -> tuple[tuple[str, float], ...]:
    """``p_data`` (every parameter, model order) as a :class:`TrajectoryLoss`'s ``data_parameters``: the entries
    that differ from the model's nominal values."""
    nominal = np.asarray(model.parameter_values, dtype=float)
    return tuple((name, float(value)) for name, value, base in zip(model.parameter_names, p_data, nominal)
                 if float(value) != float(base))


def fit_loss(model: Model, parameters: Sequence[str] | None = None, p: Any = None,
             p_data: Mapping[str, float] | None = None, outputs: Sequence[str] | None = None,
             grid: Sequence[float] | None = None, t_span: tuple[float, float] | None = None,
             points: int = 100) -> TrajectoryLoss:
    """The default loss of ``symsens audit`` for a model without data: a least-squares fit against data the model
    makes at other parameters, so the true gradient is not 0 and every method can be ranked.

    Rule: the data are made at the audited point ``p`` (default: the nominal values) with each differentiated
    parameter (``parameters``, default all) multiplied by :data:`DATA_SHIFT` (1.05; a parameter whose value is 0
    stays 0).  ``p_data`` (name -> value) chooses the data parameters instead: the listed ones take the given
    values, the others the audited point's.  The compared quantities are the model's outputs if it declares any,
    else every state (``outputs`` chooses), at ``points`` equally spaced times after ``t0`` up to ``t1``
    (``grid`` chooses).  The returned loss says all this in its description.
    """
    from .._checks import parameter_selection, parameter_values, time_span

    span = time_span(t_span, model.t_span)
    chosen = parameter_selection(model, parameters)
    point = parameter_values(model, p)
    data = point.copy()
    if p_data:
        unknown = [name for name in p_data if name not in model.parameter_names]
        if unknown:
            raise ValueError(f"`p_data`: unknown parameter {unknown[0]!r}; the model's: {', '.join(model.parameter_names)}")
        for name, value in p_data.items():
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"`p_data`: {name} = {value!r} is not finite")
            data[model.parameter_names.index(name)] = value
        note = "data parameters chosen by the user"
    else:
        for name in chosen:
            data[model.parameter_names.index(name)] *= DATA_SHIFT
        note = (f"the data are made with each differentiated parameter x {DATA_SHIFT:g} (the default for a model "
                "without data, so that the true gradient is not 0)")
    if np.array_equal(data, point):
        raise ValueError("`p_data`: the data parameters equal the audited ones, so the true gradient is 0; "
                         "choose other values (the zero-gradient experiment is the `trajectory` loss)")
    if outputs is None:
        outputs = tuple(model.output_names) or None
    if grid is None:
        if not (isinstance(points, int) and points >= 1):
            raise ValueError(f"`points` must be a positive integer, got {points!r}")
        grid = tuple(float(t) for t in np.linspace(span[0], span[1], points + 1)[1:])
    return TrajectoryLoss(outputs=outputs, grid=tuple(grid), data_parameters=data_parameters_at(model, data), note=note)


@dataclass(frozen=True)
class DataLoss:
    """``L(p) = sum_k sum_i w_i (g_i(t_k, y(t_k; p)) - d_ki)^2`` against observed data."""

    times: tuple[float, ...]
    observed: tuple[tuple[float, ...], ...]   # K x m
    outputs: tuple[str, ...]
    weights: tuple[float, ...] | None = None
    source: str = "arrays"

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", _time_grid(self.times, "times"))
        outputs = _names(self.outputs, "outputs")
        if not outputs:
            raise ValueError("`outputs` must name at least one state or output")
        object.__setattr__(self, "outputs", outputs)
        observed = np.asarray(self.observed, dtype=float)
        if observed.ndim == 1 and len(outputs) == 1:
            observed = observed[:, None]
        if observed.shape != (len(self.times), len(outputs)):
            raise ValueError(f"`observed` must have shape ({len(self.times)}, {len(outputs)}), got {observed.shape}")
        if not np.all(np.isfinite(observed)):
            raise ValueError("`observed` contains NaN or infinite values")
        object.__setattr__(self, "observed", tuple(tuple(float(v) for v in row) for row in observed))
        if self.weights is not None:
            weights = tuple(float(w) for w in self.weights)
            if len(weights) != len(outputs) or not all(math.isfinite(w) and w >= 0 for w in weights):
                raise ValueError(f"`weights` must be {len(outputs)} finite non-negative numbers")
            object.__setattr__(self, "weights", weights)

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], weights: Sequence[float] | None = None) -> "DataLoss":
        """Read a CSV file whose header is ``t`` (or ``time``) followed by state or output names."""
        source = os.fspath(path)
        try:
            with open(source, newline="", encoding="utf-8-sig") as handle:
                rows = [row for row in csv.reader(handle) if row and not row[0].lstrip().startswith("#")]
        except OSError as error:
            raise ValueError(f"cannot read data file {source!r}: {error.strerror or error}") from None
        if len(rows) < 2:
            raise ValueError(f"data file {source!r} needs a header row and at least one data row")
        header = [h.strip() for h in rows[0]]
        if header[0].lower() not in ("t", "time") or len(header) < 2:
            raise ValueError(f"data file {source!r}: the header must be `t` followed by output names, got {header}")
        values = []
        for number, row in enumerate(rows[1:], start=2):
            if len(row) != len(header):
                raise ValueError(f"data file {source!r}, line {number}: {len(row)} columns, expected {len(header)}")
            try:
                values.append([float(v) for v in row])
            except ValueError:
                raise ValueError(f"data file {source!r}, line {number}: a value is not a number") from None
        array = np.asarray(values)
        return cls(tuple(array[:, 0]), tuple(map(tuple, array[:, 1:])), tuple(header[1:]), weights, source=source)

    @property
    def description(self) -> str:
        return f"least squares of {', '.join(self.outputs)} against {len(self.times)} observations ({self.source})"


@dataclass(frozen=True)
class IntegralLoss:
    """``L(p) = int_{t0}^{t1} l(t, y(t; p), p) dt``; ``expression`` in the model language, e.g. ``"V^2"``."""

    expression: str

    @property
    def description(self) -> str:
        return f"integral of {self.expression} over the time span"


@dataclass(frozen=True)
class ExpressionLoss:
    """``L(p) = sum_k l(t_k, y(t_k; p), p)`` for a model-language expression ``l`` at the given times."""

    expression: str
    times: tuple[float, ...]
    name: str = "loss"

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", _time_grid(self.times, "times"))

    @property
    def description(self) -> str:
        return f"sum of {self.expression} over {len(self.times)} times"


AuditLoss = Union[TrajectoryLoss, DataLoss, IntegralLoss, ExpressionLoss]


@dataclass(frozen=True, eq=False)
class LossPlan:
    """One loss made concrete for one model: what to solve, where to output, and the exact chain rule.

    ``kind`` is ``"pointwise"`` (``L = sum_k l_k``) or ``"integral"`` (``L = q(t1)``, ``q`` the last state of
    :attr:`solve_model`).  For pointwise losses, :meth:`value_and_gradient` evaluates
    ``L`` and ``dL/dp = sum_k (dl/dy)_k S_k + (dl/dp)_k`` from the exact SymPy derivatives.
    """

    loss: AuditLoss
    kind: Literal["pointwise", "integral"]
    model: Model                      # the user's model
    solve_model: Model                # what the solvers integrate (quadrature-augmented for integral losses)
    parameters: tuple[str, ...]
    times: tuple[float, ...] | None   # fixed output grid; None with grid="steps" (per solver setting) or integral
    data: np.ndarray | None           # K x m observed values for DataLoss (None otherwise)
    output_names: tuple[str, ...]     # for least squares: what is compared
    _functions: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def steps_grid(self) -> bool:
        return isinstance(self.loss, TrajectoryLoss) and self.loss.grid == "steps"

    def outputs_of(self, t: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The compared quantities ``g(t_k, y_k, p)`` (K x m) of a least-squares loss."""
        function = self._functions.get("g")
        if function is None:
            m = self.model
            expressions = [m.symbol(name) if name in m.state_names else m.output(name) for name in self.output_names]
            function = numpy_function(expressions, [m.time, *m.states, *m.parameters])
            self._functions["g"] = function
        n = self.model.n_states
        args = [t, *(y[:, i] for i in range(n)), *(np.full(len(t), v) for v in p)]
        return function(*args).T

    def value_and_gradient(
        self, t: np.ndarray, y: np.ndarray, sensitivities: np.ndarray | None, p: np.ndarray, data: np.ndarray | None,
    ) -> tuple[float, np.ndarray | None]:
        """``(L, dL/dp)`` from a solution at the output times (``data``: K x m targets of least squares)."""
        if self.kind == "integral":
            value = float(y[-1, -1])
            return value, (None if sensitivities is None else np.asarray(sensitivities[-1, -1, :], dtype=float))
        value_function, dl_dy_function, dl_dp_function, _ = self._chain()
        args = self._arguments(t, y, p, data)
        value = float(np.sum(value_function(*args)[0]))
        if sensitivities is None:
            return value, None
        dl_dy = dl_dy_function(*args)  # n x K
        dl_dp = dl_dp_function(*args)  # P x K
        n = self.model.n_states
        gradient = np.einsum("ik,kij->j", dl_dy, np.asarray(sensitivities)[:, :n, :]) + dl_dp.sum(axis=1)
        return value, gradient

    def dl_dy(self, t: np.ndarray, y: np.ndarray, p: np.ndarray, data: np.ndarray | None) -> np.ndarray:
        """``(dl/dy)_k`` at the output times (K x n), pointwise losses only."""
        return self._chain()[1](*self._arguments(t, y, p, data)).T

    def residual_contributions(
        self, t: np.ndarray, y: np.ndarray, sensitivities: np.ndarray, p: np.ndarray, data: np.ndarray | None,
    ) -> np.ndarray:
        """Per output time ``k``: the term ``(dl/dy)_k S_k`` of the gradient (K x P), pointwise losses only."""
        n = self.model.n_states
        return np.einsum("ki,kij->kj", self.dl_dy(t, y, p, data), np.asarray(sensitivities)[:, :n, :])

    def _arguments(self, t: np.ndarray, y: np.ndarray, p: np.ndarray, data: np.ndarray | None) -> list[np.ndarray]:
        """The NumPy functions' arguments: t, the states, the parameters (broadcast) and the data columns."""
        n_data = self._chain()[3]
        K = len(t)
        columns = np.zeros((K, 0)) if data is None else np.asarray(data, dtype=float).reshape(K, n_data)
        return [t, *(y[:, i] for i in range(self.model.n_states)), *(np.full(K, v) for v in p),
                *(columns[:, i] for i in range(n_data))]

    def _chain(self) -> tuple[Any, Any, Any, int]:
        pieces = self._functions.get("chain")
        if pieces is None:
            pieces = _chain_rule(self)
            self._functions["chain"] = pieces
        return pieces


def _chain_rule(plan: LossPlan) -> tuple[Any, Any, Any, int]:
    m = plan.model
    if isinstance(plan.loss, ExpressionLoss):
        derived = pointwise_loss(m, plan.loss.expression, name=plan.loss.name)
    else:
        weights = plan.loss.weights if isinstance(plan.loss, DataLoss) else None
        derived = least_squares(m, plan.output_names, weights=weights)
    pieces = loss_gradient(m, derived, plan.parameters)
    arguments = [m.time, *m.states, *m.parameters, *derived.data_symbols]
    return (
        numpy_function([derived.expression], arguments),
        numpy_function(list(pieces.dl_dy), arguments),
        numpy_function(list(pieces.dl_dp), arguments),
        len(derived.data_symbols),
    )


def data_fit_series(plan: LossPlan, times: np.ndarray | None, targets: np.ndarray | None,
                    trajectory: tuple[np.ndarray, np.ndarray] | None, p: np.ndarray) -> dict[str, Any] | None:
    """What the data-vs-fit figure draws for a least-squares loss against data (a :class:`DataLoss`, or a
    :class:`TrajectoryLoss` with data parameters, as :func:`fit_loss` makes): the compared quantities' names,
    the data (``times``, ``targets``: K x m) and the model's trajectory at the audited parameters ``p``
    (``trajectory``: the times and states of a solve over the span), mapped through the compared quantities.
    None for other losses, or when a piece is missing."""
    loss = plan.loss
    if not (isinstance(loss, DataLoss) or (isinstance(loss, TrajectoryLoss) and loss.data_parameters)):
        return None
    if times is None or targets is None or trajectory is None or not plan.output_names:
        return None
    t, y = np.asarray(trajectory[0], dtype=float), np.asarray(trajectory[1], dtype=float)
    return {"names": tuple(plan.output_names), "t_data": np.asarray(times, dtype=float),
            "data": np.asarray(targets, dtype=float).reshape(len(times), len(plan.output_names)),
            "t": t, "model": np.asarray(plan.outputs_of(t, y[:, : plan.model.n_states], p), dtype=float),
            "source": loss.source if isinstance(loss, DataLoss) else "made by the model at the data parameters"}


def _check_outputs(model: Model, names: Sequence[str]) -> None:
    for name in names:
        if name not in model.state_names and name not in model.output_names:
            import difflib

            known = [*model.state_names, *model.output_names]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise ValueError(f"loss: {name!r} is neither a state nor an output of model {model.name!r}{hint}")


def loss_plan(model: Model, loss: AuditLoss, parameters: Sequence[str], t_span: tuple[float, float]) -> LossPlan:
    """Check ``loss`` against ``model`` and ``t_span`` and build its :class:`LossPlan` (with its NumPy functions
    built eagerly, so that threads sharing a plan never derive them concurrently)."""
    plan = _loss_plan(model, loss, parameters, t_span)
    if plan.kind == "pointwise":
        plan._chain()
        if plan.output_names:
            plan.outputs_of(np.zeros(1), np.zeros((1, model.n_states)), np.asarray(model.parameter_values, dtype=float))
    return plan


def _loss_plan(model: Model, loss: AuditLoss, parameters: Sequence[str], t_span: tuple[float, float]) -> LossPlan:
    t0, t1 = t_span

    def inside(times: Sequence[float], what: str) -> None:
        if times[0] < t0 or times[-1] > t1:
            raise ValueError(f"loss: the {what} must lie inside t_span [{t0}, {t1}], got [{times[0]}, {times[-1]}]")

    if isinstance(loss, TrajectoryLoss):
        names = loss.outputs if loss.outputs is not None else model.state_names
        _check_outputs(model, names)
        if loss.data_parameters is not None:
            unknown = [k for k, _ in loss.data_parameters if k not in model.parameter_names]
            if unknown:
                raise ValueError(f"loss: unknown data parameter {unknown[0]!r}")
        times = None if loss.grid == "steps" else loss.grid
        if times is not None:
            inside(times, "grid")
        return LossPlan(loss, "pointwise", model, model, tuple(parameters), times, None, tuple(names))
    if isinstance(loss, DataLoss):
        _check_outputs(model, loss.outputs)
        inside(loss.times, "observation times")
        return LossPlan(loss, "pointwise", model, model, tuple(parameters), loss.times, np.asarray(loss.observed),
                        loss.outputs)
    if isinstance(loss, IntegralLoss):
        from ..derive import quadrature_model

        try:
            derived = integral_loss(model, loss.expression)
        except Exception as error:  # DerivationError / ModelError from the parser: name the loss
            raise ValueError(f"loss: {error}") from None
        return LossPlan(loss, "integral", model, quadrature_model(model, derived), tuple(parameters), None, None, ())
    if isinstance(loss, ExpressionLoss):
        try:
            pointwise_loss(model, loss.expression, name=loss.name)
        except Exception as error:
            raise ValueError(f"loss: {error}") from None
        inside(loss.times, "loss times")
        return LossPlan(loss, "pointwise", model, model, tuple(parameters), loss.times, None, ())
    raise TypeError(f"`loss` must be a TrajectoryLoss, DataLoss, IntegralLoss or ExpressionLoss, got {type(loss).__name__}")


def loss_from_model_file(path: str | os.PathLike[str]) -> ExpressionLoss | IntegralLoss:
    """The ``[loss]`` table of a model file: ``expression`` with ``times = [...]`` (pointwise) or ``kind = "integral"``."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    source = os.fspath(path)
    try:
        data = tomllib.loads(Path(source).read_text(encoding="utf-8-sig"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ModelError(f"cannot read the loss of model file: {error}", source=source) from None
    table = data.get("loss")
    if not isinstance(table, dict):
        raise ModelError("the model file has no [loss] table", source=source, name="loss")
    expression = table.get("expression")
    if not isinstance(expression, str):
        raise ModelError("[loss] needs `expression`, a string in the model language", source=source, name="expression")
    kind = table.get("kind", "pointwise")
    if kind == "integral":
        return IntegralLoss(expression)
    if kind != "pointwise":
        raise ModelError(f"[loss] kind must be \"pointwise\" or \"integral\", got {kind!r}", source=source, name="kind")
    times = table.get("times")
    if not isinstance(times, list) or not times or not all(isinstance(v, (int, float)) for v in times):
        raise ModelError("[loss] needs `times`, a non-empty list of numbers, for a pointwise loss", source=source,
                         name="times")
    return ExpressionLoss(expression, tuple(float(v) for v in times), name=str(table.get("name", "loss")))


def parse_loss(spec: str, model_path: str | None = None, model: Model | None = None,
               fit_options: Mapping[str, Any] | None = None) -> AuditLoss:
    """A loss from its command-line form.

    ``trajectory`` (least squares against the model's own nominal trajectory: at the data parameters the true
    gradient is exactly 0; also spelled ``trajectory-at-data``), ``trajectory:V,Ca`` (named states or outputs),
    ``trajectory:V@0:100:1001`` (a linspace grid instead of the step times), ``fit[:OUTPUTS][@START:STOP:COUNT]``
    (data made at shifted parameters, :func:`fit_loss`; needs ``model``), ``data:FILE.csv``, ``integral:EXPR``,
    ``model`` (the model file's ``[loss]`` table).  ``fit_options`` go to :func:`fit_loss` (``parameters``,
    ``p``, ``p_data``).
    """
    text = spec.strip()
    if text.startswith("trajectory-at-data"):
        text = "trajectory" + text[len("trajectory-at-data"):]
    if text.startswith("fit") and (len(text) == 3 or text[3] in ":@"):
        if model is None:
            raise ValueError("--loss fit needs the model")
        shape = parse_loss("trajectory" + text[3:])
        assert isinstance(shape, TrajectoryLoss)
        return fit_loss(model, outputs=shape.outputs, grid=None if shape.grid == "steps" else shape.grid,
                        **(fit_options or {}))
    if text.startswith("trajectory"):
        body, grid_text = text[len("trajectory"):], None
        if "@" in body:
            body, grid_text = body.split("@", 1)
        grid: Any = "steps"
        if grid_text is not None:
            parts = grid_text.split(":")
            try:
                start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
                if len(parts) != 3 or count < 1:
                    raise ValueError
            except (ValueError, IndexError):
                raise ValueError(f"--loss {spec!r}: the grid is @START:STOP:COUNT, e.g. trajectory@0:100:1001") from None
            grid = tuple(np.linspace(start, stop, count))
        if body and not body.startswith(":"):
            raise ValueError(f"--loss {spec!r}: expected trajectory[:OUTPUTS][@START:STOP:COUNT]")
        outputs = tuple(n.strip() for n in body[1:].split(",") if n.strip()) or None
        return TrajectoryLoss(outputs=outputs, grid=grid)
    head, _, rest = text.partition(":")
    if head == "data":
        if not rest:
            raise ValueError("--loss data:FILE.csv needs a file")
        return DataLoss.from_csv(rest)
    if head == "integral":
        if not rest:
            raise ValueError("--loss integral:EXPR needs an expression, e.g. integral:V^2")
        return IntegralLoss(rest)
    if head == "model":
        if model_path is None:
            raise ValueError("--loss model needs a model file (a built-in example has no [loss] table)")
        return loss_from_model_file(model_path)
    raise ValueError(f"--loss {spec!r}: expected fit[:OUTPUTS][@START:STOP:COUNT], trajectory[:OUTPUTS][@START:STOP:COUNT] "
                     "(also trajectory-at-data), data:FILE.csv, integral:EXPR or model")
