"""SBML import and export: every supported construct against a closed form or an equivalent model file,
every unsupported element refused by id, malformed files named, and the round trip of every built-in model.

The documents are written here by hand (small SBML Level 3 Version 2 files); nothing is downloaded.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import libsbml  # the test extra installs python-libsbml: these tests run, never skip
import numpy as np
import pytest
import sympy as sp

import symsens
from symsens import ModelError
from symsens.model import exprel, loads_model, to_sbml
from symsens.model._sbml import AVOGADRO, read_sbml

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">\n'
    '<model id="{id}">\n'
)
TAIL = "</model>\n</sbml>\n"
MATHML = '<math xmlns="http://www.w3.org/1998/Math/MathML">{}</math>'


def math_(body: str) -> str:
    return MATHML.format(body)


def document(body: str, model_id: str = "m") -> str:
    return HEAD.format(id=model_id) + body + TAIL


def write(tmp_path: Path, body: str, name: str = "model.xml", model_id: str = "m") -> Path:
    path = tmp_path / name
    path.write_text(document(body, model_id))
    return path


def compartments(*items: tuple[str, float]) -> str:
    return (
        "<listOfCompartments>"
        + "".join(f'<compartment id="{c}" spatialDimensions="3" size="{v}" constant="true"/>' for c, v in items)
        + "</listOfCompartments>"
    )


def parameters(*items: tuple[str, float], constant: bool = True) -> str:
    flag = "true" if constant else "false"
    return (
        "<listOfParameters>"
        + "".join(f'<parameter id="{p}" value="{v}" constant="{flag}"/>' for p, v in items)
        + "</listOfParameters>"
    )


def species(sid: str, compartment: str = "c", *, amount: float | None = None, concentration: float | None = None,
            only_substance: bool = False, boundary: bool = False, constant: bool = False) -> str:
    initial = ""
    if amount is not None:
        initial = f' initialAmount="{amount}"'
    if concentration is not None:
        initial = f' initialConcentration="{concentration}"'
    return (
        f'<species id="{sid}" compartment="{compartment}"{initial} hasOnlySubstanceUnits="{str(only_substance).lower()}"'
        f' boundaryCondition="{str(boundary).lower()}" constant="{str(constant).lower()}"/>'
    )


def reaction(rid: str, reactants: list[tuple[str, float]], products: list[tuple[str, float]], law: str,
             local: list[tuple[str, float]] = (), extra: str = "") -> str:
    def refs(tag: str, items: list[tuple[str, float]]) -> str:
        if not items:
            return ""
        inner = "".join(f'<speciesReference species="{s}" stoichiometry="{n}" constant="true"/>' for s, n in items)
        return f"<listOf{tag}>{inner}</listOf{tag}>"

    locals_ = ""
    if local:
        locals_ = "<listOfLocalParameters>" + "".join(
            f'<localParameter id="{p}" value="{v}"/>' for p, v in local
        ) + "</listOfLocalParameters>"
    return (
        f'<reaction id="{rid}" reversible="false"{extra}>'
        + refs("Reactants", reactants)
        + refs("Products", products)
        + f"<kineticLaw>{math_(law)}{locals_}</kineticLaw></reaction>"
    )


def solve(model: symsens.Model, t1: float, points: int = 11) -> symsens.integrate.Solution:
    times = np.linspace(0.0, t1, points)
    solution = symsens.solve(model, (0.0, t1), t_eval=times, method="radau", backend="numpy", rtol=1e-11, atol=1e-13)
    assert solution.status == "success", solution.message
    return solution


def column(model: symsens.Model, solution: object, name: str) -> np.ndarray:
    return solution.y[:, model.state_names.index(name)]


# --------------------------------------------------------------------------------------------------------
# Species: amounts and concentrations in a compartment of size 2
# --------------------------------------------------------------------------------------------------------

MASS_ACTION = (
    compartments(("c", 2.0))
    + "<listOfSpecies>"
    + species("A", concentration=1.0)
    + species("B", amount=0.0, only_substance=True)
    + species("C", amount=3.0)
    + "</listOfSpecies>"
    + parameters(("k", 0.5))
    + "<listOfReactions>"
    + reaction("R", [("A", 1)], [("B", 1)], "<apply><times/><ci>k</ci><ci>A</ci><ci>c</ci></apply>")
    + "</listOfReactions>"
)


def test_concentration_and_amount_species_follow_sbml_semantics(tmp_path: Path) -> None:
    path = write(tmp_path, MASS_ACTION)
    model = symsens.load_model(path)
    assert model.state_names == ("A", "B", "C")
    assert model.nominal_parameters == {"c": 2.0, "k": 0.5}
    A, B, c, k = (model.symbol(n) for n in ("A", "B", "c", "k"))
    # d(amount of A)/dt = -k A c, so the concentration's rate divides by c; B is an amount.
    assert sp.simplify(model.rhs[0] - (-k * A)) == 0
    assert sp.simplify(model.rhs[1] - k * A * c) == 0
    assert model.rhs[2] == 0
    # C: initial amount 3 in a compartment of size 2 is the concentration 3/2.
    assert sp.simplify(model.initial_conditions[2] - 3 / c) == 0
    assert "A (concentration, state)" in model.description and "B (amount, state)" in model.description
    solution = solve(model, 4.0)
    t = solution.t
    np.testing.assert_allclose(column(model, solution, "A"), np.exp(-0.5 * t), rtol=1e-8)
    np.testing.assert_allclose(column(model, solution, "B"), 2.0 * (1 - np.exp(-0.5 * t)), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(column(model, solution, "C"), 1.5, rtol=1e-12)


def test_same_model_as_the_equivalent_model_file(tmp_path: Path) -> None:
    sbml_model = symsens.load_model(write(tmp_path, MASS_ACTION))
    toml_model = loads_model(
        """
        [model]
        name = "mass-action"
        [parameters]
        c = 2.0
        k = 0.5
        [states]
        A = 1.0
        B = 0.0
        C = "3/c"
        [equations]
        A = "-k*A*c/c"
        B = "k*A*c"
        C = "0"
        """
    )
    for a, b in zip(sbml_model.rhs, toml_model.rhs):
        assert sp.simplify(a - b) == 0
    one, two = solve(sbml_model, 3.0), solve(toml_model, 3.0)
    np.testing.assert_allclose(one.y, two.y, rtol=1e-9, atol=1e-12)


def test_boundary_and_constant_species_do_not_change(tmp_path: Path) -> None:
    body = (
        compartments(("c", 4.0))
        + "<listOfSpecies>"
        + species("X", concentration=2.0, boundary=True)
        + species("Y", concentration=5.0, constant=True, boundary=True)
        + species("A", concentration=0.0)
        + "</listOfSpecies>"
        + parameters(("k", 3.0))
        + "<listOfReactions>"
        + reaction("R", [("X", 1)], [("A", 2)], "<apply><times/><ci>k</ci><ci>X</ci></apply>")
        + "</listOfReactions>"
    )
    model = symsens.load_model(write(tmp_path, body))
    assert model.rhs[0] == 0 and model.rhs[1] == 0
    solution = solve(model, 2.0)
    # dA/dt = 2 k X / c = 2 * 3 * 2 / 4 = 3
    np.testing.assert_allclose(column(model, solution, "A"), 3.0 * solution.t, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(column(model, solution, "X"), 2.0)


def test_local_parameters_shadow_globals_and_are_renamed(tmp_path: Path) -> None:
    body = (
        compartments(("c", 1.0))
        + "<listOfSpecies>" + species("A", amount=1.0, only_substance=True) + "</listOfSpecies>"
        + parameters(("k", 5.0), ("R_k", 7.0))
        + "<listOfReactions>"
        + reaction("R", [("A", 1)], [], "<apply><times/><ci>k</ci><ci>A</ci></apply>", local=[("k", 0.25)])
        + "</listOfReactions>"
    )
    imported = read_sbml(write(tmp_path, body))
    model = imported.model
    # 'R_k' is taken by a global parameter, so the local 'k' of R becomes 'R_k_'.
    assert imported.names["R.k"] == "R_k_"
    assert model.nominal_parameters == {"c": 1.0, "k": 5.0, "R_k": 7.0, "R_k_": 0.25}
    assert model.rhs[0] == -model.symbol("R_k_") * model.symbol("A")
    assert "R.k -> R_k_" in model.description


def test_function_definitions_are_inlined_and_exprel_recognised(tmp_path: Path) -> None:
    def lambda_(bvars: list[str], body: str) -> str:
        return math_("<lambda>" + "".join(f"<bvar><ci>{b}</ci></bvar>" for b in bvars) + body + "</lambda>")

    body = (
        "<listOfFunctionDefinitions>"
        + '<functionDefinition id="f">'
        + lambda_(["x", "y"], "<apply><times/><ci>x</ci><apply><power/><ci>y</ci><cn>2</cn></apply></apply>")
        + "</functionDefinition>"
        + '<functionDefinition id="g">' + lambda_(["x"], "<apply><ci>f</ci><ci>x</ci><cn>3</cn></apply>")
        + "</functionDefinition>"
        + '<functionDefinition id="myexprel">'
        + lambda_(["z"], "<piecewise><piece><cn>1</cn><apply><eq/><ci>z</ci><cn>0</cn></apply></piece>"
                  "<otherwise><apply><divide/><ci>z</ci><apply><minus/><apply><exp/><ci>z</ci></apply><cn>1</cn>"
                  "</apply></apply></otherwise></piecewise>")
        + "</functionDefinition>"
        + "</listOfFunctionDefinitions>"
        + '<listOfParameters><parameter id="p" value="2" constant="true"/>'
        '<parameter id="y" value="0" constant="false"/><parameter id="w" value="0" constant="false"/></listOfParameters>'
        + "<listOfRules>"
        + '<rateRule variable="y">' + math_("<apply><ci>g</ci><ci>p</ci></apply>") + "</rateRule>"
        + '<rateRule variable="w">' + math_("<apply><ci>myexprel</ci><ci>y</ci></apply>") + "</rateRule>"
        + "</listOfRules>"
    )
    model = symsens.load_model(write(tmp_path, body))
    p, y = model.symbol("p"), model.symbol("y")
    assert model.rhs[model.state_names.index("y")] == 9 * p
    assert model.rhs[model.state_names.index("w")] == exprel(y)


def test_assignment_rules_rate_rules_and_initial_assignments(tmp_path: Path) -> None:
    body = (
        compartments(("c", 1.0))
        + "<listOfSpecies>" + species("S", concentration=0.0) + species("A", amount=0.0, only_substance=True)
        + "</listOfSpecies>"
        + '<listOfParameters><parameter id="k" value="2" constant="true"/>'
        '<parameter id="p" value="0" constant="false"/>'
        '<parameter id="q" constant="true"/></listOfParameters>'
        + "<listOfInitialAssignments>"
        + '<initialAssignment symbol="q">' + math_("<apply><times/><cn>3</cn><ci>k</ci></apply>") + "</initialAssignment>"
        + '<initialAssignment symbol="A">' + math_("<apply><plus/><ci>q</ci><cn>1</cn></apply>") + "</initialAssignment>"
        + "</listOfInitialAssignments>"
        + "<listOfRules>"
        + '<rateRule variable="p">' + math_("<ci>k</ci>") + "</rateRule>"
        + '<assignmentRule variable="S">' + math_("<apply><times/><cn>2</cn><ci>p</ci></apply>") + "</assignmentRule>"
        + "</listOfRules>"
        + "<listOfReactions>"
        + reaction("R", [], [("A", 1)], "<apply><times/><ci>q</ci><ci>S</ci></apply>")
        + "</listOfReactions>"
    )
    imported = read_sbml(write(tmp_path, body))
    model = imported.model
    assert model.state_names == ("A", "p")
    assert set(model.output_names) == {"S", "q"}
    assert imported.species["S"] == ("output", "concentration", "c")
    k, p = model.symbol("k"), model.symbol("p")
    assert model.output("q") == 3 * k
    assert model.output("S") == 2 * p
    assert sp.simplify(model.rhs[0] - 3 * k * 2 * p) == 0
    assert model.initial_conditions[0] == 3 * k + 1
    solution = solve(model, 1.0)
    # p = 2 t, S = 4 t, dA/dt = q S = 6 * 4 t, A = 7 + 12 t^2
    np.testing.assert_allclose(column(model, solution, "A"), 7 + 12 * solution.t**2, rtol=1e-9)
    np.testing.assert_allclose(solution.outputs["S"], 4 * solution.t, rtol=1e-9, atol=1e-12)


def test_piecewise_time_and_logic(tmp_path: Path) -> None:
    switch = (
        "<piecewise><piece><cn>1</cn><apply><and/><apply><lt/><csymbol encoding=\"text\" "
        "definitionURL=\"http://www.sbml.org/sbml/symbols/time\">time</csymbol><cn>1</cn></apply>"
        "<apply><not/><apply><gt/><ci>k</ci><cn>10</cn></apply></apply></apply></piece>"
        "<otherwise><cn>0</cn></otherwise></piecewise>"
    )
    body = (
        parameters(("k", 2.0))
        + '<listOfParameters><parameter id="x" value="0" constant="false"/></listOfParameters>'
        + "<listOfRules>"
        + '<rateRule variable="x">' + math_(switch) + "</rateRule>"
        + "</listOfRules>"
    ).replace("</listOfParameters><listOfParameters>", "")
    model = symsens.load_model(write(tmp_path, body))
    assert model.rhs[0].has(sp.Piecewise) and model.time in model.rhs[0].free_symbols
    solution = symsens.solve(model, (0.0, 2.0), t_eval=[0.5, 2.0], method="radau", backend="numpy",
                             rtol=1e-10, atol=1e-12, max_step=0.01)
    np.testing.assert_allclose(solution.y[:, 0], [0.5, 1.0], rtol=1e-6)


def test_mathml_functions(tmp_path: Path) -> None:
    """Each function SBML defines, checked numerically against Python's math at p = 0.6, q = 1.7."""
    p, q = 0.6, 1.7
    cases = {
        "<apply><power/><ci>q</ci><ci>p</ci></apply>": q**p,
        "<apply><root/><degree><cn>3</cn></degree><ci>q</ci></apply>": q ** (1 / 3),
        "<apply><root/><ci>q</ci></apply>": math.sqrt(q),
        "<apply><exp/><ci>p</ci></apply>": math.exp(p),
        "<apply><ln/><ci>q</ci></apply>": math.log(q),
        "<apply><log/><ci>q</ci></apply>": math.log10(q),
        "<apply><log/><logbase><cn>2</cn></logbase><ci>q</ci></apply>": math.log2(q),
        "<apply><abs/><apply><minus/><ci>p</ci></apply></apply>": p,
        "<apply><floor/><cn>2.5</cn></apply>": 2.0,
        "<apply><ceiling/><cn>2.5</cn></apply>": 3.0,
        "<apply><factorial/><cn>5</cn></apply>": 120.0,
        "<apply><sin/><ci>p</ci></apply>": math.sin(p),
        "<apply><cos/><ci>p</ci></apply>": math.cos(p),
        "<apply><tan/><ci>p</ci></apply>": math.tan(p),
        "<apply><sec/><ci>p</ci></apply>": 1 / math.cos(p),
        "<apply><csc/><ci>p</ci></apply>": 1 / math.sin(p),
        "<apply><cot/><ci>p</ci></apply>": 1 / math.tan(p),
        "<apply><sinh/><ci>p</ci></apply>": math.sinh(p),
        "<apply><cosh/><ci>p</ci></apply>": math.cosh(p),
        "<apply><tanh/><ci>p</ci></apply>": math.tanh(p),
        "<apply><sech/><ci>p</ci></apply>": 1 / math.cosh(p),
        "<apply><csch/><ci>p</ci></apply>": 1 / math.sinh(p),
        "<apply><coth/><ci>p</ci></apply>": 1 / math.tanh(p),
        "<apply><arcsinh/><ci>p</ci></apply>": math.asinh(p),
        "<apply><arccosh/><ci>q</ci></apply>": math.acosh(q),
        "<apply><arctanh/><ci>p</ci></apply>": math.atanh(p),
        "<apply><arcsech/><ci>p</ci></apply>": math.acosh(1 / p),
        "<apply><arccsch/><ci>p</ci></apply>": math.asinh(1 / p),
        "<apply><arccoth/><ci>q</ci></apply>": math.atanh(1 / q),
        "<apply><arcsin/><cn>0.5</cn></apply>": math.asin(0.5),
        "<apply><arctan/><cn>2</cn></apply>": math.atan(2),
        "<apply><min/><ci>p</ci><ci>q</ci></apply>": p,
        "<apply><max/><ci>p</ci><ci>q</ci></apply>": q,
        "<apply><divide/><ci>p</ci><ci>q</ci></apply>": p / q,
        "<apply><times/><pi/><exponentiale/></apply>": math.pi * math.e,
        "<csymbol encoding=\"text\" definitionURL=\"http://www.sbml.org/sbml/symbols/avogadro\">avogadro</csymbol>": AVOGADRO,
        "<cn type=\"rational\">1<sep/>3</cn>": 1 / 3,
        "<cn type=\"e-notation\">1.5<sep/>2</cn>": 150.0,
        "<piecewise><piece><cn>1</cn><apply><xor/><apply><geq/><ci>p</ci><cn>1</cn></apply>"
        "<apply><leq/><ci>q</ci><cn>1</cn></apply></apply></piece><otherwise><cn>2</cn></otherwise></piecewise>": 2.0,
        "<piecewise><piece><cn>1</cn><apply><implies/><apply><eq/><ci>p</ci><cn>0.6</cn></apply>"
        "<apply><neq/><ci>q</ci><cn>0</cn></apply></apply></piece><otherwise><cn>2</cn></otherwise></piecewise>": 1.0,
    }
    rules = "".join(f'<rateRule variable="x{i}">{math_(m)}</rateRule>' for i, m in enumerate(cases))
    states = "".join(f'<parameter id="x{i}" value="0" constant="false"/>' for i in range(len(cases)))
    body = (
        f'<listOfParameters><parameter id="p" value="{p}" constant="true"/><parameter id="q" value="{q}" '
        f'constant="true"/>{states}</listOfParameters><listOfRules>{rules}</listOfRules>'
    )
    model = symsens.load_model(write(tmp_path, body))
    values = {model.symbol("p"): p, model.symbol("q"): q}
    for i, expected in enumerate(cases.values()):
        got = float(model.rhs[i].xreplace(values).evalf(20))
        assert got == pytest.approx(expected, rel=1e-13), list(cases)[i]


