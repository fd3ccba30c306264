"""The scene graph: what is in a scene, where, in which colour, and how much of it shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SceneObject:
    id: int  # 1-based within the scene, in drawing order (later objects are in front)
    category: str
    category_id: int  # 1-based index into shapes.CLASSES; 0 is background
    colour: str
    rgb: tuple[int, int, int]
    center: tuple[float, float]  # x, y in scene pixels
    size: int  # side of the square the shape fills, in pixels
    rotation: float  # degrees, counter-clockwise in image coordinates
    bbox: tuple[int, int, int, int]  # visible part: x, y, width, height (COCO convention)
    area: int  # visible pixels
    visible_fraction: float  # visible pixels / pixels of the unoccluded shape


@dataclass(frozen=True)
class Scene:
    image_id: int
    file_name: str
    split: str
    seed: tuple[int, ...]
    width: int
    height: int
    background: dict[str, Any]
    objects: list[SceneObject] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        fields = {k: v for k, v in data.items() if k not in ("objects", "seed")}
        objects = [
            SceneObject(
                **{
                    **o,
                    "rgb": tuple(o["rgb"]),
                    "center": tuple(o["center"]),
                    "bbox": tuple(o["bbox"]),
                }
            )
            for o in data["objects"]
        ]
        return cls(**fields, seed=tuple(data["seed"]), objects=objects)
