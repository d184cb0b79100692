"""Run the SBML Test Suite's semantic time-course cases through symsens's SBML import and ``symsens.solve``.

Usage::

    python benchmarks/sbml_suite.py PATH/TO/sbml-test-suite/cases/semantic [--levels best | 3.2 3.1 ...] [--cases 1-100]
        [--method radau] [--backend numpy] [--rtol 1e-10] [--atol 1e-14]

For each case (``NNNNN/``) and each requested SBML level/version, the script reads ``NNNNN-sbml-lLvV.xml``
(by default the highest level and version the case has, so each case counts once).
A case that is not a plain time course (``testType`` other than ``TimeCourse``, or SBML packages present) or
whose model uses something symsens does not support (the import raises its ``ModelError``) is counted as
skipped, with the reason.  Every other case is simulated with ``symsens.solve`` at the case's settings
(``NNNNN-settings.txt``: start, duration, steps, variables, absolute, relative, amount, concentration) and
compared with ``NNNNN-results.csv`` by the suite's rule ``|expected - simulated| <= absolute + relative *
|expected|`` at every time and variable.  The pass rate and every failure with its reason are printed.

The suite is public (https://github.com/sbmlteam/sbml-test-suite); it is not part of this repository.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

import symsens
from symsens._errors import ModelError, SymsensError
from symsens.model._sbml import read_sbml


# (file, why the first method failed) for the cases the fallback method integrated
FALLBACKS: list[tuple[str, str]] = []


def parse_settings(path: Path) -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            settings[key.strip().lower()] = value.strip()
    return settings


def names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def case_header(path: Path) -> dict[str, str]:
    header: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(errors="replace").splitlines()[:40]:
            match = re.match(r"^\s*(\w+):\s*(.*)$", line)
            if match:
                header[match.group(1)] = match.group(2).strip()
    return header


def read_results(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header = [h.strip() for h in rows[0]]
    data = np.array([[float(x) for x in row] for row in rows[1:] if row], dtype=float)
    return header, data


def simulate(xml: Path, settings: dict[str, str], args: argparse.Namespace) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Simulated values of the case's variables at its output times (raises ModelError if unsupported)."""
    imported = read_sbml(xml)
    model = imported.model
    start = float(settings["start"])
    duration = float(settings["duration"])
    steps = int(settings["steps"])
    times = np.linspace(start, start + duration, steps + 1)
    solution = None
    for method in (args.method, args.fallback):
        if not method:
            continue
        try:
            solution = symsens.solve(
                model, (0.0, float(times[-1])), t_eval=times, method=method, backend=args.backend,
                rtol=args.rtol, atol=args.atol, max_steps=1_000_000,
            )
        except (SymsensError, ValueError, ArithmeticError) as error:
            failure = f"{method}: {type(error).__name__}: {error}"
            continue
        if solution.status == "success":
            break
        failure = f"{method}: {solution.status} at t = {solution.t_failure}: {solution.message}"
        solution = None
    if solution is None:
        raise RuntimeError(f"integration failed: {failure}")
    if solution.method != args.method:
        FALLBACKS.append((xml.name, failure))
    state_index = {n: i for i, n in enumerate(model.state_names)}
    outputs = solution.outputs
    parameters = model.nominal_parameters

    def series(sbml_id: str) -> np.ndarray:
        name = imported.names.get(sbml_id)
        if name is None:
            raise LookupError(f"variable {sbml_id!r} is not a species, parameter or compartment of the import")
        if name in state_index:
            return solution.y[:, state_index[name]]
        if name in outputs:
            return np.asarray(outputs[name], dtype=float) * np.ones(len(solution.t))
        return np.full(len(solution.t), parameters[name])

    amount = set(names(settings.get("amount", "")))
    concentration = set(names(settings.get("concentration", "")))
    values: dict[str, np.ndarray] = {}
    for variable in names(settings.get("variables", "")):
        value = series(variable)
        if variable in imported.species:
            _, quantity, compartment = imported.species[variable]
            if variable in amount and quantity == "concentration":
                value = value * series(compartment)
            elif variable in concentration and quantity == "amount":
                value = value / series(compartment)
        values[variable] = value
    return solution.t, values