# --------------------------------------------------------------------------------------------------------
# Suite-like documents
# --------------------------------------------------------------------------------------------------------


def test_reversible_reaction_in_half_litre(tmp_path: Path) -> None:
    """Like the suite's early cases: S1 <-> S2 with mass action in a compartment of volume 0.5."""
    body = (
        compartments(("compartment", 0.5))
        + "<listOfSpecies>" + species("S1", "compartment", amount=1.0) + species("S2", "compartment", amount=0.0)
        + "</listOfSpecies>"
        + parameters(("kf", 0.9), ("kr", 0.3))
        + "<listOfReactions>"
        + reaction("R", [("S1", 1)], [("S2", 1)],
                   "<apply><times/><ci>compartment</ci><apply><minus/><apply><times/><ci>kf</ci><ci>S1</ci></apply>"
                   "<apply><times/><ci>kr</ci><ci>S2</ci></apply></apply></apply>")
        + "</listOfReactions>"
    )
    model = symsens.load_model(write(tmp_path, body))
    solution = solve(model, 5.0)
    t = solution.t
    # concentrations: S1(0) = 2, total 2; S1 -> 2 (kr + kf e^{-(kf+kr)t})/(kf+kr)
    s1 = 2 * (0.3 + 0.9 * np.exp(-1.2 * t)) / 1.2
    np.testing.assert_allclose(column(model, solution, "S1"), s1, rtol=1e-8)
    np.testing.assert_allclose(column(model, solution, "S2"), 2 - s1, rtol=1e-8, atol=1e-12)


