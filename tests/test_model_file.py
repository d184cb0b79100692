"""TOML model files: loading, every error with its line, and the exact round trip dumps -> loads."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sympy as sp

from symsens import Model, ModelError
from symsens.model._file import _locate, dumps_model, load_model_file, loads_model
from symsens.model._functions import exprel

ROBERTSON = textwrap.dedent(
    """\
    [model]
    name = "robertson"                      # required
    description = "Robertson (1966) chemical kinetics"
    time = "t"
    t_span = [0.0, 40.0]

    [parameters]
    k1 = 0.04
    k2 = 3e7
    k3 = 1e4

    [states]
    y1 = 1.0
    y2 = 0
    y3 = "k1/k2"

    [intermediates]
    r1 = "k1*y1"

    [equations]
    y1 = "-r1 + k3*y2*y3"
    y2 = "r1 - k3*y2*y3 - k2*y2^2"
    y3 = "k2*y2^2"

    [outputs]
    total = "y1 + y2 + y3"
    """
)


def _line_of(text: str, marker: str) -> int:
    """Number of the first line starting with ``marker``, to write expectations without counting by hand."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(marker):
            return number
    raise AssertionError(f"{marker!r} not in the text")


# ------------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------------


def test_robertson_file_loads_exactly() -> None:
    model = loads_model(ROBERTSON, source="robertson.toml")
    # Model symbols are real (see symsens.model._model).
    y1, y2, y3, k1, k2, k3 = sp.symbols("y1 y2 y3 k1 k2 k3", real=True)
    assert model.name == "robertson"
    assert model.description == "Robertson (1966) chemical kinetics"
    assert model.states == (y1, y2, y3)
    assert model.parameters == (k1, k2, k3)
    assert model.parameter_values == (0.04, 3e7, 1e4)
    assert model.rhs == (-k1 * y1 + k3 * y2 * y3, k1 * y1 - k3 * y2 * y3 - k2 * y2**2, k2 * y2**2)
    assert model.initial_conditions == (sp.Integer(1), sp.Integer(0), k1 / k2)
    assert all(isinstance(ic, sp.Basic) and not ic.has(sp.Float) for ic in model.initial_conditions)
    assert model.intermediates == ((sp.Symbol("r1", real=True), k1 * y1),)
    assert model.outputs == (("total", y1 + y2 + y3),)
    assert model.time == sp.Symbol("t", real=True)
    assert model.t_span == (0.0, 40.0)


def test_load_model_file_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "decay.toml"
    path.write_text('[model]\nname = "decay"\n[parameters]\nlam = -2.5\n[states]\ny = 0.1\n[equations]\ny = "lam*y"\n')
    model = load_model_file(path)
    assert model.time == sp.Symbol("t", real=True)
    assert model.t_span is None and model.description == "" and model.outputs == ()
    assert model.initial_conditions == (sp.Rational(1, 10),)  # the decimal, exactly (not the double 0.1)
    assert model.rhs == (sp.Symbol("lam", real=True) * sp.Symbol("y", real=True),)


def test_load_model_entry_point_reads_files(tmp_path: Path) -> None:
    import symsens.model._library  # noqa: F401  (load_model also knows the built-in models)
    from symsens import load_model

    path = tmp_path / "robertson.toml"
    path.write_text(ROBERTSON)
    assert load_model(path) == loads_model(ROBERTSON)


def test_expressions_of_the_whole_language_in_a_file() -> None:
    text = textwrap.dedent(
        """\
        [model]
        name = "hh-like"
        time = "tau"
        [parameters]
        g = 120
        E = 50.0
        [states]
        V = "-65 + g*0"
        m = 0.05
        [intermediates]
        alpha = "0.1*exprel(-(V + 40)/10)"
        beta = "4*exp(-(V + 65)/18)"
        [equations]
        V = "g*m^3*(E - V) + piecewise(tau < 1, 10, 0)"
        m = "alpha*(1 - m) - beta*m + (0 if V < -100 else max(V, -80) - max(V, -80))"
        """
    )
    model = loads_model(text)
    V, m, g, tau = sp.symbols("V m g tau", real=True)
    assert model.time == tau
    assert model.initial_conditions[0] == -65
    assert model.rhs[1].has(exprel)
    assert model.rhs[0].has(sp.Piecewise)


