"""Captions from the exported ONNX pair, decoded by the server's own beam search, scored with
``pycocoevalcap`` (BLEU-1..4 and CIDEr-D; its METEOR and SPICE need Java and are not run).

All images decode in lockstep: each step, the live hypotheses of every image form one batch
for the decoder step, as the server's step-level batching does across requests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from serving.tasks.caption.beam_search import BeamSearch, DecodeOptions, detokenize
from serving.text import BOS, EOS, PAD, UNK, Vocabulary, tokenize

STATE = {"h": "h_next", "c": "c_next"}  # decoder input <- decoder output of the previous step


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def caption_images(
    encoder: Path,
    decoder: Path,
    pixels: np.ndarray,
    vocab: Vocabulary,
    options: DecodeOptions,
) -> list[list[tuple[str, float]]]:
    """Per image, the best ``num_captions`` (text, log-prob), best first."""
    enc, dec = session(encoder), session(decoder)
    names = [o.name for o in enc.get_outputs()]
    encoded = [
        dict(zip(names, enc.run(None, {"pixels": pixels[s : s + 16]}), strict=True))
        for s in range(0, len(pixels), 16)
    ]
    outputs = {k: np.concatenate([e[k] for e in encoded]) for k in names}
    context = [{k: outputs[k][i] for k in names if k not in STATE} for i in range(len(pixels))]
    searches = [
        BeamSearch(
            {k: outputs[k][i] for k in STATE},
            bos=vocab.id(BOS),
            eos=vocab.id(EOS),
            options=options,
            banned=(vocab.id(PAD), vocab.id(UNK), vocab.id(BOS)),
        )
        for i in range(len(pixels))
    ]
    while not all(s.finished for s in searches):
        active = [(i, s, s.rows()) for i, s in enumerate(searches) if not s.finished]
        feeds: dict[str, list[np.ndarray]] = {"token": [], **{k: [] for k in names}}
        for i, _, rows in active:
            for row in rows:
                feeds["token"].append(np.asarray(row.token, dtype=np.int64))
                for k in STATE:
                    feeds[k].append(row.state[k])
                for k, v in context[i].items():
                    feeds[k].append(v)
        log_probs, *states = dec.run(None, {k: np.stack(v) for k, v in feeds.items()})
        out_names = [o.name for o in dec.get_outputs()][1:]
        at = 0
        for _, search, rows in active:
            n = len(rows)
            new = [
                {k: states[out_names.index(v)][at + j] for k, v in STATE.items()} for j in range(n)
            ]
            search.advance(list(log_probs[at : at + n]), new)
            at += n
    eos = vocab.id(EOS)
    return [
        [(detokenize(h.tokens, vocab.tokens, eos), h.log_prob) for h in s.results()]
        for s in searches
    ]


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
