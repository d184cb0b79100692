"""What the compiled discrete adjoints share on the Python side: argument checks, the output plan as arrays, the
buffers a sweep writes, building and loading a sweep's C++ library, and its status codes.

Every family (explicit Runge–Kutta, Rosenbrock, SDIRK/ESDIRK, Radau IIA, BDF) runs its replay and reverse pass in
one model-independent library under ``cpp/adjoint`` (``symsens_<family>_adjoint.hpp`` and the C entry
``<family>_adjoint.cpp``), built once (content-keyed cache of :func:`symsens.codegen._build.build_library`) without
floating-point contraction, so that its sums round as the NumPy sweep's do (no fused multiply-adds).  The model
enters through function pointers from its generated libraries (:func:`symsens.codegen._vjp.loaded_vjp`,
:func:`symsens.codegen._second_order.loaded_second_order`).  The families' modules
(``_discrete_adjoint_<family>_compiled.py``) keep what differs: the scheme's coefficients, the schedule, the C
entry's arguments and the messages of a failed replay.

References
----------
A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008 (Ch. 12, checkpointing).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..model import Model
from ._discrete_adjoint import DiscreteAdjointRun, _output_plan, cotangent_of_a_solve_without_steps, \
    outputs_of_a_solve_without_steps, replay_inputs

if TYPE_CHECKING:
    from ..codegen._vjp import VjpKernels

__all__ = ["AdjointCore", "ReplayArguments", "SweepBuffers", "OutputPlanArrays", "checked_arguments",
           "checkpoint_schedule", "check_status", "kernel_table", "newton_failure", "pointer", "DOUBLE_P", "LONG_P",
           "INT_P", "KERNEL_TABLE", "LONG_DTYPE"]

DOUBLE_P = ctypes.POINTER(ctypes.c_double)
LONG_P = ctypes.POINTER(ctypes.c_long)
INT_P = ctypes.POINTER(ctypes.c_int)
#: A table of three kernel addresses (``void* const*`` in C).
KERNEL_TABLE = ctypes.POINTER(ctypes.c_void_p)
LONG_DTYPE = np.dtype(ctypes.c_long)

#: The sweeps' status codes (``Status`` of ``symsens_erk_adjoint.hpp`` and the implicit families' entries).
SUCCESS, BAD_INPUT, REPLAY_FAILED, OUT_OF_MEMORY = 0, 5, 6, 7
#: ``OutputKind`` of ``symsens_erk_adjoint.hpp``.
_KINDS = {"start": 0, "end": 1, "inner": 2}
#: The most forward sweeps a binomial schedule may take (``binom(c + r, c) >= M`` with ``r`` at most this).
MAX_SWEEPS = 64


def pointer(array: np.ndarray | None, kind: Any = DOUBLE_P) -> Any:
    """``array``'s data as a C pointer of type ``kind`` (a null pointer for None)."""
    return None if array is None else array.ctypes.data_as(kind)


def kernel_table(addresses: Sequence[int]) -> Any:
    """The three kernel addresses of a model library as the ``void* const*`` table the C entries take."""
    return (ctypes.c_void_p * 3)(*addresses)


@dataclass(frozen=True)
class AdjointCore:
    """One family's compiled sweep: ``cpp/adjoint/<entry>.cpp`` with ``headers`` beside it, exporting
    ``symsens_<entry>`` with the ctypes ``argtypes``; calling it builds (once) and runs the C entry."""

    entry: str
    headers: tuple[str, ...]
    argtypes: tuple[Any, ...]

    def __call__(self, *arguments: Any) -> int:
        return int(_loaded_core(self)(*arguments))


@lru_cache(maxsize=None)
def _loaded_core(core: AdjointCore) -> Any:
    """The C entry of ``core``, built once for every model and scheme (content-keyed cache).  Floating-point
    contraction is off (``DEFAULT_FLAGS``) so that the sweep's sums round as the NumPy sweep's do (no fused
    multiply-adds)."""
    from importlib import resources

    from ..codegen._build import DEFAULT_FLAGS, build_library, load_library

    folder = resources.files("symsens.integrate").joinpath("cpp").joinpath("adjoint")
    main = f"{core.entry}.cpp"
    sources = {name: folder.joinpath(name).read_text() for name in (*core.headers, main)}
    path = build_library(sources, main, flags=DEFAULT_FLAGS)
    function = getattr(load_library(path), f"symsens_{core.entry}")
    function.restype = ctypes.c_int
    function.argtypes = list(core.argtypes)
    return function


@dataclass(frozen=True, eq=False)
class ReplayArguments:
    """The checked arguments of a compiled sweep: all parameter values ``p`` (the model's order), the gradient's
    ``parameters``, the recorded ``step_times`` (M + 1) and ``step_sizes`` (M), the ``output_times`` (K), the
    ``cotangents`` (K x n, C order) and the checkpoint interval ``every``."""

    p: np.ndarray
    parameters: tuple[str, ...]
    step_times: np.ndarray
    step_sizes: np.ndarray
    output_times: np.ndarray
    cotangents: np.ndarray
    every: int

    @property
    def steps(self) -> int:
        return len(self.step_sizes)

    @property
    def t0(self) -> float:
        return float(self.step_times[0])


