"""A line on stderr per measured window, so a long sweep shows it is alive."""

from __future__ import annotations

import sys
from typing import TextIO

from loadtest.stats import Window


class Progress:
    def __init__(self, mode: str, stream: TextIO = sys.stderr) -> None:
        self.mode = mode
        self.stream = stream
        self._target: float | None = None
        self._count = 0

    def __call__(self, target: float, window: Window) -> None:
        if target != self._target:
            self._target, self._count = target, 0
        self._count += 1
        lat = window.latency_ms
        p99 = f"{lat.p99:.1f} ms" if lat else "-"
        errors = f"{window.error_rate:.1%}" if window.requests else "-"
        print(
            f"[{self.mode}={target:g} window {self._count}] {window.throughput:.1f} req/s  "
            f"p99 {p99}  errors {errors}  generator cpu {window.client_cpu:.0%}",
            file=self.stream,
            flush=True,
        )
