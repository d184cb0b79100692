"""The implicit C++ steppers (SDIRK/ESDIRK, Radau IIA, Rosenbrock, BDF) as standalone C++ programs.

The programs under ``tests/cpp/`` include the headers of ``symsens/integrate/cpp`` directly; this module writes
the runtime header and a ``tableaux.hpp`` generated from the exact catalogue next to them, compiles them with
the system compiler, runs them and checks what they print (one JSON object per line):

* convergence order from the log-log slope of the fixed-step global error on ``y' = lambda y`` and on a
  non-autonomous nonlinear problem with a closed form;
* adaptive solves of Robertson (t to 1e5) and van der Pol (mu = 1000) against scipy's Radau at rtol 1e-12;
* the discrete forward mode (Dual<double, 1>) against central differences of the same solver replaying the
  same steps, and with differentiated step sizes against central differences of the adaptive solver;
* evaluation counters.

The helpers ``dirk_tableau_cpp``, ``rosenbrock_tableau_cpp`` and ``radau_tableau_cpp`` show, field by field, how
the generator fills the C++ tableau structs from the catalogue.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
from scipy.integrate import solve_ivp

from symsens.codegen._runtime import runtime_header
from symsens.schemes._registry import get_scheme

ROOT = Path(__file__).resolve().parent.parent
SOLVER_HEADERS = ROOT / "symsens" / "integrate" / "cpp"
TEST_SOURCES = Path(__file__).resolve().parent / "cpp"
PROGRAMS = ("test_dirk", "test_radau", "test_rosenbrock", "test_bdf")

DIRK_METHODS = {"kvaerno5": "kvaerno5", "kvaerno4": "kvaerno4", "kvaerno3": "kvaerno3", "tr_bdf2": "tr-bdf2",
                "sdirk4": "sdirk4", "sdirk2": "sdirk2"}
ROSENBROCK_METHODS = {"rodas4": "rodas4", "rodas5p": "rodas5p", "rodas3": "rodas3", "ros3p": "ros3p", "ros2": "ros2"}


# ---------------------------------------------------------------------------------------------------------------
# Tableau structs from the exact catalogue (what the generator does).
# ---------------------------------------------------------------------------------------------------------------
def _literal(value: Any) -> str:
    """A coefficient as ``T(<double>)``: rounded once from a 40-digit evaluation of the exact value."""
    return f"T({float(sympy.N(value, 40))!r})"


def _list(values: Sequence[Any]) -> str:
    return "{" + ", ".join(_literal(v) for v in values) + "}"


def _error_order(scheme: Any) -> int:
    """q + 1, q the lower order of the pair (the exponent of h in the local error estimate)."""
    if scheme.b_error is None:
        return scheme.order + 1
    return min(scheme.order, scheme.embedded_order) + 1


def dirk_tableau_cpp(function: str, name: str) -> str:
    """``symsens::DiagonallyImplicitTableau<T>`` of catalogue scheme ``name`` as a C++ function ``function<T>()``."""
    s = get_scheme(name)
    n = s.stages
    zero = sympy.Integer(0)
    e = [bi - bh for bi, bh in zip(s.b, s.b_error)] if s.b_error is not None else [zero] * n
    return f"""
constexpr int {function}_error_order = {_error_order(s)};
template <class T> symsens::DiagonallyImplicitTableau<T> {function}() {{
    symsens::DiagonallyImplicitTableau<T> t;
    t.stages = {n};
    t.error_order = {function}_error_order;
    t.explicit_first_stage = {"true" if s.family == "esdirk" else "false"};
    t.gamma = {_literal(s.A[n - 1][n - 1])};
    t.a = {_list([s.A[i][j] for i in range(n) for j in range(n)])};
    t.b = {_list(s.b)};
    t.e = {_list(e)};
    t.c = {_list(s.c)};
    return t;
}}
"""


def rosenbrock_tableau_cpp(function: str, name: str) -> str:
    """``symsens::RosenbrockTableauT<T>`` of catalogue scheme ``name``."""
    s = get_scheme(name)
    n = s.stages
    e = [bi - bh for bi, bh in zip(s.b, s.b_error)]
    return f"""