def checked_arguments(model: Model, p: Sequence[float] | np.ndarray, parameters: Sequence[str],
                      step_times: np.ndarray, step_sizes: np.ndarray, output_times: np.ndarray,
                      cotangents: np.ndarray, checkpoint_every: int | None, block_work: int,
                      tolerances: tuple[float, float] | None = None) -> ReplayArguments:
    """The arguments checked in the order the messages name them: known and distinct ``parameters``, ``p`` of
    the model's length, the solve's ``rtol``/``atol`` (``tolerances``, when the family needs them), consistent and
    finite steps, outputs and cotangents, and the checkpoint interval (default
    :func:`symsens.integrate._discrete_adjoint.default_checkpoint_interval` with ``block_work`` stored vectors
    per step)."""
    parameters = tuple(parameters)
    known = set(model.parameter_names)   # a property that builds a tuple: once, not per name
    unknown = [name for name in parameters if name not in known]
    if unknown:
        raise ValueError(f"`parameters`: unknown parameter {unknown[0]!r}; the model's parameters are "
                         f"{', '.join(model.parameter_names)}")
    if len(set(parameters)) != len(parameters):
        raise ValueError("`parameters`: a parameter is listed twice")
    p_values = np.ascontiguousarray(p, dtype=float)
    if p_values.shape != (model.n_parameters,):
        raise ValueError(f"`p` must hold all {model.n_parameters} parameter values in the model's order, "
                         f"got shape {p_values.shape}")
    if tolerances is not None:
        rtol, atol = tolerances
        if not (math.isfinite(rtol) and rtol > 0.0):
            raise ValueError(f"`rtol` must be positive and finite (the solve's), got {rtol!r}")
        if not (math.isfinite(atol) and atol >= 0.0):
            raise ValueError(f"`atol` must be non-negative and finite (the solve's), got {atol!r}")
    step_times, step_sizes, output_times, cotangents, every = replay_inputs(
        step_times, step_sizes, output_times, cotangents, model.n_states, checkpoint_every, block_work)
    if not (np.all(np.isfinite(step_times)) and np.all(np.isfinite(step_sizes))):
        raise ValueError("`step_times`/`step_sizes` must be finite (the accepted steps of a successful solve)")
    return ReplayArguments(p_values, parameters, np.ascontiguousarray(step_times), np.ascontiguousarray(step_sizes),
                           np.ascontiguousarray(output_times), np.ascontiguousarray(cotangents), every)


def checkpoint_schedule(checkpointing: str, checkpoint_every: int | None, snapshots: int | None, steps: int,
                        every: int) -> tuple[int, int]:
    """``(0, every)`` for the uniform schedule, ``(1, snapshots)`` for the binomial one (Griewank's ``revolve``;
    default ``ceil(log2(M + 1))`` snapshots), refused when it would advance a step more than :data:`MAX_SWEEPS`
    times."""
    if checkpointing not in ("uniform", "binomial"):
        raise ValueError(f"`checkpointing` must be 'uniform' or 'binomial', got {checkpointing!r}")
    if checkpointing == "uniform":
        if snapshots is not None:
            raise ValueError("`snapshots` applies to checkpointing='binomial' only")
        return 0, every
    if checkpoint_every is not None:
        raise ValueError("`checkpoint_every` applies to checkpointing='uniform'; the binomial schedule takes "
                         "`snapshots`")
    if snapshots is None:
        snapshots = max(1, math.ceil(math.log2(steps + 1)))
    if not (isinstance(snapshots, (int, np.integer)) and not isinstance(snapshots, bool) and snapshots >= 1):
        raise ValueError(f"`snapshots` must be a positive integer, got {snapshots!r}")
    sweeps = 0
    while math.comb(int(snapshots) + sweeps, int(snapshots)) < steps:
        sweeps += 1
    if sweeps > MAX_SWEEPS:
        # The schedule recurses about r + c deep and costs r sweeps: refuse rather than run for hours.
        raise ValueError(f"`snapshots`: {snapshots} snapshots for {steps} steps would advance each step up to "
                         f"{sweeps} times; give at least "
                         f"{next(c for c in range(1, steps + 1) if math.comb(c + MAX_SWEEPS, c) >= steps)}")
    return 1, int(snapshots)


