"""A PEtab v1 problem as a symsens model and loss: :func:`load` and :class:`PetabProblem`.

The construction (docs/petab.md has the full account):

* The estimated parameters become the model's parameters **on their estimation scale**: a ``log10``-scaled
  ``k`` is the parameter ``log10_k`` and the model uses ``10**log10_k`` wherever it used ``k``; so every
  gradient comes out in the estimation scale.  Fixed parameters (``estimate = 0``) and SBML parameters the
  parameter table does not list are constants.
* Every simulation condition (a pair pre-equilibration condition, simulation condition) is one independent
  copy of the state vector, with the condition table's overrides of parameters and initial values, in one
  :class:`~symsens.Model`; one solve serves all conditions.
* The negative log-likelihood of every measurement (PEtab's noise models, :mod:`symsens.petab._noise`) with
  its observable and noise placeholders filled in is summed per measurement time into the model's
  intermediate ``nll``, and the loss is ``ExpressionLoss("nll", times)``: the sum of ``nll`` over the measurement times.
  (``nll`` is a piecewise function of ``t`` that at each measurement time is the sum of the terms measured
  then; it is only ever evaluated at those times.)  So :func:`symsens.gradient`, :func:`symsens.true_gradient`
  and :func:`symsens.audit` apply unchanged.
* A copy with pre-equilibration starts from parameters ``<state>_<copy>_preequilibrated`` (initial values that
  are model parameters); :meth:`PetabProblem.objective` and :meth:`PetabProblem.gradient` set them to the
  steady state (:func:`symsens.petab.steady_state`) and chain its sensitivity into the gradient.
* :meth:`PetabProblem.objective`, :meth:`PetabProblem.simulate` and :meth:`PetabProblem.gradient` (its compiled
  sensitivity methods) take a lean path (:mod:`symsens.petab._lean`): the model without the intermediate ``nll``
  is solved once at the measurement times (one compiled library serves the plain solve and the gradient's
  sensitivities), and the NLL and its chain rule are evaluated in NumPy per measurement row from the closed-form
  noise terms
  (:func:`symsens.petab._noise.nll_and_partials`) and the exact derivatives of the observable and noise
  formulas.  The values equal those of :func:`symsens.gradient` on :attr:`PetabProblem.loss` to rounding;
  the audit (:meth:`PetabProblem.audit_arguments`) still differentiates ``loss`` as it is.
* Their default scheme, ``"auto"``, is chosen once per problem by a stiffness probe at the nominal point
  (:mod:`symsens.petab._scheme_choice`: ``tsit5`` for a non-stiff problem, ``bdf`` or ``rodas4`` for a stiff one)
  and recorded in :attr:`PetabProblem.scheme_choice`; an explicit ``scheme=`` always wins.
"""

from __future__ import annotations

import math
import os
import re
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import sympy as sp

from .._errors import ModelError
from ..audit._losses import ExpressionLoss
from ..model import Model
from ._noise import NOISE_DISTRIBUTIONS, TRANSFORMATIONS, negative_log_likelihood
from ._scheme_choice import SchemeChoice, choose_scheme
from ._steady import SteadyState, _Functions, steady_state
from ._tables import PetabError, PetabTables, number_or_none, read_tables

__all__ = ["load", "PetabProblem", "EstimatedParameter", "Measurement", "Preequilibration", "SCALES"]

#: PEtab v1 parameter scales and the map from the estimation scale to the parameter.
SCALES: tuple[str, ...] = ("lin", "log", "log10")

#: Default tolerances of :meth:`PetabProblem.objective` and :meth:`PetabProblem.gradient`.
DEFAULT_RTOL = 1e-8
#: The default ``scheme`` of :meth:`PetabProblem.objective`, :meth:`~PetabProblem.simulate` and the lean gradient:
#: chosen once per problem (:mod:`symsens.petab._scheme_choice`).
AUTO = "auto"


def _unscale(theta: sp.Expr, scale: str) -> sp.Expr:
    """The parameter from its value ``theta`` on the estimation scale.  ``10**theta`` is written
    ``exp(log(10) theta)`` (equal, and exact): SymPy keeps it so, and differentiates it without the symbolic-power
    rule that ``10**theta`` needs, which makes the loss's chain rule several times faster to derive."""
    return {"lin": theta, "log": sp.exp(theta), "log10": sp.exp(sp.log(10) * theta)}[scale]


def _exact(value: float) -> sp.Expr:
    """A table's decimal number exactly (its shortest round-trip decimal as a rational)."""
    return sp.Rational(repr(float(value)))


@dataclass(frozen=True)
class EstimatedParameter:
    """One estimated parameter: its PEtab id, the model parameter holding its estimation-scale value, the scale
    and the table's bounds and nominal value (on the linear scale, as the table gives them)."""

    id: str
    model_name: str
    scale: str
    lower_bound: float
    upper_bound: float
    nominal_value: float

    def to_scale(self, value: float) -> float:
        """The linear value ``value`` on this parameter's estimation scale (``-inf`` for 0 on a log scale)."""
        if self.scale == "lin":
            return value
        if value <= 0:
            return -math.inf
        return math.log(value) if self.scale == "log" else math.log10(value)

    @property
    def nominal_scaled(self) -> float:
        return self.to_scale(self.nominal_value)

    @property
    def bounds_scaled(self) -> tuple[float, float]:
        return self.to_scale(self.lower_bound), self.to_scale(self.upper_bound)


