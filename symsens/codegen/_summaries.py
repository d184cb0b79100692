"""Model summaries in the disk cache, keyed by the text a model is loaded from.

``<cache root>/models/<key>.json`` holds the :class:`~symsens.model._summary.ModelSummary` of the model whose
text has SHA-256 key ``key`` (:func:`summary_key`: the kind of text, the text itself and the code that turns
it into a model and its facts).  :func:`symsens.load_model` reads it; when it is there the model is made from it
without SymPy, and the compiled-library keys of :func:`symsens.codegen._kernels.model_fingerprint` come from its
facts.  It is written by :func:`symsens.codegen._kernels.model_facts`, the first time a process computes the
facts of a model loaded from a text: only models whose compiled code is used get a summary.

A summary is only ever a shortcut: a missing, unreadable, damaged (its checksum) or foreign file is a miss, and
the model is built from its text as without a cache.  Writing one that cannot be written costs nothing but the
shortcut.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .._errors import CodegenError
from .._once import cached_once
from ..model._summary import ModelSummary
from ._build import _read_roots, _suppress_os_error, _write_atomically, cache_directory

__all__ = ["summary_key", "read_summary", "write_summary", "loader_digest"]

_FOLDER = "models"


@cached_once()
def loader_digest() -> str:
    """SHA-256 of the code that turns a model's text into a model and its facts: the model package's files
    and the code generator's digest (:func:`symsens.codegen._kernels._generator_digest`, which covers the
    canonical text of expressions, the versions of symsens, Python, SymPy and mpmath).  A few milliseconds,
    once per process."""
    from . import _kernels

    package = Path(__file__).resolve().parent.parent / "model"
    digest = hashlib.sha256(b"symsens-model-summary-1\0" + _kernels._generator_digest().encode() + b"\0")
    for file in sorted(package.glob("*.py")):
        digest.update(file.name.encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:  # a frozen installation without sources: the versions in the generator digest remain
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    return digest.hexdigest()


def summary_key(kind: str, text: str) -> str:
    """The cache key of the model of ``text`` (``kind``: ``"toml"`` for a model file's text, ``"sbml"`` for an
    SBML document's, ``"builtin"`` for the name of a built-in model).  An SBML document is read by libsbml, so
    its key also names the installed libsbml (:func:`_libsbml_identity`)."""
    digest = hashlib.sha256()
    for part in (loader_digest(), kind, _libsbml_identity() if kind == "sbml" else "", text):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _libsbml_identity() -> str:
    """The installed libsbml, without importing it (a second or so): the path, size and modification time of
    its module file, which a reinstall or upgrade changes, as Python's own byte-code cache assumes."""
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec("libsbml")
        if spec is None or spec.origin is None:
            return "libsbml: not installed"
        status = os.stat(spec.origin)
    except (ImportError, ValueError, OSError):
        return "libsbml: not installed"
    return f"libsbml: {spec.origin} {status.st_size} {status.st_mtime_ns}"


def _summary_path(root: Path, key: str) -> Path:
    return root / _FOLDER / f"{key}.json"


def read_summary(key: str) -> ModelSummary | None:
    """The summary cached under ``key`` in the first cache root that holds a valid one, else None."""
    for root in _read_roots():
        try:
            text = _summary_path(root, key).read_text(encoding="ascii")
        except (OSError, ValueError):
            continue
        summary = ModelSummary.from_json(text)
        if summary is not None:
            return summary
    return None


def write_summary(key: str, summary: ModelSummary) -> None:
    """Cache ``summary`` under ``key`` (atomically: a reader sees the whole file or none); a cache that cannot
    take it (unwritable, or ``SYMSENS_CACHE_DIR`` naming a file) only costs the shortcut."""
    try:
        target = _summary_path(cache_directory(), key)
    except CodegenError:
        return
    with _suppress_os_error():
        if target.exists() and ModelSummary.from_json(target.read_text(encoding="ascii", errors="replace")):
            return  # a damaged one is replaced, or every later process would miss
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, summary.to_json())
