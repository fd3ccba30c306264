"""Split the exported VQA graph into an image encoder and a question head, exactly.

One image with N questions should cost one backbone pass, not N. The full graph
(pixels, tokens, lengths -> logits) is cut at the image vector (the backbone's global average
pool): ``vqa_encoder`` maps pixels to that vector, ``vqa`` maps (vector, tokens, lengths) to
logits. Both halves are extracted from the full graph with ``onnx.utils.extract_model``, so
they hold the very same weights and operators; :func:`check_split` runs the full graph and the
two halves in sequence on the same inputs and requires identical logits.

    python -m export.vqa.split FULL.onnx  # writes model_store/vqa{,_encoder}/1/model.onnx
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

from export.store import write_bytes

CUT = "/backbone/ReduceMean_output_0"  # the image vector [N, 1280] inside the full graph
VECTOR = "image_vector"
ENCODER = "vqa_encoder"


def split_graph(full: Path, encoder_out: Path, head_out: Path) -> None:
    """Write the two halves of ``full``, the cut tensor renamed to ``image_vector``."""
    model = onnx.load(str(full))
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "full.onnx"
        onnx.save(_renamed(model, CUT, VECTOR), str(whole))
        onnx.utils.extract_model(str(whole), str(encoder_out), ["pixels"], [VECTOR])
        onnx.utils.extract_model(
            str(whole), str(head_out), [VECTOR, "tokens", "lengths"], ["logits"]
        )
    for path in (encoder_out, head_out):
        part = onnx.load(str(path))
        for value in (*part.graph.input, *part.graph.output):  # keep the batch axis dynamic
            dims = value.type.tensor_type.shape.dim
            if dims and not dims[0].dim_param:
                dims[0].dim_param = "batch"
        onnx.checker.check_model(part)
        onnx.save(part, str(path))


def _renamed(model: onnx.ModelProto, old: str, new: str) -> onnx.ModelProto:
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    return model


def check_split(full: Path, encoder: Path, head: Path, feeds: dict[str, np.ndarray]) -> float:
    """Max |full - head(encoder(pixels))| over ``feeds``; the halves compute the same ops."""
    opts = {"providers": ["CPUExecutionProvider"]}
    whole = ort.InferenceSession(str(full), **opts).run(["logits"], feeds)[0]
    vector = ort.InferenceSession(str(encoder), **opts).run([VECTOR], {"pixels": feeds["pixels"]})
    rest = {VECTOR: vector[0], "tokens": feeds["tokens"], "lengths": feeds["lengths"]}
    halves = ort.InferenceSession(str(head), **opts).run(["logits"], rest)[0]
    return float(np.abs(whole - halves).max())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("full", type=Path, help="the full VQA graph (pixels, tokens, lengths)")
    p.add_argument("--model-store", type=Path, default=Path("model_store"))
    args = p.parse_args(argv)
    encoder = args.model_store / ENCODER / "1" / "model.onnx"
    head = args.model_store / "vqa" / "1" / "model.onnx"
    rng = np.random.default_rng(0)
    feeds = {
        "pixels": rng.standard_normal((4, 3, 224, 224)).astype(np.float32),
        "tokens": rng.integers(1, 20, (4, 16)).astype(np.int64),
        "lengths": np.asarray([3, 5, 16, 1], dtype=np.int64),
    }
    with tempfile.TemporaryDirectory() as tmp:
        enc_tmp, head_tmp = Path(tmp) / "encoder.onnx", Path(tmp) / "head.onnx"
        split_graph(args.full, enc_tmp, head_tmp)
        diff = check_split(args.full, enc_tmp, head_tmp, feeds)
        print(f"split parity max |full - head(encoder)| = {diff:.3g}")
        write_bytes(encoder, enc_tmp.read_bytes())
        write_bytes(head, head_tmp.read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
