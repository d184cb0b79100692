"""``load_model``: one entry point for model files and built-in models."""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import ModelError
from ._model import Model

__all__ = ["load_model", "examples"]


def examples() -> tuple[str, ...]:
    """Names of the built-in models, e.g. ``"hodgkin-huxley"``."""
    from ._library import BUILTIN_MODELS

    return tuple(BUILTIN_MODELS)


_SBML_SUFFIXES = (".xml", ".sbml")


def _is_sbml_file(path: Path) -> bool:
    """An SBML file: ``.xml``/``.sbml`` suffix, or (for other suffixes) an XML document with an ``<sbml>`` root."""
    if path.suffix.lower() in _SBML_SUFFIXES:
        return True
    if path.suffix.lower() == ".toml" or not path.is_file():
        return False
    from ._sbml import looks_like_sbml

    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return looks_like_sbml(head.decode("utf-8", errors="replace"))


def load_model(source: str | os.PathLike[str]) -> Model:
    """Load a model from a TOML model file, an SBML file or by the name of a built-in model.

    ``source`` is taken as a file when it names an existing path or ends in ``.toml``, ``.xml`` or
    ``.sbml``; otherwise as a built-in name (see :func:`examples`).  A TOML file is parsed by the model
    language's whitelist grammar; an SBML file (suffix ``.xml``/``.sbml``, or content starting with an
    ``<sbml>`` document) is read through python-libsbml (extra ``symsens[sbml]``, see docs/sbml.md).
    Nothing in either is executed.
    """
    from ._library import BUILTIN_MODELS, builtin_model

    text = os.fspath(source)
    path = Path(text)
    if _is_sbml_file(path):
        if not path.is_file():
            raise ModelError(f"SBML file {text!r} does not exist")
        from ._sbml import load_sbml

        return load_sbml(path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ModelError(f"model file {text!r} does not exist")
        from ._file import load_model_file

        return load_model_file(path)
    if text in BUILTIN_MODELS:
        return builtin_model(text)
    import difflib

    close = difflib.get_close_matches(text, list(BUILTIN_MODELS), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ModelError(
        f"{text!r} is neither a model file nor a built-in model{hint} (built-in: {', '.join(BUILTIN_MODELS)})",
        name=text,
    )
