"""The still-working notice of long commands: said once after the delay, never for a quick block."""

from __future__ import annotations

import io
import threading

from symsens.cli._notice import notice_after


def test_notice_is_written_once_when_the_block_outlasts_the_delay() -> None:
    stream = io.StringIO()
    released = threading.Event()
    with notice_after(0.01, "still working", stream):
        # Wait for the notice itself (not for a time): the block outlasts the delay by construction.
        for _ in range(1000):
            if stream.getvalue():
                break
            released.wait(0.01)
    assert stream.getvalue() == "still working\n"


def test_no_notice_for_a_block_that_ends_before_the_delay() -> None:
    stream = io.StringIO()
    with notice_after(3600.0, "still working", stream):
        pass
    assert stream.getvalue() == ""
