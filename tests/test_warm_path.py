"""The warm path: a process that finds its compiled libraries in the disk cache runs no code generation, the
cache key separates every model, parameter choice, method and generator, and ``import symsens`` stays light.

Everything is checked structurally (what is imported, what is called, which keys differ), never by timing.
Solvers are compiled without sensitivity parameters (plain mode only), the fastest libraries to build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen import _build, _kernels, _runtime
from symsens.integrate import _compiled

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, env: dict[str, str] | None = None, arguments: list[str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter (this checkout first on the path) with ``sys.argv[1:] = arguments``;
    its stdout."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    environment.update(env or {})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *(arguments or [])], capture_output=True,
                          text=True, env=environment, cwd=ROOT, check=False, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _decay(name: str = "decay", rhs: str = "-k*x", parameters: dict[str, float] | None = None) -> symsens.Model:
    return symsens.Model(states=["x"], parameters=parameters or {"k": 1.5, "a": 0.5}, rhs=[rhs],
                         initial_conditions=["2"], name=name, t_span=(0.0, 1.0))


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private kernel cache holding the tsit5 solver of ``_decay()`` (no sensitivity parameters)."""
    directory = tmp_path_factory.mktemp("warm-kernel-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYMSENS_CACHE_DIR", str(directory))
        patch.delenv("SYMSENS_COMPILE_TIMEOUT", raising=False)
        solution = symsens.solve(_decay(), method="tsit5", t_eval=[0.0, 1.0], rtol=1e-10, atol=1e-12)
        assert solution.y[-1, 0] == pytest.approx(2 * np.exp(-1.5), rel=1e-8)
        # The compiler's version line is recorded in the cache by the first process that runs the compiler;
        # this process may have run it before the cache existed.
        _build._compiler_identity.cache_clear()
        _build.find_compiler()
        yield directory


@pytest.fixture(scope="module")
def generator_digest(warm_cache: Path) -> str:
    """The generator digest the warm cache was built under.

    The tests of the hit path pin it: the digest hashes the generator's source files, and other work in the
    same checkout may edit one of them while the tests run (which correctly turns a hit into a miss)."""
    return _kernels._generator_digest()


def _clear_in_memory_caches() -> None:
    """Forget everything this process remembers about compiled code, as a fresh process would."""
    for function in (_compiled._compiled_solver, _compiled._tableau_code, _compiled._explicit_spec,
                     _compiled._implicit_spec, _runtime.runtime_header, _kernels._generator_digest,
                     _build._compiler_identity):
        function.cache_clear()
    _kernels._model_digests.clear()
    _build._verified.clear()


def _forbid(what: str) -> Callable[..., None]:
    """A stand-in for ``what`` that fails the test when called."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{what} ran on a cache hit")

    return refuse


# -- a cache hit generates nothing ------------------------------------------------------------------------------
def test_a_cache_hit_runs_no_code_generation(warm_cache: Path, generator_digest: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(warm_cache))
    _clear_in_memory_caches()
    monkeypatch.setattr(_kernels, "_generator_digest", lambda: generator_digest)
    import symsens.codegen._assemble as assemble
    import symsens.derive as derive

    for module, name in ((_kernels, "generate_model_source"), (assemble, "generate_model_source"),
                         (_runtime, "runtime_header"), (_compiled, "runtime_header"), (_kernels, "runtime_header"),
                         (_compiled, "_tableau_code"), (_kernels, "build_library"), (_build, "build_library"),
                         (_build, "_run_version"), (derive, "sensitivity_system"), (sp, "cse"),
                         (sp, "srepr")):
        monkeypatch.setattr(module, name, _forbid(f"{module.__name__}.{name}"))
    # A new model object, equal to the one compiled: found through its content, not through object identity.
    solution = symsens.solve(_decay(), method="tsit5", t_eval=[0.0, 1.0], rtol=1e-10, atol=1e-12)
    assert solution.y[-1, 0] == pytest.approx(2 * np.exp(-1.5), rel=1e-8)


def test_a_fresh_process_finds_the_library_without_generating(warm_cache: Path, generator_digest: str) -> None:
    """The whole start-up of another process: its in-memory state is empty, and the code generator, the
    derivation package, the scheme catalogue, SciPy's integrators and matplotlib are never imported."""
    out = _run("""
        import sys
        import symsens
        from symsens.codegen import _build, _kernels, _runtime
        from symsens.integrate import _compiled

        def refuse(*args, **kwargs):
            raise AssertionError("code generation ran on a cache hit")

        for module, name in ((_kernels, "generate_model_source"), (_runtime, "runtime_header"),
                             (_compiled, "runtime_header"), (_compiled, "_tableau_code"),
                             (_kernels, "build_library"), (_build, "build_library"), (_build, "_run_version")):
            setattr(module, name, refuse)
        _kernels._generator_digest = lambda: sys.argv[1]  # the digest the cache was built under
        model = symsens.Model(states=["x"], parameters={"k": 1.5, "a": 0.5}, rhs=["-k*x"],
                              initial_conditions=["2"], name="decay", t_span=(0.0, 1.0))
        solution = symsens.solve(model, method="tsit5", t_eval=[0.0, 1.0], rtol=1e-10, atol=1e-12)
        print(solution.y[-1, 0])
        print([m for m in ("symsens.derive", "symsens.schemes", "scipy.integrate", "matplotlib")
               if m in sys.modules])
    """, env={"SYMSENS_CACHE_DIR": str(warm_cache)}, arguments=[generator_digest])
    value, imported = out.strip().splitlines()
    assert float(value) == pytest.approx(2 * np.exp(-1.5), rel=1e-8)
    assert imported == "[]"


