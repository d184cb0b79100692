"""Model text in generated C++: the one escaping function, and file names derived from model names.

Everything a model author can write — its name, description, state, parameter and output names, units,
citations — is data, never code.  Generated sources carry such text only for the reader (comments naming the
model, the parameters differentiated), and it reaches the source only through :func:`source_text`, which
passes a whitelist of harmless ASCII characters and percent-encodes every other byte of the UTF-8 text.  Its
output therefore contains none of the characters that could end a comment or a string literal or change how
the compiler reads a line: no ``*`` or ``/`` (``*/``, ``//``), no ``\\`` (escapes, backslash-newline line
splices), no ``?`` (the ``??/`` trigraph is a backslash), no quotes, no control characters (newline, NUL), and
nothing outside ASCII (Unicode line separators, bidirectional overrides).  ``%`` itself is encoded, so the
text is recovered exactly with ``urllib.parse.unquote``.

:func:`file_stem` makes the identifier and file-name stem of a model's standalone export: ASCII letters,
digits and single underscores, not starting with a digit or an underscore, at most 48 characters (a longer
name is cut and given a hash of the full name, so different long names still give different stems).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

__all__ = ["source_text", "file_stem", "SAFE_CHARACTERS"]

# Besides ASCII letters, digits and "_.-~" (which ``quote`` never encodes).
SAFE_CHARACTERS = " ,:;=+()[]{}<>!#&|^@$"

_STEM_LENGTH = 48


def source_text(text: object) -> str:
    """``text`` made safe to place anywhere in generated C/C++ source: in a ``/* */`` or ``//`` comment or
    inside a ``"..."`` string literal.  The result uses only ASCII letters, digits, ``_.-~``, the characters of
    :data:`SAFE_CHARACTERS` and ``%XX`` escapes of the UTF-8 bytes of everything else (see the module text)."""
    return quote(str(text), safe=SAFE_CHARACTERS, encoding="utf-8", errors="surrogatepass")


def file_stem(name: str) -> str:
    """A C identifier and file-name stem for a model named ``name`` (see the module text); deterministic."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    if not stem or stem[0].isdigit():
        stem = f"m_{stem}".rstrip("_")
    if len(stem) > _STEM_LENGTH:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        stem = stem[: _STEM_LENGTH - 11].rstrip("_") + "_" + digest
    return stem
