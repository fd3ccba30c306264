"""Object detection: letterbox -> batched model -> thresholds, class-aware NMS, original pixels."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from serving.core.config import BoxDetection
from serving.core.runtime import Tensors
from serving.errors import Unprocessable
from serving.imaging.detection import DetectionParams, detect
from serving.imaging.prepared import Prepared, prepare_keeping_pixels
from serving.imaging.preprocess import ImagePreprocessor
from serving.imaging.render import draw_boxes, palette, png
from serving.settings import Settings
from serving.tasks.base import Deadline, prepare_all, read_lines

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


@dataclass(frozen=True)
class DetectedObject:
    label: str
    class_id: int
    score: float
    box: list[float]  # x1, y1, x2, y2 in original image pixels


@dataclass(frozen=True)
class ImageDetections:
    width: int
    height: int
    detections: list[DetectedObject]
    rendered: bytes | None = None  # PNG, when asked for


class DetectionPipeline:
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        config = version.config
        if config.preprocess is None or not isinstance(config.postprocess, BoxDetection):
            raise ValueError("a detection model needs preprocess and detection postprocess")
        self.version = version
        self.pool = pool
        self.post = config.postprocess
        self.preprocessor = ImagePreprocessor(
            config.preprocess, max_pixels=settings.max_image_pixels
        )
        self.labels = read_lines(version.folder.parent / self.post.labels)
        classes = next(o.shape[-1] for o in config.outputs if o.name == self.post.scores_output)
        if classes > 0 and classes != len(self.labels):
            raise ValueError(
                f"{self.post.labels} has {len(self.labels)} labels for {classes} classes"
            )
        self.colours = palette(len(self.labels), background=None)

    def class_ids(self, names: list[str]) -> frozenset[int]:
        """Label names -> class ids; an unknown name is a client error naming the known ones."""
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise Unprocessable(f"unknown classes {unknown}; this model knows {self.labels}")
        return frozenset(index[n] for n in names)

    def params(
        self,
        score_threshold: float | None,
        max_detections: int | None,
        classes: list[str] | None,
    ) -> DetectionParams:
        """The config's defaults overridden by the request's options."""
        return DetectionParams(
            score_threshold=self.post.score_threshold
            if score_threshold is None
            else score_threshold,
            iou_threshold=self.post.iou_threshold,
            max_detections=self.post.max_detections if max_detections is None else max_detections,
            pre_nms_top_k=self.post.pre_nms_top_k,
            classes=None if classes is None else self.class_ids(classes),
        )

    async def __call__(
        self, images: list[bytes], *, params: DetectionParams, render: bool, deadline: Deadline
    ) -> list[ImageDetections]:
        prepared = await prepare_all(
            self.pool,
            partial(prepare_keeping_pixels, self.preprocessor, full_resolution=render),
            images,
        )
        rows = [{self.preprocessor.config.input: p.prepared.tensor} for p in prepared]
        outputs = await self.version.infer(rows, timeout_s=deadline.remaining_s())
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(
                    loop.run_in_executor(self.pool, self._finish, p, out, params, render)
                    for p, out in zip(prepared, outputs, strict=True)
                )
            )
        )

    def _finish(
        self, image: Prepared, out: Tensors, params: DetectionParams, render: bool
    ) -> ImageDetections:
        found = detect(
            out[self.post.boxes_output],
            out[self.post.scores_output],
            image.prepared.geometry,
            params,
            self.post.box_format,
        )
        objects = [
            DetectedObject(self.labels[c], int(c), float(s), [float(v) for v in b])
            for b, s, c in zip(found.boxes, found.scores, found.class_ids, strict=True)
        ]
        width, height = image.decoded.original_size
        rendered = None
        if render:
            captions = [f"{o.label} {o.score:.2f}" for o in objects]
            img = draw_boxes(
                image.decoded.pixels,
                image.decoded.original_size,
                found.boxes,
                captions,
                found.class_ids,
                self.colours,
            )
            rendered = png(img)
        return ImageDetections(width, height, objects, rendered)
