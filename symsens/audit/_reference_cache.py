"""An on-disk cache of the audit's verified reference runs, keyed by their content.

A reference run (:func:`symsens.reference`) is a pure function of the model's equations, the time span, the
parameter point, the output times, the differentiated parameters, the requested digits, whether sensitivities
are wanted, and the code that computes it.  Its key is the SHA-256 of all of these (the model by the exact
canonical text of its equations that the kernel cache uses, :func:`symsens.codegen._kernels._model_digest`;
numbers by their exact IEEE bytes; the code by the bytes of the reference's sources and the versions of
symsens, Python, NumPy, SymPy and mpmath), so any change to one of them is a miss.  The audit's loss enters
through the output times and the parameter points it asks for: the loss gradient itself is recomputed from the
cached states and sensitivities on every audit (milliseconds).

Only verified runs are stored.  Each entry is one file: a JSON header line carrying the SHA-256 of the
payload, then the payload, an ``.npz`` archive of the arrays (read with ``allow_pickle=False``).  It is written
to a temporary file and moved into place with :func:`os.replace`, so concurrent audits never see half a file;
an entry whose checksum, format, output times or shapes do not match is ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._once import cached_once
from ..model import Model

__all__ = ["CachedReference", "reference_cache_directory", "reference_key", "read_reference", "write_reference"]

_FORMAT = 1
# The code a reference run depends on (relative to the symsens package): the reference, the derivation and the
# code generator it compiles with (not the integrators of symsens.integrate, which it never calls).
_SOURCES = ("reference", "derive", "codegen", "schemes/_collocation.py", "_precision.py", "_checks.py",
            "model/_functions.py", "audit/_reference_cache.py")
_SUFFIXES = {".py", ".hpp", ".cpp", ".h"}


@dataclass(frozen=True, eq=False)
class CachedReference:
    """The parts of a :class:`symsens.reference.Reference` the audit reads, as stored in the cache."""

    t: np.ndarray
    y: np.ndarray
    y_error: np.ndarray
    sensitivities: np.ndarray | None
    sensitivity_error: np.ndarray | None
    verified: bool
    message: str


def reference_cache_directory() -> Path:
    """``references/`` in the kernel cache directory (``$SYMSENS_CACHE_DIR`` or the per-user cache dir)."""
    from ..codegen._build import cache_directory

    return cache_directory() / "references"


@cached_once()
def _code_digest() -> str:
    """SHA-256 of the reference's source files, the C++ compiler and flags, and the versions it runs with; once
    per process."""
    import mpmath
    import sympy

    from .. import __version__
    from ..codegen._build import DEFAULT_FLAGS, find_compiler

    try:
        compiler = find_compiler()
        identity = (compiler.path, compiler.version)
    except Exception:  # no C++ compiler: the reference runs on mpmath alone
        identity = ("no compiler", "")

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for part in (__version__, f"{sys.version_info[0]}.{sys.version_info[1]}", np.__version__, sympy.__version__,
                 mpmath.__version__, *identity, " ".join(DEFAULT_FLAGS)):
        digest.update(part.encode() + b"\0")
    for entry in _SOURCES:
        path = package / entry
        files = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(package).as_posix().encode() + b"\0")
            try:
                digest.update(file.read_bytes())
            except OSError:  # an installation without sources: the versions still key the cache
                digest.update(b"<unreadable>")
            digest.update(b"\0")
    return digest.hexdigest()


def _floats(values: Any) -> bytes:
    """Exact bytes of a float vector (little-endian IEEE doubles)."""
    return np.ascontiguousarray(np.asarray(values, dtype="<f8")).tobytes()


def reference_key(model: Model, t_span: tuple[float, float], p: np.ndarray, times: np.ndarray,
                  parameters: Sequence[str], digits: int, sensitivity: bool,
                  exact_values: Sequence[tuple[str, str]] = ()) -> str:
    """The content key of one reference run: SHA-256 of everything its result depends on (``exact_values``:
    parameters given beyond double precision, as decimal strings, which replace their entries of ``p``)."""
    from ..codegen._kernels import _model_digest

    digest = hashlib.sha256()
    parts = [f"symsens-reference-{_FORMAT}".encode(), _code_digest().encode(), _model_digest(model).encode(),
             repr(list(model.parameter_names)).encode(), _floats(t_span), _floats(p), _floats(times),
             repr(list(parameters) if sensitivity else None).encode(), repr((int(digits), bool(sensitivity))).encode()]
    if exact_values:  # only then: the keys of every other run stay as they were
        parts.append(repr([(str(name), str(text)) for name, text in exact_values]).encode())
    for part in parts:
        digest.update(len(part).to_bytes(8, "little") + part)
    return digest.hexdigest()


def _path(key: str) -> Path:
    return reference_cache_directory() / f"{key}.npz"


def read_reference(key: str, times: np.ndarray) -> CachedReference | None:
    """The cached run of ``key`` if its file is intact and matches ``times``; None otherwise (never raises)."""
    try:
        blob = _path(key).read_bytes()
        header_line, _, payload = blob.partition(b"\n")
        header = json.loads(header_line)
        if (header.get("format") != _FORMAT or header.get("key") != key
                or header.get("sha256") != hashlib.sha256(payload).hexdigest() or header.get("verified") is not True):
            return None
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            arrays = {name: np.array(archive[name]) for name in archive.files}
        t = arrays["t"]
        if not (t.shape == np.shape(times) and np.array_equal(t, times)):
            return None
        y, y_error = arrays["y"], arrays["y_error"]
        sensitivities, sensitivity_error = arrays.get("sensitivities"), arrays.get("sensitivity_error")
        if y.ndim != 2 or y.shape[0] != len(t) or y_error.shape != y.shape:
            return None
        if (sensitivities is None) != (sensitivity_error is None) or (
                sensitivities is not None and (sensitivities.ndim != 3 or sensitivities.shape[0] != len(t)
                                               or sensitivity_error.shape != sensitivities.shape)):
            return None
        return CachedReference(t, y, y_error, sensitivities, sensitivity_error, True,
                               f"{header.get('message', 'symsens.reference')} (read from the reference cache)")
    except Exception:  # missing, unreadable, truncated or foreign: a miss, recomputed
        return None


def write_reference(key: str, times: np.ndarray, result: Any) -> bool:
    """Store a verified run (anything with ``y``, ``y_error``, ``sensitivities``, ``sensitivity_error``,
    ``verified``, ``message``); an unverified one, or a failure to write, stores nothing.  Returns whether it
    stored."""
    if getattr(result, "verified", False) is not True:
        return False
    y = np.asarray(result.y, dtype=float)
    y_error = getattr(result, "y_error", None)
    arrays = {"t": np.asarray(times, dtype=float), "y": y,
              "y_error": np.full(y.shape, np.inf) if y_error is None else np.asarray(y_error, dtype=float)}
    if getattr(result, "sensitivities", None) is not None:
        arrays["sensitivities"] = np.asarray(result.sensitivities, dtype=float)
        error = getattr(result, "sensitivity_error", None)
        arrays["sensitivity_error"] = (np.full(arrays["sensitivities"].shape, np.inf) if error is None
                                       else np.asarray(error, dtype=float))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    header = json.dumps({"format": _FORMAT, "key": key, "sha256": hashlib.sha256(payload).hexdigest(),
                         "verified": True, "message": str(getattr(result, "message", "symsens.reference"))})
    try:
        target = _path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{key[:16]}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(header.encode() + b"\n" + payload)
            os.replace(temporary, target)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    except Exception:  # a read-only, full or misconfigured cache: the audit goes on without storing
        return False
    return True
