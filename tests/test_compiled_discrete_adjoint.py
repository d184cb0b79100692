"""The compiled (C++) discrete adjoint of explicit Runge–Kutta solves and its generated transposed products.

Each number is checked against an independent computation: the NumPy sweep (same maths, kernels lambdified from
SymPy instead of generated C++), forward-mode AD through the compiled solver on the same steps (dual numbers,
no transposes at all), the matrix exponential and its Fréchet derivative for ``y' = A(p) y``, and dense
Jacobians from :func:`symsens.derive.derivative_matrix` for the kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsens
from symsens.audit import DataLoss, TrajectoryLoss, fit_loss
from symsens.codegen._vjp import compile_vjp, vjp_source
from symsens.derive import derivative_matrix
from symsens.integrate._discrete_adjoint import discrete_adjoint, discrete_adjoint_erk, erk_adjoint_backend

from _linear_system import OBSERVED, P_LINEAR, TIMES, linear_model
from _linear_system import linear_closed_form as _closed_form


def linear_closed_form(p: np.ndarray) -> np.ndarray:
    """``d/dp sum_k |y(t_k) - d_k|^2`` from ``expm`` and ``expm_frechet``."""
    return _closed_form(p)[1]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _both(model, loss, **options):
    """The adjoint-discrete gradient by the compiled and by the NumPy sweep."""
    compiled = symsens.gradient(model, loss, method="adjoint-discrete", backend="compiled", **options)
    numpy = symsens.gradient(model, loss, method="adjoint-discrete", backend="numpy", **options)
    assert compiled.success and numpy.success
    return compiled, numpy


def test_hodgkin_huxley_compiled_equals_numpy_and_forward_mode() -> None:
    model = symsens.load_model("hodgkin-huxley")
    loss = fit_loss(model)                      # 100 output times, Hermite outputs between the steps
    options = dict(scheme="tsit5", rtol=1e-4)
    compiled, numpy = _both(model, loss, **options)
    forward = symsens.gradient(model, loss, method="discrete", **options)
    assert compiled.loss == numpy.loss == forward.loss
    assert _relative(compiled.gradient, numpy.gradient) < 1e-13
    assert _relative(compiled.gradient, forward.gradient) < 1e-11
    # The same schedule and work, counted by both sweeps.
    c, n = compiled.statistics["discrete_adjoint"], numpy.statistics["discrete_adjoint"]
    for key in ("checkpoint_every", "checkpoints", "stored_numbers", "rhs_evaluations", "transposed_products"):
        assert c[key] == n[key], key
    assert c["replay_difference"] < 1e-12      # the C++ replay reproduces the compiled solve's outputs


def test_stiff_neural_ode_compiled_equals_numpy_and_forward_mode() -> None:
    model = symsens.load_model("stiff-neural-ode")   # 34 parameters, rates up to 1e6: tsit5 on its stability edge
    loss = TrajectoryLoss(grid=tuple(np.linspace(0.0, 0.002, 9)), data_parameters=(("k1", 1.05),))
    options = dict(scheme="tsit5", rtol=1e-6, t_span=(0.0, 0.002))
    compiled, numpy = _both(model, loss, **options)
    forward = symsens.gradient(model, loss, method="discrete", **options)
    assert forward.statistics["forward"]["accepted_steps"] > 400
    assert _relative(compiled.gradient, numpy.gradient) < 1e-13
    assert _relative(compiled.gradient, forward.gradient) < 1e-11


@pytest.mark.parametrize("scheme", ["dopri5", "verner7", "bs3"])
def test_other_schemes_with_outputs_at_step_ends_and_between(scheme: str) -> None:
    """Outputs at ``t0``, at recorded step ends and between steps; reverse mode (both sweeps, three checkpoint
    intervals) against forward mode replaying the same steps (``replay_steps``)."""
    model = linear_model()
    first = symsens.solve(model, (0.0, 2.0), method=scheme, rtol=1e-6, atol=1e-9, t_eval=TIMES)
    ends = first.stats.step_times[[2, 5, -4]]
    t_eval = np.unique(np.concatenate([TIMES, ends, 0.5 * (ends + first.stats.step_times[[3, 6, -3]])]))
    plain = symsens.solve(model, (0.0, 2.0), method=scheme, rtol=1e-6, atol=1e-9, t_eval=t_eval)
    np.testing.assert_array_equal(plain.stats.step_times, first.stats.step_times)   # outputs do not move steps
    steps = plain.stats.step_sizes
    replayed = symsens.solve(model, (0.0, 2.0), method=scheme, t_eval=t_eval, sensitivity="discrete",
                             replay_steps=steps)
    W = np.random.default_rng(7).normal(size=(len(t_eval), 2))
    expected = np.einsum("ki,kij->j", W, replayed.sensitivities)
    for every in (1, None, len(steps)):
        runs = {backend: discrete_adjoint_erk(model, scheme, P_LINEAR, ("a", "b", "c"), plain.stats.step_times,
                                              steps, t_eval, W, checkpoint_every=every, backend=backend)
                for backend in ("compiled", "numpy")}
        np.testing.assert_allclose(runs["compiled"].outputs, plain.y, rtol=1e-13, atol=1e-15)
        assert _relative(runs["compiled"].gradient, runs["numpy"].gradient) < 1e-13
        assert _relative(runs["compiled"].gradient, expected) < 1e-11
        assert runs["compiled"].stored_numbers == runs["numpy"].stored_numbers
        assert runs["compiled"].vjp_evaluations == runs["numpy"].vjp_evaluations


def test_binomial_checkpointing_gives_the_uniform_gradient_bit_for_bit() -> None:
    """The binomial schedule recomputes the same steps by the same operations: the same bits, with less memory
    (``c n`` plus one step's stages) and more evaluations of ``f`` (up to ``r`` sweeps)."""
    model = linear_model()
    plain = symsens.solve(model, (0.0, 2.0), method="bs3", rtol=1e-8, atol=1e-11, t_eval=TIMES)
    W = np.random.default_rng(5).normal(size=(len(TIMES), 2))
    args = (model, "bs3", P_LINEAR, ("a", "b", "c"), plain.stats.step_times, plain.stats.step_sizes, TIMES, W)
    uniform = discrete_adjoint_erk(*args, backend="compiled")
    assert uniform.steps > 500
    runs = []
    for snapshots in (2, None, 40):
        binomial = discrete_adjoint_erk(*args, backend="compiled", checkpointing="binomial", snapshots=snapshots)
        np.testing.assert_array_equal(binomial.gradient, uniform.gradient)
        np.testing.assert_array_equal(binomial.outputs, uniform.outputs)
        assert binomial.schedule == "binomial" and binomial.stored_numbers < uniform.stored_numbers
        assert binomial.vjp_evaluations == uniform.vjp_evaluations
        runs.append(binomial)
    # Fewer snapshots: less memory, more recomputation (and more than the uniform schedule's two sweeps).
    assert runs[0].stored_numbers < runs[1].stored_numbers < runs[2].stored_numbers
    assert runs[0].rhs_evaluations > runs[1].rhs_evaluations > runs[2].rhs_evaluations > uniform.rhs_evaluations
    assert runs[0].checkpoints == 2 and runs[2].checkpoints <= 40
    with pytest.raises(ValueError, match="`checkpointing`: the binomial schedule is implemented in the compiled"):
        discrete_adjoint_erk(*args, backend="numpy", checkpointing="binomial")
    with pytest.raises(ValueError, match="`snapshots`: 1 snapshots for .* steps would advance each step up to"):
        discrete_adjoint_erk(*args, backend="compiled", checkpointing="binomial", snapshots=1)
    with pytest.raises(ValueError, match="`snapshots` must be a positive integer"):
        discrete_adjoint_erk(*args, backend="compiled", checkpointing="binomial", snapshots=0)
    with pytest.raises(ValueError, match="`checkpointing` must be 'uniform' or 'binomial'"):
        discrete_adjoint_erk(*args, checkpointing="revolve")


def test_closed_form_of_a_linear_system() -> None:
    """The derivative of the numerical solution converges to the exact gradient with the tolerance."""
    model = linear_model()
    exact = linear_closed_form(P_LINEAR)
    errors = []
    for rtol in (1e-6, 1e-9):
        run = symsens.gradient(model, DataLoss(TIMES, OBSERVED, ("x1", "x2")), method="adjoint-discrete",
                               scheme="tsit5", rtol=rtol, backend="compiled").check()
        errors.append(_relative(run.gradient, exact))
    # tsit5's global error is about 100 rtol here (its local error control); the derivative of the numerical
    # solution carries the same relative error and falls with it.
    assert errors[0] < 100 * 1e-6 and errors[1] < 100 * 1e-9 and errors[1] < errors[0] / 10


def test_default_backend_is_the_compiled_sweep() -> None:
    model = linear_model()
    loss = DataLoss(TIMES, OBSERVED, ("x1", "x2"))
    default = symsens.gradient(model, loss, method="adjoint-discrete", scheme="tsit5", rtol=1e-6)
    compiled = symsens.gradient(model, loss, method="adjoint-discrete", scheme="tsit5", rtol=1e-6, backend="compiled")
    numpy = symsens.gradient(model, loss, method="adjoint-discrete", scheme="tsit5", rtol=1e-6, backend="numpy")
    np.testing.assert_array_equal(default.gradient, compiled.gradient)
    assert _relative(compiled.gradient, numpy.gradient) < 1e-13
    with erk_adjoint_backend("numpy"):
        np.testing.assert_array_equal(
            symsens.gradient(model, loss, method="adjoint-discrete", scheme="tsit5", rtol=1e-6).gradient,
            numpy.gradient)


def test_transposed_products_against_dense_jacobians() -> None:
    """``J^T v`` and ``F_p^T v`` of the generated kernels against the dense SymPy Jacobians, over a model with
    exp, a power and a time-dependent forcing; the code is written over the non-zeros only; the sweep through it
    against the NumPy sweep."""
    model = symsens.Model(states=["u", "w", "z"], parameters={"a": 0.7, "b": 1.3, "g": 0.2, "k": 2.0},
                          rhs=["a*u - u**3/3 - w + g*sin(t)", "b*(u - k*w)", "exp(-k*z) - u*z"],
                          initial_conditions=["k", "0.1", "a*b"], name="vjp-check", t_span=(0.0, 1.0))
    chosen = ("a", "k", "g")
    source = vjp_source(model, chosen)
    J = derivative_matrix(list(model.rhs), list(model.states))
    Fp = derivative_matrix(list(model.rhs), [model.symbol(name) for name in chosen])
    assert source.nnz_state == sum(1 for x in J if x != 0) and source.nnz_parameters == sum(1 for x in Fp if x != 0)
    kernels = compile_vjp(model, chosen)
    p = np.array([0.7, 1.3, 0.2, 2.0])
    y, t, v = np.array([0.4, -0.3, 0.9]), 0.37, np.array([1.1, -0.6, 0.25])
    values = {model.time: t, **dict(zip(model.states, y)), **dict(zip(model.parameters, p))}
    J_num = np.array(J.subs(values), dtype=float)
    Fp_num = np.array(Fp.subs(values), dtype=float)
    np.testing.assert_allclose(kernels.vjp_state(t, y, p, v), J_num.T @ v, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(kernels.vjp_parameters(t, y, p, v), Fp_num.T @ v, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(kernels.rhs(t, y, p),
                               np.array([float(f.subs(values)) for f in model.rhs]), rtol=1e-14)
    np.testing.assert_allclose(kernels.initial_conditions(p), [2.0, 0.1, 0.7 * 1.3], rtol=1e-15)
    np.testing.assert_allclose(kernels.initial_vjp(p, v), [1.3 * v[2], v[0], 0.0], rtol=1e-15)
    # The sweep on this non-autonomous model (stage times t_n + c_i h reach the forcing): compiled against NumPy.
    t_eval = np.linspace(0.0, 1.0, 7)
    plain = symsens.solve(model, (0.0, 1.0), p=p, method="tsit5", rtol=1e-6, atol=1e-9, t_eval=t_eval)
    W = np.random.default_rng(3).normal(size=(len(t_eval), 3))
    runs = [discrete_adjoint_erk(model, "tsit5", p, chosen, plain.stats.step_times, plain.stats.step_sizes, t_eval,
                                 W, backend=backend) for backend in ("compiled", "numpy")]
    np.testing.assert_allclose(runs[0].outputs, plain.y, rtol=1e-13, atol=1e-15)
    assert _relative(runs[0].gradient, runs[1].gradient) < 1e-13


def test_bad_input_is_refused_with_the_argument_named() -> None:
    model = linear_model()
    times, sizes = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0])
    W = np.zeros((2, 2))
    call = dict(model=model, scheme="tsit5", p=P_LINEAR, parameters=("a",), step_times=times, step_sizes=sizes,
                output_times=np.array([1.0, 2.0]), cotangents=W)
    with pytest.raises(ValueError, match="`backend` must be one of"):
        discrete_adjoint_erk(**call, backend="fortran")
    with pytest.raises(ValueError, match="`cotangents` must have shape \\(2, 2\\)"):
        discrete_adjoint_erk(**{**call, "cotangents": np.zeros((3, 2))}, backend="compiled")
    with pytest.raises(ValueError, match="`p` must hold all 3 parameter values"):
        discrete_adjoint_erk(**{**call, "p": P_LINEAR[:2]}, backend="compiled")
    with pytest.raises(ValueError, match="`parameters`: unknown parameter 'zeta'"):
        discrete_adjoint_erk(**{**call, "parameters": ("zeta",)}, backend="compiled")
    with pytest.raises(ValueError, match="`step_times` must have one entry more"):
        discrete_adjoint_erk(**{**call, "step_sizes": sizes[:1]}, backend="compiled")
    with pytest.raises(ValueError, match="`checkpoint_every`"):
        discrete_adjoint_erk(**call, checkpoint_every=0, backend="compiled")
    with pytest.raises(ValueError, match="must be finite"):
        discrete_adjoint_erk(**{**call, "step_sizes": np.array([1.0, np.nan])}, backend="compiled")
    with pytest.raises(ValueError, match="`scheme`"):
        discrete_adjoint_erk(**{**call, "scheme": "rodas4"}, backend="compiled")
    with pytest.raises(ValueError, match="`backend` of adjoint-discrete must be 'compiled' or 'numpy'"):
        symsens.gradient(model, method="adjoint-discrete", scheme="tsit5", backend="scipy")
    with pytest.raises(ValueError, match="`backend` applies to the adjoint methods only"):
        symsens.gradient(model, method="discrete", scheme="tsit5", backend="compiled")


def test_a_failed_forward_run_gives_a_failed_result() -> None:
    """``y' = q y^2`` blows up at ``t = 1 / (q y0) = 1``: no gradient, the status says why."""
    model = symsens.Model(states=["y"], parameters={"q": 1.0}, rhs=["q*y**2"], initial_conditions=["1"],
                          name="blow-up", t_span=(0.0, 2.0))
    loss = DataLoss(np.array([0.5, 2.0]), np.array([[1.0], [1.0]]), ("y",))
    result = symsens.gradient(model, loss, method="adjoint-discrete", scheme="tsit5", rtol=1e-6, backend="compiled")
    assert not result.success and result.gradient is None
    assert result.status != "success" and result.message
    with pytest.raises(symsens.IntegrationError):
        result.check()
