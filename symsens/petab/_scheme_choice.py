"""The integration scheme of a PEtab problem's objective and gradient, chosen once per problem by a stiffness probe.

``scheme="auto"``, the default of :meth:`PetabProblem.objective <symsens.petab.PetabProblem.objective>`,
:meth:`~symsens.petab.PetabProblem.simulate` and the compiled sensitivity methods of
:meth:`~symsens.petab.PetabProblem.gradient`, runs the scheme :func:`choose_scheme` picks from measured evidence
about the problem at its nominal parameters (deterministic: the same problem gives the same choice):

1. **A trial solve** of the problem's ODE at the nominal point, in NumPy (nothing is compiled, no SciPy import), by
   the L-stable linearly implicit Rosenbrock 2(3) pair of MATLAB's ode23s (Shampine & Reichelt 1997) with rtol
   ``TRIAL_RTOL``, atol ``TRIAL_RTOL / 1000``.  An L-stable method's steps are limited by accuracy, not by
   stability, so its step sizes ``h_i`` are the steps an accurate solution needs.
2. **The spectrum** of the exact Jacobian ``J = df/dx`` (SymPy, lambdified) at the start of each accepted step (at
   most ``MAX_SAMPLES`` of them, evenly spread), per diagonal block of the sparsity pattern of ``J`` (the independent
   copies of the states, one per simulation condition): the eigenvalues ``lambda`` and the spectral radius
   ``rho_i``.
3. **The stiffness ratio.**  An explicit Runge–Kutta scheme is stable only while ``h |lambda|`` stays in its
   stability region, about ``h rho <= 3.25`` for the 5(4) pairs of Dormand–Prince and Tsitouras (the bound of the
   automatic stiffness detection of Hairer's DOPRI5: Hairer & Wanner, *Solving Ordinary Differential Equations II*,
   2nd ed., Sect. IV.2).  So over trial step ``i`` an explicit scheme needs at least ``max(1, h_i rho_i / 3.25)``
   steps, and

       R = mean_i max(1, h_i rho_i / 3.25)

   is the factor by which stability multiplies the number of steps accuracy alone needs (Shampine's view of
   stiffness: a problem is stiff when stability, not accuracy, limits an explicit method's step).
4. **The choice.**  ``R <= STIFFNESS_THRESHOLD``: not stiff, ``tsit5`` (Tsitouras' 5(4) pair: no Jacobian, no LU,
   six right-hand sides a step).  Otherwise stiff: ``bdf`` (variable order 1–5, one Jacobian and LU reused over many
   steps, one Newton solve a step), unless a stiff eigenvalue (``h_i |lambda| > 3.25`` on a trial step) lies outside
   the sector ``|arg(-lambda)| <= 51.84 deg`` where BDF of order 5 is stable (its A(alpha)-stability angle:
   Hairer & Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Sect. V.2); stiff oscillatory modes would
   hold BDF at low order, so then ``rodas4`` (L-stable Rosenbrock, ibid. Sect. IV.7).  A failed trial solve gives
   ``rodas4`` too (the robust choice, with the reason recorded).

The choice is made once per problem (at the nominal parameters, whatever rtol a call asks for; tighter tolerances
only shrink the accuracy steps, which makes a non-stiff problem no stiffer) and cached on the problem
(:attr:`PetabProblem.scheme_choice <symsens.petab.PetabProblem.scheme_choice>`).  Where the parameters of a call make
the problem stiff after all, an explicit choice that fails is repeated with ``FALLBACK_SCHEME`` (one that only gets
slower, still within its step limit, is kept: its result is as accurate, just dearer).

Cost: SymPy's Jacobian (cached per model and shared with the code generator), two lambdified NumPy functions and
the trial, about 0.2-0.4 s on the two published problems, once per problem.

Note that at equal ``rtol`` schemes reach different accuracies (their error estimates are local): on the two
published benchmark problems ``bdf`` and ``tsit5`` at a given rtol are less accurate than ``rodas4``, and faster at
equal accuracy (docs/petab.md, benchmarks/petab.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sympy as sp

from ..model import Model

__all__ = ["SchemeChoice", "choose_scheme", "decide", "EXPLICIT_STABILITY_BOUND", "STIFFNESS_THRESHOLD",
           "BDF_STABILITY_ANGLE", "FALLBACK_SCHEME"]

#: ``h rho(J)`` up to which the 5(4) explicit pairs are stable (DOPRI5's stiffness test; HW II, Sect. IV.2).
EXPLICIT_STABILITY_BOUND = 3.25
#: Above this stiffness ratio R the problem is stiff.  An explicit step costs a fraction of an implicit one (no
#: Jacobian, no LU, no Newton iteration), so a ratio of 2 still favours an explicit scheme; a clearly stiff problem
#: has R in the thousands (Boehm et al. 2014: about 3e4), a non-stiff one R = 1 (Crauste et al. 2017).
STIFFNESS_THRESHOLD = 2.0
#: The A(alpha)-stability angle of BDF of order 5, degrees (HW II, Sect. V.2).
BDF_STABILITY_ANGLE = 51.84
#: The trial solve's relative tolerance (atol = rtol / 1000, as the problem's default).  Looser than the calls'
#: usual tolerances: larger accuracy steps make R larger, so the test errs towards "stiff", the safe side.
TRIAL_RTOL = 1e-5
#: At most this many trial steps have their Jacobian's eigenvalues computed (evenly spread over the steps).
MAX_SAMPLES = 200
#: The scheme a failed trial, or a failed solve with an explicit choice, falls back to.
FALLBACK_SCHEME = "rodas4"
NONSTIFF_SCHEME = "tsit5"
STIFF_SCHEME = "bdf"


@dataclass(frozen=True)
class SchemeChoice:
    """What ``scheme="auto"`` runs for one problem, and the evidence.

    ``scheme``: the chosen scheme; ``stiff``: whether the probe found the problem stiff (or assumes it, when the
    trial failed); ``stiffness_ratio``: ``R`` (module docstring); ``trial_steps``: accepted steps of the trial solve;
    ``largest_step_stiffness``: ``max_i h_i rho_i``; ``spectral_radius``: ``max_i rho_i``; ``stiff_angle``: the largest
    ``|arg(-lambda)|`` (degrees) of the stiff eigenvalues (None when there are none); ``reason``: one sentence.
    The measured values are None when the trial failed.
    """

    scheme: str
    stiff: bool
    stiffness_ratio: float | None
    trial_steps: int
    largest_step_stiffness: float | None
    spectral_radius: float | None
    stiff_angle: float | None
    reason: str

    @property
    def fallback(self) -> str | None:
        """The scheme a failed solve with this choice is repeated with (None: an implicit choice is not repeated)."""
        return FALLBACK_SCHEME if not self.stiff and self.scheme != FALLBACK_SCHEME else None


def decide(step_sizes: np.ndarray, eigenvalues: np.ndarray) -> SchemeChoice:
    """The choice from the accepted step sizes ``h_i`` (N) of an accuracy-limited trial solve and the eigenvalues of
    ``J`` at the start of each step (N x n; pad with 0 where blocks are smaller): the rule of the module docstring."""
    h = np.asarray(step_sizes, dtype=float).reshape(-1)
    if len(h) == 0:
        raise ValueError("`step_sizes` is empty: the trial solve took no steps")
    lam = np.asarray(eigenvalues, dtype=complex).reshape(len(h), -1)
    z = h[:, None] * lam
    rho = np.abs(lam).max(axis=1) if lam.shape[1] else np.zeros(len(h))
    per_step = h * rho
    ratio = float(np.mean(np.maximum(1.0, per_step / EXPLICIT_STABILITY_BOUND)))
    stiff_modes = np.abs(z) > EXPLICIT_STABILITY_BOUND
    # |arg(-lambda)|: 0 on the negative real axis, 90 deg on the imaginary axis, up to 180 deg (growing modes).
    angles = np.degrees(np.abs(np.angle(-z[stiff_modes])))
    angle = float(angles.max()) if angles.size else None
    facts = dict(stiffness_ratio=ratio, trial_steps=len(h), largest_step_stiffness=float(per_step.max()),
                 spectral_radius=float(rho.max()), stiff_angle=angle)
    if ratio <= STIFFNESS_THRESHOLD:
        return SchemeChoice(NONSTIFF_SCHEME, False, reason=(
            f"not stiff: stability would cost an explicit scheme {ratio:.3g}x the steps accuracy needs "
            f"(<= {STIFFNESS_THRESHOLD:g})"), **facts)
    if angle is not None and angle > BDF_STABILITY_ANGLE:
        return SchemeChoice(FALLBACK_SCHEME, True, reason=(
            f"stiff (stability would cost an explicit scheme {ratio:.3g}x the steps accuracy needs), with stiff "
            f"eigenvalues {angle:.3g} deg off the negative real axis, outside BDF5's {BDF_STABILITY_ANGLE} deg "
            "sector: an L-stable Rosenbrock scheme"), **facts)
    return SchemeChoice(STIFF_SCHEME, True, reason=(
        f"stiff: stability would cost an explicit scheme {ratio:.3g}x the steps accuracy needs; stiff eigenvalues "
        f"within BDF5's {BDF_STABILITY_ANGLE} deg sector"), **facts)


def _blocks(pattern: Sequence[tuple[int, int]], n: int) -> list[np.ndarray]:
    """The diagonal blocks of an n x n matrix with nonzero ``pattern``: the connected components of its graph."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pattern:
        parent[root(i)] = root(j)
    labels = np.array([root(i) for i in range(n)])
    return [np.flatnonzero(labels == label) for label in dict.fromkeys(labels.tolist())]


