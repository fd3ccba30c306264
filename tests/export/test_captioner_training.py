"""The captioner recipe's pieces in seconds: a few scenes and captions, a few training steps,
both ONNX exports checked against PyTorch, and decoding by the server's beam search. The CNN
has random weights so nothing is downloaded; ``fovea export captioner`` runs these at scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torchvision  # noqa: E402

from export.captioner.captions import candidates, references  # noqa: E402
from export.captioner.data import build_split, caption_table, preprocessor  # noqa: E402
from export.captioner.evaluate import caption_images, caption_metrics  # noqa: E402
from export.captioner.model import Captioner, CaptionerConfig  # noqa: E402
from export.captioner.recipe import DECODING  # noqa: E402
from export.captioner.scenes import scene_jpeg  # noqa: E402
from export.captioner.train import caption_tensor, train  # noqa: E402
from export.onnx_export import check_parity, export_onnx  # noqa: E402
from export.scenes.graph import Scene, SceneObject  # noqa: E402
from serving.core.config import SequenceDecoding  # noqa: E402
from serving.tasks.caption.beam_search import DecodeOptions  # noqa: E402
from serving.text import BOS, EOS, Vocabulary, tokenize  # noqa: E402


def obj(i: int, category: str, colour: str, x: float, y: float) -> SceneObject:
    return SceneObject(i, category, 1, colour, (0, 0, 0), (x, y), 40, 0.0, (0, 0, 1, 1), 1, 1.0)


def test_captions_follow_the_scene_graph() -> None:
    scene = Scene(
        1,
        "x.jpg",
        "test",
        (0,),
        300,
        300,
        {},
        [obj(1, "star", "red", 50, 150), obj(2, "ring", "orange", 250, 160)],
    )
    pool = candidates(scene)
    assert "a red star to the left of an orange ring" in pool
    assert "an orange ring to the right of a red star" in pool
    assert "a red star and an orange ring" in pool
    refs = references(scene, 5, seed=0)
    assert len(set(refs)) == 5 and refs == references(scene, 5, seed=0)
    assert all("red star" in r and "orange ring" in r for r in refs)  # all name every object
    twins = Scene(
        2,
        "y.jpg",
        "test",
        (0,),
        300,
        300,
        {},
        [
            obj(1, "cross", "blue", 40, 40),
            obj(2, "cross", "blue", 260, 260),
            obj(3, "circle", "white", 150, 150),
        ],
    )
    assert "two blue crosses and a white circle" in candidates(twins)
    alone = Scene(3, "z.jpg", "test", (0,), 300, 300, {}, [obj(1, "star", "red", 20, 280)])
    assert "a red star in the bottom left corner" in candidates(alone)


def test_train_steps_export_and_decode(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cnn = torchvision.models.mobilenet_v2().features.eval()
    regions, scenes = build_split(cnn, "train", 6, 0, tmp_path / "train.npz", batch_size=6)
    assert regions.shape == (6, 49, 1280) and regions.dtype == np.float16
    assert build_split(cnn, "train", 6, 0, tmp_path / "train.npz")[1] == scenes  # cached
    refs = caption_table(scenes, 5, 0)
    vocab = Vocabulary.build([r for rs in refs for r in rs], specials=(BOS, EOS))
    cfg = CaptionerConfig(vocab_size=len(vocab), d_att=32, d_key=16, d_emb=16, d_h=24)
    model = Captioner(cnn, cfg)
    tokens, owners = caption_tensor(refs, vocab)
    assert tokens[0, 0] == vocab.id(BOS) and (tokens == vocab.id(EOS)).sum() == len(tokens)
    before = model.encoder.cnn[0][0].weight.clone()
    val = train(
        model,
        (regions, tokens, owners),
        (regions, tokens, owners),
        epochs=2,
        batch_size=8,
        lr=1e-3,
        seed=0,
        checkpoint=tmp_path / "c.pt",
        max_steps=3,
    )
    assert np.isfinite(val["val_nll"])
    assert torch.equal(model.encoder.cnn[0][0].weight, before)  # the CNN stays frozen
    model.eval()

    pixels = np.stack([preprocessor()(scene_jpeg("train", i, 0)[0]).tensor for i in range(3)])
    enc, dec = tmp_path / "enc.onnx", tmp_path / "dec.onnx"
    export_onnx(
        model.encoder,
        (torch.from_numpy(pixels[:2]),),
        enc,
        input_names=["pixels"],
        output_names=["features", "keys", "h", "c"],
    )
    assert check_parity(model.encoder, enc, {"pixels": pixels}, atol=1e-4) <= 1e-4
    with torch.no_grad():
        feats, keys, h, c = (t.numpy() for t in model.encoder(torch.from_numpy(pixels)))
    step = {"token": np.array([4, 5, 6]), "h": h, "c": c, "features": feats, "keys": keys}
    export_onnx(
        model.step,
        tuple(torch.from_numpy(v[:2]) for v in step.values()),
        dec,
        input_names=list(step),
        output_names=["log_probs", "h_next", "c_next"],
    )
    assert check_parity(model.step, dec, step, atol=1e-4) <= 1e-4

    decoding = SequenceDecoding.model_validate(DECODING)
    options = DecodeOptions(beam_size=2, max_length=5, num_captions=2)
    out = caption_images(enc, dec, pixels, vocab, options, decoding)
    assert len(out) == 3 and all(len(o) == 2 for o in out)
    assert all(len(tokenize(text)) <= 5 for o in out for text, _ in o)
    scores = caption_metrics([refs[i] for i in range(3)], [o[0][0] for o in out])
    assert set(scores) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr"}
    perfect = caption_metrics([refs[0]], [refs[0][0]])
    assert perfect["BLEU-1"] == pytest.approx(1.0, abs=1e-6)
