"""The built-in models: small, well-known ODEs from the literature, built exactly in SymPy.

Each model is made by a constructor function without arguments that cites its source and lists its
nominal values; :data:`BUILTIN_MODELS` maps the registry name (``"hodgkin-huxley"``) to the constructor and
:func:`builtin_model` returns the (cached) :class:`~symsens.model.Model`.  Every model is also shipped as a
model file ``examples/models/<name>.toml`` that loads to the same equations (``tests/test_library.py``
checks both against each other).

Conventions kept throughout:

- the equations are built with SymPy, never by parsing text, so this module does not depend on the model
  language's parser;
- decimal constants inside equations are exact (``sympy.Rational("1.32")``), so derivation and the
  high-precision reference see the model as published rather than its binary rounding; nominal parameter
  values are floats (they are data, and the gradient is taken with respect to them);
- states are in the order of the published source (downstream vectors, Jacobians and JSON follow it);
- removable singularities (the Hodgkin–Huxley rates) are written with :class:`~symsens.model.exprel`, so
  the right-hand side and all its derivatives are finite at the singular point.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from types import MappingProxyType

import sympy as sp

from .._errors import ModelError
from ._functions import exprel
from ._model import Model

__all__ = [
    "BUILTIN_MODELS",
    "builtin_model",
    "robertson",
    "van_der_pol",
    "hodgkin_huxley",
    "hindmarsh_rose",
    "calcium_neuron",
    "stiff_linear",
    "two_scale_linear",
    "stiff_neural_ode",
    "hires",
]

R = sp.Rational


def _first_paragraph(doc: str | None) -> str:
    """The summary paragraph of a docstring, on one line (used as the model's ``description``)."""
    paragraphs = (doc or "").strip().split("\n\n")
    return " ".join(line.strip() for line in paragraphs[0].splitlines())


# ----------------------------------------------------------------------------------------------------
# Chemical kinetics and classical stiff test problems
# ----------------------------------------------------------------------------------------------------


def robertson() -> Model:
    """Robertson's chemical kinetics: three species, rate constants spanning nine orders of magnitude.

    H. H. Robertson, "The solution of a set of reaction rate equations", in J. Walsh (ed.), *Numerical
    Analysis: An Introduction*, Academic Press, London, 1966, pp. 178-182; in the form of E. Hairer and
    G. Wanner, *Solving Ordinary Differential Equations II: Stiff and Differential-Algebraic Problems*,
    2nd ed., Springer, 1996, Sect. IV.1, eq. (1.4)::

        y1' = -k1*y1 + k3*y2*y3
        y2' =  k1*y1 - k3*y2*y3 - k2*y2^2
        y3' =  k2*y2^2

    Reactions A -> B (k1), B + B -> C + B (k2), B + C -> A + C (k3).  The right-hand sides sum to zero
    (mass is conserved: y1 + y2 + y3 = 1).

    Nominal values (dimensionless concentrations, time in s): k1 = 0.04, k2 = 3e7, k3 = 1e4;
    y(0) = (1, 0, 0); usually solved over t in (0, 40) (and out to 1e11 to test long-time stiffness).
    """
    y1, y2, y3, k1, k2, k3 = sp.symbols("y1 y2 y3 k1 k2 k3")
    return Model(
        states=[y1, y2, y3],
        parameters={k1: 0.04, k2: 3e7, k3: 1e4},
        rhs=[
            -k1 * y1 + k3 * y2 * y3,
            k1 * y1 - k3 * y2 * y3 - k2 * y2**2,
            k2 * y2**2,
        ],
        initial_conditions=[1, 0, 0],
        name="robertson",
        description=_first_paragraph(robertson.__doc__)
        + " Robertson (1966); Hairer & Wanner, Solving ODEs II (1996), Sect. IV.1.",
        t_span=(0.0, 40.0),
    )


def van_der_pol() -> Model:
    """Van der Pol's oscillator in the singular-perturbation scaling: a stiff relaxation oscillation.

    B. van der Pol, "On relaxation-oscillations", *Phil. Mag.* (7) 2 (1926) 978-992; in the scaled form of
    E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer, 1996,
    Sect. IV.1, eq. (1.5') with ``mu = 1/epsilon``::

        y1' = y2
        y2' = mu*((1 - y1^2)*y2 - y1)

    The larger ``mu``, the stiffer: the slow branches are traversed in time O(1) and the jumps between
    them in time O(1/mu); the period tends to ``3 - 2 ln 2 ~ 1.614`` (plus O(mu^(-2/3))) as mu grows
    (about 1.669 at mu = 1000).

    Nominal values (dimensionless): mu = 1000; y(0) = (2, 0); t in (0, 2), one full period of the
    limit cycle, the end time of the standard VDPOL test problem
    (Hairer & Wanner II, Sect. IV.10).  In this scaling the often-quoted span (0, 3000) belongs to the
    *unscaled* equation ``y2' = mu (1 - y1^2) y2 - y1`` (MATLAB's ``vdp1000``) and would here cover
    about 1800 periods.
    """
    y1, y2, mu = sp.symbols("y1 y2 mu")
    return Model(
        states=[y1, y2],
        parameters={mu: 1000.0},
        rhs=[y2, mu * ((1 - y1**2) * y2 - y1)],
        initial_conditions=[2, 0],
        name="van-der-pol",
        description=_first_paragraph(van_der_pol.__doc__)
        + " Van der Pol (1926); Hairer & Wanner, Solving ODEs II (1996), Sect. IV.1, eq. (1.5').",
        t_span=(0.0, 2.0),
    )


# ----------------------------------------------------------------------------------------------------
# Neurons
# ----------------------------------------------------------------------------------------------------


def _hodgkin_huxley_rates(V: sp.Symbol) -> dict[str, sp.Expr]:
    """The six Hodgkin–Huxley rate functions (1/ms) of the membrane potential V (mV), rest at -65 mV.

    The two 0/0 forms are rewritten exactly with ``exprel(x) = x/(exp(x) - 1)``:
    ``0.1 (V+40)/(1 - exp(-(V+40)/10)) = 0.1*10*exprel(-(V+40)/10)`` and
    ``0.01 (V+55)/(1 - exp(-(V+55)/10)) = 0.01*10*exprel(-(V+55)/10)``.
    """
    return {
        "alpha_m": R("0.1") * 10 * exprel(-(V + 40) / 10),
        "beta_m": 4 * sp.exp(-(V + 65) / 18),
        "alpha_h": R("0.07") * sp.exp(-(V + 65) / 20),
        "beta_h": 1 / (1 + sp.exp(-(V + 35) / 10)),
        "alpha_n": R("0.01") * 10 * exprel(-(V + 55) / 10),
        "beta_n": R("0.125") * sp.exp(-(V + 65) / 80),
    }


# Units as stated by Dayan & Abbott (2001), Sect. 5.6: time ms, potentials mV, conductances mS/cm^2,
# capacitance uF/cm^2, current densities uA/cm^2, rates 1/ms; the gates are dimensionless (no unit).
HODGKIN_HUXLEY_UNITS: dict[str, str] = {
    "t": "ms", "V": "mV", "g_Na": "mS/cm^2", "g_K": "mS/cm^2", "g_L": "mS/cm^2", "E_Na": "mV", "E_K": "mV",
    "E_L": "mV", "C_m": "uF/cm^2", "I_ext": "uA/cm^2", "alpha_m": "1/ms", "beta_m": "1/ms", "alpha_h": "1/ms",
    "beta_h": "1/ms", "alpha_n": "1/ms", "beta_n": "1/ms", "I_Na": "uA/cm^2", "I_K": "uA/cm^2", "I_L": "uA/cm^2",
    "voltage": "mV",
}  # fmt: skip


def hodgkin_huxley() -> Model:
    """Hodgkin–Huxley squid giant axon (1952), modern convention with rest near -65 mV, spiking at I_ext = 10.

    A. L. Hodgkin and A. F. Huxley, "A quantitative description of membrane current and its application to
    conduction and excitation in nerve", *J. Physiol.* 117 (1952) 500-544.  Rates and constants as in
    P. Dayan and L. F. Abbott, *Theoretical Neuroscience*, MIT Press, 2001, Sect. 5.6 (which prints 1/18,
    1/20, 1/80 as 0.0556, 0.05, 0.0125), in the modern convention that shifts HH's voltage (rest = 0,
    depolarisation negative) to V = -V_HH - 65 mV::

        C_m V' = I_ext - g_Na m^3 h (V - E_Na) - g_K n^4 (V - E_K) - g_L (V - E_L)
        x'     = alpha_x(V) (1 - x) - beta_x(V) x,        x in {m, h, n}

        alpha_m = 0.1 (V+40)/(1 - exp(-(V+40)/10)) = exprel(-(V+40)/10)    beta_m = 4 exp(-(V+65)/18)
        alpha_h = 0.07 exp(-(V+65)/20)                    beta_h = 1/(1 + exp(-(V+35)/10))
        alpha_n = 0.01 (V+55)/(1 - exp(-(V+55)/10)) = exprel(-(V+55)/10)/10    beta_n = 0.125 exp(-(V+65)/80)

    ``exprel`` removes the 0/0 of alpha_m at V = -40 (limit 1) and of alpha_n at V = -55 (limit 0.1).

    Nominal values: g_Na = 120, g_K = 36, g_L = 0.3 mS/cm^2; E_Na = 50, E_K = -77, E_L = -54.387 mV
    (E_L chosen so that the rest is -65 mV, as in Dayan & Abbott); C_m = 1 uF/cm^2; I_ext = 10 uA/cm^2,
    inside the range of stable repetitive firing (about 6.26 to 154 uA/cm^2 at 6.3 degC: J. Rinzel and
    R. N. Miller, "Numerical calculation of stable and unstable periodic solutions to the Hodgkin-Huxley
    equations", *Math. Biosci.* 49 (1980) 27-59), so the neuron fires periodically: 7 spikes in
    100 ms, period 14.64 ms (68.3 Hz) once settled.  Time in ms; t in (0, 100).

    Initial state: V = -65 mV and the gates at their steady state there, x(0) = alpha_x/(alpha_x + beta_x)
    at V = -65, kept as exact expressions (m ~ 0.05293, h ~ 0.59612, n ~ 0.31768).

    Output ``voltage`` = V.
    """
    V, m, h, n = sp.symbols("V m h n")
    g_Na, g_K, g_L, E_Na, E_K, E_L, C_m, I_ext = sp.symbols("g_Na g_K g_L E_Na E_K E_L C_m I_ext")
    rates = _hodgkin_huxley_rates(V)
    a_m, b_m, a_h, b_h, a_n, b_n = (sp.Symbol(k) for k in ("alpha_m", "beta_m", "alpha_h", "beta_h", "alpha_n", "beta_n"))
    I_Na, I_K, I_L = sp.symbols("I_Na I_K I_L")
    intermediates: dict[sp.Symbol, sp.Expr] = {sp.Symbol(k): v for k, v in rates.items()}
    intermediates.update(
        {
            I_Na: g_Na * m**3 * h * (V - E_Na),
            I_K: g_K * n**4 * (V - E_K),
            I_L: g_L * (V - E_L),
        }
    )

    def resting(alpha: str, beta: str) -> sp.Expr:
        """Steady state alpha/(alpha + beta) of a gate at V = -65 mV, exact."""
        a, b = rates[alpha].subs(V, -65), rates[beta].subs(V, -65)
        return a / (a + b)

    return Model(
        states=[V, m, h, n],
        parameters={g_Na: 120.0, g_K: 36.0, g_L: 0.3, E_Na: 50.0, E_K: -77.0, E_L: -54.387, C_m: 1.0, I_ext: 10.0},
        intermediates=intermediates,
        rhs=[
            (I_ext - I_Na - I_K - I_L) / C_m,
            a_m * (1 - m) - b_m * m,
            a_h * (1 - h) - b_h * h,
            a_n * (1 - n) - b_n * n,
        ],
        initial_conditions=[-65, resting("alpha_m", "beta_m"), resting("alpha_h", "beta_h"), resting("alpha_n", "beta_n")],
        outputs={"voltage": V},
        name="hodgkin-huxley",
        description=_first_paragraph(hodgkin_huxley.__doc__)
        + " Hodgkin & Huxley, J. Physiol. 117 (1952) 500-544; rates as in Dayan & Abbott (2001), Sect. 5.6.",
        t_span=(0.0, 100.0),
        units=HODGKIN_HUXLEY_UNITS,
    )


def hindmarsh_rose() -> Model:
    """Hindmarsh–Rose neuron: a three-variable polynomial model of bursting.

    J. L. Hindmarsh and R. M. Rose, "A model of neuronal bursting using three coupled first order
    differential equations", *Proc. R. Soc. Lond. B* 221 (1984) 87-102::

        x' = y - a x^3 + b x^2 - z + I_ext
        y' = c - d x^2 - y
        z' = r (s (x - x_R) - z)

    x is the membrane potential, y a fast recovery variable, z a slow adaptation current whose time scale
    1/r sets the burst period.  Nominal values (dimensionless): a = 1, b = 3, c = 1, d = 5, s = 4,
    x_R = -1.6 (the leftmost equilibrium without adaptation, -8/5) and r = 0.001, the values of the 1984
    paper (as in, e.g., the Brian 2 simulator's reproduction of its Fig. 6, which runs I = 0.4, 2, 4);
    I_ext = 3, inside the bursting range (measured: regular bursts of 18 spikes, period about 505).  The
    injected current is named ``I_ext`` rather than ``I``, which SymPy's string syntax reads as the
    imaginary unit.

    y(0) = (x_R, c - d x_R^2, 3) puts x at rest on the y-nullcline and z inside its bursting range, so
    bursts start without a long transient (the initial condition depends on x_R, c and d); t in (0, 2000)
    shows four bursts.

    Output ``voltage`` = x.
    """
    x, y, z = sp.symbols("x y z")
    a, b, c, d, r, s, x_R, I_ext = sp.symbols("a b c d r s x_R I_ext")
    return Model(
        states=[x, y, z],
        parameters={a: 1.0, b: 3.0, c: 1.0, d: 5.0, r: 0.001, s: 4.0, x_R: -1.6, I_ext: 3.0},
        rhs=[
            y - a * x**3 + b * x**2 - z + I_ext,
            c - d * x**2 - y,
            r * (s * (x - x_R) - z),
        ],
        initial_conditions=[x_R, c - d * x_R**2, 3],
        outputs={"voltage": x},
        name="hindmarsh-rose",
        description=_first_paragraph(hindmarsh_rose.__doc__)
        + " Hindmarsh & Rose, Proc. R. Soc. Lond. B 221 (1984) 87-102.",
        t_span=(0.0, 2000.0),
    )


def _boltzmann(V: sp.Symbol, a: str, b: str) -> sp.Expr:
    """``s(V; a, b) = 1/(1 + exp((V + a)/b))`` with the decimal constants exact."""
    return 1 / (1 + sp.exp((V + R(a)) / R(b)))


# Units of the specification (mV, ms; C = 1) and of Liu et al. (1998): the intracellular calcium
# concentration in uM (3000 in log(3000/Ca) is the extracellular 3 mM).  The conductances carry no unit here:
# with C = 1 and no membrane area they are rates per unit capacitance, and the source states none.
CALCIUM_NEURON_UNITS: dict[str, str] = {
    "t": "ms", "V": "mV", "Ca": "uM", "eNa": "mV", "eh": "mV", "eK": "mV", "eleak": "mV", "tauCa": "ms",
    "eCa": "mV", "Ca_inf": "uM", "voltage": "mV",
    **{f"tau_{gate}": "ms" for gate in ("mNa", "hNa", "mCaS", "hCaS", "mCaT", "hCaT", "mIh", "mKa", "hKa", "mKCa",
                                        "mKdr")},
}  # fmt: skip


def calcium_neuron() -> Model:
    """STG calcium neuron (Liu, Golowasch, Marder & Abbott 1998) exactly as the code of a forum question defines it.

    After Z. Liu, J. Golowasch, E. Marder and L. F. Abbott, "A model neuron with activity-dependent
    conductances regulated by multiple calcium sensors", *J. Neurosci.* 18 (1998) 2309-2320, as coded in
    the ``CalciumNeuron`` model of the public Julia repository Dhruva2/MyModelMenagerie.jl
    (``src/models/STG_Liu.jl``, "STG calcium model (Liu 1998)"), the model whose forward-mode gradient a
    Julia Discourse question (https://discourse.julialang.org/t/when-forwarddiff-ing-through-an-ode-is-unstable/49484)
    found to be 1.45e6 instead of 0.  Specified in ``shared/models/calcium-neuron.md``; the
    equations are that code's, unchanged.  Units mV and ms; no capacitance factor (C = 1); no injected
    current.  Currents in the inward-positive form g (E - V)::

        eCa    = 500*8.6174e-5*283.15*log(3000/Ca)          (about 12.2002 ln(3000/Ca))
        INa    = gNa mNa^3 hNa (eNa - V)        ICaS = gCaS mCaS^3 hCaS (eCa - V)
        ICaT   = gCaT mCaT^3 hCaT (eCa - V)     Ih   = gh mIh (eh - V)
        IKa    = gKa mKa^3 hKa (eK - V)         IKCa = gKCa mKCa^4 (eK - V)
        IKdr   = gKdr mKdr^4 (eK - V)           Ileak = gleak (eleak - V)
        Ca_inf = 0.05 + 0.94 (ICaS + ICaT)
        V'  = INa + ICaS + ICaT + Ih + IKa + IKCa + IKdr + Ileak
        Ca' = (Ca_inf - Ca)/tauCa
        x'  = (x_inf(V, Ca) - x)/tau_x(V)    for the 11 gates, s(V; a, b) = 1/(1 + exp((V + a)/b))

    The gate functions are listed in the spec and in the code below (intermediates ``<gate>_inf`` and
    ``tau_<gate>``).

    Hazard: ``log(3000/Ca)`` needs Ca > 0.  It is *not* clamped here (the spec's equations have no clamp);
    Ca_inf turns negative when ICaS + ICaT < -0.053, so a solver that overshoots can drive Ca through 0
    and the right-hand side becomes NaN.  (An earlier version of the source clamped the ratio with
    ``max(3000/Ca, 1e-5)``.)  At the nominal values Ca stays in [0.05, 28.7].

    Parameters in this order (the forum question takes the gradient over all 13): eNa = 50, eh = -20, eK = -80,
    eleak = -50 (mV), tauCa = 20 (ms), gNa = 100, gCaS = 3, gCaT = 1.3, gKa = 5, gKCa = 10, gKdr = 20,
    gh = 0.5, gleak = 0.01.  States in this order with initial values: V = -60, Ca = 0.05 and the gates
    mNa, hNa, mCaS, hCaS, mCaT, hCaT, mIh, mKa, hKa, mKCa, mKdr all 0.  t in (0, 500).  At these values
    the neuron bursts: 15 upward crossings of 0 mV in 500 ms, V in [-65.6, 40.0] mV.

    Output ``voltage`` = V.
    """
    names = "V Ca mNa hNa mCaS hCaS mCaT hCaT mIh mKa hKa mKCa mKdr"
    V, Ca, mNa, hNa, mCaS, hCaS, mCaT, hCaT, mIh, mKa, hKa, mKCa, mKdr = states = sp.symbols(names)
    eNa, eh, eK, eleak, tauCa, gNa, gCaS, gCaT, gKa, gKCa, gKdr, gh, gleak = sp.symbols(
        "eNa eh eK eleak tauCa gNa gCaS gCaT gKa gKCa gKdr gh gleak"
    )
    parameters = {
        eNa: 50.0, eh: -20.0, eK: -80.0, eleak: -50.0, tauCa: 20.0, gNa: 100.0, gCaS: 3.0,
        gCaT: 1.3, gKa: 5.0, gKCa: 10.0, gKdr: 20.0, gh: 0.5, gleak: 0.01,
    }  # fmt: skip

    def s(a: str, b: str) -> sp.Expr:
        """The spec's s(V; a, b)."""
        return _boltzmann(V, a, b)

    eCa, INa, ICaS, ICaT, Ih, IKa, IKCa, IKdr, Ileak, Ca_inf = sp.symbols(
        "eCa INa ICaS ICaT Ih IKa IKCa IKdr Ileak Ca_inf"
    )
    intermediates: dict[sp.Symbol, sp.Expr] = {
        # Nernst-like reversal of calcium; no clamp on the log (see the docstring's hazard).
        eCa: 500 * R("8.6174e-5") * R("283.15") * sp.log(3000 / Ca),
        INa: gNa * mNa**3 * hNa * (eNa - V),
        ICaS: gCaS * mCaS**3 * hCaS * (eCa - V),
        ICaT: gCaT * mCaT**3 * hCaT * (eCa - V),
        Ih: gh * mIh * (eh - V),
        IKa: gKa * mKa**3 * hKa * (eK - V),
        IKCa: gKCa * mKCa**4 * (eK - V),
        IKdr: gKdr * mKdr**4 * (eK - V),
        Ileak: gleak * (eleak - V),
        Ca_inf: R("0.05") + R("0.94") * (ICaS + ICaT),
    }
    exp = sp.exp
    # (steady state, time constant) per gate, verbatim from the spec (constants exact).
    gates: dict[sp.Symbol, tuple[sp.Expr, sp.Expr]] = {
        mNa: (s("25.5", "-5.29"), R("1.32") - R("1.26") / (1 + exp((V + 120) / -25))),
        hNa: (
            s("48.9", "5.18"),
            (R("0.67") / (1 + exp((V + R("62.9")) / -10))) * (R("1.5") + 1 / (1 + exp((V + R("34.9")) / R("3.6")))),
        ),
        mCaS: (s("33", "-8.1"), R("1.4") + 7 / (exp((V + 27) / 10) + exp((V + 70) / -13))),
        hCaS: (s("60", "6.2"), 60 + 150 / (exp((V + 55) / 9) + exp((V + 65) / -16))),
        mCaT: (s("27.1", "-7.2"), R("21.7") - R("21.3") / (1 + exp((V + R("68.1")) / R("-20.5")))),
        hCaT: (s("32.1", "5.5"), 105 - R("89.8") / (1 + exp((V + 55) / R("-16.9")))),
        mIh: (s("70", "6"), 272 + 1499 / (1 + exp((V + R("42.2")) / R("-8.73")))),
        mKa: (s("27.2", "-8.7"), R("11.6") - R("10.4") / (1 + exp((V + R("32.9")) / R("-15.2")))),
        hKa: (s("56.9", "4.9"), R("38.6") - R("29.2") / (1 + exp((V + R("38.9")) / R("-26.5")))),
        mKCa: ((Ca / (Ca + 3)) * s("28.3", "-12.6"), R("90.3") - R("75.1") / (1 + exp((V + 46) / R("-22.7")))),
        mKdr: (s("12.3", "-11.8"), R("7.2") - R("6.4") / (1 + exp((V + R("28.3")) / R("-19.2")))),
    }
    gate_rhs = []
    for gate, (steady, tau) in gates.items():
        x_inf, tau_x = sp.Symbol(f"{gate.name}_inf"), sp.Symbol(f"tau_{gate.name}")
        intermediates[x_inf] = steady
        intermediates[tau_x] = tau
        gate_rhs.append((x_inf - gate) / tau_x)

    return Model(
        states=list(states),
        parameters=parameters,
        intermediates=intermediates,
        rhs=[
            INa + ICaS + ICaT + Ih + IKa + IKCa + IKdr + Ileak,
            (Ca_inf - Ca) / tauCa,
            *gate_rhs,
        ],
        initial_conditions=[-60, R("0.05"), *([0] * 11)],
        outputs={"voltage": V},
        name="calcium-neuron",
        description=_first_paragraph(calcium_neuron.__doc__)
        + " Liu, Golowasch, Marder & Abbott, J. Neurosci. 18 (1998) 2309-2320; code: Dhruva2/MyModelMenagerie.jl,"
        " src/models/STG_Liu.jl.  No clamp on log(3000/Ca): needs Ca > 0.",
        t_span=(0.0, 500.0),
        units=CALCIUM_NEURON_UNITS,
    )


# ----------------------------------------------------------------------------------------------------
# Linear test problems with closed forms
# ----------------------------------------------------------------------------------------------------


def stiff_linear() -> Model:
    """Dahlquist's test equation y' = lam*y with the rate as a parameter: the model of a fast mode.

    G. Dahlquist, "A special stability problem for linear multistep methods", *BIT* 3 (1963) 27-43; the
    equation on which stability functions R(z), z = h*lam, are defined (Hairer & Wanner II, Sect. IV.2),
    and on which C. Fronk and L. Petzold, "The Vanishing Gradient Problem for Stiff Neural Differential
    Equations" (2025), show that A-stable schemes suppress d y/d lam.

    Closed form: y(t) = y0 exp(lam t), dy/dlam = y0 t exp(lam t), dy/dy0 = exp(lam t).

    Nominal values: lam = -1000 (stiff over t in (0, 1)), y0 = 1 (a parameter, so that the initial
    condition depends on a parameter).
    """
    y, lam, y0 = sp.symbols("y lam y0")
    return Model(
        states=[y],
        parameters={lam: -1000.0, y0: 1.0},
        rhs=[lam * y],
        initial_conditions=[y0],
        name="stiff-linear",
        description=_first_paragraph(stiff_linear.__doc__)
        + " Dahlquist, BIT 3 (1963); Fronk & Petzold (2025). Closed form y0*exp(lam*t).",
        t_span=(0.0, 1.0),
    )


def two_scale_linear() -> Model:
    """A fast mode slaved to a slow one, each with its own rate parameter: linear, stiff, closed form.

    y1' = -k_fast (y1 - y2),  y2' = -k_slow y2, y(0) = (0, 1).  A linear system y' = A y whose eigenvalues
    -k_fast and -k_slow separate the time scales (stiffness ratio k_fast/k_slow); the standard linear
    test of stiffness (Hairer & Wanner II, Sect. IV.1) in the two-mode form used to study the gradients
    with respect to the rates of fast modes (Fronk & Petzold, "The Vanishing Gradient Problem for Stiff
    Neural Differential Equations", 2025).

    Closed form (k_fast != k_slow)::

        y2(t) = exp(-k_slow t)
        y1(t) = k_fast/(k_fast - k_slow) (exp(-k_slow t) - exp(-k_fast t))

    Nominal values: k_fast = 1e4, k_slow = 1; t in (0, 5).
    """
    y1, y2, k_fast, k_slow = sp.symbols("y1 y2 k_fast k_slow")
    return Model(
        states=[y1, y2],
        parameters={k_fast: 1e4, k_slow: 1.0},
        rhs=[-k_fast * (y1 - y2), -k_slow * y2],
        initial_conditions=[0, 1],
        name="two-scale-linear",
        description=_first_paragraph(two_scale_linear.__doc__)
        + " Hairer & Wanner II (1996), Sect. IV.1; Fronk & Petzold (2025).",
        t_span=(0.0, 5.0),
    )


# ----------------------------------------------------------------------------------------------------
# Neural ODE
# ----------------------------------------------------------------------------------------------------

# Weights of the stiff neural ODE, drawn once with
#     rng = numpy.random.default_rng(20251124)
#     W1 = rng.standard_normal((4, 3)) / sqrt(3)     # fan-in scaling, so W1 y stays O(|y|)
#     b1 = 0.1 * rng.standard_normal(4)
#     W2 = rng.standard_normal((3, 4)) / sqrt(4)
#     b2 = 0.1 * rng.standard_normal(3)
# (in this order, from the one generator) and rounded to 6 significant digits.  Typed in as literals so
# the model does not change with NumPy's generator implementation.
_NEURAL_W1: tuple[tuple[float, ...], ...] = (
    (0.10789, -0.465632, 0.532458),
    (0.32874, -0.699192, -0.169196),
    (-0.353819, 0.37217, -0.159401),
    (-0.211131, -0.160215, 0.272064),
)
_NEURAL_B1: tuple[float, ...] = (-0.0728265, 0.239166, 0.116874, 0.0304247)
_NEURAL_W2: tuple[tuple[float, ...], ...] = (
    (-0.202332, -0.413557, -0.130124, 0.29523),
    (-0.63793, -0.246881, -0.182462, -0.435245),
    (1.00739, -0.466999, 0.0693885, -0.203482),
)
_NEURAL_B2: tuple[float, ...] = (-0.0535189, 0.0250435, 0.098738)


def stiff_neural_ode() -> Model:
    """A small neural ODE with a stiff linear part whose rate parameters drive fast modes.

    The test problem of C. Fronk and L. Petzold, "The Vanishing Gradient Problem for Stiff Neural
    Differential Equations" (2025): a tanh multilayer perceptron added to a stiff linear decay::

        y' = -diag(k1, k2, k3) y + W2 tanh(W1 y + b1) + b2

    with 3 states, hidden width 4.  Intermediates ``z_i = (W1 y + b1)_i`` and ``h_i = tanh(z_i)``.

    Nominal values: rates k1 = 1, k2 = 1e3, k3 = 1e6 (eigenvalues of the linear part spanning six decades,
    so the sensitivities to k2 and k3 are those an A-stable scheme attenuates); every weight and bias is a
    parameter (``W1_i_j``, ``b1_i``, ``W2_i_j``, ``b2_i``, zero-based), with values drawn once from
    ``numpy.random.default_rng(20251124)``: W1 = N(0,1)/sqrt(3) (4x3), b1 = 0.1 N(0,1) (4), W2 = N(0,1)/2
    (3x4), b2 = 0.1 N(0,1) (3), in that order, rounded to 6 significant digits.  The 1/sqrt(fan-in) and 0.1
    scalings keep the nonlinear forcing O(1) (|W2 tanh(.) + b2| <= about 2), so the slow mode stays O(1)
    and the fast modes relax to O(1/k).  y(0) = (1, 0.5, -0.5); t in (0, 1).
    """
    ys = sp.symbols("y1 y2 y3")
    ks = sp.symbols("k1 k2 k3")
    parameters: dict[sp.Symbol, float] = dict(zip(ks, (1.0, 1e3, 1e6)))
    W1 = [[sp.Symbol(f"W1_{i}_{j}") for j in range(3)] for i in range(4)]
    b1 = [sp.Symbol(f"b1_{i}") for i in range(4)]
    W2 = [[sp.Symbol(f"W2_{i}_{j}") for j in range(4)] for i in range(3)]
    b2 = [sp.Symbol(f"b2_{i}") for i in range(3)]
    for i in range(4):
        for j in range(3):
            parameters[W1[i][j]] = _NEURAL_W1[i][j]
    for i in range(4):
        parameters[b1[i]] = _NEURAL_B1[i]
    for i in range(3):
        for j in range(4):
            parameters[W2[i][j]] = _NEURAL_W2[i][j]
    for i in range(3):
        parameters[b2[i]] = _NEURAL_B2[i]

    zs = sp.symbols("z0:4")
    hs = sp.symbols("h0:4")
    intermediates: dict[sp.Symbol, sp.Expr] = {}
    for i in range(4):
        intermediates[zs[i]] = sum((W1[i][j] * ys[j] for j in range(3)), b1[i])
    for i in range(4):
        intermediates[hs[i]] = sp.tanh(zs[i])
    rhs = [-ks[i] * ys[i] + sum((W2[i][j] * hs[j] for j in range(4)), b2[i]) for i in range(3)]
    return Model(
        states=list(ys),
        parameters=parameters,
        intermediates=intermediates,
        rhs=rhs,
        initial_conditions=[1, R(1, 2), R(-1, 2)],
        name="stiff-neural-ode",
        description=_first_paragraph(stiff_neural_ode.__doc__)
        + " Fronk & Petzold (2025); weights from numpy.random.default_rng(20251124).",
        t_span=(0.0, 1.0),
    )


def hires() -> Model:
    """HIRES: "High Irradiance RESponse" of photomorphogenesis, eight reactions of phytochrome; stiff.

    E. Schäfer, "A new approach to explain the 'high irradiance responses' of photomorphogenesis on the
    basis of phytochrome", *J. Math. Biology* 2 (1975) 41-56; a standard stiff test problem in E. Hairer and
    G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer, 1996, Sect. IV.10, and in
    F. Mazzia and C. Magherini, *Test Set for IVP Solvers*, Release 2.4, Department of Mathematics,
    University of Bari, 2008 (problem HIRES), whose parameterised form (rate constants ``k1 .. k9``, source
    term ``oks``; the test set's ``hires.f``) is used here::

        y1' = -k1 y1 + k2 y2 + k6 y3 + oks
        y2' =  k1 y1 - (k2 + k3) y2
        y3' = -(k6 + k1) y3 + k2 y4 + k5 y5
        y4' =  k3 y2 + k1 y3 - (k4 + k2) y4
        y5' = -(k5 + k1) y5 + k2 (y6 + y7)
        y6' = -k7 y6 y8 + k8 y4 + k1 y5 - k2 y6 + k8 y7
        y7' =  k7 y6 y8 - (k2 + k8 + k9) y7
        y8' = -k7 y6 y8 + (k2 + k8 + k9) y7

    Nominal values: k1 = 1.71, k2 = 0.43, k3 = 8.32, k4 = 0.69, k5 = 0.035, k6 = 8.32, k7 = 280, k8 = 0.69,
    k9 = 0.69, oks = 0.0007 (so that y2' = 1.71 y1 - 8.75 y2, y7' = 280 y6 y8 - 1.81 y7, ... as printed in
    Hairer & Wanner); y(0) = (1, 0, 0, 0, 0, 0, 0, 0.0057); t in (0, 321.8122), the test set's end time.
    The test set's reference solution at t = 321.8122 (RADAU5 in quadruple-ish precision, rtol = atol =
    1.1e-18) is y1 = 0.7371312573325668e-3, ..., y8 = 0.2850001604814231e-2 (``tests/test_reference.py``).
    """
    ys = sp.symbols("y1:9")
    y1, y2, y3, y4, y5, y6, y7, y8 = ys
    k1, k2, k3, k4, k5, k6, k7, k8, k9, oks = sp.symbols("k1 k2 k3 k4 k5 k6 k7 k8 k9 oks")
    return Model(
        states=list(ys),
        parameters={
            k1: 1.71, k2: 0.43, k3: 8.32, k4: 0.69, k5: 0.035, k6: 8.32, k7: 280.0, k8: 0.69, k9: 0.69, oks: 0.0007,
        },  # fmt: skip
        rhs=[
            -k1 * y1 + k2 * y2 + k6 * y3 + oks,
            k1 * y1 - (k2 + k3) * y2,
            -(k6 + k1) * y3 + k2 * y4 + k5 * y5,
            k3 * y2 + k1 * y3 - (k4 + k2) * y4,
            -(k5 + k1) * y5 + k2 * (y6 + y7),
            -k7 * y6 * y8 + k8 * y4 + k1 * y5 - k2 * y6 + k8 * y7,
            k7 * y6 * y8 - (k2 + k8 + k9) * y7,
            -k7 * y6 * y8 + (k2 + k8 + k9) * y7,
        ],
        initial_conditions=[1, 0, 0, 0, 0, 0, 0, R("0.0057")],
        name="hires",
        description=_first_paragraph(hires.__doc__)
        + " Schäfer, J. Math. Biology 2 (1975) 41-56; Hairer & Wanner II (1996), Sect. IV.10;"
        " Mazzia & Magherini, Test Set for IVP Solvers (2008), problem HIRES.",
        t_span=(0.0, 321.8122),
    )


# ----------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------

BUILTIN_MODELS: Mapping[str, Callable[[], Model]] = MappingProxyType(
    {
        "robertson": robertson,
        "van-der-pol": van_der_pol,
        "hodgkin-huxley": hodgkin_huxley,
        "hindmarsh-rose": hindmarsh_rose,
        "calcium-neuron": calcium_neuron,
        "stiff-linear": stiff_linear,
        "two-scale-linear": two_scale_linear,
        "stiff-neural-ode": stiff_neural_ode,
        "hires": hires,
    }
)
"""Registry name -> constructor (no arguments) of each built-in model, in a stable order."""


def builtin_model(name: str) -> Model:
    """The built-in model registered as ``name`` (see :data:`BUILTIN_MODELS`), built once and cached.

    Raises
    ------
    ModelError
        If ``name`` is not a built-in model; the message lists close matches and all names.
    """
    if not isinstance(name, str) or name not in BUILTIN_MODELS:
        close = difflib.get_close_matches(str(name), list(BUILTIN_MODELS), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ModelError(
            f"unknown built-in model {name!r}{hint} (built-in: {', '.join(BUILTIN_MODELS)})", name=str(name)
        )
    # One shared instance per name and process (a Model is immutable), the one load_model(name) returns: made
    # from the model's cached summary when there is one, so that a process solving it with cached libraries
    # never builds its expressions.
    from ._load import builtin

    return builtin(name)
