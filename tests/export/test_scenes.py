"""The scene generator: deterministic, varied, and its annotations agree with its pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.scenes.backgrounds import SPLIT_PHOTOS
from export.scenes.coco import annotations, semantic_mask
from export.scenes.compose import DEFAULT_SPEC, compose_scene
from export.scenes.graph import Scene
from export.scenes.shapes import CLASSES, shape_alpha


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    a, b = compose_scene("train", 3, 0), compose_scene("train", 3, 0)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.scene == b.scene
    assert not np.array_equal(compose_scene("train", 4, 0).image[:50], a.image[:50])
    assert Scene.from_dict(json.loads(json.dumps(a.scene.to_dict()))) == a.scene


def test_scene_graph_agrees_with_masks() -> None:
    for index in range(10):
        composed = compose_scene("val", index, 0)
        scene = composed.scene
        assert composed.image.shape == (scene.height, scene.width, 3)
        assert 1 <= len(scene.objects) <= DEFAULT_SPEC.max_objects
        union = np.zeros((scene.height, scene.width), dtype=int)
        for obj, mask in zip(scene.objects, composed.masks, strict=True):
            ys, xs = np.nonzero(mask)
            assert obj.bbox == (
                xs.min(),
                ys.min(),
                xs.max() + 1 - xs.min(),
                ys.max() + 1 - ys.min(),
            )
            assert obj.area == mask.sum() and obj.visible_fraction >= DEFAULT_SPEC.min_visible
            assert CLASSES[obj.category_id - 1] == obj.category
            union += mask
        assert union.max() <= 1  # visible parts never overlap: occlusion is resolved


def test_variety_over_many_scenes() -> None:
    objects = [o for i in range(40) for o in compose_scene("train", i, 1).scene.objects]
    assert {o.category for o in objects} == set(CLASSES)
    assert len({o.colour for o in objects}) >= 8
    sizes = [o.size for o in objects]
    assert max(sizes) / min(sizes) >= 4
    assert any(o.visible_fraction < 1 for o in objects)  # some occlusion happens


def test_splits_use_disjoint_photos() -> None:
    train, val, test = (set(SPLIT_PHOTOS[s]) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert compose_scene("test", 0, 0).scene.background["photo"] in test


@pytest.mark.parametrize("kind", CLASSES)
def test_shapes_fill_their_square(kind: str) -> None:
    alpha = shape_alpha(kind, 40, 30.0)
    assert alpha.shape == (40, 40) and 0.15 < alpha.mean() < 0.85


def test_coco_annotations_decode_to_the_masks(tmp_path: Path) -> None:
    mask_utils = pytest.importorskip("pycocotools.mask")
    composed = compose_scene("test", 5, 0)
    anns = annotations(composed.scene, composed.masks, first_id=1)
    for ann, mask in zip(anns, composed.masks, strict=True):
        rle = {
            "size": ann["segmentation"]["size"],
            "counts": ann["segmentation"]["counts"].encode(),
        }
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)
        np.testing.assert_allclose(mask_utils.toBbox(rle), ann["bbox"])
    classes = semantic_mask(
        composed.scene.height,
        composed.scene.width,
        [o.category_id for o in composed.scene.objects],
        composed.masks,
    )
    assert set(np.unique(classes)) == {0, *(o.category_id for o in composed.scene.objects)}