def test_stoichiometry_two_and_conversion_factor(tmp_path: Path) -> None:
    body = (
        compartments(("c", 1.0))
        + "<listOfSpecies>" + species("A", amount=1.0)
        + '<species id="B" compartment="c" initialAmount="0" hasOnlySubstanceUnits="false" boundaryCondition="false" '
        'constant="false" conversionFactor="cf"/>'
        + "</listOfSpecies>"
        + parameters(("k", 1.0), ("cf", 3.0))
        + "<listOfReactions>"
        + reaction("R", [("A", 2)], [("B", 1)], "<apply><times/><ci>k</ci><ci>A</ci></apply>")
        + "</listOfReactions>"
    )
    model = symsens.load_model(write(tmp_path, body))
    solution = solve(model, 1.0)
    a = np.exp(-2 * solution.t)
    np.testing.assert_allclose(column(model, solution, "A"), a, rtol=1e-8)
    np.testing.assert_allclose(column(model, solution, "B"), 3 * (1 - a) / 2, rtol=1e-8, atol=1e-12)


def test_reaction_id_in_mathematics_is_its_rate(tmp_path: Path) -> None:
    body = (
        compartments(("c", 1.0))
        + "<listOfSpecies>" + species("A", amount=1.0) + "</listOfSpecies>"
        + '<listOfParameters><parameter id="k" value="1" constant="true"/><parameter id="flux" constant="false"/>'
        "</listOfParameters>"
        + '<listOfRules><assignmentRule variable="flux">' + math_("<ci>R</ci>") + "</assignmentRule></listOfRules>"
        + "<listOfReactions>"
        + reaction("R", [("A", 1)], [], "<apply><times/><ci>k</ci><ci>A</ci></apply>")
        + "</listOfReactions>"
    )
    model = symsens.load_model(write(tmp_path, body))
    assert model.output("flux") == model.symbol("k") * model.symbol("A")


