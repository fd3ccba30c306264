"""Shared text preprocessing: the same ids for training (export) and serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.text import BOS, EOS, PAD, UNK, Vocabulary, encode, tokenize


def test_tokenize_lowercases_and_splits_on_punctuation() -> None:
    assert tokenize("What COLOR is the shape?") == ["what", "color", "is", "the", "shape"]
    assert tokenize("Isn't it red,blue;or green!") == ["isn't", "it", "red", "blue", "or", "green"]
    assert tokenize("\uff52\uff45\uff44  shape") == ["red", "shape"]  # NFKC folds full-width
    assert tokenize("snake_case") == ["snake", "case"]
    assert tokenize(" ?! ") == []


def test_vocabulary_orders_by_frequency_and_round_trips(tmp_path: Path) -> None:
    vocab = Vocabulary.build(["a red shape", "a blue shape", "a shape"], specials=(BOS, EOS))
    assert vocab.tokens == (PAD, UNK, BOS, EOS, "a", "shape", "blue", "red")
    vocab.save(tmp_path / "vocab.txt")
    assert Vocabulary.load(tmp_path / "vocab.txt") == vocab
    assert vocab.id("green") == 1 and vocab.ids(["red", "zzz"]) == [7, 1]
    with pytest.raises(ValueError, match="starts with"):
        Vocabulary(("a", PAD, UNK))
    with pytest.raises(ValueError, match="unique"):
        Vocabulary((PAD, UNK, "a", "a"))


def test_encode_pads_counts_unknowns_and_rejects_bad_texts() -> None:
    vocab = Vocabulary.build(["is there a red shape"])
    enc = encode("Is there a GREEN shape?", vocab, 8, what="question")
    assert enc.ids.dtype == np.int64 and enc.ids.shape == (8,)
    assert enc.ids.tolist() == [vocab.id("is"), vocab.id("there"), vocab.id("a"), 1,
                                vocab.id("shape"), 0, 0, 0]  # fmt: skip
    assert enc.length == 5 and enc.unknown == 1
    with pytest.raises(BadRequest) as empty:
        encode("?", vocab, 8, what="question")
    assert empty.value.code == "empty_question" and empty.value.status == 400
    with pytest.raises(BadRequest) as long:
        encode("a " * 9, vocab, 8, what="question")
    assert long.value.code == "question_too_long"
    assert encode("a " * 8, vocab, 8).length == 8  # exactly max_length is fine