class _BlockDiagonal:
    """``J`` as its diagonal blocks, grouped by size so that each group is one batched NumPy array: a problem with
    many simulation conditions has many small independent blocks (one per state copy), and its linear algebra then
    costs the sum of the blocks' cubes, not the cube of their total size."""

    def __init__(self, pattern: Sequence[tuple[int, int]], n: int) -> None:
        by_size: dict[int, list[np.ndarray]] = {}
        for block in _blocks(pattern, n):
            by_size.setdefault(len(block), []).append(block)
        self.n = n
        self.groups = [np.array(members) for _, members in sorted(by_size.items())]    # (B, m) state indices
        where = {}
        for g, indices in enumerate(self.groups):
            for b, member in enumerate(indices):
                for local, state in enumerate(member):
                    where[int(state)] = (g, b, local)
        # Per group: which pattern entries fall in it, and where (block, local row, local column).
        self.entries = []
        for g in range(len(self.groups)):
            chosen = [(e, where[i][1], where[i][2], where[j][2]) for e, (i, j) in enumerate(pattern)
                      if where[i][0] == g]
            self.entries.append(tuple(np.array([c[k] for c in chosen], dtype=np.intp) for k in range(4)))

    def matrices(self, values: np.ndarray) -> list[np.ndarray]:
        """The blocks, (K, B, m, m) per group, from the nonzero entries' values (E x K)."""
        K = values.shape[1]
        result = []
        for indices, (e, b, i, j) in zip(self.groups, self.entries):
            blocks = np.zeros((K, *indices.shape, indices.shape[1]))
            blocks[:, b, i, j] = values[e].T
            result.append(blocks)
        return result

    def eigenvalues(self, values: np.ndarray) -> np.ndarray:
        """The eigenvalues of ``J`` (K x n, in the order of the groups) from its nonzero entries (E x K)."""
        return np.concatenate([np.linalg.eigvals(blocks).reshape(values.shape[1], -1)
                               for blocks in self.matrices(values)], axis=1)

    def solver(self, values: np.ndarray, gamma: float) -> Any:
        """``v -> (I - gamma J)^{-1} v`` for ``J`` from its nonzero entries (E): one batched inverse per group;
        raises LinAlgError if a block is singular."""
        inverses = [np.linalg.inv(np.eye(indices.shape[1]) - gamma * blocks[0])
                    for indices, blocks in zip(self.groups, self.matrices(values[:, None]))]

        def apply(v: np.ndarray) -> np.ndarray:
            out = np.empty(self.n)
            for indices, inverse in zip(self.groups, inverses):
                out[indices] = np.einsum("bij,bj->bi", inverse, v[indices])
            return out

        return apply


