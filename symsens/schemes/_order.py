"""Order conditions via rooted trees (Butcher series), exact, for Runge–Kutta and Rosenbrock tableaux.

A Runge–Kutta method has order ``p`` iff ``Φ(t) = 1/γ(t)`` for every rooted tree ``t`` with at most
``p`` vertices (Butcher's theorem; Hairer, Nørsett & Wanner, *Solving ODEs I*, II.2, Thm. 2.13).
Writing ``g(t) ∈ R^s`` for the stage weights of a tree,

    g(•) = e,     g([t_1, ..., t_m]) = (A g(t_1)) * ... * (A g(t_m))   (componentwise product),
    Φ(t) = b^T g(t),      γ([t_1, ..., t_m]) = |t| γ(t_1) ... γ(t_m).

For a Rosenbrock method ``(I - h γ_ii J) k_i = h f(y0 + Σ α_ij k_j) + h J Σ_{j<i} γ_ij k_j`` the
Jacobian term contributes only to trees whose root has exactly one child, so with ``β = α + γ``
(Hairer & Wanner, *Solving ODEs II*, IV.7, Table 7.1)

    g([t_1]) = β g(t_1),          g([t_1, ..., t_m]) = (α g(t_1)) * ... * (α g(t_m))  for m != 1,

and the same conditions ``b^T g(t) = 1/γ(t)``.  This is the order for an exact Jacobian; W-methods
(arbitrary ``J``) satisfy additional conditions not checked here.

Trees are canonical nested tuples: ``()`` is the single vertex, ``(t_1, ..., t_m)`` a root with the
children sorted, so equal trees are equal tuples.  The number of trees with ``n`` vertices is
1, 1, 2, 4, 9, 20, 48, 115, 286, 719, ... (OEIS A000081).

All arithmetic is exact, in the number field of the tableau (:func:`~symsens.schemes._analysis.one_step_data`).
"""

from __future__ import annotations

import functools
from typing import Any

import sympy as sp

from .._errors import SchemeError
from ._analysis import (
    _register_cache,
    _scheme_cache,
    _scheme_name,
    multistep_function,
    on_multistep_class,
    one_step_data,
    register_multistep,
)

__all__ = [
    "Tree",
    "rooted_trees",
    "tree_order",
    "tree_density",
    "tree_symmetry",
    "elementary_weight",
    "order_condition_residuals",
    "order",
    "stage_order",
    "MAX_TREE_ORDER",
]

Tree = tuple  # a rooted tree: the tuple of its root's subtrees, sorted

#: Trees are generated up to this order at most (≈ 12 000 trees); enough for order-11 methods.
MAX_TREE_ORDER = 12


def tree_order(tree: Tree) -> int:
    """Number of vertices ``|t|``."""
    return 1 + sum(tree_order(child) for child in tree)


@functools.lru_cache(maxsize=None)
def tree_density(tree: Tree) -> int:
    """The density ``γ(t) = |t| Π γ(t_i)``; the order condition is ``Φ(t) = 1/γ(t)``."""
    result = tree_order(tree)
    for child in tree:
        result *= tree_density(child)
    return result


@functools.lru_cache(maxsize=None)
def tree_symmetry(tree: Tree) -> int:
    """The symmetry ``σ(t) = Π σ(t_i)^{m_i} m_i!`` (``m_i`` the multiplicity of each distinct child)."""
    result = 1
    for child in set(tree):
        multiplicity = tree.count(child)
        result *= tree_symmetry(child) ** multiplicity * int(sp.factorial(multiplicity))
    return result


@functools.lru_cache(maxsize=None)
def _all_trees_of_order(n: int) -> tuple[Tree, ...]:
    """All rooted trees with ``n`` vertices, canonical, in a fixed order."""
    if n < 1:
        return ()
    if n == 1:
        return ((),)
    return tuple(sorted({tuple(sorted(forest)) for forest in _forests(n - 1, _max_key=None)}, key=_tree_key))


def _tree_key(tree: Tree) -> tuple[int, str]:
    return (tree_order(tree), repr(tree))


