"""The :class:`Model`: what a user's ODE is.

An initial value problem with parameters

    dy/dt = f(t, y, p),   y(t0) = y0(p),

held exactly: ordered states ``y``, ordered parameters ``p`` with nominal values, right-hand sides ``f`` and
initial conditions ``y0(p)`` as SymPy expressions, optional named intermediates (shown in printouts,
substituted into ``f``) and named outputs ``g(t, y, p)``.  Everything downstream (derivation, code
generation, integration, audit) reads a ``Model`` and nothing else.
"""

from __future__ import annotations

import difflib
import keyword
import math
import numbers
import sys
import threading
import unicodedata
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Union

from .._errors import ModelError
from ._summary import ModelOrigin, ModelSummary

if TYPE_CHECKING:
    import sympy as sp

    ExprLike = Union[sp.Expr, str, float, int]

__all__ = ["Model", "Units", "RESERVED_NAMES", "ExprLike", "normal_name", "name_problem", "MAX_UNIT_LENGTH",
           "ModelOrigin"]

# SymPy is imported by what builds or reads a model's expressions, not by this module: a model loaded from a
# file whose summary is in the disk cache is solved with cached compiled libraries without importing SymPy
# (the Notes of ``Model`` below: "a model made from its summary").

#: Smallest positive normal double (``symsens.model._parser.DOUBLE_MIN``).
_DOUBLE_MIN = sys.float_info.min

# Names the model language gives a meaning to; a state, parameter, intermediate or output may not take
# them (a parameter called ``exp`` would shadow the function in every expression).
RESERVED_NAMES: frozenset[str] = frozenset(
    {
        "exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "abs", "min", "max",
        "exprel", "exprel_derivative", "piecewise", "if", "else", "and", "or", "not", "pi",
        "true", "false", "True", "False", "None", "inf", "nan",
    }
)


def _allowed_function_types() -> tuple[type, ...]:
    """SymPy objects an expression of a model may contain: arithmetic, the whitelisted functions and
    Piecewise/Min/Max with relational conditions.  Anything else (Integral, Derivative, Function('f'), …) is
    refused so that every later stage knows how to differentiate and print it."""
    import sympy as sp

    from ._functions import exprel, exprel_derivative

    return (sp.exp, sp.log, sp.sin, sp.cos, sp.tan, sp.tanh, sp.sinh, sp.cosh, sp.Abs, sp.Min, sp.Max,
            sp.Piecewise, sp.Heaviside, sp.sign, exprel, exprel_derivative)