def test_l3v2_booleans_as_numbers_rules_without_math_and_stoichiometry_set_at_start(tmp_path: Path) -> None:
    body = (
        compartments(("c", 1.0))
        + "<listOfSpecies>" + species("A", amount=1.0, only_substance=True)
        + species("B", amount=0.0, only_substance=True) + "</listOfSpecies>"
        + '<listOfParameters><parameter id="k" value="1" constant="true"/>'
        '<parameter id="on" value="0" constant="false"/><parameter id="idle" value="4" constant="false"/>'
        '<parameter id="swap" value="0" constant="false"/>'
        "</listOfParameters>"
        + "<listOfInitialAssignments>"
        + '<initialAssignment symbol="nB">' + math_("<apply><times/><cn>2</cn><ci>k</ci></apply>") + "</initialAssignment>"
        + "</listOfInitialAssignments>"
        + "<listOfRules>"
        + '<rateRule variable="on">' + math_("<apply><lt/><ci>A</ci><cn>0.5</cn></apply>") + "</rateRule>"
        + '<rateRule variable="idle"/>'
        + '<rateRule variable="swap">' + math_(
            "<piecewise><piece><cn>1</cn><ci>k</ci></piece><otherwise><cn>0</cn></otherwise></piecewise>"
        ) + "</rateRule>"
        + "</listOfRules>"
        + "<listOfReactions>"
        + reaction("R", [("A", 1)], [("B", 1)], "<apply><times/><ci>k</ci><ci>A</ci></apply>").replace(
            '<speciesReference species="B" stoichiometry="1" constant="true"/>',
            '<speciesReference id="nB" species="B" stoichiometry="1" constant="true"/>',
        )
        + "</listOfReactions>"
    )
    model = symsens.load_model(write(tmp_path, body))
    A, B, k = model.symbol("A"), model.symbol("B"), model.symbol("k")
    assert model.rhs[model.state_names.index("B")] == 2 * k * k * A
    assert model.rhs[model.state_names.index("on")] == sp.Piecewise((1, A < sp.Rational(1, 2)), (0, True))
    assert "idle" in model.parameter_names  # the rate rule without math has no effect
    # a number where a condition is expected is true when it is not 0
    assert model.rhs[model.state_names.index("swap")] == sp.Piecewise((1, sp.Ne(k, 0)), (0, True))


