"""``run_vanishing``: the whole test-equation study (sweeps, exponents, explicit boundary) in one call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._explicit import EXPLICIT_SCHEMES, BoundaryResult, explicit_boundary
from ._fit import ExponentFit, exponent_table
from ._testeq import DEFAULT_Z, FAMILIES, SweepResult, compiled_method_names, engine_of, family_of, sweep

__all__ = ["VanishingReport", "run_vanishing", "DEFAULT_SCHEMES", "prepare_compiled"]

#: Every implicit one-step scheme of the catalogue, BDF1-6 and the exponential schemes.
DEFAULT_SCHEMES: tuple[str, ...] = tuple(n for names in FAMILIES.values() for n in names)


@dataclass(frozen=True)
class VanishingReport:
    sweeps: list[SweepResult]
    exponents: list[ExponentFit]
    explicit: list[BoundaryResult]
    steps: tuple[int, ...]
    diagnosis: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    def families(self) -> dict[str, list[SweepResult]]:
        out: dict[str, list[SweepResult]] = {}
        for r in self.sweeps:
            out.setdefault(r.family, []).append(r)
        return out

    def exponents_json(self) -> dict[str, dict[str, float]]:
        return {e.scheme: {k: round(v, 6) for k, v in e.fitted.items()} for e in self.exponents}

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "exponents": self.exponents_json(),
            "exact_exponents": {e.scheme: e.exact for e in self.exponents},
            "fit_ranges": {e.scheme: list(e.z_range) for e in self.exponents},
            "engines": {r.scheme: r.engine for r in self.sweeps},
            "max_relative_difference_measured_vs_closed": {
                f"{r.scheme}/n={r.steps}": _max_finite(r.relative_difference) for r in self.sweeps
            },
            "explicit": {
                b.scheme: {"boundary": b.boundary, "one_step_amplification": b.one_step_amplification,
                           "steps": b.steps.tolist(), "n_step_amplification": np.abs(b.amplification).tolist()}
                for b in self.explicit
            },
            "steps": list(self.steps),
            "timings_seconds": self.timings,
        }
        if self.diagnosis is not None:
            record["diagnosis"] = self.diagnosis.summary()
        return record


def _max_finite(values: np.ndarray) -> float | None:
    v = values[np.isfinite(values)]
    return float(v.max()) if len(v) else None


def prepare_compiled(names: Sequence[str], workers: int = 2) -> None:
    """Build (or load) the compiled test-equation solvers of ``names``, ``workers`` at a time."""
    from ..integrate._compiled import compiled_solver
    from ._testeq import _test_model

    model = _test_model()
    wanted = [n for n in names if n in compiled_method_names()]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(lambda n: compiled_solver(model, ["lam"], n), wanted))


def run_vanishing(
    schemes: Sequence[str] = DEFAULT_SCHEMES, *, steps: Sequence[int] = (1, 10), z: Sequence[float] | None = None,
    explicit: Sequence[str] = EXPLICIT_SCHEMES, workers: int = 2,
    progress: Callable[[int, int, str], None] | None = None,
) -> VanishingReport:
    """Sweeps of every scheme for every step count, the exponent table and the explicit-boundary study.

    ``progress(done, total, label)`` is called after each piece of work (compiling, each sweep, the exponent
    table, each explicit scheme), so a command can show that a run of minutes is moving.
    """
    import time

    timings: dict[str, float] = {}
    start = time.perf_counter()
    for name in list(schemes) + list(explicit):
        engine_of(name)  # unknown names fail here, before any work
    total = 1 + len(schemes) * len(steps) + 1 + len(explicit)
    done = 0

    def advance(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, label)

    prepare_compiled(list(schemes) + list(explicit), workers)
    timings["compile_or_load"] = time.perf_counter() - start
    advance("compiled the test-equation solvers")
    z = DEFAULT_Z if z is None else np.asarray(z, dtype=float)
    t0 = time.perf_counter()
    sweeps = []
    for name in schemes:
        for n in steps:
            sweeps.append(sweep(name, z, n, "rate"))
            advance(f"{name}, {n} step{'s' if n != 1 else ''}")
    timings["sweeps"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    exponents = exponent_table(schemes)
    timings["exponents"] = time.perf_counter() - t0
    advance("exponent table")
    t0 = time.perf_counter()
    boundary = []
    for name in explicit:
        boundary.append(explicit_boundary(name))
        advance(f"{name} at the stability boundary")
    timings["explicit"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    _ = family_of
    return VanishingReport(sweeps=sweeps, exponents=exponents, explicit=boundary, steps=tuple(steps), timings=timings)