def __getattr__(name: str) -> Any:
    # ``ExprLike`` names SymPy types, so it is made when asked for (type annotations here are strings).
    if name == "ExprLike":
        import sympy as sp

        return Union[sp.Expr, str, float, int]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def normal_name(name: str) -> str:
    """The NFKC normal form of a name: what Python (and many tools) take the identifier to mean.

    ``ℯ`` and ``e``, ``ﬁ`` and ``fi``, full-width ``ｋ`` and ``k`` have the same normal form.
    """
    return unicodedata.normalize("NFKC", name)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a state, parameter, intermediate, output or the time (None if it can).

    The rules, checked on the name and on its NFKC normal form: an identifier, not a Python keyword, not a
    function or constant of the model language (:data:`RESERVED_NAMES`), no leading double underscore.
    """
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        return "is not a valid identifier (letters, digits and _, not a Python keyword)"
    normal = normal_name(name)
    same = "" if normal == name else f" (its Unicode normal form NFKC is {normal!r})"
    if keyword.iskeyword(normal):
        return f"is the Python keyword {normal!r}{same}"
    if normal in RESERVED_NAMES:
        return f"shadows a function or constant of the model language{same}"
    if normal.startswith("__"):
        return f"may not start with a double underscore{same}"
    return None


def same_name_problem(first: str, first_kind: str, second: str, second_kind: str) -> str:
    """The message for two different spellings with the same NFKC normal form (or the same name twice)."""
    if first == second:
        return f"duplicate name {first!r}: used as {first_kind} and as {second_kind}"
    return (
        f"names {first!r} ({first_kind}) and {second!r} ({second_kind}) are the same name after Unicode "
        f"normalisation (NFKC: {normal_name(first)!r}); use one spelling or different names"
    )


def _check_name(name: str, what: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise ModelError(f"{what} name {name!r} {problem}", name=str(name))
    return name


def _is_sympy(value: Any, kind: str) -> bool:
    """Whether ``value`` is an instance of SymPy's ``kind`` (e.g. ``"Symbol"``), without importing SymPy: a
    SymPy object can only exist once SymPy is imported."""
    sympy = sys.modules.get("sympy")
    return sympy is not None and isinstance(value, getattr(sympy, kind))


def _as_name(item: Any, what: str) -> str:
    if isinstance(item, str):
        return _check_name(item, what)
    if _is_sympy(item, "Symbol"):
        return _check_name(item.name, what)
    raise ModelError(f"{what} must be given as a name or a SymPy Symbol, got {type(item).__name__}")


def _finite_float(value: Any, what: str, name: str, normal: bool = False) -> float:
    """``value`` as a finite float; with ``normal``, also 0 or of magnitude at least DOUBLE_MIN (no subnormals)."""
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or _is_sympy(value, "Number")):
        raise ModelError(f"{what} {name!r} must be a real number, got {value!r}", name=name)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ModelError(f"{what} {name!r} must be finite, got {value}", name=name)
    if normal and (value != 0 and abs(number) < _DOUBLE_MIN):
        raise ModelError(
            f"{what} {name!r} is {value}: not 0 and below the smallest normal double {_DOUBLE_MIN!r} "
            "(it would be stored as 0 or a subnormal number)",
            name=name,
        )
    return number


#: The longest unit string a model may give (units label figure axes: "mS/cm^2", "uA/cm^2", "1/ms").
MAX_UNIT_LENGTH = 32


class Units(Mapping[str, str]):
    """The units of a model's time, states, parameters, intermediates and outputs: a read-only, hashable
    mapping from name to unit text (e.g. ``{"t": "ms", "V": "mV"}``).  Units are labels for people (figure
    axes, reports); nothing is converted or checked dimensionally."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)

    def __getitem__(self, name: str) -> str:
        return self._items[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"Units({self._items!r})"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Units, (tuple(self._items.items()),))


def unit_problem(unit: Any) -> str | None:
    """Why ``unit`` is not a valid unit text (None if it is): a non-empty string of at most
    :data:`MAX_UNIT_LENGTH` characters, no control characters or line breaks, no surrounding spaces."""
    if not isinstance(unit, str):
        return f"must be a string, got {type(unit).__name__}"
    if not unit.strip():
        return "is empty"
    if unit != unit.strip():
        return f"{unit!r} has leading or trailing spaces"
    if len(unit) > MAX_UNIT_LENGTH:
        return f"is {len(unit)} characters long; a unit has at most {MAX_UNIT_LENGTH}"
    for ch in unit:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            return f"{unit!r} contains the control or invisible character U+{ord(ch):04X}"
    return None


def _check_units(units: Mapping[str, Any] | None, time_name: str, named: Mapping[str, str]) -> Units:
    """``units`` checked against the model's names (``named``: name -> what it is); ``"time"`` stands for the
    time variable unless a state, parameter, intermediate or output is called so."""
    if units is None:
        return Units()
    if not isinstance(units, Mapping):
        raise ModelError(f"units must be a mapping {{name: unit}}, got {type(units).__name__}")
    unknown = [str(k) for k in units if not (k in named or k == time_name or k == "time")]
    if unknown:
        known = [time_name, *named]
        hints = "".join(_did_you_mean(k, known) for k in unknown[:1])
        raise ModelError(
            f"units given for unknown name{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}{hints}: "
            "units belong to the time variable (or `time`), states, parameters, intermediates and outputs",
            name=unknown[0],
        )
    checked: dict[str, str] = {}
    for key, unit in units.items():
        name = time_name if (key == "time" and key not in named) else key
        problem = unit_problem(unit)
        if problem is not None:
            raise ModelError(f"the unit of {name!r} {problem}", name=str(key))
        if name in checked:
            raise ModelError(f"the unit of the time variable {time_name!r} is given twice (as `time` and as "
                             f"{time_name!r})", name=str(key))
        checked[name] = unit
    return Units(checked)


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


