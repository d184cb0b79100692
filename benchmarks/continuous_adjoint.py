"""Continuous adjoints, compiled against SciPy, at equal tolerance, with errors against a closed form.

    python benchmarks/continuous_adjoint.py [--repeats 20]

Problem: ``x1' = -s a x1 + x2``, ``x2' = -b x1 - x2/2``, ``x(0) = (1, c)`` on (0, 2), least squares against
fixed data at t = 0, 0.5, 1, 2 (jumps at both ends), gradient with respect to (a, b, c).  The exact gradient is
the closed form from ``scipy.linalg.expm`` and ``expm_frechet``.  ``s = 1`` (non-stiff) and ``s = 1e4`` (a fast mode
of rate 1.5e4).  Each row: the interpolating adjoint of ``symsens.gradient`` with a compiled scheme (forward and
backward in C++) and with the SciPy implementation at the counterpart integrator, both at rtol, atol = rtol/1000
and the adjoint tolerances equal to them; the maximum error relative to the largest gradient entry; the median
time of ``--repeats`` calls after a first one (which compiles); the backward steps taken.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.linalg import expm, expm_frechet

import symsens
from symsens.audit import DataLoss

P = np.array([1.5, 0.7, 0.3])
TIMES = np.array([0.0, 0.5, 1.0, 2.0])
OBSERVED = np.array([[0.9, 0.2], [0.5, 0.1], [0.2, -0.1], [0.1, 0.0]])
PAIRS = (("tsit5", "dopri5"), ("radau-iia-3", "radau"), ("bdf", "bdf"))


def model(stiffness: float) -> symsens.Model:
    return symsens.Model(states=["x1", "x2"], parameters=dict(zip("abc", P)),
                         rhs=[f"-{stiffness!r}*a*x1 + x2", "-b*x1 - 0.5*x2"], initial_conditions=["1", "c"],
                         name=f"linear-{stiffness:g}", t_span=(0.0, 2.0))


def closed_form(stiffness: float) -> np.ndarray:
    A = np.array([[-stiffness * P[0], 1.0], [-P[1], -0.5]])
    dA = [np.array([[-stiffness, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [-1.0, 0.0]]), np.zeros((2, 2))]
    y0, dy0 = np.array([1.0, P[2]]), [np.zeros(2), np.zeros(2), np.array([0.0, 1.0])]
    grad = np.zeros(3)
    for t, d in zip(TIMES, OBSERVED):
        E = expm(A * t)
        r = E @ y0 - d
        for j in range(3):
            grad[j] += 2.0 * float(r @ (expm_frechet(A * t, dA[j] * t, compute_expm=False) @ y0 + E @ dy0[j]))
    return grad


def timed(call, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    result = call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    loss = DataLoss(TIMES, OBSERVED, ("x1", "x2"))
    print("| stiffness | rtol | compiled scheme | error | ms | backward steps | SciPy | error | ms | "
          "backward steps | time ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for stiffness in (1.0, 1e4):
        m = model(stiffness)
        exact = closed_form(stiffness)
        scale = float(np.max(np.abs(exact)))
        for rtol in (1e-4, 1e-6, 1e-8, 1e-10):
            for compiled_scheme, scipy_scheme in PAIRS:
                if stiffness > 1 and compiled_scheme == "tsit5":
                    continue
                cells = []
                seconds = []
                for scheme, backend in ((compiled_scheme, "compiled"), (scipy_scheme, "scipy")):
                    repeats = args.repeats if backend == "compiled" else max(1, args.repeats // 10)
                    median, result = timed(lambda: symsens.gradient(  # noqa: B023
                        m, loss, method="adjoint-interpolating", scheme=scheme, backend=backend, rtol=rtol), repeats)
                    if result.gradient is None:
                        cells += [scheme, f"failed: {result.status}", "–", "–"]
                        seconds.append(float("nan"))
                        continue
                    error = float(np.max(np.abs(result.gradient - exact))) / scale
                    cells += [scheme, f"{error:.1e}", f"{1e3 * median:.2f}",
                              str(result.statistics["backward"].get("steps", "–"))]
                    seconds.append(median)
                ratio = seconds[1] / seconds[0] if all(np.isfinite(seconds)) else float("nan")
                print(f"| {stiffness:g} | {rtol:g} | " + " | ".join(cells) + f" | {ratio:.0f} |", flush=True)


if __name__ == "__main__":
    main()
