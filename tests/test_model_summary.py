"""Models made from their cached summaries: a fresh process loads a model file or built-in model whose compiled
libraries are cached and solves it without importing SymPy, with the same results bit for bit; the model builds
its expressions when asked and is then the model its text describes; anything that is not the summary of exactly
this text (an edited file, a damaged or foreign summary) is never used.

Checked structurally (what is imported, what is built, which values agree), never by timing.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens.codegen import _kernels, _summaries
from symsens.model import _load, _model
from symsens.model._summary import ModelSummary

ROOT = Path(__file__).resolve().parent.parent

MODEL_TEXT = """\
[model]
name = "decay with an output"
description = "A decaying state and a rate given as an intermediate"
time = "t"
t_span = [0.0, 2.0]

[states]
x = "2*a"

[parameters]
k = 1.5
a = 0.5

[intermediates]
rate = "k*x"

[equations]
x = "-rate"

[outputs]
twice = "2*x"

[units]
time = "s"
x = "mol"
"""

# Runs in a fresh process: load the model file, solve it with forward sensitivities, report what was imported and
# the results exactly (float.hex), then build the expressions and report them.
_CHILD = r"""
import json, sys
import symsens
path = sys.argv[1]
model = symsens.load_model(path)
solution = symsens.solve(model, method="tsit5", sensitivity="forward", parameters=["k", "a"], rtol=1e-9, atol=1e-12,
                         t_eval=[0.0, 1.0, 2.0])
