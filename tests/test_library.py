"""Tests of the built-in models, each against something independent of the library's own code.

- every built-in model loads by name and from its model file ``examples/models/<name>.toml``, and the two are
  the same model (names, order, nominal values, initial conditions, right-hand sides);
- published facts: Robertson conserves mass; the linear models match their closed forms; the calcium neuron
  matches its spec (``shared/models/calcium-neuron.md``: equations transcribed independently below, and the
  spike count and ranges the spec states); Hodgkin–Huxley's rates match the textbook forms, are finite at
  their removable singularities, and the neuron fires at the known rate; Hindmarsh–Rose bursts; the neural
  ODE's weights are the documented draw;
- every constructor's docstring cites its source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import symsens
from symsens import ModelError
from symsens.model._functions import NUMPY_FUNCTIONS
from symsens.model._library import BUILTIN_MODELS, builtin_model

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_FILES = REPO_ROOT / "examples" / "models"
NAMES = list(BUILTIN_MODELS)
LAMBDIFY_MODULES = [NUMPY_FUNCTIONS, "numpy"]


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------


def numeric_rhs(model: symsens.Model, p: np.ndarray | None = None) -> Callable[[float, np.ndarray], np.ndarray]:
    """``f(t, y)`` for scipy at parameters ``p`` (default: nominal), from the exact expressions."""
    f = sp.lambdify((model.time, model.states, model.parameters), model.rhs, modules=LAMBDIFY_MODULES)
    values = np.asarray(model.parameter_values if p is None else p, dtype=float)
    return lambda t, y: np.array(f(t, y, values), dtype=float)


def initial_state(model: symsens.Model, p: np.ndarray | None = None) -> np.ndarray:
    """``y(t0)`` as floats at parameters ``p`` (default: nominal)."""
    values = model.parameter_values if p is None else p
    subs = {s: sp.Float(v, 30) for s, v in zip(model.parameters, values)}
    return np.array([float(sp.sympify(e).xreplace(subs).evalf(30)) for e in model.initial_conditions])


def upward_crossings(t: np.ndarray, v: np.ndarray, level: float) -> np.ndarray:
    """Times (linearly interpolated) at which ``v`` crosses ``level`` upwards."""
    i = np.nonzero((v[:-1] < level) & (v[1:] >= level))[0]
    return t[i] + (level - v[i]) * (t[i + 1] - t[i]) / (v[i + 1] - v[i])


def intermediate(model: symsens.Model, name: str) -> sp.Expr:
    for symbol, expr in model.intermediates:
        if symbol.name == name:
            return expr
    raise KeyError(name)


def solve_dense(model: symsens.Model, n_grid: int, **options: object) -> tuple[np.ndarray, np.ndarray]:
    """Solve over the model's ``t_span`` and sample the dense output on a uniform grid of ``n_grid`` points."""
    solution = solve_ivp(numeric_rhs(model), model.t_span, initial_state(model), dense_output=True, **options)
    assert solution.success, solution.message
    t = np.linspace(*model.t_span, n_grid)
    return t, solution.sol(t)


# ------------------------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------------------------


