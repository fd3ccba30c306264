"""Images' captions: one beam search per encoded image, run to the end by a step scheduler.

The scheduler runs decoder steps somewhere -- the server's decoder session, or a plain session in
the export's evaluation -- so the served and the evaluated captions come from the same loop. The
state map (which decoder input each output feeds next step) comes from the config.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel, Field

from serving.core.config import SequenceDecoding
from serving.core.runtime import Tensors
from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions, detokenize
from serving.tasks.caption.scheduler import StepScheduler
from serving.text import BOS, EOS, PAD, UNK, Vocabulary


class Caption(BaseModel):
    text: str
    log_probability: float = Field(description="sum over generated tokens, <eos> included")
    tokens: int = Field(description="generated tokens, <eos> included")


async def decode_captions(
    encoded: Sequence[Tensors],
    steps: StepScheduler,
    post: SequenceDecoding,
    vocab: Vocabulary,
    options: DecodeOptions,
    *,
    deadline: float | None = None,
) -> list[list[Caption]]:
    """Per encoded image, the best ``options.num_captions`` captions, best first.

    ``deadline``: a ``time.perf_counter()`` value by which decoding must end, or None.
    """
    eos = vocab.id(EOS)
    banned = (vocab.id(PAD), vocab.id(UNK), vocab.id(BOS))

    async def one(image: Tensors) -> list[Caption]:
        search = BeamSearch(
            {k: image[k] for k in post.state},
            bos=vocab.id(BOS),
            eos=eos,
            options=options,
            banned=banned,
        )
        context = {k: v for k, v in image.items() if k not in post.state}
        await steps.decode(search, context, deadline=deadline)
        return [
            Caption(
                text=detokenize(h.tokens, vocab.tokens, eos),
                log_probability=h.log_prob,
                tokens=len(h.tokens),
            )
            for h in search.results()
        ]

    return list(await asyncio.gather(*(one(e) for e in encoded)))