outputs = solution.outputs["twice"]  # compiled with the solver: no expressions needed
result = {
    "sympy after solve": "sympy" in sys.modules,
    "from summary": "_summary" in model.__dict__,
    "unbuilt after solve": "rhs" not in model.__dict__,
    "y": [v.hex() for v in solution.y.ravel()],
    "S": [v.hex() for v in solution.sensitivities.ravel()],
    "outputs": [v.hex() for v in outputs.ravel()],
}
result["rhs"] = str(model.rhs[0])
from symsens.model import loads_model
built = loads_model(open(path, encoding="utf-8").read(), source=path)
result["equal to the built model"] = model == built and hash(model) == hash(built)
print(json.dumps(result))
"""


def _run(arguments: list[str], cache: Path) -> dict[str, object]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    environment["SYMSENS_CACHE_DIR"] = str(cache)
    done = subprocess.run([sys.executable, "-c", _CHILD, *arguments], capture_output=True, text=True,
                          env=environment, cwd=ROOT, check=False, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, object]]]:
    """(cache directory, model file, the first process's results): a private cache in which one process loaded
    the model file and solved it, which compiled its library and cached its summary."""
    directory = tmp_path_factory.mktemp("summary-cache")
    cache = directory / "cache"
    path = directory / "decay.toml"
    path.write_text(MODEL_TEXT, encoding="utf-8")
    first = _run([str(path)], cache)
    yield cache, path, first


@pytest.fixture()
def in_cache(cached: tuple[Path, Path, dict[str, object]], monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """This process pointed at the private cache (``cached``)."""
    cache, path, _ = cached
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(cache))
    return cache, path


def test_a_fresh_process_solves_a_cached_model_file_without_sympy(cached: tuple[Path, Path, dict[str, object]]) -> None:
    cache, path, first = cached
    assert first["from summary"] is False  # the first process built the model from its text
    assert list((cache / "models").glob("*.json")), "the first solve caches the model's summary"
    second = _run([str(path)], cache)
    assert second["from summary"] is True
    assert second["sympy after solve"] is False
    # The same library and inputs: the same numbers, bit for bit, as the process that built the model.
    for key in ("y", "S", "outputs"):
        assert second[key] == first[key], key
    # Closed form as an independent check: x = 2a exp(-k t), dx/dk = -t x, dx/da = 2 exp(-k t).
    y = np.array([float.fromhex(v) for v in second["y"]])
    sens = np.array([float.fromhex(v) for v in second["S"]]).reshape(3, 1, 2)
    times = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(y, np.exp(-1.5 * times), rtol=1e-7)
    np.testing.assert_allclose(sens[:, 0, 0], -times * np.exp(-1.5 * times), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sens[:, 0, 1], 2 * np.exp(-1.5 * times), rtol=1e-6)
    assert [float.fromhex(v) for v in second["outputs"]] == list(2 * y)  # twice = 2 x, exactly
    # Asked for its expressions, the model builds them and is the model of the text.
    assert second["unbuilt after solve"] is True
    assert second["rhs"] == first["rhs"] == "-k*x"
    assert second["equal to the built model"] is True


def test_a_model_from_its_summary_is_the_model_of_its_text(in_cache: tuple[Path, Path]) -> None:
    _, path = in_cache
    model = symsens.load_model(path)
    assert "_summary" in model.__dict__ and "rhs" not in model.__dict__
    built = symsens.model.loads_model(path.read_text(encoding="utf-8"), source=str(path))
    # Names, values, span, units and outputs come from the summary, before any expression is built.
    assert (model.state_names, model.parameter_names, model.parameter_values) == (("x",), ("k", "a"), (1.5, 0.5))
    assert (model.n_states, model.n_parameters, model.output_names) == (1, 2, ("twice",))
    assert model.t_span == (0.0, 2.0) and model.unit("x") == "mol" and model.label("t") == "t (s)"
    assert model.nominal_parameters == built.nominal_parameters
    assert "rhs" not in model.__dict__
    # Hash and equality agree with the built model without building anything...
    again = symsens.load_model(path)
    assert hash(model) == hash(built) and model == again and "rhs" not in model.__dict__
    # ...copies with other values keep the summary and differ from the original...
    changed = model.with_parameter_values({"k": 3.0})
    assert changed != model and changed.parameter_values == (3.0, 0.5) and "_summary" in changed.__dict__
    # Field by field, once built: the model the text describes; repeated loads and copies share the expressions.
    assert model == built
    assert again.rhs is model.rhs and changed.rhs is model.rhs
    for field in ("states", "parameters", "rhs", "initial_conditions", "intermediates", "outputs", "time"):
        assert getattr(model, field) == getattr(built, field), field
    assert model.symbol("rate") == sp.Symbol("rate", real=True)
    assert changed.rhs == built.rhs and str(changed) == str(built.with_parameter_values({"k": 3.0}))
    # The copy solves at its own values: x(2) = exp(-2 k) with k = 3.
    solution = symsens.solve(changed, method="tsit5", rtol=1e-10, atol=1e-12, t_eval=[2.0])
    assert solution.y[-1, 0] == pytest.approx(np.exp(-6.0), rel=1e-8)
    # A pickled model travels with its expressions, not with this process's summary and cache key.
    fresh = symsens.load_model(path)
    copy = pickle.loads(pickle.dumps(fresh))
    assert "rhs" in copy.__dict__ and "_summary" not in copy.__dict__ and "_origin" not in copy.__dict__
    assert copy == built and hash(copy) == hash(built) and copy.rhs == built.rhs


def test_an_edited_file_never_finds_the_summary_of_its_old_text(in_cache: tuple[Path, Path], tmp_path: Path) -> None:
    _, path = in_cache
    edited = tmp_path / "decay.toml"
    edited.write_text(MODEL_TEXT.replace('x = "-rate"', 'x = "-2*rate"'), encoding="utf-8")
    model = symsens.load_model(edited)
    assert "_summary" not in model.__dict__
    solution = symsens.solve(model, method="tsit5", rtol=1e-10, atol=1e-12, t_eval=[1.0])
    assert solution.y[-1, 0] == pytest.approx(np.exp(-3.0), rel=1e-8)
    # Same text under another name: the same model, found through its summary.
    same = tmp_path / "copy.toml"
    same.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert "_summary" in symsens.load_model(same).__dict__


def _summary_file(cache: Path, path: Path) -> Path:
    return cache / "models" / f"{_summaries.summary_key('toml', path.read_text(encoding='utf-8'))}.json"


def test_a_damaged_summary_is_a_miss(in_cache: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, path = in_cache
    original = _summary_file(cache, path)
    assert original.is_file()
    copy = tmp_path / "cache"
    (copy / "models").mkdir(parents=True)
    target = copy / "models" / original.name
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(copy))
    entry = json.loads(original.read_text())
    # One changed value without a matching checksum; not JSON at all; another format: each is a miss.
    tampered = dict(entry, summary=dict(entry["summary"], parameter_values=[2.5, 0.5]))
    for text in (json.dumps(tampered), original.read_text()[:-20], json.dumps(dict(entry, format=99))):
        target.write_text(text)
        model = symsens.load_model(path)
        assert "_summary" not in model.__dict__ and model.parameter_values == (1.5, 0.5)
    # The next solve of the model replaces the damaged summary.
    _kernels.model_facts(model)
    assert ModelSummary.from_json(target.read_text()) == ModelSummary.from_json(original.read_text())
    assert "_summary" in symsens.load_model(path).__dict__


def test_a_summary_that_does_not_describe_its_text_is_refused_when_built(
    in_cache: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A summary with a valid checksum but another model's names (a damaged cache written by other means)
    is caught when the expressions are built, with a message naming the cache."""
    cache, path = in_cache
    original = _summary_file(cache, path)
    summary = ModelSummary.from_json(original.read_text())
    assert summary is not None
    copy = tmp_path / "cache"
    (copy / "models").mkdir(parents=True)
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(copy))
    # Another state name; another digest; a wrong "autonomous" (it decides a constant of the compiled drivers);
    # another size of f.
    for change, what in ((("states", ("y",)), "states"), (("digest", "0" * 64), "equations \\(their digest"),
                         (("autonomous", not summary.autonomous), "whether the equations are free of time"),
                         (("rhs_nodes", summary.rhs_nodes + 1), "size of the right-hand side")):
        forged = ModelSummary(**{**summary.__dict__, change[0]: change[1]})
        (copy / "models" / original.name).write_text(forged.to_json())
        model = symsens.load_model(path)
        assert getattr(model.__dict__["_summary"], change[0]) == change[1]  # what the summary says, until built
        with pytest.raises(symsens.ModelError, match=f"does not match its text \\({what}"):
            model.rhs


