"""The beam search as it was before the step scheduler (row by row), kept verbatim as the
reference the batched :class:`serving.tasks.caption.beam_search.BeamSearch` must equal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.tasks.caption.beam_search import DecodeOptions

State = dict[str, np.ndarray]


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]  # generated tokens, without <bos>, with <eos> if it ended
    log_prob: float
    state: State  # the model's state after the last token, fed back with it
    finished: bool = False

    def score(self, length_penalty: float) -> float:
        return self.log_prob / ((5 + len(self.tokens)) / 6) ** length_penalty


@dataclass(frozen=True)
class Row:
    """One input row of the decoder step: the token to feed and the state to feed it with."""

    token: int
    state: State


class RowBeamSearch:
    def __init__(
        self,
        initial_state: State,
        *,
        bos: int,
        eos: int,
        options: DecodeOptions,
        banned: Sequence[int] = (),
    ) -> None:
        self.options = options
        self.bos, self.eos = bos, eos
        self._banned = np.asarray(sorted(set(banned)), dtype=np.int64)
        self._live = [Hypothesis((), 0.0, initial_state)]
        self._done: list[Hypothesis] = []
        self.steps = 0

    @property
    def finished(self) -> bool:
        return not self._live

    def rows(self) -> list[Row]:
        """Decoder inputs for this step, one per live hypothesis."""
        return [Row(h.tokens[-1] if h.tokens else self.bos, h.state) for h in self._live]

    def advance(self, log_probs: Sequence[np.ndarray], states: Sequence[State]) -> None:
        """Feed the model's outputs for :meth:`rows` (same order); keeps the best ``beam_size``."""
        if len(log_probs) != len(self._live) or len(states) != len(self._live):
            raise ValueError(f"expected outputs for {len(self._live)} rows")
        beam = self.options.beam_size
        candidates: list[tuple[float, int, int]] = []  # (total log-prob, hypothesis, token)
        for i, (hyp, lp) in enumerate(zip(self._live, log_probs, strict=True)):
            lp = np.asarray(lp, dtype=np.float64).copy()
            lp[self._banned] = -np.inf
            k = min(2 * beam, lp.shape[0])
            best = np.argpartition(-lp, k - 1)[:k]
            candidates.extend((hyp.log_prob + float(lp[w]), i, int(w)) for w in best)
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        self.steps += 1
        last_step = self.steps >= self.options.max_length
        live: list[Hypothesis] = []
        ended = 0
        for total, i, token in candidates:
            if not np.isfinite(total) or len(live) == beam or (last_step and ended == beam):
                break
            tokens = (*self._live[i].tokens, token)
            if token == self.eos or last_step:  # at max_length every survivor is cut off
                self._done.append(Hypothesis(tokens, total, states[i], finished=True))
                ended += 1
            else:
                live.append(Hypothesis(tokens, total, states[i]))
        self._live = live
        if len(self._done) >= beam:  # enough finished hypotheses: stop (early stopping)
            self._live = []

    def results(self) -> list[Hypothesis]:
        """The best ``num_captions`` finished hypotheses, best first."""
        alpha = self.options.length_penalty
        ranked = sorted(self._done, key=lambda h: -h.score(alpha))
        return ranked[: self.options.num_captions]