# ------------------------------------------------------------------------------------------------------
# Errors: file, line and name
# ------------------------------------------------------------------------------------------------------


def _replace(old: str, new: str) -> str:
    assert old in ROBERTSON
    return ROBERTSON.replace(old, new, 1)


_FILE_ERRORS = [
        # malformed TOML, with tomllib's message and line
        (_replace("k1 = 0.04", "k1 = "), r"malformed TOML: Invalid value", "k1 ="),
        (_replace("k2 = 3e7", "k2 = 3e7\nk2 = 4"), r"malformed TOML: Cannot overwrite a value", "k2 = 4"),
        (_replace('name = "robertson"', "name = robertson"), r"malformed TOML", "name = robertson"),
        # unknown tables and keys, with suggestions
        (_replace("[parameters]", "[paramters]"), r"unknown table \[paramters\] \(did you mean \[parameters\]\?\)", "[paramters]"),
        (_replace("[model]", 'version = 2\n[model]'), r"unknown top-level key 'version'", "version = 2"),
        (_replace('name = "robertson"', 'nmae = "robertson"'), r"unknown key 'nmae' in \[model\] \(did you mean 'name'\?\)", 'nmae = "robertson"'),
        # missing pieces
        (_replace('name = "robertson"                      # required', ""), r"\[model\] needs a 'name'", "[model]"),
        (_replace('name = "robertson"', "name = 3"), r"\[model\] needs a 'name' \(a non-empty string\), got an integer 3", "name = 3"),
        (_replace('y3 = "k2*y2^2"', ""), r"state 'y3' has no equation in \[equations\]", 'y3 = "k1/k2"'),
        (_replace('y3 = "k2*y2^2"', 'y3 = "k2*y2^2"\ny4 = "0"'), r"equation for 'y4', which is not a state \(did you mean 'y1', 'y2', 'y3'\?\)|equation for 'y4', which is not a state", 'y4 = "0"'),
        (_replace('y3 = "k2*y2^2"', 'y3 = "k2*y2^2"\nk1 = "0"'), r"equation for 'k1', which is not a state \('k1' is a parameter in \[parameters\]\)", 'k1 = "0"'),
        # names
        (_replace("k3 = 1e4", "k3 = 1e4\ny1 = 2.0"), r"duplicate name 'y1': already a parameter in \[parameters\] \(line \d+\), now state in \[states\]", "y1 = 1.0"),
        (_replace("r1 = ", "k2 = 1\nr1 = "), r"duplicate name 'k2': already a parameter .* now intermediate in \[intermediates\]", "k2 = 1"),
        (_replace("total = ", "r1 = \"y1\"\ntotal = "), r"duplicate name 'r1': already an intermediate", 'r1 = "y1"'),
        (_replace("y2 = 0", "y2 = 0\nt = 0"), r"duplicate name 't': already the time variable", "t = 0"),
        (_replace("k1 = 0.04", "exp = 1.0\nk1 = 0.04"), r"parameter name 'exp' shadows the function exp\(\) of the model language", "exp = 1.0"),
        (_replace("k1 = 0.04", "pi = 3.14\nk1 = 0.04"), r"parameter name 'pi' is reserved", "pi = 3.14"),
        (_replace("k1 = 0.04", "lambda = 1.0\nk1 = 0.04"), r"parameter name 'lambda' is not a valid name", "lambda = 1.0"),
        (_replace("k1 = 0.04", '"k 1" = 1.0\nk1 = 0.04'), r"parameter name 'k 1' is not a valid name", '"k 1" = 1.0'),
        (_replace('time = "t"', 'time = "exp"'), r"time name 'exp' shadows the function", 'time = "exp"'),
        # nominal values
        (_replace("k1 = 0.04", 'k1 = "abc"'), r"nominal value of parameter 'k1' must be a number, got a string 'abc' \(a derived quantity belongs in \[intermediates\]\)", 'k1 = "abc"'),
        (_replace("k1 = 0.04", "k1 = nan"), r"nominal value of parameter 'k1' must be finite, got NaN", "k1 = nan"),
        (_replace("k1 = 0.04", "k1 = inf"), r"nominal value of parameter 'k1' must be finite, got Infinity", "k1 = inf"),
        (_replace("k1 = 0.04", "k1 = -inf"), r"must be finite, got -Infinity", "k1 = -inf"),
        (_replace("k1 = 0.04", "k1 = 1e999"), r"nominal value of parameter 'k1' must be finite", "k1 = 1e999"),
        (_replace("k1 = 0.04", "k1 = true"), r"nominal value of parameter 'k1' must be a number, got a boolean true", "k1 = true"),
        (_replace("k1 = 0.04", "k1 = [0.04]"), r"must be a number, got an array \[0.04\]", "k1 = [0.04]"),
        # expressions
        (_replace('y3 = "k2*y2^2"', "y3 = true"), r"equation for state 'y3' must be an expression string, got a boolean true", "y3 = true"),
        (_replace('y3 = "k2*y2^2"', "y3 = [1, 2]"), r"must be an expression string, got an array", "y3 = [1, 2]"),
        (_replace("y2 = 0", "y2 = true"), r"initial value of state 'y2' must be an expression string, got a boolean", "y2 = true"),
        (_replace('y3 = "k2*y2^2"', 'y3 = "k2*y2^2 + k4"'), r"unknown symbol 'k4' in equation for state 'y3' at column 11", 'y3 = "k2*y2^2 + k4"'),
        (_replace('y3 = "k2*y2^2"', 'y3 = "k2/(k1 - k1)"'), r"division by zero .* in equation for state 'y3'", 'y3 = "k2/(k1 - k1)"'),
        (_replace('y3 = "k2*y2^2"', "y3 = \"__import__('os').system('x')\""), r"unknown function '__import__' in equation for state 'y3' at column 1", "y3 = \"__import__('os').system('x')\""),
        (_replace('y3 = "k1/k2"', 'y3 = "y1/2"'), r"initial value of state 'y3' uses state 'y1'; initial values may depend only on parameters", 'y3 = "y1/2"'),
        (_replace('y3 = "k1/k2"', 'y3 = "r1"'), r"initial value of state 'y3' uses intermediate \(it depends on the states or time\) 'r1'", 'y3 = "r1"'),
        (_replace('y3 = "k1/k2"', 'y3 = "t"'), r"uses the time 't'", 'y3 = "t"'),
        (_replace('r1 = "k1*y1"', 'r1 = "k1*r2"\nr2 = "y1"'), r"intermediate 'r1' uses 'r2', which is defined later in \[intermediates\] \(line \d+\)", 'r1 = "k1*r2"'),
        (_replace('total = "y1 + y2 + y3"', 'total = "y1 + y2 + y3"\nother = "total*2"'), r"unknown symbol 'total' in output 'other'", 'other = "total*2"'),
        (_replace('y1 = "-r1 + k3*y2*y3"', 'y1 = "total"'), r"unknown symbol 'total' in equation for state 'y1'", 'y1 = "total"'),
        # model table
        (_replace("t_span = [0.0, 40.0]", "t_span = [0.0]"), r"t_span must be an array \[t0, t1\]", "t_span = [0.0]"),
        (_replace("t_span = [0.0, 40.0]", "t_span = [40.0, 0.0]"), r"t_span must have t1 > t0", "t_span = [40.0, 0.0]"),
        (_replace("t_span = [0.0, 40.0]", 't_span = [0.0, "x"]'), r"each entry of \[model\] t_span must be a number", 't_span = [0.0, "x"]'),
        (_replace('description = "Robertson (1966) chemical kinetics"', "description = 1"), r"description must be a string", "description = 1"),
]