def run_case(case_dir: Path, level: str, args: argparse.Namespace) -> tuple[str, str]:
    """``("pass" | "fail" | "skip", reason)`` for one case at one level."""
    number = case_dir.name
    if level == "best":
        files = sorted(case_dir.glob(f"{number}-sbml-l*v*.xml"), key=_level_key)
        if not files:
            return "absent", "no SBML file"
        xml = files[-1]
    else:
        major, minor = level.split(".")
        xml = case_dir / f"{number}-sbml-l{major}v{minor}.xml"
    if not xml.exists():
        return "absent", f"no Level {level} file"
    header = case_header(case_dir / f"{number}-model.m")
    if header.get("testType", "TimeCourse") != "TimeCourse":
        return "skip", f"test type {header.get('testType')}"
    if header.get("packagesPresent"):
        return "skip", f"SBML packages {header['packagesPresent']}"
    settings = parse_settings(case_dir / f"{number}-settings.txt")
    try:
        times, values = simulate(xml, settings, args)
    except ModelError as error:
        return "skip", f"unsupported: {error.problem}"
    except (SymsensError, RuntimeError, LookupError, ValueError, ArithmeticError) as error:
        return "fail", f"{type(error).__name__}: {error}"
    columns, expected = read_results(case_dir / f"{number}-results.csv")
    absolute = float(settings.get("absolute", "0") or 0)
    relative = float(settings.get("relative", "0") or 0)
    if expected.shape[0] != len(times):
        return "fail", f"{len(times)} output times, expected {expected.shape[0]}"
    worst = ""
    for j, column in enumerate(columns[1:], start=1):
        if column not in values:
            return "fail", f"variable {column!r} not simulated"
        want = expected[:, j]
        got = values[column]
        for k in range(len(want)):
            if math.isnan(want[k]) or math.isinf(want[k]):
                if not (np.isnan(got[k]) if math.isnan(want[k]) else got[k] == want[k]):
                    return "fail", f"{column} at t = {times[k]:g}: {got[k]!r}, expected {want[k]!r}"
                continue
            if not abs(want[k] - got[k]) <= absolute + relative * abs(want[k]):
                worst = f"{column} at t = {times[k]:g}: {got[k]:.10g}, expected {want[k]:.10g}"
                return "fail", worst
    return "pass", ""


def _level_key(path: Path) -> tuple[int, int]:
    match = re.search(r"-sbml-l(\d+)v(\d+)\.xml$", path.name)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def case_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", type=Path, help="the suite's cases/semantic directory")
    parser.add_argument("--levels", nargs="+", default=["best"],
                        help="SBML level.version files to run, e.g. 3.2 3.1 2.4; 'best' (default): the highest "
                             "level and version each case has")
    parser.add_argument("--cases", dest="case_range", default=None, help="a range of case numbers, e.g. 1-200")
    parser.add_argument("--method", default="radau", help="integration scheme (default radau)")
    parser.add_argument("--backend", default="numpy", help="symsens.solve backend (default numpy: no compiler per case)")
    parser.add_argument("--fallback", default="dop853",
                        help="method tried when the first fails (default dop853, explicit: it needs no Jacobian); "
                             "'' for none")
    parser.add_argument("--rtol", type=float, default=1e-10)
    parser.add_argument("--atol", type=float, default=1e-14)
    parser.add_argument("--verbose", action="store_true", help="print every case as it runs")
    args = parser.parse_args(argv)
    low, high = case_range(args.case_range) if args.case_range else (0, 10**9)
    case_dirs = sorted(d for d in args.cases.iterdir() if d.is_dir() and d.name.isdigit() and low <= int(d.name) <= high)
    outcomes: dict[str, list[tuple[str, str, str]]] = {"pass": [], "fail": [], "skip": [], "absent": []}
    for case_dir in case_dirs:
        for level in args.levels:
            verdict, reason = run_case(case_dir, level, args)
            outcomes[verdict].append((case_dir.name, level, reason))
            if args.verbose:
                print(f"{case_dir.name} L{level}: {verdict} {reason}", flush=True)
    run = len(outcomes["pass"]) + len(outcomes["fail"])
    print(f"cases x levels: {len(case_dirs) * len(args.levels)} (no file at this level: {len(outcomes['absent'])})")
    print(f"skipped (not a time course, packages, or unsupported by symsens): {len(outcomes['skip'])}")
    print(f"run: {run}, passed: {len(outcomes['pass'])}, failed: {len(outcomes['fail'])}"
          + (f", pass rate {len(outcomes['pass']) / run:.1%}" if run else ""))
    # identifiers elided, function and package names kept: one line per kind of reason
    reasons = Counter(re.sub(r"(?<!function )(?<!package )'[^']*'", "'…'", r) for _, _, r in outcomes["skip"])
    print("skip reasons (grouped):")
    for reason, count in reasons.most_common():
        print(f"  {count:5d}  {reason}")
    if FALLBACKS:
        print(f"integrated with the fallback method {args.fallback} ({len(FALLBACKS)}):")
        for name, why in FALLBACKS:
            print(f"  {name}: first method failed: {why}")
    if outcomes["fail"]:
        print("failures:")
        for case, level, reason in outcomes["fail"]:
            print(f"  {case} L{level}: {reason}")
    return 0 if not outcomes["fail"] else 1


if __name__ == "__main__":
    sys.exit(main())
