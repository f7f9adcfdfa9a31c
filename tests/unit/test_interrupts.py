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


@pytest.mark.parametrize(("sig", "raised"), [("SIGINT", KeyboardInterrupt), ("SIGTERM", "Terminated")])
def test_ctrl_c_and_sigterm_wait_for_a_store_write_and_are_raised_after_it(sig: str, raised) -> None:
    """The handlers `harness.cli.main` installs, sent for real to this process inside a write."""
    import signal

    from harness import cli

    handlers = {"SIGINT": cli._on_sigint, "SIGTERM": cli._on_sigterm}
    raised = cli.Terminated if raised == "Terminated" else raised
    signum = getattr(signal, sig)
    previous = signal.signal(signum, handlers[sig])
    done = []
    try:
        with pytest.raises(raised) as e:
            with interrupts.uninterrupted():
                signal.raise_signal(signum)  # Python runs the handler at the next bytecode, inside the block
                done.append("write finished")
        assert type(e.value) is raised
        assert done == ["write finished"]
        with pytest.raises(raised):  # outside a write it acts at once
            signal.raise_signal(signum)
    finally:
        signal.signal(signum, previous)


def test_a_signal_that_waited_is_raised_even_when_the_write_fails() -> None:
    with pytest.raises(Stop) as e:
        with interrupts.uninterrupted():
            assert interrupts.defer(_stop) is True
            raise OSError("database is locked")
    assert isinstance(e.value.__context__, OSError)  # the write's own error is kept as the context
    assert interrupts.defer(_stop) is False  # nothing is left waiting


def test_a_second_ctrl_c_while_one_waits_acts_at_once_and_a_second_sigterm_waits() -> None:
    """Python's own Ctrl-C handler raises at every press: a user pressing it again during a long write means it.
    SIGTERM (a scheduler's) keeps waiting: the write ends first."""
    with pytest.raises(Stop):
        with interrupts.uninterrupted():
            assert interrupts.defer(_stop, again_acts=True) is True
            assert interrupts.defer(_stop, again_acts=True) is False  # the handler acts now
            _stop()
    with interrupts.uninterrupted():  # the waiting one was raised as the block ended: nothing is left
        pass
    with pytest.raises(Stop):
        with interrupts.uninterrupted():
            assert interrupts.defer(_stop) is True
            assert interrupts.defer(_stop) is True  # still waits for the write


def test_a_handler_another_library_installed_waits_for_a_write_once_deferring() -> None:
    """submitit's time-limit handler exits the job from inside the handler (`sys.exit` to requeue): `deferring`
    makes it wait for the write under way (harness.launch.VariantJob), and act at once outside one."""
    import signal

    seen = []

    def requeue(signum: int, frame: object) -> None:
        seen.append(signum)
        raise SystemExit(3)

    previous = signal.signal(signal.SIGUSR2, requeue)
    try:
        interrupts.deferring(signal.SIGUSR2)
        done = []
        with pytest.raises(SystemExit):
            with interrupts.uninterrupted():
                signal.raise_signal(signal.SIGUSR2)
                done.append("write finished")
        assert done == ["write finished"] and seen == [signal.SIGUSR2]
        with pytest.raises(SystemExit):
            signal.raise_signal(signal.SIGUSR2)
        assert seen == [signal.SIGUSR2] * 2
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        interrupts.deferring(signal.SIGUSR2)  # an ignored signal stays ignored
        assert signal.getsignal(signal.SIGUSR2) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR2, previous)
