"""The thread budget: how many cores this server may use and how it splits them.

On CPU, decoding an upload costs as much as running the model, so worker processes, decode
threads and ONNX Runtime's intra-op threads compete for the same cores. Oversubscribing them
(ORT's default is "all cores" per session, on top of a decode pool of "all cores", in every
worker) makes everything slower. The budget gives each worker ``cores / workers`` cores and
uses them for both decode threads and ORT intra-op threads: the two alternate on a request
(decode, then infer), so they rarely run at the same time.

Usable cores come from the scheduler affinity and the cgroup CPU quota (containers), never
``os.cpu_count()``, which reports the host's cores.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

_PR_SET_NAME = 15  # prctl option (linux/prctl.h)
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
_CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cgroup_cpu_limit(
    v2: Path = _CGROUP_V2, v1_quota: Path = _CGROUP_V1_QUOTA, v1_period: Path = _CGROUP_V1_PERIOD
) -> float | None:
    """The container's CPU quota in cores, or None when there is none."""
    try:
        quota, period = v2.read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(v1_quota.read_text())
        period_us = int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cores() -> int:
    """Cores this process may run on: affinity, capped by the cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


@dataclass(frozen=True)
class ThreadBudget:
    """Per worker process: decode threads and the default ORT intra-op threads per session."""

    cores: int
    workers: int
    decode_threads: int
    intra_op_threads: int


def plan(
    *,
    cores: int | None = None,
    workers: int | None = None,
    decode_threads: int | None = None,
    intra_op_threads: int | None = None,
) -> ThreadBudget:
    """Fill in whatever is not set explicitly from the usable cores.

    ``workers`` defaults to 1 (one process); ``fovea serve --workers auto`` asks for one per
    core. Each worker's share of the cores is split between ORT intra-op threads (half,
    rounded down) and decode threads (the rest), at least one each, unless those are given.
    """
    cores = cores or usable_cores()
    workers = workers or 1
    share = max(1, cores // workers)
    intra = intra_op_threads or max(1, share // 2)
    return ThreadBudget(
        cores=cores,
        workers=workers,
        decode_threads=decode_threads or max(1, share - intra),
        intra_op_threads=intra,
    )


def lower_priority(increment: int) -> None:
    """Raise the calling thread's nice value by ``increment`` (a thread-pool initializer).

    Decode and ONNX Runtime threads can keep every core busy; at the same priority the event
    loop waits its turn behind them, so under overload even a 503 or a health check took tens
    of ms. Niced, they yield to the loop whenever it has work and otherwise keep the cores.
    Raising nice needs no privilege; on systems without per-thread nice this does nothing.
    """
    if increment <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(
            os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment)
        )


def name_os_thread() -> None:
    """Give the calling OS thread its Python thread's name (Linux keeps 15 bytes of it).

    Python 3.11 names threads for itself only; named at the OS level, ``top -H``, ``ps -L``
    and ``loadtest/benchmarks/cpu_split.py`` can tell decode threads from ONNX Runtime runners
    and the event loop. Does nothing where there is no ``prctl``.
    """
    name = threading.current_thread().name.encode("ascii", "replace")[:15]
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


def compute_thread_init(nice: int) -> None:
    """Initializer of every decode and inference thread: named, then niced by ``nice``."""
    name_os_thread()
    lower_priority(nice)

