"""Tests of symsens.reference, each value checked against something independent of the code under test.

- the double-double arithmetic against mpmath at 50 digits;
- the collocation tableaux against the exact catalogue (symsens.schemes);
- the digit count against its definition;
- closed forms: y' = A(p) y against mpmath's matrix exponential and its derivative (Van Loan's block
  identity), the built-in stiff-linear and two-scale-linear models against their closed forms, at 20+
  digits (fast path) and 30+ digits (mpmath path);
- published reference values: Robertson at t = 1e11 and HIRES at t = 321.8122 from Mazzia & Magherini's
  Test Set for IVP Solvers (and Robertson's mass conservation as a check of the arithmetic);
- the fast and the mpmath path against each other (van der Pol mu = 10, Hodgkin–Huxley);
- an honest answer under a too small time budget: fewer digits, each of them correct;
- errors naming the argument; the command line.
"""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.cli import main
from symsens.reference import collocation_tableau, reference
from symsens.reference._fast import fast_solver
from symsens.reference._verify import significant_digits


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def correct_digits(exact: mpmath.mpf, value: mpmath.mpf) -> int:
    """Significant digits of ``value`` that are correct, judged against ``exact``."""
    return significant_digits(exact, abs(value - exact), 60)


# ------------------------------------------------------------------------------------------------------------
# A linear system y' = A(p) y with a closed form through the matrix exponential.
# ------------------------------------------------------------------------------------------------------------

def _linear_model() -> symsens.Model:
    y1, y2, y3, a, b, c = sp.symbols("y1 y2 y3 a b c")
    return symsens.Model(
        states=[y1, y2, y3],
        parameters={a: 0.5, b: 1.25, c: 0.75},
        rhs=[-a * y1 + b * y2, -b * y1 - a * y2 + c * y3, c * y1 - 2 * y3],
        initial_conditions=[1, 0, sp.Rational(1, 2)],
        name="linear-3",
        t_span=(0.0, 2.0),
    )


def _linear_closed_form(t: float, p: dict[str, mpmath.mpf]) -> tuple[list[mpmath.mpf], list[list[mpmath.mpf]]]:
    """y(t) = expm(A t) y0 and dy/dp_j = (d/dp_j expm(A t)) y0, the derivative from Van Loan's identity
    expm([[A, E], [0, A]] t) = [[expm(A t), int_0^t expm(A (t-s)) E expm(A s) ds], [0, expm(A t)]] with E = dA/dp_j."""
    a, b, c = p["a"], p["b"], p["c"]
    A = mpmath.matrix([[-a, b, 0], [-b, -a, c], [c, 0, -2]])
    dA = {
        "a": mpmath.matrix([[-1, 0, 0], [0, -1, 0], [0, 0, 0]]),
        "b": mpmath.matrix([[0, 1, 0], [-1, 0, 0], [0, 0, 0]]),
        "c": mpmath.matrix([[0, 0, 0], [0, 0, 1], [1, 0, 0]]),
    }
    y0 = mpmath.matrix([1, 0, mpmath.mpf(1) / 2])
    T = mpmath.mpf(t)
    y = mpmath.expm(A * T) * y0
    sens = []
    for name in ("a", "b", "c"):
        block = mpmath.zeros(6, 6)
        for i in range(3):
            for k in range(3):
                block[i, k] = A[i, k]
                block[3 + i, 3 + k] = A[i, k]
                block[i, 3 + k] = dA[name][i, k]
        E = mpmath.expm(block * T)
        upper = mpmath.matrix([[E[i, 3 + k] for k in range(3)] for i in range(3)])
        sens.append(upper * y0)
    return [y[i] for i in range(3)], [[sens[j][i] for j in range(3)] for i in range(3)]


@pytest.fixture(scope="module")
def linear_model() -> symsens.Model:
    return _linear_model()


# ------------------------------------------------------------------------------------------------------------
# Double-double arithmetic and tableaux
# ------------------------------------------------------------------------------------------------------------

