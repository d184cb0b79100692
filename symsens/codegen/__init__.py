"""SymPy -> C++ code generation: printer, routine assembler, build-and-load (three separate layers)."""

from ._assemble import ModelSource as ModelSource
from ._assemble import generate_model_source as generate_model_source
from ._printer import CodegenError as CodegenError
from ._printer import ConstantTable as ConstantTable
from ._printer import CxxPrinter as CxxPrinter

__all__ = ["CodegenError", "CxxPrinter", "ConstantTable", "ModelSource", "generate_model_source"]
from ._build import CacheWarning as CacheWarning
from ._build import build_library as build_library
from ._build import cache_directory as cache_directory
from ._build import compile_timeout as compile_timeout
from ._build import find_compiler as find_compiler
from ._kernels import Kernels as Kernels
from ._kernels import compile_model as compile_model
from ._kernels import write_standalone as write_standalone

__all__ += [
    "build_library", "cache_directory", "compile_timeout", "CacheWarning", "find_compiler", "Kernels", "compile_model",
    "write_standalone",
]