@dataclass(frozen=True, init=False)
class Model:
    """An ODE initial value problem with parameters, held exactly in SymPy.

    ``dy/dt = rhs(t, y, p)``, ``y(t0) = initial_conditions(p)``.

    Parameters
    ----------
    states : sequence of str or Symbol, length n
        State names in order (the order of ``rhs`` and of every vector downstream).
    parameters : mapping name -> float, length P
        Parameters in order with their nominal values (finite reals).
    rhs : sequence of length n of SymPy expressions or expression strings
        ``dy_i/dt``.  Strings are parsed by the model language's whitelist grammar (never ``eval``).
    initial_conditions : sequence of length n
        ``y_i(t0)``: numbers or expressions in the parameters.
    intermediates : mapping name -> expression, optional
        Named subexpressions (e.g. gating rates ``alpha_m``), in order; each may use earlier ones.
        They are substituted into ``rhs`` and ``outputs``, and kept for printing.
    outputs : mapping name -> expression, optional
        Observables ``g(t, y, p)``.
    time : str or Symbol, default ``"t"``
    name, description : str
        Free text; ``description`` should cite the model's source.
    t_span : (t0, t1), optional
        The time span the model is usually solved over.
    units : mapping name -> unit text, optional
        Units of the time variable (key: its name, or ``"time"``), states, parameters, intermediates and
        outputs, e.g. ``{"time": "ms", "V": "mV"}``: labels for figures and reports (not converted).  Each is
        a short plain string (:func:`unit_problem`).  Held as :class:`Units` in :attr:`units` (empty by
        default); they take part in equality, not in the compiled-kernel cache key.

    Notes
    -----
    A model made from its summary: :func:`symsens.load_model` of a model file or built-in model whose summary is cached (written the first time
    its compiled libraries were keyed, :mod:`symsens.codegen._summaries`) returns a Model whose names, values,
    time span and units come from the summary and whose expressions (``states``, ``parameters``, ``rhs``,
    ``initial_conditions``, ``intermediates``, ``outputs``, ``time``) are built from the text in memory on first
    access, then checked against the summary.  Until then no SymPy is imported, so a fresh process solves it
    with cached libraries without symbolic work.  It compares, hashes, copies and pickles like any other Model.

    Raises
    ------
    ModelError
        For duplicate or reserved names (names are compared after Unicode NFKC normalisation, so ``e`` and
        ``ℯ`` are one name and ``ｅｘｐ`` is the reserved ``exp``), wrong lengths, unknown symbols,
        non-finite values, numbers outside the normal double range (see
        :func:`symsens.model._parser.check_constants`; nominal values too), literal division by zero, or
        unsupported functions; the message names the offending item.
    """

    states: tuple[sp.Symbol, ...]
    parameters: tuple[sp.Symbol, ...]
    parameter_values: tuple[float, ...]
    rhs: tuple[sp.Expr, ...]
    initial_conditions: tuple[sp.Expr, ...]
    intermediates: tuple[tuple[sp.Symbol, sp.Expr], ...]
    outputs: tuple[tuple[str, sp.Expr], ...]
    time: sp.Symbol
    name: str
    description: str
    t_span: tuple[float, float] | None
    units: Units = field(repr=False)
    _symbol_table: Mapping[str, sp.Symbol] = field(repr=False, compare=False, hash=False)

    def __init__(
        self,
        states: Sequence[str | sp.Symbol],
        parameters: Mapping[str | sp.Symbol, float],
        rhs: Sequence[ExprLike],
        initial_conditions: Sequence[ExprLike],
        *,
        intermediates: Mapping[str | sp.Symbol, ExprLike] | None = None,
        outputs: Mapping[str, ExprLike] | None = None,
        time: str | sp.Symbol = "t",
        name: str = "model",
        description: str = "",
        t_span: tuple[float, float] | None = None,
        units: Mapping[str, str] | None = None,
    ) -> None:
        import sympy as sp

        from ._parser import check_constants

        state_names = [_as_name(s, "state") for s in states]
        if not state_names:
            raise ModelError("a model needs at least one state")
        if not isinstance(parameters, Mapping):
            raise ModelError("parameters must be a mapping {name: nominal value}")
        parameter_names = [_as_name(p, "parameter") for p in parameters]
        parameter_values = tuple(
            _finite_float(value, "nominal value of parameter", pname, normal=True)
            for pname, value in zip(parameter_names, parameters.values())
        )
        time_name = _as_name(time, "time")
        intermediate_items = list((intermediates or {}).items())
        intermediate_names = [_as_name(k, "intermediate") for k, _ in intermediate_items]
        output_items = list((outputs or {}).items())
        output_names = [_as_name(k, "output") for k, _ in output_items]

        # Names are compared by their NFKC normal form: 'e' and 'ℯ', 'k' and 'ｋ' are one name.
        seen: dict[str, tuple[str, str]] = {}
        for kind, names in (
            ("state", state_names),
            ("parameter", parameter_names),
            ("time", [time_name]),
            ("intermediate", intermediate_names),
            ("output", output_names),
        ):
            for n in names:
                key = normal_name(n)
                if key in seen:
                    first, first_kind = seen[key]
                    raise ModelError(same_name_problem(first, first_kind, n, kind), name=n)
                seen[key] = (n, kind)

        if len(rhs) != len(state_names):
            raise ModelError(
                f"rhs has {len(rhs)} equations for {len(state_names)} states; every state needs exactly one"
            )
        if len(initial_conditions) != len(state_names):
            raise ModelError(
                f"initial_conditions has {len(initial_conditions)} entries for {len(state_names)} states"
            )

        # Real symbols: states, parameters and time of an ODE model are real, and SymPy needs to know it to
        # differentiate |x| as sign(x) (not through re/im) and to keep abs(exp(x)) = exp(x).
        table: dict[str, sp.Symbol] = {n: sp.Symbol(n, real=True) for n in (*state_names, *parameter_names, time_name)}
        state_syms = tuple(table[n] for n in state_names)
        param_syms = tuple(table[n] for n in parameter_names)
        time_sym = table[time_name]

        base_allowed = frozenset(table)
        # Intermediates in order: each may use states, parameters, time and earlier intermediates.
        substitutions: dict[sp.Symbol, sp.Expr] = {}
        kept_intermediates: list[tuple[sp.Symbol, sp.Expr]] = []
        allowed = set(base_allowed)
        for iname, (_, raw) in zip(intermediate_names, intermediate_items):
            expr = self._to_expr(raw, table, allowed, f"intermediate {iname!r}")
            symbol = sp.Symbol(iname, real=True)
            kept_intermediates.append((symbol, expr))
            substitutions[symbol] = expr.xreplace(substitutions)
            table[iname] = symbol
            allowed.add(iname)

        def explicit(raw: ExprLike, what: str, allowed_names: Iterable[str]) -> sp.Expr:
            expr = self._to_expr(raw, table, set(allowed_names), what)
            # Intermediates are substituted in dependency order, so one pass suffices.
            if not substitutions:
                return expr
            expr = expr.xreplace(substitutions)
            check_constants(expr, f"{what} (with the intermediates substituted)")
            return expr

        rhs_exprs = tuple(
            explicit(raw, f"equation for state {sname!r}", allowed) for sname, raw in zip(state_names, rhs)
        )
        ic_allowed = set(parameter_names) | {n for n in intermediate_names if not self._uses(n, substitutions, state_names, time_name)}
        ic_exprs = tuple(
            explicit(raw, f"initial condition of state {sname!r}", ic_allowed)
            for sname, raw in zip(state_names, initial_conditions)
        )
        output_exprs = tuple(
            (oname, explicit(raw, f"output {oname!r}", allowed)) for oname, (_, raw) in zip(output_names, output_items)
        )

        object.__setattr__(self, "states", state_syms)
        object.__setattr__(self, "parameters", param_syms)
        object.__setattr__(self, "parameter_values", parameter_values)
        object.__setattr__(self, "rhs", rhs_exprs)
        object.__setattr__(self, "initial_conditions", ic_exprs)
        object.__setattr__(self, "intermediates", tuple(kept_intermediates))
        object.__setattr__(self, "outputs", output_exprs)
        object.__setattr__(self, "time", time_sym)
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "description", str(description))
        if t_span is not None:
            if len(t_span) != 2:
                raise ModelError(f"t_span must be a pair (t0, t1), got {t_span!r}")
            t0 = _finite_float(t_span[0], "t_span", "t0")
            t1 = _finite_float(t_span[1], "t_span", "t1")
            if not t1 > t0:
                raise ModelError(f"t_span must have t1 > t0, got {t_span!r}")
            t_span = (t0, t1)
        object.__setattr__(self, "t_span", t_span)
        named = {**{n: "state" for n in state_names}, **{n: "parameter" for n in parameter_names},
                 **{n: "intermediate" for n in intermediate_names}, **{n: "output" for n in output_names}}
        object.__setattr__(self, "units", _check_units(units, time_name, named))
        object.__setattr__(self, "_symbol_table", dict(table))

    # -- construction helpers ------------------------------------------------------------------------
    @staticmethod
    def _uses(name: str, substitutions: Mapping[sp.Symbol, sp.Expr], states: Sequence[str], time: str) -> bool:
        """Whether intermediate ``name`` depends on a state or on time (then an initial condition may not use it)."""
        import sympy as sp

        expr = substitutions[sp.Symbol(name, real=True)]
        return any(s.name in states or s.name == time for s in expr.free_symbols)

    @staticmethod
    def _to_expr(raw: ExprLike, table: Mapping[str, sp.Symbol], allowed: set[str], what: str) -> sp.Expr:
        import sympy as sp

        if isinstance(raw, str):
            from ._parser import parse_expression

            expr = parse_expression(raw, {n: table[n] for n in allowed if n in table}, where=what)
        elif isinstance(raw, bool):
            raise ModelError(f"{what} must be an expression or a number, got {raw!r}")
        elif isinstance(raw, (numbers.Number, sp.Basic)):
            expr = sp.sympify(raw) if not isinstance(raw, sp.Basic) else raw
            if isinstance(raw, numbers.Number) and not isinstance(raw, numbers.Real):
                raise ModelError(f"{what} must be real, got {raw!r}")
            # User-made Symbols may carry assumptions (real=True, …); map them to the model's plain symbols by name.
            foreign = {s: table[s.name] for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.name in table}
            expr = expr.xreplace(foreign)
        else:
            raise ModelError(f"{what} must be a SymPy expression, an expression string or a number, got {type(raw).__name__}")
        Model._validate_expr(expr, allowed, what)
        return expr

    @staticmethod
    def _validate_expr(expr: sp.Basic, allowed: set[str], what: str) -> None:
        import sympy as sp

        from ._parser import check_constants

        allowed_types = _allowed_function_types()
        if not isinstance(expr, sp.Expr):
            raise ModelError(f"{what} is not an algebraic expression: {expr}")
        if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise ModelError(f"{what} contains a division by zero or an infinite value: {expr}")
        check_constants(expr, what)
        for symbol in expr.free_symbols:
            if symbol.name not in allowed:
                raise ModelError(
                    f"unknown symbol {symbol.name!r} in {what}{_did_you_mean(symbol.name, allowed)}",
                    name=symbol.name,
                )
        for node in sp.preorder_traversal(expr):
            if isinstance(node, sp.Function) and not isinstance(node, allowed_types):
                raise ModelError(f"function {type(node).__name__!r} in {what} is not supported by the model language")
            if isinstance(node, (sp.Derivative, sp.Integral)):
                raise ModelError(f"{what} contains an unevaluated {type(node).__name__}")

    # -- a model made from its cached summary ----------------------------------------------------------
    @classmethod
    def _from_summary(cls, summary: ModelSummary, origin: ModelOrigin) -> Model:
        """The model of ``origin``'s text with its names, values, time span and units from ``summary``; its
        SymPy expressions are built from the text when first asked for (:meth:`_build_expressions`)."""
        model = object.__new__(cls)
        for attribute, value in (
            ("parameter_values", summary.parameter_values), ("name", summary.name),
            ("description", summary.description), ("t_span", summary.t_span), ("units", Units(summary.units)),
            ("_state_names", summary.states), ("_parameter_names", summary.parameters),
            ("_output_names", summary.outputs), ("_origin", origin), ("_summary", summary),
            ("_expressions", _shared_expressions(origin.key)),
        ):
            object.__setattr__(model, attribute, value)
        return model

    def __getattr__(self, name: str) -> Any:
        # Reached only for an attribute that is not set: the expressions of a model made from its summary.
        if name in _SYMBOLIC_FIELDS and "_summary" in self.__dict__:
            self._build_expressions()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _build_expressions(self) -> None:
        """Build the expressions of a model made from its summary: from the text it was loaded from, once per
        text while any model of it is alive (copies and repeated loads share them), checked to be the model
        the summary describes, facts included."""
        origin: ModelOrigin = self.__dict__["_origin"]
        summary: ModelSummary = self.__dict__["_summary"]
        shared = self.__dict__.get("_expressions")
        if shared is None:  # an unpickled model
            shared = _shared_expressions(origin.key)
            object.__setattr__(self, "_expressions", shared)
        with shared.lock:
            if "rhs" in self.__dict__:
                return
            if shared.model is None:
                from ..codegen._kernels import _compute_model_facts

                built = _build_origin(origin)
                shared.facts = _compute_model_facts(built)
                shared.model = built
            # Checked for each model: models of one text may have been made from different summaries.
            problem = _summary_mismatch(shared.model, shared.facts, summary, origin)
            if problem is not None:
                raise ModelError(
                    f"model {summary.name!r}: its summary in the symsens cache does not match its text ({problem}); "
                    "the cache entry is damaged: delete the folder 'models' of the cache directory",
                    source=origin.source,
                )
            for attribute in _SYMBOLIC_FIELDS:
                object.__setattr__(self, attribute, shared.model.__dict__[attribute])

    # -- derived views -------------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        """Number of states n."""
        return len(self.state_names)

    @property
    def n_parameters(self) -> int:
        """Number of parameters P."""
        return len(self.parameter_names)

    @property
    def state_names(self) -> tuple[str, ...]:
        cached = self.__dict__.get("_state_names")
        if cached is None:
            cached = tuple(s.name for s in self.states)
            object.__setattr__(self, "_state_names", cached)
        return cached

    @property
    def parameter_names(self) -> tuple[str, ...]:
        # Cached (the model is immutable): gradient loops over a thousand parameters look names up per call.
        cached = self.__dict__.get("_parameter_names")
        if cached is None:
            cached = tuple(p.name for p in self.parameters)
            object.__setattr__(self, "_parameter_names", cached)
        return cached

    @property
    def output_names(self) -> tuple[str, ...]:
        cached = self.__dict__.get("_output_names")
        if cached is None:
            cached = tuple(name for name, _ in self.outputs)
            object.__setattr__(self, "_output_names", cached)
        return cached

    @property
    def nominal_parameters(self) -> dict[str, float]:
        """``{name: nominal value}`` in parameter order."""
        return dict(zip(self.parameter_names, self.parameter_values))

    def symbol(self, name: str) -> sp.Symbol:
        """The model's Symbol for a state, parameter, intermediate or the time; ModelError for an unknown name."""
        try:
            return self._symbol_table[name]
        except KeyError:
            raise ModelError(
                f"unknown name {name!r} in model {self.name!r}{_did_you_mean(name, self._symbol_table)}", name=name
            ) from None

    def output(self, name: str) -> sp.Expr:
        """The expression of output ``name``."""
        for oname, expr in self.outputs:
            if oname == name:
                return expr
        raise ModelError(
            f"model {self.name!r} has no output {name!r}{_did_you_mean(name, self.output_names)}", name=name
        )

    def unit(self, name: str) -> str | None:
        """The unit of a state, parameter, intermediate, output or the time variable (None if not given)."""
        return self.units.get(name)

    def label(self, name: str) -> str:
        """``name`` with its unit for an axis label: ``"V (mV)"``, or ``"V"`` without a unit."""
        unit = self.units.get(name)
        return name if unit is None else f"{name} ({unit})"

    def with_parameter_values(self, values: Mapping[str, float]) -> Model:
        """A copy with some nominal parameter values replaced (names checked, values finite)."""
        unknown = [k for k in values if k not in self.parameter_names]
        if unknown:
            raise ModelError(
                f"unknown parameter {unknown[0]!r}{_did_you_mean(unknown[0], self.parameter_names)}", name=unknown[0]
            )
        new_values = dict(self.nominal_parameters)
        for key, value in values.items():
            new_values[key] = _finite_float(value, "value of parameter", key)
        clone = object.__new__(Model)
        # Everything but the values and the hash is shared: the expressions (or, for a model made from its
        # summary, what builds them) and the cached names.
        for attribute, value in self.__dict__.items():
            if attribute != "_hash":
                object.__setattr__(clone, attribute, value)
        object.__setattr__(clone, "parameter_values", tuple(new_values[n] for n in self.parameter_names))
        return clone

    def __hash__(self) -> int:
        # Over the names and plain values only, computed once: equal models have equal ones, it needs no
        # expression (a model made from its summary has none yet), and the solver caches hash the model on
        # every call.  Models that differ only in their equations share a hash and are told apart by __eq__.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.name, self.state_names, self.parameter_names, self.parameter_values, self.t_span,
                           self.units))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __eq__(self, other: object) -> bool:
        """Equal states, parameters, values, equations, initial conditions, intermediates, outputs, time, name,
        description, time span and units.  Two models loaded from the same text are compared by their values,
        name, description, time span and units alone (the same text gives the same expressions)."""
        if self is other:
            return True
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Model)
        mine, theirs = self.__dict__.get("_origin"), other.__dict__.get("_origin")
        plain = ("parameter_values", "name", "description", "t_span", "units")
        if mine is not None and theirs is not None and mine.key == theirs.key:
            return all(getattr(self, attribute) == getattr(other, attribute) for attribute in plain)
        if hash(self) != hash(other):
            return False
        return all(getattr(self, item.name) == getattr(other, item.name) for item in fields(self) if item.compare)

    def __getstate__(self) -> dict[str, Any]:
        # String hashes differ between processes: a pickled model must not carry this process's hash.  Nor its
        # origin and summary, keyed by this process's symsens and SymPy: the copy is a model with expressions.
        if "_summary" in self.__dict__:
            self._build_expressions()
        state = dict(self.__dict__)
        for private in ("_hash", "_origin", "_summary", "_expressions"):
            state.pop(private, None)
        return state

    def __str__(self) -> str:
        lines = [f"model {self.name}: {self.n_states} states, {self.n_parameters} parameters"]
        for symbol, expr in self.intermediates:
            lines.append(f"  {symbol} = {expr}")
        for state, expr, ic in zip(self.states, self.rhs, self.initial_conditions):
            lines.append(f"  d{state}/d{self.time} = {expr}    ({state}(0) = {ic})")
        for pname, value in zip(self.parameter_names, self.parameter_values):
            lines.append(f"  {pname} = {value:g}")
        return "\n".join(lines)


