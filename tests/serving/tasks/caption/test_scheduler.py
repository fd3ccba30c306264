"""The step scheduler on a toy recurrent decoder: one run per step over every sequence in flight,
chunking, deadlines, overload, failures, and its thread going away when idle."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.core.config import SequenceDecoding
from serving.core.runtime import Tensors
from serving.errors import DeadlineExceeded, Overloaded
from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions
from serving.tasks.caption.scheduler import StepScheduler

VOCAB, HIDDEN, BOS, EOS = 10, 6, 2, 3
DECODING = SequenceDecoding(
    kind="sequence_decoding", decoder_model="toy", vocabulary="vocab.txt", state={"h": "h_next"}
)
RNG = np.random.default_rng(0)
EMBED = RNG.normal(0, 1, (VOCAB, HIDDEN)).astype(np.float32)
OUT = RNG.normal(0, 1.5, (HIDDEN, VOCAB)).astype(np.float32)


class Toy:
    """token, h, image -> log-probs, h_next; records the rows of every run."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.sizes: list[int] = []
        self.delay_s, self.fail = delay_s, fail
        self.gate = threading.Event()  # the first run waits for it: others queue meanwhile
        self.gate.set()

    def __call__(self, feeds: Tensors) -> Tensors:
        self.gate.wait(5)
        self.sizes.append(len(feeds["token"]))
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("decoder broke")
        h = np.tanh(EMBED[feeds["token"]] + 0.5 * feeds["h"] + feeds["image"]).astype(np.float32)
        logits = (h[:, :, None] * OUT[None]).sum(axis=1)
        logits[:, EOS] -= 8  # sequences run to max_length: the row counts are known
        z = logits - logits.max(axis=1, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return {"log_probs": log_probs.astype(np.float32), "h_next": h}


def search(beam: int = 3, length: int = 8) -> BeamSearch:
    options = DecodeOptions(beam_size=beam, max_length=length, num_captions=beam)
    return BeamSearch({"h": np.zeros(HIDDEN, np.float32)}, bos=BOS, eos=EOS, options=options)


def image(i: int) -> Tensors:
    return {"image": np.full(HIDDEN, 0.3 * i - 1, np.float32)}


def scheduler(run: Toy, **kwargs: object) -> StepScheduler:
    settings: dict = {"max_rows": 64, "max_queued_rows": 256, "idle_s": 0.05, **kwargs}
    return StepScheduler(run, DECODING, **settings)


def results(s: BeamSearch) -> list[tuple[tuple[int, ...], float]]:
    return [(h.tokens, h.log_prob) for h in s.results()]


async def decode_all(steps: StepScheduler, toy: Toy, searches: list[BeamSearch]) -> None:
    """All searches at once, the first step held until every one is queued."""
    toy.gate.clear()
    tasks = [
        asyncio.ensure_future(steps.decode(s, image(i), deadline=None))
        for i, s in enumerate(searches)
    ]
    await asyncio.sleep(0.01)
    toy.gate.set()
    await asyncio.gather(*tasks)


def test_sequences_in_flight_share_each_step_and_decode_as_alone() -> None:
    alone = []
    for i in range(6):
        s = search()
        asyncio.run(scheduler(Toy()).decode(s, image(i), deadline=None))
        alone.append(results(s))
    toy = Toy()
    together = [search() for _ in range(6)]
    asyncio.run(decode_all(scheduler(toy), toy, together))
    for got, want in zip((results(s) for s in together), alone, strict=True):
        assert [t for t, _ in got] == [t for t, _ in want]
        np.testing.assert_allclose([p for _, p in got], [p for _, p in want], atol=1e-5)
    # the first sequence steps alone, then the five that queued meanwhile join it
    assert toy.sizes == [1, 3 + 5] + [6 * 3] * 6 + [5 * 3]  # one run per step, 9 steps


def test_steps_over_max_rows_run_in_equal_chunks() -> None:
    toy = Toy()
    asyncio.run(decode_all(scheduler(toy, max_rows=4), toy, [search() for _ in range(3)]))
    assert toy.sizes[:6] == [1, 3, 2, 3, 3, 3]  # 1 row; 5 rows as 3 + 2; 9 rows as 3 x 3


def test_deadline_overload_and_failure_are_the_request_s_alone() -> None:
    async def scenario() -> None:
        late = scheduler(Toy(delay_s=0.2))
        with pytest.raises(DeadlineExceeded):
            await late.decode(search(), image(0), deadline=time.perf_counter() + 0.05)

        slow = scheduler(Toy(delay_s=0.02), max_queued_rows=6)
        first = asyncio.ensure_future(slow.decode(search(), image(1), deadline=None))
        second = asyncio.ensure_future(slow.decode(search(), image(2), deadline=None))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):  # 3 + 3 rows decoding: no room for 3 more
            await slow.decode(search(), image(3), deadline=None)
        await asyncio.gather(first, second)
        await slow.decode(search(), image(3), deadline=None)  # room again once they finished

        broken = scheduler(Toy(fail=True))
        with pytest.raises(RuntimeError, match="decoder broke"):
            await broken.decode(search(), image(0), deadline=None)

    asyncio.run(scenario())


def test_the_step_thread_ends_when_idle() -> None:
    asyncio.run(scheduler(Toy(), name="idle-check").decode(search(), image(0), deadline=None))
    end = time.monotonic() + 5
    while any(t.name == "steps-idle-check" for t in threading.enumerate()):
        assert time.monotonic() < end, "the step thread is still running"
        time.sleep(0.01)
