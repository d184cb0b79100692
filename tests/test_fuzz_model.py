"""Property-based fuzzing of the model loader: random mutations of the shipped model files.

Every mutated file must either load or fail with a symsens error (a ``SymsensError`` subclass) whose
message is not empty -- never with a raw ``KeyError``, ``TypeError``, ``RecursionError``, ... -- and loading
must never hang: each example runs under hypothesis's own deadline.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symsens import SymsensError
from symsens.model import Model, load_model_file, loads_model

MODELS = sorted((Path(__file__).resolve().parent.parent / "examples" / "models").glob("*.toml"))
TEXTS = {path.name: path.read_text(encoding="utf-8") for path in MODELS}

# Characters worth inserting: the grammar's and TOML's punctuation, digits and exponents, whitespace and
# line breaks, quotes, and Unicode that Python normalises (NFKC) to ASCII names.
_ALPHABET = list("\"'[]{}=#.,+-*/^()<>_ \t\n0123456789eExyzk") + ["ℯ", "ｋ", "ﬁ", "ｅｘｐ", "\u00a0", "\x00", "\ufeff", "π", "**"]
# Whole fragments: TOML structure of other types (arrays, inline and dotted tables, dates, booleans, multi-line
# strings) and pieces of the expression grammar.
_FRAGMENTS = [
    "[states]\n", "[[states]]\n", "[parameters.x]\n", "\nz = [1, 2]\n", "\nz = {a = 1}\n", "\na.b = 1\n",
    "\nz = 1979-05-27\n", "\nz = true\n", '\nz = """\nx\n"""\n', "\nt = 1\n", "\nexp = 1\n", "\nDiracDelta = 2\n",
    "exp(", "piecewise(", " if ", " else ", " and ", "not ", "abs(", "exprel(", "min(", "sqrt(", "log(", ",", "pi",
    "^0.000001", "^(1e-20)", "^1000", "^-1000", "/0", "1e-400*", "1e400*", "\u212f", "\uff4b", "\ufb01",
    "[" * 400, "{a = " * 400, "1" * 5000, "(" * 100,
]
_NUMBERS = ["0", "-0", "1e400", "1e-400", "1e-310", "1e308", "2e308", "1e-20", "0.000001", "3e7", "10^1000", "1_0", "nan", "inf"]
_TOKEN = re.compile(r"\w+|[^\w\s]|\s+")


@st.composite
def mutated_models(draw: st.DrawFn) -> str:
    text = TEXTS[draw(st.sampled_from(sorted(TEXTS)))]
    for _ in range(draw(st.integers(1, 6))):
        n = len(text)
        kind = draw(st.sampled_from(["insert", "fragment", "delete", "duplicate", "swap", "number"]))
        if kind == "insert":
            i = draw(st.integers(0, n))
            text = text[:i] + draw(st.sampled_from(_ALPHABET)) + text[i:]
        elif kind == "fragment":
            i = draw(st.integers(0, n))
            text = text[:i] + draw(st.sampled_from(_FRAGMENTS)) + text[i:]
        elif kind == "delete" and n:
            i = draw(st.integers(0, n - 1))
            text = text[:i] + text[i + draw(st.integers(1, 12)) :]
        elif kind == "duplicate" and n:
            i = draw(st.integers(0, n - 1))
            piece = text[i : i + draw(st.integers(1, 80))]
            j = draw(st.integers(0, n))
            text = text[:j] + piece + text[j:]
        elif kind == "swap":
            tokens = _TOKEN.findall(text)
            if len(tokens) > 1:
                a, b = draw(st.integers(0, len(tokens) - 1)), draw(st.integers(0, len(tokens) - 1))
                tokens[a], tokens[b] = tokens[b], tokens[a]
                text = "".join(tokens)
        elif kind == "number":
            spots = [m.span() for m in re.finditer(r"(?<![\w.])[0-9][0-9._eE+-]*", text)]
            if spots:
                start, end = spots[draw(st.integers(0, len(spots) - 1))]
                text = text[:start] + draw(st.sampled_from(_NUMBERS)) + text[end:]
    return text


def _load(text: str) -> None:
    try:
        model = loads_model(text, source="fuzzed.toml")
    except SymsensError as error:
        assert str(error).strip(), "a symsens error without a message"
        assert type(error).__module__.startswith("symsens")
    else:
        assert isinstance(model, Model)


@settings(
    max_examples=300,
    # Milliseconds per example.  Loading takes well under 0.2 s; the deadline only has to catch a hang (the
    # defects it guards against ran for minutes), with room for a loaded shared machine.
    deadline=30_000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_models())
def test_mutated_model_files_load_or_fail_with_a_symsens_error(text: str) -> None:
    _load(text)


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(TEXTS[draw(st.sampled_from(sorted(TEXTS)))].encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "flip"]))
        if kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        elif i < len(data):
            data[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@settings(max_examples=100, deadline=30_000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_bytes())
def test_mutated_bytes_of_a_model_file_load_or_fail_with_a_symsens_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzzed.toml"
        path.write_bytes(data)
        try:
            model = load_model_file(path)
        except SymsensError as error:
            assert str(error).strip()
        else:
            assert isinstance(model, Model)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_the_shipped_model_files_load(name: str) -> None:
    assert isinstance(loads_model(TEXTS[name], source=name), Model)


@pytest.mark.parametrize(
    "text",
    [
        # Shapes the fuzzer found or that sit next to them: each must be a symsens error, not a raw one.
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = 1\n[equations]\ny = '-y'\n[[states]]\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = 1\n[equations]\ny = '-y'\n[outputs.z]\na = 1\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = 1\n[equations]\ny = '-y'\n[intermediates]\nr = {a = 1}\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = 1\n[equations]\ny = '-y'\n[loss]\nexpression = 1\n",
        "[model]\nname = 'm'\nt_span = [0, 'x']\n[parameters]\n[states]\ny = 1\n[equations]\ny = '-y'\n",
        "[model]\nname = 'm'\nt_span = [0, 1e400]\n[parameters]\n[states]\ny = 1\n[equations]\ny = '-y'\n",
        "[model]\nname = 'm'\n[parameters]\nk = 1e-400\n[states]\ny = 1\n[equations]\ny = '-k*y'\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = 1e400\n[equations]\ny = '-y'\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = 1\n[equations]\ny = '(y/3e7)^(1e-20)'\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\n\"\" = 1\n[equations]\n\"\" = '1'\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = 1\n[equations]\ny = '-y'\n[outputs]\nz = 'y' \n z.w = 1\n",
        # tomllib recurses on nested arrays and inline tables (it raised RecursionError).
        "[model]\nname = 'm'\nt_span = " + "[" * 5000 + "]" * 5000 + "\n",
        "[model]\nname = 'm'\nt_span = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "[model]\nname = 'm'\n[parameters]\n[states]\ny = " + "[" * 200 + "]" * 200 + "\n[equations]\ny = '-y'\n",
        # Python refuses int() of more than 4300 digits, inside tomllib (it raised ValueError).
        "[model]\nname = 'm'\n[parameters]\nk = " + "1" * 5000 + "\n[states]\ny = 1\n[equations]\ny = '-k*y'\n",
        "[model]\nname = 'm'\n[parameters]\nk = 0x" + "f" * 5000 + "\n[states]\ny = 1\n[equations]\ny = '-k*y'\n",
    ],
)
def test_fuzzer_shapes_fail_cleanly(text: str) -> None:
    _load(text)
