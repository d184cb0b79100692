"""What generating a model's C++ produces (:class:`ModelSource`), in a module of its own: the cache index reads it
back without importing the generator (or SymPy)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelSource"]


@dataclass(frozen=True)
class ModelSource:
    """Generated C++ for one model and one choice of sensitivity parameters.

    Attributes
    ----------
    code : str
        The translation unit (includes ``symsens_runtime.hpp``).
    n_states, n_parameters, n_sensitivity_parameters : int
    sensitivity_parameters : tuple of int
        Indices (into the model's parameters) of the parameters differentiated with respect to.
    digest : str
        SHA-256 of ``code``; with the compiler and flags it keys the compiled-library cache.
    routine_costs : tuple of (name, operations)
        The operations of each routine (``_cost`` summed over its statements), from which a solver library
        decides which routine instantiations compile in translation units of their own
        (``symsens.integrate._compiled``); empty for a source read back from the cache index.
    coupling_colors : int
        Colours of the coupling pattern (``sparsity::coupling_colors``): the partials of the duals that the
        forward sensitivities' coupling blocks evaluate ``jacobian_values`` and ``parameter_jacobian`` over.
    """

    model_name: str
    code: str
    n_states: int
    n_parameters: int
    sensitivity_parameters: tuple[int, ...]
    digest: str
    routine_costs: tuple[tuple[str, int], ...] = ()
    coupling_colors: int = 0

    @property
    def n_sensitivity_parameters(self) -> int:
        return len(self.sensitivity_parameters)