def test_registry_names_and_order() -> None:
    assert NAMES == [
        "robertson", "van-der-pol", "hodgkin-huxley", "hindmarsh-rose", "calcium-neuron",
        "stiff-linear", "two-scale-linear", "stiff-neural-ode", "hires",
    ]  # fmt: skip
    assert symsens.examples() == tuple(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_builtin_loads_by_name(name: str) -> None:
    model = symsens.load_model(name)
    assert isinstance(model, symsens.Model)
    assert model.name == name
    assert model.t_span is not None and model.t_span[1] > model.t_span[0]
    assert model.description
    # Cached: the same immutable object each time.
    assert builtin_model(name) is model


@pytest.mark.parametrize("name", NAMES)
def test_builtin_constants_are_exact(name: str) -> None:
    """Decimal constants in equations are Rationals, so derivation sees the model as published."""
    model = builtin_model(name)
    for expr in (*model.rhs, *model.initial_conditions, *(e for _, e in model.intermediates)):
        floats = [node for node in sp.preorder_traversal(sp.sympify(expr)) if isinstance(node, sp.Float)]
        assert not floats, f"{name}: float constant(s) {floats} in {expr}"


def test_unknown_builtin_name_suggests_close_matches() -> None:
    with pytest.raises(ModelError, match=r"unknown built-in model 'hodgkin_huxley'.*did you mean 'hodgkin-huxley'"):
        builtin_model("hodgkin_huxley")
    with pytest.raises(ModelError, match=r"did you mean 'robertson'"):
        symsens.load_model("robertsn")


# ------------------------------------------------------------------------------------------------------------
# built-in == model file
# ------------------------------------------------------------------------------------------------------------


def _random_points(model: symsens.Model, rng: np.random.Generator, n: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
    # Two analytic expressions equal on an open set are equal everywhere, so agreement at a few random points
    # of a generic region (states in [0.05, 1], parameters within 20 % of nominal) is a proof up to rounding.
    points = []
    for _ in range(n):
        t = float(rng.uniform(0.0, 1.0))
        y = rng.uniform(0.05, 1.0, model.n_states)
        p = np.asarray(model.parameter_values) * rng.uniform(0.8, 1.2, model.n_parameters)
        points.append((t, y, p))
    return points


@pytest.mark.parametrize("name", NAMES)
def test_model_file_is_the_builtin_model(name: str) -> None:
    path = MODEL_FILES / f"{name}.toml"
    assert path.is_file(), f"missing model file {path}"
    from_file = symsens.load_model(str(path))
    builtin = builtin_model(name)

    assert from_file.name == builtin.name
    assert from_file.state_names == builtin.state_names
    assert from_file.parameter_names == builtin.parameter_names
    assert from_file.parameter_values == builtin.parameter_values
    assert from_file.output_names == builtin.output_names
    assert [s.name for s, _ in from_file.intermediates] == [s.name for s, _ in builtin.intermediates]
    assert from_file.t_span == builtin.t_span
    assert from_file.time.name == builtin.time.name
    assert from_file.description  # cites its source, like the built-in

    # Initial conditions: as functions of the parameters (HR's depend on them), at nominal and perturbed p.
    rng = np.random.default_rng(7)
    for p in (np.asarray(builtin.parameter_values), *(pt[2] for pt in _random_points(builtin, rng, 2))):
        np.testing.assert_allclose(initial_state(from_file, p), initial_state(builtin, p), rtol=1e-12, atol=1e-300)

    # Right-hand sides and outputs: equal numerically at random points (symbols matched by name).
    args_file = (from_file.time, from_file.states, from_file.parameters)
    args_builtin = (builtin.time, builtin.states, builtin.parameters)
    exprs_file = [*from_file.rhs, *(e for _, e in from_file.outputs)]
    exprs_builtin = [*builtin.rhs, *(e for _, e in builtin.outputs)]
    f_file = sp.lambdify(args_file, exprs_file, modules=LAMBDIFY_MODULES)
    f_builtin = sp.lambdify(args_builtin, exprs_builtin, modules=LAMBDIFY_MODULES)
    for t, y, p in _random_points(builtin, rng, 5):
        a = np.array(f_file(t, y, p), dtype=float)
        b = np.array(f_builtin(t, y, p), dtype=float)
        assert np.all(np.isfinite(b))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, float(np.max(np.abs(b)))))


