"""Idle trimming: once after a burst, never under load, never when nothing happened."""

from __future__ import annotations

from serving.core.memory import IdleTrimmer


def test_trims_once_after_work_then_waits_for_more_work() -> None:
    calls: list[int] = []
    trimmer = IdleTrimmer(lambda pad: calls.append(pad) or 1)
    assert not trimmer.tick(busy=False)  # idle from the start: nothing to give back
    assert not trimmer.tick(busy=True)
    assert not trimmer.tick(busy=True)
    assert trimmer.tick(busy=False)
    assert not trimmer.tick(busy=False)
    assert calls == [0]


def test_without_malloc_trim_it_does_nothing() -> None:
    trimmer = IdleTrimmer(None)
    trimmer.tick(busy=True)
    assert not trimmer.tick(busy=False)