@pytest.mark.parametrize("text, match, marker", _FILE_ERRORS, ids=[case[2] for case in _FILE_ERRORS])
def test_errors_name_file_line_and_problem(text: str, match: str, marker: str) -> None:
    line = _line_of(text, marker)
    with pytest.raises(ModelError, match=rf"^robertson\.toml:{line}: .*?(?:{match})") as info:
        loads_model(text, source="robertson.toml")
    assert info.value.source == "robertson.toml"
    assert info.value.line == line


@pytest.mark.parametrize(
    "remove, match",
    [
        ("[model]", r"missing required table \[model\]"),
        ("[parameters]", r"missing required table \[parameters\] \(it may be empty\)"),
        ("[states]", r"missing required table \[states\]"),
        ("[equations]", r"missing required table \[equations\]"),
    ],
)
def test_missing_tables(remove: str, match: str) -> None:
    # Remove the header and its entries (up to the next blank line).
    blocks = ROBERTSON.split("\n\n")
    text = "\n\n".join(b for b in blocks if not b.startswith(remove))
    with pytest.raises(ModelError, match=rf"^robertson\.toml: {match}"):
        loads_model(text, source="robertson.toml")


def test_empty_parameters_table_is_fine_and_empty_states_is_not() -> None:
    model = loads_model('[model]\nname = "c"\n[parameters]\n[states]\ny = 1\n[equations]\ny = "-y"\n')
    assert model.parameters == ()
    with pytest.raises(ModelError, match=r"^<string>:4: \[states\] is empty"):
        loads_model('[model]\nname = "c"\n[parameters]\n[states]\n[equations]\n')


