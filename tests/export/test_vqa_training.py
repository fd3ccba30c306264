"""The VQA recipe's pieces on real easy-VQA questions, in seconds: train a few steps, export,
and check ONNX Runtime against PyTorch. The CNN is MobileNetV2 with random weights, so nothing
is downloaded; the full recipe (``fovea export vqa``) runs the same functions at scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("easy_vqa")

import torchvision  # noqa: E402

from export.onnx_export import check_parity, export_onnx  # noqa: E402
from export.vqa.data import answer_list, load_split, question_type  # noqa: E402
from export.vqa.features import D_V, PooledBackbone, image_features  # noqa: E402
from export.vqa.model import HeadConfig, VqaNet  # noqa: E402
from export.vqa.split import check_split, split_graph  # noqa: E402
from export.vqa.train import encode_split, evaluate, holdout, train  # noqa: E402
from serving.text import Vocabulary  # noqa: E402

IMAGES = 12


@pytest.fixture(scope="module")
def backbone() -> PooledBackbone:
    torch.manual_seed(0)
    return PooledBackbone(torchvision.models.mobilenet_v2()).eval()


def test_question_types() -> None:
    assert question_type("What color is the shape?", "red") == "color"
    assert question_type("what is the blue shape?", "circle") == "shape"
    assert question_type("is there a red shape?", "no") == "yes/no"
    assert question_type("is there not a red shape?", "yes") == "yes/no (negated)"


@pytest.mark.parametrize("fusion", ["mutan", "product", "concat"])
def test_train_steps_then_export_matches_torch(
    fusion: str, backbone: PooledBackbone, tmp_path: Path
) -> None:
    split = load_split("test")
    paths = {i: p for i, p in split.image_paths.items() if i < IMAGES}
    torch.set_num_threads(1)
    feats = image_features(backbone, paths, tmp_path / "features.npz", batch_size=IMAGES)
    assert next(iter(feats.values())).shape == (D_V,)
    keep = [k for k, i in enumerate(split.image_ids) if i < IMAGES]
    small = type(split)(
        [split.questions[k] for k in keep],
        [split.answers[k] for k in keep],
        [split.image_ids[k] for k in keep],
        paths,
    )
    vocab, answers = Vocabulary.build(small.questions), answer_list()
    data = encode_split(small, feats, vocab, answers, max_length=16)
    train_set, val_set = holdout(data, val_fraction=0.25)
    assert set(train_set.image_ids).isdisjoint(val_set.image_ids)
    cfg = HeadConfig(
        vocab_size=len(vocab),
        answers=len(answers),
        fusion=fusion,
        t_q=32,
        t_v=32,
        t_o=48,
        rank=3,
        d_q=32,
        d_emb=16,
    )
    head, val = train(
        cfg,
        train_set,
        val_set,
        epochs=2,
        batch_size=16,
        lr=1e-3,
        seed=0,
        checkpoint=tmp_path / "ckpt.pt",
        max_steps=4,
    )
    scores = evaluate(head, val_set)
    assert scores["questions"] == len(val_set.labels) and 0 <= scores["overall"] <= 100
    assert val["val_overall"] == scores["overall"]  # the kept weights are the scored ones

    net = VqaNet(backbone, head).eval()
    rng = np.random.default_rng(0)
    feeds = {
        "pixels": rng.standard_normal((3, 3, 64, 64), dtype=np.float32),
        "tokens": data.tokens[:3].numpy(),
        "lengths": data.lengths[:3].numpy(),
    }
    path = export_onnx(
        net,
        tuple(torch.from_numpy(v[:2]) for v in feeds.values()),
        tmp_path / "model.onnx",
        input_names=list(feeds),
        output_names=["logits"],
        dynamic_axes={
            "pixels": {0: "batch"},
            "tokens": {0: "batch", 1: "words"},
            "lengths": {0: "batch"},
            "logits": {0: "batch"},
        },
    )
    # exported with a batch of 2, run with 3: the batch axis (and the GRU state) is dynamic
    assert check_parity(net, path, feeds, atol=1e-4, label=fusion) <= 1e-4
    # the served pair: image encoder + question head cut from the graph, exactly equal
    encoder, head_path = tmp_path / "encoder.onnx", tmp_path / "head.onnx"
    split_graph(path, encoder, head_path)
    assert check_split(path, encoder, head_path, feeds) == 0


def test_padding_does_not_change_the_answer(backbone: PooledBackbone) -> None:
    """The question vector is the GRU state at the last word, whatever padding follows."""
    from export.vqa.model import QuestionEncoder

    torch.manual_seed(0)
    enc = QuestionEncoder(vocab_size=10, d_emb=8, d_q=12).eval()
    short = torch.tensor([[3, 4, 5, 0]])
    longer = torch.tensor([[3, 4, 5, 0, 0, 0, 0, 0]])
    n = torch.tensor([3])
    with torch.no_grad():
        assert torch.allclose(enc(short, n), enc(longer, n), atol=1e-6)
        assert not torch.allclose(enc(short, n), enc(short, torch.tensor([2])))