constexpr int {function}_error_order = {_error_order(s)};
template <class T> symsens::RosenbrockTableauT<T> {function}() {{
    symsens::RosenbrockTableauT<T> t;
    t.stages = {n};
    t.error_order = {function}_error_order;
    t.alpha = {_list([s.alpha[i][j] for i in range(n) for j in range(n)])};
    t.gamma = {_list([s.gamma[i][j] for i in range(n) for j in range(n)])};
    t.b = {_list(s.b)};
    t.e = {_list(e)};
    t.c = {_list(s.alpha_sum)};
    t.gamma_sum = {_list(s.gamma_sum)};
    return t;
}}
"""


def radau_constants(digits: int = 50) -> dict[str, Any]:
    """Hairer's transformation and the RADAU5 error weights as floats, from the library's generator
    (``symsens.integrate._compiled._radau_constants``, which checks the block form and RADAU5's closed-form
    error weights), plus the tableau itself."""
    from symsens.integrate._compiled import _radau_constants

    A, b, c, _ = get_scheme("radau-iia-3").as_float()
    k = _radau_constants(digits)
    return {
        "a": [float(v) for v in A.ravel()], "b": [float(v) for v in b], "c": [float(v) for v in c],
        "mu": float(k["mu"][0]), "alpha": float(k["alpha"][0]), "beta": float(k["beta"][0]),
        "t": [float(v) for v in k["t"]], "ti": [float(v) for v in k["ti"]],
        "gamma0": float(k["gamma0"][0]), "e": [float(v) for v in k["e"]],
    }


def radau_tableau_cpp() -> str:
    k = radau_constants()

    def lst(values: Sequence[float]) -> str:
        return "{" + ", ".join(f"T({v!r})" for v in values) + "}"

    return f"""