@functools.lru_cache(maxsize=None)
def _forests(total: int, _max_key: tuple[int, int] | None) -> tuple[tuple[Tree, ...], ...]:
    """Multisets of trees with ``total`` vertices, each tree's (order, index) key <= ``_max_key``.

    Enumerating children in non-increasing key order produces every multiset exactly once.
    """
    if total == 0:
        return ((),)
    result: list[tuple[Tree, ...]] = []
    for order_ in range(min(total, _max_key[0] if _max_key else total), 0, -1):
        trees = _all_trees_of_order(order_)
        top = len(trees) - 1
        if _max_key is not None and order_ == _max_key[0]:
            top = _max_key[1]
        for index in range(top, -1, -1):
            for rest in _forests(total - order_, (order_, index)):
                result.append((trees[index],) + rest)
    return tuple(result)


def rooted_trees(order_: int) -> tuple[Tree, ...]:
    """All rooted trees with exactly ``order_`` vertices (canonical nested tuples).

    >>> [len(rooted_trees(n)) for n in range(1, 9)]
    [1, 1, 2, 4, 9, 20, 48, 115]
    """
    if order_ > MAX_TREE_ORDER:
        raise SchemeError(f"`order_` = {order_} exceeds MAX_TREE_ORDER = {MAX_TREE_ORDER}")
    return _all_trees_of_order(order_)


class _Weights:
    """Memoised stage weights ``g(t)`` of one tableau in exact domain arithmetic."""

    def __init__(self, scheme: Any) -> None:
        data = one_step_data(scheme)
        self.data = data
        self.dom = data.domain
        self.s = data.stages
        self.beta = data.M.to_list()
        self.alpha = data.alpha.to_list()
        self.rosenbrock = data.kind == "rosenbrock"
        self._g: dict[Tree, list[Any]] = {}
        self._alpha_g: dict[Tree, list[Any]] = {}
        self._beta_g: dict[Tree, list[Any]] = {}

    def _matvec(self, matrix: list[list[Any]], vector: list[Any]) -> list[Any]:
        zero = self.dom.zero
        out = []
        for row in matrix:
            acc = zero
            for a, v in zip(row, vector):
                if a and v:
                    acc += a * v
            out.append(acc)
        return out

    def alpha_g(self, tree: Tree) -> list[Any]:
        if tree not in self._alpha_g:
            self._alpha_g[tree] = self._matvec(self.alpha, self.g(tree))
        return self._alpha_g[tree]

    def beta_g(self, tree: Tree) -> list[Any]:
        if tree not in self._beta_g:
            self._beta_g[tree] = self._matvec(self.beta, self.g(tree))
        return self._beta_g[tree]

    def g(self, tree: Tree) -> list[Any]:
        if tree in self._g:
            return self._g[tree]
        if self.rosenbrock and len(tree) == 1:
            value = list(self.beta_g(tree[0]))
        else:
            value = [self.dom.one] * self.s
            for child in tree:
                factor = self.alpha_g(child)
                value = [u * v for u, v in zip(value, factor)]
        self._g[tree] = value
        return value

    def phi(self, tree: Tree) -> Any:
        acc = self.dom.zero
        for bi, gi in zip(self.data.b, self.g(tree)):
            acc += bi * gi
        return acc


@_register_cache
@_scheme_cache
def _weights(scheme: Any) -> _Weights:
    return _Weights(scheme)


def elementary_weight(scheme: Any, tree: Tree) -> sp.Expr:
    """``Φ(t) = b^T g(t)`` of a Runge–Kutta or Rosenbrock tableau, exact."""
    weights = _weights(scheme)
    return weights.dom.to_sympy(weights.phi(tree))  # type: ignore[no-any-return]


def order_condition_residuals(scheme: Any, order_: int) -> dict[Tree, sp.Expr]:
    """``{t: Φ(t) - 1/γ(t)}`` for every tree with exactly ``order_`` vertices (all zero iff the order
    conditions of that order hold)."""
    weights = _weights(scheme)
    dom = weights.dom
    return {
        tree: dom.to_sympy(weights.phi(tree) - dom.convert(sp.Rational(1, tree_density(tree))))
        for tree in rooted_trees(order_)
    }


def _conditions_hold(weights: _Weights, order_: int) -> bool:
    """All conditions of one order, exactly (or within the snap of a decimal tableau, see ``OneStepData``)."""
    dom = weights.dom
    for tree in rooted_trees(order_):
        if not weights.data.equal(weights.phi(tree), dom.convert(sp.Rational(1, tree_density(tree)))):
            return False
    return True


