"""The batched beam search against the row-by-row one it replaced, on a small random recurrent
"model": the same captions, log-probs and final states, bit for bit, for greedy and beam."""

from __future__ import annotations

import numpy as np
import pytest

from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions
from tests.serving.tasks.caption.reference_beam_search import RowBeamSearch

VOCAB, HIDDEN, BOS, EOS, BANNED = 12, 8, 2, 3, (0, 1, 2)


class ToyDecoder:
    """next-token log-probs from the previous token and a recurrent state; ``quantum`` rounds
    the logits so that ties between candidates are common."""

    def __init__(self, seed: int, quantum: float) -> None:
        rng = np.random.default_rng(seed)
        self.embed = rng.normal(0, 1, (VOCAB, HIDDEN)).astype(np.float32)
        self.recur = rng.normal(0, 0.5, (HIDDEN, HIDDEN)).astype(np.float32)
        self.out = rng.normal(0, 1.5, (HIDDEN, VOCAB)).astype(np.float32)
        self.quantum = quantum

    def __call__(self, tokens: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h_next = np.tanh(self.embed[tokens] + h @ self.recur).astype(np.float32)
        logits = h_next @ self.out
        if self.quantum:
            logits = np.round(logits / self.quantum) * self.quantum
        z = logits - logits.max(axis=1, keepdims=True)
        return (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float32), h_next


def batched(model: ToyDecoder, h0: np.ndarray, options: DecodeOptions) -> BeamSearch:
    search = BeamSearch({"h": h0}, bos=BOS, eos=EOS, options=options, banned=BANNED)
    while not search.finished:
        lp, h = model(search.tokens_in, search.state["h"])
        search.advance(lp, {"h": h})
    return search


def row_by_row(model: ToyDecoder, h0: np.ndarray, options: DecodeOptions) -> RowBeamSearch:
    search = RowBeamSearch({"h": h0}, bos=BOS, eos=EOS, options=options, banned=BANNED)
    while not search.finished:
        rows = search.rows()
        lp, h = model(np.asarray([r.token for r in rows]), np.stack([r.state["h"] for r in rows]))
        search.advance(list(lp), [{"h": row} for row in h])
    return search


@pytest.mark.parametrize("quantum", [0.0, 0.5])
@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(beam_size=1, max_length=12),
        DecodeOptions(beam_size=3, max_length=10, num_captions=3),
        DecodeOptions(beam_size=5, max_length=7, num_captions=2, length_penalty=0.8),
        DecodeOptions(beam_size=8, max_length=4, num_captions=8),
        DecodeOptions(beam_size=4, max_length=1, num_captions=4),
    ],
)
def test_same_results_as_the_row_by_row_search(options: DecodeOptions, quantum: float) -> None:
    for seed in range(12):
        model = ToyDecoder(seed, quantum)
        h0 = np.random.default_rng(100 + seed).normal(0, 1, HIDDEN).astype(np.float32)
        new, old = batched(model, h0, options), row_by_row(model, h0, options)
        assert new.steps == old.steps
        got, want = new.results(), old.results()
        assert [(h.tokens, h.log_prob) for h in got] == [(h.tokens, h.log_prob) for h in want]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g.state["h"], w.state["h"])