@pytest.mark.parametrize("name", NAMES)
def test_model_file_equations_equal_exactly(name: str) -> None:
    """Symbolically too: the model language keeps decimals exact (8.6174e-5 -> 43087/500000000), so the file's
    right-hand sides, initial conditions and outputs equal the built-in's after renaming symbols by name."""
    from_file = symsens.load_model(str(MODEL_FILES / f"{name}.toml"))
    builtin = builtin_model(name)
    names = (*builtin.state_names, *builtin.parameter_names, builtin.time.name)
    rename = {from_file.symbol(n): builtin.symbol(n) for n in names}

    def exact(expr: sp.Expr) -> sp.Expr:
        # A loader that kept binary floats would still pass if they are the decimals written in the file.
        return sp.nsimplify(sp.sympify(expr).xreplace(rename), rational=True)

    for a, b in zip(from_file.rhs, builtin.rhs):
        assert sp.expand(exact(a) - b) == 0
    for a, b in zip(from_file.initial_conditions, builtin.initial_conditions):
        assert sp.simplify(exact(a) - b) == 0
    for (_, a), (_, b) in zip(from_file.outputs, builtin.outputs):
        assert sp.expand(exact(a) - b) == 0


# ------------------------------------------------------------------------------------------------------------
# docstrings cite sources
# ------------------------------------------------------------------------------------------------------------

CITATIONS = {
    "robertson": ["Robertson", "1966", "Hairer", "Wanner"],
    "van-der-pol": ["van der Pol", "1926", "Hairer", "Wanner"],
    "hodgkin-huxley": ["Hodgkin", "Huxley", "J. Physiol.", "117", "1952", "Dayan", "Abbott"],
    "hindmarsh-rose": ["Hindmarsh", "Rose", "Proc. R. Soc. Lond. B", "221", "1984"],
    "calcium-neuron": ["Liu", "Golowasch", "Marder", "Abbott", "J. Neurosci.", "1998", "MyModelMenagerie"],
    "stiff-linear": ["Dahlquist", "1963", "Fronk", "Petzold"],
    "two-scale-linear": ["Hairer", "Wanner", "Fronk", "Petzold"],
    "stiff-neural-ode": ["Fronk", "Petzold", "20251124"],
    "hires": ["Schäfer", "1975", "Hairer", "Wanner", "Mazzia", "Magherini"],
}


@pytest.mark.parametrize("name", NAMES)
def test_constructor_docstring_cites_source_and_nominal_values(name: str) -> None:
    doc = BUILTIN_MODELS[name].__doc__ or ""
    for needle in CITATIONS[name]:
        assert needle in doc, f"docstring of {name} lacks {needle!r}"
    assert "Nominal values" in doc or "Parameters in this order" in doc
    model = builtin_model(name)
    # The first author is named in the model's description too (it travels with the Model object).
    assert CITATIONS[name][0].lower() in model.description.lower()


# ------------------------------------------------------------------------------------------------------------
# Robertson, linear models
# ------------------------------------------------------------------------------------------------------------


def test_robertson_conserves_mass_exactly() -> None:
    model = builtin_model("robertson")
    assert sp.expand(sum(model.rhs)) == 0
    y1, y2, y3 = model.states
    k1, k2, k3 = model.parameters
    # Hairer & Wanner II, Sect. IV.1, eq. (1.4), by hand.
    assert model.rhs[0] - (-k1 * y1 + k3 * y2 * y3) == 0
    assert model.rhs[1] - (k1 * y1 - k3 * y2 * y3 - k2 * y2**2) == 0
    assert model.rhs[2] - k2 * y2**2 == 0
    assert model.nominal_parameters == {"k1": 0.04, "k2": 3e7, "k3": 1e4}
    assert list(initial_state(model)) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("lam", [None, -10.0])
def test_stiff_linear_matches_closed_form(lam: float | None) -> None:
    model = builtin_model("stiff-linear")
    if lam is not None:  # also where the solution has not decayed to nothing
        model = model.with_parameter_values({"lam": lam, "y0": 2.5})
    (y,) = model.states
    lam_s, y0_s = model.parameters
    t = model.time
    closed = y0_s * sp.exp(lam_s * t)
    # The closed form satisfies the ODE and the initial condition exactly.
    assert sp.simplify(sp.diff(closed, t) - model.rhs[0].subs(y, closed)) == 0
    assert model.initial_conditions[0] == y0_s
    p = dict(zip(model.parameter_names, model.parameter_values))
    t_eval = np.linspace(*model.t_span, 51)
    solution = solve_ivp(numeric_rhs(model), model.t_span, initial_state(model), method="Radau",
                         rtol=1e-12, atol=1e-14, t_eval=t_eval)  # fmt: skip
    exact = p["y0"] * np.exp(p["lam"] * t_eval)
    np.testing.assert_allclose(solution.y[0], exact, rtol=1e-9, atol=1e-12)


