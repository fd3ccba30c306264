"""Text preprocessing shared by export and serving: words, vocabulary, padded token ids.

A model only answers well if serving turns a question into the ids it was trained on, so the
training recipes in ``export/`` and the server both call this module (and it needs no torch).
Rules: Unicode NFKC, lower case, words are runs of letters/digits (an inner apostrophe is kept),
all other characters separate words; a word not in the vocabulary becomes ``<unk>``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serving.errors import BadRequest

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """``"What colour's the SHAPE?"`` -> ``["what", "colour's", "the", "shape"]``."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


@dataclass(frozen=True)
class Vocabulary:
    """Tokens by id; ``<pad>`` is id 0 and ``<unk>`` id 1, so padding and unknowns are fixed."""

    tokens: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens[:2] != (PAD, UNK):
            raise ValueError(f"a vocabulary starts with {PAD} and {UNK}, not {self.tokens[:2]}")
        index = {t: i for i, t in enumerate(self.tokens)}
        if len(index) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        object.__setattr__(self, "_index", index)

    @classmethod
    def build(
        cls, texts: Iterable[str], *, min_count: int = 1, specials: Sequence[str] = ()
    ) -> Vocabulary:
        """Words of ``texts`` seen at least ``min_count`` times, most frequent first."""
        counts = Counter(w for text in texts for w in tokenize(text))
        words = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls((PAD, UNK, *specials, *words))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(tuple(path.read_text(encoding="utf-8").splitlines()))

    def save(self, path: Path) -> None:
        path.write_text("\n".join(self.tokens) + "\n", encoding="utf-8")

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._index.get(token, 1)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self._index.get(t, 1) for t in tokens]


@dataclass(frozen=True)
class EncodedText:
    ids: np.ndarray  # int64 [max_length], real tokens first, then <pad> (0)
    length: int  # number of real tokens
    unknown: int  # how many of them were not in the vocabulary


def encode(text: str, vocab: Vocabulary, max_length: int, *, what: str = "text") -> EncodedText:
    """Token ids padded to ``max_length``; an empty or overlong text is a client error (400)."""
    words = tokenize(text)
    if not words:
        raise BadRequest(f"{what} has no words: {text!r}", code=f"empty_{what}")
    if len(words) > max_length:
        raise BadRequest(
            f"{what} has {len(words)} words; the limit is {max_length}", code=f"{what}_too_long"
        )
    ids = np.zeros(max_length, dtype=np.int64)
    ids[: len(words)] = vocab.ids(words)
    return EncodedText(ids=ids, length=len(words), unknown=int(np.sum(ids[: len(words)] == 1)))