def test_variable_stoichiometry_by_rule_is_refused(tmp_path: Path) -> None:
    body = (
        _ONE_SPECIES + parameters(("k", 1.0))
        + '<listOfRules><assignmentRule variable="nA">' + math_("<cn>2</cn>") + "</assignmentRule></listOfRules>"
        + "<listOfReactions>"
        + reaction("R", [("A", 1)], [], _DECAY).replace(
            '<speciesReference species="A" stoichiometry="1" constant="true"/>',
            '<speciesReference id="nA" species="A" stoichiometry="1" constant="false"/>',
        )
        + "</listOfReactions>"
    )
    with pytest.raises(ModelError, match="variable stoichiometry of 'nA' in reaction 'R'.*not supported"):
        symsens.load_model(write(tmp_path, body))


def test_required_packages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "comp.xml"
    path.write_text(
        document(_ONE_SPECIES).replace(
            'level="3" version="2">',
            'xmlns:comp="http://www.sbml.org/sbml/level3/version1/comp/version1" level="3" version="2" '
            'comp:required="true">',
        )
    )
    with pytest.raises(ModelError, match="package 'comp'"):
        symsens.load_model(path)


# --------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------


def test_ids_the_model_language_refuses_are_renamed(tmp_path: Path) -> None:
    body = (
        compartments(("c", 1.0))
        + "<listOfSpecies>" + species("lambda", amount=1.0, only_substance=True) + species("t", amount=1.0)
        + "</listOfSpecies>"
        + parameters(("exp", 2.0), ("pi", 3.0), ("__x", 1.0))
        + "<listOfReactions>"
        + reaction("R", [("lambda", 1)], [], "<apply><times/><ci>exp</ci><ci>pi</ci><ci>__x</ci><ci>lambda</ci></apply>")
        + "</listOfReactions>"
    )
    imported = read_sbml(write(tmp_path, body))
    model = imported.model
    assert imported.renamed == {"lambda": "lambda_", "exp": "exp_", "pi": "pi_", "__x": "sbml__x"}
    assert model.state_names == ("lambda_", "t")
    assert model.time.name == "t_"  # 't' is a species
    assert "lambda -> lambda_" in model.description
    assert model.rhs[0] == -(
        model.symbol("exp_") * model.symbol("pi_") * model.symbol("sbml__x") * model.symbol("lambda_")
    )


