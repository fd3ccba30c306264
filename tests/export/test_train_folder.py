"""``fovea train classifier`` for real on a tiny folder of photo crops: trained in seconds,
exported, hot-loaded into a live server over the repository API, and classifying held-out
crops correctly; and the clear errors for folders that cannot be trained on."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

pytest.importorskip("torch")

from export.weights import default_cache
from serving.cli import main as fovea
from serving.core.config import load_config
from tests.conftest import jpeg_bytes
from tests.server import LiveServer

PHOTOS = ("chelsea", "coffee", "astronaut")
SIZE = 96  # small input: the test trains in seconds


def crops(name: str, count: int, seed: int) -> list[np.ndarray]:
    """Random square crops (50-80% of the short side) of one scikit-image photo."""
    import skimage.data

    img = getattr(skimage.data, name)()
    h, w = img.shape[:2]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        s = int(min(h, w) * rng.uniform(0.5, 0.8))
        y, x = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
        out.append(img[y : y + s, x : x + s])
    return out


def image_folder(root: Path, per_class: int = 6) -> Path:
    for name in PHOTOS:
        (root / name).mkdir(parents=True)
        for i, crop in enumerate(crops(name, per_class, seed=len(name))):
            Image.fromarray(crop).save(root / name / f"{i}.jpg")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A private cache (features land here) that reuses the downloaded backbone weights."""
    private = tmp_path / "cache"
    private.mkdir()
    for sub in ("weights", "wheels"):
        (default_cache() / sub).mkdir(parents=True, exist_ok=True)
        (private / sub).symlink_to(default_cache() / sub)
    return private


def train(data: Path, store: Path, cache: Path, *extra: str) -> int:
    argv = ["train", "classifier", str(data), "--name", "crops", "--model-store", str(store)]
    argv += ["--cache", str(cache), "--image-size", str(SIZE), "--epochs", "15"]
    return fovea([*argv, "--batch-size", "8", *extra])


def test_trains_exports_hot_loads_and_classifies(tmp_path: Path, cache: Path) -> None:
    data = image_folder(tmp_path / "data")
    store = tmp_path / "store"
    store.mkdir()
    with LiveServer(store) as srv:
        assert train(data, store, cache, "--url", srv.url) == 0
        folder = store / "crops"
        config = load_config(folder / "config.yaml")
        metrics = config.card.metrics
        assert metrics["val_images"] == 3 and 0 <= metrics["val_accuracy"] <= 1
        assert set(metrics["val_per_class_accuracy"]) == set(PHOTOS)
        assert metrics["parity_max_abs_diff"] <= 1e-3
        assert config.card.reproduce.startswith("fovea train classifier ")
        assert (folder / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
        assert config.explain is not None and config.embedding is not None
        assert np.load(folder / "classifier.npy").shape == (3, 1280)

        held_out = [jpeg_bytes(crops(n, 1, seed=100 + i)[0]) for i, n in enumerate(PHOTOS)]
        files = [("image", (f"{i}.jpg", d, "image/jpeg")) for i, d in enumerate(held_out)]
        r = httpx.post(
            srv.url + "/v1/classify",
            params={"model": "crops", "top_k": 1},
            files=files,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        labels = [res["predictions"][0]["label"] for res in r.json()["results"]]
        assert labels == list(PHOTOS)


def test_one_class_is_an_error(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    (data / "only").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(data / "only" / "a.png")
    assert train(data, tmp_path / "store", cache) == 1
    assert "at least two classes; found only 'only'" in capsys.readouterr().err


def test_empty_class_is_named(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture) -> None:
    data = image_folder(tmp_path / "data", per_class=2)
    (data / "zebra").mkdir()
    (data / "zebra" / "notes.txt").write_text("not an image")
    assert train(data, tmp_path / "store", cache) == 1
    assert "without images" in (err := capsys.readouterr().err) and "zebra" in err


def test_unreadable_images_are_listed(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    data = image_folder(tmp_path / "data", per_class=2)
    (data / "coffee" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    assert train(data, tmp_path / "store", cache) == 1
    err = capsys.readouterr().err
    assert "1 image(s) cannot be read" in err and "broken.jpg" in err
    assert not (tmp_path / "store" / "crops").exists()


def test_reproduce_command_is_recorded_in_yaml(tmp_path: Path) -> None:
    from export.train_folder.recipe import command_line

    assert command_line(["d ir", "--name", "x"]) == "fovea train classifier 'd ir' --name x"
    assert yaml.safe_load(yaml.safe_dump({"c": command_line(["a"])}))["c"].endswith(" a")
