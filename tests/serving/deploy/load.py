"""A bounded closed-loop HTTP load for the cluster tests: N threads, stops by itself."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Outcome:
    started: float
    status: int  # 0 = transport error (connection reset, timeout)
    replica: str | None


@dataclass
class Load:
    """``with Load(url, files, workers=4, max_s=60) as load: ...``; stops at exit or ``max_s``."""

    url: str
    image: bytes
    workers: int = 4
    max_s: float = 60.0
    timeout_s: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, daemon=True) for _ in range(self.workers)
        ]

    def __enter__(self) -> Load:
        self._deadline = time.monotonic() + self.max_s
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout_s + 5)

    def _loop(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                started = time.monotonic()
                try:
                    r = client.post(
                        self.url + "/v1/classify",
                        files={"images": ("photo.jpg", self.image, "image/jpeg")},
                    )
                    outcome = Outcome(started, r.status_code, r.headers.get("x-fovea-replica"))
                except httpx.HTTPError:
                    outcome = Outcome(started, 0, None)
                with self._lock:
                    self.outcomes.append(outcome)

    def failed(self, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for o in self.outcomes if o.started >= since and o.status != 200)

    def replicas(self) -> Counter[str]:
        with self._lock:
            return Counter(o.replica for o in self.outcomes if o.status == 200 and o.replica)