# --------------------------------------------------------------------------------------------------------
# Refused: unsupported elements and malformed files
# --------------------------------------------------------------------------------------------------------

_ONE_SPECIES = compartments(("c", 1.0)) + "<listOfSpecies>" + species("A", amount=1.0) + "</listOfSpecies>"
_DECAY = "<apply><times/><ci>k</ci><ci>A</ci></apply>"

UNSUPPORTED = {
    "event": (
        _ONE_SPECIES + parameters(("k", 1.0))
        + "<listOfReactions>" + reaction("R", [("A", 1)], [], _DECAY) + "</listOfReactions>"
        + '<listOfEvents><event id="pulse" useValuesFromTriggerTime="true"><trigger initialValue="false" '
        'persistent="true">' + math_("<apply><gt/><csymbol encoding=\"text\" definitionURL=\"http://www.sbml.org/"
                                     "sbml/symbols/time\">time</csymbol><cn>1</cn></apply>")
        + '</trigger><listOfEventAssignments><eventAssignment variable="A">' + math_("<cn>1</cn>")
        + "</eventAssignment></listOfEventAssignments></event></listOfEvents>",
        "pulse",
    ),
    "delay": (
        _ONE_SPECIES + parameters(("k", 1.0))
        + "<listOfReactions>" + reaction(
            "Rdelay", [("A", 1)], [],
            "<apply><times/><ci>k</ci><apply><csymbol encoding=\"text\" definitionURL=\"http://www.sbml.org/sbml/"
            "symbols/delay\">delay</csymbol><ci>A</ci><cn>1</cn></apply></apply>",
        ) + "</listOfReactions>",
        "Rdelay",
    ),
    "rateOf": (
        _ONE_SPECIES
        + '<listOfParameters><parameter id="k" value="1" constant="true"/><parameter id="r" constant="false"/>'
        "</listOfParameters>"
        + '<listOfRules><assignmentRule variable="r">' + math_(
            "<apply><csymbol encoding=\"text\" definitionURL=\"http://www.sbml.org/sbml/symbols/rateOf\">rateOf"
            "</csymbol><ci>A</ci></apply>") + "</assignmentRule></listOfRules>"
        + "<listOfReactions>" + reaction("R", [("A", 1)], [], _DECAY) + "</listOfReactions>",
        "r",
    ),
    "algebraic rule": (
        _ONE_SPECIES + parameters(("k", 1.0), ("z", 1.0), constant=False)
        + '<listOfRules><algebraicRule id="constraint1">' + math_("<apply><minus/><ci>z</ci><ci>A</ci></apply>")
        + "</algebraicRule></listOfRules>"
        + "<listOfReactions>" + reaction("R", [("A", 1)], [], _DECAY) + "</listOfReactions>",
        "constraint1",
    ),
    "fast reaction": (
        _ONE_SPECIES + parameters(("k", 1.0))
        + "<listOfReactions>" + reaction("Rfast", [("A", 1)], [], _DECAY, extra=' fast="true"') + "</listOfReactions>",
        "Rfast",
    ),
    "variable stoichiometry": (
        _ONE_SPECIES + parameters(("k", 1.0))
        + '<listOfRules><rateRule variable="nA">' + math_("<cn>1</cn>") + "</rateRule></listOfRules>"
        + "<listOfReactions>"
        + reaction("R", [("A", 1)], [], _DECAY).replace(
            '<speciesReference species="A" stoichiometry="1" constant="true"/>',
            '<speciesReference id="nA" species="A" stoichiometry="1" constant="false"/>',
        )
        + "</listOfReactions>",
        "nA",
    ),
}


