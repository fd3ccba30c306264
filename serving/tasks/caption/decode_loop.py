"""One image's captions: the beam search driven step by step through a decoder ``step``.

``step`` runs decoder rows somewhere — the server's batcher for the decoder model, or a plain
session in the export's evaluation — so the served and the evaluated captions come from the same
loop. The state map (which decoder input each output feeds next step) comes from the config.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np
from pydantic import BaseModel, Field

from serving.core.config import SequenceDecoding
from serving.core.runtime import Tensors
from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions, detokenize
from serving.text import BOS, EOS, PAD, UNK, Vocabulary

Step = Callable[[list[Tensors]], Awaitable[list[Tensors]]]


class Caption(BaseModel):
    text: str
    log_probability: float = Field(description="sum over generated tokens, <eos> included")
    tokens: int = Field(description="generated tokens, <eos> included")


async def decode_captions(
    encoded: Tensors,
    step: Step,
    post: SequenceDecoding,
    vocab: Vocabulary,
    options: DecodeOptions,
) -> list[Caption]:
    """Best ``options.num_captions`` captions of one encoded image, best first."""
    search = BeamSearch(
        {k: encoded[k] for k in post.state},
        bos=vocab.id(BOS),
        eos=vocab.id(EOS),
        options=options,
        banned=(vocab.id(PAD), vocab.id(UNK), vocab.id(BOS)),
    )
    context = {k: v for k, v in encoded.items() if k not in post.state}
    while not search.finished:
        rows = [
            {post.token_input: np.asarray(r.token, dtype=np.int64), **r.state, **context}
            for r in search.rows()
        ]
        outputs = await step(rows)
        search.advance(
            [o[post.log_probs_output] for o in outputs],
            [{k: o[v] for k, v in post.state.items()} for o in outputs],
        )
    eos = vocab.id(EOS)
    return [
        Caption(
            text=detokenize(h.tokens, vocab.tokens, eos),
            log_probability=h.log_prob,
            tokens=len(h.tokens),
        )
        for h in search.results()
    ]