def test_the_summary_round_trips_and_refuses_malformed_fields() -> None:
    summary = ModelSummary(
        name="m", description="", time="t", states=("x",), parameters=("k",), parameter_values=(0.1,),
        intermediates=(), outputs=(), t_span=(0.0, 1.0), units=(("x", "mV"),), digest="0" * 64, autonomous=True,
        rhs_nodes=3,
    )
    assert ModelSummary.from_json(summary.to_json()) == summary
    entry = json.loads(summary.to_json())
    for field, bad in (("states", []), ("parameter_values", [float("nan")]), ("rhs_nodes", -1),
                       ("autonomous", 1), ("parameters", ["k", "j"]), ("t_span", [0.0])):
        payload = dict(entry["summary"], **{field: bad})
        import hashlib

        body = json.dumps(payload, sort_keys=True, ensure_ascii=True)
        text = json.dumps({"format": entry["format"], "summary": payload,
                           "sha256": hashlib.sha256(body.encode()).hexdigest()})
        assert ModelSummary.from_json(text) is None, field


def test_a_builtin_model_is_made_from_its_summary_once_solved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    _load.builtin.cache_clear()  # as in a fresh process: built-in models are made once per process
    try:
        _check_builtin_summary()
    finally:
        _load.builtin.cache_clear()  # later tests get their own, not one made from this temporary cache