@pytest.mark.parametrize("element", list(UNSUPPORTED))
def test_unsupported_elements_are_refused_by_id(tmp_path: Path, element: str) -> None:
    body, element_id = UNSUPPORTED[element]
    path = write(tmp_path, body, model_id="case")
    if element == "fast reaction":  # 'fast' exists up to SBML Level 3 Version 1
        path.write_text(path.read_text().replace("level3/version2", "level3/version1").replace('version="2"', 'version="1"'))
    with pytest.raises(ModelError) as caught:
        symsens.load_model(path)
    message = str(caught.value)
    assert repr(element_id) in message, message
    assert "not supported" in message
    assert str(path) in message


def test_concentration_in_a_growing_compartment(tmp_path: Path) -> None:
    """dV/dt = 1 and A -> 0 at amount rate k [A] V: n = exp(-k t), so [A] = exp(-k t)/(1 + t)."""
    body = (
        '<listOfCompartments><compartment id="cell" spatialDimensions="3" size="1" constant="false"/>'
        "</listOfCompartments>"
        + "<listOfSpecies>" + species("A", "cell", concentration=1.0)
        + species("X", "cell", concentration=2.0, boundary=True) + "</listOfSpecies>"
        + parameters(("k", 0.7))
        + '<listOfRules><rateRule variable="cell">' + math_("<cn>1</cn>") + "</rateRule></listOfRules>"
        + "<listOfReactions>"
        + reaction("R", [("A", 1)], [], "<apply><times/><ci>k</ci><ci>A</ci><ci>cell</ci></apply>")
        + "</listOfReactions>"
    )
    model = symsens.load_model(write(tmp_path, body))
    solution = solve(model, 2.0)
    t = solution.t
    np.testing.assert_allclose(column(model, solution, "cell"), 1 + t, rtol=1e-10)
    np.testing.assert_allclose(column(model, solution, "A"), np.exp(-0.7 * t) / (1 + t), rtol=1e-8)
    # a boundary species keeps its amount: its concentration falls as the compartment grows
    np.testing.assert_allclose(column(model, solution, "X"), 2 / (1 + t), rtol=1e-8)


