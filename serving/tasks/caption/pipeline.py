"""Image captioning: encoder model once per image, then a server-side decoding loop.

Each image becomes one sequence of the decoder's :class:`StepScheduler`, which runs every
sequence in flight -- from this request and from others -- through one decoder run per step. A
finished sequence leaves and a new one joins at the next step: batching happens per step, not
per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from functools import partial
from typing import TYPE_CHECKING, Any

from serving.core.config import SequenceDecoding
from serving.core.deadline import Deadline
from serving.core.threads import compute_thread_init
from serving.settings import Settings
from serving.tasks.caption.beam_search import DecodeOptions
from serving.tasks.caption.decode_loop import Caption, decode_captions
from serving.tasks.caption.scheduler import StepScheduler
from serving.tasks.image_pipeline import ImagePipeline
from serving.text import BOS, EOS, Vocabulary

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


class CaptioningPipeline(ImagePipeline):
    """The encoder model's pipeline; the decoder step model is bound as a dependency."""

    needs, needs_kind = SequenceDecoding, "sequence_decoding"
    decoder: ModelVersion
    steps: StepScheduler  # the decoder's step loop, made when the decoder is bound

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        config = version.config
        self.vocab = Vocabulary.load(version.folder.parent / self.post.vocabulary)
        if BOS not in self.vocab.tokens or EOS not in self.vocab.tokens:
            raise ValueError(f"{self.post.vocabulary} lacks {BOS} or {EOS}")
        outputs = {o.name for o in config.outputs}
        if not set(self.post.state) <= outputs:
            raise ValueError(f"state {sorted(self.post.state)} must be among the encoder outputs")
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
        if getattr(self, "decoder", None) is decoder:  # rebound unchanged: keep its loop
            return
        self.decoder = decoder
        batching = decoder.config.batching
        self.steps = StepScheduler(
            lambda feeds: decoder.model.run(feeds),  # looked up per call: tests wrap run
            self.post,
            max_rows=decoder.model.rows_per_run,
            max_queued_rows=batching.max_queue_size,
            observer=decoder.recorder,
            name=f"{decoder.name}/{decoder.version}",
            thread_init=partial(compute_thread_init, self.settings.compute_nice),
        )

    async def caption(
        self, images: list[bytes], *, options: DecodeOptions, deadline: Deadline
    ) -> list[list[Caption]]:
        _, encoded = await self.infer_images(images, deadline)
        return await decode_captions(
            encoded, self.steps, self.post, self.vocab, options, deadline=deadline.at
        )
