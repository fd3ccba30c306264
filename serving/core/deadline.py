"""Request deadlines: one absolute point in time that every stage of a request checks."""

from __future__ import annotations

import time
from dataclasses import dataclass

from serving.errors import DeadlineExceeded


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
