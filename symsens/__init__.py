"""symsens: are the parameter gradients of your ODE model trustworthy, why not, and what is the true one?

The data flow is one way: model -> derive -> (codegen -> integrate) -> reference/audit -> report.
"""

from ._errors import DerivationError as DerivationError
from ._errors import IntegrationError as IntegrationError
from ._errors import ModelError as ModelError
from ._errors import SchemeError as SchemeError
from ._errors import SymsensError as SymsensError
from .model import Model as Model
from .model import examples as examples
from .model import load_model as load_model
from .integrate import Solution as Solution
from .integrate import solve as solve
from .reference import Reference as Reference
from .reference import reference as reference
from .audit import AuditReport as AuditReport
from . import audit as audit  # the package, callable as the function audit(model, loss, ...)
from .audit import audit_sweep as audit_sweep

__version__ = "0.1.0"

__all__ = [
    "Model",
    "load_model",
    "examples",
    "SymsensError",
    "ModelError",
    "SchemeError",
    "DerivationError",
    "IntegrationError",
    "solve",
    "Solution",
    "reference",
    "Reference",
    "audit",
    "audit_sweep",
    "AuditReport",
    "__version__",
]