OPERATIONS = [
    (0, "1.3", None, mpmath.exp), (0, "-20.5", None, mpmath.exp), (0, "1e-5", None, mpmath.exp),
    (1, "2.7", None, mpmath.log), (1, "1e-7", None, mpmath.log), (2, "2", None, mpmath.sqrt),
    (3, "5.1", None, mpmath.sin), (4, "0.7", None, mpmath.cos), (5, "0.3", None, mpmath.tan),
    (6, "0.01", None, mpmath.sinh), (7, "3", None, mpmath.cosh), (8, "0.01", None, mpmath.tanh),
    (8, "-2.5", None, mpmath.tanh), (16, "1e-3", None, mpmath.expm1),
    (9, "0.3", None, lambda x: x / mpmath.expm1(x)), (9, "-3.3", None, lambda x: x / mpmath.expm1(x)),
    (10, "1.9", None, lambda x: mpmath.diff(lambda u: u / mpmath.expm1(u), x)),
    (11, "1.1", "3.7", lambda x, y: x * y), (12, "1", "3", lambda x, y: x / y),
    (14, "1.7", "2.5", mpmath.power), (14, "1.5", "-3", mpmath.power),
]


def test_double_double_maths_to_30_digits(linear_model: symsens.Model) -> None:
    solver = fast_solver(linear_model, ())
    with mpmath.workdps(50):
        for op, x_text, y_text, exact in OPERATIONS:
            # The arguments as double-double numbers (what the C++ receives), then the exact function of those.
            x_dd = _round_dd(mpmath.mpf(x_text))
            args = [x_dd] if y_text is None else [x_dd, _round_dd(mpmath.mpf(y_text))]
            got = solver.math(op, *args)
            want = exact(*args)
            assert correct_digits(want, got) >= 30, (op, x_text, mpmath.nstr(got, 35), mpmath.nstr(want, 35))
        text = "0.1234567890123456789012345678901234567890"
        assert correct_digits(mpmath.mpf(text), solver.math(15, text=text)) >= 31
        assert correct_digits(mpmath.mpf("-8.6174e-5"), solver.math(15, text="-8.6174e-5")) >= 31


def _round_dd(x: mpmath.mpf) -> mpmath.mpf:
    with mpmath.workprec(200):
        hi = mpmath.mpf(float(x))
        return hi + mpmath.mpf(float(x - hi))


@pytest.mark.parametrize(("family", "scheme"), [("gauss", "gauss-2"), ("gauss", "gauss-3"), ("radau-iia", "radau-iia-3")])
def test_tableaux_equal_the_exact_catalogue(family: str, scheme: str) -> None:
    from symsens.schemes import get_scheme

    exact = get_scheme(scheme)
    tab = collocation_tableau(family, exact.stages, 40)
    with mpmath.workdps(40):
        for i in range(exact.stages):
            assert abs(tab.c[i] - mpmath.mpf(sp.N(exact.c[i], 50))) < mpmath.mpf(10) ** -38
            assert abs(tab.b[i] - mpmath.mpf(sp.N(exact.b[i], 50))) < mpmath.mpf(10) ** -38
            for j in range(exact.stages):
                assert abs(tab.A[i][j] - mpmath.mpf(sp.N(exact.A[i][j], 50))) < mpmath.mpf(10) ** -38
    assert tab.order == exact.order


def test_significant_digits_definition() -> None:
    assert significant_digits(mpmath.mpf("1.2345"), mpmath.mpf("0.00005"), 40) == 5
    assert significant_digits(mpmath.mpf("1.2345"), mpmath.mpf("0.000051"), 40) == 4
    assert significant_digits(mpmath.mpf("9.87e-13"), mpmath.mpf("4e-16"), 40) == 3
    assert significant_digits(mpmath.mpf("9.87e-13"), mpmath.mpf("4e-17"), 40) == 4
    assert significant_digits(mpmath.mpf("3"), 0, 40) == 40
    assert significant_digits(mpmath.mpf("0"), mpmath.mpf("1e-30"), 40) == 0


# ------------------------------------------------------------------------------------------------------------
# Closed forms
# ------------------------------------------------------------------------------------------------------------


def test_linear_system_against_matrix_exponential(linear_model: symsens.Model) -> None:
    result = reference(linear_model, t_eval=[0.5, 2.0], digits=24)
    assert result.verified, result.message
    assert result.method == "gauss"
    with mpmath.workdps(50):
        p = {name: mpmath.mpf(v) for name, v in zip(linear_model.parameter_names, linear_model.parameter_values)}
        for k, t in enumerate(result.t):
            y, S = _linear_closed_form(float(t), p)
            for i in range(3):
                assert correct_digits(y[i], result.y_mp[k][i]) >= result.y_digits[k, i] >= 24
                for j in range(3):
                    got = result.sensitivities_mp[k][i][j]
                    assert correct_digits(S[i][j], got) >= result.sensitivity_digits[k, i, j] >= 24
    np.testing.assert_allclose(result.y[-1], [float(v) for v in _linear_closed_form(2.0, p)[0]], rtol=1e-15)


