"""The thread budget: usable cores from affinity and cgroup quota, split across workers."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serving.core import threads
from serving.core.threads import cgroup_cpu_limit, lower_priority, plan
from serving.settings import Settings


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path / "cpu.max", tmp_path / "q", tmp_path / "p") == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path / "cpu.max", tmp_path / "q", tmp_path / "p") is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "q").write_text("200000")
    (tmp_path / "p").write_text("100000")
    assert cgroup_cpu_limit(tmp_path / "none", tmp_path / "q", tmp_path / "p") == 2.0
    (tmp_path / "q").write_text("-1")
    assert cgroup_cpu_limit(tmp_path / "none", tmp_path / "q", tmp_path / "p") is None


def test_usable_cores_is_capped_by_the_quota(monkeypatch) -> None:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 1.5)
    assert threads.usable_cores() == 2
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.usable_cores() == 4


def test_plan_keeps_threads_within_the_cores() -> None:
    for cores, workers in [(2, 1), (2, 2), (8, 1), (8, 2), (8, 8), (3, 1)]:
        b = plan(cores=cores, workers=workers)
        per_worker = b.decode_threads + b.intra_op_threads
        assert b.workers * per_worker <= max(cores, 2 * workers), b
        assert b.decode_threads >= 1 and b.intra_op_threads >= 1
    assert plan(cores=8, workers=1) == threads.ThreadBudget(8, 1, 4, 4)


def test_explicit_settings_win() -> None:
    b = Settings(cores=8, workers=2, decode_threads=3, intra_op_threads=1).thread_budget()
    assert (b.workers, b.decode_threads, b.intra_op_threads) == (2, 3, 1)


def test_lower_priority_nices_only_the_calling_thread() -> None:
    def nice_of_thread() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = os.getpriority(os.PRIO_PROCESS, 0)
    with ThreadPoolExecutor(1, initializer=lower_priority, initargs=(5,)) as pool:
        assert pool.submit(nice_of_thread).result() == min(19, base + 5)
    with ThreadPoolExecutor(1, initializer=lower_priority, initargs=(0,)) as pool:
        assert pool.submit(nice_of_thread).result() == base
    assert nice_of_thread() == base  # the caller (the event loop's thread) keeps its priority
