"""The negative log-likelihood of a published PEtab problem and its gradient, with the scheme chosen per problem.

    python examples/petab_objective.py [PROBLEM.yaml]

Default problem: Boehm et al. (2014), J. Proteome Res. 13(12):5685-5694, from the PEtab benchmark collection of
Hass et al. (2019), Bioinformatics 35(17):3073-3082 (the copy kept with the tests).  ``scheme="auto"`` (the
default) runs a stiffness probe once per problem and says what it chose and why; the objective is then
compared with a named scheme at a tighter tolerance, and the gradient with forward sensitivities is printed
on the estimation scale.  Needs ``pip install 'symsens[petab]'``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import symsens.petab

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "tests" / "data" / "petab" / "Boehm_JProteomeRes2014" / "Boehm_JProteomeRes2014.yaml"


def main() -> None:
    problem = symsens.petab.load(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
    choice = problem.scheme_choice
    print(f"scheme chosen: {choice.scheme} ({choice.reason})")

    start = time.perf_counter()
    value = problem.objective()
    print(f"negative log-likelihood (auto, rtol 1e-8): {value:.10g}  [{time.perf_counter() - start:.3f} s, "
          "compile included on first use]")
    tight = problem.objective(scheme="rodas5p", rtol=1e-12)
    print(f"negative log-likelihood (rodas5p, rtol 1e-12): {tight:.10g}  (difference {abs(value - tight):.1e})")

    result = problem.gradient(method="forward")
    gradient = np.asarray(result.gradient)
    print("gradient on the estimation scale:")
    for name, scale, entry in zip(problem.parameter_ids, (q.scale for q in problem.parameters), gradient):
        print(f"  {name:<24} {scale:<6} {entry: .6e}")


if __name__ == "__main__":
    main()
