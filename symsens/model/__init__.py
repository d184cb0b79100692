"""What the user's ODE is: :class:`Model`, the safe model-file language, and the built-in models.

Names are imported on first use (module ``__getattr__``): ``Model`` and ``load_model`` import no SymPy until a
model's expressions are built, so a model whose summary is cached is solved with cached compiled libraries
without SymPy; the parser, the model-file reader and writer and the SBML module load when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
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
    from ._sbml import to_sbml as to_sbml

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

# public name -> the submodule defining it
_LAZY: dict[str, str] = {
    "Model": "._model", "load_model": "._load", "examples": "._load", "load_model_file": "._file",
    "loads_model": "._file", "dumps_model": "._file", "parse_expression": "._parser",
    "format_expression": "._parser", "exprel": "._functions", "exprel_derivative": "._functions",
    "to_sbml": "._sbml",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