def test_linear_system_mpmath_path_to_32_digits(linear_model: symsens.Model) -> None:
    result = reference(linear_model, digits=32, path="mpmath")
    assert result.verified and result.verified_digits >= 32, result.message
    assert result.path == "mpmath" and result.method == "taylor"
    with mpmath.workdps(60):
        p = {name: mpmath.mpf(v) for name, v in zip(linear_model.parameter_names, linear_model.parameter_values)}
        y, S = _linear_closed_form(2.0, p)
        for i in range(3):
            assert correct_digits(y[i], result.y_mp[0][i]) >= 32
            for j in range(3):
                assert correct_digits(S[i][j], result.sensitivities_mp[0][i][j]) >= 32


def test_two_scale_linear_closed_form_and_structural_zero() -> None:
    model = symsens.load_model("two-scale-linear")
    result = reference(model, digits=20)
    assert result.verified, result.message
    assert result.method == "radau-iia"  # stiff: k_fast (t1 - t0) = 5e4
    with mpmath.workdps(50):
        kf, ks, t = mpmath.mpf(1e4), mpmath.mpf(1), mpmath.mpf(5)

        def y(kf: mpmath.mpf, ks: mpmath.mpf) -> list[mpmath.mpf]:
            return [kf / (kf - ks) * (mpmath.exp(-ks * t) - mpmath.exp(-kf * t)), mpmath.exp(-ks * t)]

        exact_y = y(kf, ks)
        exact_S = [[mpmath.diff(lambda a: y(a, ks)[i], kf), mpmath.diff(lambda b: y(kf, b)[i], ks)] for i in range(2)]
        for i in range(2):
            assert correct_digits(exact_y[i], result.y_mp[0][i]) >= result.y_digits[0, i] >= 20
            for j in range(2):
                if exact_S[i][j] == 0:
                    continue
                assert correct_digits(exact_S[i][j], result.sensitivities_mp[0][i][j]) >= result.sensitivity_digits[0, i, j] >= 20
    # y2 does not depend on k_fast: exactly zero, by structure, not a rounding residue.
    assert result.sensitivities_mp[0][1][0] == 0 and result.sensitivity_error[0, 1, 0] == 0.0


def test_stiff_linear_closed_form_fast_and_mpmath() -> None:
    model = symsens.load_model("stiff-linear")
    fast = reference(model, (0.0, 0.25), digits=22)  # exp(-250): inside double's exponent range
    assert fast.verified and fast.method == "radau-iia", fast.message
    # exp(-1000) = 5e-435: only mpmath represents it; Taylor series (the solution is entire), 100 steps.
    slow = reference(model, digits=32, path="mpmath", method="taylor")
    assert slow.verified, slow.message
    with mpmath.workdps(60):
        for result, t in ((fast, mpmath.mpf("0.25")), (slow, mpmath.mpf(1))):
            lam, y0 = mpmath.mpf(-1000), mpmath.mpf(1)
            exact = [y0 * mpmath.exp(lam * t)]
            exact_S = [y0 * t * mpmath.exp(lam * t), mpmath.exp(lam * t)]
            assert correct_digits(exact[0], result.y_mp[0][0]) >= result.y_digits[0, 0] >= result.requested_digits
            for j in range(2):
                assert correct_digits(exact_S[j], result.sensitivities_mp[0][0][j]) >= result.requested_digits


# ------------------------------------------------------------------------------------------------------------
# Published reference values: F. Mazzia and C. Magherini, "Test Set for IVP Solvers", Release 2.4, University
# of Bari, 2008 (problems ROBER and HIRES; the values of the test set's rober.f and hires.f, computed with
# RADAU(5) at rtol = atol = 1.1e-18 in extended precision).
# ------------------------------------------------------------------------------------------------------------

ROBERTSON_1E11 = ("0.2083340149701255e-7", "0.8333360770334713e-13", "0.9999999791665050")
HIRES_321 = (
    "0.7371312573325668e-3", "0.1442485726316185e-3", "0.5888729740967575e-4", "0.1175651343283149e-2",
    "0.2386356198831331e-2", "0.6238968252742796e-2", "0.2849998395185769e-2", "0.2850001604814231e-2",
)