@dataclass(frozen=True)
class Measurement:
    """One row of the measurement table: where it is (``line``), what it measures, its terms (SymPy in the
    model's symbols: the simulated observable, the noise parameter and ``-log`` likelihood) and its noise model
    (``distribution``, ``transformation``: PEtab's ``noiseDistribution``, ``observableTransformation``)."""

    line: int
    observable_id: str
    condition: str
    time: float
    value: float
    simulated: sp.Expr = field(repr=False)
    sigma: sp.Expr = field(repr=False)
    nll: sp.Expr = field(repr=False)
    distribution: str = "normal"
    transformation: str = "lin"


@dataclass(frozen=True)
class Preequilibration:
    """A copy of the states that starts from the steady state of condition ``condition``.

    ``states``: indices of the copy's states in the model; ``initial_parameters``: the model parameters holding
    the pre-equilibrated initial values (None where the simulation condition sets the initial value itself);
    ``rhs``/``initial_conditions``: the model under the pre-equilibration condition, in the copy's states and
    the model's parameters.
    """

    copy: str
    condition: str
    states: tuple[int, ...]
    initial_parameters: tuple[str | None, ...]
    rhs: tuple[sp.Expr, ...] = field(repr=False)
    initial_conditions: tuple[sp.Expr, ...] = field(repr=False)


