"""symsens.bridges: the JAX, CasADi and PyTorch exports, and the tools' gradient providers.

Independent checks: the exports against symsens' own NumPy evaluation of the exact expressions (and, at the
removable singularity of exprel, against SymPy's high-precision evaluation); the providers on a linear ODE
against the closed form from the matrix exponential and its Fréchet derivative (scipy.linalg.expm_frechet);
CVODES on Hodgkin–Huxley against the verified reference gradient.
"""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import sympy as sp

import symsens
from symsens import IntegrationError
from symsens.audit._losses import DataLoss, IntegralLoss, TrajectoryLoss, loss_plan
from symsens.bridges import TOOLS, ToolUnavailableError, gradient_provider, to_casadi, to_jax, to_torch
from symsens.derive import jacobian, numpy_function
from symsens.model._functions import exprel_derivative

BACKENDS = ("jax", "casadi", "torch")
_MODULE = {"jax": "jax", "casadi": "casadi", "torch": "torch"}


def _evaluators(backend: str, model: symsens.Model, jit: bool = True):
    """(rhs, jacobian) of the export as NumPy-returning functions of (t, y, p), each of them a batch (N, N x n,
    N x P) for JAX (jit-compiled when ``jit``; XLA takes seconds on the larger Jacobians) and PyTorch, and one
    point at a time for CasADi."""
    importlib.import_module(_MODULE[backend])
    if backend == "jax":
        import jax

        export = to_jax(model)
        rhs, jac = (jax.jit(export.rhs), jax.jit(export.jacobian)) if jit else (export.rhs, export.jacobian)
        return (lambda t, y, p: np.asarray(rhs(t, y, p)), lambda t, y, p: np.asarray(jac(t, y, p)))
    if backend == "casadi":
        export = to_casadi(model)

        def each(function, t, y, p):
            return np.stack([np.asarray(function(t[k], y[k], p[k])).reshape(function.size_out(0)) for k in range(len(t))])

        return (lambda t, y, p: each(export.rhs, t, y, p)[:, :, 0], lambda t, y, p: each(export.jacobian, t, y, p))
    import torch

    export = to_torch(model)
    T = lambda v: torch.as_tensor(np.asarray(v, dtype=float))  # noqa: E731
    return (lambda t, y, p: export.rhs(T(t), T(y), T(p)).numpy(),
            lambda t, y, p: export.jacobian(T(t), T(y), T(p)).numpy())


def _random_points(model: symsens.Model, rng: np.random.Generator, count: int):
    """(t, y, p) batches: N times, N x n states, N x P parameters around the nominal values."""
    t = rng.uniform(0.0, 1.0, count)
    y = rng.uniform(0.05, 1.5, (count, model.n_states))
    if model.name == "hodgkin-huxley":
        # Membrane potential in mV, with V = -40 and -55 exactly: the removable singularities of alpha_m and
        # alpha_n (exprel at 0).
        y[:, 0] = np.r_[-40.0, -55.0, rng.uniform(-90.0, 40.0, count - 2)]
    if model.name == "calcium-neuron":
        y[:, 0] = rng.uniform(-80.0, 40.0, count)
        y[:, 1] = rng.uniform(0.05, 20.0, count)        # calcium > 0 (log)
    p = np.asarray(model.parameter_values) * rng.uniform(0.7, 1.3, (count, model.n_parameters))
    return t, y, p


