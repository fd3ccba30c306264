"""Preprocessing against torchvision's reference transforms on the same decoded pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serving.core.config import Preprocess
from serving.imaging.decode import decode_image
from serving.imaging.preprocess import ImagePreprocessor
from tests.conftest import MODEL_STORE, jpeg_bytes

torchvision = pytest.importorskip("torchvision")
T = torchvision.transforms

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def _config(**resize: object) -> Preprocess:
    return Preprocess.model_validate(
        {
            "input": "pixels",
            "resize": resize,
            "crop": {"width": 224, "height": 224},
            "normalize": IMAGENET,
        }
    )


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "astronaut"])
def test_classifier_pipeline_matches_torchvision(photo: str) -> None:
    import skimage.data

    from serving.core.config import load_config

    config = load_config(MODEL_STORE / "mobilenet_v2" / "config.yaml").preprocess
    assert config is not None
    png = io.BytesIO()
    Image.fromarray(getattr(skimage.data, photo)()).save(png, format="PNG")
    ours = ImagePreprocessor(config, max_pixels=10**8)(png.getvalue()).tensor
    reference = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.transforms()(
        Image.open(io.BytesIO(png.getvalue())).convert("RGB")
    ).numpy()
    assert ours.shape == reference.shape == (3, 224, 224)
    assert ours.dtype == np.float32
    # The config resizes only the crop window: at most one uint8 level (1/255 / std) off the
    # full resize, on a few pixels in 10,000; everywhere else identical up to float rounding.
    assert config.crop is not None and config.crop.window_only
    diff = np.abs(ours - reference)
    assert diff.max() <= 1 / 255 / min(IMAGENET["std"]) + 1e-5
    assert np.mean(diff > 1e-5) < 1e-3


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "astronaut", "rocket"])
def test_window_only_crop_is_one_level_from_the_full_resize(photo: str) -> None:
    import skimage.data

    png = io.BytesIO()
    Image.fromarray(getattr(skimage.data, photo)()).save(png, format="PNG")
    config = _config(mode="shorter_side", size=256)
    full = ImagePreprocessor(config, max_pixels=10**8)(png.getvalue())
    window_config = config.model_copy(
        update={"crop": config.crop.model_copy(update={"window_only": True})}
    )
    window = ImagePreprocessor(window_config, max_pixels=10**8)(png.getvalue())
    levels = np.abs(full.tensor - window.tensor) * 255 * np.asarray(IMAGENET["std"])[:, None, None]
    assert levels.max() < 1 + 1e-3
    assert np.mean(levels > 1e-3) < 1e-3
    assert window.geometry == full.geometry


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_shorter_side_and_crop_pixels_match_torchvision(interpolation: str) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (301, 457, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    config = _config(mode="shorter_side", size=256, interpolation=interpolation)
    ours = ImagePreprocessor(config, max_pixels=10**8)(png.getvalue()).tensor
    mode = getattr(T.InterpolationMode, interpolation.upper())
    reference = T.Compose(
        [
            T.Resize(256, interpolation=mode),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(**IMAGENET),
        ]
    )(Image.fromarray(pixels)).numpy()
    assert np.max(np.abs(ours - reference)) < 1e-5


def test_letterbox_keeps_aspect_and_maps_boxes_back() -> None:
    pixels = np.zeros((200, 400, 3), dtype=np.uint8)
    pixels[50:150, 100:300] = 255  # a white box at x 100..300, y 50..150
    config = Preprocess.model_validate(
        {
            "input": "x",
            "resize": {"mode": "letterbox", "width": 320, "height": 320, "pad_value": 0},
            "normalize": {"scale": 1.0},
            "layout": "NHWC",
            "datatype": "UINT8",
        }
    )
    prepared = ImagePreprocessor(config, max_pixels=10**8)(jpeg_bytes(pixels))
    out = prepared.tensor
    assert out.shape == (320, 320, 3)
    assert out[170:, :, :].max() == 0  # padding below the 320x160 image
    ys, xs = np.nonzero(out[..., 0] > 128)
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float32)
    back = prepared.geometry.boxes_to_original(box)[0]
    assert np.allclose(back, [100, 50, 300, 150], atol=3)


def test_large_jpeg_is_decoded_reduced_but_geometry_stays_in_original_pixels() -> None:
    big = np.full((3000, 4000, 3), 128, dtype=np.uint8)
    data = jpeg_bytes(big, quality=80)
    config = _config(mode="shorter_side", size=256)
    pre = ImagePreprocessor(config, max_pixels=10**8)
    decoded = pre.decode(data)
    assert decoded.original_size == (4000, 3000)
    assert decoded.pixels.shape[0] >= 256 and decoded.pixels.shape[0] <= 3000 // 8 + 1
    prepared = pre.from_decoded(decoded)
    # a model-space point maps back into the 4000x3000 frame
    centre = prepared.geometry.points_to_original(np.array([[112.0, 112.0]], dtype=np.float32))
    assert np.allclose(centre, [[2000, 1500]], atol=10)


def test_normalisation_layouts_and_dtypes() -> None:
    pixels = np.full((8, 8, 3), 255, dtype=np.uint8)
    nchw = ImagePreprocessor(
        Preprocess.model_validate(
            {"input": "x", "normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
        ),
        max_pixels=10**6,
    ).to_tensor(pixels)
    assert nchw.shape == (3, 8, 8) and np.allclose(nchw, 1.0)
    nhwc16 = ImagePreprocessor(
        Preprocess.model_validate({"input": "x", "layout": "NHWC", "datatype": "FP16"}),
        max_pixels=10**6,
    ).to_tensor(pixels)
    assert nhwc16.shape == (8, 8, 3) and nhwc16.dtype == np.float16 and np.allclose(nhwc16, 1.0)


def test_decode_limits_are_enforced_from_the_header() -> None:
    from serving.errors import PayloadTooLarge

    data = jpeg_bytes(np.zeros((100, 100, 3), dtype=np.uint8))
    with pytest.raises(PayloadTooLarge, match="10000 pixels"):
        decode_image(data, max_pixels=9_999)
