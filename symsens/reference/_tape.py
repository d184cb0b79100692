"""SymPy expressions -> a straight-line program ("tape") evaluated in mpmath, as numbers or as Taylor jets.

No text is evaluated: the expression *tree* is walked once (after common-subexpression elimination) and
turned into a list of operations on earlier results.  The same tape is evaluated

* on mpmath numbers (:meth:`Tape.evaluate`), for the collocation path, and
* on truncated Taylor series ("jets", :class:`JetEvaluator`): coefficient ``k`` of every operation from
  coefficients ``0..k`` of its arguments, by the classical recurrences of automatic Taylor expansion
  (R. E. Moore, *Interval Analysis*, 1966; A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed.,
  SIAM 2008, Sect. 13.2; A. Jorba and M. Zou, Experiment. Math. 14 (2005) 99-117):

  ============  ==================================================================================
  c = a b       c_k = sum_{j=0..k} a_j b_{k-j}
  c = a / b     c_k = (a_k - sum_{j=1..k} b_j c_{k-j}) / b_0
  c = exp a     c_k = (1/k) sum_{j=1..k} j a_j c_{k-j}
  c = log a     c_k = (a_k - (1/k) sum_{j=1..k-1} j c_j a_{k-j}) / a_0
  c = a^r       c_k = (1/(k a_0)) sum_{j=0..k-1} (r (k-j) - j) a_{k-j} c_j
  s, c = sin a, cos a   s_k = (1/k) sum j a_j c_{k-j},  c_k = -(1/k) sum j a_j s_{k-j}  (sinh/cosh: +)
  t = tanh a    t_k = (1/k) sum_{j=1..k} j a_j w_{k-j},  w = 1 - t^2   (tan: w = 1 + t^2)
  ============  ==================================================================================

  and any other analytic function ``g`` (``exprel`` and its derivatives) by composition with the shifted
  series: ``g(a) = sum_m g^(m)(a_0)/m! (a - a_0)^m``, the powers of ``a - a_0`` kept as a table that grows
  by one coefficient per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import mpmath
import sympy as sp

from .._precision import mpmath_precision
from ..model._functions import exprel, exprel_derivative

__all__ = ["Tape", "JetEvaluator", "exprel_derivatives"]

(CONST, INPUT, ADD, SCALE, MUL, DIV, EXP, LOG, POW, SINCOS, COSOF, SINHCOSH, COSHOF, TANH, TAN, SPECIAL, ABS,
 STEP, SELECT) = range(19)


@lru_cache(maxsize=None)
def _q_polynomials(order: int) -> tuple[tuple[int, ...], ...]:
    """Integer coefficients of Q_m(g) with d^m/dx^m g = Q_m(g) for g = 1/(e^x - 1) (g' = -g - g^2)."""
    polys: list[tuple[int, ...]] = [(0, 1)]
    for _ in range(order):
        q = polys[-1]
        derivative = [k * q[k] for k in range(1, len(q))]  # Q'(g) coefficients (degree len(q) - 2)
        # Q'(g) * (-g - g^2)
        out = [0] * (len(derivative) + 2)
        for k, a in enumerate(derivative):
            out[k + 1] -= a
            out[k + 2] -= a
        polys.append(tuple(out))
    return tuple(polys)


def exprel_derivatives(x: mpmath.mpf, count: int) -> list[mpmath.mpf]:
    """``[exprel^(m)(x) for m in 0..count]`` at the working precision, ``exprel(x) = x / (e^x - 1)``.

    ``|x| < 1``: the Bernoulli series ``exprel^(m)(x) = sum_{k>=m} B_k x^(k-m) / (k-m)!`` (Abramowitz &
    Stegun 23.1.1; radius 2 pi).  Otherwise ``exprel = x g`` with ``g = 1/(e^x - 1)``, whose derivatives are
    polynomials in g (``g' = -g - g^2``): ``exprel^(m) = x Q_m(g) + m Q_{m-1}(g)``, evaluated with extra
    digits against the cancellation of the polynomial's terms.
    """
    x = mpmath.mpf(x)
    dps = mpmath.mp.dps
    if abs(x) < 1:
        out = []
        eps = mpmath.mpf(10) ** (-dps - 5)
        with mpmath_precision(dps=dps + 10):
            for m in range(count + 1):
                total = mpmath.mpf(0)
                k = m
                power = mpmath.mpf(1)  # x^(k-m) / (k-m)!
                while True:
                    term = mpmath.bernoulli(k) * power
                    total += term
                    # |B_k| <= 2 k! / (2 pi)^k (1 + 2^-k ...) < 4 k! / (2 pi)^k: a bound on the next terms.
                    bound = 4 * mpmath.factorial(k) * abs(power) / (2 * mpmath.pi) ** k
                    if k > m + 4 and bound < eps:
                        break
                    k += 1
                    power = power * x / (k - m)
                out.append(total)
        return [+v for v in out]
    polys = _q_polynomials(count)
    extra = 15 + int(abs(x) / 2) + 2 * count + max(len(str(max(abs(c) for c in p))) for p in polys)
    with mpmath_precision(dps=dps + extra):
        g = 1 / mpmath.expm1(x)
        q_values = [mpmath.polyval(list(reversed(p)), g) for p in polys]
        out = [x * q_values[0]] + [x * q_values[m] + m * q_values[m - 1] for m in range(1, count + 1)]
    return [+v for v in out]


class Tape:
    """A straight-line program for ``expressions`` in the variables ``inputs``.

    Parameters
    ----------
    expressions : sequence of SymPy expressions
    inputs : sequence of Symbols
        Their values are given at evaluation, in this order.

    Raises
    ------
    ValueError
        For a function the mpmath path does not implement (the message names it).
    """

    def __init__(self, expressions: Sequence[sp.Expr], inputs: Sequence[sp.Symbol]) -> None:
        self.ops: list[int] = []
        self.args: list[tuple[int, ...]] = []
        self.data: list[object] = []
        self._memo: dict[sp.Basic, int] = {}
        self.n_inputs = len(inputs)
        for k, symbol in enumerate(inputs):
            self._memo[symbol] = self._add(INPUT, (), k)
        replacements, reduced = sp.cse([sp.sympify(e) for e in expressions], optimizations=None)
        for symbol, value in replacements:
            self._memo[symbol] = self._node(value)
        self.outputs = [self._node(e) for e in reduced]

    # -- building ------------------------------------------------------------------------------------------
    def _add(self, op: int, args: tuple[int, ...], data: object = None) -> int:
        self.ops.append(op)
        self.args.append(args)
        self.data.append(data)
        return len(self.ops) - 1

    def _const(self, value: sp.Expr) -> int:
        key = ("const", value)
        if key not in self._memo:
            self._memo[key] = self._add(CONST, (), value)  # converted at evaluation precision
        return self._memo[key]

    def _node(self, expr: sp.Basic) -> int:
        if expr in self._memo:
            return self._memo[expr]
        index = self._build(expr)
        self._memo[expr] = index
        return index

    def _build(self, expr: sp.Basic) -> int:
        if expr.is_Number or isinstance(expr, (sp.core.numbers.NumberSymbol, sp.core.numbers.Exp1)):
            return self._const(expr)
        if isinstance(expr, sp.Symbol):
            raise ValueError(f"symbol {expr.name!r} is not an input of the mpmath tape")
        if isinstance(expr, sp.Add):
            return self._add(ADD, tuple(self._node(a) for a in expr.args))
        if isinstance(expr, sp.Mul):
            coefficient, rest = expr.as_coeff_Mul()
            if coefficient != 1 and coefficient.is_Number:
                return self._add(SCALE, (self._node(rest),), coefficient)
            factors = list(expr.args)
            numerators = [f for f in factors if not (f.is_Pow and f.exp.is_Number and f.exp < 0)]
            denominators = [sp.Pow(f.base, -f.exp) for f in factors if f.is_Pow and f.exp.is_Number and f.exp < 0]
            node = self._product(numerators) if numerators else self._const(sp.Integer(1))
            if denominators:
                node = self._add(DIV, (node, self._product(denominators)))
            return node
        if isinstance(expr, sp.Pow):
            base, exponent = expr.base, expr.exp
            if base == sp.E:
                return self._add(EXP, (self._node(exponent),))
            if exponent.is_Integer:
                n = int(exponent)
                if n < 0:
                    return self._add(DIV, (self._const(sp.Integer(1)), self._node(sp.Pow(base, -n))))
                return self._power(self._node(base), n)
            if exponent.is_Number:
                return self._add(POW, (self._node(base),), exponent)
            # b^e = exp(e log b)
            log_node = self._add(LOG, (self._node(base),))
            return self._add(EXP, (self._add(MUL, (self._node(exponent), log_node)),))
        if isinstance(expr, sp.exp):
            return self._add(EXP, (self._node(expr.args[0]),))
        if isinstance(expr, sp.log):
            return self._add(LOG, (self._node(expr.args[0]),))
        if isinstance(expr, (sp.sin, sp.cos)):
            pair = self._sincos(expr.args[0], SINCOS)
            return pair if isinstance(expr, sp.sin) else self._cos_of(pair, COSOF)
        if isinstance(expr, (sp.sinh, sp.cosh)):
            pair = self._sincos(expr.args[0], SINHCOSH)
            return pair if isinstance(expr, sp.sinh) else self._cos_of(pair, COSHOF)
        if isinstance(expr, sp.tanh):
            return self._add(TANH, (self._node(expr.args[0]),))
        if isinstance(expr, sp.tan):
            return self._add(TAN, (self._node(expr.args[0]),))
        if isinstance(expr, exprel):
            return self._add(SPECIAL, (self._node(expr.args[0]),), 0)
        if isinstance(expr, exprel_derivative):
            order, argument = expr.args
            return self._add(SPECIAL, (self._node(argument),), int(order))
        if isinstance(expr, sp.Abs):
            return self._add(ABS, (self._node(expr.args[0]),))
        if isinstance(expr, sp.sign):
            return self._add(STEP, (self._node(expr.args[0]),), "sign")
        if isinstance(expr, sp.Heaviside):
            at_zero = expr.args[1] if len(expr.args) > 1 else sp.S.Half
            return self._add(STEP, (self._node(expr.args[0]),), ("heaviside", at_zero))
        if isinstance(expr, (sp.Min, sp.Max)):
            nodes = [self._node(a) for a in expr.args]
            out = nodes[0]
            for other in nodes[1:]:
                out = self._add(SELECT, (out, other), "min" if isinstance(expr, sp.Min) else "max")
            return out
        raise ValueError(f"the mpmath path cannot evaluate {type(expr).__name__} ({expr}); use path=\"fast\"")

    def _product(self, factors: list[sp.Expr]) -> int:
        node = self._node(factors[0])
        for factor in factors[1:]:
            node = self._add(MUL, (node, self._node(factor)))
        return node

    def _power(self, base: int, n: int) -> int:
        if n == 0:
            return self._const(sp.Integer(1))
        if n == 1:
            return base
        half = self._power(base, n // 2)
        square = self._add(MUL, (half, half))
        return self._add(MUL, (square, base)) if n % 2 else square

    def _sincos(self, argument: sp.Expr, op: int) -> int:
        key = (op, argument)
        if key not in self._memo:
            self._memo[key] = self._add(op, (self._node(argument),))
        return self._memo[key]

    def _cos_of(self, pair: int, op: int) -> int:
        key = (op, pair)
        if key not in self._memo:
            self._memo[key] = self._add(op, (pair,))
        return self._memo[key]

    # -- evaluation on numbers -------------------------------------------------------------------------------
    def constants(self) -> list[mpmath.mpf | None]:
        """The CONST nodes' values at the current working precision (None elsewhere)."""
        dps = mpmath.mp.dps
        out: list[mpmath.mpf | None] = []
        for op, data in zip(self.ops, self.data):
            out.append(mpmath.mpf(sp.N(data, dps + 10)) if op == CONST else None)
        return out

    def evaluate(self, inputs: Sequence[mpmath.mpf], constants: list[mpmath.mpf | None] | None = None) -> list[mpmath.mpf]:
        """The outputs at ``inputs`` (mpmath numbers at the working precision)."""
        consts = constants if constants is not None else self.constants()
        v: list[object] = [None] * len(self.ops)
        aux: dict[int, mpmath.mpf] = {}
        for k, (op, args, data) in enumerate(zip(self.ops, self.args, self.data)):
            if op == CONST:
                v[k] = consts[k]
            elif op == INPUT:
                v[k] = inputs[data]  # type: ignore[index]
            elif op == ADD:
                v[k] = mpmath.fsum(v[a] for a in args)
            elif op == SCALE:
                v[k] = _number(data) * v[args[0]]
            elif op == MUL:
                v[k] = v[args[0]] * v[args[1]]
            elif op == DIV:
                v[k] = v[args[0]] / v[args[1]]
            elif op == EXP:
                v[k] = mpmath.exp(v[args[0]])
            elif op == LOG:
                v[k] = mpmath.log(v[args[0]])
            elif op == POW:
                v[k] = mpmath.power(v[args[0]], _number(data))
            elif op == SINCOS:
                v[k] = mpmath.sin(v[args[0]])
                aux[k] = mpmath.cos(v[args[0]])
            elif op == COSOF or op == COSHOF:
                v[k] = aux[args[0]]
            elif op == SINHCOSH:
                v[k] = mpmath.sinh(v[args[0]])
                aux[k] = mpmath.cosh(v[args[0]])
            elif op == TANH:
                v[k] = mpmath.tanh(v[args[0]])
            elif op == TAN:
                v[k] = mpmath.tan(v[args[0]])
            elif op == SPECIAL:
                v[k] = exprel_derivatives(v[args[0]], int(data))[int(data)]  # type: ignore[arg-type]
            elif op == ABS:
                v[k] = abs(v[args[0]])
            elif op == STEP:
                v[k] = _step(v[args[0]], data)
            elif op == SELECT:
                a, b = v[args[0]], v[args[1]]
                v[k] = (b if b < a else a) if data == "min" else (b if a < b else a)
        return [v[o] for o in self.outputs]  # type: ignore[misc]


def _number(value: object) -> mpmath.mpf:
    return mpmath.mpf(sp.N(value, mpmath.mp.dps + 10))


def _step(x: mpmath.mpf, data: object) -> mpmath.mpf:
    if data == "sign":
        return mpmath.mpf(mpmath.sign(x))
    _, at_zero = data  # type: ignore[misc]
    if x > 0:
        return mpmath.mpf(1)
    if x < 0:
        return mpmath.mpf(0)
    return _number(at_zero)


class JetEvaluator:
    """Taylor coefficients of every tape node, one order at a time (see the module docstring).

    Call :meth:`start` with the order-0 inputs, then :meth:`next_order` with the inputs' coefficient ``k``
    for ``k = 1, 2, ...``; ``coefficient(output, k)`` reads an output's coefficient ``k``.
    """

    def __init__(self, tape: Tape, max_order: int, static_inputs: Sequence[int] = ()) -> None:
        self.tape = tape
        self.max_order = max_order
        self.constants = tape.constants()
        self.scales = [(_number(d) if op in (SCALE, POW) else None) for op, d in zip(tape.ops, tape.data)]
        # Static nodes depend only on constants and on inputs that are constant in time (parameters): their
        # coefficients of order >= 1 vanish, so they are computed once per step, and a product with one is
        # a scaling.
        static_set = set(static_inputs)
        static = []
        for op, args, data in zip(tape.ops, tape.args, tape.data):
            if op == CONST:
                static.append(True)
            elif op == INPUT:
                static.append(data in static_set)
            else:
                static.append(all(static[a] for a in args))
        self.static = static

    def start(self, inputs: Sequence[mpmath.mpf]) -> None:
        tape = self.tape
        m = len(tape.ops)
        self.c: list[list[mpmath.mpf]] = [[] for _ in range(m)]
        self.aux: list[list[mpmath.mpf]] = [[] for _ in range(m)]
        self.derivs: dict[int, list[mpmath.mpf]] = {}
        self.bell: dict[int, list[list[mpmath.mpf]]] = {}
        self.inputs: list[list[mpmath.mpf]] = [[x] for x in inputs]
        self.order = -1
        self._advance()

    def next_order(self, inputs_k: Sequence[mpmath.mpf]) -> None:
        for i, x in enumerate(inputs_k):
            self.inputs[i].append(x)
        self._advance()

    def coefficient(self, output: int, k: int) -> mpmath.mpf:
        return self.c[self.tape.outputs[output]][k]

    def _advance(self) -> None:
        self.order += 1
        k = self.order
        tape = self.tape
        c, aux = self.c, self.aux
        zero = mpmath.mpf(0)
        static = self.static
        for n, (op, args, data) in enumerate(zip(tape.ops, tape.args, tape.data)):
            if k > 0 and static[n]:
                c[n].append(zero)
                continue
            if k > 0 and op == MUL and (static[args[0]] or static[args[1]]):
                fixed, moving = (args[0], args[1]) if static[args[0]] else (args[1], args[0])
                c[n].append(c[fixed][0] * c[moving][k])
                continue
            if k > 0 and op == DIV and static[args[1]]:
                c[n].append(c[args[0]][k] / c[args[1]][0])
                continue
            if k > 0 and op == ADD:
                c[n].append(mpmath.fsum(c[a][k] for a in args if not static[a]))
                continue
            if op == CONST:
                value = self.constants[n] if k == 0 else zero
            elif op == INPUT:
                value = self.inputs[data][k]  # type: ignore[index]
            elif op == ADD:
                value = mpmath.fsum(c[a][k] for a in args)
            elif op == SCALE:
                value = self.scales[n] * c[args[0]][k]
            elif op == MUL:
                a, b = c[args[0]], c[args[1]]
                value = mpmath.fdot([(a[j], b[k - j]) for j in range(k + 1)])
            elif op == DIV:
                a, b, own = c[args[0]], c[args[1]], c[n]
                if k == 0:
                    value = a[0] / b[0]
                else:
                    value = (a[k] - mpmath.fdot([(b[j], own[k - j]) for j in range(1, k + 1)])) / b[0]
            elif op == EXP:
                a, own = c[args[0]], c[n]
                if k == 0:
                    value = mpmath.exp(a[0])
                else:
                    value = mpmath.fdot([(j * a[j], own[k - j]) for j in range(1, k + 1)]) / k
            elif op == LOG:
                a, own = c[args[0]], c[n]
                if k == 0:
                    value = mpmath.log(a[0])
                else:
                    value = (a[k] - mpmath.fdot([(j * own[j], a[k - j]) for j in range(1, k)]) / k) / a[0]
            elif op == POW:
                a, own, r = c[args[0]], c[n], self.scales[n]
                if k == 0:
                    value = mpmath.power(a[0], r)
                else:
                    value = mpmath.fdot([((r * (k - j) - j) * a[k - j], own[j]) for j in range(k)]) / (k * a[0])
            elif op in (SINCOS, SINHCOSH):
                a, s, co = c[args[0]], c[n], aux[n]
                if k == 0:
                    value = mpmath.sin(a[0]) if op == SINCOS else mpmath.sinh(a[0])
                    aux[n].append(mpmath.cos(a[0]) if op == SINCOS else mpmath.cosh(a[0]))
                else:
                    value = mpmath.fdot([(j * a[j], co[k - j]) for j in range(1, k + 1)]) / k
                    other = mpmath.fdot([(j * a[j], s[k - j]) for j in range(1, k + 1)]) / k
                    aux[n].append(-other if op == SINCOS else other)
            elif op in (COSOF, COSHOF):
                value = aux[args[0]][k]
            elif op in (TANH, TAN):
                a, t, w = c[args[0]], c[n], aux[n]
                sign = -1 if op == TANH else 1
                if k == 0:
                    value = mpmath.tanh(a[0]) if op == TANH else mpmath.tan(a[0])
                else:
                    value = mpmath.fdot([(j * a[j], w[k - j]) for j in range(1, k + 1)]) / k
                t_k = value
                # w_k = delta_k0 + sign * sum_{i=0..k} t_i t_{k-i} (t_k is known now)
                square = mpmath.fdot([(t[i] if i < k else t_k, t[k - i] if k - i < k else t_k) for i in range(k + 1)])
                aux[n].append((1 if k == 0 else 0) + sign * square)
            elif op == SPECIAL:
                a = c[args[0]]
                if k == 0:
                    order = int(data)  # type: ignore[arg-type]
                    values = exprel_derivatives(a[0], order + self.max_order + 1)
                    factorial = mpmath.mpf(1)
                    scaled = []
                    for m in range(self.max_order + 2):
                        if m > 0:
                            factorial *= m
                        scaled.append(values[order + m] / factorial)
                    self.derivs[n] = scaled
                    self.bell[n] = [[]]  # bell[m][k] = coefficient k of (a - a_0)^m, m >= 1
                    value = scaled[0]
                else:
                    table = self.bell[n]
                    table.append([zero] * k)  # power m = k: coefficients below k vanish
                    # coefficient k of (a - a0)^1 is a_k; of (a - a0)^m is sum_{j=1..k-m+1} a_j [(a-a0)^(m-1)]_{k-j}
                    for m in range(1, k + 1):
                        row = table[m]
                        while len(row) < k:
                            row.append(zero)
                        if m == 1:
                            row.append(a[k])
                        else:
                            previous = table[m - 1]
                            row.append(mpmath.fdot([(a[j], previous[k - j]) for j in range(1, k - m + 2)]))
                    d = self.derivs[n]
                    value = mpmath.fdot([(d[m], table[m][k]) for m in range(1, k + 1)])
            elif op == ABS:
                a = c[args[0]]
                if k == 0:
                    aux[n].append(mpmath.mpf(-1) if a[0] < 0 else mpmath.mpf(1))
                value = aux[n][0] * a[k]
            elif op == STEP:
                value = _step(c[args[0]][0], data) if k == 0 else zero
            elif op == SELECT:
                a, b = c[args[0]], c[args[1]]
                if k == 0:
                    pick_b = (b[0] < a[0]) if data == "min" else (a[0] < b[0])
                    aux[n].append(mpmath.mpf(1 if pick_b else 0))
                value = b[k] if aux[n][0] else a[k]
            else:  # pragma: no cover - every op is handled above
                raise ValueError(f"unknown tape operation {op}")
            c[n].append(value)