def test_table_that_is_not_a_table() -> None:
    with pytest.raises(ModelError, match=r"^<string>:1: \[parameters\] must be a table, got an array"):
        loads_model('parameters = [1, 2]\n[model]\nname = "x"\n[states]\ny = 1\n[equations]\ny = "0"\n')


def test_lines_are_right_after_multi_line_strings_and_arrays() -> None:
    text = textwrap.dedent(
        '''\
        [model]
        name = "m"
        description = """
        k9 = 1.0
        [equations]
        """
        t_span = [
            0.0,
            1.0,
        ]
        [parameters]
        k1 = 1.0  # comment with k2 = 3
        'k2' = 2.0
        [states]
        y = 'k1*k2'
        [equations]
        y = "k1*y + k3"
        '''
    )
    with pytest.raises(ModelError, match=r"^f\.toml:17: unknown symbol 'k3' in equation for state 'y'"):
        loads_model(text, source="f.toml")
    tables, keys = _locate(text)
    assert tables[("parameters",)] == 11 and tables[("equations",)] == 16
    assert keys[("model", "t_span")] == 7 and keys[("parameters", "k2")] == 13
    assert ("parameters", "k9") not in keys and ("model", "k9") not in keys


def test_inline_table_falls_back_to_its_line() -> None:
    # Keys inside an inline table are not located; the line of the table's own key stands in for them.
    text = 'equations = { y = "q" }\n[model]\nname = "m"\n[parameters]\n[states]\ny = 1\n'
    with pytest.raises(ModelError, match=r"^<string>:1: unknown symbol 'q' in equation for state 'y'"):
        loads_model(text)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.toml: cannot read model file"):
        load_model_file(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[model]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ModelError, match=r"latin1\.toml: model file is not valid UTF-8"):
        load_model_file(bad)
    with pytest.raises(ModelError, match=r"must be a str"):
        loads_model(b"[model]")  # type: ignore[arg-type]


