"""Admission: rows in flight are bounded, refusals are immediate and say when to retry."""

from __future__ import annotations

import pytest

from serving.core.admission import Admission
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
    adm = Admission(1000, max_wait_s=1.0, clock=clock)
    _run_at(adm, clock, 10, 2)  # 10 rows/s
    adm.try_acquire(9)
    adm.try_acquire(1)  # 10 rows ahead of nothing: 1.0 s, within the bound
    assert adm.full
    with pytest.raises(Overloaded) as info:
        adm.try_acquire(1)  # 11 rows: 1.1 s
    assert "1000 ms of work" in str(info.value)
    adm.release(10)
    _run_at(adm, clock, 40, 10)  # the model got faster: 40 rows/s
    adm.try_acquire(35)  # 0.9 s at the new rate
    assert not adm.full


def test_an_idle_spell_does_not_lower_the_rate() -> None:
    clock = Clock()
    adm = Admission(1000, max_wait_s=1.0, clock=clock)
    _run_at(adm, clock, 20, 2)
    clock.now += 60  # nothing in flight for a minute
    assert adm.rows_per_s() == pytest.approx(20, rel=0.05)
    adm.try_acquire(19)
    adm.try_acquire(1)  # still admitted: 20 rows at 20 rows/s
