"""The detection and segmentation postprocess kinds of the config schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving.core.config import BoxDetection, ConfigError, PixelSegmentation, load_config
from tests.models import write_model_folder

DETECTION = {"kind": "detection", "boxes_output": "y", "scores_output": "y", "labels": "l.txt"}


def config_with(tmp_path: Path, postprocess: dict) -> Path:
    folder = write_model_folder(tmp_path, "m")
    doc = yaml.safe_load((folder / "config.yaml").read_text())
    doc["postprocess"] = postprocess
    (folder / "config.yaml").write_text(yaml.safe_dump(doc))
    return folder / "config.yaml"


def test_detection_defaults(tmp_path: Path) -> None:
    post = load_config(config_with(tmp_path, DETECTION)).postprocess
    assert isinstance(post, BoxDetection)
    assert (post.score_threshold, post.iou_threshold, post.box_format) == (0.3, 0.5, "xyxy")


def test_segmentation_defaults(tmp_path: Path) -> None:
    post = load_config(
        config_with(tmp_path, {"kind": "segmentation", "output": "y", "labels": "l.txt"})
    ).postprocess
    assert isinstance(post, PixelSegmentation) and post.background == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"boxes_output": "nope"}, "postprocess.boxes_output 'nope' is not among outputs"),
        ({"scores_output": "nope"}, "postprocess.scores_output 'nope' is not among outputs"),
        ({"score_threshold": 1.5}, "postprocess.detection.score_threshold"),
        ({"box_format": "xywh"}, "postprocess.detection.box_format"),
        ({"iou_threshold": 0}, "postprocess.detection.iou_threshold"),
    ],
)
def test_detection_errors_name_the_field(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(config_with(tmp_path, {**DETECTION, **changes}))