# The attributes of a model that hold SymPy objects: a model made from its summary sets them on first use.
_SYMBOLIC_FIELDS = ("states", "parameters", "rhs", "initial_conditions", "intermediates", "outputs", "time",
                    "_symbol_table")


class _SharedExpressions:
    """The model built from one text, shared by every model made from that text's summary (repeated loads and
    copies with other values), with the lock that lets one thread build it."""

    __slots__ = ("lock", "model", "facts", "__weakref__")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: Model | None = None
        self.facts: Any = None  # symsens.codegen._kernels.ModelFacts of ``model``


# origin key -> its shared expressions, alive while a model of that text is.
_shared: weakref.WeakValueDictionary[str, _SharedExpressions] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def _shared_expressions(key: str) -> _SharedExpressions:
    with _shared_lock:
        shared = _shared.get(key)
        if shared is None:
            shared = _shared[key] = _SharedExpressions()
        return shared


def _build_origin(origin: ModelOrigin) -> Model:
    """The model of ``origin`` built from its text, as :func:`symsens.load_model` builds it on a cache miss."""
    from ._load import build_from_text

    return build_from_text(origin.kind, origin.text, origin.source)


# How a mismatch names a field of the summary (the others by their own names).
_SUMMARY_LABELS = {
    "parameter_values": "nominal values", "t_span": "time span", "digest": "equations (their digest)",
    "autonomous": "whether the equations are free of time (autonomous)", "rhs_nodes": "size of the right-hand side",
}


def _summary_mismatch(built: Model, facts: Any, summary: ModelSummary, origin: ModelOrigin) -> str | None:
    """What differs between the summary of the model built from a text (with its ``facts``) and the summary
    cached for that text (None: nothing): the names and values, and the facts the compiled-library keys and
    drivers are made of."""
    expected = ModelSummary.of(built, facts, origin.parameter_values)
    for item in fields(ModelSummary):
        actual, recorded = getattr(expected, item.name), getattr(summary, item.name)
        if actual != recorded:
            return f"{_SUMMARY_LABELS.get(item.name, item.name)}: {actual!r} in the text, {recorded!r} in the summary"
    return None
