"""FCOS target assignment: which locations learn which object, and what they regress."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Objects whose largest point-to-edge distance falls in a level's range are learnt there.
LEVEL_RANGES = {8: (0.0, 32.0), 16: (32.0, float("inf"))}
CENTER_RADIUS = 1.5  # in strides: only locations this close to an object's centre are positive


@dataclass(frozen=True)
class Targets:
    labels: torch.Tensor  # [N] int64, -1 for background
    distances: torch.Tensor  # [N, 4] l, t, r, b (valid where labels >= 0)
    centerness: torch.Tensor  # [N] in [0, 1] (valid where labels >= 0)


def assign(
    points: torch.Tensor, strides: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor
) -> Targets:
    """Targets for one image; ``boxes [K, 4]`` x1 y1 x2 y2, ``labels [K]`` 0-based."""
    n = points.shape[0]
    if boxes.numel() == 0:
        return Targets(torch.full((n,), -1, dtype=torch.int64), torch.zeros(n, 4), torch.zeros(n))
    x, y = points[:, 0:1], points[:, 1:2]
    ltrb = torch.stack(
        [x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], dim=-1
    )  # [N, K, 4]
    inside = ltrb.min(dim=-1).values > 0
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    radius = CENTER_RADIUS * strides[:, None]
    near_centre = ((x - cx).abs() < radius) & ((y - cy).abs() < radius)
    lo = torch.tensor([LEVEL_RANGES[int(s)][0] for s in strides.tolist()])
    hi = torch.tensor([LEVEL_RANGES[int(s)][1] for s in strides.tolist()])
    reach = ltrb.max(dim=-1).values
    in_level = (reach >= lo[:, None]) & (reach <= hi[:, None])
    areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).expand(n, -1)
    areas = torch.where(inside & near_centre & in_level, areas, torch.inf)
    best_area, best = areas.min(dim=1)
    positive = torch.isfinite(best_area)
    target_labels = torch.where(positive, labels[best], torch.full_like(best, -1))
    distances = ltrb[torch.arange(n), best].clamp(min=0)
    lr, tb = distances[:, [0, 2]], distances[:, [1, 3]]
    centerness = torch.sqrt(
        (lr.min(dim=1).values / lr.max(dim=1).values.clamp(min=1e-6))
        * (tb.min(dim=1).values / tb.max(dim=1).values.clamp(min=1e-6))
    )
    return Targets(target_labels, distances, torch.where(positive, centerness, 0.0))
