"""The C++ runtime header every generated model includes: scalar-generic maths for ``double`` and duals.

Most of it is fixed text (``runtime/symsens_runtime_base.hpp``); the part that depends on exact values — the
Bernoulli series and closed forms of ``exprel`` and its derivatives — is generated here from SymPy, so the
coefficients are exact values printed to full precision, never typed by hand.

Generating that part takes SymPy one to three seconds, which every process that compiles would pay before its
first compile.  The text is therefore kept in the kernel cache, keyed by everything it is made from (the base
header, the sources of this module, of the printer and of the function definitions, SymPy's version and the
series constants), written atomically and checked on reading by a SHA-256 trailer; a missing, stale or damaged
copy is simply generated again.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import sympy as sp

from .._once import cached_once
from ..model._functions import _SERIES_RADIUS, _SERIES_TERMS
from ._printer import ConstantTable, CxxPrinter

__all__ = ["runtime_header", "RUNTIME_EXPREL_MAX_ORDER", "warm_sympy_tables"]

# Derivatives of exprel available to generated code: the model's own Jacobians need order 1, second
# derivatives (Rosenbrock on the augmented system) order 2, dual numbers one more, nested duals two more.
RUNTIME_EXPREL_MAX_ORDER = 6


def _double_terms(coefficients: list[sp.Rational], radius: float, powers: list[int]) -> int:
    """How many leading series terms ``double`` needs: the first index from which every term is below
    2^-60 of the largest term on |x| <= radius (the rest are kept for wider scalar types)."""
    sizes = [abs(float(c)) * radius**m for c, m in zip(coefficients, powers)]
    largest = max(sizes)
    for count in range(1, len(sizes) + 1):
        if all(size < largest * 2.0**-60 for size in sizes[count:]):
            return count
    return len(sizes)


def _exprel_derivative_source(order: int) -> str:
    """C++ for ``d^order/dx^order exprel(x)``: a Bernoulli series for |x| < 2, closed forms outside.

    exprel(x) = x / (e^x - 1) = sum_k B_k x^k / k! (B_1 = -1/2, B_k = 0 for odd k > 1), so its order-N
    derivative is sum_k B_k x^(k-N) / (k-N)!.  The even-k terms form x^(N mod 2) P(x^2): Horner in x^2 over the
    non-zero coefficients only; the k = 1 term (N <= 1) is added apart.  ``double`` stops at the term where
    the series has converged to 2^-60 on |x| < 2; wider scalars (double-double) use every term.
    """
    x = sp.Symbol("x")
    constants = ConstantTable()
    printer = CxxPrinter({x: "x"}, constants)
    parity = order % 2
    even_k = [k for k in range(order + parity, order + _SERIES_TERMS, 2)]  # even k: the non-zero B_k (k >= 2, or 0)
    coefficients = [sp.bernoulli(k) / sp.factorial(k - order) for k in even_k]
    indices = [constants.index(c) for c in coefficients]
    double_terms = _double_terms(coefficients, _SERIES_RADIUS, [k - order for k in even_k])
    special = ""
    if order <= 1:  # the B_1 = -1/2 term: -x/2 (N = 0) or -1/2 (N = 1)
        special = f"\n        acc = acc + c[{constants.index(sp.Rational(-1, 2))}]" + (" * x;" if order == 0 else ";")
    negative = sp.diff(x / (sp.exp(x) - 1), x, order)
    positive = sp.diff(x * sp.exp(-x) / (1 - sp.exp(-x)), x, order)
    negative_code = printer.doprint(negative)
    positive_code = printer.doprint(positive)
    table = constants.initialisers()
    init = ",\n".join(f"        constant<T>({d}, \"{s}\")" for d, s in table)
    index_list = ", ".join(str(i) for i in indices)
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
        static const int index[{len(indices)}] = {{{index_list}}};
        const int terms = std::is_same<T, double>::value ? {double_terms} : {len(indices)};
        const T x2 = x * x;
        T acc = T(0);
        for (int j = terms - 1; j >= 0; --j) acc = acc * x2 + c[index[j]];{"" if not parity else chr(10) + "        acc = acc * x;"}{special}
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


@cached_once()
def warm_sympy_tables() -> None:
    """Fill SymPy's lazily built number tables once, under a lock, before threads use them.

    ``factorial`` fills its table of small factorials on first use without a lock, and a thread that calls it
    while another fills it can index a half-filled list (``IndexError``); Bernoulli numbers and the prime sieve
    are filled the same way.  Code generation runs in the audit's worker threads, so the code generator calls
    this first; after it, these tables are only read (for the sizes code generation needs).
    """
    sp.factorial(19)
    sp.bernoulli(2 * _SERIES_TERMS + 2 * RUNTIME_EXPREL_MAX_ORDER)
    sp.sieve.extend(1000)


_TRAILER = "// symsens-runtime-sha256 "


def _header_key(base: str) -> str:
    """The SHA-256 of what the generated header is made from (module docstring)."""
    from ..model import _functions
    from . import _printer

    digest = hashlib.sha256()
    for part in (base, Path(__file__).read_text(), Path(_printer.__file__).read_text(),
                 Path(_functions.__file__).read_text(), sp.__version__,
                 repr((_SERIES_RADIUS, _SERIES_TERMS, RUNTIME_EXPREL_MAX_ORDER))):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _cached_header(key: str) -> str | None:
    """The cached header for ``key`` when a copy is present and intact."""
    from ._build import _read_roots

    for root in _read_roots():
        try:
            text = (root / "runtime" / f"{key}.hpp").read_text()
        except (OSError, UnicodeDecodeError):
            continue
        body, _, trailer = text.rpartition(_TRAILER)
        if trailer.strip() == hashlib.sha256(body.encode()).hexdigest():
            return body
    return None


def _store_header(key: str, body: str) -> None:
    """Keep ``body`` in the cache (best effort: an unwritable cache only costs the next process the SymPy work)."""
    from ._build import _suppress_os_error, _writable_root, _write_atomically

    with _suppress_os_error():
        folder = _writable_root() / "runtime"
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / f"{key}.hpp", body + _TRAILER + hashlib.sha256(body.encode()).hexdigest() + "\n")


@cached_once()
def runtime_header() -> str:
    """The full text of ``symsens_runtime.hpp``; computed once per process, by one thread (others wait), and
    read from the kernel cache when an earlier process made it (module docstring)."""
    warm_sympy_tables()   # code generation after this call may use SymPy's tables from several threads
    base = resources.files("symsens.codegen").joinpath("runtime/symsens_runtime_base.hpp").read_text()
    key = _header_key(base)
    cached = _cached_header(key)
    if cached is not None:
        return cached
    body = _generated_header(base)
    _store_header(key, body)
    return body


def _generated_header(base: str) -> str:
    """The header generated from SymPy (module docstring)."""
    warm_sympy_tables()
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
