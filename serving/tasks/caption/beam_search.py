"""Sequence decoding (greedy and beam search) as a step-by-step state machine, model-agnostic.

A :class:`BeamSearch` never calls a model. Each step it hands out its live hypotheses as one
block of decoder inputs -- the tokens to feed (``tokens_in``) and the recurrent state, batched
(``state``) -- and takes back the model's log-probabilities and new states for that block. The
caller decides how blocks reach the model; the server's :class:`~serving.tasks.caption.scheduler.
StepScheduler` concatenates the blocks of every sequence in flight into one decoder run per step.

Greedy decoding is beam search with ``beam_size=1``. Finished hypotheses are ranked by
``log_prob / ((5 + length) / 6) ** length_penalty`` (Wu et al., 2016); 0 ranks by raw log-prob.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

State = dict[str, np.ndarray]


@dataclass(frozen=True)
class DecodeOptions:
    beam_size: int = 1
    max_length: int = 20  # generated tokens, <eos> included
    length_penalty: float = 0.0
    num_captions: int = 1  # best finished hypotheses returned, at most beam_size

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.max_length < 1:
            raise ValueError("beam_size and max_length must be positive")
        if not 1 <= self.num_captions <= self.beam_size:
            raise ValueError("num_captions must be between 1 and beam_size")


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]  # generated tokens, without <bos>, with <eos> if it ended
    log_prob: float
    state: State  # the model's state after the last token (one row, no batch axis)
    finished: bool = False

    def score(self, length_penalty: float) -> float:
        return self.log_prob / ((5 + len(self.tokens)) / 6) ** length_penalty


class BeamSearch:
    def __init__(
        self,
        initial_state: State,
        *,
        bos: int,
        eos: int,
        options: DecodeOptions,
        banned: Sequence[int] = (),
    ) -> None:
        """``initial_state``: one row per state tensor, without the batch axis."""
        self.options = options
        self.bos, self.eos = bos, eos
        self._banned = np.asarray(sorted(set(banned)), dtype=np.int64)
        self._tokens: list[tuple[int, ...]] = [()]  # per live hypothesis
        self._scores = np.zeros(1)  # their log-probs (float64)
        self.tokens_in = np.asarray([bos], dtype=np.int64)  # the token each feeds next
        self.state: State = {k: v[None] for k, v in initial_state.items()}  # batched, live rows
        self._done: list[Hypothesis] = []
        self.steps = 0

    @property
    def live(self) -> int:
        """Rows of the next step: one per live hypothesis."""
        return len(self._tokens)

    @property
    def finished(self) -> bool:
        return not self._tokens

    def advance(self, log_probs: np.ndarray, states: State) -> None:
        """Feed the model's outputs for this step's rows (``[live, vocab]`` log-probs and the
        new states, batched, same row order); keeps the best ``beam_size`` hypotheses.

        Each hypothesis proposes its ``2 * beam_size`` best tokens; candidates rank by total
        log-prob, ties by hypothesis then token.
        """
        rows = self.live
        if log_probs.shape[0] != rows or any(v.shape[0] != rows for v in states.values()):
            raise ValueError(f"expected outputs for {rows} rows")
        beam = self.options.beam_size
        lp = log_probs.astype(np.float64)  # a copy: banned tokens are masked in place
        lp[:, self._banned] = -np.inf
        width = min(2 * beam, lp.shape[1])
        best = np.argpartition(-lp, width - 1, axis=1)[:, :width]
        totals = (self._scores[:, None] + np.take_along_axis(lp, best, axis=1)).ravel()
        owner = np.repeat(np.arange(rows), width)
        order = np.lexsort((best.ravel(), owner, -totals)).tolist()
        totals_l, owner_l, tokens_l = totals.tolist(), owner.tolist(), best.ravel().tolist()
        self.steps += 1
        last_step = self.steps >= self.options.max_length
        parents: list[int] = []
        tokens: list[tuple[int, ...]] = []
        scores: list[float] = []
        ended = 0
        for c in order:
            total, i, token = totals_l[c], owner_l[c], tokens_l[c]
            if not math.isfinite(total) or len(parents) == beam or (last_step and ended == beam):
                break
            seq = (*self._tokens[i], token)
            if token == self.eos or last_step:  # at max_length every survivor is cut off
                row = {k: v[i] for k, v in states.items()}
                self._done.append(Hypothesis(seq, total, row, finished=True))
                ended += 1
            else:
                parents.append(i)
                tokens.append(seq)
                scores.append(total)
        if len(self._done) >= beam:  # enough finished hypotheses: stop (early stopping)
            parents, tokens, scores = [], [], []
        self._tokens = tokens
        self._scores = np.asarray(scores, dtype=np.float64)
        self.tokens_in = np.asarray([t[-1] for t in tokens], dtype=np.int64)
        self.state = {k: v[parents] for k, v in states.items()}

    def results(self) -> list[Hypothesis]:
        """The best ``num_captions`` finished hypotheses, best first."""
        alpha = self.options.length_penalty
        ranked = sorted(self._done, key=lambda h: -h.score(alpha))
        return ranked[: self.options.num_captions]


def detokenize(tokens: Sequence[int], vocabulary: Sequence[str], eos: int) -> str:
    """Words up to (not including) ``<eos>``, joined by spaces."""
    words = []
    for t in tokens:
        if t == eos:
            break
        words.append(vocabulary[t])
    return " ".join(words)
