"""PEtab parameter-estimation problems: :func:`load` a ``problem.yaml`` as a symsens model and its negative
log-likelihood, with :meth:`PetabProblem.objective`, :meth:`PetabProblem.gradient` and the audit.

See docs/petab.md.  Needs the ``petab`` and ``python-libsbml`` packages (``pip install 'symsens[petab]'``).
"""

from ._noise import negative_log_likelihood as negative_log_likelihood
from ._problem import SCALES as SCALES
from ._problem import EstimatedParameter as EstimatedParameter
from ._problem import Measurement as Measurement
from ._problem import PetabProblem as PetabProblem
from ._problem import Preequilibration as Preequilibration
from ._problem import load as load
from ._scheme_choice import SchemeChoice as SchemeChoice
from ._scheme_choice import choose_scheme as choose_scheme
from ._steady import ConservationLaws as ConservationLaws
from ._steady import SteadyState as SteadyState
from ._steady import conservation_laws as conservation_laws
from ._steady import steady_state as steady_state
from ._tables import PetabError as PetabError

__all__ = [
    "load", "PetabProblem", "EstimatedParameter", "Measurement", "Preequilibration", "SCALES", "PetabError",
    "negative_log_likelihood", "conservation_laws", "ConservationLaws", "steady_state", "SteadyState",
    "SchemeChoice", "choose_scheme",
]