def test_two_scale_linear_matches_closed_form() -> None:
    model = builtin_model("two-scale-linear")
    y1, y2 = model.states
    kf, ks = model.parameters
    t = model.time
    closed = [kf / (kf - ks) * (sp.exp(-ks * t) - sp.exp(-kf * t)), sp.exp(-ks * t)]
    subs = {y1: closed[0], y2: closed[1]}
    for state_closed, rhs in zip(closed, model.rhs):
        assert sp.simplify(sp.diff(state_closed, t) - rhs.xreplace(subs)) == 0
    assert [c.subs(t, 0) for c in closed] == list(model.initial_conditions)

    p = model.nominal_parameters
    assert p == {"k_fast": 1e4, "k_slow": 1.0}
    t_eval = np.linspace(*model.t_span, 101)
    solution = solve_ivp(numeric_rhs(model), model.t_span, initial_state(model), method="Radau",
                         rtol=1e-12, atol=1e-14, t_eval=t_eval)  # fmt: skip
    exact_y2 = np.exp(-p["k_slow"] * t_eval)
    exact_y1 = p["k_fast"] / (p["k_fast"] - p["k_slow"]) * (exact_y2 - np.exp(-p["k_fast"] * t_eval))
    np.testing.assert_allclose(solution.y[0], exact_y1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(solution.y[1], exact_y2, rtol=1e-9, atol=1e-12)


def test_van_der_pol_relaxation_oscillation() -> None:
    model = builtin_model("van-der-pol")
    y1, y2 = model.states
    (mu,) = model.parameters
    assert model.rhs[0] == y2 and sp.expand(model.rhs[1] - mu * ((1 - y1**2) * y2 - y1)) == 0
    assert model.nominal_parameters == {"mu": 1000.0}
    t, y = solve_dense(model, 20001, method="Radau", rtol=1e-8, atol=1e-10)
    # One full period within t_span: down-crossing of 0 (first jump), then up-crossing (second jump).
    up = upward_crossings(t, y[0], 0.0)
    assert len(up) == 1 and 1.60 < up[0] < 1.75  # period -> 3 - 2 ln 2 + O(mu^(-2/3)) = 1.614 + ~0.07
    assert 1.99 < np.max(np.abs(y[0])) < 2.02


# ------------------------------------------------------------------------------------------------------------
# Hodgkin–Huxley
# ------------------------------------------------------------------------------------------------------------


def _textbook_rates(V: np.ndarray) -> dict[str, np.ndarray]:
    """Dayan & Abbott (2001), Sect. 5.6, typed in from the book's singular forms (valid for V != -40, -55)."""
    return {
        "alpha_m": 0.1 * (V + 40) / (1 - np.exp(-0.1 * (V + 40))),
        "beta_m": 4 * np.exp(-(V + 65) / 18),  # the book prints 1/18 as 0.0556
        "alpha_h": 0.07 * np.exp(-0.05 * (V + 65)),
        "beta_h": 1 / (1 + np.exp(-0.1 * (V + 35))),
        "alpha_n": 0.01 * (V + 55) / (1 - np.exp(-0.1 * (V + 55))),
        "beta_n": 0.125 * np.exp(-0.0125 * (V + 65)),
    }


def test_hodgkin_huxley_rates_match_textbook() -> None:
    model = builtin_model("hodgkin-huxley")
    V = model.symbol("V")
    grid = np.linspace(-100.0, 50.0, 301) + 0.0137  # avoids the singular points of the textbook forms
    expected = _textbook_rates(grid)
    for name, values in expected.items():
        f = sp.lambdify(V, intermediate(model, name), modules=LAMBDIFY_MODULES)
        np.testing.assert_allclose(f(grid), values, rtol=1e-11, err_msg=name)


def test_hodgkin_huxley_rates_finite_at_removable_singularities() -> None:
    model = builtin_model("hodgkin-huxley")
    V = model.symbol("V")
    alpha_m, alpha_n = intermediate(model, "alpha_m"), intermediate(model, "alpha_n")
    # Exactly the limits, symbolically ...
    assert alpha_m.subs(V, -40) == 1
    assert alpha_n.subs(V, -55) == sp.Rational(1, 10)
    # ... and numerically (the lambdified functions use the stable exprel).
    f_m = sp.lambdify(V, alpha_m, modules=LAMBDIFY_MODULES)
    f_n = sp.lambdify(V, alpha_n, modules=LAMBDIFY_MODULES)
    assert f_m(-40.0) == 1.0 and f_n(-55.0) == pytest.approx(0.1, rel=1e-15)
    # Smooth through the singular points: exprel(x) = 1 - x/2 + x^2/12 - ..., x = -(V + 40)/10 resp.
    # -(V + 55)/10, so alpha_m(-40 + e) = 1 + e/20 + e^2/1200 and alpha_n(-55 - e) = (1 - e/20 + e^2/1200)/10.
    for eps in (1e-12, 1e-8, 1e-4):
        assert f_m(-40.0 + eps) == pytest.approx(1.0 + eps / 20 + eps**2 / 1200, rel=1e-14)
        assert f_n(-55.0 - eps) == pytest.approx(0.1 * (1.0 - eps / 20 + eps**2 / 1200), rel=1e-14)
    # The full rhs and its Jacobian are finite at V = -40 and V = -55.
    jac = sp.Matrix(model.rhs).jacobian(model.states)
    f = sp.lambdify((model.states, model.parameters), [*model.rhs, *jac], modules=LAMBDIFY_MODULES)
    for v in (-40.0, -55.0):
        values = np.array(f([v, 0.1, 0.5, 0.3], list(model.parameter_values)), dtype=float)
        assert np.all(np.isfinite(values))


def test_hodgkin_huxley_initial_state_is_resting_gates() -> None:
    model = builtin_model("hodgkin-huxley")
    assert model.state_names == ("V", "m", "h", "n")
    assert model.nominal_parameters == {
        "g_Na": 120.0, "g_K": 36.0, "g_L": 0.3, "E_Na": 50.0, "E_K": -77.0, "E_L": -54.387, "C_m": 1.0, "I_ext": 10.0,
    }  # fmt: skip
    y0 = initial_state(model)
    rates = _textbook_rates(np.array(-65.0))
    assert y0[0] == -65.0
    for value, gate in zip(y0[1:], "mhn"):
        a, b = rates[f"alpha_{gate}"], rates[f"beta_{gate}"]
        assert value == pytest.approx(a / (a + b), rel=1e-13)
    # E_L = -54.387 mV was chosen (Dayan & Abbott) to put the resting potential at -65 mV: with I_ext = 0 and
    # the gates at their steady states, the membrane current vanishes within 0.01 mV of -65.
    rest = model.with_parameter_values({"I_ext": 0.0})
    f = numeric_rhs(rest)

    def dV(v: float) -> float:
        r = _textbook_rates(np.array(v))
        gates = [r[f"alpha_{g}"] / (r[f"alpha_{g}"] + r[f"beta_{g}"]) for g in "mhn"]
        return float(f(0.0, np.array([v, *gates]))[0])

    assert abs(brentq(dV, -70.0, -60.0) + 65.0) < 0.01


def test_hodgkin_huxley_spikes_periodically_at_known_rate() -> None:
    """I_ext = 10 uA/cm^2 lies in the range of stable repetitive firing of the HH equations at 6.3 degC
    (about 6.26 to 154 uA/cm^2; Rinzel & Miller, Math. Biosci. 49 (1980) 27-59), where the f-I curve of the
    standard model passes about 68 Hz (period 14.6 ms) at this current."""
    model = builtin_model("hodgkin-huxley")
    t, y = solve_dense(model, 100001, method="LSODA", rtol=1e-8, atol=1e-10)
    spikes = upward_crossings(t, y[0], 0.0)
    assert len(spikes) == 7
    isi = np.diff(spikes)
    assert np.ptp(isi[-3:]) < 0.01  # settled on the limit cycle
    assert 66.0 < 1000.0 / isi[-1] < 70.5
    assert 35.0 < np.max(y[0]) < 45.0 and -80.0 < np.min(y[0]) < -70.0


# ------------------------------------------------------------------------------------------------------------
# Hindmarsh–Rose
# ------------------------------------------------------------------------------------------------------------


def test_hindmarsh_rose_equations_and_bursting() -> None:
    model = builtin_model("hindmarsh-rose")
    x, y, z = model.states
    a, b, c, d, r, s, x_R, I_ext = model.parameters
    # Hindmarsh & Rose (1984), by hand.
    expected = [y - a * x**3 + b * x**2 - z + I_ext, c - d * x**2 - y, r * (s * (x - x_R) - z)]
    assert all(sp.expand(e - f) == 0 for e, f in zip(model.rhs, expected))
    assert model.nominal_parameters == {
        "a": 1.0, "b": 3.0, "c": 1.0, "d": 5.0, "r": 0.001, "s": 4.0, "x_R": -1.6, "I_ext": 3.0,
    }  # fmt: skip
    t, sol = solve_dense(model, 400001, method="LSODA", rtol=1e-8, atol=1e-10)
    spikes = upward_crossings(t, sol[0], 1.0)
    # Bursts: groups of spikes separated by quiescent gaps much longer than the intra-burst intervals.
    gaps = np.diff(spikes)
    bursts = np.split(spikes, np.nonzero(gaps > 100.0)[0] + 1)
    complete = bursts[:-1]  # the last one may be cut off by the end of t_span
    assert len(complete) >= 3
    assert all(len(burst) >= 5 for burst in complete)
    periods = np.diff([burst[0] for burst in bursts])
    assert np.ptp(periods) < 0.05 * np.mean(periods)  # regular bursting


# ------------------------------------------------------------------------------------------------------------
# calcium neuron: the spec, transcribed independently
# ------------------------------------------------------------------------------------------------------------

SPEC_STATES = ["V", "Ca", "mNa", "hNa", "mCaS", "hCaS", "mCaT", "hCaT", "mIh", "mKa", "hKa", "mKCa", "mKdr"]
SPEC_Y0 = [-60, 0.05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
SPEC_PARAMETERS = {
    "eNa": 50, "eh": -20, "eK": -80, "eleak": -50, "tauCa": 20, "gNa": 100, "gCaS": 3,
    "gCaT": 1.3, "gKa": 5, "gKCa": 10, "gKdr": 20, "gh": 0.5, "gleak": 0.01,
}  # fmt: skip


def _spec_calcium_rhs(y: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """``shared/models/calcium-neuron.md``, typed in line by line with NumPy floats."""
    V, Ca, mNa, hNa, mCaS, hCaS, mCaT, hCaT, mIh, mKa, hKa, mKCa, mKdr = y
    exp = np.exp

    def s(a: float, b: float) -> float:
        return 1 / (1 + exp((V + a) / b))

    eCa = 500 * 8.6174e-5 * 283.15 * np.log(3000 / Ca)
    INa = p["gNa"] * mNa**3 * hNa * (p["eNa"] - V)
    ICaS = p["gCaS"] * mCaS**3 * hCaS * (eCa - V)
    ICaT = p["gCaT"] * mCaT**3 * hCaT * (eCa - V)
    Ih = p["gh"] * mIh * (p["eh"] - V)
    IKa = p["gKa"] * mKa**3 * hKa * (p["eK"] - V)
    IKCa = p["gKCa"] * mKCa**4 * (p["eK"] - V)
    IKdr = p["gKdr"] * mKdr**4 * (p["eK"] - V)
    Ileak = p["gleak"] * (p["eleak"] - V)
    Ca_inf = 0.05 + 0.94 * (ICaS + ICaT)
    gates = [
        (mNa, s(25.5, -5.29), 1.32 - 1.26 / (1 + exp((V + 120) / -25))),
        (hNa, s(48.9, 5.18), (0.67 / (1 + exp((V + 62.9) / -10))) * (1.5 + 1 / (1 + exp((V + 34.9) / 3.6)))),
        (mCaS, s(33, -8.1), 1.4 + 7 / (exp((V + 27) / 10) + exp((V + 70) / -13))),
        (hCaS, s(60, 6.2), 60 + 150 / (exp((V + 55) / 9) + exp((V + 65) / -16))),
        (mCaT, s(27.1, -7.2), 21.7 - 21.3 / (1 + exp((V + 68.1) / -20.5))),
        (hCaT, s(32.1, 5.5), 105 - 89.8 / (1 + exp((V + 55) / -16.9))),
        (mIh, s(70, 6), 272 + 1499 / (1 + exp((V + 42.2) / -8.73))),
        (mKa, s(27.2, -8.7), 11.6 - 10.4 / (1 + exp((V + 32.9) / -15.2))),
        (hKa, s(56.9, 4.9), 38.6 - 29.2 / (1 + exp((V + 38.9) / -26.5))),
        (mKCa, (Ca / (Ca + 3)) * s(28.3, -12.6), 90.3 - 75.1 / (1 + exp((V + 46) / -22.7))),
        (mKdr, s(12.3, -11.8), 7.2 - 6.4 / (1 + exp((V + 28.3) / -19.2))),
    ]
    dV = INa + ICaS + ICaT + Ih + IKa + IKCa + IKdr + Ileak
    dCa = (Ca_inf - Ca) / p["tauCa"]
    return np.array([dV, dCa, *((x_inf - x) / tau for x, x_inf, tau in gates)])


def test_calcium_neuron_structure_matches_spec() -> None:
    model = builtin_model("calcium-neuron")
    assert list(model.state_names) == SPEC_STATES
    assert model.nominal_parameters == {k: float(v) for k, v in SPEC_PARAMETERS.items()}
    assert list(model.parameter_names) == list(SPEC_PARAMETERS)  # the forum question's gradient order
    assert list(initial_state(model)) == [float(v) for v in SPEC_Y0]
    assert model.t_span == (0.0, 500.0)
    # No clamp on the log: the only functions of Ca are log(3000/Ca) and Ca/(Ca + 3).
    assert not model.rhs[0].has(sp.Max, sp.Min, sp.Piecewise)
    eCa = intermediate(model, "eCa")
    assert sp.simplify(eCa - 500 * sp.Rational("8.6174e-5") * sp.Rational("283.15") * sp.log(3000 / model.symbol("Ca"))) == 0


def test_calcium_neuron_equations_match_spec() -> None:
    model = builtin_model("calcium-neuron")
    f = sp.lambdify((model.states, model.parameters), model.rhs, modules=LAMBDIFY_MODULES)
    rng = np.random.default_rng(1998)
    for _ in range(20):
        # Physiological region: V in [-80, 50] mV, Ca in (0.05, 30), gates in [0, 1]; parameters perturbed.
        y = np.concatenate([[rng.uniform(-80, 50), rng.uniform(0.05, 30)], rng.uniform(0, 1, 11)])
        p = {k: v * rng.uniform(0.8, 1.2) for k, v in SPEC_PARAMETERS.items()}
        got = np.array(f(y, list(p.values())), dtype=float)
        want = _spec_calcium_rhs(y, p)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11 * np.max(np.abs(want)))


@pytest.fixture(scope="module")
def calcium_solution() -> tuple[np.ndarray, np.ndarray]:
    """One LSODA solve of the calcium neuron over (0, 500) at rtol 1e-6, sampled densely (shared by tests)."""
    return solve_dense(builtin_model("calcium-neuron"), 200001, method="LSODA", rtol=1e-6)


def test_calcium_neuron_reproduces_spec_facts(calcium_solution: tuple[np.ndarray, np.ndarray]) -> None:
    """The spec: bursts, 15 upward crossings of 0 mV in 500 ms, V in [-65.6, 40.0] mV, Ca in [0.05, 28.7]."""
    t, y = calcium_solution
    V, Ca = y[0], y[1]
    assert len(upward_crossings(t, V, 0.0)) == 15
    assert round(float(V.min()), 1) == -65.6 and round(float(V.max()), 1) == 40.0
    assert round(float(Ca.min()), 2) == 0.05 and round(float(Ca.max()), 1) == 28.7
    assert np.all(Ca > 0)  # the unclamped log stays defined along the nominal trajectory


def test_calcium_neuron_bursts(calcium_solution: tuple[np.ndarray, np.ndarray]) -> None:
    t, y = calcium_solution
    spikes = upward_crossings(t, y[0], 0.0)
    bursts = np.split(spikes, np.nonzero(np.diff(spikes) > 5 * np.median(np.diff(spikes)))[0] + 1)
    assert len(bursts) >= 2 and max(len(b) for b in bursts) >= 3


# ------------------------------------------------------------------------------------------------------------
# stiff neural ODE
# ------------------------------------------------------------------------------------------------------------


def test_stiff_neural_ode_weights_are_the_documented_draw() -> None:
    model = builtin_model("stiff-neural-ode")
    rng = np.random.default_rng(20251124)
    W1 = rng.standard_normal((4, 3)) / math.sqrt(3)
    b1 = 0.1 * rng.standard_normal(4)
    W2 = rng.standard_normal((3, 4)) / math.sqrt(4)
    b2 = 0.1 * rng.standard_normal(3)

    def six(x: float) -> float:
        return float(f"{x:.6g}")

    expected = {"k1": 1.0, "k2": 1e3, "k3": 1e6}
    expected |= {f"W1_{i}_{j}": six(W1[i, j]) for i in range(4) for j in range(3)}
    expected |= {f"b1_{i}": six(b1[i]) for i in range(4)}
    expected |= {f"W2_{i}_{j}": six(W2[i, j]) for i in range(3) for j in range(4)}
    expected |= {f"b2_{i}": six(b2[i]) for i in range(3)}
    assert model.nominal_parameters == expected
    assert list(model.nominal_parameters) == list(expected)
    assert list(initial_state(model)) == [1.0, 0.5, -0.5]


def test_stiff_neural_ode_equations_and_dynamics() -> None:
    model = builtin_model("stiff-neural-ode")
    p = model.nominal_parameters
    W1 = np.array([[p[f"W1_{i}_{j}"] for j in range(3)] for i in range(4)])
    b1 = np.array([p[f"b1_{i}"] for i in range(4)])
    W2 = np.array([[p[f"W2_{i}_{j}"] for j in range(4)] for i in range(3)])
    b2 = np.array([p[f"b2_{i}"] for i in range(3)])
    k = np.array([p["k1"], p["k2"], p["k3"]])
    f = numeric_rhs(model)
    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.uniform(-1, 1, 3)
        np.testing.assert_allclose(f(0.0, y), -k * y + W2 @ np.tanh(W1 @ y + b1) + b2, rtol=1e-13, atol=1e-9)
    # Stiffness: Jacobian eigenvalues spread over six decades (the fast modes driven by k2, k3).
    jac = sp.lambdify((model.states, model.parameters), sp.Matrix(model.rhs).jacobian(model.states), "numpy")
    eig = np.linalg.eigvals(np.array(jac([1.0, 0.5, -0.5], list(model.parameter_values)), dtype=float))
    assert 1e5 < np.max(np.abs(eig)) / np.min(np.abs(eig)) < 1e7
    # Tame dynamics: bounded, slow mode O(1), fast modes O(1/k).
    t, y = solve_dense(model, 1001, method="Radau", rtol=1e-8, atol=1e-12)
    assert np.all(np.abs(y[0]) < 2.0)
    assert np.all(np.abs(y[1][t > 0.05]) < 5e-3) and np.all(np.abs(y[2][t > 0.05]) < 5e-6)
