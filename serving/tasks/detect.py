"""Object detection: preprocess -> batched model -> the configured output format's decoder
(:mod:`serving.imaging.heads`: thresholds, NMS where the format needs it) -> original pixels."""

from __future__ import annotations

import base64
from concurrent.futures import Executor
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

from serving.core.config import BoxDetection
from serving.core.deadline import Deadline
from serving.core.runtime import Tensors
from serving.errors import Unprocessable
from serving.imaging.detection import DetectionParams
from serving.imaging.heads import Frame, check_layout, decode
from serving.imaging.prepared import Prepared
from serving.imaging.render import draw_boxes, palette, png
from serving.settings import Settings
from serving.tasks.contract import ModelResponse, Task, TaskOptions, TaskRequest
from serving.tasks.image_pipeline import ImagePipeline

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


def split_names(value: object) -> object:
    """``"a,b"`` (query string, form field) or ``["a", "b"]`` (JSON) -> a list of names."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class DetectOptions(TaskOptions):
    score_threshold: float | None = Field(
        default=None, ge=0, le=1, description="lowest score returned; the model's default if unset"
    )
    max_detections: int | None = Field(
        default=None, ge=1, le=1000, description="per image; the model's default if unset"
    )
    classes: list[str] | None = Field(
        default=None, description="only these labels (list, or comma-separated string)"
    )
    render: bool = Field(default=False, description="also return a PNG with the boxes drawn")

    _split = field_validator("classes", mode="before")(split_names)


class Detection(BaseModel):
    label: str
    class_id: int
    score: float
    box: list[float] = Field(description="x1, y1, x2, y2 in original image pixels")


class ImageDetections(BaseModel):
    width: int
    height: int
    detections: list[Detection] = Field(description="best score first")
    rendered_png: str | None = Field(default=None, description="base64 PNG, if render=true")


class DetectResponse(ModelResponse):
    results: list[ImageDetections] = Field(description="one entry per image, in order")


class DetectionPipeline(ImagePipeline):
    needs, needs_kind = BoxDetection, "detection"

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        self.labels = self.side_file_lines(self.post.labels)
        # the shapes a warm-up run produced (else the config's): a layout that does not fit the
        # format fails the model, saying what was found and expected
        skip = 1 if version.config.batching.batched else 0
        shapes = {o.name: o.shape[skip:] for o in version.config.outputs}
        shapes.update(version.model.warmup_shapes)
        check_layout(self.post, shapes, len(self.labels))
        self.colours = palette(len(self.labels), background=None)

    def option_defaults(self) -> dict[str, Any]:
        return {
            **super().option_defaults(),
            "score_threshold": self.post.score_threshold,
            "max_detections": self.post.max_detections,
        }

    def params(self, options: DetectOptions) -> DetectionParams:
        assert options.score_threshold is not None and options.max_detections is not None
        return DetectionParams(
            score_threshold=options.score_threshold,
            iou_threshold=self.post.iou_threshold,
            max_detections=options.max_detections,
            pre_nms_top_k=self.post.pre_nms_top_k,
            classes=None if options.classes is None else self._class_ids(options.classes),
            multi_label=self.post.multi_label,
        )

    def _label(self, class_id: int) -> str:
        """Models with post-processing inside report ids the labels file may not cover."""
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

    def _class_ids(self, names: list[str]) -> frozenset[int]:
        """Label names -> class ids; an unknown name is a client error naming the known ones."""
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise Unprocessable(f"unknown classes {unknown}; this model knows {self.labels}")
        return frozenset(index[n] for n in names)

    async def detect(
        self, images: list[bytes], *, params: DetectionParams, render: bool, deadline: Deadline
    ) -> list[ImageDetections]:
        prepared, outputs = await self.infer_keeping_pixels(
            images, deadline, full_resolution=render
        )
        finish = partial(self._finish, params=params, render=render)
        return await self.offload_each(finish, prepared, outputs)

    def _finish(
        self, image: Prepared, out: Tensors, *, params: DetectionParams, render: bool
    ) -> ImageDetections:
        tensor = image.prepared.tensor
        frame = Frame(image.prepared.geometry, self.preprocessor.input_size(tensor))
        found = decode(out, self.post, frame, params)
        objects = [
            Detection(label=self._label(c), class_id=int(c), score=float(s), box=b.tolist())
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
            rendered = base64.b64encode(png(img)).decode("ascii")
        return ImageDetections(
            width=width, height=height, detections=objects, rendered_png=rendered
        )


class Detect(Task[DetectionPipeline, DetectOptions, DetectResponse]):
    """Labelled boxes in original-image pixels, best score first, optionally drawn."""

    path = "/v1/detect"
    summary = "Detect objects (labelled boxes with scores)"
    model_task = "detection"
    options = DetectOptions
    response = DetectResponse
    exclude_none = True

    async def run(
        self, pipeline: DetectionPipeline, request: TaskRequest[DetectOptions]
    ) -> DetectResponse:
        opts = request.options
        results = await pipeline.detect(
            request.images,
            params=pipeline.params(opts),
            render=opts.render,
            deadline=request.deadline,
        )
        return DetectResponse(
            model=pipeline.version.name, version=pipeline.version.version, results=results
        )