def test_function_without_model_language_counterpart_is_refused(tmp_path: Path) -> None:
    body = (
        '<listOfParameters><parameter id="x" value="0.5" constant="false"/></listOfParameters>'
        '<listOfRules><rateRule variable="x">' + math_("<apply><arcsin/><ci>x</ci></apply>") + "</rateRule></listOfRules>"
    )
    with pytest.raises(ModelError, match=r"rate rule for 'x'.*arcsin"):
        symsens.load_model(write(tmp_path, body))


def test_malformed_xml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text(document(_ONE_SPECIES).replace("</listOfSpecies>", "</listOfSpecie>"))
    with pytest.raises(ModelError) as caught:
        symsens.load_model(path)
    assert str(path) in str(caught.value)
    assert caught.value.line is not None and caught.value.line >= 1


def test_unknown_csymbol_is_refused_with_file_and_line(tmp_path: Path) -> None:
    body = (
        '<listOfParameters><parameter id="x" value="0" constant="false"/></listOfParameters>'
        '<listOfRules><rateRule variable="x">'
        + math_('<csymbol encoding="text" definitionURL="http://example.org/clock">clock</csymbol>')
        + "</rateRule></listOfRules>"
    )
    path = write(tmp_path, body)
    with pytest.raises(ModelError, match="definitionURL") as caught:
        symsens.load_model(path)
    assert str(path) in str(caught.value) and caught.value.line is not None


def test_missing_file_and_content_dispatch(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        symsens.load_model(tmp_path / "absent.xml")
    other = tmp_path / "model.txt"
    other.write_text(document(MASS_ACTION))
    assert symsens.load_model(other).state_names == ("A", "B", "C")


# --------------------------------------------------------------------------------------------------------
# Export and round trip
# --------------------------------------------------------------------------------------------------------


def _same(a: sp.Expr, b: sp.Expr, symbols: list[sp.Symbol], rng: random.Random) -> bool:
    if a == b:
        return True
    for _ in range(5):
        point = {s: rng.uniform(0.2, 1.5) for s in symbols}
        x, y = complex(a.xreplace(point).evalf(30)), complex(b.xreplace(point).evalf(30))
        if not abs(x - y) <= 1e-12 * max(1.0, abs(x)):
            return False
    return True


@pytest.mark.parametrize("name", symsens.examples())
def test_round_trip_of_builtin_models(tmp_path: Path, name: str) -> None:
    original = symsens.load_model(name)
    text = to_sbml(original)
    document_ = libsbml.readSBMLFromString(text)
    document_.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, False)
    document_.checkConsistency()
    errors = [document_.getError(i) for i in range(document_.getNumErrors())]
    assert not [e.getMessage() for e in errors if e.getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    path = tmp_path / f"{name}.xml"
    path.write_text(text)
    again = symsens.load_model(path)
    assert again.state_names == original.state_names
    assert again.nominal_parameters == original.nominal_parameters
    assert again.output_names == original.output_names
    rename = {again.time: original.time}
    symbols = [*original.states, *original.parameters, original.time]
    rng = random.Random(1)
    for a, b in zip(original.rhs, again.rhs):
        assert _same(a, b.xreplace(rename), symbols, rng)
    for a, b in zip(original.initial_conditions, again.initial_conditions):
        assert _same(a, b, symbols, rng)
    for (_, a), (_, b) in zip(original.outputs, again.outputs):
        assert _same(a, b.xreplace(rename), symbols, rng)


def test_export_writes_exprel_as_a_function_definition() -> None:
    model = symsens.Model(["V"], {"a": 1.0}, ["a*exprel(-V/10)"], [0.5])
    text = to_sbml(model)
    assert '<functionDefinition id="exprel">' in text
    assert "<rateRule" in text and "<species" not in text


def test_export_refuses_names_sbml_cannot_hold() -> None:
    model = symsens.Model(["ν"], {"a": 1.0}, ["-a*ν"], [1])
    with pytest.raises(ModelError, match="not an SBML identifier"):
        to_sbml(model)
