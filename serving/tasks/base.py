"""Pieces every task pipeline shares: request deadlines and parallel image preparation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from serving.errors import DeadlineExceeded

T = TypeVar("T")


@dataclass(frozen=True)
class Deadline:
    """An absolute point in time by which a request must be answered."""

    at: float

    @classmethod
    def after_ms(cls, ms: float) -> Deadline:
        return cls(time.perf_counter() + ms / 1000)

    def remaining_s(self) -> float:
        left = self.at - time.perf_counter()
        if left <= 0:
            raise DeadlineExceeded("deadline passed before inference")
        return left


async def prepare_all(
    pool: Executor, prepare: Callable[[bytes], T], images: Sequence[bytes]
) -> list[T]:
    """Decode and preprocess images on the decode pool, in parallel, keeping order."""
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(loop.run_in_executor(pool, prepare, i) for i in images)))


def read_lines(path: Path) -> list[str]:
    """A label/vocabulary file: one entry per line, trailing blank lines ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines
