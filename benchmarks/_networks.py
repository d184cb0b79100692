"""Generated test models for benchmarks: random mass-action reaction networks."""

from __future__ import annotations

import numpy as np
import sympy as sp

import symsens


def mass_action_network(n_species: int = 100, n_reactions: int = 200, seed: int = 1) -> symsens.Model:
    """A random mass-action network: each reaction has 1–2 reactants and 1–2 products, its own rate constant.

    Rate of reaction r: ``k_r * prod(reactants)``; species change by the stoichiometry.  Rate constants are
    log-uniform in [1e-2, 1e4], so the network is stiff.
    """
    rng = np.random.default_rng(seed)
    species = [sp.Symbol(f"x{i}") for i in range(n_species)]
    rates = [sp.Symbol(f"k{r}") for r in range(n_reactions)]
    rhs = [sp.S.Zero] * n_species
    for r in range(n_reactions):
        reactants = rng.choice(n_species, size=rng.integers(1, 3), replace=False)
        products = rng.choice(n_species, size=rng.integers(1, 3), replace=False)
        flux = rates[r] * sp.Mul(*(species[i] for i in reactants))
        for i in reactants:
            rhs[i] -= flux
        for i in products:
            rhs[i] += flux
    values = {k.name: float(10 ** rng.uniform(-2, 4)) for k in rates}
    y0 = [float(v) for v in rng.uniform(0.0, 1.0, n_species)]
    return symsens.Model(
        states=species, parameters=values, rhs=rhs, initial_conditions=y0, name=f"mass-action-{n_species}x{n_reactions}"
    )
