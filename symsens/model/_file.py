"""TOML model files: reading them into a :class:`Model` and writing a :class:`Model` back.

A model file is a TOML document with the tables ``[model]``, ``[parameters]``, ``[states]``,
``[intermediates]``, ``[equations]`` and ``[outputs]`` (see ``docs/model-language.md``).  Every
expression in it is a string of the model language, parsed by :func:`parse_expression` -- nothing is
evaluated as Python.  Errors name the file, the line and the offending name.

``tomllib`` does not report line numbers of values, so a small scanner (:func:`_locate`) finds the line of
every ``key =`` in its table from the raw text; where a key cannot be placed (inside an inline table or a
dotted key at the top level) the line of the table header is used.
"""

from __future__ import annotations

import decimal
import difflib
import keyword
import math
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import sympy as sp

from .._errors import ModelError
from ._model import RESERVED_NAMES, Model, normal_name, unit_problem
from ._parser import DOUBLE_MIN, FUNCTIONS, check_constants, format_expression, parse_expression

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["load_model_file", "loads_model", "dumps_model"]

_TABLES: dict[str, frozenset[str] | None] = {
    "model": frozenset({"name", "description", "time", "t_span"}),
    "parameters": None,  # None: the keys are user names
    "states": None,
    "intermediates": None,
    "equations": None,
    "outputs": None,
    "units": None,  # keys: the time variable (or `time`), states, parameters, intermediates, outputs
    # Read by the audit (symsens.audit.loss_from_model_file), checked here for unknown keys only.
    "loss": frozenset({"expression", "kind", "times", "name"}),
}
_REQUIRED_TABLES = ("model", "parameters", "states", "equations")

# Literal exponents beyond this are refused before Decimal.as_integer_ratio() builds 10**exponent.
_MAX_DECIMAL_EXPONENT = 1000
_DOUBLE_MAX_INT = int(1.7976931348623157e308)

_TOML_TYPE_NAMES = {
    bool: "a boolean",
    str: "a string",
    list: "an array",
    dict: "a table",
    int: "an integer",
    decimal.Decimal: "a number",
}


def _type_name(value: Any) -> str:
    for cls, name in _TOML_TYPE_NAMES.items():
        if isinstance(value, cls):
            return name
    return f"a {type(value).__name__}"  # dates and times


# ---------------------------------------------------------------------------------------------------------
# Locating keys in the raw text
# ---------------------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _read_key(text: str, i: int) -> tuple[list[str], int]:
    """Read a (dotted, possibly quoted) TOML key starting at ``text[i]``; return its parts and the end index."""
    parts: list[str] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "\"'":
            quote = text[i]
            j = i + 1
            while j < n and text[j] != quote and text[j] != "\n":
                j += 2 if (quote == '"' and text[j] == "\\") else 1
            raw = text[i + 1 : j]
            if quote == '"' and "\\" in raw:
                try:
                    raw = tomllib.loads(f"k = {text[i : j + 1]}")["k"]
                except tomllib.TOMLDecodeError:
                    pass
            parts.append(raw)
            i = j + 1
        else:
            match = _BARE_KEY.match(text, i)
            if not match:
                return parts, i
            parts.append(match.group())
            i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ".":
            i += 1
            continue
        return parts, i