def test_robertson_published_reference_at_1e11() -> None:
    model = symsens.load_model("robertson")
    result = reference(model, (0.0, 1e11), p={"k1": "0.04", "k2": "3e7", "k3": "1e4"}, digits=20,
                       sensitivity=False)
    assert result.verified, result.message
    with mpmath.workdps(40):
        # Mass is conserved (the right-hand sides sum to 0). Any Runge-Kutta method conserves linear invariants to
        # rounding, so this checks the arithmetic (double-double throughout), not the accuracy of the digits.
        total = mpmath.fsum(result.y_mp[0])
        assert abs(total - 1) < mpmath.mpf(10) ** -26
        agreement = [correct_digits(mpmath.mpf(v), result.y_mp[0][i]) for i, v in enumerate(ROBERTSON_1E11)]
        # The published 16-digit values agree with ours to 13-14 digits (their sum differs from 1 by 1.0e-14).
        assert min(agreement) >= 13, agreement
        published_sum = mpmath.fsum(mpmath.mpf(v) for v in ROBERTSON_1E11)
        assert abs(published_sum - 1) > mpmath.mpf("9e-15")


def test_hires_published_reference() -> None:
    model = symsens.load_model("hires")
    exact_p = {"k1": "1.71", "k2": "0.43", "k3": "8.32", "k4": "0.69", "k5": "0.035", "k6": "8.32", "k7": "280",
               "k8": "0.69", "k9": "0.69", "oks": "0.0007"}
    result = reference(model, p=exact_p, digits=18, sensitivity=False)
    assert result.verified and result.method == "radau-iia", result.message
    with mpmath.workdps(40):
        for i, v in enumerate(HIRES_321):
            published = mpmath.mpf(v)
            # 14-16 of the 16 published digits agree; the rest is within the published computation's own
            # accuracy (atol = 1.1e-18 per step): absolute differences below 2e-17.
            assert correct_digits(published, result.y_mp[0][i]) >= 14
            assert abs(published - result.y_mp[0][i]) < mpmath.mpf("2e-17")


# ------------------------------------------------------------------------------------------------------------
# Fast path and mpmath path agree
# ------------------------------------------------------------------------------------------------------------


def _agree_to_verified_digits(fast: symsens.Reference, slow: symsens.Reference) -> None:
    for k in range(len(fast.t)):
        for i in range(len(fast.state_names)):
            d = min(fast.y_digits[k, i], slow.y_digits[k, i])
            assert correct_digits(slow.y_mp[k][i], fast.y_mp[k][i]) >= d >= fast.requested_digits
            for j in range(len(fast.parameters)):
                d = min(fast.sensitivity_digits[k, i, j], slow.sensitivity_digits[k, i, j])
                got = correct_digits(slow.sensitivities_mp[k][i][j], fast.sensitivities_mp[k][i][j])
                assert got >= d >= fast.requested_digits


def test_van_der_pol_fast_and_mpmath_agree() -> None:
    model = symsens.load_model("van-der-pol")
    fast = reference(model, p={"mu": 10}, t_eval=[1.0, 2.0], digits=16)
    slow = reference(model, p={"mu": 10}, t_eval=[1.0, 2.0], digits=16, path="mpmath")
    assert fast.verified and slow.verified, (fast.message, slow.message)
    assert (fast.path, fast.method, slow.path, slow.method) == ("double-double", "gauss", "mpmath", "taylor")
    _agree_to_verified_digits(fast, slow)


def test_hodgkin_huxley_fast_and_mpmath_agree() -> None:
    # The first spike and recovery (15 ms) of the 100 ms run: the mpmath Taylor path costs ~1 s per ms here;
    # the full 100 ms comparison is in benchmarks/reference.py.
    model = symsens.load_model("hodgkin-huxley")
    fast = reference(model, (0.0, 15.0), digits=10, parameters=["g_Na"])
    slow = reference(model, (0.0, 15.0), digits=10, parameters=["g_Na"], path="mpmath", method="taylor")
    assert fast.verified and slow.verified, (fast.message, slow.message)
    _agree_to_verified_digits(fast, slow)


# ------------------------------------------------------------------------------------------------------------
# Honesty under a time budget; errors; command line
# ------------------------------------------------------------------------------------------------------------


