"""Time to verified digits with ``symsens.reference``: the fast (double-double C++) path and the mpmath path.

Cases:

1. Hodgkin–Huxley (built-in, 100 ms): the gradient of the state at t = 100 ms w.r.t. g_Na, g_K, g_L to 16
   verified digits.  Target: under 60 s.
2. Robertson to t = 1e5 (rate constants as the exact decimals 0.04, 3e7, 1e4), with its gradient w.r.t.
   k1, k2, k3, to 16 verified digits.  Target: under 60 s.
3. The mpmath path on the same problems, once (it is slow), with the ratio to the fast path's median.  By
   default at fewer digits (``--mpmath-digits``, default 10) and for HH with respect to g_Na only, because the
   Python Taylor integrator needs minutes for the full case; the table says what was run.

Each fast case is run ``--repeats`` times (median, min, max) after one warm-up run that compiles the model
(compilation is cached and not timed).  The table also prints the verified digits and the number of runs of
the verification ladder.

4. Hard problems, fast path only: the calcium neuron's sensitivities to all 13 parameters at t = 50 (target: 10
   verified digits in under 300 s) and E5 to t = 1e13 (14 digits asked; y1 and y4 are below the double range).

Run: ``python benchmarks/reference.py [--repeats N] [--mpmath-digits D] [--skip-mpmath]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import symsens  # noqa: E402
from symsens.reference import reference  # noqa: E402

CASES = {
    "hodgkin-huxley": {
        "model": "hodgkin-huxley", "t_span": (0.0, 100.0), "p": None, "parameters": ["g_Na", "g_K", "g_L"],
    },
    "robertson-1e5": {
        "model": "robertson", "t_span": (0.0, 1e5), "p": {"k1": "0.04", "k2": "3e7", "k3": "1e4"},
        "parameters": ["k1", "k2", "k3"],
    },
    # Hard problems (fast path only): the calcium neuron's 169 sensitivities at t = 50 (target: 10 digits in
    # under 300 s), and E5 to t = 1e13 (y1, y4 below the double range; y2, y3 ill-conditioned, 15 digits at most).
    "calcium-neuron-50": {
        "model": "calcium-neuron", "t_span": (0.0, 50.0), "p": None, "parameters": None, "fast_only": True,
    },
    "e5-1e13": {
        "model": "e5", "t_span": (0.0, 1e13), "p": {"A": "7.89e-10", "B": "1.1e7", "C": "1.13e3", "M": "1e6"},
        "parameters": None, "sensitivity": False, "digits": 14, "fast_only": True,
    },
}


def _e5() -> symsens.Model:
    """E5 (Hairer & Wanner, Solving ODEs II, Sect. IV.10; Mazzia & Magherini's test set, problem e5)."""
    return symsens.Model(
        states=["y1", "y2", "y3", "y4"], parameters={"A": 7.89e-10, "B": 1.1e7, "C": 1.13e3, "M": 1e6},
        rhs=["-A*y1 - B*y1*y3", "A*y1 - M*C*y2*y3", "A*y1 - B*y1*y3 - M*C*y2*y3 + C*y4", "B*y1*y3 - C*y4"],
        initial_conditions=["1.76e-3", "0", "0", "0"], name="e5", t_span=(0.0, 1e13),
    )


def run_case(case: dict, digits: int, **options: object) -> tuple[float, symsens.Reference]:
    model = _e5() if case["model"] == "e5" else symsens.load_model(case["model"])
    if "sensitivity" in case:
        options = {"sensitivity": case["sensitivity"], **options}
    start = time.perf_counter()
    result = reference(model, case["t_span"], p=case["p"], parameters=case["parameters"],
                       digits=min(digits, case.get("digits", digits)), **options)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--digits", type=int, default=16)
    parser.add_argument("--mpmath-digits", type=int, default=10)
    parser.add_argument("--skip-mpmath", action="store_true")
    args = parser.parse_args()

    print(f"symsens.reference: time to {args.digits} verified digits (median of {args.repeats}, compile excluded)\n")
    header = f"{'case':<28} {'path':<14} {'digits':>6} {'verified':>8} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}"
    print(header)
    print("-" * len(header))
    fast_medians: dict[str, float] = {}
    for name, case in CASES.items():
        run_case(case, 6)  # warm-up: code generation and compilation (cached)
        times = []
        result = None
        for _ in range(args.repeats):
            seconds, result = run_case(case, args.digits)
            times.append(seconds)
        assert result is not None
        fast_medians[name] = statistics.median(times)
        print(f"{name:<28} {'double-double':<14} {result.requested_digits:>6} {result.verified_digits:>8} "
              f"{len(result.runs):>4} {statistics.median(times):>9.2f} {min(times):>7.2f} {max(times):>7.2f}")
        below = int(result.y_below_range.sum()) if result.y_below_range is not None else 0
        print(f"{'':<28} family: {result.method} ({result.family_reason})"
              + (f"; {below} values below {result.below_range_threshold:.0e}" if below else ""))
        target = 60.0
        status = "meets" if statistics.median(times) < target else "MISSES"
        print(f"{'':<28} target < {target:.0f} s: {status}")
    if args.skip_mpmath:
        return
    print(f"\nmpmath path (one run each; Taylor series for HH, Radau IIA collocation for Robertson)")
    print("('agree': the fewest significant digits on which the two paths agree, over every value)")
    print(f"{'case':<28} {'digits':>6} {'verified':>8} {'agree':>6} {'seconds':>9} {'fast s':>8} {'ratio':>8}")
    for name, case in CASES.items():
        if case.get("fast_only"):
            continue
        small = dict(case)
        if name == "hodgkin-huxley":
            small["parameters"] = ["g_Na"]
        fast_runs = [run_case(small, args.mpmath_digits) for _ in range(args.repeats)]
        fast_seconds = statistics.median(seconds for seconds, _ in fast_runs)
        fast = fast_runs[-1][1]
        seconds, result = run_case(small, args.mpmath_digits, path="mpmath",
                                   method="taylor" if name == "hodgkin-huxley" else "radau-iia")
        agree = _agreement(fast, result)
        label = name + (" (g_Na only)" if name == "hodgkin-huxley" else "")
        print(f"{label:<28} {args.mpmath_digits:>6} {result.verified_digits:>8} {agree:>6} {seconds:>9.1f} "
              f"{fast_seconds:>8.2f} {seconds / fast_seconds:>8.0f}x")


def _agreement(a: symsens.Reference, b: symsens.Reference) -> int:
    from symsens.reference._verify import significant_digits

    pairs = [(a.y_mp[k][i], b.y_mp[k][i]) for k in range(len(a.t)) for i in range(len(a.state_names))]
    if a.sensitivities_mp is not None and b.sensitivities_mp is not None:
        pairs += [(a.sensitivities_mp[k][i][j], b.sensitivities_mp[k][i][j]) for k in range(len(a.t))
                  for i in range(len(a.state_names)) for j in range(len(a.parameters))]
    return min(significant_digits(y, abs(x - y), 40) for x, y in pairs)


if __name__ == "__main__":
    main()