def _skip_string(text: str, i: int) -> tuple[int, int]:
    """Skip the TOML string starting at ``text[i]``; return the index after it and the newlines inside."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        j = i + 3
        while j < len(text):
            if quote == '"' and text[j] == "\\":
                j += 2
                continue
            if text.startswith(quote * 3, j):
                j += 3
                while j < len(text) and text[j] == quote:  # up to two quotes may end the content
                    j += 1
                break
            j += 1
        return j, text.count("\n", i, j)
    j = i + 1
    while j < len(text) and text[j] not in (quote, "\n"):
        j += 2 if (quote == '"' and text[j] == "\\") else 1
    return j + 1, 0


def _locate(text: str) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    """Lines of table headers and of ``key = value`` pairs in a (valid) TOML text.

    Returns ``(tables, keys)``: ``tables[("parameters",)]`` is the header's line and
    ``keys[("parameters", "k1")]`` the line of ``k1 = ...`` in that table.  Keys inside inline tables and
    arrays are not recorded (their table header's line stands in for them).
    """
    tables: dict[tuple[str, ...], int] = {}
    keys: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    line, depth, i, n = 1, 0, 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            at_line_start = True
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if depth == 0 and at_line_start:
            at_line_start = False
            if c == "[":
                double = text.startswith("[[", i)
                parts, i = _read_key(text, i + (2 if double else 1))
                i += 2 if double else 1
                table = tuple(parts)
                tables.setdefault(table, line)
                if parts:
                    keys.setdefault(table, line)
                continue
            parts, i = _read_key(text, i)
            for k in range(1, len(parts) + 1):
                keys.setdefault(table + tuple(parts[:k]), line)
            continue
        if c in "\"'":
            i, newlines = _skip_string(text, i)
            line += newlines
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(0, depth - 1)
        i += 1
    return tables, keys


# ---------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------


class _Reader:
    """Checks a decoded TOML document section by section; every error carries file, line and name."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        try:
            # parse_float=Decimal keeps the literal's digits, so 0.1 becomes exactly 1/10 where exactness
            # matters (initial values) and the correctly rounded double where a float is wanted (nominal values).
            self.data = tomllib.loads(text, parse_float=decimal.Decimal)
        except tomllib.TOMLDecodeError as error:
            message = str(error)
            match = re.search(r"\(at line (\d+), column (\d+)\)", message)
            line = int(match.group(1)) if match else None
            if match:
                message = f"{message[: match.start()].rstrip()} (column {match.group(2)})"
            raise ModelError(f"malformed TOML: {message}", source=source, line=line) from None
        except RecursionError:
            # tomllib reads nested arrays and inline tables recursively.
            raise ModelError(
                "malformed TOML: arrays or inline tables are nested too deeply", source=source
            ) from None
        except ValueError as error:
            # Python refuses to convert integers of more than 4300 digits (sys.get_int_max_str_digits()).
            raise ModelError(f"malformed TOML: a value cannot be read ({error})", source=source) from None
        try:
            self.tables, self.keys = _locate(text)
        except Exception:  # pragma: no cover - the scanner only reads; never let it hide the real error
            self.tables, self.keys = {}, {}

    # -- positions and errors -----------------------------------------------------------------------------
    def line(self, table: str, key: str | None = None) -> int | None:
        if key is not None and (table, key) in self.keys:
            return self.keys[(table, key)]
        if (table,) in self.tables:
            return self.tables[(table,)]
        return self.keys.get((table,))

    def fail(self, problem: str, table: str, key: str | None = None, name: str | None = None) -> ModelError:
        return ModelError(problem, source=self.source, line=self.line(table, key), name=name or key)

    # -- structure ----------------------------------------------------------------------------------------
    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name)
        if value is None:
            if name in _REQUIRED_TABLES:
                hint = " (it may be empty)" if name == "parameters" else ""
                raise ModelError(f"missing required table [{name}]{hint}", source=self.source, name=name)
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"[{name}] must be a table, got {_type_name(value)}", name, name=name)
        return value

    def check_top_level(self) -> None:
        for name, value in self.data.items():
            if name in _TABLES:
                continue
            hint = _did_you_mean(name, _TABLES, "[{}]")
            if isinstance(value, dict):
                raise self.fail(f"unknown table [{name}]{hint}", name, name=name)
            raise ModelError(
                f"unknown top-level key {name!r}{hint}: every entry belongs to one of the tables "
                f"{', '.join(f'[{t}]' for t in _TABLES)}",
                source=self.source,
                line=self.keys.get((name,)),
                name=name,
            )

    def check_name(self, name: str, table: str, what: str, key: str | None = None) -> None:
        """``name`` must be usable in expressions; ``key`` is where it is written (default: the name itself)."""
        key = name if key is None else key
        normal = normal_name(name) if name.isidentifier() else name
        same = "" if normal == name else f" (its Unicode normal form NFKC is {normal!r})"
        if not name.isidentifier() or keyword.iskeyword(name) or keyword.iskeyword(normal):
            problem = f"{what} name {name!r} is not a valid name (letters, digits and _, not a keyword){same}"
        elif normal in FUNCTIONS:
            problem = f"{what} name {name!r} shadows the function {normal}() of the model language{same}"
        elif normal in RESERVED_NAMES:
            problem = f"{what} name {name!r} is reserved by the model language{same}"
        elif normal.startswith("__"):
            problem = f"{what} name {name!r} may not start with a double underscore{same}"
        else:
            return
        raise self.fail(problem, table, key, name)

    # -- values -------------------------------------------------------------------------------------------
    def finite_decimal(self, value: Any, table: str, key: str, what: str) -> decimal.Decimal | int:
        if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
            extra = ""
            if isinstance(value, str) and table == "parameters":
                extra = " (a derived quantity belongs in [intermediates])"
            raise self.fail(f"{what} must be a number, got {_type_name(value)} {_toml_repr(value)}{extra}", table, key)
        if isinstance(value, decimal.Decimal):
            if not value.is_finite():
                raise self.fail(f"{what} must be finite, got {value}", table, key)
            if value and abs(value.adjusted()) > _MAX_DECIMAL_EXPONENT:
                raise self.fail(f"{what} is out of range: {value}", table, key)
        elif abs(value) > _DOUBLE_MAX_INT:
            raise self.fail(f"{what} is out of range (above the largest double): {_toml_repr(value)}", table, key)
        return value

    def nominal_value(self, value: Any, key: str) -> float:
        number = self.finite_decimal(value, "parameters", key, f"nominal value of parameter {key!r}")
        try:
            result = float(number)
        except OverflowError:
            result = math.inf
        if not math.isfinite(result):
            raise self.fail(f"nominal value of parameter {key!r} must be finite, got {_toml_repr(value)}", "parameters", key)
        if value != 0 and abs(result) < DOUBLE_MIN:
            raise self.fail(
                f"nominal value of parameter {key!r} is {value}: not 0 and below the smallest normal double "
                f"{DOUBLE_MIN!r} (it would be stored as 0 or a subnormal number)",
                "parameters",
                key,
            )
        return result

    def exact_number(self, value: Any, table: str, key: str, what: str) -> sp.Rational:
        number = self.finite_decimal(value, table, key, what)
        if isinstance(number, int):
            exact = sp.Integer(number)
            check_constants(exact, what, source=self.source, line=self.line(table, key))
            return exact
        p, q = number.as_integer_ratio()
        exact = sp.Rational(p, q)
        check_constants(exact, what, source=self.source, line=self.line(table, key))
        return exact

    def expression(
        self,
        value: Any,
        table: str,
        key: str,
        what: str,
        symbols: Mapping[str, sp.Symbol],
        allow_numbers: bool = True,
    ) -> sp.Expr:
        if isinstance(value, str):
            line = self.line(table, key)
            expr = parse_expression(value, symbols, where=what, source=self.source, line=line)
            check_constants(expr, what, source=self.source, line=line)
            return expr
        if allow_numbers and isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
            return self.exact_number(value, table, key, what)
        raise self.fail(
            f"{what} must be an expression string, got {_type_name(value)} {_toml_repr(value)}",
            table,
            key,
        )

    # -- the whole document -------------------------------------------------------------------------------
    def model(self) -> Model:
        self.check_top_level()
        for key in self.table("loss"):
            if key not in _TABLES["loss"]:  # type: ignore[operator]
                raise self.fail(f"unknown key {key!r} in [loss]{_did_you_mean(key, _TABLES['loss'])}", "loss", key)
        header = self.table("model")
        for key in header:
            if key not in _TABLES["model"]:  # type: ignore[operator]
                raise self.fail(f"unknown key {key!r} in [model]{_did_you_mean(key, _TABLES['model'])}", "model", key)
        name = header.get("name")
        if not isinstance(name, str) or not name.strip():
            got = "nothing" if name is None else f"{_type_name(name)} {_toml_repr(name)}"
            raise self.fail(f"[model] needs a 'name' (a non-empty string), got {got}", "model", "name" if name is not None else None, "name")
        description = header.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"[model] description must be a string, got {_type_name(description)}", "model", "description")
        time = header.get("time", "t")
        if not isinstance(time, str):
            raise self.fail(f"[model] time must be a name (a string), got {_type_name(time)}", "model", "time")
        self.check_name(time, "model", "time", key="time")
        t_span = self.t_span(header.get("t_span"))

        parameters = self.table("parameters")
        states = self.table("states")
        intermediates = self.table("intermediates")
        equations = self.table("equations")
        outputs = self.table("outputs")
        if not states:
            raise self.fail("[states] is empty: a model needs at least one state", "states", name="states")

        # Names: valid, not reserved, and unique across sections.
        # Keyed by the NFKC normal form: 'e' and 'ℯ', 'k' and 'ｋ' are one name to Python and to most tools.
        seen: dict[str, tuple[str, str, int | None]] = {
            normal_name(time): (time, "the time variable", self.line("model", "time"))
        }
        for table, what, names in (
            ("parameters", "parameter", parameters),
            ("states", "state", states),
            ("intermediates", "intermediate", intermediates),
            ("outputs", "output", outputs),
        ):
            for key in names:
                self.check_name(key, table, what)
                normal = normal_name(key)
                if normal in seen:
                    spelling, first, first_line = seen[normal]
                    where = f" (line {first_line})" if first_line is not None else ""
                    if spelling == key:
                        raise self.fail(f"duplicate name {key!r}: already {first}{where}, now {what} in [{table}]", table, key)
                    raise self.fail(
                        f"names {spelling!r} ({first}{where}) and {key!r} ({what} in [{table}]) are the same name "
                        f"after Unicode normalisation (NFKC: {normal!r}); use one spelling or different names",
                        table,
                        key,
                    )
                article = "an" if what[0] in "aeiou" else "a"
                seen[normal] = (key, f"{article} {what} in [{table}]", self.line(table, key))

        for key in equations:
            if key not in states:
                spelling, kind, _ = seen.get(normal_name(key), (None, None, None))
                if kind and spelling == key:
                    detail = f" ({key!r} is {kind})"
                elif kind:
                    detail = f" ({spelling!r}, the same name after Unicode normalisation (NFKC), is {kind})"
                else:
                    detail = _did_you_mean(key, states)
                raise self.fail(f"equation for {key!r}, which is not a state{detail}", "equations", key)
        for key in states:
            if key not in equations:
                raise self.fail(f"state {key!r} has no equation in [equations]", "states", key)

        parameter_values = {key: self.nominal_value(value, key) for key, value in parameters.items()}

        symbols: dict[str, sp.Symbol] = {n: sp.Symbol(n, real=True) for n in (*states, *parameters, time)}
        # Intermediates in order: each may use states, parameters, time and the intermediates before it.
        intermediate_exprs: dict[str, sp.Expr] = {}
        depends_on_state: dict[str, bool] = {}
        dynamic = {*states, time}
        later = set(intermediates)
        for key, value in intermediates.items():
            later.discard(key)
            scope = {**symbols, **{k: sp.Symbol(k, real=True) for k in later}}
            expr = self.expression(value, "intermediates", key, f"intermediate {key!r}", scope)
            used = {s.name for s in expr.free_symbols}
            forward = sorted(used & later)
            if forward:
                raise self.fail(
                    f"intermediate {key!r} uses {forward[0]!r}, which is defined later in [intermediates] "
                    f"(line {self.line('intermediates', forward[0])}); define it first",
                    "intermediates",
                    key,
                )
            intermediate_exprs[key] = expr
            depends_on_state[key] = bool(used & dynamic) or any(depends_on_state.get(u, False) for u in used)
            symbols[key] = sp.Symbol(key, real=True)

        initial_conditions = []
        for key, value in states.items():
            what = f"initial value of state {key!r}"
            expr = self.expression(value, "states", key, what, symbols)
            for used in sorted(s.name for s in expr.free_symbols):
                if used in dynamic or depends_on_state.get(used, False):
                    kind = "the time" if used == time else ("state" if used in states else "intermediate (it depends on the states or time)")
                    raise self.fail(
                        f"{what} uses {kind} {used!r}; initial values may depend only on parameters",
                        "states",
                        key,
                    )
            initial_conditions.append(expr)

        rhs = [
            self.expression(equations[key], "equations", key, f"equation for state {key!r}", symbols) for key in states
        ]
        output_exprs = {
            key: self.expression(value, "outputs", key, f"output {key!r}", symbols) for key, value in outputs.items()
        }
        units = self.units(time, {**{k: 0 for k in parameters}, **{k: 0 for k in states},
                                  **{k: 0 for k in intermediates}, **{k: 0 for k in outputs}})

        try:
            return Model(
                states=list(states),
                parameters=parameter_values,
                rhs=rhs,
                initial_conditions=initial_conditions,
                intermediates=intermediate_exprs,
                outputs=output_exprs,
                time=time,
                name=name,
                description=description,
                t_span=t_span,
                units=units,
            )
        except ModelError as error:
            # Model's own checks (everything above should have caught them first): add the place.
            line = None
            if error.name is not None:
                for table in ("states", "parameters", "intermediates", "outputs", "equations"):
                    if (table, error.name) in self.keys:
                        line = self.keys[(table, error.name)]
                        break
            raise ModelError(error.problem, source=self.source, line=line, name=error.name) from error

    def units(self, time: str, names: Mapping[str, Any]) -> dict[str, str]:
        """The ``[units]`` table: name -> unit text; ``time`` stands for the time variable unless it is a name."""
        table = self.table("units")
        unknown = [key for key in table if key not in names and key != time and key != "time"]
        if unknown:
            known = [time, *names]
            listed = ", ".join(repr(k) for k in unknown)
            raise self.fail(
                f"[units] names {listed}, which {'is' if len(unknown) == 1 else 'are'} not the time, a state, a "
                f"parameter, an intermediate or an output{_did_you_mean(unknown[0], known)}", "units", unknown[0])
        if "time" in table and time in table and time != "time" and "time" not in names:
            raise self.fail(f"[units] gives the unit of the time variable {time!r} twice (as `time` and as {time!r})",
                            "units", "time")
        units: dict[str, str] = {}
        for key, value in table.items():
            problem = unit_problem(value)
            if problem is not None:
                got = f", got {_type_name(value)} {_toml_repr(value)}" if not isinstance(value, str) else ""
                raise self.fail(f"[units] the unit of {key!r} {problem if isinstance(value, str) else 'must be a string'}"
                                f"{got}", "units", key)
            units[key] = value
        return units

    def t_span(self, value: Any) -> tuple[float, float] | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(f"[model] t_span must be an array [t0, t1], got {_toml_repr(value)}", "model", "t_span")
        t0, t1 = (self.finite_decimal(v, "model", "t_span", "each entry of [model] t_span") for v in value)
        if not t1 > t0:
            raise self.fail(f"[model] t_span must have t1 > t0, got {_toml_repr(value)}", "model", "t_span")
        start, end = float(t0), float(t1)
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            raise self.fail(
                f"[model] t_span {_toml_repr(value)} is not a pair of finite doubles with t1 > t0 "
                f"(as doubles: [{start!r}, {end!r}])",
                "model",
                "t_span",
            )
        return start, end


