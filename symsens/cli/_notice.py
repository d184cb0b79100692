"""A one-time notice on standard error when a command is still working after a few seconds."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def notice_after(seconds: float, text: str, stream: TextIO | None = None) -> Iterator[None]:
    """Write ``text`` to standard error once if the block is still running after ``seconds``.

    Quick commands stay silent; a first use that compiles a solver (tens of seconds for large models) says what it
    is doing instead of looking hung.
    """
    out = sys.stderr if stream is None else stream

    def say() -> None:
        try:
            out.write(text + "\n")
            out.flush()
        except (OSError, ValueError):  # a closed stream: nothing to tell
            pass

    timer = threading.Timer(seconds, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
