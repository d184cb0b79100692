"""SBML import and export: an SBML Level 3 (and Level 2) document as a :class:`Model`, and back.

Reading goes through python-libsbml (the optional extra ``symsens[sbml]``).  Mathematics is converted by
walking libsbml's abstract syntax tree (``ASTNode`` types) and calling SymPy's constructors on what was
recognised; no text is ever evaluated, parsed by Python or passed to ``sympify``.

Semantics follow the SBML Level 3 Version 2 Core specification, cited by section:

- 3.4   mathematical formulas: the MathML subset, the csymbols ``time`` and ``avogadro``, ``piecewise``,
        a reaction identifier in mathematics meaning the reaction's rate, booleans and numbers.
- 4.3   function definitions: inlined at each call (the arguments substituted into the body).
- 4.5   compartments; 4.6 species (amount or concentration by ``hasOnlySubstanceUnits``,
        ``boundaryCondition``, ``constant``, ``conversionFactor``); 4.7 parameters.
- 4.8   initial assignments (evaluated at t = 0); 4.9 rules (assignment and rate rules).
- 4.11  reactions: kinetic laws, local parameters, constant stoichiometry; the rate of change of a
        species' amount is the sum over reactions of stoichiometry x kinetic law.

Import maps every SBML quantity onto the model as follows (see docs/sbml.md):

- a species, or a parameter or compartment changed by a rate rule, is a **state** under its SBML
  identifier.  A species' state is what its SBML symbol means: its amount when
  ``hasOnlySubstanceUnits`` is true (or its compartment has spatial dimension 0), its concentration
  otherwise.  For a concentration species changed by reactions, ``d[S]/dt = (sum_r s_r v_r) / V`` with
  ``V`` the compartment size, exactly SBML's ``dn/dt = sum_r s_r v_r`` for ``n = [S] V``; when ``V``
  changes (a rate or assignment rule) the term ``- [S] (dV/dt) / V`` is added.  A constant or boundary
  species without rules keeps its amount: in a compartment of constant size it is a state with ``d/dt = 0``.
- a species, parameter or compartment set by an assignment rule, or a constant one whose value is set by
  an initial assignment, is an **output** under its identifier; its expression is substituted wherever
  the quantity is used.
- every other parameter and compartment size is a **parameter** with its value as nominal; a local
  parameter ``p`` of reaction ``r`` becomes the parameter ``r_p``.
- identifiers the model language refuses (reserved names such as ``exp`` or ``pi``, Python keywords such
  as ``lambda``, names starting with ``__``) are renamed by appending ``_`` (and ``sbml`` is put in front of
  a leading ``__``), with further ``_`` until the name is free; the renaming is listed in the description.

Anything that would need other semantics (events, delays, algebraic rules, fast reactions, variable
stoichiometry, ``rateOf``, functions the model language lacks applied to non-constant arguments) is a
:class:`ModelError` naming the element and its identifier.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import sympy as sp

from .._errors import ModelError
from ._functions import exprel, exprel_derivative
from ._model import Model, name_problem, normal_name

__all__ = ["load_sbml", "read_sbml", "to_sbml", "SbmlImport", "looks_like_sbml", "AVOGADRO"]

#: The value of the ``avogadro`` csymbol fixed by SBML L3V1/L3V2 (section 3.4).
AVOGADRO = 6.02214179e23

_MAX_EXACT_ROOT = 100  # a rational exponent p/q with q above this becomes a double (as in the model language)


def _libsbml() -> Any:
    try:
        import libsbml
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ModelError(
            "reading or writing SBML needs python-libsbml: pip install 'symsens[sbml]' (or python-libsbml)"
        ) from error
    return libsbml


def looks_like_sbml(text: str) -> bool:
    """Whether ``text`` (the start of a file) is an SBML document: an XML ``<sbml`` root element."""
    head = text.lstrip("\ufeff \t\r\n")[:4096]
    return head.startswith("<") and "<sbml" in head


@dataclass(frozen=True)
class SbmlImport:
    """What the import made of each SBML identifier, beside the :class:`Model`.

    Attributes
    ----------
    model : Model
    names : dict SBML id -> model name
        Every identifier that became a state, parameter or output (local parameters as ``"reaction.param"``).
    species : dict species id -> (role, quantity, compartment id)
        ``role`` is ``"state"`` or ``"output"``; ``quantity`` is ``"amount"`` or ``"concentration"`` (what the
        model's value of the species is); ``compartment`` is the SBML compartment id.
    renamed : dict SBML id -> model name
        Identifiers renamed by the naming rules (a subset of ``names``).
    """

    model: Model
    names: dict[str, str] = field(default_factory=dict)
    species: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------


def load_sbml(source: str | os.PathLike[str]) -> Model:
    """Load an SBML file (Level 2 or 3 core) as a :class:`Model`; see the module docstring for the mapping."""
    return read_sbml(source).model


def read_sbml(source: str | os.PathLike[str], *, text: str | None = None) -> SbmlImport:
    """Read an SBML document from the file ``source`` (or from ``text``, with ``source`` naming it in errors).

    Raises
    ------
    ModelError
        For a malformed document (naming the file and libsbml's message with its line), for elements this
        import does not support (naming the element and its id), and for anything the :class:`Model`
        refuses.
    """
    libsbml = _libsbml()
    where = os.fspath(source)
    if text is None:
        path = Path(where)
        if not path.is_file():
            raise ModelError(f"SBML file {where!r} does not exist")
        document = libsbml.readSBMLFromFile(str(path))
    else:
        document = libsbml.readSBMLFromString(text)
    problems = []
    for index in range(document.getNumErrors()):
        error = document.getError(index)
        if error.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            problems.append((error.getLine(), error.getMessage().strip()))
    if problems:
        line, message = problems[0]
        more = f" (and {len(problems) - 1} more errors)" if len(problems) > 1 else ""
        raise ModelError(f"not a valid SBML document: {message}{more}", source=where, line=line or None)
    namespaces = document.getNamespaces()
    for index in range(namespaces.getLength() if namespaces is not None else 0):
        uri = namespaces.getURI(index)
        if uri.startswith("http://www.sbml.org/sbml/level3/") and "/core" not in uri and document.getPackageRequired(uri):
            package = namespaces.getPrefix(index) or uri
            raise ModelError(
                f"the SBML package {package!r} is required by the document and is not supported (SBML core only)",
                source=where,
                name=package,
            )
    sbml_model = document.getModel()
    if sbml_model is None:
        raise ModelError("the SBML document has no <model>", source=where)
    try:
        return _Importer(libsbml, document, sbml_model, where).run()
    except ModelError as error:
        if error.source is None:
            raise ModelError(error.problem, source=where, line=error.line, name=error.name) from error
        raise


def _safe_name(sbml_id: str, taken: set[str]) -> str:
    """The model name for an SBML id: the id itself, or the documented deterministic renaming."""
    name = sbml_id
    if name_problem(name) is not None:
        name = ("sbml" + name) if name.startswith("__") else name + "_"
    while name_problem(name) is not None or normal_name(name) in taken:
        name += "_"
    return name


def _exact_real(value: float, where: str) -> sp.Expr:
    """A double from the document as the exact rational of its shortest decimal (the model language's rule)."""
    if not math.isfinite(value):
        raise ModelError(f"{where} contains the non-finite number {value!r}")
    return sp.Rational(Fraction(repr(float(value))))


class _Importer:
    """One import: classification of every SBML quantity, MathML conversion and assembly of the Model."""

    def __init__(self, libsbml: Any, document: Any, sbml_model: Any, source: str) -> None:
        self.sb = libsbml
        self.document = document
        self.m = sbml_model
        self.source = source
        self.level = document.getLevel()
        self.names: dict[str, str] = {}
        self.renamed: dict[str, str] = {}
        self.taken: set[str] = set()
        self.functions: dict[str, tuple[list[str], Any]] = {}
        self.exprel_functions: set[str] = set()
        # resolved values: mode "dyn" (at time t) and "init" (at t = 0, in parameters only)
        self.memo: dict[tuple[str, str], sp.Expr] = {}
        self.resolving: list[tuple[str, str]] = []
        self.kind: dict[str, str] = {}
        self.local_scopes: dict[str, dict[str, sp.Expr]] = {}
        self.time_name = "t"
        self.time = sp.Symbol("t", real=True)

    # -- entry ------------------------------------------------------------------------------------------
    def run(self) -> SbmlImport:
        m = self.m
        self._check_unsupported()
        self._assign_names()
        self._read_function_definitions()

        self.assignment_rules: dict[str, Any] = {}
        self.rate_rules: dict[str, Any] = {}
        for index in range(m.getNumRules()):
            rule = m.getRule(index)
            variable = rule.getVariable()
            if rule.getMath() is None:
                continue  # SBML L3V2 (4.9): a rule without math has no effect
            if rule.isAssignment():
                self.assignment_rules[variable] = rule.getMath()
            elif rule.isRate():
                self.rate_rules[variable] = rule.getMath()
        self.initial_assignments: dict[str, Any] = {}
        for index in range(m.getNumInitialAssignments()):
            assignment = m.getInitialAssignment(index)
            if assignment.getMath() is None:
                continue  # SBML L3V2 (4.8): an initial assignment without math has no effect
            self.initial_assignments[assignment.getSymbol()] = assignment.getMath()
        for variable in (*self.assignment_rules, *self.rate_rules, *self.initial_assignments):
            element = m.getElementBySId(variable)
            if variable in self.names or element is None:
                continue
            if element.getTypeCode() == libsbml_type(self.sb, "SBML_SPECIES_REFERENCE"):
                if variable in self.initial_assignments and variable not in self.assignment_rules and (
                    variable not in self.rate_rules
                ):
                    continue  # a constant stoichiometry set at t = 0
                reaction = element.getParentSBMLObject().getParentSBMLObject()
                raise ModelError(
                    f"variable stoichiometry of {variable!r} in reaction {reaction.getId()!r} (set by a rule) is not "
                    "supported",
                    name=variable,
                )
            raise ModelError(
                f"a rule or initial assignment sets {variable!r}, which is not a species, parameter, compartment "
                "or stoichiometry",
                name=variable,
            )

        self.time_name = _safe_name("t", self.taken)
        self.taken.add(normal_name(self.time_name))
        self.time = sp.Symbol(self.time_name, real=True)

        # Classification.  kind: "parameter", "state", "assigned", "derived" (constant set by an initial
        # assignment), "undefined" (no value, nothing sets it), "reaction", "stoichiometry".
        self.species_quantity: dict[str, str] = {}
        parameter_values: dict[str, float] = {}
        quantity_elements = [
            *(("compartment", m.getCompartment(i)) for i in range(m.getNumCompartments())),
            *(("species", m.getSpecies(i)) for i in range(m.getNumSpecies())),
            *(("parameter", m.getParameter(i)) for i in range(m.getNumParameters())),
        ]
        for element_kind, element in quantity_elements:
            sid = element.getId()
            if sid in self.assignment_rules:
                self.kind[sid] = "assigned"
            elif sid in self.rate_rules:
                self.kind[sid] = "state"
            elif element_kind == "species":
                self.kind[sid] = "state"
            elif sid in self.initial_assignments:
                self.kind[sid] = "derived"
            else:
                self.kind[sid] = "parameter"
                value = self._attribute_value(element_kind, element)
                if value is None:
                    # Legal SBML while nothing uses it (e.g. the size of a 0-dimensional compartment); an
                    # error names it where it is used.
                    self.kind[sid] = "undefined"
                else:
                    parameter_values[self.names[sid]] = value
            if element_kind == "species":
                self.species_quantity[sid] = self._species_quantity(element)
        for index in range(m.getNumReactions()):
            reaction = m.getReaction(index)
            self.kind[reaction.getId()] = "reaction"
            for reference in self._references(reaction):
                if reference.isSetId() and reference.getId():
                    self.kind[reference.getId()] = "stoichiometry"

        # Local parameters become model parameters (values as nominal).
        for index in range(m.getNumReactions()):
            reaction = m.getReaction(index)
            rid = reaction.getId()
            scope: dict[str, sp.Expr] = {}
            law = reaction.getKineticLaw()
            if law is not None:
                for parameter in self._local_parameters(law):
                    pid = parameter.getId()
                    name = self.names[f"{rid}.{pid}"]
                    if not parameter.isSetValue():
                        raise ModelError(f"local parameter {pid!r} of reaction {rid!r} has no value", name=pid)
                    parameter_values[name] = parameter.getValue()
                    scope[pid] = sp.Symbol(name, real=True)
            self.local_scopes[rid] = scope

        # States and their equations.
        states: list[str] = []
        rhs: list[sp.Expr | None] = []
        initial: list[sp.Expr] = []
        derivative = self._reaction_derivatives()
        deferred: list[tuple[int, Any]] = []
        species_info: dict[str, tuple[str, str, str]] = {}
        for element_kind, element in quantity_elements:
            sid = element.getId()
            if element_kind == "species":
                role = "output" if self.kind[sid] == "assigned" else "state"
                species_info[sid] = (role, self.species_quantity[sid], element.getCompartment())
            if self.kind[sid] != "state":
                continue
            states.append(self.names[sid])
            if sid in self.rate_rules:
                rhs.append(self.convert(self.rate_rules[sid], "dyn", f"rate rule for {sid!r}"))
            elif element_kind == "species" and self._in_varying_compartment(element):
                rhs.append(None)  # needs dV/dt: below, once the other equations are known
                deferred.append((len(rhs) - 1, element))
            elif element_kind == "species":
                rhs.append(self._species_rhs(element, derivative.get(sid)))
            else:  # pragma: no cover - only rate-rule parameters and compartments are states
                rhs.append(sp.S.Zero)
            initial.append(self.resolve(sid, "init"))
        known = {sp.Symbol(n, real=True): e for n, e in zip(states, rhs) if e is not None}
        for index, element in deferred:
            rhs[index] = self._varying_concentration_rhs(element, derivative.get(element.getId()), known)

        outputs: dict[str, sp.Expr] = {}
        for element_kind, element in quantity_elements:
            sid = element.getId()
            if self.kind[sid] in ("assigned", "derived"):
                outputs[self.names[sid]] = self.resolve(sid, "dyn")

        if not states:
            raise ModelError(
                "the SBML model has no quantity that changes in time by a reaction or a rate rule, so it is not "
                "an ODE (symsens needs at least one state)"
            )
        name = m.getId() or Path(self.source).stem or "sbml"
        model = Model(
            states,
            parameter_values,
            rhs,
            initial,
            outputs=outputs,
            time=self.time,
            name=name,
            description=self._description(species_info),
        )
        return SbmlImport(model=model, names=dict(self.names), species=species_info, renamed=dict(self.renamed))

    # -- checks -----------------------------------------------------------------------------------------
    def _check_unsupported(self) -> None:
        m, sb = self.m, self.sb
        if m.getNumEvents():
            event = m.getEvent(0)
            label = repr(event.getId()) if event.getId() else "number 1 (without id) in the list of events"
            raise ModelError(
                f"event {label} is not supported (symsens models are ODEs without events)",
                name=event.getId() or None,
            )
        for index in range(m.getNumRules()):
            rule = m.getRule(index)
            if rule.isAlgebraic():
                rule_id = rule.getIdAttribute() if hasattr(rule, "getIdAttribute") else ""
                label = repr(rule_id) if rule_id else f"number {index + 1} (without id) in the list of rules"
                raise ModelError(
                    f"algebraic rule {label} is not supported (symsens models are ODEs, not DAEs)",
                    name=rule_id or None,
                )
        for index in range(m.getNumReactions()):
            reaction = m.getReaction(index)
            rid = reaction.getId()
            if reaction.isSetFast() and reaction.getFast():
                raise ModelError(f"fast reaction {rid!r} is not supported", name=rid)
            if reaction.getKineticLaw() is None or reaction.getKineticLaw().getMath() is None:
                raise ModelError(f"reaction {rid!r} has no kinetic law", name=rid)
            for reference in self._references(reaction):
                species = reference.getSpecies()
                if self.level < 3 and reference.isSetStoichiometryMath():
                    raise ModelError(
                        f"variable stoichiometry (stoichiometryMath) of species {species!r} in reaction {rid!r} "
                        "is not supported",
                        name=rid,
                    )
                # constant="false" alone changes nothing: only a rule (refused below) or an event could change
                # the stoichiometry, so it stays its declared value.

    # -- names ------------------------------------------------------------------------------------------
    def _assign_names(self) -> None:
        m = self.m
        ids: list[str] = []
        for getter, count in (
            (m.getCompartment, m.getNumCompartments()),
            (m.getSpecies, m.getNumSpecies()),
            (m.getParameter, m.getNumParameters()),
        ):
            ids.extend(getter(i).getId() for i in range(count))
        all_ids = set(ids)
        for index in range(m.getNumReactions()):
            all_ids.add(m.getReaction(index).getId())
        self.taken = {normal_name(i) for i in all_ids if name_problem(i) is None}
        for sid in ids:
            name = sid if name_problem(sid) is None else _safe_name(sid, self.taken)
            if name != sid:
                self.renamed[sid] = name
            self.taken.add(normal_name(name))
            self.names[sid] = name
        for index in range(m.getNumReactions()):
            reaction = m.getReaction(index)
            law = reaction.getKineticLaw()
            if law is None:
                continue
            for parameter in self._local_parameters(law):
                key = f"{reaction.getId()}.{parameter.getId()}"
                name = _safe_name(f"{reaction.getId()}_{parameter.getId()}", self.taken)
                self.taken.add(normal_name(name))
                self.names[key] = name

    def _read_function_definitions(self) -> None:
        m = self.m
        x = sp.Symbol("x", real=True)
        canonical_exprel = sp.Piecewise((sp.S.One, sp.Eq(x, 0)), (x / (sp.exp(x) - 1), True))
        for index in range(m.getNumFunctionDefinitions()):
            definition = m.getFunctionDefinition(index)
            fid = definition.getId()
            math_ = definition.getMath()
            if math_ is None:
                continue  # SBML L3V2: a function definition without math; calling it is an error
            if not math_.isLambda():
                raise ModelError(f"function definition {fid!r} is not a lambda expression", name=fid)
            arguments = [math_.getChild(i).getName() for i in range(math_.getNumChildren() - 1)]
            body = math_.getChild(math_.getNumChildren() - 1)
            self.functions[fid] = (arguments, body)
            if len(arguments) == 1:
                try:
                    converted = self._convert(body, "dyn", f"function definition {fid!r}", {arguments[0]: x})
                except ModelError:
                    continue
                if converted == canonical_exprel:
                    self.exprel_functions.add(fid)

    # -- classification helpers -------------------------------------------------------------------------
    @staticmethod
    def _references(reaction: Any) -> list[Any]:
        return [reaction.getReactant(i) for i in range(reaction.getNumReactants())] + [
            reaction.getProduct(i) for i in range(reaction.getNumProducts())
        ]

    def _local_parameters(self, law: Any) -> list[Any]:
        if self.level >= 3:
            return [law.getLocalParameter(i) for i in range(law.getNumLocalParameters())]
        return [law.getParameter(i) for i in range(law.getNumParameters())]

    @staticmethod
    def _attribute_value(element_kind: str, element: Any) -> float | None:
        if element_kind == "compartment":
            if element.isSetSize():
                return element.getSize()
            if element.getLevel() < 3 and element.getSpatialDimensions() != 0:
                return 1.0  # SBML Level 2: the default compartment size is 1
            return None
        if element_kind == "parameter":
            return element.getValue() if element.isSetValue() else None
        return None

    def _species_quantity(self, species: Any) -> str:
        compartment = self.m.getCompartment(species.getCompartment())
        if compartment is None:
            raise ModelError(
                f"species {species.getId()!r} is in the unknown compartment {species.getCompartment()!r}",
                name=species.getId(),
            )
        if species.getHasOnlySubstanceUnits() or compartment.getSpatialDimensionsAsDouble() == 0:
            return "amount"
        return "concentration"

    def _reaction_derivatives(self) -> dict[str, sp.Expr]:
        """``dn/dt`` of each species changed by reactions: sum of stoichiometry x kinetic law (section 4.11)."""
        terms: dict[str, list[sp.Expr]] = {}
        for index in range(self.m.getNumReactions()):
            reaction = self.m.getReaction(index)
            rate = self.resolve(reaction.getId(), "dyn")
            for sign, count, getter in (
                (-1, reaction.getNumReactants(), reaction.getReactant),
                (1, reaction.getNumProducts(), reaction.getProduct),
            ):
                for i in range(count):
                    reference = getter(i)
                    sid = reference.getSpecies()
                    species = self.m.getSpecies(sid)
                    if species is None:
                        raise ModelError(f"reaction {reaction.getId()!r} refers to the unknown species {sid!r}", name=sid)
                    if species.getBoundaryCondition():
                        continue
                    if species.getConstant():
                        raise ModelError(
                            f"constant species {sid!r} is changed by reaction {reaction.getId()!r} but is not a "
                            "boundary species",
                            name=sid,
                        )
                    if sid in self.rate_rules or sid in self.assignment_rules:
                        raise ModelError(
                            f"species {sid!r} is set by a rule and changed by reaction {reaction.getId()!r}",
                            name=sid,
                        )
                    terms.setdefault(sid, []).append(sign * self._stoichiometry(reference, reaction) * rate)
        return {sid: sp.Add(*parts) for sid, parts in terms.items()}

    def _stoichiometry(self, reference: Any, reaction: Any) -> sp.Expr:
        sid = reference.getId() if reference.isSetId() else ""
        if sid and sid in self.initial_assignments:
            return self.convert(self.initial_assignments[sid], "init", f"initial assignment for {sid!r}")
        if self.level >= 3 and not reference.isSetStoichiometry():
            raise ModelError(
                f"the stoichiometry of species {reference.getSpecies()!r} in reaction {reaction.getId()!r} is not set",
                name=reaction.getId(),
            )
        value = _exact_real(reference.getStoichiometry(), f"reaction {reaction.getId()!r}")
        if self.level == 1 and reference.getDenominator() != 1:  # SBML Level 1: stoichiometry/denominator
            value = value / reference.getDenominator()
        return value

    def _amount_rate(self, species: Any, amount_rate: sp.Expr) -> sp.Expr:
        """``dn/dt`` times the species' conversion factor (or the model's), if any (section 4.6)."""
        factor_id = species.getConversionFactor() if species.isSetConversionFactor() else ""
        if not factor_id and self.level >= 3 and self.m.isSetConversionFactor():
            factor_id = self.m.getConversionFactor()
        if factor_id:
            return self.resolve(factor_id, "dyn") * amount_rate
        return amount_rate

    def _species_rhs(self, species: Any, amount_rate: sp.Expr | None) -> sp.Expr:
        """``d/dt`` of a species' value in a compartment of constant size: ``dn/dt``, or ``(dn/dt)/V``."""
        if amount_rate is None:  # boundary or constant species, or untouched: its value does not change
            return sp.S.Zero
        amount_rate = self._amount_rate(species, amount_rate)
        if self.species_quantity[species.getId()] == "amount":
            return amount_rate
        return amount_rate / self.resolve(species.getCompartment(), "dyn")

    def _in_varying_compartment(self, species: Any) -> bool:
        return (
            self.species_quantity[species.getId()] == "concentration"
            and self._compartment_varies(species.getCompartment())
        )

    def _varying_concentration_rhs(
        self, species: Any, amount_rate: sp.Expr | None, known: Mapping[sp.Symbol, sp.Expr]
    ) -> sp.Expr:
        """``d[S]/dt`` for ``[S] = n/V`` with ``V`` changing: ``(dn/dt)/V - [S] (dV/dt)/V`` (sections 4.6, 4.11).

        A boundary or constant species without rules keeps its amount, so its concentration follows ``V`` (as the
        SBML Test Suite's cases 01117 and 01118 specify).
        """
        sid, cid = species.getId(), species.getCompartment()
        size = self.resolve(cid, "dyn")
        rate = sp.S.Zero if amount_rate is None else self._amount_rate(species, amount_rate)
        if self.kind[cid] == "state":
            size_rate = known[sp.Symbol(self.names[cid], real=True)]
        else:  # an assignment rule: the total time derivative of its expression
            size_rate = sp.diff(size, self.time)
            for symbol in size.free_symbols:
                if symbol == self.time or symbol.name not in {self.names.get(k) for k, v in self.kind.items() if v == "state"}:
                    continue
                if symbol not in known:
                    raise ModelError(
                        f"the size of compartment {cid!r} depends on {symbol.name!r}, whose concentration depends on "
                        "that size: not supported",
                        name=cid,
                    )
                size_rate += sp.diff(size, symbol) * known[symbol]
        return rate / size - sp.Symbol(self.names[sid], real=True) * size_rate / size

    def _compartment_varies(self, cid: str) -> bool:
        return self.kind.get(cid) in ("state", "assigned")

    def _description(self, species: Mapping[str, tuple[str, str, str]]) -> str:
        lines = [f"Imported from SBML Level {self.level} Version {self.document.getVersion()} ({Path(self.source).name})."]
        notes = self.m.getName()
        if notes:
            lines[0] = f"{notes}. " + lines[0]
        if species:
            parts = [f"{sid} ({quantity}, {role})" for sid, (role, quantity, _) in species.items()]
            lines.append("Species values: " + ", ".join(parts) + ".")
        if self.renamed:
            lines.append("Renamed: " + ", ".join(f"{k} -> {v}" for k, v in self.renamed.items()) + ".")
        local = {k: v for k, v in self.names.items() if "." in k}
        if local:
            lines.append("Local parameters: " + ", ".join(f"{k} -> {v}" for k, v in local.items()) + ".")
        if self.time_name != "t":
            lines.append(f"Time is {self.time_name!r}.")
        return " ".join(lines)

    # -- values of identifiers --------------------------------------------------------------------------
    def resolve(self, sid: str, mode: str) -> sp.Expr:
        """The value of SBML identifier ``sid``: at time t (``"dyn"``) or at t = 0 in the parameters (``"init"``)."""
        key = (sid, mode)
        if key in self.memo:
            return self.memo[key]
        if key in self.resolving:
            cycle = " -> ".join(s for s, _ in self.resolving[self.resolving.index(key):]) + f" -> {sid}"
            raise ModelError(f"circular definition: {cycle}", name=sid)
        self.resolving.append(key)
        try:
            value = self._resolve(sid, mode)
        finally:
            self.resolving.pop()
        self.memo[key] = value
        return value

    def _resolve(self, sid: str, mode: str) -> sp.Expr:
        kind = self.kind.get(sid)
        if kind is None:
            raise ModelError(f"unknown identifier {sid!r} in mathematics", name=sid)
        if kind == "parameter":
            return sp.Symbol(self.names[sid], real=True)
        if kind == "undefined":
            raise ModelError(f"{sid!r} is used but has no value and nothing sets it (no initial assignment or rule)", name=sid)
        if kind == "assigned":
            return self.convert(self.assignment_rules[sid], mode, f"assignment rule for {sid!r}")
        if kind == "derived":
            return self.convert(self.initial_assignments[sid], "init", f"initial assignment for {sid!r}")
        if kind == "reaction":
            reaction = self.m.getReaction(sid)
            return self.convert(
                reaction.getKineticLaw().getMath(), mode, f"kinetic law of reaction {sid!r}", self.local_scopes.get(sid, {})
            )
        if kind == "stoichiometry":
            reference = self.m.getElementBySId(sid)
            reaction = reference.getParentSBMLObject().getParentSBMLObject()
            return self._stoichiometry(reference, reaction)
        # a state
        if mode == "dyn":
            return sp.Symbol(self.names[sid], real=True)
        if sid in self.initial_assignments:
            return self.convert(self.initial_assignments[sid], "init", f"initial assignment for {sid!r}")
        element = self.m.getElementBySId(sid)
        if element.getTypeCode() == self.sb.SBML_SPECIES:
            return self._species_initial(element)
        value = self._attribute_value(
            "compartment" if element.getTypeCode() == self.sb.SBML_COMPARTMENT else "parameter", element
        )
        if value is None:
            raise ModelError(f"{sid!r} has no initial value and no initial assignment", name=sid)
        return _exact_real(value, f"the value of {sid!r}")

    def _species_initial(self, species: Any) -> sp.Expr:
        sid = species.getId()
        size = None
        if species.isSetInitialAmount():
            amount = _exact_real(species.getInitialAmount(), f"the initial amount of {sid!r}")
            if self.species_quantity[sid] == "amount":
                return amount
            size = self.resolve(species.getCompartment(), "init")
            return amount / size
        if species.isSetInitialConcentration():
            concentration = _exact_real(species.getInitialConcentration(), f"the initial concentration of {sid!r}")
            if self.species_quantity[sid] == "concentration":
                return concentration
            size = self.resolve(species.getCompartment(), "init")
            return concentration * size
        raise ModelError(f"species {sid!r} has no initial amount or concentration and nothing sets it", name=sid)

    # -- MathML ------------------------------------------------------------------------------------------
    def convert(self, node: Any, mode: str, where: str, scope: Mapping[str, sp.Expr] | None = None) -> sp.Expr:
        return _as_number(self._convert(node, mode, where, dict(scope or {})))

    def _convert(self, node: Any, mode: str, where: str, scope: dict[str, sp.Expr]) -> Any:
        sb = self.sb
        kind = node.getType()
        children = [node.getChild(i) for i in range(node.getNumChildren())]

        def args(boolean: bool = False) -> list[Any]:
            values = [self._convert(c, mode, where, scope) for c in children]
            values = [_as_condition(v) if boolean else _as_number(v) for v in values]
            for value in values:
                is_bool = _is_condition(value)
                if is_bool != boolean:
                    raise ModelError(
                        f"{where}: {'a number' if boolean else 'a condition'} where "
                        f"{'a condition' if boolean else 'a number'} is expected in {_node_name(node)!r}"
                    )
            return values

        def arity(low: int, high: int | None = None) -> None:
            n = len(children)
            if n < low or (high is not None and n > high):
                raise ModelError(f"{where}: {_node_name(node)!r} with {n} arguments")

        if kind == sb.AST_INTEGER:
            return sp.Integer(node.getInteger())
        if kind in (sb.AST_REAL, sb.AST_REAL_E):
            return _exact_real(node.getReal(), where)
        if kind == sb.AST_RATIONAL:
            return sp.Rational(node.getNumerator(), node.getDenominator())
        if kind == sb.AST_NAME:
            name = node.getName()
            if name in scope:
                return scope[name]
            return self.resolve(name, mode)
        if kind == sb.AST_NAME_TIME:
            return self.time if mode == "dyn" else sp.S.Zero
        if kind == sb.AST_NAME_AVOGADRO:
            return _exact_real(AVOGADRO, where)
        if kind == sb.AST_CONSTANT_PI:
            return sp.pi
        if kind == sb.AST_CONSTANT_E:
            return sp.E
        if kind == sb.AST_CONSTANT_TRUE:
            return sp.true
        if kind == sb.AST_CONSTANT_FALSE:
            return sp.false
        if kind in (sb.AST_PLUS, sb.AST_TIMES):
            # libsbml may hold an n-ary sum or product as nested binary ones: one SymPy Add/Mul of all the
            # terms, as the model language builds it (SymPy would distribute a number over a two-term sum).
            children = _flatten(node, kind)
            values = args()
            return sp.Add(*values) if kind == sb.AST_PLUS else sp.Mul(*values)
        if kind == sb.AST_MINUS:
            arity(1, 2)
            values = args()
            return -values[0] if len(values) == 1 else values[0] - values[1]
        if kind == sb.AST_DIVIDE:
            arity(2, 2)
            a, b = args()
            if b.is_number and b.is_zero:
                raise ModelError(f"{where}: division by zero")
            return a / b
        if kind in (sb.AST_POWER, sb.AST_FUNCTION_POWER):
            arity(2, 2)
            return self._power(*args(), where)
        if kind == sb.AST_FUNCTION_ROOT:
            arity(1, 2)
            values = args()
            degree = values[0] if len(values) == 2 else sp.Integer(2)
            return self._power(values[-1], 1 / degree, where)
        if kind == sb.AST_FUNCTION_EXP:
            arity(1, 1)
            return sp.exp(*args())
        if kind == sb.AST_FUNCTION_LN:
            arity(1, 1)
            return sp.log(*args())
        if kind == sb.AST_FUNCTION_LOG:
            arity(1, 2)
            values = args()
            base = values[0] if len(values) == 2 else sp.Integer(10)
            return sp.log(values[-1]) / sp.log(base)
        if kind == sb.AST_FUNCTION_ABS:
            arity(1, 1)
            return sp.Abs(*args())
        elementary, relations = _libsbml_tables()
        if kind in elementary:
            arity(1, 1)
            return elementary[kind](args()[0])
        if kind in (sb.AST_FUNCTION_FLOOR, sb.AST_FUNCTION_CEILING, sb.AST_FUNCTION_FACTORIAL,
                    sb.AST_FUNCTION_ARCSIN, sb.AST_FUNCTION_ARCCOS, sb.AST_FUNCTION_ARCTAN,
                    sb.AST_FUNCTION_ARCSEC, sb.AST_FUNCTION_ARCCSC, sb.AST_FUNCTION_ARCCOT,
                    sb.AST_FUNCTION_QUOTIENT, sb.AST_FUNCTION_REM):
            return self._constant_only(kind, args(), node, where)
        if kind in (sb.AST_FUNCTION_MIN, sb.AST_FUNCTION_MAX):
            arity(1)
            return (sp.Min if kind == sb.AST_FUNCTION_MIN else sp.Max)(*args())
        if kind == sb.AST_FUNCTION_PIECEWISE:
            return self._piecewise(children, mode, where, scope)
        if kind in relations:
            arity(2)
            values = args()
            relation = relations[kind]
            if kind == sb.AST_RELATIONAL_NEQ:
                arity(2, 2)
            return sp.And(*(relation(a, b) for a, b in zip(values, values[1:])))
        if kind == sb.AST_LOGICAL_AND:
            return sp.And(*args(boolean=True))
        if kind == sb.AST_LOGICAL_OR:
            return sp.Or(*args(boolean=True))
        if kind == sb.AST_LOGICAL_NOT:
            arity(1, 1)
            return sp.Not(*args(boolean=True))
        if kind == sb.AST_LOGICAL_XOR:
            values = args(boolean=True)
            result: Any = sp.false
            for value in values:  # written with and/or/not, which code generation knows
                result = sp.Or(sp.And(result, sp.Not(value)), sp.And(sp.Not(result), value))
            return result
        if kind == sb.AST_LOGICAL_IMPLIES:
            arity(2, 2)
            a, b = args(boolean=True)
            return sp.Or(sp.Not(a), b)
        if kind == sb.AST_FUNCTION:
            return self._call(node, children, mode, where, scope)
        if kind == sb.AST_FUNCTION_DELAY:
            raise ModelError(f"{where}: the delay csymbol is not supported (symsens models are ODEs without delays)")
        if kind == sb.AST_FUNCTION_RATE_OF:
            raise ModelError(f"{where}: the rateOf csymbol is not supported")
        if kind == sb.AST_LAMBDA:
            raise ModelError(f"{where}: a lambda outside a function definition")
        raise ModelError(f"{where}: the MathML element {_node_name(node)!r} is not supported")

    def _power(self, base: sp.Expr, exponent: sp.Expr, where: str) -> sp.Expr:
        if isinstance(exponent, sp.Rational) and not exponent.is_Integer and exponent.q > _MAX_EXACT_ROOT:
            exponent = sp.Float(float(exponent))  # the model language's rule: long fractions become doubles
        if isinstance(exponent, sp.Rational) and abs(exponent) > 10_000:
            raise ModelError(f"{where}: the exponent {exponent} is too large")
        if base.is_number and base.is_zero and exponent.is_number and exponent.is_negative:
            raise ModelError(f"{where}: division by zero (0 to a negative power)")
        return sp.Pow(base, exponent)

    def _constant_only(self, kind: int, values: list[sp.Expr], node: Any, where: str) -> sp.Expr:
        """floor, ceiling, factorial, arcsin & co, quotient, rem: only of numbers (the model language lacks them)."""
        sb = self.sb
        name = _node_name(node)
        if not all(v.is_number for v in values):
            raise ModelError(
                f"{where}: the function {name!r} of a non-constant argument is not supported "
                "(the model language of symsens has no such function)"
            )
        if kind == sb.AST_FUNCTION_FACTORIAL:
            (value,) = values
            if not (value.is_integer and value >= 0 and value <= 170):
                raise ModelError(f"{where}: factorial of {value}, which is not an integer in 0..170")
            return sp.factorial(value)
        if kind == sb.AST_FUNCTION_FLOOR:
            return sp.floor(values[0])
        if kind == sb.AST_FUNCTION_CEILING:
            return sp.ceiling(values[0])
        if kind in (sb.AST_FUNCTION_QUOTIENT, sb.AST_FUNCTION_REM):
            a, b = values
            if b.is_zero:
                raise ModelError(f"{where}: division by zero in {name!r}")
            quotient = sp.Integer(int(sp.sign(a / b)) * int(sp.floor(abs(a / b))))  # truncating division
            return quotient if kind == sb.AST_FUNCTION_QUOTIENT else a - b * quotient
        inverse = {
            sb.AST_FUNCTION_ARCSIN: sp.asin, sb.AST_FUNCTION_ARCCOS: sp.acos, sb.AST_FUNCTION_ARCTAN: sp.atan,
            sb.AST_FUNCTION_ARCSEC: sp.asec, sb.AST_FUNCTION_ARCCSC: sp.acsc, sb.AST_FUNCTION_ARCCOT: sp.acot,
        }[kind]
        value = inverse(values[0]).evalf(30)
        if not value.is_real:
            raise ModelError(f"{where}: {name}({values[0]}) is not a real number")
        return sp.Float(float(value))

    def _piecewise(self, children: list[Any], mode: str, where: str, scope: dict[str, sp.Expr]) -> sp.Expr:
        pieces = []
        for i in range(0, len(children) - 1, 2):
            value = self._convert(children[i], mode, where, scope)
            condition = _as_condition(self._convert(children[i + 1], mode, where, scope))
            pieces.append((value, condition))
        if len(children) % 2 == 1:
            pieces.append((self._convert(children[-1], mode, where, scope), sp.true))
        elif pieces:
            # No otherwise: SBML leaves the value undefined where no condition holds; the last piece stands in.
            pieces[-1] = (pieces[-1][0], sp.true)
        else:
            raise ModelError(f"{where}: an empty piecewise")
        if all(_is_condition(value) for value, _ in pieces):  # a condition chosen by conditions
            result = pieces[-1][0]
            for value, condition in reversed(pieces[:-1]):
                result = sp.Or(sp.And(condition, value), sp.And(sp.Not(condition), result))
            return result
        pieces = [(_as_number(value), condition) for value, condition in pieces]
        return sp.Piecewise(*pieces)

    def _call(self, node: Any, children: list[Any], mode: str, where: str, scope: dict[str, sp.Expr]) -> sp.Expr:
        fid = node.getName()
        if fid not in self.functions:
            raise ModelError(f"{where}: call of the unknown (or empty) function {fid!r}", name=fid)
        arguments, body = self.functions[fid]
        if len(children) != len(arguments):
            raise ModelError(
                f"{where}: function {fid!r} takes {len(arguments)} arguments, called with {len(children)}", name=fid
            )
        values = [self._convert(c, mode, where, scope) for c in children]
        if fid in self.exprel_functions:
            return exprel(values[0])
        if sum(1 for entry in self.resolving if entry == ("function", fid)) > 0:
            raise ModelError(f"function {fid!r} calls itself", name=fid)
        self.resolving.append(("function", fid))
        try:
            return self._convert(body, mode, f"function {fid!r} (called from {where})", dict(zip(arguments, values)))
        finally:
            self.resolving.pop()


def libsbml_type(libsbml: Any, name: str) -> int:
    return int(getattr(libsbml, name))


def _is_condition(value: Any) -> bool:
    return isinstance(value, sp.logic.boolalg.Boolean) and not isinstance(value, sp.Expr)


def _as_number(value: Any) -> Any:
    """A condition where a number is expected is 1 when true and 0 when false (SBML L3V2, section 3.4)."""
    if _is_condition(value):
        if value is sp.true or value is sp.false:
            return sp.S.One if value is sp.true else sp.S.Zero
        return sp.Piecewise((sp.S.One, value), (sp.S.Zero, True))
    return value


def _flatten(node: Any, kind: int) -> list[Any]:
    """The operands of nested ``plus`` (or ``times``) nodes, left to right."""
    operands: list[Any] = []
    for index in range(node.getNumChildren()):
        child = node.getChild(index)
        if child.getType() == kind:
            operands.extend(_flatten(child, kind))
        else:
            operands.append(child)
    return operands


def _as_condition(value: Any) -> Any:
    """A number where a condition is expected is true when it is not 0 (SBML L3V2, section 3.4)."""
    if _is_condition(value):
        return value
    if value.is_number:
        return sp.false if value.is_zero else sp.true
    return sp.Ne(value, 0)


def _node_name(node: Any) -> str:
    name = node.getName()
    if name:
        return str(name)
    return f"ASTNode type {node.getType()}"


@functools.lru_cache(maxsize=1)
def _libsbml_tables() -> tuple[dict[int, Callable[[Any], sp.Expr]], dict[int, Callable[[Any, Any], Any]]]:
    """libsbml's node types of the one-argument functions and of the relations (built on first use: importing
    libsbml takes a noticeable time, and ``symsens.model`` must not pay it unless SBML is read or written)."""
    sb = _libsbml()

    def sqrt1(x: sp.Expr) -> sp.Expr:
        return sp.sqrt(x)

    elementary: dict[int, Callable[[Any], sp.Expr]] = {
        sb.AST_FUNCTION_SIN: sp.sin,
        sb.AST_FUNCTION_COS: sp.cos,
        sb.AST_FUNCTION_TAN: sp.tan,
        sb.AST_FUNCTION_SEC: lambda x: 1 / sp.cos(x),
        sb.AST_FUNCTION_CSC: lambda x: 1 / sp.sin(x),
        sb.AST_FUNCTION_COT: lambda x: 1 / sp.tan(x),
        sb.AST_FUNCTION_SINH: sp.sinh,
        sb.AST_FUNCTION_COSH: sp.cosh,
        sb.AST_FUNCTION_TANH: sp.tanh,
        sb.AST_FUNCTION_SECH: lambda x: 1 / sp.cosh(x),
        sb.AST_FUNCTION_CSCH: lambda x: 1 / sp.sinh(x),
        sb.AST_FUNCTION_COTH: lambda x: 1 / sp.tanh(x),
        # inverse hyperbolic functions in logarithms (real where SBML defines them)
        sb.AST_FUNCTION_ARCSINH: lambda x: sp.log(x + sqrt1(x**2 + 1)),
        sb.AST_FUNCTION_ARCCOSH: lambda x: sp.log(x + sqrt1(x - 1) * sqrt1(x + 1)),
        sb.AST_FUNCTION_ARCTANH: lambda x: sp.log((1 + x) / (1 - x)) / 2,
        sb.AST_FUNCTION_ARCSECH: lambda x: sp.log((1 + sqrt1(1 - x**2)) / x),
        sb.AST_FUNCTION_ARCCSCH: lambda x: sp.log(1 / x + sqrt1(1 / x**2 + 1)),
        sb.AST_FUNCTION_ARCCOTH: lambda x: sp.log((x + 1) / (x - 1)) / 2,
    }
    relations: dict[int, Callable[[Any, Any], Any]] = {
        sb.AST_RELATIONAL_EQ: sp.Eq,
        sb.AST_RELATIONAL_NEQ: sp.Ne,
        sb.AST_RELATIONAL_LT: sp.Lt,
        sb.AST_RELATIONAL_LEQ: sp.Le,
        sb.AST_RELATIONAL_GT: sp.Gt,
        sb.AST_RELATIONAL_GEQ: sp.Ge,
    }
    return elementary, relations




# --------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------

_EXPREL_ID = "exprel"
_LONG = 2**62


def to_sbml(model: Model) -> str:
    """``model`` as an SBML Level 3 Version 2 core document (a string).

    - each state is a non-constant parameter (section 4.7) whose equation is a rate rule (4.9).  A state
      has no compartment or units, so a species would need an invented compartment, which SBML readers
      (this import included) take as one more parameter; a rate-rule parameter is simulated the same way by
      every SBML tool and comes back as exactly the same state;
    - each parameter is a constant parameter with its nominal value (4.7);
    - a numeric initial condition is the state parameter's ``value``; one that depends on parameters (or is
      not a decimal number exactly) is an initial assignment (4.8);
    - each output is a non-constant parameter set by an assignment rule (4.9); intermediates are already
      substituted in the equations and are not written;
    - ``exprel`` is written as the function definition (4.3) ``exprel(x) = piecewise(1, x == 0,
      x/(exp(x) - 1))``, which the import recognises and maps back to symsens's ``exprel``;
      ``Heaviside`` and ``sign`` become piecewise expressions; the time is the csymbol time.

    Raises
    ------
    ModelError
        For a name that is not an SBML identifier (SBML ids are ASCII letters, digits and ``_``) or an
        expression with no MathML counterpart.
    """
    libsbml = _libsbml()
    document = libsbml.SBMLDocument(3, 2)
    sbml_model = document.createModel()
    sbml_model.setId(_sid_for_model(model.name))
    sbml_model.setName(model.name)
    if model.description:
        from xml.sax.saxutils import escape

        sbml_model.setNotes(f'<body xmlns="http://www.w3.org/1999/xhtml"><p>{escape(model.description)}</p></body>')
    names = [*model.state_names, *model.parameter_names, *model.output_names]
    for name in names:
        if not _is_sid(name):
            raise ModelError(f"the name {name!r} is not an SBML identifier (ASCII letters, digits and _)", name=name)
    writer = _MathWriter(libsbml, model)
    all_expressions = [*model.rhs, *model.initial_conditions, *(e for _, e in model.outputs)]
    if any(e.has(exprel) for e in all_expressions):
        if _EXPREL_ID in names:
            raise ModelError(f"the name {_EXPREL_ID!r} is taken; it is needed for the exprel function definition")
        definition = sbml_model.createFunctionDefinition()
        definition.setId(_EXPREL_ID)
        definition.setMath(writer.exprel_lambda())

    for name, value in zip(model.parameter_names, model.parameter_values):
        parameter = sbml_model.createParameter()
        parameter.setId(name)
        parameter.setValue(float(value))
        parameter.setConstant(True)
    for state, expr, ic in zip(model.states, model.rhs, model.initial_conditions):
        parameter = sbml_model.createParameter()
        parameter.setId(state.name)
        parameter.setConstant(False)
        if ic.is_number and _exactly_decimal(ic):
            parameter.setValue(float(ic))
        else:
            assignment = sbml_model.createInitialAssignment()
            assignment.setSymbol(state.name)
            assignment.setMath(writer.ast(ic))
        rule = sbml_model.createRateRule()
        rule.setVariable(state.name)
        rule.setMath(writer.ast(expr))
    for name, expr in model.outputs:
        parameter = sbml_model.createParameter()
        parameter.setId(name)
        parameter.setConstant(False)
        rule = sbml_model.createAssignmentRule()
        rule.setVariable(name)
        rule.setMath(writer.ast(expr))
    return libsbml.writeSBMLToString(document)


def _is_sid(name: str) -> bool:
    return bool(name) and name.isascii() and name.isidentifier()


def _sid_for_model(name: str) -> str:
    text = "".join(c if (c.isascii() and (c.isalnum() or c == "_")) else "_" for c in name) or "model"
    return text if not text[0].isdigit() else "_" + text


def _exactly_decimal(number: sp.Expr) -> bool:
    try:
        value = float(number)
    except (TypeError, ValueError):
        return False
    return math.isfinite(value) and sp.Rational(Fraction(repr(value))) == number


class _MathWriter:
    """SymPy -> libsbml ASTNode, node by node (no formula strings)."""

    def __init__(self, libsbml: Any, model: Model) -> None:
        self.sb = libsbml
        self.model = model

    def node(self, kind: int, *children: Any) -> Any:
        result = self.sb.ASTNode(kind)
        for child in children:
            result.addChild(child)
        return result

    def number(self, value: sp.Expr) -> Any:
        sb = self.sb
        if isinstance(value, sp.Integer) and abs(int(value)) < _LONG:
            result = sb.ASTNode(sb.AST_INTEGER)
            result.setValue(int(value))
            return result
        if isinstance(value, sp.Rational) and abs(value.p) < _LONG and value.q < _LONG:
            result = sb.ASTNode(sb.AST_RATIONAL)
            result.setValue(int(value.p), int(value.q))
            return result
        result = sb.ASTNode(sb.AST_REAL)
        result.setValue(float(value))
        return result

    def exprel_lambda(self) -> Any:
        sb = self.sb
        bvar = sb.ASTNode(sb.AST_NAME)
        bvar.setName("x")
        x = sp.Symbol("x", real=True)
        body = self.ast(sp.Piecewise((sp.S.One, sp.Eq(x, 0)), (x / (sp.exp(x) - 1), True)), bound={"x"})
        return self.node(sb.AST_LAMBDA, bvar, body)

    def ast(self, expr: Any, bound: frozenset[str] | set[str] = frozenset()) -> Any:
        sb = self.sb
        if expr is sp.true or expr is sp.false:
            return sb.ASTNode(sb.AST_CONSTANT_TRUE if expr is sp.true else sb.AST_CONSTANT_FALSE)
        if isinstance(expr, sp.Symbol):
            if expr == self.model.time and expr.name not in bound:
                result = sb.ASTNode(sb.AST_NAME_TIME)
                result.setName("time")
                return result
            result = sb.ASTNode(sb.AST_NAME)
            result.setName(expr.name)
            return result
        if expr is sp.pi:
            return sb.ASTNode(sb.AST_CONSTANT_PI)
        if expr is sp.E:
            return sb.ASTNode(sb.AST_CONSTANT_E)
        if isinstance(expr, sp.Rational):
            return self.number(expr)
        if isinstance(expr, sp.Float):
            result = sb.ASTNode(sb.AST_REAL)
            result.setValue(float(expr))
            return result
        if isinstance(expr, sp.Add):
            return self.node(sb.AST_PLUS, *(self.ast(a, bound) for a in expr.args))
        if isinstance(expr, sp.Mul):
            return self.node(sb.AST_TIMES, *(self.ast(a, bound) for a in expr.args))
        if isinstance(expr, sp.Pow):
            base, exponent = expr.args
            if exponent == -1:
                return self.node(sb.AST_DIVIDE, self.number(sp.S.One), self.ast(base, bound))
            if exponent is sp.S.Half:
                return self.node(sb.AST_FUNCTION_ROOT, self.ast(base, bound))
            return self.node(sb.AST_POWER, self.ast(base, bound), self.ast(exponent, bound))
        if isinstance(expr, sp.exp):
            return self.node(sb.AST_FUNCTION_EXP, self.ast(expr.args[0], bound))
        if isinstance(expr, sp.log):
            return self.node(sb.AST_FUNCTION_LN, self.ast(expr.args[0], bound))
        simple = {
            sp.sin: sb.AST_FUNCTION_SIN, sp.cos: sb.AST_FUNCTION_COS, sp.tan: sb.AST_FUNCTION_TAN,
            sp.sinh: sb.AST_FUNCTION_SINH, sp.cosh: sb.AST_FUNCTION_COSH, sp.tanh: sb.AST_FUNCTION_TANH,
            sp.Abs: sb.AST_FUNCTION_ABS,
        }
        for function, kind in simple.items():
            if isinstance(expr, function):
                return self.node(kind, self.ast(expr.args[0], bound))
        if isinstance(expr, (sp.Min, sp.Max)):
            kind = sb.AST_FUNCTION_MIN if isinstance(expr, sp.Min) else sb.AST_FUNCTION_MAX
            return self.node(kind, *(self.ast(a, bound) for a in expr.args))
        if isinstance(expr, exprel):
            call = self.node(sb.AST_FUNCTION, self.ast(expr.args[0], bound))
            call.setName(_EXPREL_ID)
            return call
        if isinstance(expr, exprel_derivative):
            raise ModelError("exprel_derivative has no SBML counterpart (it appears only in derivatives)")
        if isinstance(expr, sp.Heaviside):
            x = expr.args[0]
            h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
            return self.ast(sp.Piecewise((0, x < 0), (1, x > 0), (h0, True)), bound)
        if isinstance(expr, sp.sign):
            x = expr.args[0]
            return self.ast(sp.Piecewise((-1, x < 0), (1, x > 0), (0, True)), bound)
        if isinstance(expr, sp.Piecewise):
            children = []
            for piece in expr.args:
                children.append(self.ast(piece.expr, bound))
                if piece.cond is not sp.true:
                    children.append(self.ast(piece.cond, bound))
            return self.node(sb.AST_FUNCTION_PIECEWISE, *children)
        relations = {
            "==": sb.AST_RELATIONAL_EQ, "!=": sb.AST_RELATIONAL_NEQ, "<": sb.AST_RELATIONAL_LT,
            "<=": sb.AST_RELATIONAL_LEQ, ">": sb.AST_RELATIONAL_GT, ">=": sb.AST_RELATIONAL_GEQ,
        }
        if isinstance(expr, sp.core.relational.Relational) and expr.rel_op in relations:
            return self.node(relations[expr.rel_op], self.ast(expr.lhs, bound), self.ast(expr.rhs, bound))
        if isinstance(expr, sp.And):
            return self.node(sb.AST_LOGICAL_AND, *(self.ast(a, bound) for a in expr.args))
        if isinstance(expr, sp.Or):
            return self.node(sb.AST_LOGICAL_OR, *(self.ast(a, bound) for a in expr.args))
        if isinstance(expr, sp.Not):
            return self.node(sb.AST_LOGICAL_NOT, self.ast(expr.args[0], bound))
        raise ModelError(f"{type(expr).__name__} has no SBML (MathML) counterpart: {expr}")
