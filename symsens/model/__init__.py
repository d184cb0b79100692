"""What the user's ODE is: :class:`Model`, the safe model-file language, and the built-in models."""

from ._file import dumps_model as dumps_model
from ._file import load_model_file as load_model_file
from ._file import loads_model as loads_model
from ._functions import exprel as exprel
from ._functions import exprel_derivative as exprel_derivative
from ._load import examples as examples
from ._load import load_model as load_model
from ._model import Model as Model
from ._parser import format_expression as format_expression
from ._parser import parse_expression as parse_expression

__all__ = [
    "Model",
    "load_model",
    "examples",
    "load_model_file",
    "loads_model",
    "dumps_model",
    "parse_expression",
    "format_expression",
    "exprel",
    "exprel_derivative",
    "to_sbml",
]


def __getattr__(name: str) -> object:
    # The SBML module is loaded when asked for: loading or solving a model never imports it (nor libsbml).
    if name == "to_sbml":
        from ._sbml import to_sbml

        return to_sbml
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
