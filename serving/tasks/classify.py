"""Image classification: preprocess -> batched model -> softmax/top-k with labels, and on
request a class activation map and box per predicted class (``explain=cam``)."""

from __future__ import annotations

import base64
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from serving.core.config import SoftmaxTopK
from serving.core.deadline import Deadline
from serving.core.runtime import Tensors
from serving.errors import BadRequest
from serving.imaging import cam
from serving.imaging.prepared import Prepared
from serving.imaging.scores import softmax, top_k
from serving.settings import Settings
from serving.tasks.contract import ModelResponse, Task, TaskOptions, TaskRequest
from serving.tasks.embed import ImageEmbedder
from serving.tasks.image_pipeline import ImagePipeline

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


class ClassifyOptions(TaskOptions):
    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="labels per image; the model's default_top_k"
    )
    explain: Literal["cam"] | None = Field(
        default=None, description="cam: a class activation map and box for each returned label"
    )
    explain_png: bool = Field(
        default=False, description="with explain=cam: the top label's map over the image, PNG"
    )

    @model_validator(mode="after")
    def _png_needs_explain(self) -> ClassifyOptions:
        if self.explain_png and self.explain is None:
            raise ValueError("explain_png needs explain=cam")
        return self


class ClassActivation(BaseModel):
    grid: list[list[float]] = Field(
        description="the map at feature-map resolution, min-max normalised to [0, 1]"
    )
    box: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 in original pixels: the largest region above the threshold"
    )


class Label(BaseModel):
    label: str
    class_id: int
    probability: float
    cam: ClassActivation | None = Field(default=None, description="with explain=cam")


class ImageClassification(BaseModel):
    predictions: list[Label] = Field(description="best first")
    explain_png: str | None = Field(
        default=None, description="base64 PNG of the top label's map, with explain_png=true"
    )


class ClassifyResponse(ModelResponse):
    results: list[ImageClassification] = Field(description="one entry per image, in order")


class ClassificationPipeline(ImagePipeline):
    needs, needs_kind = SoftmaxTopK, "softmax_topk"

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        config = version.config
        self.labels = self.labels_for(self.post.output)
        self.embedder = ImageEmbedder(self, config.embedding.output) if config.embedding else None
        self.explain = config.explain
        self.class_weights: np.ndarray | None = None
        if self.explain is not None:
            self.class_weights = np.load(version.folder.parent / self.explain.class_weights)
            fmap = next(o for o in config.outputs if o.name == self.explain.feature_map_output)
            want = (len(self.labels), fmap.shape[1])
            if self.class_weights.shape != want:
                raise ValueError(
                    f"{self.explain.class_weights} has shape {self.class_weights.shape}, "
                    f"expected {want} (classes, feature-map channels)"
                )
            size = config.inputs[0].shape  # the image input: [-1, 3, H, W]
            self.input_size = (size[-1], size[-2])

    def option_defaults(self) -> dict[str, Any]:
        return {**super().option_defaults(), "top_k": self.post.default_top_k}

    def _labels(self, scores: np.ndarray, k: int) -> list[Label]:
        probs = softmax(scores) if self.post.apply_softmax else scores
        return [Label(**p.__dict__) for p in top_k(probs, k, self.labels)]

    async def classify(
        self, images: list[bytes], *, k: int, deadline: Deadline
    ) -> list[ImageClassification]:
        _, outputs = await self.infer_images(images, deadline)
        return [
            ImageClassification(predictions=self._labels(out[self.post.output], k))
            for out in outputs
        ]

    async def classify_explained(
        self, images: list[bytes], *, k: int, png: bool, deadline: Deadline
    ) -> list[ImageClassification]:
        if self.explain is None:
            raise BadRequest(
                f"model {self.version.name!r} declares no explain section (feature map and "
                "class weights)",
                code="explain_unsupported",
            )
        prepared, outputs = await self.infer_keeping_pixels(images, deadline, full_resolution=png)
        return await self.offload_each(
            lambda p, o: self._explained(p, o, k, png), prepared, outputs
        )

    def _explained(self, image: Prepared, out: Tensors, k: int, png: bool) -> ImageClassification:
        assert self.explain is not None and self.class_weights is not None
        labels = self._labels(out[self.post.output], k)
        ids = [label.class_id for label in labels]
        maps = cam.class_maps(out[self.explain.feature_map_output], self.class_weights[ids])
        geometry = image.prepared.geometry
        found = [
            cam.localise(m, self.input_size, geometry, self.explain.box_threshold) for m in maps
        ]
        for label, loc in zip(labels, found, strict=True):
            label.cam = ClassActivation(grid=np.round(loc.grid, 3).tolist(), box=loc.box)
        overlay = None
        if png and found:
            decoded = image.decoded
            data = cam.overlay_png(
                decoded.pixels, decoded.original_size, found[0].grid, self.input_size,
                geometry, found[0].box,
            )  # fmt: skip
            overlay = base64.b64encode(data).decode("ascii")
        return ImageClassification(predictions=labels, explain_png=overlay)


class Classify(Task[ClassificationPipeline, ClassifyOptions, ClassifyResponse]):
    """Top-k labels with probabilities for each image; with ``explain=cam`` each label also
    gets its class activation map and localisation box (Zhou et al., CVPR 2016)."""

    path = "/v1/classify"
    summary = "Classify images (top-k labels with probabilities)"
    model_task = "classification"
    options = ClassifyOptions
    response = ClassifyResponse
    exclude_none = True

    async def run(
        self, pipeline: ClassificationPipeline, request: TaskRequest[ClassifyOptions]
    ) -> ClassifyResponse:
        opts = request.options
        assert opts.top_k is not None  # resolved from the model's config
        if opts.explain == "cam":
            results = await pipeline.classify_explained(
                request.images, k=opts.top_k, png=opts.explain_png, deadline=request.deadline
            )
        else:
            results = await pipeline.classify(
                request.images, k=opts.top_k, deadline=request.deadline
            )
        return ClassifyResponse(
            model=pipeline.version.name, version=pipeline.version.version, results=results
        )
