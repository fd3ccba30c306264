"""Image captioning: encoder model once per image, then a server-side decoding loop.

Each image decodes in its own coroutine. Every step it submits one row per live hypothesis to
the *decoder step* model's batcher, so the rows of all sequences active at that moment -- from
this request and from others -- run as one batch. A finished sequence stops submitting and a
sequence that just started joins at the next step: batching happens per step, not per request.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from serving.core.config import SequenceDecoding
from serving.core.runtime import Tensors
from serving.errors import ModelUnavailable
from serving.imaging.preprocess import ImagePreprocessor
from serving.settings import Settings
from serving.tasks.base import Deadline, prepare_all
from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions, detokenize
from serving.text import BOS, EOS, PAD, UNK, Vocabulary

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


@dataclass(frozen=True)
class Caption:
    text: str
    log_probability: float  # sum over generated tokens, <eos> included
    tokens: int  # generated tokens, <eos> included


class CaptioningPipeline:
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        config = version.config
        if config.preprocess is None or not isinstance(config.postprocess, SequenceDecoding):
            raise ValueError("a captioning model needs preprocess and sequence_decoding")
        self.version = version
        self.pool = pool
        self.post = config.postprocess
        self.preprocessor = ImagePreprocessor(
            config.preprocess, max_pixels=settings.max_image_pixels
        )
        self.vocab = Vocabulary.load(version.folder.parent / self.post.vocabulary)
        if BOS not in self.vocab.tokens or EOS not in self.vocab.tokens:
            raise ValueError(f"{self.post.vocabulary} lacks {BOS} or {EOS}")
        outputs = {o.name for o in config.outputs}
        if not set(self.post.state) <= outputs:
            raise ValueError(f"state {sorted(self.post.state)} must be among the encoder outputs")
        self.context = sorted(outputs - set(self.post.state))
        self.encoder_outputs = outputs

    @property
    def decoder_model(self) -> str:
        return self.post.decoder_model

    def check_decoder(self, decoder: ModelVersion) -> None:
        """The decoder must take the token plus exactly the encoder's outputs."""
        inputs = {t.name for t in decoder.config.inputs}
        outputs = {t.name for t in decoder.config.outputs}
        want_in = {self.post.token_input, *self.encoder_outputs}
        want_out = {self.post.log_probs_output, *self.post.state.values()}
        if inputs != want_in or not want_out <= outputs:
            raise ModelUnavailable(
                f"decoder {decoder.name!r} does not fit {self.version.name!r}: inputs "
                f"{sorted(inputs)} (want {sorted(want_in)}), outputs {sorted(outputs)}"
            )

    async def __call__(
        self,
        images: list[bytes],
        *,
        decoder: ModelVersion,
        options: DecodeOptions,
        deadline: Deadline,
    ) -> list[list[Caption]]:
        self.check_decoder(decoder)
        prepared = await prepare_all(self.pool, self.preprocessor, images)
        rows = [{self.preprocessor.config.input: p.tensor} for p in prepared]
        encoded = await self.version.infer(rows, timeout_s=deadline.remaining_s())
        return list(
            await asyncio.gather(*(self._decode(e, decoder, options, deadline) for e in encoded))
        )

    async def _decode(
        self, encoded: Tensors, decoder: ModelVersion, options: DecodeOptions, deadline: Deadline
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
            outputs = await decoder.infer(rows, timeout_s=deadline.remaining_s())
            search.advance(
                [o[post.log_probs_output] for o in outputs],
                [{k: o[v] for k, v in post.state.items()} for o in outputs],
            )
        eos = vocab.id(EOS)
        return [
            Caption(detokenize(h.tokens, vocab.tokens, eos), h.log_prob, len(h.tokens))
            for h in search.results()
        ]
