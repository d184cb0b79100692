"""The C++ runtime header every generated model includes: scalar-generic maths for ``double`` and duals.

Most of it is fixed text (``runtime/symsens_runtime_base.hpp``); the part that depends on exact values — the
Bernoulli series and closed forms of ``exprel`` and its derivatives — is generated here from SymPy, so the
coefficients are exact values printed to full precision, never typed by hand.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import sympy as sp

from ..model._functions import _SERIES_RADIUS, _SERIES_TERMS
from ._printer import ConstantTable, CxxPrinter

__all__ = ["runtime_header", "RUNTIME_EXPREL_MAX_ORDER"]

# Derivatives of exprel available to generated code: the model's own Jacobians need order 1, second
# derivatives (Rosenbrock on the augmented system) order 2, dual numbers one more, nested duals two more.
RUNTIME_EXPREL_MAX_ORDER = 6


def _exprel_derivative_source(order: int) -> str:
    x = sp.Symbol("x")
    constants = ConstantTable()
    printer = CxxPrinter({x: "x"}, constants)
    coefficients = []
    for k in range(order, order + _SERIES_TERMS):
        bernoulli = sp.bernoulli(k) if k != 1 else sp.Rational(-1, 2)
        coefficients.append(bernoulli / sp.factorial(k - order))
    negative = sp.diff(x / (sp.exp(x) - 1), x, order)
    positive = sp.diff(x * sp.exp(-x) / (1 - sp.exp(-x)), x, order)
    negative_code = printer.doprint(negative)
    positive_code = printer.doprint(positive)
    series_constants = [constants.index(c) if not c.is_zero else None for c in coefficients]
    table = constants.initialisers()
    init = ",\n".join(f"        constant<T>({d}, \"{s}\")" for d, s in table)
    # Horner evaluation as a loop over coefficient indices (-1 for the zero odd Bernoulli numbers).
    indices = ", ".join("-1" if i is None else str(i) for i in series_constants)
    return f"""
template <class T>
inline const T* exprel_constants_{order}() {{
    static const T table[{len(table)}] = {{
{init}
    }};
    return table;
}}

template <class T>
inline T exprel_derivative_scalar_{order}(const T& x) {{
    const T* c = exprel_constants_{order}<T>();
    if (abs(x) < T({_SERIES_RADIUS!r})) {{
        static const int index[{len(series_constants)}] = {{{indices}}};
        T acc = T(0);
        for (int k = {len(series_constants) - 1}; k >= 0; --k) {{
            acc = acc * x + (index[k] >= 0 ? c[index[k]] : T(0));
        }}
        return acc;
    }}
    if (x < T(0)) {{
        return {negative_code};
    }}
    if (x > T(700)) {{
        return T(0);  // every term carries exp(-x): below the smallest double
    }}
    return {positive_code};
}}
"""


@lru_cache(maxsize=1)
def runtime_header() -> str:
    """The full text of ``symsens_runtime.hpp``."""
    base = resources.files("symsens.codegen").joinpath("runtime/symsens_runtime_base.hpp").read_text()
    generated = "".join(_exprel_derivative_source(n) for n in range(RUNTIME_EXPREL_MAX_ORDER + 1))
    dispatch_cases = "\n".join(
        f"    if constexpr (N == {n}) return exprel_derivative_scalar_{n}(x);" for n in range(RUNTIME_EXPREL_MAX_ORDER + 1)
    )
    dispatch = f"""
// exprel_derivative<N>(x) for real scalars; dual numbers overload it below through their value type.
template <int N, class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T exprel_derivative(const T& x) {{
    static_assert(N >= 0 && N <= {RUNTIME_EXPREL_MAX_ORDER}, "exprel derivative order beyond the runtime's table");
{dispatch_cases}
}}

template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T exprel(const T& x) {{ return exprel_derivative<0>(x); }}
"""
    marker = "// @@GENERATED_EXPREL@@"
    if marker not in base:
        raise RuntimeError("runtime base header lost its generation marker")
    return base.replace(marker, "namespace symsens {\n" + generated + dispatch + "}  // namespace symsens\n")