@dataclass(frozen=True)
class _Trial:
    """The accepted steps of the trial solve: start times, states at the starts, sizes; or why it failed."""

    times: np.ndarray
    states: np.ndarray
    sizes: np.ndarray
    failure: str | None = None


def _trial(f: Any, factor: Any, autonomous: bool, y0: np.ndarray, t0: float, t1: float, rtol: float,
           atol: float, max_steps: int = 20_000) -> _Trial:
    """An adaptive solve of ``y' = f(t, y)`` by the linearly implicit Rosenbrock 2(3) pair of MATLAB's ode23s
    (Shampine & Reichelt, "The MATLAB ODE Suite", SIAM J. Sci. Comput. 18:1-22, 1997, Sect. 3.1): L-stable, so its
    steps are limited by accuracy alone.  ``f(t, y)`` (n) is a NumPy function and ``factor(t, y, gamma)`` returns
    ``v -> (I - gamma df/dy)^{-1} v``; ``df/dt`` is a forward difference (as in ode23s), 0 for an ``autonomous``
    model.  The error is measured in the RMS norm of ``err_i / (atol + rtol max(|y_i|, |y_new_i|))``."""
    d = 1.0 / (2.0 + math.sqrt(2.0))
    e32 = 6.0 + math.sqrt(2.0)
    n = len(y0)
    t, y = float(t0), np.array(y0, dtype=float)
    h = 1e-6 * (t1 - t0)
    times, states, sizes = [], [], []
    F0 = f(t, y)
    rejected = False
    while t < t1:
        if len(sizes) >= max_steps:
            return _Trial(np.array(times), np.array(states), np.array(sizes), f"more than {max_steps} steps")
        if h <= 1e-14 * max(1.0, abs(t)):
            return _Trial(np.array(times), np.array(states), np.array(sizes), f"step size underflow at t = {t:g}")
        h = min(h, t1 - t)
        if autonomous:
            T = np.zeros(n)
        else:
            delta = math.sqrt(np.finfo(float).eps) * max(abs(t), h)
            T = (f(t + delta, y) - F0) / delta
        with np.errstate(all="ignore"):
            try:
                W = factor(t, y, h * d)
            except np.linalg.LinAlgError:
                h *= 0.25
                rejected = True
                continue
            k1 = W(F0 + h * d * T)
            F1 = f(t + 0.5 * h, y + 0.5 * h * k1)
            k2 = W(F1 - k1) + k1
            y_new = y + h * k2
            F2 = f(t + h, y_new)
            k3 = W(F2 - e32 * (k2 - F1) - 2.0 * (k1 - F0) + h * d * T)
            error = h / 6.0 * (k1 - 2.0 * k2 + k3)
            scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
            norm = float(np.sqrt(np.mean((error / scale) ** 2)))
        if not math.isfinite(norm) or not np.all(np.isfinite(F2)):
            h *= 0.25
            rejected = True
            continue
        change = 0.8 * norm ** (-1.0 / 3.0) if norm > 0 else 5.0   # the error is O(h^3)
        if norm > 1.0:
            h *= max(0.2, change)
            rejected = True
            continue
        times.append(t)
        states.append(y)
        sizes.append(h)
        t, y, F0 = t + h, y_new, F2
        h *= min(1.0 if rejected else 5.0, max(0.2, change))
        rejected = False
    return _Trial(np.array(times), np.array(states), np.array(sizes))