def _assert_equal_to_rounding(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Relative 1e-12 per entry, with a floor of 1e-13 x the largest entry of the same row (of the same point): an
    entry that is a near-cancelling sum of larger terms carries their rounding, not its own."""
    scale = np.max(np.abs(expected), axis=-1, keepdims=True)
    np.testing.assert_array_less(np.abs(actual - expected), 1e-12 * np.abs(expected) + 1e-13 * scale + 1e-300,
                                 err_msg=what)


@functools.lru_cache(maxsize=None)
def _symsens_values(name: str) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Points of a built-in model and symsens' own NumPy rhs and Jacobian there (shared by the three backends)."""
    model = symsens.load_model(name)
    arguments = [model.time, *model.states, *model.parameters]
    f = numpy_function(list(model.rhs), arguments)
    J = numpy_function(list(jacobian(model)), arguments)
    t, y, p = _random_points(model, np.random.default_rng(7), 6)
    n = model.n_states
    expected_f = f(t, *y.T, *p.T).T                                  # N x n
    expected_J = np.moveaxis(J(t, *y.T, *p.T), 0, -1).reshape(len(t), n, n)
    return (t, y, p), expected_f, expected_J


@pytest.mark.parametrize("backend", BACKENDS)
def test_exports_equal_symsens_rhs_and_jacobian_on_every_builtin_model(backend: str) -> None:
    for name in symsens.examples():
        model = symsens.load_model(name)
        # Eager here: XLA compiles the larger Jacobians for seconds; jit is exercised by the exprel test and
        # by every diffrax provider.
        rhs, jac = _evaluators(backend, model, jit=False)
        (t, y, p), expected_f, expected_J = _symsens_values(name)
        assert np.all(np.isfinite(expected_J))
        _assert_equal_to_rounding(rhs(t, y, p), expected_f, f"{name} rhs ({backend})")
        _assert_equal_to_rounding(jac(t, y, p), expected_J, f"{name} Jacobian ({backend})")


# exprel^(n)(x) at and around the removable singularity x = 0, the series/closed-form switch |x| = 2 and far out.
_EXPREL_POINTS = (0.0, 1e-300, -1e-12, 1e-8, -0.3, 0.6, 1.9999999, -2.0, 2.0000001, -5.0, 7.5, 30.5, -40.0, 200.0, -700.0)


def _exprel_model(order: int) -> symsens.Model:
    x = sp.Symbol("x")
    return symsens.Model(["x"], {"c": 1.0}, [exprel_derivative(order, x) * sp.Symbol("c")], [0], name=f"exprel{order}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_exprel_and_its_derivatives_match_high_precision_values(backend: str) -> None:
    xs = np.asarray(_EXPREL_POINTS)
    count = len(xs)
    for order in range(4):
        model = _exprel_model(order)
        rhs, jac = _evaluators(backend, model, jit=order == 0)
        got = rhs(np.zeros(count), xs[:, None], np.ones((count, 1)))[:, 0]
        slope = jac(np.zeros(count), xs[:, None], np.ones((count, 1)))[:, 0, 0]
        for k, x in enumerate(xs):
            # SymPy's evalf of exprel_derivative: Bernoulli series or closed form at 50 digits, independent of the
            # double-precision code paths of the exports.  The closed forms of the higher derivatives lose a few
            # digits to cancellation near |x| = 2 (as symsens' NumPy evaluation does), hence 1e-12, not 1e-15.
            exact = [float(exprel_derivative(j, sp.Float(float(x), 60)).evalf(50)) for j in (order, order + 1)]
            assert got[k] == pytest.approx(exact[0], rel=1e-12, abs=1e-300), (backend, order, x)
            assert slope[k] == pytest.approx(exact[1], rel=1e-12, abs=1e-300), (backend, order, x)


def test_derivatives_through_the_exports_are_finite_at_the_singularity() -> None:
    """The tools' own AD through exprel (not the exported symbolic Jacobian) at x = 0: B_1 = -1/2, B_2 = 1/6."""
    model = _exprel_model(0)
    jax = importlib.import_module("jax")
    export = to_jax(model)
    first = jax.grad(lambda x: export.rhs(0.0, x, np.array([1.0]))[0])
    second = jax.jit(jax.grad(lambda x: first(x)[0]))
    assert float(jax.jit(first)(np.array([0.0]))[0]) == -0.5
    assert float(second(np.array([0.0]))[0]) == pytest.approx(1 / 6, rel=1e-15)
    torch = importlib.import_module("torch")
    texport = to_torch(model)
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(texport.rhs(0.0, x, torch.ones(1, dtype=torch.float64))[0], x, create_graph=True)
    (h,) = torch.autograd.grad(g[0], x)
    assert float(g.detach()[0]) == -0.5 and float(h[0]) == pytest.approx(1 / 6, rel=1e-15)
    ca = importlib.import_module("casadi")
    cexport = to_casadi(model)
    hessian = ca.Function("h", [cexport.y, cexport.p], [ca.jacobian(ca.jacobian(cexport.f, cexport.y), cexport.y)])
    assert float(hessian(0.0, 1.0)) == pytest.approx(1 / 6, rel=1e-15)


# ---- providers ---------------------------------------------------------------------------------------------------

# y' = A(p) y with A = [[-a, b], [c, -d]]: symmetric part [[-1, 0.4], [0.4, -2]] is negative definite, so the flow
# (and that of the sensitivities S' = A S + A_p y) contracts in the 2-norm and global errors do not grow.
_LINEAR = dict(states=["u", "v"], parameters={"a": 1.0, "b": 0.5, "c": 0.3, "d": 2.0},
               rhs=["-a*u + b*v", "c*u - d*v"], initial_conditions=["1", "0.5"], outputs={"w": "u + 2*v"})
_TIMES = np.array([0.0, 0.5, 1.0, 2.0])
_TARGETS = np.array([[0.9, 1.9], [0.3, 0.1], [0.2, 0.1], [0.1, 0.05]])
_WEIGHTS = (1.0, 0.5)
_CHOSEN = ("a", "c", "d")


def _linear_closed_form(p: np.ndarray) -> tuple[float, np.ndarray]:
    """L and dL/dp from y(t) = expm(A t) y0 and dy/dp_j = Frechet derivative of expm at A t in direction A_pj t."""
    A = np.array([[-p[0], p[1]], [p[2], -p[3]]])
    directions = {"a": [[-1, 0], [0, 0]], "b": [[0, 1], [0, 0]], "c": [[0, 0], [1, 0]], "d": [[0, 0], [0, -1]]}
    y0 = np.array([1.0, 0.5])
    G = np.array([[1.0, 0.0], [1.0, 2.0]])            # outputs u and w = u + 2 v
    w = np.asarray(_WEIGHTS)
    value, gradient = 0.0, np.zeros(len(_CHOSEN))
    for k, t in enumerate(_TIMES):
        residual = G @ scipy.linalg.expm(A * t) @ y0 - _TARGETS[k]
        value += float(np.sum(w * residual**2))
        for j, name in enumerate(_CHOSEN):
            dy = scipy.linalg.expm_frechet(A * t, np.asarray(directions[name], dtype=float) * t, compute_expm=False) @ y0
            gradient[j] += float(np.sum(2 * w * residual * (G @ dy)))
    return value, gradient


_TOOL_MODULES = {"diffrax": "diffrax", "cvodes": "casadi", "torchdiffeq": "torchdiffeq", "scipy": "scipy"}


@pytest.mark.parametrize("tool", TOOLS)
def test_provider_gradient_matches_the_closed_form_of_a_linear_model(tool: str) -> None:
    importlib.import_module(_TOOL_MODULES[tool.split("-")[0]])
    model = symsens.Model(**_LINEAR, name="linear")
    loss = DataLoss(_TIMES, _TARGETS, ("u", "w"), weights=_WEIGHTS)
    plan = loss_plan(model, loss, _CHOSEN, (0.0, 2.0))
    provider = gradient_provider(tool, model, plan, times=_TIMES, targets=None, t_span=(0.0, 2.0))
    assert provider.tool == tool and provider.solver and provider.parameters == _CHOSEN
    p = np.asarray(model.parameter_values)
    exact_value, exact_gradient = _linear_closed_form(p)
    errors = []
    for rtol in (1e-5, 1e-9):
        value, gradient = provider(p, rtol, rtol * 1e-3)
        assert gradient.shape == (3,)
        errors.append(np.max(np.abs(gradient - exact_gradient)) / np.max(np.abs(exact_gradient)))
        # Each accepted step's local error is at most about rtol * |y| (atol is 1000x smaller than |y| here);
        # on a contracting flow the global error is at most their sum, and every tool takes fewer than 300
        # steps over [0, 2] at these tolerances (measured at rtol 1e-9 on the states: diffrax Tsit5 44,
        # torchdiffeq dopri5 about 46, CVODES BDF 135).
        # Loss and gradient are smooth in (y, S), so their relative errors have the same bound.
        bound = 300 * rtol
        assert abs(value - exact_value) <= bound * exact_value, (tool, rtol, value, exact_value)
        assert errors[-1] <= bound, (tool, rtol, errors[-1])
    assert errors[1] < errors[0], (tool, errors)   # tightening the tolerance improves the gradient


def test_cvodes_forward_converges_to_the_true_gradient_on_hodgkin_huxley() -> None:
    importlib.import_module("casadi")
    model = symsens.load_model("hodgkin-huxley")
    span, grid = (0.0, 20.0), np.linspace(0.0, 20.0, 41)
    loss = TrajectoryLoss(outputs=("V",), grid=tuple(grid), data_parameters={"g_Na": 115.0})
    chosen = ("g_Na", "g_K", "g_L")
    true = symsens.true_gradient(model, loss, t_span=span, parameters=chosen)
    assert np.all(true.digits > 8)
    plan = loss_plan(model, loss, chosen, span)
    # Targets: the data trajectory at g_Na = 115, from symsens' Verner 7 at rtol 1e-13 (an error far below the
    # CVODES errors measured here).
    p_data = np.asarray(model.parameter_values)
    p_data[0] = 115.0
    data = symsens.solve(model, span, p=p_data, method="verner7", rtol=1e-13, atol=1e-13, t_eval=grid)
    provider = gradient_provider("cvodes-forward", model, plan, times=grid, targets=data.y[:, :1], t_span=span)
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        _, gradient = provider(np.asarray(model.parameter_values), rtol, rtol)
        errors.append(np.max(np.abs(gradient - true.gradient)) / np.max(np.abs(true.gradient)))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 1e-3, errors


@pytest.mark.parametrize("module, tool", [("jax", "diffrax-forward"), ("casadi", "cvodes-adjoint"),
                                          ("torch", "torchdiffeq"), ("diffrax", "diffrax-backsolve")])
def test_a_missing_tool_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch, module: str, tool: str) -> None:
    model = symsens.Model(**_LINEAR, name="linear")
    plan = loss_plan(model, DataLoss(_TIMES, _TARGETS, ("u", "w")), _CHOSEN, (0.0, 2.0))
    monkeypatch.setitem(sys.modules, module, None)   # `import module` now raises ImportError
    extra = {"jax": "jax", "diffrax": "jax", "casadi": "casadi", "torch": "torch"}[module]
    with pytest.raises(ToolUnavailableError, match=rf"pip install 'symsens\[{extra}\]'"):
        gradient_provider(tool, model, plan, times=_TIMES, targets=None, t_span=(0.0, 2.0))
    export = {"jax": to_jax, "diffrax": None, "casadi": to_casadi, "torch": to_torch}[module]
    if export is not None:
        with pytest.raises(ToolUnavailableError, match=rf"symsens\[{extra}\]"):
            export(model)


@pytest.mark.parametrize("tool", ["cvodes-forward", "scipy", "torchdiffeq", "diffrax-forward"])
def test_a_diverging_run_raises_with_a_message(tool: str) -> None:
    importlib.import_module(_TOOL_MODULES[tool.split("-")[0]])
    # y' = k y^2, y(0) = 1 blows up at t = 1/k = 1: no solver can reach t = 2.
    model = symsens.Model(["y"], {"k": 1.0}, ["k*y^2"], ["1"], name="blow-up")
    times = np.array([0.5, 2.0])
    plan = loss_plan(model, DataLoss(times, [[1.0], [1.0]], ("y",)), ("k",), (0.0, 2.0))
    provider = gradient_provider(tool, model, plan, times=times, targets=None, t_span=(0.0, 2.0))
    with pytest.raises(IntegrationError, match=tool) as caught:
        provider(np.array([1.0]), 1e-6, 1e-9)
    assert len(str(caught.value)) > len(tool) + 10


def test_bad_requests_are_refused_with_a_clear_message() -> None:
    model = symsens.Model(**_LINEAR, name="linear")
    plan = loss_plan(model, DataLoss(_TIMES, _TARGETS, ("u", "w")), _CHOSEN, (0.0, 2.0))
    with pytest.raises(ValueError, match="unknown tool 'cvodes'.*known: diffrax-forward"):
        gradient_provider("cvodes", model, plan, times=_TIMES, targets=None, t_span=(0.0, 2.0))
    integral = loss_plan(model, IntegralLoss("u^2"), _CHOSEN, (0.0, 2.0))
    with pytest.raises(ValueError, match="pointwise least-squares.*IntegralLoss"):
        gradient_provider("scipy", model, integral, times=_TIMES, targets=None, t_span=(0.0, 2.0))
    with pytest.raises(ValueError, match="targets.*shape"):
        gradient_provider("scipy", model, plan, times=_TIMES, targets=np.zeros((3, 2)), t_span=(0.0, 2.0))
    with pytest.raises(ValueError, match="unknown SciPy method"):
        gradient_provider("scipy", model, plan, times=_TIMES, targets=None, t_span=(0.0, 2.0), solver="Euler")
    provider = gradient_provider("scipy", model, plan, times=_TIMES, targets=None, t_span=(0.0, 2.0))
    with pytest.raises(ValueError, match="all 4 model parameters"):
        provider(np.ones(3), 1e-6, 1e-9)


def test_importing_symsens_and_the_bridges_imports_no_tool() -> None:
    code = ("import sys, symsens, symsens.bridges, symsens.audit; "
            "print(sorted(m for m in ('jax', 'casadi', 'torch', 'diffrax', 'torchdiffeq') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
