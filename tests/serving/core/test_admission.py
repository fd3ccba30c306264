"""Admission: rows in flight are bounded, refusals are immediate and say when to retry."""

from __future__ import annotations

import random
from collections import deque

import pytest

from serving.core.admission import AIM, FIRST_HEADROOM, MIN_HEADROOM, Admission
from serving.errors import Overloaded


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_admits_up_to_the_limit_then_refuses_and_counts() -> None:
    rejected: list[int] = []
    adm = Admission(4, name="m/1", on_reject=lambda: rejected.append(1))
    adm.try_acquire(3)
    adm.try_acquire(1)
    assert adm.in_flight == 4
    with pytest.raises(Overloaded) as info:
        adm.try_acquire(1)
    assert info.value.status == 503
    assert info.value.headers == {"Retry-After": "1"}
    assert "m/1" in info.value.message
    assert adm.in_flight == 4 and rejected == [1]
    adm.release(2)
    adm.try_acquire(2)
    assert adm.in_flight == 4


def test_a_request_larger_than_the_limit_runs_alone() -> None:
    adm = Admission(2)
    adm.try_acquire(5)  # nothing else in flight: admitted
    with pytest.raises(Overloaded):
        adm.try_acquire(1)
    adm.release(5)
    assert adm.in_flight == 0


def test_admit_releases_on_success_and_on_error() -> None:
    adm = Admission(2)
    with adm.admit(2):
        assert adm.in_flight == 2
    assert adm.in_flight == 0
    with pytest.raises(RuntimeError), adm.admit(1):
        raise RuntimeError("decode failed")
    assert adm.in_flight == 0


def test_retry_after_follows_the_recent_completion_rate() -> None:
    clock = Clock()
    adm = Admission(100, clock=clock)
    assert adm.rows_per_s() is None
    for _ in range(20):  # 10 rows/s for 2 s
        adm.try_acquire(1)
        clock.now += 0.1
        adm.release(1)
    assert adm.rows_per_s() == pytest.approx(10, rel=0.1)
    adm.try_acquire(100)  # 100 rows at ~10 rows/s drain in ~10 s
    with pytest.raises(Overloaded) as info:
        adm.try_acquire(1)
    assert 9 <= int(info.value.headers["Retry-After"]) <= 12


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Admission(0)


def _run_at(adm: Admission, clock: Clock, rows_per_s: float, seconds: float) -> None:
    """One row at a time, back to back, at ``rows_per_s``."""
    for _ in range(round(seconds * rows_per_s)):
        adm.try_acquire(1)
        clock.now += 1 / rows_per_s
        adm.release(1)


def test_wait_bound_refuses_what_would_take_longer_than_max_wait_at_the_recent_rate() -> None:
    clock = Clock()
    adm = Admission(1000, max_wait_s=2.0, clock=clock)
    assert adm.headroom == FIRST_HEADROOM == 0.5  # predicted waits may fill 1.0 s of the 2.0
    _run_at(adm, clock, 10, 2)  # 10 rows/s
    adm.try_acquire(9)
    adm.try_acquire(1)  # 10 rows ahead of nothing: 1.0 s, within the bound
    assert adm.full
    with pytest.raises(Overloaded) as info:
        adm.try_acquire(1)  # 11 rows: 1.1 s
    assert "2000 ms of work" in str(info.value)
    adm.release(10)
    _run_at(adm, clock, 40, 10)  # the model got faster: 40 rows/s
    adm.try_acquire(35)  # 0.9 s at the new rate
    assert not adm.full


def test_an_idle_spell_does_not_lower_the_rate() -> None:
    clock = Clock()
    adm = Admission(1000, max_wait_s=2.0, clock=clock)
    _run_at(adm, clock, 20, 2)
    clock.now += 60  # nothing in flight for a minute
    assert adm.rows_per_s() == pytest.approx(20, rel=0.05)
    adm.try_acquire(19)
    adm.try_acquire(1)  # still admitted: 20 rows at 20 rows/s, 1.0 s of the 2.0 x 0.5


def _overload(
    adm: Admission,
    clock: Clock,
    seconds: float,
    *,
    rows_per_s: float,
    jitter: float,
    seed: int,
    teach: bool = True,
) -> tuple[list[float], int]:
    """A single FIFO server whose rate jitters by up to ``jitter`` every 0.2 s, offered 3x that
    rate for ``seconds``, then drained; returns every answered request's wait and the refusal
    count. ``teach=False`` answers without telling admission how long each waited."""
    rng = random.Random(seed)
    factors: dict[int, float] = {}
    queue: deque[float] = deque()  # admission times, in order
    waits: list[float] = []
    refused = 0
    start = clock.now
    next_arrival, done_at = start, None
    while clock.now < start + seconds or queue:
        if done_at is not None and (done_at <= next_arrival or clock.now >= start + seconds):
            clock.now = done_at
            admitted = queue.popleft()
            adm.release(1, waited_s=clock.now - admitted if teach else None)
            waits.append(clock.now - admitted)
            done_at = None
        else:
            clock.now = next_arrival
            next_arrival += 1 / (3 * rows_per_s)
            try:
                adm.try_acquire(1)
                queue.append(clock.now)
            except Overloaded:
                refused += 1
        if done_at is None and queue:
            window = int(clock.now / 0.2)
            factor = factors.setdefault(window, 1 + rng.uniform(-jitter, jitter))
            done_at = clock.now + 1 / (rows_per_s * factor)
    return waits, refused


def test_the_headroom_keeps_the_answers_within_max_wait_when_the_rate_jitters() -> None:
    clock = Clock()
    adm = Admission(1000, max_wait_s=0.5, clock=clock)
    _run_at(adm, clock, 100, 2)
    _overload(adm, clock, 60, rows_per_s=100, jitter=0.3, seed=1)  # learn
    waits, refused = _overload(adm, clock, 60, rows_per_s=100, jitter=0.3, seed=2)
    late = sum(w > 0.5 for w in waits) / len(waits)
    assert refused > len(waits)  # a 3x overload: most were refused at the door
    assert late <= 2 * (1 - AIM)  # AIM of the answers came within max_wait
    assert MIN_HEADROOM < adm.headroom < 1.0
    assert sorted(waits)[len(waits) // 2] > 0.25  # not over-refusing: the median is past half
    assert len(waits) > 0.95 * 60 * 100 * 0.85  # the server stayed busy (mean factor ~1)


def test_a_fixed_headroom_of_one_would_let_many_answers_come_late() -> None:
    """What the learning is for: predicting from the mean rate alone is late about half the
    time under the same jitter."""
    clock = Clock()
    adm = Admission(1000, max_wait_s=0.5, clock=clock)
    adm._headroom = 1.0
    _run_at(adm, clock, 100, 2)
    waits, _ = _overload(adm, clock, 60, rows_per_s=100, jitter=0.3, seed=2, teach=False)
    assert sum(w > 0.5 for w in waits) / len(waits) > 0.05


def test_answers_while_nothing_is_refused_teach_nothing() -> None:
    clock = Clock()
    adm = Admission(1000, max_wait_s=0.5, clock=clock)
    with adm.admit(1):
        clock.now += 2.0  # one slow request, nobody refused: not a queueing wait
    with adm.admit(1):
        clock.now += 0.01
    assert adm.headroom == FIRST_HEADROOM