@dataclass(frozen=True, eq=False)
class PetabProblem:
    """A PEtab problem made concrete: :attr:`model`, :attr:`loss` (the negative log-likelihood) and the estimated
    :attr:`parameters`, with :meth:`objective`, :meth:`gradient` and :meth:`audit_arguments`.

    The model's parameters are the estimated parameters on their estimation scale (``parameters[i].model_name``)
    followed by the pre-equilibrated initial values, if any.  ``copies`` names the simulation conditions in the
    order of the state copies (``"<preequilibrationId>:<simulationId>"`` with pre-equilibration).
    """

    source: str
    model: Model
    loss: ExpressionLoss
    parameters: tuple[EstimatedParameter, ...]
    measurements: tuple[Measurement, ...]
    copies: tuple[str, ...]
    preequilibrations: tuple[Preequilibration, ...]
    sbml_model: Model = field(repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- views ---------------------------------------------------------------------------------------------
    @property
    def parameter_ids(self) -> tuple[str, ...]:
        """The estimated parameters' PEtab ids, in the parameter table's order (the gradient's order)."""
        return tuple(q.id for q in self.parameters)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The model parameters holding the estimated parameters on their estimation scale (``log10_k``, ...)."""
        return tuple(q.model_name for q in self.parameters)

    @property
    def nominal(self) -> np.ndarray:
        """The nominal values on the estimation scale."""
        return np.array([q.nominal_scaled for q in self.parameters], dtype=float)

    def _point(self, p: Sequence[float] | Mapping[str, float] | np.ndarray | None) -> np.ndarray:
        if p is None:
            return self.nominal
        if isinstance(p, Mapping):
            values = dict(zip(self.parameter_ids, self.nominal))
            for key, value in p.items():
                if key not in values:
                    raise ValueError(f"`p`: {key!r} is not an estimated parameter; they are {', '.join(values)}")
                values[key] = float(value)
            point = np.array(list(values.values()), dtype=float)
        else:
            point = np.asarray(p, dtype=float).reshape(-1)
            if point.shape != (len(self.parameters),):
                raise ValueError(f"`p` must hold {len(self.parameters)} values (the estimated parameters on their "
                                 f"scale, in the order {', '.join(self.parameter_ids)}), got {point.shape[0]}")
        if not np.all(np.isfinite(point)):
            raise ValueError("`p` contains NaN or infinite values")
        return point

    # -- pre-equilibration ---------------------------------------------------------------------------------
    def steady_states(self, p: Sequence[float] | Mapping[str, float] | None = None, *, method: str = "newton",
                      rtol: float = 1e-10, atol: float = 1e-12) -> tuple[SteadyState, ...]:
        """The steady state of each pre-equilibrated copy at ``p`` (estimation scale) and ``dx*/dp`` over the
        estimated parameters (on their scale): :func:`symsens.petab.steady_state`."""
        point = self._point(p)
        estimated = self.model.parameters[: len(self.parameters)]
        result = []
        for k, pre in enumerate(self.preequilibrations):
            key = f"steady:{k}"
            functions = self._cache.get(key)
            states = [self.model.states[i] for i in pre.states]
            if functions is None:
                functions = _Functions(pre.rhs, states, estimated, pre.initial_conditions, self.model.time)
                self._cache[key] = functions
            result.append(steady_state(pre.rhs, states, estimated, pre.initial_conditions, point,
                                       time=self.model.time, method=method, rtol=rtol, atol=atol,
                                       functions=functions))
        return tuple(result)

    def _full_point(self, point: np.ndarray, states: Sequence[SteadyState]) -> np.ndarray:
        """Every model parameter: the estimated ones, then the pre-equilibrated initial values."""
        values = dict(zip(self.model.parameter_names, self.model.parameter_values))
        values.update(zip(self.parameter_names, point))
        for pre, steady in zip(self.preequilibrations, states):
            for name, x in zip(pre.initial_parameters, steady.x):
                if name is not None:
                    values[name] = float(x)
        return np.array([values[n] for n in self.model.parameter_names], dtype=float)

    # -- objective and gradient ----------------------------------------------------------------------------
    def audit_arguments(self, p: Sequence[float] | Mapping[str, float] | None = None) -> dict[str, Any]:
        """``model``, ``loss``, ``p`` and ``parameters`` for :func:`symsens.audit` (or, without
        pre-equilibration, :func:`symsens.gradient`): ``symsens.audit(**problem.audit_arguments())``.

        With pre-equilibration also ``parameter_map`` (:func:`symsens.petab._steady.preequilibration_map`): the
        audit differentiates over the estimated parameters and the pre-equilibrated initial values and composes
        every gradient with ``dx*/dtheta``, so it audits the total derivative :meth:`gradient` computes.
        """
        point = self._point(p)
        if self.preequilibrations:
            from ._steady import preequilibration_map

            full, parameter_map = preequilibration_map(self, point)
            return {"model": self.model, "loss": self.loss, "p": full, "parameters": list(self.parameter_names),
                    "parameter_map": parameter_map}
        full = self._full_point(point, ())
        return {"model": self.model, "loss": self.loss, "p": full, "parameters": list(self.parameter_names)}

    def objective(self, p: Sequence[float] | Mapping[str, float] | None = None, *, scheme: str = AUTO,
                  rtol: float = DEFAULT_RTOL, atol: float | None = None) -> float:
        """The negative log-likelihood at ``p`` (estimated parameters on their scale; default nominal), from one
        compiled solve (``scheme``, ``rtol``, ``atol`` default ``rtol/1000``) and the NLL in NumPy
        (:mod:`symsens.petab._lean`).

        ``scheme="auto"`` (default): the scheme of :attr:`scheme_choice`, chosen once per problem by a stiffness
        probe (:mod:`symsens.petab._scheme_choice`); an explicit choice whose solve fails (parameters that make the
        problem stiff) is repeated with ``rodas4``.  Any other value is the compiled scheme to run."""
        point = self._point(p)
        full = self._full_point(point, self.steady_states(point) if self.preequilibrations else ())
        solution = self._plain_solve(full, scheme, rtol, atol, "PEtab objective")
        return self._lean().value(solution.y, full)

    @property
    def scheme_choice(self) -> SchemeChoice:
        """What ``scheme="auto"`` runs for this problem and why (:class:`symsens.petab._scheme_choice.SchemeChoice`):
        a trial solve at the nominal point, the eigenvalues of the Jacobian along it and the rule of
        :mod:`symsens.petab._scheme_choice`.  Computed on first use, then kept (the same for every call)."""
        choice = self._cache.get("scheme_choice")
        if choice is None:
            full = self._full_point(self.nominal, self.steady_states() if self.preequilibrations else ())
            choice = choose_scheme(self._lean().solve_model, full)
            self._cache["scheme_choice"] = choice
        return choice

    @property
    def chosen_scheme(self) -> str:
        """The scheme ``scheme="auto"`` runs for this problem (:attr:`scheme_choice`)."""
        return str(self.scheme_choice.scheme)

    def _resolve_scheme(self, scheme: object) -> tuple[str, str | None]:
        """``(scheme to run, scheme to repeat a failed solve with or None)``; ``"auto"`` (or None) is
        :attr:`scheme_choice`.  A name that is not an adaptive compiled scheme is a ValueError naming it."""
        if scheme is None or scheme == AUTO:
            choice = self.scheme_choice
            return choice.scheme, choice.fallback
        from ..integrate._compiled import adaptive_method_spec

        if not isinstance(scheme, str):
            raise TypeError(f"`scheme` must be a scheme name (str) or 'auto', got {type(scheme).__name__} {scheme!r}")
        try:
            adaptive_method_spec(scheme)
        except ValueError as error:
            raise ValueError(f"{error}; or 'auto' (chosen per problem, PetabProblem.scheme_choice)") from None
        return scheme, None

    def _plain_solve(self, full: np.ndarray, scheme: object, rtol: float, atol: float | None, what: str) -> Any:
        """The plain solve of the objective and :meth:`simulate` with ``scheme`` resolved (:meth:`_resolve_scheme`),
        repeated with the fallback scheme if an automatic explicit choice fails; an IntegrationError if it fails."""
        resolved, fallback = self._resolve_scheme(scheme)
        atol = rtol / 1000 if atol is None else atol
        self._load_solver(resolved)
        solution = self._solve(full, resolved, rtol, atol)
        if solution.status != "success" and fallback is not None:
            self._load_solver(fallback)
            solution = self._solve(full, fallback, rtol, atol)
        if solution.status != "success":
            from .._errors import IntegrationError

            raise IntegrationError(f"{what}: {solution.message}", status=solution.status, t=solution.t_failure)
        return solution

    def _gradient_parameters(self) -> tuple[str, ...]:
        """The parameters of the solver's gradient: the estimated ones, then the pre-equilibrated initial values."""
        initial = [n for pre in self.preequilibrations for n in pre.initial_parameters if n is not None]
        return (*self.parameter_names, *initial)

    def _load_solver(self, scheme: str) -> None:
        """Load (compiling on first use) the solver library of the gradient, which runs the plain solve of the
        objective too: one library for both instead of two (its plain solve is the same program as the
        plain-only library's, so the values do not depend on which one runs it)."""
        from ..integrate._compiled import compiled_solver, method_spec

        if isinstance(scheme, str) and method_spec(scheme).error_order is not None:
            compiled_solver(self._lean().solve_model, self._lean().parameters, scheme)

    def _lean(self) -> Any:
        """The lean objective and gradient's solve model and NLL (:mod:`symsens.petab._lean`), built once."""
        lean = self._cache.get("lean")
        if lean is None:
            from ._lean import lean_loss

            lean = lean_loss(self.model, self.measurements, self.loss.times, self._gradient_parameters())
            self._cache["lean"] = lean
        return lean

    def simulate(self, p: Sequence[float] | Mapping[str, float] | None = None, *, scheme: str = AUTO,
                 rtol: float = DEFAULT_RTOL, atol: float | None = None) -> np.ndarray:
        """The simulated observable of every measurement row (in :attr:`measurements` order) at ``p``, from the
        objective's solve (:mod:`symsens.petab._lean`; ``scheme`` as for :meth:`objective`)."""
        point = self._point(p)
        full = self._full_point(point, self.steady_states(point) if self.preequilibrations else ())
        solution = self._plain_solve(full, scheme, rtol, atol, "PEtab simulation")
        return self._lean().simulated(solution.y, full)

    def gradient(self, p: Sequence[float] | Mapping[str, float] | None = None, *, method: str = "forward",
                 scheme: str | None = None, rtol: float = DEFAULT_RTOL, atol: float | None = None,
                 steady_state_method: str = "newton") -> Any:
        """The negative log-likelihood and its gradient over the estimated parameters on their estimation scale,
        by :func:`symsens.gradient` (``method``, ``scheme``, ``rtol``, ``atol`` as there).

        The compiled sensitivity methods (``forward``, ``forward-error-control`` and the ``discrete`` modes) run
        the lean path (:mod:`symsens.petab._lean`): one compiled solve with sensitivities at the measurement
        times and the NLL's chain rule in NumPy, equal to :func:`symsens.gradient` on :attr:`loss` to rounding;
        the others run :func:`symsens.gradient` itself.  On the lean path ``scheme=None`` or ``"auto"`` is the
        scheme of :attr:`scheme_choice` (as for :meth:`objective`, so both run one compiled library; an explicit
        choice whose solve fails is repeated with ``rodas4``); for the adjoints it is ``rodas4``, for the other
        methods their own default.  The result's ``scheme`` says which scheme ran.

        With pre-equilibration, ``dL/dtheta = (dL/dtheta)|_x0 + (dL/dx0) dx*/dtheta`` with ``dx*/dtheta`` from
        the implicit-function theorem (``steady_state_method="newton"``) or the simulated sensitivities
        (``"simulation"``).  Returns a :class:`symsens.GradientResult` over :attr:`parameter_names`.
        """
        from ..audit._methods import GRADIENT_METHODS

        start = _time.perf_counter()
        point = self._point(p)
        states = self.steady_states(point, method=steady_state_method) if self.preequilibrations else ()
        full = self._full_point(point, states)
        options = GRADIENT_METHODS.get(method) if isinstance(method, str) else None
        if options and "sensitivity" in options:
            return self._lean_gradient(full, states, method, options, scheme, rtol, atol, start)
        from .._gradient import gradient as symsens_gradient

        if scheme == AUTO:
            scheme = None       # the automatic choice is the lean path's; the other methods keep their defaults
        if scheme is None and method in ("adjoint-interpolating", "adjoint-backsolve"):
            scheme = "rodas4"   # the compiled adjoint's Rosenbrock scheme

        result = symsens_gradient(self.model, self.loss, p=full, parameters=list(self._gradient_parameters()),
                                  method=method, scheme=scheme, rtol=rtol, atol=atol)
        if result.gradient is None:
            return replace(result, parameters=self.parameter_names, seconds=_time.perf_counter() - start)
        return replace(result, gradient=self._chained(result.gradient, states), parameters=self.parameter_names,
                       seconds=_time.perf_counter() - start)

    def _chained(self, gradient: np.ndarray, states: Sequence[SteadyState]) -> np.ndarray:
        """The gradient over the estimated parameters from the one over :meth:`_gradient_parameters`:
        ``dL/dtheta|_x0 + sum (dL/dx0_i) dx*_i/dtheta`` over the pre-equilibrated initial values."""
        P = len(self.parameters)
        total = np.array(gradient[:P], dtype=float)
        offset = P
        for pre, steady in zip(self.preequilibrations, states):
            for i, name in enumerate(pre.initial_parameters):
                if name is not None:
                    total += gradient[offset] * steady.sensitivity[i, :]
                    offset += 1
        return total

    def _solve(self, full: np.ndarray, scheme: str, rtol: float, atol: float, sensitivity: str | None = None,
               in_norm: bool = False, differentiate_steps: bool = False, max_steps: int = 100_000) -> Any:
        """The compiled solve of the lean path at the measurement times: :func:`symsens.solve` without its
        argument checks, which the arguments built here pass by construction (``full`` from :meth:`_point`,
        the fixed times and parameters); the tolerances and scheme are checked here."""
        from .._checks import positive_number
        from ..integrate._solve import _solve_compiled

        if not isinstance(scheme, str):
            raise TypeError(f"`method` must be a method name (str), got {type(scheme).__name__} {scheme!r}")
        rtol = positive_number(rtol, "rtol")
        atol = positive_number(atol, "atol")
        lean = self._lean()
        t0, t1 = self.model.t_span
        return _solve_compiled(lean.solve_model, float(t0), float(t1), full, None, scheme, rtol, atol, lean.times,
                               sensitivity, lean.parameters, in_norm, differentiate_steps, None, None, None, None,
                               False, max_steps, None)

    def _lean_gradient(self, full: np.ndarray, states: Sequence[SteadyState], method: str,
                       options: Mapping[str, Any], scheme: str | None, rtol: float, atol: float | None,
                       start: float) -> Any:
        """:func:`symsens.gradient`'s result for a compiled sensitivity method by the lean path (the same solve
        with the audit's ``max_steps``, the same checks and result fields), chained over the steady states."""
        from .._checks import positive_number
        from .._gradient import GradientResult
        from ..audit._methods import _counts, default_atol
        from ..integrate._compiled import adaptive_method_spec

        rtol = positive_number(rtol, "rtol")
        if not rtol < 1:
            raise ValueError(f"`rtol` must be below 1, got {rtol!r}")
        atol = default_atol(rtol) if atol is None else positive_number(atol, "atol")
        if scheme is None or scheme == AUTO:
            scheme, fallback = self._resolve_scheme(scheme)
        else:
            adaptive_method_spec(scheme)   # a ValueError naming the scheme and the problem
            fallback = None

        def run(name: str) -> Any:
            return self._solve(full, name, rtol, atol, options["sensitivity"],
                               bool(options.get("sensitivity_in_norm", False)),
                               bool(options.get("differentiate_steps", False)), max_steps=200_000)

        solution = run(scheme)
        if solution.status != "success" and fallback is not None:
            scheme = fallback
            solution = run(scheme)
        statistics = {"forward": {**_counts(solution.stats), "accepted_steps": solution.stats.accepted_steps,
                                  "rejected_steps": solution.stats.rejected_steps}}
        if solution.status != "success":
            return GradientResult(None, None, self.parameter_names, method, scheme, solution.status,
                                  solution.message, rtol, atol, t_failure=solution.t_failure, statistics=statistics,
                                  seconds=_time.perf_counter() - start)
        value, gradient = self._lean().value_and_gradient(solution.y, solution.sensitivities, full)
        return GradientResult(value, self._chained(gradient, states), self.parameter_names, method, scheme,
                              "success", solution.message, rtol, atol, statistics=statistics,
                              seconds=_time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------------------------


def load(yaml_path: str | os.PathLike[str]) -> PetabProblem:
    """Load a PEtab v1 problem (``problem.yaml``) as a :class:`PetabProblem`.

    Supported: one SBML model (SBML core as :func:`symsens.load_model` reads it), conditions overriding
    parameters (by a number or a parameter id) and initial values of species, observables and noise formulas
    with ``observableParameter{n}_{id}``/``noiseParameter{n}_{id}`` placeholders (numbers or parameter ids in
    the measurement table), ``normal``/``laplace`` noise on the ``lin``/``log``/``log10`` scale, parameter scales
    ``lin``/``log``/``log10``, pre-equilibration.  Formulas are parsed by the model language's parser (never
    evaluated as Python).

    Raises
    ------
    PetabError (a :class:`symsens.ModelError`)
        Naming the file, the row (id or line) and the problem: missing files or columns, unknown symbols in
        formulas, unknown observable, condition or parameter ids, bad numbers, unsupported features.
    """
    from ..model._sbml import read_sbml

    tables = read_tables(yaml_path)
    try:
        imported = read_sbml(tables.sbml_path)
    except ModelError as error:
        raise PetabError(f"the SBML model: {error}", source=tables.yaml_path) from None
    return _Builder(tables, imported).build()


class _Builder:
    """Turns the tables and the imported SBML model into the stacked model and the loss (see module docstring)."""

    def __init__(self, tables: PetabTables, imported: Any) -> None:
        self.tables = tables
        self.imported = imported
        self.base: Model = imported.model
        # SBML id -> the base model's symbol or expression.
        self.sbml: dict[str, sp.Expr] = {}
        for sid, name in imported.names.items():
            if name in self.base.output_names:
                self.sbml[sid] = self.base.output(name)
            elif "." not in sid:
                self.sbml[sid] = self.base.symbol(name)
        self.state_ids = {sid for sid, name in imported.names.items() if name in self.base.state_names}
        self.parameter_ids = {sid for sid, name in imported.names.items() if name in self.base.parameter_names}

    # -- parameter table ---------------------------------------------------------------------------------------
    def _parameters(self) -> None:
        table = self.tables.parameters
        self.values: dict[str, sp.Expr] = {}
        self.estimated: list[EstimatedParameter] = []
        self.thetas: list[tuple[str, float]] = []
        taken = set(self.base.state_names) | set(self.base.parameter_names) | set(self.base.output_names)
        for index, row in enumerate(table.rows):
            pid = row["parameterId"]
            where = table.where(index, pid)
            if not pid.isidentifier():
                raise PetabError(f"{where}: parameterId {pid!r} is not an identifier")
            if pid in self.values:
                raise PetabError(f"{where}: parameter {pid!r} is listed twice")
            scale = row["parameterScale"] or "lin"
            if scale not in SCALES:
                raise PetabError(f"{where}: parameterScale must be one of {', '.join(SCALES)}, got {scale!r}")
            nominal = number_or_none(row["nominalValue"], where, "nominalValue")
            if row.get("objectivePriorType", "") not in ("", "nan", "NaN"):
                raise PetabError(f"{where}: objective priors (objectivePriorType {row['objectivePriorType']!r}) "
                                 "are not supported")
            estimate = row["estimate"]
            if estimate not in ("0", "1"):
                raise PetabError(f"{where}: estimate must be 0 or 1, got {estimate!r}")
            if nominal is None:
                raise PetabError(f"{where}: nominalValue is empty (needed for the nominal point)")
            if estimate == "0":
                self.values[pid] = _exact(nominal)
                continue
            lower = number_or_none(row["lowerBound"], where, "lowerBound")
            upper = number_or_none(row["upperBound"], where, "upperBound")
            if lower is None or upper is None or not lower <= upper:
                raise PetabError(f"{where}: an estimated parameter needs lowerBound <= upperBound")
            if scale != "lin" and nominal <= 0:
                raise PetabError(f"{where}: nominalValue {nominal!r} must be positive on the {scale} scale")
            name = pid if scale == "lin" else f"{scale}_{pid}"
            if name != pid and name in taken:
                raise PetabError(f"{where}: the estimation-scale name {name!r} is already a name of the model")
            parameter = EstimatedParameter(pid, name, scale, lower, upper, nominal)
            self.estimated.append(parameter)
            self.thetas.append((name, parameter.nominal_scaled))
            self.values[pid] = _unscale(sp.Symbol(name, real=True), scale)
        if not self.estimated:
            raise PetabError("no parameter has estimate = 1", source=table.path)

    def value_of(self, text: str, where: str, column: str) -> sp.Expr:
        """A cell that holds a number or a parameter id, as an expression in the estimated parameters."""
        number = None
        try:
            number = number_or_none(text, where, column)
        except PetabError:
            pass
        if number is not None:
            return _exact(number)
        if text in self.values:
            return self.values[text]
        if text in self.parameter_ids:
            return self._sbml_value(text)
        raise PetabError(f"{where}: column {column!r}: {text!r} is neither a number nor a parameter of the "
                         "parameter table or the model")

    def _sbml_value(self, sid: str) -> sp.Expr:
        symbol = self.sbml[sid]
        index = self.base.parameters.index(symbol)
        return _exact(self.base.parameter_values[index])

    # -- conditions --------------------------------------------------------------------------------------------
    def _conditions(self) -> None:
        table = self.tables.conditions
        self.conditions: dict[str, tuple[dict[str, sp.Expr], dict[str, sp.Expr]]] = {}
        for column in table.columns:
            if column in ("conditionId", "conditionName"):
                continue
            if column not in self.state_ids and column not in self.parameter_ids:
                raise PetabError(f"the condition table's column {column!r} is neither a species nor a parameter of "
                                 "the model (compartment and rule targets are not supported)", source=table.path,
                                 name=column)
        for index, row in enumerate(table.rows):
            cid = row["conditionId"]
            where = table.where(index, cid)
            if cid in self.conditions:
                raise PetabError(f"{where}: condition {cid!r} is listed twice")
            parameters: dict[str, sp.Expr] = {}
            species: dict[str, sp.Expr] = {}
            for column in table.columns:
                if column in ("conditionId", "conditionName") or row[column] in ("", "nan", "NaN"):
                    continue
                target = species if column in self.state_ids else parameters
                target[column] = self.value_of(row[column], where, column)
            self.conditions[cid] = (parameters, species)

    def _parameter_map(self, condition: str) -> dict[sp.Symbol, sp.Expr]:
        """Each SBML parameter symbol -> its value under ``condition`` (override, table value or SBML value)."""
        overrides = self.conditions[condition][0]
        result: dict[sp.Symbol, sp.Expr] = {}
        for sid in self.parameter_ids:
            symbol = self.sbml[sid]
            if sid in overrides:
                result[symbol] = overrides[sid]
            elif sid in self.values:
                result[symbol] = self.values[sid]
            else:
                result[symbol] = self._sbml_value(sid)
        return result

    def _initial(self, condition: str, parameter_map: Mapping[sp.Symbol, sp.Expr]) -> list[sp.Expr]:
        overrides = self.conditions[condition][1]
        by_state = {self.sbml[sid]: value for sid, value in overrides.items()}
        return [by_state.get(x, ic.xreplace(parameter_map)) for x, ic in
                zip(self.base.states, self.base.initial_conditions)]

    # -- observables -------------------------------------------------------------------------------------------
    def _observables(self) -> None:
        table = self.tables.observables
        self.observables: dict[str, tuple[sp.Expr, sp.Expr, str, str, int, int, str]] = {}
        for index, row in enumerate(table.rows):
            oid = row["observableId"]
            where = table.where(index, oid)
            if not oid.isidentifier():
                raise PetabError(f"{where}: observableId {oid!r} is not an identifier")
            if oid in self.observables:
                raise PetabError(f"{where}: observable {oid!r} is listed twice")
            transformation = row.get("observableTransformation", "") or "lin"
            distribution = row.get("noiseDistribution", "") or "normal"
            if transformation not in TRANSFORMATIONS:
                raise PetabError(f"{where}: observableTransformation must be one of {', '.join(TRANSFORMATIONS)}, "
                                 f"got {transformation!r}")
            if distribution not in NOISE_DISTRIBUTIONS:
                raise PetabError(f"{where}: noiseDistribution must be one of {', '.join(NOISE_DISTRIBUTIONS)}, "
                                 f"got {distribution!r}")
            formulas = []
            counts = []
            for column, prefix in (("observableFormula", "observableParameter"), ("noiseFormula", "noiseParameter")):
                text = row[column]
                if not text:
                    raise PetabError(f"{where}: {column} is empty")
                symbols = self._formula_symbols()
                placeholders: dict[str, int] = {}
                for number in re.findall(rf"\b{prefix}(\d+)_{re.escape(oid)}\b", text):
                    name = f"{prefix}{int(number)}_{oid}"
                    symbols[name] = sp.Symbol(name, real=True)
                    placeholders[name] = int(number)
                try:
                    from ..model._parser import parse_expression

                    expr = parse_expression(text, symbols, where=f"{column} of observable {oid!r}")
                except ModelError as error:
                    raise PetabError(f"{where}: {error.problem}", name=error.name) from None
                used = {placeholders[s.name] for s in expr.free_symbols if s.name in placeholders}
                if used and used != set(range(1, max(used) + 1)):
                    raise PetabError(f"{where}: {column} uses {prefix}s {sorted(used)}; they must be numbered "
                                     "from 1 without gaps")
                formulas.append(expr)
                counts.append(max(used, default=0))
            self.observables[oid] = (formulas[0], formulas[1], transformation, distribution, counts[0], counts[1],
                                     where)

    def _formula_symbols(self) -> dict[str, sp.Symbol]:
        # Plain symbols named by the SBML and parameter-table ids, replaced per state copy (``_copy_map``).
        symbols: dict[str, sp.Symbol] = {"time": self.base.time}
        for sid in (*self.sbml, *self.values):
            symbols[sid] = sp.Symbol(sid, real=True)
        return symbols

    def _copy_map(self, renaming: Mapping[sp.Symbol, sp.Expr], parameter_map: Mapping[sp.Symbol, sp.Expr]
                  ) -> dict[sp.Symbol, sp.Expr]:
        """The formula symbols (``_formula_symbols``) -> their meaning in one state copy."""
        result: dict[sp.Symbol, sp.Expr] = {}
        for pid, value in self.values.items():
            result[sp.Symbol(pid, real=True)] = value
        for sid, value in self.sbml.items():
            if sid in self.parameter_ids:
                result[sp.Symbol(sid, real=True)] = parameter_map[value]
            else:
                result[sp.Symbol(sid, real=True)] = value.xreplace({**renaming, **parameter_map})
        return result

    def _placeholder_values(self, text: str, count: int, where: str, column: str, oid: str) -> list[sp.Expr]:
        cells = [] if text in ("", "nan", "NaN") else [c.strip() for c in text.split(";")]
        if len(cells) != count:
            raise PetabError(f"{where}: {column} has {len(cells)} values ({text!r}) but observable {oid!r} has "
                             f"{count} {'observable' if column.startswith('observable') else 'noise'} placeholders")
        return [self.value_of(c, where, column) for c in cells]

    # -- the model -------------------------------------------------------------------------------------------
    def build(self) -> PetabProblem:
        self._parameters()
        self._conditions()
        self._observables()
        table = self.tables.measurements
        rows = []
        copies: list[tuple[str, str]] = []
        for index, row in enumerate(table.rows):
            where = table.where(index)
            oid = row["observableId"]
            if oid not in self.observables:
                raise PetabError(f"{where}: observableId {oid!r} is not in the observable table")
            sim = row["simulationConditionId"]
            pre = row.get("preequilibrationConditionId", "")
            for cid in (sim, pre):
                if cid and cid not in self.conditions:
                    raise PetabError(f"{where}: condition {cid!r} is not in the condition table")
            if not sim:
                raise PetabError(f"{where}: simulationConditionId is empty")
            value = number_or_none(row["measurement"], where, "measurement")
            t = number_or_none(row["time"], where, "time")
            if value is None or t is None:
                raise PetabError(f"{where}: measurement and time must be numbers" +
                                 (" (steady-state measurements, time = inf, are not supported)"
                                  if row["time"].lower() == "inf" else ""))
            if t < 0:
                raise PetabError(f"{where}: time {t!r} is negative; PEtab simulations start at t = 0")
            if (pre, sim) not in copies:
                copies.append((pre, sim))
            rows.append((index, where, oid, pre, sim, value, t))
        if not rows:
            raise PetabError("the measurement table has no rows", source=table.path)

        single = len(copies) == 1 and not copies[0][0]
        taken = set(self.base.output_names) | {n for n, _ in self.thetas}
        states: list[str] = []
        rhs: list[sp.Expr] = []
        initial: list[sp.Expr] = []
        extra_parameters: list[tuple[str, float]] = []
        copy_maps: dict[tuple[str, str], dict[sp.Symbol, sp.Expr]] = {}
        preequilibrations: list[Preequilibration] = []
        for pre, sim in copies:
            label = sim if not pre else f"{pre}_{sim}"
            names = list(self.base.state_names) if single else [f"{x}_{label}" for x in self.base.state_names]
            for name in names:
                if name in taken:
                    raise PetabError(f"the state copy {name!r} for condition {label!r} clashes with another name",
                                     source=self.tables.yaml_path)
                taken.add(name)
            symbols = [sp.Symbol(n, real=True) for n in names]
            renaming = dict(zip(self.base.states, symbols))
            parameter_map = self._parameter_map(sim)
            copy_rhs = [f.xreplace({**renaming, **parameter_map}) for f in self.base.rhs]
            offset = len(states)
            if pre:
                pre_map = self._parameter_map(pre)
                pre_rhs = tuple(f.xreplace({**renaming, **pre_map}) for f in self.base.rhs)
                pre_initial = tuple(self._initial(pre, pre_map))
                reset = {self.sbml[sid] for sid in self.conditions[sim][1]}
                simulation_initial = self._initial(sim, parameter_map)
                initial_names: list[str | None] = []
                for x, name, value in zip(self.base.states, names, simulation_initial):
                    if x in reset:
                        initial.append(value)
                        initial_names.append(None)
                    else:
                        pname = f"{name}_preequilibrated"
                        if pname in taken:
                            raise PetabError(f"the name {pname!r} clashes with another name",
                                             source=self.tables.yaml_path)
                        taken.add(pname)
                        extra_parameters.append((pname, 0.0))
                        initial.append(sp.Symbol(pname, real=True))
                        initial_names.append(pname)
                preequilibrations.append(Preequilibration(
                    f"{pre}:{sim}", pre, tuple(range(offset, offset + len(names))), tuple(initial_names), pre_rhs,
                    pre_initial))
            else:
                initial.extend(self._initial(sim, parameter_map))
            states.extend(names)
            rhs.extend(copy_rhs)
            copy_maps[(pre, sim)] = self._copy_map(renaming, parameter_map)

        measurements: list[Measurement] = []
        for index, where, oid, pre, sim, value, t in rows:
            observable, noise, transformation, distribution, n_obs, n_noise, _ = self.observables[oid]
            row = table.rows[index]
            substitutions = dict(copy_maps[(pre, sim)])
            for prefix, column, count in (("observableParameter", "observableParameters", n_obs),
                                          ("noiseParameter", "noiseParameters", n_noise)):
                values = self._placeholder_values(row.get(column, ""), count, where, column, oid)
                for k, v in enumerate(values, start=1):
                    substitutions[sp.Symbol(f"{prefix}{k}_{oid}", real=True)] = v
            simulated = observable.xreplace(substitutions)
            sigma = noise.xreplace(substitutions)
            if transformation != "lin" and value <= 0:
                raise PetabError(f"{where}: measurement {value!r} must be positive for observableTransformation "
                                 f"{transformation!r}")
            nll = negative_log_likelihood(value, simulated, sigma, distribution, transformation)
            measurements.append(Measurement(table.lines[index], oid, f"{pre}:{sim}" if pre else sim, t, value,
                                            simulated, sigma, nll, distribution, transformation))

        times = sorted({m.time for m in measurements})
        if times[-1] <= 0:
            times_span = (0.0, 1.0)
        else:
            times_span = (0.0, times[-1])
        time_symbol = self.base.time
        pieces = []
        for k, t in enumerate(times):
            term = sp.Add(*[m.nll for m in measurements if m.time == t])
            condition = sp.true if k == len(times) - 1 else time_symbol < _exact((t + times[k + 1]) / 2)
            pieces.append((term, condition))
        nll_output = sp.Piecewise(*pieces) if len(pieces) > 1 else pieces[0][0]
        output_name = "nll"
        if output_name in taken or output_name in self.base.parameter_names:
            raise PetabError("the name 'nll' (the negative log-likelihood) is already a name of the model",
                             source=self.tables.yaml_path)
        parameters = dict(self.thetas)
        parameters.update(extra_parameters)
        try:
            model = Model(states, parameters, rhs, initial, intermediates={output_name: nll_output},
                          time=time_symbol.name, name=self.base.name, t_span=times_span,
                          description=f"PEtab problem {self.tables.yaml_path} (model {self.tables.sbml_path})")
        except ModelError as error:
            raise PetabError(f"building the model: {error}", source=self.tables.yaml_path) from None
        loss = ExpressionLoss(output_name, tuple(times), name="negative log-likelihood")
        problem = PetabProblem(self.tables.yaml_path, model, loss, tuple(self.estimated), tuple(measurements),
                               tuple(f"{pre}:{sim}" if pre else sim for pre, sim in copies),
                               tuple(preequilibrations), self.base)
        if preequilibrations:
            # The pre-equilibrated initial values' nominal values: the steady states at the nominal point.
            steady = problem.steady_states()
            full = problem._full_point(problem.nominal, steady)
            problem = replace(problem, model=model.with_parameter_values(dict(zip(model.parameter_names, full))),
                              _cache={})
        return problem