def _check_builtin_summary() -> None:
    built = symsens.load_model("robertson")
    assert "_summary" not in built.__dict__ and symsens.load_model("robertson") is built
    assert _kernels.model_facts(built).digest == _kernels._compute_model_digest(built)  # writes the summary
    _load.builtin.cache_clear()
    model = symsens.load_model("robertson")
    assert "_summary" in model.__dict__
    assert symsens.model._library.builtin_model("robertson") is model
    facts = _kernels.model_facts(model)
    assert facts == _kernels._compute_model_facts(built)
    assert model == built and model.rhs == built.rhs
    # The registry's names are known without building any model.
    from symsens.model._library import BUILTIN_MODELS

    assert _load.BUILTIN_NAMES == tuple(BUILTIN_MODELS) == symsens.examples()


def test_package_versions_are_read_from_their_files() -> None:
    """The generator digest reads SymPy's and mpmath's versions from their files when they are not imported;
    both ways give the same text."""
    import mpmath

    assert _kernels._version_from_files("sympy") == sp.__version__
    assert _kernels._version_from_files("mpmath") == mpmath.__version__
    assert _kernels._version_from_files("numpy") is None  # not a known layout: the caller imports it


def test_model_module_imports_no_sympy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            from symsens.model import Model, load_model
            from symsens.model._summary import ModelSummary
            print("sympy" in sys.modules)
        """)], capture_output=True, text=True, cwd=ROOT, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.strip() == "False"
    assert _model._SYMBOLIC_FIELDS == ("states", "parameters", "rhs", "initial_conditions", "intermediates",
                                       "outputs", "time", "_symbol_table")


def test_an_sbml_model_is_made_from_its_summary_without_libsbml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An SBML file solved once is loaded by a fresh process from its summary: neither libsbml nor SymPy is
    imported to solve it, and its expressions, built on demand from the document, are those libsbml reads."""
    from symsens.model import to_sbml

    cache = tmp_path / "cache"
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(cache))
    source = symsens.Model(states=["x"], parameters={"k": 1.5}, rhs=["-k*x"], initial_conditions=["2"],
                           name="decay", t_span=(0.0, 1.0))
    path = tmp_path / "decay.xml"
    path.write_text(to_sbml(source), encoding="utf-8")
    built = symsens.load_model(path)
    assert "_summary" not in built.__dict__
    first = symsens.solve(built, (0.0, 1.0), method="tsit5", rtol=1e-10, atol=1e-12, t_eval=[1.0],
                          sensitivity="forward")
    again = symsens.load_model(path)
    assert "_summary" in again.__dict__ and again == built and again.rhs == built.rhs
    code = textwrap.dedent("""
        import json, sys
        import symsens
        model = symsens.load_model(sys.argv[1])
        solution = symsens.solve(model, (0.0, 1.0), method="tsit5", rtol=1e-10, atol=1e-12, t_eval=[1.0],
                                 sensitivity="forward")
        print(json.dumps([solution.y[-1, 0].hex(), solution.sensitivities[-1, 0, 0].hex(),
                          "sympy" in sys.modules, "libsbml" in sys.modules, "_summary" in model.__dict__]))
    """)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                   "SYMSENS_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=environment,
                          cwd=ROOT, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    y, s, sympy, libsbml, from_summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (sympy, libsbml, from_summary) == (False, False, True)
    assert float.fromhex(y) == first.y[-1, 0] and float.fromhex(s) == first.sensitivities[-1, 0, 0]
    assert first.y[-1, 0] == pytest.approx(2 * np.exp(-1.5), rel=1e-8)
    # Another document (an edited rate) is another model.
    path.write_text(to_sbml(source.with_parameter_values({"k": 0.5})), encoding="utf-8")
    edited = symsens.load_model(path)
    assert "_summary" not in edited.__dict__ and edited.parameter_values == (0.5,)