def test_a_changed_model_gets_its_own_library(warm_cache: Path, generator_digest: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Same name, same parameters, another equation: never the cached library of the first model."""
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(warm_cache))
    monkeypatch.setattr(_kernels, "_generator_digest", lambda: generator_digest)
    faster = symsens.solve(_decay(rhs="-2*k*x"), method="tsit5", t_eval=[0.0, 1.0], rtol=1e-10, atol=1e-12)
    assert faster.y[-1, 0] == pytest.approx(2 * np.exp(-3.0), rel=1e-8)
    first = _compiled.compiled_solver(_decay(), (), "tsit5").library_path
    second = _compiled.compiled_solver(_decay(rhs="-2*k*x"), (), "tsit5").library_path
    assert first != second


def test_the_compiler_version_is_remembered_per_compiler_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path / "cache"))
    compiler = _build.find_compiler()
    _build._compiler_identity.cache_clear()
    first = _build._compiler_identity(compiler.path)
    assert list((tmp_path / "cache" / "compilers").glob("*.txt"))
    _build._compiler_identity.cache_clear()
    runs: list[str] = []
    real = _build._run_version
    monkeypatch.setattr(_build, "_run_version", lambda path: runs.append(path) or real(path))
    assert _build._compiler_identity(compiler.path) == first and not runs  # read back, not run
    # Another compiler file (upgraded, replaced, another symlink target): run again.
    _build._compiler_identity.cache_clear()
    monkeypatch.setattr(_build, "_compiler_stamp", lambda path: "another compiler file")
    assert _build._compiler_identity(compiler.path) == first and runs == [compiler.path]
    _build._compiler_identity.cache_clear()


# -- the key -------------------------------------------------------------------------------------------------------
def test_the_key_separates_models_parameters_and_purposes() -> None:
    base = _decay()
    key = _kernels.model_fingerprint(base, ["k"], "solver:x")
    assert key == _kernels.model_fingerprint(_decay(), ["k"], "solver:x")  # equal content, equal key
    others = [
        _kernels.model_fingerprint(_decay(rhs="-k*x**2"), ["k"], "solver:x"),           # another equation
        _kernels.model_fingerprint(_decay(rhs="-k*x + a"), ["k"], "solver:x"),
        _kernels.model_fingerprint(_decay(name="decay2"), ["k"], "solver:x"),            # name (in comments)
        _kernels.model_fingerprint(_decay(parameters={"a": 0.5, "k": 1.5}), ["k"], "solver:x"),  # order
        _kernels.model_fingerprint(base, ["a"], "solver:x"),                             # parameters chosen
        _kernels.model_fingerprint(base, ["k", "a"], "solver:x"),
        _kernels.model_fingerprint(base, ["a", "k"], "solver:x"),
        _kernels.model_fingerprint(base, [], "solver:x"),
        _kernels.model_fingerprint(base, ["k"], "solver:y"),                             # purpose
        _kernels.model_fingerprint(symsens.Model(states=["x"], parameters={"k": 1.5, "a": 0.5}, rhs=["-k*x"],
                                                 initial_conditions=["3"], name="decay"), ["k"], "solver:x"),
        _kernels.model_fingerprint(symsens.Model(states=["y"], parameters={"k": 1.5, "a": 0.5}, rhs=["-k*y"],
                                                 initial_conditions=["2"], name="decay"), ["k"], "solver:x"),
    ]
    assert len({key, *others}) == len(others) + 1
    # Nominal values, outputs and the description are run-time inputs: the same library serves them.
    assert key == _kernels.model_fingerprint(_decay(parameters={"k": 7.0, "a": 0.1}), ["k"], "solver:x")


def test_the_key_separates_methods_and_driver_constants() -> None:
    purposes = {_compiled._solver_purpose(method, autonomous)
                for method in ("tsit5", "dopri5", "radau5", "radau-iia-3", "rodas4", "bdf")
                for autonomous in (True, False)}
    assert len(purposes) == 12
    model = _decay()
    keys = {_kernels.model_fingerprint(model, ["k"], purpose) for purpose in purposes}
    assert len(keys) == 12


def test_the_key_covers_compiler_flags_and_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sources' share of the digest held fixed (another test checks it), so only the versions vary here.
    _kernels._generator_digest.cache_clear()
    monkeypatch.setattr(_kernels, "_source_digest", lambda package: "fixed")
    model = _decay()
    key = _kernels.model_fingerprint(model, ["k"], "kernels")
    compiler = _build.find_compiler()
    for other in (_build.Compiler(compiler.path, compiler.version + " (patched)"),
                  _build.Compiler(compiler.path + "-other", compiler.version)):
        with monkeypatch.context() as patch:
            patch.setattr(_kernels, "find_compiler", lambda: other)
            assert _kernels.model_fingerprint(model, ["k"], "kernels") != key
    assert _kernels.model_fingerprint(model, ["k"], "kernels") == key
    with monkeypatch.context() as patch:
        patch.setattr(_build, "DEFAULT_FLAGS", (*_build.DEFAULT_FLAGS, "-ffast-math"))
        assert _kernels.model_fingerprint(model, ["k"], "kernels") != key
    for module in (sp, __import__("mpmath"), symsens):
        _kernels._generator_digest.cache_clear()
        with monkeypatch.context() as patch:
            patch.setattr(module, "__version__", module.__version__ + ".patched")
            assert _kernels.model_fingerprint(model, ["k"], "kernels") != key
    _kernels._generator_digest.cache_clear()
    assert _kernels.model_fingerprint(model, ["k"], "kernels") == key
    _kernels._generator_digest.cache_clear()


def test_the_generator_digest_covers_what_generated_code_is_made_from(tmp_path: Path) -> None:
    package = ROOT / "symsens"
    names = {f.relative_to(package).as_posix() for f in _kernels._generator_files(package)}
    for required in ("codegen/_runtime.py", "codegen/runtime/symsens_runtime_base.hpp", "codegen/_printer.py",
                     "codegen/_assemble.py", "codegen/_kernels.py", "derive/_cse.py", "derive/_sensitivity.py",
                     "schemes/_registry.py", "model/_functions.py", "integrate/_compiled.py"):
        assert required in names, required
    assert {f"integrate/cpp/{h.name}" for h in (package / "integrate" / "cpp").glob("*.hpp")} <= names
    # Editing any of them (here: the runtime header's base text) changes the digest.
    copy = tmp_path / "symsens"
    for name in names:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package / name, copy / name)
    before = _kernels._source_digest(copy)
    assert before == _kernels._source_digest(package)
    header = copy / "codegen/runtime/symsens_runtime_base.hpp"
    header.write_text(header.read_text() + "\n// edited\n")
    assert _kernels._source_digest(copy) != before


def test_the_generator_digest_covers_every_module_code_generation_imports() -> None:
    """Every symsens module that generating a model's source, the runtime header and the tableaux imports is
    hashed into the generator digest, so none of them can change what is generated behind an unchanged key."""
    out = _run("""
        import json, sys
        import symsens
        from symsens.integrate import _compiled
        model = symsens.load_model("hodgkin-huxley")
        before = set(sys.modules)
        from symsens.codegen import _assemble, _runtime
        _assemble.generate_model_source(model, ["g_Na"])
        _runtime.runtime_header()
        for name in _compiled._METHOD_FACTS:
            _compiled.method_spec(name).tableau_code
        imported = sorted(name for name in sys.modules
                          if name.startswith("symsens") and getattr(sys.modules[name], "__file__", None))
        print(json.dumps({name: [sys.modules[name].__file__, name not in before] for name in imported}))
    """)
    package = ROOT / "symsens"
    covered = {f.resolve() for f in _kernels._generator_files(package)}
    # Imported before generation and not part of it: what loading a model and importing the solve path needs.
    outside = {"symsens", "symsens._errors", "symsens._once", "symsens._checks", "symsens.model",
               "symsens.model._model", "symsens.model._parser", "symsens.model._file", "symsens.model._load",
               "symsens.model._library", "symsens.integrate", "symsens.integrate._solve",
               "symsens.integrate._solution"}
    missing = [name for name, (file, new) in json.loads(out).items()
               if Path(file).resolve() not in covered and (new or name not in outside)]
    assert not missing, f"imported by code generation but not in the generator digest: {missing}"


def test_canonical_text_is_exact() -> None:
    x = sp.Symbol("x", real=True)
    texts = [
        _kernels._canonical(expr, {})
        for expr in (sp.Float(0.5) * x, sp.Rational(1, 2) * x, sp.Float("0.5", 30) * x, sp.Float(0.1) * x,
                     sp.Rational(1, 10) * x, sp.Symbol("x", positive=True) / 2, sp.Symbol("x") / 2, sp.exp(x) / 2,
                     sp.exp(-x) / 2, x / 2 + 1, sp.Piecewise((x, x > 0), (0, True)), sp.Abs(x) / 2)
    ]
    assert len(set(texts)) == len(texts)


def test_the_key_is_the_same_in_every_process() -> None:
    """No hash-seed or object-identity dependence: another interpreter computes the same key."""
    model = symsens.load_model("hodgkin-huxley")
    key = _kernels.model_fingerprint(model, ["g_Na", "g_K"], "kernels")
    out = _run("""
        import symsens
        from symsens.codegen import _kernels
        print(_kernels.model_fingerprint(symsens.load_model("hodgkin-huxley"), ["g_Na", "g_K"], "kernels"))
    """, env={"PYTHONHASHSEED": "12345"})
    assert out.strip() == key


def test_the_method_table_agrees_with_the_scheme_catalogue() -> None:
    """Every method's constants (family, orders, controller) match what its tableau printer derives."""
    for name in _compiled._METHOD_FACTS:
        assert "make_tableau" in _compiled.method_spec(name).tableau_code or name == "bdf"
    assert set(_compiled._METHOD_FACTS) == set(
        _compiled.EXPLICIT_METHODS + _compiled.IMPLICIT_METHODS + _compiled.EXPONENTIAL_METHODS
    )
    with pytest.raises(ValueError, match="no compiled integrator"):
        _compiled.method_spec("no-such-method")


# -- imports -------------------------------------------------------------------------------------------------------
def test_import_symsens_is_light(tmp_path: Path) -> None:
    """``import symsens`` imports NumPy (every computation needs it) and nothing heavy besides; loading a model
    imports neither SciPy, matplotlib, the audit nor the integrators (here with an empty cache: the model is
    built, so SymPy is imported)."""
    out = _run("""
        import json, sys
        import symsens
        heavy = ["matplotlib", "scipy", "sympy", "mpmath", "symsens.audit", "symsens.integrate", "symsens.model"]
        after_import = [m for m in heavy if m in sys.modules]
        symsens.load_model("robertson")
        after_load = [m for m in ("matplotlib", "scipy", "symsens.audit", "symsens.integrate") if m in sys.modules]
        print(json.dumps([after_import, after_load, "numpy" in sys.modules, "sympy" in sys.modules]))
    """, env={"SYMSENS_CACHE_DIR": str(tmp_path)})
    after_import, after_load, numpy, sympy = json.loads(out)
    assert after_import == []
    assert after_load == []
    assert numpy and sympy


def test_every_public_name_still_works() -> None:
    out = _run("""
        import json, sys, types
        import symsens
        import symsens.reference._reference  # loading the subpackage must not replace the function
        checks = {
            "all": all(hasattr(symsens, name) for name in symsens.__all__),
            "dir": set(symsens.__all__) <= set(dir(symsens)),
            "reference is the function": callable(symsens.reference)
                and not isinstance(symsens.reference, types.ModuleType),
            "Reference": symsens.Reference is sys.modules["symsens.reference"].Reference,
            "audit is the callable package": isinstance(symsens.audit, types.ModuleType) and callable(symsens.audit),
            "audit_sweep": symsens.audit_sweep is symsens.audit.audit_sweep,
            "solve": symsens.solve is sys.modules["symsens.integrate._solve"].solve,
            "Model": symsens.Model is sys.modules["symsens.model"].Model,
            "gradient": callable(symsens.gradient) and callable(symsens.true_gradient),
            "subpackages": symsens.schemes.get_scheme("tsit5").order == 5 and hasattr(symsens.derive, "jacobian"),
            "integrate names": symsens.integrate.solve is symsens.solve
                and symsens.integrate.adjoint_gradient is not None,
            "codegen names": symsens.codegen.compile_model is not None
                and symsens.codegen.CodegenError is symsens.codegen._printer.CodegenError,
        }
        namespace = {}
        exec("from symsens import *", namespace)
        checks["star"] = set(symsens.__all__) <= set(namespace)
        try:
            symsens.no_such_name
            checks["missing name"] = False
        except AttributeError:
            checks["missing name"] = True
        print(json.dumps(checks))
    """)
    checks = json.loads(out)
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}
