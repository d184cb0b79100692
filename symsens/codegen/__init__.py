"""SymPy -> C++ code generation: printer, routine assembler, build-and-load (three separate layers).

Names are imported on first use (module ``__getattr__``), so loading a cached library does not import the
assembler's dependencies (the derivation package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from ._source import ModelSource as ModelSource
    from ._assemble import generate_model_source as generate_model_source
    from ._build import CacheWarning as CacheWarning
    from ._build import build_library as build_library
    from ._build import cache_directory as cache_directory
    from ._build import compile_timeout as compile_timeout
    from ._build import find_compiler as find_compiler
    from ._kernels import Kernels as Kernels
    from ._kernels import compile_model as compile_model
    from ._kernels import write_standalone as write_standalone
    from .._errors import CodegenError as CodegenError
    from ._printer import ConstantTable as ConstantTable
    from ._printer import CxxPrinter as CxxPrinter

__all__ = [
    "CodegenError", "CxxPrinter", "ConstantTable", "ModelSource", "generate_model_source", "build_library",
    "cache_directory", "compile_timeout", "CacheWarning", "find_compiler", "Kernels", "compile_model",
    "write_standalone",
]

# public name -> the submodule defining it
_LAZY: dict[str, str] = {
    "ModelSource": "._source", "generate_model_source": "._assemble",
    "CodegenError": ".._errors", "CxxPrinter": "._printer", "ConstantTable": "._printer",
    "build_library": "._build", "cache_directory": "._build", "compile_timeout": "._build",
    "CacheWarning": "._build", "find_compiler": "._build",
    "Kernels": "._kernels", "compile_model": "._kernels", "write_standalone": "._kernels",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