def test_nothing_in_a_file_is_executed(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    text = _replace('y3 = "k2*y2^2"', f"y3 = \"open('{canary}', 'w').write('x')\"")
    with pytest.raises(ModelError, match=r"unknown function 'open'"):
        loads_model(text)
    assert not canary.exists()


# ------------------------------------------------------------------------------------------------------
# Writing: loads_model(dumps_model(m)) == m
# ------------------------------------------------------------------------------------------------------

y1, y2, y3, k1, k2, k3, V, m, t = sp.symbols("y1 y2 y3 k1 k2 k3 V m t")


def _handmade_models() -> list[Model]:
    robertson = Model(
        states=["y1", "y2", "y3"],
        parameters={"k1": 0.04, "k2": 3e7, "k3": 1e4},
        rhs=[-k1 * y1 + k3 * y2 * y3, k1 * y1 - k3 * y2 * y3 - k2 * y2**2, k2 * y2**2],
        initial_conditions=[1, 0, 0],
        name="robertson",
        description='Robertson (1966); "stiff" chemical kinetics\nsecond line\twith a tab and a \\ backslash',
        t_span=(0.0, 40.0),
        outputs={"total": y1 + y2 + y3},
    )
    gating = Model(
        states=[V, m],
        parameters={"g": 120.0, "E": 50.0, "V0": -65.0, "tiny": 1e-300, "big": 1.7976931348623157e308, "neg0": -0.0},
        rhs=[
            sp.Symbol("g") * m**3 * (sp.Symbol("E") - V) + sp.Piecewise((10, t < 1), (0, True)),
            exprel(-(V + 40) / 10) / 10 * (1 - m) - 4 * sp.exp(-(V + 65) / 18) * m + sp.Min(V, -80) - sp.Max(V, -80, m),
        ],
        initial_conditions=[sp.Symbol("V0"), sp.Rational(1, 3)],
        name="gating",
        t_span=(0.0, 0.5),
    )
    exact = Model(
        states=["u"],
        parameters={"a": 2.5},
        rhs=[sp.Rational(43087, 500000000) * sp.Symbol("a") * sp.Symbol("u") + sp.sqrt(2) * sp.Abs(sp.Symbol("u")) + sp.pi],
        initial_conditions=[sp.Rational(33, 25)],
        name="exact numbers",
        time="s",
    )
    no_parameters = Model(states=["w"], parameters={}, rhs=["-w^2"], initial_conditions=["0.5"], name="np")
    return [robertson, gating, exact, no_parameters]


@pytest.mark.parametrize("model", _handmade_models(), ids=lambda m: m.name)
def test_round_trip(model: Model) -> None:
    text = dumps_model(model)
    again = loads_model(text)
    assert again == model
    assert dumps_model(again) == text  # and the text is stable


def test_round_trip_keeps_intermediates_and_writes_equations_with_them() -> None:
    model = loads_model(ROBERTSON)
    text = dumps_model(model)
    assert loads_model(text) == model
    assert '[intermediates]\nr1 = "k1*y1"' in text
    assert 'y1 = "k3*y2*y3 - r1"' in text  # folded back: -k1*y1 is -r1
    assert 'y3 = "k1/k2"' in text and "y1 = 1\n" in text


def test_dumps_writes_right_hand_sides_in_terms_of_intermediates() -> None:
    V, m, g = sp.symbols("V m g")
    model = Model(
        states=[V, m],
        parameters={"g": 1.5},
        rhs=["g*(alpha*(1 - m) - beta*m)", "alpha*(1 - m) - beta*m"],
        initial_conditions=[-65, 0],
        intermediates={"alpha": "0.1*exprel(-(V + 40)/10)", "beta": "4*exp(-(V + 65)/18)"},
        name="gate",
    )
    text = dumps_model(model)
    assert 'm = "alpha*(1 - m) - beta*m"' in text  # beta found inside 4*m*exp(...) by algebraic folding
    assert loads_model(text) == model


def test_round_trip_with_state_dependent_intermediates_in_initial_values() -> None:
    model = Model(
        states=["y"],
        parameters={"p": 2.0},
        rhs=["-r*y"],
        initial_conditions=["q^2"],
        intermediates={"q": "p + 1", "r": "q*y"},
        name="ic",
    )
    text = dumps_model(model)
    assert 'y = "q^2"' in text  # q depends on parameters only, so the initial value may use it
    assert loads_model(text) == model


def test_dumped_numbers_read_back_to_the_same_doubles() -> None:
    model = _handmade_models()[1]
    text = dumps_model(model)
    assert "tiny = 1e-300" in text and "neg0 = -0.0" in text
    assert "g = 120" in text
    again = loads_model(text)
    assert again.parameter_values == model.parameter_values
    assert str(again.parameter_values[-1]) == "-0.0"


def test_dumps_refuses_what_the_language_cannot_write() -> None:
    model = Model(states=["y"], parameters={}, rhs=[sp.Heaviside(sp.Symbol("y"))], initial_conditions=[0], name="h")
    with pytest.raises(ModelError, match=r"Heaviside cannot be written"):
        dumps_model(model)
