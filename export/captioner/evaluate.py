"""Captions from the exported ONNX pair, decoded by the server's own decoding loop, scored with
``pycocoevalcap`` (BLEU-1..4 and CIDEr-D; its METEOR and SPICE need Java and are not run).

Every image decodes through :func:`serving.tasks.caption.decode_loop.decode_captions` and a
:class:`serving.tasks.caption.scheduler.StepScheduler` over the decoder session: the same loop and
the same step-level batching as the server, with the state map taken from the model's
``sequence_decoding`` config.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from serving.core.config import SequenceDecoding
from serving.core.runtime import Tensors, run_rows
from serving.tasks.caption.beam_search import DecodeOptions
from serving.tasks.caption.decode_loop import decode_captions
from serving.tasks.caption.scheduler import StepScheduler
from serving.text import Vocabulary, tokenize


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(sess: ort.InferenceSession) -> Callable[[Tensors], Tensors]:
    names = [o.name for o in sess.get_outputs()]
    return lambda feeds: dict(zip(names, sess.run(names, feeds), strict=True))


def caption_images(
    encoder: Path,
    decoder: Path,
    pixels: np.ndarray,
    vocab: Vocabulary,
    options: DecodeOptions,
    decoding: SequenceDecoding,
) -> list[list[tuple[str, float]]]:
    """Per image, the best ``num_captions`` (text, log-prob), best first."""
    encode = _run(session(encoder))
    encoded = [
        row
        for s in range(0, len(pixels), 16)
        for row in run_rows(encode, [{"pixels": p} for p in pixels[s : s + 16]])
    ]
    steps = StepScheduler(
        _run(session(decoder)), decoding, max_rows=1024, max_queued_rows=1 << 20, idle_s=0.1
    )
    found = asyncio.run(decode_captions(encoded, steps, decoding, vocab, options))
    return [[(c.text, c.log_probability) for c in captions] for captions in found]


def caption_metrics(references: list[list[str]], hypotheses: list[str]) -> dict[str, float]:
    """Corpus BLEU-1..4 and CIDEr-D over lower-cased word tokens (our tokenizer, not PTB's)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    gts = {i: [" ".join(tokenize(r)) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(tokenize(h))] for i, h in enumerate(hypotheses)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    scores = {f"BLEU-{n}": round(float(b), 4) for n, b in enumerate(bleu, 1)}
    return {**scores, "CIDEr": round(float(cider), 4)}
