"""harness.interrupts: a signal handler's action waits for the store write under way, and runs when it ends."""

from __future__ import annotations

import pytest

from harness import interrupts


class Stop(Exception):
    pass


def _stop() -> None:
    raise Stop


def test_outside_a_write_the_handler_acts_now() -> None:
    assert interrupts.defer(_stop) is False


def test_inside_a_write_the_action_waits_for_the_outermost_end() -> None:
    done = []
    with pytest.raises(Stop):
        with interrupts.uninterrupted():
            with interrupts.uninterrupted():
                assert interrupts.defer(_stop) is True
                done.append("inner")
            done.append("outer")  # the inner block's end does not act: a write is still under way
    assert done == ["inner", "outer"]
    with interrupts.uninterrupted():  # acted once: nothing is left pending
        pass