@_register_cache
@_scheme_cache
def _one_step_order(scheme: Any) -> int:
    weights = _weights(scheme)
    claimed = getattr(scheme, "order", None)
    # Check one order beyond the claimed one (to prove the order is not higher) and at least to 8,
    # so that every method in the catalogue is confirmed through order 7 plus one failing order.
    limit = min(MAX_TREE_ORDER, max(8, (int(claimed) + 1) if claimed is not None else 8))
    for k in range(1, limit + 1):
        if not _conditions_hold(weights, k):
            return k - 1
    raise SchemeError(
        f"scheme {_scheme_name(scheme)!r} satisfies every order condition up to {limit}; "
        f"orders above MAX_TREE_ORDER = {MAX_TREE_ORDER} are not checked"
    )


@functools.singledispatch
def order(scheme: Any) -> int:
    """The classical order of accuracy, from the order conditions (rooted trees), exact.

    Butcher tableau: Butcher's conditions ``b^T g(t) = 1/γ(t)`` (HNW I, II.2).  Rosenbrock tableau: the
    conditions of HW II, IV.7 (exact Jacobian).  Multistep: delegated to the multistep module
    (``Σ_j α_j j^q = q Σ_j β_j j^{q-1}``).  Checked up to one order above the order the scheme claims
    (and at least to order 8), so the returned order is proved, not just assumed.
    """
    if register_multistep():
        return order(scheme)
    return _one_step_order(scheme)  # type: ignore[no-any-return]


@_register_cache
@_scheme_cache
def _stage_order(scheme: Any) -> int | None:
    data = one_step_data(scheme)
    if data.kind == "rosenbrock":
        return None
    dom = data.domain
    A = data.M.to_list()
    b, c = data.b, data.c
    s = data.stages

    def power(x: Any, k: int) -> Any:
        result = dom.one
        for _ in range(k):
            result = result * x
        return result

    q = 0
    for k in range(1, s + 2):
        inv_k = dom.convert(sp.Rational(1, k))
        # B(k): Σ b_i c_i^{k-1} = 1/k ;  C(k): Σ_j a_ij c_j^{k-1} = c_i^k / k for every i.
        B_k = data.equal(sum((bi * power(ci, k - 1) for bi, ci in zip(b, c)), dom.zero), inv_k)
        C_k = all(
            data.equal(sum((aij * power(cj, k - 1) for aij, cj in zip(row, c)), dom.zero), power(ci, k) * inv_k)
            for row, ci in zip(A, c)
        )
        if not (B_k and C_k):
            break
        q = k
    return q


@functools.singledispatch
def stage_order(scheme: Any) -> int | None:
    """Stage order ``q``: the largest ``q`` with ``B(q)`` and ``C(q)`` (HW II, IV.5, (5.1)).

    ``B(q)``: ``Σ_i b_i c_i^{k-1} = 1/k`` and ``C(q)``: ``Σ_j a_ij c_j^{k-1} = c_i^k / k`` for
    ``k = 1..q`` — every internal stage is then accurate to order ``q``, which bounds the order
    reduction on stiff problems.  Explicit Runge–Kutta methods have ``q = 1``, DIRK ≤ 1, ESDIRK ≤ 2,
    Gauss / Radau IIA ``q = s``.  ``None`` for Rosenbrock and multistep methods (no stage order).
    """
    if register_multistep():
        return stage_order(scheme)
    return _stage_order(scheme)  # type: ignore[no-any-return]


@on_multistep_class
def _register_lmm_order(cls: type) -> None:
    def _lmm_order(method: Any) -> int:
        for name in ("lmm_order",):
            try:
                return int(multistep_function(name)(method))
            except SchemeError:
                pass
        return _lmm_order_from_coefficients(method)

    order.register(cls)(_lmm_order)
    stage_order.register(cls)(lambda method: None)


def _lmm_order_from_coefficients(method: Any) -> int:
    """Order of ``Σ α_j y_{n+j} = h Σ β_j f_{n+j}``: the largest ``p`` with ``C_0 = ... = C_p = 0``,
    ``C_q = Σ_j α_j j^q - q Σ_j β_j j^{q-1}`` (HNW I, III.2, Thm. 2.4)."""
    alpha = [sp.nsimplify(v) for v in method.alpha]
    beta = [sp.nsimplify(v) for v in method.beta]
    p = -1
    for q in range(0, 2 * len(alpha) + 2):
        c_q = sum(a * sp.Integer(j) ** q for j, a in enumerate(alpha))
        if q > 0:
            c_q -= q * sum(bj * sp.Integer(j) ** (q - 1) for j, bj in enumerate(beta))
        if sp.simplify(c_q) != 0:
            return p
        p = q
    return p  # pragma: no cover
