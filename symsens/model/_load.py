"""``load_model``: one entry point for model files and built-in models."""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import CodegenError, ModelError
from .._once import cached_once
from ._model import Model
from ._summary import ModelOrigin

__all__ = ["load_model", "examples", "BUILTIN_NAMES"]

#: The names of the built-in models (the keys of ``symsens.model._library.BUILTIN_MODELS``, in its order),
#: known without building any of them or importing SymPy.
BUILTIN_NAMES: tuple[str, ...] = (
    "robertson", "van-der-pol", "hodgkin-huxley", "hindmarsh-rose", "calcium-neuron", "stiff-linear",
    "two-scale-linear", "stiff-neural-ode", "hires",
)


def examples() -> tuple[str, ...]:
    """Names of the built-in models, e.g. ``"hodgkin-huxley"``."""
    return BUILTIN_NAMES


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


def read_model_text(source: str) -> str:
    """The text of the model file ``source`` (UTF-8, a leading byte-order mark dropped); ModelError naming
    the file when it cannot be read or is not UTF-8."""
    try:
        return Path(source).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelError(f"model file is not valid UTF-8: {error}", source=source) from None
    except OSError as error:
        raise ModelError(f"cannot read model file: {error.strerror or error}", source=source) from None


def _from_text(kind: str, text: str, source: str) -> Model:
    """The model of a model file's text (``kind`` ``"toml"``), an SBML document's (``"sbml"``) or a built-in
    name (``"builtin"``): made from its cached summary when there is one (no SymPy or libsbml until its
    expressions are asked for), else built.

    The summary is keyed by the exact text and the code that reads it (:mod:`symsens.codegen._summaries`), so
    an edited file or another symsens version never finds the summary of a different model."""
    from ..codegen._summaries import read_summary, summary_key

    try:
        key = summary_key(kind, text)
        summary = read_summary(key)
    except CodegenError:  # an unusable cache directory: the solve reports it; loading does not need the cache
        key, summary = "", None
    if summary is not None:
        return Model._from_summary(summary, ModelOrigin(kind, text, source, key, summary.parameter_values))
    model = build_from_text(kind, text, source)
    if key:
        object.__setattr__(model, "_origin", ModelOrigin(kind, text, source, key, model.parameter_values))
    return model


def build_from_text(kind: str, text: str, source: str) -> Model:
    """The model of a TOML model file's text (``kind`` ``"toml"``), an SBML document's text (``"sbml"``) or a
    built-in name (``"builtin"``), built with its expressions; ``source`` names it in errors."""
    if kind == "toml":
        from ._file import loads_model

        return loads_model(text, source=source)
    if kind == "sbml":
        from ._sbml import read_sbml

        return read_sbml(source, text=text).model
    if kind == "builtin":
        from ._library import BUILTIN_MODELS

        return BUILTIN_MODELS[text]()
    raise ModelError(f"unknown kind of model text {kind!r}")  # pragma: no cover - callers pass one of the three


@cached_once()
def builtin(name: str) -> Model:
    """The built-in model ``name`` (one of :data:`BUILTIN_NAMES`), made once per process and shared: a Model is
    immutable (``with_parameter_values`` returns a copy).  From its cached summary when there is one."""
    return _from_text("builtin", name, name)


def load_model(source: str | os.PathLike[str]) -> Model:
    """Load a model from a TOML model file, an SBML file or by the name of a built-in model.

    ``source`` is taken as a file when it names an existing path or ends in ``.toml``, ``.xml`` or
    ``.sbml``; otherwise as a built-in name (see :func:`examples`).  A TOML file is parsed by the model
    language's whitelist grammar; an SBML file (suffix ``.xml``/``.sbml``, or content starting with an
    ``<sbml>`` document) is read through python-libsbml (extra ``symsens[sbml]``, see docs/sbml.md).
    Nothing in either is executed.

    A TOML or SBML file or built-in model that was solved before with compiled libraries has a summary in the
    disk cache (keyed by its exact text): the model is then made from it without importing SymPy or libsbml,
    and its expressions are built from the text when first asked for (``model.rhs``, a derivation, a new
    compile), so a fresh process that solves it with cached libraries runs no symbolic work (docs/solvers.md,
    "A warm start without SymPy").
    """
    text = os.fspath(source)
    path = Path(text)
    if _is_sbml_file(path):
        if not path.is_file():
            raise ModelError(f"SBML file {text!r} does not exist")
        try:
            document = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):  # libsbml reads other encodings and reports unreadable files
            from ._sbml import load_sbml

            return load_sbml(path)
        return _from_text("sbml", document, text)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ModelError(f"model file {text!r} does not exist")
        return _from_text("toml", read_model_text(text), text)
    if text in BUILTIN_NAMES:
        return builtin(text)
    import difflib

    close = difflib.get_close_matches(text, list(BUILTIN_NAMES), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ModelError(
        f"{text!r} is neither a model file nor a built-in model{hint} (built-in: {', '.join(BUILTIN_NAMES)})",
        name=text,
    )
