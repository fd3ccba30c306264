"""The committed face models are what their packaged weights compute, and the metrics are right.

Builds the torch modules from the pinned packages in the cache (``$FOVEA_CACHE`` or
``~/.cache/fovea``; fetched on first use) and compares them with the ONNX files in the store.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from export.faces import facenet_casia, facenet_msceleb, verification  # noqa: E402
from export.faces.inception_resnet import prewhiten  # noqa: E402
from export.faces.mtcnn import load_stage  # noqa: E402
from export.weights import default_cache, fetch  # noqa: E402
from tests.conftest import MODEL_STORE  # noqa: E402

STAGES = {
    "pnet": ("mtcnn", (97, 131)),
    "rnet": ("mtcnn_rnet", (24, 24)),
    "onet": ("mtcnn_onet", (48, 48)),
}


def _run(folder: str, pixels: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(
        str(MODEL_STORE / folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"pixels": pixels})


def test_served_embedder_matches_torch() -> None:
    model = facenet_msceleb.load(default_cache())
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 3, 160, 160)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(pixels)).numpy()
    (got,) = _run("facenet_msceleb", pixels)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=2e-3)  # float16-stored weights


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_mtcnn_stage_matches_torch(stage: str) -> None:
    folder, (h, w) = STAGES[stage]
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 3, h, w)).astype(np.float32)
    with torch.no_grad():
        expected = load_stage(stage, default_cache())(torch.from_numpy(pixels))
    for want, got in zip(expected, _run(folder, pixels), strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


def test_conversion_matches_the_frozen_graph_in_opencv() -> None:
    cv2 = pytest.importorskip("cv2")
    facenet = facenet_casia.load(default_cache())
    pixels = np.random.default_rng(2).uniform(0, 255, (1, 3, 160, 160)).astype(np.float32)
    net = cv2.dnn.readNetFromTensorflow(str(fetch(facenet_casia.GRAPH, default_cache())))
    net.setInput(prewhiten(torch.from_numpy(pixels)).numpy())
    with torch.no_grad():
        ours = facenet(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(ours, net.forward(), atol=1e-5)


def test_metrics_agree_with_brute_force() -> None:
    rng = np.random.default_rng(3)
    same = np.r_[np.ones(40, bool), np.zeros(160, bool)]
    scores = np.where(same, rng.normal(0.6, 0.2, 200), rng.normal(0.2, 0.2, 200)).round(2)
    pairs = verification.Pairs(scores, same)
    pos, neg = scores[same], scores[~same]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert verification.roc_auc(pairs) == pytest.approx(brute)
    tar = verification.tar_at_far(pairs, 1e-2)
    assert tar is not None
    assert verification.tar_at_far(pairs, 1e-3) is None  # 160 negatives cannot resolve 1e-3
    threshold = np.sort(neg)[::-1][1]  # at most one of 160 negatives may pass
    assert tar >= np.mean(pos > threshold)
    t = verification.calibrate(pairs)
    tar_t, far_t = verification.rates(pairs, t)
    for other in np.unique(scores):
        a, b = verification.rates(pairs, float(other))
        assert tar_t - far_t >= a - b - 1e-12


def test_all_pairs_counts() -> None:
    emb = np.eye(4, dtype=np.float32)
    pairs = verification.all_pairs(emb, ["a", "a", "b", "c"])
    assert len(pairs.scores) == 6 and pairs.positives == 1 and pairs.negatives == 5


def test_keras_names_follow_the_tensorflow_scopes() -> None:
    assert facenet_msceleb.keras_name("Conv2d_4b_3x3") == "Conv2d_4b_3x3"
    name = "Repeat_1.block17_3.Branch_1.Conv2d_0b_1x7"
    assert facenet_msceleb.keras_name(name) == "Block17_3_Branch_1_Conv2d_0b_1x7"
    assert facenet_msceleb.keras_name("Block8.Conv2d_1x1") == "Block8_6_Conv2d_1x1"
    assert facenet_msceleb.keras_name("Mixed_6a.Branch_0.Conv2d_1a_3x3") == (
        "Mixed_6a_Branch_0_Conv2d_1a_3x3"
    )