@dataclass(frozen=True, eq=False)
class OutputPlanArrays:
    """:func:`symsens.integrate._discrete_adjoint._output_plan` as the C entries take it (``OutputPlan`` of
    ``symsens_erk_adjoint.hpp``): the entries ``first[m]..first[m+1]`` of ``(index, kind, theta)`` are step
    ``m``'s outputs."""

    first: np.ndarray
    index: np.ndarray
    kind: np.ndarray
    theta: np.ndarray

    @classmethod
    def of(cls, step_times: np.ndarray, output_times: np.ndarray) -> OutputPlanArrays:
        plan = _output_plan(step_times, output_times)
        first = np.zeros(len(plan) + 1, dtype=LONG_DTYPE)
        first[1:] = np.cumsum([len(entries) for entries in plan]) if plan else []
        entries = [entry for step_entries in plan for entry in step_entries]
        return cls(first, np.ascontiguousarray([k for k, _, _ in entries], dtype=LONG_DTYPE),
                   np.ascontiguousarray([_KINDS[name] for _, name, _ in entries], dtype=np.intc),
                   np.ascontiguousarray([value for _, _, value in entries], dtype=float))

    def pointers(self) -> tuple[Any, Any, Any, Any]:
        return (pointer(self.first, LONG_P), pointer(self.index, LONG_P), pointer(self.kind, INT_P),
                pointer(self.theta))


@dataclass(frozen=True, eq=False)
class SweepBuffers:
    """What a compiled sweep writes: ``outputs`` (K x n; NaN where no step writes), ``ybar0`` (n), ``pbar``
    (at least one number, never a null pointer) and ``counters`` (``Counters`` of ``symsens_erk_adjoint.hpp``
    first: f evaluations, products, checkpoints, peak stored numbers; then the family's)."""

    outputs: np.ndarray
    ybar0: np.ndarray
    pbar: np.ndarray
    counters: np.ndarray

    @classmethod
    def of(cls, arguments: ReplayArguments, n: int, counters: int) -> SweepBuffers:
        return cls(np.full((len(arguments.output_times), n), np.nan), np.zeros(n),
                   np.zeros(max(len(arguments.parameters), 1)), np.zeros(counters, dtype=LONG_DTYPE))

    def pointers(self) -> tuple[Any, Any, Any]:
        """``outputs, ybar0, pbar`` (the counters go last in every entry, after what the family adds)."""
        return pointer(self.outputs), pointer(self.ybar0), pointer(self.pbar)

    def run(self, arguments: ReplayArguments, kernels: VjpKernels, y0: np.ndarray, *, every: int, schedule: str = "uniform",
            replay_counters: int | None = None, no_steps_in_sweep: bool = False) -> DiscreteAdjointRun:
        """The finished run: ``gradient = (dy0/dp)^T ybar_0 + pbar`` (``kernels``: the model's
        :class:`symsens.codegen._vjp.VjpKernels`).  A solve of no steps outputs ``y0`` at ``t0`` and those outputs'
        cotangents go straight to ``ybar_0`` (here, unless the sweep did it: ``no_steps_in_sweep``).
        ``replay_counters``: where the forward replay's Jacobian evaluations and Newton iterations stand in the
        counters (the implicit families with a Newton replay)."""
        ybar0 = self.ybar0
        M = arguments.steps
        if M == 0 and not no_steps_in_sweep:
            outputs_of_a_solve_without_steps(self.outputs, arguments.output_times, arguments.t0, y0)
            ybar0 = ybar0 + cotangent_of_a_solve_without_steps(arguments.output_times, arguments.t0,
                                                               arguments.cotangents)
        P = len(arguments.parameters)
        gradient = self.pbar[:P] + (kernels.initial_vjp(arguments.p, ybar0) if P else 0.0)
        counters = [int(value) for value in self.counters]
        replay: dict[str, int] = {}
        if replay_counters is not None:
            replay = {"jacobian_evaluations": counters[replay_counters],
                      "newton_iterations": counters[replay_counters + 1]}
        return DiscreteAdjointRun(np.asarray(gradient, dtype=float), self.outputs, M, every, counters[2],
                                  counters[3], counters[0], counters[1], schedule, **replay)


def newton_failure(step: int, t: float, h: float, scheme: str, order: int | None = None) -> Exception:
    """The ReplayError of a recorded step whose Newton solve failed in the replay, word for word the NumPy
    sweep's (``step`` counted from 0)."""
    from ._discrete_adjoint_newton import ReplayError

    detail = "" if order is None else f", order {order}"
    return ReplayError(f"Newton did not converge in step {step + 1} at t = {t:g} (h = {h:g}{detail}) of the "
                       f"replayed {scheme} solve")


def check_status(status: int, sweep: str, arguments: ReplayArguments,
                 replay_failure: Callable[[], Exception] | None = None) -> None:
    """Raise for a sweep's status: REPLAY_FAILED as ``replay_failure()`` (the family's message), OUT_OF_MEMORY as
    MemoryError, any other failure as a ValueError (the C entry refused inconsistent input)."""
    if status == SUCCESS:
        return
    if status == REPLAY_FAILED and replay_failure is not None:
        raise replay_failure()
    if status == OUT_OF_MEMORY:
        raise MemoryError(f"the compiled {sweep} discrete adjoint ran out of memory ({arguments.steps} steps, a "
                          f"checkpoint every {arguments.every}); pass a smaller `checkpoint_every`")
    raise ValueError(f"the compiled {sweep} discrete adjoint refused its input (status {status}): the steps, output "
                     "plan, tolerances or checkpoint interval are inconsistent")
