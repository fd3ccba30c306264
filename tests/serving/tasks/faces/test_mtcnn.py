"""MTCNN's cascade steps and the 'min' overlap NMS it uses."""

from __future__ import annotations

import numpy as np

from serving.imaging.nms import nms
from serving.tasks.faces import mtcnn
from serving.tasks.faces.geometry import box_template, fit_within, largest


def test_pyramid_stops_before_the_window_outgrows_the_image() -> None:
    scales = mtcnn.pyramid_scales(640, 480, min_face=20, factor=0.709)
    assert scales[0] == 12 / 20
    assert all(480 * s >= 12 for s in scales) and 480 * scales[-1] * 0.709 < 12
    np.testing.assert_allclose(np.diff(np.log(scales)), np.log(0.709))


def test_proposals_map_cells_back_to_image_windows() -> None:
    probs = np.zeros((5, 6), dtype=np.float32)
    probs[2, 3] = 0.9
    offsets = np.arange(4 * 30, dtype=np.float32).reshape(4, 5, 6)
    boxes, scores, offs = mtcnn.proposals(offsets, probs, scale=0.5, threshold=0.6)
    # cell (x=3, y=2): window from 2*(3,2)+1 to 2*(3,2)+12 at half scale
    np.testing.assert_array_equal(boxes, [[14, 10, 36, 32]])
    assert scores.tolist() == [np.float32(0.9)] and offs.tolist() == [offsets[:, 2, 3].tolist()]


def test_square_keeps_the_centre() -> None:
    out = mtcnn.square(np.array([[10, 20, 30, 60]], dtype=np.float32))
    np.testing.assert_array_equal(out, [[0, 20, 40, 60]])


def test_landmarks_are_box_fractions() -> None:
    boxes = np.array([[9, 19, 108, 218]], dtype=np.float32)  # 100 x 200 in inclusive pixels
    rel = np.array([[0.0, 0.5, 1.0, 0.25, 0.75, 0.0, 0.5, 1.0, 0.25, 0.75]], dtype=np.float32)
    points = mtcnn.landmarks(boxes, rel)
    np.testing.assert_allclose(points[0, :, 0], [8, 58, 108, 33, 83])
    np.testing.assert_allclose(points[0, :, 1], [18, 118, 218, 68, 168])


def test_min_overlap_drops_a_box_inside_a_bigger_one() -> None:
    boxes = np.array([[0, 0, 100, 100], [10, 10, 40, 40]], dtype=np.float32)
    scores = np.array([0.9, 0.95], dtype=np.float32)
    assert nms(boxes, scores, 0.7).tolist() == [1, 0]  # IoU 0.09: both kept
    assert nms(boxes, scores, 0.7, overlap="min").tolist() == [1]


def test_nms_groups_do_not_suppress_each_other() -> None:
    boxes = np.array([[0, 0, 10, 10]] * 2, dtype=np.float32)
    kept = nms(boxes, np.array([0.5, 0.6]), 0.5, groups=np.array([0, 1]))
    assert sorted(kept.tolist()) == [0, 1]


def test_largest_and_fit_within_and_template() -> None:
    assert largest(np.array([[0, 0, 10, 10], [0, 0, 30, 5], [5, 5, 25, 25]], np.float32)) == 2
    pixels, scale = fit_within(np.zeros((2000, 1000, 3), dtype=np.uint8), 500)
    assert pixels.shape == (500, 250, 3) and scale == 0.25
    t = box_template(np.array([[0.0, 0.0], [1.0, 1.0]]), 100, 0.8)
    np.testing.assert_allclose(t, [[10, 10], [90, 90]])