def test_too_small_budget_reports_fewer_correct_digits(linear_model: symsens.Model) -> None:
    model = symsens.load_model("hodgkin-huxley")
    truth = reference(model, digits=16, parameters=["g_K"])
    assert truth.verified, truth.message
    short = reference(model, digits=24, parameters=["g_K"], time_budget=1.0)
    assert not short.verified
    # How many digits fit in 1 s depends on the machine's load (on a quiet machine about 5): the test holds
    # the budget's promise, not a speed: fewer digits than asked, and every one it claims is right.
    assert 0 <= short.verified_digits < 24
    assert "time budget" in short.message and f"verified to {short.verified_digits}" in short.message
    # Every digit it does claim is correct (judged against the 16-digit reference).
    for i in range(4):
        assert correct_digits(truth.y_mp[0][i], short.y_mp[0][i]) >= min(short.y_digits[0, i], 15)
        assert correct_digits(truth.sensitivities_mp[0][i][0], short.sensitivities_mp[0][i][0]) >= min(
            short.sensitivity_digits[0, i, 0], 15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"digits": 0}, "`digits`"),
        ({"digits": 40, "path": "fast"}, "`digits`"),
        ({"t_span": (1.0, 0.0)}, "`t_span`"),
        ({"t_eval": [3.0]}, "`t_eval`"),
        ({"p": {"nope": 1.0}}, "`p`: unknown parameter 'nope'"),
        ({"p": [1.0]}, "`p` must have length 3"),
        ({"parameters": ["a", "a"]}, "`parameters`"),
        ({"parameters": ["zz"]}, "`parameters`: unknown parameter"),
        ({"y0": [1.0, 2.0]}, "`y0` must have length 3"),
        ({"time_budget": -1}, "`time_budget`"),
        ({"path": "gpu"}, "`path`"),
        ({"method": "rk4"}, "`method`"),
        ({"method": "taylor", "path": "fast"}, "`method`"),
        ({"p": {"a": "abc"}}, "p\\['a'\\]"),
    ],
)
def test_bad_arguments_name_the_argument(linear_model: symsens.Model, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reference(linear_model, **kwargs)


def test_explicit_y0_has_zero_initial_sensitivity(linear_model: symsens.Model) -> None:
    result = reference(linear_model, (0.0, 0.5), y0=["1", 0, "0.5"], digits=16)
    with mpmath.workdps(40):
        p = {name: mpmath.mpf(v) for name, v in zip(linear_model.parameter_names, linear_model.parameter_values)}
        y, S = _linear_closed_form(0.5, p)  # y0 is the model's y0, which does not depend on p
        for i in range(3):
            assert correct_digits(y[i], result.y_mp[0][i]) >= 16
            for j in range(3):
                assert correct_digits(S[i][j], result.sensitivities_mp[0][i][j]) >= 16


def test_cli_reference_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reference", "--example", "robertson", "--t", "40", "--digits", "14", "--parameters", "k1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["verified"] and out["verified_digits"] >= 14
    assert out["t"] == [40.0] and out["parameters"] == ["k1"]
    y = [float(mpmath.mpf(entry["value"])) for entry in out["y"][0]]
    # Independent: SciPy's Radau at its tightest tolerances.
    from scipy.integrate import solve_ivp

    def f(t: float, u: np.ndarray) -> list[float]:
        return [-0.04 * u[0] + 1e4 * u[1] * u[2], 0.04 * u[0] - 1e4 * u[1] * u[2] - 3e7 * u[1] ** 2, 3e7 * u[1] ** 2]

    scipy_solution = solve_ivp(f, (0, 40), [1, 0, 0], method="Radau", rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(y, scipy_solution.y[:, -1], rtol=1e-8)


def test_cli_reference_text(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reference", "--example", "van-der-pol", "--set", "mu=10", "--digits", "12", "--no-sensitivity"])
    text = capsys.readouterr().out
    assert code == 0
    assert "y1 =" in text and "digits]" in text and "verified by comparing runs" in text


def test_non_smooth_model_avoids_taylor_and_gets_the_closed_form() -> None:
    """y' = -y + max(t - a, 0): a Taylor step would jump over the switch at t = a and every rung would agree on
    the wrong answer; the mpmath path uses collocation there, and its verified digits are right."""
    import mpmath

    model = symsens.Model(states=["y"], parameters={"a": 0.5}, rhs=["-y + max(t - a, 0)"], initial_conditions=["1"],
                          name="switch", t_span=(0.0, 1.0))
    with pytest.raises(ValueError, match="analytic"):
        symsens.reference(model, digits=20, path="mpmath", method="taylor", sensitivity=False)
    result = symsens.reference(model, digits=20, path="mpmath", sensitivity=False)
    assert result.verified
    with mpmath.workdps(40):
        a, t = mpmath.mpf("0.5"), mpmath.mpf(1)
        exact = (t - a - 1) + (mpmath.e**-a + 1) * mpmath.e ** (-(t - a))
        digits = int(result.y_digits[-1, 0])
        assert digits >= 20
        exponent = int(mpmath.floor(mpmath.log10(abs(exact))))
        assert abs(result.y_mp[-1][0] - exact) < 0.5 * mpmath.mpf(10) ** (exponent - digits + 1)
