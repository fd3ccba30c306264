"""Greedy and beam search against exhaustive search on a small hand-made Markov model."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions, detokenize

PAD, UNK, BOS, EOS, A, B = range(6)
WORDS = ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
# next-token probabilities given the previous token; greedy takes "a" first and pays for it
TABLE = {
    BOS: {A: 0.55, B: 0.40, UNK: 0.05},
    A: {A: 0.35, B: 0.34, EOS: 0.31},
    B: {EOS: 0.9, A: 0.1},
}


def log_probs(prev: int) -> np.ndarray:
    out = np.full(len(WORDS), -np.inf, dtype=np.float32)
    for token, p in TABLE[prev].items():
        out[token] = math.log(p)
    return out


def run(options: DecodeOptions) -> BeamSearch:
    """Drive the search as the server does: a block of rows out, model outputs back, until
    finished."""
    search = BeamSearch({"step": np.zeros(1)}, bos=BOS, eos=EOS, options=options, banned=(UNK,))
    while not search.finished:
        assert 1 <= search.live <= options.beam_size == search.options.beam_size
        assert len(search.tokens_in) == len(search.state["step"]) == search.live
        search.advance(
            np.stack([log_probs(int(t)) for t in search.tokens_in]),
            {"step": search.state["step"] + 1},
        )
    return search


def exhaustive_best(max_length: int) -> tuple[tuple[int, ...], float]:
    best: tuple[tuple[int, ...], float] = ((), -math.inf)
    for n in range(1, max_length + 1):
        for seq in itertools.product([A, B, EOS], repeat=n):
            if EOS in seq[:-1] or (seq[-1] != EOS and n < max_length):
                continue
            prev, total = BOS, 0.0
            for t in seq:
                total += float(log_probs(prev)[t])
                prev = t
            if total > best[1]:
                best = (seq, total)
    return best


def test_beam_finds_the_most_probable_caption_and_greedy_does_not() -> None:
    seq, total = exhaustive_best(6)
    beam = run(DecodeOptions(beam_size=3, max_length=6)).results()[0]
    assert beam.tokens == seq == (B, EOS)
    assert beam.log_prob == pytest.approx(total, abs=1e-6)
    greedy = run(DecodeOptions(beam_size=1, max_length=6)).results()[0]
    assert greedy.tokens[0] == A and greedy.log_prob < beam.log_prob
    assert detokenize(beam.tokens, WORDS, EOS) == "b"


def test_state_travels_with_its_hypothesis() -> None:
    for h in run(DecodeOptions(beam_size=3, max_length=5, num_captions=3)).results():
        assert h.state["step"][0] == len(h.tokens)


def test_max_length_cuts_and_num_captions_ranks() -> None:
    cut = run(DecodeOptions(beam_size=2, max_length=1, num_captions=2))
    assert cut.steps == 1
    assert [h.tokens for h in cut.results()] == [(A,), (B,)]  # cut off, best first
    many = run(DecodeOptions(beam_size=4, max_length=6, num_captions=4)).results()
    assert len({h.tokens for h in many}) == len(many) == 4
    assert [h.log_prob for h in many] == sorted((h.log_prob for h in many), reverse=True)
    assert all(UNK not in h.tokens for h in many)  # banned tokens never come out


def test_length_penalty_favours_longer_captions() -> None:
    plain = run(DecodeOptions(beam_size=4, max_length=6, num_captions=4)).results()
    longer = run(
        DecodeOptions(beam_size=4, max_length=6, num_captions=4, length_penalty=10.0)
    ).results()
    assert {h.tokens for h in plain} == {h.tokens for h in longer}  # same search, new ranking
    assert plain[0].tokens == (B, EOS) and longer[0].tokens == (A, B, EOS)
    assert [h.score(10.0) for h in longer] == sorted((h.score(10.0) for h in longer), reverse=True)


def test_bad_use_is_refused() -> None:
    with pytest.raises(ValueError, match="num_captions"):
        DecodeOptions(beam_size=2, num_captions=3)
    search = BeamSearch({}, bos=BOS, eos=EOS, options=DecodeOptions(beam_size=2))
    with pytest.raises(ValueError, match="outputs for 1 rows"):
        search.advance(np.stack([log_probs(BOS), log_probs(BOS)]), {})
