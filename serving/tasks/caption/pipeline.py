"""Image captioning: encoder model once per image, then a server-side decoding loop.

Each image decodes in its own coroutine. Every step it submits one row per live hypothesis to
the *decoder step* model's batcher, so the rows of all sequences active at that moment -- from
this request and from others -- run as one batch. A finished sequence stops submitting and a
sequence that just started joins at the next step: batching happens per step, not per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from serving.core.config import SequenceDecoding
from serving.core.deadline import Deadline
from serving.core.runtime import Tensors
from serving.settings import Settings
from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions, detokenize
from serving.tasks.image_pipeline import ImagePipeline
from serving.text import BOS, EOS, PAD, UNK, Vocabulary

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


class Caption(BaseModel):
    text: str
    log_probability: float = Field(description="sum over generated tokens, <eos> included")
    tokens: int = Field(description="generated tokens, <eos> included")


class CaptioningPipeline(ImagePipeline):
    """The encoder model's pipeline; the decoder step model is bound as a dependency."""

    needs, needs_kind = SequenceDecoding, "sequence_decoding"
    decoder: ModelVersion

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        config = version.config
        self.vocab = Vocabulary.load(version.folder.parent / self.post.vocabulary)
        if BOS not in self.vocab.tokens or EOS not in self.vocab.tokens:
            raise ValueError(f"{self.post.vocabulary} lacks {BOS} or {EOS}")
        outputs = {o.name for o in config.outputs}
        if not set(self.post.state) <= outputs:
            raise ValueError(f"state {sorted(self.post.state)} must be among the encoder outputs")
        self.context = sorted(outputs - set(self.post.state))
        self.encoder_outputs = outputs

    def option_defaults(self) -> dict[str, Any]:
        return {
            **super().option_defaults(),
            "beam_size": self.post.default_beam_size,
            "max_length": self.post.default_max_length,
            "length_penalty": self.post.length_penalty,
        }

    def dependencies(self) -> dict[str, str]:
        return {"decoder": self.post.decoder_model}

    def bind(self, models: Mapping[str, ModelVersion]) -> None:
        """The decoder must take the token plus exactly the encoder's outputs."""
        decoder = models["decoder"]
        inputs = {t.name for t in decoder.config.inputs}
        outputs = {t.name for t in decoder.config.outputs}
        want_in = {self.post.token_input, *self.encoder_outputs}
        want_out = {self.post.log_probs_output, *self.post.state.values()}
        if inputs != want_in or not want_out <= outputs:
            raise ValueError(
                f"decoder {decoder.name!r} does not fit {self.version.name!r}: inputs "
                f"{sorted(inputs)} (want {sorted(want_in)}), outputs {sorted(outputs)}"
            )
        self.decoder = decoder

    async def caption(
        self, images: list[bytes], *, options: DecodeOptions, deadline: Deadline
    ) -> list[list[Caption]]:
        _, encoded = await self.infer_images(images, deadline)
        return list(
            await asyncio.gather(*(self._decode(e, options, deadline) for e in encoded))
        )

    async def _decode(
        self, encoded: Tensors, options: DecodeOptions, deadline: Deadline
    ) -> list[Caption]:
        vocab, post = self.vocab, self.post
        search = BeamSearch(
            {k: encoded[k] for k in post.state},
            bos=vocab.id(BOS),
            eos=vocab.id(EOS),
            options=options,
            banned=(vocab.id(PAD), vocab.id(UNK), vocab.id(BOS)),
        )
        context = {k: encoded[k] for k in self.context}
        while not search.finished:
            rows = [
                {post.token_input: np.asarray(r.token, dtype=np.int64), **r.state, **context}
                for r in search.rows()
            ]
            outputs = await self.decoder.infer(rows, timeout_s=deadline.remaining_s())
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