def _did_you_mean(name: str, candidates: Any, template: str = "{!r}") -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3)
    if not close:
        return ""
    return f" (did you mean {', '.join(template.format(c) for c in close)}?)"


def _toml_repr(value: Any) -> str:
    """A value as it looks in TOML (short), for messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(_toml_repr(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_toml_repr(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, int) and value.bit_length() > 200:
        text = f"an integer of {value.bit_length()} bits"  # str() refuses more than 4300 digits
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def loads_model(text: str, source: str = "<string>") -> Model:
    """Build a :class:`Model` from the text of a TOML model file.

    Parameters
    ----------
    text : str
        The TOML document (format in ``docs/model-language.md``).
    source : str
        Name used in error messages (the file's path when called by :func:`load_model_file`).

    Raises
    ------
    ModelError
        ``"<source>:<line>: <problem>"`` for malformed TOML, unknown or missing tables and keys, invalid,
        reserved or duplicate names, missing or extra equations, non-numeric or non-finite nominal values,
        expressions that are not strings, names equal after Unicode NFKC normalisation, numbers outside
        the normal double range (in expressions, initial values and nominal values), and every error of
        the expression parser.
    """
    if not isinstance(text, str):
        raise ModelError(f"a model file's text must be a str, got {type(text).__name__}", source=source)
    return _Reader(text, source).model()


def load_model_file(path: str | os.PathLike[str]) -> Model:
    """Read a TOML model file (UTF-8) into a :class:`Model`; see :func:`loads_model` for the errors."""
    from ._load import read_model_text

    source = os.fspath(path)
    return loads_model(read_model_text(source), source=source)


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    """A TOML basic string (double quotes, escapes for backslash, quote and control characters)."""
    escaped = []
    for ch in text:
        if ch == "\\":
            escaped.append("\\\\")
        elif ch == '"':
            escaped.append('\\"')
        elif ch == "\n":
            escaped.append("\\n")
        elif ch == "\t":
            escaped.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            escaped.append(f"\\u{ord(ch):04x}")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _toml_string(name)


def _toml_float(value: float) -> str:
    """The shortest decimal that reads back as the same double, in the language's style (3e7, 0.04, 10000).

    repr() gives the shortest round-trip digits; printing that exact decimal with format_expression only
    changes its layout (30000000.0 -> 3e7).  Integers are kept below 2**53 so that any TOML reader takes them.
    """
    text = repr(float(value))
    if value == 0:
        return text  # "0.0" or "-0.0": keep the sign of zero
    styled = format_expression(sp.Rational(text))
    if "/" in styled or (re.fullmatch(r"-?[0-9]+", styled) and len(styled.lstrip("-")) > 15):
        return text
    return styled


def _initial_value(expr: sp.Expr) -> str:
    """An initial value as a TOML number when it is a plain integer or finite decimal, else an expression string."""
    if isinstance(expr, sp.Rational):
        text = format_expression(expr)
        # Integers and finite decimals ("0.5", "8.6174e-5", "3e7") are valid TOML numbers, read back exactly.
        if re.fullmatch(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:e-?[0-9]+)?", text):
            return text
    return _toml_string(format_expression(expr))


def _fold(expr: sp.Expr, intermediates: list[tuple[sp.Symbol, sp.Expr]], expand: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr:
    """Rewrite ``expr`` with intermediate symbols where their (substituted) expressions occur as subtrees.

    ``Model`` keeps the right-hand sides with intermediates substituted; writing them back in terms of the
    intermediates keeps a file readable.  Later intermediates contain earlier ones, so they are folded first.
    """
    folded = expr
    for symbol, _ in reversed(intermediates):
        body = expand[symbol]
        if body.is_Atom:  # a renamed parameter or a constant: folding would rewrite unrelated occurrences
            continue
        # Exact subtrees first; then SymPy's algebraic subs, which also finds 4*exp(u) inside 4*m*exp(u).
        # A step is kept only if substituting the intermediates back gives exactly the model's expression.
        for candidate in (folded.xreplace({body: symbol, -body: -symbol}), folded.subs(body, symbol)):
            if candidate != folded and candidate.xreplace(expand) == expr:
                folded = candidate
                break
    return folded


def dumps_model(model: Model) -> str:
    """Write a :class:`Model` as the text of a TOML model file.

    Every expression is written exactly (:func:`format_expression`), nominal values as the shortest decimal
    that reads back as the same double, so ``loads_model(dumps_model(m)) == m`` for models whose expressions
    use only the language's functions and exact numbers.  Intermediates are written out, and right-hand
    sides, outputs and initial values are written in terms of them wherever an intermediate's expression
    occurs verbatim (checked: the folded form must substitute back to exactly the model's expression,
    otherwise the substituted form is written).  A ``sympy.Float`` is written as its shortest round-trip
    decimal and reads back as that exact rational, so models containing Floats compare unequal after a
    round trip (their values agree).

    Raises
    ------
    ModelError
        If an expression uses something the language cannot write (``Heaviside``, ``sign``, ``Eq``, a
        Piecewise without an otherwise branch, ...).
    """
    lines: list[str] = ["[model]", f"name = {_toml_string(model.name)}"]
    if model.description:
        lines.append(f"description = {_toml_string(model.description)}")
    lines.append(f"time = {_toml_string(model.time.name)}")
    if model.t_span is not None:
        lines.append(f"t_span = [{_toml_float(model.t_span[0])}, {_toml_float(model.t_span[1])}]")

    lines += ["", "[parameters]"]
    lines += [f"{_toml_key(p.name)} = {_toml_float(v)}" for p, v in zip(model.parameters, model.parameter_values)]

    intermediates = list(model.intermediates)
    expand: dict[sp.Symbol, sp.Expr] = {}
    for symbol, expr in intermediates:
        expand[symbol] = expr.xreplace(expand)  # as Model substitutes them
    dynamic = set(model.states) | {model.time}
    static = [(s, e) for s, e in intermediates if not (expand[s].free_symbols & dynamic)]
    table = {s.name: s for s in (*model.states, *model.parameters, model.time, *expand)}

    def written(expr: sp.Expr, usable: list[tuple[sp.Symbol, sp.Expr]]) -> str:
        if usable:
            folded = _fold(expr, usable, expand)
            if folded != expr:
                text = format_expression(folded)
                try:
                    again = parse_expression(text, table).xreplace(expand)
                except ModelError:  # pragma: no cover - format_expression output always parses
                    again = None
                if again == expr:
                    return text
        return format_expression(expr)

    lines += ["", "[states]"]
    for state, initial in zip(model.states, model.initial_conditions):
        if isinstance(initial, sp.Rational):
            lines.append(f"{_toml_key(state.name)} = {_initial_value(initial)}")
        else:
            lines.append(f"{_toml_key(state.name)} = {_toml_string(written(initial, static))}")

    if intermediates:
        lines += ["", "[intermediates]"]
        lines += [f"{_toml_key(s.name)} = {_toml_string(format_expression(e))}" for s, e in intermediates]

    lines += ["", "[equations]"]
    lines += [
        f"{_toml_key(state.name)} = {_toml_string(written(rhs, intermediates))}"
        for state, rhs in zip(model.states, model.rhs)
    ]

    if model.outputs:
        lines += ["", "[outputs]"]
        lines += [f"{_toml_key(name)} = {_toml_string(written(expr, intermediates))}" for name, expr in model.outputs]

    if model.units:
        lines += ["", "[units]"]
        lines += [f"{_toml_key(name)} = {_toml_string(unit)}" for name, unit in model.units.items()]
    return "\n".join(lines) + "\n"