template <class T> symsens::RadauTableau<T> radau_iia_3() {{
    symsens::RadauTableau<T> t;
    t.a = {lst(k["a"])};
    t.b = {lst(k["b"])};
    t.c = {lst(k["c"])};
    t.mu = T({k["mu"]!r});
    t.alpha = T({k["alpha"]!r});
    t.beta = T({k["beta"]!r});
    t.t = {lst(k["t"])};
    t.ti = {lst(k["ti"])};
    t.gamma0 = T({k["gamma0"]!r});
    t.e = {lst(k["e"])};
    t.error_order = 4;
    return t;
}}
"""


def tableaux_header() -> str:
    parts = [
        "// Generated by tests/test_implicit_steppers.py from the exact catalogue.",
        "#pragma once",
        '#include "symsens_dirk.hpp"',
        '#include "symsens_radau.hpp"',
        '#include "symsens_rosenbrock.hpp"',
        "namespace tableaux {",
    ]
    parts += [dirk_tableau_cpp(f, n) for f, n in DIRK_METHODS.items()]
    parts += [rosenbrock_tableau_cpp(f, n) for f, n in ROSENBROCK_METHODS.items()]
    parts.append(radau_tableau_cpp())
    parts.append("}  // namespace tableaux")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Build and run (once per session, the four programs compiled in parallel).
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler on PATH")
    work = tmp_path_factory.mktemp("implicit_steppers")
    (work / "symsens_runtime.hpp").write_text(runtime_header())
    (work / "tableaux.hpp").write_text(tableaux_header())
    processes = {}
    for name in PROGRAMS:
        command = [compiler, "-std=c++17", "-O1", "-I", str(work), "-I", str(SOLVER_HEADERS), "-I", str(TEST_SOURCES),
                   str(TEST_SOURCES / f"{name}.cpp"), "-o", str(work / name)]
        processes[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, process in processes.items():
        _, err = process.communicate()
        assert process.returncode == 0, f"compiling {name} failed:\n{err}"
    records: list[dict[str, Any]] = []
    runs = {name: subprocess.Popen([str(work / name)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in PROGRAMS}
    for name, process in runs.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name} failed:\n{err}"
        for line in out.splitlines():
            record = json.loads(line)
            record["program"] = name
            records.append(record)
    return records


def _select(records: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


# ---------------------------------------------------------------------------------------------------------------
# Convergence orders.
# ---------------------------------------------------------------------------------------------------------------
ORDERS = [
    ("kvaerno5", 5), ("kvaerno4", 4), ("kvaerno3", 3), ("tr-bdf2", 2), ("sdirk4", 4), ("sdirk2", 2),
    ("radau-iia-3", 5),
    ("rodas4", 4), ("rodas5p", 5), ("rodas3", 3), ("ros3p", 3), ("ros2", 2),
    ("bdf1", 1), ("bdf2", 2), ("bdf3", 3), ("bdf4", 4), ("bdf5", 5), ("ndf2", 2), ("ndf4", 4),
]


def measured_order(points: list[dict[str, Any]]) -> float:
    """Slope of log(error) against log(h) over the four smallest steps whose error is above rounding."""
    usable = sorted((p for p in points if p["status"] == 0 and 1e-11 < p["error"] < 1e-1), key=lambda p: p["h"])
    assert len(usable) >= 3, points
    usable = usable[:4]
    slope = np.polyfit(np.log([p["h"] for p in usable]), np.log([p["error"] for p in usable]), 1)[0]
    return float(slope)


# On y' = lambda y a one-step method converges at the order of R(z) - e^z, which can exceed the classical order:
# for Rodas5P R(z) - e^z = O(z^7) (from the catalogue's exact stability function), so the linear problem shows
# order 6 approached from below (about 5.6-5.9 at the step sizes where the error is above rounding).
LINEAR_ORDER = {"rodas5p": 6}


@pytest.mark.parametrize("problem", ["linear", "nonlinear"])
@pytest.mark.parametrize(("method", "order"), ORDERS)
def test_convergence_order(results: list[dict[str, Any]], method: str, order: int, problem: str) -> None:
    points = _select(results, kind="order", method=method, problem=problem)
    assert points, f"no order records for {method}"
    slope = measured_order(points)
    highest = LINEAR_ORDER.get(method, order) if problem == "linear" else order
    assert order - 0.3 < slope < highest + 0.3, (method, problem, slope, [(p["n"], p["error"]) for p in points])


# ---------------------------------------------------------------------------------------------------------------
# Adaptive stiff solves against scipy's Radau at rtol 1e-12.
# ---------------------------------------------------------------------------------------------------------------
ROBERTSON_TIMES = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
VDP_TIMES = [250.0, 500.0, 1000.0, 1500.0, 2000.0]
ADAPTIVE_METHODS = ["kvaerno5", "tr-bdf2", "sdirk4", "radau-iia-3", "rodas4", "rodas5p", "bdf"]


@pytest.fixture(scope="module")
def robertson_reference() -> np.ndarray:
    k1, k2, k3 = 0.04, 1e4, 3e7

    def f(t: float, y: np.ndarray) -> list[float]:
        return [-k1 * y[0] + k2 * y[1] * y[2], k1 * y[0] - k2 * y[1] * y[2] - k3 * y[1] ** 2, k3 * y[1] ** 2]

    def jac(t: float, y: np.ndarray) -> list[list[float]]:
        return [[-k1, k2 * y[2], k2 * y[1]], [k1, -k2 * y[2] - 2 * k3 * y[1], -k2 * y[1]], [0, 2 * k3 * y[1], 0]]

    sol = solve_ivp(f, (0, 1e5), [1.0, 0.0, 0.0], method="Radau", jac=jac, rtol=1e-12, atol=1e-20,
                    t_eval=ROBERTSON_TIMES)
    assert sol.success
    return sol.y.T


@pytest.fixture(scope="module")
def vdp_reference() -> np.ndarray:
    mu = 1000.0

    def f(t: float, y: np.ndarray) -> list[float]:
        return [y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]]

    def jac(t: float, y: np.ndarray) -> list[list[float]]:
        return [[0.0, 1.0], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] ** 2)]]

    sol = solve_ivp(f, (0, 2000), [2.0, 0.0], method="Radau", jac=jac, rtol=1e-12, atol=1e-12, t_eval=VDP_TIMES)
    assert sol.success
    return sol.y.T


def _relative_error(y: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(y - reference) / np.abs(reference)))


# Steps ending on the output times: the error is the solver's own.  TR-BDF2 (order 2) needs ~3800 steps on van
# der Pol and accumulates a phase error of 1.5e-4 just before the second relaxation jump (t = 1500).
ONTO_BOUND = {("tr-bdf2", "vdp"): 3e-4}
# Outputs interpolated inside steps: drive() uses the cubic Hermite interpolant of each step (HNW I, II.6), whose
# error at the long steps of the slow phases (Robertson t > 1e3, h ~ 1e3) reaches 1e-4 .. 6e-4; methods with a
# dense output of their own (Radau's collocation polynomial, Rodas' interpolants) need a hook in drive() (report).
INTERPOLATED_BOUND = 1e-3
MAX_STEPS = {"robertson": 1500, "vdp": 6000}


def _check_adaptive(record: dict[str, Any], reference: np.ndarray, method: str, problem: str) -> None:
    assert record["status"] == 0, record
    y = np.array(record["y"]).reshape(reference.shape)
    error = _relative_error(y, reference)
    bound = ONTO_BOUND.get((method, problem), 1e-4) if record["onto"] else INTERPOLATED_BOUND
    assert error < bound, (method, problem, record["onto"], error)
    assert record["accepted"] < MAX_STEPS[problem], record
    assert record["nfev"] > record["accepted"] and record["njev"] > 0 and record["nlu"] >= record["njev"]
    if method.startswith("rodas"):
        # One Jacobian per step start (kept after a rejection), one LU per attempt.
        assert record["njev"] == record["accepted"]
        assert record["nlu"] == record["accepted"] + record["rejected"]
        assert record["newton"] == 0
    else:
        assert record["newton"] > 0
    if method == "radau-iia-3":
        assert record["nlu"] % 2 == 0  # the real and the complex LU are always formed together


@pytest.mark.parametrize("onto", [1, 0])
@pytest.mark.parametrize("method", ADAPTIVE_METHODS)
def test_robertson_adaptive(results: list[dict[str, Any]], robertson_reference: np.ndarray, method: str, onto: int) -> None:
    (record,) = _select(results, kind="adaptive", method=method, problem="robertson", onto=onto)
    _check_adaptive(record, robertson_reference, method, "robertson")


@pytest.mark.parametrize("onto", [1, 0])
@pytest.mark.parametrize("method", ADAPTIVE_METHODS)
def test_van_der_pol_adaptive(results: list[dict[str, Any]], vdp_reference: np.ndarray, method: str, onto: int) -> None:
    (record,) = _select(results, kind="adaptive", method=method, problem="vdp", onto=onto)
    _check_adaptive(record, vdp_reference, method, "vdp")


# ---------------------------------------------------------------------------------------------------------------
# Discrete forward mode.
# ---------------------------------------------------------------------------------------------------------------
DISCRETE_METHODS = ["kvaerno5", "tr-bdf2", "sdirk4", "radau-iia-3", "rodas4", "rodas5p", "bdf"]


@pytest.mark.parametrize("problem", ["robertson", "nonlinear", "vdp"])
@pytest.mark.parametrize("method", DISCRETE_METHODS)
def test_discrete_mode_equals_frozen_step_differences(results: list[dict[str, Any]], method: str, problem: str) -> None:
    (record,) = _select(results, kind="discrete", method=method, problem=problem)
    assert record["status"] == 0
    # The adaptive dual run takes the same values (bit for bit), hence the same steps and Newton iterations, as
    # the double run: its partials are the derivative of that very program.
    assert record["y_dual_adaptive"] == record["y"]
    assert record["steps_dual_adaptive"] == record["steps"]
    assert record["newton_dual_adaptive"] == record["newton"]
    # Replaying the steps is a slightly different program (no rejected attempts, so other Jacobian refreshes):
    # the same solution to within the Newton tolerance.
    np.testing.assert_allclose(record["y_dual"], record["y"], rtol=1e-6)
    np.testing.assert_allclose(record["dual_adaptive"], record["dual"], rtol=1e-4, atol=1e-4 * np.abs(record["dual"]).max())
    # The differences are of the same program only if no iteration count changed between p - delta and p + delta.
    assert record["newton_plus"] == record["newton_minus"] == record["newton_replay"]
    dual, fd = np.array(record["dual"]), np.array(record["fd"])
    scale = np.max(np.abs(fd))
    np.testing.assert_allclose(dual, fd, rtol=1e-7, atol=1e-7 * scale)


@pytest.mark.parametrize("problem", ["robertson", "nonlinear", "vdp"])
@pytest.mark.parametrize("method", DISCRETE_METHODS)
def test_differentiated_steps_equal_adaptive_differences(results: list[dict[str, Any]], method: str, problem: str) -> None:
    """With Time = Dual the step sizes carry derivatives: the result is the derivative of the adaptive program."""
    (record,) = _select(results, kind="discrete", method=method, problem=problem)
    assert record["status_steps"] == 0
    assert record["steps_fd_adaptive"] == 2 * record["steps_differentiated"]
    # Differences of the adaptive program see more branches (accept/reject, factor limits) that a perturbation
    # may flip than the replayed one, hence the looser bound.
    dual, fd = np.array(record["dual_steps"]), np.array(record["fd_adaptive"])
    scale = np.max(np.abs(fd))
    np.testing.assert_allclose(dual, fd, rtol=1e-5, atol=1e-5 * scale)


def test_dense_solvers_with_pivoting(results: list[dict[str, Any]]) -> None:
    """DenseLu and ComplexLu (symsens_implicit.hpp) solve random pivoted systems to rounding."""
    (record,) = _select(results, kind="linear_algebra")
    assert record["dense_lu"] < 1e-13 and record["complex_lu"] < 1e-13, record


def test_solver_lu_with_pivoting(results: list[dict[str, Any]]) -> None:
    """symsens::Lu (the shared solver LU) solves random systems that need row interchanges to rounding."""
    (record,) = _select(results, kind="linear_algebra")
    assert record["solver_lu"] < 1e-13, record


def test_rosenbrock_time_derivative(results: list[dict[str, Any]]) -> None:
    """Non-autonomous Rodas4 at rtol 1e-8: exact f_t (duals in t) and the forward difference agree with the closed form."""
    exact, difference = (_select(results, kind="time_derivative", difference=d)[0] for d in (0, 1))
    for record in (exact, difference):
        assert record["status"] == 0
        assert record["error"] < 1e-7, record
        # Per step: 5 stage evaluations (stage 1 is f(t, y)), f(t + h, y_new), and f_t (one evaluation either way,
        # kept after a rejection); plus f(t0, y0) and the probe of the initial step size.
        assert record["nfev"] == 7 * record["accepted"] + 6 * record["rejected"] + 2, record


# ---------------------------------------------------------------------------------------------------------------
# Continuous forward sensitivities through the same steppers.
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", DISCRETE_METHODS)
def test_forward_sensitivities_run(results: list[dict[str, Any]], method: str) -> None:
    (forward,) = _select(results, kind="forward", method=method, problem="robertson")
    (discrete,) = _select(results, kind="discrete", method=method, problem="robertson")
    assert forward["status"] == 0
    S = np.array(forward["u"][3:])
    dual = np.array(discrete["dual"])
    np.testing.assert_allclose(S, dual, rtol=1e-3, atol=1e-3 * np.max(np.abs(dual)))
