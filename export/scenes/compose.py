"""Compose one scene from a seed: a background photo plus 1-8 shapes, some hiding others."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from export.scenes.backgrounds import SPLIT_PHOTOS, background
from export.scenes.colours import COLOURS, jittered
from export.scenes.graph import Scene, SceneObject
from export.scenes.shapes import CLASSES, shape_alpha

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class SceneSpec:
    """The ranges scenes are drawn from."""

    min_side: int = 256
    max_side: int = 384
    max_objects: int = 8
    min_size: int = 14  # smallest shape, in pixels
    max_size_frac: float = 0.45  # largest shape, as a fraction of the scene's shorter side
    min_visible: float = 0.5  # an object may be hidden by at most half
    placement_tries: int = 25


DEFAULT_SPEC = SceneSpec()


@dataclass(frozen=True)
class ComposedScene:
    image: np.ndarray  # HxWx3 uint8
    masks: list[np.ndarray]  # visible part of each object, HxW bool, in scene.objects order
    scene: Scene


def compose_scene(
    split: str, index: int, base_seed: int, spec: SceneSpec = DEFAULT_SPEC
) -> ComposedScene:
    """The scene ``index`` of ``split``; the same arguments always give the same pixels."""
    seed = (base_seed, SPLIT_IDS[split], index)
    rng = np.random.default_rng(seed)
    width = int(rng.integers(spec.min_side, spec.max_side + 1))
    height = int(rng.integers(spec.min_side, spec.max_side + 1))
    photos = SPLIT_PHOTOS[split]
    pixels, bg = background(photos[int(rng.integers(len(photos)))], width, height, rng)
    image = pixels.astype(np.float32)
    wanted = int(rng.integers(1, spec.max_objects + 1))
    placed: list[dict] = []
    visible: list[np.ndarray] = []
    max_size = int(spec.max_size_frac * min(width, height))
    for _ in range(wanted):
        for _ in range(spec.placement_tries):
            size = round(math.exp(rng.uniform(math.log(spec.min_size), math.log(max_size))))
            kind = CLASSES[int(rng.integers(len(CLASSES)))]
            rotation = float(rng.uniform(0, 360))
            x0 = int(rng.integers(0, width - size + 1))
            y0 = int(rng.integers(0, height - size + 1))
            alpha = shape_alpha(kind, size, rotation)
            full = np.zeros((height, width), dtype=bool)
            full[y0 : y0 + size, x0 : x0 + size] = alpha >= 0.5
            shrunk = [v & ~full for v in visible]
            if all(
                s.sum() >= spec.min_visible * p["full_area"]
                for s, p in zip(shrunk, placed, strict=True)
            ):
                break
        else:
            continue  # no room for another object without hiding too much
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        rgb = jittered(colour, rng)
        _paint(image, alpha, x0, y0, rgb, rng)
        visible = [*shrunk, full]
        placed.append(
            {
                "kind": kind,
                "colour": colour,
                "rgb": rgb,
                "size": size,
                "rotation": rotation,
                "x0": x0,
                "y0": y0,
                "full_area": int(full.sum()),
            }
        )
    objects = [_object(i, p, v) for i, (p, v) in enumerate(zip(placed, visible, strict=True), 1)]
    scene = Scene(
        image_id=index + 1,
        file_name=f"{index:06d}.jpg",
        split=split,
        seed=seed,
        width=width,
        height=height,
        background=bg,
        objects=objects,
    )
    out = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    return ComposedScene(image=out, masks=visible, scene=scene)


def _paint(
    image: np.ndarray,
    alpha: np.ndarray,
    x0: int,
    y0: int,
    rgb: tuple[int, int, int],
    rng: np.random.Generator,
) -> None:
    """Blend a shaded, slightly noisy fill of ``rgb`` into ``image`` through ``alpha``."""
    size = alpha.shape[0]
    direction = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    shade = (
        1
        + rng.uniform(0.05, 0.25)
        * (math.cos(direction) * ramp[None, :] + math.sin(direction) * ramp[:, None])
        / 2
    )
    fill = np.asarray(rgb, dtype=np.float32) * shade[:, :, None]
    fill += rng.normal(0, 5, size=fill.shape).astype(np.float32)
    patch = image[y0 : y0 + size, x0 : x0 + size]
    a = alpha[:, :, None]
    patch[...] = patch * (1 - a) + fill * a


def _object(object_id: int, placed: dict, mask: np.ndarray) -> SceneObject:
    ys, xs = np.nonzero(mask)
    x, y = int(xs.min()), int(ys.min())
    half = placed["size"] / 2
    return SceneObject(
        id=object_id,
        category=placed["kind"],
        category_id=CLASSES.index(placed["kind"]) + 1,
        colour=placed["colour"],
        rgb=placed["rgb"],
        center=(placed["x0"] + half, placed["y0"] + half),
        size=placed["size"],
        rotation=round(placed["rotation"], 2),
        bbox=(x, y, int(xs.max()) + 1 - x, int(ys.max()) + 1 - y),
        area=int(mask.sum()),
        visible_fraction=round(float(mask.sum()) / placed["full_area"], 4),
    )
