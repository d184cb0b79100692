"""What the user's ODE is: :class:`Model`, the safe model-file language, and the built-in models."""

from ._functions import exprel as exprel
from ._functions import exprel_derivative as exprel_derivative
from ._load import examples as examples
from ._load import load_model as load_model
from ._model import Model as Model

__all__ = ["Model", "load_model", "examples", "exprel", "exprel_derivative"]