def _rows(expressions: Sequence[sp.Expr], arguments: Sequence[sp.Symbol]) -> Any:
    """``F(t, *x, *p) -> (len(expressions), K)``: one lambdified NumPy function (common subexpressions shared),
    filled row by row (a constant entry comes back as a scalar and broadcasts); ``t`` and the ``x`` are K values
    or scalars (K = 1)."""
    from ..derive._numeric import _MODULES, lambdify_safely

    function = lambdify_safely(list(arguments), list(expressions), _MODULES, cse=True) if expressions else None

    def evaluate(*values: Any) -> np.ndarray:
        out = np.empty((len(expressions), np.size(values[0])))
        if function is not None:
            with np.errstate(all="ignore"):
                for row, value in enumerate(function(*values)):
                    out[row] = value
        return out

    return evaluate


def choose_scheme(model: Model, p: Sequence[float] | np.ndarray) -> SchemeChoice:
    """The scheme for ``model`` (the problem's solve model: its states, equations and initial values) at the model
    parameters ``p``: a trial solve (:func:`_trial`), the eigenvalues of ``J`` along it and :func:`decide`."""
    from ..derive import jacobian as state_jacobian
    from ..derive._numeric import _MODULES, lambdify_safely

    point = np.asarray(p, dtype=float)
    n = model.n_states
    rhs = sp.Matrix(list(model.rhs))
    jacobian = state_jacobian(model)       # cached per model: the code generator derives the same one
    pattern = [(i, j) for i in range(n) for j in range(n) if jacobian[i, j] != 0]
    autonomous = not any(model.time in e.free_symbols for e in rhs)
    arguments = [model.time, *model.states, *model.parameters]
    rhs_function = _rows(list(rhs), arguments)
    jacobian_function = _rows([jacobian[i, j] for i, j in pattern], arguments)
    blocks = _BlockDiagonal(pattern, n)

    def f(t: float, y: np.ndarray) -> np.ndarray:
        return rhs_function(t, *y, *point)[:, 0]

    def factor(t: float, y: np.ndarray, gamma: float) -> Any:
        return blocks.solver(jacobian_function(t, *y, *point)[:, 0], gamma)

    t0, t1 = (float(v) for v in model.t_span)
    try:
        initial = lambdify_safely(list(model.parameters), list(model.initial_conditions), _MODULES)
        y0 = np.array([float(v) for v in initial(*point)])
        trial = _trial(f, factor, autonomous, y0, t0, t1, TRIAL_RTOL, TRIAL_RTOL / 1000)
    except Exception as error:  # the probe must never stop the objective: the robust scheme and the reason
        return SchemeChoice(FALLBACK_SCHEME, True, None, 0, None, None, None,
                            f"the trial solve failed ({type(error).__name__}: {error}): the robust default")
    if trial.failure is not None or len(trial.sizes) == 0:
        return SchemeChoice(FALLBACK_SCHEME, True, None, len(trial.sizes), None, None, None,
                            f"the trial solve failed ({trial.failure or 'no steps'}): the robust default")
    samples = np.unique(np.linspace(0, len(trial.sizes) - 1, min(len(trial.sizes), MAX_SAMPLES)).round().astype(int))
    values = jacobian_function(trial.times[samples], *trial.states[samples].T, *point)       # (E, K)
    if not np.all(np.isfinite(values)):
        return SchemeChoice(FALLBACK_SCHEME, True, None, len(trial.sizes), None, None, None,
                            "the Jacobian is not finite along the trial solve: the robust default")
    eigenvalues = blocks.eigenvalues(values)
    return replace(decide(trial.sizes[samples], eigenvalues), trial_steps=len(trial.sizes))
